//! A tenant's own view of its audit trail: reached only through its scope.

use futures_util::Stream;
use plinth_audit::{AuditFilter, AuditRecord, ExportFormat, VerifyReport};
use plinth_core::{Page, PageRequest};
use plinth_store::StoreResult;

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

impl Tenancy {
    /// The tenant's audit records matching `filter`, oldest first, as chunks of `format`;
    /// each batch is read inside the scope, with no connection held between batches.
    pub fn audit_export(
        &self,
        scope: &TenantScope,
        filter: AuditFilter,
        format: ExportFormat,
    ) -> impl Stream<Item = StoreResult<Vec<u8>>> + Send + 'static {
        let db = self.db.clone();
        let scope = scope.clone();
        let chain = plinth_audit::chain_of(Some(scope.tenant()));
        let open = move || {
            let (db, scope) = (db.clone(), scope.clone());
            async move { scope.read(&db).await }
        };
        plinth_audit::export_stream(open, chain, filter, format)
    }
}
