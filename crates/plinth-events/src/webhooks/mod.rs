//! Webhooks: delivering a tenant's events to the endpoints it registers. So far: the rules
//! for where a webhook may be sent.

pub mod target;

pub use target::{TargetRefused, TargetRules, is_public};
