//! `TestApp`: a running server and a client for it.

use std::time::Duration;

use plinth_core::UserId;
use plinth_core::config::{Config, ConfigLayer, ConfigSources};
use plinth_identity::mail::QueuedEmail;
use plinth_identity::{Email, NewUser, PlatformRole, Users};
use plinth_identity::{Identity, IdentityConfig, MasterKey};
use plinth_server::{AppState, RouteTable};
use plinth_store::{Db, DbOptions};
use plinth_testkit::TestDatabase;
use reqwest::header::CONTENT_TYPE;
use secrecy::SecretString;
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
    dispatching: bool,
}

impl TestApp {
    pub fn on(database: TestDatabase) -> TestAppBuilder {
        TestAppBuilder {
            database,
            settings: Vec::new(),
            dispatching: false,
        }
    }

    pub async fn spawn(database: TestDatabase) -> TestApp {
        Self::on(database).spawn().await
    }

    /// The URL Plinth was given for its database.
    pub fn database_url(&self) -> &str {
        &self._database.url
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

    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        token: Option<&str>,
    ) -> reqwest::Response {
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().await.unwrap()
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(self.client.get(self.url(path)), Some(token))
            .await
    }

    pub async fn post_as(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send(self.client.post(self.url(path)).json(body), Some(token))
            .await
    }

    /// Creates an active account directly (as an administrator would), optionally
    /// verified and with platform roles.
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        verified: bool,
        roles: &[PlatformRole],
    ) -> UserId {
        let hash = self
            .state
            .identity
            .hasher()
            .hash(SecretString::from(password.to_owned()))
            .await
            .unwrap();
        let email = Email::parse(email).unwrap();
        let mut tx = self.db.begin().await.unwrap();
        let user = Users::insert(
            &mut tx,
            NewUser {
                email: &email,
                display_name: "Test User",
                password_hash: Some(&hash),
                email_verified: verified,
            },
        )
        .await
        .unwrap();
        for role in roles {
            Users::grant_platform_role(&mut tx, user.id, *role, None)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        user.id
    }

    /// Adds `user` to `tenant` with `roles` directly (as an accepted invitation would).
    pub async fn add_member(&self, tenant: &str, user: UserId, roles: &str) {
        let tenant: uuid::Uuid = tenant.parse().unwrap();
        let now = plinth_core::Timestamp::now();
        let mut tx = self.db.begin().await.unwrap();
        plinth_store::exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, roles, status, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $4)"
        ).bind(tenant).bind(user).bind(roles).bind(now).execute(c).await).unwrap();
        tx.commit().await.unwrap();
    }

    /// Creates a tenant owned by `owner_token`'s user (self-service must be on, or the
    /// caller a platform administrator); returns its JSON.
    pub async fn create_tenant(&self, owner_token: &str, slug: &str) -> serde_json::Value {
        let response = self
            .post_as(
                "/api/v1/tenants",
                owner_token,
                &serde_json::json!({"slug": slug, "name": slug}),
            )
            .await;
        assert_eq!(response.status(), 201, "create tenant {slug}");
        response.json().await.unwrap()
    }

    /// The types of the events written about `subject` (`user/0190…`), oldest first.
    pub async fn events_about(&self, subject: &str) -> Vec<String> {
        let mut conn = self.db.read().await.unwrap();
        plinth_store::on!(conn.conn(), c => sqlx::query_scalar(
            "SELECT event_type FROM outbox WHERE subject = $1 ORDER BY seq"
        ).bind(subject).fetch_all(c).await)
        .unwrap()
    }

    /// Creates a workspace `slug` in `tenant` as `token`'s user.
    pub async fn create_workspace(&self, token: &str, tenant: &str, slug: &str) {
        let created = self
            .post_as(
                &format!("/api/v1/tenants/{tenant}/workspaces"),
                token,
                &serde_json::json!({"slug": slug, "name": slug}),
            )
            .await;
        assert_eq!(created.status(), 201, "create workspace {slug}");
    }

    pub async fn patch_as(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send(self.client.patch(self.url(path)).json(body), Some(token))
            .await
    }

    pub async fn put_as(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send(self.client.put(self.url(path)).json(body), Some(token))
            .await
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(self.client.delete(self.url(path)), Some(token))
            .await
    }

    /// Signs in and returns the token response (panics on MFA or failure).
    /// The access token of a password sign-in.
    pub async fn access_token(&self, email: &str, password: &str) -> String {
        self.login(email, password).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn login(&self, email: &str, password: &str) -> serde_json::Value {
        let response = self
            .post_json(
                "/api/v1/auth/login",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["access_token"].is_string(), "{body}");
        body
    }

    /// E-mails queued for `to`, newest first.
    pub async fn emails_to(&self, to: &str) -> Vec<QueuedEmail> {
        let mut conn = self.db.read().await.unwrap();
        plinth_identity::mail::list_outbox(conn.conn(), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.to_address.eq_ignore_ascii_case(to))
            .collect()
    }

    /// Waits (briefly) for an e-mail of `template` to `to`; returns the token in its link.
    pub async fn wait_for_link_token(&self, to: &str, template: &str) -> String {
        for _ in 0..100 {
            if let Some(email) = self
                .emails_to(to)
                .await
                .into_iter()
                .find(|e| e.template == template)
            {
                let start =
                    email.text_body.find("token=").expect("a link with a token") + "token=".len();
                return email.text_body[start..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {template} e-mail to {to}");
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

    /// Runs the event dispatcher, as `plinth serve` does (the other background work stays
    /// off, so tests drive it themselves).
    pub fn dispatching(mut self) -> Self {
        self.dispatching = true;
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
        // Every test shares 127.0.0.1; tests of the limits set their own.
        for key in [
            "rate_limit_login",
            "rate_limit_signup",
            "rate_limit_forgot_password",
            "rate_limit_mfa",
        ] {
            flags.set(key, "1000").unwrap();
        }
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
        let master = MasterKey::load(None, &config.data_dir).unwrap();
        let identity = Identity::new(
            db.clone(),
            IdentityConfig::from_config(&config, base.clone()),
            master,
        )
        .await
        .unwrap();
        let state = AppState::new(config, db.clone(), identity);
        let (router, routes) = plinth_server::build(state.clone());
        if self.dispatching {
            plinth_server::background::connect_events(&state)
                .await
                .unwrap();
            plinth_server::background::spawn_dispatcher(&state);
            plinth_server::background::spawn_deliverer(&state).unwrap();
        }
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
            client: plinth_testkit::http_client()
                .timeout(Duration::from_secs(30))
                .user_agent("plinth-tests")
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

/// Tenant routes that take their tenant from `?tenant=` (or the token) rather than the
/// path: adding one is a decision the route rules test asks to be made here.
pub const SELECTED_TENANT_ROUTES: &[&str] = &["/api/v1/events/stream"];

/// `route_path` aimed at `tenant`: its `{tenant}`, or `?tenant=` for a route that selects
/// its tenant that way.
pub fn in_tenant(route_path: &str, tenant: &str) -> String {
    if SELECTED_TENANT_ROUTES.contains(&route_path) {
        format!("{route_path}?tenant={tenant}")
    } else {
        route_path.replace("{tenant}", tenant)
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
