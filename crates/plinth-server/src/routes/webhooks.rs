//! Webhook endpoints of a tenant, their delivery logs and the dead-letter queue.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::Page;
use plinth_events::webhooks::{
    Delivery, DeliveryFilter, Endpoint, EndpointInput, EndpointWithSecret,
};
use plinth_tenancy::{ReplayRequest, Replayed, TestSent};
use serde::Deserialize;

use crate::auth::InTenant;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::{PageQuery, page_request};
use crate::state::AppState;

/// The tenant's webhook endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/webhooks", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = Page<Endpoint>)))]
pub async fn list(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<Endpoint>>, Problem> {
    Ok(Json(
        state.webhooks.list(&ctx.scope, &query.request()?).await?,
    ))
}

/// Registers an endpoint. The answer carries its signing secret, shown this once.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/webhooks", tag = "webhooks", request_body = EndpointInput,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 201, body = EndpointWithSecret),
        (status = 422, description = "Invalid, or the URL is not https or points at a non-public address", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiJson(body): ApiJson<EndpointInput>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(state.webhooks.create(&ctx.scope, body).await?),
    ))
}

/// An endpoint of the tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/webhooks/{webhook}", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("webhook" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = Endpoint), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, webhook)): ApiPath<(String, String)>,
) -> Result<Json<Endpoint>, Problem> {
    Ok(Json(state.webhooks.get(&ctx.scope, &webhook).await?))
}

/// Changes an endpoint's URL, description, event types or enabled state.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/webhooks/{webhook}", tag = "webhooks", request_body = EndpointInput,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("webhook" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = Endpoint),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, webhook)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<EndpointInput>,
) -> Result<Json<Endpoint>, Problem> {
    Ok(Json(
        state.webhooks.update(&ctx.scope, &webhook, body).await?,
    ))
}

/// Removes an endpoint, with its deliveries and their log.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/webhooks/{webhook}", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("webhook" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Removed"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, webhook)): ApiPath<(String, String)>,
) -> Result<StatusCode, Problem> {
    state.webhooks.delete(&ctx.scope, &webhook).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives the endpoint a new signing secret, shown this once; the previous one keeps
/// signing (a second signature in `webhook-signature`) for 24 hours.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/webhooks/{webhook}/rotate-secret", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("webhook" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = EndpointWithSecret), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, webhook)): ApiPath<(String, String)>,
) -> Result<Json<EndpointWithSecret>, Problem> {
    Ok(Json(
        state.webhooks.rotate_secret(&ctx.scope, &webhook).await?,
    ))
}

/// Sends the endpoint a `webhook.test` event, delivered (and retried) like any other.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/webhooks/{webhook}/test", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("webhook" = String, Path, description = "Endpoint id")),
    responses((status = 202, body = TestSent), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn send_test(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, webhook)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<TestSent>), Problem> {
    let sent = state.webhooks.send_test(&ctx.scope, &webhook).await?;
    state.webhooks_ready.notify_one();
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `pending`, `delivered` or `dead` (the dead-letter queue).
    status: Option<String>,
    /// Only the deliveries of this event.
    event_id: Option<uuid::Uuid>,
    /// Items per page: 1 to 200 (larger values give 200), 50 when absent.
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The endpoint's deliveries, newest first, each with every attempt (time, status,
/// duration, the first bytes of the answer); `?status=dead` is the dead-letter queue.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/webhooks/{webhook}/deliveries", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("webhook" = String, Path, description = "Endpoint id"), DeliveriesQuery),
    responses((status = 200, body = Page<Delivery>), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn deliveries(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, webhook)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Page<Delivery>>, Problem> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let filter = DeliveryFilter {
        status: query.status,
        event_id: query.event_id,
    };
    Ok(Json(
        state
            .webhooks
            .deliveries(&ctx.scope, &webhook, &filter, &page)
            .await?,
    ))
}

/// Takes dead deliveries out of the dead-letter queue: one (`delivery_id`) or every one
/// made since a time (`since`). Each is attempted again from the start of the schedule.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/webhooks/{webhook}/replay", tag = "webhooks", request_body = ReplayRequest,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("webhook" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = Replayed),
        (status = 404, description = "No such endpoint, or no such dead delivery", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn replay(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, webhook)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<Json<Replayed>, Problem> {
    let replayed = state.webhooks.replay(&ctx.scope, &webhook, body).await?;
    state.webhooks_ready.notify_one();
    Ok(Json(replayed))
}
