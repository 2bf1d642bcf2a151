//! First run: while no super-admin exists, `serve` issues a one-time setup link whose
//! page creates the first one. The CLI can create a super-admin at any time (it runs
//! with access to the host, which already implies full control).

use plinth_audit::AuditEntry;
use plinth_core::{Actor, FieldErrors};
use plinth_events::NewEvent;
use plinth_events::catalog::UserCreated;
use plinth_store::Db;
use secrecy::{ExposeSecret, SecretString};
use time::Duration;

use crate::email::Email;
use crate::error::{IdentityError, IdentityResult};
use crate::one_time::{OneTimePurpose, OneTimeTokens, TokenSubject};
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::secret::SecretToken;
use crate::users::{NewUser, PlatformRole, User, Users};

pub const SETUP_TOKEN_TTL: Duration = Duration::hours(1);
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// Input for a new super-admin, as received.
#[derive(Debug)]
pub struct NewSuperAdmin {
    pub email: String,
    pub password: SecretString,
    pub display_name: Option<String>,
}

/// How the creation is authorised.
pub enum SetupVia<'a> {
    /// The one-time link printed by `serve`.
    Token(&'a str),
    /// `plinth admin create-superadmin`, run on the host.
    Cli,
}

pub struct SetupToken {
    pub token: SecretToken,
    pub expires_in: Duration,
}

#[derive(Clone)]
pub struct Setup {
    db: Db,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
}

impl Setup {
    pub fn new(db: Db, hasher: PasswordHasher) -> Self {
        Self {
            db,
            hasher,
            policy: PasswordPolicy::default(),
        }
    }

    /// True while no active super-admin exists.
    pub async fn is_required(&self) -> IdentityResult<bool> {
        let mut conn = self.db.read().await?;
        Ok(Users::count_with_platform_role(conn.conn(), PlatformRole::SuperAdmin).await? == 0)
    }

    /// When setup is required, retires earlier setup links and issues a new one.
    pub async fn issue_token(&self) -> IdentityResult<Option<SetupToken>> {
        if !self.is_required().await? {
            return Ok(None);
        }
        let mut tx = self.db.begin().await?;
        OneTimeTokens::revoke_unused(&mut tx, OneTimePurpose::Setup, None).await?;
        let (_, token) =
            OneTimeTokens::issue(&mut tx, OneTimePurpose::Setup, TokenSubject::default(), SETUP_TOKEN_TTL).await?;
        tx.commit().await?;
        Ok(Some(SetupToken {
            token,
            expires_in: SETUP_TOKEN_TTL,
        }))
    }

    /// Whether a setup link is still usable (to decide between the form and an error page).
    pub async fn token_is_valid(&self, token: &str) -> IdentityResult<bool> {
        if !self.is_required().await? {
            return Ok(false);
        }
        let mut conn = self.db.read().await?;
        OneTimeTokens::is_valid(conn.conn(), OneTimePurpose::Setup, token).await
    }

    pub async fn create_super_admin(
        &self,
        actor: &Actor,
        input: NewSuperAdmin,
        via: SetupVia<'_>,
    ) -> IdentityResult<User> {
        let mut errors = FieldErrors::new();
        let email = match Email::parse(&input.email) {
            Ok(email) => Some(email),
            Err(e) => {
                errors = e;
                None
            }
        };
        if let Err(password_errors) = self.policy.check(input.password.expose_secret(), email.as_ref()) {
            for e in password_errors.iter() {
                errors.add(&e.pointer, e.code, e.detail.clone());
            }
        }
        let display_name = input.display_name.as_deref().map(str::trim).unwrap_or_default();
        if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            errors.add("display_name", "too_long", "use at most 100 characters");
        }
        errors.finish()?;
        let Some(email) = email else {
            return Err(IdentityError::Validation(FieldErrors::single(
                "email",
                "required",
                "an e-mail address is required",
            )));
        };
        let display_name = if display_name.is_empty() {
            email.local_part().to_owned()
        } else {
            display_name.to_owned()
        };

        // Hash before the transaction: the write lock is not held for the hash's 20+ ms.
        let password_hash = self.hasher.hash(input.password).await?;

        let mut tx = self.db.begin().await?;
        let method = match via {
            SetupVia::Token(token) => {
                OneTimeTokens::consume(&mut tx, OneTimePurpose::Setup, token).await?;
                if Users::count_with_platform_role(tx.conn(), PlatformRole::SuperAdmin).await? > 0 {
                    return Err(IdentityError::InvalidToken);
                }
                "setup_link"
            }
            SetupVia::Cli => "cli",
        };
        let user = Users::insert(
            &mut tx,
            NewUser {
                email: &email,
                display_name: &display_name,
                password_hash: Some(&password_hash),
                email_verified: true,
            },
        )
        .await?;
        Users::grant_platform_role(&mut tx, user.id, PlatformRole::SuperAdmin, None).await?;
        let actor = if actor.id.is_none() {
            actor.clone().with_user(user.id)
        } else {
            actor.clone()
        };
        plinth_audit::append(
            &mut tx,
            &actor,
            AuditEntry::new(plinth_audit::action::PLATFORM_SUPERADMIN_CREATE)
                .target("user", user.id)
                .changes(serde_json::json!({"email": user.email, "role": "super-admin", "via": method})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor,
            NewEvent::of(&UserCreated {
                user_id: user.id.0,
                via: "setup".into(),
            })
            .subject("user", user.id),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user.id = %user.id, via = method, "super-admin created");
        Ok(user)
    }
}
