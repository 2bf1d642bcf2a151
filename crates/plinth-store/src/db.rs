//! Opening the database and handing out connections and transactions.
//!
//! SQLite gets two pools over one file: a single writer connection (SQLite admits one
//! writer at a time; queueing writers in the pool is cheaper than having them spin on
//! `SQLITE_BUSY`) and several query-only readers, which WAL mode lets run alongside the
//! writer. PostgreSQL gets one pool for both.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use plinth_core::config::SqliteSynchronous;
use secrecy::{ExposeSecret, SecretString};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::Notify;

use crate::error::{StoreError, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// What `Db::open` needs to know; built from the configuration.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// `sqlite:…` or `postgres://…`; `None` means SQLite in `data_dir`.
    pub url: Option<SecretString>,
    pub data_dir: PathBuf,
    pub max_connections: u32,
    pub sqlite_synchronous: SqliteSynchronous,
}

impl DbOptions {
    pub fn from_config(config: &plinth_core::config::Config) -> Self {
        Self {
            url: config.database_url.clone(),
            data_dir: config.data_dir.clone(),
            max_connections: config.database_max_connections,
            sqlite_synchronous: config.sqlite_synchronous,
        }
    }

    /// The backend this configuration selects, decided from the URL alone.
    pub fn backend(&self) -> Backend {
        match &self.url {
            Some(url) if url.expose_secret().starts_with("postgres") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    pools: Pools,
    /// The URL with any password removed, for logs and errors.
    display: String,
    /// PostgreSQL: the login role bypasses row-level security, so tenant scopes drop to
    /// the tenant role (see `row_security`).
    tenant_role: bool,
    /// Signalled when a transaction that wrote events commits.
    outbox: Arc<Notify>,
}

enum Pools {
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
        path: PathBuf,
    },
    Postgres {
        pool: PgPool,
    },
}

/// Pool occupancy, exported as metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .field("url", &self.inner.display)
            .finish()
    }
}

/// A write transaction. Dropping it without `commit` rolls back.
pub struct Tx {
    inner: TxInner,
    outbox: Arc<Notify>,
    wrote_events: bool,
}

enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A pooled connection for reads.
pub enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// A borrowed connection of either backend; what repository functions take.
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Tx {
    pub fn conn(&mut self) -> Conn<'_> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => Conn::Sqlite(tx),
            TxInner::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    /// Marks that this transaction wrote to the outbox: committing it wakes this process's
    /// event dispatcher at once instead of at its next poll.
    pub fn wrote_events(&mut self) {
        self.wrote_events = true;
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await?,
            TxInner::Postgres(tx) => tx.commit().await?,
        }
        if self.wrote_events {
            self.outbox.notify_one();
        }
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.rollback().await?,
            TxInner::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

/// A connection for reads in a tenant's scope: on PostgreSQL a read transaction with
/// row-level security bound to the tenant, on SQLite a plain pooled connection.
pub enum ScopedRead {
    Pooled(Pooled),
    Tx(Tx),
}

impl ScopedRead {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            ScopedRead::Pooled(p) => p.conn(),
            ScopedRead::Tx(t) => t.conn(),
        }
    }
}

impl Conn<'_> {
    /// The same connection for one more statement, leaving this one usable afterwards.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// A connection to read through, scoped or not: what streaming readers open per batch.
pub trait ReadConn {
    fn conn(&mut self) -> Conn<'_>;
}

impl ReadConn for Pooled {
    fn conn(&mut self) -> Conn<'_> {
        Pooled::conn(self)
    }
}

impl ReadConn for ScopedRead {
    fn conn(&mut self) -> Conn<'_> {
        ScopedRead::conn(self)
    }
}

