//! Password policy and hashing.
//!
//! Hashes are argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1) in PHC string
//! form, which records the parameters with each hash; a hash made with other parameters
//! is re-made at the next successful sign-in. Hashing costs tens of milliseconds of CPU,
//! so it runs on the blocking pool, never on an async worker.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use plinth_core::FieldErrors;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

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

/// The threads that run password hashes: one per core. Each hash holds 19 MiB while it
/// runs; hashing on the general blocking pool let a burst of sign-ins run dozens at once,
/// which peaked at 2.8 GB of memory in the benchmark and was slower (the work is
/// CPU-bound). A fixed pool bounds both, and each thread reuses its memory.
struct HashPool {
    jobs: std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>>,
}

static HASH_POOL: LazyLock<HashPool> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(1024);
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..cores {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("plinth-argon2-{i}"))
            .spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password-hashing thread");
        }
    }
    HashPool { jobs }
});

thread_local! {
    /// Each hashing thread's argon2 working memory (19 MiB), kept between hashes so
    /// it is neither reallocated nor page-faulted in again for every sign-in.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2 into `out` with this thread's reusable working memory.
fn argon2_into(argon: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> IdentityResult<()> {
    let blocks = argon.params().block_count();
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(|e| IdentityError::Hashing(e.to_string()))
    })
}

/// Runs `work` on the hashing pool and waits for its result.
async fn on_hash_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> IdentityResult<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        let _ = done.send(work());
    });
    // A full queue means a flood of sign-ins: wait for room without blocking the runtime.
    let mut job = Some(job);
    while let Some(pending) = job.take() {
        match HASH_POOL.jobs.try_send(pending) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(back)) => {
                job = Some(back);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(IdentityError::Hashing("the hashing threads are gone".into()));
            }
        }
    }
    result
        .await
        .map_err(|_| IdentityError::Hashing("a hashing thread failed".into()))
}

/// Hashes and verifies passwords with fixed parameters, on the hashing pool.
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
        let hasher = self.clone();
        on_hash_pool(move || hasher.hash_blocking(password.expose_secret().as_bytes())).await?
    }

    fn hash_blocking(&self, password: &[u8]) -> IdentityResult<String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| IdentityError::Hashing(e.to_string()))?;
        let mut out = [0u8; 32];
        argon2_into(&self.argon(), password, &salt, &mut out)?;
        let hashing = |e: argon2::password_hash::phc::Error| IdentityError::Hashing(e.to_string());
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| IdentityError::Hashing(e.to_string()))?,
            salt: Some(Salt::new(&salt).map_err(hashing)?),
            hash: Some(Output::new(&out).map_err(hashing)?),
        };
        Ok(phc.to_string())
    }

    /// Verifies `password` against `stored`; on a match, also returns a fresh hash when
    /// `stored` was made with other parameters than the current ones.
    pub async fn verify(&self, password: SecretString, stored: String) -> IdentityResult<Verified> {
        let hasher = self.clone();
        on_hash_pool(move || hasher.verify_blocking(password.expose_secret(), &stored)).await?
    }

    fn verify_blocking(&self, password: &str, stored: &str) -> IdentityResult<Verified> {
        let invalid = |what: &str| IdentityError::Hashing(format!("stored password hash: {what}"));
        let parsed = PasswordHash::new(stored).map_err(|e| invalid(&e.to_string()))?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| invalid(&e.to_string()))?;
        let version = Version::try_from(parsed.version.unwrap_or(0x13)).map_err(|e| invalid(&e.to_string()))?;
        let params = Params::try_from(&parsed).map_err(|e| invalid(&e.to_string()))?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(invalid("no salt or hash"));
        };
        let outdated = algorithm != Algorithm::Argon2id
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost();
        // Verification uses the parameters recorded in the hash, not ours.
        let mut out = vec![0u8; expected.len()];
        argon2_into(
            &Argon2::new(algorithm, version, params),
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
        )?;
        if !bool::from(out.as_slice().ct_eq(expected.as_ref())) {
            return Ok(Verified::Mismatch);
        }
        let rehash = if outdated {
            Some(self.hash_blocking(password.as_bytes())?)
        } else {
            None
        };
        Ok(Verified::Match { rehash })
    }

    /// Burns the same CPU as a real verification, for sign-ins of unknown accounts, so
    /// response timing does not reveal which e-mail addresses have accounts.
    pub async fn verify_dummy(&self, password: SecretString) {
        static DUMMY: LazyLock<Option<String>> =
            LazyLock::new(|| PasswordHasher::default().hash_blocking(b"plinth-dummy-password").ok());
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

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_verified_by_argon2_itself() {
        use argon2::PasswordVerifier;
        let hash = PasswordHasher::default()
            .hash(secret("a long passphrase"))
            .await
            .unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default().verify_password(b"a long passphrase", &parsed).is_ok());
        assert!(
            Argon2::default()
                .verify_password(b"another passphrase", &parsed)
                .is_err()
        );
        // And hashes made by argon2 verify here (accounts created by other tools).
        use argon2::PasswordHasher as _;
        let theirs = Argon2::default()
            .hash_password(b"imported password")
            .unwrap()
            .to_string();
        assert_eq!(
            PasswordHasher::default()
                .verify(secret("imported password"), theirs)
                .await
                .unwrap(),
            Verified::Match { rehash: None }
        );
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
