//! Sign-up, e-mail verification and password reset.

use plinth_store::exec;
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    sign_up_is_refused_when_disabled,
    sign_up_verifies_the_address_and_unlocks_the_account,
    signing_up_with_a_taken_address_answers_the_same_and_tells_the_owner,
    verification_links_work_once_and_expire,
    forgot_password_answers_the_same_for_unknown_addresses,
    a_reset_link_sets_the_password_once_and_ends_every_session,
    signup_is_rate_limited,
);

async fn sign_up_is_refused_when_disabled(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let r = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"email": "n@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(r, 403, "forbidden").await;
    app.stop().await;
}

async fn sign_up_verifies_the_address_and_unlocks_the_account(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let r = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"email": "New@Example.com", "password": PASSWORD, "display_name": "New"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "accepted"})
    );

    // Unverified: signed in, but limited to the account's own routes.
    let tokens = app.login("new@example.com", PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();
    let me: serde_json::Value = app.get_as("/api/v1/me", token).await.json().await.unwrap();
    assert!(me["user"]["email_verified_at"].is_null());
    assert!(me["restriction"].as_str().unwrap().contains("verify"));
    let limited = app
        .post_as("/api/v1/auth/introspect", token, &json!({"token": "x"}))
        .await;
    assert_problem(limited, 403, "forbidden").await;

    let link = app.wait_for_link_token("New@Example.com", "verify").await;
    assert_eq!(
        app.post_json("/api/v1/auth/verify-email", &json!({"token": link}))
            .await
            .status(),
        204
    );
    let me: serde_json::Value = app.get_as("/api/v1/me", token).await.json().await.unwrap();
    assert!(me["user"]["email_verified_at"].is_string());
    assert!(
        me["restriction"].is_null(),
        "the same session is unlimited at once"
    );
    assert_eq!(
        app.post_as("/api/v1/auth/introspect", token, &json!({"token": "x"}))
            .await
            .status(),
        200
    );
    app.stop().await;
}

async fn signing_up_with_a_taken_address_answers_the_same_and_tells_the_owner(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("taken@example.com", PASSWORD, true, &[])
        .await;
    let r = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"email": "TAKEN@example.com", "password": "someone elses passphrase"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "accepted"})
    );
    let emails = app.emails_to("taken@example.com").await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].template, "signup_existing");
    app.login("taken@example.com", PASSWORD).await;

    let weak = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"email": "x@example.com", "password": "qazwsxedcrfv"}),
        )
        .await;
    let body = assert_problem(weak, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["code"], "too_common");
    app.stop().await;
}

async fn verification_links_work_once_and_expire(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.post_json(
        "/api/v1/auth/signup",
        &json!({"email": "v@example.com", "password": PASSWORD}),
    )
    .await;
    let link = app.wait_for_link_token("v@example.com", "verify").await;
    assert_eq!(
        app.post_json("/api/v1/auth/verify-email", &json!({"token": link}))
            .await
            .status(),
        204
    );
    let again = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": link}))
        .await;
    assert_problem(again, 400, "invalid-token").await;

    app.post_json(
        "/api/v1/auth/signup",
        &json!({"email": "late@example.com", "password": PASSWORD}),
    )
    .await;
    let late = app.wait_for_link_token("late@example.com", "verify").await;
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE one_time_tokens SET expires_at = $1 WHERE purpose = 'verify_email' AND used_at IS NULL")
        .bind(plinth_core::Timestamp::now() - time::Duration::seconds(1)).execute(c).await).unwrap();
    tx.commit().await.unwrap();
    let expired = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": late}))
        .await;
    assert_problem(expired, 400, "invalid-token").await;

    // A resend gives a fresh link.
    let tokens = app.login("late@example.com", PASSWORD).await;
    let resend = app
        .post_as(
            "/api/v1/auth/verify-email/resend",
            tokens["access_token"].as_str().unwrap(),
            &json!({}),
        )
        .await;
    assert_eq!(resend.status(), 202);
    let emails = app.emails_to("late@example.com").await;
    assert_eq!(emails.iter().filter(|e| e.template == "verify").count(), 2);
    app.stop().await;
}

async fn forgot_password_answers_the_same_for_unknown_addresses(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("f@example.com", PASSWORD, true, &[]).await;
    let known = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "f@example.com"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "ghost@example.com"}),
        )
        .await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    let (known, unknown): (serde_json::Value, serde_json::Value) =
        (known.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(known, unknown);
    app.wait_for_link_token("f@example.com", "reset").await;
    assert!(app.emails_to("ghost@example.com").await.is_empty());
    app.stop().await;
}

async fn a_reset_link_sets_the_password_once_and_ends_every_session(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("reset@example.com", PASSWORD, true, &[])
        .await;
    let old_session = app.login("reset@example.com", PASSWORD).await;
    app.post_json(
        "/api/v1/auth/forgot-password",
        &json!({"email": "reset@example.com"}),
    )
    .await;
    let token = app.wait_for_link_token("reset@example.com", "reset").await;

    let weak = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "short"}),
        )
        .await;
    assert_problem(weak, 422, "validation-failed").await;
    let new_password = "a brand new long passphrase";
    let ok = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": new_password}),
        )
        .await;
    assert_eq!(
        ok.status(),
        204,
        "a rejected password does not burn the link"
    );
    let again = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": "yet another passphrase"}),
        )
        .await;
    assert_problem(again, 400, "invalid-token").await;

    assert_eq!(
        app.get_as("/api/v1/me", old_session["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": old_session["refresh_token"]}),
        )
        .await;
    assert_eq!(refresh.status(), 401);
    let old = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "reset@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status(), 401);
    app.login("reset@example.com", new_password).await;
    app.stop().await;
}

async fn signup_is_rate_limited(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("rate_limit_signup", 2)
        .spawn()
        .await;
    for i in 0..2 {
        let r = app
            .post_json(
                "/api/v1/auth/signup",
                &json!({"email": format!("s{i}@example.com"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), 202);
    }
    let limited = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"email": "s9@example.com", "password": PASSWORD}),
        )
        .await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_problem(limited, 429, "rate-limited").await;
    app.stop().await;
}
