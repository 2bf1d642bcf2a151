use plinth_testkit::{TestDatabase, backend_tests};

use crate::support::TestApp;

backend_tests!(
    liveness_answers_ok,
    readiness_reports_database_and_migrations,
    readiness_fails_when_the_database_is_gone,
    metrics_count_requests_by_route_template_and_status,
    a_stuck_outbox_shows_in_readiness_and_metrics_without_failing_readiness,
);

async fn liveness_answers_ok(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    app.stop().await;
}

async fn readiness_reports_database_and_migrations(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["migrations"], "current");
    assert_eq!(body["backend"], app.db.backend().as_str());
    app.stop().await;
}

async fn readiness_fails_when_the_database_is_gone(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.db.close().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["database"], "unreachable");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}

async fn metrics_count_requests_by_route_template_and_status(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/assets/missing.css").await;
    app.get("/no/such/route").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle} in\n{text}"))
    };
    assert!(
        line(r#"plinth_http_requests_total{method="GET",route="/healthz",status="200"}"#)
            .ends_with(" 3")
    );
    // A template, not the concrete path, so label cardinality stays bounded.
    line(r#"plinth_http_requests_total{method="GET",route="/assets/{file}",status="404"}"#);
    line(r#"plinth_http_requests_total{method="GET",route="unmatched",status="404"}"#);
    line(
        r#"plinth_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz",status="200"}"#,
    );
    line("plinth_db_pool_connections{pool=");
    line("plinth_db_pool_max_connections{pool=");
    line(r#"plinth_build_info{version=""#);
    app.stop().await;
}

async fn a_stuck_outbox_shows_in_readiness_and_metrics_without_failing_readiness(db: TestDatabase) {
    // No dispatcher runs here: what is committed stays unpublished.
    let app = TestApp::spawn(db).await;
    let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["outbox"]["status"], "ok");
    assert_eq!(ready["outbox"]["unpublished"], 0);

    let tenant = plinth_core::TenantId::new();
    let mut tx = app.db.begin().await.unwrap();
    let event = plinth_events::NewEvent::of(&plinth_events::catalog::TenantUpdated {
        tenant_id: tenant.0,
    })
    .tenant(tenant);
    plinth_events::enqueue(&mut tx, &plinth_core::Actor::system(), event)
        .await
        .unwrap();
    let two_minutes_ago = plinth_core::Timestamp::now() - time::Duration::minutes(2);
    plinth_store::exec!(tx.conn(), c => sqlx::query("UPDATE outbox SET occurred_at = $1")
        .bind(two_minutes_ago).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();

    let response = app.get("/readyz").await;
    assert_eq!(
        response.status(),
        200,
        "a stuck outbox does not take the instance out"
    );
    let ready: serde_json::Value = response.json().await.unwrap();
    assert_eq!(ready["outbox"]["status"], "stuck");
    assert_eq!(ready["outbox"]["unpublished"], 1);
    assert!(ready["outbox"]["lag_seconds"].as_f64().unwrap() >= 120.0);
    let text = app.get("/metrics").await.text().await.unwrap();
    let value = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("plinth_outbox_lag_seconds ") >= 120.0, "{text}");
    assert_eq!(value("plinth_outbox_unpublished_events "), 1.0);
    assert_eq!(value("plinth_event_streams_open "), 0.0);
    app.stop().await;
}
