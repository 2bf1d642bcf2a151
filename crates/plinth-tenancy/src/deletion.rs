//! Deleting a tenant: a request starts a grace period (the tenant disappears for its
//! members but can be restored), after which a purge removes every row of it.

use plinth_audit::AuditEntry;
use plinth_core::{Actor, FieldErrors, TenantId, Timestamp};
use plinth_events::NewEvent;
use plinth_events::catalog::{TenantDeletionRequested, TenantPurged, TenantRestored};
use plinth_store::{Tx, exec, on};
use serde::Serialize;
use time::Duration;

use crate::authorize::TenantContext;
use crate::error::{TenancyError, TenancyResult};
use crate::model::TenantStatus;
use crate::owned::{OnPurge, TenantTable, tenant_tables};
use crate::service::Tenancy;

/// What a purge removes (or would remove) for one tenant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PurgePlan {
    pub tenant_id: TenantId,
    pub slug: String,
    pub purge_after: Option<Timestamp>,
    /// Rows per table.
    pub rows: Vec<(String, i64)>,
}

impl Tenancy {
    /// The owner asks for deletion, confirming with the slug. Returns when the purge is due.
    pub async fn request_deletion(
        &self,
        ctx: &TenantContext,
        confirm: &str,
        grace: Duration,
    ) -> TenancyResult<Timestamp> {
        if confirm != ctx.tenant_slug {
            return Err(TenancyError::Validation(FieldErrors::single(
                "confirm",
                "mismatch",
                "type the tenant's slug to confirm",
            )));
        }
        let scope = &ctx.scope;
        let now = Timestamp::now();
        let purge_after = now + grace;
        let mut tx = scope.begin(&self.db).await?;
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE tenants SET status = 'pending_deletion', deleted_at = $1, purge_after = $2, updated_at = $1 WHERE id = $3"
        ).bind(now).bind(purge_after).bind(scope.tenant()).execute(c).await)?;
        let changes = serde_json::json!({"status": {"before": ctx.tenant_status.as_str(), "after": "pending_deletion"}, "purge_after": purge_after});
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::TENANT_DELETE_REQUEST)
                .tenant(scope.tenant())
                .target("tenant", scope.tenant())
                .changes(changes.clone()),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&TenantDeletionRequested {
                tenant_id: scope.tenant().0,
                purge_after,
            })
            .tenant(scope.tenant())
            .subject("tenant", scope.tenant()),
        )
        .await?;
        tx.commit().await?;
        Ok(purge_after)
    }

    /// A platform operator takes a deletion request back during the grace period.
    pub async fn restore(&self, actor: &Actor, tenant: TenantId, reason: &str) -> TenancyResult<crate::model::Tenant> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(TenancyError::Validation(FieldErrors::single(
                "reason",
                "required",
                "give a reason of 1 to 500 characters",
            )));
        }
        let mut tx = self.db.begin().await?;
        let restored = exec!(tx.conn(), c => sqlx::query(
            "UPDATE tenants SET status = 'active', deleted_at = NULL, purge_after = NULL, status_reason = $1, updated_at = $2
             WHERE id = $3 AND status = 'pending_deletion'"
        ).bind(reason).bind(Timestamp::now()).bind(tenant).execute(c).await)?;
        if restored == 0 {
            return Err(TenancyError::Conflict("only a tenant pending deletion can be restored"));
        }
        plinth_audit::append(
            &mut tx,
            actor,
            AuditEntry::new(plinth_audit::action::TENANT_DELETE_CANCEL)
                .tenant(tenant)
                .target("tenant", tenant)
                .reason(reason),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            actor,
            NewEvent::of(&TenantRestored { tenant_id: tenant.0 })
                .tenant(tenant)
                .subject("tenant", tenant),
        )
        .await?;
        tx.commit().await?;
        self.get(tenant).await
    }

    /// What would be purged at `now`: tenants pending deletion whose grace has passed.
    pub async fn purge_plan(&self, now: Timestamp) -> TenancyResult<Vec<PurgePlan>> {
        let mut conn = self.db.read().await?;
        let due: Vec<(TenantId, String, Option<Timestamp>)> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT id, slug, purge_after FROM tenants WHERE status = 'pending_deletion' AND purge_after <= $1 ORDER BY purge_after"
        ).bind(now).fetch_all(c).await)?;
        drop(conn);
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let tables = tenant_tables(&self.db).await?;
        let mut plans = Vec::with_capacity(due.len());
        for (tenant_id, slug, purge_after) in due {
            let mut tx = self.db.begin().await?;
            let rows = count_rows(&mut tx, tables, tenant_id).await?;
            tx.rollback().await?;
            plans.push(PurgePlan {
                tenant_id,
                slug,
                purge_after,
                rows,
            });
        }
        Ok(plans)
    }

    /// Purges every tenant due at `now`; returns what was removed.
    pub async fn purge_due(&self, now: Timestamp) -> TenancyResult<Vec<PurgePlan>> {
        let mut purged = Vec::new();
        for plan in self.purge_plan(now).await? {
            purged.push(self.purge(&Actor::system(), plan.tenant_id).await?);
        }
        Ok(purged)
    }

    /// Removes every row of a tenant pending deletion, in one transaction, leaving a
    /// record of the purge (with counts) on the platform's audit chain.
    pub async fn purge(&self, actor: &Actor, tenant: TenantId) -> TenancyResult<PurgePlan> {
        let tables = tenant_tables(&self.db).await?;
        let mut tx = self.db.begin().await?;
        let row: Option<(String, String, Option<Timestamp>)> = on!(tx.conn(), c => sqlx::query_as(
            "SELECT slug, status, purge_after FROM tenants WHERE id = $1"
        ).bind(tenant).fetch_optional(c).await)?;
        let (slug, status, purge_after) = row.ok_or(TenancyError::NotFound)?;
        if TenantStatus::parse(&status) != Some(TenantStatus::PendingDeletion) {
            return Err(TenancyError::Conflict("only a tenant pending deletion is purged"));
        }
        let rows = count_rows(&mut tx, tables, tenant).await?;
        for table in tables {
            let sql = match table.on_purge {
                OnPurge::Delete => format!("DELETE FROM {} WHERE tenant_id = $1", table.name),
                OnPurge::Detach(set) => format!("UPDATE {} SET {set} WHERE tenant_id = $1", table.name),
            };
            exec!(tx.conn(), c => sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).execute(c).await)?;
        }
        exec!(tx.conn(), c => sqlx::query("DELETE FROM audit_chain_heads WHERE chain = $1").bind(tenant.to_string()).execute(c).await)?;
        exec!(tx.conn(), c => sqlx::query("DELETE FROM tenants WHERE id = $1").bind(tenant).execute(c).await)?;
        let counts: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|(t, n)| (t.clone(), serde_json::json!(n))).collect();
        plinth_audit::append(
            &mut tx,
            actor,
            AuditEntry::new(plinth_audit::action::TENANT_PURGE)
                .target("tenant", tenant)
                .changes(serde_json::json!({"slug": slug, "rows": counts})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            actor,
            NewEvent::of(&TenantPurged {
                tenant_id: tenant.0,
                slug: slug.clone(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(PurgePlan {
            tenant_id: tenant,
            slug,
            purge_after,
            rows,
        })
    }
}

async fn count_rows(tx: &mut Tx, tables: &[TenantTable], tenant: TenantId) -> TenancyResult<Vec<(String, i64)>> {
    let mut rows = Vec::with_capacity(tables.len() + 1);
    for table in tables.iter().rev() {
        let n: i64 = on!(tx.conn(), c => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {} WHERE tenant_id = $1", table.name)))
            .bind(tenant).fetch_one(c).await)?;
        rows.push((table.name.to_owned(), n));
    }
    rows.push(("tenants".to_owned(), 1));
    Ok(rows)
}
