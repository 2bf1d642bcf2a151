//! Signing in and out, tokens, and authenticating requests.

use std::sync::Arc;

use plinth_audit::{AuditEntry, Outcome};
use plinth_core::{Actor, SessionId, Timestamp, UserId};
use plinth_store::{Tx, exec, on};
use secrecy::SecretString;
use serde::Serialize;
use time::Duration;

use crate::crypto::jwt::{self, AccessClaims};
use crate::email::Email;
use crate::error::{IdentityError, IdentityResult};
use crate::limits::Flow;
use crate::mail::{self, EmailKind};
use crate::mfa;
use crate::one_time::{OneTimePurpose, OneTimeTokens, TokenSubject};
use crate::password::Verified;
use crate::service::{Identity, Principal};
use crate::sessions::{ClientInfo, NewSession, Rotation, SessionKind, SessionState, Sessions};
use crate::users::{User, Users};

pub const MFA_CHALLENGE_TTL: Duration = Duration::minutes(5);
const MAX_LOCK: Duration = Duration::hours(1);

/// An OAuth 2.0 token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MfaChallenge {
    /// Present with the code to `POST /api/v1/auth/mfa`.
    pub mfa_token: String,
    /// Second factors the account has: `totp`, `recovery_code`.
    pub methods: Vec<&'static str>,
    pub expires_in: i64,
}

pub enum LoginOutcome<C = TokenPair> {
    SignedIn(C),
    MfaRequired(MfaChallenge),
}

/// What a completed sign-in hands the client: a token pair for API clients, a cookie
/// secret for the consoles. Each creates its own kind of session.
pub trait SignInCredential: Sized + Send {
    const KIND: SessionKind;

    fn issue(
        identity: &Identity,
        tx: &mut Tx,
        user: &User,
        amr: &[String],
        client: &ClientInfo,
    ) -> impl Future<Output = IdentityResult<(SessionId, Self)>> + Send;
}

impl SignInCredential for TokenPair {
    const KIND: SessionKind = SessionKind::Token;

    async fn issue(
        identity: &Identity,
        tx: &mut Tx,
        user: &User,
        amr: &[String],
        client: &ClientInfo,
    ) -> IdentityResult<(SessionId, Self)> {
        let config = &identity.inner.config;
        let session = Sessions::create(
            tx,
            NewSession {
                user: user.id,
                kind: SessionKind::Token,
                amr,
                client,
                lifetime: config.refresh_token_ttl,
                secret_hash: None,
            },
        )
        .await?;
        let refresh = Sessions::issue_refresh_token(tx, session, config.refresh_token_ttl).await?;
        let access_token = identity.access_token(user, session, amr.to_vec(), None, None)?;
        Ok((
            session,
            TokenPair {
                access_token,
                token_type: "Bearer",
                expires_in: config.access_token_ttl.whole_seconds(),
                refresh_token: refresh.expose().to_owned(),
            },
        ))
    }
}

/// RFC 7662 introspection response.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

#[derive(sqlx::FromRow)]
struct Credentials {
    id: UserId,
    password_hash: Option<String>,
    status: String,
    locked_until: Option<Timestamp>,
    failed_logins: i64,
}

pub(crate) fn actor_of(client: &ClientInfo, user: Option<UserId>) -> Actor {
    let actor = Actor::anonymous(client.ip.clone(), client.user_agent.clone(), client.request_id.clone());
    match user {
        Some(user) => actor.with_user(user),
        None => actor,
    }
}

impl Identity {
    pub(crate) fn check_limit(&self, flow: Flow, client: &ClientInfo, account: Option<&str>) -> IdentityResult<()> {
        self.inner
            .limits
            .check(flow, client.ip.as_deref(), account)
            .map_err(IdentityError::RateLimited)
    }

