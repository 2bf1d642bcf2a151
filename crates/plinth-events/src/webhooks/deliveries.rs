//! Deliveries: one per event and endpoint that takes it, made when the dispatcher
//! publishes the event (in the transaction that marks it published, so each event is
//! fanned out exactly once), then attempted by the [`deliver`](super::deliver)er until
//! one attempt succeeds or the schedule runs out (the dead-letter queue, from which a
//! tenant replays).

use std::sync::Arc;

use plinth_core::{Page, PageRequest, TenantId, Timestamp};
use plinth_store::{Conn, StoreResult, Tx, exec, on};
use serde::Serialize;

use super::endpoints::{accepts, parse_filters};
use crate::list::EventView;

/// A delivery's state.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const DELIVERED: &str = "delivered";
    /// Every attempt of the schedule failed: the dead-letter queue.
    pub const DEAD: &str = "dead";
}

/// The type of the event "send test event" delivers.
pub const TEST_EVENT: &str = "webhook.test";

/// Rows of one multi-row insert (7 values each, well under SQLite's bound-value limit).
const INSERT_CHUNK: usize = 100;

/// Values bound in one statement at most, well under SQLite's limit (32,766).
pub(crate) const IN_CHUNK: usize = 900;

/// `$first, $first+1, …` (`count` of them).
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The JSON body of an event's delivery.
pub fn body_of(event: &EventView) -> String {
    serde_json::json!({
        "id": event.id,
        "type": event.event_type,
        "version": event.version,
        "timestamp": event.occurred_at.to_rfc3339(),
        "tenant_id": event.tenant_id,
        "subject": event.subject,
        "data": event.data.0,
    })
    .to_string()
}

struct NewDelivery {
    id: uuid::Uuid,
    tenant: uuid::Uuid,
    endpoint: uuid::Uuid,
    event_id: Option<uuid::Uuid>,
    event_type: String,
    body: String,
}

/// Makes the deliveries of `events` to the enabled endpoints of their tenants that take
/// them (events that happened since the endpoint was registered or last enabled, and not
/// about the endpoint itself); returns how many.
pub(crate) async fn fan_out(tx: &mut Tx, events: &[Arc<EventView>]) -> StoreResult<usize> {
    let mut tenants: Vec<uuid::Uuid> = events.iter().filter_map(|e| e.tenant_id).collect();
    tenants.sort_unstable();
    tenants.dedup();
    if tenants.is_empty() {
        return Ok(0);
    }
    let placeholders = (1..=tenants.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT id, tenant_id, event_types, listening_since FROM webhook_endpoints WHERE enabled AND tenant_id IN ({placeholders})"
    );
    let endpoints: Vec<(uuid::Uuid, uuid::Uuid, String, Timestamp)> = on!(tx.conn(), c => {
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
        for tenant in &tenants {
            query = query.bind(*tenant);
        }
        query.fetch_all(c).await
    })?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let endpoints: Vec<(uuid::Uuid, uuid::Uuid, Vec<String>, Timestamp)> = endpoints
        .into_iter()
        .map(|(id, tenant, filters, since)| (id, tenant, parse_filters(&filters), since))
        .collect();
    let mut deliveries = Vec::new();
    for event in events {
        let Some(tenant) = event.tenant_id else { continue };
        for (endpoint, _, filters, since) in endpoints.iter().filter(|(_, t, ..)| *t == tenant) {
            // An endpoint hears of what happens while it is enabled (an event committed
            // before it was registered or enabled again, and published since, is not news
            // to it: the dispatcher may run after the change), and not about itself (its
            // own registration, rotation or replay are its owner's doing).
            let about_itself = event.subject.as_deref() == Some(format!("webhook/{endpoint}").as_str());
            if event.occurred_at >= *since && accepts(filters, &event.event_type) && !about_itself {
                deliveries.push(NewDelivery {
                    id: uuid::Uuid::now_v7(),
                    tenant,
                    endpoint: *endpoint,
                    event_id: Some(event.id),
                    event_type: event.event_type.clone(),
                    body: body_of(event),
                });
            }
        }
    }
    insert(tx, &deliveries).await?;
    Ok(deliveries.len())
}