impl Pooled {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(c),
            Pooled::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Opens a transaction on a task of its own. sqlx counts a transaction only once the
/// server has answered `BEGIN`: a caller dropped in between (a client hanging up on a
/// streamed export) returned the connection to the pool still inside a transaction
/// nobody would end, and the next request to draw it wrote into a read-only one. On its
/// own task the opening always completes; a transaction whose caller is gone is dropped
/// there, which rolls it back before the connection is reused.
async fn begin_detached<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    statement: &'static str,
) -> StoreResult<Transaction<'static, DB>> {
    let pool = pool.clone();
    Ok(tokio::spawn(async move { pool.begin_with(statement).await }).await??)
}

impl Db {
    /// Opens the pools. Does not migrate; see [`Db::migrate`].
    pub async fn open(options: &DbOptions) -> StoreResult<Db> {
        match options.backend() {
            Backend::Sqlite => Self::open_sqlite(options).await,
            Backend::Postgres => Self::open_postgres(options).await,
        }
    }

    async fn open_sqlite(options: &DbOptions) -> StoreResult<Db> {
        let path = match &options.url {
            Some(url) => sqlite_path_from_url(url.expose_secret())?,
            None => {
                create_private_dir(&options.data_dir)?;
                options.data_dir.join("plinth.db")
            }
        };
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            create_private_dir(parent)?;
        }
        let synchronous = match options.sqlite_synchronous {
            SqliteSynchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
            SqliteSynchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
        };
        let base = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .connect_with(base.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .connect_with(base.pragma("query_only", "ON"))
            .await?;
        let display = format!("sqlite://{}", path.display());
        Ok(Db {
            inner: Arc::new(Inner {
                pools: Pools::Sqlite { writer, reader, path },
                display,
                tenant_role: false,
                outbox: Arc::default(),
            }),
        })
    }

