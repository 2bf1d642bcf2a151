//! A tenant's own view of its audit trail: reached only through its scope.

use plinth_audit::{AuditFilter, AuditRecord, VerifyReport};
use plinth_core::{Page, PageRequest};

use crate::error::TenancyResult;
use crate::scope::TenantScope;
use crate::service::Tenancy;

impl Tenancy {
    /// Recomputes the tenant's audit chain from its first record.
    pub async fn verify_audit(&self, scope: &TenantScope) -> TenancyResult<VerifyReport> {
        Ok(plinth_audit::verify_chain(&self.db, Some(scope.tenant())).await?)
    }
}

impl Tenancy {
    /// A page of the tenant's audit records, newest first; read inside the scope, so
    /// row-level security confines it on PostgreSQL.
    pub async fn audit_log(
        &self,
        scope: &TenantScope,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> TenancyResult<Page<AuditRecord>> {
        let mut read = scope.read(&self.db).await?;
        let chain = plinth_audit::chain_of(Some(scope.tenant()));
        Ok(plinth_audit::list(read.conn(), &chain, filter, page).await?)
    }
}
