//! `/public-api/executions`: the history of workflow executions.

use axum::extract::State;
use axum::http::HeaderMap;
use neo_domain::backfill::ExecutionStatus;
use neo_store::{ExecutionFilter, NewExecution};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{comma_list, page_size};
use crate::envelope::{DataEnvelope, Reply};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::models::PublicExecution;
use crate::paging;
use crate::{AppState, Auth};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListExecutionsParams {
    pub agent_id: Option<i64>,
    pub entity_id: Option<String>,
    pub entity_number: Option<String>,
    /// Statuses, as a comma list: `status=failed,cancelled`.
    #[param(style = Form, explode = false, value_type = Option<Vec<ExecutionStatus>>)]
    pub status: Option<String>,
    pub backfill_id: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    /// Opaque cursor from `meta.pagination.next_cursor`.
    pub cursor: Option<String>,
}

/// List executions, newest first.
///
/// Every execution of the tenant's workflows, from backfills and from single retries. Filter by
/// workflow (`agent_id`), entity, backfill or status (a comma list); keyset-paginated with
/// `meta.pagination.next_cursor`.
#[utoipa::path(get, path = "/public-api/executions", tag = "Executions", operation_id = "listExecutions",
    params(ListExecutionsParams),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicExecution>>)))]
pub async fn list(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListExecutionsParams>,
) -> Result<Reply<Vec<PublicExecution>>, ApiError> {
    let limit = page_size(q.page_size)?;
    let filter = ExecutionFilter {
        agent_id: q.agent_id,
        entity_id: q.entity_id,
        entity_number: q.entity_number,
        statuses: comma_list(q.status.as_deref(), "status", ExecutionStatus::parse)?,
        backfill_id: q.backfill_id,
    };
    let before: Option<String> = paging::after(&app, "executions", q.cursor.as_deref())?;
    let page = app
        .store
        .list_executions(p.tenant_id(), &filter, before.as_deref(), limit)
        .await?;
    let next = paging::next(&app, "executions", &page, |e| e.id.clone());
    Ok(Reply::new(page.items.into_iter().map(Into::into).collect()).page(page.has_more, next))
}

fn not_found() -> ApiError {
    ApiError::not_found("execution")
}

/// Get an execution.
///
/// Its status, attempts, time spent and, when it failed, the error (sanitized and capped at 4
/// KiB). 404 for an id of another tenant.
#[utoipa::path(get, path = "/public-api/executions/{execution_id}", tag = "Executions", operation_id = "getExecution",
    params(("execution_id" = String, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicExecution>)))]
pub async fn get(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<PublicExecution>, ApiError> {
    let e = app
        .store
        .execution(p.tenant_id(), &id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Reply::new(e.into()))
}

/// One entry of an execution's field-update audit.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct FieldUpdateAuditEntry {
    /// The PSA's own field path, `/` between segments (`priority/id`).
    pub field: String,
    /// The value before the write (null when the record had none).
    pub previous_value: serde_json::Value,
    pub new_value: serde_json::Value,
    /// When the change was recorded, right before the write (RFC 3339).
    pub updated_at: String,
    /// False for a shadow run, which records what it would write and writes nothing.
    pub written: bool,
}

/// The field-update audit of an execution.
///
/// Every field a `psa_actions` execution changed on its record, in order: the value before,
/// the value written, and when. A shadow run's entries say what it would write
/// (`written: false`); other executors have no entries.
#[utoipa::path(get, path = "/public-api/executions/{execution_id}/field-update-audit", tag = "Executions",
    operation_id = "getExecutionFieldUpdateAudit",
    params(("execution_id" = String, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<FieldUpdateAuditEntry>>)))]
