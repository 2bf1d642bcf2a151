//! The event catalogue as subscribers see it: every type listed with the schema of its
//! payload, and the events written for real changes shaped as those schemas say.

use std::collections::BTreeSet;

use plinth_store::on;
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::{Value, json};

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    every_event_type_is_published_with_its_schema_and_events_follow_it,
    a_tenant_reads_its_own_recent_events_filtered_and_paged,
);

fn properties(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

async fn every_event_type_is_published_with_its_schema_and_events_follow_it(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@events.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@events.test", PASSWORD).await;
    let types: Vec<Value> = app
        .get_as("/api/v1/events/types", &owner)
        .await
        .json()
        .await
        .unwrap();
    let spec: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let schemas = &spec["components"]["schemas"];
    assert!(types.len() >= 18, "{types:?}");
    for event in &types {
        let schema = &schemas[event["schema"].as_str().unwrap()];
        assert!(!properties(schema).is_empty(), "no schema for {event}");
        assert!(event["version"].as_u64().unwrap() >= 1);
    }

    let tenant = app.create_tenant(&owner, "events").await;
    let created = app
        .post_as(
            "/api/v1/tenants/events/workspaces",
            &owner,
            &json!({"slug": "north", "name": "North"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let mut conn = app.db.read().await.unwrap();
    let rows: Vec<(String, i64, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT event_type, event_version, CAST(data AS TEXT) FROM outbox WHERE tenant_id = $1 ORDER BY seq"
    ).bind(uuid::Uuid::parse_str(tenant["id"].as_str().unwrap()).unwrap()).fetch_all(c).await)
    .unwrap();
    drop(conn);
    let written: Vec<&str> = rows.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(written, ["tenant.created", "workspace.created"]);
    for (event_type, version, data) in &rows {
        let listed = types
            .iter()
            .find(|t| t["name"] == event_type.as_str())
            .unwrap();
        assert_eq!(listed["version"].as_i64(), Some(*version));
        let data: Value = serde_json::from_str(data).unwrap();
        let keys: BTreeSet<String> = data.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            properties(&schemas[listed["schema"].as_str().unwrap()]),
            "{event_type}: {data}"
        );
    }
    app.stop().await;
}

async fn events_page(app: &TestApp, token: &str, tenant: &str, query: &str) -> Value {
    let response = app
        .get_as(&format!("/api/v1/tenants/{tenant}/events{query}"), token)
        .await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn types_of(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

async fn a_tenant_reads_its_own_recent_events_filtered_and_paged(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@feed.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@feed.test", PASSWORD).await;
    let tenant_id = app.create_tenant(&owner, "feed").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for slug in ["north", "south"] {
        let created = app
            .post_as(
                "/api/v1/tenants/feed/workspaces",
                &owner,
                &json!({"slug": slug, "name": slug}),
            )
            .await;
        assert_eq!(created.status(), 201);
    }
    app.create_user("other@feed.test", PASSWORD, true, &[])
        .await;
    let other = app.access_token("other@feed.test", PASSWORD).await;
    app.create_tenant(&other, "elsewhere").await;
    let viewer = app
        .create_user("viewer@feed.test", PASSWORD, true, &[])
        .await;
    app.add_member(&tenant_id, viewer, "viewer").await;
    let viewer_token = app.access_token("viewer@feed.test", PASSWORD).await;

    let all = events_page(&app, &owner, "feed", "").await;
    assert_eq!(
        types_of(&all),
        ["workspace.created", "workspace.created", "tenant.created"],
        "newest first, this tenant's only"
    );
    assert_eq!(all["items"][0]["data"]["slug"], "south");
    assert_eq!(all["items"][0]["version"], 1);
    assert!(all["items"][0]["published_at"].is_null());
    let tenants = events_page(&app, &owner, "feed", "?type=tenant.*").await;
    assert_eq!(types_of(&tenants), ["tenant.created"]);
    let first = events_page(&app, &owner, "feed", "?limit=2").await;
    assert_eq!(types_of(&first).len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = events_page(&app, &owner, "feed", &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(types_of(&rest), ["tenant.created"]);
    assert!(rest["next_cursor"].is_null());
    let theirs = events_page(&app, &other, "elsewhere", "").await;
    assert_eq!(types_of(&theirs), ["tenant.created"]);

    assert_problem(
        app.get_as("/api/v1/tenants/feed/events?type=nothing.*", &owner)
            .await,
        422,
        "validation-failed",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/tenants/feed/events", &viewer_token)
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/tenants/feed/events", &other).await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}
