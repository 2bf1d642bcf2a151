//! A tenant's own view of its recent events: reached only through its scope.

use plinth_core::{Page, PageRequest};

use crate::error::TenancyResult;
use crate::scope::TenantScope;
use crate::service::Tenancy;

impl Tenancy {
    /// A page of the tenant's recent events of `types` (all when `None`), newest first;
    /// read inside the scope, so row-level security confines it on PostgreSQL.
    pub async fn events(
        &self,
        scope: &TenantScope,
        types: Option<&[&'static str]>,
        page: &PageRequest,
    ) -> TenancyResult<Page<plinth_events::EventView>> {
        let mut read = scope.read(&self.db).await?;
        Ok(plinth_events::list(read.conn(), scope.tenant(), types, page).await?)
    }
}
