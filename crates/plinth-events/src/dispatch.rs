//! Publishing the outbox. A dispatcher claims unpublished events in commit order, hands
//! them to a [`Sink`] and marks them published only once the sink has taken them, all in
//! one transaction: a crash in between leaves the rows unpublished, and the next claim
//! publishes them again with the same ids (at least once; subscribers drop repeats by id).
//!
//! Order: every change appends its audit record before its event, and the append holds
//! the tenant's chain head until commit, so within a tenant outbox numbers follow commit
//! order and the unpublished rows are always the newest. Several processes on one
//! PostgreSQL database share the work: a claim takes a transaction-scoped advisory lock
//! per tenant and skips the rows another dispatcher holds (`FOR UPDATE SKIP LOCKED`), so
//! one tenant's events are published by one dispatcher at a time, in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use plinth_core::Timestamp;
use plinth_store::{Conn, Db, StoreError, exec, on};

use crate::list::EventView;

/// How many events one claim publishes at most.
pub const DEFAULT_BATCH: u32 = 1000;

/// Where published events go.
pub trait Sink: Send + Sync {
    /// Takes `events` (in outbox order); returns once they are durably handed over.
    fn publish(&self, events: &[Arc<EventView>]) -> impl Future<Output = Result<(), DispatchError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("publishing events failed: {0}")]
    Publish(String),
}

impl From<sqlx::Error> for DispatchError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

const COLUMNS: &str = "seq, id, tenant_id, event_type, event_version, subject, data, actor_kind, actor_id, request_id, occurred_at, published_at";

/// What one claim did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Events published and marked.
    pub published: usize,
    /// Events claimed but left for a later claim, because an older event of their tenant
    /// was still held by another dispatcher.
    pub deferred: usize,
}

/// Claims, publishes and marks at most `batch` events.
pub async fn dispatch_batch(db: &Db, sink: &impl Sink, batch: u32) -> Result<Dispatched, DispatchError> {
    let mut tx = db.begin().await?;
    let limit = i64::from(batch.max(1));
    let (claimed, deferred): (Vec<EventView>, usize) = match tx.conn() {
        // Advisory lock key space 0x706c6e74 ("plnt") keeps clear of the migration lock.
        Conn::Postgres(c) => {
            let rows: Vec<EventView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM outbox
                 WHERE published_at IS NULL
                   AND pg_try_advisory_xact_lock(1886154356, hashtext(coalesce(tenant_id::text, 'platform')))
                 ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED"
            )))
            .bind(limit)
            .fetch_all(&mut *c)
            .await?;
            keep_tenant_prefixes(c, rows).await?
        }
        // One process per SQLite file; `BEGIN IMMEDIATE` already excludes other writers.
        Conn::Sqlite(c) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(c)
        .await
        .map(|rows| (rows, 0))?,
    };
    if claimed.is_empty() {
        tx.rollback().await?;
        return Ok(Dispatched { published: 0, deferred });
    }
    let now = Timestamp::now();
    let events: Vec<Arc<EventView>> = claimed
        .into_iter()
        .map(|mut e| {
            e.published_at = Some(now);
            Arc::new(e)
        })
        .collect();
    sink.publish(&events).await?;
    // Numbers from the database, not input: safe to inline.
    let seqs = events.iter().map(|e| e.seq.to_string()).collect::<Vec<_>>().join(",");
    exec!(tx.conn(), c => sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE outbox SET published_at = $1 WHERE seq IN ({seqs})"
    ))).bind(now).execute(c).await)?;
    tx.commit().await?;
    Ok(Dispatched {
        published: events.len(),
        deferred,
    })
}

