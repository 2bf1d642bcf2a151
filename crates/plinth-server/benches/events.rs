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

use plinth_core::{Actor, TenantId};
use plinth_events::catalog::TenantUpdated;
use plinth_events::dispatch::{self, DEFAULT_BATCH};
use plinth_events::{Bus, JetStream, JetStreamConfig, NewEvent, Publisher};
use plinth_store::{Db, on};
use plinth_testkit::sse::SseReader;
use plinth_testkit::{TestBackend, TestDatabase, TestNats};

mod common;

use common::{BenchServer, open, percentile};

const TENANTS: usize = 100;
const PER_COMMIT: usize = 1_000;
const LATENCY_WRITES: usize = 2_000;

fn main() {
    common::block_on(run());
}

async fn run() {
    let events: usize = common::size("PLINTH_BENCH_EVENTS", 100_000);
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
    let server = BenchServer::start(database, nats, &[]).await;
    let (db, base) = (server.db.clone(), server.base.clone());

    // An owner of one tenant, following its stream with a token.
    let (owner, tenant) = server.owner().await;
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
    let pct = percentile::<Duration>;
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
    server.stop().await;
}
