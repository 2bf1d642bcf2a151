//! Exporting a tenant to an archive and importing it into another instance.
//!
//! The archive is a tar of one NDJSON file per table plus `manifest.json`, which lists
//! each file's row count and SHA-256. Tables are described once below (columns and their
//! kinds); the same description reads rows on either backend and writes them back, so an
//! export from SQLite imports into PostgreSQL and the other way round. Password hashes
//! and one-time tokens never leave: imported accounts set a password through a reset.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use plinth_audit::AuditEntry;
use plinth_core::{Actor, TenantId, Timestamp};
use plinth_store::{Tx, exec, on};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::error::{TenancyError, TenancyResult};
use crate::owned::{InExport, tenant_tables};
use crate::scope::TenantScope;
use crate::service::Tenancy;

pub const FORMAT: &str = "plinth-tenant-export";
pub const FORMAT_VERSION: u32 = 2;
/// Tables version 1 archives do not have; importing one of those leaves them empty.
const ADDED_IN_VERSION_2: &[&str] = &["tenant_roles", "tenant_policies"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uuid,
    Ts,
    Text,
    Int,
    Bool,
}

struct TableSpec {
    name: &'static str,
    /// Selects the tenant's rows; `$1` is the tenant id (as text for `by_text`).
    filter: &'static str,
    by_text: bool,
    columns: &'static [(&'static str, Kind)],
}

use Kind::{Bool, Int, Text, Ts, Uuid};

/// In dependency order: parents before children.
const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "tenants",
        filter: "id = $1",
        by_text: false,
        columns: &[
            ("id", Uuid),
            ("slug", Text),
            ("name", Text),
            ("status", Text),
            ("isolation", Text),
            ("trial_ends_at", Ts),
            ("status_reason", Text),
            ("settings", Text),
            ("branding", Text),
            ("onboarding", Text),
            ("created_at", Ts),
            ("updated_at", Ts),
            ("deleted_at", Ts),
            ("purge_after", Ts),
        ],
    },
    TableSpec {
        name: "users",
        filter: "id IN (SELECT user_id FROM memberships WHERE tenant_id = $1)",
        by_text: false,
        columns: &[
            ("id", Uuid),
            ("email", Text),
            ("email_normalized", Text),
            ("email_verified_at", Ts),
            ("display_name", Text),
            ("status", Text),
            ("created_at", Ts),
            ("updated_at", Ts),
            ("last_login_at", Ts),
        ],
    },
    TableSpec {
        name: "memberships",
        filter: "tenant_id = $1",
        by_text: false,
        columns: &[
            ("tenant_id", Uuid),
            ("user_id", Uuid),
            ("roles", Text),
            ("status", Text),
            ("created_at", Ts),
            ("updated_at", Ts),
        ],
    },
    TableSpec {
        name: "tenant_roles",
        filter: "tenant_id = $1",
        by_text: false,
        columns: &[
            ("key", Text),
            ("tenant_id", Uuid),
            ("name", Text),
            ("description", Text),
            ("permissions", Text),
            ("created_at", Ts),
            ("updated_at", Ts),
        ],
    },
    TableSpec {
        name: "tenant_policies",
        filter: "tenant_id = $1",
        by_text: false,
        columns: &[
            ("id", Uuid),
            ("tenant_id", Uuid),
            ("name", Text),
            ("description", Text),
            ("source", Text),
            ("created_at", Ts),
            ("updated_at", Ts),
        ],
    },
    TableSpec {
        name: "workspaces",
        filter: "tenant_id = $1",
        by_text: false,
        columns: &[
            ("id", Uuid),
            ("tenant_id", Uuid),
            ("slug", Text),
            ("name", Text),
            ("is_default", Bool),
            ("created_at", Ts),
            ("updated_at", Ts),
        ],
    },
    TableSpec {
        name: "workspace_members",
        filter: "tenant_id = $1",
        by_text: false,
        columns: &[
            ("tenant_id", Uuid),
            ("workspace_id", Uuid),
            ("user_id", Uuid),
            ("role", Text),
            ("created_at", Ts),
        ],
    },
    TableSpec {
        name: "invitations",
        filter: "tenant_id = $1",
        by_text: false,
        columns: &[
            ("id", Uuid),
            ("tenant_id", Uuid),
            ("email", Text),
            ("email_normalized", Text),
            ("role", Text),
            ("invited_by", Uuid),
            ("status", Text),
            ("created_at", Ts),
            ("expires_at", Ts),
            ("accepted_at", Ts),
            ("accepted_by", Uuid),
        ],
    },
    TableSpec {
        name: "portals",
        filter: "tenant_id = $1",
        by_text: false,
        columns: &[
            ("id", Uuid),
            ("tenant_id", Uuid),
            ("slug", Text),
            ("name", Text),
            ("navigation", Text),
            ("allowed_roles", Text),
            ("signup_enabled", Bool),
            ("created_at", Ts),
            ("updated_at", Ts),
        ],
    },
    TableSpec {
        name: "feature_flags",
        filter: "tenant_id = $1",
        by_text: false,
        columns: &[
            ("id", Uuid),
            ("level", Text),
            ("tenant_id", Uuid),
            ("portal_id", Uuid),
            ("owner", Text),
            ("key", Text),
            ("value", Text),
            ("description", Text),
            ("updated_at", Ts),
        ],
    },
    TableSpec {
        name: "audit_log",
        filter: "tenant_id = $1",
        by_text: false,
        columns: &[
            ("id", Uuid),
            ("chain", Text),
            ("seq", Int),
            ("tenant_id", Uuid),
            ("occurred_at", Ts),
            ("actor_kind", Text),
            ("actor_id", Uuid),
            ("impersonator_id", Uuid),
            ("action", Text),
            ("target_type", Text),
            ("target_id", Text),
            ("outcome", Text),
            ("ip", Text),
            ("user_agent", Text),
            ("request_id", Text),
            ("changes", Text),
            ("reason", Text),
            ("prev_hash", Text),
            ("hash", Text),
        ],
    },
    TableSpec {
        name: "audit_chain_heads",
        filter: "chain = $1",
        by_text: true,
        columns: &[("chain", Text), ("seq", Int), ("hash", Text)],
    },
];

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub plinth_version: String,
    pub tenant_id: TenantId,
    pub tenant_slug: String,
    pub exported_at: Timestamp,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ManifestFile {
    pub name: String,
    pub rows: u64,
    pub sha256: String,
}

