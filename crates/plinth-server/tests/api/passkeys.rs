//! Passkeys against a software authenticator that builds real WebAuthn answers
//! (CBOR attestation objects, P-256 signatures), as a browser and a security key would.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use plinth_store::{exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::PASSWORD;
use crate::support::{TestApp, assert_problem};

const FLAG_USER_PRESENT: u8 = 0x01;
const FLAG_USER_VERIFIED: u8 = 0x04;
const FLAG_ATTESTED_DATA: u8 = 0x40;

/// A platform authenticator holding one credential.
pub(crate) struct SoftAuthenticator {
    key: SigningKey,
    credential_id: Vec<u8>,
    counter: u32,
    user_handle: Option<Vec<u8>>,
    /// The page's origin as the browser reports it.
    origin: String,
}

impl SoftAuthenticator {
    pub(crate) fn new(app: &TestApp) -> Self {
        let seed = Sha256::digest(uuid::Uuid::new_v4().as_bytes());
        Self {
            key: SigningKey::from_slice(&seed).unwrap(),
            credential_id: uuid::Uuid::new_v4().as_bytes().to_vec(),
            counter: 0,
            user_handle: None,
            // The test server listens on 127.0.0.1; browsers use it as localhost.
            origin: app.base.replace("127.0.0.1", "localhost"),
        }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": options["publicKey"]["challenge"],
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    fn authenticator_data(&mut self, flags: u8, attested: Option<Vec<u8>>) -> Vec<u8> {
        self.counter += 1;
        let mut data = Sha256::digest(b"localhost").to_vec();
        data.push(flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        if let Some(attested) = attested {
            data.extend_from_slice(&attested);
        }
        data
    }

    /// The answer to `navigator.credentials.create()`.
    pub(crate) fn create(&mut self, options: &Value) -> Value {
        let user = options["publicKey"]["user"]["id"].as_str().unwrap();
        self.user_handle = Some(B64.decode(user).unwrap());
        let point = self.key.verifying_key().to_sec1_point(false);
        let point = point.as_bytes();
        let cose_key = Cbor::Map(BTreeMap::from([
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(-7)),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (Cbor::Integer(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Integer(-3), Cbor::Bytes(point[33..65].to_vec())),
        ]));
        let mut attested = vec![0u8; 16]; // AAGUID
        attested.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        attested.extend_from_slice(&self.credential_id);
        attested.extend_from_slice(&serde_cbor_2::to_vec(&cose_key).unwrap());
        let auth_data = self.authenticator_data(
            FLAG_USER_PRESENT | FLAG_USER_VERIFIED | FLAG_ATTESTED_DATA,
            Some(attested),
        );
        let attestation = Cbor::Map(BTreeMap::from([
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(serde_cbor_2::to_vec(&attestation).unwrap()),
                "clientDataJSON": B64.encode(self.client_data("webauthn.create", options)),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// The answer to `navigator.credentials.get()`.
    pub(crate) fn get(&mut self, options: &Value) -> Value {
        let auth_data = self.authenticator_data(FLAG_USER_PRESENT | FLAG_USER_VERIFIED, None);
        let client_data = self.client_data("webauthn.get", options);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(auth_data),
                "clientDataJSON": B64.encode(client_data),
                "signature": B64.encode(signature.to_der().as_bytes()),
                "userHandle": self.user_handle.as_ref().map(|h| B64.encode(h)),
            },
            "clientExtensionResults": {},
        })
    }
}

backend_tests!(
    a_passkey_can_be_added_listed_renamed_and_removed,
    a_passkey_is_the_second_step_after_a_password,
    a_passkey_signs_in_without_a_password_and_its_challenge_works_once,
    answers_for_another_origin_or_with_a_bad_signature_are_refused_and_recorded,
    a_disabled_account_cannot_sign_in_with_its_passkey,
    adding_a_second_factor_needs_a_fresh_proof_and_guesses_are_rate_limited,
);

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body
}

async fn signed_in_user(app: &TestApp, email: &str) -> String {
    app.create_user(email, PASSWORD, true, &[]).await;
    app.login(email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Registers `authenticator` on the caller's account; returns the finish answer.
async fn register(app: &TestApp, token: &str, authenticator: &mut SoftAuthenticator) -> Value {
    let begun = json_of(
        app.post_as(
            "/api/v1/me/passkeys/register/begin",
            token,
            &json!({"password": PASSWORD}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(begun["options"]["publicKey"]["rp"]["id"], "localhost");
    let credential = authenticator.create(&begun["options"]);
    let finished = app
        .post_as(
            "/api/v1/me/passkeys/register/finish",
            token,
            &json!({"challenge_id": begun["challenge_id"], "name": "Laptop", "credential": credential}),
        )
        .await;
    json_of(finished, 201).await
}

async fn begin_sign_in(app: &TestApp) -> Value {
    json_of(
        app.post_json("/api/v1/auth/passkey/begin", &json!({}))
            .await,
        200,
    )
    .await
}

async fn a_passkey_can_be_added_listed_renamed_and_removed(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let token = signed_in_user(&app, "p@example.com").await;
    let mut authenticator = SoftAuthenticator::new(&app);

    let registered = register(&app, &token, &mut authenticator).await;
    assert_eq!(registered["passkey"]["name"], "Laptop");
    assert_eq!(
        registered["recovery_codes"].as_array().unwrap().len(),
        10,
        "the first second factor comes with recovery codes"
    );
    let mfa = json_of(app.get_as("/api/v1/me/mfa", &token).await, 200).await;
    assert_eq!(mfa["passkeys"], 1);

    // The same authenticator cannot be registered twice; the begin excludes it.
    let again = json_of(
        app.post_as(
            "/api/v1/me/passkeys/register/begin",
            &token,
            &json!({"password": PASSWORD}),
        )
        .await,
        200,
    )
    .await;
    let excluded = again["options"]["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(excluded[0]["id"], B64.encode(&authenticator.credential_id));
    let duplicate = app
        .post_as(
            "/api/v1/me/passkeys/register/finish",
            &token,
            &json!({"challenge_id": again["challenge_id"], "name": "Again", "credential": authenticator.create(&again["options"])}),
        )
        .await;
    assert_problem(duplicate, 400, "passkey-rejected").await;

    let id = registered["passkey"]["id"].as_str().unwrap();
    let renamed = app
        .patch_as(
            &format!("/api/v1/me/passkeys/{id}"),
            &token,
            &json!({"name": "  Work laptop "}),
        )
        .await;
    assert_eq!(json_of(renamed, 200).await["name"], "Work laptop");
    let blank = app
        .patch_as(
            &format!("/api/v1/me/passkeys/{id}"),
            &token,
            &json!({"name": " "}),
        )
        .await;
    assert_problem(blank, 422, "validation-failed").await;
    let listed =
        json_of(app.get_as("/api/v1/me/passkeys", &token).await, 200).await["items"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "Work laptop");
    assert!(
        listed[0].get("credential").is_none(),
        "no key material in the API"
    );

    // A second passkey: the list pages (the collection is bounded at 20, below a page).
    let mut second = SoftAuthenticator::new(&app);
    register(&app, &token, &mut second).await;
    let first_page = json_of(app.get_as("/api/v1/me/passkeys?limit=1", &token).await, 200).await;
    assert_eq!(
        first_page["items"][0]["name"], "Work laptop",
        "oldest first"
    );
    let cursor = first_page["next_cursor"].as_str().unwrap();
    let next = json_of(
        app.get_as(
            &format!("/api/v1/me/passkeys?limit=1&cursor={cursor}"),
            &token,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    assert!(next["next_cursor"].is_null());
    let second_id = next["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete_as(&format!("/api/v1/me/passkeys/{second_id}"), &token)
            .await
            .status(),
        204
    );

    // Another user sees none of it and cannot touch it.
    let other = signed_in_user(&app, "q@example.com").await;
    assert_eq!(
        json_of(app.get_as("/api/v1/me/passkeys", &other).await, 200).await["items"].clone(),
        json!([])
    );
    let foreign = app
        .delete_as(&format!("/api/v1/me/passkeys/{id}"), &other)
        .await;
    assert_problem(foreign, 404, "not-found").await;

    assert_eq!(
        app.delete_as(&format!("/api/v1/me/passkeys/{id}"), &token)
            .await
            .status(),
        204
    );
    assert_eq!(
        json_of(app.get_as("/api/v1/me/passkeys", &token).await, 200).await["items"].clone(),
        json!([])
    );
    let gone = app
        .delete_as(&format!("/api/v1/me/passkeys/{id}"), &token)
        .await;
    assert_problem(gone, 404, "not-found").await;
    let mfa = json_of(app.get_as("/api/v1/me/mfa", &token).await, 200).await;
    assert_eq!(mfa["passkeys"], 0);
    let login = json_of(
        app.post_json(
            "/api/v1/auth/login",
            &json!({"email": "p@example.com", "password": PASSWORD}),
        )
        .await,
        200,
    )
    .await;
    assert!(
        login["access_token"].is_string(),
        "without a second factor the password suffices: {login}"
    );
    app.stop().await;
}

async fn a_passkey_is_the_second_step_after_a_password(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let token = signed_in_user(&app, "s@example.com").await;
    let mut authenticator = SoftAuthenticator::new(&app);
    register(&app, &token, &mut authenticator).await;

    let login = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "s@example.com", "password": PASSWORD}),
        )
        .await;
    let login = json_of(login, 200).await;
    assert_eq!(login["status"], "mfa_required");
    assert_eq!(login["methods"], json!(["passkey", "recovery_code"]));
    let mfa_token = login["mfa_token"].as_str().unwrap();

    let begun = json_of(
        app.post_json(
            "/api/v1/auth/mfa/passkey/begin",
            &json!({"mfa_token": mfa_token}),
        )
        .await,
        200,
    )
    .await;
    let allowed = begun["options"]["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1);
    let credential = authenticator.get(&begun["options"]);
    let finish = json!({"mfa_token": mfa_token, "challenge_id": begun["challenge_id"], "credential": credential});
    let tokens = json_of(
        app.post_json("/api/v1/auth/mfa/passkey/finish", &finish)
            .await,
        200,
    )
    .await;
    let me = json_of(
        app.get_as("/api/v1/me", tokens["access_token"].as_str().unwrap())
            .await,
        200,
    )
    .await;
    assert_eq!(me["amr"], json!(["pwd", "hwk", "mfa"]));

    // The MFA challenge and the passkey challenge are both spent.
    let replay = app
        .post_json("/api/v1/auth/mfa/passkey/finish", &finish)
        .await;
    assert_problem(replay, 400, "invalid-token").await;
    let listed =
        json_of(app.get_as("/api/v1/me/passkeys", &token).await, 200).await["items"].clone();
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
    app.stop().await;
}

async fn a_passkey_signs_in_without_a_password_and_its_challenge_works_once(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let token = signed_in_user(&app, "d@example.com").await;
    let mut authenticator = SoftAuthenticator::new(&app);
    register(&app, &token, &mut authenticator).await;

    let begun = begin_sign_in(&app).await;
    assert!(
        begun["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "a discoverable sign-in names no account"
    );
    let finish = json!({"challenge_id": begun["challenge_id"], "credential": authenticator.get(&begun["options"])});
    let tokens = json_of(
        app.post_json("/api/v1/auth/passkey/finish", &finish).await,
        200,
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    let me = json_of(app.get_as("/api/v1/me", access).await, 200).await;
    assert_eq!(me["user"]["email"], "d@example.com");
    assert_eq!(me["amr"], json!(["hwk", "mfa"]));
    let refreshed = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_eq!(
        refreshed.status(),
        200,
        "a passkey session refreshes like any other"
    );

    let replay = app.post_json("/api/v1/auth/passkey/finish", &finish).await;
    assert_problem(replay, 400, "invalid-token").await;
    // A fresh challenge with the same authenticator works again.
    let begun = begin_sign_in(&app).await;
    let finish = json!({"challenge_id": begun["challenge_id"], "credential": authenticator.get(&begun["options"])});
    json_of(
        app.post_json("/api/v1/auth/passkey/finish", &finish).await,
        200,
    )
    .await;
    app.stop().await;
}

async fn answers_for_another_origin_or_with_a_bad_signature_are_refused_and_recorded(
    db: TestDatabase,
) {
    let app = TestApp::spawn(db).await;
    let token = signed_in_user(&app, "o@example.com").await;
    let mut authenticator = SoftAuthenticator::new(&app);
    register(&app, &token, &mut authenticator).await;

    // A phishing page relaying the challenge: the browser reports its own origin.
    let begun = begin_sign_in(&app).await;
    let honest_origin = std::mem::replace(
        &mut authenticator.origin,
        "http://login.evil.example".into(),
    );
    let finish = json!({"challenge_id": begun["challenge_id"], "credential": authenticator.get(&begun["options"])});
    assert_problem(
        app.post_json("/api/v1/auth/passkey/finish", &finish).await,
        400,
        "passkey-rejected",
    )
    .await;
    authenticator.origin = honest_origin;
    // The refused answer used the challenge up.
    let retry = json!({"challenge_id": begun["challenge_id"], "credential": authenticator.get(&begun["options"])});
    assert_problem(
        app.post_json("/api/v1/auth/passkey/finish", &retry).await,
        400,
        "invalid-token",
    )
    .await;

    // A signature by another key over the right data.
    let begun = begin_sign_in(&app).await;
    let mut forged = authenticator.get(&begun["options"]);
    let mut impostor = SoftAuthenticator::new(&app);
    impostor.credential_id = authenticator.credential_id.clone();
    impostor.user_handle = authenticator.user_handle.clone();
    impostor.counter = authenticator.counter;
    forged["response"]["signature"] =
        impostor.get(&begun["options"])["response"]["signature"].clone();
    let finish = json!({"challenge_id": begun["challenge_id"], "credential": forged});
    assert_problem(
        app.post_json("/api/v1/auth/passkey/finish", &finish).await,
        400,
        "passkey-rejected",
    )
    .await;

    // A credential this server never registered.
    let begun = begin_sign_in(&app).await;
    let mut stranger = SoftAuthenticator::new(&app);
    stranger.user_handle = authenticator.user_handle.clone();
    let finish = json!({"challenge_id": begun["challenge_id"], "credential": stranger.get(&begun["options"])});
    assert_problem(
        app.post_json("/api/v1/auth/passkey/finish", &finish).await,
        400,
        "passkey-rejected",
    )
    .await;

    let mut conn = app.db.read().await.unwrap();
    let failures: i64 = on!(conn.conn(), c => sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.passkey.failed'"
    ).fetch_one(c).await)
    .unwrap();
    assert_eq!(failures, 3, "every rejected ceremony is audited");
    drop(conn);
    app.stop().await;
}

async fn a_disabled_account_cannot_sign_in_with_its_passkey(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let token = signed_in_user(&app, "x@example.com").await;
    let mut authenticator = SoftAuthenticator::new(&app);
    register(&app, &token, &mut authenticator).await;
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE users SET status = 'disabled' WHERE email = 'x@example.com'")
        .execute(c).await)
    .unwrap();
    tx.commit().await.unwrap();
    let begun = begin_sign_in(&app).await;
    let finish = json!({"challenge_id": begun["challenge_id"], "credential": authenticator.get(&begun["options"])});
    assert_problem(
        app.post_json("/api/v1/auth/passkey/finish", &finish).await,
        401,
        "invalid-credentials",
    )
    .await;
    app.stop().await;
}

async fn adding_a_second_factor_needs_a_fresh_proof_and_guesses_are_rate_limited(db: TestDatabase) {
    let app = TestApp::on(db).with("rate_limit_login", 3).spawn().await;
    let token = signed_in_user(&app, "proof@example.com").await;
    // A session alone is not enough to plant a passkey, nor an authenticator app.
    let bare = app
        .post_as("/api/v1/me/passkeys/register/begin", &token, &json!({}))
        .await;
    assert_problem(bare, 422, "validation-failed").await;
    let bare_totp = app.post_as("/api/v1/me/mfa/totp", &token, &json!({})).await;
    assert_problem(bare_totp, 422, "validation-failed").await;
    let wrong_totp = app
        .post_as(
            "/api/v1/me/mfa/totp",
            &token,
            &json!({"password": "not-the-password"}),
        )
        .await;
    assert_problem(wrong_totp, 400, "invalid-code").await;
    let begin = |password: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            app.post_as(
                "/api/v1/me/passkeys/register/begin",
                token,
                &json!({"password": password}),
            )
            .await
        }
    };
    // Two more wrong guesses spend the budget of 3 the TOTP guess started.
    for _ in 0..2 {
        assert_problem(begin("not-the-password").await, 400, "invalid-code").await;
    }
    // The budget is spent: even the right password waits, like a sign-in would.
    let limited = begin(PASSWORD).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_problem(limited, 429, "rate-limited").await;
    // Other re-authentications draw on the same budget.
    let change = app
        .post_as(
            "/api/v1/me/password",
            &token,
            &json!({"current_password": PASSWORD, "new_password": "another long passphrase 42"}),
        )
        .await;
    assert_problem(change, 429, "rate-limited").await;
    app.stop().await;
}
