//! The catalogue of events: every kind Plinth publishes, each a payload type with its name,
//! the version of its payload and what it means. Events are enqueued from these types only
//! ([`enqueue`](crate::enqueue) takes an [`Event`]), so every payload has one shape, whose
//! JSON Schema the OpenAPI document publishes under the type's name.
//!
//! A payload names what changed by id and carries the facts a subscriber needs to act
//! without reading back; it never carries a secret. A change to a payload's shape that a
//! subscriber could trip on is a new version.

use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// One kind of event: a dotted name (`tenant.created`), the version of its payload, and
/// what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventType {
    pub name: &'static str,
    pub version: u32,
    pub description: &'static str,
    /// The payload's schema in the OpenAPI document's components.
    pub schema: &'static str,
}

/// A payload of the catalogue.
pub trait Event: Serialize {
    const TYPE: EventType;
}

macro_rules! catalogue {
    ($(
        $(#[$doc:meta])*
        $payload:ident = $name:literal, version $version:literal: $description:literal {
            $($(#[$field_doc:meta])* $field:ident: $field_type:ty,)*
        }
    )+) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
            pub struct $payload {
                $($(#[$field_doc])* pub $field: $field_type,)*
            }

            impl Event for $payload {
                const TYPE: EventType = EventType {
                    name: $name,
                    version: $version,
                    description: $description,
                    schema: stringify!($payload),
                };
            }
        )+

        /// Every event type, by name.
        pub const ALL: &[EventType] = &[$(<$payload as Event>::TYPE,)+];

        /// The JSON Schema of every payload, named as [`EventType::schema`] says.
        pub fn schemas() -> Vec<(String, RefOr<Schema>)> {
            vec![$((stringify!($payload).to_owned(), <$payload as utoipa::PartialSchema>::schema()),)+]
        }
    };
}

catalogue! {
    /// A personal API key was created.
    ApiKeyCreated = "api_key.created", version 1: "A member created a personal API key for the tenant" {
        api_key_id: uuid::Uuid,
        user_id: uuid::Uuid,
        permissions: Vec<String>,
    }
    /// A personal API key was revoked.
    ApiKeyRevoked = "api_key.revoked", version 1: "A personal API key was revoked" {
        api_key_id: uuid::Uuid,
        user_id: uuid::Uuid,
    }
    /// A feature flag was removed.
    FlagDeleted = "flag.deleted", version 1: "A feature flag was removed; the level above applies again" {
        key: String,
        level: String,
    }
    /// A feature flag was set.
    FlagSet = "flag.set", version 1: "A feature flag was set for the platform, a tenant or a portal" {
        key: String,
        /// `platform`, `tenant` or `portal`.
        level: String,
        #[schema(value_type = Object)]
        value: serde_json::Value,
    }
    /// An invitation was sent again.
    MemberInvitationResent = "member.invitation_resent", version 1: "An invitation was sent again with a new link; the old one stopped working" {
        invitation_id: uuid::Uuid,
    }
    /// An invitation was revoked.
    MemberInvitationRevoked = "member.invitation_revoked", version 1: "A pending invitation was revoked" {
        invitation_id: uuid::Uuid,
    }
    /// Someone was invited.
    MemberInvited = "member.invited", version 1: "An invitation into the tenant was sent" {
        invitation_id: uuid::Uuid,
        /// The role the invitation grants.
        role: String,
    }
    /// A member joined through an invitation.
    MemberJoined = "member.joined", version 1: "A person joined the tenant (an invitation was accepted)" {
        user_id: uuid::Uuid,
        /// The roles they joined with.
        roles: Vec<String>,
    }
    /// A member left or was removed.
    MemberRemoved = "member.removed", version 1: "A member was removed from the tenant" {
        user_id: uuid::Uuid,
    }
    /// A member's roles or status changed.
    MemberUpdated = "member.updated", version 1: "A member's roles or status changed" {
        user_id: uuid::Uuid,
        roles: Vec<String>,
        /// `active` or `suspended`.
        status: String,
    }
    /// An attribute policy was created.
    PolicyCreated = "policy.created", version 1: "An attribute policy was created" {
        policy_id: uuid::Uuid,
    }
    /// An attribute policy was deleted.
    PolicyDeleted = "policy.deleted", version 1: "An attribute policy was deleted" {
        policy_id: uuid::Uuid,
    }
    /// An attribute policy was changed.
    PolicyUpdated = "policy.updated", version 1: "An attribute policy was changed (its source, name or state)" {
        policy_id: uuid::Uuid,
    }
    /// A portal was created.
    PortalCreated = "portal.created", version 1: "A portal was created" {
        portal_id: uuid::Uuid,
        slug: String,
    }
    /// A portal was deleted.
    PortalDeleted = "portal.deleted", version 1: "A portal was deleted" {
        portal_id: uuid::Uuid,
        slug: String,
    }
    /// A portal was changed.
    PortalUpdated = "portal.updated", version 1: "A portal's name, navigation, allowed roles or sign-up setting changed" {
        portal_id: uuid::Uuid,
    }
    /// A custom role was created.
    RoleCreated = "role.created", version 1: "A custom role was created" {
        role: String,
        permissions: Vec<String>,
    }
    /// A custom role was deleted.
    RoleDeleted = "role.deleted", version 1: "A custom role was deleted" {
        role: String,
    }
    /// Several roles' permissions were changed at once.
    RoleMatrixUpdated = "role.matrix_updated", version 1: "The permissions of several roles were changed at once (the role matrix)" {
        /// The roles whose permissions changed.
        roles: Vec<String>,
    }
    /// A role's permissions changed.
    RoleUpdated = "role.updated", version 1: "A role's permissions changed" {
        role: String,
        permissions: Vec<String>,
    }
    /// A tenant was created.
    TenantCreated = "tenant.created", version 1: "A tenant was created" {
        tenant_id: uuid::Uuid,
        slug: String,
        name: String,
        owner_id: uuid::Uuid,
        /// `active`, or `trial` when it starts with a trial.
        status: String,
        /// `pool` (shared tables) or `silo` (a database of its own).
        isolation: String,
    }
    /// A tenant's deletion was requested.
    TenantDeletionRequested = "tenant.deletion_requested", version 1: "A tenant's deletion was requested; it is purged after the grace period unless restored" {
        tenant_id: uuid::Uuid,
        /// When the tenant's data is purged.
        #[schema(value_type = String, format = DateTime)]
        purge_after: plinth_core::Timestamp,
    }
    /// A tenant was imported.
    TenantImported = "tenant.imported", version 1: "A tenant was restored here from an export archive" {
        tenant_id: uuid::Uuid,
    }
    /// A tenant was purged.
    TenantPurged = "tenant.purged", version 1: "A tenant and all its data were purged after the grace period" {
        tenant_id: uuid::Uuid,
        slug: String,
    }
    /// A tenant was reactivated.
    TenantReactivated = "tenant.reactivated", version 1: "A suspended or expired tenant was reactivated" {
        tenant_id: uuid::Uuid,
    }
    /// A tenant's deletion was taken back.
    TenantRestored = "tenant.restored", version 1: "A tenant's deletion was taken back during the grace period" {
        tenant_id: uuid::Uuid,
    }
    /// A tenant was suspended.
    TenantSuspended = "tenant.suspended", version 1: "A tenant was suspended by the platform" {
        tenant_id: uuid::Uuid,
        reason: String,
    }
    /// A tenant's trial ran out.
    TenantTrialExpired = "tenant.trial_expired", version 1: "A tenant's trial expired; its owners keep read access" {
        tenant_id: uuid::Uuid,
    }
    /// A tenant's name, settings or branding changed.
    TenantUpdated = "tenant.updated", version 1: "A tenant's name, settings or branding changed" {
        tenant_id: uuid::Uuid,
    }
    /// An account was created.
    UserCreated = "user.created", version 1: "An account was created (sign-up, or the first administrator at setup)" {
        user_id: uuid::Uuid,
        /// `signup` or `setup`.
        via: String,
    }
    /// An address was verified.
    UserEmailVerified = "user.email_verified", version 1: "An account's e-mail address was verified" {
        user_id: uuid::Uuid,
    }
    /// An account was locked.
    UserLocked = "user.locked", version 1: "An account was locked for a while after repeated failed sign-ins" {
        user_id: uuid::Uuid,
        locked_seconds: i64,
    }
    /// Second factors changed.
    UserMfaChanged = "user.mfa_changed", version 1: "An account's second factors changed (an authenticator app or passkey added, renamed or removed, recovery codes renewed)" {
        user_id: uuid::Uuid,
        /// `totp_enabled`, `totp_disabled`, `recovery_codes_regenerated`, `passkey_added`, `passkey_renamed` or `passkey_removed`.
        change: String,
    }
    /// A password changed.
    UserPasswordChanged = "user.password_changed", version 1: "An account's password changed; its other sessions were ended" {
        user_id: uuid::Uuid,
        /// `change` (the user, signed in) or `reset` (through an e-mailed link).
        via: String,
    }
    /// A reset link was sent.
    UserPasswordResetRequested = "user.password_reset_requested", version 1: "A password reset link was sent to an account's address" {
        user_id: uuid::Uuid,
    }
    /// Sessions were ended.
    UserSessionsRevoked = "user.sessions_revoked", version 1: "Sessions of an account were ended (by the user, everywhere, or by an administrator)" {
        user_id: uuid::Uuid,
        sessions: u64,
        /// `user`, `everywhere` or `admin`.
        by: String,
    }
    /// A sign-in stopped at the second factor.
    UserSignInChallenged = "user.sign_in_challenged", version 1: "A password was accepted and a second factor was asked for" {
        user_id: uuid::Uuid,
    }
    /// A sign-in succeeded.
    UserSignedIn = "user.signed_in", version 1: "An account signed in: a session began" {
        user_id: uuid::Uuid,
        session_id: uuid::Uuid,
    }
    /// A sign-out.
    UserSignedOut = "user.signed_out", version 1: "An account signed out of one session" {
        user_id: uuid::Uuid,
        session_id: uuid::Uuid,
    }
    /// A session chose a tenant.
    UserTenantSelected = "user.tenant_selected", version 1: "A member's session switched into the tenant (or one of its portals)" {
        user_id: uuid::Uuid,
        portal: Option<String>,
    }
    /// A locked account was unlocked.
    UserUnlocked = "user.unlocked", version 1: "An administrator unlocked an account locked after failed sign-ins" {
        user_id: uuid::Uuid,
    }
    /// A profile changed.
    UserUpdated = "user.updated", version 1: "An account's profile (display name) changed" {
        user_id: uuid::Uuid,
        display_name: String,
    }
    /// A webhook endpoint was registered.
    WebhookCreated = "webhook.created", version 1: "A webhook endpoint was registered" {
        webhook_id: uuid::Uuid,
        url: String,
        event_types: Vec<String>,
    }
    /// A webhook endpoint was removed.
    WebhookDeleted = "webhook.deleted", version 1: "A webhook endpoint was removed, with its deliveries" {
        webhook_id: uuid::Uuid,
        url: String,
    }
    /// Plinth disabled a webhook endpoint.
    WebhookDisabled = "webhook.disabled", version 1: "Plinth disabled a webhook endpoint: it answered 410 Gone (`gone`), or every attempt failed for days (`failing`)" {
        webhook_id: uuid::Uuid,
        url: String,
        reason: String,
    }
    /// Dead deliveries were put back on the schedule.
    WebhookReplayed = "webhook.replayed", version 1: "Deliveries of a webhook endpoint were taken out of the dead-letter queue to be attempted again" {
        webhook_id: uuid::Uuid,
        deliveries: u64,
    }
    /// A webhook endpoint's secret was rotated.
    WebhookSecretRotated = "webhook.secret_rotated", version 1: "A webhook endpoint got a new signing secret; the previous one signs too until `previous_expires_at`" {
        webhook_id: uuid::Uuid,
        previous_expires_at: String,
    }
    /// A webhook endpoint was changed.
    WebhookUpdated = "webhook.updated", version 1: "A webhook endpoint's URL, description, event types or enabled state changed" {
        webhook_id: uuid::Uuid,
        enabled: bool,
    }
    /// A workspace was created.
    WorkspaceCreated = "workspace.created", version 1: "A workspace was created" {
        workspace_id: uuid::Uuid,
        slug: String,
    }
    /// A workspace was deleted.
    WorkspaceDeleted = "workspace.deleted", version 1: "A workspace was deleted" {
        workspace_id: uuid::Uuid,
    }
    /// A workspace was renamed.
    WorkspaceUpdated = "workspace.updated", version 1: "A workspace's name changed" {
        workspace_id: uuid::Uuid,
        name: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_sorted_and_dotted() {
        let names: Vec<&str> = ALL.iter().map(|t| t.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "the catalogue is listed once each, by name");
        for event in ALL {
            assert!(event.name.contains('.') && event.version >= 1, "{event:?}");
            assert!(!event.description.is_empty());
        }
        assert_eq!(schemas().len(), ALL.len());
    }
}