/// Leaves out (and counts) the claimed rows of every tenant whose claim does not start at
/// that tenant's oldest unpublished event. A claim's scan skips a tenant whose
/// lock another dispatcher holds, and that dispatcher may commit and let go while the scan
/// is still running: the scan then takes the tenant's later rows past the ones it skipped,
/// and publishing those first would break the tenant's order. Now that this claim holds
/// the tenant's lock, a fresh statement sees where the tenant really starts.
async fn keep_tenant_prefixes(
    c: &mut sqlx::PgConnection,
    rows: Vec<EventView>,
) -> Result<(Vec<EventView>, usize), DispatchError> {
    let mut first_claimed: HashMap<Option<uuid::Uuid>, i64> = HashMap::new();
    for row in &rows {
        first_claimed.entry(row.tenant_id).or_insert(row.seq);
    }
    let tenants: Vec<uuid::Uuid> = first_claimed.keys().flatten().copied().collect();
    let mut oldest: HashMap<Option<uuid::Uuid>, i64> = sqlx::query_as::<_, (uuid::Uuid, Option<i64>)>(
        "SELECT t.id, (SELECT MIN(o.seq) FROM outbox o WHERE o.tenant_id = t.id AND o.published_at IS NULL)
         FROM unnest($1::uuid[]) AS t(id)",
    )
    .bind(&tenants)
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .filter_map(|(tenant, seq)| Some((Some(tenant), seq?)))
    .collect();
    if first_claimed.contains_key(&None) {
        let platform: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM outbox WHERE tenant_id IS NULL AND published_at IS NULL")
                .fetch_one(&mut *c)
                .await?;
        if let Some(seq) = platform {
            oldest.insert(None, seq);
        }
    }
    let claimed = rows.len();
    let kept: Vec<EventView> = rows
        .into_iter()
        .filter(|row| oldest.get(&row.tenant_id) == first_claimed.get(&row.tenant_id))
        .collect();
    let deferred = claimed - kept.len();
    Ok((kept, deferred))
}

/// Publishes until the outbox is empty, then waits for the next commit that wrote events
/// (or `poll`, for events of other processes that stopped before publishing theirs);
/// returns when `stop` says so. Failures are logged and retried after `poll`.
pub async fn run(db: Db, sink: impl Sink, batch: u32, poll: Duration, stop: impl Fn() -> bool) {
    let committed = db.outbox_committed();
    while !stop() {
        match dispatch_batch(&db, &sink, batch).await {
            Ok(d) if d.published as u64 >= u64::from(batch) => continue,
            // Another dispatcher is finishing an older part of these tenants' events.
            Ok(d) if d.deferred > 0 => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "publishing events"),
        }
        let _ = tokio::time::timeout(poll, committed.notified()).await;
    }
}

/// Deletes published events older than `before`, at most `batch` per statement; returns
/// how many. Unpublished events are never deleted.
pub async fn prune_published(db: &Db, before: Timestamp, batch: u32) -> Result<u64, DispatchError> {
    let mut total = 0;
    loop {
        let mut tx = db.begin().await?;
        let deleted = exec!(tx.conn(), c => sqlx::query(
            "DELETE FROM outbox WHERE seq IN (
                 SELECT seq FROM outbox WHERE published_at IS NOT NULL AND published_at < $1 ORDER BY published_at LIMIT $2)"
        ).bind(before).bind(i64::from(batch.max(1))).execute(c).await)?;
        tx.commit().await?;
        total += deleted;
        if deleted < u64::from(batch.max(1)) {
            return Ok(total);
        }
    }
}

/// How far publishing is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLag {
    /// Events committed and not yet published.
    pub unpublished: i64,
    /// When the oldest of them happened.
    pub oldest: Option<Timestamp>,
}

impl OutboxLag {
    /// Seconds the oldest unpublished event has waited at `now` (0 when there is none).
    pub fn seconds(&self, now: Timestamp) -> f64 {
        self.oldest.map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0))
    }
}

/// Reads the outbox's lag.
pub async fn lag(db: &Db) -> Result<OutboxLag, DispatchError> {
    let mut conn = db.read().await?;
    let (unpublished, oldest): (i64, Option<Timestamp>) = on!(conn.conn(), c => sqlx::query_as(
        "SELECT COUNT(*), MIN(occurred_at) FROM outbox WHERE published_at IS NULL"
    ).fetch_one(c).await)?;
    Ok(OutboxLag { unpublished, oldest })
}

/// The in-process bus: every subscriber of this process receives every published event.
/// A subscriber that falls more than the capacity behind is told it lagged (and the live
/// stream then ends with `overflow`) instead of the bus buffering without bound.
#[derive(Clone)]
pub struct Bus {
    sender: tokio::sync::broadcast::Sender<Arc<EventView>>,
}

impl Bus {
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: tokio::sync::broadcast::Sender::new(capacity.max(1)),
        }
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<EventView>> {
        self.sender.subscribe()
    }

    /// Hands `event` to every current subscriber.
    pub fn send(&self, event: Arc<EventView>) {
        // No subscriber is not an error: the event stays readable from the outbox.
        let _ = self.sender.send(event);
    }

    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }
}

impl Sink for Bus {
    async fn publish(&self, events: &[Arc<EventView>]) -> Result<(), DispatchError> {
        for event in events {
            self.send(event.clone());
        }
        Ok(())
    }
}
