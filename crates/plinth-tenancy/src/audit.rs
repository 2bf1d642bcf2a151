//! A tenant's own view of its audit trail: reached only through its scope.

use plinth_audit::VerifyReport;

use crate::error::TenancyResult;
use crate::scope::TenantScope;
use crate::service::Tenancy;

impl Tenancy {
    /// Recomputes the tenant's audit chain from its first record.
    pub async fn verify_audit(&self, scope: &TenantScope) -> TenancyResult<VerifyReport> {
        Ok(plinth_audit::verify_chain(&self.db, Some(scope.tenant())).await?)
    }
}
