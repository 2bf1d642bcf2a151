//! The Ed25519 keys that sign access tokens. The newest unretired key signs; every key
//! still published verifies. `plinth keys rotate` adds a key and retires the previous
//! one, which stays published until the last token it signed has expired. Servers
//! reload the set when they meet an unknown key id, so a rotation made by one replica
//! reaches the others without a restart.
//!
//! A key is believed only when its sealed private key opens under the master key and
//! gives the public key stored beside it: someone who can write the database but does not
//! hold the master key cannot slip in a key of their own to sign tokens or audit seals.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration as StdDuration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plinth_core::Timestamp;
use plinth_store::{Db, exec, on};
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::Duration;

use crate::crypto::master_key::MasterKey;
use crate::error::{IdentityError, IdentityResult};

const SEAL_PURPOSE: &str = "signing-key";
/// A reload triggered by an unknown key id happens at most this often.
const RELOAD_INTERVAL: StdDuration = StdDuration::from_secs(5);

struct KeySet {
    signing: Option<(String, Arc<Ed25519KeyPair>)>,
    /// Published keys: they verify tokens.
    verifying: HashMap<String, Vec<u8>>,
    /// Every key the instance ever held, retired ones included: they verify audit seals
    /// (signed heads and checkpoints), which outlive any token.
    sealing: HashMap<String, Vec<u8>>,
    loaded_at: Instant,
}

#[derive(Clone)]
pub struct KeyRing {
    db: Db,
    master: MasterKey,
    set: Arc<RwLock<KeySet>>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    public_key: Vec<u8>,
    private_key_sealed: Vec<u8>,
    retired_at: Option<Timestamp>,
    published_until: Option<Timestamp>,
}

/// RFC 7638 thumbprint of the public key: a stable id derived from the key itself.
fn thumbprint(public_key: &[u8]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public_key);
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl KeyRing {
    /// Loads the published keys, creating the first signing key on a new database.
    pub async fn load(db: Db, master: MasterKey) -> IdentityResult<KeyRing> {
        let ring = KeyRing {
            db,
            master,
            set: Arc::new(RwLock::new(KeySet {
                signing: None,
                verifying: HashMap::new(),
                sealing: HashMap::new(),
                loaded_at: Instant::now(),
            })),
        };
        ring.reload().await?;
        if ring.read().signing.is_none() {
            add_key(&ring.db, &ring.master).await?;
            ring.reload().await?;
        }
        Ok(ring)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.set.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub async fn reload(&self) -> IdentityResult<()> {
        let now = Timestamp::now();
        let mut conn = self.db.read().await?;
        let rows: Vec<KeyRow> = on!(conn.conn(), c => sqlx::query_as(
            "SELECT kid, public_key, private_key_sealed, retired_at, published_until FROM signing_keys
             ORDER BY created_at"
        ).fetch_all(c).await)?;
        drop(conn);
        let mut signing = None;
        let mut verifying = HashMap::new();
        let mut sealing = HashMap::new();
        for row in rows {
            let Some(pair) = self.held(&row) else {
                if row.retired_at.is_none() {
                    // A wrong master key, or a key slipped into the database: refuse to
                    // sign or verify anything rather than trust it or replace it.
                    return Err(IdentityError::Crypto(format!(
                        "signing key {} does not open under the master key, or does not match its public key",
                        row.kid
                    )));
                }
                tracing::error!(kid = %row.kid, "a retired signing key is not one this instance sealed; it is ignored");
                continue;
            };
            if row.retired_at.is_none() {
                // Rows are oldest first: the last unretired key is the newest.
                signing = Some((row.kid.clone(), Arc::new(pair)));
            }
            if row.retired_at.is_none() || row.published_until.is_some_and(|until| until > now) {
                verifying.insert(row.kid.clone(), row.public_key.clone());
            }
            sealing.insert(row.kid, row.public_key);
        }
        let mut set = self.set.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *set = KeySet {
            signing,
            verifying,
            sealing,
            loaded_at: Instant::now(),
        };
        Ok(())
    }

    /// The key pair of `row` when its private key opens under the master key and matches
    /// the stored public key and id.
    fn held(&self, row: &KeyRow) -> Option<Ed25519KeyPair> {
        let pkcs8 = self.master.open(SEAL_PURPOSE, &row.private_key_sealed).ok()?;
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).ok()?;
        let public = pair.public_key().as_ref();
        (public == row.public_key.as_slice() && thumbprint(public) == row.kid).then_some(pair)
    }

    /// Signs `message`; returns the key id and the signature.
    pub fn sign(&self, message: &[u8]) -> IdentityResult<(String, Vec<u8>)> {
        let set = self.read();
        let (kid, pair) = set
            .signing
            .as_ref()
            .ok_or_else(|| IdentityError::Crypto("no signing key is loaded".into()))?;
        Ok((kid.clone(), pair.sign(message).as_ref().to_vec()))
    }

    /// The key id that signs now.
    pub fn current_kid(&self) -> Option<String> {
        self.read().signing.as_ref().map(|(kid, _)| kid.clone())
    }

    /// `Some(valid)` when the key is known, `None` when it is not.
    fn verify_known(&self, kid: &str, message: &[u8], signature: &[u8]) -> Option<bool> {
        let set = self.read();
        let public = set.verifying.get(kid)?;
        Some(verifies(public, message, signature))
    }

    /// Verifies a signature, reloading the key set once when `kid` is unknown.
    pub async fn verify(&self, kid: &str, message: &[u8], signature: &[u8]) -> bool {
        if let Some(valid) = self.verify_known(kid, message, signature) {
            return valid;
        }
        let stale = self.read().loaded_at.elapsed() >= RELOAD_INTERVAL;
        if stale && self.reload().await.is_ok() {
            return self.verify_known(kid, message, signature).unwrap_or(false);
        }
        false
    }

    /// The JSON Web Key Set of every published key.
    pub fn jwks(&self) -> serde_json::Value {
        let set = self.read();
        let mut keys: Vec<_> = set
            .verifying
            .iter()
            .map(|(kid, public)| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(public),
                    "kid": kid,
                    "use": "sig",
                    "alg": "EdDSA",
                })
            })
            .collect();
        keys.sort_by(|a, b| a["kid"].as_str().cmp(&b["kid"].as_str()));
        json!({ "keys": keys })
    }
}

