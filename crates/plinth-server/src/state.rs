use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use plinth_core::config::Config;
use plinth_identity::{Identity, Setup};
use plinth_store::Db;
use plinth_tenancy::Tenancy;

use crate::metrics::Metrics;

/// Everything handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub db: Db,
    pub metrics: Metrics,
    pub setup: Setup,
    pub identity: Identity,
    pub tenancy: Tenancy,
    pub started: Instant,
    pub openapi_json: OnceLock<String>,
    /// The background audit verifier's memory of each chain.
    pub audit_watch: tokio::sync::Mutex<plinth_audit::ChainWatch>,
    /// Published events, as this process's live streams follow them.
    pub events: plinth_events::Bus,
    /// Live streams open per tenant.
    pub event_streams: plinth_events::StreamLimit,
    /// The JetStream bus, when `nats_url` is set (connected at startup).
    pub jetstream: OnceLock<plinth_events::JetStream>,
    /// Tenants' webhook endpoints.
    pub webhooks: plinth_tenancy::Webhooks,
    /// Told when the dispatcher made webhook deliveries, so the deliverer starts at once.
    pub webhooks_ready: Arc<tokio::sync::Notify>,
    /// Whether shutdown has begun, and a signal for those who wait for it.
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// The tenancy service as `config` sets it up.
pub fn tenancy(config: &Config, db: &Db) -> Tenancy {
    // The configuration refused bounds out of order when it was loaded.
    let retention = plinth_audit::RetentionBounds::new(
        config.audit_retention_min_days,
        config.audit_retention_max_days,
        config.audit_retention_days,
    )
    .unwrap_or_default();
    Tenancy::new(db.clone()).with_audit_retention(retention)
}

/// Where webhook endpoints may point, as `config` says.
pub fn webhook_rules(config: &Config) -> plinth_events::webhooks::TargetRules {
    plinth_events::webhooks::TargetRules {
        allowed: config.webhook_allowed_networks.clone(),
        allow_http: config.webhook_allow_http,
    }
}

impl AppState {
    pub fn new(config: Config, db: Db, identity: Identity) -> Self {
        let events = plinth_events::Bus::new(config.events_stream_buffer as usize);
        let event_streams = plinth_events::StreamLimit::new(config.events_streams_per_tenant);
        let webhooks = plinth_tenancy::Webhooks::new(
            db.clone(),
            Arc::new(identity.master().clone()),
            webhook_rules(&config),
        );
        Self(Arc::new(AppInner {
            metrics: Metrics::new(db.backend().as_str()),
            setup: Setup::new(db.clone(), identity.hasher().clone()),
            identity,
            tenancy: tenancy(&config, &db),
            config,
            db,
            started: Instant::now(),
            openapi_json: OnceLock::new(),
            audit_watch: tokio::sync::Mutex::new(plinth_audit::ChainWatch::default()),
            events,
            event_streams,
            jetstream: OnceLock::new(),
            webhooks,
            webhooks_ready: Arc::new(tokio::sync::Notify::new()),
            shutdown: tokio::sync::watch::Sender::new(false),
        }))
    }

    pub fn begin_shutdown(&self) {
        self.0.shutdown.send_replace(true);
    }

    /// Completes when the server starts shutting down: what endless responses (live
    /// streams) wait on to end instead of holding shutdown for its whole grace period.
    pub fn shutdown_started(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut signal = self.0.shutdown.subscribe();
        async move {
            let _ = signal.wait_for(|started| *started).await;
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.0.shutdown.borrow()
    }
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
