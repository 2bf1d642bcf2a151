//! Webhooks end to end through a real server: deliveries per second from committed events
//! to a receiver on loopback (dispatch, fan-out, signing, the POST and its record), and the
//! time from a commit to the receiver having the signed delivery.
//!
//!     cargo bench -p plinth-server --bench webhooks                 # SQLite
//!     PLINTH_TEST_POSTGRES_URL=postgres://… cargo bench -p plinth-server --bench webhooks
//!     PLINTH_BENCH_DELIVERIES=2000 cargo bench …                     # a smaller backlog
//!
//! Baselines from the same run: the same bodies POSTed unsigned to the same receiver by a
//! plain client, as many at once as the deliverer sends (throughput); the commit of the
//! write itself (latency).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use plinth_core::{Actor, TenantId};
use plinth_events::NewEvent;
use plinth_events::catalog::TenantUpdated;
use plinth_store::Db;
use plinth_testkit::webhook::Receiver;
use plinth_testkit::{TestBackend, TestDatabase};

mod common;

use common::{BenchServer, percentile};

const LATENCY_WRITES: usize = 1_000;
/// Requests in flight for the baseline: the deliverer's batch.
const CONCURRENCY: usize = 64;

fn main() {
    common::block_on(run());
}

async fn run() {
    let deliveries: usize = common::size("PLINTH_BENCH_DELIVERIES", 10_000);
    println!("| backend | measure | value | baseline | ratio |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
        let Some(database) = TestDatabase::create(backend).await else {
            continue;
        };
        let label = format!("{backend:?}");
        let server = BenchServer::start(
            &database,
            None,
            &[
                ("webhook_allow_http", "true"),
                ("webhook_allowed_networks", "127.0.0.0/8"),
            ],
        )
        .await;
        let (token, tenant) = server.owner().await;
        let receiver = Receiver::start(Vec::new()).await;
        let client = plinth_testkit::http_client().build().unwrap();
        let response = client
            .post(format!("{}/api/v1/tenants/bench/webhooks", server.base))
            .bearer_auth(&token)
            .json(&serde_json::json!({"url": receiver.url, "event_types": ["tenant.updated"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);

        throughput(&server.db, tenant, &receiver, deliveries, &label).await;
        latency(&server.db, tenant, &receiver, &label).await;
        server.stop().await;
    }
}

fn row(label: &str, measure: &str, value: String, baseline: String, ratio: f64) {
    println!("| {label} | {measure} | {value} | {baseline} | {ratio:.2} |");
}

async fn commit_events(db: &Db, tenant: TenantId, count: usize) -> Vec<String> {
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let event = NewEvent::of(&TenantUpdated {
            tenant_id: tenant.0,
        })
        .tenant(tenant);
        let id = plinth_events::enqueue(&mut tx, &Actor::system(), event)
            .await
            .unwrap();
        ids.push(id.to_string());
    }
    tx.commit().await.unwrap();
    ids
}

/// A backlog committed in one transaction, from its commit until the receiver has every
/// delivery: deliveries per second, against plain POSTs of the same bodies.
async fn throughput(db: &Db, tenant: TenantId, receiver: &Receiver, count: usize, label: &str) {
    let before = receiver.received().len();
    let total = count;
    // One commit, so the clock measures what follows it: publishing, fan-out, signing,
    // the POSTs and their records.
    commit_events(db, tenant, total).await;
    let started = Instant::now();
    receiver
        .wait_for(before + total, Duration::from_secs(600))
        .await;
    let rate = total as f64 / started.elapsed().as_secs_f64();

    // The bare transport: the bodies the receiver got, POSTed again without signing,
    // database or schedule.
    let bodies: Vec<axum::body::Bytes> = receiver.received()[before..]
        .iter()
        .map(|r| r.body.clone())
        .collect();
    let client = plinth_testkit::http_client().build().unwrap();
    let started = Instant::now();
    futures_util::stream::iter(bodies)
        .for_each_concurrent(CONCURRENCY, |body| {
            let (client, url) = (client.clone(), receiver.url.clone());
            async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
            }
        })
        .await;
    let bare = total as f64 / started.elapsed().as_secs_f64();
    row(
        label,
        &format!("backlog of {total} to delivered (deliveries/s)"),
        format!("{rate:.0}"),
        format!("{bare:.0} bare POSTs"),
        rate / bare,
    );
}

/// Writes committed one at a time: from the end of each commit to the receiver having its
/// delivery, against the commit itself.
async fn latency(db: &Db, tenant: TenantId, receiver: &Receiver, label: &str) {
    let before = receiver.received().len();
    let mut committed_at = HashMap::with_capacity(LATENCY_WRITES);
    let mut commits = Vec::with_capacity(LATENCY_WRITES);
    for _ in 0..LATENCY_WRITES {
        let begun = Instant::now();
        let id = commit_events(db, tenant, 1).await.remove(0);
        let done = Instant::now();
        commits.push(done - begun);
        committed_at.insert(id, done);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let received = receiver
        .wait_for(before + LATENCY_WRITES, Duration::from_secs(120))
        .await;
    let mut delays: Vec<Duration> = received[before..]
        .iter()
        .map(|r| {
            let id = r.json()["id"].as_str().unwrap().to_owned();
            r.at.saturating_duration_since(committed_at[&id])
        })
        .collect();
    delays.sort_unstable();
    commits.sort_unstable();
    for (name, p) in [("p50", 0.50), ("p99", 0.99)] {
        let (delay, commit) = (percentile(&delays, p), percentile(&commits, p));
        row(
            label,
            &format!("commit to delivered {name} (ms)"),
            format!("{:.2}", delay.as_secs_f64() * 1000.0),
            format!("{:.2} commit", commit.as_secs_f64() * 1000.0),
            delay.as_secs_f64() / commit.as_secs_f64(),
        );
    }
}
