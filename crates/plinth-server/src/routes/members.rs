//! Members of a tenant.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::UserId;
use plinth_tenancy::{MemberFilter, MemberSort, MemberView};
use serde::{Deserialize, Serialize};

use crate::auth::InTenant;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::page_request;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MemberListQuery {
    /// Part of the e-mail address or name.
    q: Option<String>,
    role: Option<String>,
    /// `active` or `suspended`.
    status: Option<String>,
    /// `email`, `-email`, `joined_at` or `-joined_at`.
    #[param(value_type = Option<String>)]
    sort: Option<MemberSort>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberPage {
    items: Vec<MemberView>,
    next_cursor: Option<String>,
}

/// The tenant's members, sorted and filtered server-side, cursor-paginated.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/members", tag = "members", params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        MemberListQuery,
    ),
    responses((status = 200, body = MemberPage)))]
pub async fn list(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<MemberListQuery>,
) -> Result<Json<MemberPage>, Problem> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let filter = MemberFilter {
        query: query.q,
        role: query.role,
        status: query.status,
        sort: query.sort.unwrap_or_default(),
    };
    let result = state
        .tenancy
        .list_members(&ctx.scope, &filter, &page)
        .await?;
    Ok(Json(MemberPage {
        items: result.items,
        next_cursor: result.next_cursor,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    roles: Option<Vec<String>>,
    /// `active` or `suspended`.
    status: Option<String>,
}

/// Changes a member's roles or status. Granting a role needs every permission it carries.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/members/{user}", tag = "members", request_body = MemberUpdate,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id")),
    responses(
        (status = 200, body = MemberView),
        (status = 403, description = "Escalation refused", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The last owner", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, user)): ApiPath<(String, UserId)>,
    ApiJson(body): ApiJson<MemberUpdate>,
) -> Result<Json<MemberView>, Problem> {
    Ok(Json(
        state
            .tenancy
            .update_member(&ctx, user, body.roles, body.status)
            .await?,
    ))
}

/// Removes a member from the tenant (and its workspaces).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/members/{user}", tag = "members",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, user)): ApiPath<(String, UserId)>,
) -> Result<StatusCode, Problem> {
    state.tenancy.remove_member(&ctx, user).await?;
    Ok(StatusCode::NO_CONTENT)
}
