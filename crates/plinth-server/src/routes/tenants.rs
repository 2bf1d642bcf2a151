//! Tenants: creation, the lists a user and a platform administrator see, switching, and
//! reading and changing one tenant.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::{Page, UserId};
use plinth_tenancy::{
    Isolation, MyTenant, NewTenant, Tenant, TenantRequester, TenantStatus, TenantUpdate,
};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, InTenant};
use crate::extract::{ApiJson, ApiQuery, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::{PageQuery, page_request};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// DNS-safe: 3–63 lower-case letters, digits and hyphens.
    slug: String,
    name: String,
    /// Platform administrators may create a tenant for someone else; others own theirs.
    owner_user_id: Option<UserId>,
    /// `pool` (default) or `silo`.
    isolation: Option<Isolation>,
    /// Start as a trial of this many days; otherwise the tenant is active at once.
    trial_days: Option<i64>,
}

/// Creates a tenant with its owner and default workspace. Platform administrators may
/// always; other users only where self-service sign-up is enabled.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses(
        (status = 201, body = Tenant),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or taken slug, invalid name", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<Tenant>), Problem> {
    let requester = TenantRequester {
        user: me.user,
        platform_admin: me.platform_admin,
        self_service: state.config.signup_enabled,
    };
    let tenant = state
        .tenancy
        .request_tenant(
            &context.actor().with_user(me.user),
            requester,
            body.owner_user_id,
            NewTenant {
                slug: body.slug,
                name: body.name,
                owner: me.user,
                isolation: body.isolation.unwrap_or(Isolation::Pool),
                trial_days: body.trial_days,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantListQuery {
    status: Option<TenantStatus>,
    /// Part of the name or slug.
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantPage {
    items: Vec<Tenant>,
    next_cursor: Option<String>,
}

/// Every tenant, newest first (platform administrators).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(TenantListQuery),
    responses((status = 200, body = TenantPage)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TenantListQuery>,
) -> Result<Json<TenantPage>, Problem> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let Page { items, next_cursor } = state
        .tenancy
        .all_tenants(query.status, query.q.as_deref(), &page)
        .await?;
    Ok(Json(TenantPage { items, next_cursor }))
}

/// The tenants the caller belongs to, by slug.
#[utoipa::path(get, path = "/api/v1/me/tenants", tag = "tenants", params(PageQuery),
    responses((status = 200, body = Page<MyTenant>)))]
pub async fn mine(
    State(state): State<AppState>,
    Caller(me): Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<MyTenant>>, Problem> {
    Ok(Json(
        state.tenancy.my_tenants(me.user, &query.request()?).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectTenant {
    /// Tenant id or slug.
    tenant: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantToken {
    /// An access token carrying the selected tenant; refreshes keep it.
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    tenant: MyTenant,
}

/// Selects the tenant of the caller's session, in one request.
#[utoipa::path(post, path = "/api/v1/me/tenant", tag = "tenants", request_body = SelectTenant,
    responses(
        (status = 200, body = TenantToken),
        (status = 403, description = "The tenant is suspended or expired", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn select(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<SelectTenant>,
) -> Result<Json<TenantToken>, Problem> {
    let tenant = state
        .tenancy
        .selectable(me.user, &body.tenant, me.signed_in_with_mfa())
        .await?;
    let (access_token, expires_in) = state
        .identity
        .select_tenant(&me, tenant.id, None, &context.client())
        .await?;
    Ok(Json(TenantToken {
        access_token,
        token_type: "Bearer",
        expires_in,
        tenant,
    }))
}

/// The tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 200, body = Tenant),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
) -> Result<Json<Tenant>, Problem> {
    Ok(Json(state.tenancy.tenant(&ctx.scope).await?))
}

/// Changes the tenant's name, settings or branding.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}", tag = "tenants", request_body = TenantUpdate,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 200, body = Tenant),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiJson(body): ApiJson<TenantUpdate>,
) -> Result<Json<Tenant>, Problem> {
    Ok(Json(state.tenancy.update_tenant(&ctx, body).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// The tenant's slug, typed again to confirm.
    confirm: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeletionScheduled {
    status: &'static str,
    /// When the tenant's data will be purged; until then a platform operator can restore it.
    purge_after: plinth_core::Timestamp,
}

/// Requests the deletion of the tenant (owners). It disappears at once for its members
/// and is purged after the grace period.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug"), DeleteQuery),
    responses(
        (status = 202, body = DeletionScheduled),
        (status = 422, description = "The confirmation does not match the slug", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<(StatusCode, Json<DeletionScheduled>), Problem> {
    let grace = time::Duration::days(i64::from(state.config.tenant_deletion_grace_days));
    let purge_after = state
        .tenancy
        .request_deletion(&ctx, &query.confirm, grace)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(DeletionScheduled {
            status: "pending_deletion",
            purge_after,
        }),
    ))
}

/// Downloads the tenant's complete archive (owners): a tar of NDJSON files, one per
/// table, and a manifest with row counts and SHA-256 checksums. Accounts come without
/// credentials.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/export", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, description = "The archive", content_type = "application/x-tar")))]
pub async fn export(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
) -> Result<axum::response::Response, Problem> {
    use axum::response::IntoResponse;
    let archive = state.tenancy.export(&ctx.scope).await?;
    let date = plinth_core::Timestamp::now().to_rfc3339();
    let filename = format!("{}-{}.tar", ctx.tenant_slug, &date[..10]);
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/x-tar".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        archive,
    )
        .into_response())
}
