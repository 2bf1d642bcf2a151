//! Request extractors whose every rejection is a problem document: malformed JSON is
//! 400, a value of the wrong type or an unknown field is 422 with a JSON Pointer to it,
//! a body that is not JSON is 415 and an oversized one 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use plinth_core::{Actor, FieldErrors};
use serde::de::DeserializeOwned;

use crate::problem::{Problem, ProblemKind};

/// A JSON request body.
pub struct ApiJson<T>(pub T);

fn is_json_content_type(value: Option<&header::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json_content_type(req.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::new(
                ProblemKind::UnsupportedMediaType,
                "send the request body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(unreadable_body)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A body that could not be read: too large (413) or cut off (400).
fn unreadable_body(rejection: axum::extract::rejection::BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            ProblemKind::PayloadTooLarge,
            "the request body exceeds the size limit",
        )
    } else {
        Problem::new(
            ProblemKind::MalformedRequest,
            "the request body could not be read",
        )
    }
}

/// Parses a JSON document, reporting where it went wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if has_escaped_nul(bytes)
        && let Ok(document) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(pointer) = nul_pointer(&document, String::new())
    {
        return Err(Problem::validation(FieldErrors::single(
            &pointer,
            "nul_character",
            "text may not contain the NUL character (\\u0000)",
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let inner = err.inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let pointer = json_pointer(err.path(), &inner.to_string());
                let detail = strip_position(&inner.to_string());
                Problem::validation(FieldErrors::single(
                    &pointer,
                    data_error_code(&detail),
                    detail,
                ))
            }
            _ => Problem::new(
                ProblemKind::MalformedRequest,
                format!("the request body is not valid JSON: {inner}"),
            ),
        }
    })?;
    deserializer.end().map_err(|e| {
        Problem::new(
            ProblemKind::MalformedRequest,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// Whether a JSON text escapes U+0000 (`\\u0000`) anywhere. Raw control characters are
/// invalid JSON, so the escape is the only way a NUL gets in; an escaped backslash
/// followed by `u0000` is not one.
fn has_escaped_nul(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// The JSON Pointer of the first string (value or member name) holding a NUL.
fn nul_pointer(value: &serde_json::Value, at: String) -> Option<String> {
    match value {
        serde_json::Value::String(text) => text.contains('\0').then_some(at),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_pointer(item, format!("{at}/{i}"))),
        serde_json::Value::Object(members) => members.iter().find_map(|(name, member)| {
            let here = format!("{at}/{}", escape_pointer(name));
            if name.contains('\0') {
                Some(here)
            } else {
                nul_pointer(member, here)
            }
        }),
        _ => None,
    }
}

fn data_error_code(detail: &str) -> &'static str {
    if detail.starts_with("unknown field") {
        "unknown_field"
    } else if detail.starts_with("missing field") {
        "required"
    } else if detail.starts_with("invalid type") {
        "invalid_type"
    } else {
        "invalid_value"
    }
}

/// serde_json appends " at line 1 column 12" to data errors; the pointer says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The JSON Pointer of the member a data error is about. For unknown and missing
/// fields serde reports the enclosing object, so the field named in the message is
/// appended.
fn json_pointer(path: &serde_path_to_error::Path, message: &str) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&escape_pointer(key)),
            Segment::Enum { variant } => pointer.push_str(&escape_pointer(variant)),
            Segment::Unknown => pointer.push('?'),
        }
    }
    if (message.starts_with("unknown field") || message.starts_with("missing field"))
        && let Some(name) = message.split('`').nth(1)
    {
        // serde's path already ends at the field for unknown fields in nested maps;
        // add it only when it is not there yet.
        let tail = format!("/{}", escape_pointer(name));
        if !pointer.ends_with(&tail) {
            pointer.push_str(&tail);
        }
    }
    pointer
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// A body in JSON or, for protocols that use it (RFC 7662), a URL-encoded form.
pub struct JsonOrForm<T>(pub T);

