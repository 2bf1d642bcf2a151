//! A tenant's own view of its audit trail: reached only through its scope.

use std::collections::HashMap;

use futures_util::Stream;
use plinth_audit::{AuditFilter, AuditRecord, ExportFormat, PruneError, Seal, Signer, VerifyReport};
use plinth_core::{Page, PageRequest, TenantId, Timestamp};
use plinth_store::{StoreResult, on};

use crate::error::TenancyResult;
use crate::model::TenantSettings;
use crate::scope::TenantScope;
use crate::service::Tenancy;

impl Tenancy {
    /// Recomputes the tenant's audit chain from its first record (or from its newest
    /// checkpoint, when `seal` holds on it).
    pub async fn verify_audit(&self, scope: &TenantScope, seal: &dyn Seal) -> TenancyResult<VerifyReport> {
        Ok(plinth_audit::verify_chain(&self.db, Some(scope.tenant()), seal).await?)
    }
}

/// What one retention pass did.
#[derive(Debug, Default)]
pub struct RetentionReport {
    pub chains: usize,
    pub pruned: u64,
    /// Chains left as they were, and why (a break found in the records due: kept as evidence).
    pub refused: Vec<(String, String)>,
}

impl Tenancy {
    /// Prunes every chain's records older than its retention as of `now`: each tenant's
    /// own choice within the platform's bounds, the platform's default for the platform
    /// chain. Checkpoints are signed by `signer`. A chain that cannot be pruned is
    /// reported and left alone; the others are still pruned.
    pub async fn prune_audit(&self, signer: &dyn Signer, now: Timestamp) -> TenancyResult<RetentionReport> {
        let mut conn = self.db.read().await?;
        let rows: Vec<(TenantId, String)> =
            on!(conn.conn(), c => sqlx::query_as("SELECT id, settings FROM tenants").fetch_all(c).await)?;
        drop(conn);
        let chosen: HashMap<String, Option<u32>> = rows
            .into_iter()
            .map(|(id, settings)| (id.to_string(), TenantSettings::stored(&settings).audit_retention_days))
            .collect();
        let mut report = RetentionReport::default();
        for chain in plinth_audit::chains(&self.db).await? {
            let requested = match chain.as_str() {
                plinth_audit::PLATFORM_CHAIN => None,
                tenant => match chosen.get(tenant) {
                    Some(requested) => *requested,
                    // A purged tenant's chain: nothing of it is left to keep.
                    None => continue,
                },
            };
            let days = self.audit_retention.effective(requested);
            let before = now - time::Duration::days(i64::from(days));
            report.chains += 1;
            match plinth_audit::prune_chain(&self.db, &chain, before, signer).await {
                Ok(pruned) => report.pruned += pruned,
                Err(PruneError::Store(e)) => return Err(e.into()),
                Err(refused) => report.refused.push((chain, refused.to_string())),
            }
        }
        Ok(report)
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