    async fn open_postgres(options: &DbOptions) -> StoreResult<Db> {
        let url = options
            .url
            .as_ref()
            .map(|u| u.expose_secret().to_owned())
            .unwrap_or_default();
        let connect = PgConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?
            // Plinth's own connections declare platform scope, which the fail-closed
            // policies require to see any tenant's rows; a tenant scope revokes it for its
            // transaction. Sent with the startup packet: no extra round trip.
            .options([("plinth.scope", "platform")]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every acquire costs a round trip per query; a broken
            // connection fails its query instead and the pool replaces it.
            .test_before_acquire(false)
            .connect_with(connect)
            .await?;
        let tenant_role = crate::row_security::prepare(&pool).await?;
        Ok(Db {
            inner: Arc::new(Inner {
                pools: Pools::Postgres { pool },
                display: redact_url(&url),
                tenant_role,
                outbox: Arc::default(),
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        match self.inner.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The database location without credentials.
    pub fn display_url(&self) -> &str {
        &self.inner.display
    }

    /// The SQLite file, when the backend is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.inner.pools {
            Pools::Sqlite { path, .. } => Some(path),
            Pools::Postgres { .. } => None,
        }
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so another process writing cannot deadlock it halfway.
    pub async fn begin(&self) -> StoreResult<Tx> {
        let inner = match &self.inner.pools {
            Pools::Sqlite { writer, .. } => TxInner::Sqlite(begin_detached(writer, "BEGIN IMMEDIATE").await?),
            Pools::Postgres { pool } => TxInner::Postgres(begin_detached(pool, "BEGIN").await?),
        };
        Ok(self.tx(inner))
    }

    fn tx(&self, inner: TxInner) -> Tx {
        Tx {
            inner,
            outbox: self.inner.outbox.clone(),
            wrote_events: false,
        }
    }

    /// Wakes when a transaction of this process that wrote events has committed (a permit
    /// is kept when nobody waits, so a commit between two waits is not missed).
    pub fn outbox_committed(&self) -> Arc<Notify> {
        self.inner.outbox.clone()
    }

    /// A write transaction in `tenant`'s scope. On PostgreSQL, row-level security then
    /// hides every other tenant's rows for its whole duration (a second wall behind the
    /// tenant filter of each query).
    pub async fn begin_scoped(&self, tenant: plinth_core::TenantId) -> StoreResult<Tx> {
        let mut tx = self.begin().await?;
        if let TxInner::Postgres(t) = &mut tx.inner {
            bind_tenant(t, tenant, self.inner.tenant_role).await?;
        }
        Ok(tx)
    }

    /// A connection for reads in `tenant`'s scope (see [`Db::begin_scoped`]).
    pub async fn read_scoped(&self, tenant: plinth_core::TenantId) -> StoreResult<ScopedRead> {
        Ok(match &self.inner.pools {
            Pools::Sqlite { reader, .. } => ScopedRead::Pooled(Pooled::Sqlite(reader.acquire().await?)),
            Pools::Postgres { pool } => {
                let mut tx = begin_detached(pool, "BEGIN READ ONLY").await?;
                bind_tenant(&mut tx, tenant, self.inner.tenant_role).await?;
                ScopedRead::Tx(self.tx(TxInner::Postgres(tx)))
            }
        })
    }

    /// A connection for reads (query-only on SQLite).
    pub async fn read(&self) -> StoreResult<Pooled> {
        Ok(match &self.inner.pools {
            Pools::Sqlite { reader, .. } => Pooled::Sqlite(reader.acquire().await?),
            Pools::Postgres { pool } => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.read().await?;
        crate::exec!(conn.conn(), c => sqlx::query("SELECT 1").execute(c).await)?;
        Ok(())
    }

    pub fn pool_stats(&self) -> Vec<(&'static str, PoolStats)> {
        fn stats<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        match &self.inner.pools {
            Pools::Sqlite { writer, reader, .. } => {
                vec![("sqlite_writer", stats(writer)), ("sqlite_reader", stats(reader))]
            }
            Pools::Postgres { pool } => vec![("postgres", stats(pool))],
        }
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        match &self.inner.pools {
            Pools::Sqlite { writer, reader, .. } => {
                reader.close().await;
                // Lets SQLite refresh its planner statistics, as its docs advise on close.
                if let Ok(mut conn) = writer.acquire().await {
                    let _ = sqlx::query("PRAGMA optimize").execute(&mut *conn).await;
                }
                writer.close().await;
            }
            Pools::Postgres { pool } => pool.close().await,
        }
    }
}

async fn bind_tenant(
    tx: &mut Transaction<'static, Postgres>,
    tenant: plinth_core::TenantId,
    as_tenant_role: bool,
) -> StoreResult<()> {
    let enter = if as_tenant_role {
        crate::row_security::ENTER_TENANT_AS_ROLE
    } else {
        crate::row_security::ENTER_TENANT
    };
    sqlx::query(enter).bind(tenant.to_string()).execute(&mut **tx).await?;
    Ok(())
}

fn sqlite_path_from_url(url: &str) -> StoreResult<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Config(format!("not a SQLite URL: {url}")))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Config(
            "an in-memory SQLite database would lose every write on exit; give a file path".into(),
        ));
    }
    Ok(PathBuf::from(path))
}

fn create_private_dir(dir: &Path) -> StoreResult<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::io(format!("cannot create data directory {}", dir.display()), e))
}

/// Removes the password from a database URL.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(unparseable database URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed_from_displayed_urls() {
        assert_eq!(
            redact_url("postgres://alice:s3cret@db:5432/app"),
            "postgres://alice:***@db:5432/app"
        );
    }

    #[test]
    fn sqlite_urls_give_paths_and_memory_is_refused() {
        assert_eq!(
            sqlite_path_from_url("sqlite:///tmp/a.db").unwrap(),
            PathBuf::from("/tmp/a.db")
        );
        assert_eq!(
            sqlite_path_from_url("sqlite:data/a.db?mode=rwc").unwrap(),
            PathBuf::from("data/a.db")
        );
        assert!(sqlite_path_from_url("sqlite::memory:").is_err());
    }
}
