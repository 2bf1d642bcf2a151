//! Error policy, and the one place errors become HTTP responses.
//!
//! - Libraries return typed errors (thiserror). Handlers return `Result<_, Problem>`,
//!   and each domain error converts to a `Problem` here, once.
//! - Every error response is an RFC 9457 `application/problem+json` document with a
//!   stable `type` URI (listed in docs/problems.md), a human `detail`, the request id,
//!   and per-field `errors` for invalid input.
//! - Not found, conflict, forbidden and invalid input are distinct; a database outage
//!   is 503, never 400.
//! - A 500 tells the client nothing beyond the request id; the log gets everything.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plinth_core::FieldErrors;
use plinth_identity::IdentityError;
use plinth_store::StoreError;
use plinth_tenancy::TenancyError;
use serde::Serialize;

use crate::middleware::request_id::current_request_id;

pub const TYPE_BASE: &str = "https://plinth.dev/problems/";
pub const PROBLEM_JSON: &str = "application/problem+json";

macro_rules! problem_kinds {
    ($($variant:ident => ($slug:literal, $status:ident, $title:literal)),+ $(,)?) => {
        /// The stable problem types. Their slugs never change once released.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ProblemKind { $($variant),+ }

        impl ProblemKind {
            pub const ALL: &'static [ProblemKind] = &[$(ProblemKind::$variant),+];

            pub fn slug(&self) -> &'static str {
                match self { $(ProblemKind::$variant => $slug),+ }
            }

            pub fn status(&self) -> StatusCode {
                match self { $(ProblemKind::$variant => StatusCode::$status),+ }
            }

            pub fn title(&self) -> &'static str {
                match self { $(ProblemKind::$variant => $title),+ }
            }
        }
    };
}

problem_kinds! {
    MalformedRequest => ("malformed-request", BAD_REQUEST, "The request could not be read"),
    ValidationFailed => ("validation-failed", UNPROCESSABLE_ENTITY, "The request contains invalid values"),
    InvalidToken => ("invalid-token", BAD_REQUEST, "The link or token is invalid, expired or already used"),
    InvalidCredentials => ("invalid-credentials", UNAUTHORIZED, "Wrong e-mail address or password"),
    InvalidCode => ("invalid-code", BAD_REQUEST, "The verification code is wrong or was already used"),
    PasskeyRejected => ("passkey-rejected", BAD_REQUEST, "The passkey's answer was not accepted"),
    Unauthenticated => ("unauthenticated", UNAUTHORIZED, "Authentication is required"),
    Forbidden => ("forbidden", FORBIDDEN, "You are not allowed to do this"),
    CsrfFailed => ("csrf-failed", FORBIDDEN, "The form's security token is missing or wrong"),
    TenantSuspended => ("tenant-suspended", FORBIDDEN, "The tenant is suspended"),
    TenantExpired => ("tenant-expired", FORBIDDEN, "The tenant's trial has expired"),
    NotFound => ("not-found", NOT_FOUND, "Not found"),
    MethodNotAllowed => ("method-not-allowed", METHOD_NOT_ALLOWED, "Method not allowed"),
    Conflict => ("conflict", CONFLICT, "The request conflicts with the current state"),
    PayloadTooLarge => ("payload-too-large", PAYLOAD_TOO_LARGE, "The request body is too large"),
    UnsupportedMediaType => ("unsupported-media-type", UNSUPPORTED_MEDIA_TYPE, "Unsupported content type"),
    RequestTimeout => ("request-timeout", REQUEST_TIMEOUT, "The request took too long"),
    RateLimited => ("rate-limited", TOO_MANY_REQUESTS, "Too many requests"),
    Internal => ("internal", INTERNAL_SERVER_ERROR, "Internal error"),
    Unavailable => ("unavailable", SERVICE_UNAVAILABLE, "Service unavailable"),
}

impl ProblemKind {
    pub fn type_uri(&self) -> String {
        format!("{TYPE_BASE}{}", self.slug())
    }

