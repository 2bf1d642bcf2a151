use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_identity::SignUp;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::extract::{ApiJson, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Always `accepted`: what happens next arrives by e-mail.
    status: &'static str,
}

fn accepted() -> (StatusCode, Json<Accepted>) {
    (StatusCode::ACCEPTED, Json(Accepted { status: "accepted" }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    display_name: Option<String>,
}

/// Creates an account and e-mails a verification link. The answer is the same whether
/// or not the address already has an account (its owner is told by e-mail).
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth",
    request_body = SignUpRequest,
    responses(
        (status = 202, description = "Check your e-mail", body = Accepted),
        (status = 403, description = "Sign-up is disabled", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid e-mail address or password", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-ups from this address", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<SignUpRequest>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    state
        .identity
        .sign_up(
            SignUp {
                email: body.email,
                password: body.password,
                display_name: body.display_name,
            },
            &context.client(),
        )
        .await?;
    Ok(accepted())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    token: String,
}

/// Confirms an e-mail address with the link's token.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 204, description = "Verified"),
        (status = 400, description = "Invalid, expired or used link", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .verify_email(&body.token, &context.client())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a new verification link to the signed-in user (three an hour).
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "auth",
    responses(
        (status = 202, description = "Sent", body = Accepted),
        (status = 429, description = "Too many requests", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn resend_verification(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    state
        .identity
        .resend_verification(&me, &context.client())
        .await?;
    Ok(accepted())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    email: String,
}

/// Sends a password-reset link if the address has an account. The answer and its timing
/// are the same either way.
#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "If the account exists, a link is on its way", body = Accepted),
        (status = 429, description = "Too many requests", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn forgot_password(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<ForgotPasswordRequest>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    state
        .identity
        .forgot_password(&body.email, &context.client())
        .await?;
    Ok(accepted())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    token: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// Sets a new password with a reset link's token and signs out every session.
#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "auth",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password changed"),
        (status = 400, description = "Invalid, expired or used link", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "The password breaks the policy", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .reset_password(&body.token, body.password, &context.client())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
