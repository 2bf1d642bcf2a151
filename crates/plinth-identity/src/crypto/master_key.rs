//! The master key seals secrets stored in the database (signing keys, TOTP secrets) with
//! ChaCha20-Poly1305. It comes from `PLINTH_MASTER_KEY` (base64, 32 bytes) or from a key
//! file created with mode 0600 in the data directory on first start. Each record is
//! sealed with a fresh random nonce and bound to its purpose as associated data, so a
//! sealed value cannot be moved to another column and still open.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use plinth_core::Timestamp;
use plinth_store::{Db, exec, on};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{IdentityError, IdentityResult};

pub const KEY_FILE: &str = "master.key";
const CHECK_PLAINTEXT: &[u8] = b"plinth master key check v1";

#[derive(Clone)]
pub struct MasterKey {
    key: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

fn crypto_error(what: &str) -> IdentityError {
    IdentityError::Crypto(what.to_owned())
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> IdentityResult<Self> {
        if bytes.len() != 32 {
            return Err(IdentityError::Crypto(format!(
                "the master key must be 32 bytes, got {}",
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| crypto_error("invalid master key"))?;
        Ok(Self {
            key: std::sync::Arc::new(LessSafeKey::new(unbound)),
        })
    }

    /// From configuration, or from (and on first use into) `DATA_DIR/master.key`.
    pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> IdentityResult<Self> {
        if let Some(encoded) = configured {
            let bytes = Zeroizing::new(
                STANDARD
                    .decode(encoded.expose_secret().trim())
                    .map_err(|_| crypto_error("PLINTH_MASTER_KEY is not valid base64"))?,
            );
            return Self::from_bytes(&bytes);
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = Zeroizing::new(
                    STANDARD
                        .decode(text.trim())
                        .map_err(|_| IdentityError::Crypto(format!("{} is not valid base64", path.display())))?,
                );
                Self::from_bytes(&bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = Zeroizing::new([0u8; 32]);
                SystemRandom::new()
                    .fill(bytes.as_mut())
                    .map_err(|_| crypto_error("no randomness from the OS"))?;
                {
                    use std::os::unix::fs::DirBuilderExt;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(data_dir)
                        .map_err(|e| IdentityError::Crypto(format!("cannot create {}: {e}", data_dir.display())))?;
                }
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| IdentityError::Crypto(format!("cannot create {}: {e}", path.display())))?;
                file.write_all(STANDARD.encode(bytes.as_ref()).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| IdentityError::Crypto(format!("cannot write {}: {e}", path.display())))?;
                tracing::warn!(
                    path = %path.display(),
                    "created a master key file; back it up with the database, or set PLINTH_MASTER_KEY \
                     (required when several servers share one database)"
                );
                Self::from_bytes(bytes.as_ref())
            }
            Err(e) => Err(IdentityError::Crypto(format!("cannot read {}: {e}", path.display()))),
        }
    }

    /// `nonce ‖ ciphertext ‖ tag`, bound to `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> IdentityResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| crypto_error("no randomness from the OS"))?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| crypto_error("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(out)
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> IdentityResult<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return Err(crypto_error("sealed value too short"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| crypto_error("bad nonce"))?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), buffer.as_mut())
            .map_err(|_| crypto_error("a sealed value does not open with this master key"))?;
        Ok(Zeroizing::new(plaintext.to_vec()))
    }

    /// Verifies that this key is the one the database's secrets were sealed with, or
    /// records it as such on a new database.
    pub async fn check_against(&self, db: &Db) -> IdentityResult<()> {
        let mut conn = db.read().await?;
        let sealed: Option<Vec<u8>> = on!(conn.conn(), c => sqlx::query_scalar(
            "SELECT sealed FROM master_key_check WHERE id = 1"
        ).fetch_optional(c).await)?;
        drop(conn);
        match sealed {
            Some(sealed) => match self.open("master-key-check", &sealed) {
                Ok(plain) if plain.as_slice() == CHECK_PLAINTEXT => Ok(()),
                _ => Err(IdentityError::Crypto(
                    "the master key does not match the one this database's secrets were sealed with \
                     (check PLINTH_MASTER_KEY or the master.key file in the data directory)"
                        .into(),
                )),
            },
            None => {
                let sealed = self.seal("master-key-check", CHECK_PLAINTEXT)?;
                let mut tx = db.begin().await?;
                exec!(tx.conn(), c => sqlx::query(
                    "INSERT INTO master_key_check (id, sealed, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING"
                ).bind(sealed).bind(Timestamp::now()).execute(c).await)?;
                tx.commit().await?;
                // Another process may have won the insert; check against what is stored.
                Box::pin(self.check_against(db)).await
            }
        }
    }
}

/// What webhook signing secrets are sealed for.
const WEBHOOK_SECRET_PURPOSE: &str = "webhook_endpoints.secret";

impl plinth_events::webhooks::SecretBox for MasterKey {
    fn seal(
        &self,
        secret: &plinth_events::webhooks::SigningSecret,
    ) -> Result<Vec<u8>, plinth_events::webhooks::SecretError> {
        MasterKey::seal(self, WEBHOOK_SECRET_PURPOSE, secret.as_bytes())
            .map_err(|e| plinth_events::webhooks::SecretError::Sealing(e.to_string()))
    }

    fn open(
        &self,
        sealed: &[u8],
    ) -> Result<plinth_events::webhooks::SigningSecret, plinth_events::webhooks::SecretError> {
        let bytes = MasterKey::open(self, WEBHOOK_SECRET_PURPOSE, sealed)
            .map_err(|e| plinth_events::webhooks::SecretError::Sealing(e.to_string()))?;
        Ok(plinth_events::webhooks::SigningSecret::from_bytes(bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_purpose() {
        let key = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = key.seal("totp", b"secret").unwrap();
        assert_eq!(key.open("totp", &sealed).unwrap().as_slice(), b"secret");
        assert!(key.open("signing-key", &sealed).is_err(), "bound to its purpose");
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("totp", &sealed).is_err());
        assert_ne!(key.seal("totp", b"secret").unwrap(), sealed, "fresh nonce each time");
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("plinth-mk-{}", uuid::Uuid::now_v7()));
        let a = MasterKey::load(None, &dir).unwrap();
        let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = MasterKey::load(None, &dir).unwrap();
        let sealed = a.seal("x", b"y").unwrap();
        assert_eq!(b.open("x", &sealed).unwrap().as_slice(), b"y");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
