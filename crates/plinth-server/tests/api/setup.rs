//! First-run setup through the API and the page.

use plinth_store::{exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::support::{TestApp, assert_problem};

backend_tests!(
    the_setup_token_creates_the_first_super_admin_once,
    an_expired_setup_token_is_refused,
    weak_passwords_and_bad_emails_are_reported_per_field,
    two_concurrent_uses_of_one_token_create_one_admin,
    no_setup_link_is_issued_once_an_admin_exists,
    the_setup_page_works_without_javascript,
);

fn admin(token: &str) -> serde_json::Value {
    json!({
        "token": token,
        "email": "Root@Example.com",
        "password": "a sufficiently long passphrase",
        "display_name": "Root"
    })
}

async fn the_setup_token_creates_the_first_super_admin_once(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let token = app.setup_token().await;
    let response = app.post_json("/api/v1/setup", &admin(&token)).await;
    assert_eq!(response.status(), 201);
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(user["email"], "Root@Example.com");
    assert_eq!(user["status"], "active");
    assert!(user.get("password_hash").is_none(), "no hash in responses");

    let again = app.post_json("/api/v1/setup", &admin(&token)).await;
    assert_problem(again, 400, "invalid-token").await;

    // The change, its audit record and its event were written together.
    let report = plinth_audit::verify_chain(&app.db, None, &plinth_audit::NoSeal)
        .await
        .unwrap();
    assert!(report.is_intact());
    assert_eq!(report.records, 1);
    let mut conn = app.db.read().await.unwrap();
    let (action, actor_id): (String, Option<uuid::Uuid>) = on!(conn.conn(), c => sqlx::query_as(
        "SELECT action, actor_id FROM audit_log"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!(action, "platform.superadmin.create");
    assert_eq!(
        actor_id.map(|a| a.to_string()),
        user["id"].as_str().map(str::to_owned)
    );
    let events: i64 = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = 'user.created'"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!(events, 1);
    let hash: String = on!(conn.conn(), c => sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(c).await).unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    drop(conn);
    app.stop().await;
}

async fn an_expired_setup_token_is_refused(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let token = app.setup_token().await;
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE one_time_tokens SET expires_at = $1")
        .bind(plinth_core::Timestamp::now() - time::Duration::seconds(1)).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();
    assert_problem(
        app.post_json("/api/v1/setup", &admin(&token)).await,
        400,
        "invalid-token",
    )
    .await;
    assert_problem(
        app.post_json("/api/v1/setup", &admin("never-issued")).await,
        400,
        "invalid-token",
    )
    .await;
    app.stop().await;
}

async fn weak_passwords_and_bad_emails_are_reported_per_field(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let token = app.setup_token().await;
    let response = app
        .post_json(
            "/api/v1/setup",
            &json!({"token": token, "email": "not-an-email", "password": "short"}),
        )
        .await;
    let body = assert_problem(response, 422, "validation-failed").await;
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, vec!["/email", "/password"]);

    let response = app
        .post_json(
            "/api/v1/setup",
            &json!({"token": token, "email": "a@example.com", "password": "QWERTY123456"}),
        )
        .await;
    let body = assert_problem(response, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["code"], "too_common");

    // The token survives failed attempts.
    assert_eq!(
        app.post_json("/api/v1/setup", &admin(&token))
            .await
            .status(),
        201
    );
    app.stop().await;
}

async fn two_concurrent_uses_of_one_token_create_one_admin(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let token = app.setup_token().await;
    let mut second = admin(&token);
    second["email"] = json!("other@example.com");
    let first = admin(&token);
    let (a, b) = tokio::join!(
        app.post_json("/api/v1/setup", &first),
        app.post_json("/api/v1/setup", &second)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 400]);
    let mut conn = app.db.read().await.unwrap();
    let admins: i64 = on!(conn.conn(), c => sqlx::query_scalar("SELECT count(*) FROM platform_role_assignments").fetch_one(c).await).unwrap();
    assert_eq!(admins, 1);
    drop(conn);
    app.stop().await;
}

async fn no_setup_link_is_issued_once_an_admin_exists(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let token = app.setup_token().await;
    assert_eq!(
        app.post_json("/api/v1/setup", &admin(&token))
            .await
            .status(),
        201
    );
    assert!(!app.state.setup.is_required().await.unwrap());
    assert!(app.state.setup.issue_token().await.unwrap().is_none());
    app.stop().await;
}

async fn the_setup_page_works_without_javascript(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let invalid = app.get("/setup?token=bogus").await;
    assert_eq!(invalid.status(), 400);
    assert!(invalid.text().await.unwrap().contains("cannot be used"));

    let token = app.setup_token().await;
    let page = app.get(&format!("/setup?token={token}")).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<form method="post" action="/setup""#));
    assert!(
        html.contains(r#"<label for="email">"#),
        "inputs are labelled"
    );

    let submit = |display_name: &'static str, confirm: &'static str| {
        app.client
            .post(app.url("/setup"))
            .form(&[
                ("token", token.as_str()),
                ("email", "ops@example.com"),
                ("display_name", display_name),
                ("password", "a sufficiently long passphrase"),
                ("password_confirm", confirm),
            ])
            .send()
    };
    let mismatch = submit("Ops", "something else entirely").await.unwrap();
    assert_eq!(mismatch.status(), 422);
    let html = mismatch.text().await.unwrap();
    assert!(html.contains("The two passwords differ."));
    assert!(
        html.contains(r#"value="ops@example.com""#),
        "the form keeps what was typed"
    );

    let done = submit("<script>x</script>", "a sufficiently long passphrase")
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("ops@example.com is now the platform")
    );
    assert_eq!(
        app.get(&format!("/setup?token={token}")).await.status(),
        400,
        "the link works once"
    );
    app.stop().await;
}
