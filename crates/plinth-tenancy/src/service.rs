//! The tenancy service: creating tenants, reading and changing them, and the lists a
//! user and a platform administrator see.

use plinth_audit::AuditEntry;
use plinth_core::{Actor, FieldErrors, Page, PageRequest, TenantId, Timestamp, UserId};
use plinth_events::NewEvent;
use plinth_events::catalog::{TenantCreated, TenantUpdated};
use plinth_store::{Db, StoreError, exec, on};
use serde::Serialize;
use time::Duration;

use crate::authorize::{Intent, Refusal, TenantContext, role_list};
use crate::error::{TenancyError, TenancyResult, taken_if_unique};
use crate::model::{
    Branding, NewTenant, TENANT_COLUMNS, Tenant, TenantRow, TenantSettings, TenantStatus, TenantUpdate,
};
use crate::policies::RequestFacts;
use crate::scope::TenantScope;
use crate::slug::Slug;
use crate::workspaces::insert_workspace;

#[derive(Clone)]
pub struct Tenancy {
    pub(crate) db: Db,
    pub(crate) policy_cache: crate::policies::PolicyCache,
    pub(crate) audit_retention: plinth_audit::RetentionBounds,
    /// One audit record a minute per member, tenant and refused permission.
    pub(crate) refusal_records: std::sync::Arc<RefusalLimiter>,
}

pub(crate) type RefusalLimiter = governor::DefaultKeyedRateLimiter<(UserId, TenantId, &'static str)>;

/// Who asks for a new tenant, and what the platform allows them.
#[derive(Debug, Clone, Copy)]
pub struct TenantRequester {
    pub user: UserId,
    pub platform_admin: bool,
    /// Whether the platform lets users create their own tenants.
    pub self_service: bool,
}

/// One of the caller's tenants, for the tenant switcher.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyTenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: TenantStatus,
    pub roles: Vec<String>,
}

fn check_name(name: &str, errors: &mut FieldErrors) {
    let len = name.trim().chars().count();
    if len == 0 || len > 100 {
        errors.add("name", "invalid_value", "use 1 to 100 characters");
    }
}

