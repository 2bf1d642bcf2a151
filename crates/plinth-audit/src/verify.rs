//! Recomputing a chain to find the first record that was edited, deleted or inserted
//! behind Plinth's back.

use plinth_core::{AuditId, TenantId, Timestamp};
use plinth_store::{Db, StoreResult, on};
use serde::Serialize;

use crate::GENESIS_HASH;
use crate::record::{HashedFields, chain_of};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainBreak {
    /// The record's content no longer matches its hash: it was edited.
    Altered { seq: i64, id: String },
    /// A record's `prev_hash` does not match its predecessor: rows were reordered or replaced.
    Relinked { seq: i64, id: String },
    /// Sequence numbers skip: records were deleted.
    Missing { expected_seq: i64, found_seq: i64 },
    /// The chain ends before the head says it should: the newest records were deleted.
    Truncated { head_seq: i64, last_seq: i64 },
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub chain: String,
    pub records: u64,
    pub first_break: Option<ChainBreak>,
    pub head_hash: Option<String>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: AuditId,
    seq: i64,
    tenant_id: Option<TenantId>,
    occurred_at: Timestamp,
    actor_kind: String,
    actor_id: Option<uuid::Uuid>,
    impersonator_id: Option<uuid::Uuid>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    outcome: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    changes: Option<String>,
    reason: Option<String>,
    prev_hash: String,
    hash: String,
}

const BATCH: i64 = 2_000;

/// Verifies the chain of `tenant` (`None`: the platform chain), streaming in batches.
pub async fn verify_chain(db: &Db, tenant: Option<TenantId>) -> StoreResult<VerifyReport> {
    let chain = chain_of(tenant);
    let mut conn = db.read().await?;
    let head: Option<(i64, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT seq, hash FROM audit_chain_heads WHERE chain = $1"
    ).bind(&chain).fetch_optional(c).await)?;

    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut records = 0u64;
    loop {
        let rows: Vec<Row> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT id, seq, tenant_id, occurred_at, actor_kind, actor_id, impersonator_id, action,
                    target_type, target_id, outcome, ip, user_agent, request_id, changes, reason,
                    prev_hash, hash
             FROM audit_log WHERE chain = $1 AND seq >= $2 ORDER BY seq LIMIT $3"
        ).bind(&chain).bind(expected_seq).bind(BATCH).fetch_all(c).await)?;
        let done = (rows.len() as i64) < BATCH;
        for row in rows {
            let seq = row.seq;
            let id = row.id;
            let report = |first_break| VerifyReport {
                chain: chain.clone(),
                records,
                first_break: Some(first_break),
                head_hash: head.as_ref().map(|h| h.1.clone()),
            };
            if seq != expected_seq {
                return Ok(report(ChainBreak::Missing {
                    expected_seq,
                    found_seq: seq,
                }));
            }
            if row.prev_hash != prev_hash {
                return Ok(report(ChainBreak::Relinked {
                    seq,
                    id: id.to_string(),
                }));
            }
            let fields = HashedFields {
                id,
                chain: &chain,
                seq,
                tenant_id: row.tenant_id,
                occurred_at: row.occurred_at,
                actor_kind: &row.actor_kind,
                actor_id: row.actor_id,
                impersonator_id: row.impersonator_id,
                action: &row.action,
                target_type: row.target_type.as_deref(),
                target_id: row.target_id.as_deref(),
                outcome: &row.outcome,
                ip: row.ip.as_deref(),
                user_agent: row.user_agent.as_deref(),
                request_id: row.request_id.as_deref(),
                changes: row.changes.as_deref(),
                reason: row.reason.as_deref(),
            };
            if fields.hash(&prev_hash) != row.hash {
                return Ok(report(ChainBreak::Altered {
                    seq,
                    id: id.to_string(),
                }));
            }
            prev_hash = row.hash;
            expected_seq += 1;
            records += 1;
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
        _ => None,
    };
    Ok(VerifyReport {
        chain,
        records,
        first_break,
        head_hash: head.map(|h| h.1),
    })
}
