//! Tenant isolation: the cross-tenant sweep over every tenant route, and PostgreSQL's
//! row-level security as the second wall.

use plinth_server::Access;
use plinth_store::{Backend, exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, in_tenant};

backend_tests!(
    row_level_security_hides_other_tenants_inside_a_scoped_transaction,
    a_member_of_another_tenant_can_reach_nothing_of_tenant_a,
);

struct World {
    a_id: String,
    a_workspace: String,
    a_invitation: String,
    a_portal: String,
    a_policy: String,
    a_webhook: String,
    alice: plinth_core::UserId,
    bob_token: String,
}

async fn world(app: &TestApp) -> World {
    let alice = app.create_user("alice@a.test", PASSWORD, true, &[]).await;
    app.create_user("bob@b.test", PASSWORD, true, &[]).await;
    let alice_token = app.login("alice@a.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_token = app.login("bob@b.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = app.create_tenant(&alice_token, "tenant-a").await;
    app.create_tenant(&bob_token, "tenant-b").await;
    let workspace: serde_json::Value = app
        .post_as(
            "/api/v1/tenants/tenant-a/workspaces",
            &alice_token,
            &json!({"slug": "secret", "name": "Secret"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let invitation: serde_json::Value = app
        .post_as(
            "/api/v1/tenants/tenant-a/invitations",
            &alice_token,
            &json!({"email": "carol@a.test", "role": "member"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let portal: serde_json::Value = app
        .post_as(
            "/api/v1/tenants/tenant-a/portals",
            &alice_token,
            &json!({"slug": "a-portal", "name": "A portal"}),
        )
        .await
        .json()
        .await
        .unwrap();
    app.send(
        app.client
            .put(app.url("/api/v1/tenants/tenant-a/flags/beta"))
            .json(&json!({"value": true})),
        Some(&alice_token),
    )
    .await;
    app.post_as(
        "/api/v1/tenants/tenant-a/roles",
        &alice_token,
        &json!({"key": "a-auditor", "name": "Auditor", "permissions": ["members:read"]}),
    )
    .await;
    let policy: serde_json::Value = app
        .post_as(
            "/api/v1/tenants/tenant-a/policies",
            &alice_token,
            &json!({"name": "a-mfa", "source": "forbid(principal, action == Plinth::Action::\"members:remove\", resource) unless { context.mfa };"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let webhook: serde_json::Value = app
        .post_as(
            "/api/v1/tenants/tenant-a/webhooks",
            &alice_token,
            &json!({"url": "https://93.184.216.34/a-hook"}),
        )
        .await
        .json()
        .await
        .unwrap();
    World {
        a_policy: policy["id"].as_str().unwrap().to_owned(),
        a_webhook: webhook["id"].as_str().unwrap().to_owned(),
        a_portal: portal["id"].as_str().unwrap().to_owned(),
        a_id: a["id"].as_str().unwrap().to_owned(),
        a_workspace: workspace["id"].as_str().unwrap().to_owned(),
        a_invitation: invitation["id"].as_str().unwrap().to_owned(),
        alice,
        bob_token,
    }
}

/// Everything of tenant A, to prove an attack changed nothing.
async fn snapshot(app: &TestApp, tenant: &str) -> String {
    let tenant: uuid::Uuid = tenant.parse().unwrap();
    let mut conn = app.db.read().await.unwrap();
    let t: (String, String, String, String) = on!(conn.conn(), c => sqlx::query_as(
        "SELECT name, status, settings, branding FROM tenants WHERE id = $1"
    ).bind(tenant).fetch_one(c).await)
    .unwrap();
    let m: Vec<(uuid::Uuid, String, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT user_id, roles, status FROM memberships WHERE tenant_id = $1 ORDER BY user_id"
    ).bind(tenant).fetch_all(c).await)
    .unwrap();
    let w: Vec<(String, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT slug, name FROM workspaces WHERE tenant_id = $1 ORDER BY slug"
    ).bind(tenant).fetch_all(c).await)
    .unwrap();
    let i: Vec<(String, String, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT email, role, status FROM invitations WHERE tenant_id = $1 ORDER BY email"
    ).bind(tenant).fetch_all(c).await)
    .unwrap();
    let p: Vec<(String, String, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT slug, name, navigation FROM portals WHERE tenant_id = $1 ORDER BY slug"
    ).bind(tenant).fetch_all(c).await)
    .unwrap();
    let f: Vec<(String, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT key, value FROM feature_flags WHERE tenant_id = $1 ORDER BY owner, key"
    ).bind(tenant).fetch_all(c).await)
    .unwrap();
    let r: Vec<(String, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT key, permissions FROM tenant_roles WHERE tenant_id = $1 ORDER BY key"
    ).bind(tenant).fetch_all(c).await)
    .unwrap();
    let pol: Vec<(String, String)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT name, source FROM tenant_policies WHERE tenant_id = $1 ORDER BY name"
    ).bind(tenant).fetch_all(c).await)
    .unwrap();
    assert_eq!(pol.len(), 1, "tenant A's policy is in the snapshot");
    let hooks: Vec<(String, String, bool, Vec<u8>)> = on!(conn.conn(), c => sqlx::query_as(
        "SELECT url, description, enabled, secret FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY id"
    ).bind(tenant).fetch_all(c).await)
    .unwrap();
    let sent: i64 = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE tenant_id = $1 AND event_type = 'webhook.test'"
    ).bind(tenant).fetch_one(c).await)
    .unwrap();
    assert_eq!(hooks.len(), 1, "tenant A's webhook is in the snapshot");
    format!("{t:?}\n{m:?}\n{w:?}\n{i:?}\n{p:?}\n{f:?}\n{r:?}\n{pol:?}\n{hooks:?}\n{sent}")
}