    /// Password sign-in. Every failure looks the same to the caller and costs the same
    /// time, whether the account exists, is disabled, locked, or the password is wrong.
    pub async fn login<C: SignInCredential>(
        &self,
        email: &str,
        password: SecretString,
        client: &ClientInfo,
    ) -> IdentityResult<LoginOutcome<C>> {
        let email = Email::parse(email).ok();
        self.check_limit(Flow::Login, client, email.as_ref().map(Email::normalized))?;
        let found: Option<Credentials> = match &email {
            Some(email) => {
                let mut conn = self.inner.db.read().await?;
                on!(conn.conn(), c => sqlx::query_as(
                    "SELECT id, password_hash, status, locked_until, failed_logins FROM users WHERE email_normalized = $1"
                ).bind(email.normalized()).fetch_optional(c).await)?
            }
            None => None,
        };
        let Some(account) = found else {
            self.inner.hasher.verify_dummy(password).await;
            self.record_login_failure(client, None, email.as_ref(), "unknown_account")
                .await?;
            return Err(IdentityError::InvalidCredentials);
        };
        let verified = match account.password_hash.clone() {
            Some(hash) => self.inner.hasher.verify(password, hash).await?,
            None => {
                self.inner.hasher.verify_dummy(password).await;
                Verified::Mismatch
            }
        };
        let now = Timestamp::now();
        if account.status == "disabled" {
            self.record_login_failure(client, Some(account.id), email.as_ref(), "disabled")
                .await?;
            return Err(IdentityError::InvalidCredentials);
        }
        if account.locked_until.is_some_and(|until| until > now) {
            self.record_login_failure(client, Some(account.id), email.as_ref(), "locked")
                .await?;
            return Err(IdentityError::InvalidCredentials);
        }
        match verified {
            Verified::Mismatch => {
                self.register_wrong_password(client, &account, now).await?;
                Err(IdentityError::InvalidCredentials)
            }
            Verified::Match { rehash } => self.password_accepted(client, account.id, rehash).await,
        }
    }

