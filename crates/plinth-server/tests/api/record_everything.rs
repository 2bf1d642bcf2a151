//! Every change leaves exactly one audit record and publishes exactly one event: a walk
//! over the route table that performs each state-changing request for real and reads what
//! it wrote to the audit log and the outbox.
//!
//! Each mutating API route is classified here, with the action its success records or why
//! it records none (a read sent as POST, a step before the change): a route added without a
//! classification fails the test, and so does a change that records nothing, records twice
//! or records another action.

use std::collections::BTreeSet;

use plinth_server::RouteKind;
use plinth_store::on;
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::{Value, json};

use crate::auth::PASSWORD;
use crate::console::{Browser, Page};
use crate::mfa::{code, start_login};
use crate::passkeys::SoftAuthenticator;
use crate::support::TestApp;

backend_tests!(
    every_change_writes_exactly_one_audit_record_with_its_action,
    every_console_change_writes_exactly_one_audit_record,
);

#[derive(sqlx::FromRow)]
struct Recorded {
    chain: String,
    seq: i64,
    action: String,
    request_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
}

/// The walk: what each request recorded, against what it should have.
struct Walk<'a> {
    app: &'a TestApp,
    recorded: BTreeSet<(String, i64)>,
    /// The newest outbox event seen.
    last_event: i64,
    covered: BTreeSet<(String, String)>,
    mismatches: Vec<String>,
}

impl<'a> Walk<'a> {
    async fn new(app: &'a TestApp) -> Walk<'a> {
        let mut walk = Walk {
            app,
            recorded: BTreeSet::new(),
            last_event: 0,
            covered: BTreeSet::new(),
            mismatches: Vec::new(),
        };
        walk.recorded = walk
            .records()
            .await
            .into_iter()
            .map(|r| (r.chain, r.seq))
            .collect();
        walk
    }

    async fn records(&self) -> Vec<Recorded> {
        let mut conn = self.app.db.read().await.unwrap();
        on!(conn.conn(), c => sqlx::query_as(
            "SELECT chain, seq, action, request_id, ip, user_agent FROM audit_log ORDER BY chain, seq"
        ).fetch_all(c).await)
        .unwrap()
    }

    /// The records written since the last step (forgotten afterwards): their actions, and
    /// whether each carries the request it came from (its id, address and user agent).
    async fn new_actions(&mut self) -> (Vec<String>, bool) {
        let mut added = Vec::new();
        let mut with_context = true;
        for record in self.records().await {
            if self.recorded.insert((record.chain, record.seq)) {
                with_context &= record.request_id.is_some()
                    && record.ip.is_some()
                    && record.user_agent.is_some();
                added.push(record.action);
            }
        }
        (added, with_context)
    }

    /// The types of the events written since the last step (forgotten afterwards).
    async fn new_events(&mut self) -> Vec<String> {
        let mut conn = self.app.db.read().await.unwrap();
        let rows: Vec<(i64, String)> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT seq, event_type FROM outbox WHERE seq > $1 ORDER BY seq"
        ).bind(self.last_event).fetch_all(c).await)
        .unwrap();
        if let Some((seq, _)) = rows.last() {
            self.last_event = *seq;
        }
        rows.into_iter().map(|(_, event)| event).collect()
    }

    /// Records what a setup request (not under test) wrote, so the next step starts clean.
    async fn settle(&mut self) {
        self.new_actions().await;
        self.new_events().await;
    }

    /// Checks that `response` (to `method` `template`) succeeded and recorded exactly
    /// `expected` (`None`: nothing). Returns the body.
    async fn check(
        &mut self,
        method: &str,
        template: &str,
        expected: Option<&str>,
        response: reqwest::Response,
    ) -> Value {
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        self.verdict(
            method,
            template,
            expected,
            status
                .is_success()
                .then_some(())
                .ok_or_else(|| format!("answered {status}: {body}")),
        )
        .await;
        body
    }

    /// Checks that a console `page` (answering `method` `template`) succeeded (a page or a
    /// redirect) and recorded exactly `expected`.
    async fn check_page(
        &mut self,
        method: &str,
        template: &str,
        expected: Option<&str>,
        page: &Page,
    ) {
        let ok = matches!(page.status, 200 | 201 | 303);
        let outcome = ok
            .then_some(())
            .ok_or_else(|| format!("answered {}: {}", page.status, page.body));
        self.verdict(method, template, expected, outcome).await;
    }

    async fn verdict(
        &mut self,
        method: &str,
        template: &str,
        expected: Option<&str>,
        outcome: Result<(), String>,
    ) {
        self.covered
            .insert((method.to_owned(), template.to_owned()));
        let (added, with_context) = self.new_actions().await;
        let published = self.new_events().await;
        if !with_context {
            self.mismatches.push(format!(
                "{method} {template}: a record lacks the request id, address or user agent"
            ));
        }
        if let Err(failure) = outcome {
            self.mismatches
                .push(format!("{method} {template}: {failure}"));
            return;
        }
        let wanted: Vec<String> = expected.map(str::to_owned).into_iter().collect();
        if added != wanted {
            self.mismatches.push(format!(
                "{method} {template}: recorded {added:?}, expected {wanted:?}"
            ));
        }
        let wanted_events: Vec<String> = expected
            .map(|a| event_of(a).to_owned())
            .into_iter()
            .collect();
        if published != wanted_events {
            self.mismatches.push(format!(
                "{method} {template}: published {published:?}, expected {wanted_events:?}"
            ));
        }
    }

    /// Asserts that the walk classified exactly the routes of `kind` with a changing method,
    /// and that each recorded what it should.
    fn finish(self, kind: RouteKind) {
        let mutating: BTreeSet<(String, String)> = self
            .app
            .routes
            .iter()
            .filter(|r| r.kind == kind && r.method != reqwest::Method::GET)
            .map(|r| (r.method.to_string(), r.path.clone()))
            .collect();
        let unwalked: Vec<_> = mutating.difference(&self.covered).collect();
        let unknown: Vec<_> = self.covered.difference(&mutating).collect();
        assert!(
            unwalked.is_empty() && unknown.is_empty(),
            "routes the walk does not classify: {unwalked:?}; classified routes that do not exist: {unknown:?}"
        );
        assert!(
            self.mismatches.is_empty(),
            "{} of {} routes:\n{}",
            self.mismatches.len(),
            mutating.len(),
            self.mismatches.join("\n")
        );
    }
}

