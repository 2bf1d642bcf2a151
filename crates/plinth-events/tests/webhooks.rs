//! The deliverer against a real receiver on loopback, on each backend: the target rules
//! applied at every attempt (through the HTTP client's resolver), days of failures
//! disabling an endpoint, and several deliverers sharing the schedule without sending any
//! attempt twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::open;
use plinth_core::{Actor, TenantId, Timestamp};
use plinth_events::catalog::TenantUpdated;
use plinth_events::dispatch;
use plinth_events::webhooks::endpoints::{self, Checked};
use plinth_events::webhooks::{
    Deliverer, DeliveryError, DeliverySettings, OnDisabled, SecretBox, SecretError, SigningSecret, TargetRules,
};
use plinth_events::{Bus, NewEvent};
use plinth_store::{Db, Tx, exec, on};
use plinth_testkit::webhook::{Answer, Receiver};
use plinth_testkit::{TestDatabase, backend_tests};

backend_tests!(
    every_attempt_resolves_the_host_again_and_refuses_a_private_address,
    failing_for_days_disables_the_endpoint_and_tells_the_tenant,
    deliverers_sharing_the_schedule_never_send_an_attempt_twice,
    what_happened_while_an_endpoint_was_disabled_is_not_sent_once_it_is_enabled_again,
);

/// Keeps secrets as they are: the master key's sealing has its own tests, and these are
/// about delivering.
struct Plain;

impl SecretBox for Plain {
    fn seal(&self, secret: &SigningSecret) -> Result<Vec<u8>, SecretError> {
        Ok(secret.as_bytes().to_vec())
    }
    fn open(&self, sealed: &[u8]) -> Result<SigningSecret, SecretError> {
        Ok(SigningSecret::from_bytes(sealed.to_vec()))
    }
}

/// Remembers the endpoints it was told were disabled.
#[derive(Default)]
struct Notices(Mutex<Vec<(uuid::Uuid, &'static str)>>);

impl OnDisabled for Notices {
    fn disabled<'a>(
        &'a self,
        _tx: &'a mut Tx,
        _tenant: TenantId,
        endpoint: uuid::Uuid,
        _url: &'a str,
        reason: &'static str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>> {
        self.0.lock().unwrap().push((endpoint, reason));
        Box::pin(async { Ok(()) })
    }
}

fn rules(allowed: &str) -> TargetRules {
    TargetRules {
        allowed: allowed.parse().unwrap(),
        allow_http: true,
    }
}

fn deliverer(db: &Db, allowed: &str, notices: Arc<Notices>) -> Deliverer {
    let mut settings = DeliverySettings::new(rules(allowed));
    settings.schedule = vec![Duration::ZERO; 2];
    settings.timeout = Duration::from_secs(5);
    Deliverer::new(db.clone(), Arc::new(Plain), notices, settings, Default::default()).unwrap()
}

/// A tenant with one endpoint at `url`; returns both.
async fn tenant_with_endpoint(db: &Db, url: &str) -> (TenantId, uuid::Uuid) {
    let tenant = TenantId::new();
    let now = Timestamp::now();
    let mut tx = db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO tenants (id, slug, name, status, isolation, settings, branding, onboarding, created_at, updated_at)
         VALUES ($1, $2, 'T', 'active', 'pool', '{}', '{}', '[]', $3, $3)"
    ).bind(tenant).bind(format!("t-{}", tenant.0.simple())).bind(now).execute(c).await)
    .unwrap();
    let checked = Checked {
        url: Some(url.parse().unwrap()),
        description: None,
        event_types: None,
    };
    let secret = SigningSecret::generate().unwrap();
    let endpoint = endpoints::insert(&mut tx, tenant, &checked, true, secret.as_bytes())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (tenant, endpoint)
}

/// Commits `count` events of `tenant` and publishes them, which makes their deliveries.
async fn events(db: &Db, tenant: TenantId, count: usize) {
    commit_events(db, tenant, count).await;
    publish(db).await;
}

