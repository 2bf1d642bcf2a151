//! Personal API keys.

use plinth_store::{exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    a_key_is_shown_once_and_works_only_within_its_grant,
    a_key_never_exceeds_its_owner,
    revoked_and_expired_keys_are_refused,
    a_key_counts_as_mfa_only_when_its_creating_session_did,
);

async fn owner_of(app: &TestApp, email: &str, tenant: &str) -> String {
    app.create_user(email, PASSWORD, true, &[]).await;
    let token = app.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_tenant(&token, tenant).await;
    token
}

async fn create_key(
    app: &TestApp,
    token: &str,
    tenant: &str,
    permissions: &[&str],
) -> reqwest::Response {
    app.post_as(
        "/api/v1/me/api-keys",
        token,
        &json!({"name": "ci", "tenant": tenant, "permissions": permissions}),
    )
    .await
}

async fn a_key_is_shown_once_and_works_only_within_its_grant(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = owner_of(&app, "o@keys.test", "keys").await;
    app.create_tenant(&owner, "other-tenant").await;
    let created = create_key(
        &app,
        &owner,
        "keys",
        &["members:read", "workspaces:read", "workspaces:create"],
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("plk_{}_", created["prefix"].as_str().unwrap())));
    let listed: serde_json::Value = app
        .get_as("/api/v1/me/api-keys", &owner)
        .await
        .json()
        .await
        .unwrap();
    let listed = listed["items"].clone();
    assert!(listed[0].get("key").is_none(), "the key is shown once");
    assert_eq!(
        listed[0]["permissions"],
        json!(["members:read", "workspaces:read", "workspaces:create"])
    );
    let mut conn = app.db.read().await.unwrap();
    let stored: Vec<u8> = on!(conn.conn(), c => sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_one(c).await).unwrap();
    assert_eq!(stored.len(), 32, "only a SHA-256 is stored");
    drop(conn);

    assert_eq!(
        app.get_as("/api/v1/tenants/keys/members", &key)
            .await
            .status(),
        200
    );
    assert_problem(
        app.patch_as("/api/v1/tenants/keys", &key, &json!({"name": "x"}))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/tenants/other-tenant/members", &key)
            .await,
        404,
        "not-found",
    )
    .await;
    assert_problem(app.get_as("/api/v1/me", &key).await, 403, "forbidden").await;
    assert_problem(
        app.post_as("/api/v1/me/api-keys", &key, &json!({})).await,
        403,
        "forbidden",
    )
    .await;

    let made = app
        .post_as(
            "/api/v1/tenants/keys/workspaces",
            &key,
            &json!({"slug": "from-ci", "name": "From CI"}),
        )
        .await;
    assert_eq!(made.status(), 201);
    let mut conn = app.db.read().await.unwrap();
    let (kind, actor): (String, Option<uuid::Uuid>) = on!(conn.conn(), c => sqlx::query_as(
        "SELECT actor_kind, actor_id FROM audit_log WHERE action = 'workspace.create' ORDER BY occurred_at DESC LIMIT 1"
    ).fetch_one(c).await).unwrap();
    assert_eq!(kind, "api_key");
    assert_eq!(
        actor.map(|a| a.to_string()).as_deref(),
        created["id"].as_str()
    );
    drop(conn);
    let listed: serde_json::Value = app
        .get_as("/api/v1/me/api-keys", &owner)
        .await
        .json()
        .await
        .unwrap();
    let listed = listed["items"].clone();
    assert!(listed[0]["last_used_at"].is_string());
    app.stop().await;
}

