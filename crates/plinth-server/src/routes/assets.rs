//! Static assets compiled into the binary.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::extract::ApiPath;

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "plinth.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/plinth.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../assets/favicon.svg"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/console.js"),
    ),
];

pub async fn serve(ApiPath(file): ApiPath<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "").into_response(),
    }
}
