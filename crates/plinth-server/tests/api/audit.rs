//! The audit trail through the API: a tenant verifies its own chain.

use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

backend_tests!(
    an_owner_verifies_their_chain_and_sees_an_edit_made_in_sql,
    the_background_verifier_finds_the_tail_at_once_and_history_on_a_full_pass,
    the_audit_log_is_read_newest_first_filtered_and_paged,
    operators_read_the_platform_chain_and_any_tenants,
    exports_stream_every_record_and_verify_offline,
    signed_heads_catch_a_chain_rewritten_and_recomputed,
    pruning_keeps_a_chain_provable_through_its_signed_checkpoint,
    a_member_refused_an_administrative_permission_is_recorded_once_a_minute,
    a_user_refused_a_platform_route_is_recorded_once_a_minute,
);

async fn an_owner_verifies_their_chain_and_sees_an_edit_made_in_sql(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@ledger.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@ledger.test", PASSWORD).await;
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
    let viewer_token = app.access_token("viewer@ledger.test", PASSWORD).await;

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
    let owner = app.access_token("owner@chains.test", PASSWORD).await;
    let mut chains = Vec::new();
    for slug in ["edited", "deleted", "reordered", "truncated"] {
        let tenant = app.create_tenant(&owner, slug).await;
        for n in 0..3 {
            app.create_workspace(&owner, slug, &format!("space-{n}"))
                .await;
        }
        chains.push(tenant["id"].as_str().unwrap().to_owned());
    }
    let first = verify_audit_chains(&app.state, true).await.unwrap();
    assert!(first.newly_broken.is_empty(), "{:?}", first.newly_broken);
    assert!(first.chains >= 4);
    let all_records = first.records;

    app.create_workspace(&owner, "edited", "late").await;
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

async fn records(app: &TestApp, token: &str, query: &str) -> serde_json::Value {
    let response = app
        .get_as(&format!("/api/v1/tenants/trail/audit{query}"), token)
        .await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn actions_of(page: &serde_json::Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect()
}

async fn the_audit_log_is_read_newest_first_filtered_and_paged(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    let owner_id = app
        .create_user("owner@trail.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@trail.test", PASSWORD).await;
    app.create_tenant(&owner, "trail").await;
    app.create_workspace(&owner, "trail", "first").await;
    let second = app
        .client
        .post(app.url("/api/v1/tenants/trail/workspaces"))
        .bearer_auth(&owner)
        .header("x-request-id", "req-second-workspace")
        .json(&json!({"slug": "second", "name": "Second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 201);
    let invite = app
        .post_as(
            "/api/v1/tenants/trail/invitations",
            &owner,
            &json!({"email": "new@trail.test", "role": "member"}),
        )
        .await;
    assert_eq!(invite.status(), 201);

    let all = records(&app, &owner, "").await;
    assert_eq!(
        actions_of(&all),
        vec![
            "member.invite",
            "workspace.create",
            "workspace.create",
            "tenant.create"
        ]
    );
    let seqs: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![4, 3, 2, 1]);
    assert_eq!(all["items"][0]["actor_id"], owner_id.to_string());
    assert!(all["items"][0]["hash"].as_str().unwrap().len() == 64);

    let created = records(&app, &owner, "?action=workspace.create").await;
    assert_eq!(
        actions_of(&created),
        vec!["workspace.create", "workspace.create"]
    );
    let by_prefix = records(&app, &owner, "?action=workspace.*").await;
    assert_eq!(by_prefix["items"], created["items"]);
    let by_request = records(&app, &owner, "?request_id=req-second-workspace").await;
    assert_eq!(by_request["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        by_request["items"][0]["changes"]["slug"], "second",
        "{by_request}"
    );
    let targets = records(&app, &owner, "?target_type=invitation&outcome=success").await;
    assert_eq!(actions_of(&targets), vec!["member.invite"]);
    let mine = records(&app, &owner, &format!("?actor={owner_id}&action=tenant.*")).await;
    assert_eq!(actions_of(&mine), vec!["tenant.create"]);
    let later = records(&app, &owner, "?since=2999-01-01T00:00:00Z").await;
    assert_eq!(later["items"], json!([]));
    let earlier = records(&app, &owner, "?until=2999-01-01T00:00:00Z&limit=2").await;
    assert_eq!(
        actions_of(&earlier),
        vec!["member.invite", "workspace.create"]
    );

    let cursor = earlier["next_cursor"].as_str().unwrap();
    let next = records(
        &app,
        &owner,
        &format!("?until=2999-01-01T00:00:00Z&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(actions_of(&next), vec!["workspace.create", "tenant.create"]);
    assert_eq!(next["next_cursor"], serde_json::Value::Null);

    for (query, field) in [
        ("?action=rocket.launch", "action"),
        ("?action=member.inv*", "action"),
        ("?outcome=maybe", "outcome"),
        ("?since=yesterday", "since"),
        ("?actor=someone", "actor"),
    ] {
        let response = app
            .get_as(&format!("/api/v1/tenants/trail/audit{query}"), &owner)
            .await;
        assert_eq!(response.status(), 422, "{query}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            problem["errors"][0]["pointer"],
            format!("/{field}"),
            "{problem}"
        );
    }

    let viewer = app
        .create_user("viewer@trail.test", PASSWORD, true, &[])
        .await;
    let tenant = app
        .get_as("/api/v1/tenants/trail", &owner)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    app.add_member(tenant["id"].as_str().unwrap(), viewer, "viewer")
        .await;
    let viewer_token = app.access_token("viewer@trail.test", PASSWORD).await;
    assert_problem(
        app.get_as("/api/v1/tenants/trail/audit", &viewer_token)
            .await,
        403,
        "forbidden",
    )
    .await;

    let catalogue: serde_json::Value = app
        .get_as("/api/v1/audit/actions", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        catalogue
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "member.invite"
                && a["description"].as_str().is_some_and(|d| !d.is_empty()))
    );
    app.stop().await;
}

async fn operators_read_the_platform_chain_and_any_tenants(db: TestDatabase) {
    use plinth_identity::PlatformRole;
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    app.create_user(
        "support@plinth.test",
        PASSWORD,
        true,
        &[PlatformRole::Support],
    )
    .await;
    let support = app.access_token("support@plinth.test", PASSWORD).await;
    app.create_user("owner@other.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@other.test", PASSWORD).await;
    let tenant = app.create_tenant(&owner, "other").await;
    let tenant_id = tenant["id"].as_str().unwrap();

    let platform: serde_json::Value = app
        .get_as("/api/v1/platform/audit?action=auth.*", &support)
        .await
        .json()
        .await
        .unwrap();
    let items = platform["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{platform}");
    assert!(items.iter().all(|r| r["chain"] == "platform" && r["action"].as_str().unwrap().starts_with("auth.")));
    let theirs: serde_json::Value = app
        .get_as(
            &format!("/api/v1/platform/audit?tenant_id={tenant_id}"),
            &support,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(actions_of(&theirs), vec!["tenant.create"]);
    assert_problem(
        app.get_as("/api/v1/platform/audit", &owner).await,
        403,
        "forbidden",
    )
    .await;
    app.stop().await;
}

async fn export_of(app: &TestApp, token: &str, query: &str) -> String {
    let response = app
        .get_as(
            &format!("/api/v1/tenants/exported/audit/export{query}"),
            token,
        )
        .await;
    assert_eq!(response.status(), 200, "{query}");
    response.text().await.unwrap()
}

fn check(ndjson: &str) -> plinth_audit::ExportCheck {
    plinth_audit::verify_export(std::io::Cursor::new(ndjson.as_bytes())).unwrap()
}

/// More records than one batch of the stream, so batches join; an export verifies with
/// nothing but itself, whole or filtered, and an edited line does not.
async fn exports_stream_every_record_and_verify_offline(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@exported.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@exported.test", PASSWORD).await;
    let tenant = app.create_tenant(&owner, "exported").await;
    let tenant_id: plinth_core::TenantId = tenant["id"].as_str().unwrap().parse().unwrap();
    // Written straight to the chain, as the server would, to pass one batch quickly.
    let actor = plinth_core::Actor::system();
    let mut tx = app.db.begin().await.unwrap();
    for n in 0..1_100 {
        plinth_audit::append(
            &mut tx,
            &actor,
            plinth_audit::AuditEntry::new(plinth_audit::action::WORKSPACE_UPDATE)
                .tenant(tenant_id)
                .target("workspace", n)
                .changes(
                    json!({"name": {"before": n, "after": n + 1}, "note": "a, \"quoted\"\nline"}),
                ),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let response = app
        .get_as("/api/v1/tenants/exported/audit/export", &owner)
        .await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("exported-audit-")
    );
    let whole = response.text().await.unwrap();
    assert_eq!(
        whole.lines().count(),
        1_101,
        "tenant.create and 1,100 updates"
    );
    let verified = check(&whole);
    assert_eq!(verified.problem, None);
    assert_eq!(
        (verified.records, verified.runs, verified.from_genesis),
        (1_101, 1, true)
    );

    let nothing = export_of(&app, &owner, "?target_type=").await;
    assert_eq!(
        nothing, "",
        "an export that matches nothing is an empty, well-formed body"
    );
    let filtered = export_of(&app, &owner, "?action=tenant.*").await;
    assert_eq!(filtered.lines().count(), 1);
    assert_eq!(
        check(&filtered).problem,
        None,
        "a filtered export verifies record by record"
    );

    let edited = whole.replacen("\"target_id\":\"7\"", "\"target_id\":\"8\"", 1);
    assert_ne!(edited, whole);
    let problem = check(&edited).problem.unwrap();
    assert!(problem.contains("edited"), "{problem}");
    let mut lines: Vec<&str> = whole.lines().collect();
    lines.swap(10, 11);
    let problem = check(&lines.join("\n")).problem.unwrap();
    assert!(
        problem.contains("out of order") || problem.contains("reordered"),
        "{problem}"
    );

    let csv = export_of(&app, &owner, "?format=csv&until=2999-01-01T00:00:00Z").await;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.headers().unwrap().iter().next_back(), Some("hash"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        1_101,
        "one row per record, quoted where a value needs it"
    );
    assert_eq!(
        &rows[5][15],
        "{\"name\":{\"before\":4,\"after\":5},\"note\":\"a, \\\"quoted\\\"\\nline\"}"
    );

    assert_problem(
        app.get_as("/api/v1/tenants/exported/audit/export?format=xml", &owner)
            .await,
        422,
        "validation-failed",
    )
    .await;
    app.stop().await;
}

/// Someone with the database edits a record and recomputes every later hash and the head:
/// the chain verifies on its own, but not against the head signed before the rewrite.
async fn signed_heads_catch_a_chain_rewritten_and_recomputed(db: TestDatabase) {
    use plinth_identity::PlatformRole;
    let app = TestApp::on(db)
        .with("signup_enabled", true)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    app.create_user("ops@plinth.test", PASSWORD, true, &[PlatformRole::OpsAdmin])
        .await;
    let ops = app.access_token("ops@plinth.test", PASSWORD).await;
    app.create_user("owner@signed.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@signed.test", PASSWORD).await;
    let tenant = app.create_tenant(&owner, "signed").await;
    for n in 0..3 {
        app.create_workspace(&owner, "signed", &format!("space-{n}"))
            .await;
    }
    let chain = tenant["id"].as_str().unwrap().to_owned();

    let signed: serde_json::Value = app
        .post_as("/api/v1/platform/audit/heads/sign", &ops, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert!(signed["signed"].as_u64().unwrap() >= 2, "{signed}");
    let again: serde_json::Value = app
        .post_as("/api/v1/platform/audit/heads/sign", &ops, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["signed"], 0, "unmoved heads are not signed twice");
    assert_problem(
        app.post_as("/api/v1/platform/audit/heads/sign", &owner, &json!({}))
            .await,
        403,
        "forbidden",
    )
    .await;
    let heads: Vec<plinth_audit::SignedHead> = app
        .get_as("/api/v1/audit/heads", &ops)
        .await
        .json()
        .await
        .unwrap();
    let head = heads.iter().find(|h| h.chain == chain).unwrap().clone();
    assert_eq!(head.seq, 4);
    assert!(app.state.identity.audit_head_signature_holds(&head).await);
    let mut forged_file = head.clone();
    forged_file.hash = "0".repeat(64);
    assert!(
        !app.state
            .identity
            .audit_head_signature_holds(&forged_file)
            .await
    );
    assert_eq!(
        plinth_audit::check_against(&app.db, &head, app.state.identity.keys())
            .await
            .unwrap(),
        None
    );

    // The rewrite: record 2 says something else, and every hash after it is recomputed.
    let mut tx = app.db.begin().await.unwrap();
    let mut records = plinth_audit::export_batch(
        tx.conn(),
        &chain,
        &plinth_audit::AuditFilter::default(),
        0,
        100,
    )
    .await
    .unwrap();
    records[1].reason = Some("nothing to see".into());
    for i in 1..records.len() {
        records[i].prev_hash = records[i - 1].hash.clone();
        records[i].hash = records[i].computed_hash();
        let r = &records[i];
        plinth_store::exec!(tx.conn(), c => sqlx::query("UPDATE audit_log SET reason = $1, prev_hash = $2, hash = $3 WHERE id = $4")
            .bind(&r.reason).bind(&r.prev_hash).bind(&r.hash).bind(r.id).execute(c).await).unwrap();
    }
    let last = records.last().unwrap().hash.clone();
    plinth_store::exec!(tx.conn(), c => sqlx::query("UPDATE audit_chain_heads SET hash = $1 WHERE chain = $2")
        .bind(&last).bind(&chain).execute(c).await).unwrap();
    tx.commit().await.unwrap();

    let alone = plinth_audit::verify_chain(
        &app.db,
        Some(tenant["id"].as_str().unwrap().parse().unwrap()),
        &plinth_audit::NoSeal,
    )
    .await
    .unwrap();
    assert!(
        alone.is_intact(),
        "a consistent rewrite passes verification on its own"
    );
    let problem = plinth_audit::check_against(&app.db, &head, app.state.identity.keys())
        .await
        .unwrap()
        .unwrap();
    assert!(problem.contains("rewritten"), "{problem}");
    app.stop().await;
}

async fn occurred_at(app: &TestApp, chain: &str, seq: i64) -> plinth_core::Timestamp {
    let mut conn = app.db.read().await.unwrap();
    plinth_store::on!(conn.conn(), c => sqlx::query_scalar("SELECT occurred_at FROM audit_log WHERE chain = $1 AND seq = $2")
        .bind(chain).bind(seq).fetch_one(c).await)
    .unwrap()
}

async fn sql(app: &TestApp, statement: &str, chain: &str) {
    let mut tx = app.db.begin().await.unwrap();
    plinth_store::exec!(tx.conn(), c => sqlx::query(sqlx::AssertSqlSafe(statement.to_owned())).bind(chain).execute(c).await)
        .unwrap();
    tx.commit().await.unwrap();
}

async fn verify_report(app: &TestApp, token: &str, tenant: &str) -> serde_json::Value {
    app.get_as(&format!("/api/v1/tenants/{tenant}/audit/verify"), token)
        .await
        .json()
        .await
        .unwrap()
}

/// A tenant keeps its records 30 days: pruning removes those older, verified first, under
/// a signed checkpoint the chain still verifies through; a forged checkpoint and any other
/// gap are breaks; a chain whose due records do not verify is not pruned at all.
async fn pruning_keeps_a_chain_provable_through_its_signed_checkpoint(db: TestDatabase) {
    use plinth_server::background::{prune_audit, verify_audit_chains};
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@aging.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@aging.test", PASSWORD).await;
    let chain = app.create_tenant(&owner, "aging").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let evidence = app.create_tenant(&owner, "evidence").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_problem(
        app.patch_as(
            "/api/v1/tenants/aging",
            &owner,
            &json!({"settings": {"audit_retention_days": 7}}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    for tenant in ["aging", "evidence"] {
        let kept = app
            .patch_as(
                &format!("/api/v1/tenants/{tenant}"),
                &owner,
                &json!({"settings": {"audit_retention_days": 30}}),
            )
            .await;
        assert_eq!(kept.status(), 200);
        for n in 0..4 {
            app.create_workspace(&owner, tenant, &format!("space-{n}"))
                .await;
        }
    }
    // Records 1 (tenant.create), 2 (tenant.update) and 3..=6 (workspaces): record 4 is
    // 30 days old a microsecond after this.
    let now = occurred_at(&app, &chain, 4).await
        + time::Duration::days(30)
        + time::Duration::microseconds(1);
    assert!(
        verify_audit_chains(&app.state, true)
            .await
            .unwrap()
            .newly_broken
            .is_empty()
    );
    // Of the other tenant's records only its first (tenant.create) is due: edited, it is kept.
    sql(
        &app,
        "UPDATE audit_log SET reason = 'rewritten' WHERE chain = $1 AND seq = 1",
        &evidence,
    )
    .await;

    let report = prune_audit(&app.state, now).await.unwrap();
    assert_eq!(report.pruned, 4, "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].0, evidence);
    assert!(report.refused[0].1.contains("edited"), "{report:?}");

    let kept: serde_json::Value = app
        .get_as("/api/v1/tenants/aging/audit", &owner)
        .await
        .json()
        .await
        .unwrap();
    let seqs: Vec<i64> = kept["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [7, 6, 5], "{kept}");
    assert_eq!(kept["items"][0]["action"], "audit.prune");
    assert_eq!(kept["items"][0]["changes"]["last_seq"], 4);
    let report = verify_report(&app, &owner, "aging").await;
    assert_eq!(report["first_break"], serde_json::Value::Null, "{report}");
    assert_eq!(report["pruned_through"], 4);
    assert_eq!(report["records"], 3);
    let evidence_kept = verify_report(&app, &owner, "evidence").await;
    assert_eq!(evidence_kept["pruned_through"], serde_json::Value::Null);
    assert_eq!(evidence_kept["first_break"]["kind"], "edited");
    // The background verifier resumes past the pruned records without a false alarm
    // (a full pass also finds the history edited in the other chain).
    for (full, expected) in [(false, vec![]), (true, vec![evidence.clone()])] {
        verify_audit_chains(&app.state, full).await.unwrap();
        let broken: Vec<String> = app
            .state
            .audit_watch
            .lock()
            .await
            .broken()
            .map(|(chain, _)| chain.to_owned())
            .collect();
        assert_eq!(broken, expected, "full pass: {full}");
    }
    assert!(
        !plinth_audit::verify_chain(&app.db, Some(chain.parse().unwrap()), &plinth_audit::NoSeal)
            .await
            .unwrap()
            .is_intact(),
        "without the instance's keys a pruned chain is not proven"
    );

    // Hiding a record behind a checkpoint moved in SQL breaks its signature.
    sql(&app, "UPDATE audit_checkpoints SET last_seq = 5, last_hash = (SELECT hash FROM audit_log WHERE chain = $1 AND seq = 5) WHERE chain = $1", &chain).await;
    let report = verify_report(&app, &owner, "aging").await;
    assert_eq!(
        report["first_break"]["kind"], "checkpoint_invalid",
        "{report}"
    );
    sql(&app, "UPDATE audit_checkpoints SET last_seq = 4, last_hash = (SELECT prev_hash FROM audit_log WHERE chain = $1 AND seq = 5) WHERE chain = $1", &chain).await;
    assert_eq!(
        verify_report(&app, &owner, "aging").await["first_break"],
        serde_json::Value::Null
    );
    // Any other gap is still a deletion.
    sql(
        &app,
        "DELETE FROM audit_log WHERE chain = $1 AND seq = 5",
        &chain,
    )
    .await;
    let report = verify_report(&app, &owner, "aging").await;
    assert_eq!(report["first_break"]["kind"], "deleted", "{report}");
    assert_eq!(report["first_break"]["expected_seq"], 5);
    app.stop().await;
}

/// Refusals that show a member reaching beyond their role are on the tenant's record
/// (once a minute per member and permission: refused requests cost no flood of writes);
/// ordinary refusals and outsiders, who learn nothing of the tenant, leave none.
async fn a_member_refused_an_administrative_permission_is_recorded_once_a_minute(db: TestDatabase) {
    let app = TestApp::on(db).with("signup_enabled", true).spawn().await;
    app.create_user("owner@probe.test", PASSWORD, true, &[])
        .await;
    let owner = app.access_token("owner@probe.test", PASSWORD).await;
    let tenant_id = app.create_tenant(&owner, "probe").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer = app
        .create_user("viewer@probe.test", PASSWORD, true, &[])
        .await;
    app.add_member(&tenant_id, viewer, "viewer").await;
    let viewer_token = app.access_token("viewer@probe.test", PASSWORD).await;
    app.create_user("outsider@probe.test", PASSWORD, true, &[])
        .await;
    let outsider = app.access_token("outsider@probe.test", PASSWORD).await;

    for _ in 0..3 {
        assert_eq!(
            app.get_as("/api/v1/tenants/probe/audit", &viewer_token)
                .await
                .status(),
            403
        );
    }
    let renamed = app
        .patch_as(
            "/api/v1/tenants/probe",
            &viewer_token,
            &json!({"name": "Mine"}),
        )
        .await;
    assert_eq!(renamed.status(), 403);
    let workspace = app
        .post_as(
            "/api/v1/tenants/probe/workspaces",
            &viewer_token,
            &json!({"slug": "mine", "name": "Mine"}),
        )
        .await;
    assert_eq!(workspace.status(), 403, "an ordinary permission");
    assert_eq!(
        app.get_as("/api/v1/tenants/probe/audit", &outsider)
            .await
            .status(),
        404
    );

    let denied: serde_json::Value = app
        .get_as("/api/v1/tenants/probe/audit?action=authz.denied", &owner)
        .await
        .json()
        .await
        .unwrap();
    let mut refused: Vec<(&str, &str, &str)> = denied["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["target_id"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["actor_id"].as_str().unwrap(),
            )
        })
        .collect();
    refused.sort_unstable();
    let viewer = viewer.to_string();
    assert_eq!(
        refused,
        [
            ("audit:read", "denied", viewer.as_str()),
            ("tenant:update", "denied", viewer.as_str())
        ],
        "{denied}"
    );
    assert_eq!(
        denied["items"][0]["reason"], "not granted by the member's roles",
        "{denied}"
    );
    let report = verify_report(&app, &owner, "probe").await;
    assert_eq!(report["first_break"], serde_json::Value::Null, "{report}");
    app.stop().await;
}

/// A user without the platform role a route needs is refused and, once a minute per
/// route, recorded on the platform chain with the route's template.
async fn a_user_refused_a_platform_route_is_recorded_once_a_minute(db: TestDatabase) {
    use plinth_identity::PlatformRole;
    let app = TestApp::on(db)
        .with("require_admin_mfa", false)
        .spawn()
        .await;
    let user = app
        .create_user("curious@platform.test", PASSWORD, true, &[])
        .await;
    let curious = app.access_token("curious@platform.test", PASSWORD).await;
    let support = app
        .create_user(
            "support@platform.test",
            PASSWORD,
            true,
            &[PlatformRole::Support],
        )
        .await;
    let support_token = app.access_token("support@platform.test", PASSWORD).await;
    for _ in 0..3 {
        let refused = app
            .post_as("/api/v1/platform/audit/heads/sign", &curious, &json!({}))
            .await;
        assert_eq!(refused.status(), 403);
    }
    let target = uuid::Uuid::now_v7();
    let refused = app
        .post_as(
            &format!("/api/v1/platform/tenants/{target}/suspend"),
            &support_token,
            &json!({"reason": "curiosity"}),
        )
        .await;
    assert_eq!(refused.status(), 403);

    let mut conn = app.db.read().await.unwrap();
    let mut denied: Vec<(uuid::Uuid, String, String)> = plinth_store::on!(conn.conn(), c => sqlx::query_as(
        "SELECT actor_id, target_id, outcome FROM audit_log WHERE chain = 'platform' AND action = 'authz.denied'"
    ).fetch_all(c).await)
    .unwrap();
    drop(conn);
    denied.sort_unstable();
    let mut expected = vec![
        (
            user.0,
            "/api/v1/platform/audit/heads/sign".to_owned(),
            "denied".to_owned(),
        ),
        (
            support.0,
            "/api/v1/platform/tenants/{id}/suspend".to_owned(),
            "denied".to_owned(),
        ),
    ];
    expected.sort_unstable();
    assert_eq!(denied, expected);
    app.stop().await;
}
