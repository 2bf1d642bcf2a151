//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    status: &'static str,
    database: String,
    migrations: String,
    backend: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    /// Publishing of events (absent when the outbox could not be read). A stuck outbox
    /// is reported, not a reason to take the instance out of rotation: it still serves,
    /// and events wait safely in the database.
    outbox: Option<OutboxReadiness>,
    /// `connected` or `disconnected` when events go through NATS JetStream; absent with
    /// the in-process bus. A disconnected bus is reported, not fatal: events wait in the
    /// outbox and are published once it is back.
    nats: Option<&'static str>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OutboxReadiness {
    /// `ok`, or `stuck` when the oldest unpublished event has waited longer than
    /// `events_stuck_after_secs`.
    status: &'static str,
    /// Events committed and not yet published.
    unpublished: i64,
    /// How long the oldest of them has waited.
    lag_seconds: f64,
}

/// Readiness: the database answers, the schema is current, and the server is not
/// shutting down. Load balancers should route only to ready instances.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "Not ready; the body says why", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = match state.db.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            "unreachable".to_owned()
        }
    };
    let migrations = match state.db.migration_status().await {
        Ok(s) if s.is_current() => "current".to_owned(),
        Ok(s) => format!("{} pending", s.pending.len()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: migration check failed");
            "unknown".to_owned()
        }
    };
    let outbox = match plinth_events::dispatch::lag(&state.db).await {
        Ok(lag) => {
            let lag_seconds = lag.seconds(plinth_core::Timestamp::now());
            let stuck = lag_seconds > f64::from(state.config.events_stuck_after_secs);
            Some(OutboxReadiness {
                status: if stuck { "stuck" } else { "ok" },
                unpublished: lag.unpublished,
                lag_seconds,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness: outbox check failed");
            None
        }
    };
    let ready = database == "ok" && migrations == "current" && !state.is_shutting_down();
    let body = Readiness {
        status: if ready {
            "ready"
        } else if state.is_shutting_down() {
            "shutting_down"
        } else {
            "not_ready"
        },
        database,
        migrations,
        backend: state.db.backend().as_str(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        outbox,
        nats: state.jetstream.get().map(|js| {
            if js.connected() {
                "connected"
            } else {
                "disconnected"
            }
        }),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics exposition", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state
            .metrics
            .render(&state.db, state.event_streams.open())
            .await,
    )
}