    async fn record_login_failure(
        &self,
        client: &ClientInfo,
        user: Option<UserId>,
        email: Option<&Email>,
        reason: &'static str,
    ) -> IdentityResult<()> {
        let mut tx = self.inner.db.begin().await?;
        let mut entry = AuditEntry::new(plinth_audit::action::AUTH_LOGIN_FAILED)
            .outcome(Outcome::Failure)
            .changes(serde_json::json!({"reason": reason, "email": email.map(Email::normalized)}));
        if let Some(user) = user {
            entry = entry.target("user", user);
        }
        plinth_audit::append(&mut tx, &actor_of(client, None), entry).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn register_wrong_password(
        &self,
        client: &ClientInfo,
        account: &Credentials,
        now: Timestamp,
    ) -> IdentityResult<()> {
        let failures = account.failed_logins + 1;
        let threshold = i64::from(self.inner.config.lockout_threshold.max(1));
        let mut tx = self.inner.db.begin().await?;
        if failures >= threshold {
            // 1 minute at the threshold, doubling with each further failure, at most an hour.
            let doublings = u32::try_from((failures - threshold).min(6)).unwrap_or(6);
            let lock = (Duration::minutes(1) * 2_i32.pow(doublings)).min(MAX_LOCK);
            exec!(tx.conn(), c => sqlx::query(
                "UPDATE users SET failed_logins = $1, locked_until = $2, status = 'locked', updated_at = $3 WHERE id = $4"
            ).bind(failures).bind(now + lock).bind(now).bind(account.id).execute(c).await)?;
            plinth_audit::append(
                &mut tx,
                &actor_of(client, None),
                AuditEntry::new(plinth_audit::action::AUTH_LOCKOUT)
                    .target("user", account.id)
                    .outcome(Outcome::Denied)
                    .changes(serde_json::json!({"failed_logins": failures, "locked_seconds": lock.whole_seconds()})),
            )
            .await?;
            plinth_events::enqueue(
                &mut tx,
                &actor_of(client, None),
                plinth_events::NewEvent::of(&plinth_events::catalog::UserLocked {
                    user_id: account.id.0,
                    locked_seconds: lock.whole_seconds(),
                })
                .subject("user", account.id),
            )
            .await?;
        } else {
            exec!(tx.conn(), c => sqlx::query("UPDATE users SET failed_logins = $1 WHERE id = $2")
                .bind(failures).bind(account.id).execute(c).await)?;
        }
        plinth_audit::append(
            &mut tx,
            &actor_of(client, None),
            AuditEntry::new(plinth_audit::action::AUTH_LOGIN_FAILED)
                .target("user", account.id)
                .outcome(Outcome::Failure)
                .changes(serde_json::json!({"reason": "wrong_password", "failed_logins": failures})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn password_accepted<C: SignInCredential>(
        &self,
        client: &ClientInfo,
        user_id: UserId,
        rehash: Option<String>,
    ) -> IdentityResult<LoginOutcome<C>> {
        let mut tx = self.inner.db.begin().await?;
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL,
                 status = CASE WHEN status = 'locked' THEN 'active' ELSE status END,
                 password_hash = COALESCE($1, password_hash)
             WHERE id = $2"
        ).bind(&rehash).bind(user_id).execute(c).await)?;
        let methods = mfa::methods(tx.conn(), user_id).await?;
        if !methods.is_empty() {
            let (_, token) = OneTimeTokens::issue(
                &mut tx,
                OneTimePurpose::MfaChallenge,
                TokenSubject {
                    user: Some(user_id),
                    ..TokenSubject::default()
                },
                MFA_CHALLENGE_TTL,
            )
            .await?;
            plinth_audit::append(
                &mut tx,
                &actor_of(client, Some(user_id)),
                AuditEntry::new(plinth_audit::action::AUTH_LOGIN_MFA_REQUIRED).target("user", user_id),
            )
            .await?;
            plinth_events::enqueue(
                &mut tx,
                &actor_of(client, Some(user_id)),
                plinth_events::NewEvent::of(&plinth_events::catalog::UserSignInChallenged { user_id: user_id.0 })
                    .subject("user", user_id),
            )
            .await?;
            tx.commit().await?;
            return Ok(LoginOutcome::MfaRequired(MfaChallenge {
                mfa_token: token.expose().to_owned(),
                methods,
                expires_in: MFA_CHALLENGE_TTL.whole_seconds(),
            }));
        }
        let credential = self
            .complete_sign_in(&mut tx, user_id, vec!["pwd".into()], client)
            .await?;
        tx.commit().await?;
        Ok(LoginOutcome::SignedIn(credential))
    }

    /// Creates the session and its tokens, records the sign-in, and alerts the owner
    /// when the device or address is new. Inside the caller's transaction.
    pub(crate) async fn complete_sign_in<C: SignInCredential>(
        &self,
        tx: &mut Tx,
        user_id: UserId,
        amr: Vec<String>,
        client: &ClientInfo,
    ) -> IdentityResult<C> {
        let config = &self.inner.config;
        let user = Users::find(tx.conn(), user_id)
            .await?
            .ok_or(IdentityError::InvalidCredentials)?;
        let seen_before = Sessions::seen_before(tx.conn(), user_id, client).await?;
        let had_sessions: i64 = on!(tx.conn(), c => sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = $1")
            .bind(user_id).fetch_one(c).await)?;
        let (session, credential) = C::issue(self, tx, &user, &amr, client).await?;
        let now = Timestamp::now();
        exec!(tx.conn(), c => sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(now).bind(user_id).execute(c).await)?;
        plinth_audit::append(
            tx,
            &actor_of(client, Some(user_id)),
            AuditEntry::new(plinth_audit::action::AUTH_LOGIN)
                .target("session", session)
                .changes(serde_json::json!({"amr": amr, "kind": C::KIND.as_str()})),
        )
        .await?;
        plinth_events::enqueue(
            tx,
            &actor_of(client, Some(user_id)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserSignedIn {
                user_id: user_id.0,
                session_id: session.0,
            })
            .subject("user", user_id),
        )
        .await?;
        if !seen_before && had_sessions > 0 {
            let email = EmailKind::NewSignIn {
                name: user.display_name.clone(),
                ip: client.ip.clone().unwrap_or_else(|| "unknown".into()),
                user_agent: client.user_agent.clone().unwrap_or_else(|| "unknown".into()),
                time: now.to_rfc3339(),
                link: self.link("/forgot-password"),
            }
            .render(&config.base_url)?;
            mail::enqueue(tx, &user.email, &email).await?;
        }
        Ok(credential)
    }

    pub(crate) fn access_token(
        &self,
        user: &User,
        session: SessionId,
        amr: Vec<String>,
        tenant: Option<plinth_core::TenantId>,
        portal: Option<String>,
    ) -> IdentityResult<String> {
        let now = Timestamp::now().unix_seconds();
        let config = &self.inner.config;
        let claims = AccessClaims {
            iss: config.base_url.clone(),
            sub: user.id,
            aud: config.base_url.clone(),
            iat: now,
            exp: now + config.access_token_ttl.whole_seconds(),
            sid: session,
            amr,
            tenant,
            portal,
            pv: user.authz_version,
        };
        jwt::encode(&self.inner.keys, &claims)
    }

    /// The second step of a sign-in: a TOTP code or a recovery code.
    pub async fn verify_mfa<C: SignInCredential>(
        &self,
        mfa_token: &str,
        code: &str,
        client: &ClientInfo,
    ) -> IdentityResult<C> {
        let user_id = {
            let mut conn = self.inner.db.read().await?;
            let user: Option<Option<UserId>> = on!(conn.conn(), c => sqlx::query_scalar(
                "SELECT user_id FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3"
            ).bind(crate::secret::hash_token(mfa_token)).bind(OneTimePurpose::MfaChallenge.as_str())
            .bind(Timestamp::now()).fetch_optional(c).await)?;
            user.flatten().ok_or(IdentityError::InvalidToken)?
        };
        self.check_limit(Flow::Mfa, client, Some(&user_id.to_string()))?;
        let mut tx = self.inner.db.begin().await?;
        let method = mfa::verify_code(&self.inner.master, &mut tx, user_id, code).await?;
        let Some(method) = method else {
            plinth_audit::append(
                &mut tx,
                &actor_of(client, Some(user_id)),
                AuditEntry::new(plinth_audit::action::AUTH_MFA_FAILED)
                    .target("user", user_id)
                    .outcome(Outcome::Failure),
            )
            .await?;
            tx.commit().await?;
            return Err(IdentityError::InvalidCode);
        };
        // Consumed only now, so a mistyped code does not cost the user the challenge.
        OneTimeTokens::consume(&mut tx, OneTimePurpose::MfaChallenge, mfa_token).await?;
        let amr = vec!["pwd".to_owned(), method.amr().to_owned(), "mfa".to_owned()];
        let credential = self.complete_sign_in(&mut tx, user_id, amr, client).await?;
        tx.commit().await?;
        Ok(credential)
    }

    /// Exchanges a refresh token for a new pair. A token presented twice revokes its
    /// session and is recorded as a security event.
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> IdentityResult<TokenPair> {
        let invalid = IdentityError::Unauthenticated("the refresh token is invalid, expired or revoked");
        if refresh_token.is_empty() || refresh_token.len() > 256 {
            return Err(invalid);
        }
        let config = &self.inner.config;
        let mut tx = self.inner.db.begin().await?;
        match Sessions::rotate(&mut tx, refresh_token, config.refresh_token_ttl).await? {
            Rotation::Invalid => Err(invalid),
            Rotation::Reused { session, user } => {
                plinth_audit::append(
                    &mut tx,
                    &actor_of(client, None),
                    AuditEntry::new(plinth_audit::action::AUTH_REFRESH_REUSE)
                        .target("session", session)
                        .outcome(Outcome::Denied)
                        .changes(serde_json::json!({"user_id": user, "session_revoked": true})),
                )
                .await?;
                tx.commit().await?;
                self.forget_sessions(&[session]);
                tracing::warn!(session.id = %session, user.id = %user, "refresh token reused: session revoked");
                Err(invalid)
            }
            Rotation::Rotated {
                session,
                user,
                amr,
                tenant,
                portal,
                refresh_token,
            } => {
                let account = Users::find(tx.conn(), user).await?.ok_or(IdentityError::NotFound)?;
                if account.status == crate::users::UserStatus::Disabled {
                    tx.rollback().await?;
                    return Err(invalid);
                }
                // Products verify the `tenant` claim offline: re-issue it only while the
                // membership and the tenant still stand, and forget it otherwise.
                let (tenant, portal) = match tenant {
                    Some(selected) if !Sessions::selected_tenant_stands(&mut tx, session, user, selected).await? => {
                        plinth_audit::append(
                            &mut tx,
                            &actor_of(client, Some(user)),
                            AuditEntry::new(plinth_audit::action::AUTH_TENANT_DROPPED)
                                .tenant(selected)
                                .target("session", session)
                                .changes(serde_json::json!({"reason": "membership or tenant no longer active"})),
                        )
                        .await?;
                        (None, None)
                    }
                    _ => (tenant, portal),
                };
                tx.commit().await?;
                let access_token = self.access_token(&account, session, amr, tenant, portal)?;
                Ok(TokenPair {
                    access_token,
                    token_type: "Bearer",
                    expires_in: config.access_token_ttl.whole_seconds(),
                    refresh_token: refresh_token.expose().to_owned(),
                })
            }
        }
    }

    pub async fn logout(&self, principal: &Principal, client: &ClientInfo) -> IdentityResult<()> {
        let mut tx = self.inner.db.begin().await?;
        Sessions::revoke(&mut tx, principal.session, "logout").await?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(plinth_audit::action::AUTH_LOGOUT).target("session", principal.session),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserSignedOut {
                user_id: principal.user.0,
                session_id: principal.session.0,
            })
            .subject("user", principal.user),
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&[principal.session]);
        Ok(())
    }