async fn insert(tx: &mut Tx, deliveries: &[NewDelivery]) -> StoreResult<()> {
    let now = Timestamp::now();
    for chunk in deliveries.chunks(INSERT_CHUNK) {
        let rows = (0..chunk.len())
            .map(|i| {
                let last = i * 7 + 7;
                format!("({}, 'pending', 0, 0, ${last}, ${last})", placeholders(i * 7 + 1, 6))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, body, status, attempts, round_attempts, next_attempt_at, created_at)
             VALUES {rows}"
        );
        exec!(tx.conn(), c => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for d in chunk {
                query = query.bind(d.id).bind(d.tenant).bind(d.endpoint).bind(d.event_id)
                    .bind(&d.event_type).bind(&d.body).bind(now);
            }
            query.execute(c).await
        })?;
    }
    Ok(())
}

/// Queues a test event for `endpoint`; returns the delivery's id.
pub async fn insert_test(tx: &mut Tx, tenant: TenantId, endpoint: uuid::Uuid) -> StoreResult<uuid::Uuid> {
    let now = Timestamp::now();
    let body = serde_json::json!({
        "id": uuid::Uuid::now_v7(),
        "type": TEST_EVENT,
        "version": 1,
        "timestamp": now.to_rfc3339(),
        "tenant_id": tenant,
        "subject": format!("webhook/{endpoint}"),
        "data": {"endpoint_id": endpoint, "message": "A test event, sent on request."},
    })
    .to_string();
    let delivery = NewDelivery {
        id: uuid::Uuid::now_v7(),
        tenant: tenant.0,
        endpoint,
        event_id: None,
        event_type: TEST_EVENT.to_owned(),
        body,
    };
    insert(tx, std::slice::from_ref(&delivery)).await?;
    Ok(delivery.id)
}

/// One attempt to deliver.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub attempt: i64,
    #[schema(value_type = String, format = DateTime)]
    pub attempted_at: Timestamp,
    pub duration_ms: i64,
    /// The HTTP status the endpoint answered; none when it did not answer.
    pub status_code: Option<i64>,
    /// Why there was no answer, or why the target was refused.
    pub error: Option<String>,
    /// The first bytes of the answer's body.
    pub response: String,
}

/// A delivery with its attempts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Sent as `webhook-id`, the same on every attempt.
    pub id: uuid::Uuid,
    pub endpoint_id: uuid::Uuid,
    /// The event delivered; none for a test event.
    pub event_id: Option<uuid::Uuid>,
    pub event_type: String,
    /// `pending`, `delivered` or `dead` (in the dead-letter queue).
    pub status: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    pub attempts: Vec<Attempt>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    delivery_id: uuid::Uuid,
    #[sqlx(flatten)]
    attempt: Attempt,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: uuid::Uuid,
    endpoint_id: uuid::Uuid,
    event_id: Option<uuid::Uuid>,
    event_type: String,
    status: String,
    next_attempt_at: Option<Timestamp>,
    created_at: Timestamp,
    finished_at: Option<Timestamp>,
}

/// Which deliveries a list shows.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// `pending`, `delivered` or `dead` (the dead-letter queue).
    pub status: Option<String>,
    /// Only the deliveries of this event.
    pub event_id: Option<uuid::Uuid>,
}

impl DeliveryFilter {
    /// Whether the filter names a known status.
    pub fn is_valid(&self) -> bool {
        self.status
            .as_deref()
            .is_none_or(|s| [status::PENDING, status::DELIVERED, status::DEAD].contains(&s))
    }
}

