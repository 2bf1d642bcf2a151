//! Tenant export and import: a round trip between two instances (across backends when
//! PostgreSQL is available) preserves every row and the audit chain.

use std::collections::BTreeMap;
use std::io::Read;

use plinth_testkit::{TestBackend, TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    an_exported_tenant_imports_into_a_fresh_instance_unchanged,
    an_edited_archive_cannot_write_into_another_tenant,
);

fn files(archive: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.insert(name, bytes);
    }
    out
}

/// The archive with `name` rewritten line by line by `edit`, its checksum and row count
/// recomputed as an attacker would.
fn edited(
    archive: &[u8],
    name: &str,
    edit: impl Fn(serde_json::Value) -> serde_json::Value,
) -> Vec<u8> {
    use sha2::Digest;
    let mut files = files(archive);
    let text = String::from_utf8(files[name].clone()).unwrap();
    let mut rewritten = String::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        rewritten.push_str(&edit(serde_json::from_str(line).unwrap()).to_string());
        rewritten.push('\n');
    }
    let mut manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["name"] == name {
            let digest = sha2::Sha256::digest(rewritten.as_bytes());
            file["sha256"] = digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into();
        }
    }
    files.insert(name.to_owned(), rewritten.into_bytes());
    files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    );
    let mut builder = tar::Builder::new(Vec::new());
    for (file, bytes) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, file, bytes.as_slice())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

