//! The request id: taken from the client's `x-request-id` when it is well-formed (so a
//! caller can correlate its own logs), generated otherwise, and echoed on the response.
//! It is also kept in a task-local so error documents can quote it.

use axum::http::HeaderValue;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// 1–128 characters of `[A-Za-z0-9._:-]`: enough for UUIDs and trace ids, nothing that
/// could forge a log line or inject a header.
pub fn accept_client_id(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    ok.then(|| text.to_owned())
}

pub fn generate() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

pub async fn scope<F: Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_kept_and_others_refused() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            accept_client_id(Some(&h("abc-123_x.y:z"))).as_deref(),
            Some("abc-123_x.y:z")
        );
        assert_eq!(accept_client_id(Some(&h("has space"))), None);
        assert_eq!(accept_client_id(Some(&h(""))), None);
        let long = "a".repeat(129);
        assert_eq!(
            accept_client_id(Some(&HeaderValue::from_str(&long).unwrap())),
            None
        );
        assert_eq!(accept_client_id(None), None);
    }
}
