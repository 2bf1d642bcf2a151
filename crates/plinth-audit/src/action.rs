//! The catalogue of audit actions: every kind of record Plinth writes, by name. Records are
//! written with these constants only ([`AuditEntry::new`](crate::AuditEntry::new) takes an
//! [`Action`], which only this module makes), so the list is complete by construction; the
//! API publishes it, and filters by prefix (`member.*`) expand to names from it.

use serde::Serialize;

/// One kind of audit record: a dotted name (`tenant.suspend`) and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Action {
    name: &'static str,
    #[serde(skip)]
    description: &'static str,
}

impl Action {
    const fn new(name: &'static str, description: &'static str) -> Self {
        Self { name, description }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn description(&self) -> &'static str {
        self.description
    }

    /// The catalogue entry named `name`.
    pub fn parse(name: &str) -> Option<Action> {
        ALL.iter().copied().find(|a| a.name == name)
    }

    /// The actions a filter names: `member.*` gives every action under `member.`, any
    /// other text the one action of that name. `None` when nothing matches.
    pub fn matching(filter: &str) -> Option<Vec<Action>> {
        plinth_core::catalogue::matching(ALL, |a| a.name, filter)
    }
}

/// The catalogue as an OpenAPI schema (`AuditAction`): a string, one of the names, each
/// explained in the description; records and filters reference it.
impl utoipa::PartialSchema for Action {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let meanings: Vec<String> = ALL
            .iter()
            .map(|a| format!("- `{}`: {}", a.name, a.description))
            .collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!(
                "What an audit record says happened, from the catalogue:\n{}",
                meanings.join("\n")
            )))
            .enum_values(Some(ALL.iter().map(|a| a.name)))
            .into()
    }
}