fn column_json<R: Row>(row: &R, index: usize, kind: Kind) -> Result<Value, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<uuid::Uuid>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Timestamp>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<bool>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(match kind {
        Kind::Uuid => row
            .try_get::<Option<uuid::Uuid>, _>(index)?
            .map_or(Value::Null, |v| Value::String(v.to_string())),
        Kind::Ts => row
            .try_get::<Option<Timestamp>, _>(index)?
            .map_or(Value::Null, |v| Value::String(v.to_rfc3339())),
        Kind::Text => row
            .try_get::<Option<String>, _>(index)?
            .map_or(Value::Null, Value::String),
        Kind::Int => row.try_get::<Option<i64>, _>(index)?.map_or(Value::Null, Value::from),
        Kind::Bool => row.try_get::<Option<bool>, _>(index)?.map_or(Value::Null, Value::Bool),
    })
}

/// The archive's tables with `tenant_id` must be exactly the tenant-owned tables whose
/// rule says they are exported (`owned::TENANT_TABLES`, itself checked against the
/// schema): a table missing here would silently be left out of every archive.
async fn exported_tables_match_the_schema(db: &plinth_store::Db) -> TenancyResult<()> {
    let exported: BTreeSet<&str> = tenant_tables(db)
        .await?
        .iter()
        .filter(|t| t.in_export == InExport::Rows)
        .map(|t| t.name)
        .collect();
    let specified: BTreeSet<&str> = TABLES
        .iter()
        .filter(|spec| spec.columns.iter().any(|(c, _)| *c == "tenant_id"))
        .map(|spec| spec.name)
        .collect();
    if exported != specified {
        return Err(TenancyError::UnruledTables(format!(
            "exported by rule {exported:?}, described for the archive {specified:?}"
        )));
    }
    Ok(())
}

fn invalid(what: impl Into<String>) -> TenancyError {
    TenancyError::Validation(plinth_core::FieldErrors::single("archive", "invalid_archive", what))
}

