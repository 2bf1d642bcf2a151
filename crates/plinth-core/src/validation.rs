//! Per-field validation errors, reported to clients in the `errors` member of a
//! problem document (RFC 9457 extension member).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) to the offending member, e.g. `/password`.
    pub pointer: String,
    /// Stable machine-readable code, e.g. `too_short`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &str, code: &'static str, detail: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, code, detail);
        errors
    }

    /// `field` is a member name (`password`) or a JSON Pointer (`/settings/mfa`).
    pub fn add(&mut self, field: &str, code: &'static str, detail: impl Into<String>) {
        let pointer = if field.starts_with('/') || field.is_empty() {
            field.to_owned()
        } else {
            format!("/{field}")
        };
        self.0.push(FieldError {
            pointer,
            code,
            detail: detail.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    /// `Ok(())` when no error was added, so validation code can end with `errors.finish()?`.
    pub fn finish(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| format!("{}: {}", e.pointer, e.detail)).collect();
        f.write_str(&parts.join("; "))
    }
}
