//! Retention: pruning a chain's oldest records without losing the proof of the rest.
//!
//! Pruning removes a chain's records older than its retention, oldest first, in batches.
//! Each batch is verified before it goes (pruning never destroys the evidence of a
//! break), and leaves a checkpoint in the same transaction: the range removed, how many
//! records, the hash of the last one, signed with the instance's signing key like the
//! chain heads. Verification then starts from the newest checkpoint whose signature
//! holds, as if its last hash were the genesis: any other gap, and a checkpoint forged
//! or edited in the database, is still a break.

use plinth_core::{Actor, Timestamp};
use plinth_store::{Conn, Db, StoreError, Tx, exec, on};
use serde::Serialize;

use crate::record::{AuditEntry, STORED_COLUMNS, StoredRecord, chain_tenant};
use crate::verify::{ChainBreak, check};
use crate::{GENESIS_HASH, action};

/// Checks the instance's signature on a checkpoint (or a head): true only for a key the
/// instance holds and a signature that verifies.
pub trait Seal: Send + Sync {
    fn holds(&self, kid: &str, message: &[u8], signature: &[u8]) -> bool;
}

/// Signs with the instance's current signing key: the key id and the signature.
pub trait Signer: Send + Sync {
    fn sign(&self, message: &[u8]) -> Result<(String, Vec<u8>), String>;
}

/// A seal that holds for nothing: without the instance's keys, a pruned chain cannot be
/// proven, so it does not verify (fail closed).
pub struct NoSeal;

impl Seal for NoSeal {
    fn holds(&self, _kid: &str, _message: &[u8], _signature: &[u8]) -> bool {
        false
    }
}

/// How long audit records are kept, in days: the platform's bounds and default, within
/// which each tenant chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionBounds {
    pub min_days: u32,
    pub max_days: u32,
    pub default_days: u32,
}

impl Default for RetentionBounds {
    fn default() -> Self {
        Self {
            min_days: 30,
            max_days: 3650,
            default_days: 365,
        }
    }
}

impl RetentionBounds {
    /// Bounds where `1 <= min <= default <= max`.
    pub fn new(min_days: u32, max_days: u32, default_days: u32) -> Result<Self, String> {
        if min_days == 0 || min_days > default_days || default_days > max_days {
            return Err(format!(
                "audit retention needs 1 <= minimum ({min_days}) <= default ({default_days}) <= maximum ({max_days}) days"
            ));
        }
        Ok(Self {
            min_days,
            max_days,
            default_days,
        })
    }

    pub fn allows(&self, days: u32) -> bool {
        (self.min_days..=self.max_days).contains(&days)
    }

    /// The retention applied for a tenant that asked for `requested` (none: the default),
    /// within the bounds as they stand now (they may have moved since it asked).
    pub fn effective(&self, requested: Option<u32>) -> u32 {
        requested
            .unwrap_or(self.default_days)
            .clamp(self.min_days, self.max_days)
    }
}

/// What pruning removed from a chain, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Checkpoint {
    /// `platform`, or the tenant's id.
    pub chain: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub record_count: i64,
    /// The hash of record `last_seq`: what record `last_seq + 1` follows.
    pub last_hash: String,
    /// The records removed were older than this.
    #[schema(value_type = String, format = DateTime)]
    pub pruned_before: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub signed_at: Timestamp,
    pub kid: String,
    /// Ed25519 over [`Checkpoint::message`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "plinth-audit-checkpoint-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.chain,
            self.first_seq,
            self.last_seq,
            self.record_count,
            self.last_hash,
            self.pruned_before.unix_micros(),
            self.signed_at.unix_micros()
        )
        .into_bytes()
    }

    /// Whether the instance's signature on it holds.
    pub fn sealed(&self, seal: &dyn Seal) -> bool {
        hex::decode(&self.signature).is_ok_and(|signature| seal.holds(&self.kid, &self.message(), &signature))
    }

    fn sign(&mut self, signer: &dyn Signer) -> Result<(), PruneError> {
        self.signed_at = Timestamp::now();
        let (kid, signature) = signer.sign(&self.message()).map_err(PruneError::Signing)?;
        self.kid = kid;
        self.signature = hex::encode(signature);
        Ok(())
    }
}

const CHECKPOINT_COLUMNS: &str =
    "chain, first_seq, last_seq, record_count, last_hash, pruned_before, signed_at, kid, signature";

/// The chain's newest checkpoint, if it was ever pruned.
pub(crate) async fn latest_checkpoint(conn: Conn<'_>, chain: &str) -> Result<Option<Checkpoint>, StoreError> {
    let sql =
        format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE chain = $1 ORDER BY last_seq DESC LIMIT 1");
    Ok(on!(conn, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(chain).fetch_optional(c).await)?)
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The records due for pruning do not verify: they are kept, as evidence.
    #[error("chain {chain} is broken ({first_break}); nothing pruned")]
    Broken { chain: String, first_break: ChainBreak },
    #[error("signing the checkpoint: {0}")]
    Signing(String),
}

