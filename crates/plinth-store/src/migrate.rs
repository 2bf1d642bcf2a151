//! Schema migrations: append-only, numbered, checksummed, and written once for both
//! backends.
//!
//! Each migration is portable SQL in which a few type names are placeholders that differ
//! between the backends (see [`render`]); a migration may add backend-only SQL for what
//! one backend alone has (row-level security, for instance). Each migration runs in its
//! own transaction together with the row that records it. See `migrations/README.md`
//! for the rules on changing the schema.

use sha2::{Digest, Sha256};

use crate::db::{Backend, Db, Tx};
use crate::error::{StoreError, StoreResult};
use crate::{exec, on};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    portable: &'static str,
    postgres_only: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            portable: include_str!(concat!("../migrations/", $name, ".sql")),
            postgres_only: "",
        }
    };
    ($version:literal, $name:literal, postgres = $pg:literal) => {
        Migration {
            version: $version,
            name: $name,
            portable: include_str!(concat!("../migrations/", $name, ".sql")),
            postgres_only: include_str!(concat!("../migrations/", $pg, ".postgres.sql")),
        }
    };
}

/// Every migration this binary knows, in order.
pub static MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_foundation"),
    migration!(2, "0002_identity"),
    migration!(3, "0003_tenancy", postgres = "0003_tenancy"),
    migration!(4, "0004_portals_flags", postgres = "0004_portals_flags"),
    migration!(5, "0005_access", postgres = "0005_access"),
    migration!(6, "0006_passkeys"),
    migration!(7, "0007_policies", postgres = "0007_policies"),
    migration!(8, "0008_api_key_mfa"),
    migration!(9, "0009_row_security", postgres = "0009_row_security"),
    migration!(10, "0010_audit_query"),
    migration!(11, "0011_audit_heads", postgres = "0011_audit_heads"),
    migration!(12, "0012_audit_retention", postgres = "0012_audit_retention"),
    migration!(13, "0013_event_versions"),
    migration!(14, "0014_outbox_dispatch", postgres = "0014_outbox_dispatch"),
    migration!(15, "0015_webhooks", postgres = "0015_webhooks"),
    migration!(16, "0016_console_views"),
];

impl Migration {
    /// The SQL to run on `backend`.
    pub fn sql(&self, backend: Backend) -> String {
        let mut sql = render(self.portable, backend);
        if backend == Backend::Postgres && !self.postgres_only.is_empty() {
            sql.push('\n');
            sql.push_str(self.postgres_only);
        }
        sql
    }

