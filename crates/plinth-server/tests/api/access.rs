//! Access control: built-in roles on the real routes, custom roles, the role matrix and
//! the check API.

use plinth_access::TenantRole;
use plinth_server::Access;
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::isolation::valid_body;
use crate::support::{TestApp, assert_problem, in_tenant};

backend_tests!(
    every_builtin_role_can_do_exactly_what_its_matrix_says,
    custom_roles_grant_what_they_say_from_the_next_request,
    roles_cannot_escalate,
    concurrent_matrix_edits_give_one_success_and_one_conflict,
    the_check_api_answers_with_reasons,
    the_guard_the_check_api_tenant_selection_and_portal_sign_in_decide_alike,
);

async fn token_of(app: &TestApp, email: &str) -> String {
    app.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn tenant_with(app: &TestApp, slug: &str) -> (String, String) {
    app.create_user(&format!("owner@{slug}.test"), PASSWORD, true, &[])
        .await;
    let owner = token_of(app, &format!("owner@{slug}.test")).await;
    let tenant = app.create_tenant(&owner, slug).await;
    (owner, tenant["id"].as_str().unwrap().to_owned())
}

async fn every_builtin_role_can_do_exactly_what_its_matrix_says(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (owner, tenant_id) = tenant_with(&app, "matrix").await;
    let mut tokens = vec![(TenantRole::Owner, owner)];
    for role in [TenantRole::Admin, TenantRole::Member, TenantRole::Viewer] {
        let email = format!("{}@matrix.test", role.as_str());
        let id = app.create_user(&email, PASSWORD, true, &[]).await;
        app.add_member(&tenant_id, id, role.as_str()).await;
        tokens.push((role, token_of(&app, &email).await));
    }
    let mut checked = 0;
    for (role, token) in &tokens {
        let granted = role.permissions();
        for route in app.routes.iter() {
            let Access::Tenant(permission) = route.access else {
                continue;
            };
            // Objects that do not exist: an allowed request gets past the guard and
            // finds nothing (404) or is refused for its input, never 403.
            let mut path = in_tenant(&route.path, "matrix");
            for param in [
                "{workspace}",
                "{user}",
                "{id}",
                "{portal}",
                "{policy}",
                "{webhook}",
            ] {
                path = path.replace(param, &uuid::Uuid::now_v7().to_string());
            }
            path = path
                .replace("{key}", "matrix-flag")
                .replace("{role}", "no-such-role");
            if route.method == reqwest::Method::DELETE && route.path == "/api/v1/tenants/{tenant}" {
                path.push_str("?confirm=not-the-slug");
            }
            let request = app
                .client
                .request(route.method.clone(), app.url(&path))
                .bearer_auth(token);
            let request = if route.json_body {
                request.json(&valid_body(route))
            } else {
                request
            };
            let status = request.send().await.unwrap().status().as_u16();
            if granted.contains(permission) {
                assert_ne!(
                    status, 403,
                    "{role:?} holds {permission} but {} {} answered 403",
                    route.method, route.path
                );
                assert!(
                    status < 500,
                    "{} {} answered {status}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{role:?} lacks {permission} but {} {} answered {status}",
                    route.method, route.path
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} role × route checks");
    app.stop().await;
}

async fn custom_roles_grant_what_they_say_from_the_next_request(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (owner, tenant_id) = tenant_with(&app, "custom").await;
    let created = app
        .post_as("/api/v1/tenants/custom/roles", &owner,
                 &json!({"key": "auditor", "name": "Auditor", "description": "Reads members", "permissions": ["tenant:read", "members:read"]}))
        .await;
    assert_eq!(created.status(), 201);
    let user = app
        .create_user("aud@custom.test", PASSWORD, true, &[])
        .await;
    app.add_member(&tenant_id, user, "viewer").await;
    let assign = app
        .patch_as(
            &format!("/api/v1/tenants/custom/members/{user}"),
            &owner,
            &json!({"roles": ["auditor"]}),
        )
        .await;
    assert_eq!(assign.status(), 200);
    let auditor = token_of(&app, "aud@custom.test").await;
    assert_eq!(
        app.get_as("/api/v1/tenants/custom/members", &auditor)
            .await
            .status(),
        200
    );
    assert_problem(
        app.get_as("/api/v1/tenants/custom/workspaces", &auditor)
            .await,
        403,
        "forbidden",
    )
    .await;

    // A change to the role applies on the very next request.
    let widened = app
        .patch_as(
            "/api/v1/tenants/custom/roles/auditor",
            &owner,
            &json!({"permissions": ["tenant:read", "members:read", "workspaces:read"]}),
        )
        .await;
    assert_eq!(widened.status(), 200);
    assert_eq!(
        app.get_as("/api/v1/tenants/custom/workspaces", &auditor)
            .await
            .status(),
        200
    );
    let mine: serde_json::Value = app
        .get_as("/api/v1/me/permissions?tenant=custom", &auditor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["roles"], json!(["auditor"]));
    assert_eq!(
        mine["permissions"],
        json!(["tenant:read", "members:read", "workspaces:read"])
    );

    assert_problem(
        app.delete_as("/api/v1/tenants/custom/roles/auditor", &owner)
            .await,
        409,
        "conflict",
    )
    .await;
    assert_problem(
        app.patch_as(
            "/api/v1/tenants/custom/roles/admin",
            &owner,
            &json!({"name": "X"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.delete_as("/api/v1/tenants/custom/roles/owner", &owner)
            .await,
        403,
        "forbidden",
    )
    .await;
    let roles: serde_json::Value = app
        .get_as("/api/v1/tenants/custom/roles", &owner)
        .await
        .json()
        .await
        .unwrap();
    let roles = roles["items"].clone();
    assert_eq!(roles.as_array().unwrap().len(), 5);
    assert_eq!(roles[4]["builtin"], false);
    app.stop().await;
}

async fn roles_cannot_escalate(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (owner, tenant_id) = tenant_with(&app, "esc").await;
    let admin_id = app.create_user("adm@esc.test", PASSWORD, true, &[]).await;
    app.add_member(&tenant_id, admin_id, "admin").await;
    let admin = token_of(&app, "adm@esc.test").await;
    let grab = app
        .post_as(
            "/api/v1/tenants/esc/roles",
            &admin,
            &json!({"key": "root", "name": "Root", "permissions": ["tenant:delete"]}),
        )
        .await;
    assert_problem(grab, 403, "forbidden").await;
    let unknown = app
        .post_as(
            "/api/v1/tenants/esc/roles",
            &admin,
            &json!({"key": "x1", "name": "X", "permissions": ["god:mode"]}),
        )
        .await;
    assert_problem(unknown, 422, "validation-failed").await;
    let builtin_key = app
        .post_as(
            "/api/v1/tenants/esc/roles",
            &admin,
            &json!({"key": "owner", "name": "X", "permissions": []}),
        )
        .await;
    assert_problem(builtin_key, 422, "validation-failed").await;
    // The owner makes a powerful role; the admin may neither hand it out nor reshape it.
    app.post_as(
        "/api/v1/tenants/esc/roles",
        &owner,
        &json!({"key": "exporter", "name": "E", "permissions": ["tenant:read", "tenant:export"]}),
    )
    .await;
    let helper = app.create_user("h@esc.test", PASSWORD, true, &[]).await;
    app.add_member(&tenant_id, helper, "viewer").await;
    let hand_out = app
        .patch_as(
            &format!("/api/v1/tenants/esc/members/{helper}"),
            &admin,
            &json!({"roles": ["exporter"]}),
        )
        .await;
    assert_problem(hand_out, 403, "forbidden").await;
    let reshape = app
        .patch_as(
            "/api/v1/tenants/esc/roles/exporter",
            &admin,
            &json!({"permissions": ["tenant:read"]}),
        )
        .await;
    assert_problem(reshape, 403, "forbidden").await;
    let invite = app
        .post_as(
            "/api/v1/tenants/esc/invitations",
            &admin,
            &json!({"email": "x@esc.test", "role": "exporter"}),
        )
        .await;
    assert_problem(invite, 403, "forbidden").await;
    app.stop().await;
}

async fn concurrent_matrix_edits_give_one_success_and_one_conflict(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (owner, _) = tenant_with(&app, "race").await;
    app.post_as(
        "/api/v1/tenants/race/roles",
        &owner,
        &json!({"key": "editor", "name": "Editor", "permissions": ["tenant:read"]}),
    )
    .await;
    let matrix: serde_json::Value = app
        .get_as("/api/v1/tenants/race/roles/matrix", &owner)
        .await
        .json()
        .await
        .unwrap();
    let version = matrix["version"].as_i64().unwrap();
    assert!(matrix["permissions"].as_array().unwrap().len() >= 15);
    let put = |permissions: serde_json::Value| {
        let body = json!({"version": version, "roles": {"editor": permissions}});
        let app = &app;
        let owner = owner.clone();
        async move {
            app.send(
                app.client
                    .put(app.url("/api/v1/tenants/race/roles/matrix"))
                    .json(&body),
                Some(&owner),
            )
            .await
        }
    };
    let (a, b) = tokio::join!(
        put(json!(["tenant:read", "members:read"])),
        put(json!(["tenant:read", "workspaces:read"]))
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    let stale = put(json!(["tenant:read"])).await;
    assert_problem(stale, 409, "conflict").await;
    let after: serde_json::Value = app
        .get_as("/api/v1/tenants/race/roles/matrix", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["version"], version + 1);
    let builtin = app
        .send(
            app.client
                .put(app.url("/api/v1/tenants/race/roles/matrix"))
                .json(&json!({"version": version + 1, "roles": {"viewer": ["tenant:read"]}})),
            Some(&owner),
        )
        .await;
    assert_problem(builtin, 422, "validation-failed").await;
    app.stop().await;
}

async fn the_check_api_answers_with_reasons(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (owner, tenant_id) = tenant_with(&app, "checks").await;
    let viewer = app.create_user("v@checks.test", PASSWORD, true, &[]).await;
    app.add_member(&tenant_id, viewer, "viewer").await;
    let outsider = app.create_user("out@else.test", PASSWORD, true, &[]).await;
    let viewer_token = token_of(&app, "v@checks.test").await;
    let check = |token: String, body: serde_json::Value| {
        let app = &app;
        async move { app.post_as("/api/v1/authz/check", &token, &body).await }
    };
    let mine: serde_json::Value = check(
        viewer_token.clone(),
        json!({"action": "members:read", "resource": {"tenant": "checks"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        mine,
        json!({"allowed": true, "reason": "granted by the role viewer"})
    );
    let denied: serde_json::Value = check(
        viewer_token.clone(),
        json!({"action": "members:invite", "resource": {"tenant": "checks"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(denied["allowed"], false);
    assert!(denied["reason"].as_str().unwrap().contains("no role"));
    let unknown: serde_json::Value = check(
        owner.clone(),
        json!({"action": "rockets:launch", "resource": {"tenant": "checks"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(unknown["allowed"], false);
    let about_outsider: serde_json::Value = check(
        owner.clone(),
        json!({"subject": outsider, "action": "tenant:read", "resource": {"tenant": "checks"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        about_outsider["reason"],
        "the subject is not an active member of the tenant, or there is no such tenant"
    );
    let outsider_token = token_of(&app, "out@else.test").await;
    // Checking yourself against tenants you are not in tells nothing about whether they
    // exist: another tenant's slug, its id and an unknown slug answer byte for byte alike.
    let mut answers = Vec::new();
    for tenant in ["checks", tenant_id.as_str(), "no-such-tenant"] {
        let response = check(
            outsider_token.clone(),
            json!({"action": "tenant:read", "resource": {"tenant": tenant}}),
        )
        .await;
        assert_eq!(response.status(), 200);
        answers.push(response.text().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    let snooping = check(
        outsider_token,
        json!({"subject": viewer, "action": "tenant:read", "resource": {"tenant": "checks"}}),
    )
    .await;
    assert_problem(snooping, 404, "not-found").await;

    let batch: serde_json::Value = app
        .post_as(
            "/api/v1/authz/check/batch",
            &owner,
            &json!({"checks": [
                {"action": "tenant:delete", "resource": {"tenant": "checks"}},
                {"subject": viewer, "action": "tenant:delete", "resource": {"tenant": tenant_id}},
            ]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(batch["results"][0]["allowed"], true);
    assert_eq!(batch["results"][1]["allowed"], false);
    let too_many: Vec<_> = (0..101)
        .map(|_| json!({"action": "tenant:read", "resource": {"tenant": "checks"}}))
        .collect();
    let refused = app
        .post_as(
            "/api/v1/authz/check/batch",
            &owner,
            &json!({"checks": too_many}),
        )
        .await;
    assert_problem(refused, 422, "validation-failed").await;
    let catalog: serde_json::Value = app
        .get_as("/api/v1/permissions", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        catalog
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["key"] == "roles:update")
    );
    app.stop().await;
}

/// One rule decides whether a user may act in a tenant. For each set of facts (the
/// membership, the tenant's status, its second-factor requirement, the role) the request
/// guard, the check API, tenant selection and portal sign-in must agree, and the three
/// that answer with a status must answer with the same one.
async fn the_guard_the_check_api_tenant_selection_and_portal_sign_in_decide_alike(
    db: TestDatabase,
) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let (owner, tenant_id) = tenant_with(&app, "rule").await;
    let portal = app
        .post_as(
            "/api/v1/tenants/rule/portals",
            &owner,
            &json!({"slug": "rule-portal", "name": "Rule"}),
        )
        .await;
    assert_eq!(portal.status(), 201);
    let bob = app.create_user("bob@rule.test", PASSWORD, true, &[]).await;
    app.add_member(&tenant_id, bob, "viewer").await;
    let bob_token = token_of(&app, "bob@rule.test").await;
    let tenant: uuid::Uuid = tenant_id.parse().unwrap();

    // (membership status, roles, tenant status, MFA required) => allowed, refusal status
    let cases: &[(&str, &str, &str, bool, Option<u16>)] = &[
        ("active", "viewer", "active", false, None),
        ("active", "viewer", "trial", false, None),
        ("active", "member", "active", false, None),
        ("active", "owner", "expired", false, None),
        ("active", "viewer", "expired", false, Some(403)),
        ("active", "viewer", "suspended", false, Some(403)),
        ("active", "owner", "suspended", false, Some(403)),
        ("active", "viewer", "pending_deletion", false, Some(404)),
        ("suspended", "viewer", "active", false, Some(404)),
        ("suspended", "owner", "active", false, Some(404)),
        ("active", "viewer", "active", true, Some(403)),
        ("active", "owner", "active", true, Some(403)),
    ];
    for &(membership, roles, status, mfa_required, refused) in cases {
        let facts =
            format!("{membership} {roles} in a {status} tenant, MFA required: {mfa_required}");
        let settings = json!({"mfa_required": mfa_required}).to_string();
        let mut tx = app.db.begin().await.unwrap();
        plinth_store::exec!(tx.conn(), c => sqlx::query("UPDATE tenants SET status = $1, settings = $2 WHERE id = $3")
            .bind(status).bind(&settings).bind(tenant).execute(c).await).unwrap();
        plinth_store::exec!(tx.conn(), c => sqlx::query("UPDATE memberships SET status = $1, roles = $2 WHERE tenant_id = $3 AND user_id = $4")
            .bind(membership).bind(roles).bind(tenant).bind(bob).execute(c).await).unwrap();
        tx.commit().await.unwrap();

        let guard = app
            .get_as(&format!("/api/v1/tenants/{tenant_id}/members"), &bob_token)
            .await
            .status()
            .as_u16();
        let check: serde_json::Value = app
            .post_as(
                "/api/v1/authz/check",
                &bob_token,
                &json!({"action": "members:read", "resource": {"tenant": tenant_id}, "context": {"mfa": false}}),
            )
            .await
            .json()
            .await
            .unwrap();
        let selection = app
            .post_as(
                "/api/v1/me/tenant",
                &bob_token,
                &json!({"tenant": tenant_id}),
            )
            .await
            .status()
            .as_u16();
        let portal = app
            .post_as(
                "/api/v1/me/portal",
                &bob_token,
                &json!({"portal": "rule-portal"}),
            )
            .await
            .status()
            .as_u16();
        match refused {
            None => {
                assert_eq!(guard, 200, "guard: {facts}");
                assert_eq!(check["allowed"], true, "check: {facts}: {check}");
                assert_eq!(selection, 200, "selection: {facts}");
                assert_eq!(portal, 200, "portal sign-in: {facts}");
            }
            Some(code) => {
                assert_eq!(guard, code, "guard: {facts}");
                assert_eq!(check["allowed"], false, "check: {facts}: {check}");
                assert_eq!(selection, code, "selection: {facts}");
                assert_eq!(portal, code, "portal sign-in: {facts}");
            }
        }
    }
    app.stop().await;
}