    /// Ends every session of the caller, this one included; returns how many.
    pub async fn logout_everywhere(&self, principal: &Principal, client: &ClientInfo) -> IdentityResult<usize> {
        let mut tx = self.inner.db.begin().await?;
        let revoked = Sessions::revoke_all(&mut tx, principal.user, "logout_everywhere", None).await?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(plinth_audit::action::AUTH_LOGOUT_EVERYWHERE)
                .target("user", principal.user)
                .changes(serde_json::json!({"sessions_revoked": revoked.len()})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserSessionsRevoked {
                user_id: principal.user.0,
                sessions: revoked.len() as u64,
                by: "everywhere".into(),
            })
            .subject("user", principal.user),
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&revoked);
        Ok(revoked.len())
    }

    pub(crate) async fn session_state(&self, session: SessionId) -> IdentityResult<Option<Arc<SessionState>>> {
        if let Some(state) = self.inner.session_cache.get(&session) {
            return Ok(Some(state));
        }
        let mut conn = self.inner.db.read().await?;
        let state = Sessions::state(conn.conn(), session).await?.map(Arc::new);
        if let Some(state) = &state {
            self.inner.session_cache.insert(session, state.clone());
        }
        Ok(state)
    }

    /// Authenticates an access token: signature, expiry, and a session still alive.
    pub async fn authenticate(&self, access_token: &str) -> IdentityResult<Principal> {
        if access_token.starts_with(crate::api_keys::KEY_PREFIX) {
            return self.authenticate_api_key(access_token).await;
        }
        let now = Timestamp::now();
        let claims = jwt::verify(
            &self.inner.keys,
            access_token,
            &self.inner.config.base_url,
            now.unix_seconds(),
        )
        .await
        .map_err(|_| IdentityError::Unauthenticated("the access token is invalid or expired"))?;
        let state = self
            .session_state(claims.sid)
            .await?
            .filter(|s| s.user_id == claims.sub && s.is_usable(now))
            .ok_or(IdentityError::Unauthenticated("the session has ended"))?;
        Ok(state.principal(claims.sid, claims.amr, claims.tenant, claims.portal))
    }

    /// RFC 7662: whether a token (access or refresh) is active, and its claims.
    pub async fn introspect(&self, token: &str) -> IdentityResult<Introspection> {
        let now = Timestamp::now();
        if token.matches('.').count() == 2 {
            let Ok(claims) =
                jwt::verify(&self.inner.keys, token, &self.inner.config.base_url, now.unix_seconds()).await
            else {
                return Ok(Introspection::default());
            };
            let alive = self
                .session_state(claims.sid)
                .await?
                .is_some_and(|s| s.user_id == claims.sub && s.is_usable(now));
            if !alive {
                return Ok(Introspection::default());
            }
            return Ok(Introspection {
                active: true,
                token_type: Some("access_token"),
                sub: Some(claims.sub.to_string()),
                sid: Some(claims.sid.to_string()),
                iss: Some(claims.iss),
                aud: Some(claims.aud),
                iat: Some(claims.iat),
                exp: Some(claims.exp),
                tenant: claims.tenant.map(|t| t.to_string()),
                amr: Some(claims.amr),
            });
        }
        #[derive(sqlx::FromRow)]
        struct Row {
            session_id: SessionId,
            user_id: UserId,
            created_at: Timestamp,
            expires_at: Timestamp,
        }
        let mut conn = self.inner.db.read().await?;
        let row: Option<Row> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT r.session_id, s.user_id, r.created_at, r.expires_at FROM refresh_tokens r
             JOIN sessions s ON s.id = r.session_id
             WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.revoked_at IS NULL AND r.expires_at > $2
               AND s.revoked_at IS NULL"
        ).bind(crate::secret::hash_token(token)).bind(now).fetch_optional(c).await)?;
        Ok(match row {
            Some(row) => Introspection {
                active: true,
                token_type: Some("refresh_token"),
                sub: Some(row.user_id.to_string()),
                sid: Some(row.session_id.to_string()),
                iss: Some(self.inner.config.base_url.clone()),
                iat: Some(row.created_at.unix_seconds()),
                exp: Some(row.expires_at.unix_seconds()),
                ..Introspection::default()
            },
            None => Introspection::default(),
        })
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.inner.keys.jwks()
    }
}