const NEVER_TRUE: &str = "forbid(principal, action, resource) when { context.hour > 24 };";

/// A body each route accepts, so the attack reaches the route's lookup rather than
/// failing on its input. A new tenant route with a body must be added here.
pub fn valid_body(route: &plinth_server::RouteInfo) -> serde_json::Value {
    let p = route.path.as_str();
    match (route.method.as_str(), p) {
        ("PATCH", "/api/v1/tenants/{tenant}") => json!({"name": "pwned"}),
        ("PATCH", "/api/v1/tenants/{tenant}/members/{user}") => json!({"roles": ["viewer"]}),
        ("POST", "/api/v1/tenants/{tenant}/workspaces") => {
            json!({"slug": "pwned", "name": "Pwned"})
        }
        ("PATCH", "/api/v1/tenants/{tenant}/workspaces/{workspace}") => json!({"name": "pwned"}),
        ("POST", "/api/v1/tenants/{tenant}/invitations") => {
            json!({"email": "mallory@b.test", "role": "viewer"})
        }
        ("POST", "/api/v1/tenants/{tenant}/portals") => {
            json!({"slug": "pwned-portal", "name": "Pwned"})
        }
        ("PATCH", "/api/v1/tenants/{tenant}/portals/{portal}") => json!({"name": "pwned"}),
        ("PUT", "/api/v1/tenants/{tenant}/flags/{key}") => json!({"value": false}),
        ("PUT", "/api/v1/tenants/{tenant}/portals/{portal}/flags/{key}") => json!({"value": false}),
        ("POST", "/api/v1/tenants/{tenant}/roles") => {
            json!({"key": "pwned", "name": "Pwned", "permissions": ["tenant:read"]})
        }
        ("PATCH", "/api/v1/tenants/{tenant}/roles/{role}") => json!({"name": "pwned"}),
        ("PUT", "/api/v1/tenants/{tenant}/roles/matrix") => json!({"version": 0, "roles": {}}),
        // Valid, and never true: the role-matrix sweep really saves it.
        ("POST", "/api/v1/tenants/{tenant}/policies") => {
            json!({"name": "pwned", "source": NEVER_TRUE})
        }
        ("POST", "/api/v1/tenants/{tenant}/policies/validate") => json!({"source": NEVER_TRUE}),
        ("PATCH", "/api/v1/tenants/{tenant}/policies/{policy}") => json!({"source": NEVER_TRUE}),
        // A public address: the sweep runs with the platform's default target rules.
        ("POST", "/api/v1/tenants/{tenant}/webhooks") => {
            json!({"url": "https://93.184.216.34/hook"})
        }
        ("PATCH", "/api/v1/tenants/{tenant}/webhooks/{webhook}") => json!({"description": "pwned"}),
        ("POST", "/api/v1/tenants/{tenant}/webhooks/{webhook}/replay") => {
            json!({"since": "2020-01-01T00:00:00Z"})
        }
        (method, path) => panic!("the cross-tenant sweep needs a valid body for {method} {path}"),
    }
}

