//! Events end to end: how many events per second the dispatcher takes from commit to
//! publish, on the in-process bus and on NATS JetStream, and how long a committed write
//! takes to reach a live-stream (SSE) client of a real server.
//!
//!     cargo bench -p plinth-server --bench events                  # SQLite, in-process
//!     PLINTH_TEST_POSTGRES_URL=postgres://… PLINTH_TEST_NATS_URL=nats://… cargo bench …
//!     PLINTH_BENCH_EVENTS=20000 cargo bench …                        # a smaller backlog
//!
//! Baselines from the same run: reading the same outbox rows without publishing them
//! (throughput), and the commit of the write itself (latency).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_core::config::{Config, ConfigLayer, ConfigSources};
use plinth_core::{Actor, TenantId};
use plinth_events::catalog::TenantUpdated;
use plinth_events::dispatch::{self, DEFAULT_BATCH};
use plinth_events::{Bus, JetStream, JetStreamConfig, NewEvent, Publisher};
use plinth_identity::{Identity, IdentityConfig, MasterKey};
use plinth_server::AppState;
use plinth_store::{Db, DbOptions, on};
use plinth_testkit::sse::SseReader;
use plinth_testkit::{TestBackend, TestDatabase, TestNats};

const TENANTS: usize = 100;
const PER_COMMIT: usize = 1_000;
const LATENCY_WRITES: usize = 2_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let events: usize = std::env::var("PLINTH_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    println!("| backend | bus | measure | value | baseline | ratio |");
    println!("| --- | --- | --- | ---: | ---: | ---: |");
    for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
        for jetstream in [false, true] {
            let nats = if jetstream {
                match TestNats::create() {
                    Some(nats) => Some(nats),
                    None => continue,
                }
            } else {
                None
            };
            let Some(database) = TestDatabase::create(backend).await else {
                continue;
            };
            let label = (
                format!("{backend:?}"),
                if jetstream { "JetStream" } else { "in-process" },
            );
            throughput(&database, nats.as_ref(), events, &label).await;
            latency(&database, nats.as_ref(), &label).await;
            if let Some(nats) = nats {
                nats.delete().await;
            }
        }
    }
}

