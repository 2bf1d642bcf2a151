//! The dispatcher on each backend: commit order, marking only after the sink took the
//! events, sharing the outbox between dispatchers, waking on commit, pruning and lag.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::open;
use plinth_core::{Actor, PageRequest, TenantId, Timestamp};
use plinth_events::catalog::TenantUpdated;
use plinth_events::dispatch::{self, DispatchError};
use plinth_events::{Bus, EventView, NewEvent, Sink};
use plinth_store::{Db, exec};
use plinth_testkit::{TestDatabase, backend_tests};

/// Commits one event per tenant of `tenants`, in that order, each in its own transaction.
async fn commit_events(db: &Db, tenants: &[TenantId]) {
    for tenant in tenants {
        let mut tx = db.begin().await.unwrap();
        plinth_events::enqueue(
            &mut tx,
            &Actor::system(),
            NewEvent::of(&TenantUpdated { tenant_id: tenant.0 }).tenant(*tenant),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

/// A sink that remembers what it was given, or fails when told to.
#[derive(Default, Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Arc<EventView>>>>,
    failing: bool,
}

impl Sink for Recorder {
    async fn publish(&self, events: &[Arc<EventView>]) -> Result<(), DispatchError> {
        if self.failing {
            return Err(DispatchError::Publish("the broker is down".into()));
        }
        self.seen.lock().unwrap().extend(events.iter().cloned());
        Ok(())
    }
}

async fn unpublished(db: &Db) -> i64 {
    dispatch::lag(db).await.unwrap().unpublished
}

backend_tests!(
    events_are_published_once_in_commit_order,
    events_stay_unpublished_when_the_sink_fails,
    two_dispatchers_share_the_outbox_without_publishing_an_event_twice,
    a_commit_that_wrote_events_wakes_the_dispatcher,
    pruning_removes_only_published_events_past_the_cutoff,
);

async fn events_are_published_once_in_commit_order(db: TestDatabase) {
    let db = open(&db).await;
    let (a, b) = (TenantId::new(), TenantId::new());
    commit_events(&db, &[a, b, a, a, b]).await;
    let bus = Bus::new(64);
    let mut rx = bus.subscribe();
    assert_eq!(dispatch::dispatch_batch(&db, &bus, 3).await.unwrap().published, 3);
    assert_eq!(dispatch::dispatch_batch(&db, &bus, 3).await.unwrap().published, 2);
    assert_eq!(
        dispatch::dispatch_batch(&db, &bus, 3).await.unwrap().published,
        0,
        "nothing twice"
    );
    let mut got = Vec::new();
    while let Ok(event) = rx.try_recv() {
        got.push(event);
    }
    let tenants: Vec<_> = got.iter().map(|e| e.tenant_id.unwrap()).collect();
    assert_eq!(tenants, vec![a.0, b.0, a.0, a.0, b.0], "commit order");
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        got.iter()
            .all(|e| e.published_at.is_some() && e.event_type == "tenant.updated")
    );
    assert_eq!(unpublished(&db).await, 0);
    db.close().await;
}

async fn events_stay_unpublished_when_the_sink_fails(db: TestDatabase) {
    let db = open(&db).await;
    commit_events(&db, &[TenantId::new(), TenantId::new()]).await;
    let failing = Recorder {
        failing: true,
        ..Recorder::default()
    };
    assert!(matches!(
        dispatch::dispatch_batch(&db, &failing, 10).await,
        Err(DispatchError::Publish(_))
    ));
    assert_eq!(unpublished(&db).await, 2, "not marked without the sink's word");

    let working = Recorder::default();
    assert_eq!(dispatch::dispatch_batch(&db, &working, 10).await.unwrap().published, 2);
    assert_eq!(unpublished(&db).await, 0);
    db.close().await;
}

async fn two_dispatchers_share_the_outbox_without_publishing_an_event_twice(test_db: TestDatabase) {
    // Two handles are two processes' pools on PostgreSQL (on SQLite they share a file).
    let first = open(&test_db).await;
    let second = open(&test_db).await;
    let tenants: Vec<TenantId> = (0..8).map(|_| TenantId::new()).collect();
    let order: Vec<TenantId> = (0..400).map(|i| tenants[i % tenants.len()]).collect();
    commit_events(&first, &order).await;

    // Both sinks write one log, in the order the publishes happened.
    let log = Recorder::default();
    let drain = |db: Db, sink: Recorder| async move {
        let mut published = 0;
        loop {
            let batch = dispatch::dispatch_batch(&db, &sink, 7).await.unwrap();
            if batch.published + batch.deferred == 0 {
                return published;
            }
            published += batch.published;
            tokio::task::yield_now().await;
        }
    };
    let (by_first, by_second) = tokio::join!(drain(first.clone(), log.clone()), drain(second.clone(), log.clone()));
    assert_eq!(by_first + by_second, order.len());

    let mut ids = HashSet::new();
    let mut last_per_tenant: HashMap<_, i64> = HashMap::new();
    for event in log.seen.lock().unwrap().iter() {
        assert!(ids.insert(event.id), "event {} published twice", event.seq);
        let last = last_per_tenant.entry(event.tenant_id).or_default();
        assert!(event.seq > *last, "a tenant's events are published in commit order");
        *last = event.seq;
    }
    assert_eq!(ids.len(), order.len(), "every event published");
    assert_eq!(unpublished(&first).await, 0);
    first.close().await;
    second.close().await;
}

async fn a_commit_that_wrote_events_wakes_the_dispatcher(db: TestDatabase) {
    let db = open(&db).await;
    let bus = Bus::new(64);
    let mut rx = bus.subscribe();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A poll far longer than the wait below: only the commit's signal can wake it.
    let worker = tokio::spawn({
        let (db, bus, stop) = (db.clone(), bus.clone(), stop.clone());
        async move {
            dispatch::run(db, bus, 100, Duration::from_secs(3600), Default::default(), move || {
                stop.load(std::sync::atomic::Ordering::SeqCst)
            })
            .await;
        }
    });
    let tenant = TenantId::new();
    for _ in 0..3 {
        commit_events(&db, &[tenant]).await;
        let event = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the commit woke the dispatcher")
            .unwrap();
        assert_eq!(event.tenant_id, Some(tenant.0));
    }
    // A transaction rolled back publishes nothing.
    let mut tx = db.begin().await.unwrap();
    plinth_events::enqueue(
        &mut tx,
        &Actor::system(),
        NewEvent::of(&TenantUpdated { tenant_id: tenant.0 }).tenant(tenant),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let page = PageRequest { limit: 50, after: None };
    let kept = plinth_events::list(db.read().await.unwrap().conn(), tenant, None, &page)
        .await
        .unwrap();
    assert_eq!(kept.items.len(), 3, "the rolled-back event was never written");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    worker.abort();
    db.close().await;
}

async fn pruning_removes_only_published_events_past_the_cutoff(db: TestDatabase) {
    let db = open(&db).await;
    let tenant = TenantId::new();
    commit_events(&db, &[tenant; 5]).await;
    dispatch::dispatch_batch(&db, &Recorder::default(), 3).await.unwrap();
    commit_events(&db, &[tenant; 2]).await;
    // Three published a day ago, two published now, two not published.
    let mut tx = db.begin().await.unwrap();
    let day_ago = Timestamp::now() - time::Duration::days(1);
    exec!(tx.conn(), c => sqlx::query("UPDATE outbox SET published_at = $1 WHERE published_at IS NOT NULL")
        .bind(day_ago).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();
    dispatch::dispatch_batch(&db, &Recorder::default(), 2).await.unwrap();

    let lag = dispatch::lag(&db).await.unwrap();
    assert_eq!(lag.unpublished, 2);
    assert!(lag.seconds(Timestamp::now()) >= 0.0 && lag.oldest.is_some());

    let cutoff = Timestamp::now() - time::Duration::hours(1);
    assert_eq!(dispatch::prune_published(&db, cutoff, 2).await.unwrap(), 3);
    assert_eq!(dispatch::prune_published(&db, cutoff, 2).await.unwrap(), 0);
    assert_eq!(unpublished(&db).await, 2, "unpublished events are kept");
    let page = PageRequest { limit: 50, after: None };
    let left = plinth_events::list(db.read().await.unwrap().conn(), tenant, None, &page)
        .await
        .unwrap();
    assert_eq!(left.items.len(), 4);
    db.close().await;
}