async fn an_edited_archive_cannot_write_into_another_tenant(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@edit.test", PASSWORD, true, &[])
        .await;
    let owner = app.login("owner@edit.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_tenant(&owner, "leaving").await;
    let archive = app
        .get_as("/api/v1/tenants/leaving/export", &owner)
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    // The target instance has a tenant of its own: the one an attacker would aim at.
    let target = TestApp::on(TestDatabase::sqlite())
        .with("signup_enabled", true)
        .spawn()
        .await;
    target
        .create_user("victim@edit.test", PASSWORD, true, &[])
        .await;
    let victim_owner = target.login("victim@edit.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let victim = target.create_tenant(&victim_owner, "victim").await;
    let victim_id = victim["id"].as_str().unwrap().to_owned();
    let victim_workspace: serde_json::Value = target
        .get_as("/api/v1/tenants/victim/workspaces", &victim_owner)
        .await
        .json()
        .await
        .unwrap();
    let victim_workspace = victim_workspace["items"][0]["id"].clone();

    let into_victim = |mut row: serde_json::Value| {
        row["tenant_id"] = victim_id.clone().into();
        row
    };
    let into_victims_workspace = |mut row: serde_json::Value| {
        row["workspace_id"] = victim_workspace.clone();
        row
    };
    let onto_victims_chain = |mut row: serde_json::Value| {
        row["chain"] = victim_id.clone().into();
        row
    };
    let attempts = [
        edited(&archive, "workspaces.ndjson", into_victim),
        edited(&archive, "memberships.ndjson", into_victim),
        edited(&archive, "workspace_members.ndjson", into_victims_workspace),
        edited(&archive, "audit_log.ndjson", onto_victims_chain),
    ];
    for (i, tampered) in attempts.iter().enumerate() {
        let refused = target
            .state
            .tenancy
            .import(&plinth_core::Actor::system(), tampered)
            .await;
        assert!(refused.is_err(), "edited archive {i} was imported");
    }
    // Nothing of it landed, and the victim's tenant is as it was.
    let members: serde_json::Value = target
        .get_as("/api/v1/tenants/victim/members", &victim_owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["items"].as_array().unwrap().len(), 1);
    let workspaces: serde_json::Value = target
        .get_as("/api/v1/tenants/victim/workspaces", &victim_owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(workspaces["items"].as_array().unwrap().len(), 1);
    let chain = plinth_audit::verify_chain(
        &target.db,
        Some(victim_id.parse().unwrap()),
        &plinth_audit::NoSeal,
    )
    .await
    .unwrap();
    assert!(chain.is_intact(), "{chain:?}");
    // The archive as exported still imports: only the edits were refused.
    target
        .state
        .tenancy
        .import(&plinth_core::Actor::system(), &archive)
        .await
        .unwrap();
    target.stop().await;
    app.stop().await;
}

async fn an_exported_tenant_imports_into_a_fresh_instance_unchanged(db: TestDatabase) {
    let source_backend = db.backend;
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@move.test", PASSWORD, true, &[])
        .await;
    let owner = app.login("owner@move.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant = app.create_tenant(&owner, "moving").await;
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let member = app
        .create_user("member@move.test", PASSWORD, true, &[])
        .await;
    app.add_member(&tenant_id, member, "member").await;
    app.post_as(
        "/api/v1/tenants/moving/workspaces",
        &owner,
        &json!({"slug": "boxes", "name": "Boxes"}),
    )
    .await;
    app.post_as(
        "/api/v1/tenants/moving/portals",
        &owner,
        &json!({"slug": "moving-portal", "name": "Portal", "allowed_roles": ["viewer"]}),
    )
    .await;
    app.send(
        app.client
            .put(app.url("/api/v1/tenants/moving/flags/beta"))
            .json(&json!({"value": "v2"})),
        Some(&owner),
    )
    .await;
    app.post_as(
        "/api/v1/tenants/moving/invitations",
        &owner,
        &json!({"email": "later@move.test", "role": "viewer"}),
    )
    .await;
    let role = app
        .post_as(
            "/api/v1/tenants/moving/roles",
            &owner,
            &json!({"key": "auditor", "name": "Auditor", "permissions": ["audit:read"]}),
        )
        .await;
    assert_eq!(role.status(), 201);
    let policy = app
        .post_as(
            "/api/v1/tenants/moving/policies",
            &owner,
            &json!({"name": "no-invites", "source": "forbid(principal, action == Plinth::Action::\"members:invite\", resource);"}),
        )
        .await;
    assert_eq!(policy.status(), 201);

    let member_token = app.login("member@move.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_problem(
        app.get_as("/api/v1/tenants/moving/export", &member_token)
            .await,
        403,
        "forbidden",
    )
    .await;
    let response = app.get_as("/api/v1/tenants/moving/export", &owner).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-tar");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"moving-")
    );
    let archive = response.bytes().await.unwrap().to_vec();
    let exported = files(&archive);
    let manifest: serde_json::Value = serde_json::from_slice(&exported["manifest.json"]).unwrap();
    let rows = |name: &str| {
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(rows("users.ndjson"), 2);
    assert_eq!(rows("workspaces.ndjson"), 2);
    assert_eq!(rows("portals.ndjson"), 1);
    assert!(rows("audit_log.ndjson") >= 5);
    assert!(
        !String::from_utf8_lossy(&exported["users.ndjson"]).contains("argon2"),
        "no password hashes leave"
    );

    // A fresh instance, on the other backend when there is one.
    let other = match source_backend {
        TestBackend::Sqlite => TestDatabase::create(TestBackend::Postgres)
            .await
            .unwrap_or_else(TestDatabase::sqlite),
        TestBackend::Postgres => TestDatabase::sqlite(),
    };
    let target = TestApp::spawn(other).await;
    let mut tampered = archive.clone();
    let at = tampered.windows(6).position(|w| w == b"Boxes\"").unwrap();
    tampered[at] = b'F';
    assert!(
        target
            .state
            .tenancy
            .import(&plinth_core::Actor::system(), &tampered)
            .await
            .is_err(),
        "a changed file fails its checksum"
    );
    let manifest = target
        .state
        .tenancy
        .import(&plinth_core::Actor::system(), &archive)
        .await
        .unwrap();
    assert_eq!(manifest.tenant_slug, "moving");
    let imported = format!("tenant/{}", manifest.tenant_id);
    assert!(
        target
            .events_about(&imported)
            .await
            .contains(&"tenant.imported".to_owned())
    );
    assert!(
        target
            .state
            .tenancy
            .import(&plinth_core::Actor::system(), &archive)
            .await
            .is_err(),
        "the tenant exists now"
    );

    let id: plinth_core::TenantId = tenant_id.parse().unwrap();
    let chain = plinth_audit::verify_chain(&target.db, Some(id), &plinth_audit::NoSeal)
        .await
        .unwrap();
    assert!(chain.is_intact(), "{chain:?}");

    // The imported owner sets a password through a reset, then sees the same tenant.
    target
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({"email": "owner@move.test"}),
        )
        .await;
    let token = target.wait_for_link_token("owner@move.test", "reset").await;
    target
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({"token": token, "password": PASSWORD}),
        )
        .await;
    let owner2 = target.login("owner@move.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let members: serde_json::Value = target
        .get_as("/api/v1/tenants/moving/members", &owner2)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["items"].as_array().unwrap().len(), 2);
    let flags: serde_json::Value = target
        .get_as("/api/v1/tenants/moving/flags", &owner2)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flags["beta"]["value"], "v2");
    let invite = target
        .post_as(
            "/api/v1/tenants/moving/invitations",
            &owner2,
            &json!({"email": "new@move.test", "role": "viewer"}),
        )
        .await;
    assert_problem(invite, 403, "forbidden").await;
    let roles: serde_json::Value = target
        .get_as("/api/v1/tenants/moving/roles", &owner2)
        .await
        .json()
        .await
        .unwrap();
    let roles = roles["items"].clone();
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == "auditor"),
        "custom roles travel with the tenant"
    );

    // Exported again, every table is what it was (the import's own audit record aside).
    let again = files(
        &target
            .get_as("/api/v1/tenants/moving/export", &owner2)
            .await
            .bytes()
            .await
            .unwrap(),
    );
    for (name, bytes) in &exported {
        if name == "manifest.json" || name.starts_with("audit_") || name == "users.ndjson" {
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(&again[name]),
            String::from_utf8_lossy(bytes),
            "{name} changed in the round trip"
        );
    }
    let first_audit = String::from_utf8_lossy(&exported["audit_log.ndjson"]).into_owned();
    assert!(
        String::from_utf8_lossy(&again["audit_log.ndjson"]).starts_with(&first_audit),
        "the chain continues where it was"
    );
    target.stop().await;
    app.stop().await;
}
