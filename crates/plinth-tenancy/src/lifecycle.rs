//! The tenant lifecycle: trials that expire, suspension and reactivation.

use plinth_audit::AuditEntry;
use plinth_core::{Actor, FieldErrors, TenantId, Timestamp};
use plinth_events::NewEvent;
use plinth_events::catalog::{TenantReactivated, TenantSuspended, TenantTrialExpired};
use plinth_store::{exec, on};

use crate::error::{TenancyError, TenancyResult};
use crate::model::{Tenant, TenantStatus};
use crate::service::Tenancy;

fn check_reason(reason: &str) -> TenancyResult<String> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(TenancyError::Validation(FieldErrors::single(
            "reason",
            "required",
            "give a reason of 1 to 500 characters",
        )));
    }
    Ok(reason.to_owned())
}

impl Tenancy {
    /// Suspends a tenant (platform administrators): every tenant route answers
    /// `tenant-suspended` and no session can select it until it is reactivated.
    pub async fn suspend(&self, actor: &Actor, tenant: TenantId, reason: &str) -> TenancyResult<Tenant> {
        self.change_status(actor, tenant, reason, TenantStatus::Suspended).await
    }

    /// Reactivates a suspended or expired tenant (platform administrators, or a plan change).
    pub async fn reactivate(&self, actor: &Actor, tenant: TenantId, reason: &str) -> TenancyResult<Tenant> {
        self.change_status(actor, tenant, reason, TenantStatus::Active).await
    }

    async fn change_status(
        &self,
        actor: &Actor,
        tenant: TenantId,
        reason: &str,
        to: TenantStatus,
    ) -> TenancyResult<Tenant> {
        let reason = check_reason(reason)?;
        let mut tx = self.db.begin().await?;
        let current: Option<String> = on!(tx.conn(), c => sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1")
            .bind(tenant).fetch_optional(c).await)?;
        let from = current
            .and_then(|s| TenantStatus::parse(&s))
            .ok_or(TenancyError::NotFound)?;
        let allowed = match to {
            TenantStatus::Suspended => {
                matches!(from, TenantStatus::Trial | TenantStatus::Active | TenantStatus::Expired)
            }
            TenantStatus::Active => matches!(from, TenantStatus::Suspended | TenantStatus::Expired),
            _ => false,
        };
        if !allowed {
            return Err(TenancyError::Conflict(match to {
                TenantStatus::Suspended => "only a trial, active or expired tenant can be suspended",
                _ => "only a suspended or expired tenant can be reactivated",
            }));
        }
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE tenants SET status = $1, status_reason = $2, trial_ends_at = CASE WHEN $1 = 'active' THEN NULL ELSE trial_ends_at END,
                 updated_at = $3 WHERE id = $4"
        ).bind(to.as_str()).bind(&reason).bind(Timestamp::now()).bind(tenant).execute(c).await)?;
        let (action, event) = match to {
            TenantStatus::Suspended => (
                plinth_audit::action::TENANT_SUSPEND,
                NewEvent::of(&TenantSuspended {
                    tenant_id: tenant.0,
                    reason: reason.clone(),
                }),
            ),
            _ => (
                plinth_audit::action::TENANT_REACTIVATE,
                NewEvent::of(&TenantReactivated { tenant_id: tenant.0 }),
            ),
        };
        let changes = serde_json::json!({"status": {"before": from.as_str(), "after": to.as_str()}});
        plinth_audit::append(
            &mut tx,
            actor,
            AuditEntry::new(action)
                .tenant(tenant)
                .target("tenant", tenant)
                .changes(changes.clone())
                .reason(reason),
        )
        .await?;
        plinth_events::enqueue(&mut tx, actor, event.tenant(tenant).subject("tenant", tenant)).await?;
        tx.commit().await?;
        self.get(tenant).await
    }

    /// Turns every trial that has run out into `expired`; returns how many. Run by the
    /// scheduler; safe to run from several servers at once.
    pub async fn expire_trials(&self, now: Timestamp) -> TenancyResult<usize> {
        let mut tx = self.db.begin().await?;
        let expired: Vec<TenantId> = on!(tx.conn(), c => sqlx::query_scalar(
            "UPDATE tenants SET status = 'expired', updated_at = $1 WHERE status = 'trial' AND trial_ends_at <= $1 RETURNING id"
        ).bind(now).fetch_all(c).await)?;
        let actor = Actor::system();
        for tenant in &expired {
            let changes = serde_json::json!({"status": {"before": "trial", "after": "expired"}});
            plinth_audit::append(
                &mut tx,
                &actor,
                AuditEntry::new(plinth_audit::action::TENANT_TRIAL_EXPIRE)
                    .tenant(*tenant)
                    .target("tenant", tenant)
                    .changes(changes.clone()),
            )
            .await?;
            plinth_events::enqueue(
                &mut tx,
                &actor,
                NewEvent::of(&TenantTrialExpired { tenant_id: tenant.0 })
                    .tenant(*tenant)
                    .subject("tenant", tenant),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(expired.len())
    }
}
