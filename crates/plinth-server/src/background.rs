//! Work the server does on its own schedule: delivering e-mail, the daily clean-up of
//! spent credentials, expiring trials, verifying the audit chains, pruning audit records
//! past their retention, publishing events and pruning published ones, delivering
//! webhooks and pruning their log, and pruning rate-limiter memory.

use std::time::Duration;

use plinth_core::Timestamp;
use plinth_identity::mail::Sender;
use secrecy::ExposeSecret;

use crate::state::AppState;

const CLEANUP_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
const CLEANUP_FIRST_RUN: Duration = Duration::from_secs(60);
const PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);
const TRIAL_CHECK_INTERVAL: Duration = Duration::from_secs(60);
const AUDIT_VERIFY_INTERVAL: Duration = Duration::from_secs(60);
/// Every this many incremental passes, one full pass re-reads every chain from its start.
const AUDIT_PASSES_PER_FULL: u32 = 24 * 60;
const AUDIT_HEADS_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// How often the dispatcher looks for events no commit of this process announced (those
/// of a process that stopped before publishing them).
const EVENTS_POLL_INTERVAL: Duration = Duration::from_secs(1);
const EVENTS_PRUNE_BATCH: u32 = 10_000;

/// Starts the background tasks. They stop when the server starts shutting down.
pub fn spawn(state: &AppState) -> Result<(), String> {
    if let Some(url) = &state.config.smtp_url {
        let sender = Sender::new(
            state.db.clone(),
            url.expose_secret(),
            &state.config.smtp_from,
        )
        .map_err(|e| e.to_string())?;
        let state = state.clone();
        tokio::spawn(async move {
            while !state.is_shutting_down() {
                if let Err(e) = sender.deliver_due().await {
                    tracing::error!(error = %e, "e-mail delivery");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    } else {
        tracing::info!(
            "no SMTP server configured: e-mail stays in the development outbox (plinth outbox list)"
        );
    }

    let cleanup_state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(CLEANUP_FIRST_RUN).await;
        while !cleanup_state.is_shutting_down() {
            match cleanup_state.tenancy.purge_due(Timestamp::now()).await {
                Ok(purged) => {
                    for plan in purged {
                        tracing::warn!(tenant.id = %plan.tenant_id, tenant.slug = %plan.slug, "tenant purged after its grace period");
                    }
                }
                Err(e) => tracing::error!(error = %e, "purging deleted tenants"),
            }
            match plinth_identity::cleanup::cleanup(&cleanup_state.db, Timestamp::now()).await {
                Ok(report) => tracing::info!(
                    sessions = report.sessions,
                    refresh_tokens = report.refresh_tokens,
                    one_time_tokens = report.one_time_tokens,
                    emails = report.emails,
                    "clean-up of spent credentials"
                ),
                Err(e) => tracing::error!(error = %e, "clean-up of spent credentials"),
            }
            tokio::time::sleep(CLEANUP_INTERVAL).await;
        }
    });

    let trial_state = state.clone();
    tokio::spawn(async move {
        while !trial_state.is_shutting_down() {
            match trial_state.tenancy.expire_trials(Timestamp::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tenants = n, "trials expired"),
                Err(e) => tracing::error!(error = %e, "expiring trials"),
            }
            tokio::time::sleep(TRIAL_CHECK_INTERVAL).await;
        }
    });

    let audit_state = state.clone();
    tokio::spawn(async move {
        let mut pass = 0u32;
        while !audit_state.is_shutting_down() {
            verify_audit_chains(&audit_state, pass.is_multiple_of(AUDIT_PASSES_PER_FULL)).await;
            pass = pass.wrapping_add(1);
            tokio::time::sleep(AUDIT_VERIFY_INTERVAL).await;
        }
    });

    let heads_state = state.clone();
    tokio::spawn(async move {
        while !heads_state.is_shutting_down() {
            match heads_state.identity.sign_audit_heads().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(heads = n, "audit chain heads signed"),
                Err(e) => tracing::error!(error = %e, "signing audit chain heads"),
            }
            tokio::time::sleep(AUDIT_HEADS_INTERVAL).await;
        }
    });

    let retention_state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(CLEANUP_FIRST_RUN).await;
        while !retention_state.is_shutting_down() {
            prune_audit(&retention_state, Timestamp::now()).await;
            tokio::time::sleep(CLEANUP_INTERVAL).await;
        }
    });

    spawn_dispatcher(state);
    spawn_deliverer(state)?;

    let prune_state = state.clone();
    tokio::spawn(async move {
        while !prune_state.is_shutting_down() {
            tokio::time::sleep(PRUNE_INTERVAL).await;
            prune_state.identity.limits().prune();
            prune_state.tenancy.prune_limits();
            prune_events(&prune_state, Timestamp::now()).await;
            prune_webhook_log(&prune_state, Timestamp::now()).await;
        }
    });
    Ok(())
}