    /// The kind a bare status code maps to (for responses produced by layers).
    pub fn for_status(status: StatusCode) -> ProblemKind {
        ProblemKind::ALL
            .iter()
            .copied()
            .find(|k| {
                k.status() == status
                    && !matches!(
                        k,
                        ProblemKind::InvalidToken
                            | ProblemKind::InvalidCredentials
                            | ProblemKind::InvalidCode
                            | ProblemKind::PasskeyRejected
                    )
            })
            .unwrap_or(if status.is_server_error() {
                ProblemKind::Internal
            } else {
                ProblemKind::MalformedRequest
            })
    }
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
    pub errors: Option<FieldErrors>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The body of a problem response (also its OpenAPI schema).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemDocument {
    /// Stable URI identifying the problem type.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The `x-request-id` of the request, to quote when asking for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-field errors, each with a JSON Pointer to the offending member.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<plinth_core::FieldError>>)]
    pub errors: Option<FieldErrors>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: None,
            headers: Vec::new(),
        }
    }

    pub fn validation(errors: FieldErrors) -> Self {
        let detail = errors.to_string();
        Self {
            kind: ProblemKind::ValidationFailed,
            detail,
            errors: Some(errors),
            headers: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(ProblemKind::NotFound, "no resource exists at this address")
    }

    /// 401 with the `WWW-Authenticate` challenge of RFC 6750.
    pub fn unauthenticated(reason: &str) -> Self {
        Self::new(ProblemKind::Unauthenticated, reason)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_secs().max(1);
        let mut problem = Self::new(
            ProblemKind::RateLimited,
            format!("too many attempts; retry in {seconds} s"),
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            problem = problem.with_header(header::RETRY_AFTER, value);
        }
        problem
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// An internal failure: logged here with its cause, reported to the client without it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ProblemKind::Internal,
            "an internal error occurred; quote the request id when reporting it",
        )
    }

    pub fn document(&self) -> ProblemDocument {
        ProblemDocument {
            type_uri: self.kind.type_uri(),
            title: self.kind.title(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            request_id: current_request_id(),
            errors: self.errors.clone(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.document()).unwrap_or_default();
        let mut response = (self.kind.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::error!(error = %e, "database unavailable");
            Problem::new(
                ProblemKind::Unavailable,
                "the database is unavailable; retry shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
        } else {
            Problem::internal(&e)
        }
    }
}

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Validation(errors) => Problem::validation(errors),
            IdentityError::InvalidToken => Problem::new(ProblemKind::InvalidToken, e.to_string()),
            IdentityError::EmailTaken => Problem::new(ProblemKind::Conflict, e.to_string()),
            IdentityError::InvalidCredentials => {
                Problem::new(ProblemKind::InvalidCredentials, e.to_string())
            }
            IdentityError::InvalidCode => Problem::new(ProblemKind::InvalidCode, e.to_string()),
            IdentityError::PasskeyRejected(reason) => {
                Problem::new(ProblemKind::PasskeyRejected, reason)
            }
            IdentityError::PasskeysUnavailable => {
                Problem::new(ProblemKind::Conflict, e.to_string())
            }
            IdentityError::Unauthenticated(reason) => Problem::unauthenticated(reason),
            IdentityError::Forbidden(reason) => Problem::new(ProblemKind::Forbidden, reason),
            IdentityError::NotFound => Problem::not_found(),
            IdentityError::RateLimited(retry_after) => Problem::rate_limited(retry_after),
            IdentityError::Hashing(_) | IdentityError::Crypto(_) | IdentityError::Mail(_) => {
                Problem::internal(&e)
            }
            IdentityError::Store(e) => e.into(),
        }
    }
}

impl From<TenancyError> for Problem {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::Validation(errors) => Problem::validation(errors),
            TenancyError::NotFound => Problem::not_found(),
            TenancyError::Forbidden(reason) => Problem::new(ProblemKind::Forbidden, reason),
            TenancyError::Suspended => Problem::new(
                ProblemKind::TenantSuspended,
                "the tenant is suspended; its administrators have been told why",
            ),
            TenancyError::Expired => Problem::new(
                ProblemKind::TenantExpired,
                "the tenant's trial has expired; an owner can choose a plan to continue",
            ),
            TenancyError::Conflict(reason) => Problem::new(ProblemKind::Conflict, reason),
            TenancyError::PolicyDenied { policy, why } => Problem::new(
                ProblemKind::Forbidden,
                format!("your role allows this, but the tenant's policy {policy} does not: {why}"),
            ),
            TenancyError::UnruledTables(why) => Problem::internal(&why),
            TenancyError::Identity(e) => e.into(),
            TenancyError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_is_documented_with_its_status() {
        let docs = include_str!("../../../docs/problems.md");
        for kind in ProblemKind::ALL {
            let row = format!("| `{}` | {} |", kind.slug(), kind.status().as_u16());
            assert!(docs.contains(&row), "docs/problems.md lacks {row}");
        }
    }

    #[test]
    fn slugs_are_unique_and_statuses_are_errors() {
        let mut slugs: Vec<_> = ProblemKind::ALL.iter().map(|k| k.slug()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), ProblemKind::ALL.len());
        assert!(ProblemKind::ALL.iter().all(|k| k.status().as_u16() >= 400));
    }

    #[test]
    fn bare_statuses_map_to_their_kind() {
        assert_eq!(
            ProblemKind::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            ProblemKind::PayloadTooLarge
        );
        assert_eq!(
            ProblemKind::for_status(StatusCode::BAD_GATEWAY),
            ProblemKind::Internal
        );
        assert_eq!(
            ProblemKind::for_status(StatusCode::IM_A_TEAPOT),
            ProblemKind::MalformedRequest
        );
    }
}
