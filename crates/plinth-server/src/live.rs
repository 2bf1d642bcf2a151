//! Opening a live event stream: the tenant's limit, the subscription and the replay of
//! what a reconnecting client missed.

use plinth_events::{Live, StreamPermit};
use plinth_tenancy::TenantContext;

use crate::problem::{Problem, ProblemKind};
use crate::state::AppState;

/// A stream of the tenant's events of `types` after event `after`, and the permit that
/// counts it against the tenant's limit while it is open.
pub async fn open(
    state: &AppState,
    ctx: &TenantContext,
    types: Option<Vec<&'static str>>,
    after: Option<i64>,
) -> Result<(Live, StreamPermit), Problem> {
    let tenant = ctx.scope.tenant();
    let permit = state.event_streams.acquire(tenant).ok_or_else(|| {
        Problem::new(
            ProblemKind::RateLimited,
            "this tenant has as many live event streams open as allowed; close one first",
        )
    })?;
    // Subscribe before reading the replay: an event published in between is then in both,
    // and the stream passes it once.
    let bus = state.events.subscribe();
    let replay = match after {
        Some(after) => state.tenancy.events_since(&ctx.scope, after).await?,
        None => Vec::new(),
    };
    Ok((Live::new(tenant, types, bus, after, replay), permit))
}