fn verifies(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, signature)
        .is_ok()
}

/// Audit seals verify with any key the instance ever held: a checkpoint or head signed
/// years ago by a long-retired key still proves what it signed.
impl plinth_audit::Seal for KeyRing {
    fn holds(&self, kid: &str, message: &[u8], signature: &[u8]) -> bool {
        self.read()
            .sealing
            .get(kid)
            .is_some_and(|public| verifies(public, message, signature))
    }
}

impl plinth_audit::Signer for KeyRing {
    fn sign(&self, message: &[u8]) -> Result<(String, Vec<u8>), String> {
        KeyRing::sign(self, message).map_err(|e| e.to_string())
    }
}

/// Adds a new signing key; returns its id.
pub async fn add_key(db: &Db, master: &MasterKey) -> IdentityResult<String> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| IdentityError::Crypto("cannot generate a signing key".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| IdentityError::Crypto("cannot generate a signing key".into()))?;
    let public = pair.public_key().as_ref().to_vec();
    let kid = thumbprint(&public);
    let sealed = master.seal(SEAL_PURPOSE, pkcs8.as_ref())?;
    let mut tx = db.begin().await?;
    exec!(tx.conn(), c => sqlx::query(
        "INSERT INTO signing_keys (kid, algorithm, public_key, private_key_sealed, created_at)
         VALUES ($1, 'EdDSA', $2, $3, $4)"
    ).bind(&kid).bind(public).bind(sealed).bind(Timestamp::now()).execute(c).await)?;
    tx.commit().await?;
    Ok(kid)
}

/// Adds a key and retires the others, which stay published for `token_lifetime` plus a
/// minute of clock skew, so tokens they signed keep verifying until they expire.
pub async fn rotate(db: &Db, master: &MasterKey, token_lifetime: Duration) -> IdentityResult<(String, u64)> {
    let kid = add_key(db, master).await?;
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    let retired = exec!(tx.conn(), c => sqlx::query(
        "UPDATE signing_keys SET retired_at = $1, published_until = $2
         WHERE retired_at IS NULL AND kid <> $3"
    ).bind(now).bind(now + token_lifetime + Duration::minutes(1)).bind(&kid).execute(c).await)?;
    tx.commit().await?;
    Ok((kid, retired))
}
