//! What the server benchmarks share: a store on a throwaway database, a real server with
//! its background work, and a signed-in owner of a tenant.

#![allow(dead_code, reason = "each benchmark uses its own part of this")]

use plinth_core::TenantId;
use plinth_core::config::{Config, ConfigLayer, ConfigSources};
use plinth_identity::{Identity, IdentityConfig, MasterKey};
use plinth_server::AppState;
use plinth_store::{Db, DbOptions};
use plinth_testkit::{TestDatabase, TestNats};

/// Runs `work` on the two worker threads this machine has.
pub fn block_on(work: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(work);
}

/// The size a benchmark runs at: the environment's `variable`, or `default`.
pub fn size(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A migrated store on `database`.
pub async fn open(database: &TestDatabase) -> Db {
    let db = Db::open(&DbOptions {
        url: Some(secrecy::SecretString::from(database.url.clone())),
        data_dir: database.data_dir.clone(),
        max_connections: 4,
        sqlite_synchronous: plinth_core::config::SqliteSynchronous::Full,
    })
    .await
    .unwrap();
    db.migrate(|_| {}).await.unwrap();
    db
}

/// A server on a random port with `settings`, publishing events (to JetStream with
/// `nats`) and delivering webhooks.
pub struct BenchServer {
    pub state: AppState,
    pub db: Db,
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BenchServer {
    pub async fn start(
        database: &TestDatabase,
        nats: Option<&TestNats>,
        settings: &[(&str, &str)],
    ) -> BenchServer {
        let mut flags = ConfigLayer::default();
        flags.set("bind", "127.0.0.1:0").unwrap();
        flags
            .set("data_dir", &database.data_dir.display().to_string())
            .unwrap();
        flags.set("database_url", &database.url).unwrap();
        flags.set("log_level", "error").unwrap();
        flags.set("signup_enabled", "true").unwrap();
        if let Some(nats) = nats {
            for (key, value) in nats.settings() {
                flags.set(key, &value).unwrap();
            }
        }
        for (key, value) in settings {
            assert!(flags.set(key, value).unwrap(), "unknown setting {key}");
        }
        let file = database.scratch().join("plinth.toml");
        std::fs::write(&file, "").unwrap();
        let config = Config::load(ConfigSources {
            file: Some(&file),
            env: &|_: &str| None,
            flags,
        })
        .unwrap();
        let db = open(database).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let master = MasterKey::load(None, &config.data_dir).unwrap();
        let identity = Identity::new(
            db.clone(),
            IdentityConfig::from_config(&config, base.clone()),
            master,
        )
        .await
        .unwrap();
        let state = AppState::new(config, db.clone(), identity);
        let (router, _) = plinth_server::build(state.clone());
        plinth_server::background::connect_events(&state)
            .await
            .unwrap();
        plinth_server::background::spawn_dispatcher(&state);
        plinth_server::background::spawn_deliverer(&state).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(plinth_server::serve(
            listener,
            router,
            state.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        BenchServer {
            state,
            db,
            base,
            stop,
            server,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }

    /// A signed-in owner of a new tenant: (access token, tenant).
    pub async fn owner(&self) -> (String, TenantId) {
        use plinth_identity::{Email, NewUser, Users};
        let password = "a sufficiently long passphrase";
        let hash = self
            .state
            .identity
            .hasher()
            .hash(secrecy::SecretString::from(password.to_owned()))
            .await
            .unwrap();
        let email = Email::parse("owner@bench.test").unwrap();
        let mut tx = self.db.begin().await.unwrap();
        Users::insert(
            &mut tx,
            NewUser {
                email: &email,
                display_name: "Bench",
                password_hash: Some(&hash),
                email_verified: true,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let client = plinth_testkit::http_client().build().unwrap();
        let login: serde_json::Value = client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&serde_json::json!({"email": "owner@bench.test", "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().unwrap().to_owned();
        let tenant: serde_json::Value = client
            .post(format!("{}/api/v1/tenants", self.base))
            .bearer_auth(&token)
            .json(&serde_json::json!({"slug": "bench", "name": "Bench"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            token,
            TenantId(tenant["id"].as_str().unwrap().parse().unwrap()),
        )
    }
}

/// The value at percentile `p` (0..=1) of sorted `values`.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}
