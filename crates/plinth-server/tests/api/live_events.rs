//! The live event stream (`GET /api/v1/events/stream`), read as a browser's EventSource
//! reads it: frames separated by blank lines, resumed with `Last-Event-ID`.

use std::time::Duration;

use plinth_core::{Actor, TenantId};
use plinth_events::NewEvent;
use plinth_events::catalog::TenantUpdated;
use plinth_testkit::sse::{Frame, SseReader};
use plinth_testkit::{TestDatabase, TestNats, backend_tests};
use serde_json::{Value, json};

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    a_live_stream_delivers_its_tenants_changes_in_order_and_resumes_after_the_last_id,
    a_live_stream_filters_by_type_and_refuses_what_it_cannot_read,
    a_client_that_falls_behind_is_told_to_reconnect_instead_of_buffered,
    a_tenant_may_hold_only_so_many_streams_open,
    through_jetstream_each_event_is_stored_once_and_reaches_live_streams,
);

/// A client of the stream.
struct Stream {
    reader: SseReader,
}

impl Stream {
    async fn open(app: &TestApp, token: &str, query: &str, last_id: Option<&str>) -> Stream {
        let response = Self::request(app, token, query, last_id).await;
        assert_eq!(response.status(), 200, "{query}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Stream {
            reader: SseReader::new(response),
        }
    }

    async fn request(
        app: &TestApp,
        token: &str,
        query: &str,
        last_id: Option<&str>,
    ) -> reqwest::Response {
        let mut request = app
            .client
            .get(app.url(&format!("/api/v1/events/stream{query}")))
            .bearer_auth(token);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        request.send().await.unwrap()
    }

    async fn next(&mut self) -> Option<Frame> {
        self.reader.next().await
    }
}

/// Waits until every committed event is published: a stream opened after that starts
/// after them.
async fn settle(app: &TestApp) {
    for _ in 0..200 {
        if plinth_events::dispatch::lag(&app.db)
            .await
            .unwrap()
            .unpublished
            == 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the dispatcher did not publish the outbox within 5 s");
}

async fn a_live_stream_delivers_its_tenants_changes_in_order_and_resumes_after_the_last_id(
    db: TestDatabase,
) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .dispatching()
        .spawn()
        .await;
    app.create_user("owner@live.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@live.test", PASSWORD).await;
    let tenant = app.create_tenant(&owner, "live").await;
    app.create_user("other@live.test", PASSWORD, true, &[])
        .await;
    let other = app.access_token("other@live.test", PASSWORD).await;
    app.create_tenant(&other, "elsewhere").await;

    settle(&app).await;
    let mut stream = Stream::open(&app, &owner, "?tenant=live", None).await;
    app.create_workspace(&other, "elsewhere", "hidden").await;
    app.create_workspace(&owner, "live", "north").await;
    app.create_workspace(&owner, "live", "south").await;
    let first = stream.next().await.unwrap();
    let second = stream.next().await.unwrap();
    assert_eq!(first.event, "workspace.created");
    let body = first.json();
    assert_eq!(
        body["data"]["slug"], "north",
        "another tenant's event is not here"
    );
    assert_eq!(body["tenant_id"], tenant["id"]);
    assert_eq!(body["type"], "workspace.created");
    assert_eq!(first.id.as_deref(), Some(body["seq"].to_string().as_str()));
    assert!(!body["published_at"].is_null());
    assert_eq!(second.json()["data"]["slug"], "south");
    drop(stream);

    // Back after missing "south" and a change made while away: both, once, in order.
    app.create_workspace(&owner, "live", "east").await;
    let mut resumed = Stream::open(&app, &owner, "?tenant=live", first.id.as_deref()).await;
    app.create_workspace(&owner, "live", "west").await;
    let mut slugs = Vec::new();
    for _ in 0..3 {
        slugs.push(resumed.next().await.unwrap().json()["data"]["slug"].clone());
    }
    assert_eq!(slugs, ["south", "east", "west"]);
    app.stop().await;
}

