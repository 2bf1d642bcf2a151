//! Self-service flows: sign-up with e-mail verification, and password reset. None of
//! them tells a caller whether an address has an account.

use plinth_audit::AuditEntry;
use plinth_core::{FieldErrors, Timestamp, UserId};
use plinth_events::NewEvent;
use plinth_events::catalog::UserCreated;
use plinth_store::{exec, on};
use secrecy::{ExposeSecret, SecretString};
use time::Duration;

use crate::auth::actor_of;
use crate::email::Email;
use crate::error::{IdentityError, IdentityResult};
use crate::limits::Flow;
use crate::mail::{self, EmailKind};
use crate::one_time::{OneTimePurpose, OneTimeTokens, TokenSubject};
use crate::secret::hash_token;
use crate::service::{Identity, Principal};
use crate::sessions::{ClientInfo, Sessions};
use crate::setup::MAX_DISPLAY_NAME_CHARS;
use crate::users::{NewUser, UserStatus, Users};

pub const VERIFY_TTL: Duration = Duration::hours(24);
pub const RESET_TTL: Duration = Duration::hours(1);

pub struct SignUp {
    pub email: String,
    pub password: SecretString,
    pub display_name: Option<String>,
}

impl Identity {
    /// Creates an unverified account and sends the verification link. For an address
    /// that already has an account, the owner is told by e-mail instead; the caller
    /// gets the same answer either way.
    pub async fn sign_up(&self, input: SignUp, client: &ClientInfo) -> IdentityResult<()> {
        if !self.inner.config.signup_enabled {
            return Err(IdentityError::Forbidden(
                "self-service sign-up is disabled on this platform",
            ));
        }
        self.check_limit(Flow::Signup, client, None)?;
        let mut errors = FieldErrors::new();
        let email = match Email::parse(&input.email) {
            Ok(e) => Some(e),
            Err(e) => {
                errors = e;
                None
            }
        };
        if let Err(e) = self.inner.policy.check(input.password.expose_secret(), email.as_ref()) {
            for err in e.iter() {
                errors.add(&err.pointer, err.code, err.detail.clone());
            }
        }
        let display_name = input
            .display_name
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            errors.add("display_name", "too_long", "use at most 100 characters");
        }
        errors.finish()?;
        let Some(email) = email else {
            return Err(IdentityError::InvalidCredentials);
        };
        let display_name = if display_name.is_empty() {
            email.local_part().to_owned()
        } else {
            display_name
        };
        // Hashed in both cases, so the answer takes as long for a taken address.
        let hash = self.inner.hasher.hash(input.password).await?;
        let base_url = self.inner.config.base_url.clone();
        let mut tx = self.inner.db.begin().await?;
        if let Some((existing, _)) = Users::find_by_email(tx.conn(), &email).await? {
            let message = EmailKind::SignupExisting {
                name: existing.display_name.clone(),
                email: existing.email.clone(),
                link: self.link("/login"),
            }
            .render(&base_url)?;
            mail::enqueue(&mut tx, &existing.email, &message).await?;
            plinth_audit::append(
                &mut tx,
                &actor_of(client, None),
                AuditEntry::new(plinth_audit::action::AUTH_SIGNUP_EXISTING_ADDRESS).target("user", existing.id),
            )
            .await?;
            tx.commit().await?;
            return Ok(());
        }
        let user = Users::insert(
            &mut tx,
            NewUser {
                email: &email,
                display_name: &display_name,
                password_hash: Some(&hash),
                email_verified: false,
            },
        )
        .await?;
        self.send_verification(&mut tx, user.id, &user.email, &user.display_name)
            .await?;
        let actor = actor_of(client, Some(user.id));
        plinth_audit::append(
            &mut tx,
            &actor,
            AuditEntry::new(plinth_audit::action::USER_SIGNUP).target("user", user.id),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor,
            NewEvent::of(&UserCreated {
                user_id: user.id.0,
                via: "signup".into(),
            })
            .subject("user", user.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn send_verification(
        &self,
        tx: &mut plinth_store::Tx,
        user: UserId,
        address: &str,
        name: &str,
    ) -> IdentityResult<()> {
        OneTimeTokens::revoke_unused(tx, OneTimePurpose::VerifyEmail, Some(user)).await?;
        let (_, token) = OneTimeTokens::issue(
            tx,
            OneTimePurpose::VerifyEmail,
            TokenSubject {
                user: Some(user),
                email: Some(address.to_owned()),
                ..TokenSubject::default()
            },
            VERIFY_TTL,
        )
        .await?;
        let message = EmailKind::Verify {
            name: name.to_owned(),
            email: address.to_owned(),
            link: self.link(&format!("/verify-email?token={}", token.expose())),
        }
        .render(&self.inner.config.base_url)?;
        mail::enqueue(tx, address, &message).await
    }

    /// Sends a new verification link to the signed-in, unverified user.
    pub async fn resend_verification(&self, principal: &Principal, client: &ClientInfo) -> IdentityResult<()> {
        self.check_limit(Flow::VerificationResend, client, Some(&principal.user.to_string()))?;
        let mut tx = self.inner.db.begin().await?;
        let user = Users::find(tx.conn(), principal.user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        if user.email_verified_at.is_some() {
            return Err(IdentityError::Forbidden("the e-mail address is already verified"));
        }
        self.send_verification(&mut tx, user.id, &user.email, &user.display_name)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> IdentityResult<()> {
        let mut tx = self.inner.db.begin().await?;
        let consumed = OneTimeTokens::consume(&mut tx, OneTimePurpose::VerifyEmail, token).await?;
        let user_id = consumed.user_id.ok_or(IdentityError::InvalidToken)?;
        let user = Users::find(tx.conn(), user_id)
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        // A link sent to an earlier address does not verify a changed one.
        if consumed.email.as_deref() != Some(user.email.as_str()) {
            return Err(IdentityError::InvalidToken);
        }
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE users SET email_verified_at = $1, updated_at = $1 WHERE id = $2 AND email_verified_at IS NULL"
        ).bind(Timestamp::now()).bind(user_id).execute(c).await)?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(user_id)),
            AuditEntry::new(plinth_audit::action::USER_EMAIL_VERIFY).target("user", user_id),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(user_id)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserEmailVerified { user_id: user_id.0 })
                .subject("user", user_id),
        )
        .await?;
        let sessions: Vec<plinth_core::SessionId> = on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL"
        ).bind(user_id).fetch_all(c).await)?;
        tx.commit().await?;
        self.forget_sessions(&sessions);
        Ok(())
    }

    /// Starts a password reset. Answers at once and does the work afterwards, so the
    /// answer and its timing are the same whether or not the address has an account.
    pub async fn forgot_password(&self, email: &str, client: &ClientInfo) -> IdentityResult<()> {
        let email = Email::parse(email).map_err(IdentityError::Validation)?;
        self.check_limit(Flow::ForgotPassword, client, Some(email.normalized()))?;
        let identity = self.clone();
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(e) = identity.send_reset_link(&email, &client).await {
                tracing::error!(error = %e, "password reset e-mail");
            }
        });
        Ok(())
    }

    async fn send_reset_link(&self, email: &Email, client: &ClientInfo) -> IdentityResult<()> {
        let mut tx = self.inner.db.begin().await?;
        let Some((user, _)) = Users::find_by_email(tx.conn(), email).await? else {
            return Ok(());
        };
        if user.status == UserStatus::Disabled {
            return Ok(());
        }
        OneTimeTokens::revoke_unused(&mut tx, OneTimePurpose::ResetPassword, Some(user.id)).await?;
        let (_, token) = OneTimeTokens::issue(
            &mut tx,
            OneTimePurpose::ResetPassword,
            TokenSubject {
                user: Some(user.id),
                email: Some(user.email.clone()),
                ..TokenSubject::default()
            },
            RESET_TTL,
        )
        .await?;
        let message = EmailKind::Reset {
            name: user.display_name.clone(),
            link: self.link(&format!("/reset-password?token={}", token.expose())),
        }
        .render(&self.inner.config.base_url)?;
        mail::enqueue(&mut tx, &user.email, &message).await?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, None),
            AuditEntry::new(plinth_audit::action::AUTH_PASSWORD_RESET_REQUESTED).target("user", user.id),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, None),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserPasswordResetRequested { user_id: user.id.0 })
                .subject("user", user.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a new password with a reset link; signs the user out everywhere.
    pub async fn reset_password(&self, token: &str, password: SecretString, client: &ClientInfo) -> IdentityResult<()> {
        // Read first, so a password that breaks the policy does not burn the link.
        let user_id: Option<Option<UserId>> = {
            let mut conn = self.inner.db.read().await?;
            on!(conn.conn(), c => sqlx::query_scalar(
                "SELECT user_id FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3"
            ).bind(hash_token(token)).bind(OneTimePurpose::ResetPassword.as_str()).bind(Timestamp::now()).fetch_optional(c).await)?
        };
        let user_id = user_id.flatten().ok_or(IdentityError::InvalidToken)?;
        let user = {
            let mut conn = self.inner.db.read().await?;
            Users::find(conn.conn(), user_id)
                .await?
                .ok_or(IdentityError::InvalidToken)?
        };
        let email = Email::parse(&user.email).ok();
        self.inner.policy.check(password.expose_secret(), email.as_ref())?;
        let hash = self.inner.hasher.hash(password).await?;
        let mut tx = self.inner.db.begin().await?;
        OneTimeTokens::consume(&mut tx, OneTimePurpose::ResetPassword, token).await?;
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE users SET password_hash = $1, failed_logins = 0, locked_until = NULL,
                 status = CASE WHEN status = 'locked' THEN 'active' ELSE status END, updated_at = $2
             WHERE id = $3"
        ).bind(&hash).bind(Timestamp::now()).bind(user_id).execute(c).await)?;
        let revoked = Sessions::revoke_all(&mut tx, user_id, "password_reset", None).await?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(user_id)),
            AuditEntry::new(plinth_audit::action::AUTH_PASSWORD_RESET)
                .target("user", user_id)
                .changes(serde_json::json!({"sessions_revoked": revoked.len()})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(user_id)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserPasswordChanged {
                user_id: user_id.0,
                via: "reset".into(),
            })
            .subject("user", user_id),
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&revoked);
        Ok(())
    }
}