/// An endpoint's deliveries, newest first, each with its attempts.
pub async fn list(
    mut conn: Conn<'_>,
    tenant: TenantId,
    endpoint: uuid::Uuid,
    filter: &DeliveryFilter,
    before: uuid::Uuid,
    page: &PageRequest,
) -> StoreResult<Page<Delivery>> {
    let rows: Vec<DeliveryRow> = on!(conn.reborrow(), c => sqlx::query_as(
        "SELECT id, endpoint_id, event_id, event_type, status, next_attempt_at, created_at, finished_at
         FROM webhook_deliveries
         WHERE tenant_id = $1 AND endpoint_id = $2 AND id < $3
           AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR event_id = $5)
         ORDER BY id DESC LIMIT $6"
    ).bind(tenant).bind(endpoint).bind(before).bind(&filter.status).bind(filter.event_id)
    .bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
    let mut attempts: Vec<(uuid::Uuid, Attempt)> = Vec::new();
    if !rows.is_empty() {
        let placeholders = (2..rows.len() + 2)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT delivery_id, attempt, attempted_at, duration_ms, status_code, error, response
             FROM webhook_attempts WHERE tenant_id = $1 AND delivery_id IN ({placeholders}) ORDER BY attempted_at, attempt"
        );
        let found: Vec<AttemptRow> = on!(conn.reborrow(), c => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(tenant);
            for row in &rows {
                query = query.bind(row.id);
            }
            query.fetch_all(c).await
        })?;
        attempts = found.into_iter().map(|a| (a.delivery_id, a.attempt)).collect();
    }
    let deliveries = rows
        .into_iter()
        .map(|row| Delivery {
            attempts: attempts
                .iter()
                .filter(|(d, _)| *d == row.id)
                .map(|(_, a)| a.clone())
                .collect(),
            id: row.id,
            endpoint_id: row.endpoint_id,
            event_id: row.event_id,
            event_type: row.event_type,
            status: row.status,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            finished_at: row.finished_at,
        })
        .collect();
    Ok(Page::from_overfetch(deliveries, page.limit, |d| d.id.to_string()))
}

/// What to take out of the dead-letter queue.
#[derive(Debug, Clone, Copy)]
pub enum Replay {
    One(uuid::Uuid),
    /// Every dead delivery made at or after this time.
    Since(Timestamp),
}

/// Puts dead deliveries of `endpoint` back on the schedule, from its first step; returns
/// how many.
pub async fn replay(tx: &mut Tx, tenant: TenantId, endpoint: uuid::Uuid, which: Replay) -> StoreResult<u64> {
    let now = Timestamp::now();
    let (clause, bound) = match which {
        Replay::One(id) => ("id = $5", Bound::Id(id)),
        Replay::Since(since) => ("created_at >= $5", Bound::Time(since)),
    };
    let sql = format!(
        "UPDATE webhook_deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = $1, finished_at = NULL, leased_until = NULL
         WHERE tenant_id = $2 AND endpoint_id = $3 AND status = $4 AND {clause}"
    );
    Ok(exec!(tx.conn(), c => {
        let query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(now).bind(tenant).bind(endpoint).bind(status::DEAD);
        match bound {
            Bound::Id(id) => query.bind(id).execute(c).await,
            Bound::Time(t) => query.bind(t).execute(c).await,
        }
    })?)
}

enum Bound {
    Id(uuid::Uuid),
    Time(Timestamp),
}

/// Deletes finished deliveries (delivered or dead) older than `before`, with their
/// attempts, at most `batch` per statement; returns how many.
pub async fn prune_finished(db: &plinth_store::Db, before: Timestamp, batch: u32) -> StoreResult<u64> {
    crate::dispatch::delete_in_batches(
        db,
        "DELETE FROM webhook_deliveries WHERE id IN (
             SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND finished_at < $1 LIMIT $2)",
        before,
        batch,
    )
    .await
}

/// Deliveries due and not yet made, to enabled endpoints: how far the deliverers are behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub due: i64,
    /// When the longest-waiting of them became due.
    pub oldest: Option<Timestamp>,
}

/// Reads the backlog as of `now`.
pub async fn backlog(db: &plinth_store::Db, now: Timestamp) -> StoreResult<Backlog> {
    let mut conn = db.read().await?;
    let (due, oldest): (i64, Option<Timestamp>) = on!(conn.conn(), c => sqlx::query_as(
        "SELECT COUNT(*), MIN(d.next_attempt_at) FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.enabled"
    ).bind(now).fetch_one(c).await)?;
    Ok(Backlog { due, oldest })
}
