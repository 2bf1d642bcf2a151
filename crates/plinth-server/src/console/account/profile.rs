//! The profile (display name) and the password.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::Done;
use crate::console::{FormError, Shell, Visit, error_page, see_other};
use crate::extract::{ApiForm, ApiQuery};
use crate::problem::Problem;
use crate::state::AppState;

const PATH: &str = "/console/account/profile";

#[derive(Template, WebTemplate)]
#[template(path = "console/profile.html")]
struct ProfilePage {
    shell: Option<Shell>,
    done: Option<&'static str>,
    name_error: Option<FormError>,
    password_error: Option<FormError>,
}

impl ProfilePage {
    async fn render(state: &AppState, visit: &Visit, page: ProfilePage) -> Response {
        let status = page
            .name_error
            .as_ref()
            .or(page.password_error.as_ref())
            .map_or(StatusCode::OK, |e| e.status);
        match visit.shell(state, "profile").await {
            Ok(shell) => (
                status,
                ProfilePage {
                    shell: Some(shell),
                    ..page
                },
            )
                .into_response(),
            Err(problem) => error_page(problem),
        }
    }

    fn blank() -> ProfilePage {
        ProfilePage {
            shell: None,
            done: None,
            name_error: None,
            password_error: None,
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    visit: Visit,
    ApiQuery(done): ApiQuery<Done>,
) -> Response {
    let done = done.message(&[
        ("name", "Your name is saved."),
        (
            "password",
            "Your password is changed. Every other session of yours has ended.",
        ),
    ]);
    ProfilePage::render(
        &state,
        &visit,
        ProfilePage {
            done,
            ..ProfilePage::blank()
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct NameForm {
    display_name: String,
}

pub async fn save_name(
    State(state): State<AppState>,
    visit: Visit,
    ApiForm(form): ApiForm<NameForm>,
) -> Response {
    match state
        .identity
        .update_profile(&visit.me, &form.display_name, &visit.context.client())
        .await
    {
        Ok(_) => see_other(&format!("{PATH}?done=name")),
        Err(e) => match FormError::of(Problem::from(e)) {
            Ok(error) => {
                let page = ProfilePage {
                    name_error: Some(error),
                    ..ProfilePage::blank()
                };
                ProfilePage::render(&state, &visit, page).await
            }
            Err(problem) => error_page(problem),
        },
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: SecretString,
    new_password: SecretString,
    confirm_password: SecretString,
}

pub async fn change_password(
    State(state): State<AppState>,
    visit: Visit,
    ApiForm(form): ApiForm<PasswordForm>,
) -> Response {
    let refused = |error: FormError| ProfilePage {
        password_error: Some(error),
        ..ProfilePage::blank()
    };
    if form.new_password.expose_secret() != form.confirm_password.expose_secret() {
        let error = FormError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The new password and its confirmation differ.",
        );
        return ProfilePage::render(&state, &visit, refused(error)).await;
    }
    let result = state
        .identity
        .change_password(
            &visit.me,
            form.current_password,
            form.new_password,
            &visit.context.client(),
        )
        .await;
    let error = match result {
        Ok(()) => return see_other(&format!("{PATH}?done=password")),
        Err(e) => match FormError::of(Problem::from(e)) {
            Ok(error) => error,
            Err(problem) => return error_page(problem),
        },
    };
    ProfilePage::render(&state, &visit, refused(error)).await
}
