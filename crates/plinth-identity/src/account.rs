//! The signed-in user's own account: profile, password, sessions.

use plinth_audit::AuditEntry;
use plinth_core::{Page, PageRequest, SessionId, Timestamp, UserId};
use plinth_store::exec;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::actor_of;
use crate::email::Email;
use crate::error::{IdentityError, IdentityResult};
use crate::limits::Flow;
use crate::password::Verified;
use crate::service::{Identity, Principal};
use crate::sessions::{ClientInfo, SessionView, Sessions};
use crate::setup::MAX_DISPLAY_NAME_CHARS;
use crate::users::{PlatformRole, User, Users};

impl Identity {
    pub async fn me(&self, principal: &Principal) -> IdentityResult<(User, Vec<PlatformRole>)> {
        let mut conn = self.inner.db.read().await?;
        let user = Users::find(conn.conn(), principal.user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let roles = Users::platform_roles(conn.conn(), principal.user).await?;
        Ok((user, roles))
    }

    /// Whether the principal holds a platform role that operates tenants (read from the
    /// database, so a role taken away applies from the next request).
    pub async fn operates_tenants(&self, principal: &Principal) -> IdentityResult<bool> {
        if !principal.platform_admin {
            return Ok(false);
        }
        let mut conn = self.inner.db.read().await?;
        let roles = Users::platform_roles(conn.conn(), principal.user).await?;
        Ok(roles.iter().any(PlatformRole::operates_tenants))
    }

    pub async fn update_profile(
        &self,
        principal: &Principal,
        display_name: &str,
        client: &ClientInfo,
    ) -> IdentityResult<User> {
        let name = display_name.trim();
        if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(IdentityError::Validation(plinth_core::FieldErrors::single(
                "display_name",
                "invalid_value",
                "use 1 to 100 characters",
            )));
        }
        let mut tx = self.inner.db.begin().await?;
        let before = Users::find(tx.conn(), principal.user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        exec!(tx.conn(), c => sqlx::query("UPDATE users SET display_name = $1, updated_at = $2 WHERE id = $3")
            .bind(name).bind(Timestamp::now()).bind(principal.user).execute(c).await)?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(plinth_audit::action::USER_PROFILE_UPDATE)
                .target("user", principal.user)
                .changes(serde_json::json!({"display_name": {"before": before.display_name, "after": name}})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserUpdated {
                user_id: principal.user.0,
                display_name: name.to_owned(),
            })
            .subject("user", principal.user),
        )
        .await?;
        let user = Users::find(tx.conn(), principal.user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        tx.commit().await?;
        Ok(user)
    }

    /// Changes the password; every other session of the user ends.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: SecretString,
        new: SecretString,
        client: &ClientInfo,
    ) -> IdentityResult<()> {
        self.check_limit(Flow::Reauth, client, Some(&principal.user.to_string()))?;
        let (user, hash) = {
            let mut conn = self.inner.db.read().await?;
            let user = Users::find(conn.conn(), principal.user)
                .await?
                .ok_or(IdentityError::NotFound)?;
            let email = Email::parse(&user.email).map_err(IdentityError::Validation)?;
            let (_, hash) = Users::find_by_email(conn.conn(), &email)
                .await?
                .ok_or(IdentityError::NotFound)?;
            (user, hash)
        };
        let current_ok = match hash {
            Some(hash) if !current.expose_secret().is_empty() => {
                matches!(self.inner.hasher.verify(current, hash).await?, Verified::Match { .. })
            }
            _ => false,
        };
        if !current_ok {
            return Err(IdentityError::Validation(plinth_core::FieldErrors::single(
                "current_password",
                "incorrect",
                "the current password is not correct",
            )));
        }
        let email = Email::parse(&user.email).ok();
        self.inner
            .policy
            .check(new.expose_secret(), email.as_ref())
            .map_err(|errors| {
                let mut renamed = plinth_core::FieldErrors::new();
                for e in errors.iter() {
                    renamed.add("new_password", e.code, e.detail.clone());
                }
                IdentityError::Validation(renamed)
            })?;
        let new_hash = self.inner.hasher.hash(new).await?;
        let mut tx = self.inner.db.begin().await?;
        exec!(tx.conn(), c => sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(&new_hash).bind(Timestamp::now()).bind(principal.user).execute(c).await)?;
        let revoked = Sessions::revoke_all(&mut tx, principal.user, "password_change", Some(principal.session)).await?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(plinth_audit::action::AUTH_PASSWORD_CHANGE)
                .target("user", principal.user)
                .changes(serde_json::json!({"other_sessions_revoked": revoked.len()})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserPasswordChanged {
                user_id: principal.user.0,
                via: "change".into(),
            })
            .subject("user", principal.user),
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&revoked);
        Ok(())
    }

    /// The caller's live sessions, newest first.
    pub async fn my_sessions(&self, principal: &Principal, page: &PageRequest) -> IdentityResult<Page<SessionView>> {
        let before = SessionId(page.before_id().map_err(IdentityError::Validation)?);
        let mut conn = self.inner.db.read().await?;
        Sessions::list_active(conn.conn(), principal.user, Some(principal.session), before, page.limit).await
    }

    /// Ends one of the caller's own sessions. Another user's session id is not found.
    pub async fn revoke_my_session(
        &self,
        principal: &Principal,
        session: SessionId,
        client: &ClientInfo,
    ) -> IdentityResult<()> {
        let mut tx = self.inner.db.begin().await?;
        if Sessions::owner(tx.conn(), session).await? != Some(principal.user) {
            return Err(IdentityError::NotFound);
        }
        if !Sessions::revoke(&mut tx, session, "revoked_by_user").await? {
            return Err(IdentityError::NotFound);
        }
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            AuditEntry::new(plinth_audit::action::AUTH_SESSION_REVOKE).target("session", session),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(principal.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserSessionsRevoked {
                user_id: principal.user.0,
                sessions: 1,
                by: "user".into(),
            })
            .subject("user", principal.user),
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&[session]);
        Ok(())
    }

    async fn require_platform_role(&self, principal: &Principal, allowed: &[PlatformRole]) -> IdentityResult<()> {
        let mut conn = self.inner.db.read().await?;
        let roles = Users::platform_roles(conn.conn(), principal.user).await?;
        if roles.iter().any(|r| allowed.contains(r)) {
            Ok(())
        } else {
            Err(IdentityError::Forbidden("this needs a platform administrator"))
        }
    }

    /// A platform administrator ends every session of `user`.
    pub async fn admin_revoke_sessions(
        &self,
        admin: &Principal,
        user: UserId,
        client: &ClientInfo,
    ) -> IdentityResult<usize> {
        self.require_platform_role(admin, &[PlatformRole::SuperAdmin, PlatformRole::OpsAdmin])
            .await?;
        let mut tx = self.inner.db.begin().await?;
        Users::find(tx.conn(), user).await?.ok_or(IdentityError::NotFound)?;
        let revoked = Sessions::revoke_all(&mut tx, user, "revoked_by_admin", None).await?;
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(admin.user)),
            AuditEntry::new(plinth_audit::action::ADMIN_USER_SESSIONS_REVOKE)
                .target("user", user)
                .changes(serde_json::json!({"sessions_revoked": revoked.len()})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(admin.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserSessionsRevoked {
                user_id: user.0,
                sessions: revoked.len() as u64,
                by: "admin".into(),
            })
            .subject("user", user),
        )
        .await?;
        tx.commit().await?;
        self.forget_sessions(&revoked);
        Ok(revoked.len())
    }

    /// A platform administrator lifts a lockout.
    pub async fn admin_unlock(&self, admin: &Principal, user: UserId, client: &ClientInfo) -> IdentityResult<()> {
        self.require_platform_role(
            admin,
            &[PlatformRole::SuperAdmin, PlatformRole::OpsAdmin, PlatformRole::Support],
        )
        .await?;
        let mut tx = self.inner.db.begin().await?;
        let updated = exec!(tx.conn(), c => sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL,
                 status = CASE WHEN status = 'locked' THEN 'active' ELSE status END, updated_at = $1
             WHERE id = $2"
        ).bind(Timestamp::now()).bind(user).execute(c).await)?;
        if updated == 0 {
            return Err(IdentityError::NotFound);
        }
        plinth_audit::append(
            &mut tx,
            &actor_of(client, Some(admin.user)),
            AuditEntry::new(plinth_audit::action::ADMIN_USER_UNLOCK).target("user", user),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            &actor_of(client, Some(admin.user)),
            plinth_events::NewEvent::of(&plinth_events::catalog::UserUnlocked { user_id: user.0 })
                .subject("user", user),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
