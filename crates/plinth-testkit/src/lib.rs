//! Throwaway databases for tests: a temporary SQLite file, or a fresh PostgreSQL
//! database created from `PLINTH_TEST_POSTGRES_URL` and dropped when the test ends.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use sqlx::{Connection, PgConnection};

pub const POSTGRES_ENV: &str = "PLINTH_TEST_POSTGRES_URL";
pub const NATS_ENV: &str = "PLINTH_TEST_NATS_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub backend: TestBackend,
    /// The database URL to give Plinth (`PLINTH_DATABASE_URL`).
    pub url: String,
    /// A private data directory (keys, SQLite file, backups).
    pub data_dir: PathBuf,
    dir: tempfile::TempDir,
    pg: Option<PgDrop>,
}

struct PgDrop {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create(backend: TestBackend) -> Option<TestDatabase> {
        match backend {
            TestBackend::Sqlite => Some(Self::sqlite()),
            TestBackend::Postgres => Self::postgres().await,
        }
    }

    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data_dir = dir.path().join("data");
        let url = format!("sqlite://{}", data_dir.join("plinth.db").display());
        TestDatabase {
            backend: TestBackend::Sqlite,
            url,
            data_dir,
            dir,
            pg: None,
        }
    }

    /// A fresh database on the server of `PLINTH_TEST_POSTGRES_URL`, or `None` (with a
    /// note on stderr) when that variable is not set.
    pub async fn postgres() -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
            eprintln!("skipped: {POSTGRES_ENV} not set");
            return None;
        };
        let name = format!("plinth_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("valid PostgreSQL URL");
        url.set_path(&name);
        let dir = tempfile::tempdir().expect("temporary directory");
        Some(TestDatabase {
            backend: TestBackend::Postgres,
            url: url.to_string(),
            data_dir: dir.path().join("data"),
            dir,
            pg: Some(PgDrop { admin_url, name }),
        })
    }

    /// A scratch directory that lives as long as the database.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(pg) = self.pg.take() else { return };
        // Drop runs outside any async context we can borrow; a short-lived runtime on
        // its own thread removes the database.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&pg.admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        pg.name
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Generates one test per backend from an async function taking a `TestDatabase`:
/// `backend_tests!(migrations_apply_once);` gives `migrations_apply_once::sqlite` and
/// `migrations_apply_once::postgres` (which passes with a note when PostgreSQL is not
/// configured).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::TestDatabase::create($crate::TestBackend::Sqlite).await.unwrap();
                super::$name(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::TestDatabase::create($crate::TestBackend::Postgres).await {
                    super::$name(db).await;
                }
            }
        }
    )+};
}
