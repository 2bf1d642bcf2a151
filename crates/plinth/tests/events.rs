//! Events across real `plinth serve` processes: two servers on one database sharing one
//! NATS JetStream bus, and a server killed with SIGKILL while it publishes under load.
//! Both need `PLINTH_TEST_NATS_URL`; the two-server test needs PostgreSQL too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::consumer;
use futures_util::StreamExt;
use plinth_testkit::sse::SseReader;
use plinth_testkit::{TestBackend, TestDatabase, TestNats, backend_tests};
use serde_json::{Value, json};

mod common;

use common::{DEMO_PASSWORD, OWNER, Server, open_store, seed_demo, write_until_gone};

fn nats_env(nats: &TestNats) -> Vec<(&'static str, String)> {
    nats.settings()
        .into_iter()
        .map(|(key, value)| match key {
            "nats_url" => ("PLINTH_NATS_URL", value),
            "nats_stream" => ("PLINTH_NATS_STREAM", value),
            _ => ("PLINTH_NATS_SUBJECT_PREFIX", value),
        })
        .collect()
}

async fn create_workspace(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
    slug: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}/api/v1/tenants/acme/workspaces", server.base))
        .bearer_auth(token)
        .json(&json!({"slug": slug, "name": slug}))
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_server_reaches_a_live_stream_of_another_exactly_once() {
    let Some(nats) = TestNats::create() else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Postgres).await else {
        return;
    };
    seed_demo(&db);
    // Behind one load balancer, both servers are one issuer.
    let mut env = nats_env(&nats);
    env.push(("PLINTH_PUBLIC_URL", "http://plinth.test".to_owned()));
    let a = Server::start_with(&db, &env);
    let b = Server::start_with(&db, &env);
    let client = plinth_testkit::http_client().build().unwrap();
    let token = a.access_token(OWNER, DEMO_PASSWORD).await;

    let response = client
        .get(format!("{}/api/v1/events/stream?tenant=acme", b.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut on_b = SseReader::new(response);
    for slug in ["from-a", "marker"] {
        let created = create_workspace(&client, &a, &token, slug).await.unwrap();
        assert_eq!(created.status(), 201);
    }
    let mut seen: HashMap<String, u32> = HashMap::new();
    loop {
        let frame = on_b.next().await.expect("the stream stays open");
        if frame.event != "workspace.created" {
            continue;
        }
        let slug = frame.json()["data"]["slug"].as_str().unwrap().to_owned();
        *seen.entry(slug.clone()).or_default() += 1;
        if slug == "marker" {
            break;
        }
    }
    assert_eq!(seen.get("from-a"), Some(&1), "{seen:?}");
    drop(on_b);
    drop(a);
    drop(b);
    nats.delete().await;
}

backend_tests!(every_acknowledged_change_is_published_after_a_kill_9_under_load);

async fn every_acknowledged_change_is_published_after_a_kill_9_under_load(db: TestDatabase) {
    let Some(nats) = TestNats::create() else {
        return;
    };
    seed_demo(&db);
    let env = nats_env(&nats);
    let server = Server::start_with(&db, &env);
    let client = plinth_testkit::http_client().build().unwrap();
    let token = server.access_token(OWNER, DEMO_PASSWORD).await;

    // Four writers create workspaces until the server is gone.
    let (acknowledged, writers) = write_until_gone(&client, &server.base, &token);
    while acknowledged.lock().unwrap().len() < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged: HashSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    let store = open_store(&db).await;
    let left_behind = plinth_events::dispatch::lag(&store).await.unwrap().unpublished;
    store.close().await;

    // Restarted, the server publishes what the killed one left behind.
    let restarted = Server::start_with(&db, &env);
    let mut drained = false;
    for _ in 0..300 {
        let ready = restarted.get_json("/readyz").await;
        if ready["outbox"]["unpublished"] == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(drained, "the outbox was not published within 30 s of the restart");

    // Everything in the stream, read by an independent client: one copy per event id.
    let stream = nats.stream().await;
    let stored = stream.get_info().await.unwrap().state.messages;
    let reader = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = reader.messages().await.unwrap();
    let mut ids = HashSet::new();
    let mut workspaces = HashSet::new();
    for _ in 0..stored {
        let message = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await
            .expect("the stream delivers what it stores")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        assert!(
            ids.insert(event["id"].as_str().unwrap().to_owned()),
            "stored twice: {event}"
        );
        if event["type"] == "workspace.created" {
            workspaces.insert(event["data"]["workspace_id"].as_str().unwrap().to_owned());
        }
    }
    // Every event committed, not only the acknowledged ones (a change committed as the
    // process died is kept too, and its event with it).
    let store = open_store(&db).await;
    let mut read = store.read().await.unwrap();
    let committed: Vec<uuid::Uuid> = plinth_store::on!(read.conn(), c => sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_all(c).await)
    .unwrap();
    drop(read);
    store.close().await;
    let unpublished: Vec<_> = committed.iter().filter(|id| !ids.contains(&id.to_string())).collect();
    assert!(
        unpublished.is_empty(),
        "committed but not in the stream: {unpublished:?}"
    );
    let lost: Vec<_> = acknowledged.difference(&workspaces).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged changes lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    assert!(acknowledged.len() >= 200);
    eprintln!(
        "{:?}: {} acknowledged before SIGKILL, {left_behind} left unpublished, {stored} events stored once each",
        db.backend,
        acknowledged.len()
    );
    drop(restarted);
    nats.delete().await;
}
