//! Members of a tenant: listing (server-side sorted, filtered, cursor-paginated), role
//! changes without escalation, suspension and removal.

use plinth_access::{PermissionSet, TenantRole};
use plinth_audit::AuditEntry;
use plinth_core::{FieldErrors, Page, PageRequest, Timestamp, UserId};
use plinth_events::NewEvent;
use plinth_events::catalog::{MemberJoined, MemberRemoved, MemberUpdated};
use plinth_store::{exec, on};
use serde::{Deserialize, Serialize};

use crate::authorize::{TenantContext, role_list};
use crate::error::{TenancyError, TenancyResult};
use crate::scope::TenantScope;
use crate::service::Tenancy;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct MemberView {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    #[sqlx(skip)]
    pub roles: Vec<String>,
    #[serde(skip)]
    #[schema(ignore)]
    pub roles_text: String,
    pub status: String,
    pub joined_at: Timestamp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum MemberSort {
    #[default]
    #[serde(rename = "email")]
    EmailAsc,
    #[serde(rename = "-email")]
    EmailDesc,
    #[serde(rename = "joined_at")]
    JoinedAsc,
    #[serde(rename = "-joined_at")]
    JoinedDesc,
}

#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    /// Part of the e-mail address or name.
    pub query: Option<String>,
    pub role: Option<String>,
    pub status: Option<String>,
    pub sort: MemberSort,
}

