//! Sessions and their refresh tokens.
//!
//! A session is one sign-in on one device. Token sessions hold a chain of refresh
//! tokens (the "family"): each use rotates the token, and presenting a token that was
//! already rotated means it was copied, so the whole session is revoked.

use plinth_core::{Page, SessionId, TenantId, Timestamp, UserId};
use plinth_store::{Conn, Tx, exec, on};
use serde::Serialize;
use time::Duration;

use crate::error::IdentityResult;
use crate::secret::{SecretToken, hash_token};

/// Where a request came from, for sessions and the audit trail.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// An access and refresh token pair (API clients, SPAs, mobile apps).
    Token,
    /// A console session: an HttpOnly cookie holding the session's secret.
    Browser,
}

impl SessionKind {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            SessionKind::Token => "token",
            SessionKind::Browser => "browser",
        }
    }
}

/// A session as its owner sees it in "my sessions".
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct SessionView {
    pub id: SessionId,
    pub kind: String,
    #[sqlx(skip)]
    pub amr: Vec<String>,
    #[serde(skip)]
    #[schema(ignore)]
    pub amr_text: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    /// Whether this is the session making the request.
    #[sqlx(skip)]
    pub current: bool,
}

/// What each authenticated request needs to know about its session, in one query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionState {
    pub user_id: UserId,
    pub revoked_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub status: String,
    pub email_verified_at: Option<Timestamp>,
    pub authz_version: i64,
    pub platform_roles: i64,
    /// Confirmed TOTP apps plus passkeys.
    pub second_factors: i64,
}

impl SessionState {
    /// A lockout only stops new sign-ins: were it to end sessions too, anyone could
    /// sign a victim out by failing to sign in as them. Disabling ends them.
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at > now && self.status != "disabled"
    }

    /// The caller this session stands for, with what its credential says about it.
    pub fn principal(
        &self,
        session: SessionId,
        amr: Vec<String>,
        tenant: Option<TenantId>,
        portal: Option<String>,
    ) -> crate::Principal {
        crate::Principal {
            user: self.user_id,
            session,
            amr,
            tenant,
            portal,
            email_verified: self.email_verified_at.is_some(),
            platform_admin: self.platform_roles > 0,
            mfa_enrolled: self.second_factors > 0,
            authz_version: self.authz_version,
            api_key: None,
        }
    }
}

/// A console session found by its cookie.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BrowserSessionRow {
    pub id: SessionId,
    pub user_id: UserId,
    pub amr: String,
    pub tenant_id: Option<TenantId>,
    pub portal: Option<String>,
    pub last_seen_at: Timestamp,
}

/// The outcome of presenting a refresh token.
pub enum Rotation {
    Rotated {
        session: SessionId,
        user: UserId,
        amr: Vec<String>,
        tenant: Option<TenantId>,
        portal: Option<String>,
        refresh_token: SecretToken,
    },
    /// The token had already been used: the session it belonged to is now revoked.
    Reused {
        session: SessionId,
        user: UserId,
    },
    Invalid,
}

pub struct Sessions;

pub fn amr_text(amr: &[String]) -> String {
    amr.join(",")
}

pub fn amr_list(text: &str) -> Vec<String> {
    text.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

pub struct NewSession<'a> {
    pub user: UserId,
    pub kind: SessionKind,
    pub amr: &'a [String],
    pub client: &'a ClientInfo,
    pub lifetime: Duration,
    pub secret_hash: Option<Vec<u8>>,
}

