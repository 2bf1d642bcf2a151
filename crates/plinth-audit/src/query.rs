//! Reading the audit trail: one chain at a time, newest first, filtered, a page at a time.
//!
//! The SQL names only the filters given, so each query can use the index made for it
//! (migration 0010: chain with actor, action, target, request or time, each ending in
//! `seq`); the cursor is the last `seq` of the page.

use plinth_core::{AuditId, Page, PageRequest, TenantId, Timestamp};
use plinth_store::{Conn, StoreResult, on};
use serde::Serialize;

use crate::action::Action;
use crate::record::{Outcome, STORED_COLUMNS, StoredRecord};

/// Which records to read; every field narrows the answer.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<uuid::Uuid>,
    /// One action, or the actions of a prefix (see [`Action::matching`]).
    pub actions: Option<Vec<Action>>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Option<Outcome>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
    pub request_id: Option<String>,
}

/// One audit record as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    #[schema(value_type = String, format = Uuid)]
    pub id: AuditId,
    /// `platform`, or the tenant's id.
    pub chain: String,
    /// The record's number in its chain, from 1, without gaps.
    pub seq: i64,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<TenantId>,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: Timestamp,
    /// `user`, `api_key`, `system`, …
    pub actor_kind: String,
    pub actor_id: Option<uuid::Uuid>,
    /// The platform administrator acting as `actor_id`, when one was.
    pub impersonator_id: Option<uuid::Uuid>,
    #[schema(value_type = crate::action::Action)]
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// What changed (secrets redacted before they were recorded).
    pub changes: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<StoredRecord> for AuditRecord {
    fn from(r: StoredRecord) -> Self {
        AuditRecord {
            changes: r.changes.as_deref().and_then(|t| serde_json::from_str(t).ok()),
            id: r.id,
            chain: r.chain,
            seq: r.seq,
            tenant_id: r.tenant_id,
            occurred_at: r.occurred_at,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            impersonator_id: r.impersonator_id,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            outcome: r.outcome,
            ip: r.ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
            reason: r.reason,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// A value bound to one of the filter's placeholders.
pub(crate) enum Bind {
    Text(String),
    Uuid(uuid::Uuid),
    Int(i64),
}

/// The `WHERE` clause (without the keyword) for `chain` and `filter`, with its values in
/// placeholder order from `$1`.
pub(crate) fn conditions(chain: &str, filter: &AuditFilter) -> (String, Vec<Bind>) {
    let mut sql = String::from("chain = $1");
    let mut binds = vec![Bind::Text(chain.to_owned())];
    let mut add = |sql: &mut String, column: &str, op: &str, bind: Bind| {
        binds.push(bind);
        sql.push_str(&format!(" AND {column} {op} ${}", binds.len()));
        binds.len()
    };
    if let Some(actor) = filter.actor {
        add(&mut sql, "actor_id", "=", Bind::Uuid(actor));
    }
    if let Some(kind) = &filter.target_type {
        add(&mut sql, "target_type", "=", Bind::Text(kind.clone()));
    }
    if let Some(id) = &filter.target_id {
        add(&mut sql, "target_id", "=", Bind::Text(id.clone()));
    }
    if let Some(outcome) = filter.outcome {
        add(&mut sql, "outcome", "=", Bind::Text(outcome.as_str().to_owned()));
    }
    if let Some(request) = &filter.request_id {
        add(&mut sql, "request_id", "=", Bind::Text(request.clone()));
    }
    (sql, binds)
}

/// Record numbers from `from` (inclusive) to `before` (exclusive).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeqRange {
    pub from: i64,
    pub before: i64,
}

/// The records of `chain` inside the filter's time range, as a range of numbers, within
/// `within`. A chain's times never decrease with its numbers (see `append`), so each time
/// bound is the number of the first record at or after it: one probe of the time index.
/// Named as times instead, the bounds lead PostgreSQL to read the whole time range through
/// the time index and sort it (35 ms for a page at 200,000 records).
pub(crate) async fn seq_range(
    mut conn: Conn<'_>,
    chain: &str,
    filter: &AuditFilter,
    within: SeqRange,
) -> StoreResult<SeqRange> {
    let mut range = within;
    for (at, is_lower) in [(filter.since, true), (filter.until, false)] {
        let Some(at) = at else { continue };
        let first: Option<i64> = on!(conn.reborrow(), c => sqlx::query_scalar(
            "SELECT seq FROM audit_log WHERE chain = $1 AND occurred_at >= $2 ORDER BY occurred_at, seq LIMIT 1"
        ).bind(chain).bind(at).fetch_optional(c).await)?;
        let first = first.unwrap_or(i64::MAX);
        if is_lower {
            range.from = range.from.max(first);
        } else {
            range.before = range.before.min(first);
        }
    }
    Ok(range)
}

/// The `SELECT` of `columns` of `chain`'s records matching `filter` with numbers in
/// `seqs`, in `order` of seq, at most `limit` (the time filters are already in `seqs`). Several actions (a prefix filter) become one
/// index range each, merged, rather than an `IN` list that PostgreSQL answers by sorting
/// every match (149 ms for a page of `member.*` at 1,000,000 records).
pub(crate) fn select(
    chain: &str,
    filter: &AuditFilter,
    columns: &str,
    seqs: SeqRange,
    order: &str,
    limit: i64,
) -> (String, Vec<Bind>) {
    let (base, mut binds) = conditions(chain, filter);
    binds.push(Bind::Int(seqs.from));
    let from_n = binds.len();
    binds.push(Bind::Int(seqs.before));
    let before_n = binds.len();
    binds.push(Bind::Int(limit));
    let limit_n = binds.len();
    let one = |action: Option<usize>| {
        let action = action.map(|n| format!(" AND action = ${n}")).unwrap_or_default();
        format!(
            "SELECT {columns} FROM audit_log WHERE {base}{action} AND seq >= ${from_n} AND seq < ${before_n} \
             ORDER BY seq {order} LIMIT ${limit_n}"
        )
    };
    let Some(actions) = &filter.actions else {
        return (one(None), binds);
    };
    let mut parts = Vec::with_capacity(actions.len());
    for action in actions {
        binds.push(Bind::Text(action.name().to_owned()));
        parts.push(format!(
            "SELECT * FROM ({}) AS a{}",
            one(Some(binds.len())),
            binds.len()
        ));
    }
    let sql = match parts.as_slice() {
        [only] => only.clone(),
        _ => format!(
            "SELECT * FROM ({}) AS u ORDER BY seq {order} LIMIT ${limit_n}",
            parts.join(" UNION ALL ")
        ),
    };
    (sql, binds)
}

/// Binds `binds` in order to a query of either backend.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                crate::query::Bind::Text(v) => query.bind(v.as_str()),
                crate::query::Bind::Uuid(v) => query.bind(*v),
                crate::query::Bind::Int(v) => query.bind(*v),
            };
        }
        query
    }};
}
pub(crate) use bind_all;

