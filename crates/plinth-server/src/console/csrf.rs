//! CSRF defence for console forms. SameSite=Lax already keeps the session cookie off
//! cross-site form posts in current browsers; the token is the second wall, and the
//! only one for browsers that ignore SameSite.
//!
//! A form's token is derived from the console cookie (the session's secret once signed
//! in, the pre-session value on the sign-in pages), so checking it needs no state.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use plinth_identity::{csrf_matches, csrf_token};

use crate::auth::CSRF_HEADER;
use crate::cookies;
use crate::problem::{Problem, ProblemKind};

/// Console forms are a handful of short fields.
const FORM_LIMIT: usize = 64 * 1024;

/// The name of the hidden field every console form carries.
pub const FIELD: &str = "csrf_token";

/// The CSRF token for forms rendered for this request: from the session cookie when
/// there is one, else from the pre-session cookie.
pub fn token_of(headers: &HeaderMap) -> Option<String> {
    cookies::read(headers, cookies::SESSION)
        .or_else(|| cookies::read(headers, cookies::PRE_SESSION))
        .map(|secret| csrf_token(&secret))
}

fn matches_a_cookie(headers: &HeaderMap, presented: &str) -> bool {
    [cookies::SESSION, cookies::PRE_SESSION]
        .into_iter()
        .filter_map(|name| cookies::read(headers, name))
        .any(|secret| csrf_matches(&secret, presented))
}

fn refused(detail: &str) -> Response {
    super::error_page(Problem::new(ProblemKind::CsrfFailed, detail))
}

/// Lets safe requests through; a change needs a token matching one of the console
/// cookies, in the `x-csrf-token` header or in the form's `csrf_token` field.
pub async fn check(request: Request, next: Next) -> Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    let headers = request.headers();
    if cookies::read(headers, cookies::SESSION).is_none()
        && cookies::read(headers, cookies::PRE_SESSION).is_none()
    {
        return refused(
            "Your browser did not send this site's cookie. Allow cookies for this site, reload the page and try again.",
        );
    }
    if let Some(presented) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        if matches_a_cookie(headers, presented) {
            return next.run(request).await;
        }
        return refused("The page's security token is wrong. Reload the page and try again.");
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return refused("This address takes a form from the console.");
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return super::error_page(Problem::new(
            ProblemKind::PayloadTooLarge,
            "The form is too large.",
        ));
    };
    let presented = url::form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == FIELD)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !matches_a_cookie(&parts.headers, &presented) {
        return refused(
            "This form has expired or did not come from this site. Reload the page and try again.",
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
