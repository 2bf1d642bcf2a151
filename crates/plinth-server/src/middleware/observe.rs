//! One middleware at the edge of every request: assigns the request id, works out the
//! client address, records the request in the metrics and writes one access-log line.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::extract::RequestContext;
use crate::middleware::request_id;
use crate::state::AppState;

/// The route template that matched, carried from the router to the outer middleware.
#[derive(Clone)]
pub struct RouteTemplate(pub String);

/// Inner layer (inside the router) that records which route template matched.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(template) = template {
        response.extensions_mut().insert(RouteTemplate(template));
    }
    response
}

pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id::accept_client_id(request.headers().get(request_id::HEADER))
        .unwrap_or_else(request_id::generate);
    let ip = client_ip(&request, &state.config);
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect::<String>());
    let method = request.method().clone();
    // The path only: query strings can carry tokens and must not reach the logs.
    let path = request.uri().path().to_owned();
    request.extensions_mut().insert(RequestContext {
        request_id: request_id.clone(),
        ip: ip.clone(),
        user_agent,
    });

    let span = tracing::info_span!("request", request.id = %request_id, http.method = %method, http.path = %path);
    let mut response = request_id::scope(request_id.clone(), next.run(request))
        .instrument(span.clone())
        .await;

    let elapsed = started.elapsed();
    let status = response.status();
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |r| r.0.as_str())
        .to_owned();
    state
        .metrics
        .record_request(method.as_str(), &route, status.as_u16(), elapsed);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    span.in_scope(|| {
        tracing::event!(
            target: "plinth::access",
            tracing::Level::INFO,
            http.status = status.as_u16(),
            http.route = %route,
            client.ip = ip.as_deref().unwrap_or("-"),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "{} {} {}",
            method,
            path,
            status.as_u16()
        );
    });
    response
}

fn client_ip(request: &Request, config: &plinth_core::config::Config) -> Option<String> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())?;
    if !config.trust_proxy_headers {
        return Some(peer.to_string());
    }
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    Some(
        config
            .trusted_proxies
            .client_address(peer, forwarded)
            .to_string(),
    )
}
