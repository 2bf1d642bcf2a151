//! Invitations: managed by tenant administrators, accepted by the invitee.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::{Page, TenantId};
use plinth_identity::User;
use plinth_tenancy::{Invitation, Inviter};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, InTenant};
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::PageQuery;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    email: String,
    /// `owner`, `admin`, `member` or `viewer`; at most your own permissions.
    role: String,
}

async fn inviter_name(state: &AppState, user: plinth_core::UserId) -> String {
    let mut name = "A colleague".to_owned();
    if let Ok(mut conn) = state.db.read().await
        && let Ok(Some(user)) = plinth_identity::Users::find(conn.conn(), user).await
    {
        name = user.display_name;
    }
    name
}

/// Invites an address with a role; the invitee gets a link valid 7 days.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/invitations", tag = "invitations", request_body = CreateInvitation,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 201, body = Invitation),
        (status = 403, description = "The role exceeds yours", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Already a member or already invited", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    Caller(me): Caller,
    ApiJson(body): ApiJson<CreateInvitation>,
) -> Result<(StatusCode, Json<Invitation>), Problem> {
    let name = inviter_name(&state, me.user).await;
    let inviter = Inviter {
        name: &name,
        base_url: &state.identity.config().base_url,
    };
    let invitation = state
        .tenancy
        .invite(&ctx, &body.email, &body.role, &inviter)
        .await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// Pending invitations, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/invitations", tag = "invitations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, body = Page<Invitation>)))]
pub async fn list(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<Invitation>>, Problem> {
    Ok(Json(
        state
            .tenancy
            .invitations(&ctx.scope, &query.request()?)
            .await?,
    ))
}

/// Revokes a pending invitation; its link stops working.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/invitations/{id}", tag = "invitations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path, description = "Invitation id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn revoke(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    ApiPath((_, id)): ApiPath<(String, uuid::Uuid)>,
) -> Result<StatusCode, Problem> {
    state.tenancy.revoke_invitation(&ctx.scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a fresh link, valid 7 more days; the previous link stops working.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/invitations/{id}/resend", tag = "invitations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path, description = "Invitation id")),
    responses((status = 200, body = Invitation), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
pub async fn resend(
    State(state): State<AppState>,
    InTenant(ctx): InTenant,
    Caller(me): Caller,
    ApiPath((_, id)): ApiPath<(String, uuid::Uuid)>,
) -> Result<Json<Invitation>, Problem> {
    let name = inviter_name(&state, me.user).await;
    let inviter = Inviter {
        name: &name,
        base_url: &state.identity.config().base_url,
    };
    Ok(Json(
        state
            .tenancy
            .resend_invitation(&ctx.scope, id, &inviter)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    token: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Joined {
    tenant_id: TenantId,
}

/// Accepts an invitation as the signed-in user (whose address it was sent to).
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "invitations", request_body = AcceptInvitation,
    responses(
        (status = 200, body = Joined),
        (status = 400, description = "Invalid, expired or revoked link", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Sent to another address", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn accept(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<AcceptInvitation>,
) -> Result<Json<Joined>, Problem> {
    let (user, _) = state.identity.me(&me).await?;
    let actor = context.actor().with_user(me.user);
    let tenant_id = state
        .tenancy
        .accept_invitation(&user, &body.token, &actor)
        .await?;
    Ok(Json(Joined { tenant_id }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptAsNewUser {
    token: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    display_name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JoinedAsNewUser {
    user: User,
    tenant_id: TenantId,
}

/// Accepts an invitation by creating an account for the invited address.
#[utoipa::path(post, path = "/api/v1/invitations/accept-new", tag = "invitations", request_body = AcceptAsNewUser,
    responses(
        (status = 201, body = JoinedAsNewUser),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The address has an account, or the invitation was accepted", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn accept_new(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<AcceptAsNewUser>,
) -> Result<(StatusCode, Json<JoinedAsNewUser>), Problem> {
    let (user, tenant_id) = state
        .tenancy
        .accept_invitation_as_new_user(
            state.identity.hasher(),
            &body.token,
            body.password,
            body.display_name.as_deref(),
            &context.actor(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(JoinedAsNewUser { user, tenant_id }),
    ))
}