async fn a_live_stream_filters_by_type_and_refuses_what_it_cannot_read(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .dispatching()
        .spawn()
        .await;
    app.create_user("owner@filter.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@filter.test", PASSWORD).await;
    let tenant = app.create_tenant(&owner, "filter").await;
    let tenant_id = tenant["id"].as_str().unwrap();

    settle(&app).await;
    let mut policies = Stream::open(
        &app,
        &owner,
        &format!("?tenant={tenant_id}&type=policy.*"),
        None,
    )
    .await;
    app.create_workspace(&owner, "filter", "skipped").await;
    let policy = app
        .post_as(
            "/api/v1/tenants/filter/policies",
            &owner,
            &json!({
                "name": "no-removals",
                "description": "test",
                "source": r#"forbid(principal, action == Plinth::Action::"members:remove", resource);"#,
            }),
        )
        .await;
    assert_eq!(policy.status(), 201, "{}", policy.text().await.unwrap());
    let frame = policies.next().await.unwrap();
    assert_eq!(frame.event, "policy.created");

    // A viewer cannot read events; an outsider does not learn the tenant exists.
    let viewer = app
        .create_user("viewer@filter.test", PASSWORD, true, &[])
        .await;
    app.add_member(tenant_id, viewer, "viewer").await;
    let viewer_token = app.access_token("viewer@filter.test", PASSWORD).await;
    let refused = Stream::request(&app, &viewer_token, "?tenant=filter", None).await;
    assert_problem(refused, 403, "forbidden").await;
    app.create_user("outsider@filter.test", PASSWORD, true, &[])
        .await;
    let outsider = app.access_token("outsider@filter.test", PASSWORD).await;
    let hidden = Stream::request(&app, &outsider, "?tenant=filter", None).await;
    assert_problem(hidden, 404, "not-found").await;

    let no_tenant = Stream::request(&app, &owner, "", None).await;
    assert_problem(no_tenant, 422, "validation-failed").await;
    let unknown_type = Stream::request(&app, &owner, "?tenant=filter&type=nothing.*", None).await;
    assert_problem(unknown_type, 422, "validation-failed").await;
    let bad_id = Stream::request(&app, &owner, "?tenant=filter", Some("yesterday")).await;
    assert_problem(bad_id, 422, "validation-failed").await;
    app.stop().await;
}

async fn a_client_that_falls_behind_is_told_to_reconnect_instead_of_buffered(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("events_stream_buffer", 4)
        .dispatching()
        .spawn()
        .await;
    app.create_user("owner@burst.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@burst.test", PASSWORD).await;
    let tenant = app.create_tenant(&owner, "burst").await;
    let tenant_id = TenantId(tenant["id"].as_str().unwrap().parse().unwrap());

    settle(&app).await;
    let mut stream = Stream::open(&app, &owner, "?tenant=burst", None).await;
    // Ten events in one commit reach the bus in one burst: more than the buffer of 4.
    let mut tx = app.db.begin().await.unwrap();
    for _ in 0..10 {
        let event = NewEvent::of(&TenantUpdated {
            tenant_id: tenant_id.0,
        })
        .tenant(tenant_id);
        plinth_events::enqueue(&mut tx, &Actor::system(), event)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let mut last_id = None;
    let overflow = loop {
        let frame = stream.next().await.unwrap();
        if frame.event != "tenant.updated" {
            break frame;
        }
        last_id = frame.id;
    };
    assert_eq!(overflow.event, "overflow");
    assert!(
        stream.next().await.is_none(),
        "the stream ends after overflow"
    );

    // Reconnecting from the last id it got yields the rest, each once, in order.
    let mut conn = app.db.read().await.unwrap();
    let newest: i64 = plinth_store::on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT MAX(seq) FROM outbox WHERE tenant_id = $1"
    ).bind(tenant_id).fetch_one(c).await)
    .unwrap();
    drop(conn);
    // A client that got nothing yet resumes from the start.
    let last_id = last_id.unwrap_or_else(|| "0".into());
    let mut resumed = Stream::open(
        &app,
        &owner,
        "?tenant=burst&type=tenant.updated",
        Some(&last_id),
    )
    .await;
    let mut previous: i64 = last_id.parse().unwrap();
    while previous < newest {
        let frame = resumed.next().await.unwrap();
        assert_eq!(frame.event, "tenant.updated");
        let seq: i64 = frame.id.unwrap().parse().unwrap();
        assert!(seq > previous, "each once, in order");
        previous = seq;
    }
    app.stop().await;
}

