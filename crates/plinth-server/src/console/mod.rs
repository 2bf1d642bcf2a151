//! The consoles: server-rendered pages under `/console` that use the same sessions as
//! the API through an HttpOnly cookie. Every page works without JavaScript: forms post,
//! the server answers with a redirect or the page again with its errors.

pub mod account;
pub mod csrf;
pub mod platform;
pub mod prefs;
pub mod shell;
pub mod sign_in;
pub mod table;
pub mod tenant;
pub mod views;

pub use shell::Shell;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use plinth_identity::Principal;
use plinth_tenancy::{TenancyError, TenantContext};

use crate::auth::Caller;
use crate::cookies;
use crate::extract::RequestContext;
use crate::problem::{Problem, ProblemKind};
use crate::state::AppState;

/// Where the consoles live; page routes below it get the CSRF check.
pub const PREFIX: &str = "/console";
pub const SIGN_IN: &str = "/console/sign-in";

/// A signed-in request for a console page: who asks, from where, for which path.
pub struct Visit {
    pub me: Principal,
    pub headers: HeaderMap,
    pub context: RequestContext,
    pub path: String,
    /// The tenant of the path, as the route's guard already authorised it.
    pub tenant: Option<TenantContext>,
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Caller(me) = Caller::from_request_parts(parts, state).await?;
        let Ok(context) = RequestContext::from_request_parts(parts, state).await;
        Ok(Visit {
            me,
            headers: parts.headers.clone(),
            context,
            path: parts.uri.path().to_owned(),
            tenant: parts.extensions.get::<TenantContext>().cloned(),
        })
    }
}

impl Visit {
    /// The frame of this page, with `current` marked in the navigation.
    pub async fn shell(&self, state: &AppState, current: &'static str) -> Result<Shell, Problem> {
        Shell::new(state, self, current).await
    }

    /// The visitor's membership of `tenant` (id or slug), authorised as the API's guard
    /// does for a route needing `tenant:read`: the console's test of "may work here".
    pub async fn membership(
        &self,
        state: &AppState,
        tenant: &str,
    ) -> Result<TenantContext, TenancyError> {
        // A tenant page's guard has already authorised the visitor there; its answer
        // serves when it holds `tenant:read` (a custom role may lack it).
        if let Some(ctx) = self.tenant.as_ref().filter(|ctx| {
            (ctx.tenant_slug == tenant || ctx.scope.tenant().to_string() == tenant)
                && ctx.permissions.contains("tenant:read")
        }) {
            return Ok(ctx.clone());
        }
        state
            .tenancy
            .authorize(
                self.me.user,
                self.context.actor().with_user(self.me.user),
                tenant,
                "tenant:read",
                self.me.signed_in_with_mfa(),
            )
            .await
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

/// A refused form, shown above it: the reason, and each field's complaint.
pub struct FormError {
    pub status: StatusCode,
    pub message: String,
    pub fields: Vec<String>,
}

impl FormError {
    /// The refusal as the form shows it, or the problem back when it is not the user's
    /// to fix (the server failed): that one gets the error page.
    pub fn of(problem: impl Into<Problem>) -> Result<FormError, Problem> {
        let problem = problem.into();
        let status = problem.kind.status();
        if status.is_server_error() {
            return Err(problem);
        }
        let fields = problem
            .errors
            .as_ref()
            .map(|errors| errors.iter().map(|e| sentence(&e.detail)).collect())
            .unwrap_or_default();
        let message = if problem.kind == ProblemKind::ValidationFailed {
            "Please correct the following.".to_owned()
        } else {
            problem.detail
        };
        Ok(FormError {
            status,
            message,
            fields,
        })
    }

    pub fn new(status: StatusCode, message: impl Into<String>) -> FormError {
        FormError {
            status,
            message: message.into(),
            fields: Vec::new(),
        }
    }
}

/// An API message (`use 1 to 100 characters`) as a sentence on a page.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
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
