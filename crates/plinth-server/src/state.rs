use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
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
    shutting_down: AtomicBool,
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

impl AppState {
    pub fn new(config: Config, db: Db, identity: Identity) -> Self {
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
            shutting_down: AtomicBool::new(false),
        }))
    }

    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
