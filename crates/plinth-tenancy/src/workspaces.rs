//! Workspaces: team spaces inside a tenant. What belongs to one is invisible from the
//! others; every query here is bounded by the tenant scope.

use plinth_audit::AuditEntry;
use plinth_core::{FieldErrors, Page, PageRequest, Timestamp};
use plinth_events::NewEvent;
use plinth_events::catalog::{WorkspaceCreated, WorkspaceDeleted};
use plinth_store::{StoreError, Tx, exec, on};
use serde::Serialize;

use crate::error::{TenancyError, TenancyResult, taken_if_unique};
use crate::scope::TenantScope;
use crate::service::Tenancy;
use crate::slug::Slug;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Workspace {
    pub id: uuid::Uuid,
    pub slug: String,
    pub name: String,
    pub is_default: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "id, slug, name, is_default, created_at, updated_at";

fn check_name(name: &str, errors: &mut FieldErrors) {
    let len = name.trim().chars().count();
    if len == 0 || len > 100 {
        errors.add("name", "invalid_value", "use 1 to 100 characters");
    }
}

pub(crate) async fn insert_workspace(
    tx: &mut Tx,
    scope: &TenantScope,
    slug: &Slug,
    name: &str,
    is_default: bool,
) -> TenancyResult<Workspace> {
    let id = uuid::Uuid::now_v7();
    let now = Timestamp::now();
    let inserted = exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO workspaces (id, tenant_id, slug, name, is_default, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)"
    ).bind(id).bind(scope.tenant()).bind(slug.as_str()).bind(name.trim()).bind(is_default).bind(now).execute(c).await)
    .map_err(StoreError::from);
    taken_if_unique(inserted, "slug", "this tenant already has a workspace with this slug")?;
    Ok(Workspace {
        id,
        slug: slug.to_string(),
        name: name.trim().to_owned(),
        is_default,
        created_at: now,
        updated_at: now,
    })
}

impl Tenancy {
    /// The tenant's workspaces, by slug.
    pub async fn list_workspaces(&self, scope: &TenantScope, page: &PageRequest) -> TenancyResult<Page<Workspace>> {
        let mut conn = scope.read(&self.db).await?;
        let rows: Vec<Workspace> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM workspaces WHERE tenant_id = $1 AND slug > $2
             ORDER BY slug LIMIT $3"
        ))).bind(scope.tenant()).bind(page.after_key()).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
        Ok(Page::from_overfetch(rows, page.limit, |w| w.slug.clone()))
    }

    /// A workspace by id or slug, within the scope's tenant only.
    pub async fn get_workspace(&self, scope: &TenantScope, reference: &str) -> TenancyResult<Workspace> {
        let mut conn = scope.read(&self.db).await?;
        let found: Option<Workspace> = match reference.parse::<uuid::Uuid>() {
            Ok(id) => on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM workspaces WHERE tenant_id = $1 AND id = $2"
            ))).bind(scope.tenant()).bind(id).fetch_optional(c).await)?,
            Err(_) => on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM workspaces WHERE tenant_id = $1 AND slug = $2"
            ))).bind(scope.tenant()).bind(reference).fetch_optional(c).await)?,
        };
        found.ok_or(TenancyError::NotFound)
    }

    pub async fn create_workspace(&self, scope: &TenantScope, slug: &str, name: &str) -> TenancyResult<Workspace> {
        let mut errors = FieldErrors::new();
        let slug = match Slug::parse("slug", slug, false) {
            Ok(s) => Some(s),
            Err(e) => {
                errors = e;
                None
            }
        };
        check_name(name, &mut errors);
        errors.finish()?;
        let Some(slug) = slug else {
            return Err(TenancyError::NotFound);
        };
        let mut tx = scope.begin(&self.db).await?;
        let workspace = insert_workspace(&mut tx, scope, &slug, name, false).await?;
        if let Some(user) = scope.actor().user_id() {
            exec!(tx.conn(), c => sqlx::query(
                "INSERT INTO workspace_members (tenant_id, workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, 'admin', $4)"
            ).bind(scope.tenant()).bind(workspace.id).bind(user).bind(Timestamp::now()).execute(c).await)?;
        }
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::WORKSPACE_CREATE)
                .tenant(scope.tenant())
                .target("workspace", workspace.id)
                .changes(serde_json::json!({"slug": workspace.slug, "name": workspace.name})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&WorkspaceCreated {
                workspace_id: workspace.id,
                slug: workspace.slug.clone(),
            })
            .tenant(scope.tenant())
            .subject("workspace", workspace.id),
        )
        .await?;
        tx.commit().await?;
        Ok(workspace)
    }

    pub async fn rename_workspace(&self, scope: &TenantScope, reference: &str, name: &str) -> TenancyResult<Workspace> {
        let mut errors = FieldErrors::new();
        check_name(name, &mut errors);
        errors.finish()?;
        let before = self.get_workspace(scope, reference).await?;
        let mut tx = scope.begin(&self.db).await?;
        exec!(tx.conn(), c => sqlx::query("UPDATE workspaces SET name = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
            .bind(name.trim()).bind(Timestamp::now()).bind(scope.tenant()).bind(before.id).execute(c).await)?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::WORKSPACE_UPDATE)
                .tenant(scope.tenant())
                .target("workspace", before.id)
                .changes(serde_json::json!({"name": {"before": before.name, "after": name.trim()}})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::WorkspaceUpdated {
                workspace_id: before.id,
                name: name.trim().to_owned(),
            })
            .tenant(scope.tenant())
            .subject("workspace", before.id),
        )
        .await?;
        tx.commit().await?;
        self.get_workspace(scope, &before.id.to_string()).await
    }

    pub async fn delete_workspace(&self, scope: &TenantScope, reference: &str) -> TenancyResult<()> {
        let workspace = self.get_workspace(scope, reference).await?;
        if workspace.is_default {
            return Err(TenancyError::Conflict("the default workspace cannot be deleted"));
        }
        let mut tx = scope.begin(&self.db).await?;
        exec!(tx.conn(), c => sqlx::query("DELETE FROM workspaces WHERE tenant_id = $1 AND id = $2")
            .bind(scope.tenant()).bind(workspace.id).execute(c).await)?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::WORKSPACE_DELETE)
                .tenant(scope.tenant())
                .target("workspace", workspace.id)
                .changes(serde_json::json!({"slug": workspace.slug})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&WorkspaceDeleted {
                workspace_id: workspace.id,
            })
            .tenant(scope.tenant())
            .subject("workspace", workspace.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
