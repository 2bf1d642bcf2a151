//! Feature flags: set per platform, tenant or portal; read resolved.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::Page;
use plinth_tenancy::{Flag, FlagInput};
use serde::Deserialize;

use crate::auth::{Caller, InTenant};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::PageQuery;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResolveQuery {
    /// Resolve for this portal of the tenant too.
    portal: Option<String>,
}

/// The flags that apply to the tenant (and a portal), each the most specific level's value.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/flags", tag = "flags",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ResolveQuery),
    responses((status = 200, body = BTreeMap<String, Flag>)))]
pub async fn resolved(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<ResolveQuery>,
) -> Result<Json<BTreeMap<String, Flag>>, Problem> {
    Ok(Json(
        state
            .tenancy
            .resolve_flags(Some(&ctx.scope), query.portal.as_deref())
            .await?,
    ))
}

/// The flags that apply to the caller: those of the session's tenant and portal.
#[utoipa::path(get, path = "/api/v1/me/flags", tag = "flags", responses((status = 200, body = BTreeMap<String, Flag>)))]
pub async fn mine(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
) -> Result<Json<BTreeMap<String, Flag>>, Problem> {
    let actor = context.actor().with_user(me.user);
    Ok(Json(
        state
            .tenancy
            .flags_for(
                me.user,
                actor,
                me.tenant,
                me.portal.as_deref(),
                me.signed_in_with_mfa(),
            )
            .await?,
    ))
}

/// Sets a flag for the tenant.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/flags/{key}", tag = "flags", request_body = FlagInput,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("key" = String, Path, description = "Flag key")),
    responses((status = 200, body = Flag), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn set_tenant(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, key)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<FlagInput>,
) -> Result<Json<Flag>, Problem> {
    Ok(Json(
        state
            .tenancy
            .set_tenant_flag(&ctx.scope, &key, body)
            .await?,
    ))
}

/// Removes the tenant's own value of a flag (the platform's applies again).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/flags/{key}", tag = "flags",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("key" = String, Path, description = "Flag key")),
    responses((status = 204, description = "Removed"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, key)): ApiPath<(String, String)>,
) -> Result<StatusCode, Problem> {
    state.tenancy.delete_tenant_flag(&ctx.scope, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a flag for one portal of the tenant.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/portals/{portal}/flags/{key}", tag = "flags", request_body = FlagInput,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("portal" = String, Path, description = "Portal id or slug"),
           ("key" = String, Path, description = "Flag key")),
    responses((status = 200, body = Flag), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn set_portal(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, portal, key)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<FlagInput>,
) -> Result<Json<Flag>, Problem> {
    Ok(Json(
        state
            .tenancy
            .set_portal_flag(&ctx.scope, &portal, &key, body)
            .await?,
    ))
}

/// Removes a portal's own value of a flag.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/portals/{portal}/flags/{key}", tag = "flags",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("portal" = String, Path, description = "Portal id or slug"),
           ("key" = String, Path, description = "Flag key")),
    responses((status = 204, description = "Removed"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn delete_portal(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, portal, key)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, Problem> {
    state
        .tenancy
        .delete_portal_flag(&ctx.scope, &portal, &key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Platform-wide flags (platform administrators).
#[utoipa::path(get, path = "/api/v1/platform/flags", tag = "flags", params(PageQuery),
    responses((status = 200, body = Page<Flag>)))]
pub async fn platform_list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<Flag>>, Problem> {
    Ok(Json(state.tenancy.platform_flags(&query.request()?).await?))
}

/// Sets a platform-wide flag (platform administrators).
#[utoipa::path(put, path = "/api/v1/platform/flags/{key}", tag = "flags", request_body = FlagInput,
    params(("key" = String, Path, description = "Flag key")),
    responses((status = 200, body = Flag), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn platform_set(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<FlagInput>,
) -> Result<Json<Flag>, Problem> {
    let actor = context.actor().with_user(me.user);
    Ok(Json(
        state.tenancy.set_platform_flag(&actor, &key, body).await?,
    ))
}

/// Removes a platform-wide flag (platform administrators).
#[utoipa::path(delete, path = "/api/v1/platform/flags/{key}", tag = "flags",
    params(("key" = String, Path, description = "Flag key")),
    responses((status = 204, description = "Removed"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn platform_delete(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, Problem> {
    let actor = context.actor().with_user(me.user);
    state.tenancy.delete_platform_flag(&actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
