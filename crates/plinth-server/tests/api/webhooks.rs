//! Webhooks: endpoints registered through the API, events delivered to a real receiver on
//! loopback and verified with the Standard Webhooks reference library (not our signing
//! code), retries into the dead-letter queue, replay, 410 Gone, secret rotation, and the
//! SSRF guard at registration.

use std::time::Duration;

use plinth_testkit::webhook::{Answer, Received, Receiver};
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::{Value, json};

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    deliveries_are_signed_retried_into_the_dead_letter_queue_and_replayed,
    a_429_waits_for_its_retry_after_and_a_410_disables_the_endpoint_and_tells_the_owners,
    a_rotated_secret_signs_beside_the_new_one,
    endpoints_are_the_tenants_own_and_their_secret_is_shown_once,
    endpoints_naming_private_addresses_are_refused_with_a_problem_document,
    deliveries_waiting_for_a_deliverer_show_in_the_metrics,
);

const WAIT: Duration = Duration::from_secs(15);

/// An app whose webhooks may reach the loopback receiver, retrying at once `retries`
/// times.
async fn app(db: TestDatabase, retries: usize) -> TestApp {
    TestApp::on(db)
        .with("signup_enabled", true)
        .with("webhook_allow_http", true)
        .with("webhook_allowed_networks", "127.0.0.0/8")
        .with("webhook_retry_schedule", vec!["0s"; retries].join(","))
        .dispatching()
        .spawn()
        .await
}

/// An owner with a tenant; returns the owner's token.
async fn owner_of(app: &TestApp, slug: &str) -> String {
    let email = format!("owner@{slug}.test");
    app.create_user(&email, PASSWORD, true, &[]).await;
    let token = app.access_token(&email, PASSWORD).await;
    app.create_tenant(&token, slug).await;
    token
}

async fn register(app: &TestApp, token: &str, tenant: &str, body: Value) -> Value {
    let response = app
        .post_as(&format!("/api/v1/tenants/{tenant}/webhooks"), token, &body)
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Whether `received` verifies under `secret` with the Standard Webhooks library.
fn verifies(secret: &str, received: &Received) -> bool {
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, received.header(name).parse().unwrap());
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&received.body, &headers)
        .is_ok()
}

