//! Portals: named entry points of a tenant (`/portal/<slug>`), each with its own
//! navigation and rules for who may sign in through it.

use plinth_access::TenantRole;
use plinth_audit::AuditEntry;
use plinth_core::{FieldErrors, Page, PageRequest, TenantId, Timestamp, UserId};
use plinth_store::{StoreError, exec, on};
use serde::{Deserialize, Serialize};

use crate::authorize::{Intent, Refusal};
use crate::error::{TenancyError, TenancyResult, taken_if_unique};
use crate::model::{Branding, TenantStatus};
use crate::policies::RequestFacts;
use crate::scope::TenantScope;
use crate::service::Tenancy;
use crate::slug::Slug;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NavItem {
    pub label: String,
    /// A path on this site (`/…`) or an `https://` URL.
    pub href: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Portal {
    pub id: uuid::Uuid,
    pub slug: String,
    pub name: String,
    pub navigation: Vec<NavItem>,
    /// Tenant roles that may sign in through this portal; empty: every member.
    pub allowed_roles: Vec<String>,
    pub signup_enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What anyone may know about a portal: enough to render its sign-in page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicPortal {
    pub slug: String,
    pub name: String,
    pub tenant_name: String,
    pub tenant_slug: String,
    pub branding: Branding,
    pub navigation: Vec<NavItem>,
    pub sign_in: SignInOptions,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignInOptions {
    pub password: bool,
    pub signup: bool,
    pub mfa_required: bool,
}

/// Fields of a portal to create or change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalInput {
    /// Required on creation; fixed afterwards.
    pub slug: Option<String>,
    pub name: Option<String>,
    pub navigation: Option<Vec<NavItem>>,
    pub allowed_roles: Option<Vec<String>>,
    pub signup_enabled: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    slug: String,
    name: String,
    navigation: String,
    allowed_roles: String,
    signup_enabled: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<Row> for Portal {
    fn from(r: Row) -> Self {
        Portal {
            id: r.id,
            slug: r.slug,
            name: r.name,
            navigation: serde_json::from_str(&r.navigation).unwrap_or_default(),
            allowed_roles: serde_json::from_str(&r.allowed_roles).unwrap_or_default(),
            signup_enabled: r.signup_enabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, slug, name, navigation, allowed_roles, signup_enabled, created_at, updated_at";

fn validate(input: &PortalInput, errors: &mut FieldErrors) {
    if let Some(name) = &input.name {
        let len = name.trim().chars().count();
        if len == 0 || len > 100 {
            errors.add("name", "invalid_value", "use 1 to 100 characters");
        }
    }
    if let Some(navigation) = &input.navigation {
        if navigation.len() > 20 {
            errors.add("navigation", "too_long", "at most 20 items");
        }
        for (i, item) in navigation.iter().enumerate() {
            let label = item.label.trim().chars().count();
            if label == 0 || label > 50 {
                errors.add(
                    &format!("/navigation/{i}/label"),
                    "invalid_value",
                    "use 1 to 50 characters",
                );
            }
            let href = &item.href;
            let safe = (href.starts_with('/') && !href.starts_with("//")) || href.starts_with("https://");
            if !safe || href.len() > 500 || href.chars().any(|c| c.is_whitespace() || c.is_control()) {
                errors.add(
                    &format!("/navigation/{i}/href"),
                    "invalid_value",
                    "a path starting with / or an https:// URL",
                );
            }
        }
    }
    if let Some(roles) = &input.allowed_roles {
        for (i, role) in roles.iter().enumerate() {
            if TenantRole::parse(role).is_none() {
                errors.add(
                    &format!("/allowed_roles/{i}"),
                    "invalid_value",
                    "owner, admin, member or viewer",
                );
            }
        }
    }
}

impl Tenancy {
    /// The tenant's portals, by slug.
    pub async fn portals(&self, scope: &TenantScope, page: &PageRequest) -> TenancyResult<Page<Portal>> {
        let mut conn = scope.read(&self.db).await?;
        let rows: Vec<Row> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM portals WHERE tenant_id = $1 AND slug > $2 ORDER BY slug LIMIT $3"
        ))).bind(scope.tenant()).bind(page.after_key()).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
        Ok(Page::from_overfetch(
            rows.into_iter().map(Portal::from).collect(),
            page.limit,
            |p| p.slug.clone(),
        ))
    }

    /// A portal of the scope's tenant, by id or slug.
    pub async fn portal(&self, scope: &TenantScope, reference: &str) -> TenancyResult<Portal> {
        let mut conn = scope.read(&self.db).await?;
        let row: Option<Row> = match reference.parse::<uuid::Uuid>() {
            Ok(id) => on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM portals WHERE tenant_id = $1 AND id = $2"
            ))).bind(scope.tenant()).bind(id).fetch_optional(c).await)?,
            Err(_) => on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM portals WHERE tenant_id = $1 AND slug = $2"
            ))).bind(scope.tenant()).bind(reference).fetch_optional(c).await)?,
        };
        row.map(Portal::from).ok_or(TenancyError::NotFound)
    }

    pub async fn create_portal(&self, scope: &TenantScope, input: PortalInput) -> TenancyResult<Portal> {
        let mut errors = FieldErrors::new();
        let slug = match input.slug.as_deref().map(|s| Slug::parse("slug", s, true)) {
            Some(Ok(slug)) => Some(slug),
            Some(Err(e)) => {
                errors = e;
                None
            }
            None => {
                errors.add("slug", "required", "a portal needs a slug");
                None
            }
        };
        if input.name.is_none() {
            errors.add("name", "required", "a portal needs a name");
        }
        validate(&input, &mut errors);
        errors.finish()?;
        let (Some(slug), Some(name)) = (slug, input.name.as_deref()) else {
            return Err(TenancyError::NotFound);
        };
        let id = uuid::Uuid::now_v7();
        let now = Timestamp::now();
        let navigation = serde_json::to_string(&input.navigation.unwrap_or_default()).unwrap_or_else(|_| "[]".into());
        let roles = serde_json::to_string(&input.allowed_roles.unwrap_or_default()).unwrap_or_else(|_| "[]".into());
        let mut tx = scope.begin(&self.db).await?;
        let inserted = exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO portals (id, tenant_id, slug, name, navigation, allowed_roles, signup_enabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
        ).bind(id).bind(scope.tenant()).bind(slug.as_str()).bind(name.trim()).bind(&navigation).bind(&roles)
        .bind(input.signup_enabled.unwrap_or(false)).bind(now).execute(c).await)
        .map_err(StoreError::from);
        taken_if_unique(inserted, "slug", "this portal slug is taken")?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::PORTAL_CREATE)
                .tenant(scope.tenant())
                .target("portal", id)
                .changes(serde_json::json!({"slug": slug.as_str()})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::PortalCreated {
                portal_id: id,
                slug: slug.as_str().to_owned(),
            })
            .tenant(scope.tenant())
            .subject("portal", id),
        )
        .await?;
        tx.commit().await?;
        self.portal(scope, &id.to_string()).await
    }

    pub async fn update_portal(
        &self,
        scope: &TenantScope,
        reference: &str,
        input: PortalInput,
    ) -> TenancyResult<Portal> {
        let mut errors = FieldErrors::new();
        if input.slug.is_some() {
            errors.add("slug", "immutable", "a portal's slug cannot change");
        }
        validate(&input, &mut errors);
        errors.finish()?;
        let before = self.portal(scope, reference).await?;
        let name = input
            .name
            .as_deref()
            .map_or(before.name.clone(), |n| n.trim().to_owned());
        let navigation = input.navigation.clone().unwrap_or_else(|| before.navigation.clone());
        let roles = input
            .allowed_roles
            .clone()
            .unwrap_or_else(|| before.allowed_roles.clone());
        let signup = input.signup_enabled.unwrap_or(before.signup_enabled);
        let mut tx = scope.begin(&self.db).await?;
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE portals SET name = $1, navigation = $2, allowed_roles = $3, signup_enabled = $4, updated_at = $5
             WHERE tenant_id = $6 AND id = $7"
        ).bind(&name).bind(serde_json::to_string(&navigation).unwrap_or_default())
        .bind(serde_json::to_string(&roles).unwrap_or_default()).bind(signup).bind(Timestamp::now())
        .bind(scope.tenant()).bind(before.id).execute(c).await)?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::PORTAL_UPDATE)
                .tenant(scope.tenant())
                .target("portal", before.id)
                .changes(serde_json::json!({
                    "name": {"before": before.name, "after": name},
                    "allowed_roles": {"before": before.allowed_roles, "after": roles},
                    "signup_enabled": {"before": before.signup_enabled, "after": signup},
                })),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::PortalUpdated { portal_id: before.id })
                .tenant(scope.tenant())
                .subject("portal", before.id),
        )
        .await?;
        tx.commit().await?;
        self.portal(scope, &before.id.to_string()).await
    }

    pub async fn delete_portal(&self, scope: &TenantScope, reference: &str) -> TenancyResult<()> {
        let portal = self.portal(scope, reference).await?;
        let mut tx = scope.begin(&self.db).await?;
        exec!(tx.conn(), c => sqlx::query("DELETE FROM portals WHERE tenant_id = $1 AND id = $2")
            .bind(scope.tenant()).bind(portal.id).execute(c).await)?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::PORTAL_DELETE)
                .tenant(scope.tenant())
                .target("portal", portal.id)
                .changes(serde_json::json!({"slug": portal.slug})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::PortalDeleted {
                portal_id: portal.id,
                slug: portal.slug.clone(),
            })
            .tenant(scope.tenant())
            .subject("portal", portal.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The public face of a portal; a portal of a tenant that is not usable is not found.
    pub async fn public_portal(&self, slug: &str) -> TenancyResult<PublicPortal> {
        #[derive(sqlx::FromRow)]
        struct Public {
            slug: String,
            name: String,
            navigation: String,
            signup_enabled: bool,
            tenant_name: String,
            tenant_slug: String,
            tenant_status: String,
            branding: String,
            settings: String,
        }
        let mut conn = self.db.read().await?;
        let row: Option<Public> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT p.slug, p.name, p.navigation, p.signup_enabled, t.name AS tenant_name, t.slug AS tenant_slug,
                    t.status AS tenant_status, t.branding, t.settings
             FROM portals p JOIN tenants t ON t.id = p.tenant_id WHERE p.slug = $1"
        ).bind(slug).fetch_optional(c).await)?;
        let row = row.ok_or(TenancyError::NotFound)?;
        if !matches!(
            TenantStatus::parse(&row.tenant_status),
            Some(TenantStatus::Active | TenantStatus::Trial)
        ) {
            return Err(TenancyError::NotFound);
        }
        let settings = crate::model::TenantSettings::stored(&row.settings);
        Ok(PublicPortal {
            slug: row.slug,
            name: row.name,
            tenant_name: row.tenant_name,
            tenant_slug: row.tenant_slug,
            branding: serde_json::from_str(&row.branding).unwrap_or_default(),
            navigation: serde_json::from_str(&row.navigation).unwrap_or_default(),
            sign_in: SignInOptions {
                password: true,
                signup: row.signup_enabled,
                mfa_required: settings.mfa_required,
            },
        })
    }

    /// Whether `user` may sign in through the portal: the access rule for entering its
    /// tenant (see `authorize`), then one of the portal's allowed roles. `mfa` is whether
    /// the session used a second factor. Returns the tenant and the portal's slug.
    pub async fn portal_for_sign_in(&self, user: UserId, slug: &str, mfa: bool) -> TenancyResult<(TenantId, String)> {
        let mut conn = self.db.read().await?;
        let portal: Option<(TenantId, String)> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT tenant_id, allowed_roles FROM portals WHERE slug = $1"
        ).bind(slug).fetch_optional(c).await)?;
        drop(conn);
        let (tenant, allowed_roles) = portal.ok_or(TenancyError::NotFound)?;
        let facts = RequestFacts {
            mfa,
            ..RequestFacts::default()
        };
        let (_, verdict) = self.evaluate(user, &tenant.to_string(), Intent::Enter, &facts).await?;
        let grant = verdict.map_err(Refusal::into_error)?;
        // An empty list admits every member, so a list that does not parse must admit
        // nobody rather than read as empty.
        let Ok(allowed) = serde_json::from_str::<Vec<String>>(&allowed_roles) else {
            tracing::error!(
                portal = slug,
                "a portal's stored allowed roles do not parse; refusing entry"
            );
            return Err(TenancyError::Forbidden(
                "this portal's configuration cannot be read; ask the tenant's administrators to save it again",
            ));
        };
        if !allowed.is_empty() && !grant.roles.iter().any(|r| allowed.contains(r)) {
            return Err(TenancyError::Forbidden(
                "your role in this tenant may not sign in through this portal",
            ));
        }
        Ok((tenant, slug.to_owned()))
    }
}
