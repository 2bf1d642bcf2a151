//! The setup page: a plain form that works without JavaScript.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plinth_core::FieldErrors;
use plinth_identity::{IdentityError, NewSuperAdmin, SetupVia};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::extract::{ApiForm, ApiQuery, RequestContext};
use crate::problem::Problem;
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
struct SetupPage {
    token: String,
    email: String,
    display_name: String,
    errors: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "setup_invalid.html")]
struct InvalidLinkPage;

#[derive(Template, WebTemplate)]
#[template(path = "setup_done.html")]
struct DonePage {
    email: String,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn form(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TokenQuery>,
) -> Result<Response, Problem> {
    if query.token.is_empty() || !state.setup.token_is_valid(&query.token).await? {
        return Ok((StatusCode::BAD_REQUEST, InvalidLinkPage).into_response());
    }
    Ok(SetupPage {
        token: query.token,
        email: String::new(),
        display_name: String::new(),
        errors: Vec::new(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    email: String,
    #[serde(default)]
    display_name: String,
    password: SecretString,
    password_confirm: SecretString,
}

pub async fn submit(
    State(state): State<AppState>,
    context: RequestContext,
    ApiForm(form): ApiForm<SetupForm>,
) -> Result<Response, Problem> {
    let redisplay = |errors: Vec<String>| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            SetupPage {
                token: form.token.clone(),
                email: form.email.clone(),
                display_name: form.display_name.clone(),
                errors,
            },
        )
            .into_response()
    };
    if form.password.expose_secret() != form.password_confirm.expose_secret() {
        return Ok(redisplay(vec!["The two passwords differ.".into()]));
    }
    let result = state
        .setup
        .create_super_admin(
            &context.actor(),
            NewSuperAdmin {
                email: form.email.clone(),
                password: form.password.clone(),
                display_name: Some(form.display_name.clone()),
            },
            SetupVia::Token(&form.token),
        )
        .await;
    match result {
        Ok(user) => Ok(DonePage { email: user.email }.into_response()),
        Err(IdentityError::Validation(errors)) => Ok(redisplay(messages(&errors))),
        Err(IdentityError::EmailTaken) => Ok(redisplay(vec![
            "An account with this e-mail address exists.".into(),
        ])),
        Err(IdentityError::InvalidToken) => {
            Ok((StatusCode::BAD_REQUEST, InvalidLinkPage).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn messages(errors: &FieldErrors) -> Vec<String> {
    errors
        .iter()
        .map(|e| {
            let field = e.pointer.trim_start_matches('/').replace('_', " ");
            format!("{field}: {}", e.detail)
        })
        .collect()
}
