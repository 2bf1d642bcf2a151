use std::time::Duration;

use plinth_core::FieldErrors;
use plinth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid input: {0}")]
    Validation(FieldErrors),
    /// A one-time token that is unknown, expired or already used. Deliberately one
    /// variant for all three, so responses do not tell them apart.
    #[error("the link or token is invalid, expired or already used")]
    InvalidToken,
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    /// Wrong e-mail or password, or an account that cannot sign in now; one answer for
    /// all, so sign-in does not reveal which addresses have accounts.
    #[error("the e-mail address or password is wrong, or the account cannot sign in at the moment")]
    InvalidCredentials,
    #[error("the verification code is wrong or was already used")]
    InvalidCode,
    /// A WebAuthn answer that does not verify (wrong challenge, origin, signature, …).
    #[error("the passkey was not accepted: {0}")]
    PasskeyRejected(String),
    #[error(
        "passkeys need the server's public_url to name a host (e.g. https://auth.example.com, or http://localhost:8080 on this machine)"
    )]
    PasskeysUnavailable,
    #[error("authentication required: {0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("too many attempts; retry in {} s", .0.as_secs())]
    RateLimited(Duration),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("cryptography: {0}")]
    Crypto(String),
    #[error("e-mail: {0}")]
    Mail(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for IdentityError {
    fn from(e: sqlx::Error) -> Self {
        IdentityError::Store(StoreError::Database(e))
    }
}

impl From<FieldErrors> for IdentityError {
    fn from(e: FieldErrors) -> Self {
        IdentityError::Validation(e)
    }
}

pub type IdentityResult<T> = Result<T, IdentityError>;
