//! The consoles: server-rendered pages under `/console` that use the same sessions as
//! the API through an HttpOnly cookie. Every page works without JavaScript: forms post,
//! the server answers with a redirect or the page again with its errors.

pub mod account;
pub mod csrf;
pub mod sign_in;

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use plinth_identity::Principal;

use crate::cookies;
use crate::problem::{Problem, ProblemKind};
use crate::state::AppState;

/// Where the consoles live; page routes below it get the CSRF check.
pub const PREFIX: &str = "/console";
pub const SIGN_IN: &str = "/console/sign-in";

/// The frame around every signed-in page: who is signed in, the navigation, and the
/// CSRF token of the sign-out form.
pub struct Shell {
    pub name: String,
    pub email: String,
    pub csrf: String,
    /// The navigation entry of this page.
    pub current: &'static str,
}

impl Shell {
    pub async fn new(
        state: &AppState,
        principal: &Principal,
        headers: &HeaderMap,
        current: &'static str,
    ) -> Result<Shell, Problem> {
        let (user, _) = state.identity.me(principal).await?;
        Ok(Shell {
            name: user.display_name,
            email: user.email,
            csrf: csrf::token_of(headers).unwrap_or_default(),
            current,
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/refused.html")]
struct RefusedPage {
    shell: Option<Shell>,
    status: u16,
    title: &'static str,
    detail: String,
}

/// A refusal as a page: a missing or ended sign-in goes to the sign-in page and comes
/// back here afterwards; anything else is explained on an error page.
pub fn refusal(problem: Problem, uri: &Uri) -> Response {
    if problem.kind == ProblemKind::Unauthenticated {
        let back = uri.path_and_query().map_or(PREFIX, |p| p.as_str());
        let target = format!(
            "{SIGN_IN}?next={}",
            utf8_percent_encode(back, NON_ALPHANUMERIC)
        );
        return see_other(&target);
    }
    error_page(problem)
}

pub fn error_page(problem: Problem) -> Response {
    let status = problem.kind.status();
    let detail = if problem.kind == ProblemKind::Internal {
        "Something went wrong on our side. Try again in a moment.".to_owned()
    } else {
        problem.detail
    };
    (
        status,
        RefusedPage {
            shell: None,
            status: status.as_u16(),
            title: problem.kind.title(),
            detail,
        },
    )
        .into_response()
}

/// 303 See Other: after a form post, the browser fetches `location` with GET.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Where to go after signing in: only a path inside the consoles, never another site
/// (`//evil.example` and `/\evil.example` are host names to a browser).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if (next == PREFIX
                || next.starts_with("/console/")
                || next.starts_with("/console?"))
                && !next.contains('\\')
                && !next.chars().any(char::is_control) =>
        {
            next.to_owned()
        }
        _ => PREFIX.to_owned(),
    }
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(
    mut response: Response,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Response {
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The cookie that ends the console session in this browser.
pub fn clear_session(state: &AppState) -> HeaderValue {
    cookies::clear(cookies::SESSION, "/", state.config.behind_tls())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/console/account/sessions")),
            "/console/account/sessions"
        );
        assert_eq!(safe_next(Some("/console?tab=1")), "/console?tab=1");
        for hostile in [
            "https://evil.example/console",
            "//evil.example",
            "/console/\\evil.example",
            "/consolex",
            "/console/\r\nSet-Cookie: x=y",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/console", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/console");
    }
}
