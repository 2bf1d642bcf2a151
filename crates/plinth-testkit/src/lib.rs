//! Throwaway databases for tests: a temporary SQLite file, or a fresh PostgreSQL
//! database created from `PLINTH_TEST_POSTGRES_URL` and dropped when the test ends.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use sqlx::{Connection, PgConnection};

pub mod sse;
pub mod webhook;

/// An HTTP client builder for tests. reqwest is built with rustls and no crypto provider
/// of its own (Plinth's webhook client brings ring explicitly), so a client that does not
/// bring one needs the process default: this installs ring as that default first.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

pub const POSTGRES_ENV: &str = "PLINTH_TEST_POSTGRES_URL";
pub const NATS_ENV: &str = "PLINTH_TEST_NATS_URL";

/// A JetStream stream of its own on the NATS server of `PLINTH_TEST_NATS_URL`: a unique
/// stream name and subject prefix, so tests running at once never see each other's events.
#[derive(Debug, Clone)]
pub struct TestNats {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
}

impl TestNats {
    /// `None` (with a note on stderr) when `PLINTH_TEST_NATS_URL` is not set.
    pub fn create() -> Option<TestNats> {
        let Ok(url) = std::env::var(NATS_ENV) else {
            eprintln!("{NATS_ENV} not set: skipping the JetStream part of this test");
            return None;
        };
        let unique = uuid::Uuid::now_v7().simple().to_string();
        Some(TestNats {
            url,
            stream: format!("PLINTH_TEST_{unique}"),
            subject_prefix: format!("t{unique}"),
        })
    }

    /// The settings that point Plinth at this stream.
    pub fn settings(&self) -> [(&'static str, String); 3] {
        [
            ("nats_url", self.url.clone()),
            ("nats_stream", self.stream.clone()),
            ("nats_subject_prefix", self.subject_prefix.clone()),
        ]
    }

    /// The stream, as an independent client sees it.
    pub async fn stream(&self) -> async_nats::jetstream::stream::Stream {
        let client = async_nats::connect(&self.url).await.unwrap();
        async_nats::jetstream::new(client)
            .get_stream(&self.stream)
            .await
            .unwrap()
    }

    /// Removes the stream (tests call it when done; a leftover expires with its max age).
    pub async fn delete(&self) {
        if let Ok(client) = async_nats::connect(&self.url).await {
            let _ = async_nats::jetstream::new(client).delete_stream(&self.stream).await;
        }
    }
}

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
    /// The test made a login role of its own, dropped with the database.
    own_role: bool,
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
        Self::postgres_as(false).await
    }

    /// Like [`TestDatabase::postgres`], but Plinth logs in with the administrator URL
    /// itself (a superuser, as careless deployments do), which owns the database.
    pub async fn postgres_superuser() -> Option<TestDatabase> {
        Self::postgres_as(true).await
    }

    async fn postgres_as(superuser: bool) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
            eprintln!("skipped: {POSTGRES_ENV} not set");
            return None;
        };
        let name = format!("plinth_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
        // Plinth normally runs as an ordinary role that owns its database, as in
        // production.
        let statements = if superuser {
            vec![format!("CREATE DATABASE {name}")]
        } else {
            vec![
                format!("CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"),
                format!("CREATE DATABASE {name} OWNER {name}"),
            ]
        };
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .expect("create test database");
        }
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("valid PostgreSQL URL");
        url.set_path(&name);
        if !superuser {
            let _ = url.set_username(&name);
            let _ = url.set_password(None);
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        Some(TestDatabase {
            backend: TestBackend::Postgres,
            url: url.to_string(),
            data_dir: dir.path().join("data"),
            dir,
            pg: Some(PgDrop {
                admin_url,
                name,
                own_role: !superuser,
            }),
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
                    let mut statements = vec![format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name)];
                    if pg.own_role {
                        statements.push(format!("DROP ROLE IF EXISTS {}", pg.name));
                    }
                    for statement in statements {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut admin).await;
                    }
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

/// An e-mail received by [`TestSmtp`].
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message (headers and body) as sent over SMTP.
    pub data: String,
}

/// A real SMTP server on a loopback port, collecting what it receives.
pub struct TestSmtp {
    /// `smtp://127.0.0.1:PORT`, for `PLINTH_SMTP_URL`.
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<ReceivedMail>>>,
}

#[derive(Clone)]
struct Collector {
    current: Option<ReceivedMail>,
    buffer: Vec<u8>,
    sink: std::sync::Arc<std::sync::Mutex<Vec<ReceivedMail>>>,
}

impl mailin_embedded::Handler for Collector {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> mailin_embedded::Response {
        self.current = Some(ReceivedMail {
            from: from.to_owned(),
            to: to.to_vec(),
            data: String::new(),
        });
        self.buffer.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.buffer.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        if let Some(mut mail) = self.current.take() {
            mail.data = String::from_utf8_lossy(&self.buffer).into_owned();
            self.sink.lock().unwrap().push(mail);
        }
        mailin_embedded::response::OK
    }
}

impl TestSmtp {
    pub fn start() -> TestSmtp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind SMTP port");
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut server = mailin_embedded::Server::new(Collector {
            current: None,
            buffer: Vec::new(),
            sink: received.clone(),
        });
        server
            .with_name("test-smtp")
            .with_num_threads(2)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        TestSmtp { url, received }
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().clone()
    }
}
