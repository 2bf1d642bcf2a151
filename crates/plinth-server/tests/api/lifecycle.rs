//! Invitations and the tenant lifecycle.

use plinth_identity::PlatformRole;
use plinth_store::{exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    an_invitation_is_accepted_once_by_the_invited_account,
    an_invitee_without_an_account_creates_one_and_joins,
    revoked_expired_and_replaced_links_are_refused,
    invitations_cannot_escalate_or_duplicate,
    suspension_blocks_the_tenant_until_reactivation,
    expired_trials_leave_owners_read_only,
    deletion_needs_the_owner_and_the_slug_and_can_be_restored,
    a_purge_removes_every_row_of_the_tenant_and_nothing_else,
    a_tenant_table_without_a_rule_stops_purge_and_export,
);

async fn token_of(app: &TestApp, email: &str) -> String {
    app.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn setup(app: &TestApp) -> String {
    app.create_user("owner@example.com", PASSWORD, true, &[])
        .await;
    let owner = token_of(app, "owner@example.com").await;
    app.create_tenant(&owner, "club").await;
    owner
}

async fn invite(app: &TestApp, token: &str, email: &str, role: &str) -> reqwest::Response {
    app.post_as(
        "/api/v1/tenants/club/invitations",
        token,
        &json!({"email": email, "role": role}),
    )
    .await
}

async fn an_invitation_is_accepted_once_by_the_invited_account(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = setup(&app).await;
    app.create_user("Guest@Example.com", PASSWORD, true, &[])
        .await;
    let created = invite(&app, &owner, "guest@example.com", "member").await;
    assert_eq!(created.status(), 201);
    let link = app.wait_for_link_token("guest@example.com", "invite").await;
    let email = &app.emails_to("guest@example.com").await[0];
    assert!(
        email.subject.contains("invited you to club"),
        "{}",
        email.subject
    );

    app.create_user("other@example.com", PASSWORD, true, &[])
        .await;
    let wrong_person = app
        .post_as(
            "/api/v1/invitations/accept",
            &token_of(&app, "other@example.com").await,
            &json!({"token": link}),
        )
        .await;
    assert_problem(wrong_person, 403, "forbidden").await;

    let guest = token_of(&app, "guest@example.com").await;
    let accepted = app
        .post_as(
            "/api/v1/invitations/accept",
            &guest,
            &json!({"token": link}),
        )
        .await;
    assert_eq!(accepted.status(), 200);
    let again = app
        .post_as(
            "/api/v1/invitations/accept",
            &guest,
            &json!({"token": link}),
        )
        .await;
    let body = assert_problem(again, 409, "conflict").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("already been accepted")
    );

    let members: serde_json::Value = app
        .get_as("/api/v1/tenants/club/members?role=member", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["items"][0]["email"], "Guest@Example.com");
    assert_eq!(
        app.get_as("/api/v1/tenants/club/workspaces", &guest)
            .await
            .status(),
        200
    );
    let pending: serde_json::Value = app
        .get_as("/api/v1/tenants/club/invitations", &owner)
        .await
        .json()
        .await
        .unwrap();
    let pending = pending["items"].clone();
    assert!(pending.as_array().unwrap().is_empty());
    app.stop().await;
}

