//! The error envelope: `{"error": {"code", "message", "details"?}, "meta": {"request_id"}}`.
//! Every error response of the service is built here.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use neo_domain::FieldError;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::context;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn with_field(self, field: &str) -> Self {
        self.with_details(json!({ "field": field }))
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", msg)
    }
    pub fn invalid_cursor() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            "the cursor is not valid for this list; start again without a cursor",
        )
        .with_field("cursor")
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", msg)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn backfill_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "backfill_not_found",
            "backfill not found",
        )
    }
    pub fn workflow_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "workflow_not_found",
            "workflow not found",
        )
    }
    pub fn conflict(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, msg)
    }
    pub fn validation(e: FieldError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            e.message,
        )
        .with_field(&e.field)
    }
    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        Self::validation(FieldError::new(field, msg))
    }
    /// 503 `database_unavailable` with `Retry-After`: the database is busy, full or
    /// unreachable for now.
    pub fn database_unavailable(why: neo_store::Unavailable) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            why.message(),
        );
        e.retry_after = Some(match why {
            neo_store::Unavailable::CannotWrite => 30,
            _ => 1,
        });
        e
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; quote the request_id when reporting it",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

/// The code of [`neo_store::StoreError::IdempotencyKeyTaken`] (the idempotent routes replay
/// the winner's response instead).
pub const IDEMPOTENCY_KEY_IN_USE: &str = "idempotency_key_in_use";

impl From<neo_store::StoreError> for ApiError {
    fn from(e: neo_store::StoreError) -> Self {
        match e {
            neo_store::StoreError::NotFound => ApiError::not_found("resource"),
            neo_store::StoreError::AlreadyActive => ApiError::conflict(
                "backfill_already_active",
                "another backfill of this workflow is active (DRAFT, RUNNING or PAUSED)",
            ),
            neo_store::StoreError::Conflict(m) => ApiError::conflict("conflict", m),
            neo_store::StoreError::IdempotencyKeyTaken => ApiError::conflict(
                IDEMPOTENCY_KEY_IN_USE,
                "another request with this Idempotency-Key is in progress; retry",
            ),
            e @ neo_store::StoreError::Secret(_) => {
                tracing::error!(error = %e, "a secret could not be sealed or opened");
                ApiError::internal()
            }
            e @ neo_store::StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "a stored value could not be read");
                ApiError::internal()
            }
            e @ neo_store::StoreError::Db(_) => match e.unavailable() {
                Some(why) => {
                    tracing::warn!(error = %e, "database unavailable");
                    ApiError::database_unavailable(why)
                }
                None => {
                    tracing::error!(error = %e, "database error");
                    ApiError::internal()
                }
            },
        }
    }
}

/// Renders an error body for the current request.
pub fn error_body(code: &str, message: &str, details: Option<&Value>) -> Value {
    let mut err = json!({ "code": code, "message": message });
    if let Some(d) = details {
        err["details"] = d.clone();
    }
    json!({ "error": err, "meta": { "request_id": context::request_id() } })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "server error response");
        }
        let body = error_body(self.code, &self.message, self.details.as_ref());
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(s));
        }
        resp
    }
}

// ---- OpenAPI shapes of the envelope (match the seed document) -------------------------

/// `{error: {code, message, details?}, meta: {request_id}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    #[schema(inline)]
    pub error: ErrorBody,
    #[schema(inline)]
    pub meta: ErrorMeta,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable error code.
    pub code: String,
    pub message: String,
    #[schema(required = false, value_type = Object, additional_properties = true)]
    pub details: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorMeta {
    #[schema(required = false, value_type = Option<String>, format = "uuid")]
    pub request_id: Option<uuid::Uuid>,
}
