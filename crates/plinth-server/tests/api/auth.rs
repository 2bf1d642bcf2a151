//! Sign-in, tokens, sessions, lockout and rate limits.

use plinth_identity::PlatformRole;
use plinth_store::{exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::support::{TestApp, assert_problem};

pub const PASSWORD: &str = "a sufficiently long passphrase";

backend_tests!(
    login_returns_an_oauth_token_pair_that_authenticates,
    wrong_passwords_and_unknown_accounts_get_the_same_answer,
    refresh_rotates_and_reuse_revokes_the_whole_session,
    logout_ends_the_session_and_logout_all_every_session,
    users_list_and_revoke_their_own_sessions_only,
    administrators_revoke_sessions_and_others_cannot,
    repeated_failures_lock_the_account_until_unlocked,
    login_is_rate_limited_per_address_and_account,
    introspection_reports_active_and_inactive_tokens,
    changing_the_password_ends_the_other_sessions,
    platform_admins_must_sign_in_with_a_second_factor_before_admin_routes,
);

async fn login_returns_an_oauth_token_pair_that_authenticates(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let id = app
        .create_user("Ada@Example.com", PASSWORD, true, &[])
        .await;
    let tokens = app.login("ada@example.COM", PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    assert_eq!(
        tokens["refresh_token"].as_str().unwrap().len(),
        43,
        "256-bit refresh token"
    );
    let access = tokens["access_token"].as_str().unwrap();
    let me = app.get_as("/api/v1/me", access).await;
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["user"]["id"], id.to_string());
    assert_eq!(me["amr"], json!(["pwd"]));
    assert!(me["restriction"].is_null());

    assert_problem(app.get("/api/v1/me").await, 401, "unauthenticated").await;
    let forged = format!("{}x", &access[..access.len() - 1]);
    assert_problem(
        app.get_as("/api/v1/me", &forged).await,
        401,
        "unauthenticated",
    )
    .await;
    app.stop().await;
}

async fn wrong_passwords_and_unknown_accounts_get_the_same_answer(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("known@example.com", PASSWORD, true, &[])
        .await;
    let mut answers = Vec::new();
    for (email, password) in [
        ("known@example.com", "wrong password entirely"),
        ("nobody@example.com", PASSWORD),
        ("not-an-email", PASSWORD),
    ] {
        let response = app
            .post_json(
                "/api/v1/auth/login",
                &json!({"email": email, "password": password}),
            )
            .await;
        let mut body = assert_problem(response, 401, "invalid-credentials").await;
        body.as_object_mut().unwrap().remove("request_id");
        answers.push(body);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    let mut conn = app.db.read().await.unwrap();
    let failures: i64 = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.login.failed'"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!(failures, 3, "every failure is audited");
    drop(conn);
    app.stop().await;
}

async fn refresh_rotates_and_reuse_revokes_the_whole_session(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("r@example.com", PASSWORD, true, &[]).await;
    let first = app.login("r@example.com", PASSWORD).await;
    let refresh = |token: &serde_json::Value| {
        let body = json!({"refresh_token": token.as_str().unwrap()});
        let app = &app;
        async move { app.post_json("/api/v1/auth/refresh", &body).await }
    };
    let second_response = refresh(&first["refresh_token"]).await;
    assert_eq!(second_response.status(), 200);
    let second: serde_json::Value = second_response.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"], "rotated");
    assert_eq!(
        app.get_as("/api/v1/me", second["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // The rotated-away token comes back: someone copied it. The session ends.
    assert_problem(
        refresh(&first["refresh_token"]).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        refresh(&second["refresh_token"]).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/me", second["access_token"].as_str().unwrap())
            .await,
        401,
        "unauthenticated",
    )
    .await;

    let mut conn = app.db.read().await.unwrap();
    let (action, outcome): (String, String) = on!(conn.conn(), c => sqlx::query_as(
        "SELECT action, outcome FROM audit_log WHERE action = 'auth.refresh.reuse'"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!(
        (action.as_str(), outcome.as_str()),
        ("auth.refresh.reuse", "denied")
    );
    drop(conn);

    assert_problem(refresh(&json!("not-a-token")).await, 401, "unauthenticated").await;
    app.stop().await;
}

async fn logout_ends_the_session_and_logout_all_every_session(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("l@example.com", PASSWORD, true, &[]).await;
    let a = app.login("l@example.com", PASSWORD).await;
    let b = app.login("l@example.com", PASSWORD).await;
    let c = app.login("l@example.com", PASSWORD).await;
    let token = |t: &serde_json::Value| t["access_token"].as_str().unwrap().to_owned();

    assert_eq!(
        app.post_as("/api/v1/auth/logout", &token(&a), &json!({}))
            .await
            .status(),
        204
    );
    assert_eq!(app.get_as("/api/v1/me", &token(&a)).await.status(), 401);
    assert_eq!(
        app.get_as("/api/v1/me", &token(&b)).await.status(),
        200,
        "other sessions live on"
    );
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": a["refresh_token"]}),
        )
        .await;
    assert_eq!(
        refresh.status(),
        401,
        "a logged-out session cannot be refreshed"
    );

    let all = app
        .post_as("/api/v1/auth/logout-all", &token(&b), &json!({}))
        .await;
    assert_eq!(all.status(), 200);
    let all: serde_json::Value = all.json().await.unwrap();
    assert_eq!(all["sessions_revoked"], 2);
    assert_eq!(app.get_as("/api/v1/me", &token(&b)).await.status(), 401);
    assert_eq!(app.get_as("/api/v1/me", &token(&c)).await.status(), 401);
    app.stop().await;
}

async fn users_list_and_revoke_their_own_sessions_only(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("s@example.com", PASSWORD, true, &[]).await;
    app.create_user("other@example.com", PASSWORD, true, &[])
        .await;
    let mine = app.login("s@example.com", PASSWORD).await;
    let phone = app.login("s@example.com", PASSWORD).await;
    let other = app.login("other@example.com", PASSWORD).await;
    let token = mine["access_token"].as_str().unwrap();

    let sessions: serde_json::Value = app
        .get_as("/api/v1/me/sessions", token)
        .await
        .json()
        .await
        .unwrap();
    let sessions = sessions["items"].clone();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    let phone_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let other_sessions: serde_json::Value = app
        .get_as(
            "/api/v1/me/sessions",
            other["access_token"].as_str().unwrap(),
        )
        .await
        .json()
        .await
        .unwrap();
    let other_sessions = other_sessions["items"].clone();
    let other_id = other_sessions[0]["id"].as_str().unwrap();
    let foreign = app
        .send(
            app.client
                .delete(app.url(&format!("/api/v1/me/sessions/{other_id}"))),
            Some(token),
        )
        .await;
    assert_problem(foreign, 404, "not-found").await;
    assert_eq!(
        app.get_as("/api/v1/me", other["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    let revoke = app
        .send(
            app.client
                .delete(app.url(&format!("/api/v1/me/sessions/{phone_id}"))),
            Some(token),
        )
        .await;
    assert_eq!(revoke.status(), 204);
    assert_eq!(
        app.get_as("/api/v1/me", phone["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    app.stop().await;
}

async fn administrators_revoke_sessions_and_others_cannot(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    app.create_user(
        "admin@example.com",
        PASSWORD,
        true,
        &[PlatformRole::OpsAdmin],
    )
    .await;
    let victim = app.create_user("v@example.com", PASSWORD, true, &[]).await;
    let admin = app.login("admin@example.com", PASSWORD).await;
    let user = app.login("v@example.com", PASSWORD).await;
    let user_token = user["access_token"].as_str().unwrap();
    let path = format!("/api/v1/users/{victim}/sessions/revoke");

    assert_problem(
        app.post_as(&path, user_token, &json!({})).await,
        403,
        "forbidden",
    )
    .await;
    let response = app
        .post_as(&path, admin["access_token"].as_str().unwrap(), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["sessions_revoked"],
        1
    );
    assert_eq!(app.get_as("/api/v1/me", user_token).await.status(), 401);
    let missing = format!("/api/v1/users/{}/sessions/revoke", uuid::Uuid::now_v7());
    assert_problem(
        app.post_as(
            &missing,
            admin["access_token"].as_str().unwrap(),
            &json!({}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

async fn repeated_failures_lock_the_account_until_unlocked(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("lockout_threshold", 3)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    let user = app
        .create_user("lock@example.com", PASSWORD, true, &[])
        .await;
    app.create_user("ops@example.com", PASSWORD, true, &[PlatformRole::Support])
        .await;
    let earlier = app.login("lock@example.com", PASSWORD).await;
    for _ in 0..3 {
        let r = app
            .post_json(
                "/api/v1/auth/login",
                &json!({"email": "lock@example.com", "password": "not the password"}),
            )
            .await;
        assert_problem(r, 401, "invalid-credentials").await;
    }
    assert_eq!(
        app.events_about(&format!("user/{user}")).await,
        ["user.signed_in", "user.locked"],
        "the lockout is published once"
    );
    // Locked: even the right password is refused, with the same answer as a wrong one.
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "lock@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(r, 401, "invalid-credentials").await;
    // A lockout stops sign-ins only; it cannot be used to sign a victim out.
    assert_eq!(
        app.get_as("/api/v1/me", earlier["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let mut conn = app.db.read().await.unwrap();
    let lockouts: i64 = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.lockout'"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!(lockouts, 1);
    drop(conn);

    let ops = app.login("ops@example.com", PASSWORD).await;
    let unlock = app
        .post_as(
            &format!("/api/v1/users/{user}/unlock"),
            ops["access_token"].as_str().unwrap(),
            &json!({}),
        )
        .await;
    assert_eq!(unlock.status(), 204);
    app.login("lock@example.com", PASSWORD).await;

    // A lock also ends by itself.
    for _ in 0..3 {
        app.post_json(
            "/api/v1/auth/login",
            &json!({"email": "lock@example.com", "password": "not the password"}),
        )
        .await;
    }
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2")
        .bind(plinth_core::Timestamp::now() - time::Duration::seconds(1)).bind(user).execute(c).await).unwrap();
    tx.commit().await.unwrap();
    app.login("lock@example.com", PASSWORD).await;
    app.stop().await;
}

async fn login_is_rate_limited_per_address_and_account(db: TestDatabase) {
    let app = TestApp::on(db).with("rate_limit_login", 3).spawn().await;
    app.create_user("rl@example.com", PASSWORD, true, &[]).await;
    for _ in 0..3 {
        let r = app
            .post_json(
                "/api/v1/auth/login",
                &json!({"email": "rl@example.com", "password": "nope nope nope"}),
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    let limited = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "rl@example.com", "password": PASSWORD}),
        )
        .await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_problem(limited, 429, "rate-limited").await;
    app.stop().await;
}

async fn introspection_reports_active_and_inactive_tokens(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let user = app.create_user("i@example.com", PASSWORD, true, &[]).await;
    let service = app.login("i@example.com", PASSWORD).await;
    let subject = app.login("i@example.com", PASSWORD).await;
    let caller = service["access_token"].as_str().unwrap();

    let active: serde_json::Value = app
        .post_as(
            "/api/v1/auth/introspect",
            caller,
            &json!({"token": subject["access_token"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(active["active"], true);
    assert_eq!(active["token_type"], "access_token");
    assert_eq!(active["sub"], user.to_string());
    assert!(active["exp"].as_i64().unwrap() > active["iat"].as_i64().unwrap());

    // RFC 7662 clients send a form.
    let form = app
        .send(
            app.client
                .post(app.url("/api/v1/auth/introspect"))
                .form(&[("token", subject["refresh_token"].as_str().unwrap())]),
            Some(caller),
        )
        .await;
    let refresh: serde_json::Value = form.json().await.unwrap();
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");

    app.post_as(
        "/api/v1/auth/logout",
        subject["access_token"].as_str().unwrap(),
        &json!({}),
    )
    .await;
    for token in [
        &subject["access_token"],
        &subject["refresh_token"],
        &json!("garbage"),
    ] {
        let inactive: serde_json::Value = app
            .post_as("/api/v1/auth/introspect", caller, &json!({"token": token}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            inactive,
            json!({"active": false}),
            "nothing but `active` for inactive tokens"
        );
    }
    app.stop().await;
}

async fn changing_the_password_ends_the_other_sessions(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("p@example.com", PASSWORD, true, &[]).await;
    let here = app.login("p@example.com", PASSWORD).await;
    let elsewhere = app.login("p@example.com", PASSWORD).await;
    let token = here["access_token"].as_str().unwrap();
    let wrong = app
        .post_as(
            "/api/v1/me/password",
            token,
            &json!({"current_password": "wrong", "new_password": "another long passphrase"}),
        )
        .await;
    let body = assert_problem(wrong, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["pointer"], "/current_password");

    let weak = app
        .post_as(
            "/api/v1/me/password",
            token,
            &json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    let body = assert_problem(weak, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["pointer"], "/new_password");

    let ok = app
        .post_as(
            "/api/v1/me/password",
            token,
            &json!({"current_password": PASSWORD, "new_password": "another long passphrase"}),
        )
        .await;
    assert_eq!(ok.status(), 204);
    assert_eq!(
        app.get_as("/api/v1/me", token).await.status(),
        200,
        "this session stays"
    );
    assert_eq!(
        app.get_as("/api/v1/me", elsewhere["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    app.login("p@example.com", "another long passphrase").await;
    app.stop().await;
}

async fn platform_admins_must_sign_in_with_a_second_factor_before_admin_routes(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let target = app.create_user("t@example.com", PASSWORD, true, &[]).await;
    app.create_user(
        "root@example.com",
        PASSWORD,
        true,
        &[PlatformRole::SuperAdmin],
    )
    .await;
    let admin = app.login("root@example.com", PASSWORD).await;
    let token = admin["access_token"].as_str().unwrap();
    let me: serde_json::Value = app.get_as("/api/v1/me", token).await.json().await.unwrap();
    assert!(me["restriction"].as_str().unwrap().contains("two-step"));
    let blocked = app
        .post_as(&format!("/api/v1/users/{target}/unlock"), token, &json!({}))
        .await;
    let body = assert_problem(blocked, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("two-step"));

    let (secret, _) = crate::mfa::enrol_totp(&app, token).await;
    // Enrolling does not turn the password-only session into an administrator's one.
    let same_session = app
        .post_as(&format!("/api/v1/users/{target}/unlock"), token, &json!({}))
        .await;
    let body = assert_problem(same_session, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("second factor"));
    let two_step = crate::mfa::sign_in_with_totp(&app, "root@example.com", &secret).await;
    let unlock = app
        .post_as(
            &format!("/api/v1/users/{target}/unlock"),
            two_step["access_token"].as_str().unwrap(),
            &json!({}),
        )
        .await;
    assert_eq!(
        unlock.status(),
        204,
        "allowed for a session signed in with the second factor"
    );
    app.stop().await;
}
