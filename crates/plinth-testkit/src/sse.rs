//! A client of a Server-Sent Events stream that reads it as a browser's `EventSource`
//! does: frames separated by blank lines, comments (heartbeats) skipped.

use std::time::Duration;

/// One frame that carried data.
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: Option<String>,
    /// `message` when the frame names none.
    pub event: String,
    pub data: String,
}

impl Frame {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Reads frames from an open `text/event-stream` response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame with data; `None` when the server ended the stream. Panics when
    /// nothing at all (not even a heartbeat) arrives for 20 s.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(frame) = parse(&block) {
                    return Some(frame);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("a frame within 20 s")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

fn parse(block: &str) -> Option<Frame> {
    let mut frame = Frame {
        id: None,
        event: "message".into(),
        data: String::new(),
    };
    let mut has_data = false;
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id:") {
            frame.id = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("event:") {
            frame.event = value.trim().to_owned();
        } else if let Some(value) = line.strip_prefix("data:") {
            frame.data.push_str(value.trim_start());
            has_data = true;
        }
    }
    has_data.then_some(frame)
}
