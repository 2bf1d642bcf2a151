//! Feature flags at platform, tenant and portal level, resolved most specific first.

use std::collections::BTreeMap;

use plinth_audit::AuditEntry;
use plinth_core::{Actor, FieldErrors, Page, PageRequest, TenantId, Timestamp, UserId};
use plinth_store::{exec, on};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{TenancyError, TenancyResult};
use crate::scope::TenantScope;
use crate::service::Tenancy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagLevel {
    Platform,
    Tenant,
    Portal,
}

impl FlagLevel {
    fn as_str(&self) -> &'static str {
        match self {
            FlagLevel::Platform => "platform",
            FlagLevel::Tenant => "tenant",
            FlagLevel::Portal => "portal",
        }
    }
}

/// What a flag's value may be, for the OpenAPI document: a switch or a variant's name.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
pub enum FlagValue {
    Switch(bool),
    Variant(String),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Flag {
    pub key: String,
    pub level: FlagLevel,
    /// `true`/`false`, or a variant name.
    #[schema(value_type = FlagValue)]
    pub value: Value,
    pub description: Option<String>,
    pub updated_at: Timestamp,
}

/// A flag's new value.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagInput {
    /// `true`/`false`, or a variant name.
    #[schema(value_type = FlagValue)]
    pub value: Value,
    pub description: Option<String>,
}

fn check(key: &str, input: &FlagInput) -> TenancyResult<()> {
    let mut errors = FieldErrors::new();
    if key.is_empty()
        || key.len() > 64
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
    {
        errors.add("key", "invalid_value", "1 to 64 characters of a-z, 0-9, _ . -");
    }
    match &input.value {
        Value::Bool(_) => {}
        Value::String(v) if !v.is_empty() && v.len() <= 50 => {}
        _ => errors.add(
            "value",
            "invalid_value",
            "true, false, or a variant name of 1 to 50 characters",
        ),
    }
    if input.description.as_ref().is_some_and(|d| d.chars().count() > 500) {
        errors.add("description", "too_long", "at most 500 characters");
    }
    errors.finish().map_err(TenancyError::Validation)
}

#[derive(sqlx::FromRow)]
struct Row {
    key: String,
    level: String,
    value: String,
    description: Option<String>,
    updated_at: Timestamp,
}

impl From<Row> for Flag {
    fn from(r: Row) -> Self {
        Flag {
            key: r.key,
            level: match r.level.as_str() {
                "platform" => FlagLevel::Platform,
                "tenant" => FlagLevel::Tenant,
                _ => FlagLevel::Portal,
            },
            value: serde_json::from_str(&r.value).unwrap_or(Value::Bool(false)),
            description: r.description,
            updated_at: r.updated_at,
        }
    }
}

/// Where a flag is set.
enum Owner {
    Platform,
    Tenant(TenantId),
    Portal(TenantId, uuid::Uuid),
}

impl Owner {
    fn level(&self) -> FlagLevel {
        match self {
            Owner::Platform => FlagLevel::Platform,
            Owner::Tenant(_) => FlagLevel::Tenant,
            Owner::Portal(..) => FlagLevel::Portal,
        }
    }

    fn key(&self) -> String {
        match self {
            Owner::Platform => "platform".into(),
            Owner::Tenant(t) => t.to_string(),
            Owner::Portal(_, p) => p.to_string(),
        }
    }

    fn tenant(&self) -> Option<TenantId> {
        match self {
            Owner::Platform => None,
            Owner::Tenant(t) | Owner::Portal(t, _) => Some(*t),
        }
    }

    fn portal(&self) -> Option<uuid::Uuid> {
        match self {
            Owner::Portal(_, p) => Some(*p),
            _ => None,
        }
    }
}

