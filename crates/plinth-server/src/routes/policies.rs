//! Attribute policies: a tenant's Cedar documents, layered on its role matrix.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use plinth_core::Page;
use plinth_tenancy::{PolicyInput, PolicyValidation, PolicyView};
use serde::Deserialize;

use crate::auth::InTenant;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::PageQuery;
use crate::state::AppState;

/// The Cedar schema policies are validated against: entity types, the request context
/// and one action per tenant permission.
#[utoipa::path(get, path = "/api/v1/authz/policy-schema", tag = "access",
    responses((status = 200, description = "Cedar schema", content_type = "text/plain")))]
pub async fn schema() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        plinth_access::policy::schema_text(),
    )
}

/// The tenant's policy documents, by name.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = Page<PolicyView>)))]
pub async fn list(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<PolicyView>>, Problem> {
    Ok(Json(
        state
            .tenancy
            .policies(&ctx.scope, &query.request()?)
            .await?,
    ))
}

/// Saves a policy document; an invalid one is refused with Cedar's messages and never stored.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies", tag = "access", request_body = PolicyInput,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 201, body = PolicyView),
        (status = 422, description = "Invalid Cedar, or a name in use", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiJson(body): ApiJson<PolicyInput>,
) -> Result<(StatusCode, Json<PolicyView>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(state.tenancy.create_policy(&ctx, body).await?),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    source: String,
}

/// Validates a document without saving it, for editors that show errors as you type.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies/validate", tag = "access", request_body = ValidateRequest,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = PolicyValidation)))]
pub async fn validate(
    State(state): State<AppState>,
    InTenant(_ctx): InTenant,
    ApiJson(body): ApiJson<ValidateRequest>,
) -> Json<PolicyValidation> {
    Json(state.tenancy.validate_policy(&body.source))
}

/// One policy document.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies/{policy}", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("policy" = uuid::Uuid, Path, description = "Policy id")),
    responses((status = 200, body = PolicyView), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn get_one(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, id)): ApiPath<(String, uuid::Uuid)>,
) -> Result<Json<PolicyView>, Problem> {
    Ok(Json(state.tenancy.policy(&ctx.scope, id).await?))
}

/// Changes a policy document's name, description or source.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/policies/{policy}", tag = "access", request_body = PolicyInput,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("policy" = uuid::Uuid, Path, description = "Policy id")),
    responses((status = 200, body = PolicyView), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, id)): ApiPath<(String, uuid::Uuid)>,
    ApiJson(body): ApiJson<PolicyInput>,
) -> Result<Json<PolicyView>, Problem> {
    Ok(Json(state.tenancy.update_policy(&ctx, id, body).await?))
}

/// Deletes a policy document.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/policies/{policy}", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("policy" = uuid::Uuid, Path, description = "Policy id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, id)): ApiPath<(String, uuid::Uuid)>,
) -> Result<StatusCode, Problem> {
    state.tenancy.delete_policy(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