impl Identity {
    /// Records, on the platform chain, a signed-in user refused a platform route for lack
    /// of the role: at most once a minute per user and route, so refused requests cannot
    /// become a flood of writes. A record that cannot be written is logged; the refusal
    /// stands either way.
    pub async fn record_platform_refusal(&self, actor: &Actor, route: &str, reason: &str) {
        let Some(user) = actor.user_id() else { return };
        if self
            .limits()
            .check(Flow::RefusalRecord, None, Some(&format!("{user} {route}")))
            .is_err()
        {
            return;
        }
        let written = async {
            let mut tx = self.inner.db.begin().await?;
            plinth_audit::append(
                &mut tx,
                actor,
                AuditEntry::new(plinth_audit::action::AUTHZ_DENIED)
                    .target("route", route)
                    .outcome(plinth_audit::Outcome::Denied)
                    .reason(reason),
            )
            .await?;
            tx.commit().await?;
            Ok::<(), IdentityError>(())
        };
        if let Err(error) = written.await {
            tracing::error!(%error, route, "recording a refused platform route");
        }
    }

    /// Binds the caller's session to `tenant` (already authorised by tenancy) and returns
    /// an access token carrying it; refreshed tokens keep it.
    pub async fn select_tenant(
        &self,
        principal: &Principal,
        tenant: plinth_core::TenantId,
        portal: Option<String>,
        client: &ClientInfo,
    ) -> IdentityResult<(String, i64)> {
        let mut tx = self.inner.db.begin().await?;
        let updated = exec!(tx.conn(), c => sqlx::query(
            "UPDATE sessions SET tenant_id = $1, portal = $2, last_seen_at = $3 WHERE id = $4 AND revoked_at IS NULL"
        ).bind(tenant).bind(&portal).bind(Timestamp::now()).bind(principal.session).execute(c).await)?;
        if updated == 0 {
            return Err(IdentityError::Unauthenticated("the session has ended"));
        }
        let user = Users::find(tx.conn(), principal.user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(plinth_audit::action::AUTH_TENANT_SELECT)
                .tenant(tenant)
                .target("session", principal.session)
                .changes(serde_json::json!({"portal": portal})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserTenantSelected {
                user_id: principal.user.0,
                portal: portal.clone(),
            })
            .tenant(tenant)
            .subject("user", principal.user),
        )
        .await?;
        tx.commit().await?;
        let token = self.access_token(&user, principal.session, principal.amr.clone(), Some(tenant), portal)?;
        Ok((token, self.inner.config.access_token_ttl.whole_seconds()))
    }
}