impl Tenancy {
    pub async fn list_members(
        &self,
        scope: &TenantScope,
        filter: &MemberFilter,
        page: &PageRequest,
    ) -> TenancyResult<Page<MemberView>> {
        let (order, op, key_column) = match filter.sort {
            MemberSort::EmailAsc => ("u.email_normalized ASC, m.user_id ASC", ">", "u.email_normalized"),
            MemberSort::EmailDesc => ("u.email_normalized DESC, m.user_id DESC", "<", "u.email_normalized"),
            MemberSort::JoinedAsc => ("m.created_at ASC, m.user_id ASC", ">", "m.created_at"),
            MemberSort::JoinedDesc => ("m.created_at DESC, m.user_id DESC", "<", "m.created_at"),
        };
        let joined_sort = matches!(filter.sort, MemberSort::JoinedAsc | MemberSort::JoinedDesc);
        // The cursor is the sort key and the user id of the last row of the previous page.
        let after = page.after.as_deref().and_then(|c| {
            let (key, id) = c.rsplit_once('|')?;
            Some((key.to_owned(), id.parse::<UserId>().ok()?))
        });
        if page.after.is_some() && after.is_none() {
            return Err(TenancyError::Validation(FieldErrors::single(
                "cursor",
                "invalid_value",
                "not a cursor from this list",
            )));
        }
        let query = filter
            .query
            .as_deref()
            .map(|q| format!("%{}%", q.to_lowercase().replace(['%', '_'], "")));
        let role = filter.role.as_deref().map(|r| format!("%,{r},%"));
        let sql = format!(
            "SELECT m.user_id, u.email, u.display_name, m.roles AS roles_text, m.status, m.created_at AS joined_at
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.tenant_id = $1
               AND ($2 IS NULL OR lower(u.email) LIKE $2 OR lower(u.display_name) LIKE $2)
               AND ($3 IS NULL OR (',' || m.roles || ',') LIKE $3)
               AND ($4 IS NULL OR m.status = $4)
               AND ($5 IS NULL OR ({key_column} {op} $6 OR ({key_column} = $6 AND m.user_id {op} $7)))
             ORDER BY {order} LIMIT $8"
        );
        let limit = i64::from(page.limit) + 1;
        let mut conn = scope.read(&self.db).await?;
        let after_flag = after.as_ref().map(|_| 1i64);
        let after_id = after.as_ref().map(|(_, id)| *id);
        let mut rows: Vec<MemberView> = if joined_sort {
            let after_key = after
                .as_ref()
                .and_then(|(k, _)| k.parse::<i64>().ok())
                .and_then(Timestamp::from_unix_micros);
            on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(scope.tenant()).bind(&query).bind(&role).bind(&filter.status)
                .bind(after_flag).bind(after_key).bind(after_id).bind(limit)
                .fetch_all(c).await)?
        } else {
            let after_key = after.as_ref().map(|(k, _)| k.clone());
            on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(scope.tenant()).bind(&query).bind(&role).bind(&filter.status)
                .bind(after_flag).bind(after_key).bind(after_id).bind(limit)
                .fetch_all(c).await)?
        };
        for row in &mut rows {
            row.roles = role_list(&row.roles_text);
        }
        Ok(Page::from_overfetch(rows, page.limit, |m| {
            let key = if joined_sort {
                m.joined_at.unix_micros().to_string()
            } else {
                m.email.to_lowercase()
            };
            format!("{key}|{}", m.user_id)
        }))
    }

    /// Changes a member's roles or status. Nobody grants what they do not hold, and the
    /// last active owner stays an owner.
    pub async fn update_member(
        &self,
        ctx: &TenantContext,
        member: UserId,
        roles: Option<Vec<String>>,
        status: Option<String>,
    ) -> TenancyResult<MemberView> {
        let scope = &ctx.scope;
        let book = self.role_book(scope).await?;
        let mut errors = FieldErrors::new();
        if let Some(roles) = &roles {
            if roles.is_empty() {
                errors.add("roles", "required", "give at least one role");
            }
            for (i, role) in roles.iter().enumerate() {
                if !book.exists(role) {
                    errors.add(&format!("/roles/{i}"), "invalid_value", "not a role of this tenant");
                }
            }
            if !book.permissions(roles).is_subset_of(&ctx.permissions) {
                return Err(TenancyError::Forbidden(
                    "you cannot grant a role with permissions you do not hold",
                ));
            }
        }
        if status.as_deref().is_some_and(|s| !matches!(s, "active" | "suspended")) {
            errors.add("status", "invalid_value", "active or suspended");
        }
        errors.finish()?;
        let mut tx = scope.begin(&self.db).await?;
        let current: Option<(String, String)> = on!(tx.conn(), c => sqlx::query_as(
            "SELECT roles, status FROM memberships WHERE tenant_id = $1 AND user_id = $2"
        ).bind(scope.tenant()).bind(member).fetch_optional(c).await)?;
        let (current_roles, current_status) = current.ok_or(TenancyError::NotFound)?;
        // Changing someone who holds more than you (an owner, for an admin) is escalation too.
        if !book
            .permissions(&role_list(&current_roles))
            .is_subset_of(&ctx.permissions)
        {
            return Err(TenancyError::Forbidden(
                "you cannot change a member whose role exceeds yours",
            ));
        }
        let new_roles = roles.clone().map_or(current_roles.clone(), |r| r.join(","));
        let new_status = status.clone().unwrap_or(current_status.clone());
        let loses_owner = role_list(&current_roles).iter().any(|r| r == "owner")
            && current_status == "active"
            && (!role_list(&new_roles).iter().any(|r| r == "owner") || new_status != "active");
        if loses_owner && self.active_owners(&mut tx, scope).await? <= 1 {
            return Err(TenancyError::Conflict("a tenant keeps at least one active owner"));
        }
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE memberships SET roles = $1, status = $2, updated_at = $3 WHERE tenant_id = $4 AND user_id = $5"
        ).bind(&new_roles).bind(&new_status).bind(Timestamp::now()).bind(scope.tenant()).bind(member).execute(c).await)?;
        self.bump_authz_version(&mut tx, member).await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::MEMBER_UPDATE)
                .tenant(scope.tenant())
                .target("user", member)
                .changes(serde_json::json!({
                    "roles": {"before": role_list(&current_roles), "after": role_list(&new_roles)},
                    "status": {"before": current_status, "after": new_status},
                })),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&MemberUpdated {
                user_id: member.0,
                roles: role_list(&new_roles),
                status: new_status.clone(),
            })
            .tenant(scope.tenant())
            .subject("user", member),
        )
        .await?;
        let view = self.member_in(&mut tx, scope, member).await?;
        tx.commit().await?;
        Ok(view)
    }

    pub async fn remove_member(&self, ctx: &TenantContext, member: UserId) -> TenancyResult<()> {
        let scope = &ctx.scope;
        let book = self.role_book(scope).await?;
        let mut tx = scope.begin(&self.db).await?;
        let current: Option<(String, String)> = on!(tx.conn(), c => sqlx::query_as(
            "SELECT roles, status FROM memberships WHERE tenant_id = $1 AND user_id = $2"
        ).bind(scope.tenant()).bind(member).fetch_optional(c).await)?;
        let (roles, status) = current.ok_or(TenancyError::NotFound)?;
        if !book.permissions(&role_list(&roles)).is_subset_of(&ctx.permissions) {
            return Err(TenancyError::Forbidden(
                "you cannot remove a member whose role exceeds yours",
            ));
        }
        if role_list(&roles).iter().any(|r| r == "owner")
            && status == "active"
            && self.active_owners(&mut tx, scope).await? <= 1
        {
            return Err(TenancyError::Conflict("a tenant keeps at least one active owner"));
        }
        exec!(tx.conn(), c => sqlx::query("DELETE FROM workspace_members WHERE tenant_id = $1 AND user_id = $2")
            .bind(scope.tenant()).bind(member).execute(c).await)?;
        exec!(tx.conn(), c => sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
            .bind(scope.tenant()).bind(member).execute(c).await)?;
        self.bump_authz_version(&mut tx, member).await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::MEMBER_REMOVE)
                .tenant(scope.tenant())
                .target("user", member)
                .changes(serde_json::json!({"roles": role_list(&roles)})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&MemberRemoved { user_id: member.0 })
                .tenant(scope.tenant())
                .subject("user", member),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn active_owners(&self, tx: &mut plinth_store::Tx, scope: &TenantScope) -> TenancyResult<i64> {
        Ok(on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND status = 'active' AND (',' || roles || ',') LIKE '%,owner,%'"
        ).bind(scope.tenant()).fetch_one(c).await)?)
    }

    /// Tokens carry the user's permissions version; a change makes older ones re-check.
    pub(crate) async fn bump_authz_version(&self, tx: &mut plinth_store::Tx, user: UserId) -> TenancyResult<()> {
        exec!(tx.conn(), c => sqlx::query("UPDATE users SET authz_version = authz_version + 1 WHERE id = $1")
            .bind(user).execute(c).await)?;
        Ok(())
    }

    async fn member_in(
        &self,
        tx: &mut plinth_store::Tx,
        scope: &TenantScope,
        member: UserId,
    ) -> TenancyResult<MemberView> {
        let mut view: MemberView = on!(tx.conn(), c => sqlx::query_as(
            "SELECT m.user_id, u.email, u.display_name, m.roles AS roles_text, m.status, m.created_at AS joined_at
             FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 AND m.user_id = $2"
        ).bind(scope.tenant()).bind(member).fetch_optional(c).await)?
        .ok_or(TenancyError::NotFound)?;
        view.roles = role_list(&view.roles_text);
        Ok(view)
    }
}

