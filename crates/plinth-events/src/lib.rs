//! Events. A state change writes its event into the outbox table inside the same
//! transaction as the change and its audit record, so an acknowledged change always has
//! its event and a rolled-back one never does. The [`dispatch`]er publishes the outbox
//! afterwards.

pub mod catalog;
pub mod dispatch;
pub mod jetstream;
mod list;
pub mod stream;
pub mod webhooks;

use plinth_core::{Actor, EventId, TenantId, Timestamp};
use plinth_store::{StoreResult, Tx, exec};
use serde_json::Value;

pub use catalog::{Event, EventType};
pub use dispatch::{Bus, DispatchError, OutboxLag, Sink};
pub use jetstream::{JetStream, JetStreamConfig, Publisher};
pub use list::{EventView, list, matching_types};
pub use stream::{Live, StreamLimit, StreamPermit};

/// An event about to be recorded: a payload of the catalogue, with its tenant and subject.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: EventType,
    pub tenant: Option<TenantId>,
    /// What the event is about, e.g. `user/0190…`.
    pub subject: Option<String>,
    pub data: Value,
}

impl NewEvent {
    pub fn of<E: Event>(payload: &E) -> Self {
        Self {
            event_type: E::TYPE,
            tenant: None,
            subject: None,
            // A payload of plain fields always serialises.
            data: serde_json::to_value(payload).unwrap_or(Value::Null),
        }
    }

    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    pub fn subject(mut self, kind: &str, id: impl std::fmt::Display) -> Self {
        self.subject = Some(format!("{kind}/{id}"));
        self
    }
}

/// Writes `event` to the outbox inside `tx`.
pub async fn enqueue(tx: &mut Tx, actor: &Actor, event: NewEvent) -> StoreResult<EventId> {
    let id = EventId::new();
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO outbox (id, tenant_id, event_type, event_version, subject, data, actor_kind, actor_id, request_id, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    .bind(id)
    .bind(event.tenant)
    .bind(event.event_type.name)
    .bind(i64::from(event.event_type.version))
    .bind(&event.subject)
    .bind(sqlx::types::Json(&event.data))
    .bind(actor.kind.as_str())
    .bind(actor.id)
    .bind(&actor.request_id)
    .bind(Timestamp::now())
    .execute(c).await)?;
    tx.wrote_events();
    Ok(id)
}