pub async fn field_update_audit(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<Vec<FieldUpdateAuditEntry>>, ApiError> {
    let e = app
        .store
        .execution(p.tenant_id(), &id)
        .await?
        .ok_or_else(not_found)?;
    let shadow = match &e.backfill_id {
        Some(b) => app
            .store
            .backfill(p.tenant_id(), b)
            .await?
            .is_some_and(|b| b.mode == neo_domain::backfill::BackfillMode::Shadow),
        None => false,
    };
    let changes = app
        .store
        .psa_changes(p.tenant_id(), neo_store::ChangesOf::Execution(&id))
        .await?;
    Ok(Reply::new(
        changes
            .into_iter()
            .filter_map(|c| match c.change {
                neo_store::Change::Field {
                    field,
                    previous,
                    new,
                } => Some(FieldUpdateAuditEntry {
                    field,
                    previous_value: previous,
                    new_value: new,
                    updated_at: neo_domain::clock::rfc3339(c.at),
                    written: !shadow,
                }),
                _ => None,
            })
            .collect(),
    )
    .page(false, None))
}

/// Retry a failed or cancelled execution: queues a new execution of the same workflow on the
/// same entity (`retry_of` names the original).
///
/// The new execution runs through the orchestrator like a backfill's, with its own id (the
/// executor's idempotency key). 409 `execution_not_retryable` unless the original failed or was
/// cancelled.
#[utoipa::path(post, path = "/public-api/executions/{execution_id}/retry", tag = "Executions", operation_id = "retryExecution",
    params(("execution_id" = String, Path)),
    responses((status = 201, description = "Success.", body = DataEnvelope<PublicExecution>),
              (status = 409, description = "Conflict — only a failed or cancelled execution can be retried.", body = ErrorEnvelope)))]
pub async fn retry(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<PublicExecution>, ApiError> {
    let e = app
        .store
        .execution(p.tenant_id(), &id)
        .await?
        .ok_or_else(not_found)?;
    if !matches!(
        e.status,
        ExecutionStatus::Failed | ExecutionStatus::Cancelled
    ) {
        return Err(ApiError::conflict(
            "execution_not_retryable",
            format!(
                "execution {id} is {}; only a failed or cancelled execution can be retried",
                e.status
            ),
        ));
    }
    let wf = app
        .store
        .workflow(p.tenant_id(), e.agent_id)
        .await?
        .ok_or_else(ApiError::workflow_not_found)?;
    let new = app
        .store
        .insert_execution(NewExecution {
            id: neo_store::new_execution_id(),
            tenant_id: p.tenant_id().to_owned(),
            agent_id: wf.id,
            agent_name: Some(wf.name),
            backfill_id: None,
            entity_id: e.entity_id,
            entity_number: e.entity_number,
            status: ExecutionStatus::Queued,
            retry_of: Some(e.id),
            created_at: app.clock.now(),
        })
        .await?;
    app.wake();
    Ok(Reply::created(new.into()))
}

/// Cancel a queued or running execution (best effort for one already sent to its executor).
///
/// A queued execution is never dispatched; a running one is settled `cancelled` and its webhook
/// executor is told, best effort. 409 `execution_already_final` when it already ended.
#[utoipa::path(post, path = "/public-api/executions/{execution_id}/cancel", tag = "Executions", operation_id = "cancelExecution",
    params(("execution_id" = String, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicExecution>),
              (status = 409, description = "Conflict — the execution has already finished.", body = ErrorEnvelope)))]
pub async fn cancel(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<PublicExecution>, ApiError> {
    let done = app
        .store
        .finish_execution(
            p.tenant_id(),
            &id,
            ExecutionStatus::Cancelled,
            Some("cancelled by request"),
            app.clock.now(),
        )
        .await?
        .ok_or_else(not_found)?;
    if !done {
        return Err(ApiError::conflict(
            "execution_already_final",
            format!("execution {id} has already finished"),
        ));
    }
    app.wake();
    let e = app
        .store
        .execution(p.tenant_id(), &id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Reply::new(e.into()))
}

/// The outcome an asynchronous webhook executor reports.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteExecutionRequest {
    #[schema(schema_with = completion_statuses)]
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
}

fn completion_statuses() -> utoipa::openapi::Object {
    crate::models::string_enum(COMPLETION_STATUSES, "How the execution ended.")
}