async fn deliveries(
    app: &TestApp,
    token: &str,
    tenant: &str,
    endpoint: &str,
    query: &str,
) -> Vec<Value> {
    let response = app
        .get_as(
            &format!("/api/v1/tenants/{tenant}/webhooks/{endpoint}/deliveries{query}"),
            token,
        )
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

/// Polls the delivery log until `check` holds (the attempt is recorded just after the
/// receiver answers).
async fn until_logged(
    app: &TestApp,
    token: &str,
    tenant: &str,
    endpoint: &str,
    query: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..300 {
        let items = deliveries(app, token, tenant, endpoint, query).await;
        if check(&items) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery log never showed what was expected ({query})");
}

async fn deliveries_are_signed_retried_into_the_dead_letter_queue_and_replayed(db: TestDatabase) {
    let app = app(db, 2).await;
    let receiver = Receiver::start(vec![
        Answer::status(500),
        Answer::status(503),
        Answer::status(502),
    ])
    .await;
    let owner = owner_of(&app, "hooked").await;
    let created = register(
        &app,
        &owner,
        "hooked",
        json!({"url": receiver.url, "event_types": ["workspace.*"], "description": "CRM sync"}),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let endpoint = created["id"].as_str().unwrap().to_owned();

    // Three attempts (the first and two retries) all fail: the delivery is dead.
    app.create_workspace(&owner, "hooked", "north").await;
    let failed = receiver.wait_for(3, WAIT).await;
    let id = failed[0].header("webhook-id").to_owned();
    for attempt in &failed {
        assert_eq!(
            attempt.header("webhook-id"),
            id,
            "one message id across attempts"
        );
        assert!(verifies(&secret, attempt), "every attempt is signed");
        assert_eq!(attempt.header("content-type"), "application/json");
    }
    let body = failed[0].json();
    assert_eq!(body["type"], "workspace.created");
    assert_eq!(body["data"]["slug"], "north");
    let dead = until_logged(&app, &owner, "hooked", &endpoint, "?status=dead", |d| {
        d.len() == 1
    })
    .await;
    assert_eq!(dead[0]["id"], id);
    let statuses: Vec<&Value> = dead[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(503), &json!(502)]);
    assert_eq!(dead[0]["attempts"][1]["response"], "answered 503");

    // A workspace after that is delivered at once (the receiver recovered); a tenant
    // change is not (the endpoint takes workspace events only).
    let patched = app
        .patch_as(
            "/api/v1/tenants/hooked",
            &owner,
            &json!({"name": "Hooked Inc"}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    app.create_workspace(&owner, "hooked", "south").await;
    let fourth = receiver.wait_for(4, WAIT).await.pop().unwrap();
    assert_eq!(fourth.json()["data"]["slug"], "south");
    assert!(verifies(&secret, &fourth));

    // Replaying the dead one delivers it, under its first id.
    let replayed = app
        .post_as(
            &format!("/api/v1/tenants/hooked/webhooks/{endpoint}/replay"),
            &owner,
            &json!({"delivery_id": id}),
        )
        .await;
    assert_eq!(replayed.status(), 200);
    assert_eq!(replayed.json::<Value>().await.unwrap()["deliveries"], 1);
    let fifth = receiver.wait_for(5, WAIT).await.pop().unwrap();
    assert_eq!(fifth.header("webhook-id"), id);
    assert!(verifies(&secret, &fifth));
    until_logged(
        &app,
        &owner,
        "hooked",
        &endpoint,
        "?status=dead",
        <[Value]>::is_empty,
    )
    .await;
    let all = until_logged(
        &app,
        &owner,
        "hooked",
        &endpoint,
        "?status=delivered",
        |d| d.len() == 2,
    )
    .await;
    assert!(
        all.iter().all(|d| d["event_type"] == "workspace.created"),
        "{all:?}"
    );
    // Nothing is left to replay; an unknown delivery is not found.
    let again = app
        .post_as(
            &format!("/api/v1/tenants/hooked/webhooks/{endpoint}/replay"),
            &owner,
            &json!({"delivery_id": id}),
        )
        .await;
    assert_problem(again, 404, "not-found").await;
    let since = app
        .post_as(
            &format!("/api/v1/tenants/hooked/webhooks/{endpoint}/replay"),
            &owner,
            &json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(since.json::<Value>().await.unwrap()["deliveries"], 0);
    assert_eq!(receiver.received().len(), 5, "no delivery was sent twice");
    app.stop().await;
}

async fn a_429_waits_for_its_retry_after_and_a_410_disables_the_endpoint_and_tells_the_owners(
    db: TestDatabase,
) {
    let app = app(db, 3).await;
    let receiver = Receiver::start(vec![
        Answer {
            retry_after: Some("1".into()),
            ..Answer::status(429)
        },
        Answer::status(410),
    ])
    .await;
    let owner = owner_of(&app, "gone").await;
    let created = register(&app, &owner, "gone", json!({"url": receiver.url})).await;
    let endpoint = created["id"].as_str().unwrap().to_owned();

    let sent = app
        .post_as(
            &format!("/api/v1/tenants/gone/webhooks/{endpoint}/test"),
            &owner,
            &json!({}),
        )
        .await;
    assert_eq!(sent.status(), 202);
    let delivery = sent.json::<Value>().await.unwrap()["delivery_id"].clone();
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(received[0].json()["type"], "webhook.test");
    let dead = until_logged(&app, &owner, "gone", &endpoint, "?status=dead", |d| {
        d.len() == 1
    })
    .await;
    assert_eq!(dead[0]["id"], delivery);
    let attempts = dead[0]["attempts"].as_array().unwrap();
    let at = |i: usize| {
        time::OffsetDateTime::parse(
            attempts[i]["attempted_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert!(
        at(1) - at(0) >= time::Duration::SECOND,
        "the retry waited for Retry-After, not the 0 s schedule"
    );
    assert_eq!(attempts[1]["status_code"], 410);

    let endpoint_now: Value = app
        .get_as(&format!("/api/v1/tenants/gone/webhooks/{endpoint}"), &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(endpoint_now["enabled"], false);
    assert_eq!(endpoint_now["disabled_reason"], "gone");
    let mails = app.emails_to("owner@gone.test").await;
    assert!(
        mails
            .iter()
            .any(|m| m.template == "webhook_disabled" && m.text_body.contains(&receiver.url)),
        "the owner is told"
    );
    assert_eq!(
        app.events_about(&format!("webhook/{endpoint}"))
            .await
            .last()
            .map(String::as_str),
        Some("webhook.disabled")
    );

    // Disabled: events are no longer delivered to it, until a person enables it again.
    app.create_workspace(&owner, "gone", "quiet").await;
    let enabled = app
        .patch_as(
            &format!("/api/v1/tenants/gone/webhooks/{endpoint}"),
            &owner,
            &json!({"enabled": true}),
        )
        .await;
    let enabled: Value = enabled.json().await.unwrap();
    assert_eq!(enabled["enabled"], true);
    assert!(enabled["disabled_reason"].is_null());
    app.create_workspace(&owner, "gone", "loud").await;
    let third = receiver.wait_for(3, WAIT).await.pop().unwrap();
    assert_eq!(
        third.json()["data"]["slug"],
        "loud",
        "the event from while it was disabled was not sent"
    );
    app.stop().await;
}

async fn a_rotated_secret_signs_beside_the_new_one(db: TestDatabase) {
    let app = app(db, 1).await;
    let receiver = Receiver::start(Vec::new()).await;
    let owner = owner_of(&app, "rotate").await;
    let created = register(&app, &owner, "rotate", json!({"url": receiver.url})).await;
    let endpoint = created["id"].as_str().unwrap();
    let old = created["secret"].as_str().unwrap().to_owned();
    let rotated = app
        .post_as(
            &format!("/api/v1/tenants/rotate/webhooks/{endpoint}/rotate-secret"),
            &owner,
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    assert!(!rotated["previous_secret_expires_at"].is_null());
    app.post_as(
        &format!("/api/v1/tenants/rotate/webhooks/{endpoint}/test"),
        &owner,
        &json!({}),
    )
    .await;
    let received = receiver.wait_for(1, WAIT).await.pop().unwrap();
    assert_eq!(received.header("webhook-signature").split(' ').count(), 2);
    assert!(verifies(&new, &received), "the new secret verifies");
    assert!(verifies(&old, &received), "so does the old one, for a day");
    let stranger = plinth_events::webhooks::SigningSecret::generate()
        .unwrap()
        .expose();
    assert!(!verifies(&stranger, &received));
    app.stop().await;
}

async fn endpoints_are_the_tenants_own_and_their_secret_is_shown_once(db: TestDatabase) {
    let app = app(db, 1).await;
    let receiver = Receiver::start(Vec::new()).await;
    let owner = owner_of(&app, "mine").await;
    let other = owner_of(&app, "theirs").await;
    let created = register(
        &app,
        &owner,
        "mine",
        json!({"url": receiver.url, "event_types": ["member.*", "tenant.updated"]}),
    )
    .await;
    let endpoint = created["id"].as_str().unwrap();
    assert_eq!(
        created["event_types"],
        json!(["member.*", "tenant.updated"])
    );
    assert_eq!(created["enabled"], true);

    let path = format!("/api/v1/tenants/mine/webhooks/{endpoint}");
    let shown: Value = app.get_as(&path, &owner).await.json().await.unwrap();
    assert!(shown.get("secret").is_none(), "the secret is shown once");
    let list: Value = app
        .get_as("/api/v1/tenants/mine/webhooks", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("secret").is_none());

    // Another tenant's owner sees nothing of it, by its id or through their own tenant.
    assert_problem(app.get_as(&path, &other).await, 404, "not-found").await;
    assert_problem(
        app.get_as(
            &format!("/api/v1/tenants/theirs/webhooks/{endpoint}"),
            &other,
        )
        .await,
        404,
        "not-found",
    )
    .await;
    // A member without webhooks:manage may not list them.
    let member = app
        .create_user("member@mine.test", PASSWORD, true, &[])
        .await;
    let mine: Value = app
        .get_as("/api/v1/tenants/mine", &owner)
        .await
        .json()
        .await
        .unwrap();
    app.add_member(mine["id"].as_str().unwrap(), member, "member")
        .await;
    let member_token = app.access_token("member@mine.test", PASSWORD).await;
    assert_problem(
        app.get_as("/api/v1/tenants/mine/webhooks", &member_token)
            .await,
        403,
        "forbidden",
    )
    .await;

    // Unknown event types are refused; a change is recorded and announced.
    let bad = app
        .patch_as(
            &path,
            &owner,
            &json!({"event_types": ["member.*", "nothing.like.this"]}),
        )
        .await;
    let problem = assert_problem(bad, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["code"], "unknown_event_type");
    let changed = app
        .patch_as(
            &path,
            &owner,
            &json!({"description": "billing", "enabled": false}),
        )
        .await;
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["description"], "billing");
    assert_eq!(changed["enabled"], false);
    let deleted = app.delete_as(&path, &owner).await;
    assert_eq!(deleted.status(), 204);
    assert_problem(app.get_as(&path, &owner).await, 404, "not-found").await;
    assert_eq!(
        app.events_about(&format!("webhook/{endpoint}")).await,
        ["webhook.created", "webhook.updated", "webhook.deleted"]
    );
    app.stop().await;
}

async fn endpoints_naming_private_addresses_are_refused_with_a_problem_document(db: TestDatabase) {
    // The platform's defaults: https only, public addresses only.
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = owner_of(&app, "guarded").await;
    for (url, code) in [
        ("https://127.0.0.1/hook", "not_public"),
        ("https://10.0.0.1/hook", "not_public"),
        ("https://169.254.169.254/latest/meta-data", "not_public"),
        ("https://[::1]:8443/hook", "not_public"),
        ("https://[::ffff:192.168.1.1]/hook", "not_public"),
        ("https://localhost/hook", "not_public"),
        ("http://example.com/hook", "https_required"),
        ("https://no-such-host.invalid/hook", "unresolvable"),
    ] {
        let response = app
            .post_as(
                "/api/v1/tenants/guarded/webhooks",
                &owner,
                &json!({"url": url}),
            )
            .await;
        let problem = assert_problem(response, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["code"], code, "{url}: {problem}");
        assert_eq!(problem["errors"][0]["pointer"], "/url", "{url}");
    }
    let refused = app
        .post_as(
            "/api/v1/tenants/guarded/webhooks",
            &owner,
            &json!({"url": "https://localhost/hook"}),
        )
        .await;
    let problem = assert_problem(refused, 422, "validation-failed").await;
    assert!(
        problem["errors"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not a public address")
            || problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("not a public address"),
        "{problem}"
    );
    let list: Value = app
        .get_as("/api/v1/tenants/guarded/webhooks", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]));
    app.stop().await;
}

async fn deliveries_waiting_for_a_deliverer_show_in_the_metrics(db: TestDatabase) {
    // No deliverer runs (the app is not dispatching): a test delivery stays due.
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("webhook_allow_http", true)
        .with("webhook_allowed_networks", "127.0.0.0/8")
        .spawn()
        .await;
    let owner = owner_of(&app, "backlog").await;
    let metric = |text: &str, name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&text, "plinth_webhook_deliveries_due "), 0.0);
    assert_eq!(metric(&text, "plinth_webhook_delivery_lag_seconds "), 0.0);

    let created = register(
        &app,
        &owner,
        "backlog",
        json!({"url": "http://127.0.0.1:9/hook"}),
    )
    .await;
    let endpoint = created["id"].as_str().unwrap().to_owned();
    app.post_as(
        &format!("/api/v1/tenants/backlog/webhooks/{endpoint}/test"),
        &owner,
        &json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&text, "plinth_webhook_deliveries_due "), 1.0);
    assert!(metric(&text, "plinth_webhook_delivery_lag_seconds ") > 0.0);

    // A disabled endpoint's deliveries are not owed to anyone until it is enabled again.
    app.patch_as(
        &format!("/api/v1/tenants/backlog/webhooks/{endpoint}"),
        &owner,
        &json!({"enabled": false}),
    )
    .await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&text, "plinth_webhook_deliveries_due "), 0.0);
    app.stop().await;
}
