//! The storage layer on each backend: migrations, refusal of newer schemas, the same
//! queries on both drivers, and backup/restore round trips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use plinth_core::Timestamp;
use plinth_core::config::SqliteSynchronous;
use plinth_store::{Backend, Db, DbOptions, StoreError, exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use secrecy::SecretString;

fn options(db: &TestDatabase) -> DbOptions {
    DbOptions {
        url: Some(SecretString::from(db.url.clone())),
        data_dir: db.data_dir.clone(),
        max_connections: 4,
        sqlite_synchronous: SqliteSynchronous::Full,
    }
}

async fn open_migrated(db: &TestDatabase) -> Db {
    let store = Db::open(&options(db)).await.unwrap();
    store.migrate(|_| {}).await.unwrap();
    store
}

backend_tests!(
    migrations_apply_once_and_report_current,
    a_newer_schema_is_refused_untouched,
    a_modified_migration_is_refused,
    timestamps_and_ids_round_trip_exactly,
    unique_violations_are_recognised,
    backup_and_restore_round_trip,
    restore_refuses_a_non_empty_database_without_force,
    a_transaction_abandoned_while_opening_leaves_the_connection_clean,
);

async fn migrations_apply_once_and_report_current(db: TestDatabase) {
    let store = Db::open(&options(&db)).await.unwrap();
    let before = store.migration_status().await.unwrap();
    assert!(before.applied.is_empty());
    assert_eq!(before.pending.len(), plinth_store::MIGRATIONS.len());

    let applied = store.migrate(|_| {}).await.unwrap();
    assert_eq!(applied, plinth_store::MIGRATIONS.len());
    assert_eq!(store.migrate(|_| {}).await.unwrap(), 0, "second run applies nothing");
    assert!(store.migration_status().await.unwrap().is_current());
    store.close().await;
}

async fn a_newer_schema_is_refused_untouched(db: TestDatabase) {
    let store = open_migrated(&db).await;
    let mut tx = store.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO plinth_schema_migrations (version, name, checksum, applied_at) VALUES (9999, 'future', 'x', 0)"
    ).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();

    let err = store.migrate(|_| {}).await.unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { found: 9999, .. }), "{err}");
    assert!(err.to_string().contains("newer Plinth"), "{err}");
    let err = store.migration_status().await.unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { .. }));
}

async fn a_modified_migration_is_refused(db: TestDatabase) {
    let store = open_migrated(&db).await;
    let mut tx = store.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query(
        "UPDATE plinth_schema_migrations SET checksum = 'tampered' WHERE version = 1"
    ).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();
    let err = store.migration_status().await.unwrap_err();
    assert!(matches!(err, StoreError::MigrationModified { version: 1, .. }), "{err}");
}

async fn timestamps_and_ids_round_trip_exactly(db: TestDatabase) {
    let store = open_migrated(&db).await;
    let id = plinth_core::UserId::new();
    let now = Timestamp::now();
    let mut tx = store.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO users (id, email, email_normalized, display_name, status, created_at, updated_at)
         VALUES ($1, $2, $2, $3, 'active', $4, $4)"
    ).bind(id).bind("a@example.com").bind("A").bind(now).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();

    let mut conn = store.read().await.unwrap();
    let (read_id, created, verified): (plinth_core::UserId, Timestamp, Option<Timestamp>) =
        on!(conn.conn(), c => sqlx::query_as(
            "SELECT id, created_at, email_verified_at FROM users WHERE id = $1"
        ).bind(id).fetch_one(c).await)
        .unwrap();
    assert_eq!(read_id, id);
    assert_eq!(created, now);
    assert_eq!(verified, None);

    let later: i64 = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE created_at < $1"
    ).bind(now + time::Duration::microseconds(1)).fetch_one(c).await)
    .unwrap();
    assert_eq!(later, 1, "timestamps compare in SQL on both backends");
}

async fn unique_violations_are_recognised(db: TestDatabase) {
    let store = open_migrated(&db).await;
    let insert = |id: plinth_core::UserId| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await?;
            exec!(tx.conn(), c => sqlx::query(
                "INSERT INTO users (id, email, email_normalized, display_name, status, created_at, updated_at)
                 VALUES ($1, 'x@example.com', 'x@example.com', 'X', 'active', $2, $2)"
            ).bind(id).bind(Timestamp::now()).execute(c).await)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
    };
    insert(plinth_core::UserId::new()).await.unwrap();
    let err = insert(plinth_core::UserId::new()).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
}

async fn count_users(store: &Db) -> i64 {
    let mut conn = store.read().await.unwrap();
    on!(conn.conn(), c => sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(c).await).unwrap()
}

