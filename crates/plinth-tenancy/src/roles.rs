//! Roles of a tenant: the built-in ones (defined in `plinth-access`) and custom roles
//! made of catalog permissions, the role matrix with optimistic concurrency, and the
//! permission checks that products built on Plinth call.

use std::collections::BTreeMap;

use plinth_access::{CATALOG, PermissionDef, PermissionSet, Scope, TenantRole, is_known};
use plinth_audit::AuditEntry;
use plinth_core::{FieldErrors, Page, PageRequest, TenantId, Timestamp, UserId};
use plinth_store::{Conn, StoreError, Tx, exec, on};
use serde::{Deserialize, Serialize};

use crate::authorize::{Intent, Refusal, TenantContext};
use crate::error::{TenancyError, TenancyResult, taken_if_unique};
use crate::policies::RequestFacts;
use crate::scope::TenantScope;
use crate::service::Tenancy;

/// The one answer of the check API for a tenant the subject cannot act in because it is
/// not theirs, whether or not the tenant exists.
pub const NOT_A_MEMBER: &str = "the subject is not an active member of the tenant, or there is no such tenant";

/// The roles of one tenant, to turn role keys into permissions.
#[derive(Debug, Clone, Default)]
pub struct RoleBook {
    custom: BTreeMap<String, PermissionSet>,
}

impl RoleBook {
    pub(crate) async fn load(conn: Conn<'_>, tenant: TenantId) -> TenancyResult<RoleBook> {
        let rows: Vec<(String, String)> = on!(conn, c => sqlx::query_as(
            "SELECT key, permissions FROM tenant_roles WHERE tenant_id = $1"
        ).bind(tenant).fetch_all(c).await)?;
        Ok(RoleBook {
            custom: rows
                .into_iter()
                .map(|(key, permissions)| (key, PermissionSet::from_keys(permissions.split(','))))
                .collect(),
        })
    }

    pub fn exists(&self, key: &str) -> bool {
        TenantRole::parse(key).is_some() || self.custom.contains_key(key)
    }

    /// The union of what `roles` grant; unknown keys grant nothing.
    pub fn permissions(&self, roles: &[String]) -> PermissionSet {
        roles
            .iter()
            .fold(PermissionSet::empty(), |set, role| match TenantRole::parse(role) {
                Some(builtin) => set.union(builtin.permissions()),
                None => set.union(self.custom.get(role).copied().unwrap_or_default()),
            })
    }

    /// Whether any role needs the tenant's custom roles to be read.
    pub fn needed_for(roles: &[String]) -> bool {
        roles.iter().any(|r| TenantRole::parse(r).is_none())
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    pub key: String,
    pub name: String,
    pub description: String,
    /// Built-in roles are defined by Plinth and cannot be changed or deleted.
    pub builtin: bool,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoleMatrix {
    /// Give it back with an update; a stale version is refused with 409.
    pub version: i64,
    pub permissions: Vec<PermissionDef>,
    pub roles: Vec<RoleView>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixUpdate {
    pub version: i64,
    /// New permission sets of custom roles, by role key.
    pub roles: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// Required on creation: 2–40 characters of a-z, 0-9 and hyphens, not a built-in role.
    pub key: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
}

/// The answer to "may this subject do this here?", with the reason.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

fn builtin_view(role: TenantRole) -> RoleView {
    let (name, description) = match role {
        TenantRole::Owner => ("Owner", "Everything, including deleting and exporting the tenant"),
        TenantRole::Admin => ("Administrator", "Manages members, roles, workspaces and settings"),
        TenantRole::Member => ("Member", "Works in workspaces and creates new ones"),
        TenantRole::Viewer => ("Viewer", "Reads the tenant's workspaces and members"),
    };
    RoleView {
        key: role.as_str().to_owned(),
        name: name.to_owned(),
        description: description.to_owned(),
        builtin: true,
        permissions: role.permission_keys().iter().map(|p| (*p).to_owned()).collect(),
    }
}

fn check_permissions(
    field: &str,
    permissions: &[String],
    holder: &PermissionSet,
    errors: &mut FieldErrors,
) -> TenancyResult<()> {
    for (i, permission) in permissions.iter().enumerate() {
        let tenant_scoped = CATALOG
            .iter()
            .any(|p| p.key == permission && p.scope != Scope::Platform);
        if !is_known(permission) || !tenant_scoped {
            errors.add(
                &format!("{field}/{i}"),
                "unknown_permission",
                "not a tenant permission of the catalog",
            );
        }
    }
    if !PermissionSet::from_keys(permissions.iter().map(String::as_str)).is_subset_of(holder) {
        return Err(TenancyError::Forbidden(
            "a role cannot grant a permission you do not hold",
        ));
    }
    Ok(())
}

/// Keys of roles and names of policies: 2 to 40 characters of a-z, 0-9 and hyphens.
pub(crate) fn check_identifier(field: &str, value: &str, errors: &mut FieldErrors) -> bool {
    let valid = (2..=40).contains(&value.len())
        && value.as_bytes()[0].is_ascii_lowercase()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        errors.add(
            field,
            "invalid_value",
            "2 to 40 characters of a-z, 0-9 and hyphens, starting with a letter",
        );
    }
    valid
}

fn check_key(key: &str, errors: &mut FieldErrors) {
    if check_identifier("key", key, errors) && TenantRole::parse(key).is_some() {
        errors.add("key", "reserved", "this is a built-in role");
    }
}

impl Tenancy {
    /// The scope's tenant's roles.
    pub async fn role_book(&self, scope: &TenantScope) -> TenancyResult<RoleBook> {
        let mut conn = scope.read(&self.db).await?;
        RoleBook::load(conn.conn(), scope.tenant()).await
    }

    pub async fn roles(&self, scope: &TenantScope) -> TenancyResult<Vec<RoleView>> {
        let mut conn = scope.read(&self.db).await?;
        #[derive(sqlx::FromRow)]
        struct Row {
            key: String,
            name: String,
            description: String,
            permissions: String,
        }
        let rows: Vec<Row> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT key, name, description, permissions FROM tenant_roles WHERE tenant_id = $1 ORDER BY key"
        ).bind(scope.tenant()).fetch_all(c).await)?;
        let mut roles: Vec<RoleView> = TenantRole::ALL.into_iter().map(builtin_view).collect();
        roles.extend(rows.into_iter().map(|r| {
            RoleView {
                key: r.key,
                name: r.name,
                description: r.description,
                builtin: false,
                permissions: r
                    .permissions
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }
        }));
        Ok(roles)
    }