/// Connects to the JetStream bus when `nats_url` is set; a bus that cannot be reached
/// stops startup rather than leaving live streams deaf.
pub async fn connect_events(state: &AppState) -> Result<(), String> {
    let Some(url) = &state.config.nats_url else {
        return Ok(());
    };
    let retention = Duration::from_secs(u64::from(state.config.events_retention_hours) * 3600);
    let jetstream = plinth_events::JetStream::connect(plinth_events::JetStreamConfig {
        url: url.expose_secret().to_owned(),
        stream: state.config.nats_stream.clone(),
        subject_prefix: state.config.nats_subject_prefix.clone(),
        max_age: retention,
    })
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!(stream = %state.config.nats_stream, "events are published to NATS JetStream");
    let _ = state.jetstream.set(jetstream);
    Ok(())
}

/// Starts publishing the outbox (to JetStream when connected, else onto this server's
/// bus) and, with JetStream, following it onto this server's bus; until shutdown.
pub fn spawn_dispatcher(state: &AppState) {
    let publisher = match state.jetstream.get() {
        Some(jetstream) => {
            spawn_follower(state, jetstream.clone());
            plinth_events::Publisher::JetStream(Box::new(jetstream.clone()))
        }
        None => plinth_events::Publisher::Local(state.events.clone()),
    };
    let state = state.clone();
    tokio::spawn(async move {
        let stop = {
            let state = state.clone();
            move || state.is_shutting_down()
        };
        plinth_events::dispatch::run(
            state.db.clone(),
            publisher,
            plinth_events::dispatch::DEFAULT_BATCH,
            EVENTS_POLL_INTERVAL,
            state.webhooks_ready.clone(),
            stop,
        )
        .await;
    });
}

/// Starts delivering webhooks, until shutdown.
pub fn spawn_deliverer(state: &AppState) -> Result<(), String> {
    let config = &state.config;
    let mut settings =
        plinth_events::webhooks::DeliverySettings::new(crate::state::webhook_rules(config));
    settings.schedule = config.webhook_retry_schedule.0.clone();
    settings.timeout = Duration::from_secs(config.webhook_timeout_secs.max(1));
    settings.disable_after = time::Duration::hours(i64::from(config.webhook_disable_after_hours));
    let deliverer = plinth_events::webhooks::Deliverer::new(
        state.db.clone(),
        std::sync::Arc::new(state.identity.master().clone()),
        std::sync::Arc::new(plinth_tenancy::DisableNotice {
            base_url: state.identity.config().base_url.clone(),
        }),
        settings,
        state.webhooks_ready.clone(),
    )
    .map_err(|e| e.to_string())?;
    let state = state.clone();
    tokio::spawn(async move {
        let stop = {
            let state = state.clone();
            move || state.is_shutting_down()
        };
        deliverer.run(EVENTS_POLL_INTERVAL, stop).await;
    });
    Ok(())
}