    /// Identifies the migration's text; a change after it was applied is refused.
    pub fn checksum(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.portable.as_bytes());
        hasher.update([0]);
        hasher.update(self.postgres_only.as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// Replaces the type placeholders with each backend's native type.
pub fn render(sql: &str, backend: Backend) -> String {
    let pairs: &[(&str, &str, &str)] = &[
        ("{{uuid}}", "UUID", "BLOB"),
        ("{{ts}}", "TIMESTAMPTZ", "INTEGER"),
        ("{{json}}", "JSONB", "TEXT"),
        ("{{bytes}}", "BYTEA", "BLOB"),
        (
            "{{serial_pk}}",
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            "INTEGER PRIMARY KEY AUTOINCREMENT",
        ),
    ];
    let mut out = sql.to_owned();
    for (placeholder, pg, sqlite) in pairs {
        out = out.replace(
            placeholder,
            match backend {
                Backend::Postgres => pg,
                Backend::Sqlite => sqlite,
            },
        );
    }
    out
}

#[derive(Debug, Clone)]
pub struct MigrationStatus {
    /// Versions applied to the database.
    pub applied: Vec<i64>,
    /// Migrations of this binary not yet applied, as (version, name).
    pub pending: Vec<(i64, &'static str)>,
}

impl MigrationStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS plinth_schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Any number; identifies Plinth's migration lock among PostgreSQL advisory locks.
pub(crate) const PG_MIGRATION_LOCK: i64 = 0x706c_696e_7468;

fn known_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

impl Db {
    /// What is applied and what is pending, after checking that the database is not from
    /// a newer Plinth and that no applied migration was altered.
    pub async fn migration_status(&self) -> StoreResult<MigrationStatus> {
        let applied = self.applied_migrations().await?;
        check_applied(&applied)?;
        let versions: Vec<i64> = applied.iter().map(|(v, _)| *v).collect();
        let pending = MIGRATIONS
            .iter()
            .filter(|m| !versions.contains(&m.version))
            .map(|m| (m.version, m.name))
            .collect();
        Ok(MigrationStatus {
            applied: versions,
            pending,
        })
    }

    async fn applied_migrations(&self) -> StoreResult<Vec<(i64, String)>> {
        let mut conn = self.read().await?;
        let exists: bool = match self.backend() {
            Backend::Sqlite => on!(conn.conn(), c => sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plinth_schema_migrations')"
            ).fetch_one(c).await)?,
            Backend::Postgres => on!(conn.conn(), c => sqlx::query_scalar::<_, bool>(
                "SELECT to_regclass('plinth_schema_migrations') IS NOT NULL"
            ).fetch_one(c).await)?,
        };
        if !exists {
            return Ok(Vec::new());
        }
        let rows = on!(conn.conn(), c => sqlx::query_as::<_, (i64, String)>(
            "SELECT version, checksum FROM plinth_schema_migrations ORDER BY version"
        ).fetch_all(c).await)?;
        Ok(rows)
    }

    /// Applies every pending migration, calling `on_applied` after each. Safe to run from
    /// several processes at once: they serialise and each migration applies once.
    pub async fn migrate(&self, mut on_applied: impl FnMut(&Migration)) -> StoreResult<usize> {
        let mut applied_count = 0;
        for migration in MIGRATIONS {
            let mut tx = self.begin().await?;
            if self.backend() == Backend::Postgres {
                exec!(tx.conn(), c => sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_MIGRATION_LOCK).execute(c).await)?;
            }
            exec!(tx.conn(), c => sqlx::query(CREATE_LEDGER).execute(c).await)?;
            let applied = applied_in(&mut tx).await?;
            check_applied(&applied)?;
            if applied.iter().any(|(v, _)| *v == migration.version) {
                tx.rollback().await?;
                continue;
            }
            let sql = migration.sql(self.backend());
            exec!(tx.conn(), c => sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(c).await).map_err(|e| {
                StoreError::Config(format!(
                    "migration {} ({}) failed: {e}",
                    migration.version, migration.name
                ))
            })?;
            exec!(tx.conn(), c => sqlx::query(
                "INSERT INTO plinth_schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)"
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(migration.checksum())
            .bind(plinth_core::Timestamp::now().unix_seconds())
            .execute(c).await)?;
            tx.commit().await?;
            tracing::info!(version = migration.version, name = migration.name, "migration applied");
            on_applied(migration);
            applied_count += 1;
        }
        Ok(applied_count)
    }
}

async fn applied_in(tx: &mut Tx) -> StoreResult<Vec<(i64, String)>> {
    Ok(on!(tx.conn(), c => sqlx::query_as::<_, (i64, String)>(
        "SELECT version, checksum FROM plinth_schema_migrations ORDER BY version"
    ).fetch_all(c).await)?)
}

fn check_applied(applied: &[(i64, String)]) -> StoreResult<()> {
    if let Some((newest, _)) = applied.last()
        && *newest > known_version()
    {
        return Err(StoreError::SchemaTooNew {
            found: *newest,
            known: known_version(),
        });
    }
    for (version, checksum) in applied {
        if let Some(migration) = MIGRATIONS.iter().find(|m| m.version == *version) {
            let expected = migration.checksum();
            if &expected != checksum {
                return Err(StoreError::MigrationModified {
                    version: *version,
                    name: migration.name.into(),
                    applied: checksum.clone(),
                    expected,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strictly_increasing() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
    }

    #[test]
    fn rendered_sql_has_no_placeholders_left() {
        for m in MIGRATIONS {
            for backend in [Backend::Sqlite, Backend::Postgres] {
                assert!(!m.sql(backend).contains("{{"), "{} on {:?}", m.name, backend);
            }
        }
    }
}
