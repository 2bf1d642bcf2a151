//! Attribute policies (Cedar) on top of the role matrix: validation when saved, forbid
//! and permit conditions on the real routes and in the check API, and the owner's
//! repair path.

use plinth_store::on;
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    an_invalid_policy_is_refused_with_cedars_message_and_never_stored,
    a_forbid_policy_applies_on_the_next_request_and_lifts_when_deleted,
    a_permit_policy_is_a_condition_on_the_requests_in_its_scope,
    the_check_api_applies_resource_and_context_attributes,
    owners_can_always_repair_a_policy_that_locks_everyone_out,
    only_owners_change_policies_and_every_change_is_audited,
);

struct Tenant {
    owner: String,
    admin: String,
    member: String,
    member_id: plinth_core::UserId,
    id: String,
}

async fn token(app: &TestApp, email: &str) -> String {
    app.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn tenant(app: &TestApp, slug: &str) -> Tenant {
    app.create_user(&format!("owner@{slug}.test"), PASSWORD, true, &[])
        .await;
    let owner = token(app, &format!("owner@{slug}.test")).await;
    let id = app.create_tenant(&owner, slug).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_id = app
        .create_user(&format!("admin@{slug}.test"), PASSWORD, true, &[])
        .await;
    app.add_member(&id, admin_id, "admin").await;
    let member_id = app
        .create_user(&format!("member@{slug}.test"), PASSWORD, true, &[])
        .await;
    app.add_member(&id, member_id, "member").await;
    Tenant {
        owner,
        admin: token(app, &format!("admin@{slug}.test")).await,
        member: token(app, &format!("member@{slug}.test")).await,
        member_id,
        id,
    }
}

async fn save(
    app: &TestApp,
    slug: &str,
    token: &str,
    name: &str,
    source: &str,
) -> reqwest::Response {
    app.post_as(
        &format!("/api/v1/tenants/{slug}/policies"),
        token,
        &json!({"name": name, "description": "test", "source": source}),
    )
    .await
}

async fn saved_id(app: &TestApp, slug: &str, token: &str, name: &str, source: &str) -> String {
    let response = save(app, slug, token, name, source).await;
    assert_eq!(response.status(), 201, "saving {name}");
    let body: serde_json::Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn an_invalid_policy_is_refused_with_cedars_message_and_never_stored(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let t = tenant(&app, "cedar").await;
    let typo = save(
        &app,
        "cedar",
        &t.owner,
        "typo",
        r#"forbid(principal, action == Plinth::Action::"members:remov", resource);"#,
    )
    .await;
    let problem = assert_problem(typo, 422, "validation-failed").await;
    let detail = problem["errors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("unrecognized action") && detail.contains("members:remove"),
        "Cedar's message with its suggestion: {detail}"
    );
    assert_eq!(problem["errors"][0]["pointer"], "/source");
    let syntax = save(
        &app,
        "cedar",
        &t.owner,
        "syntax",
        "permit(principal, action, resource) when {",
    )
    .await;
    assert_problem(syntax, 422, "validation-failed").await;
    let attribute = save(
        &app,
        "cedar",
        &t.owner,
        "attribute",
        "forbid(principal, action, resource) unless { context.shoe_size > 3 };",
    )
    .await;
    let problem = assert_problem(attribute, 422, "validation-failed").await;
    assert_eq!(
        problem["errors"].as_array().unwrap().len(),
        1,
        "one message per problem, not one per action: {problem}"
    );
    let bad_name = save(
        &app,
        "cedar",
        &t.owner,
        "Not A Name",
        "forbid(principal, action, resource);",
    )
    .await;
    assert_problem(bad_name, 422, "validation-failed").await;

    let list: serde_json::Value = app
        .get_as("/api/v1/tenants/cedar/policies", &t.owner)
        .await
        .json()
        .await
        .unwrap();
    let list = list["items"].clone();
    assert_eq!(list, json!([]), "nothing invalid was stored");

    let checked: serde_json::Value = app
        .post_as(
            "/api/v1/tenants/cedar/policies/validate",
            &t.admin,
            &json!({"source": "permit(principal, action, resource) when { context.mfa };"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        checked,
        json!({"valid": true, "statements": 1, "errors": []})
    );
    let schema = app.get_as("/api/v1/authz/policy-schema", &t.member).await;
    assert_eq!(schema.status(), 200);
    assert!(
        schema
            .text()
            .await
            .unwrap()
            .contains(r#"action "members:invite""#)
    );
    app.stop().await;
}

async fn a_forbid_policy_applies_on_the_next_request_and_lifts_when_deleted(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let t = tenant(&app, "forbid").await;
    let create = |name: &'static str| {
        let app = &app;
        let admin = t.admin.clone();
        async move {
            app.post_as(
                "/api/v1/tenants/forbid/workspaces",
                &admin,
                &json!({"slug": name, "name": name}),
            )
            .await
        }
    };
    assert_eq!(create("before").await.status(), 201);
    let id = saved_id(
        &app,
        "forbid",
        &t.owner,
        "mfa-for-workspaces",
        r#"forbid(principal, action == Plinth::Action::"workspaces:create", resource) unless { context.mfa };"#,
    )
    .await;
    let refused = assert_problem(create("during").await, 403, "forbidden").await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("mfa-for-workspaces"),
        "the refusal names the policy: {refused}"
    );
    let reads = app
        .get_as("/api/v1/tenants/forbid/workspaces", &t.admin)
        .await;
    assert_eq!(reads.status(), 200, "other actions are untouched");
    let deleted = app
        .delete_as(&format!("/api/v1/tenants/forbid/policies/{id}"), &t.owner)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        create("after").await.status(),
        201,
        "lifted on the next request"
    );
    app.stop().await;
}

async fn a_permit_policy_is_a_condition_on_the_requests_in_its_scope(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let t = tenant(&app, "permit").await;
    let id = saved_id(
        &app,
        "permit",
        &t.owner,
        "office-network",
        r#"permit(principal in Plinth::Role::"member", action, resource)
           when { context.ip.isInRange(ip("10.0.0.0/8")) };"#,
    )
    .await;
    let members = "/api/v1/tenants/permit/members";
    let outside = app.get_as(members, &t.member).await;
    let problem = assert_problem(outside, 403, "forbidden").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("office-network")
    );
    assert_eq!(
        app.get_as(members, &t.admin).await.status(),
        200,
        "admins are outside the permit's scope"
    );
    let widened = app
        .patch_as(
            &format!("/api/v1/tenants/permit/policies/{id}"),
            &t.owner,
            &json!({"source": r#"permit(principal in Plinth::Role::"member", action, resource)
               when { context.ip.isInRange(ip("10.0.0.0/8")) || context.ip.isLoopback() };"#}),
        )
        .await;
    assert_eq!(widened.status(), 200);
    assert_eq!(app.get_as(members, &t.member).await.status(), 200);
    let invite = app
        .post_as(
            "/api/v1/tenants/permit/invitations",
            &t.member,
            &json!({"email": "x@permit.test", "role": "viewer"}),
        )
        .await;
    assert_problem(invite, 403, "forbidden").await;
    app.stop().await;
}

async fn the_check_api_applies_resource_and_context_attributes(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let t = tenant(&app, "attrs").await;
    saved_id(
        &app,
        "attrs",
        &t.owner,
        "own-workspaces",
        r#"permit(principal, action == Plinth::Action::"workspaces:read", resource)
           when { resource has owner && resource.owner == principal };"#,
    )
    .await;
    saved_id(
        &app,
        "attrs",
        &t.owner,
        "vpn-for-invites",
        r#"forbid(principal, action == Plinth::Action::"members:invite", resource)
           unless { context.ip.isInRange(ip("192.0.2.0/24")) };"#,
    )
    .await;
    let check = |token: &str, body: serde_json::Value| {
        let app = &app;
        let token = token.to_owned();
        async move {
            let response = app.post_as("/api/v1/authz/check", &token, &body).await;
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let own = check(
        &t.member,
        json!({"action": "workspaces:read", "resource": {"tenant": "attrs", "type": "workspace", "id": "w1", "owner": t.member_id}}),
    )
    .await;
    assert_eq!(own["allowed"], true, "{own}");
    assert!(own["reason"].as_str().unwrap().contains("own-workspaces"));
    let foreign = check(
        &t.member,
        json!({"action": "workspaces:read", "resource": {"tenant": "attrs", "type": "workspace", "id": "w2", "owner": uuid::Uuid::now_v7()}}),
    )
    .await;
    assert_eq!(foreign["allowed"], false, "{foreign}");
    assert!(
        foreign["reason"]
            .as_str()
            .unwrap()
            .contains("own-workspaces")
    );
    let about_member_from_vpn = check(
        &t.owner,
        json!({"subject": t.member_id, "action": "members:read", "resource": {"tenant": "attrs"}, "context": {"ip": "192.0.2.7"}}),
    )
    .await;
    assert_eq!(
        about_member_from_vpn["allowed"], true,
        "no policy speaks about members:read"
    );
    let invite_from_vpn = check(
        &t.admin,
        json!({"action": "members:invite", "resource": {"tenant": "attrs"}, "context": {"ip": "192.0.2.7", "mfa": true}}),
    )
    .await;
    assert_eq!(invite_from_vpn["allowed"], true, "{invite_from_vpn}");
    let invite_from_home = check(
        &t.admin,
        json!({"action": "members:invite", "resource": {"tenant": "attrs"}, "context": {"ip": "203.0.113.9"}}),
    )
    .await;
    assert_eq!(invite_from_home["allowed"], false);
    assert!(
        invite_from_home["reason"]
            .as_str()
            .unwrap()
            .contains("vpn-for-invites")
    );
    let bad_ip = app
        .post_as(
            "/api/v1/authz/check",
            &t.admin,
            &json!({"action": "members:invite", "resource": {"tenant": "attrs"}, "context": {"ip": "not-an-ip"}}),
        )
        .await;
    assert_eq!(
        bad_ip.status(),
        422,
        "a malformed address is refused, not ignored"
    );
    app.stop().await;
}

async fn owners_can_always_repair_a_policy_that_locks_everyone_out(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let t = tenant(&app, "lockout").await;
    let id = saved_id(
        &app,
        "lockout",
        &t.owner,
        "deny-all",
        "forbid(principal, action, resource);",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/tenants/lockout", &t.owner).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/tenants/lockout", &t.admin).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        app.get_as("/api/v1/tenants/lockout/policies", &t.admin)
            .await
            .status(),
        403,
        "admins are not exempt"
    );
    let removed = app
        .delete_as(&format!("/api/v1/tenants/lockout/policies/{id}"), &t.owner)
        .await;
    assert_eq!(removed.status(), 204, "the owner's repair path stays open");
    assert_eq!(
        app.get_as("/api/v1/tenants/lockout", &t.admin)
            .await
            .status(),
        200
    );
    app.stop().await;
}

async fn only_owners_change_policies_and_every_change_is_audited(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let t = tenant(&app, "owners").await;
    let by_admin = save(
        &app,
        "owners",
        &t.admin,
        "admin-made",
        "forbid(principal, action, resource);",
    )
    .await;
    assert_problem(by_admin, 403, "forbidden").await;
    let listed = app
        .get_as("/api/v1/tenants/owners/policies", &t.admin)
        .await;
    assert_eq!(listed.status(), 200, "admins read policies");
    assert_eq!(
        app.get_as("/api/v1/tenants/owners/policies", &t.member)
            .await
            .status(),
        403
    );
    let id = saved_id(
        &app,
        "owners",
        &t.owner,
        "hours",
        r#"forbid(principal, action == Plinth::Action::"tenant:delete", resource) unless { context.hour >= 8 && context.hour < 18 };"#,
    )
    .await;
    let duplicate = save(
        &app,
        "owners",
        &t.owner,
        "hours",
        "forbid(principal, action, resource);",
    )
    .await;
    assert_problem(duplicate, 422, "validation-failed").await;
    let renamed = app
        .patch_as(
            &format!("/api/v1/tenants/owners/policies/{id}"),
            &t.owner,
            &json!({"name": "office-hours"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let invalid_update = app
        .patch_as(
            &format!("/api/v1/tenants/owners/policies/{id}"),
            &t.owner,
            &json!({"source": "forbid(principal, action, resource) when { context.nope };"}),
        )
        .await;
    assert_problem(invalid_update, 422, "validation-failed").await;
    let kept: serde_json::Value = app
        .get_as(&format!("/api/v1/tenants/owners/policies/{id}"), &t.owner)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        kept["source"].as_str().unwrap().contains("context.hour"),
        "an invalid update leaves the policy as it was"
    );
    assert_eq!(kept["name"], "office-hours");
    assert_eq!(kept["statements"], 1);
    app.delete_as(&format!("/api/v1/tenants/owners/policies/{id}"), &t.owner)
        .await;
    let tenant: uuid::Uuid = t.id.parse().unwrap();
    let mut conn = app.db.read().await.unwrap();
    let actions: Vec<String> = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE tenant_id = $1 AND action LIKE 'policy.%' ORDER BY seq"
    ).bind(tenant).fetch_all(c).await)
    .unwrap();
    assert_eq!(actions, ["policy.create", "policy.update", "policy.delete"]);
    let events: i64 = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND event_type LIKE 'policy.%'"
    ).bind(tenant).fetch_one(c).await)
    .unwrap();
    assert_eq!(events, 3);
    drop(conn);
    app.stop().await;
}
