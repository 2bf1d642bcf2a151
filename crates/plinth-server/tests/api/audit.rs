//! The audit trail through the API: a tenant verifies its own chain.

use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(an_owner_verifies_their_chain_and_sees_an_edit_made_in_sql,);

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
