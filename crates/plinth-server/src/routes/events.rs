//! The event catalogue (every kind of event Plinth publishes, with the schema of its
//! payload) and a tenant's recent events.

use axum::Json;
use axum::extract::State;
use plinth_core::{FieldErrors, Page};
use plinth_events::{EventType, EventView};
use serde::Deserialize;

use crate::auth::InTenant;
use crate::extract::ApiQuery;
use crate::problem::Problem;
use crate::routes::paging::page_request;
use crate::state::AppState;

/// Every event type, by name, with the version of its payload, what it means and the
/// payload's schema in this document's components.
#[utoipa::path(get, path = "/api/v1/events/types", tag = "events",
    responses((status = 200, body = Vec<EventType>)))]
pub async fn types() -> Json<&'static [EventType]> {
    Json(plinth_events::catalog::ALL)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// An event type of the catalogue (`GET /api/v1/events/types`), or a prefix ending in
    /// `.*` (`member.*`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// Items per page: 1 to 200 (larger values give 200), 50 when absent.
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The tenant's recent events, newest first, as integrations receive them: for seeing what
/// was published and when.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/events", tag = "events",
    params(("tenant" = String, Path, description = "Tenant id or slug"), EventsQuery),
    responses((status = 200, body = Page<EventView>)))]
pub async fn list(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<Page<EventView>>, Problem> {
    let types = match query.event_type.as_deref() {
        None => None,
        Some(filter) => Some(plinth_events::matching_types(filter).ok_or_else(|| {
            Problem::validation(FieldErrors::single(
                "type",
                "invalid_value",
                "not an event type of the catalogue, nor a prefix of one ending in .*",
            ))
        })?),
    };
    let page = page_request(query.limit, query.cursor.as_deref())?;
    Ok(Json(
        state
            .tenancy
            .events(&ctx.scope, types.as_deref(), &page)
            .await?,
    ))
}
