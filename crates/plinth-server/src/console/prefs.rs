//! Choices a browser keeps for the console: the tenant it works in and the theme; and
//! the selected tenant's colours as a stylesheet (the pages allow no inline styles).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use plinth_core::FieldErrors;
use serde::Deserialize;

use super::shell::Theme;
use super::{Visit, error_page, safe_next, see_other, with_cookies};
use crate::cookies;
use crate::extract::{ApiForm, ApiPath};
use crate::problem::Problem;
use crate::state::AppState;

/// A preference outlives sessions: a year, like most sites keep a theme.
const PREFERENCE_LIFETIME: time::Duration = time::Duration::days(365);

#[derive(Deserialize)]
pub struct ThemeForm {
    theme: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn theme(State(state): State<AppState>, ApiForm(form): ApiForm<ThemeForm>) -> Response {
    let Some(theme) = Theme::parse(&form.theme) else {
        return error_page(Problem::validation(FieldErrors::single(
            "theme",
            "invalid_value",
            "choose system, light or dark",
        )));
    };
    let secure = state.config.behind_tls();
    let cookie = match theme {
        Theme::System => cookies::clear(cookies::THEME, super::PREFIX, secure),
        chosen => cookies::set(
            cookies::THEME,
            chosen.as_str(),
            super::PREFIX,
            PREFERENCE_LIFETIME,
            secure,
        ),
    };
    with_cookies(see_other(&safe_next(form.next.as_deref())), [cookie])
}

#[derive(Deserialize)]
pub struct TenantForm {
    tenant: String,
    #[serde(default)]
    next: Option<String>,
}

/// Works in another tenant: only one the user is a member of (the shell checks again on
/// every page, so a membership ended later ends the selection too).
pub async fn tenant(
    State(state): State<AppState>,
    visit: Visit,
    ApiForm(form): ApiForm<TenantForm>,
) -> Response {
    let secure = state.config.behind_tls();
    let next = see_other(&safe_next(form.next.as_deref()));
    if form.tenant.is_empty() {
        return with_cookies(
            next,
            [cookies::clear(cookies::TENANT, super::PREFIX, secure)],
        );
    }
    match visit.membership(&state, &form.tenant).await {
        Ok(ctx) => with_cookies(
            next,
            [cookies::set(
                cookies::TENANT,
                &ctx.tenant_slug,
                super::PREFIX,
                PREFERENCE_LIFETIME,
                secure,
            )],
        ),
        Err(e) => error_page(e.into()),
    }
}

/// `/console/branding/<tenant>.css`: the tenant's colours, for its members.
pub async fn branding(
    State(state): State<AppState>,
    visit: Visit,
    ApiPath(file): ApiPath<String>,
) -> Result<Response, Problem> {
    let slug = file.strip_suffix(".css").ok_or_else(Problem::not_found)?;
    let ctx = visit.membership(&state, slug).await?;
    let branding = state.tenancy.tenant(&ctx.scope).await?.branding;
    // Colours were checked as `#rrggbb` when saved; a stray value is left out rather
    // than written into the stylesheet.
    let colour = |c: Option<String>| c.filter(|c| plinth_tenancy::is_hex_colour(c));
    let mut css = String::from(":root {");
    if let Some(primary) = colour(branding.primary_color) {
        css.push_str(&format!(" --brand: {primary};"));
    } else if let Some(accent) = colour(branding.accent_color) {
        css.push_str(&format!(" --brand: {accent};"));
    }
    css.push_str(" }\n");
    Ok((
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        css,
    )
        .into_response())
}
