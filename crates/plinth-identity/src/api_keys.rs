//! Personal API keys: scoped to one tenant and a subset of their owner's permissions
//! there, stored hashed, shown once, with an optional expiry and a last-used time.
//! They authenticate tenant routes only, and only while their owner still holds the
//! permissions (the effective set is the intersection).

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use plinth_audit::AuditEntry;
use plinth_core::{FieldErrors, Page, PageRequest, SessionId, TenantId, Timestamp, UserId};
use plinth_store::{exec, on};
use serde::Serialize;
use time::Duration;

use crate::auth::actor_of;
use crate::error::{IdentityError, IdentityResult};
use crate::secret::{SecretToken, hash_token};
use crate::service::{Identity, Principal};
use crate::sessions::ClientInfo;

pub const KEY_PREFIX: &str = "plk_";
/// `last_used_at` is written at most this often per key.
const LAST_USED_RESOLUTION: StdDuration = StdDuration::from_secs(60);

/// What a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyGrant {
    pub id: uuid::Uuid,
    pub tenant: TenantId,
    pub permissions: Vec<String>,
    /// Whether the session that made the key had signed in with a second factor; the
    /// key carries exactly that into decisions, never more.
    pub mfa_used: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct ApiKeyView {
    pub id: uuid::Uuid,
    pub name: String,
    /// The key's visible beginning, `plk_<prefix>_…`, to tell keys apart.
    pub prefix: String,
    pub tenant_id: TenantId,
    #[sqlx(skip)]
    pub permissions: Vec<String>,
    #[serde(skip)]
    #[schema(ignore)]
    pub permissions_text: String,
    /// Whether the key counts as signed in with a second factor: it does when the session
    /// that made it did.
    pub mfa_used: bool,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    /// The key itself. Shown this once; only its hash is kept.
    pub key: String,
    #[serde(flatten)]
    pub api_key: ApiKeyView,
}

/// A key to create; the tenant and permissions are already authorised by the caller.
pub struct NewApiKey {
    pub name: String,
    pub tenant: TenantId,
    pub permissions: Vec<String>,
    pub expires_in_days: Option<i64>,
}

const COLUMNS: &str =
    "id, name, prefix, tenant_id, permissions AS permissions_text, mfa_used, created_at, expires_at, last_used_at";

fn random_prefix() -> IdentityResult<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| IdentityError::Crypto(e.to_string()))?;
    Ok(bytes.iter().map(|b| ALPHABET[usize::from(b % 32)] as char).collect())
}