async fn seed_users(store: &Db, n: usize) {
    let mut tx = store.begin().await.unwrap();
    for i in 0..n {
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO users (id, email, email_normalized, display_name, status, created_at, updated_at)
             VALUES ($1, $2, $2, 'Seed', 'active', $3, $3)"
        ).bind(plinth_core::UserId::new()).bind(format!("u{i}-{}@example.com", uuid::Uuid::now_v7())).bind(Timestamp::now())
        .execute(c).await).unwrap();
    }
    tx.commit().await.unwrap();
}

async fn seed_tenant(store: &Db) {
    let tenant = uuid::Uuid::now_v7();
    let now = Timestamp::now();
    let mut tx = store.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO tenants (id, slug, name, status, isolation, settings, branding, onboarding, created_at, updated_at)
         VALUES ($1, 'backed-up', 'Backed up', 'active', 'pool', '{}', '{}', '[]', $2, $2)"
    ).bind(tenant).bind(now).execute(c).await)
    .unwrap();
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO workspaces (id, tenant_id, slug, name, is_default, created_at, updated_at) VALUES ($1, $2, 'general', 'General', true, $3, $3)"
    ).bind(uuid::Uuid::now_v7()).bind(tenant).bind(now).execute(c).await).unwrap();
    tx.commit().await.unwrap();
}

async fn count_workspaces(store: &Db) -> i64 {
    let mut conn = store.read().await.unwrap();
    on!(conn.conn(), c => sqlx::query_scalar("SELECT count(*) FROM workspaces").fetch_one(c).await).unwrap()
}

async fn backup_and_restore_round_trip(db: TestDatabase) {
    let store = open_migrated(&db).await;
    seed_users(&store, 500).await;
    // Rows of tables under row-level security on PostgreSQL, too.
    seed_tenant(&store).await;
    let file = db.scratch().join("backup.plinth");
    let url = SecretString::from(db.url.clone());
    let mut steps = 0;
    let written = plinth_store::backup_to_file(&store, Some(&url), &file, &mut |_| steps += 1)
        .await
        .unwrap();
    assert!(written > 0 && steps > 0);
    assert!(file.is_file());
    store.close().await;

    let backend = match store.backend() {
        Backend::Sqlite => plinth_testkit::TestBackend::Sqlite,
        Backend::Postgres => plinth_testkit::TestBackend::Postgres,
    };
    let target = TestDatabase::create(backend).await.unwrap();
    let fresh = Db::open(&options(&target)).await.unwrap();
    let target_url = SecretString::from(target.url.clone());
    plinth_store::restore_from_file(&fresh, Some(&target_url), &file, false, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(count_users(&fresh).await, 500);
    assert_eq!(count_workspaces(&fresh).await, 1);
    assert!(fresh.migration_status().await.unwrap().is_current());
}

async fn restore_refuses_a_non_empty_database_without_force(db: TestDatabase) {
    let store = open_migrated(&db).await;
    seed_users(&store, 3).await;
    let file = db.scratch().join("b.plinth");
    let url = SecretString::from(db.url.clone());
    plinth_store::backup_to_file(&store, Some(&url), &file, &mut |_| {})
        .await
        .unwrap();
    seed_users(&store, 2).await;

    let err = plinth_store::restore_from_file(&store, Some(&url), &file, false, &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(count_users(&store).await, 5, "refused restore leaves data alone");

    plinth_store::restore_from_file(&store, Some(&url), &file, true, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(count_users(&store).await, 3);
}

/// A caller dropped while its `BEGIN` is on the wire (a client hanging up on a streamed
/// export) must not hand the next caller a connection inside that transaction: it once
/// did, and the next write failed as "read-only transaction".
#[allow(clippy::disallowed_methods)] // the store's own test of the scoped read it hands tenancy
async fn a_transaction_abandoned_while_opening_leaves_the_connection_clean(db: TestDatabase) {
    let store = Db::open(&DbOptions {
        max_connections: 1,
        ..options(&db)
    })
    .await
    .unwrap();
    store.migrate(|_| {}).await.unwrap();
    let tenant = plinth_core::TenantId::new();
    // The window is one round trip wide: abandon the opening after 0, 10, 20 … µs.
    let attempts = 200;
    for attempt in 0..attempts {
        let patience = std::time::Duration::from_micros(attempt * 10);
        let started = std::time::Instant::now();
        {
            let mut opening = std::pin::pin!(store.read_scoped(tenant));
            loop {
                let ready =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(opening.as_mut().poll(cx).is_ready())).await;
                if ready || started.elapsed() >= patience {
                    break;
                }
                tokio::task::yield_now().await;
            }
        } // The opening is dropped here, wherever it got to.
        seed_users(&store, 1).await;
    }
    assert_eq!(count_users(&store).await, i64::try_from(attempts).unwrap());
    store.close().await;
}