impl Tenancy {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            policy_cache: crate::policies::PolicyCache::new(),
            audit_retention: plinth_audit::RetentionBounds::default(),
            refusal_records: std::sync::Arc::new(governor::RateLimiter::keyed(governor::Quota::per_minute(
                std::num::NonZeroU32::MIN,
            ))),
        }
    }

    /// Forgets refusal-record limits that have lapsed (call now and then).
    pub fn prune_limits(&self) {
        self.refusal_records.retain_recent();
    }

    /// The platform's bounds on how long tenants keep audit records.
    pub fn with_audit_retention(mut self, bounds: plinth_audit::RetentionBounds) -> Self {
        self.audit_retention = bounds;
        self
    }

    /// Creates a tenant a signed-in user asked for. Platform administrators may create one
    /// for anyone; other users only for themselves, and only where the platform allows
    /// self-service. `new.owner` is the owner asked for (the requester when absent).
    pub async fn request_tenant(
        &self,
        actor: &Actor,
        requester: TenantRequester,
        owner: Option<UserId>,
        mut new: NewTenant,
    ) -> TenancyResult<Tenant> {
        new.owner = match owner {
            Some(owner) if owner != requester.user => {
                if !requester.platform_admin {
                    return Err(TenancyError::Forbidden(
                        "only platform administrators create tenants for others",
                    ));
                }
                owner
            }
            _ => {
                if !requester.platform_admin && !requester.self_service {
                    return Err(TenancyError::Forbidden(
                        "self-service tenant creation is disabled on this platform",
                    ));
                }
                requester.user
            }
        };
        self.create_tenant(actor, new).await
    }

    /// Provisions a tenant in one transaction: the tenant, its owner, its default
    /// workspace, the audit record and the `tenant.created` event.
    pub async fn create_tenant(&self, actor: &Actor, new: NewTenant) -> TenancyResult<Tenant> {
        let mut errors = FieldErrors::new();
        let slug = match Slug::parse("slug", &new.slug, true) {
            Ok(s) => Some(s),
            Err(e) => {
                errors = e;
                None
            }
        };
        check_name(&new.name, &mut errors);
        if new.trial_days.is_some_and(|d| !(1..=365).contains(&d)) {
            errors.add("trial_days", "invalid_value", "use 1 to 365 days");
        }
        errors.finish()?;
        let Some(slug) = slug else {
            return Err(TenancyError::NotFound);
        };
        if new.isolation == crate::model::Isolation::Silo {
            return Err(TenancyError::Validation(FieldErrors::single(
                "isolation",
                "unsupported",
                "silo isolation is not available yet; create the tenant in the shared pool",
            )));
        }
        let id = TenantId::new();
        let now = Timestamp::now();
        let (status, trial_ends_at) = match new.trial_days {
            Some(days) => (TenantStatus::Trial, Some(now + Duration::days(days))),
            None => (TenantStatus::Active, None),
        };
        let settings = serde_json::to_string(&TenantSettings::default()).unwrap_or_else(|_| "{}".into());
        let branding = serde_json::to_string(&Branding::default()).unwrap_or_else(|_| "{}".into());
        let mut tx = self.db.begin().await?;
        let owner_exists: i64 = on!(tx.conn(), c => sqlx::query_scalar("SELECT count(*) FROM users WHERE id = $1 AND status <> 'disabled'")
            .bind(new.owner).fetch_one(c).await)?;
        if owner_exists == 0 {
            return Err(TenancyError::Validation(FieldErrors::single(
                "owner_user_id",
                "invalid_value",
                "no such active user",
            )));
        }
        let inserted = exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO tenants (id, slug, name, status, isolation, trial_ends_at, settings, branding, onboarding, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '[]', $9, $9)"
        ).bind(id).bind(slug.as_str()).bind(new.name.trim()).bind(status.as_str()).bind(new.isolation.as_str())
        .bind(trial_ends_at).bind(&settings).bind(&branding).bind(now).execute(c).await)
        .map_err(StoreError::from);
        taken_if_unique(inserted, "slug", "this slug is taken")?;
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, roles, status, created_at, updated_at) VALUES ($1, $2, 'owner', 'active', $3, $3)"
        ).bind(id).bind(new.owner).bind(now).execute(c).await)?;
        // The creator acts inside the new tenant for what follows.
        let scope = TenantScope::authorized(id, actor.clone());
        let default_slug = Slug::parse("slug", "general", false).map_err(TenancyError::Validation)?;
        let workspace = insert_workspace(&mut tx, &scope, &default_slug, "General", true).await?;
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO workspace_members (tenant_id, workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, 'admin', $4)"
        ).bind(id).bind(workspace.id).bind(new.owner).bind(now).execute(c).await)?;
        self.bump_authz_version(&mut tx, new.owner).await?;
        let changes = serde_json::json!({
            "slug": slug.as_str(), "name": new.name.trim(), "status": status.as_str(),
            "isolation": new.isolation.as_str(), "owner": new.owner,
        });
        plinth_audit::append(
            &mut tx,
            actor,
            AuditEntry::new(plinth_audit::action::TENANT_CREATE)
                .tenant(id)
                .target("tenant", id)
                .changes(changes.clone()),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            actor,
            NewEvent::of(&TenantCreated {
                tenant_id: id.0,
                slug: slug.as_str().to_owned(),
                name: new.name.trim().to_owned(),
                owner_id: new.owner.0,
                status: status.as_str().to_owned(),
                isolation: new.isolation.as_str().to_owned(),
            })
            .tenant(id)
            .subject("tenant", id),
        )
        .await?;
        tx.commit().await?;
        self.get(id).await
    }

    pub(crate) async fn get(&self, id: TenantId) -> TenancyResult<Tenant> {
        let mut conn = self.db.read().await?;
        let row: Option<TenantRow> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"
        ))).bind(id).fetch_optional(c).await)?;
        row.map(Tenant::from).ok_or(TenancyError::NotFound)
    }

    /// The id of the tenant named by `reference` (id or slug), for platform tooling.
    pub async fn tenant_id_of(&self, reference: &str) -> TenancyResult<TenantId> {
        let by_id = reference.parse::<uuid::Uuid>().ok().map(TenantId);
        let mut conn = self.db.read().await?;
        let id: Option<TenantId> = on!(conn.conn(), c => sqlx::query_scalar(
            "SELECT id FROM tenants WHERE slug = $1 OR id = $2"
        ).bind(reference).bind(by_id).fetch_optional(c).await)?;
        id.ok_or(TenancyError::NotFound)
    }

    pub async fn tenant(&self, scope: &TenantScope) -> TenancyResult<Tenant> {
        self.get(scope.tenant()).await
    }

    pub async fn update_tenant(&self, ctx: &TenantContext, update: TenantUpdate) -> TenancyResult<Tenant> {
        let scope = &ctx.scope;
        let mut errors = FieldErrors::new();
        if let Some(name) = &update.name {
            check_name(name, &mut errors);
        }
        if let Some(settings) = &update.settings {
            settings.validate(&self.audit_retention, &mut errors);
        }
        if let Some(branding) = &update.branding {
            branding.validate(&mut errors);
        }
        let before = self.tenant(scope).await?;
        // Requiring MFA without using it yourself would lock you out.
        if update.settings.as_ref().is_some_and(|s| s.mfa_required) && !before.settings.mfa_required && !ctx.mfa_used {
            errors.add(
                "/settings/mfa_required",
                "mfa_not_used",
                "sign in with two-step verification yourself before requiring it of members",
            );
        }
        errors.finish()?;
        let name = update
            .name
            .as_deref()
            .map_or(before.name.clone(), |n| n.trim().to_owned());
        let settings = update.settings.clone().unwrap_or_else(|| before.settings.clone());
        let branding = update.branding.clone().unwrap_or_else(|| before.branding.clone());
        let mut tx = scope.begin(&self.db).await?;
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE tenants SET name = $1, settings = $2, branding = $3, updated_at = $4 WHERE id = $5"
        ).bind(&name).bind(serde_json::to_string(&settings).unwrap_or_default())
        .bind(serde_json::to_string(&branding).unwrap_or_default()).bind(Timestamp::now()).bind(scope.tenant())
        .execute(c).await)?;
        let changes = serde_json::json!({
            "name": {"before": before.name, "after": name},
            "settings": {"before": before.settings, "after": settings},
            "branding": {"before": before.branding, "after": branding},
        });
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::TENANT_UPDATE)
                .tenant(scope.tenant())
                .target("tenant", scope.tenant())
                .changes(changes),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&TenantUpdated {
                tenant_id: scope.tenant().0,
            })
            .tenant(scope.tenant())
            .subject("tenant", scope.tenant()),
        )
        .await?;
        tx.commit().await?;
        self.tenant(scope).await
    }

    /// The tenants `user` is an active member of.
    /// The tenants `user` is an active member of, by slug.
    pub async fn my_tenants(&self, user: UserId, page: &PageRequest) -> TenancyResult<Page<MyTenant>> {
        let mut conn = self.db.read().await?;
        let rows: Vec<MyTenantRow> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT t.id, t.slug, t.name, t.status, m.roles FROM memberships m JOIN tenants t ON t.id = m.tenant_id
             WHERE m.user_id = $1 AND m.status = 'active' AND t.status <> 'pending_deletion'
               AND t.slug > $2
             ORDER BY t.slug LIMIT $3"
        ).bind(user).bind(page.after_key()).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
        Ok(Page::from_overfetch(
            rows.into_iter().map(MyTenant::from).collect(),
            page.limit,
            |t| t.slug.clone(),
        ))
    }

    /// Every tenant, newest first, for platform administrators.
    pub async fn all_tenants(
        &self,
        status: Option<TenantStatus>,
        query: Option<&str>,
        page: &PageRequest,
    ) -> TenancyResult<Page<Tenant>> {
        let before = TenantId(page.before_id().map_err(TenancyError::Validation)?);
        let pattern = query.map(|q| format!("%{}%", q.to_lowercase().replace(['%', '_'], "")));
        let mut conn = self.db.read().await?;
        // Ids are UUIDv7, so id order is creation order.
        let rows: Vec<TenantRow> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TENANT_COLUMNS} FROM tenants
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR lower(name) LIKE $2 OR slug LIKE $2)
               AND id < $3
             ORDER BY id DESC LIMIT $4"
        ))).bind(status.map(|s| s.as_str())).bind(&pattern).bind(before).bind(i64::from(page.limit) + 1)
        .fetch_all(c).await)?;
        Ok(Page::from_overfetch(
            rows.into_iter().map(Tenant::from).collect(),
            page.limit,
            |t| t.id.to_string(),
        ))
    }

    /// Whether `user` may select `tenant` for their session: the access rule for
    /// entering a tenant (see `authorize`), with `mfa` whether the session used a second
    /// factor.
    pub async fn selectable(&self, user: UserId, tenant: &str, mfa: bool) -> TenancyResult<MyTenant> {
        let facts = RequestFacts {
            mfa,
            ..RequestFacts::default()
        };
        let (standing, verdict) = self.evaluate(user, tenant, Intent::Enter, &facts).await?;
        let grant = verdict.map_err(Refusal::into_error)?;
        let standing = standing.ok_or(TenancyError::NotFound)?;
        Ok(MyTenant {
            id: standing.tenant,
            slug: standing.slug,
            name: standing.name,
            status: standing.status,
            roles: grant.roles,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MyTenantRow {
    id: TenantId,
    slug: String,
    name: String,
    status: String,
    roles: String,
}

impl From<MyTenantRow> for MyTenant {
    fn from(r: MyTenantRow) -> Self {
        MyTenant {
            id: r.id,
            slug: r.slug,
            name: r.name,
            // An unknown status is treated as the most restrictive one.
            status: TenantStatus::parse(&r.status).unwrap_or(TenantStatus::Suspended),
            roles: role_list(&r.roles),
        }
    }
}
