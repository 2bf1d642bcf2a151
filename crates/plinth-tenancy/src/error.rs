use plinth_core::FieldErrors;
use plinth_identity::IdentityError;
use plinth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("invalid input: {0}")]
    Validation(FieldErrors),
    /// Unknown, or not visible to the caller: the two are not told apart.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("the tenant is suspended")]
    Suspended,
    #[error("the tenant's trial has expired")]
    Expired,
    #[error("{0}")]
    Conflict(&'static str),
    /// The roles allow it; an attribute policy of the tenant does not.
    #[error("denied by policy {policy}: {why}")]
    PolicyDenied { policy: String, why: String },
    /// The schema and the list of tenant-owned tables disagree: a purge or export would
    /// leave rows behind, so it does not run.
    #[error("the tenant-owned tables are out of step with the schema: {0}")]
    UnruledTables(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TenancyError {
    fn from(e: sqlx::Error) -> Self {
        TenancyError::Store(StoreError::Database(e))
    }
}

impl From<FieldErrors> for TenancyError {
    fn from(e: FieldErrors) -> Self {
        TenancyError::Validation(e)
    }
}

pub type TenancyResult<T> = Result<T, TenancyError>;

/// A unique-constraint failure becomes a "taken" validation error on `field`; any other
/// store error passes through.
pub(crate) fn taken_if_unique<T>(result: Result<T, StoreError>, field: &str, detail: &'static str) -> TenancyResult<T> {
    result.map_err(|e| {
        if e.is_unique_violation() {
            TenancyError::Validation(FieldErrors::single(field, "taken", detail))
        } else {
            e.into()
        }
    })
}
