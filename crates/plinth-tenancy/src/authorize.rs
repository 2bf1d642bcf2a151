//! From a signed-in user and a tenant reference (id or slug) to a [`TenantScope`]:
//! the only place in Plinth where scopes are made (a test checks that).

use plinth_access::{PermissionSet, PolicyOutcome};
use plinth_core::{Actor, TenantId, UserId};
use plinth_store::on;

use crate::error::{TenancyError, TenancyResult};
use crate::model::TenantStatus;
use crate::policies::RequestFacts;
use crate::roles::RoleBook;
use crate::scope::TenantScope;
use crate::service::Tenancy;

/// A caller authorised inside a tenant.
#[derive(Debug, Clone)]
pub struct TenantContext {
    pub scope: TenantScope,
    pub tenant_slug: String,
    pub tenant_status: TenantStatus,
    pub roles: Vec<String>,
    pub permissions: PermissionSet,
    /// Whether the caller's session was signed in with a second factor.
    pub mfa_used: bool,
}

#[derive(sqlx::FromRow)]
struct Access {
    id: TenantId,
    slug: String,
    status: String,
    settings: String,
    roles: Option<String>,
    membership_status: Option<String>,
    policies_version: i64,
}

pub(crate) fn role_list(text: &str) -> Vec<String> {
    text.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

pub(crate) fn permissions_of(roles: &[String]) -> PermissionSet {
    roles
        .iter()
        .filter_map(|r| plinth_access::TenantRole::parse(r))
        .fold(PermissionSet::empty(), |set, role| set.union(role.permissions()))
}

impl Tenancy {
    /// Authorises `user` for `permission` in the tenant named by `tenant` (id or slug).
    /// A tenant the user is not an active member of is "not found", whether or not it
    /// exists.
    pub async fn authorize(
        &self,
        user: UserId,
        actor: Actor,
        tenant: &str,
        permission: &'static str,
        mfa_used: bool,
    ) -> TenancyResult<TenantContext> {
        let by_id = tenant.parse::<uuid::Uuid>().ok();
        let mut conn = self.db.read().await?;
        let row: Option<Access> = match by_id {
            Some(id) => on!(conn.conn(), c => sqlx::query_as(
                "SELECT t.id, t.slug, t.status, t.settings, m.roles, m.status AS membership_status, t.policies_version
                 FROM tenants t LEFT JOIN memberships m ON m.tenant_id = t.id AND m.user_id = $2
                 WHERE t.id = $1"
            ).bind(TenantId(id)).bind(user).fetch_optional(c).await)?,
            None => on!(conn.conn(), c => sqlx::query_as(
                "SELECT t.id, t.slug, t.status, t.settings, m.roles, m.status AS membership_status, t.policies_version
                 FROM tenants t LEFT JOIN memberships m ON m.tenant_id = t.id AND m.user_id = $2
                 WHERE t.slug = $1"
            ).bind(tenant).bind(user).fetch_optional(c).await)?,
        };
        let row = row.ok_or(TenancyError::NotFound)?;
        let (Some(roles), Some("active")) = (row.roles.as_deref(), row.membership_status.as_deref()) else {
            return Err(TenancyError::NotFound);
        };
        let roles = role_list(roles);
        let permissions = if RoleBook::needed_for(&roles) {
            RoleBook::load(conn.conn(), row.id).await?.permissions(&roles)
        } else {
            permissions_of(&roles)
        };
        let status = TenantStatus::parse(&row.status).unwrap_or(TenantStatus::Suspended);
        match status {
            TenantStatus::PendingDeletion => return Err(TenancyError::NotFound),
            TenantStatus::Suspended => return Err(TenancyError::Suspended),
            // Owners keep read access to an expired trial; everyone else waits for a plan.
            TenantStatus::Expired if !(roles.iter().any(|r| r == "owner") && permission.ends_with(":read")) => {
                return Err(TenancyError::Expired);
            }
            _ => {}
        }
        let settings = crate::model::TenantSettings::stored(&row.settings);
        if settings.mfa_required && !mfa_used {
            return Err(TenancyError::Forbidden(
                "this tenant requires two-step verification: sign in with your second factor",
            ));
        }
        if !permissions.contains(permission) {
            return Err(TenancyError::Forbidden("your role in this tenant does not allow this"));
        }
        let facts = RequestFacts {
            mfa: mfa_used,
            ip: actor.ip.as_deref().and_then(|ip| ip.parse().ok()),
            ..RequestFacts::default()
        };
        let outcome = self
            .apply_policies(
                conn.conn(),
                row.id,
                row.policies_version,
                user,
                &roles,
                permission,
                &facts,
            )
            .await?;
        if let PolicyOutcome::Denied { policy, why } = outcome {
            return Err(TenancyError::PolicyDenied { policy, why });
        }
        Ok(TenantContext {
            scope: TenantScope::authorized(row.id, actor),
            tenant_slug: row.slug,
            tenant_status: status,
            roles,
            permissions,
            mfa_used,
        })
    }
}
