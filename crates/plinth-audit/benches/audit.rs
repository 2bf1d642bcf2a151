//! The audit trail at scale: what a record costs a write, how fast a filtered page of a
//! 1,000,000-record chain answers, and how fast (and in how much memory) an export runs.
//!
//!     cargo bench -p plinth-audit --bench audit                  # SQLite in a temp dir
//!     PLINTH_TEST_POSTGRES_URL=postgres://… cargo bench -p plinth-audit --bench audit
//!     PLINTH_BENCH_RECORDS=100000 cargo bench …                   # a smaller chain
//!
//! Every figure is printed with its baseline from the same run: the write without its
//! audit record, the unfiltered first page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use plinth_audit::action::{ALL, Action};
use plinth_audit::{AuditEntry, AuditFilter, ExportFormat, append};
use plinth_core::config::SqliteSynchronous;
use plinth_core::{Actor, PageRequest, TenantId, Timestamp, UserId};
use plinth_store::{Db, DbOptions, exec};
use plinth_testkit::{TestBackend, TestDatabase};
use secrecy::SecretString;

const ACTORS: usize = 1_000;
const BATCH: usize = 5_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn open(database: &TestDatabase) -> Db {
    let db = Db::open(&DbOptions {
        url: Some(SecretString::from(database.url.clone())),
        data_dir: database.data_dir.clone(),
        max_connections: 4,
        sqlite_synchronous: SqliteSynchronous::Full,
    })
    .await
    .unwrap();
    db.migrate(|_| {}).await.unwrap();
    db
}

fn actor_of(n: usize, actors: &[UserId]) -> Actor {
    let mut actor = Actor::user(actors[n % actors.len()]);
    actor.request_id = Some(format!("req-{n:08}"));
    actor.ip = Some("192.0.2.10".into());
    actor.user_agent = Some("bench/1".into());
    actor
}

