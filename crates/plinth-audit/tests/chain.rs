//! The audit chain on each backend: appends link up, a rolled-back change leaves no
//! record, and rows edited or deleted directly in SQL are found by verification.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use plinth_audit::{AuditEntry, ChainBreak, Outcome, append, verify_chain};
use plinth_core::config::SqliteSynchronous;
use plinth_core::{Actor, TenantId};
use plinth_store::{Db, DbOptions, exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use secrecy::SecretString;

async fn open(db: &TestDatabase) -> Db {
    let store = Db::open(&DbOptions {
        url: Some(SecretString::from(db.url.clone())),
        data_dir: db.data_dir.clone(),
        max_connections: 4,
        sqlite_synchronous: SqliteSynchronous::Normal,
    })
    .await
    .unwrap();
    store.migrate(|_| {}).await.unwrap();
    store
}

async fn write(store: &Db, tenant: Option<TenantId>, n: usize) {
    for i in 0..n {
        let mut tx = store.begin().await.unwrap();
        let mut entry = AuditEntry::new(plinth_audit::action::WORKSPACE_UPDATE)
            .target("thing", i)
            .changes(serde_json::json!({"n": i, "ratio": 0.5}));
        if let Some(t) = tenant {
            entry = entry.tenant(t);
        }
        append(&mut tx, &Actor::system(), entry).await.unwrap();
        tx.commit().await.unwrap();
    }
}

backend_tests!(
    appended_records_form_an_intact_chain_per_tenant,
    a_rolled_back_change_leaves_no_record,
    an_edited_row_is_found,
    a_deleted_row_is_found,
    deleting_the_newest_rows_is_found,
    time_filters_split_a_chain_exactly,
    an_export_stream_may_be_polled_after_its_end,
);

async fn appended_records_form_an_intact_chain_per_tenant(db: TestDatabase) {
    let store = open(&db).await;
    let tenant = TenantId::new();
    write(&store, None, 5).await;
    write(&store, Some(tenant), 3).await;
    let platform = verify_chain(&store, None, &plinth_audit::NoSeal).await.unwrap();
    assert!(platform.is_intact(), "{platform:?}");
    assert_eq!(platform.records, 5);
    let tenant_report = verify_chain(&store, Some(tenant), &plinth_audit::NoSeal).await.unwrap();
    assert!(tenant_report.is_intact());
    assert_eq!(tenant_report.records, 3);
}

async fn a_rolled_back_change_leaves_no_record(db: TestDatabase) {
    let store = open(&db).await;
    let mut tx = store.begin().await.unwrap();
    append(
        &mut tx,
        &Actor::system(),
        AuditEntry::new(plinth_audit::action::WORKSPACE_DELETE).outcome(Outcome::Failure),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let mut conn = store.read().await.unwrap();
    let n: i64 =
        on!(conn.conn(), c => sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(c).await).unwrap();
    assert_eq!(n, 0);
    drop(conn);
    write(&store, None, 1).await;
    assert!(
        verify_chain(&store, None, &plinth_audit::NoSeal)
            .await
            .unwrap()
            .is_intact(),
        "numbering has no gap"
    );
}

async fn an_edited_row_is_found(db: TestDatabase) {
    let store = open(&db).await;
    write(&store, None, 6).await;
    let mut tx = store.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE audit_log SET target_id = 'forged' WHERE seq = 4")
        .execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();
    let report = verify_chain(&store, None, &plinth_audit::NoSeal).await.unwrap();
    assert!(
        matches!(report.first_break, Some(ChainBreak::Edited { seq: 4, .. })),
        "{report:?}"
    );
}

async fn a_deleted_row_is_found(db: TestDatabase) {
    let store = open(&db).await;
    write(&store, None, 6).await;
    let mut tx = store.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(c).await).unwrap();
    tx.commit().await.unwrap();
    let report = verify_chain(&store, None, &plinth_audit::NoSeal).await.unwrap();
    assert_eq!(
        report.first_break,
        Some(ChainBreak::Deleted {
            expected_seq: 2,
            found_seq: 3
        }),
        "{report:?}"
    );
}

async fn deleting_the_newest_rows_is_found(db: TestDatabase) {
    let store = open(&db).await;
    write(&store, None, 4).await;
    let mut tx = store.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("DELETE FROM audit_log WHERE seq >= 3").execute(c).await).unwrap();
    tx.commit().await.unwrap();
    let report = verify_chain(&store, None, &plinth_audit::NoSeal).await.unwrap();
    assert_eq!(
        report.first_break,
        Some(ChainBreak::Truncated {
            head_seq: 4,
            last_seq: 2
        }),
        "{report:?}"
    );
}

/// Time filters are also turned into bounds on `seq` (a chain's times never decrease with
/// its numbers); the answer must stay exactly the records of the time range.
async fn time_filters_split_a_chain_exactly(db: TestDatabase) {
    let store = open(&db).await;
    let tenant = TenantId::new();
    write(&store, Some(tenant), 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let split = plinth_core::Timestamp::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    write(&store, Some(tenant), 3).await;
    let chain = plinth_audit::chain_of(Some(tenant));
    let page = plinth_core::PageRequest::new(Some(50), None);
    let seqs = |filter: plinth_audit::AuditFilter| {
        let store = store.clone();
        let chain = chain.clone();
        let page = page.clone();
        async move {
            let mut conn = store.read().await.unwrap();
            plinth_audit::list(conn.conn(), &chain, &filter, &page)
                .await
                .unwrap()
                .items
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>()
        }
    };
    let after = seqs(plinth_audit::AuditFilter {
        since: Some(split),
        ..Default::default()
    })
    .await;
    assert_eq!(after, vec![5, 4, 3]);
    let before = seqs(plinth_audit::AuditFilter {
        until: Some(split),
        ..Default::default()
    })
    .await;
    assert_eq!(before, vec![2, 1]);
    let future = plinth_core::Timestamp::now() + time::Duration::days(1);
    let none = seqs(plinth_audit::AuditFilter {
        since: Some(future),
        ..Default::default()
    })
    .await;
    assert!(none.is_empty());
    let all = seqs(plinth_audit::AuditFilter {
        until: Some(future),
        ..Default::default()
    })
    .await;
    assert_eq!(all, vec![5, 4, 3, 2, 1]);
}

/// HTTP bodies may be polled once more after their end; the export stream must answer
/// "ended" again rather than panic (found by the API fuzzer: the panic cut responses).
async fn an_export_stream_may_be_polled_after_its_end(db: TestDatabase) {
    use futures_util::StreamExt;
    let store = open(&db).await;
    write(&store, None, 3).await;
    let reader = store.clone();
    let open_read = move || {
        let db = reader.clone();
        async move { db.read().await }
    };
    let mut stream = Box::pin(plinth_audit::export_stream(
        open_read,
        plinth_audit::PLATFORM_CHAIN.to_owned(),
        plinth_audit::AuditFilter::default(),
        plinth_audit::ExportFormat::Ndjson,
    ));
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.iter().filter(|b| **b == b'\n').count(), 3);
    assert!(stream.next().await.is_none());
    assert!(stream.next().await.is_none(), "polled again after its end");
}
