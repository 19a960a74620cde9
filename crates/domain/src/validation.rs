/// A semantic validation failure: the request was well formed but one field is wrong.
/// `field` is the JSON path of the offending member (e.g. `daily_execution_windows.monday[0].run_end_time`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
