//! A tenant's attribute policies: Cedar documents stored per tenant, validated when
//! saved, compiled once per version and applied on top of the role matrix (see
//! `plinth_access::policy` for the semantics).

use std::net::IpAddr;
use std::sync::Arc;

use plinth_access::policy::{self, MAX_DOCUMENTS};
use plinth_access::{PolicyOutcome, PolicyRequest, ResourceFacts, TenantPolicies};
use plinth_audit::AuditEntry;
use plinth_core::{FieldErrors, Page, PageRequest, TenantId, Timestamp, UserId};
use plinth_events::NewEvent;
use plinth_events::catalog::{PolicyCreated, PolicyDeleted, PolicyUpdated};
use plinth_store::{Conn, StoreError, Tx, exec, on};
use serde::{Deserialize, Serialize};

use crate::authorize::TenantContext;
use crate::error::{TenancyError, TenancyResult, taken_if_unique};
use crate::roles::check_identifier;
use crate::scope::TenantScope;
use crate::service::Tenancy;

/// Compiled policies by tenant, each with the `policies_version` it was compiled at.
/// Every request reads the tenant's version with its membership, so a change made on any
/// replica applies to the very next request.
#[derive(Clone)]
pub(crate) struct PolicyCache {
    compiled: moka::sync::Cache<TenantId, Arc<(i64, TenantPolicies)>>,
}