impl utoipa::ToSchema for Action {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("AuditAction")
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A platform administrator revoked a user's sessions.
pub const ADMIN_USER_SESSIONS_REVOKE: Action = Action::new(
    "admin.user.sessions.revoke",
    "A platform administrator revoked a user's sessions",
);
/// A platform administrator lifted a sign-in lockout.
pub const ADMIN_USER_UNLOCK: Action =
    Action::new("admin.user.unlock", "A platform administrator lifted a sign-in lockout");
/// A personal API key was created.
pub const API_KEY_CREATE: Action = Action::new("api_key.create", "A personal API key was created");
/// A personal API key was revoked.
pub const API_KEY_REVOKE: Action = Action::new("api_key.revoke", "A personal API key was revoked");
/// The chain's oldest records were pruned past their retention.
pub const AUDIT_PRUNE: Action = Action::new(
    "audit.prune",
    "The chain's oldest records were pruned past their retention, under a signed checkpoint",
);
/// An administrative action was refused for lack of a permission or platform role.
pub const AUTHZ_DENIED: Action = Action::new(
    "authz.denied",
    "An administrative action was refused: a member lacking a permission that administers the tenant (by their roles or a policy), or a user lacking the platform role a route needs",
);
/// An account was locked after repeated failed sign-ins.
pub const AUTH_LOCKOUT: Action = Action::new("auth.lockout", "An account was locked after repeated failed sign-ins");
/// A user signed in.
pub const AUTH_LOGIN: Action = Action::new("auth.login", "A user signed in");
/// A sign-in failed.
pub const AUTH_LOGIN_FAILED: Action = Action::new("auth.login.failed", "A sign-in failed");
/// A password was accepted and a second factor was asked for.
pub const AUTH_LOGIN_MFA_REQUIRED: Action = Action::new(
    "auth.login.mfa_required",
    "A password was accepted and a second factor was asked for",
);
/// A user signed out.
pub const AUTH_LOGOUT: Action = Action::new("auth.logout", "A user signed out");
/// A user signed out of every session.
pub const AUTH_LOGOUT_EVERYWHERE: Action = Action::new("auth.logout_everywhere", "A user signed out of every session");
/// A second-factor code or passkey was refused.
pub const AUTH_MFA_FAILED: Action = Action::new("auth.mfa.failed", "A second-factor code or passkey was refused");
/// A passkey sign-in was refused.
pub const AUTH_PASSKEY_FAILED: Action = Action::new("auth.passkey.failed", "A passkey sign-in was refused");
/// A user changed their password.
pub const AUTH_PASSWORD_CHANGE: Action = Action::new("auth.password.change", "A user changed their password");
/// A password was reset through an e-mailed link.
pub const AUTH_PASSWORD_RESET: Action =
    Action::new("auth.password.reset", "A password was reset through an e-mailed link");
/// A password reset link was requested.
pub const AUTH_PASSWORD_RESET_REQUESTED: Action =
    Action::new("auth.password.reset_requested", "A password reset link was requested");
/// A spent refresh token was presented again; its session family was revoked.
pub const AUTH_REFRESH_REUSE: Action = Action::new(
    "auth.refresh.reuse",
    "A spent refresh token was presented again; its session family was revoked",
);
/// A user revoked one of their sessions.
pub const AUTH_SESSION_REVOKE: Action = Action::new("auth.session.revoke", "A user revoked one of their sessions");
/// A sign-up named an address that already has an account.
pub const AUTH_SIGNUP_EXISTING_ADDRESS: Action = Action::new(
    "auth.signup.existing_address",
    "A sign-up named an address that already has an account",
);
/// A session's tenant was dropped because the membership no longer stands.
pub const AUTH_TENANT_DROPPED: Action = Action::new(
    "auth.tenant.dropped",
    "A session's tenant was dropped because the membership no longer stands",
);
/// A session selected a tenant.
pub const AUTH_TENANT_SELECT: Action = Action::new("auth.tenant.select", "A session selected a tenant");
/// A feature flag was removed.
pub const FLAG_DELETE: Action = Action::new("flag.delete", "A feature flag was removed");
/// A feature flag was set.
pub const FLAG_SET: Action = Action::new("flag.set", "A feature flag was set");
/// A member was added directly.
pub const MEMBER_ADD: Action = Action::new("member.add", "A member was added directly");
/// An invitation was sent.
pub const MEMBER_INVITE: Action = Action::new("member.invite", "An invitation was sent");
/// An invitation was sent again.
pub const MEMBER_INVITE_RESEND: Action = Action::new("member.invite.resend", "An invitation was sent again");
/// An invitation was revoked.
pub const MEMBER_INVITE_REVOKE: Action = Action::new("member.invite.revoke", "An invitation was revoked");
/// An invitation was accepted.
pub const MEMBER_JOIN: Action = Action::new("member.join", "An invitation was accepted");
/// A member was removed.
pub const MEMBER_REMOVE: Action = Action::new("member.remove", "A member was removed");
/// A member's roles or status changed.
pub const MEMBER_UPDATE: Action = Action::new("member.update", "A member's roles or status changed");
/// A passkey was registered.
pub const MFA_PASSKEY_ADD: Action = Action::new("mfa.passkey.add", "A passkey was registered");
/// A passkey was removed.
pub const MFA_PASSKEY_REMOVE: Action = Action::new("mfa.passkey.remove", "A passkey was removed");
/// A passkey was renamed.
pub const MFA_PASSKEY_RENAME: Action = Action::new("mfa.passkey.rename", "A passkey was renamed");
/// Recovery codes were regenerated.
pub const MFA_RECOVERY_CODES_REGENERATE: Action =
    Action::new("mfa.recovery_codes.regenerate", "Recovery codes were regenerated");
/// An authenticator app was removed.
pub const MFA_TOTP_DISABLE: Action = Action::new("mfa.totp.disable", "An authenticator app was removed");
/// An authenticator app was enrolled.
pub const MFA_TOTP_ENABLE: Action = Action::new("mfa.totp.enable", "An authenticator app was enrolled");
/// A super-admin was created.
pub const PLATFORM_SUPERADMIN_CREATE: Action = Action::new("platform.superadmin.create", "A super-admin was created");
/// An access policy was created.
pub const POLICY_CREATE: Action = Action::new("policy.create", "An access policy was created");
/// An access policy was deleted.
pub const POLICY_DELETE: Action = Action::new("policy.delete", "An access policy was deleted");
/// An access policy was changed.
pub const POLICY_UPDATE: Action = Action::new("policy.update", "An access policy was changed");
/// A portal was created.
pub const PORTAL_CREATE: Action = Action::new("portal.create", "A portal was created");
/// A portal was deleted.
pub const PORTAL_DELETE: Action = Action::new("portal.delete", "A portal was deleted");
/// A portal was changed.
pub const PORTAL_UPDATE: Action = Action::new("portal.update", "A portal was changed");
/// A custom role was created.
pub const ROLE_CREATE: Action = Action::new("role.create", "A custom role was created");
/// A custom role was deleted.
pub const ROLE_DELETE: Action = Action::new("role.delete", "A custom role was deleted");
/// The role matrix was changed.
pub const ROLE_MATRIX_UPDATE: Action = Action::new("role.matrix.update", "The role matrix was changed");
/// A custom role was changed.
pub const ROLE_UPDATE: Action = Action::new("role.update", "A custom role was changed");
/// A tenant was created.
pub const TENANT_CREATE: Action = Action::new("tenant.create", "A tenant was created");
/// A tenant's deletion was taken back.
pub const TENANT_DELETE_CANCEL: Action = Action::new("tenant.delete.cancel", "A tenant's deletion was taken back");
/// A tenant's deletion was requested.
pub const TENANT_DELETE_REQUEST: Action = Action::new("tenant.delete.request", "A tenant's deletion was requested");
/// A tenant archive was exported.
pub const TENANT_EXPORT: Action = Action::new("tenant.export", "A tenant archive was exported");
/// A tenant archive was imported.
pub const TENANT_IMPORT: Action = Action::new("tenant.import", "A tenant archive was imported");
/// A tenant was purged after its grace period.
pub const TENANT_PURGE: Action = Action::new("tenant.purge", "A tenant was purged after its grace period");
/// A tenant was reactivated.
pub const TENANT_REACTIVATE: Action = Action::new("tenant.reactivate", "A tenant was reactivated");
/// A tenant was suspended.
pub const TENANT_SUSPEND: Action = Action::new("tenant.suspend", "A tenant was suspended");
/// A tenant's trial expired.
pub const TENANT_TRIAL_EXPIRE: Action = Action::new("tenant.trial_expire", "A tenant's trial expired");
/// A tenant's name, settings or branding changed.
pub const TENANT_UPDATE: Action = Action::new("tenant.update", "A tenant's name, settings or branding changed");
/// A user verified their e-mail address.
pub const USER_EMAIL_VERIFY: Action = Action::new("user.email.verify", "A user verified their e-mail address");
/// A user changed their profile.
pub const USER_PROFILE_UPDATE: Action = Action::new("user.profile.update", "A user changed their profile");
/// A user signed up.
pub const USER_SIGNUP: Action = Action::new("user.signup", "A user signed up");
/// A webhook endpoint was registered.
pub const WEBHOOK_CREATE: Action = Action::new("webhook.create", "A webhook endpoint was registered");
/// A webhook endpoint was removed.
pub const WEBHOOK_DELETE: Action = Action::new("webhook.delete", "A webhook endpoint was removed");
/// Plinth disabled a webhook endpoint.
pub const WEBHOOK_DISABLE: Action = Action::new(
    "webhook.disable",
    "Plinth disabled a webhook endpoint (410 Gone, or failing for days)",
);
/// Dead deliveries were replayed.
pub const WEBHOOK_REPLAY: Action = Action::new("webhook.replay", "Dead webhook deliveries were replayed");
/// A webhook endpoint's secret was rotated.
pub const WEBHOOK_SECRET_ROTATE: Action = Action::new(
    "webhook.secret.rotate",
    "A webhook endpoint's signing secret was rotated",
);
/// A webhook endpoint was changed.
pub const WEBHOOK_UPDATE: Action = Action::new("webhook.update", "A webhook endpoint was changed");
/// A workspace was created.
pub const WORKSPACE_CREATE: Action = Action::new("workspace.create", "A workspace was created");
/// A workspace was deleted.
pub const WORKSPACE_DELETE: Action = Action::new("workspace.delete", "A workspace was deleted");
/// A workspace was changed.
pub const WORKSPACE_UPDATE: Action = Action::new("workspace.update", "A workspace was changed");

/// Every action, by name.
pub const ALL: &[Action] = &[
    ADMIN_USER_SESSIONS_REVOKE,
    ADMIN_USER_UNLOCK,
    API_KEY_CREATE,
    API_KEY_REVOKE,
    AUDIT_PRUNE,
    AUTH_LOCKOUT,
    AUTH_LOGIN,
    AUTH_LOGIN_FAILED,
    AUTH_LOGIN_MFA_REQUIRED,
    AUTH_LOGOUT,
    AUTH_LOGOUT_EVERYWHERE,
    AUTH_MFA_FAILED,
    AUTH_PASSKEY_FAILED,
    AUTH_PASSWORD_CHANGE,
    AUTH_PASSWORD_RESET,
    AUTH_PASSWORD_RESET_REQUESTED,
    AUTH_REFRESH_REUSE,
    AUTH_SESSION_REVOKE,
    AUTH_SIGNUP_EXISTING_ADDRESS,
    AUTH_TENANT_DROPPED,
    AUTH_TENANT_SELECT,
    AUTHZ_DENIED,
    FLAG_DELETE,
    FLAG_SET,
    MEMBER_ADD,
    MEMBER_INVITE,
    MEMBER_INVITE_RESEND,
    MEMBER_INVITE_REVOKE,
    MEMBER_JOIN,
    MEMBER_REMOVE,
    MEMBER_UPDATE,
    MFA_PASSKEY_ADD,
    MFA_PASSKEY_REMOVE,
    MFA_PASSKEY_RENAME,
    MFA_RECOVERY_CODES_REGENERATE,
    MFA_TOTP_DISABLE,
    MFA_TOTP_ENABLE,
    PLATFORM_SUPERADMIN_CREATE,
    POLICY_CREATE,
    POLICY_DELETE,
    POLICY_UPDATE,
    PORTAL_CREATE,
    PORTAL_DELETE,
    PORTAL_UPDATE,
    ROLE_CREATE,
    ROLE_DELETE,
    ROLE_MATRIX_UPDATE,
    ROLE_UPDATE,
    TENANT_CREATE,
    TENANT_DELETE_CANCEL,
    TENANT_DELETE_REQUEST,
    TENANT_EXPORT,
    TENANT_IMPORT,
    TENANT_PURGE,
    TENANT_REACTIVATE,
    TENANT_SUSPEND,
    TENANT_TRIAL_EXPIRE,
    TENANT_UPDATE,
    USER_EMAIL_VERIFY,
    USER_PROFILE_UPDATE,
    USER_SIGNUP,
    WEBHOOK_CREATE,
    WEBHOOK_DELETE,
    WEBHOOK_DISABLE,
    WEBHOOK_REPLAY,
    WEBHOOK_SECRET_ROTATE,
    WEBHOOK_UPDATE,
    WORKSPACE_CREATE,
    WORKSPACE_DELETE,
    WORKSPACE_UPDATE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_sorted_and_dotted() {
        for pair in ALL.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} before {}", pair[0], pair[1]);
        }
        for action in ALL {
            assert!(action.name.contains('.') && !action.description.is_empty(), "{action}");
            assert!(
                action
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{action}"
            );
        }
    }

    #[test]
    fn filters_expand_prefixes_and_refuse_unknown_names() {
        let members = Action::matching("member.*").unwrap();
        assert_eq!(members.len(), 7);
        assert!(members.contains(&MEMBER_INVITE_REVOKE));
        assert_eq!(Action::matching("tenant.suspend"), Some(vec![TENANT_SUSPEND]));
        assert_eq!(Action::matching("tenant.susp*"), None, "a prefix ends at a dot");
        assert_eq!(Action::matching("rocket.launch"), None);
        assert_eq!(Action::matching("*"), None);
    }
}
