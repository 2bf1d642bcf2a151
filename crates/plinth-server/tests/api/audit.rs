//! The audit trail through the API: a tenant verifies its own chain.

use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    an_owner_verifies_their_chain_and_sees_an_edit_made_in_sql,
    the_background_verifier_finds_the_tail_at_once_and_history_on_a_full_pass,
);

async fn an_owner_verifies_their_chain_and_sees_an_edit_made_in_sql(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@ledger.test", PASSWORD, true, &[])
        .await;
    let owner = app.login("owner@ledger.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant = app.create_tenant(&owner, "ledger").await;
    let tenant_id: uuid::Uuid = tenant["id"].as_str().unwrap().parse().unwrap();
    for slug in ["north", "south"] {
        let created = app
            .post_as(
                "/api/v1/tenants/ledger/workspaces",
                &owner,
                &json!({"slug": slug, "name": slug}),
            )
            .await;
        assert_eq!(created.status(), 201);
    }
    let viewer = app
        .create_user("viewer@ledger.test", PASSWORD, true, &[])
        .await;
    app.add_member(&tenant_id.to_string(), viewer, "viewer")
        .await;
    let viewer_token = app.login("viewer@ledger.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let report: serde_json::Value = app
        .get_as("/api/v1/tenants/ledger/audit/verify", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["chain"], tenant_id.to_string());
    assert_eq!(report["first_break"], serde_json::Value::Null, "{report}");
    assert!(report["records"].as_u64().unwrap() >= 3, "{report}");
    assert_problem(
        app.get_as("/api/v1/tenants/ledger/audit/verify", &viewer_token)
            .await,
        403,
        "forbidden",
    )
    .await;

    let mut tx = app.db.begin().await.unwrap();
    plinth_store::exec!(tx.conn(), c => sqlx::query("UPDATE audit_log SET target_id = 'elsewhere' WHERE chain = $1 AND seq = 2")
        .bind(tenant_id.to_string()).execute(c).await).unwrap();
    tx.commit().await.unwrap();
    let report: serde_json::Value = app
        .get_as("/api/v1/tenants/ledger/audit/verify", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["first_break"]["kind"], "edited", "{report}");
    assert_eq!(report["first_break"]["seq"], 2);
    assert_eq!(report["records"], 1);
    app.stop().await;
}

async fn workspace(app: &TestApp, token: &str, tenant: &str, slug: &str) {
    let created = app
        .post_as(
            &format!("/api/v1/tenants/{tenant}/workspaces"),
            token,
            &json!({"slug": slug, "name": slug}),
        )
        .await;
    assert_eq!(created.status(), 201);
}

/// Edits, deletions, reorderings and truncations made in SQL to tenant chains: an
/// incremental pass (records since the last one) catches a rewritten tail at once; the
/// full pass catches history. Each broken chain shows in `/metrics`.
async fn the_background_verifier_finds_the_tail_at_once_and_history_on_a_full_pass(
    db: TestDatabase,
) {
    use plinth_server::background::verify_audit_chains;
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@chains.test", PASSWORD, true, &[])
        .await;
    let owner = app.login("owner@chains.test", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut chains = Vec::new();
    for slug in ["edited", "deleted", "reordered", "truncated"] {
        let tenant = app.create_tenant(&owner, slug).await;
        for n in 0..3 {
            workspace(&app, &owner, slug, &format!("space-{n}")).await;
        }
        chains.push(tenant["id"].as_str().unwrap().to_owned());
    }
    let first = verify_audit_chains(&app.state, true).await.unwrap();
    assert!(first.newly_broken.is_empty(), "{:?}", first.newly_broken);
    assert!(first.chains >= 4);
    let all_records = first.records;

    workspace(&app, &owner, "edited", "late").await;
    let incremental = verify_audit_chains(&app.state, false).await.unwrap();
    assert_eq!(
        incremental.records, 1,
        "only the record added since the last pass is read, of {all_records}"
    );

    let mut tx = app.db.begin().await.unwrap();
    for (sql, chain) in [
        (
            "UPDATE audit_log SET reason = 'never happened' WHERE chain = $1 AND seq = 2",
            &chains[0],
        ),
        (
            "DELETE FROM audit_log WHERE chain = $1 AND seq = 2",
            &chains[1],
        ),
        (
            "UPDATE audit_log SET seq = -1 WHERE chain = $1 AND seq = 2",
            &chains[2],
        ),
        (
            "UPDATE audit_log SET seq = 2 WHERE chain = $1 AND seq = 3",
            &chains[2],
        ),
        (
            "UPDATE audit_log SET seq = 3 WHERE chain = $1 AND seq = -1",
            &chains[2],
        ),
        (
            "DELETE FROM audit_log WHERE chain = $1 AND seq = (SELECT max(seq) FROM audit_log WHERE chain = $1)",
            &chains[3],
        ),
    ] {
        plinth_store::exec!(tx.conn(), c => sqlx::query(sqlx::AssertSqlSafe(sql)).bind(chain).execute(c).await).unwrap();
    }
    tx.commit().await.unwrap();

    let tail = verify_audit_chains(&app.state, false).await.unwrap();
    let found: Vec<(&str, &str)> = tail
        .newly_broken
        .iter()
        .map(|(chain, b)| (chain.as_str(), b.kind()))
        .collect();
    assert_eq!(
        found,
        vec![(chains[3].as_str(), "truncated")],
        "the cut tail is found at once"
    );

    let full = verify_audit_chains(&app.state, true).await.unwrap();
    let mut found: Vec<(String, &str)> = full
        .newly_broken
        .iter()
        .map(|(chain, b)| (chain.clone(), b.kind()))
        .collect();
    found.sort();
    let mut expected = vec![
        (chains[0].clone(), "edited"),
        (chains[1].clone(), "deleted"),
        (chains[2].clone(), "reordered"),
    ];
    expected.sort();
    assert_eq!(
        found, expected,
        "history is found on the full pass, each break reported once"
    );

    let metrics = app.get("/metrics").await.text().await.unwrap();
    for chain in &chains {
        assert!(
            metrics.contains(&format!("plinth_audit_chain_broken{{chain=\"{chain}\"}} 1")),
            "{chain} in {metrics}"
        );
    }
    let again = verify_audit_chains(&app.state, true).await.unwrap();
    assert!(again.newly_broken.is_empty(), "a break is reported once");
    app.stop().await;
}