impl PolicyCache {
    pub(crate) fn new() -> Self {
        PolicyCache {
            compiled: moka::sync::Cache::new(10_000),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: String,
    /// The Cedar source, as saved.
    pub source: String,
    pub statements: usize,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// Required on creation: 2–40 characters of a-z, 0-9 and hyphens; unique in the tenant.
    pub name: Option<String>,
    pub description: Option<String>,
    /// Cedar policy statements (at most 20 and 16 KiB), validated against the schema
    /// served at `GET /api/v1/authz/policy-schema`.
    pub source: Option<String>,
}

/// The result of validating a document without saving it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyValidation {
    pub valid: bool,
    pub statements: usize,
    /// Cedar's messages, one per problem.
    pub errors: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    id: uuid::Uuid,
    name: String,
    description: String,
    source: String,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl PolicyRow {
    fn view(self) -> PolicyView {
        PolicyView {
            statements: policy::statement_count(&self.source),
            id: self.id,
            name: self.name,
            description: self.description,
            source: self.source,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const COLUMNS: &str = "id, name, description, source, created_at, updated_at";

/// Adds Cedar's messages for an invalid document; returns its number of statements.
fn check_source(source: &str, errors: &mut FieldErrors) -> usize {
    match policy::validate_document(source) {
        Ok(statements) => statements,
        Err(e) => {
            for message in e.messages {
                errors.add("source", "invalid_policy", message);
            }
            0
        }
    }
}

fn check_description(description: &str, errors: &mut FieldErrors) {
    if description.chars().count() > 500 {
        errors.add("description", "too_long", "at most 500 characters");
    }
}

/// The facts of one request that policies may look at, beyond the roles.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    pub resource: ResourceFacts<'a>,
    pub mfa: bool,
    pub ip: Option<IpAddr>,
}

impl Tenancy {
    /// Validates a document as it would be saved, for editors that show errors inline.
    pub fn validate_policy(&self, source: &str) -> PolicyValidation {
        match policy::validate_document(source) {
            Ok(statements) => PolicyValidation {
                valid: true,
                statements,
                errors: Vec::new(),
            },
            Err(e) => PolicyValidation {
                valid: false,
                statements: 0,
                errors: e.messages,
            },
        }
    }

    /// The tenant's policy documents, by name (unique in a tenant).
    pub async fn policies(&self, scope: &TenantScope, page: &PageRequest) -> TenancyResult<Page<PolicyView>> {
        let mut conn = scope.read(&self.db).await?;
        let rows: Vec<PolicyRow> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tenant_policies WHERE tenant_id = $1 AND name > $2
             ORDER BY name LIMIT $3"
        ))).bind(scope.tenant()).bind(page.after_key()).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
        Ok(Page::from_overfetch(
            rows.into_iter().map(PolicyRow::view).collect(),
            page.limit,
            |p| p.name.clone(),
        ))
    }

    pub async fn policy(&self, scope: &TenantScope, id: uuid::Uuid) -> TenancyResult<PolicyView> {
        let mut conn = scope.read(&self.db).await?;
        let row: Option<PolicyRow> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tenant_policies WHERE tenant_id = $1 AND id = $2"
        ))).bind(scope.tenant()).bind(id).fetch_optional(c).await)?;
        row.map(PolicyRow::view).ok_or(TenancyError::NotFound)
    }

    pub async fn create_policy(&self, ctx: &TenantContext, input: PolicyInput) -> TenancyResult<PolicyView> {
        let scope = &ctx.scope;
        let mut errors = FieldErrors::new();
        let name = input.name.clone().unwrap_or_default();
        check_identifier("name", &name, &mut errors);
        let description = input
            .description
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        check_description(&description, &mut errors);
        let source = input.source.clone().unwrap_or_default();
        let statements = check_source(&source, &mut errors);
        errors.finish()?;
        let now = Timestamp::now();
        let id = uuid::Uuid::now_v7();
        let mut tx = scope.begin(&self.db).await?;
        let count: i64 = on!(tx.conn(), c => sqlx::query_scalar("SELECT count(*) FROM tenant_policies WHERE tenant_id = $1")
            .bind(scope.tenant()).fetch_one(c).await)?;
        if count >= MAX_DOCUMENTS as i64 {
            return Err(TenancyError::Validation(FieldErrors::single(
                "name",
                "limit_reached",
                format!("a tenant keeps at most {MAX_DOCUMENTS} policy documents"),
            )));
        }
        let inserted = exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO tenant_policies (id, tenant_id, name, description, source, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)"
        ).bind(id).bind(scope.tenant()).bind(&name).bind(&description).bind(&source).bind(now).execute(c).await)
        .map_err(StoreError::from);
        taken_if_unique(inserted, "name", "this tenant has a policy with this name")?;
        let changes = serde_json::json!({"name": name, "source": source});
        record(
            &mut tx,
            scope,
            plinth_audit::action::POLICY_CREATE,
            NewEvent::of(&PolicyCreated { policy_id: id }),
            id,
            changes,
        )
        .await?;
        tx.commit().await?;
        Ok(PolicyView {
            id,
            name,
            description,
            source,
            statements,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn update_policy(
        &self,
        ctx: &TenantContext,
        id: uuid::Uuid,
        input: PolicyInput,
    ) -> TenancyResult<PolicyView> {
        let scope = &ctx.scope;
        let current = self.policy(scope, id).await?;
        let mut errors = FieldErrors::new();
        if let Some(name) = &input.name {
            check_identifier("name", name, &mut errors);
        }
        if let Some(description) = &input.description {
            check_description(description.trim(), &mut errors);
        }
        let statements = match &input.source {
            Some(source) => check_source(source, &mut errors),
            None => current.statements,
        };
        errors.finish()?;
        let name = input.name.unwrap_or_else(|| current.name.clone());
        let description = input
            .description
            .map_or_else(|| current.description.clone(), |d| d.trim().to_owned());
        let source = input.source.unwrap_or_else(|| current.source.clone());
        let now = Timestamp::now();
        let mut tx = scope.begin(&self.db).await?;
        let updated = exec!(tx.conn(), c => sqlx::query(
            "UPDATE tenant_policies SET name = $1, description = $2, source = $3, updated_at = $4
             WHERE tenant_id = $5 AND id = $6"
        ).bind(&name).bind(&description).bind(&source).bind(now).bind(scope.tenant()).bind(id).execute(c).await)
        .map_err(StoreError::from);
        if taken_if_unique(updated, "name", "this tenant has a policy with this name")? == 0 {
            return Err(TenancyError::NotFound);
        }
        let changes = serde_json::json!({
            "name": {"before": current.name, "after": name},
            "source": {"before": current.source, "after": source},
        });
        record(
            &mut tx,
            scope,
            plinth_audit::action::POLICY_UPDATE,
            NewEvent::of(&PolicyUpdated { policy_id: id }),
            id,
            changes,
        )
        .await?;
        tx.commit().await?;
        Ok(PolicyView {
            statements,
            id,
            name,
            description,
            source,
            created_at: current.created_at,
            updated_at: now,
        })
    }

    pub async fn delete_policy(&self, ctx: &TenantContext, id: uuid::Uuid) -> TenancyResult<()> {
        let scope = &ctx.scope;
        let current = self.policy(scope, id).await?;
        let mut tx = scope.begin(&self.db).await?;
        let removed = exec!(tx.conn(), c => sqlx::query("DELETE FROM tenant_policies WHERE tenant_id = $1 AND id = $2")
            .bind(scope.tenant()).bind(id).execute(c).await)?;
        if removed == 0 {
            return Err(TenancyError::NotFound);
        }
        let changes = serde_json::json!({"name": current.name, "source": current.source});
        record(
            &mut tx,
            scope,
            plinth_audit::action::POLICY_DELETE,
            NewEvent::of(&PolicyDeleted { policy_id: id }),
            id,
            changes,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's compiled policies at `version`, compiling them on a cache miss.
    pub(crate) async fn compiled_policies(
        &self,
        conn: Conn<'_>,
        tenant: TenantId,
        version: i64,
    ) -> TenancyResult<Arc<(i64, TenantPolicies)>> {
        if let Some(hit) = self.policy_cache.compiled.get(&tenant)
            && hit.0 == version
        {
            return Ok(hit);
        }
        let rows: Vec<(String, String)> = on!(conn, c => sqlx::query_as(
            "SELECT name, source FROM tenant_policies WHERE tenant_id = $1 ORDER BY name"
        ).bind(tenant).fetch_all(c).await)?;
        let compiled = TenantPolicies::compile(rows.iter().map(|(n, s)| (n.as_str(), s.as_str()))).map_err(|e| {
            // Saved policies validated when saved; one that no longer does (the catalog
            // lost an action) denies rather than being skipped.
            tracing::error!(tenant = %tenant, error = %e, "a tenant's policies do not compile");
            TenancyError::PolicyDenied {
                policy: String::new(),
                why: format!("the tenant's policies do not compile: {e}"),
            }
        })?;
        let entry = Arc::new((version, compiled));
        self.policy_cache.compiled.insert(tenant, entry.clone());
        Ok(entry)
    }

    /// Applies the tenant's policies to a request its roles allow.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_policies(
        &self,
        conn: Conn<'_>,
        tenant: TenantId,
        version: i64,
        user: UserId,
        roles: &[String],
        permission: &str,
        facts: &RequestFacts<'_>,
    ) -> TenancyResult<PolicyOutcome> {
        // Owners can always repair their policies, whatever a policy says.
        if permission.starts_with("policies:") && roles.iter().any(|r| r == "owner") {
            return Ok(PolicyOutcome::NotApplicable);
        }
        let compiled = self.compiled_policies(conn, tenant, version).await?;
        if compiled.1.is_empty() {
            return Ok(PolicyOutcome::NotApplicable);
        }
        let principal = user.to_string();
        let tenant_id = tenant.to_string();
        let mut resource = facts.resource.clone();
        if resource.kind.is_empty() {
            resource.kind = "tenant";
            resource.id = &tenant_id;
        }
        compiled
            .1
            .evaluate(&PolicyRequest {
                principal: &principal,
                roles,
                action: permission,
                resource,
                mfa: facts.mfa,
                ip: facts.ip,
                now: time::OffsetDateTime::now_utc(),
            })
            .map_err(|e| TenancyError::PolicyDenied {
                policy: String::new(),
                why: e.to_string(),
            })
    }
}

/// The audit record and the event of a policy change, in its transaction; the version
/// bump makes every replica recompile on its next request.
async fn record(
    tx: &mut Tx,
    scope: &TenantScope,
    action: plinth_audit::action::Action,
    event: NewEvent,
    id: uuid::Uuid,
    changes: serde_json::Value,
) -> TenancyResult<()> {
    exec!(tx.conn(), c => sqlx::query("UPDATE tenants SET policies_version = policies_version + 1 WHERE id = $1")
        .bind(scope.tenant()).execute(c).await)?;
    plinth_audit::append(
        tx,
        scope.actor(),
        AuditEntry::new(action)
            .tenant(scope.tenant())
            .target("policy", id)
            .changes(changes),
    )
    .await?;
    plinth_events::enqueue(tx, scope.actor(), event.tenant(scope.tenant()).subject("policy", id)).await?;
    Ok(())
}
