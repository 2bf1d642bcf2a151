//! Webhooks across real `plinth serve` processes: a server killed with SIGKILL while it
//! delivers under load loses no delivery, and two servers on one PostgreSQL database share
//! the deliveries without sending any twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use plinth_testkit::webhook::{Answer, Receiver};
use plinth_testkit::{TestBackend, TestDatabase, backend_tests};
use serde_json::{Value, json};

mod common;

use common::{DEMO_PASSWORD, OWNER, Server, open_store, seed_demo, write_until_gone};

/// Webhooks may reach the loopback receiver; a killed server's leases lapse after 7 s
/// (twice the 1 s timeout, and 5 s).
fn webhook_env() -> Vec<(&'static str, String)> {
    vec![
        ("PLINTH_WEBHOOK_ALLOW_HTTP", "true".to_owned()),
        ("PLINTH_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8".to_owned()),
        ("PLINTH_WEBHOOK_TIMEOUT_SECS", "1".to_owned()),
        ("PLINTH_WEBHOOK_RETRY_SCHEDULE", "1s,1s,1s".to_owned()),
    ]
}

async fn register(client: &reqwest::Client, server: &Server, token: &str, url: &str) {
    let response = client
        .post(format!("{}/api/v1/tenants/acme/webhooks", server.base))
        .bearer_auth(token)
        .json(&json!({"url": url, "event_types": ["workspace.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// The ids of the workspaces of tenant `acme` created through the API.
async fn workspaces_created(db: &TestDatabase) -> HashSet<String> {
    let store = open_store(db).await;
    let mut read = store.read().await.unwrap();
    let ids: Vec<uuid::Uuid> = plinth_store::on!(read.conn(), c => sqlx::query_scalar(
        "SELECT w.id FROM workspaces w JOIN tenants t ON t.id = w.tenant_id WHERE t.slug = 'acme' AND w.slug LIKE 'load-%'"
    ).fetch_all(c).await)
    .unwrap();
    drop(read);
    store.close().await;
    ids.into_iter().map(|id| id.to_string()).collect()
}

/// Waits until the receiver has a delivery of every workspace in `expected`; returns how
/// many requests carried each webhook id.
async fn deliveries_of(receiver: &Receiver, expected: &HashSet<String>, within: Duration) -> HashMap<String, usize> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let received = receiver.received();
        let delivered: HashSet<String> = received
            .iter()
            .map(|r| r.json()["data"]["workspace_id"].as_str().unwrap().to_owned())
            .collect();
        if expected.is_subset(&delivered) {
            let mut per_id = HashMap::new();
            for r in &received {
                *per_id.entry(r.header("webhook-id").to_owned()).or_default() += 1;
            }
            return per_id;
        }
        let missing = expected.difference(&delivered).count();
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} of {} workspaces were never delivered",
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

backend_tests!(every_delivery_is_made_after_a_kill_9_while_delivering);

async fn every_delivery_is_made_after_a_kill_9_while_delivering(db: TestDatabase) {
    seed_demo(&db);
    let env = webhook_env();
    let server = Server::start_with(&db, &env);
    let client = plinth_testkit::http_client().build().unwrap();
    let token = server.access_token(OWNER, DEMO_PASSWORD).await;
    // Answers take 20 ms, so deliveries are in flight when the server dies.
    let receiver = Receiver::start_then(
        Vec::new(),
        Answer {
            delay: Duration::from_millis(20),
            ..Answer::status(200)
        },
    )
    .await;
    register(&client, &server, &token, &receiver.url).await;

    let (acknowledged, writers) = write_until_gone(&client, &server.base, &token);
    // Killed once deliveries are flowing and more are queued behind them.
    while receiver.received().len() < 50 || acknowledged.lock().unwrap().len() < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let before_restart = receiver.received().len();

    let restarted = Server::start_with(&db, &env);
    // Every workspace committed, acknowledged or not, has its delivery.
    let created = workspaces_created(&db).await;
    assert!(created.len() >= 150);
    deliveries_of(&receiver, &created, Duration::from_secs(60)).await;
    // Those the killed server was attempting are attempted again once its lease lapses:
    // at least once, never lost.
    let mut pending = i64::MAX;
    for _ in 0..300 {
        let store = open_store(&db).await;
        let mut read = store.read().await.unwrap();
        pending = plinth_store::on!(read.conn(), c => sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE status <> 'delivered'"
        ).fetch_one(c).await)
        .unwrap();
        drop(read);
        store.close().await;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 0, "deliveries left undelivered 30 s after the restart");
    let per_id = deliveries_of(&receiver, &created, Duration::from_secs(1)).await;
    let repeated = per_id.values().filter(|n| **n > 1).count();
    eprintln!(
        "{:?}: {} workspaces, {before_restart} deliveries before SIGKILL, {repeated} sent again after it (in flight when it died)",
        db.backend,
        created.len()
    );
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_the_deliveries_and_send_none_twice() {
    let Some(db) = TestDatabase::create(TestBackend::Postgres).await else {
        return;
    };
    seed_demo(&db);
    let mut env = webhook_env();
    env.push(("PLINTH_PUBLIC_URL", "http://plinth.test".to_owned()));
    let (a, b) = (Server::start_with(&db, &env), Server::start_with(&db, &env));
    let client = plinth_testkit::http_client().build().unwrap();
    let token = a.access_token(OWNER, DEMO_PASSWORD).await;
    let receiver = Receiver::start_then(
        Vec::new(),
        Answer {
            delay: Duration::from_millis(5),
            ..Answer::status(200)
        },
    )
    .await;
    register(&client, &a, &token, &receiver.url).await;
    for n in 0..200 {
        let server = if n % 2 == 0 { &a } else { &b };
        let response = client
            .post(format!("{}/api/v1/tenants/acme/workspaces", server.base))
            .bearer_auth(&token)
            .json(&json!({"slug": format!("load-{n}"), "name": "shared"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let created = workspaces_created(&db).await;
    assert_eq!(created.len(), 200);
    let per_id = deliveries_of(&receiver, &created, Duration::from_secs(60)).await;
    // Let any second send arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received: Vec<Value> = receiver.received().iter().map(|r| r.json()).collect();
    assert_eq!(received.len(), 200, "every delivery sent once");
    assert!(per_id.values().all(|n| *n == 1));
    drop(a);
    drop(b);
}
