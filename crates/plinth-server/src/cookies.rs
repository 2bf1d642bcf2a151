//! The consoles' cookies: reading them from requests and the `Set-Cookie` values that
//! create and clear them. Both are HttpOnly and SameSite=Lax, and Secure behind TLS.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

/// The console session: its value is the session's secret.
pub const SESSION: &str = "plinth_session";
/// Before sign-in: a random value the sign-in forms' CSRF tokens are derived from, so a
/// foreign site cannot sign a visitor into an account of its choosing.
pub const PRE_SESSION: &str = "plinth_presession";
/// The console's theme in this browser (`light` or `dark`; none: the system's).
pub const THEME: &str = "plinth_theme";
/// The tenant the console works in, by slug; every page checks the membership again.
pub const TENANT: &str = "plinth_tenant";

/// The value of cookie `name`, if the request sent it (the first one when repeated).
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}

fn header_value(cookie: Cookie<'_>) -> HeaderValue {
    // Names are constants and values base64url, so this cannot fail; fall back to a
    // harmless empty cookie rather than panic if that ever changes.
    HeaderValue::from_str(&cookie.to_string())
        .unwrap_or(HeaderValue::from_static("plinth_invalid="))
}

/// A `Set-Cookie` value storing `value` under `name` for `max_age`.
pub fn set(
    name: &'static str,
    value: &str,
    path: &'static str,
    max_age: time::Duration,
    secure: bool,
) -> HeaderValue {
    header_value(
        Cookie::build((name, value.to_owned()))
            .path(path)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(max_age)
            .build(),
    )
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear(name: &'static str, path: &'static str, secure: bool) -> HeaderValue {
    set(name, "", path, time::Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; plinth_session=abc"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("plinth_session=later"),
        );
        assert_eq!(read(&headers, SESSION).as_deref(), Some("abc"));
        assert_eq!(read(&headers, PRE_SESSION), None);
    }

    #[test]
    fn session_cookies_are_http_only_lax_and_secure_behind_tls() {
        let value = set(SESSION, "s3cret", "/", time::Duration::hours(1), true);
        let text = value.to_str().unwrap();
        for part in [
            "plinth_session=s3cret",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        let plain = set(SESSION, "s3cret", "/", time::Duration::hours(1), false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert!(
            clear(SESSION, "/", false)
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }
}
