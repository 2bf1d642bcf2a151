//! Invitations: a tenant administrator invites an e-mail address with a role; the
//! invitee accepts with an existing account or creates one. Links live 7 days, can be
//! revoked and resent, and work once.

use plinth_audit::AuditEntry;
use plinth_core::{Actor, FieldErrors, Page, PageRequest, TenantId, Timestamp, UserId};
use plinth_events::NewEvent;
use plinth_events::catalog::{MemberInvited, MemberJoined};
use plinth_identity::mail::{self, EmailKind};
use plinth_identity::{
    Email, NewUser, OneTimePurpose, OneTimeTokens, PasswordHasher, PasswordPolicy, TokenSubject, User, Users,
    hash_token,
};
use plinth_store::{Tx, exec, on};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use time::Duration;

use crate::authorize::TenantContext;
use crate::error::{TenancyError, TenancyResult};
use crate::scope::TenantScope;
use crate::service::Tenancy;

pub const INVITATION_TTL: Duration = Duration::days(7);

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub email: String,
    pub role: String,
    pub status: String,
    pub invited_by: Option<UserId>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

const COLUMNS: &str = "id, email, role, status, invited_by, created_at, expires_at";

/// Who is inviting and where the links point.
pub struct Inviter<'a> {
    pub name: &'a str,
    pub base_url: &'a str,
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: uuid::Uuid,
    tenant_id: TenantId,
    email: String,
    email_normalized: String,
    role: String,
    status: String,
    expires_at: Timestamp,
    token_used: bool,
}

