//! Access tokens as other software sees them: an independent JWT library validating
//! them through our JWKS, key rotation, and the clean-up of spent credentials.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use plinth_store::{exec, on};
use plinth_testkit::{TestDatabase, backend_tests};
use serde_json::json;

use crate::auth::PASSWORD;
use crate::support::TestApp;

backend_tests!(
    an_independent_jwt_library_validates_access_tokens_through_the_jwks,
    rotated_keys_keep_verifying_old_tokens_until_they_expire,
    a_key_written_into_the_database_without_the_master_key_is_not_trusted,
    cleanup_removes_spent_credentials_and_keeps_live_ones,
    queued_email_is_delivered_to_a_real_smtp_server,
);

#[derive(Debug, serde::Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    iss: String,
    exp: i64,
    amr: Vec<String>,
    pv: i64,
}

async fn jwks(app: &TestApp) -> JwkSet {
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn validate(
    jwks: &JwkSet,
    token: &str,
    issuer: &str,
) -> Result<Claims, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    let kid = header.kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the kid is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_jwk(jwk)?, &validation)
        .map(|data| data.claims)
}

async fn an_independent_jwt_library_validates_access_tokens_through_the_jwks(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let user = app
        .create_user("jwt@example.com", PASSWORD, true, &[])
        .await;
    let tokens = app.login("jwt@example.com", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let keys = jwks(&app).await;
    assert_eq!(keys.keys.len(), 1);
    let claims = validate(&keys, access, &app.base).expect("valid per jsonwebtoken");
    assert_eq!(claims.sub, user.to_string());
    assert_eq!(claims.iss, app.base);
    assert_eq!(claims.amr, vec!["pwd"]);
    assert_eq!(claims.pv, 0);
    assert!(!claims.sid.is_empty());
    assert!(claims.exp > plinth_core::Timestamp::now().unix_seconds());
    assert_eq!(
        jsonwebtoken::decode_header(access).unwrap().typ.as_deref(),
        Some("at+jwt")
    );

    // A token signed by someone else, with our kid, is refused by both verifiers.
    let mut parts: Vec<&str> = access.split('.').collect();
    let other = app.login("jwt@example.com", PASSWORD).await;
    let other_signature = other["access_token"]
        .as_str()
        .unwrap()
        .rsplit('.')
        .next()
        .unwrap()
        .to_owned();
    parts[2] = &other_signature;
    let spliced = parts.join(".");
    assert!(validate(&keys, &spliced, &app.base).is_err());
    assert_eq!(app.get_as("/api/v1/me", &spliced).await.status(), 401);

    let discovery: serde_json::Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], app.base);
    assert_eq!(
        discovery["jwks_uri"],
        format!("{}/.well-known/jwks.json", app.base)
    );
    app.stop().await;
}