/// Hands every event JetStream receives to this server's bus, following again after a
/// pause when the consumer is lost.
fn spawn_follower(state: &AppState, jetstream: plinth_events::JetStream) {
    let state = state.clone();
    tokio::spawn(async move {
        let shutdown = state.shutdown_started();
        tokio::pin!(shutdown);
        while !state.is_shutting_down() {
            tokio::select! {
                result = jetstream.follow(&state.events) => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "following the event stream; retrying");
                    }
                }
                () = &mut shutdown => return,
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Deletes published events older than the configured retention; returns how many.
/// Prunes finished webhook deliveries past the log's retention as of `now`.
pub async fn prune_webhook_log(state: &AppState, now: Timestamp) -> Option<u64> {
    let retention = time::Duration::days(i64::from(state.config.webhook_log_retention_days));
    match plinth_events::webhooks::deliveries::prune_finished(
        &state.db,
        now - retention,
        EVENTS_PRUNE_BATCH,
    )
    .await
    {
        Ok(pruned) => {
            if pruned > 0 {
                tracing::info!(
                    deliveries = pruned,
                    "finished webhook deliveries past retention pruned"
                );
            }
            Some(pruned)
        }
        Err(e) => {
            tracing::error!(error = %e, "pruning the webhook delivery log");
            None
        }
    }
}

pub async fn prune_events(state: &AppState, now: Timestamp) -> Option<u64> {
    let retention = time::Duration::hours(i64::from(state.config.events_retention_hours));
    match plinth_events::dispatch::prune_published(&state.db, now - retention, EVENTS_PRUNE_BATCH)
        .await
    {
        Ok(pruned) => {
            if pruned > 0 {
                tracing::info!(events = pruned, "published events past retention pruned");
            }
            Some(pruned)
        }
        Err(e) => {
            tracing::error!(error = %e, "pruning published events");
            None
        }
    }
}

/// Prunes every audit chain past its retention as of `now`, under signed checkpoints. A
/// chain whose due records do not verify is left whole, and said so.
pub async fn prune_audit(
    state: &AppState,
    now: Timestamp,
) -> Option<plinth_tenancy::RetentionReport> {
    match state.tenancy.prune_audit(state.identity.keys(), now).await {
        Ok(report) => {
            for (chain, why) in &report.refused {
                tracing::error!(audit.chain = %chain, "audit records past retention kept: {why}");
            }
            if report.pruned > 0 {
                tracing::info!(
                    chains = report.chains,
                    records = report.pruned,
                    "audit records past retention pruned"
                );
            }
            Some(report)
        }
        Err(e) => {
            tracing::error!(error = %e, "pruning audit records past retention");
            None
        }
    }
}

/// One pass of the background audit verifier: every chain, from its start when `full`,
/// else from where the last pass stopped. A break is logged once, when first found, and
/// stays in `/metrics` as `plinth_audit_chain_broken{chain}`.
pub async fn verify_audit_chains(state: &AppState, full: bool) -> Option<plinth_audit::PassReport> {
    // Checkpoints signed by a key another replica added since are verified too.
    if let Err(e) = state.identity.keys().reload().await {
        tracing::warn!(error = %e, "reloading signing keys before verifying audit chains");
    }
    let mut watch = state.audit_watch.lock().await;
    match watch.pass(&state.db, full, state.identity.keys()).await {
        Ok(pass) => {
            for (chain, first_break) in &pass.newly_broken {
                tracing::error!(
                    audit.chain = %chain,
                    audit.seq = first_break.seq(),
                    audit.break_kind = first_break.kind(),
                    "audit chain broken: {first_break}"
                );
            }
            for chain in &pass.repaired {
                tracing::warn!(audit.chain = %chain, "audit chain intact again");
            }
            state.metrics.record_audit_pass(&pass);
            Some(pass)
        }
        Err(e) => {
            tracing::error!(error = %e, "verifying audit chains");
            None
        }
    }
}
