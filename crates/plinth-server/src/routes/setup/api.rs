use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_identity::{NewSuperAdmin, SetupVia, User};
use secrecy::SecretString;
use serde::Deserialize;

use crate::extract::{ApiJson, RequestContext};
use crate::problem::{Problem, ProblemDocument};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSuperAdmin {
    /// The token of the setup link printed by `plinth serve`.
    token: String,
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    display_name: Option<String>,
}

/// Creates the first super-admin with the one-time setup token.
#[utoipa::path(post, path = "/api/v1/setup", tag = "setup",
    request_body = CreateSuperAdmin,
    responses(
        (status = 201, description = "The super-admin was created", body = User),
        (status = 400, description = "The token is invalid, expired or used, or the body is malformed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "An account with this e-mail address exists", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Invalid e-mail address or password", body = ProblemDocument, content_type = "application/problem+json"),
    ))]
pub async fn create_super_admin(
    State(state): State<AppState>,
    context: RequestContext,
    ApiJson(body): ApiJson<CreateSuperAdmin>,
) -> Result<(StatusCode, Json<User>), Problem> {
    let user = state
        .setup
        .create_super_admin(
            &context.actor(),
            NewSuperAdmin {
                email: body.email,
                password: body.password,
                display_name: body.display_name,
            },
            SetupVia::Token(&body.token),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}
