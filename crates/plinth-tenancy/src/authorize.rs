//! The one rule that decides whether a user may act in a tenant, and the only place in
//! Plinth where a [`TenantScope`] is made from it.
//!
//! The request guard ([`Tenancy::authorize`]), the check API ([`Tenancy::check`]),
//! tenant selection ([`Tenancy::selectable`]) and portal sign-in all read the same facts
//! ([`Standing`]) and ask the same question ([`Tenancy::evaluate`]); they differ only in
//! how a refusal is worded. The order of the rule: an active membership in a tenant that
//! is not being deleted, then the tenant's status (an expired trial admits its owners to
//! read), then the tenant's second-factor requirement, then the permission, then the
//! tenant's policies.

use plinth_access::{PermissionSet, PolicyOutcome, is_known};
use plinth_core::{Actor, TenantId, UserId};
use plinth_store::{Conn, on};

use crate::error::{TenancyError, TenancyResult};
use crate::model::{TenantSettings, TenantStatus};
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

/// What the user asks to do in the tenant.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Intent<'a> {
    /// Act with one permission of the catalog.
    Permission(&'a str),
    /// Enter the tenant (select it for the session, or sign in through its portal):
    /// whatever the user may then do is decided request by request.
    Enter,
}

impl Intent<'_> {
    fn only_reads(&self) -> bool {
        match self {
            Intent::Permission(p) => p.ends_with(":read"),
            Intent::Enter => true,
        }
    }
}

/// The facts about a user in a tenant that the rule looks at, read in one query.
#[derive(Debug, Clone)]
pub(crate) struct Standing {
    pub tenant: TenantId,
    pub slug: String,
    pub name: String,
    /// An unknown stored status reads as the most restrictive one.
    pub status: TenantStatus,
    pub mfa_required: bool,
    /// The user's roles, when they are an active member.
    pub roles: Option<Vec<String>>,
    pub policies_version: i64,
}

/// Why the rule says no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such tenant, not an active member, or the tenant is being deleted: callers
    /// cannot tell these apart.
    NotMember,
    Suspended,
    Expired,
    SecondFactorRequired,
    UnknownPermission,
    NotGranted,
    Policy {
        policy: String,
        why: String,
    },
}

/// What the rule grants.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub roles: Vec<String>,
    pub permissions: PermissionSet,
    /// The first of the user's roles that grants the permission asked for.
    pub granted_by: Option<String>,
    /// The policy that explicitly permitted it, when one did.
    pub permitted_by: Option<String>,
}

impl Refusal {
    /// The error the guard, tenant selection and portal sign-in answer with.
    pub(crate) fn into_error(self) -> TenancyError {
        match self {
            Refusal::NotMember => TenancyError::NotFound,
            Refusal::Suspended => TenancyError::Suspended,
            Refusal::Expired => TenancyError::Expired,
            Refusal::SecondFactorRequired => {
                TenancyError::Forbidden("this tenant requires two-step verification: sign in with your second factor")
            }
            Refusal::UnknownPermission | Refusal::NotGranted => {
                TenancyError::Forbidden("your role in this tenant does not allow this")
            }
            Refusal::Policy { policy, why } => TenancyError::PolicyDenied { policy, why },
        }
    }
}

#[derive(sqlx::FromRow)]
struct StandingRow {
    id: TenantId,
    slug: String,
    name: String,
    status: String,
    settings: String,
    roles: Option<String>,
    membership_status: Option<String>,
    policies_version: i64,
}

const STANDING: &str =
    "SELECT t.id, t.slug, t.name, t.status, t.settings, m.roles, m.status AS membership_status, t.policies_version
     FROM tenants t LEFT JOIN memberships m ON m.tenant_id = t.id AND m.user_id = $2";

impl Standing {
    /// The facts for `user` in the tenant named by `tenant` (id or slug); `None` when
    /// there is no such tenant.
    async fn read(conn: Conn<'_>, user: UserId, tenant: &str) -> TenancyResult<Option<Standing>> {
        let row: Option<StandingRow> = match tenant.parse::<uuid::Uuid>() {
            Ok(id) => on!(conn, c => sqlx::query_as(sqlx::AssertSqlSafe(format!("{STANDING} WHERE t.id = $1")))
                .bind(TenantId(id)).bind(user).fetch_optional(c).await)?,
            Err(_) => on!(conn, c => sqlx::query_as(sqlx::AssertSqlSafe(format!("{STANDING} WHERE t.slug = $1")))
                .bind(tenant).bind(user).fetch_optional(c).await)?,
        };
        Ok(row.map(|r| Standing {
            tenant: r.id,
            slug: r.slug,
            name: r.name,
            status: TenantStatus::parse(&r.status).unwrap_or(TenantStatus::Suspended),
            mfa_required: TenantSettings::stored(&r.settings).mfa_required,
            roles: match (r.roles, r.membership_status.as_deref()) {
                (Some(roles), Some("active")) => Some(role_list(&roles)),
                _ => None,
            },
            policies_version: r.policies_version,
        }))
    }

