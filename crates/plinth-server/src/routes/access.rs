//! Access control: the permission catalog, tenant roles and the role matrix, and the
//! permission checks products built on Plinth call.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_access::ResourceFacts;
use plinth_access::{CATALOG, PermissionDef};
use plinth_core::{Page, TenantId, UserId};
use plinth_tenancy::{Decision, MatrixUpdate, RequestFacts, RoleInput, RoleMatrix, RoleView};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, InTenant};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::problem::{Problem, ProblemDocument, ProblemKind};
use crate::routes::paging::PageQuery;
use crate::state::AppState;

/// Every permission Plinth knows.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "access", responses((status = 200, body = Vec<PermissionDef>)))]
pub async fn catalog() -> Json<&'static [PermissionDef]> {
    Json(CATALOG)
}

/// The tenant's roles with their permissions: built-in ones first, then custom ones by key.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/roles", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = Page<RoleView>)))]
pub async fn roles(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<RoleView>>, Problem> {
    Ok(Json(
        state
            .tenancy
            .roles_page(&ctx.scope, &query.request()?)
            .await?,
    ))
}

/// Creates a custom role from permissions the caller holds.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/roles", tag = "access", request_body = RoleInput,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 201, body = RoleView),
        (status = 403, description = "A permission you do not hold", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn create_role(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiJson(body): ApiJson<RoleInput>,
) -> Result<(StatusCode, Json<RoleView>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(state.tenancy.create_role(&ctx, body).await?),
    ))
}

