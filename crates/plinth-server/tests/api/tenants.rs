//! Tenants, members and workspaces.

use base64::Engine;
use plinth_identity::PlatformRole;
use plinth_store::on;
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    an_administrator_provisions_a_tenant_with_owner_workspace_audit_and_event,
    self_service_tenant_creation_follows_the_platform_setting,
    slugs_are_validated_reserved_and_unique,
    switching_tenant_gives_a_token_that_refresh_keeps,
    refresh_drops_the_tenant_claim_once_the_membership_is_gone,
    members_are_sorted_filtered_and_paginated_server_side,
    roles_cannot_be_escalated_and_the_last_owner_stays,
    removed_members_lose_access_at_once,
    workspaces_are_managed_inside_their_tenant,
    a_tenant_can_require_members_to_use_mfa,
    another_tenants_member_sees_nothing,
);

async fn signed_in(app: &TestApp, email: &str) -> (plinth_core::UserId, String) {
    let id = app.create_user(email, PASSWORD, true, &[]).await;
    let token = app.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, token)
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

async fn an_administrator_provisions_a_tenant_with_owner_workspace_audit_and_event(
    db: TestDatabase,
) {
    let app = TestApp::on(db)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    app.create_user(
        "root@example.com",
        PASSWORD,
        true,
        &[PlatformRole::SuperAdmin],
    )
    .await;
    let root = app.login("root@example.com", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (owner, owner_token) = signed_in(&app, "owner@acme.test").await;

    let response = app
        .post_as(
            "/api/v1/tenants",
            &root,
            &json!({"slug": "acme", "name": "Acme Corp", "owner_user_id": owner, "trial_days": 14}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let tenant: serde_json::Value = response.json().await.unwrap();
    assert_eq!(tenant["status"], "trial");
    assert_eq!(tenant["isolation"], "pool");
    assert!(tenant["trial_ends_at"].is_string());
    assert_eq!(tenant["settings"]["signup_mode"], "invite_only");

    let mine: serde_json::Value = app
        .get_as("/api/v1/me/tenants", &owner_token)
        .await
        .json()
        .await
        .unwrap();
    let mine = mine["items"].clone();
    assert_eq!(mine[0]["slug"], "acme");
    assert_eq!(mine[0]["roles"], json!(["owner"]));
    let workspaces: serde_json::Value = app
        .get_as("/api/v1/tenants/acme/workspaces", &owner_token)
        .await
        .json()
        .await
        .unwrap();
    let workspaces = workspaces["items"].clone();
    assert_eq!(workspaces.as_array().unwrap().len(), 1);
    assert_eq!(workspaces[0]["is_default"], true);

    let mut conn = app.db.read().await.unwrap();
    let (audits, events): (i64, i64) = on!(conn.conn(), c => sqlx::query_as(
        "SELECT (SELECT count(*) FROM audit_log WHERE action = 'tenant.create'),
                (SELECT count(*) FROM outbox WHERE event_type = 'tenant.created')"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!((audits, events), (1, 1));
    drop(conn);
    let tenant_id: plinth_core::TenantId = tenant["id"].as_str().unwrap().parse().unwrap();
    assert!(
        plinth_audit::verify_chain(&app.db, Some(tenant_id), &plinth_audit::NoSeal)
            .await
            .unwrap()
            .is_intact()
    );

    let list: serde_json::Value = app
        .get_as("/api/v1/tenants?status=trial", &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_problem(
        app.get_as("/api/v1/tenants", &owner_token).await,
        403,
        "forbidden",
    )
    .await;
    app.stop().await;
}

async fn self_service_tenant_creation_follows_the_platform_setting(db: TestDatabase) {
    let closed = TestApp::spawn(db).await;
    let (_, token) = signed_in(&closed, "a@example.com").await;
    let refused = closed
        .post_as(
            "/api/v1/tenants",
            &token,
            &json!({"slug": "mine", "name": "Mine"}),
        )
        .await;
    assert_problem(refused, 403, "forbidden").await;
    closed.stop().await;

    let open = TestApp::on(plinth_testkit::TestDatabase::sqlite())
        .with("signup_enabled", true)
        .spawn()
        .await;
    let (_, token) = signed_in(&open, "b@example.com").await;
    let tenant = open.create_tenant(&token, "mine").await;
    assert_eq!(tenant["status"], "active");
    let other = open.create_user("c@example.com", PASSWORD, true, &[]).await;
    let for_other = open
        .post_as(
            "/api/v1/tenants",
            &token,
            &json!({"slug": "theirs", "name": "T", "owner_user_id": other}),
        )
        .await;
    assert_problem(for_other, 403, "forbidden").await;
    open.stop().await;
}

async fn slugs_are_validated_reserved_and_unique(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (_, token) = signed_in(&app, "s@example.com").await;
    for (slug, code) in [
        ("Ab", "invalid_slug"),
        ("admin", "reserved"),
        ("acme--x", "invalid_slug"),
    ] {
        let r = app
            .post_as(
                "/api/v1/tenants",
                &token,
                &json!({"slug": slug, "name": "X"}),
            )
            .await;
        let body = assert_problem(r, 422, "validation-failed").await;
        assert_eq!(body["errors"][0]["code"], code, "{slug}");
    }
    app.create_tenant(&token, "acme").await;
    let taken = app
        .post_as(
            "/api/v1/tenants",
            &token,
            &json!({"slug": "acme", "name": "Again"}),
        )
        .await;
    let body = assert_problem(taken, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["code"], "taken");
    app.stop().await;
}

async fn switching_tenant_gives_a_token_that_refresh_keeps(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("sw@example.com", PASSWORD, true, &[]).await;
    let tokens = app.login("sw@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let first = app.create_tenant(access, "first").await;
    app.create_tenant(access, "second").await;
    assert!(claims(access).get("tenant").is_none());

    let switched = app
        .post_as("/api/v1/me/tenant", access, &json!({"tenant": "first"}))
        .await;
    assert_eq!(switched.status(), 200);
    let switched: serde_json::Value = switched.json().await.unwrap();
    assert_eq!(
        claims(switched["access_token"].as_str().unwrap())["tenant"],
        first["id"]
    );
    assert_eq!(switched["tenant"]["slug"], "first");

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
        claims(refreshed["access_token"].as_str().unwrap())["tenant"],
        first["id"],
        "the session remembers"
    );

    let (_, stranger) = signed_in(&app, "stranger@example.com").await;
    assert_problem(
        app.post_as("/api/v1/me/tenant", &stranger, &json!({"tenant": "first"}))
            .await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

async fn refresh_drops_the_tenant_claim_once_the_membership_is_gone(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    let (_, owner) = signed_in(&app, "own@claims.test").await;
    let tenant = app.create_tenant(&owner, "claims").await;
    let tenant_id = tenant["id"].as_str().unwrap();
    let member = app.create_user("m@claims.test", PASSWORD, true, &[]).await;
    app.add_member(tenant_id, member, "member").await;
    let tokens = app.login("m@claims.test", PASSWORD).await;
    let switched = app
        .post_as(
            "/api/v1/me/tenant",
            tokens["access_token"].as_str().unwrap(),
            &json!({"tenant": "claims"}),
        )
        .await;
    assert_eq!(switched.status(), 200);
    let refresh = |token: serde_json::Value| {
        let app = &app;
        async move {
            let pair: serde_json::Value = app
                .post_json("/api/v1/auth/refresh", &json!({"refresh_token": token}))
                .await
                .json()
                .await
                .unwrap();
            pair
        }
    };
    let kept = refresh(tokens["refresh_token"].clone()).await;
    assert_eq!(
        claims(kept["access_token"].as_str().unwrap())["tenant"],
        tenant_id
    );

    let removed = app
        .delete_as(&format!("/api/v1/tenants/claims/members/{member}"), &owner)
        .await;
    assert_eq!(removed.status(), 204);
    let dropped = refresh(kept["refresh_token"].clone()).await;
    let access = dropped["access_token"].as_str().unwrap();
    assert!(
        claims(access).get("tenant").is_none(),
        "a removed member's refreshed token must not name the tenant"
    );
    // And the session forgot it: the next refresh does not bring it back.
    app.add_member(tenant_id, member, "member").await;
    let later = refresh(dropped["refresh_token"].clone()).await;
    assert!(
        claims(later["access_token"].as_str().unwrap())
            .get("tenant")
            .is_none()
    );

    // A suspended tenant is dropped the same way.
    let reselected = app
        .post_as(
            "/api/v1/me/tenant",
            later["access_token"].as_str().unwrap(),
            &json!({"tenant": "claims"}),
        )
        .await;
    assert_eq!(reselected.status(), 200);
    app.create_user(
        "ops@claims.test",
        PASSWORD,
        true,
        &[PlatformRole::SuperAdmin],
    )
    .await;
    let ops = app.login("ops@claims.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let suspended = app
        .post_as(
            &format!("/api/v1/platform/tenants/{tenant_id}/suspend"),
            &ops,
            &json!({"reason": "unpaid"}),
        )
        .await;
    assert_eq!(suspended.status(), 200);
    let after_suspension = refresh(later["refresh_token"].clone()).await;
    assert!(
        claims(after_suspension["access_token"].as_str().unwrap())
            .get("tenant")
            .is_none()
    );
    app.stop().await;
}

async fn members_are_sorted_filtered_and_paginated_server_side(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (_, owner) = signed_in(&app, "owner@example.com").await;
    let tenant = app.create_tenant(&owner, "people").await;
    let tenant_id = tenant["id"].as_str().unwrap();
    for (email, roles) in [
        ("dana@example.com", "viewer"),
        ("bob@example.com", "member"),
        ("carol@example.com", "admin"),
        ("erin@example.com", "member"),
    ] {
        let id = app.create_user(email, PASSWORD, true, &[]).await;
        app.add_member(tenant_id, id, roles).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/tenants/people/members?limit=2".to_owned();
    loop {
        let page: serde_json::Value = app.get_as(&path, &owner).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["email"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/tenants/people/members?limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "bob@example.com",
            "carol@example.com",
            "dana@example.com",
            "erin@example.com",
            "owner@example.com"
        ]
    );

    let desc: serde_json::Value = app
        .get_as("/api/v1/tenants/people/members?sort=-email&limit=1", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(desc["items"][0]["email"], "owner@example.com");
    let members: serde_json::Value = app
        .get_as("/api/v1/tenants/people/members?role=member", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["items"].as_array().unwrap().len(), 2);
    let search: serde_json::Value = app
        .get_as("/api/v1/tenants/people/members?q=CAR", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(search["items"][0]["email"], "carol@example.com");
    let joined: serde_json::Value = app
        .get_as(
            "/api/v1/tenants/people/members?sort=joined_at&limit=1",
            &owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(joined["items"][0]["email"], "owner@example.com");
    let bad = app
        .get_as("/api/v1/tenants/people/members?cursor=%%%", &owner)
        .await;
    assert_eq!(bad.status().as_u16() / 100, 4);
    let bad_sort = app
        .get_as("/api/v1/tenants/people/members?sort=password", &owner)
        .await;
    assert_problem(bad_sort, 400, "malformed-request").await;
    app.stop().await;
}

async fn roles_cannot_be_escalated_and_the_last_owner_stays(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (owner_id, owner) = signed_in(&app, "o@example.com").await;
    let tenant = app.create_tenant(&owner, "roles").await;
    let tenant_id = tenant["id"].as_str().unwrap();
    let (admin_id, admin) = signed_in(&app, "adm@example.com").await;
    let (viewer_id, viewer) = signed_in(&app, "v@example.com").await;
    app.add_member(tenant_id, admin_id, "admin").await;
    app.add_member(tenant_id, viewer_id, "viewer").await;
    let path = |id: plinth_core::UserId| format!("/api/v1/tenants/roles/members/{id}");

    let mint = app
        .patch_as(&path(viewer_id), &admin, &json!({"roles": ["owner"]}))
        .await;
    assert_problem(mint, 403, "forbidden").await;
    let self_promote = app
        .patch_as(&path(admin_id), &admin, &json!({"roles": ["owner"]}))
        .await;
    assert_problem(self_promote, 403, "forbidden").await;
    let demote_owner = app
        .patch_as(&path(owner_id), &admin, &json!({"roles": ["viewer"]}))
        .await;
    assert_problem(demote_owner, 403, "forbidden").await;
    let by_viewer = app
        .patch_as(&path(viewer_id), &viewer, &json!({"roles": ["member"]}))
        .await;
    assert_problem(by_viewer, 403, "forbidden").await;
    let unknown = app
        .patch_as(&path(viewer_id), &admin, &json!({"roles": ["emperor"]}))
        .await;
    assert_problem(unknown, 422, "validation-failed").await;

    let ok = app
        .patch_as(&path(viewer_id), &admin, &json!({"roles": ["member"]}))
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<serde_json::Value>().await.unwrap()["roles"],
        json!(["member"])
    );

    let last = app
        .patch_as(&path(owner_id), &owner, &json!({"roles": ["admin"]}))
        .await;
    assert_problem(last, 409, "conflict").await;
    let promote = app
        .patch_as(&path(admin_id), &owner, &json!({"roles": ["owner"]}))
        .await;
    assert_eq!(promote.status(), 200);
    let step_down = app
        .patch_as(&path(owner_id), &owner, &json!({"roles": ["admin"]}))
        .await;
    assert_eq!(step_down.status(), 200, "another owner exists now");
    app.stop().await;
}

async fn removed_members_lose_access_at_once(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (_, owner) = signed_in(&app, "o@example.com").await;
    let tenant = app.create_tenant(&owner, "leave").await;
    let (member_id, member) = signed_in(&app, "m@example.com").await;
    app.add_member(tenant["id"].as_str().unwrap(), member_id, "member")
        .await;
    assert_eq!(
        app.get_as("/api/v1/tenants/leave", &member).await.status(),
        200
    );
    assert_eq!(
        app.delete_as(
            &format!("/api/v1/tenants/leave/members/{member_id}"),
            &owner
        )
        .await
        .status(),
        204
    );
    assert_problem(
        app.get_as("/api/v1/tenants/leave", &member).await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

async fn workspaces_are_managed_inside_their_tenant(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (_, owner) = signed_in(&app, "o@example.com").await;
    app.create_tenant(&owner, "spaces").await;
    let created = app
        .post_as(
            "/api/v1/tenants/spaces/workspaces",
            &owner,
            &json!({"slug": "design", "name": "Design"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let workspace: serde_json::Value = created.json().await.unwrap();
    let dup = app
        .post_as(
            "/api/v1/tenants/spaces/workspaces",
            &owner,
            &json!({"slug": "design", "name": "Again"}),
        )
        .await;
    assert_problem(dup, 422, "validation-failed").await;
    let renamed = app
        .patch_as(
            "/api/v1/tenants/spaces/workspaces/design",
            &owner,
            &json!({"name": "Product design"}),
        )
        .await;
    assert_eq!(
        renamed.json::<serde_json::Value>().await.unwrap()["name"],
        "Product design"
    );
    let by_id = app
        .get_as(
            &format!(
                "/api/v1/tenants/spaces/workspaces/{}",
                workspace["id"].as_str().unwrap()
            ),
            &owner,
        )
        .await;
    assert_eq!(by_id.status(), 200);
    assert_problem(
        app.delete_as("/api/v1/tenants/spaces/workspaces/general", &owner)
            .await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(
        app.delete_as("/api/v1/tenants/spaces/workspaces/design", &owner)
            .await
            .status(),
        204
    );
    assert_problem(
        app.get_as("/api/v1/tenants/spaces/workspaces/design", &owner)
            .await,
        404,
        "not-found",
    )
    .await;
    app.stop().await;
}

async fn a_tenant_can_require_members_to_use_mfa(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (_, owner) = signed_in(&app, "o@example.com").await;
    app.create_tenant(&owner, "strict").await;
    let tenant: serde_json::Value = app
        .get_as("/api/v1/tenants/strict", &owner)
        .await
        .json()
        .await
        .unwrap();
    let (member_id, member) = signed_in(&app, "m@example.com").await;
    app.add_member(tenant["id"].as_str().unwrap(), member_id, "member")
        .await;
    let settings = json!({"settings": {"mfa_required": true, "allowed_email_domains": [], "signup_mode": "invite_only"}});

    // Not without using it yourself: that would lock the owner out.
    let refused = app
        .patch_as("/api/v1/tenants/strict", &owner, &settings)
        .await;
    let body = assert_problem(refused, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["code"], "mfa_not_used");

    let (secret, _) = crate::mfa::enrol_totp(&app, &owner).await;
    let challenge: serde_json::Value = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "o@example.com", "password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let strong: serde_json::Value = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge["mfa_token"], "code": crate::mfa::code(&secret, 1)}),
        )
        .await
        .json()
        .await
        .unwrap();
    let strong = strong["access_token"].as_str().unwrap();
    assert_eq!(
        app.patch_as("/api/v1/tenants/strict", strong, &settings)
            .await
            .status(),
        200
    );

    let blocked = app.get_as("/api/v1/tenants/strict", &member).await;
    let body = assert_problem(blocked, 403, "forbidden").await;
    assert!(body["detail"].as_str().unwrap().contains("two-step"));
    assert_eq!(
        app.get_as("/api/v1/tenants/strict", strong).await.status(),
        200
    );
    // The check API decides as the guard does: no for the password-only member, yes for
    // the owner's two-step session.
    let check = |token: String| {
        let app = &app;
        async move {
            let decision: serde_json::Value = app
                .post_as(
                    "/api/v1/authz/check",
                    &token,
                    &json!({"action": "tenant:read", "resource": {"tenant": "strict"}}),
                )
                .await
                .json()
                .await
                .unwrap();
            decision
        }
    };
    let member_decision = check(member.clone()).await;
    assert_eq!(member_decision["allowed"], false, "{member_decision}");
    assert!(
        member_decision["reason"]
            .as_str()
            .unwrap()
            .contains("two-step")
    );
    assert_eq!(check(strong.to_owned()).await["allowed"], true);
    let bad_settings = app
        .patch_as(
            "/api/v1/tenants/strict",
            strong,
            &json!({"branding": {"primary_color": "red"}}),
        )
        .await;
    let body = assert_problem(bad_settings, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["pointer"], "/branding/primary_color");
    app.stop().await;
}

async fn another_tenants_member_sees_nothing(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (_, alice) = signed_in(&app, "alice@a.test").await;
    let (_, bob) = signed_in(&app, "bob@b.test").await;
    let a = app.create_tenant(&alice, "tenant-a").await;
    app.create_tenant(&bob, "tenant-b").await;
    let a_id = a["id"].as_str().unwrap();
    for path in [
        "/api/v1/tenants/tenant-a".to_owned(),
        format!("/api/v1/tenants/{a_id}"),
        "/api/v1/tenants/tenant-a/members".to_owned(),
        "/api/v1/tenants/tenant-a/workspaces".to_owned(),
        "/api/v1/tenants/tenant-a/workspaces/general".to_owned(),
        "/api/v1/tenants/no-such-tenant".to_owned(),
    ] {
        assert_problem(app.get_as(&path, &bob).await, 404, "not-found").await;
    }
    let write = app
        .post_as(
            "/api/v1/tenants/tenant-a/workspaces",
            &bob,
            &json!({"slug": "evil", "name": "Evil"}),
        )
        .await;
    assert_problem(write, 404, "not-found").await;
    app.stop().await;
}
