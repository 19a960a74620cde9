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
        debug_assert!(
            ERROR_CODES
                .iter()
                .any(|(c, s, _)| *c == code && *s == status.as_u16()),
            "{} {code} is not in ERROR_CODES (the documented list)",
            status.as_u16()
        );
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

/// Every error code the API answers: `(code, status, what it means)`. The OpenAPI document
/// lists them (the description of `error.code`) with an example envelope per code on the
/// responses of that status, and [`ApiError::new`] checks in debug builds that a code is here,
/// so every test that reaches an error keeps the list whole.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("bad_request", 400, "A malformed request: a body that is not JSON, or a bad path or query parameter (`details.field` names it)."),
    ("invalid_cursor", 400, "The cursor was not issued for this list: start again without one."),
    ("unauthorized", 401, "A missing, invalid, expired or revoked credential."),
    ("FORBIDDEN", 403, "Authenticated but not allowed: API-key management needs a dashboard admin (Neo's spelling)."),
    ("not_found", 404, "No such resource for this tenant (another tenant's is not found either), or no such route."),
    ("backfill_not_found", 404, "No such backfill for this tenant."),
    ("workflow_not_found", 404, "No such workflow for this tenant."),
    ("method_not_allowed", 405, "The path exists, but not with this method."),
    ("request_timeout", 408, "The body was not received within the body read timeout."),
    ("backfill_already_active", 409, "The target workflow already has an active backfill (DRAFT, RUNNING or PAUSED)."),
    ("backfill_not_rerunnable", 409, "The source backfill is not terminal, or has no failed entity."),
    ("backfill_not_appliable", 409, "Only an ended shadow run can be applied."),
    ("backfill_not_revertable", 409, "Only an ended live run that changed something in the PSA can be reverted."),
    ("backfill_not_active", 409, "A signal or an edit on a terminal backfill."),
    ("signal_not_applicable", 409, "A signal the backfill's state does not take (start a RUNNING backfill, pause a DRAFT)."),
    ("backfill_not_draft", 409, "Only a DRAFT backfill can be deleted."),
    ("workflow_not_enabled", 409, "The target workflow is DISABLED."),
    ("integration_not_configured", 409, "A PSA filter needs the tenant's PSA integration."),
    ("idempotency_key_reused", 409, "The Idempotency-Key was used with another body within 24 h."),
    ("idempotency_key_in_use", 409, "A request with the same Idempotency-Key is still being answered."),
    ("execution_not_retryable", 409, "Only a failed or cancelled execution can be retried."),
    ("execution_already_final", 409, "The execution already ended."),
    ("api_key_not_active", 409, "A revoked or expired key cannot be rotated."),
    ("endpoint_limit", 409, "A tenant has at most 20 notification endpoints."),
    ("conflict", 409, "A concurrent change won: read the resource again."),
    ("payload_too_large", 413, "The body is larger than the service takes."),
    ("unsupported_media_type", 415, "Send `Content-Type: application/json`."),
    ("validation_error", 422, "A well-formed request the rules refuse; `details.field` names the member."),
    ("invalid_for_conversational", 422, "A CONVERSATIONAL workflow cannot be the target of a backfill."),
    ("entity_type_not_supported", 422, "The entity type cannot be backfilled this way: `none`, or a filter on a type the tenant's PSA has no filters for (GET /public-api/entity-types); the message names the PSAs that have them."),
    ("rate_limited", 429, "More requests than the tenant's limit in the window; see `Retry-After`."),
    ("internal_error", 500, "A fault of the service; quote `meta.request_id` when reporting it."),
    ("psa_unavailable", 502, "The PSA refused the integration's credentials or answered unexpectedly."),
    ("psa_unavailable", 503, "The PSA could not be reached."),
    ("not_ready", 503, "The service is starting: it is migrating the database. Retry after `Retry-After`."),
    ("database_unavailable", 503, "The database is busy, full or unreachable for now; see `Retry-After`."),
];

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