async fn a_key_never_exceeds_its_owner(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = owner_of(&app, "o@keys.test", "keys").await;
    let tenant: serde_json::Value = app
        .get_as("/api/v1/tenants/keys", &owner)
        .await
        .json()
        .await
        .unwrap();
    let member = app.create_user("m@keys.test", PASSWORD, true, &[]).await;
    app.add_member(tenant["id"].as_str().unwrap(), member, "member")
        .await;
    let member_token = app.login("m@keys.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_problem(
        create_key(&app, &member_token, "keys", &["members:remove"]).await,
        403,
        "forbidden",
    )
    .await;
    let unknown = create_key(&app, &member_token, "keys", &["everything:all"]).await;
    let body = assert_problem(unknown, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["code"], "unknown_permission");
    assert_problem(
        create_key(&app, &member_token, "nowhere", &["members:read"]).await,
        404,
        "not-found",
    )
    .await;

    let key: serde_json::Value = create_key(&app, &member_token, "keys", &["members:read"])
        .await
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_as("/api/v1/tenants/keys/members", &key)
            .await
            .status(),
        200
    );
    // The owner of the key leaves the tenant: the key reaches nothing there any more.
    assert_eq!(
        app.delete_as(&format!("/api/v1/tenants/keys/members/{member}"), &owner)
            .await
            .status(),
        204
    );
    assert_problem(
        app.get_as("/api/v1/tenants/keys/members", &key).await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

async fn revoked_and_expired_keys_are_refused(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = owner_of(&app, "o@keys.test", "keys").await;
    let first: serde_json::Value = create_key(&app, &owner, "keys", &["members:read"])
        .await
        .json()
        .await
        .unwrap();
    let revoked = app
        .delete_as(
            &format!("/api/v1/me/api-keys/{}", first["id"].as_str().unwrap()),
            &owner,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert_problem(
        app.get_as(
            "/api/v1/tenants/keys/members",
            first["key"].as_str().unwrap(),
        )
        .await,
        401,
        "unauthenticated",
    )
    .await;

    let second: serde_json::Value = app
        .post_as("/api/v1/me/api-keys", &owner, &json!({"name": "short", "tenant": "keys", "permissions": ["members:read"], "expires_in_days": 1}))
        .await
        .json()
        .await
        .unwrap();
    let key = second["key"].as_str().unwrap();
    assert_eq!(
        app.get_as("/api/v1/tenants/keys/members", key)
            .await
            .status(),
        200
    );
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE api_keys SET expires_at = $1")
        .bind(plinth_core::Timestamp::now() - time::Duration::seconds(1)).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();
    assert_problem(
        app.get_as("/api/v1/tenants/keys/members", key).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/tenants/keys/members", "plk_forged_key")
            .await,
        401,
        "unauthenticated",
    )
    .await;
    app.stop().await;
}

async fn a_key_counts_as_mfa_only_when_its_creating_session_did(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let password_only = owner_of(&app, "o@mfakeys.test", "mfakeys").await;
    let saved = app
        .post_as(
            "/api/v1/tenants/mfakeys/policies",
            &password_only,
            &json!({"name": "mfa-for-workspaces", "description": "test",
                    "source": r#"forbid(principal, action == Plinth::Action::"workspaces:create", resource) unless { context.mfa };"#}),
        )
        .await;
    assert_eq!(saved.status(), 201);
    let key_of = |token: String| {
        let app = &app;
        async move {
            let created: serde_json::Value =
                create_key(app, &token, "mfakeys", &["workspaces:create"])
                    .await
                    .json()
                    .await
                    .unwrap();
            created
        }
    };
    let create_workspace = |key: String, slug: &'static str| {
        let app = &app;
        async move {
            app.post_as(
                "/api/v1/tenants/mfakeys/workspaces",
                &key,
                &json!({"slug": slug, "name": slug}),
            )
            .await
        }
    };
    // A key made by a password-only session is a password-only caller.
    let weak = key_of(password_only.clone()).await;
    assert_eq!(weak["mfa_used"], false);
    let refused = create_workspace(weak["key"].as_str().unwrap().to_owned(), "weak").await;
    let problem = assert_problem(refused, 403, "forbidden").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("mfa-for-workspaces")
    );

    // The same owner, signed in with a second factor, makes a key that counts as MFA.
    let (secret, _) = crate::mfa::enrol_totp(&app, &password_only).await;
    let two_step = crate::mfa::sign_in_with_totp(&app, "o@mfakeys.test", &secret).await;
    let strong = key_of(two_step["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(strong["mfa_used"], true);
    let allowed = create_workspace(strong["key"].as_str().unwrap().to_owned(), "strong").await;
    assert_eq!(allowed.status(), 201);
    app.stop().await;
}