async fn a_tenant_may_hold_only_so_many_streams_open(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("events_streams_per_tenant", 2)
        .spawn()
        .await;
    app.create_user("owner@limit.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@limit.test", PASSWORD).await;
    app.create_tenant(&owner, "limit").await;
    app.create_tenant(&owner, "roomy").await;

    let first = Stream::open(&app, &owner, "?tenant=limit", None).await;
    let _second = Stream::open(&app, &owner, "?tenant=limit", None).await;
    let third = Stream::request(&app, &owner, "?tenant=limit", None).await;
    assert_problem(third, 429, "rate-limited").await;
    // The limit is per tenant.
    let _elsewhere = Stream::open(&app, &owner, "?tenant=roomy", None).await;
    assert_eq!(app.state.event_streams.open(), 3);

    // A client that hangs up gives its place back.
    drop(first);
    let mut reopened = None;
    for _ in 0..100 {
        let response = Stream::request(&app, &owner, "?tenant=limit", None).await;
        if response.status() == 200 {
            reopened = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reopened.is_some(),
        "the closed stream's place was given back"
    );
    app.stop().await;
}

async fn through_jetstream_each_event_is_stored_once_and_reaches_live_streams(db: TestDatabase) {
    let Some(nats) = TestNats::create() else {
        return;
    };
    let mut builder = TestApp::on(db).with("signup_enabled", true).dispatching();
    for (key, value) in nats.settings() {
        builder = builder.with(key, value);
    }
    let app = builder.spawn().await;
    app.create_user("owner@jet.test", PASSWORD, true, &[]).await;
    let owner = app.access_token("owner@jet.test", PASSWORD).await;
    let tenant = app.create_tenant(&owner, "jet").await;
    let tenant_id = TenantId(tenant["id"].as_str().unwrap().parse().unwrap());
    settle(&app).await;
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["nats"], "connected");

    let mut stream = Stream::open(&app, &owner, "?tenant=jet", None).await;
    app.create_workspace(&owner, "jet", "north").await;
    app.create_workspace(&owner, "jet", "south").await;
    for slug in ["north", "south"] {
        assert_eq!(stream.next().await.unwrap().json()["data"]["slug"], slug);
    }
    settle(&app).await;
    let stored = || async { nats.stream().await.get_info().await.unwrap().state.messages };
    let committed = || async {
        let mut conn = app.db.read().await.unwrap();
        let count: i64 =
            plinth_store::on!(conn.conn(), c => sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(c).await)
            .unwrap();
        u64::try_from(count).unwrap()
    };
    // The sign-in, tenant.created and two workspace.created: each once.
    assert_eq!(stored().await, committed().await);
    assert_eq!(stored().await, 4);

    // A dispatcher that published and died before marking publishes again with the same
    // ids: JetStream keeps one copy and the live stream passes each event once.
    let mut tx = app.db.begin().await.unwrap();
    plinth_store::exec!(tx.conn(), c => sqlx::query("UPDATE outbox SET published_at = NULL WHERE tenant_id = $1")
        .bind(tenant_id).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();
    settle(&app).await;
    app.create_workspace(&owner, "jet", "east").await;
    assert_eq!(stream.next().await.unwrap().json()["data"]["slug"], "east");
    settle(&app).await;
    assert_eq!(stored().await, 5, "no event stored twice");
    assert_eq!(stored().await, committed().await);
    app.stop().await;
    nats.delete().await;
}
