//! Making deliveries. A deliverer claims due deliveries (a lease in the database, so
//! several processes never attempt the same one at once, and one that dies mid-attempt
//! leaves it to another once the lease lapses), posts each signed body to its endpoint,
//! and records the attempt and what follows in one transaction: delivered on a 2xx
//! within the timeout; otherwise the next step of the schedule (a `Retry-After` of a 429
//! or 503 is honoured), the dead-letter queue after the last; and a `410 Gone`, or
//! failing everything for days, disables the endpoint.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use plinth_core::{TenantId, Timestamp};
use plinth_store::{Conn, Db, StoreError, Tx, exec, on};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Notify;

use super::deliveries::{IN_CHUNK, placeholders, status};
use super::endpoints::{SecretBox, disabled};
use super::signing::{SigningSecret, headers};
use super::target::{TargetRefused, TargetRules};

/// The bytes of an answer's body kept in the attempt log.
pub const RESPONSE_EXCERPT: usize = 1024;

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub rules: TargetRules,
    /// The wait before each retry; after the last, the delivery is dead.
    pub schedule: Vec<Duration>,
    /// How long an endpoint may take to answer.
    pub timeout: Duration,
    /// Failing every attempt this long disables an endpoint.
    pub disable_after: time::Duration,
    /// Deliveries claimed at once, and attempted concurrently.
    pub batch: u32,
}

impl DeliverySettings {
    /// About a day of retries (Standard Webhooks' suggestion), 10 s to answer, disabled
    /// after 5 days of failures.
    pub fn new(rules: TargetRules) -> Self {
        Self {
            rules,
            schedule: [5, 300, 1800, 7200, 18_000, 36_000, 50_400]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            timeout: Duration::from_secs(10),
            disable_after: time::Duration::days(5),
            batch: 256,
        }
    }
}

/// Told, inside the transaction that disables it, that Plinth disabled an endpoint: the
/// tenant's audit record, event and owner notice go in there.
pub trait OnDisabled: Send + Sync {
    fn disabled<'a>(
        &'a self,
        tx: &'a mut Tx,
        tenant: TenantId,
        endpoint: uuid::Uuid,
        url: &'a str,
        reason: &'static str,
    ) -> Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the HTTP client cannot be built: {0}")]
    Client(String),
    #[error("telling the tenant an endpoint was disabled: {0}")]
    Notice(String),
}

impl From<sqlx::Error> for DeliveryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// The deliverer of one process.
#[derive(Clone)]
pub struct Deliverer {
    db: Db,
    client: reqwest::Client,
    keys: Arc<dyn SecretBox>,
    on_disabled: Arc<dyn OnDisabled>,
    settings: Arc<DeliverySettings>,
    ready: Arc<Notify>,
}

#[derive(sqlx::FromRow)]
struct Claimed {
    id: uuid::Uuid,
    tenant_id: TenantId,
    endpoint_id: uuid::Uuid,
    body: String,
    attempts: i64,
    round_attempts: i64,
}

#[derive(sqlx::FromRow)]
struct Target {
    id: uuid::Uuid,
    url: String,
    secret: Vec<u8>,
    previous_secret: Option<Vec<u8>>,
    previous_secret_expires_at: Option<Timestamp>,
}