/// A page of `chain`'s records matching `filter`, newest first.
pub async fn list(
    mut conn: Conn<'_>,
    chain: &str,
    filter: &AuditFilter,
    page: &PageRequest,
) -> StoreResult<Page<AuditRecord>> {
    let before = match page.after.as_deref() {
        None => i64::MAX,
        // A cursor this list did not make reads as the first page would not: nothing.
        Some(text) => text.parse::<i64>().unwrap_or(0),
    };
    let seqs = seq_range(conn.reborrow(), chain, filter, SeqRange { from: 0, before }).await?;
    let (sql, binds) = select(chain, filter, STORED_COLUMNS, seqs, "DESC", i64::from(page.limit) + 1);
    let rows: Vec<StoredRecord> = on!(conn, c => bind_all!(
        sqlx::query_as::<_, StoredRecord>(sqlx::AssertSqlSafe(sql.clone())), &binds
    ).fetch_all(c).await)?;
    let records = rows.into_iter().map(AuditRecord::from).collect();
    Ok(Page::from_overfetch(records, page.limit, |r| r.seq.to_string()))
}

/// [`list`] on a platform read connection: for platform administrators, who may read
/// any chain (tenant code reads through its scope instead).
pub async fn list_as_platform(
    db: &plinth_store::Db,
    chain: &str,
    filter: &AuditFilter,
    page: &PageRequest,
) -> StoreResult<Page<AuditRecord>> {
    let mut conn = db.read().await?;
    list(conn.conn(), chain, filter, page).await
}

/// [`export_stream`](crate::export_stream) on platform read connections, one per batch:
/// for platform administrators and the CLI.
pub fn export_as_platform(
    db: &plinth_store::Db,
    chain: String,
    filter: AuditFilter,
    format: crate::ExportFormat,
) -> impl futures_util::Stream<Item = StoreResult<Vec<u8>>> + Send + 'static {
    let db = db.clone();
    let open = move || {
        let db = db.clone();
        async move { db.read().await }
    };
    crate::export_stream(open, chain, filter, format)
}
