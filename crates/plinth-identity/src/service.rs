//! The identity service: what the HTTP handlers, the console and the CLI call.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use plinth_core::config::Config;
use plinth_core::{SessionId, TenantId, UserId};
use plinth_store::Db;
use time::Duration;

use crate::crypto::{KeyRing, MasterKey};
use crate::error::IdentityResult;
use crate::limits::{LimitSettings, Limits};
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::sessions::SessionState;

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Issuer and audience of access tokens; also the base of links in e-mails.
    pub base_url: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Absolute lifetime of a console session.
    pub browser_session_ttl: Duration,
    /// A console session unused this long has ended.
    pub browser_idle_timeout: Duration,
    pub signup_enabled: bool,
    pub require_admin_mfa: bool,
    pub lockout_threshold: u32,
    pub limits: LimitSettings,
}

impl IdentityConfig {
    pub fn from_config(config: &Config, base_url: String) -> Self {
        Self {
            base_url,
            access_token_ttl: Duration::seconds(i64::try_from(config.access_token_ttl_secs).unwrap_or(600)),
            refresh_token_ttl: Duration::days(i64::try_from(config.refresh_token_ttl_days).unwrap_or(30)),
            browser_session_ttl: Duration::hours(i64::try_from(config.console_session_hours).unwrap_or(12)),
            browser_idle_timeout: Duration::minutes(i64::try_from(config.console_idle_minutes).unwrap_or(60)),
            signup_enabled: config.signup_enabled,
            require_admin_mfa: config.require_admin_mfa,
            lockout_threshold: config.lockout_threshold,
            limits: LimitSettings {
                login: config.rate_limit_login,
                signup: config.rate_limit_signup,
                forgot_password: config.rate_limit_forgot_password,
                mfa: config.rate_limit_mfa,
                window: StdDuration::from_secs(15 * 60),
            },
        }
    }
}

pub(crate) struct Inner {
    pub db: Db,
    pub config: IdentityConfig,
    pub hasher: PasswordHasher,
    pub policy: PasswordPolicy,
    pub keys: KeyRing,
    pub master: MasterKey,
    pub limits: Limits,
    /// Session state by id, so authenticating a request rarely touches the database.
    /// Entries live 5 seconds; revocations on this server remove them at once.
    pub session_cache: moka::sync::Cache<SessionId, Arc<SessionState>>,
    /// When each API key's last use was recorded by this server.
    pub key_cache: moka::sync::Cache<String, std::time::Instant>,
    /// The WebAuthn relying party; `None` when the public URL cannot have passkeys.
    pub webauthn: Option<webauthn_rs::prelude::Webauthn>,
}

#[derive(Clone)]
pub struct Identity {
    pub(crate) inner: Arc<Inner>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserId,
    pub session: SessionId,
    pub amr: Vec<String>,
    pub tenant: Option<TenantId>,
    pub portal: Option<String>,
    pub email_verified: bool,
    pub platform_admin: bool,
    pub mfa_enrolled: bool,
    pub authz_version: i64,
    /// Set when the caller authenticated with an API key: what the key may do.
    pub api_key: Option<Arc<crate::api_keys::ApiKeyGrant>>,
}

impl Principal {
    /// Whether this session (or the session that made this API key) signed in with a
    /// second factor. Enrolment alone says nothing about how the caller signed in.
    pub fn signed_in_with_mfa(&self) -> bool {
        self.amr.iter().any(|m| m == "mfa")
    }

    /// Why this principal may only use its own account routes (verification, profile,
    /// MFA enrolment, sessions), or `None` when it may use everything its roles allow.
    pub fn restriction(&self, require_admin_mfa: bool) -> Option<&'static str> {
        if !self.email_verified {
            Some("verify your e-mail address first")
        } else if require_admin_mfa && self.platform_admin && !self.mfa_enrolled {
            Some("platform administrators must enrol two-step verification first")
        } else if require_admin_mfa && self.platform_admin && !self.signed_in_with_mfa() {
            // A session opened with the password alone (before enrolment, say) does not
            // become an administrator's session when the account enrols later.
            Some("platform administrators must sign in with their second factor: sign in again")
        } else {
            None
        }
    }
}

impl Identity {
    pub async fn new(db: Db, config: IdentityConfig, master: MasterKey) -> IdentityResult<Identity> {
        Self::with_hasher(db, config, master, PasswordHasher::default()).await
    }

    pub async fn with_hasher(
        db: Db,
        config: IdentityConfig,
        master: MasterKey,
        hasher: PasswordHasher,
    ) -> IdentityResult<Identity> {
        master.check_against(&db).await?;
        let keys = KeyRing::load(db.clone(), master.clone()).await?;
        Ok(Identity {
            inner: Arc::new(Inner {
                limits: Limits::new(config.limits),
                session_cache: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(StdDuration::from_secs(5))
                    .build(),
                key_cache: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(StdDuration::from_secs(120))
                    .build(),
                webauthn: crate::passkeys::relying_party(&config.base_url),
                db,
                config,
                hasher,
                policy: PasswordPolicy::default(),
                keys,
                master,
            }),
        })
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.inner.config
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The key secrets stored in the database are sealed with.
    pub fn master(&self) -> &MasterKey {
        &self.inner.master
    }

    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) fn forget_sessions(&self, sessions: &[SessionId]) {
        for id in sessions {
            self.inner.session_cache.invalidate(id);
        }
    }

    pub(crate) fn link(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.inner.config.base_url)
    }
}
