//! The NATS JetStream bus, for several `plinth serve` processes: the dispatcher publishes
//! each event to the stream on `<prefix>.<tenant or "platform">.<type>`, with the event's
//! id as `Nats-Msg-Id` so JetStream drops a second copy (a republish after a crash), and
//! marks the event published only once JetStream acknowledged it. Every process follows
//! the stream with an ordered consumer and hands what arrives to its own in-process
//! [`Bus`], so its live streams see every process's events.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use crate::dispatch::{Bus, DispatchError, Sink};
use crate::list::EventView;

/// Where and how events are kept on the NATS server.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    pub url: String,
    /// The stream's name (`PLINTH_EVENTS`).
    pub stream: String,
    /// The first token of every subject (`plinth`).
    pub subject_prefix: String,
    /// How long the stream keeps events.
    pub max_age: Duration,
}

/// A connection to the stream.
#[derive(Clone)]
pub struct JetStream {
    client: async_nats::Client,
    context: jetstream::Context,
    config: Arc<JetStreamConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum JetStreamError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot set up the JetStream stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("following the JetStream stream: {0}")]
    Follow(String),
}

/// Copies of an event republished within this window are dropped by JetStream.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

impl JetStream {
    /// Connects and makes sure the stream exists.
    pub async fn connect(config: JetStreamConfig) -> Result<Self, JetStreamError> {
        let client = async_nats::ConnectOptions::new()
            .name("plinth")
            .connect(&config.url)
            .await
            .map_err(|e| JetStreamError::Connect {
                url: redact(&config.url),
                reason: e.to_string(),
            })?;
        let context = jetstream::new(client.clone());
        context
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                max_age: config.max_age,
                duplicate_window: DUPLICATE_WINDOW.min(config.max_age),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| JetStreamError::Stream {
                stream: config.stream.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            client,
            context,
            config: Arc::new(config),
        })
    }

    /// Whether the connection to the NATS server is up.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn subject(&self, event: &EventView) -> String {
        let tenant = event.tenant_id.map_or_else(|| "platform".to_owned(), |t| t.to_string());
        format!("{}.{tenant}.{}", self.config.subject_prefix, event.event_type)
    }

    /// Hands every event the stream receives from now on to `bus`, until the stream
    /// cannot be followed any more (the caller starts again after a pause).
    pub async fn follow(&self, bus: &Bus) -> Result<(), JetStreamError> {
        let follow = |e: &dyn std::fmt::Display| JetStreamError::Follow(e.to_string());
        let stream = self
            .context
            .get_stream(&self.config.stream)
            .await
            .map_err(|e| follow(&e))?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| follow(&e))?;
        let mut messages = consumer.messages().await.map_err(|e| follow(&e))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| follow(&e))?;
            match serde_json::from_slice::<EventView>(&message.payload) {
                Ok(event) => bus.send(Arc::new(event)),
                Err(e) => {
                    tracing::warn!(subject = %message.subject, error = %e, "an unreadable event on the stream was skipped")
                }
            }
        }
        Err(JetStreamError::Follow("the consumer ended".into()))
    }
}

impl Sink for JetStream {
    async fn publish(&self, events: &[Arc<EventView>]) -> Result<(), DispatchError> {
        let failed = |e: &dyn std::fmt::Display| DispatchError::Publish(e.to_string());
        // Send them all, then wait for the acknowledgements: one round trip per batch.
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_vec(&**event).map_err(|e| failed(&e))?;
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(event.id.to_string());
            acks.push(
                self.context
                    .send_publish(self.subject(event), message)
                    .await
                    .map_err(|e| failed(&e))?,
            );
        }
        for ack in acks {
            ack.await.map_err(|e| failed(&e))?;
        }
        Ok(())
    }
}

/// What publishes this process's events: its own bus, or JetStream.
#[derive(Clone)]
pub enum Publisher {
    Local(Bus),
    JetStream(Box<JetStream>),
}

impl Sink for Publisher {
    async fn publish(&self, events: &[Arc<EventView>]) -> Result<(), DispatchError> {
        match self {
            Publisher::Local(bus) => bus.publish(events).await,
            Publisher::JetStream(js) => js.publish(events).await,
        }
    }
}

/// The URL without a password or token, for messages.
fn redact(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((_, host)) => format!("nats://***@{host}"),
        None => url.to_owned(),
    }
}