/// The event a change of audit `action` publishes.
fn event_of(action: &str) -> &'static str {
    match action {
        "platform.superadmin.create" | "user.signup" => "user.created",
        "auth.login" => "user.signed_in",
        "auth.login.mfa_required" => "user.sign_in_challenged",
        "auth.logout" => "user.signed_out",
        "auth.logout_everywhere" | "auth.session.revoke" | "admin.user.sessions.revoke" => {
            "user.sessions_revoked"
        }
        "auth.tenant.select" => "user.tenant_selected",
        "user.email.verify" => "user.email_verified",
        "user.profile.update" => "user.updated",
        "auth.password.change" | "auth.password.reset" => "user.password_changed",
        "auth.password.reset_requested" => "user.password_reset_requested",
        "admin.user.unlock" => "user.unlocked",
        "mfa.totp.enable"
        | "mfa.totp.disable"
        | "mfa.recovery_codes.regenerate"
        | "mfa.passkey.add"
        | "mfa.passkey.rename"
        | "mfa.passkey.remove" => "user.mfa_changed",
        "tenant.create" => "tenant.created",
        "tenant.update" => "tenant.updated",
        "tenant.suspend" => "tenant.suspended",
        "tenant.reactivate" => "tenant.reactivated",
        "tenant.delete.request" => "tenant.deletion_requested",
        "tenant.delete.cancel" => "tenant.restored",
        "workspace.create" => "workspace.created",
        "workspace.update" => "workspace.updated",
        "workspace.delete" => "workspace.deleted",
        "flag.set" => "flag.set",
        "flag.delete" => "flag.deleted",
        "portal.create" => "portal.created",
        "portal.update" => "portal.updated",
        "portal.delete" => "portal.deleted",
        "role.create" => "role.created",
        "role.update" => "role.updated",
        "role.delete" => "role.deleted",
        "role.matrix.update" => "role.matrix_updated",
        "policy.create" => "policy.created",
        "policy.update" => "policy.updated",
        "policy.delete" => "policy.deleted",
        "api_key.create" => "api_key.created",
        "api_key.revoke" => "api_key.revoked",
        "member.invite" => "member.invited",
        "member.invite.resend" => "member.invitation_resent",
        "member.invite.revoke" => "member.invitation_revoked",
        "member.join" => "member.joined",
        "member.update" => "member.updated",
        "member.remove" => "member.removed",
        "webhook.create" => "webhook.created",
        "webhook.update" => "webhook.updated",
        "webhook.delete" => "webhook.deleted",
        "webhook.secret.rotate" => "webhook.secret_rotated",
        "webhook.replay" => "webhook.replayed",
        "webhook.disable" => "webhook.disabled",
        other => panic!("no event is named for audit action {other}"),
    }
}