async fn rotated_keys_keep_verifying_old_tokens_until_they_expire(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("k@example.com", PASSWORD, true, &[]).await;
    let before = app.login("k@example.com", PASSWORD).await;
    let old_kid = jsonwebtoken::decode_header(before["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();

    // What `plinth keys rotate` does, from another process's point of view.
    let master = plinth_identity::MasterKey::load(None, &app.state.config.data_dir).unwrap();
    let (new_kid, retired) =
        plinth_identity::crypto::signing::rotate(&app.db, &master, time::Duration::minutes(10))
            .await
            .unwrap();
    assert_eq!(retired, 1);
    app.state.identity.keys().reload().await.unwrap();

    let after = app.login("k@example.com", PASSWORD).await;
    let kid = jsonwebtoken::decode_header(after["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(kid, new_kid);
    assert_ne!(kid, old_kid);
    let keys = jwks(&app).await;
    assert_eq!(keys.keys.len(), 2, "the retired key stays published");
    assert!(validate(&keys, before["access_token"].as_str().unwrap(), &app.base).is_ok());
    assert_eq!(
        app.get_as("/api/v1/me", before["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Once its tokens have expired the retired key leaves the set.
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE signing_keys SET published_until = $1 WHERE kid = $2")
        .bind(plinth_core::Timestamp::now() - time::Duration::seconds(1)).bind(&old_kid).execute(c).await).unwrap();
    tx.commit().await.unwrap();
    app.state.identity.keys().reload().await.unwrap();
    assert_eq!(jwks(&app).await.keys.len(), 1);
    assert_eq!(
        app.get_as("/api/v1/me", before["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    app.stop().await;
}

/// Someone who can write the database but lacks the master key adds a key pair of their
/// own: it must neither verify tokens nor seal audit checkpoints, and as the signing key
/// it stops the key ring rather than being used.
async fn a_key_written_into_the_database_without_the_master_key_is_not_trusted(db: TestDatabase) {
    use base64::Engine;
    use plinth_audit::Seal;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let app = TestApp::spawn(db).await;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&public);
    let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        <sha2::Sha256 as sha2::Digest>::digest(
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#).as_bytes(),
        ),
    );
    let insert = |retired: bool| {
        let (db, kid, public) = (app.db.clone(), kid.clone(), public.clone());
        async move {
            let now = plinth_core::Timestamp::now();
            let mut tx = db.begin().await.unwrap();
            exec!(tx.conn(), c => sqlx::query(
                "INSERT INTO signing_keys (kid, algorithm, public_key, private_key_sealed, created_at, retired_at, published_until)
                 VALUES ($1, 'EdDSA', $2, $3, $4, $5, $6)"
            ).bind(&kid).bind(&public).bind(b"not sealed by this instance".to_vec()).bind(now)
            .bind(retired.then_some(now)).bind(retired.then_some(now + time::Duration::hours(1)))
            .execute(c).await).unwrap();
            tx.commit().await.unwrap();
        }
    };
    insert(true).await;
    app.state.identity.keys().reload().await.unwrap();
    let published: Vec<String> = jwks(&app)
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(published.len(), 1);
    assert!(!published.contains(&kid), "the forged key is not published");
    let message = b"plinth-audit-checkpoint-v1\nforged";
    let signature = pair.sign(message);
    assert!(
        !app.state
            .identity
            .keys()
            .holds(&kid, message, signature.as_ref())
    );

    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(&kid).execute(c).await).unwrap();
    tx.commit().await.unwrap();
    insert(false).await;
    let refused = app.state.identity.keys().reload().await.unwrap_err();
    assert!(refused.to_string().contains(&kid), "{refused}");
    app.stop().await;
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    let mut conn = app.db.read().await.unwrap();
    on!(conn.conn(), c => sqlx::query_scalar(sql).fetch_one(c).await).unwrap()
}

async fn cleanup_removes_spent_credentials_and_keeps_live_ones(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    app.create_user("c@example.com", PASSWORD, true, &[]).await;
    let live = app.login("c@example.com", PASSWORD).await;
    let old = app.login("c@example.com", PASSWORD).await;
    app.post_as(
        "/api/v1/auth/logout",
        old["access_token"].as_str().unwrap(),
        &json!({}),
    )
    .await;
    app.post_json(
        "/api/v1/auth/forgot-password",
        &json!({"email": "c@example.com"}),
    )
    .await;
    app.wait_for_link_token("c@example.com", "reset").await;

    // Age the revoked session and the used token past their retention.
    let long_ago = plinth_core::Timestamp::now() - time::Duration::days(31);
    let mut tx = app.db.begin().await.unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NOT NULL").bind(long_ago).execute(c).await).unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NOT NULL").bind(long_ago).execute(c).await).unwrap();
    exec!(tx.conn(), c => sqlx::query("UPDATE one_time_tokens SET used_at = $1, expires_at = $1").bind(long_ago).execute(c).await).unwrap();
    tx.commit().await.unwrap();

    let report = plinth_identity::cleanup::cleanup(&app.db, plinth_core::Timestamp::now())
        .await
        .unwrap();
    assert_eq!(report.sessions, 1);
    assert_eq!(report.refresh_tokens, 1);
    assert_eq!(report.one_time_tokens, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM sessions").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM refresh_tokens").await, 1);
    let refresh = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": live["refresh_token"]}),
        )
        .await;
    assert_eq!(
        refresh.status(),
        200,
        "live credentials survive the clean-up"
    );
    app.stop().await;
}

async fn queued_email_is_delivered_to_a_real_smtp_server(db: TestDatabase) {
    let smtp = plinth_testkit::TestSmtp::start();
    let app = TestApp::on(db)
        .with("smtp_url", &smtp.url)
        .with("smtp_from", "Plinth <no-reply@plinth.test>")
        .spawn()
        .await;
    app.create_user("mail@example.com", PASSWORD, true, &[])
        .await;
    app.post_json(
        "/api/v1/auth/forgot-password",
        &json!({"email": "mail@example.com"}),
    )
    .await;
    let link = app.wait_for_link_token("mail@example.com", "reset").await;

    let sender = plinth_identity::mail::Sender::new(
        app.db.clone(),
        &smtp.url,
        "Plinth <no-reply@plinth.test>",
    )
    .unwrap();
    assert_eq!(sender.deliver_due().await.unwrap(), 1);
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, vec!["mail@example.com"]);
    assert_eq!(received[0].from, "no-reply@plinth.test");
    assert!(
        received[0]
            .data
            .contains("Subject: Reset your Plinth password")
    );
    assert!(received[0].data.contains("multipart/alternative"));
    assert!(
        received[0].data.replace("=\r\n", "").contains(&link),
        "the link survives the encoding"
    );
    assert_eq!(sender.deliver_due().await.unwrap(), 0, "sent once");
    assert!(app.emails_to("mail@example.com").await[0].sent_at.is_some());
    app.stop().await;
}