impl Sessions {
    pub async fn create(tx: &mut Tx, new: NewSession<'_>) -> IdentityResult<SessionId> {
        let id = SessionId::new();
        let now = Timestamp::now();
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO sessions (id, user_id, kind, secret_hash, amr, ip, user_agent, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)"
        )
        .bind(id).bind(new.user).bind(new.kind.as_str()).bind(&new.secret_hash).bind(amr_text(new.amr))
        .bind(&new.client.ip).bind(&new.client.user_agent).bind(now).bind(now + new.lifetime)
        .execute(c).await)?;
        Ok(id)
    }

    pub async fn issue_refresh_token(
        tx: &mut Tx,
        session: SessionId,
        lifetime: Duration,
    ) -> IdentityResult<SecretToken> {
        let token = SecretToken::generate()?;
        let now = Timestamp::now();
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
        ).bind(uuid::Uuid::now_v7()).bind(session).bind(token.digest()).bind(now).bind(now + lifetime)
        .execute(c).await)?;
        Ok(token)
    }

    /// Rotates `presented`: marks it used, issues its successor and slides the session's
    /// expiry. A token already used revokes its session.
    pub async fn rotate(tx: &mut Tx, presented: &str, lifetime: Duration) -> IdentityResult<Rotation> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: uuid::Uuid,
            session_id: SessionId,
            used_at: Option<Timestamp>,
            revoked_at: Option<Timestamp>,
            expires_at: Timestamp,
            user_id: UserId,
            amr: String,
            tenant_id: Option<TenantId>,
            portal: Option<String>,
            session_revoked_at: Option<Timestamp>,
            session_expires_at: Timestamp,
        }
        let now = Timestamp::now();
        let row: Option<Row> = on!(tx.conn(), c => sqlx::query_as(
            "SELECT r.id, r.session_id, r.used_at, r.revoked_at, r.expires_at, s.user_id, s.amr, s.tenant_id,
                    s.portal, s.revoked_at AS session_revoked_at, s.expires_at AS session_expires_at
             FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
             WHERE r.token_hash = $1"
        ).bind(hash_token(presented)).fetch_optional(c).await)?;
        let Some(row) = row else { return Ok(Rotation::Invalid) };
        if row.used_at.is_some() {
            if row.session_revoked_at.is_none() {
                Self::revoke(tx, row.session_id, "refresh_token_reuse").await?;
            }
            return Ok(Rotation::Reused {
                session: row.session_id,
                user: row.user_id,
            });
        }
        if row.revoked_at.is_some()
            || row.expires_at <= now
            || row.session_revoked_at.is_some()
            || row.session_expires_at <= now
        {
            return Ok(Rotation::Invalid);
        }
        // Two requests racing with one token: only one marks it used; the other is a reuse.
        let marked = exec!(tx.conn(), c => sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL"
        ).bind(now).bind(row.id).execute(c).await)?;
        if marked == 0 {
            Self::revoke(tx, row.session_id, "refresh_token_reuse").await?;
            return Ok(Rotation::Reused {
                session: row.session_id,
                user: row.user_id,
            });
        }
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3"
        ).bind(now).bind(now + lifetime).bind(row.session_id).execute(c).await)?;
        let refresh_token = Self::issue_refresh_token(tx, row.session_id, lifetime).await?;
        Ok(Rotation::Rotated {
            session: row.session_id,
            user: row.user_id,
            amr: amr_list(&row.amr),
            tenant: row.tenant_id,
            portal: row.portal,
            refresh_token,
        })
    }

    /// Whether the tenant selected in `session` still admits `user` (an active membership
    /// in a tenant that is neither suspended nor being deleted). When it does not, the
    /// selection is cleared so no later refresh carries it.
    pub async fn selected_tenant_stands(
        tx: &mut Tx,
        session: SessionId,
        user: UserId,
        tenant: TenantId,
    ) -> IdentityResult<bool> {
        // Tenancy owns these tables; identity only reads whether the membership stands,
        // because tenancy depends on identity and not the other way round.
        let stands: Option<bool> = on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT TRUE FROM memberships m JOIN tenants t ON t.id = m.tenant_id
             WHERE m.tenant_id = $1 AND m.user_id = $2 AND m.status = 'active'
               AND t.status IN ('active', 'trial', 'expired')"
        ).bind(tenant).bind(user).fetch_optional(c).await)?;
        if stands.is_some() {
            return Ok(true);
        }
        exec!(tx.conn(), c => sqlx::query("UPDATE sessions SET tenant_id = NULL, portal = NULL WHERE id = $1")
            .bind(session).execute(c).await)?;
        Ok(false)
    }

    /// Revokes a session and every refresh token of it. Returns whether it was active.
    pub async fn revoke(tx: &mut Tx, session: SessionId, reason: &str) -> IdentityResult<bool> {
        let now = Timestamp::now();
        let n = exec!(tx.conn(), c => sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL"
        ).bind(now).bind(reason).bind(session).execute(c).await)?;
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL"
        ).bind(now).bind(session).execute(c).await)?;
        Ok(n > 0)
    }

    /// Revokes every active session of `user` (but `keep`); returns their ids.
    pub async fn revoke_all(
        tx: &mut Tx,
        user: UserId,
        reason: &str,
        keep: Option<SessionId>,
    ) -> IdentityResult<Vec<SessionId>> {
        let ids: Vec<SessionId> = on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL"
        ).bind(user).fetch_all(c).await)?;
        let mut revoked = Vec::with_capacity(ids.len());
        for id in ids.into_iter().filter(|id| Some(*id) != keep) {
            Self::revoke(tx, id, reason).await?;
            revoked.push(id);
        }
        Ok(revoked)
    }

    /// The user's live sessions, newest first (ids are UUIDv7), from just before `before`
    /// (the last id of the previous page).
    pub async fn list_active(
        conn: Conn<'_>,
        user: UserId,
        current: Option<SessionId>,
        before: SessionId,
        limit: u32,
    ) -> IdentityResult<Page<SessionView>> {
        let mut rows: Vec<SessionView> = on!(conn, c => sqlx::query_as(
            "SELECT id, kind, amr AS amr_text, ip, user_agent, created_at, last_seen_at, expires_at
             FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND id < $3
             ORDER BY id DESC LIMIT $4"
        ).bind(user).bind(Timestamp::now()).bind(before).bind(i64::from(limit) + 1).fetch_all(c).await)?;
        for row in &mut rows {
            row.amr = amr_list(&row.amr_text);
            row.current = Some(row.id) == current;
        }
        Ok(Page::from_overfetch(rows, limit, |s| s.id.to_string()))
    }

    /// The live console session whose secret has this digest.
    pub async fn browser(conn: Conn<'_>, secret_digest: &[u8]) -> IdentityResult<Option<BrowserSessionRow>> {
        Ok(on!(conn, c => sqlx::query_as(
            "SELECT id, user_id, amr, tenant_id, portal, last_seen_at FROM sessions
             WHERE secret_hash = $1 AND kind = 'browser' AND revoked_at IS NULL"
        ).bind(secret_digest).fetch_optional(c).await)?)
    }

    /// Records activity on a session; console sessions end after a quiet spell.
    pub async fn touch(tx: &mut Tx, session: SessionId, now: Timestamp) -> IdentityResult<()> {
        exec!(tx.conn(), c => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now).bind(session).execute(c).await)?;
        Ok(())
    }

    pub async fn owner(conn: Conn<'_>, session: SessionId) -> IdentityResult<Option<UserId>> {
        Ok(
            on!(conn, c => sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = $1")
            .bind(session).fetch_optional(c).await)?,
        )
    }

    pub async fn state(conn: Conn<'_>, session: SessionId) -> IdentityResult<Option<SessionState>> {
        Ok(on!(conn, c => sqlx::query_as(
            "SELECT s.user_id, s.revoked_at, s.expires_at, u.status, u.email_verified_at,
                    u.authz_version,
                    (SELECT count(*) FROM platform_role_assignments a WHERE a.user_id = u.id) AS platform_roles,
                    (SELECT count(*) FROM mfa_totp t WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL)
                    + (SELECT count(*) FROM passkeys p WHERE p.user_id = u.id) AS second_factors
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
        ).bind(session).fetch_optional(c).await)?)
    }

    /// Whether `user` has signed in before from this address and client.
    pub async fn seen_before(conn: Conn<'_>, user: UserId, client: &ClientInfo) -> IdentityResult<bool> {
        let n: i64 = on!(conn, c => sqlx::query_scalar(
            "SELECT count(*) FROM sessions WHERE user_id = $1 AND ip IS NOT DISTINCT FROM $2
               AND user_agent IS NOT DISTINCT FROM $3 AND created_at > $4"
        ).bind(user).bind(&client.ip).bind(&client.user_agent).bind(Timestamp::now() - Duration::days(90))
        .fetch_one(c).await)?;
        Ok(n > 0)
    }
}