impl Tenancy {
    // `owner` comes from a scope the public callers hold (or is the platform).
    #[allow(clippy::disallowed_methods)]
    async fn set_flag(&self, actor: &Actor, owner: Owner, key: &str, input: FlagInput) -> TenancyResult<Flag> {
        check(key, &input)?;
        let value = input.value.to_string();
        let now = Timestamp::now();
        let mut tx = match owner.tenant() {
            Some(tenant) => self.db.begin_scoped(tenant).await?,
            None => self.db.begin().await?,
        };
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO feature_flags (id, level, tenant_id, portal_id, owner, key, value, description, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (owner, key) DO UPDATE SET value = $7, description = $8, updated_at = $9"
        ).bind(uuid::Uuid::now_v7()).bind(owner.level().as_str()).bind(owner.tenant()).bind(owner.portal())
        .bind(owner.key()).bind(key).bind(&value).bind(&input.description).bind(now).execute(c).await)?;
        let mut entry = AuditEntry::new(plinth_audit::action::FLAG_SET)
            .target("flag", key)
            .changes(serde_json::json!({"level": owner.level().as_str(), "value": input.value}));
        if let Some(tenant) = owner.tenant() {
            entry = entry.tenant(tenant);
        }
        plinth_audit::append(&mut tx, actor, entry).await?;
        let mut event = plinth_events::NewEvent::of(&plinth_events::catalog::FlagSet {
            key: key.to_owned(),
            level: owner.level().as_str().to_owned(),
            value: input.value.clone(),
        })
        .subject("flag", key);
        if let Some(tenant) = owner.tenant() {
            event = event.tenant(tenant);
        }
        plinth_events::enqueue(&mut tx, actor, event).await?;
        tx.commit().await?;
        Ok(Flag {
            key: key.to_owned(),
            level: owner.level(),
            value: input.value,
            description: input.description,
            updated_at: now,
        })
    }

    // `owner` comes from a scope the public callers hold (or is the platform).
    #[allow(clippy::disallowed_methods)]
    async fn delete_flag(&self, actor: &Actor, owner: Owner, key: &str) -> TenancyResult<()> {
        let mut tx = match owner.tenant() {
            Some(tenant) => self.db.begin_scoped(tenant).await?,
            None => self.db.begin().await?,
        };
        let removed = exec!(tx.conn(), c => sqlx::query("DELETE FROM feature_flags WHERE owner = $1 AND key = $2")
            .bind(owner.key()).bind(key).execute(c).await)?;
        if removed == 0 {
            return Err(TenancyError::NotFound);
        }
        let mut entry = AuditEntry::new(plinth_audit::action::FLAG_DELETE)
            .target("flag", key)
            .changes(serde_json::json!({"level": owner.level().as_str()}));
        if let Some(tenant) = owner.tenant() {
            entry = entry.tenant(tenant);
        }
        plinth_audit::append(&mut tx, actor, entry).await?;
        let mut event = plinth_events::NewEvent::of(&plinth_events::catalog::FlagDeleted {
            key: key.to_owned(),
            level: owner.level().as_str().to_owned(),
        })
        .subject("flag", key);
        if let Some(tenant) = owner.tenant() {
            event = event.tenant(tenant);
        }
        plinth_events::enqueue(&mut tx, actor, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_platform_flag(&self, actor: &Actor, key: &str, input: FlagInput) -> TenancyResult<Flag> {
        self.set_flag(actor, Owner::Platform, key, input).await
    }

    pub async fn delete_platform_flag(&self, actor: &Actor, key: &str) -> TenancyResult<()> {
        self.delete_flag(actor, Owner::Platform, key).await
    }

    pub async fn set_tenant_flag(&self, scope: &TenantScope, key: &str, input: FlagInput) -> TenancyResult<Flag> {
        self.set_flag(scope.actor(), Owner::Tenant(scope.tenant()), key, input)
            .await
    }

    pub async fn delete_tenant_flag(&self, scope: &TenantScope, key: &str) -> TenancyResult<()> {
        self.delete_flag(scope.actor(), Owner::Tenant(scope.tenant()), key)
            .await
    }

    pub async fn set_portal_flag(
        &self,
        scope: &TenantScope,
        portal: &str,
        key: &str,
        input: FlagInput,
    ) -> TenancyResult<Flag> {
        let portal = self.portal(scope, portal).await?;
        self.set_flag(scope.actor(), Owner::Portal(scope.tenant(), portal.id), key, input)
            .await
    }

    pub async fn delete_portal_flag(&self, scope: &TenantScope, portal: &str, key: &str) -> TenancyResult<()> {
        let portal = self.portal(scope, portal).await?;
        self.delete_flag(scope.actor(), Owner::Portal(scope.tenant(), portal.id), key)
            .await
    }

    /// The platform's flags, by key.
    pub async fn platform_flags(&self, page: &PageRequest) -> TenancyResult<Page<Flag>> {
        let mut conn = self.db.read().await?;
        let rows: Vec<Row> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT key, level, value, description, updated_at FROM feature_flags
             WHERE owner = 'platform' AND key > $1 ORDER BY key LIMIT $2"
        ).bind(page.after_key()).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
        Ok(Page::from_overfetch(
            rows.into_iter().map(Flag::from).collect(),
            page.limit,
            |f| f.key.clone(),
        ))
    }

    /// The flags for a signed-in caller: those of the tenant (and portal) their session
    /// selected, while tenant authorisation still lets them read it there — the same rule
    /// as every tenant route, so a member removed, a suspended tenant or an unmet MFA
    /// requirement falls back to the platform's flags.
    pub async fn flags_for(
        &self,
        user: UserId,
        actor: Actor,
        selected: Option<TenantId>,
        portal_slug: Option<&str>,
        mfa_used: bool,
    ) -> TenancyResult<BTreeMap<String, Flag>> {
        let ctx = match selected {
            Some(tenant) => match self
                .authorize(user, actor, &tenant.to_string(), "tenant:read", mfa_used)
                .await
            {
                Ok(ctx) => Some(ctx),
                Err(TenancyError::Store(e)) => return Err(TenancyError::Store(e)),
                Err(_) => None,
            },
            None => None,
        };
        let portal = ctx.as_ref().and(portal_slug);
        self.resolve_flags(ctx.as_ref().map(|c| &c.scope), portal).await
    }

    /// Every flag that applies to a tenant (and a portal of it), the most specific level
    /// winning: portal over tenant over platform; the platform's alone without a scope.
    pub async fn resolve_flags(
        &self,
        scope: Option<&TenantScope>,
        portal_slug: Option<&str>,
    ) -> TenancyResult<BTreeMap<String, Flag>> {
        let tenant = scope.map(TenantScope::tenant);
        let mut conn = match scope {
            Some(scope) => scope.read(&self.db).await?,
            None => plinth_store::ScopedRead::Pooled(self.db.read().await?),
        };
        let portal: Option<uuid::Uuid> = match (tenant, portal_slug) {
            (Some(t), Some(slug)) => on!(conn.conn(), c => sqlx::query_scalar(
                "SELECT id FROM portals WHERE tenant_id = $1 AND slug = $2"
            ).bind(t).bind(slug).fetch_optional(c).await)?,
            _ => None,
        };
        let rows: Vec<Row> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT key, level, value, description, updated_at FROM feature_flags
             WHERE owner = 'platform' OR owner = $1 OR owner = $2"
        ).bind(tenant.map(|t| t.to_string())).bind(portal.map(|p| p.to_string())).fetch_all(c).await)?;
        let rank = |level: FlagLevel| match level {
            FlagLevel::Platform => 0,
            FlagLevel::Tenant => 1,
            FlagLevel::Portal => 2,
        };
        let mut resolved: BTreeMap<String, Flag> = BTreeMap::new();
        for flag in rows.into_iter().map(Flag::from) {
            let replace = resolved
                .get(&flag.key)
                .is_none_or(|current| rank(flag.level) > rank(current.level));
            if replace {
                resolved.insert(flag.key.clone(), flag);
            }
        }
        Ok(resolved)
    }
}
