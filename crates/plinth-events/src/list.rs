//! Reading a tenant's recent events, newest first: what an integrator looks at to see
//! what Plinth published.

use plinth_core::{Page, PageRequest, TenantId, Timestamp};
use plinth_store::{Conn, StoreResult, on};
use serde::{Deserialize, Serialize};

use crate::catalog::ALL;

/// The outbox columns an [`EventView`] is read from.
pub(crate) const COLUMNS: &str = "seq, id, tenant_id, event_type, event_version, subject, data, actor_kind, actor_id, request_id, occurred_at, published_at";

/// An event as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EventView {
    /// The event's number in the outbox: later events have larger ones.
    pub seq: i64,
    /// Its id: subscribers drop a second delivery of the same id.
    pub id: uuid::Uuid,
    /// The tenant it happened in (none: a platform event).
    pub tenant_id: Option<uuid::Uuid>,
    #[sqlx(rename = "event_type")]
    #[serde(rename = "type")]
    pub event_type: String,
    #[sqlx(rename = "event_version")]
    pub version: i64,
    /// What it is about, e.g. `user/0190…`.
    pub subject: Option<String>,
    /// The payload, shaped as the type's schema says.
    #[schema(value_type = Object)]
    pub data: sqlx::types::Json<serde_json::Value>,
    pub actor_kind: String,
    pub actor_id: Option<uuid::Uuid>,
    pub request_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: Timestamp,
    /// When it was published (none yet: still in the outbox).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<Timestamp>,
}

/// The event types a filter names: an exact name, or every name under a prefix ending in
/// `.*` (`member.*`). `None` when the catalogue has no such type.
pub fn matching_types(filter: &str) -> Option<Vec<&'static str>> {
    let types = plinth_core::catalogue::matching(ALL, |t| t.name, filter)?;
    Some(types.into_iter().map(|t| t.name).collect())
}

/// A page of `tenant`'s events of `types` (all when `None`), newest first.
pub async fn list(
    conn: Conn<'_>,
    tenant: TenantId,
    types: Option<&[&'static str]>,
    page: &PageRequest,
) -> StoreResult<Page<EventView>> {
    let before = match page.after.as_deref() {
        None => i64::MAX,
        // A cursor this list did not make reads as nothing.
        Some(text) => text.parse::<i64>().unwrap_or(0),
    };
    let type_filter = match types {
        // Names from the catalogue only: safe to inline.
        Some(names) => format!(
            " AND event_type IN ({})",
            names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
        ),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM outbox WHERE tenant_id = $1 AND seq < $2{type_filter} ORDER BY seq DESC LIMIT $3"
    );
    let rows: Vec<EventView> = on!(conn, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant).bind(before).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
    Ok(Page::from_overfetch(rows, page.limit, |e| e.seq.to_string()))
}
