//! Webhooks: delivering a tenant's events to the endpoints it registers. An endpoint names
//! a URL the [`target`] rules admit and the events it takes; the dispatcher fans each
//! published event out into [`deliveries`], which the [`deliver`]er attempts, [`signing`]
//! each as Standard Webhooks says, on a schedule of retries that ends in the dead-letter
//! queue.

pub mod deliver;
pub mod deliveries;
pub mod endpoints;
pub mod signing;
pub mod target;

pub use deliver::{Deliverer, DeliveryError, DeliverySettings, OnDisabled};
pub use deliveries::{Attempt, Delivery, DeliveryFilter, Replay};
pub use endpoints::{Endpoint, EndpointInput, EndpointWithSecret, SecretBox};
pub use signing::{SecretError, SigningSecret, headers};
pub use target::{TargetRefused, TargetRules, is_public};
