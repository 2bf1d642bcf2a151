//! Request ids, security headers, compression, timeouts and the error format of
//! responses produced outside the handlers.

use std::io::{Read, Write};
use std::time::Duration;

use plinth_testkit::{TestDatabase, backend_tests};

use crate::support::{TestApp, assert_problem};

backend_tests!(
    a_well_formed_client_request_id_is_echoed_and_a_bad_one_replaced,
    security_headers_are_on_every_response,
    hsts_is_sent_only_behind_tls,
    large_responses_are_compressed_when_the_client_accepts,
    unknown_routes_and_methods_get_problems,
    a_request_slower_than_the_timeout_gets_408,
    the_client_address_is_the_rightmost_one_a_trusted_proxy_saw,
);

async fn a_well_formed_client_request_id_is_echoed_and_a_bad_one_replaced(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc_123");

    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "evil\tvalue")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(id, "evil\tvalue");
    assert_eq!(id.len(), 32, "a generated UUIDv7 in simple form");

    let response = app
        .client
        .get(app.url("/nowhere"))
        .header("x-request-id", "corr-42")
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 404, "not-found").await;
    assert_eq!(body["request_id"], "corr-42");
    app.stop().await;
}

async fn security_headers_are_on_every_response(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    for path in [
        "/healthz",
        "/nowhere",
        "/setup?token=x",
        "/api/v1/openapi.json",
    ] {
        let response = app.get(path).await;
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'self'"));
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
    app.stop().await;
}

async fn hsts_is_sent_only_behind_tls(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("public_url", "https://id.example.com")
        .spawn()
        .await;
    let response = app.get("/healthz").await;
    let hsts = response.headers()["strict-transport-security"]
        .to_str()
        .unwrap();
    assert!(hsts.starts_with("max-age="), "{hsts}");
    app.stop().await;
}

async fn large_responses_are_compressed_when_the_client_accepts(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let plain = app.get("/api/v1/openapi.json").await;
    assert!(plain.headers().get("content-encoding").is_none());
    let gzip = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    app.stop().await;
}

async fn unknown_routes_and_methods_get_problems(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    assert_problem(app.get("/api/v1/no-such-thing").await, 404, "not-found").await;
    let response = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert!(
        response.headers().get("allow").is_some(),
        "405 keeps the Allow header"
    );
    assert_problem(response, 405, "method-not-allowed").await;
    app.stop().await;
}

async fn a_request_slower_than_the_timeout_gets_408(db: TestDatabase) {
    let app = TestApp::on(db)
        .with("request_timeout_secs", 1)
        .spawn()
        .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    // A client that sends its headers and then stalls on the body.
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
            .write_all(b"POST /api/v1/setup HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"tok")
            .unwrap();
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..n]);
            if buffer.windows(4).any(|w| w == b"\r\n\r\n") && buffer.ends_with(b"}") {
                break;
            }
        }
        String::from_utf8_lossy(&buffer).into_owned()
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
    assert!(response.contains("request-timeout"), "{response}");
    app.stop().await;
}

/// Signs in with `forwarded_for` (when given) and returns the address the session records.
async fn recorded_address(app: &TestApp, email: &str, forwarded_for: Option<&str>) -> String {
    let mut request = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": crate::auth::PASSWORD}));
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    let tokens: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
    let sessions: serde_json::Value = app
        .get_as(
            "/api/v1/me/sessions",
            tokens["access_token"].as_str().unwrap(),
        )
        .await
        .json()
        .await
        .unwrap();
    let sessions = sessions["items"].clone();
    let sessions = sessions.get("items").unwrap_or(&sessions);
    sessions[0]["ip"].as_str().unwrap().to_owned()
}

async fn the_client_address_is_the_rightmost_one_a_trusted_proxy_saw(db: TestDatabase) {
    // The test client connects from 127.0.0.1, a trusted proxy by default; the client
    // wrote 6.6.6.6 itself and the proxy appended the address it saw.
    let app = TestApp::on(db)
        .with("trust_proxy_headers", true)
        .with("trusted_proxies", "127.0.0.0/8, 10.0.0.0/8")
        .spawn()
        .await;
    app.create_user("fwd@example.com", crate::auth::PASSWORD, true, &[])
        .await;
    let spoofed = "6.6.6.6, 203.0.113.9, 10.1.2.3";
    assert_eq!(
        recorded_address(&app, "fwd@example.com", Some(spoofed)).await,
        "203.0.113.9"
    );
    assert_eq!(
        recorded_address(&app, "fwd@example.com", None).await,
        "127.0.0.1"
    );
    app.stop().await;

    // Without the proxy's network trusted, the header is ignored altogether.
    let app = TestApp::on(plinth_testkit::TestDatabase::sqlite())
        .with("trust_proxy_headers", true)
        .with("trusted_proxies", "10.0.0.0/8")
        .spawn()
        .await;
    app.create_user("fwd@example.com", crate::auth::PASSWORD, true, &[])
        .await;
    assert_eq!(
        recorded_address(&app, "fwd@example.com", Some(spoofed)).await,
        "127.0.0.1"
    );
    app.stop().await;
}