impl Tenancy {
    pub async fn invite(
        &self,
        ctx: &TenantContext,
        email: &str,
        role: &str,
        inviter: &Inviter<'_>,
    ) -> TenancyResult<Invitation> {
        let scope = &ctx.scope;
        let mut errors = FieldErrors::new();
        let email = match Email::parse(email) {
            Ok(e) => Some(e),
            Err(e) => {
                errors = e;
                None
            }
        };
        let book = self.role_book(scope).await?;
        if !book.exists(role) {
            errors.add("role", "invalid_value", "not a role of this tenant");
            return Err(TenancyError::Validation(errors));
        }
        errors.finish()?;
        let Some(email) = email else {
            return Err(TenancyError::NotFound);
        };
        if !book.permissions(&[role.to_owned()]).is_subset_of(&ctx.permissions) {
            return Err(TenancyError::Forbidden(
                "you cannot invite with a role whose permissions you do not hold",
            ));
        }
        let tenant = self.tenant(scope).await?;
        let domain = email.normalized().rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if !tenant.settings.allowed_email_domains.is_empty()
            && !tenant.settings.allowed_email_domains.iter().any(|d| d == domain)
        {
            return Err(TenancyError::Validation(FieldErrors::single(
                "email",
                "domain_not_allowed",
                "this tenant only admits addresses of its allowed domains",
            )));
        }
        let mut tx = scope.begin(&self.db).await?;
        let already_member: i64 = on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 AND u.email_normalized = $2"
        ).bind(scope.tenant()).bind(email.normalized()).fetch_one(c).await)?;
        if already_member > 0 {
            return Err(TenancyError::Conflict("this address is already a member"));
        }
        let pending: i64 = on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT count(*) FROM invitations WHERE tenant_id = $1 AND email_normalized = $2 AND status = 'pending' AND expires_at > $3"
        ).bind(scope.tenant()).bind(email.normalized()).bind(Timestamp::now()).fetch_one(c).await)?;
        if pending > 0 {
            return Err(TenancyError::Conflict(
                "this address already has a pending invitation; resend it instead",
            ));
        }
        let id = uuid::Uuid::now_v7();
        let now = Timestamp::now();
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO invitations (id, tenant_id, email, email_normalized, role, invited_by, status, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)"
        ).bind(id).bind(scope.tenant()).bind(email.as_str()).bind(email.normalized()).bind(role)
        .bind(scope.actor().user_id()).bind(now).bind(now + INVITATION_TTL).execute(c).await)?;
        self.send_invitation(&mut tx, scope, id, email.as_str(), &tenant.name, inviter)
            .await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::MEMBER_INVITE)
                .tenant(scope.tenant())
                .target("invitation", id)
                .changes(serde_json::json!({"email": email.normalized(), "role": role})),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            NewEvent::of(&MemberInvited {
                invitation_id: id,
                role: role.to_owned(),
            })
            .tenant(scope.tenant())
            .subject("invitation", id),
        )
        .await?;
        tx.commit().await?;
        self.invitation(scope, id).await
    }

    async fn send_invitation(
        &self,
        tx: &mut Tx,
        scope: &TenantScope,
        invitation: uuid::Uuid,
        address: &str,
        tenant_name: &str,
        inviter: &Inviter<'_>,
    ) -> TenancyResult<()> {
        let (token_id, token) = OneTimeTokens::issue(
            tx,
            OneTimePurpose::Invitation,
            TokenSubject {
                tenant: Some(scope.tenant()),
                email: Some(address.to_owned()),
                ..TokenSubject::default()
            },
            INVITATION_TTL,
        )
        .await?;
        exec!(tx.conn(), c => sqlx::query("UPDATE invitations SET token_id = $1 WHERE id = $2")
            .bind(token_id).bind(invitation).execute(c).await)?;
        let message = EmailKind::Invite {
            inviter: inviter.name.to_owned(),
            tenant: tenant_name.to_owned(),
            link: format!("{}/invitations/accept?token={}", inviter.base_url, token.expose()),
        }
        .render(inviter.base_url)?;
        mail::enqueue(tx, address, &message).await?;
        Ok(())
    }

    async fn invitation(&self, scope: &TenantScope, id: uuid::Uuid) -> TenancyResult<Invitation> {
        let mut conn = scope.read(&self.db).await?;
        let found: Option<Invitation> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM invitations WHERE tenant_id = $1 AND id = $2"
        ))).bind(scope.tenant()).bind(id).fetch_optional(c).await)?;
        found.ok_or(TenancyError::NotFound)
    }

    /// Pending invitations, newest first.
    pub async fn invitations(&self, scope: &TenantScope, page: &PageRequest) -> TenancyResult<Page<Invitation>> {
        let before = page.before_id().map_err(TenancyError::Validation)?;
        let mut conn = scope.read(&self.db).await?;
        // Ids are UUIDv7: id order is creation order.
        let rows: Vec<Invitation> = on!(conn.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM invitations WHERE tenant_id = $1 AND status = 'pending' AND id < $2
             ORDER BY id DESC LIMIT $3"
        ))).bind(scope.tenant()).bind(before).bind(i64::from(page.limit) + 1).fetch_all(c).await)?;
        Ok(Page::from_overfetch(rows, page.limit, |i| i.id.to_string()))
    }

    pub async fn revoke_invitation(&self, scope: &TenantScope, id: uuid::Uuid) -> TenancyResult<()> {
        let mut tx = scope.begin(&self.db).await?;
        let token: Option<Option<uuid::Uuid>> = on!(tx.conn(), c => sqlx::query_scalar(
            "UPDATE invitations SET status = 'revoked' WHERE tenant_id = $1 AND id = $2 AND status = 'pending' RETURNING token_id"
        ).bind(scope.tenant()).bind(id).fetch_optional(c).await)?;
        let token = token.ok_or(TenancyError::NotFound)?;
        if let Some(token) = token {
            exec!(tx.conn(), c => sqlx::query("UPDATE one_time_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                .bind(Timestamp::now()).bind(token).execute(c).await)?;
        }
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::MEMBER_INVITE_REVOKE)
                .tenant(scope.tenant())
                .target("invitation", id),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::MemberInvitationRevoked { invitation_id: id })
                .tenant(scope.tenant())
                .subject("invitation", id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sends a fresh link (the old one stops working) and restarts the 7 days.
    pub async fn resend_invitation(
        &self,
        scope: &TenantScope,
        id: uuid::Uuid,
        inviter: &Inviter<'_>,
    ) -> TenancyResult<Invitation> {
        let tenant = self.tenant(scope).await?;
        let mut tx = scope.begin(&self.db).await?;
        let row: Option<(String, Option<uuid::Uuid>)> = on!(tx.conn(), c => sqlx::query_as(
            "SELECT email, token_id FROM invitations WHERE tenant_id = $1 AND id = $2 AND status = 'pending'"
        ).bind(scope.tenant()).bind(id).fetch_optional(c).await)?;
        let (address, old_token) = row.ok_or(TenancyError::NotFound)?;
        if let Some(old) = old_token {
            exec!(tx.conn(), c => sqlx::query("UPDATE one_time_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                .bind(Timestamp::now()).bind(old).execute(c).await)?;
        }
        exec!(tx.conn(), c => sqlx::query("UPDATE invitations SET expires_at = $1 WHERE id = $2")
            .bind(Timestamp::now() + INVITATION_TTL).bind(id).execute(c).await)?;
        self.send_invitation(&mut tx, scope, id, &address, &tenant.name, inviter)
            .await?;
        plinth_audit::append(
            &mut tx,
            scope.actor(),
            AuditEntry::new(plinth_audit::action::MEMBER_INVITE_RESEND)
                .tenant(scope.tenant())
                .target("invitation", id),
        )
        .await?;
        plinth_events::enqueue(
            &mut tx,
            scope.actor(),
            plinth_events::NewEvent::of(&plinth_events::catalog::MemberInvitationResent { invitation_id: id })
                .tenant(scope.tenant())
                .subject("invitation", id),
        )
        .await?;
        tx.commit().await?;
        self.invitation(scope, id).await
    }

    /// The invitation behind a link, whatever its state, for a clear answer.
    async fn pending_by_token(&self, tx: &mut Tx, token: &str) -> TenancyResult<Pending> {
        let found: Option<Pending> = on!(tx.conn(), c => sqlx::query_as(
            "SELECT i.id, i.tenant_id, i.email, i.email_normalized, i.role, i.status, i.expires_at, (t.used_at IS NOT NULL) AS token_used
             FROM one_time_tokens t JOIN invitations i ON i.token_id = t.id
             WHERE t.token_hash = $1 AND t.purpose = $2"
        ).bind(hash_token(token)).bind(OneTimePurpose::Invitation.as_str()).fetch_optional(c).await)?;
        let pending = found.ok_or(TenancyError::Identity(plinth_identity::IdentityError::InvalidToken))?;
        if pending.status == "accepted" {
            return Err(TenancyError::Conflict("this invitation has already been accepted"));
        }
        if pending.status != "pending" || pending.token_used || pending.expires_at <= Timestamp::now() {
            return Err(TenancyError::Identity(plinth_identity::IdentityError::InvalidToken));
        }
        Ok(pending)
    }

    async fn join(
        &self,
        tx: &mut Tx,
        pending: &Pending,
        user: UserId,
        token: &str,
        actor: &Actor,
    ) -> TenancyResult<()> {
        OneTimeTokens::consume(tx, OneTimePurpose::Invitation, token).await?;
        let now = Timestamp::now();
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, roles, status, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $4)
             ON CONFLICT (tenant_id, user_id) DO NOTHING"
        ).bind(pending.tenant_id).bind(user).bind(&pending.role).bind(now).execute(c).await)?;
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO workspace_members (tenant_id, workspace_id, user_id, role, created_at)
             SELECT tenant_id, id, $2, 'member', $3 FROM workspaces WHERE tenant_id = $1 AND is_default
             ON CONFLICT (workspace_id, user_id) DO NOTHING"
        ).bind(pending.tenant_id).bind(user).bind(now).execute(c).await)?;
        exec!(tx.conn(), c => sqlx::query(
            "UPDATE invitations SET status = 'accepted', accepted_at = $1, accepted_by = $2 WHERE id = $3"
        ).bind(now).bind(user).bind(pending.id).execute(c).await)?;
        self.bump_authz_version(tx, user).await?;
        plinth_audit::append(
            tx,
            actor,
            AuditEntry::new(plinth_audit::action::MEMBER_JOIN)
                .tenant(pending.tenant_id)
                .target("user", user)
                .changes(serde_json::json!({"invitation_id": pending.id, "role": pending.role})),
        )
        .await?;
        plinth_events::enqueue(
            tx,
            actor,
            NewEvent::of(&MemberJoined {
                user_id: user.0,
                roles: vec![pending.role.clone()],
            })
            .tenant(pending.tenant_id)
            .subject("user", user),
        )
        .await?;
        Ok(())
    }

    /// A signed-in user accepts an invitation sent to their address.
    pub async fn accept_invitation(&self, user: &User, token: &str, actor: &Actor) -> TenancyResult<TenantId> {
        let mut tx = self.db.begin().await?;
        let pending = self.pending_by_token(&mut tx, token).await?;
        if pending.email_normalized != user.email.to_lowercase() {
            return Err(TenancyError::Forbidden(
                "this invitation was sent to another e-mail address",
            ));
        }
        self.join(&mut tx, &pending, user.id, token, actor).await?;
        tx.commit().await?;
        Ok(pending.tenant_id)
    }

    /// Someone without an account accepts: the account is created (its address counts
    /// as verified, since the link reached it) and joins the tenant.
    pub async fn accept_invitation_as_new_user(
        &self,
        hasher: &PasswordHasher,
        token: &str,
        password: SecretString,
        display_name: Option<&str>,
        actor: &Actor,
    ) -> TenancyResult<(User, TenantId)> {
        let pending = {
            let mut tx = self.db.begin().await?;
            let pending = self.pending_by_token(&mut tx, token).await?;
            tx.rollback().await?;
            pending
        };
        let email = Email::parse(&pending.email).map_err(TenancyError::Validation)?;
        PasswordPolicy::default().check(password.expose_secret(), Some(&email))?;
        let display_name = display_name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(email.local_part())
            .to_owned();
        if display_name.chars().count() > 100 {
            return Err(TenancyError::Validation(FieldErrors::single(
                "display_name",
                "too_long",
                "use at most 100 characters",
            )));
        }
        let hash = hasher.hash(password).await?;
        let mut tx = self.db.begin().await?;
        let pending = self.pending_by_token(&mut tx, token).await?;
        let user = match Users::insert(
            &mut tx,
            NewUser {
                email: &email,
                display_name: &display_name,
                password_hash: Some(&hash),
                email_verified: true,
            },
        )
        .await
        {
            Ok(user) => user,
            Err(plinth_identity::IdentityError::EmailTaken) => {
                return Err(TenancyError::Conflict(
                    "an account with this address exists: sign in and accept the invitation",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let actor = actor.clone().with_user(user.id);
        self.join(&mut tx, &pending, user.id, token, &actor).await?;
        tx.commit().await?;
        Ok((user, pending.tenant_id))
    }
}
