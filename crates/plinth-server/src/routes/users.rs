//! Platform administration of user accounts.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::UserId;
use serde::Serialize;

use crate::auth::Caller;
use crate::extract::{ApiPath, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionsRevoked {
    sessions_revoked: usize,
}

/// Ends every session of a user (super-admin or ops-admin).
#[utoipa::path(post, path = "/api/v1/users/{id}/sessions/revoke", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = SessionsRevoked),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Caller(admin): Caller,
    context: RequestContext,
    ApiPath(user): ApiPath<UserId>,
) -> Result<Json<SessionsRevoked>, Problem> {
    let sessions_revoked = state
        .identity
        .admin_revoke_sessions(&admin, user, &context.client())
        .await?;
    Ok(Json(SessionsRevoked { sessions_revoked }))
}

/// Lifts a lockout after repeated failed sign-ins (super-admin, ops-admin or support).
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Unlocked"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn unlock(
    State(state): State<AppState>,
    Caller(admin): Caller,
    context: RequestContext,
    ApiPath(user): ApiPath<UserId>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .admin_unlock(&admin, user, &context.client())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
