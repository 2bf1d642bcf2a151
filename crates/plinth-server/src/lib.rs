//! Plinth's HTTP server: the router, its middleware, the API handlers and the pages.
//! Handlers are thin: they parse, call one service method, and map the result.

pub mod auth;
pub mod background;
pub mod console;
pub mod cookies;
pub mod extract;
pub mod live;
pub mod metrics;
pub mod middleware;
pub mod problem;
pub mod router;
pub mod routes;
pub mod state;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;

pub use router::{Access, RouteInfo, RouteKind, RouteTable};
pub use state::AppState;

use crate::problem::{Problem, ProblemKind};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Plinth API",
        description = "The platform core of multi-tenant SaaS products: identity, tenancy, access control, audit, events. \
                       Errors are RFC 9457 problem documents (application/problem+json).",
        license(name = "Apache-2.0"),
    ),
    components(schemas(problem::ProblemDocument, plinth_core::FieldError)),
    modifiers(&BearerScheme, &EventSchemas),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "setup", description = "First-run creation of the super-admin"),
        (name = "auth", description = "Sign-in, tokens, sign-up, verification and password reset"),
        (name = "me", description = "The signed-in user's account, sessions and second factors"),
        (name = "passkeys", description = "The signed-in user's passkeys (WebAuthn)"),
        (name = "api-keys", description = "The signed-in user's personal API keys"),
        (name = "users", description = "Platform administration of accounts"),
        (name = "tenants", description = "Tenants: creation, switching, settings and branding"),
        (name = "members", description = "Members of a tenant and their roles"),
        (name = "invitations", description = "Invitations into a tenant, and accepting them"),
        (name = "workspaces", description = "Workspaces inside a tenant"),
        (name = "portals", description = "Portals: named entry points of a tenant"),
        (name = "flags", description = "Feature flags per platform, tenant and portal"),
        (name = "access", description = "Permissions, roles, the role matrix and permission checks"),
        (name = "audit", description = "The tamper-evident audit trail: the catalogue of actions, reading and verifying chains"),
        (name = "events", description = "The catalogue of events and the schemas of their payloads"),
        (name = "webhooks", description = "Webhook endpoints of a tenant: signed deliveries of its events, their log, the dead-letter queue and replay"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` security scheme that guarded operations reference.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Publishes the payload schema of every event type (named as `GET /api/v1/events/types`
/// says), whether or not an operation returns it.
struct EventSchemas;

impl utoipa::Modify for EventSchemas {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, schema) in plinth_events::catalog::schemas() {
            components.schemas.insert(name, schema);
        }
    }
}

/// The application router with all middleware, and the table of its routes.
pub fn build(state: AppState) -> (Router, RouteTable) {
    let (router, mut openapi, table) =
        routes::register(router::Routes::new(state.clone(), ApiDoc::openapi())).finish();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let json = openapi.to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot render the OpenAPI document");
        String::new()
    });
    let _ = state.openapi_json.set(json);

    let config = &state.config;
    let body_limit = config.body_limit_bytes;
    let router = router
        .layer(axum::middleware::from_fn(middleware::observe::tag_route))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.request_timeout_secs),
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(
            middleware::refuse_nul::refuse_nul,
        ))
        .layer(CompressionLayer::new());
    let router = middleware::security_headers::apply(router, config.behind_tls())
        .layer(axum::middleware::from_fn(
            middleware::problem_backstop::problem_backstop,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe::observe,
        ))
        .with_state(state);
    (router, table)
}

async fn not_found() -> Problem {
    Problem::not_found()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    Problem::new(
        ProblemKind::Internal,
        "an internal error occurred; quote the request id when reporting it",
    )
    .into_response()
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight
/// requests finish for at most the configured grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (signal_tx, signal_rx) = tokio::sync::watch::channel(false);
    let shutdown_state = state.clone();
    tokio::spawn(async move {
        shutdown.await;
        shutdown_state.begin_shutdown();
        let _ = signal_tx.send(true);
    });
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let grace = Duration::from_secs(state.config.shutdown_timeout_secs);
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(wait(signal_rx.clone()));
    let deadline = async move {
        wait(signal_rx).await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: no new connections, finishing requests in flight"
        );
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!("requests still in flight after the grace period were cut off"),
    }
    state.db.close().await;
    tracing::info!("stopped");
    Ok(())
}
