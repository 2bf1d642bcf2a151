//! The audit trail: one append-only log, written in the same transaction as the change
//! it records, and hash-chained per tenant so that an edited or deleted row is found.
//!
//! Each record's `hash` is SHA-256 over the previous record's hash and a canonical,
//! length-prefixed encoding of every field (length-prefixed, so no value can forge a field boundary). Records of one
//! chain (a tenant, or `platform`) are numbered without gaps by `seq`; the chain head
//! row is updated in the same statement that reserves the number, which serialises
//! concurrent appends to one chain on PostgreSQL and costs nothing on SQLite.

pub mod action;
mod export;
mod heads;
mod query;
mod record;
mod retention;
mod verify;
mod watch;

pub use export::{ExportCheck, ExportFormat, ExportRecord, encode, export_batch, export_stream, verify_export};
pub use heads::{Head, SignedHead, check_against, head_message, latest_signed, store_signed, unsigned_heads};
pub use query::{AuditFilter, AuditRecord, export_as_platform, list, list_as_platform};
pub use record::chain_of;
pub use record::{AuditEntry, Outcome, append};
pub use retention::{Checkpoint, NoSeal, PruneError, RetentionBounds, Seal, Signer, prune_chain};
pub use verify::{ChainBreak, Verified, VerifyReport, chains, verify_chain, verify_named};
pub use watch::{ChainWatch, PassReport};

/// The chain of records that belong to no tenant.
pub const PLATFORM_CHAIN: &str = "platform";

/// The order chains are listed in: the platform's first, then tenants' by id.
pub(crate) fn chain_order(chain: &str) -> (bool, &str) {
    (chain != PLATFORM_CHAIN, chain)
}

/// The `prev_hash` of a chain's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
