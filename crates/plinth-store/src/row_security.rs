//! Keeping PostgreSQL's row-level security in force whatever role Plinth logs in as.
//!
//! The policies (migration 0009) fail closed: a row is visible in its own tenant's scope
//! or to a connection that declared platform scope, and to nothing else. A superuser, or
//! a role with `BYPASSRLS`, ignores every policy, FORCE or not; deployments commonly hand
//! Plinth exactly such a URL. Rather than trusting the URL, [`prepare`] finds out: when
//! the login role bypasses row-level security, tenant-scoped transactions drop to
//! [`TENANT_ROLE`] (`SET LOCAL ROLE`), a role without login or bypass that holds only row
//! privileges, so the policies bind them again. A login role that cannot be made to drop
//! privileges is refused at startup with the reason.

use sqlx::PgPool;

use crate::error::{StoreError, StoreResult};

/// The role tenant-scoped transactions run as when the login role bypasses RLS.
pub(crate) const TENANT_ROLE: &str = "plinth_tenant";

/// The settings that enter a tenant's scope for one transaction: the tenant, the end of
/// platform scope and, when the login role bypasses RLS, the drop to [`TENANT_ROLE`].
pub(crate) const ENTER_TENANT: &str =
    "SELECT set_config('plinth.tenant_id', $1, true), set_config('plinth.scope', 'tenant', true)";
pub(crate) const ENTER_TENANT_AS_ROLE: &str = "SELECT set_config('plinth.tenant_id', $1, true), \
     set_config('plinth.scope', 'tenant', true), set_config('role', 'plinth_tenant', true)";

/// Creates (if needed) and grants [`TENANT_ROLE`]. Idempotent; serialised with migrations
/// by the same advisory lock, so servers starting together do not race on the catalog.
const PROVISION: &str = r#"
DO $$
DECLARE
    schema_name text := current_schema();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'plinth_tenant') THEN
        BEGIN
            CREATE ROLE plinth_tenant NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database on this server made it first
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'plinth_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT plinth_tenant TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO plinth_tenant', schema_name);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO plinth_tenant', schema_name);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO plinth_tenant', schema_name);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO plinth_tenant', schema_name);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO plinth_tenant', schema_name);
END
$$;
"#;

/// Whether tenant scopes must drop to [`TENANT_ROLE`]; provisions it when they must.
pub(crate) async fn prepare(pool: &PgPool) -> StoreResult<bool> {
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await?;
    if !superuser && !bypass {
        // FORCE ROW LEVEL SECURITY binds the tables' owner too: nothing to drop.
        return Ok(false);
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(crate::migrate::PG_MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(PROVISION).execute(&mut *tx).await.map_err(|e| {
        StoreError::Config(format!(
            "the database role Plinth logs in as bypasses row-level security (superuser or \
             BYPASSRLS), and Plinth could not set up the role `{TENANT_ROLE}` that tenant \
             transactions drop to: {e}. Log in as an ordinary role that owns the schema, or \
             create `{TENANT_ROLE}` (NOLOGIN, no BYPASSRLS), grant it to the login role and \
             grant it SELECT, INSERT, UPDATE, DELETE on Plinth's tables"
        ))
    })?;
    tx.commit().await?;
    let (role_super, role_bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1")
            .bind(TENANT_ROLE)
            .fetch_one(pool)
            .await?;
    if role_super || role_bypass {
        return Err(StoreError::Config(format!(
            "the role `{TENANT_ROLE}` bypasses row-level security (superuser or BYPASSRLS); \
             tenant isolation cannot be enforced. Run `ALTER ROLE {TENANT_ROLE} NOSUPERUSER NOBYPASSRLS`"
        )));
    }
    Ok(true)
}
