//! Single-use tokens for the e-mail and setup flows. The table stores a digest of each
//! token; consuming one is a single conditional `UPDATE … RETURNING`, so a token works
//! exactly once even when two requests present it at the same moment.

use plinth_core::{OneTimeTokenId, TenantId, Timestamp, UserId};
use plinth_store::{Conn, Tx, exec, on};
use serde_json::Value;
use time::Duration;

use crate::error::{IdentityError, IdentityResult};
use crate::secret::{SecretToken, hash_token};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimePurpose {
    Setup,
    VerifyEmail,
    ResetPassword,
    Invitation,
    /// The second step of a sign-in that needs a second factor.
    MfaChallenge,
}

impl OneTimePurpose {
    pub fn as_str(&self) -> &'static str {
        match self {
            OneTimePurpose::Setup => "setup",
            OneTimePurpose::VerifyEmail => "verify_email",
            OneTimePurpose::ResetPassword => "reset_password",
            OneTimePurpose::Invitation => "invitation",
            OneTimePurpose::MfaChallenge => "mfa_challenge",
        }
    }
}

/// What a consumed token was issued for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsumedToken {
    pub id: OneTimeTokenId,
    pub user_id: Option<UserId>,
    pub tenant_id: Option<TenantId>,
    pub email: Option<String>,
    pub data: Option<sqlx::types::Json<Value>>,
}

pub struct OneTimeTokens;

/// What a new token is bound to.
#[derive(Debug, Default, Clone)]
pub struct TokenSubject {
    pub user: Option<UserId>,
    pub tenant: Option<TenantId>,
    pub email: Option<String>,
    pub data: Option<Value>,
}

impl OneTimeTokens {
    pub async fn issue(
        tx: &mut Tx,
        purpose: OneTimePurpose,
        subject: TokenSubject,
        ttl: Duration,
    ) -> IdentityResult<(OneTimeTokenId, SecretToken)> {
        let id = OneTimeTokenId::new();
        let token = SecretToken::generate()?;
        let now = Timestamp::now();
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO one_time_tokens (id, purpose, token_hash, user_id, tenant_id, email, data, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )
        .bind(id).bind(purpose.as_str()).bind(token.digest()).bind(subject.user)
        .bind(subject.tenant).bind(&subject.email).bind(subject.data.map(sqlx::types::Json))
        .bind(now).bind(now + ttl)
        .execute(c).await)?;
        Ok((id, token))
    }

    /// Marks the token used and returns what it was for; fails the same way whether the
    /// token is unknown, expired, used, or issued for another purpose.
    pub async fn consume(tx: &mut Tx, purpose: OneTimePurpose, token: &str) -> IdentityResult<ConsumedToken> {
        let now = Timestamp::now();
        let row: Option<ConsumedToken> = on!(tx.conn(), c => sqlx::query_as(
            "UPDATE one_time_tokens SET used_at = $1
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
             RETURNING id, user_id, tenant_id, email, data"
        ).bind(now).bind(hash_token(token)).bind(purpose.as_str()).fetch_optional(c).await)?;
        row.ok_or(IdentityError::InvalidToken)
    }

    /// Whether the token would be accepted now, without using it (to render a form).
    pub async fn is_valid(conn: Conn<'_>, purpose: OneTimePurpose, token: &str) -> IdentityResult<bool> {
        let found: i64 = on!(conn, c => sqlx::query_scalar(
            "SELECT count(*) FROM one_time_tokens
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3"
        ).bind(hash_token(token)).bind(purpose.as_str()).bind(Timestamp::now()).fetch_one(c).await)?;
        Ok(found > 0)
    }

    /// Retires every unused token of `purpose` (for `user`, or all when `None`).
    pub async fn revoke_unused(tx: &mut Tx, purpose: OneTimePurpose, user: Option<UserId>) -> IdentityResult<u64> {
        let now = Timestamp::now();
        let n = match user {
            Some(user) => exec!(tx.conn(), c => sqlx::query(
                "UPDATE one_time_tokens SET used_at = $1 WHERE purpose = $2 AND user_id = $3 AND used_at IS NULL"
            ).bind(now).bind(purpose.as_str()).bind(user).execute(c).await)?,
            None => exec!(tx.conn(), c => sqlx::query(
                "UPDATE one_time_tokens SET used_at = $1 WHERE purpose = $2 AND used_at IS NULL"
            ).bind(now).bind(purpose.as_str()).execute(c).await)?,
        };
        Ok(n)
    }
}
