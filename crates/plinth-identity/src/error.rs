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
    #[error("password hashing failed: {0}")]
    Hashing(String),
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
