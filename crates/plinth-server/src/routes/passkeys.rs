//! Passkeys (WebAuthn): adding them to an account, and signing in with them, either
//! as the second step after a password or on their own.
//!
//! Every ceremony has a begin (options for `navigator.credentials.create()` or
//! `.get()`) and a finish (the browser's answer, with the `challenge_id` of the begin).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_core::Page;
use plinth_identity::{
    PasskeyChallenge, PasskeyView, PublicKeyCredential, RegisterPublicKeyCredential,
    RegisteredPasskey, TokenPair,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiPath, ApiQuery, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::me::{ProofRequest, proof};
use crate::routes::paging::PageQuery;
use crate::state::AppState;

/// Starts adding a passkey to the caller's account; needs the password or a current
/// code, like every change to how the account signs in.
#[utoipa::path(post, path = "/api/v1/me/passkeys/register/begin", tag = "passkeys", request_body = ProofRequest,
    responses(
        (status = 200, body = PasskeyChallenge),
        (status = 400, description = "Wrong code or password", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "The account already holds 20 passkeys", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The server's public URL cannot host passkeys", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn begin_registration(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<ProofRequest>,
) -> Result<Json<PasskeyChallenge>, Problem> {
    Ok(Json(
        state
            .identity
            .begin_passkey_registration(&me, proof(body)?, &context.client())
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishRegistration {
    challenge_id: Uuid,
    /// A name to tell the passkey apart later, e.g. "Work laptop".
    name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, as JSON.
    #[schema(value_type = Object)]
    credential: Box<RegisterPublicKeyCredential>,
}

/// Stores the new passkey. The account's first second factor also returns recovery codes.
#[utoipa::path(post, path = "/api/v1/me/passkeys/register/finish", tag = "passkeys", request_body = FinishRegistration,
    responses(
        (status = 201, body = RegisteredPasskey),
        (status = 400, description = "The authenticator's answer was refused, or the challenge is unknown or used", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn finish_registration(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiJson(body): ApiJson<FinishRegistration>,
) -> Result<(StatusCode, Json<RegisteredPasskey>), Problem> {
    let registered = state
        .identity
        .finish_passkey_registration(
            &me,
            body.challenge_id,
            &body.name,
            &body.credential,
            &context.client(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

/// The caller's passkeys.
#[utoipa::path(get, path = "/api/v1/me/passkeys", tag = "passkeys", params(PageQuery),
    responses((status = 200, body = Page<PasskeyView>)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(me): Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<PasskeyView>>, Problem> {
    Ok(Json(
        state.identity.list_passkeys(&me, &query.request()?).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenamePasskey {
    name: String,
}

/// Renames one of the caller's passkeys.
#[utoipa::path(patch, path = "/api/v1/me/passkeys/{id}", tag = "passkeys", request_body = RenamePasskey,
    params(("id" = Uuid, Path, description = "Passkey id")),
    responses(
        (status = 200, body = PasskeyView),
        (status = 404, description = "No such passkey of yours", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn rename(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RenamePasskey>,
) -> Result<Json<PasskeyView>, Problem> {
    Ok(Json(
        state
            .identity
            .rename_passkey(&me, id, &body.name, &context.client())
            .await?,
    ))
}

/// Removes one of the caller's passkeys.
#[utoipa::path(delete, path = "/api/v1/me/passkeys/{id}", tag = "passkeys",
    params(("id" = Uuid, Path, description = "Passkey id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such passkey of yours", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    Caller(me): Caller,
    context: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, Problem> {
    state
        .identity
        .remove_passkey(&me, id, &context.client())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeginSecondFactor {
    /// The `mfa_token` of the login answer.
    mfa_token: String,
}

/// The second step of a sign-in, with one of the account's passkeys.
#[utoipa::path(post, path = "/api/v1/auth/mfa/passkey/begin", tag = "auth", request_body = BeginSecondFactor,
    responses(
        (status = 200, body = PasskeyChallenge),
        (status = 400, description = "Unknown or expired MFA challenge", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn begin_second_factor(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BeginSecondFactor>,
) -> Result<Json<PasskeyChallenge>, Problem> {
    Ok(Json(
        state
            .identity
            .begin_passkey_second_factor(&body.mfa_token)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishSecondFactor {
    mfa_token: String,
    challenge_id: Uuid,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as JSON.
    #[schema(value_type = Object)]
    credential: Box<PublicKeyCredential>,
}

/// Completes a sign-in with a passkey as the second factor.
#[utoipa::path(post, path = "/api/v1/auth/mfa/passkey/finish", tag = "auth", request_body = FinishSecondFactor,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 400, description = "The passkey's answer was refused, or the challenge is unknown or used", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn finish_second_factor(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<FinishSecondFactor>,
) -> Result<Json<TokenPair>, Problem> {
    Ok(Json(
        state
            .identity
            .finish_passkey_second_factor(
                &body.mfa_token,
                body.challenge_id,
                &body.credential,
                &context.client(),
            )
            .await?,
    ))
}

/// Starts a passwordless sign-in; the authenticator offers the accounts it holds.
#[utoipa::path(post, path = "/api/v1/auth/passkey/begin", tag = "auth",
    responses(
        (status = 200, body = PasskeyChallenge),
        (status = 429, description = "Too many attempts", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn begin_sign_in(
    State(state): State<AppState>,
    context: RequestContext,
) -> Result<Json<PasskeyChallenge>, Problem> {
    Ok(Json(
        state
            .identity
            .begin_passkey_sign_in(&context.client())
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishSignIn {
    challenge_id: Uuid,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as JSON.
    #[schema(value_type = Object)]
    credential: Box<PublicKeyCredential>,
}

/// Finishes a passwordless sign-in. A verified passkey counts as two factors.
#[utoipa::path(post, path = "/api/v1/auth/passkey/finish", tag = "auth", request_body = FinishSignIn,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 400, description = "The passkey's answer was refused, or the challenge is unknown or used", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "The account cannot sign in now", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn finish_sign_in(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<FinishSignIn>,
) -> Result<Json<TokenPair>, Problem> {
    Ok(Json(
        state
            .identity
            .finish_passkey_sign_in(body.challenge_id, &body.credential, &context.client())
            .await?,
    ))
}