/// Commits `count` events of `tenant` to the outbox, unpublished.
async fn commit_events(db: &Db, tenant: TenantId, count: usize) {
    let mut tx = db.begin().await.unwrap();
    for _ in 0..count {
        plinth_events::enqueue(
            &mut tx,
            &Actor::system(),
            NewEvent::of(&TenantUpdated { tenant_id: tenant.0 }).tenant(tenant),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Publishes what the outbox holds, as the dispatcher would.
async fn publish(db: &Db) {
    let bus = Bus::new(16);
    while dispatch::dispatch_batch(db, &bus, 1000).await.unwrap().published > 0 {}
}

async fn attempts(db: &Db, endpoint: uuid::Uuid) -> Vec<(Option<i64>, Option<String>)> {
    let mut conn = db.read().await.unwrap();
    on!(conn.conn(), c => sqlx::query_as(
        "SELECT a.status_code, a.error FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
         WHERE d.endpoint_id = $1 ORDER BY a.attempted_at"
    ).bind(endpoint).fetch_all(c).await)
    .unwrap()
}

async fn every_attempt_resolves_the_host_again_and_refuses_a_private_address(db: TestDatabase) {
    let db = open(&db).await;
    let receiver = Receiver::start(Vec::new()).await;
    // A name, not an address: only the resolver sees where it points.
    let url = receiver.url.replace("127.0.0.1", "localhost");
    let (tenant, endpoint) = tenant_with_endpoint(&db, &url).await;
    events(&db, tenant, 1).await;

    let strict = deliverer(&db, "", Arc::default());
    assert_eq!(strict.deliver_due().await.unwrap(), 1);
    let tried = attempts(&db, endpoint).await;
    assert_eq!(tried.len(), 1);
    assert_eq!(tried[0].0, None, "no answer: nothing was sent");
    let error = tried[0].1.clone().unwrap();
    assert!(error.starts_with("refused: localhost resolves to"), "{error}");
    assert!(error.contains("not a public address"), "{error}");
    assert!(receiver.received().is_empty());

    // The same endpoint, now that the platform allows loopback: the retry goes through.
    let allowing = deliverer(&db, "127.0.0.0/8,::1/128", Arc::default());
    assert_eq!(allowing.deliver_due().await.unwrap(), 1);
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(attempts(&db, endpoint).await[1].0, Some(200));
}

async fn failing_for_days_disables_the_endpoint_and_tells_the_tenant(db: TestDatabase) {
    let db = open(&db).await;
    let receiver = Receiver::start(vec![Answer::status(500), Answer::status(500)]).await;
    let (tenant, endpoint) = tenant_with_endpoint(&db, &receiver.url).await;
    events(&db, tenant, 1).await;
    let notices = Arc::new(Notices::default());
    let deliverer = deliverer(&db, "127.0.0.0/8", notices.clone());

    // A first failure starts the clock; it does not disable anything.
    deliverer.deliver_due().await.unwrap();
    let first = endpoints::get(db.read().await.unwrap().conn(), tenant, endpoint)
        .await
        .unwrap()
        .unwrap();
    assert!(first.enabled);
    assert!(first.failing_since.is_some());
    assert!(notices.0.lock().unwrap().is_empty());

    // Failing since six days ago: the next failure disables it, once.
    let mut tx = db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2")
        .bind(Timestamp::now() - time::Duration::days(6)).bind(endpoint).execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();
    deliverer.deliver_due().await.unwrap();
    let disabled = endpoints::get(db.read().await.unwrap().conn(), tenant, endpoint)
        .await
        .unwrap()
        .unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("failing"));
    assert_eq!(*notices.0.lock().unwrap(), [(endpoint, "failing")]);

    // Its delivery is still pending, but nothing is attempted while it is disabled.
    events(&db, tenant, 1).await;
    assert_eq!(deliverer.deliver_due().await.unwrap(), 0);
    assert_eq!(receiver.received().len(), 2);
}

async fn deliverers_sharing_the_schedule_never_send_an_attempt_twice(db: TestDatabase) {
    // Two pools on one database, as two processes would have.
    let (first, second) = (open(&db).await, open(&db).await);
    let receiver = Receiver::start(Vec::new()).await;
    let (tenant, _) = tenant_with_endpoint(&first, &receiver.url).await;
    const COUNT: usize = 300;
    events(&first, tenant, COUNT).await;
    let run = |db: Db| {
        tokio::spawn(async move {
            let deliverer = deliverer(&db, "127.0.0.0/8", Arc::default());
            let mut made = 0;
            loop {
                let n = deliverer.deliver_due().await.unwrap();
                if n == 0 {
                    return made;
                }
                made += n;
            }
        })
    };
    let (a, b) = (run(first.clone()), run(second.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a + b, COUNT, "each delivery attempted once ({a} + {b})");
    let received = receiver.wait_for(COUNT, Duration::from_secs(10)).await;
    let mut ids: HashMap<String, usize> = HashMap::new();
    for r in &received {
        *ids.entry(r.header("webhook-id").to_owned()).or_default() += 1;
    }
    assert_eq!(ids.len(), COUNT);
    assert!(ids.values().all(|n| *n == 1), "an attempt was sent twice");
}

async fn what_happened_while_an_endpoint_was_disabled_is_not_sent_once_it_is_enabled_again(db: TestDatabase) {
    let db = open(&db).await;
    let receiver = Receiver::start(Vec::new()).await;
    let (tenant, endpoint) = tenant_with_endpoint(&db, &receiver.url).await;
    let switch = |enabled: bool| {
        let db = db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let before = endpoints::get(tx.conn(), tenant, endpoint).await.unwrap().unwrap();
            let unchanged = Checked {
                url: None,
                description: None,
                event_types: None,
            };
            endpoints::update(&mut tx, tenant, &before, unchanged, Some(enabled))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    };
    switch(false).await;
    // Committed while disabled, and published only after it is enabled again (the
    // dispatcher is behind): the event is still not news to the endpoint.
    commit_events(&db, tenant, 1).await;
    switch(true).await;
    publish(&db).await;
    let deliverer = deliverer(&db, "127.0.0.0/8", Arc::default());
    assert_eq!(deliverer.deliver_due().await.unwrap(), 0);

    events(&db, tenant, 1).await;
    assert_eq!(deliverer.deliver_due().await.unwrap(), 1);
    assert_eq!(receiver.received().len(), 1);
}
