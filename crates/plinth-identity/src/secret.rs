//! Random bearer secrets (one-time tokens, refresh tokens, API keys): 256 bits from the
//! OS, shown to their owner once, stored only as a SHA-256 digest. A fast hash is right
//! here, unlike for passwords: the input has full entropy, so it cannot be guessed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{IdentityError, IdentityResult};

/// A freshly generated secret; `expose` gives the text to hand to its owner.
pub struct SecretToken(Zeroizing<String>);

impl SecretToken {
    pub fn generate() -> IdentityResult<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut())
            .map_err(|e| IdentityError::Hashing(format!("no randomness from the OS: {e}")))?;
        Ok(SecretToken(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()))))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> Vec<u8> {
        hash_token(&self.0)
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

/// The stored form of a presented token. Lookups go by this digest, so no comparison
/// of secret text happens in application code at all.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_url_safe_and_256_bits() {
        let a = SecretToken::generate().unwrap();
        let b = SecretToken::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(a.digest(), hash_token(a.expose()));
    }
}
