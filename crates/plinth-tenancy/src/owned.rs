//! The one list of tenant-owned tables: every table with a `tenant_id` column, each with
//! what a purge and an export do with it. The list is checked against the live schema
//! (`Db::tables_with_column`) every time it drives a purge or an export, so a table added
//! by a migration without a rule here stops both rather than leaving rows behind.

use plinth_store::Db;

use crate::error::{TenancyError, TenancyResult};

/// What a purge does with a tenant's rows of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPurge {
    Delete,
    /// Keep the rows and forget the tenant: the SQL `SET` clause that does it.
    Detach(&'static str),
}

/// Whether an export carries the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InExport {
    Rows,
    /// Left out, and why.
    Left(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct TenantTable {
    pub name: &'static str,
    pub on_purge: OnPurge,
    pub in_export: InExport,
}

const fn table(name: &'static str, on_purge: OnPurge, in_export: InExport) -> TenantTable {
    TenantTable {
        name,
        on_purge,
        in_export,
    }
}

/// Children before parents, the order a purge deletes in.
pub const TENANT_TABLES: &[TenantTable] = &[
    table(
        "webhook_attempts",
        OnPurge::Delete,
        InExport::Left("the delivery log belongs to the instance that delivered"),
    ),
    table(
        "webhook_deliveries",
        OnPurge::Delete,
        InExport::Left("the delivery log belongs to the instance that delivered"),
    ),
    table(
        "webhook_endpoints",
        OnPurge::Delete,
        InExport::Left("endpoints hold signing secrets sealed for this instance; register them again"),
    ),
    table("feature_flags", OnPurge::Delete, InExport::Rows),
    table("portals", OnPurge::Delete, InExport::Rows),
    table("invitations", OnPurge::Delete, InExport::Rows),
    table("workspace_members", OnPurge::Delete, InExport::Rows),
    table("workspaces", OnPurge::Delete, InExport::Rows),
    table("memberships", OnPurge::Delete, InExport::Rows),
    table("tenant_policies", OnPurge::Delete, InExport::Rows),
    table("tenant_roles", OnPurge::Delete, InExport::Rows),
    table(
        "api_keys",
        OnPurge::Delete,
        InExport::Left("keys are secrets of this instance; their owners make new ones"),
    ),
    table(
        "one_time_tokens",
        OnPurge::Delete,
        InExport::Left("single-use links work on the instance that sent them"),
    ),
    table(
        "outbox",
        OnPurge::Delete,
        InExport::Left("events belong to the instance that published them"),
    ),
    table(
        "sessions",
        OnPurge::Detach("tenant_id = NULL, portal = NULL"),
        InExport::Left("sign-ins belong to the instance"),
    ),
    table(
        "audit_signed_heads",
        OnPurge::Delete,
        InExport::Left("signatures belong to the instance that made them"),
    ),
    table(
        "audit_checkpoints",
        OnPurge::Delete,
        InExport::Left("signatures belong to the instance that made them"),
    ),
    table("audit_log", OnPurge::Delete, InExport::Rows),
];

/// The list, after checking that it names exactly the schema's tables with `tenant_id`.
pub async fn tenant_tables(db: &Db) -> TenancyResult<&'static [TenantTable]> {
    let in_schema = db.tables_with_column("tenant_id").await?;
    let known: std::collections::BTreeSet<String> = TENANT_TABLES.iter().map(|t| t.name.to_owned()).collect();
    if in_schema != known {
        let unknown: Vec<&String> = in_schema.difference(&known).collect();
        let gone: Vec<&String> = known.difference(&in_schema).collect();
        return Err(TenancyError::UnruledTables(format!(
            "tables with tenant_id and no purge or export rule: {unknown:?}; rules for tables that do not exist: {gone:?}"
        )));
    }
    Ok(TENANT_TABLES)
}
