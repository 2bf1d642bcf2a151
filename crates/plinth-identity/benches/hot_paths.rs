//! In-process costs of identity's hot paths: `cargo bench -p plinth-identity`.
//!
//! The password hash sets the ceiling for sign-ins (cores ÷ verify time); token signing
//! and verification run on every sign-in and every authenticated request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use plinth_core::{SessionId, UserId};
use plinth_identity::crypto::jwt::{self, AccessClaims};
use plinth_identity::{KeyRing, MasterKey, PasswordHasher};
use secrecy::SecretString;

fn main() {
    divan::main();
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
});

static HASH: LazyLock<String> = LazyLock::new(|| {
    RUNTIME
        .block_on(PasswordHasher::default().hash(SecretString::from("benchmark passphrase".to_owned())))
        .unwrap()
});

/// argon2id, m = 19 MiB, t = 2, p = 1, on the hashing pool.
#[divan::bench(sample_count = 40)]
fn password_verify() {
    let hasher = PasswordHasher::default();
    RUNTIME
        .block_on(hasher.verify(SecretString::from("benchmark passphrase".to_owned()), HASH.clone()))
        .unwrap();
}

struct Keys {
    ring: KeyRing,
    claims: AccessClaims,
    token: String,
    _dir: tempfile::TempDir,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    RUNTIME.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = plinth_store::Db::open(&plinth_store::DbOptions {
            url: None,
            data_dir: dir.path().to_path_buf(),
            max_connections: 2,
            sqlite_synchronous: plinth_core::config::SqliteSynchronous::Normal,
        })
        .await
        .unwrap();
        db.migrate(|_| {}).await.unwrap();
        let master = MasterKey::from_bytes(&[9u8; 32]).unwrap();
        master.check_against(&db).await.unwrap();
        let ring = KeyRing::load(db, master).await.unwrap();
        let now = plinth_core::Timestamp::now().unix_seconds();
        let claims = AccessClaims {
            iss: "https://id.example.com".into(),
            sub: UserId::new(),
            aud: "https://id.example.com".into(),
            iat: now,
            exp: now + 600,
            sid: SessionId::new(),
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
            tenant: None,
            portal: None,
            pv: 3,
        };
        let token = jwt::encode(&ring, &claims).unwrap();
        Keys {
            ring,
            claims,
            token,
            _dir: dir,
        }
    })
});

/// Encodes and signs an access token (Ed25519).
#[divan::bench]
fn access_token_sign(bencher: divan::Bencher) {
    let keys = &*KEYS;
    bencher.bench(|| jwt::encode(&keys.ring, divan::black_box(&keys.claims)).unwrap());
}

/// Parses and verifies an access token's signature and claims.
#[divan::bench]
fn access_token_verify(bencher: divan::Bencher) {
    let keys = &*KEYS;
    let now = plinth_core::Timestamp::now().unix_seconds();
    bencher.bench(|| {
        RUNTIME
            .block_on(jwt::verify(
                &keys.ring,
                divan::black_box(&keys.token),
                "https://id.example.com",
                now,
            ))
            .unwrap()
    });
}
