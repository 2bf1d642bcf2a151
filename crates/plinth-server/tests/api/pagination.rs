//! Lists do not lie: every list is cursor-paginated with a bounded page. Each test makes
//! more items than the largest page (or, where the collection itself is bounded below
//! that, more than the page asked for), walks every page, and finds every item once.

use std::collections::BTreeSet;

use plinth_core::MAX_PAGE_LIMIT;
use plinth_identity::PlatformRole;
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::{Value, json};

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    tenant_lists_page_past_the_largest_page,
    account_lists_page_past_the_largest_page,
    platform_lists_page_past_the_largest_page,
);

/// More than the largest page.
const MANY: usize = MAX_PAGE_LIMIT as usize + 1;

/// Every item of the list at `path`, walked with pages of `limit`, checking that no page
/// is larger than asked and that no item comes twice (by `key`).
async fn walk(app: &TestApp, token: &str, path: &str, limit: u32, key: &str) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let url = match &cursor {
            Some(c) => format!("{path}{separator}limit={limit}&cursor={c}"),
            None => format!("{path}{separator}limit={limit}"),
        };
        let response = app.get_as(&url, token).await;
        assert_eq!(response.status(), 200, "{url}");
        let page: Value = response.json().await.unwrap();
        let batch = page["items"].as_array().unwrap();
        assert!(
            batch.len() <= limit as usize,
            "{url}: {} items",
            batch.len()
        );
        for item in batch {
            let id = item[key].to_string();
            assert!(seen.insert(id.clone()), "{path}: {id} came twice");
            items.push(item.clone());
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(!batch.is_empty(), "{url}: an empty page with a cursor");
                cursor = Some(next.to_owned());
            }
            None => return items,
        }
    }
    panic!("{path}: the cursor never ended");
}

/// Walks the list with the largest page and with `small` pages, expecting `expected`
/// items each time; a limit past the largest is clamped, and a forged cursor refused.
async fn check_list(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    expected: usize,
    small: u32,
) {
    let all = walk(app, token, path, MAX_PAGE_LIMIT, key).await;
    assert_eq!(all.len(), expected, "{path} with the largest page");
    let paged = walk(app, token, path, small, key).await;
    assert_eq!(
        paged.iter().map(|i| i[key].clone()).collect::<Vec<_>>(),
        all.iter().map(|i| i[key].clone()).collect::<Vec<_>>(),
        "{path}: pages of {small} give the same items in the same order"
    );
    let separator = if path.contains('?') { '&' } else { '?' };
    let clamped: Value = app
        .get_as(&format!("{path}{separator}limit=100000"), token)
        .await
        .json()
        .await
        .unwrap();
    assert!(clamped["items"].as_array().unwrap().len() <= MAX_PAGE_LIMIT as usize);
    assert_eq!(
        clamped["next_cursor"].is_string(),
        expected > MAX_PAGE_LIMIT as usize,
        "{path}"
    );
    let forged = app
        .get_as(&format!("{path}{separator}cursor=%%%"), token)
        .await;
    assert!(
        forged.status().is_client_error(),
        "{path}: forged cursor gave {}",
        forged.status()
    );
}

async fn owner(app: &TestApp, email: &str) -> String {
    app.create_user(email, PASSWORD, true, &[]).await;
    app.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn created(response: reqwest::Response) {
    let status = response.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        response.text().await.unwrap()
    );
}