impl From<sqlx::Error> for PruneError {
    fn from(e: sqlx::Error) -> Self {
        PruneError::Store(StoreError::Database(e))
    }
}

/// The most records one transaction prunes: bounds its length and its locks.
const BATCH: i64 = 10_000;

/// Prunes `chain`'s records older than `before`, oldest first, a batch per transaction,
/// each with its signed checkpoint and an `audit.prune` record on the chain. Returns the
/// records pruned.
pub async fn prune_chain(db: &Db, chain: &str, before: Timestamp, signer: &dyn Signer) -> Result<u64, PruneError> {
    let mut pruned = 0u64;
    loop {
        let batch = prune_batch(db, chain, before, signer).await?;
        pruned += batch;
        if batch < BATCH as u64 {
            return Ok(pruned);
        }
    }
}

async fn prune_batch(db: &Db, chain: &str, before: Timestamp, signer: &dyn Signer) -> Result<u64, PruneError> {
    let mut tx = db.begin().await?;
    // Holds the chain's head: appends to it wait until the batch is gone.
    let head: Option<i64> = on!(tx.conn(), c => sqlx::query_scalar(
        "UPDATE audit_chain_heads SET seq = seq WHERE chain = $1 RETURNING seq"
    ).bind(chain).fetch_optional(c).await)?;
    let Some(head_seq) = head else {
        return Ok(0);
    };
    let previous = latest_checkpoint(tx.conn(), chain).await?;
    let (floor, floor_hash) = previous
        .as_ref()
        .map_or((0, GENESIS_HASH.to_owned()), |p| (p.last_seq, p.last_hash.clone()));
    // A chain's times never decrease with its numbers: the first record kept is the
    // first at or after `before`.
    let first_kept: Option<i64> = on!(tx.conn(), c => sqlx::query_scalar(
        "SELECT seq FROM audit_log WHERE chain = $1 AND occurred_at >= $2 ORDER BY occurred_at, seq LIMIT 1"
    ).bind(chain).bind(before).fetch_optional(c).await)?;
    let last_seq = first_kept.map_or(head_seq, |kept| kept - 1).min(floor + BATCH);
    if last_seq <= floor {
        return Ok(0);
    }
    let last_hash = verify_range(&mut tx, chain, floor + 1, last_seq, floor_hash).await?;
    exec!(tx.conn(), c => sqlx::query("DELETE FROM audit_log WHERE chain = $1 AND seq <= $2")
        .bind(chain).bind(last_seq).execute(c).await)?;
    let mut checkpoint = Checkpoint {
        chain: chain.to_owned(),
        first_seq: floor + 1,
        last_seq,
        record_count: last_seq - floor,
        last_hash,
        pruned_before: before,
        signed_at: Timestamp::now(),
        kid: String::new(),
        signature: String::new(),
    };
    checkpoint.sign(signer)?;
    let tenant = chain_tenant(chain);
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO audit_checkpoints (id, chain, tenant_id, first_seq, last_seq, record_count, last_hash,
            pruned_before, signed_at, kid, signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ).bind(uuid::Uuid::now_v7()).bind(chain).bind(tenant).bind(checkpoint.first_seq).bind(last_seq)
    .bind(checkpoint.record_count).bind(&checkpoint.last_hash).bind(before).bind(checkpoint.signed_at)
    .bind(&checkpoint.kid).bind(&checkpoint.signature).execute(c).await)?;
    let mut entry = AuditEntry::new(action::AUDIT_PRUNE).changes(serde_json::json!({
        "first_seq": checkpoint.first_seq,
        "last_seq": last_seq,
        "record_count": checkpoint.record_count,
        "pruned_before": before,
    }));
    entry.tenant = tenant;
    crate::record::append(&mut tx, &Actor::system(), entry).await?;
    tx.commit().await?;
    Ok(u64::try_from(checkpoint.record_count).unwrap_or(0))
}

/// Verifies records `from..=to` of `chain`, the first following `prev_hash`; returns the
/// last one's hash.
async fn verify_range(
    tx: &mut Tx,
    chain: &str,
    from: i64,
    to: i64,
    mut prev_hash: String,
) -> Result<String, PruneError> {
    let sql =
        format!("SELECT {STORED_COLUMNS} FROM audit_log WHERE chain = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq");
    let rows: Vec<StoredRecord> = on!(tx.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(chain).bind(from).bind(to).fetch_all(c).await)?;
    let mut expected_seq = from;
    for row in rows {
        if let Some(first_break) = check(&row, expected_seq, &prev_hash) {
            return Err(PruneError::Broken {
                chain: chain.to_owned(),
                first_break,
            });
        }
        expected_seq += 1;
        prev_hash = row.hash;
    }
    if expected_seq != to + 1 {
        return Err(PruneError::Broken {
            chain: chain.to_owned(),
            first_break: ChainBreak::Deleted {
                expected_seq,
                found_seq: to + 1,
            },
        });
    }
    Ok(prev_hash)
}
