//! Refuses a NUL character in the request's path or query before any handler sees it.
//! PostgreSQL cannot store U+0000 in text and fails the whole statement with an error
//! (a 500 if it got that far), while SQLite would store it: refusing it at the edge gives
//! both databases the same clear 400. Bodies are checked by the extractors
//! (`crate::extract`), which see them decoded.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::{Problem, ProblemKind};

/// Whether URL-encoded text (a path, a query, a form body) holds an encoded or raw NUL.
pub fn encodes_nul(text: &[u8]) -> bool {
    text.windows(3).any(|w| w == b"%00") || text.contains(&0)
}

pub async fn refuse_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let in_path = encodes_nul(uri.path().as_bytes());
    let in_query = uri.query().is_some_and(|q| encodes_nul(q.as_bytes()));
    if in_path || in_query {
        let place = if in_path { "path" } else { "query string" };
        return Problem::new(
            ProblemKind::MalformedRequest,
            format!("the {place} contains a NUL character (%00), which no value may hold"),
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::encodes_nul;

    #[test]
    fn finds_encoded_and_raw_nul_only() {
        assert!(encodes_nul(b"/api/v1/tenants/acme%00/workspaces"));
        assert!(encodes_nul(b"a=b\0"));
        assert!(!encodes_nul(b"/api/v1/tenants/acme%2500"));
        assert!(!encodes_nul(b"limit=100&cursor=abc%3D"));
    }
}
