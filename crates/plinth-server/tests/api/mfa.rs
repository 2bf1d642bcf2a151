//! Second factors: TOTP enrolment, two-step sign-in, replays, recovery codes.

use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;
use totp_rs::{Builder, Secret};

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

/// The authenticator app: a TOTP code for `secret` at `offset_steps` from now.
pub fn code(secret: &str, offset_steps: i64) -> String {
    let bytes = Secret::try_from_base32(secret).unwrap().as_bytes().to_vec();
    let totp = Builder::new().with_secret(bytes).build().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp.generate((now + offset_steps * 30) as u64).to_string()
}

/// Enrols TOTP for the caller; returns (secret, recovery codes).
pub async fn enrol_totp(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let enrolment: serde_json::Value = app
        .post_as("/api/v1/me/mfa/totp", token, &json!({"password": PASSWORD}))
        .await
        .json()
        .await
        .unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Plinth:")
    );
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    let confirmed = app
        .post_as(
            "/api/v1/me/mfa/totp/confirm",
            token,
            &json!({"code": code(&secret, 0)}),
        )
        .await;
    assert_eq!(confirmed.status(), 200);
    let body: serde_json::Value = confirmed.json().await.unwrap();
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// Signs in with the password and then a TOTP code of the next step (the current one
/// was spent on enrolment); returns the token pair.
pub async fn sign_in_with_totp(app: &TestApp, email: &str, secret: &str) -> serde_json::Value {
    let challenge = start_login(app, email).await;
    let response = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge, "code": code(secret, 1)}),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

backend_tests!(
    totp_sign_in_takes_two_steps_and_refuses_replays,
    recovery_codes_work_once,
    disabling_totp_needs_a_current_code_or_the_password,
    a_wrong_enrolment_code_does_not_enable_totp,
);

pub async fn start_login(app: &TestApp, email: &str) -> String {
    let response = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "mfa_required", "{body}");
    assert!(
        body.get("access_token").is_none(),
        "no tokens before the second factor"
    );
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn totp_sign_in_takes_two_steps_and_refuses_replays(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("m@example.com", PASSWORD, true, &[]).await;
    let first = app.login("m@example.com", PASSWORD).await;
    let (secret, _) = enrol_totp(&app, first["access_token"].as_str().unwrap()).await;

    let challenge = start_login(&app, "m@example.com").await;
    let wrong = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge, "code": "000000"}),
        )
        .await;
    assert_problem(wrong, 400, "invalid-code").await;
    // The code of the step already used for enrolment is a replay; the next step is fine.
    let replay = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge, "code": code(&secret, 0)}),
        )
        .await;
    assert_problem(replay, 400, "invalid-code").await;
    let next = code(&secret, 1);
    let ok = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge, "code": next}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let tokens: serde_json::Value = ok.json().await.unwrap();
    let me: serde_json::Value = app
        .get_as("/api/v1/me", tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["amr"], json!(["pwd", "otp", "mfa"]));

    // The challenge is spent, and the code cannot be used again on a new one.
    let reuse = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge, "code": next}),
        )
        .await;
    assert_problem(reuse, 400, "invalid-token").await;
    let challenge = start_login(&app, "m@example.com").await;
    let replay = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge, "code": next}),
        )
        .await;
    assert_problem(replay, 400, "invalid-code").await;
    assert!(
        app.emails_to("m@example.com")
            .await
            .iter()
            .any(|e| e.template == "mfa_changed"),
        "the owner is told"
    );
    app.stop().await;
}

async fn recovery_codes_work_once(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("rc@example.com", PASSWORD, true, &[]).await;
    let first = app.login("rc@example.com", PASSWORD).await;
    let (_, codes) = enrol_totp(&app, first["access_token"].as_str().unwrap()).await;
    assert_eq!(codes.len(), 10);

    let challenge = start_login(&app, "rc@example.com").await;
    let typed = codes[3].to_lowercase().replace('-', " ");
    let ok = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge, "code": typed}),
        )
        .await;
    assert_eq!(
        ok.status(),
        200,
        "recovery codes are forgiving about case and separators"
    );
    let challenge = start_login(&app, "rc@example.com").await;
    let again = app
        .post_json(
            "/api/v1/auth/mfa",
            &json!({"mfa_token": challenge, "code": codes[3]}),
        )
        .await;
    assert_problem(again, 400, "invalid-code").await;
    let status: serde_json::Value = app
        .get_as("/api/v1/me/mfa", first["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        json!({"totp": true, "passkeys": 0, "recovery_codes_remaining": 9})
    );
    app.stop().await;
}

async fn disabling_totp_needs_a_current_code_or_the_password(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("d@example.com", PASSWORD, true, &[]).await;
    let session = app.login("d@example.com", PASSWORD).await;
    let token = session["access_token"].as_str().unwrap();
    enrol_totp(&app, token).await;
    let neither = app
        .post_as("/api/v1/me/mfa/totp/disable", token, &json!({}))
        .await;
    assert_problem(neither, 422, "validation-failed").await;
    let wrong = app
        .post_as(
            "/api/v1/me/mfa/totp/disable",
            token,
            &json!({"password": "not my password"}),
        )
        .await;
    assert_problem(wrong, 400, "invalid-code").await;
    let ok = app
        .post_as(
            "/api/v1/me/mfa/totp/disable",
            token,
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(ok.status(), 204);
    let status: serde_json::Value = app
        .get_as("/api/v1/me/mfa", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        json!({"totp": false, "passkeys": 0, "recovery_codes_remaining": 0})
    );
    app.login("d@example.com", PASSWORD).await;
    app.stop().await;
}

async fn a_wrong_enrolment_code_does_not_enable_totp(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("w@example.com", PASSWORD, true, &[]).await;
    let session = app.login("w@example.com", PASSWORD).await;
    let token = session["access_token"].as_str().unwrap();
    let enrolment: serde_json::Value = app
        .post_as("/api/v1/me/mfa/totp", token, &json!({"password": PASSWORD}))
        .await
        .json()
        .await
        .unwrap();
    let secret = enrolment["secret"].as_str().unwrap();
    let wrong_code = format!(
        "{:06}",
        (code(secret, 0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let wrong = app
        .post_as(
            "/api/v1/me/mfa/totp/confirm",
            token,
            &json!({"code": wrong_code}),
        )
        .await;
    assert_problem(wrong, 400, "invalid-code").await;
    app.login("w@example.com", PASSWORD).await;
    app.stop().await;
}