async fn tenant_lists_page_past_the_largest_page(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let token = owner(&app, "owner@many.test").await;
    app.create_tenant(&token, "many").await;
    // The default workspace and 200 more.
    for i in 1..MANY {
        created(
            app.post_as(
                "/api/v1/tenants/many/workspaces",
                &token,
                &json!({"slug": format!("ws-{i:03}"), "name": format!("Workspace {i}")}),
            )
            .await,
        )
        .await;
    }
    check_list(
        &app,
        &token,
        "/api/v1/tenants/many/workspaces",
        "id",
        MANY,
        37,
    )
    .await;

    for i in 0..MANY {
        created(
            app.post_as(
                "/api/v1/tenants/many/invitations",
                &token,
                &json!({"email": format!("guest{i}@elsewhere.test"), "role": "member"}),
            )
            .await,
        )
        .await;
    }
    check_list(
        &app,
        &token,
        "/api/v1/tenants/many/invitations",
        "id",
        MANY,
        50,
    )
    .await;

    for i in 0..MANY {
        created(
            app.post_as(
                "/api/v1/tenants/many/portals",
                &token,
                &json!({"slug": format!("many-portal-{i:03}"), "name": format!("Portal {i}"),
                        "allowed_roles": ["member"], "navigation": [], "signup_enabled": false}),
            )
            .await,
        )
        .await;
    }
    check_list(&app, &token, "/api/v1/tenants/many/portals", "id", MANY, 64).await;

    // Four built-in roles, then custom ones.
    for i in 4..MANY {
        created(
            app.post_as(
                "/api/v1/tenants/many/roles",
                &token,
                &json!({"key": format!("role-{i:03}"), "name": format!("Role {i}"),
                        "description": "", "permissions": ["tenant:read"]}),
            )
            .await,
        )
        .await;
    }
    check_list(&app, &token, "/api/v1/tenants/many/roles", "key", MANY, 30).await;
    let roles = walk(&app, &token, "/api/v1/tenants/many/roles", 3, "key").await;
    assert_eq!(roles[0]["key"], "owner", "built-in roles come first");
    assert_eq!(roles[4]["key"], "role-004");

    // A tenant keeps at most 100 policy documents: more than a page of 30.
    for i in 0..100 {
        created(
            app.post_as(
                "/api/v1/tenants/many/policies",
                &token,
                &json!({"name": format!("policy-{i:03}"), "description": "",
                        "source": "forbid(principal, action == Plinth::Action::\"members:remove\", resource) unless { context.mfa };"}),
            )
            .await,
        )
        .await;
    }
    check_list(&app, &token, "/api/v1/tenants/many/policies", "id", 100, 30).await;

    // The members list was paginated already; it keeps its contract.
    let forged = app
        .get_as("/api/v1/tenants/many/members?cursor=%%%", &token)
        .await;
    assert_problem(forged, 422, "validation-failed").await;
    app.stop().await;
}

async fn account_lists_page_past_the_largest_page(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let token = owner(&app, "busy@many.test").await;
    for i in 0..MANY {
        app.create_tenant(&token, &format!("busy-{i:03}")).await;
    }
    check_list(&app, &token, "/api/v1/me/tenants", "id", MANY, 45).await;

    for i in 0..MANY {
        created(
            app.post_as(
                "/api/v1/me/api-keys",
                &token,
                &json!({"name": format!("key {i}"), "tenant": "busy-000", "permissions": ["tenant:read"]}),
            )
            .await,
        )
        .await;
    }
    check_list(&app, &token, "/api/v1/me/api-keys", "id", MANY, 70).await;

    // The sign-in above and 200 more sessions.
    for _ in 1..MANY {
        app.login("busy@many.test", PASSWORD).await;
    }
    check_list(&app, &token, "/api/v1/me/sessions", "id", MANY, 99).await;
    app.stop().await;
}

async fn platform_lists_page_past_the_largest_page(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    app.create_user(
        "root@many.test",
        PASSWORD,
        true,
        &[PlatformRole::SuperAdmin],
    )
    .await;
    let root = app.login("root@many.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..MANY {
        let response = app
            .send(
                app.client
                    .put(app.url(&format!("/api/v1/platform/flags/flag-{i:03}")))
                    .json(&json!({"value": i % 2 == 0})),
                Some(&root),
            )
            .await;
        created(response).await;
    }
    check_list(&app, &root, "/api/v1/platform/flags", "key", MANY, 80).await;

    for i in 0..MANY {
        app.create_tenant(&root, &format!("fleet-{i:03}")).await;
    }
    check_list(&app, &root, "/api/v1/tenants", "id", MANY, 90).await;
    check_list(&app, &root, "/api/v1/tenants?status=active", "id", MANY, 90).await;
    app.stop().await;
}