async fn row_level_security_hides_other_tenants_inside_a_scoped_transaction(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let w = world(&app).await;
    if app.db.backend() != Backend::Postgres {
        eprintln!(
            "row-level security is PostgreSQL's; on SQLite every query's tenant filter is the wall"
        );
        app.stop().await;
        return;
    }
    row_level_security_confines_tenant_scopes(&app, &w, false).await;
    app.stop().await;
}

/// Deployments often give Plinth a superuser URL, which no policy binds: tenant scopes
/// must drop to a role the policies bind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_binds_tenant_scopes_when_plinth_logs_in_as_a_superuser() {
    let Some(db) = TestDatabase::postgres_superuser().await else {
        return;
    };
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let w = world(&app).await;
    row_level_security_confines_tenant_scopes(&app, &w, true).await;
    app.stop().await;
}

async fn tenant_b(app: &TestApp, w: &World) -> plinth_core::TenantId {
    let bob = app
        .state
        .identity
        .authenticate(&w.bob_token)
        .await
        .unwrap()
        .user;
    app.state
        .tenancy
        .my_tenants(bob, &plinth_core::PageRequest::new(None, None))
        .await
        .unwrap()
        .items[0]
        .id
}

// Tests the database wall itself, below the scope, so it opens scoped transactions raw.
#[allow(clippy::disallowed_methods)]
async fn row_level_security_confines_tenant_scopes(app: &TestApp, w: &World, superuser: bool) {
    let mut conn = app.db.read().await.unwrap();
    let login_is_superuser: bool = on!(conn.conn(), c => sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        .fetch_one(c).await).unwrap();
    assert_eq!(login_is_superuser, superuser);
    // Every table with tenant_id has a policy, forced on the owner, with no way around it
    // but the explicit platform scope.
    let tables = app.db.tables_with_column("tenant_id").await.unwrap();
    assert!(tables.len() >= 13, "{tables:?}");
    for table in std::iter::once("tenants".to_owned()).chain(tables) {
        let (enabled, forced): (bool, bool) = on!(conn.conn(), c => sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = $1 AND relnamespace = current_schema()::regnamespace"
        ).bind(&table).fetch_one(c).await).unwrap();
        assert!(
            enabled && forced,
            "{table}: row-level security enabled and forced"
        );
        let policies: Vec<(Option<String>, Option<String>)> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT qual, with_check FROM pg_policies WHERE tablename = $1 AND schemaname = current_schema()"
        ).bind(&table).fetch_all(c).await).unwrap();
        assert!(!policies.is_empty(), "{table} has a policy");
        for (using, check) in policies {
            for expr in [using, check] {
                let expr = expr.unwrap_or_default();
                assert!(expr.contains("plinth_current_tenant()"), "{table}: {expr}");
                assert!(
                    !expr.contains("plinth_current_tenant() IS NULL"),
                    "{table} fails open: {expr}"
                );
            }
        }
    }
    drop(conn);

    let b = tenant_b(app, w).await;
    let a: uuid::Uuid = w.a_id.parse().unwrap();
    let mut read = app.db.read_scoped(b).await.unwrap();
    if superuser {
        let role: String = on!(read.conn(), c => sqlx::query_scalar("SELECT current_user::text").fetch_one(c).await).unwrap();
        assert_eq!(
            role, "plinth_tenant",
            "a tenant scope drops the superuser's privileges"
        );
    }
    let visible: i64 = on!(read.conn(), c => sqlx::query_scalar("SELECT count(*) FROM workspaces").fetch_one(c).await).unwrap();
    assert_eq!(
        visible, 1,
        "only tenant B's default workspace, though A has two"
    );
    let leaked: i64 = on!(read.conn(), c => sqlx::query_scalar("SELECT count(*) FROM workspaces WHERE tenant_id = $1")
        .bind(a).fetch_one(c).await).unwrap();
    assert_eq!(
        leaked, 0,
        "a query naming tenant A finds nothing inside B's scope"
    );
    let members: i64 = on!(read.conn(), c => sqlx::query_scalar("SELECT count(*) FROM memberships").fetch_one(c).await).unwrap();
    assert_eq!(members, 1);
    for table in [
        "audit_log",
        "outbox",
        "sessions",
        "one_time_tokens",
        "api_keys",
    ] {
        let foreign: i64 = on!(read.conn(), c => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id IS DISTINCT FROM $1"
        ))).bind(b.0).fetch_one(c).await)
        .unwrap();
        assert_eq!(
            foreign, 0,
            "{table}: no row of another tenant or of the platform in B's scope"
        );
    }
    let tenants: i64 = on!(read.conn(), c => sqlx::query_scalar("SELECT count(*) FROM tenants").fetch_one(c).await).unwrap();
    assert_eq!(tenants, 1);
    drop(read);

    let mut tx = app.db.begin_scoped(b).await.unwrap();
    let changed = exec!(tx.conn(), c => sqlx::query("UPDATE workspaces SET name = 'pwned' WHERE tenant_id = $1")
        .bind(a).execute(c).await).unwrap();
    assert_eq!(changed, 0);
    let insert = exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO workspaces (id, tenant_id, slug, name, is_default, created_at, updated_at) VALUES ($1, $2, 'planted', 'P', false, now(), now())"
    ).bind(uuid::Uuid::now_v7()).bind(a).execute(c).await);
    assert!(
        insert.is_err(),
        "writing a row of tenant A from B's scope is refused"
    );
    drop(tx);

    // Platform work declares its scope and sees everything.
    let mut conn = app.db.read().await.unwrap();
    let all: i64 = on!(conn.conn(), c => sqlx::query_scalar("SELECT count(*) FROM workspaces").fetch_one(c).await).unwrap();
    assert_eq!(all, 3);
    drop(conn);

    // A connection that declared nothing (psql, a report, a forgotten script) sees no
    // tenant's rows. A superuser login bypasses every policy, so it is checked as the
    // role tenant scopes run as.
    let mut raw = <sqlx::PgConnection as sqlx::Connection>::connect(app.database_url())
        .await
        .unwrap();
    if superuser {
        sqlx::query("SET ROLE plinth_tenant")
            .execute(&mut raw)
            .await
            .unwrap();
    }
    for table in [
        "tenants",
        "workspaces",
        "memberships",
        "audit_log",
        "sessions",
    ] {
        let seen: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut raw)
                .await
                .unwrap();
        assert_eq!(seen, 0, "{table}: an undeclared connection sees nothing");
    }
    let _ = sqlx::Connection::close(raw).await;
}

