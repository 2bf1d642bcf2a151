//! Secrets at rest and token signatures. All primitives come from `ring`.

pub mod jwt;
pub mod master_key;
pub mod signing;

pub use master_key::MasterKey;
pub use signing::KeyRing;
