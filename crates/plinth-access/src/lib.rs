//! Access control: the catalog of permissions and the built-in roles, defined once here
//! and shown by the API. Permissions are `resource:action` strings; a role is a set of
//! them. No one may grant a role whose permissions they do not all hold themselves.

mod catalog;
pub mod policy;
mod set;

pub use catalog::{CATALOG, PermissionDef, Scope, TenantRole, WorkspaceRole, is_known, is_sensitive};
pub use policy::{PolicyError, PolicyOutcome, PolicyRequest, ResourceFacts, TenantPolicies};
pub use set::PermissionSet;
