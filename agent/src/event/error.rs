//! Validation errors that point at the offending field, so a handheld developer or a technician
//! reading the dead-letter store knows exactly what to fix (`lines[0].quantity: must not be negative`).

use std::fmt;

use crate::units::SerdeProblem;

/// A payload that does not match its kind's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field in the payload (`lines[0].quantity`); empty for the payload as a whole.
    pub(crate) field: String,
    pub(crate) message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// Converts a serde error carrying a path into a `FieldError`. A "missing field" error is
    /// reported at the missing field itself, not at its parent.
    pub(crate) fn from_path_error(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let message = strip_position(&err.inner().to_string());
        match crate::units::serde_error_key(&err.path().to_string(), &message) {
            (field, SerdeProblem::Missing) => Self::new(field, "required field is missing"),
            (field, SerdeProblem::Unknown) => Self::new(field, format!("unknown field (a typo?): {message}")),
            (field, SerdeProblem::Value) => Self::new(field, message),
        }
    }
}

/// serde_json appends " at line 1 column 42"; for a payload the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.field, self.message) }
    }
}

impl std::error::Error for FieldError {}