impl Tenancy {
    /// The tenant's complete archive (tar): its rows, its members' accounts (without
    /// credentials) and its audit chain.
    pub async fn export(&self, scope: &TenantScope) -> TenancyResult<Vec<u8>> {
        exported_tables_match_the_schema(&self.db).await?;
        let tenant = self.tenant(scope).await?;
        let mut files: Vec<(String, Vec<u8>, u64)> = Vec::with_capacity(TABLES.len());
        let mut tx = scope.begin(&self.db).await?;
        for spec in TABLES {
            let columns: Vec<&str> = spec.columns.iter().map(|(c, _)| *c).collect();
            let sql = format!(
                "SELECT {} FROM {} WHERE {} ORDER BY {}",
                columns.join(", "),
                spec.name,
                spec.filter,
                columns[0]
            );
            let tenant_text = scope.tenant().to_string();
            let rows: Vec<Map<String, Value>> = on!(tx.conn(), c => {
                let query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                let query = if spec.by_text { query.bind(tenant_text.clone()) } else { query.bind(scope.tenant()) };
                let fetched = query.fetch_all(c).await?;
                let mut out = Vec::with_capacity(fetched.len());
                for row in &fetched {
                    let mut object = Map::new();
                    for (i, (name, kind)) in spec.columns.iter().enumerate() {
                        object.insert((*name).to_owned(), column_json(row, i, *kind)?);
                    }
                    out.push(object);
                }
                Ok::<_, sqlx::Error>(out)
            })?;
            let mut ndjson = Vec::new();
            for row in &rows {
                serde_json::to_writer(&mut ndjson, row).map_err(|e| invalid(e.to_string()))?;
                ndjson.push(b'\n');
            }
            files.push((format!("{}.ndjson", spec.name), ndjson, rows.len() as u64));
        }
        // The export is a read; nothing to commit.
        tx.rollback().await?;
        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            plinth_version: env!("CARGO_PKG_VERSION").into(),
            tenant_id: tenant.id,
            tenant_slug: tenant.slug,
            exported_at: Timestamp::now(),
            files: files
                .iter()
                .map(|(name, bytes, rows)| ManifestFile {
                    name: name.clone(),
                    rows: *rows,
                    sha256: hex::encode(Sha256::digest(bytes)),
                })
                .collect(),
        };
        let manifest = serde_json::to_vec_pretty(&manifest).map_err(|e| invalid(e.to_string()))?;
        let mut archive = tar::Builder::new(Vec::new());
        let mut append = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o600);
            header.set_mtime(u64::try_from(Timestamp::now().unix_seconds()).unwrap_or(0));
            header.set_cksum();
            archive.append_data(&mut header, name, bytes)
        };
        append("manifest.json", &manifest).map_err(|e| invalid(e.to_string()))?;
        for (name, bytes, _) in &files {
            append(name, bytes).map_err(|e| invalid(e.to_string()))?;
        }
        let bytes = archive.into_inner().map_err(|e| invalid(e.to_string()))?;
        self.record_export(scope, bytes.len()).await?;
        Ok(bytes)
    }

    async fn record_export(&self, scope: &TenantScope, size: usize) -> TenancyResult<()> {
        let mut tx = scope.begin(&self.db).await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::TENANT_EXPORT)
                .tenant(scope.tenant())
                .target("tenant", scope.tenant())
                .changes(serde_json::json!({"bytes": size})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Restores an archive made by [`Tenancy::export`] into this instance, in one
    /// transaction. Refuses a tenant (id or slug) that exists, an account whose address
    /// belongs to another account here, and any file whose checksum does not match.
    pub async fn import(&self, actor: &Actor, archive: &[u8]) -> TenancyResult<Manifest> {
        let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut reader = tar::Archive::new(archive);
        for entry in reader
            .entries()
            .map_err(|e| invalid(format!("not a tar archive: {e}")))?
        {
            let mut entry = entry.map_err(|e| invalid(e.to_string()))?;
            let name = entry
                .path()
                .map_err(|e| invalid(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| invalid(e.to_string()))?;
            entries.insert(name, bytes);
        }
        let manifest: Manifest = serde_json::from_slice(
            entries
                .get("manifest.json")
                .ok_or_else(|| invalid("no manifest.json"))?,
        )
        .map_err(|e| invalid(format!("manifest.json: {e}")))?;
        if manifest.format != FORMAT || !(1..=FORMAT_VERSION).contains(&manifest.format_version) {
            return Err(invalid(format!(
                "unsupported archive format {} v{}",
                manifest.format, manifest.format_version
            )));
        }
        let mut tables: Vec<(&TableSpec, Vec<Map<String, Value>>)> = Vec::new();
        for spec in TABLES {
            let name = format!("{}.ndjson", spec.name);
            if manifest.format_version < 2 && ADDED_IN_VERSION_2.contains(&spec.name) {
                continue;
            }
            let bytes = entries
                .get(&name)
                .ok_or_else(|| invalid(format!("{name} is missing")))?;
            let listed = manifest
                .files
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| invalid(format!("{name} is not in the manifest")))?;
            if hex::encode(Sha256::digest(bytes)) != listed.sha256 {
                return Err(invalid(format!("{name} does not match its checksum")));
            }
            let mut rows = Vec::new();
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                rows.push(serde_json::from_slice(line).map_err(|e| invalid(format!("{name}: {e}")))?);
            }
            if rows.len() as u64 != listed.rows {
                return Err(invalid(format!(
                    "{name} holds {} rows, the manifest says {}",
                    rows.len(),
                    listed.rows
                )));
            }
            tables.push((spec, rows));
        }
        exported_tables_match_the_schema(&self.db).await?;
        confine(&manifest, &tables)?;
        let mut tx = self.db.begin().await?;
        let taken: i64 = on!(tx.conn(), c => sqlx::query_scalar("SELECT count(*) FROM tenants WHERE id = $1 OR slug = $2")
            .bind(manifest.tenant_id).bind(&manifest.tenant_slug).fetch_one(c).await)?;
        if taken > 0 {
            return Err(TenancyError::Conflict("a tenant with this id or slug exists here"));
        }
        for (spec, rows) in &tables {
            for row in rows {
                if spec.name == "users" && !self.user_needs_import(&mut tx, row).await? {
                    continue;
                }
                insert_row(&mut tx, spec, row).await?;
            }
        }
        // A server may still hold compiled policies of a tenant that had this id before
        // it was purged; a fresh version makes it recompile.
        exec!(tx.conn(), c => sqlx::query("UPDATE tenants SET policies_version = $1 WHERE id = $2")
            .bind(Timestamp::now().unix_micros()).bind(manifest.tenant_id).execute(c).await)?;
        plinth_audit::append(
            &mut tx,
            actor,
            AuditEntry::new(plinth_audit::action::TENANT_IMPORT)
                .tenant(manifest.tenant_id)
                .target("tenant", manifest.tenant_id)
                .changes(
                    serde_json::json!({"exported_at": manifest.exported_at, "from_version": manifest.plinth_version}),
                ),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            actor,
            plinth_events::NewEvent::of(&plinth_events::catalog::TenantImported {
                tenant_id: manifest.tenant_id.0,
            })
            .tenant(manifest.tenant_id)
            .subject("tenant", manifest.tenant_id),
        )
        .await?;
        tx.commit().await?;
        Ok(manifest)
    }

    /// An account already here under the same id is kept; an address taken by another
    /// account is a conflict.
    async fn user_needs_import(&self, tx: &mut Tx, row: &Map<String, Value>) -> TenancyResult<bool> {
        let id = parse_uuid(row.get("id"))?.ok_or_else(|| invalid("a user without id"))?;
        let email = row
            .get("email_normalized")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("a user without e-mail"))?;
        let existing: Option<uuid::Uuid> = on!(tx.conn(), c => sqlx::query_scalar("SELECT id FROM users WHERE email_normalized = $1")
            .bind(email).fetch_optional(c).await)?;
        match existing {
            Some(found) if found == id => Ok(false),
            Some(_) => Err(TenancyError::Conflict(
                "an account of the archive has an address that belongs to another account here",
            )),
            None => Ok(true),
        }
    }
}

