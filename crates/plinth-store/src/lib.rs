//! Storage for Plinth: one code path over SQLite (the embedded default) and PostgreSQL.
//!
//! The backend is chosen once, from the database URL, when the [`Db`] is opened. Queries
//! are written once in the portable subset of SQL both backends share, with `$1`-style
//! placeholders (which SQLite also accepts), and run on either backend through the
//! [`on!`] macro, which expands the same query code for each driver. Values use types
//! that both drivers map natively (`Uuid`, `Timestamp`, `Json`, `bool`, `i64`, text).

mod backup;
mod db;
mod error;
mod migrate;
mod row_security;
mod schema;

pub use backup::{BackupProgress, backup_to_file, restore_from_file};
pub use db::{Backend, Conn, Db, DbOptions, PoolStats, Pooled, ReadConn, ScopedRead, Tx};
pub use error::{StoreError, StoreResult};
pub use migrate::{MIGRATIONS, Migration, MigrationStatus};
pub use sqlx;

/// Runs the same query expression on whichever backend `conn` is.
///
/// ```text
/// let row = on!(conn, c => sqlx::query_as::<_, UserRow>(SQL).bind(id).fetch_optional(c).await)?;
/// ```
/// Inside the body `c` is `&mut SqliteConnection` or `&mut PgConnection`; the body is
/// type-checked for both, so a query that only one driver can run does not compile.
#[macro_export]
macro_rules! on {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::Conn::Sqlite($c) => $body,
            $crate::Conn::Postgres($c) => $body,
        }
    };
}

/// Like [`on!`] for statements run with `.execute(c)`: yields the rows affected, since
/// the two drivers' result types differ.
#[macro_export]
macro_rules! exec {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::Conn::Sqlite($c) => ($body).map(|r| r.rows_affected()),
            $crate::Conn::Postgres($c) => ($body).map(|r| r.rows_affected()),
        }
    };
}