    /// The roles as a list: built-in roles first, in their order, then custom roles by
    /// key. A tenant's roles are loaded whole to authorise every request, so they are
    /// paged in memory.
    pub async fn roles_page(&self, scope: &TenantScope, page: &PageRequest) -> TenancyResult<Page<RoleView>> {
        let roles = self.roles(scope).await?;
        let order = |role: &RoleView| match TenantRole::ALL.iter().position(|b| b.as_str() == role.key) {
            Some(rank) if role.builtin => format!("0:{rank:03}"),
            _ => format!("1:{}", role.key),
        };
        Ok(Page::from_sorted(roles, page, order))
    }

    pub async fn role_matrix(&self, scope: &TenantScope) -> TenancyResult<RoleMatrix> {
        let mut conn = scope.read(&self.db).await?;
        let version: i64 = on!(conn.conn(), c => sqlx::query_scalar("SELECT roles_version FROM tenants WHERE id = $1")
            .bind(scope.tenant()).fetch_one(c).await)?;
        drop(conn);
        Ok(RoleMatrix {
            version,
            permissions: CATALOG.iter().filter(|p| p.scope != Scope::Platform).copied().collect(),
            roles: self.roles(scope).await?,
        })
    }

    /// Claims the next matrix version, refusing when `seen` is stale. Conditional on the
    /// version, so of two concurrent edits exactly one wins.
    async fn next_version(&self, tx: &mut Tx, tenant: TenantId, seen: Option<i64>) -> TenancyResult<()> {
        let updated = match seen {
            Some(seen) => exec!(tx.conn(), c => sqlx::query(
                "UPDATE tenants SET roles_version = roles_version + 1 WHERE id = $1 AND roles_version = $2"
            ).bind(tenant).bind(seen).execute(c).await)?,
            None => {
                exec!(tx.conn(), c => sqlx::query("UPDATE tenants SET roles_version = roles_version + 1 WHERE id = $1")
                .bind(tenant).execute(c).await)?
            }
        };
        if updated == 0 {
            return Err(TenancyError::Conflict(
                "the roles changed since you read them; reload and try again",
            ));
        }
        Ok(())
    }

