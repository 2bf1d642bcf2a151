//! Sign-in, tokens and the self-service account flows.

pub mod credentials;
pub mod flows;
pub mod well_known;
