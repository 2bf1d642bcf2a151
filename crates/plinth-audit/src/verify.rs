//! Recomputing chains to find records that were edited, deleted, reordered or cut off
//! behind Plinth's back.
//!
//! A verification walks one chain in `seq` order, in batches, recomputing each record's
//! hash from its fields and its predecessor's hash. It can start from a record already
//! verified ([`Verified`]), so a background verifier re-reads only what was added since
//! its last pass.

use plinth_core::{AuditId, TenantId};
use plinth_store::{Db, StoreResult, on};
use serde::Serialize;

use crate::GENESIS_HASH;
use crate::record::{STORED_COLUMNS, StoredRecord, chain_of};
use crate::retention::{Seal, latest_checkpoint};

/// The first place a chain stops being the one Plinth wrote, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainBreak {
    /// The record's content no longer matches its hash: it was edited.
    Edited { seq: i64, id: String },
    /// The record does not follow its predecessor (its `prev_hash` names another record):
    /// records were reordered, or one was replaced by a forged chain.
    Reordered { seq: i64, id: String },
    /// Sequence numbers skip: records were deleted.
    Deleted { expected_seq: i64, found_seq: i64 },
    /// The chain ends before its head says it should: the newest records were deleted
    /// (or the last one replaced).
    Truncated { head_seq: i64, last_seq: i64 },
    /// Records exist but the chain's head row is gone.
    HeadMissing { last_seq: i64 },
    /// The chain was pruned, but the checkpoint standing for the pruned records does not
    /// carry a signature of this instance: forged or edited in the database.
    CheckpointInvalid { last_seq: i64 },
}

impl ChainBreak {
    /// The kind, as the serialised `kind` says it.
    pub fn kind(&self) -> &'static str {
        match self {
            ChainBreak::Edited { .. } => "edited",
            ChainBreak::Reordered { .. } => "reordered",
            ChainBreak::Deleted { .. } => "deleted",
            ChainBreak::Truncated { .. } => "truncated",
            ChainBreak::HeadMissing { .. } => "head_missing",
            ChainBreak::CheckpointInvalid { .. } => "checkpoint_invalid",
        }
    }

    /// The sequence number where the chain breaks.
    pub fn seq(&self) -> i64 {
        match self {
            ChainBreak::Edited { seq, .. } | ChainBreak::Reordered { seq, .. } => *seq,
            ChainBreak::Deleted { expected_seq, .. } => *expected_seq,
            ChainBreak::Truncated { last_seq, .. } | ChainBreak::HeadMissing { last_seq } => *last_seq + 1,
            ChainBreak::CheckpointInvalid { last_seq } => *last_seq,
        }
    }
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::Edited { seq, id } => write!(f, "record {seq} ({id}) was edited"),
            ChainBreak::Reordered { seq, id } => {
                write!(
                    f,
                    "record {seq} ({id}) does not follow record {}: reordered or replaced",
                    seq - 1
                )
            }
            ChainBreak::Deleted {
                expected_seq,
                found_seq,
            } => {
                write!(f, "records {expected_seq} to {} were deleted", found_seq - 1)
            }
            ChainBreak::Truncated { head_seq, last_seq } => write!(
                f,
                "the chain ends at record {last_seq} but its head is record {head_seq}: the newest records were deleted or replaced"
            ),
            ChainBreak::HeadMissing { last_seq } => {
                write!(f, "the chain's head row is gone ({last_seq} records remain)")
            }
            ChainBreak::CheckpointInvalid { last_seq } => write!(
                f,
                "the checkpoint for the records pruned through {last_seq} is not signed by this instance: forged or edited"
            ),
        }
    }
}

/// The result of verifying one chain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// `platform`, or the tenant's id.
    pub chain: String,
    /// Records verified intact (before the first break, if any).
    pub records: u64,
    pub first_break: Option<ChainBreak>,
    /// The head as stored: the newest record's number and hash.
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
    /// The chain was pruned through this record, under a checkpoint whose signature holds;
    /// verification started after it.
    pub pruned_through: Option<i64>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// The last record a verification found intact: where the next one may resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub seq: i64,
    pub hash: String,
}

const BATCH: i64 = 2_000;

/// Every chain that has a head or a record, platform first, then tenants by id.
pub async fn chains(db: &Db) -> StoreResult<Vec<String>> {
    let mut conn = db.read().await?;
    let mut names: Vec<String> = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT chain FROM audit_chain_heads UNION SELECT DISTINCT chain FROM audit_log"
    ).fetch_all(c).await)?;
    names.sort_by(|a, b| crate::chain_order(a).cmp(&crate::chain_order(b)));
    Ok(names)
}

/// Verifies the chain of `tenant` (`None`: the platform chain) from its first record (or
/// its newest checkpoint, when `seal` holds on it).
pub async fn verify_chain(db: &Db, tenant: Option<TenantId>, seal: &dyn Seal) -> StoreResult<VerifyReport> {
    Ok(verify_named(db, &chain_of(tenant), None, seal).await?.0)
}

