//! Console sessions: an HttpOnly cookie holds the session's 256-bit secret (stored as
//! its SHA-256 digest, like every bearer secret), and form posts carry a CSRF token
//! derived from that secret. A cross-site page can neither read the cookie nor compute
//! the token, so no server-side CSRF state is needed.

use plinth_core::{SessionId, Timestamp};
use plinth_store::Tx;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::Duration;

use crate::auth::SignInCredential;
use crate::error::{IdentityError, IdentityResult};
use crate::secret::{SecretToken, hash_token};
use crate::service::{Identity, Principal};
use crate::sessions::{ClientInfo, NewSession, SessionKind, Sessions, amr_list};
use crate::users::User;

/// Activity is written back at most this often per session.
const TOUCH_INTERVAL: Duration = Duration::minutes(1);

/// A console session just created: its cookie value and how long it may live.
pub struct BrowserSession {
    pub session: SessionId,
    secret: SecretToken,
    pub max_age: Duration,
}

impl BrowserSession {
    /// The cookie's value.
    pub fn secret(&self) -> &str {
        self.secret.expose()
    }

    pub fn csrf_token(&self) -> String {
        csrf_token(self.secret.expose())
    }
}

impl std::fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// The CSRF token for forms of the holder of `secret` (a session or pre-session
/// cookie). Domain-separated from the stored digest, so the database never holds it.
pub fn csrf_token(secret: &str) -> String {
    use base64::Engine;
    let mut hasher = Sha256::new();
    hasher.update(b"plinth csrf v1\0");
    hasher.update(secret.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Whether `presented` is the CSRF token of `secret`, compared in constant time.
pub fn csrf_matches(secret: &str, presented: &str) -> bool {
    csrf_token(secret).as_bytes().ct_eq(presented.as_bytes()).into()
}

impl SignInCredential for BrowserSession {
    const KIND: SessionKind = SessionKind::Browser;

    async fn issue(
        identity: &Identity,
        tx: &mut Tx,
        user: &User,
        amr: &[String],
        client: &ClientInfo,
    ) -> IdentityResult<(SessionId, Self)> {
        let lifetime = identity.inner.config.browser_session_ttl;
        let secret = SecretToken::generate()?;
        let session = Sessions::create(
            tx,
            NewSession {
                user: user.id,
                kind: SessionKind::Browser,
                amr,
                client,
                lifetime,
                secret_hash: Some(secret.digest()),
            },
        )
        .await?;
        Ok((
            session,
            BrowserSession {
                session,
                secret,
                max_age: lifetime,
            },
        ))
    }
}

impl Identity {
    /// Authenticates a console cookie: a live browser session, used recently enough,
    /// of a user who may still sign in.
    pub async fn authenticate_browser(&self, secret: &str) -> IdentityResult<Principal> {
        let ended = || IdentityError::Unauthenticated("the console session has ended; sign in again");
        let now = Timestamp::now();
        let row = {
            let mut conn = self.inner.db.read().await?;
            Sessions::browser(conn.conn(), &hash_token(secret)).await?
        };
        let row = row.ok_or_else(ended)?;
        if row.last_seen_at + self.inner.config.browser_idle_timeout <= now {
            return Err(ended());
        }
        let state = self
            .session_state(row.id)
            .await?
            .filter(|s| s.user_id == row.user_id && s.is_usable(now))
            .ok_or_else(ended)?;
        if now - row.last_seen_at >= TOUCH_INTERVAL {
            let mut tx = self.inner.db.begin().await?;
            Sessions::touch(&mut tx, row.id, now).await?;
            tx.commit().await?;
        }
        Ok(state.principal(row.id, amr_list(&row.amr), row.tenant_id, row.portal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_one_secret() {
        let a = SecretToken::generate().unwrap();
        let b = SecretToken::generate().unwrap();
        let token = csrf_token(a.expose());
        assert!(csrf_matches(a.expose(), &token));
        assert!(!csrf_matches(b.expose(), &token));
        assert!(!csrf_matches(a.expose(), ""));
        assert_ne!(token.as_bytes(), a.digest().as_slice());
    }
}
