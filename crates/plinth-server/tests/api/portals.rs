//! Portals and feature flags.

use base64::Engine;
use plinth_identity::PlatformRole;
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    a_portal_shows_public_metadata_until_its_tenant_is_suspended,
    entering_a_portal_binds_tenant_and_portal_for_allowed_roles,
    flags_resolve_portal_over_tenant_over_platform,
    portal_and_flag_input_is_validated,
    unreadable_stored_settings_fail_closed,
);

async fn token_of(app: &TestApp, email: &str) -> String {
    app.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn owner_with_portal(app: &TestApp) -> (String, serde_json::Value) {
    app.create_user("owner@shop.test", PASSWORD, true, &[])
        .await;
    let owner = token_of(app, "owner@shop.test").await;
    let tenant = app.create_tenant(&owner, "shop").await;
    let portal = app
        .post_as(
            "/api/v1/tenants/shop/portals",
            &owner,
            &json!({"slug": "shop-customers", "name": "Customers", "allowed_roles": ["viewer", "owner"],
                    "navigation": [{"label": "Orders", "href": "/orders"}], "signup_enabled": true}),
        )
        .await;
    assert_eq!(portal.status(), 201);
    (owner, tenant)
}

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn a_portal_shows_public_metadata_until_its_tenant_is_suspended(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    let (owner, tenant) = owner_with_portal(&app).await;
    let branding = json!({"branding": {"primary_color": "#112233", "accent_color": null, "logo_url": null, "custom_domain": null}});
    app.patch_as("/api/v1/tenants/shop", &owner, &branding)
        .await;
    let public: serde_json::Value = app
        .get("/api/v1/portals/shop-customers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(public["name"], "Customers");
    assert_eq!(public["tenant_name"], "shop");
    assert_eq!(public["branding"]["primary_color"], "#112233");
    assert_eq!(public["navigation"][0]["href"], "/orders");
    assert_eq!(
        public["sign_in"],
        json!({"password": true, "signup": true, "mfa_required": false})
    );
    assert!(
        public.get("allowed_roles").is_none(),
        "access rules are not public"
    );
    assert_problem(
        app.get("/api/v1/portals/nope-portal").await,
        404,
        "not-found",
    )
    .await;

    app.create_user("ops@example.com", PASSWORD, true, &[PlatformRole::OpsAdmin])
        .await;
    let ops = token_of(&app, "ops@example.com").await;
    let id = tenant["id"].as_str().unwrap();
    app.post_as(
        &format!("/api/v1/platform/tenants/{id}/suspend"),
        &ops,
        &json!({"reason": "test"}),
    )
    .await;
    assert_problem(
        app.get("/api/v1/portals/shop-customers").await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

async fn entering_a_portal_binds_tenant_and_portal_for_allowed_roles(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (_, tenant) = owner_with_portal(&app).await;
    let tenant_id = tenant["id"].as_str().unwrap();
    let viewer = app
        .create_user("viewer@shop.test", PASSWORD, true, &[])
        .await;
    let member = app
        .create_user("member@shop.test", PASSWORD, true, &[])
        .await;
    app.add_member(tenant_id, viewer, "viewer").await;
    app.add_member(tenant_id, member, "member").await;
    app.create_user("stranger@else.test", PASSWORD, true, &[])
        .await;

    let tokens = app.login("viewer@shop.test", PASSWORD).await;
    let entered = app
        .post_as(
            "/api/v1/me/portal",
            tokens["access_token"].as_str().unwrap(),
            &json!({"portal": "shop-customers"}),
        )
        .await;
    assert_eq!(entered.status(), 200);
    let entered: serde_json::Value = entered.json().await.unwrap();
    let c = claims(entered["access_token"].as_str().unwrap());
    assert_eq!(c["tenant"], tenant["id"]);
    assert_eq!(c["portal"], "shop-customers");
    let refreshed: serde_json::Value = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["portal"],
        "shop-customers"
    );

    let member_token = token_of(&app, "member@shop.test").await;
    let refused = app
        .post_as(
            "/api/v1/me/portal",
            &member_token,
            &json!({"portal": "shop-customers"}),
        )
        .await;
    assert_problem(refused, 403, "forbidden").await;
    let stranger = token_of(&app, "stranger@else.test").await;
    assert_problem(
        app.post_as(
            "/api/v1/me/portal",
            &stranger,
            &json!({"portal": "shop-customers"}),
        )
        .await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

async fn flags_resolve_portal_over_tenant_over_platform(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    let (owner, tenant) = owner_with_portal(&app).await;
    app.create_user(
        "root@example.com",
        PASSWORD,
        true,
        &[PlatformRole::SuperAdmin],
    )
    .await;
    let root = token_of(&app, "root@example.com").await;
    let put = |path: String, token: String, value: serde_json::Value| {
        let app = &app;
        async move {
            app.send(
                app.client
                    .put(app.url(&path))
                    .json(&json!({"value": value})),
                Some(&token),
            )
            .await
        }
    };
    assert_eq!(
        put(
            "/api/v1/platform/flags/beta".into(),
            root.clone(),
            json!(false)
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        put(
            "/api/v1/platform/flags/theme".into(),
            root.clone(),
            json!("classic")
        )
        .await
        .status(),
        200
    );
    assert_problem(
        put(
            "/api/v1/platform/flags/beta".into(),
            owner.clone(),
            json!(true),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        put(
            "/api/v1/tenants/shop/flags/beta".into(),
            owner.clone(),
            json!(true)
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        put(
            "/api/v1/tenants/shop/portals/shop-customers/flags/theme".into(),
            owner.clone(),
            json!("dark")
        )
        .await
        .status(),
        200
    );

    let tenant_level: serde_json::Value = app
        .get_as("/api/v1/tenants/shop/flags", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tenant_level["beta"]["value"], true);
    assert_eq!(tenant_level["beta"]["level"], "tenant");
    assert_eq!(tenant_level["theme"]["value"], "classic");
    let portal_level: serde_json::Value = app
        .get_as("/api/v1/tenants/shop/flags?portal=shop-customers", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(portal_level["theme"]["value"], "dark");
    assert_eq!(portal_level["theme"]["level"], "portal");

    // The caller's own set follows the session's tenant and portal.
    let entered: serde_json::Value = app
        .post_as(
            "/api/v1/me/portal",
            &owner,
            &json!({"portal": "shop-customers"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let mine: serde_json::Value = app
        .get_as(
            "/api/v1/me/flags",
            entered["access_token"].as_str().unwrap(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["beta"]["value"], true);
    assert_eq!(mine["theme"]["value"], "dark");
    let outside: serde_json::Value = app
        .get_as("/api/v1/me/flags", &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        outside["beta"]["value"], false,
        "without a tenant only platform flags apply"
    );
    // A suspended tenant's flags no longer apply to the session that selected it.
    let lifecycle = |action: &'static str| {
        let (app, root, id) = (&app, &root, tenant["id"].as_str().unwrap());
        async move {
            let response = app
                .post_as(
                    &format!("/api/v1/platform/tenants/{id}/{action}"),
                    root,
                    &json!({"reason": "test"}),
                )
                .await;
            assert_eq!(response.status(), 200, "{action}");
        }
    };
    lifecycle("suspend").await;
    let while_suspended: serde_json::Value = app
        .get_as(
            "/api/v1/me/flags",
            entered["access_token"].as_str().unwrap(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(while_suspended["beta"]["value"], false);
    lifecycle("reactivate").await;

    let removed = app
        .delete_as("/api/v1/tenants/shop/flags/beta", &owner)
        .await;
    assert_eq!(removed.status(), 204);
    let after: serde_json::Value = app
        .get_as("/api/v1/tenants/shop/flags", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["beta"]["value"], false);
    let _ = tenant;
    app.stop().await;
}

async fn portal_and_flag_input_is_validated(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (owner, _) = owner_with_portal(&app).await;
    let xss = app
        .patch_as(
            "/api/v1/tenants/shop/portals/shop-customers",
            &owner,
            &json!({"navigation": [{"label": "Click", "href": "javascript:alert(1)"}]}),
        )
        .await;
    let body = assert_problem(xss, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["pointer"], "/navigation/0/href");
    let protocol_relative = app
        .patch_as(
            "/api/v1/tenants/shop/portals/shop-customers",
            &owner,
            &json!({"navigation": [{"label": "x", "href": "//evil.test"}]}),
        )
        .await;
    assert_problem(protocol_relative, 422, "validation-failed").await;
    let taken = app
        .post_as(
            "/api/v1/tenants/shop/portals",
            &owner,
            &json!({"slug": "shop-customers", "name": "Again"}),
        )
        .await;
    assert_problem(taken, 422, "validation-failed").await;
    let bad_value = app
        .send(
            app.client
                .put(app.url("/api/v1/tenants/shop/flags/beta"))
                .json(&json!({"value": 42})),
            Some(&owner),
        )
        .await;
    assert_problem(bad_value, 422, "validation-failed").await;
    let bad_key = app
        .send(
            app.client
                .put(app.url("/api/v1/tenants/shop/flags/Bad%20Key"))
                .json(&json!({"value": true})),
            Some(&owner),
        )
        .await;
    assert_problem(bad_key, 422, "validation-failed").await;
    app.stop().await;
}

/// Stored settings that do not parse (edited by hand, say) must not read as the most
/// permissive ones: the tenant then requires a second factor, and the portal admits nobody.
async fn unreadable_stored_settings_fail_closed(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (owner, tenant) = owner_with_portal(&app).await;
    let tenant_id: uuid::Uuid = tenant["id"].as_str().unwrap().parse().unwrap();
    let viewer = app
        .create_user("viewer@shop.test", PASSWORD, true, &[])
        .await;
    app.add_member(&tenant_id.to_string(), viewer, "viewer")
        .await;
    let viewer_token = token_of(&app, "viewer@shop.test").await;
    assert_eq!(
        app.get_as("/api/v1/tenants/shop/members", &owner)
            .await
            .status(),
        200
    );

    let mut tx = app.db.begin().await.unwrap();
    plinth_store::exec!(tx.conn(), c => sqlx::query(
        "UPDATE tenants SET settings = 'not json' WHERE id = $1"
    ).bind(tenant_id).execute(c).await)
    .unwrap();
    plinth_store::exec!(tx.conn(), c => sqlx::query(
        "UPDATE portals SET allowed_roles = '{broken' WHERE tenant_id = $1"
    ).bind(tenant_id).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();

    // The owner signed in with the password alone: an unreadable MFA setting requires MFA.
    let refused = app.get_as("/api/v1/tenants/shop/members", &owner).await;
    let body = assert_problem(refused, 403, "forbidden").await;
    assert!(
        body["detail"].as_str().unwrap().contains("two-step"),
        "{body}"
    );
    // The viewer, allowed before, may not enter a portal whose roles cannot be read.
    let entered = app
        .post_as(
            "/api/v1/me/portal",
            &viewer_token,
            &json!({"portal": "shop-customers"}),
        )
        .await;
    assert_problem(entered, 403, "forbidden").await;
    app.stop().await;
}
