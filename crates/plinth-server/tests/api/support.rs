//! `TestApp`: a running server and a client for it.

use std::time::Duration;

use plinth_core::config::{Config, ConfigLayer, ConfigSources};
use plinth_server::{AppState, RouteTable};
use plinth_store::{Db, DbOptions};
use plinth_testkit::TestDatabase;
use reqwest::header::CONTENT_TYPE;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub routes: RouteTable,
    pub db: Db,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _database: TestDatabase,
}

pub struct TestAppBuilder {
    database: TestDatabase,
    settings: Vec<(&'static str, String)>,
}

impl TestApp {
    pub fn on(database: TestDatabase) -> TestAppBuilder {
        TestAppBuilder {
            database,
            settings: Vec::new(),
        }
    }

    pub async fn spawn(database: TestDatabase) -> TestApp {
        Self::on(database).spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A setup token, as `serve` would print it.
    pub async fn setup_token(&self) -> String {
        self.state
            .setup
            .issue_token()
            .await
            .unwrap()
            .expect("setup required")
            .token
            .expose()
            .to_owned()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
    }
}

impl TestAppBuilder {
    /// Overrides one setting, by key, as `plinth.toml` would.
    pub fn with(mut self, key: &'static str, value: impl ToString) -> Self {
        self.settings.push((key, value.to_string()));
        self
    }

    pub async fn spawn(self) -> TestApp {
        let mut flags = ConfigLayer::default();
        flags.set("bind", "127.0.0.1:0").unwrap();
        flags
            .set("data_dir", &self.database.data_dir.display().to_string())
            .unwrap();
        flags.set("database_url", &self.database.url).unwrap();
        flags.set("log_level", "warn").unwrap();
        for (key, value) in &self.settings {
            assert!(flags.set(key, value).unwrap(), "unknown setting {key}");
        }
        // An empty file keeps a developer's ./plinth.toml out of the tests.
        let file = self.database.scratch().join("plinth.toml");
        std::fs::write(&file, "").unwrap();
        let no_env = |_: &str| None;
        let config = Config::load(ConfigSources {
            file: Some(&file),
            env: &no_env,
            flags,
        })
        .unwrap();
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_test_writer()
                .try_init();
        }
        let db = Db::open(&DbOptions::from_config(&config)).await.unwrap();
        db.migrate(|_| {}).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(config, db.clone());
        let (router, routes) = plinth_server::build(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server_state = state.clone();
        let server = tokio::spawn(async move {
            plinth_server::serve(listener, router, server_state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestApp {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            state,
            routes,
            db,
            stop: Some(stop),
            server: Some(server),
            _database: self.database,
        }
    }
}

/// Asserts that `response` is a problem document of `status` and `slug`; returns it.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    slug: &str,
) -> serde_json::Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("https://plinth.dev/problems/{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(
        body["request_id"].as_str(),
        request_id.as_deref(),
        "problem quotes the request id"
    );
    body
}
