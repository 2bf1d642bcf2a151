//! The event catalogue: every kind of event Plinth publishes, with the schema of its payload.

use axum::Json;
use plinth_events::EventType;

/// Every event type, by name, with the version of its payload, what it means and the
/// payload's schema in this document's components.
#[utoipa::path(get, path = "/api/v1/events/types", tag = "events",
    responses((status = 200, body = Vec<EventType>)))]
pub async fn types() -> Json<&'static [EventType]> {
    Json(plinth_events::catalog::ALL)
}