async fn open(database: &TestDatabase) -> Db {
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

async fn commit_events(db: &Db, tenants: &[TenantId], count: usize) {
    let mut tx = db.begin().await.unwrap();
    for n in 0..count {
        let tenant = tenants[n % tenants.len()];
        let event = NewEvent::of(&TenantUpdated {
            tenant_id: tenant.0,
        })
        .tenant(tenant);
        plinth_events::enqueue(&mut tx, &Actor::system(), event)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn publisher(nats: Option<&TestNats>) -> Publisher {
    match nats {
        None => Publisher::Local(Bus::new(1024)),
        Some(nats) => Publisher::JetStream(Box::new(
            JetStream::connect(JetStreamConfig {
                url: nats.url.clone(),
                stream: nats.stream.clone(),
                subject_prefix: nats.subject_prefix.clone(),
                max_age: Duration::from_secs(3600),
            })
            .await
            .unwrap(),
        )),
    }
}

fn row(label: &(String, &str), measure: &str, value: String, baseline: String, ratio: f64) {
    println!(
        "| {} | {} | {measure} | {value} | {baseline} | {ratio:.2} |",
        label.0, label.1
    );
}

/// A committed backlog published to the bus: events per second, against reading the
/// same rows in the same batches.
async fn throughput(
    database: &TestDatabase,
    nats: Option<&TestNats>,
    events: usize,
    label: &(String, &str),
) {
    let db = open(database).await;
    let tenants: Vec<TenantId> = (0..TENANTS).map(|_| TenantId::new()).collect();
    for _ in 0..events.div_ceil(PER_COMMIT) {
        commit_events(&db, &tenants, PER_COMMIT).await;
    }
    let total = events.div_ceil(PER_COMMIT) * PER_COMMIT;

    let started = Instant::now();
    let mut after = 0_i64;
    loop {
        let mut read = db.read().await.unwrap();
        let seqs: Vec<i64> = on!(read.conn(), c => sqlx::query_scalar(
            "SELECT seq FROM outbox WHERE published_at IS NULL AND seq > $1 ORDER BY seq LIMIT $2"
        ).bind(after).bind(i64::from(DEFAULT_BATCH)).fetch_all(c).await)
        .unwrap();
        let Some(last) = seqs.last() else { break };
        after = *last;
    }
    let read_rate = total as f64 / started.elapsed().as_secs_f64();

    let sink = publisher(nats).await;
    let started = Instant::now();
    let mut published = 0;
    while published < total {
        published += dispatch::dispatch_batch(&db, &sink, DEFAULT_BATCH)
            .await
            .unwrap()
            .published;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    row(
        label,
        &format!("commit to publish, {total} events (events/s)"),
        format!("{rate:.0}"),
        format!("{read_rate:.0} read"),
        rate / read_rate,
    );
    db.close().await;
}

/// Writes committed one at a time while a client follows the live stream of a real
/// server: commit-to-client latency against the commit itself.
async fn latency(database: &TestDatabase, nats: Option<&TestNats>, label: &(String, &str)) {
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
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(plinth_server::serve(
        listener,
        router,
        state.clone(),
        async {
            let _ = stopped.await;
        },
    ));

    // An owner of one tenant, following its stream with a token.
    let (owner, tenant) = plinth_server_bench_owner(&state, &base).await;
    let client = plinth_testkit::http_client().build().unwrap();
    let response = client
        .get(format!("{base}/api/v1/events/stream?tenant={}", tenant.0))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    // Let the follower's consumer and the stream settle before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let committed = Arc::new(std::sync::Mutex::new(Vec::with_capacity(LATENCY_WRITES)));
    let writer = {
        let (db, committed) = (db.clone(), committed.clone());
        tokio::spawn(async move {
            let mut commits = Vec::with_capacity(LATENCY_WRITES);
            for _ in 0..LATENCY_WRITES {
                let begun = Instant::now();
                commit_events(&db, &[tenant], 1).await;
                let done = Instant::now();
                commits.push(done - begun);
                committed.lock().unwrap().push(done);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            commits
        })
    };
    let mut delays = Vec::with_capacity(LATENCY_WRITES);
    while delays.len() < LATENCY_WRITES {
        let frame = reader.next().await.unwrap();
        let received = Instant::now();
        if frame.event != "tenant.updated" {
            continue;
        }
        let sent = committed.lock().unwrap()[delays.len()];
        delays.push(received.saturating_duration_since(sent));
    }
    let mut commits = writer.await.unwrap();
    delays.sort_unstable();
    commits.sort_unstable();
    let pct = |v: &[Duration], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    for (name, p) in [("p50", 0.50), ("p99", 0.99)] {
        let (delay, commit) = (pct(&delays, p), pct(&commits, p));
        row(
            label,
            &format!("commit to SSE client {name} (ms)"),
            format!("{:.2}", delay.as_secs_f64() * 1000.0),
            format!("{:.2} commit", commit.as_secs_f64() * 1000.0),
            delay.as_secs_f64() / commit.as_secs_f64(),
        );
    }
    drop(reader);
    let _ = stop.send(());
    let _ = server.await;
}

/// A signed-in owner of a new tenant: (access token, tenant).
async fn plinth_server_bench_owner(state: &AppState, base: &str) -> (String, TenantId) {
    use plinth_identity::{Email, NewUser, Users};
    let password = "a sufficiently long passphrase";
    let hash = state
        .identity
        .hasher()
        .hash(secrecy::SecretString::from(password.to_owned()))
        .await
        .unwrap();
    let email = Email::parse("owner@bench.test").unwrap();
    let mut tx = state.db.begin().await.unwrap();
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
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "owner@bench.test", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let tenant: serde_json::Value = client
        .post(format!("{base}/api/v1/tenants"))
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