/// What one attempt came to.
#[derive(Debug)]
struct Outcome {
    started: Timestamp,
    duration: Duration,
    status: Option<u16>,
    error: Option<String>,
    response: String,
    retry_after: Option<Duration>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Resolves host names for the HTTP client through the target rules, so the addresses
/// judged are the ones connected to (a name cannot resolve to a public address for the
/// check and a private one for the connection).
struct GuardedResolver(TargetRules);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let rules = self.0.clone();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = rules.resolve_name(name.as_str(), 0).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn tls() -> Result<rustls::ClientConfig, DeliveryError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| DeliveryError::Client(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl Deliverer {
    /// A deliverer that also starts when `ready` is notified (by the dispatcher, once it
    /// has made deliveries).
    pub fn new(
        db: Db,
        keys: Arc<dyn SecretBox>,
        on_disabled: Arc<dyn OnDisabled>,
        settings: DeliverySettings,
        ready: Arc<Notify>,
    ) -> Result<Self, DeliveryError> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls()?)
            .dns_resolver(Arc::new(GuardedResolver(settings.rules.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("Plinth-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| DeliveryError::Client(e.to_string()))?;
        Ok(Self {
            db,
            client,
            keys,
            on_disabled,
            settings: Arc::new(settings),
            ready,
        })
    }

    /// Attempts due deliveries until none is due, then waits for new ones (or `poll`, for
    /// retries coming due and deliveries made by other processes); returns when `stop`
    /// says so.
    pub async fn run(self, poll: Duration, stop: impl Fn() -> bool) {
        while !stop() {
            match self.deliver_due().await {
                // Until a claim finds nothing: a partial claim may have raced the
                // dispatcher's next fan-out, whose wake-up it already consumed.
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "delivering webhooks"),
            }
            let _ = tokio::time::timeout(poll, self.ready.notified()).await;
        }
    }

    /// Claims the deliveries due now and attempts each once; returns how many.
    ///
    /// The attempts of one claim are recorded together, in one transaction: a commit per
    /// attempt would bound deliveries by the database's commits per second (about 1,400
    /// on SQLite with `synchronous = full` here). Should that transaction fail, the
    /// deliveries are attempted again when their lease lapses (at least once).
    pub async fn deliver_due(&self) -> Result<usize, DeliveryError> {
        let (lease, claimed) = self.claim().await?;
        let count = claimed.len();
        if count == 0 {
            return Ok(0);
        }
        let targets = self.targets(&claimed).await?;
        let target_of = |job: &Claimed| targets.iter().find(|t| t.id == job.endpoint_id);
        let outcomes: Vec<Option<(Claimed, Outcome)>> = futures_util::stream::iter(claimed)
            .map(|job| async move {
                // An endpoint deleted since the claim took its deliveries with it.
                let target = target_of(&job)?;
                let outcome = self.send(&job, target).await;
                Some((job, outcome))
            })
            .buffer_unordered(count)
            .collect()
            .await;
        let (delivered, failed): (Vec<_>, Vec<_>) = outcomes.into_iter().flatten().partition(|(_, o)| o.succeeded());
        let mut tx = self.db.begin().await?;
        record_delivered(&mut tx, lease, &delivered).await?;
        for (job, outcome) in failed {
            if let Some(target) = target_of(&job) {
                self.record_failure(&mut tx, &job, target, outcome).await?;
            }
        }
        tx.commit().await?;
        Ok(count)
    }

    /// How long a claim holds a delivery: longer than an attempt can take (connecting and
    /// answering each have the timeout), so only a process that died lets it lapse.
    fn lease(&self) -> time::Duration {
        time::Duration::try_from(self.settings.timeout * 2 + Duration::from_secs(5)).unwrap_or(time::Duration::MINUTE)
    }

    /// Leases due deliveries; returns the lease's end (what marks them as this claim's)
    /// and the deliveries.
    async fn claim(&self) -> Result<(Timestamp, Vec<Claimed>), DeliveryError> {
        let now = Timestamp::now();
        let lease = now + self.lease();
        let mut tx = self.db.begin().await?;
        let lock = match tx.conn() {
            Conn::Postgres(_) => " FOR UPDATE OF d SKIP LOCKED",
            // One process per SQLite file, and `BEGIN IMMEDIATE` excludes other writers.
            Conn::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET leased_until = $1 WHERE id IN (
                 SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $2
                   AND (d.leased_until IS NULL OR d.leased_until < $2) AND e.enabled
                 ORDER BY d.next_attempt_at LIMIT $3{lock})
             RETURNING id, tenant_id, endpoint_id, body, attempts, round_attempts"
        );
        let claimed: Vec<Claimed> = on!(tx.conn(), c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(lease).bind(now).bind(i64::from(self.settings.batch.max(1))).fetch_all(c).await)?;
        tx.commit().await?;
        Ok((lease, claimed))
    }

    /// The endpoints of `claimed`, read in one statement per chunk of ids.
    async fn targets(&self, claimed: &[Claimed]) -> Result<Vec<Target>, DeliveryError> {
        let mut ids: Vec<uuid::Uuid> = claimed.iter().map(|c| c.endpoint_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut targets = Vec::with_capacity(ids.len());
        let mut conn = self.db.read().await?;
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT id, url, secret, previous_secret, previous_secret_expires_at FROM webhook_endpoints WHERE id IN ({})",
                placeholders(1, chunk.len())
            );
            let found: Vec<Target> = on!(conn.conn(), c => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(c).await
            })?;
            targets.extend(found);
        }
        Ok(targets)
    }

    /// The secrets that sign: the current one, and the previous one until it expires.
    fn secrets(&self, target: &Target) -> Result<Vec<SigningSecret>, String> {
        let mut secrets = vec![
            self.keys
                .open(&target.secret)
                .map_err(|e| format!("the endpoint's secret cannot be opened: {e}"))?,
        ];
        if let (Some(previous), Some(until)) = (&target.previous_secret, target.previous_secret_expires_at)
            && until > Timestamp::now()
            && let Ok(secret) = self.keys.open(previous)
        {
            secrets.push(secret);
        }
        Ok(secrets)
    }

    async fn send(&self, job: &Claimed, target: &Target) -> Outcome {
        let started = Timestamp::now();
        let clock = Instant::now();
        let failed = |error: String| Outcome {
            started,
            duration: clock.elapsed(),
            status: None,
            error: Some(error),
            response: String::new(),
            retry_after: None,
        };
        // Checked again at every attempt: the platform's rules may have changed, and a
        // host written as an address never reaches the resolver.
        let url = match self.settings.rules.parse(&target.url) {
            Ok(url) => url,
            Err(refused) => return failed(format!("refused: {refused}")),
        };
        let secrets = match self.secrets(target) {
            Ok(secrets) => secrets,
            Err(error) => return failed(error),
        };
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers(
            &secrets,
            &job.id.to_string(),
            started.unix_seconds(),
            job.body.as_bytes(),
        ) {
            request = request.header(name, value);
        }
        let mut response = match request.body(job.body.clone()).send().await {
            Ok(response) => response,
            Err(e) => return failed(describe(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut excerpt = Vec::new();
        while excerpt.len() < RESPONSE_EXCERPT {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    excerpt.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_EXCERPT - excerpt.len())])
                }
                Ok(None) | Err(_) => break,
            }
        }
        Outcome {
            started,
            duration: clock.elapsed(),
            status: Some(status),
            error: None,
            response: String::from_utf8_lossy(&excerpt).into_owned(),
            retry_after,
        }
    }

    /// Records a failed attempt and what follows from it (a retry, the dead-letter queue,
    /// the endpoint disabled), inside `tx`.
    async fn record_failure(
        &self,
        tx: &mut Tx,
        job: &Claimed,
        target: &Target,
        outcome: Outcome,
    ) -> Result<(), DeliveryError> {
        let now = Timestamp::now();
        let attempt = job.attempts + 1;
        let round = job.round_attempts + 1;
        let gone = outcome.status == Some(410);
        let (state, next): (&str, Option<Timestamp>) = if gone {
            (status::DEAD, None)
        } else {
            match self.settings.schedule.get((round - 1) as usize) {
                Some(delay) => {
                    let wait = outcome
                        .retry_after
                        .filter(|r| r > delay)
                        .unwrap_or_else(|| jittered(*delay));
                    (
                        status::PENDING,
                        Some(now + time::Duration::try_from(wait).unwrap_or(time::Duration::DAY)),
                    )
                }
                None => (status::DEAD, None),
            }
        };
        let finished = (state != status::PENDING).then_some(now);
        let updated = exec!(tx.conn(), c => sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = $2, round_attempts = $3, next_attempt_at = $4,
                    finished_at = $5, leased_until = NULL
             WHERE id = $6 AND attempts = $7"
        ).bind(state).bind(attempt).bind(round).bind(next).bind(finished).bind(job.id).bind(job.attempts)
        .execute(c).await)?;
        if updated == 0 {
            // Recorded by another process whose lease this one outlived: keep its record.
            return Ok(());
        }
        insert_attempts(tx, &[(job, &outcome)]).await?;
        {
            let since: Option<Timestamp> = on!(tx.conn(), c => sqlx::query_scalar(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2 AND enabled
                 RETURNING failing_since"
            ).bind(now).bind(job.endpoint_id).fetch_optional(c).await)?;
            let reason = if gone {
                Some(disabled::GONE)
            } else if since.is_some_and(|s| s <= now - self.settings.disable_after) {
                Some(disabled::FAILING)
            } else {
                None
            };
            if let (Some(reason), Some(_)) = (reason, since) {
                exec!(tx.conn(), c => sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $1, updated_at = $2 WHERE id = $3"
                ).bind(reason).bind(now).bind(job.endpoint_id).execute(c).await)?;
                self.on_disabled
                    .disabled(tx, job.tenant_id, job.endpoint_id, &target.url, reason)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Records the successful attempts of a claim that `lease` still marks as this claim's
/// (a delivery whose lease lapsed and was claimed again is the other claim's to record):
/// a few statements for the whole claim rather than several per delivery.
async fn record_delivered(
    tx: &mut Tx,
    lease: Timestamp,
    delivered: &[(Claimed, Outcome)],
) -> Result<(), DeliveryError> {
    let now = Timestamp::now();
    let mut owned: Vec<(&Claimed, &Outcome)> = Vec::with_capacity(delivered.len());
    for chunk in delivered.chunks(IN_CHUNK) {
        let sql = format!(
            "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, round_attempts = round_attempts + 1,
                    next_attempt_at = NULL, finished_at = $1, leased_until = NULL
             WHERE leased_until = $2 AND id IN ({}) RETURNING id",
            placeholders(3, chunk.len())
        );
        let ids: Vec<uuid::Uuid> = on!(tx.conn(), c => {
            let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(now).bind(lease);
            for (job, _) in chunk {
                query = query.bind(job.id);
            }
            query.fetch_all(c).await
        })?;
        owned.extend(
            chunk
                .iter()
                .filter(|(job, _)| ids.contains(&job.id))
                .map(|(j, o)| (j, o)),
        );
    }
    insert_attempts(tx, &owned).await?;
    let mut endpoints: Vec<uuid::Uuid> = owned.iter().map(|(job, _)| job.endpoint_id).collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    for chunk in endpoints.chunks(IN_CHUNK) {
        let sql = format!(
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE failing_since IS NOT NULL AND id IN ({})",
            placeholders(1, chunk.len())
        );
        exec!(tx.conn(), c => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(c).await
        })?;
    }
    Ok(())
}