    /// Users holding `role` re-check their tokens' permissions.
    async fn bump_holders(&self, tx: &mut Tx, tenant: TenantId, role: &str) -> TenancyResult<()> {
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE users SET authz_version = authz_version + 1
             WHERE id IN (SELECT user_id FROM memberships WHERE tenant_id = $1 AND (',' || roles || ',') LIKE $2)"
        ).bind(tenant).bind(format!("%,{role},%")).execute(c).await)?;
        Ok(())
    }

    pub async fn create_role(&self, ctx: &TenantContext, input: RoleInput) -> TenancyResult<RoleView> {
        let scope = &ctx.scope;
        let mut errors = FieldErrors::new();
        let key = input.key.clone().unwrap_or_default();
        check_key(&key, &mut errors);
        let name = input.name.as_deref().map(str::trim).unwrap_or_default().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            errors.add("name", "invalid_value", "use 1 to 100 characters");
        }
        let description = input
            .description
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        if description.chars().count() > 500 {
            errors.add("description", "too_long", "at most 500 characters");
        }
        let permissions = input.permissions.clone().unwrap_or_default();
        check_permissions("/permissions", &permissions, &ctx.permissions, &mut errors)?;
        errors.finish()?;
        let now = Timestamp::now();
        let mut tx = scope.begin(&self.db).await?;
        let inserted = exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO tenant_roles (tenant_id, key, name, description, permissions, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)"
        ).bind(scope.tenant()).bind(&key).bind(&name).bind(&description).bind(permissions.join(",")).bind(now).execute(c).await)
        .map_err(StoreError::from);
        taken_if_unique(inserted, "key", "this tenant has a role with this key")?;
        self.next_version(&mut tx, scope.tenant(), None).await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::ROLE_CREATE)
                .tenant(scope.tenant())
                .target("role", &key)
                .changes(serde_json::json!({"permissions": permissions})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::RoleCreated {
                role: key.clone(),
                permissions: permissions.clone(),
            })
            .tenant(scope.tenant())
            .subject("role", &key),
        )
        .await?;
        tx.commit().await?;
        Ok(RoleView {
            key,
            name,
            description,
            builtin: false,
            permissions,
        })
    }

    pub async fn update_role(&self, ctx: &TenantContext, key: &str, input: RoleInput) -> TenancyResult<RoleView> {
        let scope = &ctx.scope;
        if TenantRole::parse(key).is_some() {
            return Err(TenancyError::Forbidden(
                "built-in roles cannot be changed; create a custom role instead",
            ));
        }
        let mut errors = FieldErrors::new();
        if input.key.is_some() {
            errors.add("key", "immutable", "a role's key cannot change");
        }
        if let Some(permissions) = &input.permissions {
            check_permissions("/permissions", permissions, &ctx.permissions, &mut errors)?;
        }
        errors.finish()?;
        let current = self
            .roles(scope)
            .await?
            .into_iter()
            .find(|r| r.key == key)
            .ok_or(TenancyError::NotFound)?;
        // Changing a role that grants more than you hold would let you shape it.
        if !PermissionSet::from_keys(current.permissions.iter().map(String::as_str)).is_subset_of(&ctx.permissions) {
            return Err(TenancyError::Forbidden(
                "you cannot change a role that grants more than you hold",
            ));
        }
        let name = input
            .name
            .as_deref()
            .map_or(current.name.clone(), |n| n.trim().to_owned());
        let description = input
            .description
            .as_deref()
            .map_or(current.description.clone(), |d| d.trim().to_owned());
        let permissions = input.permissions.clone().unwrap_or_else(|| current.permissions.clone());
        let mut tx = scope.begin(&self.db).await?;
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE tenant_roles SET name = $1, description = $2, permissions = $3, updated_at = $4 WHERE tenant_id = $5 AND key = $6"
        ).bind(&name).bind(&description).bind(permissions.join(",")).bind(Timestamp::now()).bind(scope.tenant()).bind(key)
        .execute(c).await)?;
        self.next_version(&mut tx, scope.tenant(), None).await?;
        self.bump_holders(&mut tx, scope.tenant(), key).await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::ROLE_UPDATE)
                .tenant(scope.tenant())
                .target("role", key)
                .changes(serde_json::json!({"permissions": {"before": current.permissions, "after": permissions}})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::RoleUpdated {
                role: key.to_owned(),
                permissions: permissions.clone(),
            })
            .tenant(scope.tenant())
            .subject("role", key),
        )
        .await?;
        tx.commit().await?;
        Ok(RoleView {
            key: key.to_owned(),
            name,
            description,
            builtin: false,
            permissions,
        })
    }

    pub async fn delete_role(&self, ctx: &TenantContext, key: &str) -> TenancyResult<()> {
        let scope = &ctx.scope;
        if TenantRole::parse(key).is_some() {
            return Err(TenancyError::Forbidden("built-in roles cannot be deleted"));
        }
        let mut tx = scope.begin(&self.db).await?;
        let holders: i64 = on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND (',' || roles || ',') LIKE $2"
        ).bind(scope.tenant()).bind(format!("%,{key},%")).fetch_one(c).await)?;
        if holders > 0 {
            return Err(TenancyError::Conflict(
                "members still hold this role; change their roles first",
            ));
        }
        let removed = exec!(tx.conn(), c => sqlx::query("DELETE FROM tenant_roles WHERE tenant_id = $1 AND key = $2")
            .bind(scope.tenant()).bind(key).execute(c).await)?;
        if removed == 0 {
            return Err(TenancyError::NotFound);
        }
        self.next_version(&mut tx, scope.tenant(), None).await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::ROLE_DELETE)
                .tenant(scope.tenant())
                .target("role", key),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::RoleDeleted { role: key.to_owned() })
                .tenant(scope.tenant())
                .subject("role", key),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the permission sets of custom roles in one request, if nobody changed the
    /// roles since `update.version`.
    pub async fn update_matrix(&self, ctx: &TenantContext, update: MatrixUpdate) -> TenancyResult<RoleMatrix> {
        let scope = &ctx.scope;
        let mut errors = FieldErrors::new();
        for (key, permissions) in &update.roles {
            if TenantRole::parse(key).is_some() {
                errors.add(&format!("/roles/{key}"), "builtin", "built-in roles cannot be changed");
                continue;
            }
            check_permissions(&format!("/roles/{key}"), permissions, &ctx.permissions, &mut errors)?;
        }
        errors.finish()?;
        let current: BTreeMap<String, Vec<String>> = self
            .roles(scope)
            .await?
            .into_iter()
            .filter(|r| !r.builtin)
            .map(|r| (r.key, r.permissions))
            .collect();
        let mut tx = scope.begin(&self.db).await?;
        self.next_version(&mut tx, scope.tenant(), Some(update.version)).await?;
        let mut changes = serde_json::Map::new();
        for (key, permissions) in &update.roles {
            let before = current.get(key).ok_or_else(|| {
                TenancyError::Validation(FieldErrors::single(
                    &format!("/roles/{key}"),
                    "unknown_role",
                    "no custom role with this key",
                ))
            })?;
            if !PermissionSet::from_keys(before.iter().map(String::as_str)).is_subset_of(&ctx.permissions) {
                return Err(TenancyError::Forbidden(
                    "you cannot change a role that grants more than you hold",
                ));
            }
            exec!(tx.conn(), c => sqlx::query(
                "UPDATE tenant_roles SET permissions = $1, updated_at = $2 WHERE tenant_id = $3 AND key = $4"
            ).bind(permissions.join(",")).bind(Timestamp::now()).bind(scope.tenant()).bind(key).execute(c).await)?;
            self.bump_holders(&mut tx, scope.tenant(), key).await?;
            changes.insert(key.clone(), serde_json::json!({"before": before, "after": permissions}));
        }
        let changed_roles: Vec<String> = changes.keys().cloned().collect();
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::ROLE_MATRIX_UPDATE)
                .tenant(scope.tenant())
                .target("tenant", scope.tenant())
                .changes(serde_json::Value::Object(changes)),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::RoleMatrixUpdated { roles: changed_roles })
                .tenant(scope.tenant())
                .subject("tenant", scope.tenant()),
        )
        .await?;
        tx.commit().await?;
        self.role_matrix(scope).await
    }

    /// Whether `subject` may do `permission` in `tenant`, and why: the check behind
    /// `POST /api/v1/authz/check`. The same rule as the request guard; never an error for
    /// a "no": the reason says which.
    pub async fn check(
        &self,
        subject: UserId,
        tenant: &str,
        permission: &str,
        facts: &RequestFacts<'_>,
    ) -> TenancyResult<Decision> {
        let (standing, verdict) = self
            .evaluate(subject, tenant, Intent::Permission(permission), facts)
            .await?;
        let roles = || {
            standing
                .as_ref()
                .and_then(|s| s.roles.clone())
                .unwrap_or_default()
                .join(", ")
        };
        let (allowed, reason) = match verdict {
            Ok(grant) => {
                let role = grant.granted_by.unwrap_or_default();
                match grant.permitted_by {
                    Some(policy) => (
                        true,
                        format!("granted by the role {role}; permitted by policy {policy}"),
                    ),
                    None => (true, format!("granted by the role {role}")),
                }
            }
            // An unknown tenant, one the subject is not an active member of and one
            // pending deletion answer alike: the check API must not tell callers which
            // tenants exist.
            Err(Refusal::NotMember) => (false, NOT_A_MEMBER.to_owned()),
            Err(Refusal::UnknownPermission) => (false, format!("{permission} is not a permission of the catalog")),
            Err(Refusal::Suspended) => (false, "the tenant is suspended".to_owned()),
            Err(Refusal::Expired) => (false, "the tenant is expired".to_owned()),
            Err(Refusal::SecondFactorRequired) => (
                false,
                "the tenant requires two-step verification and the subject did not use it".to_owned(),
            ),
            Err(Refusal::NotGranted) => (
                false,
                format!("no role of the subject ({}) grants {permission}", roles()),
            ),
            Err(Refusal::Policy { policy, why }) => {
                let role = roles();
                (
                    false,
                    format!("a role of the subject ({role}) grants it, but policy {policy} denies: {why}"),
                )
            }
        };
        Ok(Decision { allowed, reason })
    }
}
