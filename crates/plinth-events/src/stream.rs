//! A live stream of one tenant's events: what a console or product follows to see
//! changes as they happen. It resumes after the last event a client saw (from the outbox,
//! within its retention), then follows the bus, delivering each event once, in order.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use plinth_core::TenantId;
use plinth_store::{Conn, StoreResult, on};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use crate::list::{COLUMNS, EventView};

/// How many stored events one connection replays at most; a client further behind
/// reconnects from the last one it got.
pub const REPLAY_LIMIT: u32 = 10_000;

/// What a live stream yields next.
#[derive(Debug)]
pub enum Next {
    Event(Arc<EventView>),
    /// The client fell too far behind (or has more to replay than one connection
    /// carries): it should reconnect with the last id it received.
    Overflow,
    /// The bus closed: the server is stopping.
    Closed,
}

/// One client's stream.
pub struct Live {
    tenant: uuid::Uuid,
    types: Option<Vec<&'static str>>,
    replay: VecDeque<EventView>,
    /// The replay was cut at [`REPLAY_LIMIT`]: end after it instead of going live.
    replay_cut: bool,
    bus: Receiver<Arc<EventView>>,
    /// The newest of the tenant's events this stream has passed (sent or filtered out).
    last_seq: i64,
}

impl Live {
    /// A stream of `tenant`'s events of `types` (all when `None`) from `bus`, after
    /// replaying `replay` (the tenant's stored events after the client's last id, oldest
    /// first, read after subscribing to `bus` so nothing falls between the two).
    pub fn new(
        tenant: TenantId,
        types: Option<Vec<&'static str>>,
        bus: Receiver<Arc<EventView>>,
        after: Option<i64>,
        replay: Vec<EventView>,
    ) -> Self {
        let replay_cut = replay.len() >= REPLAY_LIMIT as usize;
        Self {
            tenant: tenant.0,
            types,
            replay: replay.into(),
            replay_cut,
            bus,
            last_seq: after.unwrap_or(0),
        }
    }

    fn wanted(&self, event: &EventView) -> bool {
        self.types
            .as_ref()
            .is_none_or(|types| types.contains(&event.event_type.as_str()))
    }

    pub async fn next(&mut self) -> Next {
        while let Some(event) = self.replay.pop_front() {
            self.last_seq = self.last_seq.max(event.seq);
            if self.wanted(&event) {
                return Next::Event(Arc::new(event));
            }
        }
        if self.replay_cut {
            return Next::Overflow;
        }
        loop {
            match self.bus.recv().await {
                Ok(event) => {
                    // Another tenant's, or one already replayed.
                    if event.tenant_id != Some(self.tenant) || event.seq <= self.last_seq {
                        continue;
                    }
                    self.last_seq = event.seq;
                    if self.wanted(&event) {
                        return Next::Event(event);
                    }
                }
                Err(RecvError::Lagged(_)) => return Next::Overflow,
                Err(RecvError::Closed) => return Next::Closed,
            }
        }
    }
}

/// `tenant`'s stored events after `after`, oldest first, at most [`REPLAY_LIMIT`].
pub async fn since(conn: Conn<'_>, tenant: TenantId, after: i64) -> StoreResult<Vec<EventView>> {
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
    Ok(
        on!(conn, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant).bind(after).bind(i64::from(REPLAY_LIMIT)).fetch_all(c).await)?,
    )
}

/// Counts the live streams open per tenant on this server, up to a limit.
#[derive(Clone)]
pub struct StreamLimit {
    per_tenant: u32,
    open: Arc<Mutex<HashMap<TenantId, u32>>>,
}

/// One open stream; the count drops when it is dropped.
pub struct StreamPermit {
    tenant: TenantId,
    open: Arc<Mutex<HashMap<TenantId, u32>>>,
}

impl StreamLimit {
    pub fn new(per_tenant: u32) -> Self {
        Self {
            per_tenant,
            open: Arc::default(),
        }
    }

    /// A permit for one more stream of `tenant`, or `None` when it has its limit open.
    pub fn acquire(&self, tenant: TenantId) -> Option<StreamPermit> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(tenant).or_default();
        if *count >= self.per_tenant {
            return None;
        }
        *count += 1;
        Some(StreamPermit {
            tenant,
            open: self.open.clone(),
        })
    }

    /// Streams open now, across tenants.
    pub fn open(&self) -> u64 {
        let open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        open.values().map(|n| u64::from(*n)).sum()
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.tenant) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}