/// Logs `attempts` (each the next of its delivery), many rows per statement.
async fn insert_attempts(tx: &mut Tx, attempts: &[(&Claimed, &Outcome)]) -> Result<(), DeliveryError> {
    const COLUMNS: usize = 9;
    for chunk in attempts.chunks(IN_CHUNK / COLUMNS) {
        let rows = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO webhook_attempts (id, tenant_id, delivery_id, attempt, attempted_at, duration_ms, status_code, error, response)
             VALUES {rows}"
        );
        exec!(tx.conn(), c => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (job, outcome) in chunk {
                query = query.bind(uuid::Uuid::now_v7()).bind(job.tenant_id).bind(job.id).bind(job.attempts + 1)
                    .bind(outcome.started).bind(i64::try_from(outcome.duration.as_millis()).unwrap_or(i64::MAX))
                    .bind(outcome.status.map(i64::from)).bind(&outcome.error).bind(&outcome.response);
            }
            query.execute(c).await
        })?;
    }
    Ok(())
}

/// An error and its causes, e.g. "error sending request: … : 10.0.0.1 is not public".
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        String::from("timed out")
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        if cause.downcast_ref::<TargetRefused>().is_some() {
            text = format!("refused: {cause_text}");
            break;
        }
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP date, at most a day.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let when = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
            Duration::try_from(when - time::OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// `delay` give or take a tenth, so deliveries that failed together do not all come back
/// together.
fn jittered(delay: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return delay;
    }
    let unit = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX); // 0..=1
    delay.mul_f64(0.9 + 0.2 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100));
            assert!(d >= Duration::from_secs(90) && d <= Duration::from_secs(110), "{d:?}");
        }
    }
}
