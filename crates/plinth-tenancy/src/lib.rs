//! Tenancy: tenants (the organisations using the platform), their members, workspaces
//! and invitations, the tenant lifecycle, and the authorisation step that turns a
//! signed-in user and a tenant reference into a [`TenantScope`].

mod api_keys;
mod audit;
mod authorize;
mod deletion;
mod error;
mod events;
mod export;
mod flags;
mod invitations;
mod lifecycle;
mod members;
mod model;
mod owned;
mod policies;
mod portals;
mod roles;
mod scope;
mod service;
mod slug;
mod webhooks;
mod workspaces;

pub use api_keys::ApiKeyRequest;
pub use audit::RetentionReport;
pub use authorize::TenantContext;
pub use deletion::PurgePlan;
pub use error::{TenancyError, TenancyResult};
pub use export::{Manifest, ManifestFile};
pub use flags::{Flag, FlagInput, FlagLevel};
pub use invitations::{INVITATION_TTL, Invitation, Inviter};
pub use members::{MemberFilter, MemberSort, MemberView};
pub use model::{Branding, Isolation, NewTenant, Tenant, TenantSettings, TenantStatus, TenantUpdate, is_hex_colour};
pub use policies::{PolicyInput, PolicyValidation, PolicyView, RequestFacts};
pub use portals::{NavItem, Portal, PortalInput, PublicPortal, SignInOptions};
pub use roles::{Decision, MatrixUpdate, RoleBook, RoleInput, RoleMatrix, RoleView};
pub use service::{MyTenant, Tenancy, TenantRequester};
pub use slug::Slug;
pub use webhooks::{DisableNotice, ReplayRequest, Replayed, TestSent, Webhooks};
pub use workspaces::Workspace;

pub use scope::TenantScope;
