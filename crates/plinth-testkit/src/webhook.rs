//! A webhook receiver: a real HTTP server on loopback that records every request it gets
//! and answers each with the next status of a script (then 200), as an endpoint that fails
//! for a while and then recovers would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
}

struct Inner {
    script: VecDeque<Answer>,
    /// How requests past the script are answered.
    then: Answer,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<tokio::sync::Notify>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = {
        let mut inner = receiver.inner.lock().unwrap();
        inner.received.push(Received {
            headers,
            body,
            at: std::time::Instant::now(),
        });
        inner.script.pop_front().unwrap_or_else(|| inner.then.clone())
    };
    receiver.arrived.notify_waiters();
    tokio::time::sleep(answer.delay).await;
    let status = StatusCode::from_u16(answer.status).unwrap();
    let mut response = (status, format!("answered {}", answer.status)).into_response();
    if let Some(wait) = answer.retry_after {
        response.headers_mut().insert("retry-after", wait.parse().unwrap());
    }
    response
}

impl Receiver {
    /// Starts a receiver answering with `script`, then 200 for ever.
    pub async fn start(script: Vec<Answer>) -> Receiver {
        Self::start_then(script, Answer::status(200)).await
    }

    /// Starts a receiver answering with `script`, then with `then` for ever.
    pub async fn start_then(script: Vec<Answer>, then: Answer) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            inner: Arc::new(Mutex::new(Inner {
                script: script.into(),
                then,
                received: Vec::new(),
            })),
            arrived: Arc::new(tokio::sync::Notify::new()),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Waits until `count` requests have arrived (panics after `within`); returns them.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "the receiver got {} requests, not {count}, within {within:?}",
                    self.received().len()
                );
            }
        }
    }
}
