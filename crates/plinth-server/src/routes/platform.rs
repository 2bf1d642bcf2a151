//! Platform administration of tenants: suspension, reactivation, restoring deletions.

use axum::Json;
use axum::extract::State;
use plinth_core::TenantId;
use plinth_tenancy::Tenant;
use serde::Deserialize;

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiPath, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why; recorded in the audit trail.
    reason: String,
}

/// Suspends a tenant: its routes answer `tenant-suspended` until reactivated.
#[utoipa::path(post, path = "/api/v1/platform/tenants/{id}/suspend", tag = "tenants", request_body = Reason,
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, body = Tenant),
        (status = 409, description = "Not in a state that can be suspended", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn suspend(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiPath(id): ApiPath<TenantId>,
    ApiJson(body): ApiJson<Reason>,
) -> Result<Json<Tenant>, Problem> {
    let actor = context.actor().with_user(me.user);
    Ok(Json(state.tenancy.suspend(&actor, id, &body.reason).await?))
}

/// Reactivates a suspended or expired tenant.
#[utoipa::path(post, path = "/api/v1/platform/tenants/{id}/reactivate", tag = "tenants", request_body = Reason,
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, body = Tenant),
        (status = 409, description = "Not suspended or expired", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn reactivate(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiPath(id): ApiPath<TenantId>,
    ApiJson(body): ApiJson<Reason>,
) -> Result<Json<Tenant>, Problem> {
    let actor = context.actor().with_user(me.user);
    Ok(Json(
        state.tenancy.reactivate(&actor, id, &body.reason).await?,
    ))
}

/// Takes back a deletion request during the grace period.
#[utoipa::path(post, path = "/api/v1/platform/tenants/{id}/restore", tag = "tenants", request_body = Reason,
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, body = Tenant),
        (status = 409, description = "Not pending deletion", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn restore(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiPath(id): ApiPath<TenantId>,
    ApiJson(body): ApiJson<Reason>,
) -> Result<Json<Tenant>, Problem> {
    let actor = context.actor().with_user(me.user);
    Ok(Json(state.tenancy.restore(&actor, id, &body.reason).await?))
}
