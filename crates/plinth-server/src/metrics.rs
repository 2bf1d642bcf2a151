//! Prometheus metrics. Each server instance owns its registry (no process-global
//! recorder), so several servers in one process (tests, embedding) stay separate.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use plinth_store::Db;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChainLabels {
    chain: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    backend: &'static str,
}

/// Latency buckets in seconds, from 0.25 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<HttpLabels, Histogram, fn() -> Histogram>,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_idle: Family<PoolLabels, Gauge>,
    pool_max: Family<PoolLabels, Gauge>,
    audit_chain_broken: Family<ChainLabels, Gauge>,
    audit_records_verified: Counter,
    outbox_lag: Gauge<f64, AtomicU64>,
    outbox_unpublished: Gauge,
    webhooks_due: Gauge,
    webhooks_lag: Gauge<f64, AtomicU64>,
    event_streams: Gauge,
}

impl Metrics {
    pub fn new(backend: &'static str) -> Self {
        let mut registry = Registry::with_prefix("plinth");
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template and status",
            requests.clone(),
        );
        let latency = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_connections.clone(),
        );
        let pool_idle = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        let pool_max = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_max_connections",
            "Configured maximum of database connections",
            pool_max.clone(),
        );
        // Only chains found broken get a series (1, or 0 once repaired): thousands of
        // tenants must not mean thousands of series that all say "fine".
        let audit_chain_broken = Family::<ChainLabels, Gauge>::default();
        registry.register(
            "audit_chain_broken",
            "Audit chains the background verifier found broken (1), by chain",
            audit_chain_broken.clone(),
        );
        let audit_records_verified = Counter::default();
        registry.register(
            "audit_records_verified",
            "Audit records recomputed by the background verifier",
            audit_records_verified.clone(),
        );
        let outbox_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "outbox_lag_seconds",
            "How long the oldest unpublished event has waited (0 when none waits)",
            outbox_lag.clone(),
        );
        let outbox_unpublished = Gauge::default();
        registry.register(
            "outbox_unpublished_events",
            "Events committed and not yet published",
            outbox_unpublished.clone(),
        );
        let webhooks_due = Gauge::default();
        registry.register(
            "webhook_deliveries_due",
            "Webhook deliveries due (first attempts and retries) and not yet made, to enabled endpoints",
            webhooks_due.clone(),
        );
        let webhooks_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "webhook_delivery_lag_seconds",
            "How long the longest-waiting due webhook delivery has been due (0 when none is)",
            webhooks_lag.clone(),
        );
        let event_streams = Gauge::default();
        registry.register(
            "event_streams_open",
            "Live event streams open on this server",
            event_streams.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                backend,
            })
            .set(1);
        registry.register(
            "build_info",
            "Build information; the value is always 1",
            build,
        );
        Self {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            pool_max,
            audit_chain_broken,
            audit_records_verified,
            outbox_lag,
            outbox_unpublished,
            webhooks_due,
            webhooks_lag,
            event_streams,
        }
    }

    /// Records what a pass of the background audit verifier found.
    pub fn record_audit_pass(&self, pass: &plinth_audit::PassReport) {
        self.audit_records_verified.inc_by(pass.records);
        for (chain, _) in &pass.newly_broken {
            self.audit_chain_broken
                .get_or_create(&ChainLabels {
                    chain: chain.clone(),
                })
                .set(1);
        }
        for chain in &pass.repaired {
            self.audit_chain_broken
                .get_or_create(&ChainLabels {
                    chain: chain.clone(),
                })
                .set(0);
        }
    }

    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = HttpLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text exposition, with pool, outbox, webhook and stream gauges read
    /// at scrape time.
    pub async fn render(&self, db: &Db, open_streams: u64) -> String {
        match plinth_events::dispatch::lag(db).await {
            Ok(lag) => {
                self.outbox_lag
                    .set(lag.seconds(plinth_core::Timestamp::now()));
                self.outbox_unpublished.set(lag.unpublished);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading the outbox lag"),
        }
        let now = plinth_core::Timestamp::now();
        match plinth_events::webhooks::deliveries::backlog(db, now).await {
            Ok(backlog) => {
                self.webhooks_due.set(backlog.due);
                self.webhooks_lag.set(
                    backlog
                        .oldest
                        .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0)),
                );
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading the webhook backlog"),
        }
        self.event_streams
            .set(i64::try_from(open_streams).unwrap_or(i64::MAX));
        for (pool, stats) in db.pool_stats() {
            let labels = PoolLabels { pool };
            self.pool_connections
                .get_or_create(&labels)
                .set(i64::from(stats.size));
            self.pool_idle
                .get_or_create(&labels)
                .set(i64::from(stats.idle));
            self.pool_max
                .get_or_create(&labels)
                .set(i64::from(stats.max));
        }
        let mut out = String::with_capacity(8 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}