/// Verifies the chain `chain`, from its first record or from `from` (a record an earlier
/// verification found intact). A pruned chain is verified from its newest checkpoint,
/// which must carry a signature `seal` accepts. Returns the report and the last intact
/// record.
pub async fn verify_named(
    db: &Db,
    chain: &str,
    from: Option<&Verified>,
    seal: &dyn Seal,
) -> StoreResult<(VerifyReport, Option<Verified>)> {
    let mut conn = db.read().await?;
    let head: Option<(i64, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT seq, hash FROM audit_chain_heads WHERE chain = $1"
    ).bind(chain).fetch_optional(c).await)?;
    let checkpoint = latest_checkpoint(conn.conn(), chain).await?;
    let pruned_through = checkpoint.as_ref().map(|c| c.last_seq);
    let report = |records, first_break| VerifyReport {
        chain: chain.to_owned(),
        records,
        first_break,
        head_seq: head.as_ref().map(|h| h.0),
        head_hash: head.as_ref().map(|h| h.1.clone()),
        pruned_through,
    };
    // A pass resuming from a record pruned since starts again from the checkpoint.
    let from = from.filter(|v| pruned_through.is_none_or(|through| v.seq > through));
    let start = match (from, &checkpoint) {
        (Some(resumed), _) => Some(resumed.clone()),
        (None, Some(checkpoint)) if checkpoint.sealed(seal) => Some(Verified {
            seq: checkpoint.last_seq,
            hash: checkpoint.last_hash.clone(),
        }),
        (None, Some(checkpoint)) => {
            let first_break = ChainBreak::CheckpointInvalid {
                last_seq: checkpoint.last_seq,
            };
            return Ok((report(0, Some(first_break)), None));
        }
        (None, None) => None,
    };
    let mut last = start.clone();
    let mut expected_seq = start.as_ref().map_or(1, |v| v.seq + 1);
    let mut prev_hash = start
        .as_ref()
        .map_or_else(|| GENESIS_HASH.to_owned(), |v| v.hash.clone());
    let mut records = 0u64;
    if let Some(resumed) = from {
        // The record a pass resumes from must still be the one it verified.
        let stored: Option<(AuditId, String)> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT id, hash FROM audit_log WHERE chain = $1 AND seq = $2"
        ).bind(chain).bind(resumed.seq).fetch_optional(c).await)?;
        let first_break = match stored {
            None => Some(ChainBreak::Truncated {
                head_seq: head.as_ref().map_or(resumed.seq, |h| h.0),
                last_seq: resumed.seq - 1,
            }),
            Some((id, hash)) if hash != resumed.hash => Some(ChainBreak::Edited {
                seq: resumed.seq,
                id: id.to_string(),
            }),
            Some(_) => None,
        };
        if first_break.is_some() {
            return Ok((report(0, first_break), None));
        }
    }
    loop {
        let sql =
            format!("SELECT {STORED_COLUMNS} FROM audit_log WHERE chain = $1 AND seq >= $2 ORDER BY seq LIMIT $3");
        let rows: Vec<StoredRecord> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(chain).bind(expected_seq).bind(BATCH).fetch_all(c).await)?;
        let done = (rows.len() as i64) < BATCH;
        for row in rows {
            if let Some(first_break) = check(&row, expected_seq, &prev_hash) {
                return Ok((report(records, Some(first_break)), last));
            }
            expected_seq += 1;
            records += 1;
            last = Some(Verified {
                seq: row.seq,
                hash: row.hash.clone(),
            });
            prev_hash = row.hash;
        }
        if done {
            break;
        }
    }
    let last_seq = expected_seq - 1;
    let first_break = match &head {
        Some((head_seq, _)) if *head_seq != last_seq => Some(ChainBreak::Truncated {
            head_seq: *head_seq,
            last_seq,
        }),
        Some((_, head_hash)) if *head_hash != prev_hash => Some(ChainBreak::Truncated {
            head_seq: last_seq,
            last_seq,
        }),
        None if last_seq > 0 => Some(ChainBreak::HeadMissing { last_seq }),
        _ => None,
    };
    Ok((report(records, first_break), last))
}

/// The break at `row`, if it is not the intact successor of the record before it.
pub(crate) fn check(row: &StoredRecord, expected_seq: i64, prev_hash: &str) -> Option<ChainBreak> {
    if row.seq != expected_seq {
        return Some(ChainBreak::Deleted {
            expected_seq,
            found_seq: row.seq,
        });
    }
    if row.prev_hash != prev_hash {
        return Some(ChainBreak::Reordered {
            seq: row.seq,
            id: row.id.to_string(),
        });
    }
    let fields = row.fields();
    if fields.hash(prev_hash) != row.hash {
        return Some(ChainBreak::Edited {
            seq: row.seq,
            id: row.id.to_string(),
        });
    }
    None
}
