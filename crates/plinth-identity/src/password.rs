//! Password policy and hashing.
//!
//! Hashes are argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1) in PHC string
//! form, which records the parameters with each hash; a hash made with other parameters
//! is re-made at the next successful sign-in. Hashing costs tens of milliseconds of CPU,
//! so it runs on the blocking pool, never on an async worker.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use plinth_core::FieldErrors;
use secrecy::{ExposeSecret, SecretString};

use crate::email::Email;
use crate::error::{IdentityError, IdentityResult};

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../data/common-passwords.txt").lines().collect());

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_chars: usize,
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 12,
            max_chars: 128,
        }
    }
}

impl PasswordPolicy {
    /// Checks a new password; `email` is the account's address, which may not be reused.
    pub fn check(&self, password: &str, email: Option<&Email>) -> Result<(), FieldErrors> {
        let field = "password";
        let chars = password.chars().count();
        let mut errors = FieldErrors::new();
        if chars < self.min_chars {
            errors.add(
                field,
                "too_short",
                format!("use at least {} characters", self.min_chars),
            );
        } else if chars > self.max_chars {
            errors.add(field, "too_long", format!("use at most {} characters", self.max_chars));
        } else {
            let lowered = password.to_lowercase();
            if COMMON_PASSWORDS.contains(lowered.as_str()) {
                errors.add(
                    field,
                    "too_common",
                    "this password is among the most common ones; choose another",
                );
            } else if let Some(email) = email
                && (lowered == email.normalized() || lowered == email.local_part())
            {
                errors.add(field, "matches_email", "the password cannot be your e-mail address");
            }
        }
        errors.finish()
    }
}

/// Hashes and verifies passwords with fixed parameters.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self {
            params: Params::DEFAULT,
        }
    }
}

/// A verified password, and whether its stored hash should be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Match { rehash: Option<String> },
    Mismatch,
}

impl PasswordHasher {
    /// A hasher with custom parameters (tests use cheap ones to exercise rehashing).
    pub fn with_params(m_cost: u32, t_cost: u32, p_cost: u32) -> IdentityResult<Self> {
        let params = Params::new(m_cost, t_cost, p_cost, None).map_err(|e| IdentityError::Hashing(e.to_string()))?;
        Ok(Self { params })
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub async fn hash(&self, password: SecretString) -> IdentityResult<String> {
        let argon = self.argon();
        tokio::task::spawn_blocking(move || {
            argon
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| IdentityError::Hashing(e.to_string()))
        })
        .await
        .map_err(|e| IdentityError::Hashing(e.to_string()))?
    }

    /// Verifies `password` against `stored`; on a match, also returns a fresh hash when
    /// `stored` was made with other parameters than the current ones.
    pub async fn verify(&self, password: SecretString, stored: String) -> IdentityResult<Verified> {
        let hasher = self.clone();
        tokio::task::spawn_blocking(move || hasher.verify_blocking(password.expose_secret(), &stored))
            .await
            .map_err(|e| IdentityError::Hashing(e.to_string()))?
    }

    fn verify_blocking(&self, password: &str, stored: &str) -> IdentityResult<Verified> {
        let parsed = PasswordHash::new(stored).map_err(|e| IdentityError::Hashing(e.to_string()))?;
        let stored_params = Params::try_from(&parsed).ok();
        let outdated = parsed.algorithm.as_str() != "argon2id"
            || stored_params.is_none_or(|p| {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            });
        // Verification uses the parameters recorded in the hash, not ours.
        match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => {
                let rehash = if outdated {
                    Some(
                        self.argon()
                            .hash_password(password.as_bytes())
                            .map(|h| h.to_string())
                            .map_err(|e| IdentityError::Hashing(e.to_string()))?,
                    )
                } else {
                    None
                };
                Ok(Verified::Match { rehash })
            }
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(Verified::Mismatch),
            Err(e) => Err(IdentityError::Hashing(e.to_string())),
        }
    }

    /// Burns the same CPU as a real verification, for sign-ins of unknown accounts, so
    /// response timing does not reveal which e-mail addresses have accounts.
    pub async fn verify_dummy(&self, password: SecretString) {
        static DUMMY: LazyLock<Option<String>> = LazyLock::new(|| {
            Argon2::default()
                .hash_password(b"plinth-dummy-password")
                .ok()
                .map(|h| h.to_string())
        });
        if let Some(stored) = DUMMY.clone() {
            let _ = self.verify(password, stored).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn policy_enforces_length_list_and_email() {
        let policy = PasswordPolicy::default();
        let email = Email::parse("ada.lovelace.1815@example.com").unwrap();
        assert!(policy.check("short", None).is_err());
        assert!(policy.check(&"x".repeat(129), None).is_err());
        assert!(policy.check("correct horse battery staple", Some(&email)).is_ok());
        assert!(policy.check("ada.lovelace.1815@example.com", Some(&email)).is_err());
        // On the common list and long enough to pass the length rule.
        let common = COMMON_PASSWORDS.iter().find(|p| p.chars().count() >= 12).unwrap();
        let err = policy.check(&common.to_uppercase(), None).unwrap_err();
        assert_eq!(err.iter().next().unwrap().code, "too_common");
        assert_eq!(COMMON_PASSWORDS.len(), 10_000);
    }

    #[tokio::test]
    async fn verifies_and_rehashes_when_parameters_change() {
        let cheap = PasswordHasher::with_params(1024, 1, 1).unwrap();
        let hash = cheap.hash(secret("a long passphrase")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            cheap.verify(secret("a long passphrase"), hash.clone()).await.unwrap(),
            Verified::Match { rehash: None }
        );
        assert_eq!(
            cheap.verify(secret("wrong"), hash.clone()).await.unwrap(),
            Verified::Mismatch
        );

        let current = PasswordHasher::with_params(2048, 1, 1).unwrap();
        let Verified::Match { rehash: Some(new_hash) } =
            current.verify(secret("a long passphrase"), hash).await.unwrap()
        else {
            panic!("expected a rehash");
        };
        assert!(new_hash.contains("m=2048"));
    }

    #[test]
    fn default_parameters_are_owasp() {
        let h = PasswordHasher::default();
        assert_eq!(
            (h.params.m_cost(), h.params.t_cost(), h.params.p_cost()),
            (19 * 1024, 2, 1)
        );
    }
}