impl<S, T> FromRequest<S> for JsonOrForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            ApiForm::<T>::from_request(req, state)
                .await
                .map(|f| JsonOrForm(f.0))
        } else {
            ApiJson::<T>::from_request(req, state)
                .await
                .map(|j| JsonOrForm(j.0))
        }
    }
}

/// A URL-encoded form body (console and setup pages, RFC 7662 introspection).
pub struct ApiForm<T>(pub T);

impl<S, T> FromRequest<S> for ApiForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(unreadable_body)?;
        if crate::middleware::refuse_nul::encodes_nul(&bytes) {
            return Err(Problem::new(
                ProblemKind::MalformedRequest,
                "the form contains a NUL character (%00), which no value may hold",
            ));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|f| ApiForm(f.0))
            .map_err(|e| {
                Problem::new(
                    ProblemKind::MalformedRequest,
                    format!("invalid form body: {}", e.body_text()),
                )
            })
    }
}

/// Query-string parameters.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| {
                Problem::new(
                    ProblemKind::MalformedRequest,
                    format!("invalid query string: {}", e.body_text()),
                )
            })
    }
}

/// Path parameters; one that does not parse (a malformed id) is 400.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| {
                Problem::new(
                    ProblemKind::MalformedRequest,
                    format!("invalid path parameter: {}", e.body_text()),
                )
            })
    }
}

/// Who is calling and from where, as established by the request middleware.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// The anonymous actor of this request (before authentication).
    pub fn actor(&self) -> Actor {
        Actor::anonymous(
            self.ip.clone(),
            self.user_agent.clone(),
            Some(self.request_id.clone()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        count: u32,
    }

    fn pointer_of(json: &str) -> (ProblemKind, String) {
        let p = parse_json::<Body>(json.as_bytes()).unwrap_err();
        let pointer = p
            .errors
            .as_ref()
            .and_then(|e| e.iter().next())
            .map(|e| e.pointer.clone())
            .unwrap_or_default();
        (p.kind, pointer)
    }

    #[test]
    fn data_errors_point_at_the_member() {
        assert_eq!(
            pointer_of(r#"{"email": 5}"#),
            (ProblemKind::ValidationFailed, "/email".into())
        );
        assert_eq!(
            pointer_of(r#"{"email": "a", "bogus": 1}"#),
            (ProblemKind::ValidationFailed, "/bogus".into())
        );
        assert_eq!(
            pointer_of(r#"{}"#),
            (ProblemKind::ValidationFailed, "/email".into())
        );
        assert_eq!(
            pointer_of(r#"{"email": "a", "nested": {"count": -1}}"#),
            (ProblemKind::ValidationFailed, "/nested/count".into())
        );
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_malformed() {
        assert_eq!(pointer_of(r#"{"email": "#).0, ProblemKind::MalformedRequest);
        assert_eq!(
            pointer_of(r#"{"email": "a"} x"#).0,
            ProblemKind::MalformedRequest
        );
    }

    #[test]
    fn an_escaped_nul_is_refused_with_its_pointer() {
        assert_eq!(
            pointer_of(r#"{"email": "a\u0000b"}"#),
            (ProblemKind::ValidationFailed, "/email".into())
        );
        assert_eq!(
            pointer_of(r#"{"email": "a", "nested": {"x\u0000": 1}}"#),
            (ProblemKind::ValidationFailed, "/nested/x\u{0}".into())
        );
        // An escaped backslash before `u0000` is text, not a NUL.
        assert!(parse_json::<Body>(br#"{"email": "a\\u0000"}"#).is_ok());
        assert!(!has_escaped_nul(br#"{"a": "\\u0000"}"#));
        assert!(has_escaped_nul(br#"{"a": "\\\u0000"}"#));
    }

    #[test]
    fn json_content_types() {
        let ok = |v: &'static str| is_json_content_type(Some(&header::HeaderValue::from_static(v)));
        assert!(ok("application/json"));
        assert!(ok("application/json; charset=utf-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(!ok("text/plain"));
        assert!(!is_json_content_type(None));
    }
}
