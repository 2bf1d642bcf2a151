//! The signed-in user's own account.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::{Page, SessionId};
use plinth_identity::{MfaStatus, PlatformRole, Proof, SessionView, TotpEnrolment, User};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::paging::PageQuery;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    user: User,
    platform_roles: Vec<PlatformRole>,
    /// Authentication methods of the current session.
    amr: Vec<String>,
    /// Why the account is limited to its own settings for now, if it is.
    restriction: Option<&'static str>,
}

/// The caller's account.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", responses((status = 200, body = Me)))]
pub async fn get(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Me>, Problem> {
    let (user, platform_roles) = state.identity.me(&me).await?;
    Ok(Json(Me {
        user,
        platform_roles,
        restriction: me.restriction(state.config.require_admin_mfa),
        amr: me.amr,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    display_name: String,
}

/// Changes the caller's display name.
#[utoipa::path(patch, path = "/api/v1/me", tag = "me", request_body = ProfileUpdate,
    responses(
        (status = 200, body = User),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<ProfileUpdate>,
) -> Result<Json<User>, Problem> {
    Ok(Json(
        state
            .identity
            .update_profile(&me, &body.display_name, &context.client())
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

/// Changes the caller's password; every other session ends.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "Wrong current password, or a new one that breaks the policy", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .change_password(
            &me,
            body.current_password,
            body.new_password,
            &context.client(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's active sessions, newest first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me", params(PageQuery),
    responses((status = 200, body = Page<SessionView>)))]
pub async fn sessions(
    State(state): State<AppState>,
    Caller(me): Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<SessionView>>, Problem> {
    Ok(Json(
        state.identity.my_sessions(&me, &query.request()?).await?,
    ))
}

/// Ends one of the caller's sessions.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "me",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "No such session of yours", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .revoke_my_session(&me, id, &context.client())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's second factors.
#[utoipa::path(get, path = "/api/v1/me/mfa", tag = "me", responses((status = 200, body = MfaStatus)))]
pub async fn mfa_status(
    State(state): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<MfaStatus>, Problem> {
    Ok(Json(state.identity.mfa_status(&me).await?))
}

/// Starts TOTP enrolment: returns the secret, its `otpauth://` URI and a QR code (SVG).
/// Needs the password (or a recovery code), like every change to how the account signs in.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp", tag = "me", request_body = ProofRequest,
    responses(
        (status = 200, body = TotpEnrolment),
        (status = 400, description = "Wrong code or password", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Already enabled", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn begin_totp(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<ProofRequest>,
) -> Result<Json<TotpEnrolment>, Problem> {
    Ok(Json(
        state
            .identity
            .begin_totp(&me, proof(body)?, &context.client())
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes, shown this once.
    recovery_codes: Vec<String>,
}

/// Confirms TOTP enrolment with a first code; returns the recovery codes.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", tag = "me", request_body = CodeRequest,
    responses(
        (status = 200, body = RecoveryCodes),
        (status = 400, description = "Wrong code", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<RecoveryCodes>, Problem> {
    let recovery_codes = state
        .identity
        .confirm_totp(&me, &body.code, &context.client())
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// A current TOTP code or a recovery code …
    code: Option<String>,
    /// … or the account's password.
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretString>,
}

pub(crate) fn proof(body: ProofRequest) -> Result<Proof, Problem> {
    match (body.code, body.password) {
        (Some(code), None) => Ok(Proof::Code(code)),
        (None, Some(password)) => Ok(Proof::Password(password)),
        _ => Err(Problem::validation(plinth_core::FieldErrors::single(
            "code",
            "required",
            "give either a current code or the password",
        ))),
    }
}

/// Turns TOTP off (and deletes the recovery codes); needs a current code or the password.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/disable", tag = "me", request_body = ProofRequest,
    responses(
        (status = 204, description = "Disabled"),
        (status = 400, description = "Wrong code or password", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn disable_totp(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<ProofRequest>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .disable_totp(&me, proof(body)?, &context.client())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the recovery codes; needs a current code or the password.
#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-codes", tag = "me", request_body = ProofRequest,
    responses(
        (status = 200, body = RecoveryCodes),
        (status = 400, description = "Wrong code or password", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<ProofRequest>,
) -> Result<Json<RecoveryCodes>, Problem> {
    let recovery_codes = state
        .identity
        .regenerate_recovery_codes(&me, proof(body)?, &context.client())
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}
