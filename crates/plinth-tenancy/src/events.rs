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

    /// The tenant's stored events after `after`, oldest first (at most
    /// [`plinth_events::stream::REPLAY_LIMIT`]): what a live stream replays on resuming.
    pub async fn events_since(&self, scope: &TenantScope, after: i64) -> TenancyResult<Vec<plinth_events::EventView>> {
        let mut read = scope.read(&self.db).await?;
        Ok(plinth_events::stream::since(read.conn(), scope.tenant(), after).await?)
    }
}
