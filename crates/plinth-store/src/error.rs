//! Storage errors. Callers distinguish the cases they can act on (a unique key taken, a
//! schema too new); everything else is an internal error at the edge.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "the database schema is at version {found}, newer than this binary knows ({known}); \
         it was written by a newer Plinth. Run that version, or restore a backup taken before the upgrade"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error(
        "migration {version} ({name}) was changed after it was applied to this database \
         (checksum {applied} on disk, {expected} in this binary); refusing to continue"
    )]
    MigrationModified {
        version: i64,
        name: String,
        applied: String,
        expected: String,
    },
    #[error("{0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Backup(String),
    #[error("the task opening a transaction ended without one: {0}")]
    Begin(#[from] tokio::task::JoinError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the statement violated a unique constraint (an email or slug taken).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when the database could not be reached at all (as opposed to a bad query).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
            )
        )
    }
}
