//! Layers below the router (body limit, timeout, panic catcher) and axum itself answer
//! some errors with a bare status or plain text. This backstop turns every error
//! response that is not already a problem document (or an HTML page) into one, so
//! clients see a single error format whatever produced the error.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::{Problem, ProblemKind};

pub async fn problem_backstop(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Only bare and plain-text bodies are replaced; a handler's own JSON or HTML error
    // (readiness details, an error page) is kept.
    if !(content_type.is_empty() || content_type.starts_with("text/plain")) {
        return response;
    }
    let kind = ProblemKind::for_status(status);
    let detail = match kind {
        ProblemKind::PayloadTooLarge => "the request body exceeds the size limit",
        ProblemKind::RequestTimeout => "the request was not completed within the time limit",
        ProblemKind::MethodNotAllowed => "this method is not allowed on this resource",
        ProblemKind::NotFound => "no resource exists at this address",
        ProblemKind::Internal => {
            "an internal error occurred; quote the request id when reporting it"
        }
        _ => kind.title(),
    };
    let mut problem = Problem::new(kind, detail);
    // Keep headers that tell the client what to do next.
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            problem = problem.with_header(name, value.clone());
        }
    }
    let (parts, _) = response.into_parts();
    let mut rebuilt = problem.into_response();
    *rebuilt.status_mut() = status;
    // Extensions carry the matched route to the metrics.
    rebuilt.extensions_mut().extend(parts.extensions);
    rebuilt
}