/// Holds every row of an archive to the tenant it declares: an edited archive must not
/// write into another tenant of this instance. The tenant row is the manifest's, every
/// `tenant_id` and audit chain names it, and rows that point at a workspace or a portal
/// point at one of the archive's own.
fn confine(manifest: &Manifest, tables: &[(&TableSpec, Vec<Map<String, Value>>)]) -> TenancyResult<()> {
    let tenant = manifest.tenant_id.0;
    let chain = tenant.to_string();
    let ids_of = |table: &str| -> TenancyResult<BTreeSet<uuid::Uuid>> {
        let mut ids = BTreeSet::new();
        for (_, rows) in tables.iter().filter(|(spec, _)| spec.name == table) {
            for row in rows {
                ids.extend(parse_uuid(row.get("id"))?);
            }
        }
        Ok(ids)
    };
    let workspaces = ids_of("workspaces")?;
    let portals = ids_of("portals")?;
    let outside = |table: &str, column: &str| {
        invalid(format!(
            "{table}.ndjson: a row's {column} is not of the archive's tenant {tenant}"
        ))
    };
    for (spec, rows) in tables {
        if spec.name == "tenants" && (rows.len() != 1 || parse_uuid(rows[0].get("id"))? != Some(tenant)) {
            return Err(invalid("tenants.ndjson must hold exactly the manifest's tenant"));
        }
        for row in rows {
            for (column, _) in spec.columns {
                let allowed: Option<&BTreeSet<uuid::Uuid>> = match *column {
                    "workspace_id" => Some(&workspaces),
                    "portal_id" => Some(&portals),
                    _ => None,
                };
                match *column {
                    "tenant_id" if parse_uuid(row.get("tenant_id"))? != Some(tenant) => {
                        return Err(outside(spec.name, column));
                    }
                    "chain" if row.get("chain").and_then(Value::as_str) != Some(chain.as_str()) => {
                        return Err(outside(spec.name, column));
                    }
                    _ => {}
                }
                if let Some(allowed) = allowed
                    && let Some(id) = parse_uuid(row.get(*column))?
                    && !allowed.contains(&id)
                {
                    return Err(outside(spec.name, column));
                }
            }
        }
    }
    Ok(())
}

