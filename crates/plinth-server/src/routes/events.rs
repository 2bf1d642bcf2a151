//! The event catalogue (every kind of event Plinth publishes, with the schema of its
//! payload), a tenant's recent events, and the live stream of them.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use plinth_events::stream::Next;

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
    let types = type_filter(query.event_type.as_deref())?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    Ok(Json(
        state
            .tenancy
            .events(&ctx.scope, types.as_deref(), &page)
            .await?,
    ))
}

/// The event types a `type` filter names (all when absent).
fn type_filter(filter: Option<&str>) -> Result<Option<Vec<&'static str>>, Problem> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    plinth_events::matching_types(filter)
        .map(Some)
        .ok_or_else(|| {
            Problem::validation(FieldErrors::single(
                "type",
                "invalid_value",
                "not an event type of the catalogue, nor a prefix of one ending in .*",
            ))
        })
}

const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// The tenant (id or slug); the one the token was issued for when absent.
    #[expect(
        dead_code,
        reason = "the guard reads it to authorise the caller in that tenant"
    )]
    tenant: Option<String>,
    /// An event type of the catalogue, or a prefix ending in `.*` (`member.*`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
}

/// The tenant's events as they happen, as Server-Sent Events: each has the event's
/// number as its `id`, its type as `event` and the event (as the list shows it) as JSON
/// `data`. A client reconnecting with `Last-Event-ID` first receives what it missed,
/// within the outbox's retention. A comment line every 15 s keeps idle connections
/// open. A client that falls too far behind receives `event: overflow` and the stream
/// ends; it reconnects with the last id it got. One tenant may have a limited number of
/// streams open per server (429 beyond).
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    params(StreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event number")),
    responses(
        (status = 200, description = "An endless `text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 429, description = "The tenant has as many streams open as allowed", body = crate::problem::ProblemDocument),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    let types = type_filter(query.event_type.as_deref())?;
    let after = last_event_id(&headers)?;
    let (live, permit) = crate::live::open(&state, &ctx, types, after).await?;
    let shutdown = Box::pin(state.shutdown_started());
    let events = futures_util::stream::unfold(Some((live, permit, shutdown)), |open| async move {
        let (mut live, permit, mut shutdown) = open?;
        let next = tokio::select! {
            next = live.next() => next,
            () = &mut shutdown => Next::Closed,
        };
        match next {
            Next::Event(event) => {
                let frame = SseEvent::default()
                    .id(event.seq.to_string())
                    .event(event.event_type.as_str())
                    .json_data(&*event)
                    .unwrap_or_else(|_| SseEvent::default().comment("unserialisable event"));
                Some((Ok(frame), Some((live, permit, shutdown))))
            }
            Next::Overflow => Some((
                Ok(SseEvent::default()
                    .event("overflow")
                    .data("fell behind; reconnect with the last id received")),
                None,
            )),
            Next::Closed => None,
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// The `Last-Event-ID` a reconnecting client sends: an event number.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, Problem> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|seq| *seq >= 0)
        .map(Some)
        .ok_or_else(|| {
            Problem::validation(FieldErrors::single(
                "Last-Event-ID",
                "invalid_value",
                "not an event number from this stream",
            ))
        })
}
