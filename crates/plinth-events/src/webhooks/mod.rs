//! Webhooks: delivering a tenant's events to the endpoints it registers. So far: the rules
//! for where a webhook may be sent, and how a delivery is signed.

pub mod signing;
pub mod target;

pub use signing::{SigningSecret, headers};
pub use target::{TargetRefused, TargetRules, is_public};
