//! Portals: public metadata, signing in through one, and their management.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::Page;
use plinth_tenancy::{Portal, PortalInput, PublicPortal};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, InTenant};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::PageQuery;
use crate::state::AppState;

/// A portal's public metadata: name, branding, navigation and sign-in options.
#[utoipa::path(get, path = "/api/v1/portals/{slug}", tag = "portals",
    params(("slug" = String, Path, description = "Portal slug")),
    responses((status = 200, body = PublicPortal), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn public(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<PublicPortal>, Problem> {
    Ok(Json(state.tenancy.public_portal(&slug).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnterPortal {
    portal: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PortalToken {
    /// Carries both the portal's tenant and the portal; refreshes keep them.
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

/// Enters a portal: the session is bound to the portal and its tenant.
#[utoipa::path(post, path = "/api/v1/me/portal", tag = "portals", request_body = EnterPortal,
    responses(
        (status = 200, body = PortalToken),
        (status = 403, description = "Your role may not use this portal", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn enter(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<EnterPortal>,
) -> Result<Json<PortalToken>, Problem> {
    let (tenant, portal) = state
        .tenancy
        .portal_for_sign_in(me.user, &body.portal, me.signed_in_with_mfa())
        .await?;
    let (access_token, expires_in) = state
        .identity
        .select_tenant(&me, tenant, Some(portal), &context.client())
        .await?;
    Ok(Json(PortalToken {
        access_token,
        token_type: "Bearer",
        expires_in,
    }))
}

/// The tenant's portals, by slug.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/portals", tag = "portals",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = Page<Portal>)))]
pub async fn list(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<Portal>>, Problem> {
    Ok(Json(
        state.tenancy.portals(&ctx.scope, &query.request()?).await?,
    ))
}

/// Creates a portal.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/portals", tag = "portals", request_body = PortalInput,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, body = Portal), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiJson(body): ApiJson<PortalInput>,
) -> Result<(StatusCode, Json<Portal>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(state.tenancy.create_portal(&ctx.scope, body).await?),
    ))
}

/// A portal of the tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/portals/{portal}", tag = "portals",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("portal" = String, Path, description = "Portal id or slug")),
    responses((status = 200, body = Portal), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, portal)): ApiPath<(String, String)>,
) -> Result<Json<Portal>, Problem> {
    Ok(Json(state.tenancy.portal(&ctx.scope, &portal).await?))
}

/// Changes a portal's name, navigation, roles or sign-up option.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/portals/{portal}", tag = "portals", request_body = PortalInput,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("portal" = String, Path, description = "Portal id or slug")),
    responses((status = 200, body = Portal), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, portal)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PortalInput>,
) -> Result<Json<Portal>, Problem> {
    Ok(Json(
        state
            .tenancy
            .update_portal(&ctx.scope, &portal, body)
            .await?,
    ))
}

/// Deletes a portal.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/portals/{portal}", tag = "portals",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("portal" = String, Path, description = "Portal id or slug")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, portal)): ApiPath<(String, String)>,
) -> Result<StatusCode, Problem> {
    state.tenancy.delete_portal(&ctx.scope, &portal).await?;
    Ok(StatusCode::NO_CONTENT)
}