fn completion_unauthorized() -> ApiError {
    ApiError::unauthorized("missing or invalid X-Neo-Timestamp / X-Neo-Signature")
}

/// The `X-Neo-Timestamp` (Unix seconds) and `X-Neo-Signature` headers of a completion, before
/// the signature is verified; 401 when either is missing or malformed.
pub fn completion_signature(headers: &HeaderMap) -> Result<(i64, &str), ApiError> {
    let ts: i64 = headers
        .get("x-neo-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(completion_unauthorized)?;
    let sig = headers
        .get("x-neo-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(completion_unauthorized)?;
    Ok((ts, sig))
}

/// The statuses a completion may report (the `match` of [`completion_outcome`]).
const COMPLETION_STATUSES: [&str; 2] = ["succeeded", "failed"];

/// The outcome a completion reports: the final status and, when failed, the error (422 for
/// any status but `succeeded` or `failed`).
pub fn completion_outcome(
    req: CompleteExecutionRequest,
) -> Result<(ExecutionStatus, Option<String>), ApiError> {
    match req.status.as_str() {
        "succeeded" => Ok((ExecutionStatus::Succeeded, None)),
        "failed" => Ok((
            ExecutionStatus::Failed,
            Some(
                req.error
                    .unwrap_or_else(|| "the executor reported failure".into()),
            ),
        )),
        _ => Err(ApiError::field(
            "status",
            "status must be \"succeeded\" or \"failed\"",
        )),
    }
}

/// Report the outcome of an execution that a webhook executor accepted with 202.
///
/// Authenticated by signature, not by bearer token: `X-Neo-Timestamp` (Unix seconds) and
/// `X-Neo-Signature: sha256=<hex>` = HMAC-SHA256 with the workflow's webhook secret over
/// `"{timestamp}.complete.{execution_id}.{raw body}"`: a completion signed for one execution
/// never settles another. Replaying a completion after its execution settled answers 409.
#[utoipa::path(post, path = "/public-api/executions/{execution_id}/complete", tag = "Executions", operation_id = "completeExecution",
    security(()),
    params(("execution_id" = String, Path),
           ("X-Neo-Timestamp" = String, Header), ("X-Neo-Signature" = String, Header)),
    request_body = CompleteExecutionRequest,
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicExecution>),
              (status = 401, description = "Unauthenticated — missing or invalid signature.", body = ErrorEnvelope),
              (status = 409, description = "Conflict — the execution has already finished.", body = ErrorEnvelope)))]
pub async fn complete(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: ApiJson<CompleteExecutionRequest>,
) -> Result<Reply<PublicExecution>, ApiError> {
    let raw = &body.raw;
    let (ts, sig) = completion_signature(&headers)?;
    // Not found and a bad signature look the same to a caller without the secret.
    let e = app
        .store
        .execution_by_id(&id)
        .await?
        .ok_or_else(completion_unauthorized)?;
    let wf = app
        .store
        .workflow(&e.tenant_id, e.agent_id)
        .await?
        .ok_or_else(completion_unauthorized)?;
    let secret = wf
        .executor
        .get("secret")
        .and_then(|s| s.as_str())
        .ok_or_else(completion_unauthorized)?;
    let signed = neo_domain::signature::Signed {
        timestamp: ts,
        direction: neo_domain::signature::Direction::Complete,
        execution_id: &id,
        body: raw,
    };
    neo_domain::signature::verify(secret.as_bytes(), signed, sig, app.clock.now().as_second())
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
    let (status, error) = completion_outcome(body.value)?;
    let done = app
        .store
        .finish_execution(&e.tenant_id, &id, status, error.as_deref(), app.clock.now())
        .await?
        .ok_or_else(not_found)?;
    if !done {
        return Err(ApiError::conflict(
            "execution_already_final",
            format!("execution {id} has already finished"),
        ));
    }
    app.wake();
    let e = app
        .store
        .execution(&e.tenant_id, &id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Reply::new(e.into()))
}
