//! Workspaces of a tenant.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::Page;
use plinth_tenancy::Workspace;
use serde::Deserialize;

use crate::auth::InTenant;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::PageQuery;
use crate::state::AppState;

/// The tenant's workspaces, by slug.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/workspaces", tag = "workspaces",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = Page<Workspace>)))]
pub async fn list(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<Workspace>>, Problem> {
    Ok(Json(
        state
            .tenancy
            .list_workspaces(&ctx.scope, &query.request()?)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    slug: String,
    name: String,
}

/// Creates a workspace; its creator becomes its admin.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/workspaces", tag = "workspaces", request_body = CreateWorkspace,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 201, body = Workspace),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiJson(body): ApiJson<CreateWorkspace>,
) -> Result<(StatusCode, Json<Workspace>), Problem> {
    let workspace = state
        .tenancy
        .create_workspace(&ctx.scope, &body.slug, &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(workspace)))
}

/// A workspace, by id or slug.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/workspaces/{workspace}", tag = "workspaces",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("workspace" = String, Path, description = "Workspace id or slug")),
    responses(
        (status = 200, body = Workspace),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, workspace)): ApiPath<(String, String)>,
) -> Result<Json<Workspace>, Problem> {
    Ok(Json(
        state.tenancy.get_workspace(&ctx.scope, &workspace).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameWorkspace {
    name: String,
}

/// Renames a workspace.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/workspaces/{workspace}", tag = "workspaces", request_body = RenameWorkspace,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("workspace" = String, Path, description = "Workspace id or slug")),
    responses((status = 200, body = Workspace)))]
pub async fn update(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, workspace)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RenameWorkspace>,
) -> Result<Json<Workspace>, Problem> {
    Ok(Json(
        state
            .tenancy
            .rename_workspace(&ctx.scope, &workspace, &body.name)
            .await?,
    ))
}

/// Deletes a workspace (not the default one).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/workspaces/{workspace}", tag = "workspaces",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("workspace" = String, Path, description = "Workspace id or slug")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The default workspace", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, workspace)): ApiPath<(String, String)>,
) -> Result<StatusCode, Problem> {
    state
        .tenancy
        .delete_workspace(&ctx.scope, &workspace)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
