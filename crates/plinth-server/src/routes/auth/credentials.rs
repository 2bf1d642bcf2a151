use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_identity::{Introspection, LoginOutcome, MfaChallenge, TokenPair};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::extract::{ApiJson, JsonOrForm, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    /// Signed in.
    Tokens(TokenPair),
    /// A second factor is needed: `status` is `mfa_required`.
    MfaRequired {
        status: &'static str,
        #[serde(flatten)]
        challenge: MfaChallenge,
    },
}

/// Signs in with e-mail and password. Accounts with a second factor get an MFA
/// challenge instead of tokens.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens, or an MFA challenge", body = LoginResponse),
        (status = 401, description = "Wrong e-mail or password, or the account cannot sign in now", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts; see Retry-After", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, Problem> {
    let outcome = state
        .identity
        .login(&body.email, body.password, &context.client())
        .await?;
    Ok(Json(match outcome {
        LoginOutcome::SignedIn(pair) => LoginResponse::Tokens(pair),
        LoginOutcome::MfaRequired(challenge) => LoginResponse::MfaRequired {
            status: "mfa_required",
            challenge,
        },
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaRequest {
    mfa_token: String,
    /// A 6-digit code from the authenticator app, or a recovery code.
    code: String,
}

/// Completes a sign-in with a second factor.
#[utoipa::path(post, path = "/api/v1/auth/mfa", tag = "auth",
    request_body = MfaRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 400, description = "Wrong or reused code, or an expired challenge", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn mfa(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<MfaRequest>,
) -> Result<Json<TokenPair>, Problem> {
    Ok(Json(
        state
            .identity
            .verify_mfa(&body.mfa_token, &body.code, &context.client())
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Exchanges a refresh token for a new token pair. Each refresh token works once; using
/// one twice ends its session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenPair),
        (status = 401, description = "Invalid, expired, revoked or reused", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, Problem> {
    Ok(Json(
        state
            .identity
            .refresh(&body.refresh_token, &context.client())
            .await?,
    ))
}

/// Ends the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out")))]
pub async fn logout(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
) -> Result<StatusCode, Problem> {
    state.identity.logout(&me, &context.client()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionsRevoked {
    sessions_revoked: usize,
}

/// Ends every session of the caller, this one included.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth",
    responses((status = 200, description = "Signed out everywhere", body = SessionsRevoked)))]
pub async fn logout_all(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
) -> Result<Json<SessionsRevoked>, Problem> {
    let sessions_revoked = state
        .identity
        .logout_everywhere(&me, &context.client())
        .await?;
    Ok(Json(SessionsRevoked { sessions_revoked }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    token: String,
    /// Accepted for RFC 7662 compatibility; the token's own shape decides.
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// Token introspection (RFC 7662) for services built on Plinth: whether an access or
/// refresh token is active, and its claims. Accepts JSON or a form body.
#[utoipa::path(post, path = "/api/v1/auth/introspect", tag = "auth",
    request_body(content = IntrospectRequest, content_type = "application/json"),
    responses((status = 200, description = "The token's state", body = Introspection)))]
pub async fn introspect(
    State(state): State<AppState>,
    Caller(_caller): Caller,
    JsonOrForm(body): JsonOrForm<IntrospectRequest>,
) -> Result<Json<Introspection>, Problem> {
    Ok(Json(state.identity.introspect(&body.token).await?))
}