fn s(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

async fn every_change_writes_exactly_one_audit_record_with_its_action(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("require_admin_mfa", false)
        .with("webhook_allow_http", true)
        .with("webhook_allowed_networks", "127.0.0.0/8")
        .spawn()
        .await;
    let mut w = Walk::new(&app).await;

    // The instance: its first administrator.
    let setup_token = app.setup_token().await;
    let r = app
        .post_json(
            "/api/v1/setup",
            &json!({"token": setup_token, "email": "root@walk.test", "password": PASSWORD, "display_name": "Root"}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/setup",
        Some("platform.superadmin.create"),
        r,
    )
    .await;
    let root = app.access_token("root@walk.test", PASSWORD).await;
    w.settle().await;

    // Accounts.
    let r = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({"email": "new@walk.test", "password": PASSWORD}),
        )
        .await;
    w.check("POST", "/api/v1/auth/signup", Some("user.signup"), r)
        .await;
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "new@walk.test", "password": PASSWORD}),
        )
        .await;
    let tokens = w
        .check("POST", "/api/v1/auth/login", Some("auth.login"), r)
        .await;
    let r = app
        .post_as(
            "/api/v1/auth/verify-email/resend",
            &s(&tokens["access_token"]),
            &json!({}),
        )
        .await;
    // Sends the link again: nothing changes until it is used.
    w.check("POST", "/api/v1/auth/verify-email/resend", None, r)
        .await;
    let link = app.wait_for_link_token("new@walk.test", "verify").await;
    let r = app
        .post_json("/api/v1/auth/verify-email", &json!({"token": link}))
        .await;
    w.check(
        "POST",
        "/api/v1/auth/verify-email",
        Some("user.email.verify"),
        r,
    )
    .await;
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    // Rotation continues a session whose sign-in is recorded (reuse is recorded, as a theft).
    let refreshed = w.check("POST", "/api/v1/auth/refresh", None, r).await;
    let r = app
        .post_as(
            "/api/v1/auth/introspect",
            &root,
            &json!({"token": refreshed["access_token"]}),
        )
        .await;
    // A read sent as POST (RFC 7662).
    w.check("POST", "/api/v1/auth/introspect", None, r).await;
    let r = app
        .post_as(
            "/api/v1/auth/logout",
            &s(&refreshed["access_token"]),
            &json!({}),
        )
        .await;
    w.check("POST", "/api/v1/auth/logout", Some("auth.logout"), r)
        .await;
    let user = app.access_token("new@walk.test", PASSWORD).await;
    w.settle().await;

    let r = app
        .patch_as("/api/v1/me", &user, &json!({"display_name": "Walker"}))
        .await;
    w.check("PATCH", "/api/v1/me", Some("user.profile.update"), r)
        .await;
    let r = app
        .post_as(
            "/api/v1/me/password",
            &user,
            &json!({"current_password": PASSWORD, "new_password": "another long passphrase"}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/me/password",
        Some("auth.password.change"),
        r,
    )
    .await;
    app.access_token("new@walk.test", "another long passphrase")
        .await;
    w.settle().await;

    let r = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "new@walk.test"}),
        )
        .await;
    // The request is answered before the work is done (the same time for any address, so
    // the answer tells nothing); the record comes with the e-mail.
    let reset = app.wait_for_link_token("new@walk.test", "reset").await;
    w.check(
        "POST",
        "/api/v1/auth/forgot-password",
        Some("auth.password.reset_requested"),
        r,
    )
    .await;
    let r = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": reset, "password": PASSWORD}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/auth/reset-password",
        Some("auth.password.reset"),
        r,
    )
    .await;
    let user = app.access_token("new@walk.test", PASSWORD).await;
    let spare = app.login("new@walk.test", PASSWORD).await;
    w.settle().await;
    let sessions: Value = app
        .get_as("/api/v1/me/sessions", &user)
        .await
        .json()
        .await
        .unwrap();
    let other = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] != json!(true))
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .unwrap();
    let r = app
        .delete_as(&format!("/api/v1/me/sessions/{other}"), &user)
        .await;
    w.check(
        "DELETE",
        "/api/v1/me/sessions/{id}",
        Some("auth.session.revoke"),
        r,
    )
    .await;
    drop(spare);

    // Second factors.
    let r = app
        .post_as("/api/v1/me/mfa/totp", &user, &json!({"password": PASSWORD}))
        .await;
    // Enrolment starts; the factor exists once confirmed.
    let enrolment = w.check("POST", "/api/v1/me/mfa/totp", None, r).await;
    let secret = s(&enrolment["secret"]);
    let r = app
        .post_as(
            "/api/v1/me/mfa/totp/confirm",
            &user,
            &json!({"code": code(&secret, 0)}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/me/mfa/totp/confirm",
        Some("mfa.totp.enable"),
        r,
    )
    .await;
    let r = app
        .post_as(
            "/api/v1/me/mfa/recovery-codes",
            &user,
            &json!({"password": PASSWORD}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/me/mfa/recovery-codes",
        Some("mfa.recovery_codes.regenerate"),
        r,
    )
    .await;
    let challenge = start_login(&app, "new@walk.test").await;
    w.settle().await;
    let r = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge, "code": code(&secret, 1)}),
        )
        .await;
    let signed_in = w
        .check("POST", "/api/v1/auth/mfa", Some("auth.login"), r)
        .await;
    let user = s(&signed_in["access_token"]);
    let r = app
        .post_as(
            "/api/v1/me/mfa/totp/disable",
            &user,
            &json!({"password": PASSWORD}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/me/mfa/totp/disable",
        Some("mfa.totp.disable"),
        r,
    )
    .await;

    let mut authenticator = SoftAuthenticator::new(&app);
    let r = app
        .post_as(
            "/api/v1/me/passkeys/register/begin",
            &user,
            &json!({"password": PASSWORD}),
        )
        .await;
    // A challenge, not a change.
    let begun = w
        .check("POST", "/api/v1/me/passkeys/register/begin", None, r)
        .await;
    let credential = authenticator.create(&begun["options"]);
    let r = app
        .post_as(
            "/api/v1/me/passkeys/register/finish",
            &user,
            &json!({"challenge_id": begun["challenge_id"], "name": "Laptop", "credential": credential}),
        )
        .await;
    let passkey = w
        .check(
            "POST",
            "/api/v1/me/passkeys/register/finish",
            Some("mfa.passkey.add"),
            r,
        )
        .await;
    let passkey_id = s(&passkey["passkey"]["id"]);
    let r = app
        .patch_as(
            &format!("/api/v1/me/passkeys/{passkey_id}"),
            &user,
            &json!({"name": "Desk key"}),
        )
        .await;
    w.check(
        "PATCH",
        "/api/v1/me/passkeys/{id}",
        Some("mfa.passkey.rename"),
        r,
    )
    .await;
    let r = app
        .post_json("/api/v1/auth/passkey/begin", &json!({}))
        .await;
    // A challenge, not a change.
    let begun = w.check("POST", "/api/v1/auth/passkey/begin", None, r).await;
    let finish = json!({"challenge_id": begun["challenge_id"], "credential": authenticator.get(&begun["options"])});
    let r = app.post_json("/api/v1/auth/passkey/finish", &finish).await;
    w.check("POST", "/api/v1/auth/passkey/finish", Some("auth.login"), r)
        .await;
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "new@walk.test", "password": PASSWORD}),
        )
        .await;
    let challenge = w
        .check(
            "POST",
            "/api/v1/auth/login",
            Some("auth.login.mfa_required"),
            r,
        )
        .await;
    let r = app
        .post_json(
            "/api/v1/auth/mfa/passkey/begin",
            &json!({"mfa_token": challenge["mfa_token"]}),
        )
        .await;
    // A challenge, not a change.
    let begun = w
        .check("POST", "/api/v1/auth/mfa/passkey/begin", None, r)
        .await;
    let finish = json!({"mfa_token": challenge["mfa_token"], "challenge_id": begun["challenge_id"], "credential": authenticator.get(&begun["options"])});
    let r = app
        .post_json("/api/v1/auth/mfa/passkey/finish", &finish)
        .await;
    let signed_in = w
        .check(
            "POST",
            "/api/v1/auth/mfa/passkey/finish",
            Some("auth.login"),
            r,
        )
        .await;
    let user = s(&signed_in["access_token"]);
    let r = app
        .delete_as(&format!("/api/v1/me/passkeys/{passkey_id}"), &user)
        .await;
    w.check(
        "DELETE",
        "/api/v1/me/passkeys/{id}",
        Some("mfa.passkey.remove"),
        r,
    )
    .await;

    // A tenant and everything in it.
    let r = app
        .post_as(
            "/api/v1/tenants",
            &user,
            &json!({"slug": "walk", "name": "Walk"}),
        )
        .await;
    let tenant = w
        .check("POST", "/api/v1/tenants", Some("tenant.create"), r)
        .await;
    let tenant_id = s(&tenant["id"]);
    let t = "/api/v1/tenants/walk";
    let r = app
        .post_as("/api/v1/me/tenant", &user, &json!({"tenant": "walk"}))
        .await;
    let selected = w
        .check("POST", "/api/v1/me/tenant", Some("auth.tenant.select"), r)
        .await;
    let user = match selected["access_token"].as_str() {
        Some(token) => token.to_owned(),
        None => user,
    };
    let r = app.patch_as(t, &user, &json!({"name": "Walk on"})).await;
    w.check(
        "PATCH",
        "/api/v1/tenants/{tenant}",
        Some("tenant.update"),
        r,
    )
    .await;
    let r = app
        .post_as(
            &format!("{t}/workspaces"),
            &user,
            &json!({"slug": "yard", "name": "Yard"}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/tenants/{tenant}/workspaces",
        Some("workspace.create"),
        r,
    )
    .await;
    let r = app
        .patch_as(
            &format!("{t}/workspaces/yard"),
            &user,
            &json!({"name": "Back yard"}),
        )
        .await;
    w.check(
        "PATCH",
        "/api/v1/tenants/{tenant}/workspaces/{workspace}",
        Some("workspace.update"),
        r,
    )
    .await;
    let r = app.delete_as(&format!("{t}/workspaces/yard"), &user).await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}/workspaces/{workspace}",
        Some("workspace.delete"),
        r,
    )
    .await;

    let r = app
        .put_as(&format!("{t}/flags/beta"), &user, &json!({"value": true}))
        .await;
    w.check(
        "PUT",
        "/api/v1/tenants/{tenant}/flags/{key}",
        Some("flag.set"),
        r,
    )
    .await;
    let r = app.delete_as(&format!("{t}/flags/beta"), &user).await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}/flags/{key}",
        Some("flag.delete"),
        r,
    )
    .await;
    let r = app
        .put_as(
            "/api/v1/platform/flags/beta",
            &root,
            &json!({"value": true}),
        )
        .await;
    w.check("PUT", "/api/v1/platform/flags/{key}", Some("flag.set"), r)
        .await;
    let r = app.delete_as("/api/v1/platform/flags/beta", &root).await;
    w.check(
        "DELETE",
        "/api/v1/platform/flags/{key}",
        Some("flag.delete"),
        r,
    )
    .await;

    let r = app
        .post_as(
            &format!("{t}/portals"),
            &user,
            &json!({"slug": "shop", "name": "Shop"}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/tenants/{tenant}/portals",
        Some("portal.create"),
        r,
    )
    .await;
    let r = app
        .patch_as(
            &format!("{t}/portals/shop"),
            &user,
            &json!({"name": "Store"}),
        )
        .await;
    w.check(
        "PATCH",
        "/api/v1/tenants/{tenant}/portals/{portal}",
        Some("portal.update"),
        r,
    )
    .await;
    let r = app
        .put_as(
            &format!("{t}/portals/shop/flags/beta"),
            &user,
            &json!({"value": true}),
        )
        .await;
    w.check(
        "PUT",
        "/api/v1/tenants/{tenant}/portals/{portal}/flags/{key}",
        Some("flag.set"),
        r,
    )
    .await;
    let r = app
        .delete_as(&format!("{t}/portals/shop/flags/beta"), &user)
        .await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}/portals/{portal}/flags/{key}",
        Some("flag.delete"),
        r,
    )
    .await;
    let r = app
        .post_as("/api/v1/me/portal", &user, &json!({"portal": "shop"}))
        .await;
    w.check("POST", "/api/v1/me/portal", Some("auth.tenant.select"), r)
        .await;
    let r = app.delete_as(&format!("{t}/portals/shop"), &user).await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}/portals/{portal}",
        Some("portal.delete"),
        r,
    )
    .await;

    let r = app
        .post_as(
            &format!("{t}/webhooks"),
            &user,
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    let hook = w
        .check(
            "POST",
            "/api/v1/tenants/{tenant}/webhooks",
            Some("webhook.create"),
            r,
        )
        .await;
    let hook = format!("{t}/webhooks/{}", s(&hook["id"]));
    let r = app
        .patch_as(&hook, &user, &json!({"description": "sync"}))
        .await;
    w.check(
        "PATCH",
        "/api/v1/tenants/{tenant}/webhooks/{webhook}",
        Some("webhook.update"),
        r,
    )
    .await;
    let r = app
        .post_as(&format!("{hook}/rotate-secret"), &user, &json!({}))
        .await;
    w.check(
        "POST",
        "/api/v1/tenants/{tenant}/webhooks/{webhook}/rotate-secret",
        Some("webhook.secret.rotate"),
        r,
    )
    .await;
    // A test delivery changes nothing of the tenant's: its trace is the delivery log.
    let r = app
        .post_as(&format!("{hook}/test"), &user, &json!({}))
        .await;
    w.check(
        "POST",
        "/api/v1/tenants/{tenant}/webhooks/{webhook}/test",
        None,
        r,
    )
    .await;
    let r = app
        .post_as(
            &format!("{hook}/replay"),
            &user,
            &json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/tenants/{tenant}/webhooks/{webhook}/replay",
        Some("webhook.replay"),
        r,
    )
    .await;
    let r = app.delete_as(&hook, &user).await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}/webhooks/{webhook}",
        Some("webhook.delete"),
        r,
    )
    .await;

    let r = app
        .post_as(
            &format!("{t}/roles"),
            &user,
            &json!({"key": "auditor", "name": "Auditor", "permissions": ["tenant:read"]}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/tenants/{tenant}/roles",
        Some("role.create"),
        r,
    )
    .await;
    let r = app
        .patch_as(
            &format!("{t}/roles/auditor"),
            &user,
            &json!({"name": "Auditors"}),
        )
        .await;
    w.check(
        "PATCH",
        "/api/v1/tenants/{tenant}/roles/{role}",
        Some("role.update"),
        r,
    )
    .await;
    let matrix: Value = app
        .get_as(&format!("{t}/roles/matrix"), &user)
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .put_as(
            &format!("{t}/roles/matrix"),
            &user,
            &json!({"version": matrix["version"], "roles": {"auditor": ["tenant:read", "members:read"]}}),
        )
        .await;
    w.check(
        "PUT",
        "/api/v1/tenants/{tenant}/roles/matrix",
        Some("role.matrix.update"),
        r,
    )
    .await;
    let r = app.delete_as(&format!("{t}/roles/auditor"), &user).await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}/roles/{role}",
        Some("role.delete"),
        r,
    )
    .await;

    let policy_source = "forbid(principal, action, resource) when { context.hour > 24 };";
    let r = app
        .post_as(
            &format!("{t}/policies/validate"),
            &user,
            &json!({"source": policy_source}),
        )
        .await;
    // A dry run.
    w.check(
        "POST",
        "/api/v1/tenants/{tenant}/policies/validate",
        None,
        r,
    )
    .await;
    let r = app
        .post_as(
            &format!("{t}/policies"),
            &user,
            &json!({"name": "no-test-net", "source": policy_source}),
        )
        .await;
    let policy = w
        .check(
            "POST",
            "/api/v1/tenants/{tenant}/policies",
            Some("policy.create"),
            r,
        )
        .await;
    let policy_id = s(&policy["id"]);
    let r = app
        .patch_as(
            &format!("{t}/policies/{policy_id}"),
            &user,
            &json!({"name": "no-doc-net"}),
        )
        .await;
    w.check(
        "PATCH",
        "/api/v1/tenants/{tenant}/policies/{policy}",
        Some("policy.update"),
        r,
    )
    .await;
    let r = app
        .delete_as(&format!("{t}/policies/{policy_id}"), &user)
        .await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}/policies/{policy}",
        Some("policy.delete"),
        r,
    )
    .await;

    let check = json!({"action": "tenant:read", "resource": {"tenant": "walk"}});
    let r = app.post_as("/api/v1/authz/check", &user, &check).await;
    // Decisions are reads (sent as POST for their bodies).
    w.check("POST", "/api/v1/authz/check", None, r).await;
    let r = app
        .post_as(
            "/api/v1/authz/check/batch",
            &user,
            &json!({"checks": [check]}),
        )
        .await;
    w.check("POST", "/api/v1/authz/check/batch", None, r).await;

    let r = app
        .post_as(
            "/api/v1/me/api-keys",
            &user,
            &json!({"name": "ci", "tenant": "walk", "permissions": ["tenant:read"]}),
        )
        .await;
    let key = w
        .check("POST", "/api/v1/me/api-keys", Some("api_key.create"), r)
        .await;
    let r = app
        .delete_as(&format!("/api/v1/me/api-keys/{}", s(&key["id"])), &user)
        .await;
    w.check(
        "DELETE",
        "/api/v1/me/api-keys/{id}",
        Some("api_key.revoke"),
        r,
    )
    .await;

    // Members and invitations.
    let r = app
        .post_as(
            &format!("{t}/invitations"),
            &user,
            &json!({"email": "guest@walk.test", "role": "member"}),
        )
        .await;
    let invitation = w
        .check(
            "POST",
            "/api/v1/tenants/{tenant}/invitations",
            Some("member.invite"),
            r,
        )
        .await;
    let invitation_id = s(&invitation["id"]);
    let r = app
        .post_as(
            &format!("{t}/invitations/{invitation_id}/resend"),
            &user,
            &json!({}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/tenants/{tenant}/invitations/{id}/resend",
        Some("member.invite.resend"),
        r,
    )
    .await;
    let r = app
        .delete_as(&format!("{t}/invitations/{invitation_id}"), &user)
        .await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}/invitations/{id}",
        Some("member.invite.revoke"),
        r,
    )
    .await;

    app.create_user("guest@walk.test", PASSWORD, true, &[])
        .await;
    let guest = app.access_token("guest@walk.test", PASSWORD).await;
    app.post_as(
        &format!("{t}/invitations"),
        &user,
        &json!({"email": "guest@walk.test", "role": "member"}),
    )
    .await;
    let link = app.wait_for_link_token("guest@walk.test", "invite").await;
    w.settle().await;
    let r = app
        .post_as(
            "/api/v1/invitations/accept",
            &guest,
            &json!({"token": link}),
        )
        .await;
    w.check("POST", "/api/v1/invitations/accept", Some("member.join"), r)
        .await;
    app.post_as(
        &format!("{t}/invitations"),
        &user,
        &json!({"email": "fresh@walk.test", "role": "viewer"}),
    )
    .await;
    let link = app.wait_for_link_token("fresh@walk.test", "invite").await;
    w.settle().await;
    let r = app
        .post_json(
            "/api/v1/invitations/accept-new",
            &json!({"token": link, "password": PASSWORD}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/invitations/accept-new",
        Some("member.join"),
        r,
    )
    .await;
    let guest_id = {
        let mut conn = app.db.read().await.unwrap();
        on!(conn.conn(), c => sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM users WHERE email_normalized = 'guest@walk.test'")
            .fetch_one(c).await)
        .unwrap()
    };
    let r = app
        .patch_as(
            &format!("{t}/members/{guest_id}"),
            &user,
            &json!({"roles": ["viewer"]}),
        )
        .await;
    w.check(
        "PATCH",
        "/api/v1/tenants/{tenant}/members/{user}",
        Some("member.update"),
        r,
    )
    .await;
    let r = app
        .delete_as(&format!("{t}/members/{guest_id}"), &user)
        .await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}/members/{user}",
        Some("member.remove"),
        r,
    )
    .await;

    // The platform's hand.
    let r = app
        .post_as(
            &format!("/api/v1/users/{guest_id}/sessions/revoke"),
            &root,
            &json!({}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/users/{id}/sessions/revoke",
        Some("admin.user.sessions.revoke"),
        r,
    )
    .await;
    let r = app
        .post_as(
            &format!("/api/v1/users/{guest_id}/unlock"),
            &root,
            &json!({}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/users/{id}/unlock",
        Some("admin.user.unlock"),
        r,
    )
    .await;
    let r = app
        .post_as(
            &format!("/api/v1/platform/tenants/{tenant_id}/suspend"),
            &root,
            &json!({"reason": "walk"}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/platform/tenants/{id}/suspend",
        Some("tenant.suspend"),
        r,
    )
    .await;
    let r = app
        .post_as(
            &format!("/api/v1/platform/tenants/{tenant_id}/reactivate"),
            &root,
            &json!({"reason": "walk"}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/platform/tenants/{id}/reactivate",
        Some("tenant.reactivate"),
        r,
    )
    .await;
    let r = app
        .post_as("/api/v1/platform/audit/heads/sign", &root, &json!({}))
        .await;
    // Signing heads must not move them: a record would make every head unsigned again.
    w.check("POST", "/api/v1/platform/audit/heads/sign", None, r)
        .await;
    let r = app.delete_as(&format!("{t}?confirm=walk"), &user).await;
    w.check(
        "DELETE",
        "/api/v1/tenants/{tenant}",
        Some("tenant.delete.request"),
        r,
    )
    .await;
    let r = app
        .post_as(
            &format!("/api/v1/platform/tenants/{tenant_id}/restore"),
            &root,
            &json!({"reason": "walk"}),
        )
        .await;
    w.check(
        "POST",
        "/api/v1/platform/tenants/{id}/restore",
        Some("tenant.delete.cancel"),
        r,
    )
    .await;

    let r = app
        .post_as("/api/v1/auth/logout-all", &user, &json!({}))
        .await;
    w.check(
        "POST",
        "/api/v1/auth/logout-all",
        Some("auth.logout_everywhere"),
        r,
    )
    .await;

    w.finish(RouteKind::Api);
    app.stop().await;
}

/// The console's account pages, signed in with a second factor:
/// preferences change nothing on record; every other form leaves its record.
async fn account_pages(app: &TestApp, w: &mut Walk<'_>, browser: &mut Browser, api: &str) {
    let csrf = browser.csrf().await;
    let page = browser
        .post_form(
            "/console/account/profile",
            &[("csrf_token", &csrf), ("display_name", "Root of pages")],
        )
        .await;
    w.check_page(
        "POST",
        "/console/account/profile",
        Some("user.profile.update"),
        &page,
    )
    .await;
    // A browser's preferences are not the account's: nothing is recorded.
    let page = browser
        .post_form(
            "/console/theme",
            &[
                ("csrf_token", &csrf),
                ("theme", "dark"),
                ("next", "/console"),
            ],
        )
        .await;
    w.check_page("POST", "/console/theme", None, &page).await;
    app.create_user("owner@pages.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@pages.test", PASSWORD).await;
    let tenant = app.create_tenant(&owner, "pages").await;
    let me: Value = serde_json::from_str(&browser.get("/api/v1/me").await.body).unwrap();
    let me = plinth_core::UserId(me["user"]["id"].as_str().unwrap().parse().unwrap());
    app.add_member(tenant["id"].as_str().unwrap(), me, "admin")
        .await;
    w.settle().await;
    let page = browser
        .post_form(
            "/console/tenant",
            &[
                ("csrf_token", &csrf),
                ("tenant", "pages"),
                ("next", "/console"),
            ],
        )
        .await;
    w.check_page("POST", "/console/tenant", None, &page).await;

    // A saved view is the user's own link to a table: nothing on record either.
    let page = browser
        .post_form(
            "/console/views",
            &[
                ("csrf_token", &csrf),
                ("page", "members"),
                ("name", "Admins"),
                ("query", "role=admin&unknown=dropped"),
                ("next", "/console/t/pages/members"),
            ],
        )
        .await;
    w.check_page("POST", "/console/views", None, &page).await;
    let members = browser.get("/console/t/pages/members?role=admin").await;
    assert_eq!(members.status, 200, "{}", members.body);
    let marker = "action=\"/console/views/";
    let start = members
        .body
        .find(marker)
        .expect("the saved view is current")
        + marker.len();
    let view_id = members.body[start..start + 36].to_owned();
    let page = browser
        .post_form(
            &format!("/console/views/{view_id}/delete"),
            &[("csrf_token", &csrf), ("next", "/console/t/pages/members")],
        )
        .await;
    w.check_page("POST", "/console/views/{id}/delete", None, &page)
        .await;

    let page = browser
        .post_form(
            "/console/account/api-keys",
            &[
                ("csrf_token", &csrf),
                ("tenant", "pages"),
                ("name", "ci"),
                ("permissions", "tenant:read"),
                ("permissions", "members:read"),
                ("expires_in_days", "30"),
            ],
        )
        .await;
    assert!(page.body.contains("data-new-key"), "{}", page.body);
    w.check_page(
        "POST",
        "/console/account/api-keys",
        Some("api_key.create"),
        &page,
    )
    .await;
    let key_id = browser.get("/api/v1/me/api-keys").await.body;
    let key_id: Value = serde_json::from_str(&key_id).unwrap();
    let key_id = key_id["items"][0]["id"].as_str().unwrap().to_owned();
    let page = browser
        .post_form(
            &format!("/console/account/api-keys/{key_id}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await;
    w.check_page(
        "POST",
        "/console/account/api-keys/{id}/revoke",
        Some("api_key.revoke"),
        &page,
    )
    .await;

    let page = browser
        .post_form(
            "/console/account/recovery-codes",
            &[("csrf_token", &csrf), ("password", PASSWORD)],
        )
        .await;
    w.check_page(
        "POST",
        "/console/account/recovery-codes",
        Some("mfa.recovery_codes.regenerate"),
        &page,
    )
    .await;
    let page = browser
        .post_form(
            "/console/account/totp/disable",
            &[("csrf_token", &csrf), ("password", PASSWORD)],
        )
        .await;
    w.check_page(
        "POST",
        "/console/account/totp/disable",
        Some("mfa.totp.disable"),
        &page,
    )
    .await;
    let page = browser
        .post_form(
            "/console/account/totp",
            &[("csrf_token", &csrf), ("password", PASSWORD)],
        )
        .await;
    // Enrolment starts; the factor exists once confirmed.
    w.check_page("POST", "/console/account/totp", None, &page)
        .await;
    let start = page.body.find("data-totp-secret>").unwrap() + "data-totp-secret>".len();
    let new_secret = &page.body[start..start + page.body[start..].find('<').unwrap()];
    let page = browser
        .post_form(
            "/console/account/totp/confirm",
            &[("csrf_token", &csrf), ("code", &code(new_secret, 0))],
        )
        .await;
    w.check_page(
        "POST",
        "/console/account/totp/confirm",
        Some("mfa.totp.enable"),
        &page,
    )
    .await;

    // Passkeys are added by the page's script through the API; the console renames,
    // removes and signs in with them.
    let mut authenticator = SoftAuthenticator::new(app);
    let begun: Value = app
        .post_as(
            "/api/v1/me/passkeys/register/begin",
            api,
            &json!({"password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    let credential = authenticator.create(&begun["options"]);
    let added: Value = app
        .post_as(
            "/api/v1/me/passkeys/register/finish",
            api,
            &json!({"challenge_id": begun["challenge_id"], "name": "Laptop", "credential": credential}),
        )
        .await
        .json()
        .await
        .unwrap();
    w.settle().await;
    let passkey = added["passkey"]["id"].as_str().unwrap().to_owned();
    let page = browser
        .post_form(
            &format!("/console/account/passkeys/{passkey}/rename"),
            &[("csrf_token", &csrf), ("name", "Desk key")],
        )
        .await;
    w.check_page(
        "POST",
        "/console/account/passkeys/{id}/rename",
        Some("mfa.passkey.rename"),
        &page,
    )
    .await;
    let mut visitor = Browser::new(app);
    let form = visitor.get("/console/sign-in").await;
    let visitor_csrf = form.field("csrf_token");
    let page = visitor
        .post_json("/console/sign-in/passkey/begin", &visitor_csrf, &json!({}))
        .await;
    // A challenge, not a change.
    w.check_page("POST", "/console/sign-in/passkey/begin", None, &page)
        .await;
    let begun: Value = serde_json::from_str(&page.body).unwrap();
    let finish = json!({
        "challenge_id": begun["challenge_id"],
        "credential": authenticator.get(&begun["options"]),
        "next": "/console/account/security",
    });
    let page = visitor
        .post_json("/console/sign-in/passkey/finish", &visitor_csrf, &finish)
        .await;
    assert!(
        page.body.contains("/console/account/security"),
        "{}",
        page.body
    );
    w.check_page(
        "POST",
        "/console/sign-in/passkey/finish",
        Some("auth.login"),
        &page,
    )
    .await;
    let page = browser
        .post_form(
            &format!("/console/account/passkeys/{passkey}/remove"),
            &[("csrf_token", &csrf)],
        )
        .await;
    w.check_page(
        "POST",
        "/console/account/passkeys/{id}/remove",
        Some("mfa.passkey.remove"),
        &page,
    )
    .await;

    let page = browser
        .post_form(
            "/console/account/password",
            &[
                ("csrf_token", &csrf),
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
                ("confirm_password", "a brand new passphrase"),
            ],
        )
        .await;
    w.check_page(
        "POST",
        "/console/account/password",
        Some("auth.password.change"),
        &page,
    )
    .await;
}

/// The same walk over the server-rendered pages that change something: the first-run form,
/// the console's sign-in, second step, sign-out and session revocation, and the account
/// pages.
async fn every_console_change_writes_exactly_one_audit_record(db: TestDatabase) {
    // Sign-up on: people make their own tenants (the account pages need one).
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let mut w = Walk::new(&app).await;
    let mut browser = Browser::new(&app);
    let token = app.setup_token().await;
    let done = browser
        .post_form(
            "/setup",
            &[
                ("token", token.as_str()),
                ("email", "root@pages.test"),
                ("display_name", "Root"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    w.check_page("POST", "/setup", Some("platform.superadmin.create"), &done)
        .await;

    let signed_in = browser
        .sign_in("root@pages.test", PASSWORD, "/console")
        .await;
    w.check_page("POST", "/console/sign-in", Some("auth.login"), &signed_in)
        .await;
    let mut phone = Browser::new(&app);
    phone.sign_in("root@pages.test", PASSWORD, "/console").await;
    w.settle().await;
    let phone_session = phone.session_id().await;
    let csrf = browser.csrf().await;
    let revoked = browser
        .post_form(
            &format!("/console/account/sessions/{phone_session}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await;
    w.check_page(
        "POST",
        "/console/account/sessions/{id}/revoke",
        Some("auth.session.revoke"),
        &revoked,
    )
    .await;
    let out = browser
        .post_form("/console/sign-out", &[("csrf_token", &csrf)])
        .await;
    w.check_page("POST", "/console/sign-out", Some("auth.logout"), &out)
        .await;

    let api = app.access_token("root@pages.test", PASSWORD).await;
    let (secret, _) = crate::mfa::enrol_totp(&app, &api).await;
    w.settle().await;
    let mut browser = Browser::new(&app);
    let step = browser
        .sign_in("root@pages.test", PASSWORD, "/console")
        .await;
    w.settle().await;
    let second = browser
        .post_form(
            "/console/sign-in/mfa",
            &[
                ("csrf_token", &step.field("csrf_token")),
                ("mfa_token", &step.field("mfa_token")),
                ("code", &code(&secret, 1)),
                ("next", "/console"),
            ],
        )
        .await;
    w.check_page("POST", "/console/sign-in/mfa", Some("auth.login"), &second)
        .await;
    account_pages(&app, &mut w, &mut browser, &api).await;
    w.finish(RouteKind::Page);
    app.stop().await;
}
