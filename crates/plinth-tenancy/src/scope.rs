//! The tenant scope: proof that an actor may act inside one tenant. It is a capability,
//! not a convention: its fields are private and only this crate's authorisation makes one
//! (`Tenancy::authorize`, and tenant creation for the tenant it has just made), so code
//! outside tenancy holds a scope only if authorisation gave it one. Tenant-owned rows are
//! reached through the scope's own transactions; the store's raw scoped transactions are
//! refused by clippy (`disallowed-methods`) everywhere else.
//!
//! Outside this crate a scope cannot be made:
//!
//! ```compile_fail
//! use plinth_core::{Actor, TenantId};
//! let scope = plinth_tenancy::TenantScope::authorized(TenantId(uuid::Uuid::nil()), Actor::system());
//! ```
//!
//! ```compile_fail
//! use plinth_core::{Actor, TenantId};
//! let scope = plinth_tenancy::TenantScope { tenant: TenantId(uuid::Uuid::nil()), actor: Actor::system() };
//! ```
//!
//! while the same names are otherwise in reach (so the two examples above fail for the
//! constructor alone):
//!
//! ```
//! use plinth_core::{Actor, TenantId};
//! fn tenant_of(scope: &plinth_tenancy::TenantScope) -> TenantId { scope.tenant() }
//! let _ = (tenant_of, TenantId(uuid::Uuid::nil()), Actor::system());
//! ```

use plinth_core::{Actor, TenantId};
use plinth_store::{Db, ScopedRead, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
    actor: Actor,
}

impl TenantScope {
    /// Only for code of this crate that has verified the actor's membership in `tenant`
    /// (or that the actor is creating it).
    pub(crate) fn authorized(tenant: TenantId, actor: Actor) -> Self {
        Self { tenant, actor }
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// A transaction confined to this tenant (row-level security on PostgreSQL).
    #[allow(clippy::disallowed_methods)] // the one place scoped transactions are opened
    pub(crate) async fn begin(&self, db: &Db) -> StoreResult<Tx> {
        db.begin_scoped(self.tenant).await
    }

    /// A read connection confined to this tenant.
    #[allow(clippy::disallowed_methods)] // the one place scoped reads are opened
    pub(crate) async fn read(&self, db: &Db) -> StoreResult<ScopedRead> {
        db.read_scoped(self.tenant).await
    }
}