/// Changes a custom role.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/roles/{role}", tag = "access", request_body = RoleInput,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("role" = String, Path, description = "Role key")),
    responses((status = 200, body = RoleView), (status = 403, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn update_role(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, role)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RoleInput>,
) -> Result<Json<RoleView>, Problem> {
    Ok(Json(state.tenancy.update_role(&ctx, &role, body).await?))
}

/// Deletes a custom role that no member holds.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/roles/{role}", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("role" = String, Path, description = "Role key")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Still held", body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn delete_role(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, role)): ApiPath<(String, String)>,
) -> Result<StatusCode, Problem> {
    state.tenancy.delete_role(&ctx, &role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The role matrix: every tenant permission against every role, with its version.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/roles/matrix", tag = "access",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = RoleMatrix)))]
pub async fn matrix(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
) -> Result<Json<RoleMatrix>, Problem> {
    Ok(Json(state.tenancy.role_matrix(&ctx.scope).await?))
}

/// Updates custom roles' permissions in one request; 409 when the matrix changed since
/// the version given.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/roles/matrix", tag = "access", request_body = MatrixUpdate,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 200, body = RoleMatrix),
        (status = 409, description = "Stale version", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn update_matrix(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiJson(body): ApiJson<MatrixUpdate>,
) -> Result<Json<RoleMatrix>, Problem> {
    Ok(Json(state.tenancy.update_matrix(&ctx, body).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckResource {
    /// Tenant id or slug.
    tenant: String,
    /// The kind of object acted on (e.g. `document`), for policies; the tenant when absent.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// The object's id, for policies.
    id: Option<String>,
    /// The user who owns the object, for policies (`resource.owner`).
    owner: Option<UserId>,
    /// The workspace the object belongs to, for policies (`resource.workspace`).
    workspace: Option<uuid::Uuid>,
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckContext {
    /// The end user's address (`context.ip`); the request's own when checking yourself.
    #[schema(value_type = Option<String>)]
    ip: Option<std::net::IpAddr>,
    /// Whether the end user signed in with a second factor (`context.mfa`); the
    /// caller's session when checking yourself.
    mfa: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The user to check; the caller when absent. Checking someone else needs
    /// `members:read` in the tenant.
    subject: Option<UserId>,
    /// A permission of the catalog, e.g. `members:invite`.
    action: String,
    resource: CheckResource,
    /// Facts the tenant's attribute policies may use.
    context: Option<CheckContext>,
}

const MAX_RESOURCE_FIELD: usize = 200;

async fn decide(
    state: &AppState,
    me: &plinth_identity::Principal,
    context: &RequestContext,
    check: &CheckRequest,
) -> Result<Decision, Problem> {
    let subject = check.subject.unwrap_or(me.user);
    let mfa_used = me.signed_in_with_mfa();
    if subject != me.user {
        state
            .tenancy
            .authorize(
                me.user,
                context.actor().with_user(me.user),
                &check.resource.tenant,
                "members:read",
                mfa_used,
            )
            .await?;
    }
    let resource = &check.resource;
    for (field, value) in [("type", &resource.kind), ("id", &resource.id)] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_RESOURCE_FIELD) {
            return Err(Problem::validation(plinth_core::FieldErrors::single(
                &format!("/resource/{field}"),
                "too_long",
                format!("at most {MAX_RESOURCE_FIELD} bytes"),
            )));
        }
    }
    let owner = resource.owner.map(|o| o.to_string());
    let workspace = resource.workspace.map(|w| w.to_string());
    let given = check.context.as_ref();
    let itself = subject == me.user;
    let facts = RequestFacts {
        resource: ResourceFacts {
            kind: resource.kind.as_deref().unwrap_or_default(),
            id: resource.id.as_deref().unwrap_or_default(),
            owner: owner.as_deref(),
            workspace: workspace.as_deref(),
        },
        mfa: given.and_then(|c| c.mfa).unwrap_or(itself && mfa_used),
        ip: given.and_then(|c| c.ip).or_else(|| {
            context
                .ip
                .as_deref()
                .filter(|_| itself)
                .and_then(|ip| ip.parse().ok())
        }),
    };
    Ok(state
        .tenancy
        .check(subject, &resource.tenant, &check.action, &facts)
        .await?)
}

/// Whether a user may do something in a tenant, and why.
#[utoipa::path(post, path = "/api/v1/authz/check", tag = "access", request_body = CheckRequest,
    responses((status = 200, body = Decision), (status = 404, description = "A tenant you may not inspect", body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn check(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<CheckRequest>,
) -> Result<Json<Decision>, Problem> {
    Ok(Json(decide(&state, &me, &context, &body).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCheckRequest {
    /// Up to 100 checks.
    checks: Vec<CheckRequest>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchCheckResponse {
    /// In the order of the checks.
    results: Vec<Decision>,
}

/// Up to 100 checks in one request.
#[utoipa::path(post, path = "/api/v1/authz/check/batch", tag = "access", request_body = BatchCheckRequest,
    responses((status = 200, body = BatchCheckResponse),
        (status = 404, description = "A tenant you may not inspect (checking another user)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn check_batch(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<BatchCheckRequest>,
) -> Result<Json<BatchCheckResponse>, Problem> {
    if body.checks.is_empty() || body.checks.len() > 100 {
        return Err(Problem::validation(plinth_core::FieldErrors::single(
            "checks",
            "invalid_value",
            "give 1 to 100 checks",
        )));
    }
    let mut results = Vec::with_capacity(body.checks.len());
    for check in &body.checks {
        results.push(decide(&state, &me, &context, check).await?);
    }
    Ok(Json(BatchCheckResponse { results }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PermissionsQuery {
    /// Tenant id or slug; the session's tenant when absent.
    tenant: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MyPermissions {
    tenant_id: TenantId,
    roles: Vec<String>,
    permissions: Vec<&'static str>,
}

/// The caller's roles and permissions in a tenant, for showing only what they may use.
#[utoipa::path(get, path = "/api/v1/me/permissions", tag = "access", params(PermissionsQuery),
    responses((status = 200, body = MyPermissions), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn mine(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiQuery(query): ApiQuery<PermissionsQuery>,
) -> Result<Json<MyPermissions>, Problem> {
    let tenant = query
        .tenant
        .or_else(|| me.tenant.map(|t| t.to_string()))
        .ok_or_else(|| {
            Problem::new(
                ProblemKind::MalformedRequest,
                "name a tenant with ?tenant= or select one first",
            )
        })?;
    let mfa_used = me.signed_in_with_mfa();
    let ctx = state
        .tenancy
        .authorize(
            me.user,
            context.actor().with_user(me.user),
            &tenant,
            "tenant:read",
            mfa_used,
        )
        .await?;
    Ok(Json(MyPermissions {
        tenant_id: ctx.scope.tenant(),
        roles: ctx.roles,
        permissions: ctx.permissions.keys(),
    }))
}