async fn an_invitee_without_an_account_creates_one_and_joins(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = setup(&app).await;
    invite(&app, &owner, "newbie@example.com", "viewer").await;
    let link = app
        .wait_for_link_token("newbie@example.com", "invite")
        .await;
    let weak = app
        .post_json(
            "/api/v1/invitations/accept-new",
            &json!({"token": link, "password": "short"}),
        )
        .await;
    assert_problem(weak, 422, "validation-failed").await;
    let created = app
        .post_json(
            "/api/v1/invitations/accept-new",
            &json!({"token": link, "password": PASSWORD, "display_name": "Newbie"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let body: serde_json::Value = created.json().await.unwrap();
    assert!(
        body["user"]["email_verified_at"].is_string(),
        "the link proved the address"
    );
    let newbie = token_of(&app, "newbie@example.com").await;
    let mine: serde_json::Value = app
        .get_as("/api/v1/me/tenants", &newbie)
        .await
        .json()
        .await
        .unwrap();
    let mine = mine["items"].clone();
    assert_eq!(mine[0]["roles"], json!(["viewer"]));
    let twice = app
        .post_json(
            "/api/v1/invitations/accept-new",
            &json!({"token": link, "password": PASSWORD}),
        )
        .await;
    assert_problem(twice, 409, "conflict").await;
    app.stop().await;
}

async fn revoked_expired_and_replaced_links_are_refused(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = setup(&app).await;
    let revoked: serde_json::Value = invite(&app, &owner, "r@example.com", "member")
        .await
        .json()
        .await
        .unwrap();
    let revoked_link = app.wait_for_link_token("r@example.com", "invite").await;
    let path = format!(
        "/api/v1/tenants/club/invitations/{}",
        revoked["id"].as_str().unwrap()
    );
    assert_eq!(app.delete_as(&path, &owner).await.status(), 204);
    let r = app
        .post_json(
            "/api/v1/invitations/accept-new",
            &json!({"token": revoked_link, "password": PASSWORD}),
        )
        .await;
    assert_problem(r, 400, "invalid-token").await;

    let resent: serde_json::Value = invite(&app, &owner, "s@example.com", "member")
        .await
        .json()
        .await
        .unwrap();
    let first_link = app.wait_for_link_token("s@example.com", "invite").await;
    let resend = app
        .post_as(
            &format!(
                "/api/v1/tenants/club/invitations/{}/resend",
                resent["id"].as_str().unwrap()
            ),
            &owner,
            &json!({}),
        )
        .await;
    assert_eq!(resend.status(), 200);
    let emails = app.emails_to("s@example.com").await;
    assert_eq!(emails.len(), 2);
    let newest = &emails[0].text_body;
    let second_link = newest[newest.find("token=").unwrap() + 6..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(first_link, second_link);
    let old = app
        .post_json(
            "/api/v1/invitations/accept-new",
            &json!({"token": first_link, "password": PASSWORD}),
        )
        .await;
    assert_problem(old, 400, "invalid-token").await;
    let ok = app
        .post_json(
            "/api/v1/invitations/accept-new",
            &json!({"token": second_link, "password": PASSWORD}),
        )
        .await;
    assert_eq!(ok.status(), 201);

    invite(&app, &owner, "late@example.com", "member").await;
    let late_link = app.wait_for_link_token("late@example.com", "invite").await;
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE invitations SET expires_at = $1 WHERE email_normalized = 'late@example.com'")
        .bind(plinth_core::Timestamp::now() - time::Duration::seconds(1)).execute(c).await).unwrap();
    tx.commit().await.unwrap();
    let late = app
        .post_json(
            "/api/v1/invitations/accept-new",
            &json!({"token": late_link, "password": PASSWORD}),
        )
        .await;
    assert_problem(late, 400, "invalid-token").await;
    app.stop().await;
}

async fn invitations_cannot_escalate_or_duplicate(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = setup(&app).await;
    let tenant: serde_json::Value = app
        .get_as("/api/v1/tenants/club", &owner)
        .await
        .json()
        .await
        .unwrap();
    let admin_id = app
        .create_user("adm@example.com", PASSWORD, true, &[])
        .await;
    app.add_member(tenant["id"].as_str().unwrap(), admin_id, "admin")
        .await;
    let admin = token_of(&app, "adm@example.com").await;
    assert_problem(
        invite(&app, &admin, "boss@example.com", "owner").await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        invite(&app, &admin, "boss@example.com", "admin")
            .await
            .status(),
        201
    );
    assert_problem(
        invite(&app, &admin, "boss@example.com", "member").await,
        409,
        "conflict",
    )
    .await;
    assert_problem(
        invite(&app, &admin, "adm@example.com", "member").await,
        409,
        "conflict",
    )
    .await;
    let unknown_role = invite(&app, &admin, "x@example.com", "god").await;
    assert_problem(unknown_role, 422, "validation-failed").await;

    let only_acme = json!({"settings": {"mfa_required": false, "allowed_email_domains": ["acme.test"], "signup_mode": "invite_only"}});
    assert_eq!(
        app.patch_as("/api/v1/tenants/club", &owner, &only_acme)
            .await
            .status(),
        200
    );
    let outside = invite(&app, &owner, "x@elsewhere.test", "member").await;
    let body = assert_problem(outside, 422, "validation-failed").await;
    assert_eq!(body["errors"][0]["code"], "domain_not_allowed");
    assert_eq!(
        invite(&app, &owner, "x@acme.test", "member").await.status(),
        201
    );
    app.stop().await;
}

async fn suspension_blocks_the_tenant_until_reactivation(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    let owner = setup(&app).await;
    let tenant: serde_json::Value = app
        .get_as("/api/v1/tenants/club", &owner)
        .await
        .json()
        .await
        .unwrap();
    let id = tenant["id"].as_str().unwrap();
    app.create_user("ops@example.com", PASSWORD, true, &[PlatformRole::OpsAdmin])
        .await;
    app.create_user(
        "support@example.com",
        PASSWORD,
        true,
        &[PlatformRole::Support],
    )
    .await;
    let ops = token_of(&app, "ops@example.com").await;
    let support = token_of(&app, "support@example.com").await;
    let suspend = format!("/api/v1/platform/tenants/{id}/suspend");

    assert_problem(
        app.post_as(&suspend, &ops, &json!({"reason": "  "})).await,
        422,
        "validation-failed",
    )
    .await;
    assert_problem(
        app.post_as(&suspend, &support, &json!({"reason": "abuse"}))
            .await,
        403,
        "forbidden",
    )
    .await;
    let done = app
        .post_as(&suspend, &ops, &json!({"reason": "unpaid invoices"}))
        .await;
    assert_eq!(done.status(), 200);
    assert_eq!(
        done.json::<serde_json::Value>().await.unwrap()["status_reason"],
        "unpaid invoices"
    );
    assert_problem(
        app.post_as(&suspend, &ops, &json!({"reason": "again"}))
            .await,
        409,
        "conflict",
    )
    .await;

    assert_problem(
        app.get_as("/api/v1/tenants/club", &owner).await,
        403,
        "tenant-suspended",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/tenants/club/members", &owner).await,
        403,
        "tenant-suspended",
    )
    .await;
    assert_problem(
        app.post_as("/api/v1/me/tenant", &owner, &json!({"tenant": "club"}))
            .await,
        403,
        "tenant-suspended",
    )
    .await;

    let mut conn = app.db.read().await.unwrap();
    let reason: Option<String> = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT reason FROM audit_log WHERE action = 'tenant.suspend'"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!(reason.as_deref(), Some("unpaid invoices"));
    drop(conn);

    let back = app
        .post_as(
            &format!("/api/v1/platform/tenants/{id}/reactivate"),
            &ops,
            &json!({"reason": "paid"}),
        )
        .await;
    assert_eq!(back.status(), 200);
    assert_eq!(
        app.get_as("/api/v1/tenants/club", &owner).await.status(),
        200
    );
    app.stop().await;
}

async fn expired_trials_leave_owners_read_only(db: TestDatabase) {
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
    let root = token_of(&app, "root@example.com").await;
    let owner_id = app.create_user("o@example.com", PASSWORD, true, &[]).await;
    let created = app
        .post_as(
            "/api/v1/tenants",
            &root,
            &json!({"slug": "trial", "name": "Trial", "owner_user_id": owner_id, "trial_days": 14}),
        )
        .await;
    let tenant: serde_json::Value = created.json().await.unwrap();
    let member_id = app.create_user("m@example.com", PASSWORD, true, &[]).await;
    app.add_member(tenant["id"].as_str().unwrap(), member_id, "member")
        .await;

    assert_eq!(
        app.state
            .tenancy
            .expire_trials(plinth_core::Timestamp::now())
            .await
            .unwrap(),
        0,
        "not yet"
    );
    let later = plinth_core::Timestamp::now() + time::Duration::days(15);
    assert_eq!(app.state.tenancy.expire_trials(later).await.unwrap(), 1);

    let owner = token_of(&app, "o@example.com").await;
    let member = token_of(&app, "m@example.com").await;
    let read: serde_json::Value = app
        .get_as("/api/v1/tenants/trial", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "expired");
    let write = app
        .patch_as("/api/v1/tenants/trial", &owner, &json!({"name": "Renamed"}))
        .await;
    assert_problem(write, 403, "tenant-expired").await;
    assert_problem(
        app.get_as("/api/v1/tenants/trial", &member).await,
        403,
        "tenant-expired",
    )
    .await;

    let mut conn = app.db.read().await.unwrap();
    let (audits, events): (i64, i64) = on!(conn.conn(), c => sqlx::query_as(
        "SELECT (SELECT count(*) FROM audit_log WHERE action = 'tenant.trial_expire'),
                (SELECT count(*) FROM outbox WHERE event_type = 'tenant.trial_expired')"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!((audits, events), (1, 1));
    drop(conn);

    let id = tenant["id"].as_str().unwrap();
    let back = app
        .post_as(
            &format!("/api/v1/platform/tenants/{id}/reactivate"),
            &root,
            &json!({"reason": "plan chosen"}),
        )
        .await;
    assert_eq!(
        back.json::<serde_json::Value>().await.unwrap()["status"],
        "active"
    );
    assert_eq!(
        app.get_as("/api/v1/tenants/trial", &member).await.status(),
        200
    );
    app.stop().await;
}

async fn deletion_needs_the_owner_and_the_slug_and_can_be_restored(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    let owner = setup(&app).await;
    let tenant: serde_json::Value = app
        .get_as("/api/v1/tenants/club", &owner)
        .await
        .json()
        .await
        .unwrap();
    let admin_id = app
        .create_user("adm@example.com", PASSWORD, true, &[])
        .await;
    app.add_member(tenant["id"].as_str().unwrap(), admin_id, "admin")
        .await;
    let admin = token_of(&app, "adm@example.com").await;

    assert_problem(
        app.delete_as("/api/v1/tenants/club?confirm=club", &admin)
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.delete_as("/api/v1/tenants/club?confirm=clbu", &owner)
            .await,
        422,
        "validation-failed",
    )
    .await;
    let scheduled = app
        .delete_as("/api/v1/tenants/club?confirm=club", &owner)
        .await;
    assert_eq!(scheduled.status(), 202);
    let scheduled: serde_json::Value = scheduled.json().await.unwrap();
    let purge_after =
        plinth_core::Timestamp::parse_rfc3339(scheduled["purge_after"].as_str().unwrap()).unwrap();
    let days = (purge_after - plinth_core::Timestamp::now()).whole_days();
    assert!((29..=30).contains(&days), "30 days of grace, got {days}");

    assert_problem(
        app.get_as("/api/v1/tenants/club", &owner).await,
        404,
        "not-found",
    )
    .await;
    let mine: serde_json::Value = app
        .get_as("/api/v1/me/tenants", &owner)
        .await
        .json()
        .await
        .unwrap();
    let mine = mine["items"].clone();
    assert!(mine.as_array().unwrap().is_empty());
    assert!(
        app.state
            .tenancy
            .purge_plan(plinth_core::Timestamp::now())
            .await
            .unwrap()
            .is_empty(),
        "not before the grace ends"
    );

    app.create_user("ops@example.com", PASSWORD, true, &[PlatformRole::OpsAdmin])
        .await;
    let ops = token_of(&app, "ops@example.com").await;
    let id = tenant["id"].as_str().unwrap();
    let restored = app
        .post_as(
            &format!("/api/v1/platform/tenants/{id}/restore"),
            &ops,
            &json!({"reason": "owner changed their mind"}),
        )
        .await;
    assert_eq!(restored.status(), 200);
    assert_eq!(
        app.get_as("/api/v1/tenants/club", &owner).await.status(),
        200
    );
    let again = app
        .post_as(
            &format!("/api/v1/platform/tenants/{id}/restore"),
            &ops,
            &json!({"reason": "twice"}),
        )
        .await;
    assert_problem(again, 409, "conflict").await;
    app.stop().await;
}

async fn a_purge_removes_every_row_of_the_tenant_and_nothing_else(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = setup(&app).await;
    let other = app.create_tenant(&owner, "keeper").await;
    let doomed: serde_json::Value = app
        .get_as("/api/v1/tenants/club", &owner)
        .await
        .json()
        .await
        .unwrap();
    app.post_as(
        "/api/v1/tenants/club/workspaces",
        &owner,
        &json!({"slug": "extra", "name": "Extra"}),
    )
    .await;
    app.post_as(
        "/api/v1/tenants/club/portals",
        &owner,
        &json!({"slug": "club-portal", "name": "P"}),
    )
    .await;
    invite(&app, &owner, "guest@example.com", "member").await;
    app.post_as("/api/v1/me/tenant", &owner, &json!({"tenant": "club"}))
        .await;
    let key = app
        .post_as(
            "/api/v1/me/api-keys",
            &owner,
            &json!({"name": "ci", "tenant": "club", "permissions": ["tenant:read"]}),
        )
        .await;
    assert_eq!(key.status(), 201);
    assert_eq!(
        app.delete_as("/api/v1/tenants/club?confirm=club", &owner)
            .await
            .status(),
        202
    );

    let later = plinth_core::Timestamp::now() + time::Duration::days(31);
    let plan = app.state.tenancy.purge_plan(later).await.unwrap();
    assert_eq!(plan.len(), 1);
    let rows: std::collections::BTreeMap<_, _> = plan[0].rows.iter().cloned().collect();
    assert_eq!(rows["workspaces"], 2);
    assert_eq!(rows["portals"], 1);
    assert_eq!(rows["invitations"], 1);
    assert!(rows["audit_log"] >= 5);

    let purged = app.state.tenancy.purge_due(later).await.unwrap();
    assert_eq!(purged.len(), 1);
    let doomed_id: uuid::Uuid = doomed["id"].as_str().unwrap().parse().unwrap();
    // Every table the schema says is tenant-owned, not a list kept by hand.
    let owned = app.db.tables_with_column("tenant_id").await.unwrap();
    assert!(
        owned.contains("api_keys") && owned.contains("workspaces"),
        "{owned:?}"
    );
    let mut conn = app.db.read().await.unwrap();
    for (table, column) in owned
        .iter()
        .map(|t| (t.as_str(), "tenant_id"))
        .chain([("tenants", "id")])
    {
        let left: i64 = on!(conn.conn(), c => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {column} = $1"
        ))).bind(doomed_id).fetch_one(c).await)
        .unwrap();
        assert_eq!(left, 0, "{table} still holds rows of the purged tenant");
    }
    drop(conn);
    // The other tenant is untouched, and the purge is on record.
    assert_eq!(
        app.get_as("/api/v1/tenants/keeper/workspaces", &owner)
            .await
            .status(),
        200
    );
    let keeper_id: plinth_core::TenantId = other["id"].as_str().unwrap().parse().unwrap();
    assert!(
        plinth_audit::verify_chain(&app.db, Some(keeper_id), &plinth_audit::NoSeal)
            .await
            .unwrap()
            .is_intact()
    );
    let platform = plinth_audit::verify_chain(&app.db, None, &plinth_audit::NoSeal)
        .await
        .unwrap();
    assert!(platform.is_intact());
    let mut conn = app.db.read().await.unwrap();
    let record: i64 = on!(conn.conn(), c => sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'tenant.purge' AND tenant_id IS NULL")
        .fetch_one(c).await).unwrap();
    assert_eq!(record, 1);
    drop(conn);
    app.stop().await;
}

/// A migration that adds a table with `tenant_id` but no purge or export rule must stop
/// both, rather than leave the tenant's rows behind or out of its archive.
async fn a_tenant_table_without_a_rule_stops_purge_and_export(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner = setup(&app).await;
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("CREATE TABLE notes (id TEXT PRIMARY KEY, tenant_id TEXT, body TEXT)")
        .execute(c).await).unwrap();
    tx.commit().await.unwrap();

    let export = app.get_as("/api/v1/tenants/club/export", &owner).await;
    assert_problem(export, 500, "internal").await;
    assert_eq!(
        app.delete_as("/api/v1/tenants/club?confirm=club", &owner)
            .await
            .status(),
        202
    );
    let later = plinth_core::Timestamp::now() + time::Duration::days(31);
    let refused = app.state.tenancy.purge_due(later).await.unwrap_err();
    assert!(refused.to_string().contains("notes"), "{refused}");
    // The plan is refused for the same reason.
    assert_eq!(
        app.state
            .tenancy
            .purge_plan(later)
            .await
            .unwrap_err()
            .to_string(),
        refused.to_string()
    );
    app.stop().await;
}