fn entry(n: usize, tenant: TenantId) -> AuditEntry {
    let action: Action = ALL[n % ALL.len()];
    AuditEntry::new(action)
        .tenant(tenant)
        .target("workspace", format!("w-{}", n % 50_000))
        .changes(serde_json::json!({"name": {"before": format!("n{n}"), "after": format!("n{}", n + 1)}}))
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Transactions per second of a small state change, with and without its audit record.
async fn write_cost(db: &Db, tenant: TenantId, actors: &[UserId]) {
    const WRITES: usize = 2_000;
    let mut rates = Vec::new();
    for with_audit in [false, true] {
        let started = Instant::now();
        for n in 0..WRITES {
            let mut tx = db.begin().await.unwrap();
            exec!(tx.conn(), c => sqlx::query("UPDATE bench_state SET counter = counter + 1, updated_at = $1 WHERE id = 1")
                .bind(Timestamp::now().unix_micros()).execute(c).await)
            .unwrap();
            if with_audit {
                append(&mut tx, &actor_of(n, actors), entry(n, tenant)).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        rates.push(WRITES as f64 / started.elapsed().as_secs_f64());
    }
    println!(
        "write: {:.0}/s without the audit record, {:.0}/s with it ({:.2}x; {:.0} µs per record)",
        rates[0],
        rates[1],
        rates[1] / rates[0],
        (1.0 / rates[1] - 1.0 / rates[0]) * 1e6
    );
}

async fn seed(db: &Db, tenant: TenantId, actors: &[UserId], records: usize) {
    let started = Instant::now();
    let mut n = 0;
    while n < records {
        let mut tx = db.begin().await.unwrap();
        for _ in 0..BATCH.min(records - n) {
            append(&mut tx, &actor_of(n, actors), entry(n, tenant)).await.unwrap();
            n += 1;
        }
        tx.commit().await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "seeded {records} records in {:.1} s ({:.0}/s in batches of {BATCH})",
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64()
    );
}

async fn page_latency(db: &Db, chain: &str, name: &str, filter: &AuditFilter) -> (Duration, Duration, usize) {
    const RUNS: usize = 200;
    let page = PageRequest::new(Some(50), None);
    let mut samples = Vec::with_capacity(RUNS);
    let mut found = 0;
    // Warm-up (connections, prepared statements, caches), not counted.
    for _ in 0..10 {
        let mut conn = db.read().await.unwrap();
        plinth_audit::list(conn.conn(), chain, filter, &page).await.unwrap();
    }
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut conn = db.read().await.unwrap();
        let result = plinth_audit::list(conn.conn(), chain, filter, &page).await.unwrap();
        samples.push(started.elapsed());
        found = result.items.len();
    }
    let (p50, p99) = (percentile(&mut samples, 0.5), percentile(&mut samples, 0.99));
    println!(
        "  {name:<34} p50 {:>7.2} ms  p99 {:>7.2} ms  ({found} items)",
        ms(p50),
        ms(p99)
    );
    (p50, p99, found)
}

async fn run() {
    let records: usize = std::env::var("PLINTH_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let backend = if std::env::var(plinth_testkit::POSTGRES_ENV).is_ok() {
        TestBackend::Postgres
    } else {
        TestBackend::Sqlite
    };
    let database = TestDatabase::create(backend).await.unwrap();
    let db = open(&database).await;
    println!("backend: {}", db.backend().as_str());
    let mut tx = db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("CREATE TABLE bench_state (id BIGINT PRIMARY KEY, counter BIGINT NOT NULL, updated_at BIGINT)")
        .execute(c).await)
    .unwrap();
    exec!(tx.conn(), c => sqlx::query("INSERT INTO bench_state (id, counter) VALUES (1, 0)").execute(c).await).unwrap();
    tx.commit().await.unwrap();

    let tenant = TenantId::new();
    let actors: Vec<UserId> = (0..ACTORS).map(|_| UserId::new()).collect();
    write_cost(&db, TenantId::new(), &actors).await;
    let start_of_seed = Timestamp::now();
    seed(&db, tenant, &actors, records).await;
    let chain = plinth_audit::chain_of(Some(tenant));
    // Planner statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) keep them.
    let mut tx = db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("ANALYZE").execute(c).await).unwrap();
    tx.commit().await.unwrap();

    println!("first page of 50 at {records} records, 200 runs each:");
    let (_, baseline, _) = page_latency(&db, &chain, "no filter (baseline)", &AuditFilter::default()).await;
    let middle =
        Timestamp::from_unix_micros((start_of_seed.unix_micros() + Timestamp::now().unix_micros()) / 2).unwrap();
    let filters = [
        (
            "actor",
            AuditFilter {
                actor: Some(actors[7].0),
                ..Default::default()
            },
        ),
        (
            "action (1 in 61)",
            AuditFilter {
                actions: Action::matching("member.invite"),
                ..Default::default()
            },
        ),
        (
            "action prefix member.* (7 in 61)",
            AuditFilter {
                actions: Action::matching("member.*"),
                ..Default::default()
            },
        ),
        (
            "target",
            AuditFilter {
                target_type: Some("workspace".into()),
                target_id: Some("w-12345".into()),
                ..Default::default()
            },
        ),
        (
            "request id",
            AuditFilter {
                request_id: Some(format!("req-{:08}", records / 3)),
                ..Default::default()
            },
        ),
        (
            "until the middle of the chain",
            AuditFilter {
                until: Some(middle),
                ..Default::default()
            },
        ),
        (
            "actor and action",
            AuditFilter {
                actor: Some(actors[3].0),
                actions: Action::matching("tenant.*"),
                ..Default::default()
            },
        ),
        (
            "outcome denied (none)",
            AuditFilter {
                outcome: Some(plinth_audit::Outcome::Denied),
                ..Default::default()
            },
        ),
    ];
    let mut worst = Duration::ZERO;
    for (name, filter) in &filters {
        let (_, p99, _) = page_latency(&db, &chain, name, filter).await;
        worst = worst.max(p99);
    }
    println!(
        "  worst filtered p99 {:.2} ms = {:.1}x the unfiltered p99",
        ms(worst),
        ms(worst) / ms(baseline)
    );

    let before = rss_kib();
    let mut peak = before;
    let started = Instant::now();
    let reader = db.clone();
    let open = move || {
        let db = reader.clone();
        async move { db.read().await }
    };
    let mut stream = Box::pin(plinth_audit::export_stream(
        open,
        chain.clone(),
        AuditFilter::default(),
        ExportFormat::Ndjson,
    ));
    let (mut bytes, mut chunks) = (0usize, 0usize);
    let mut peak_at_tenth = 0;
    let tenth = (records / 1_000 / 10).max(1);
    while let Some(chunk) = stream.next().await {
        bytes += chunk.unwrap().len();
        chunks += 1;
        if chunks % 10 == 0 {
            peak = peak.max(rss_kib());
        }
        if chunks == tenth {
            peak_at_tenth = peak;
        }
    }
    let elapsed = started.elapsed();
    peak = peak.max(rss_kib());
    println!(
        "export: {records} records, {:.0} MB NDJSON in {:.1} s = {:.0} records/s; RSS {} MiB before, \
         peak {} MiB after the first tenth, {} MiB over the whole export",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64(),
        before / 1024,
        peak_at_tenth / 1024,
        peak / 1024
    );

    let started = Instant::now();
    let (report, _) = plinth_audit::verify_named(&db, &chain, None, &plinth_audit::NoSeal)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(report.is_intact());
    println!(
        "verify: {} records recomputed in {:.1} s = {:.0} records/s (the background verifier's full pass)",
        report.records,
        elapsed.as_secs_f64(),
        report.records as f64 / elapsed.as_secs_f64()
    );

    // Pruning everything but the newest record: each batch verified, deleted and
    // checkpointed. The signature is a keyed hash here: Ed25519 costs ~50 µs a batch.
    let keep_from = {
        let mut conn = db.read().await.unwrap();
        plinth_store::on!(conn.conn(), c => sqlx::query_scalar::<_, Timestamp>(
            "SELECT occurred_at FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1"
        ).bind(&chain).fetch_one(c).await)
        .unwrap()
    };
    let started = Instant::now();
    let pruned = plinth_audit::prune_chain(&db, &chain, keep_from, &KeyedHash)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let (report, _) = plinth_audit::verify_named(&db, &chain, None, &KeyedHash).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    println!(
        "prune: {pruned} records verified, deleted and checkpointed in {:.1} s = {:.0} records/s; \
         the chain verifies from its checkpoint ({} records left)",
        elapsed.as_secs_f64(),
        pruned as f64 / elapsed.as_secs_f64(),
        report.records
    );
    db.close().await;
}

/// Stands in for the instance's signing key.
struct KeyedHash;

impl KeyedHash {
    fn mac(message: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest([b"bench-key".as_slice(), message].concat()).to_vec()
    }
}

impl plinth_audit::Signer for KeyedHash {
    fn sign(&self, message: &[u8]) -> Result<(String, Vec<u8>), String> {
        Ok(("bench".into(), Self::mac(message)))
    }
}

impl plinth_audit::Seal for KeyedHash {
    fn holds(&self, kid: &str, message: &[u8], signature: &[u8]) -> bool {
        kid == "bench" && Self::mac(message) == signature
    }
}