fn parse_uuid(value: Option<&Value>) -> TenancyResult<Option<uuid::Uuid>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| invalid(format!("not a UUID: {s}"))),
        Some(other) => Err(invalid(format!("not a UUID: {other}"))),
    }
}

fn parse_ts(value: Option<&Value>) -> TenancyResult<Option<Timestamp>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Timestamp::parse_rfc3339(s)
            .map(Some)
            .map_err(|_| invalid(format!("not a time: {s}"))),
        Some(other) => Err(invalid(format!("not a time: {other}"))),
    }
}

async fn insert_row(tx: &mut Tx, spec: &TableSpec, row: &Map<String, Value>) -> TenancyResult<()> {
    let columns: Vec<&str> = spec.columns.iter().map(|(c, _)| *c).collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        spec.name,
        columns.join(", "),
        placeholders.join(", ")
    );
    // Convert first, so a bad value is an invalid archive rather than a database error.
    enum Bound {
        Uuid(Option<uuid::Uuid>),
        Ts(Option<Timestamp>),
        Text(Option<String>),
        Int(Option<i64>),
        Bool(Option<bool>),
    }
    let mut values = Vec::with_capacity(columns.len());
    for (name, kind) in spec.columns {
        let value = row.get(*name);
        values.push(match kind {
            Kind::Uuid => Bound::Uuid(parse_uuid(value)?),
            Kind::Ts => Bound::Ts(parse_ts(value)?),
            Kind::Text => Bound::Text(value.and_then(Value::as_str).map(str::to_owned)),
            Kind::Int => Bound::Int(value.and_then(Value::as_i64)),
            Kind::Bool => Bound::Bool(value.and_then(Value::as_bool)),
        });
    }
    exec!(tx.conn(), c => {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
        for value in &values {
            query = match value {
                Bound::Uuid(v) => query.bind(*v),
                Bound::Ts(v) => query.bind(*v),
                Bound::Text(v) => query.bind(v.clone()),
                Bound::Int(v) => query.bind(*v),
                Bound::Bool(v) => query.bind(*v),
            };
        }
        query.execute(c).await
    })?;
    Ok(())
}