async fn a_member_of_another_tenant_can_reach_nothing_of_tenant_a(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let w = world(&app).await;
    let before = snapshot(&app, &w.a_id).await;
    let mut checked = 0;
    for route in app
        .routes
        .iter()
        .filter(|r| matches!(r.access, Access::Tenant(_)))
    {
        // Tenant A named directly (by slug and by id), then A's objects through B's own scope.
        for tenant in ["tenant-a", w.a_id.as_str(), "tenant-b"] {
            let mut path = in_tenant(&route.path, tenant);
            for (param, value) in [
                ("{workspace}", w.a_workspace.clone()),
                ("{user}", w.alice.to_string()),
                ("{id}", w.a_invitation.clone()),
                ("{portal}", w.a_portal.clone()),
                ("{key}", "beta".to_owned()),
                ("{role}", "a-auditor".to_owned()),
                ("{policy}", w.a_policy.clone()),
                ("{webhook}", w.a_webhook.clone()),
            ] {
                path = path.replace(param, &value);
            }
            assert!(
                !path.contains('{'),
                "the sweep does not know a parameter of {}",
                route.path
            );
            // In B's own scope only routes naming one of A's objects are attacks.
            let names_object = [
                "{workspace}",
                "{user}",
                "{id}",
                "{portal}",
                "{role}",
                "{policy}",
                "{webhook}",
            ]
            .iter()
            .any(|p| route.path.contains(p));
            if tenant == "tenant-b" && !names_object {
                continue;
            }
            let request = app
                .client
                .request(route.method.clone(), app.url(&path))
                .bearer_auth(&w.bob_token);
            let request = if route.json_body {
                request.json(&valid_body(route))
            } else {
                request
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            assert!(
                status == 403 || status == 404,
                "{} {path} answered {status} to a member of another tenant",
                route.method
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "the sweep covered {checked} requests");
    let search: serde_json::Value = app
        .get_as("/api/v1/tenants/tenant-b/members?q=alice", &w.bob_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        search["items"].as_array().unwrap().is_empty(),
        "list filters do not reach into tenant A"
    );
    assert_eq!(
        snapshot(&app, &w.a_id).await,
        before,
        "tenant A's data is unchanged"
    );
    app.stop().await;
}