    /// The part of the rule that needs no more than these facts: membership, status and
    /// the second-factor requirement. Returns the member's roles.
    fn admits(&self, intent: Intent<'_>, mfa: bool) -> Result<&[String], Refusal> {
        let Some(roles) = self.roles.as_deref() else {
            return Err(Refusal::NotMember);
        };
        match self.status {
            TenantStatus::Active | TenantStatus::Trial => {}
            TenantStatus::PendingDeletion => return Err(Refusal::NotMember),
            TenantStatus::Suspended => return Err(Refusal::Suspended),
            // Owners keep read access to an expired trial; everyone else waits for a plan.
            TenantStatus::Expired if intent.only_reads() && roles.iter().any(|r| r == "owner") => {}
            TenantStatus::Expired => return Err(Refusal::Expired),
        }
        if self.mfa_required && !mfa {
            return Err(Refusal::SecondFactorRequired);
        }
        Ok(roles)
    }
}

pub(crate) fn role_list(text: &str) -> Vec<String> {
    text.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

impl Tenancy {
    /// The rule: may `user` do what `intent` names in the tenant `tenant` (id or slug),
    /// given the facts of the request? The standing is returned with the answer, for the
    /// caller to describe the tenant.
    pub(crate) async fn evaluate(
        &self,
        user: UserId,
        tenant: &str,
        intent: Intent<'_>,
        facts: &RequestFacts<'_>,
    ) -> TenancyResult<(Option<Standing>, Result<Grant, Refusal>)> {
        if let Intent::Permission(permission) = intent
            && !is_known(permission)
        {
            return Ok((None, Err(Refusal::UnknownPermission)));
        }
        // Deciding whether a scope may exist is platform work: it reads the membership
        // and the tenant's roles before any scope does.
        let mut conn = self.db.read().await?;
        let Some(standing) = Standing::read(conn.conn(), user, tenant).await? else {
            return Ok((None, Err(Refusal::NotMember)));
        };
        let roles = match standing.admits(intent, facts.mfa) {
            Ok(roles) => roles.to_vec(),
            Err(refusal) => return Ok((Some(standing), Err(refusal))),
        };
        let book = if RoleBook::needed_for(&roles) {
            RoleBook::load(conn.conn(), standing.tenant).await?
        } else {
            RoleBook::default()
        };
        let permissions = book.permissions(&roles);
        let Intent::Permission(permission) = intent else {
            let grant = Grant {
                roles,
                permissions,
                granted_by: None,
                permitted_by: None,
            };
            return Ok((Some(standing), Ok(grant)));
        };
        let granted_by = roles
            .iter()
            .find(|r| book.permissions(std::slice::from_ref(*r)).contains(permission))
            .cloned();
        if granted_by.is_none() {
            return Ok((Some(standing), Err(Refusal::NotGranted)));
        }
        let outcome = self
            .apply_policies(
                conn.conn(),
                standing.tenant,
                standing.policies_version,
                user,
                &roles,
                permission,
                facts,
            )
            .await;
        let permitted_by = match outcome {
            Ok(PolicyOutcome::NotApplicable) => None,
            Ok(PolicyOutcome::Permitted { policy }) => Some(policy),
            Ok(PolicyOutcome::Denied { policy, why }) | Err(TenancyError::PolicyDenied { policy, why }) => {
                return Ok((Some(standing), Err(Refusal::Policy { policy, why })));
            }
            Err(e) => return Err(e),
        };
        let grant = Grant {
            roles,
            permissions,
            granted_by,
            permitted_by,
        };
        Ok((Some(standing), Ok(grant)))
    }

    /// Records, on the tenant's chain, a member refused a permission that administers the
    /// tenant: at most one record a minute per member, tenant and permission, so refused
    /// requests cannot be turned into a flood of writes. A record that cannot be written
    /// is logged; the refusal stands either way.
    async fn record_refusal(&self, standing: &Standing, actor: &Actor, permission: &'static str, refusal: &Refusal) {
        let reason = match refusal {
            Refusal::NotGranted => "not granted by the member's roles".to_owned(),
            Refusal::Policy { policy, why } => format!("denied by policy {policy}: {why}"),
            _ => return,
        };
        let Some(user) = actor.user_id() else { return };
        if !plinth_access::is_sensitive(permission)
            || self
                .refusal_records
                .check_key(&(user, standing.tenant, permission))
                .is_err()
        {
            return;
        }
        let scope = TenantScope::authorized(standing.tenant, actor.clone());
        let written = async {
            let mut tx = scope.begin(&self.db).await?;
            plinth_audit::append(
                &mut tx,
                actor,
                plinth_audit::AuditEntry::new(plinth_audit::action::AUTHZ_DENIED)
                    .tenant(standing.tenant)
                    .target("permission", permission)
                    .outcome(plinth_audit::Outcome::Denied)
                    .reason(reason),
            )
            .await?;
            tx.commit().await?;
            Ok::<(), TenancyError>(())
        };
        if let Err(error) = written.await {
            tracing::error!(%error, tenant = %standing.tenant, permission, "recording a refused permission");
        }
    }

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
        let facts = RequestFacts {
            mfa: mfa_used,
            ip: actor.ip.as_deref().and_then(|ip| ip.parse().ok()),
            ..RequestFacts::default()
        };
        let (standing, verdict) = self
            .evaluate(user, tenant, Intent::Permission(permission), &facts)
            .await?;
        if let (Some(standing), Err(refusal)) = (&standing, &verdict) {
            self.record_refusal(standing, &actor, permission, refusal).await;
        }
        let grant = verdict.map_err(Refusal::into_error)?;
        let standing = standing.ok_or(TenancyError::NotFound)?;
        Ok(TenantContext {
            scope: TenantScope::authorized(standing.tenant, actor),
            tenant_slug: standing.slug,
            tenant_status: standing.status,
            roles: grant.roles,
            permissions: grant.permissions,
            mfa_used,
        })
    }
}
