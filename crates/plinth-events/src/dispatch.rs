//! Publishing the outbox. A dispatcher claims unpublished events in commit order, hands
//! them to a [`Sink`] and marks them published only once the sink has taken them, all in
//! one transaction: a crash in between leaves the rows unpublished, and the next claim
//! publishes them again with the same ids (at least once; subscribers drop repeats by id).
//!
//! Order: every change appends its audit record before its event, and the append holds
//! the tenant's chain head until commit, so within a tenant outbox numbers follow commit
//! order and the unpublished rows are always the newest. Several processes on one
//! PostgreSQL database share the work: a claim takes a transaction-scoped advisory lock
//! per tenant, skipping (like `SKIP LOCKED`) tenants another dispatcher holds, then takes
//! those tenants' rows, so one tenant's events are published by one dispatcher at a time,
//! in order.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use plinth_core::Timestamp;
use plinth_store::{Conn, Db, StoreError, exec, on};

use crate::list::{COLUMNS, EventView};

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

/// What one claim did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Events published and marked.
    pub published: usize,
    /// Tenants with events waiting that another dispatcher was publishing at the time:
    /// left for a later claim.
    pub deferred: usize,
    /// Webhook deliveries made of the published events.
    pub deliveries: usize,
}

/// Claims, publishes and marks at most `batch` events.
pub async fn dispatch_batch(db: &Db, sink: &impl Sink, batch: u32) -> Result<Dispatched, DispatchError> {
    let mut tx = db.begin().await?;
    let limit = i64::from(batch.max(1));
    let (claimed, deferred): (Vec<EventView>, usize) = match tx.conn() {
        Conn::Postgres(c) => claim_on_postgres(c, limit).await?,
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
        return Ok(Dispatched {
            deferred,
            ..Dispatched::default()
        });
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
    // In the transaction that marks the events published: each is fanned out once.
    let deliveries = crate::webhooks::deliveries::fan_out(&mut tx, &events).await?;
    // Numbers from the database, not input: safe to inline.
    let seqs = events.iter().map(|e| e.seq.to_string()).collect::<Vec<_>>().join(",");
    exec!(tx.conn(), c => sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE outbox SET published_at = $1 WHERE seq IN ({seqs})"
    ))).bind(now).execute(c).await)?;
    tx.commit().await?;
    Ok(Dispatched {
        published: events.len(),
        deferred,
        deliveries,
    })
}

/// Claims on PostgreSQL, where other dispatchers may be claiming at the same time: the
/// tenants of the oldest unpublished events, then the advisory lock of each (skipping
/// those another dispatcher holds), then, in a statement whose snapshot is taken after
/// the locks, those tenants' oldest unpublished events (ADR 17). A tenant's events are
/// thus taken from its oldest unpublished one on, by one dispatcher at a time. Returns
/// the events and how many tenants were skipped as busy.
async fn claim_on_postgres(c: &mut sqlx::PgConnection, limit: i64) -> Result<(Vec<EventView>, usize), DispatchError> {
    // An index scan in `seq` order marks the entries of events published since the last
    // vacuum as dead as it passes them, so the next claim skips them; a bitmap scan (the
    // planner's choice when its statistics are stale) visits every one of them each time.
    sqlx::query("SET LOCAL enable_bitmapscan = off")
        .execute(&mut *c)
        .await?;
    // Lock key space 0x706c6e74 ("plnt") keeps clear of the migration lock.
    let candidates: Vec<(Option<uuid::Uuid>, bool)> = sqlx::query_as(
        "WITH tenants AS MATERIALIZED (
             SELECT DISTINCT tenant_id FROM (
                 SELECT tenant_id FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1) oldest)
         SELECT tenant_id, pg_try_advisory_xact_lock(1886154356, hashtext(coalesce(tenant_id::text, 'platform')))
         FROM tenants",
    )
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    let busy = candidates.iter().filter(|(_, locked)| !locked).count();
    let locked: std::collections::HashSet<Option<uuid::Uuid>> = candidates
        .into_iter()
        .filter_map(|(tenant, locked)| locked.then_some(tenant))
        .collect();
    if locked.is_empty() {
        return Ok((Vec::new(), busy));
    }
    // The same scan as above, now that the locks are held: rows of tenants this claim did
    // not lock (busy, or new since) are left alone. No row locks: the tenant's lock is
    // what makes a dispatcher the only one to touch its rows, and row locks taken on other
    // tenants' rows (`FOR UPDATE SKIP LOCKED`) would make their owner skip them and
    // publish out of order.
    let mut rows: Vec<EventView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.retain(|row| locked.contains(&row.tenant_id));
    Ok((rows, busy))
}

/// Publishes until the outbox is empty, then waits for the next commit that wrote events
/// (or `poll`, for events of other processes that stopped before publishing theirs);
/// returns when `stop` says so. Failures are logged and retried after `poll`.
/// `deliveries_ready` is told when webhook deliveries were made.
pub async fn run(
    db: Db,
    sink: impl Sink,
    batch: u32,
    poll: Duration,
    deliveries_ready: Arc<Notify>,
    stop: impl Fn() -> bool,
) {
    let committed = db.outbox_committed();
    while !stop() {
        let dispatched = dispatch_batch(&db, &sink, batch).await;
        if matches!(&dispatched, Ok(d) if d.deliveries > 0) {
            deliveries_ready.notify_one();
        }
        match dispatched {
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
/// how many. Unpublished events are never deleted. The oldest rows come first in `seq`
/// order, so each statement reads little more than what it deletes.
pub async fn prune_published(db: &Db, before: Timestamp, batch: u32) -> Result<u64, DispatchError> {
    Ok(delete_in_batches(
        db,
        "DELETE FROM outbox WHERE seq IN (
             SELECT seq FROM outbox WHERE published_at < $1 ORDER BY seq LIMIT $2)",
        before,
        batch,
    )
    .await?)
}

/// Runs `sql` (a `DELETE` of at most `$2` rows older than `$1`) in its own transaction
/// until it deletes fewer than `batch`; returns how many it deleted in all.
pub(crate) async fn delete_in_batches(
    db: &Db,
    sql: &'static str,
    before: Timestamp,
    batch: u32,
) -> Result<u64, StoreError> {
    let batch = batch.max(1);
    let mut total = 0;
    loop {
        let mut tx = db.begin().await?;
        let deleted = exec!(tx.conn(), c => sqlx::query(sql).bind(before).bind(i64::from(batch)).execute(c).await)?;
        tx.commit().await?;
        total += deleted;
        if deleted < u64::from(batch) {
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
}

impl Sink for Bus {
    async fn publish(&self, events: &[Arc<EventView>]) -> Result<(), DispatchError> {
        for event in events {
            self.send(event.clone());
        }
        Ok(())
    }
}
