use serde::Serialize;

use crate::set::PermissionSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Platform,
    Tenant,
    Workspace,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct PermissionDef {
    pub key: &'static str,
    pub scope: Scope,
    pub description: &'static str,
}

macro_rules! catalog {
    ($($index:literal => $key:literal, $scope:ident, $description:literal;)+) => {
        /// Every permission Plinth knows, each with a stable bit index.
        pub const CATALOG: &[PermissionDef] = &[
            $(PermissionDef { key: $key, scope: Scope::$scope, description: $description },)+
        ];

        pub(crate) fn index_of(key: &str) -> Option<u32> {
            match key {
                $($key => Some($index),)+
                _ => None,
            }
        }
    };
}

catalog! {
    0 => "tenant:read", Tenant, "See the tenant's name, status, settings and branding";
    1 => "tenant:update", Tenant, "Change the tenant's name, settings and branding";
    2 => "tenant:delete", Tenant, "Request the deletion of the tenant";
    3 => "tenant:export", Tenant, "Download a complete export of the tenant's data";
    4 => "members:read", Tenant, "List members and their roles";
    5 => "members:invite", Tenant, "Invite people and manage pending invitations";
    6 => "members:update", Tenant, "Change members' roles and suspend members";
    7 => "members:remove", Tenant, "Remove members from the tenant";
    8 => "workspaces:read", Tenant, "List and open workspaces";
    9 => "workspaces:create", Tenant, "Create workspaces";
    10 => "workspaces:update", Tenant, "Rename workspaces and manage their members";
    11 => "workspaces:delete", Tenant, "Delete workspaces";
    12 => "audit:read", Tenant, "Read the tenant's audit trail";
    13 => "roles:read", Tenant, "See the tenant's roles and the permissions they grant";
    14 => "roles:update", Tenant, "Create, change and delete custom roles (never beyond one's own permissions)";
    15 => "policies:read", Tenant, "See the tenant's attribute policies";
    16 => "policies:update", Tenant, "Create, change and delete attribute policies (owners only: a policy can restrict everyone)";
    17 => "events:read", Tenant, "Read the tenant's recent events, as integrations receive them";
    18 => "webhooks:manage", Tenant, "Register webhook endpoints, read their delivery logs, replay and rotate their secrets";
}

/// Whether refusing `key` to a member is worth an audit record: the permissions that
/// administer the tenant (its settings, people, roles, policies, data and trail), whose
/// refusals show a member probing beyond their role.
pub fn is_sensitive(key: &str) -> bool {
    matches!(
        key,
        "tenant:update"
            | "tenant:delete"
            | "tenant:export"
            | "members:invite"
            | "members:update"
            | "members:remove"
            | "audit:read"
            | "roles:update"
            | "policies:update"
            | "webhooks:manage"
    )
}

/// Whether `key` names a permission of the catalog.
pub fn is_known(key: &str) -> bool {
    index_of(key).is_some()
}

/// The built-in tenant roles. Their permission sets are defined here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantRole {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl TenantRole {
    pub const ALL: [TenantRole; 4] = [
        TenantRole::Owner,
        TenantRole::Admin,
        TenantRole::Member,
        TenantRole::Viewer,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            TenantRole::Owner => "owner",
            TenantRole::Admin => "admin",
            TenantRole::Member => "member",
            TenantRole::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<TenantRole> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn permission_keys(&self) -> &'static [&'static str] {
        match self {
            TenantRole::Owner => &[
                "tenant:read",
                "tenant:update",
                "tenant:delete",
                "tenant:export",
                "members:read",
                "members:invite",
                "members:update",
                "members:remove",
                "workspaces:read",
                "workspaces:create",
                "workspaces:update",
                "workspaces:delete",
                "audit:read",
                "roles:read",
                "roles:update",
                "policies:read",
                "policies:update",
                "events:read",
                "webhooks:manage",
            ],
            TenantRole::Admin => &[
                "tenant:read",
                "tenant:update",
                "members:read",
                "members:invite",
                "members:update",
                "members:remove",
                "workspaces:read",
                "workspaces:create",
                "workspaces:update",
                "workspaces:delete",
                "audit:read",
                "roles:read",
                "roles:update",
                "policies:read",
                "events:read",
                "webhooks:manage",
            ],
            TenantRole::Member => &["tenant:read", "members:read", "workspaces:read", "workspaces:create"],
            TenantRole::Viewer => &["tenant:read", "members:read", "workspaces:read"],
        }
    }

    pub fn permissions(&self) -> PermissionSet {
        PermissionSet::from_keys(self.permission_keys().iter().copied())
    }
}

/// Roles inside a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceRole {
    Admin,
    Member,
    Viewer,
}

impl WorkspaceRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            WorkspaceRole::Admin => "admin",
            WorkspaceRole::Member => "member",
            WorkspaceRole::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<WorkspaceRole> {
        [WorkspaceRole::Admin, WorkspaceRole::Member, WorkspaceRole::Viewer]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_permission_is_in_the_catalog_and_keys_are_unique() {
        for role in TenantRole::ALL {
            for key in role.permission_keys() {
                assert!(is_known(key), "{key} of {role:?}");
            }
        }
        let mut keys: Vec<_> = CATALOG.iter().map(|p| p.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), CATALOG.len());
        for (i, def) in CATALOG.iter().enumerate() {
            assert_eq!(index_of(def.key), Some(i as u32), "indices follow the catalog order");
        }
    }

    #[test]
    fn roles_are_strictly_ordered_so_admins_cannot_mint_owners() {
        let owner = TenantRole::Owner.permissions();
        let admin = TenantRole::Admin.permissions();
        let member = TenantRole::Member.permissions();
        let viewer = TenantRole::Viewer.permissions();
        assert!(admin.is_subset_of(&owner) && !owner.is_subset_of(&admin));
        assert!(member.is_subset_of(&admin));
        assert!(viewer.is_subset_of(&member));
        assert_eq!(owner.len(), CATALOG.len(), "owners hold every tenant permission");
    }
}