impl Tenancy {
    /// Adds an existing account to a tenant directly (tooling: the demo). People join
    /// through invitations otherwise. The same rules as an invitation: the caller may
    /// invite, and grants no permission they lack.
    pub async fn add_member(&self, ctx: &TenantContext, user: UserId, roles: &[TenantRole]) -> TenancyResult<()> {
        if roles.is_empty() {
            return Err(TenancyError::Validation(FieldErrors::single(
                "roles",
                "required",
                "give at least one role",
            )));
        }
        let granted = roles
            .iter()
            .fold(PermissionSet::empty(), |set, role| set.union(role.permissions()));
        if !ctx.permissions.contains("members:invite") || !granted.is_subset_of(&ctx.permissions) {
            return Err(TenancyError::Forbidden("your role in this tenant does not allow this"));
        }
        let (tenant, actor) = (ctx.scope.tenant(), ctx.scope.actor());
        let roles: Vec<&str> = roles.iter().map(TenantRole::as_str).collect();
        let now = Timestamp::now();
        let mut tx = ctx.scope.begin(&self.db).await?;
        let added = exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, roles, status, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $4)
             ON CONFLICT (tenant_id, user_id) DO NOTHING"
        ).bind(tenant).bind(user).bind(roles.join(",")).bind(now).execute(c).await)?;
        if added == 0 {
            return Err(TenancyError::Conflict("already a member"));
        }
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO workspace_members (tenant_id, workspace_id, user_id, role, created_at)
             SELECT tenant_id, id, $2, 'member', $3 FROM workspaces WHERE tenant_id = $1 AND is_default
             ON CONFLICT (workspace_id, user_id) DO NOTHING"
        ).bind(tenant).bind(user).bind(now).execute(c).await)?;
        self.bump_authz_version(&mut tx, user).await?;
        plinth_audit::append(
            &mut tx,
            actor,
            AuditEntry::new(plinth_audit::action::MEMBER_ADD)
                .tenant(tenant)
                .target("user", user)
                .changes(serde_json::json!({"roles": roles})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            actor,
            NewEvent::of(&MemberJoined {
                user_id: user.0,
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            })
            .tenant(tenant)
            .subject("user", user),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