impl Identity {
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        new: NewApiKey,
        client: &ClientInfo,
    ) -> IdentityResult<CreatedApiKey> {
        let mut errors = FieldErrors::new();
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            errors.add("name", "invalid_value", "use 1 to 100 characters");
        }
        if new.permissions.is_empty() || new.permissions.len() > 64 {
            errors.add("permissions", "invalid_value", "give 1 to 64 permissions");
        }
        if new.expires_in_days.is_some_and(|d| !(1..=365).contains(&d)) {
            errors.add("expires_in_days", "invalid_value", "1 to 365 days");
        }
        errors.finish()?;
        let id = uuid::Uuid::now_v7();
        let prefix = random_prefix()?;
        let secret = SecretToken::generate()?;
        let key = format!("{KEY_PREFIX}{prefix}_{}", secret.expose());
        let now = Timestamp::now();
        let expires_at = new.expires_in_days.map(|d| now + Duration::days(d));
        let permissions = new.permissions.join(",");
        let mfa_used = principal.signed_in_with_mfa();
        let mut tx = self.inner.db.begin().await?;
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO api_keys (id, user_id, tenant_id, name, prefix, key_hash, permissions, mfa_used, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ).bind(id).bind(principal.user).bind(new.tenant).bind(name).bind(&prefix).bind(hash_token(&key))
        .bind(&permissions).bind(mfa_used).bind(now).bind(expires_at).execute(c).await)?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(plinth_audit::action::API_KEY_CREATE)
                .tenant(new.tenant)
                .target("api_key", id)
                .changes(serde_json::json!({
                    "name": name, "permissions": new.permissions, "expires_at": expires_at, "mfa_used": mfa_used,
                })),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::ApiKeyCreated {
                api_key_id: id,
                user_id: principal.user.0,
                permissions: new.permissions.clone(),
            })
            .tenant(new.tenant)
            .subject("api_key", id),
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedApiKey {
            key,
            api_key: ApiKeyView {
                id,
                name: name.to_owned(),
                prefix,
                tenant_id: new.tenant,
                permissions: new.permissions,
                permissions_text: permissions,
                mfa_used,
                created_at: now,
                expires_at,
                last_used_at: None,
            },
        })
    }

    /// The caller's live keys, newest first (ids are UUIDv7).
    pub async fn api_keys(&self, principal: &Principal, page: &PageRequest) -> IdentityResult<Page<ApiKeyView>> {
        let before = page.before_id().map_err(IdentityError::Validation)?;
        let mut conn = self.inner.db.read().await?;
        let mut keys: Vec<ApiKeyView> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL AND id < $2
             ORDER BY id DESC LIMIT $3"
        ))).bind(principal.user).bind(before).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
        for key in &mut keys {
            key.permissions = key
                .permissions_text
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(Page::from_overfetch(keys, page.limit, |k| k.id.to_string()))
    }

    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
        client: &ClientInfo,
    ) -> IdentityResult<()> {
        let mut tx = self.inner.db.begin().await?;
        let tenant: Option<TenantId> = on!(tx.conn(), c => sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL RETURNING tenant_id"
        ).bind(Timestamp::now()).bind(id).bind(principal.user).fetch_optional(c).await)?;
        let tenant = tenant.ok_or(IdentityError::NotFound)?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(plinth_audit::action::API_KEY_REVOKE)
                .tenant(tenant)
                .target("api_key", id),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::ApiKeyRevoked {
                api_key_id: id,
                user_id: principal.user.0,
            })
            .tenant(tenant)
            .subject("api_key", id),
        )
        .await?;
        tx.commit().await?;
        self.inner.key_cache.invalidate(&last_used_cache_key(id));
        Ok(())
    }

    /// Authenticates an API key; its principal carries the grant.
    pub(crate) async fn authenticate_api_key(&self, key: &str) -> IdentityResult<Principal> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: uuid::Uuid,
            user_id: UserId,
            tenant_id: TenantId,
            permissions: String,
            mfa_used: bool,
            expires_at: Option<Timestamp>,
            last_used_at: Option<Timestamp>,
            authz_version: i64,
        }
        let unauthenticated = IdentityError::Unauthenticated("the API key is invalid, expired or revoked");
        if key.len() > 128 {
            return Err(unauthenticated);
        }
        let now = Timestamp::now();
        let mut conn = self.inner.db.read().await?;
        let row: Option<Row> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT k.id, k.user_id, k.tenant_id, k.permissions, k.mfa_used, k.expires_at, k.last_used_at, u.authz_version
             FROM api_keys k JOIN users u ON u.id = k.user_id
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.status <> 'disabled'"
        ).bind(hash_token(key)).fetch_optional(c).await)?;
        drop(conn);
        let row = row
            .filter(|r| r.expires_at.is_none_or(|e| e > now))
            .ok_or(unauthenticated)?;
        self.touch_api_key(row.id, row.last_used_at, now).await;
        Ok(Principal {
            user: row.user_id,
            // Keys have no session; the key id stands in and matches no session row.
            session: SessionId(row.id),
            amr: if row.mfa_used {
                vec!["api_key".into(), "mfa".into()]
            } else {
                vec!["api_key".into()]
            },
            tenant: Some(row.tenant_id),
            portal: None,
            email_verified: true,
            platform_admin: false,
            mfa_enrolled: false,
            authz_version: row.authz_version,
            api_key: Some(Arc::new(ApiKeyGrant {
                id: row.id,
                tenant: row.tenant_id,
                mfa_used: row.mfa_used,
                permissions: row
                    .permissions
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })),
        })
    }

    /// Records use, at most once a minute per key (a write per request would cost more
    /// than the request).
    async fn touch_api_key(&self, id: uuid::Uuid, last_used: Option<Timestamp>, now: Timestamp) {
        let recent_in_db = last_used.is_some_and(|t| now - t < Duration::seconds(60));
        let cache_key = last_used_cache_key(id);
        let recent_here = self
            .inner
            .key_cache
            .get(&cache_key)
            .is_some_and(|at: Instant| at.elapsed() < LAST_USED_RESOLUTION);
        if recent_in_db || recent_here {
            return;
        }
        self.inner.key_cache.insert(cache_key, Instant::now());
        if let Ok(mut tx) = self.inner.db.begin().await {
            let updated = exec!(tx.conn(), c => sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now).bind(id).execute(c).await);
            if updated.is_ok() {
                let _ = tx.commit().await;
            }
        }
    }
}

fn last_used_cache_key(id: uuid::Uuid) -> String {
    id.simple().to_string()
}
