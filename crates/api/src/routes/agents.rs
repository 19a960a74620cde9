//! `/public-api/agents`: workflows and how their executions run.

use axum::extract::State;
use axum::http::StatusCode;
use neo_domain::actions;
use neo_domain::backfill::{AutonomyType, EntityType, WorkflowState};
use neo_domain::executor::ExecutorSpec;
use neo_store::{NewWorkflow, WorkflowPatch};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{page_size, PageParams};
use crate::envelope::{DataEnvelope, Reply};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::models::PublicAgent;
use crate::paging;
use crate::{AppState, Auth};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Triage",
    "credit_tier": 1,
    "executor": {"type": "simulated", "latency_ms": 0, "failure_rate": 0.1, "seed": 1}
}))]
pub struct CreateAgentRequest {
    /// 1–200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Default `CHAINED_ACTIONS`.
    #[serde(default)]
    pub autonomy_type: Option<AutonomyType>,
    /// Default `ticket`.
    #[serde(default)]
    pub entity_type: Option<EntityType>,
    /// Default `ENABLED`.
    #[serde(default)]
    pub state: Option<WorkflowState>,
    /// 1 basic, 2 standard, 3 advanced; default 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3)]
    pub credit_tier: Option<i64>,
    #[schema(value_type = crate::schemas::Executor)]
    pub executor: Value,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAgentRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::models::present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub autonomy_type: Option<AutonomyType>,
    pub entity_type: Option<EntityType>,
    pub state: Option<WorkflowState>,
    #[schema(minimum = 1, maximum = 3)]
    pub credit_tier: Option<i64>,
    #[schema(value_type = Option<crate::schemas::Executor>)]
    pub executor: Option<Value>,
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(ApiError::field("name", "name must be 1 to 200 characters"));
    }
    Ok(n.to_owned())
}

fn check_tier(t: i64) -> Result<i64, ApiError> {
    if (1..=3).contains(&t) {
        Ok(t)
    } else {
        Err(ApiError::field(
            "credit_tier",
            "credit_tier must be 1, 2 or 3",
        ))
    }
}

/// Validates an executor configuration (docs/api.md §4).
/// A webhook `url` must be http(s) and, unless `egress.allow_private`, must not name a
/// private, loopback or link-local address or a `localhost` name (SSRF guard; the orchestrator
/// checks the resolved addresses again at dispatch).
///
/// A `psa_actions` executor is checked against what the tenant's PSA lets `entity_type` write
/// (its field table: `neo_psa::write::fields`), and stored in its normalised form.
pub async fn check_executor(
    app: &AppState,
    tenant: &str,
    entity_type: EntityType,
    v: &Value,
) -> Result<Value, ApiError> {
    let writable = if ExecutorSpec::is_psa_actions(v) {
        writable_fields(app, tenant, entity_type).await?
    } else {
        None
    };
    match ExecutorSpec::validate(v, app.egress(), writable).map_err(ApiError::validation)? {
        ExecutorSpec::PsaActions(stored) => Ok(stored),
        _ => Ok(v.clone()),
    }
}

/// What the tenant's PSA lets `entity_type` write; `None` without an integration or when the
/// PSA writes no such entities.
async fn writable_fields(
    app: &AppState,
    tenant: &str,
    entity_type: EntityType,
) -> Result<Option<&'static dyn actions::WritableFields>, ApiError> {
    let Some(i) = app.store.integration(tenant).await? else {
        return Ok(None);
    };
    Ok(neo_psa::Psa::parse(&i.psa)
        .and_then(|psa| neo_psa::write::fields::writable(psa, entity_type))
        .map(|w| w as &dyn actions::WritableFields))
}

/// Create a workflow.
///
/// `executor` says how its executions run: a signed webhook (`url`, `secret`) or the in-process
/// simulator. Validated at once: a webhook URL the service may not call answers 422 naming
/// `executor.url`.
#[utoipa::path(post, path = "/public-api/agents", tag = "Agents", operation_id = "createAgent",
    request_body = CreateAgentRequest,
    responses((status = 201, description = "Success.", body = DataEnvelope<PublicAgent>)))]
pub async fn create(
    State(app): State<AppState>,
    Auth(p): Auth,
    body: ApiJson<CreateAgentRequest>,
) -> Result<Reply<PublicAgent>, ApiError> {
    let r = body.value;
    let entity_type = r.entity_type.unwrap_or(EntityType::Ticket);
    let w = NewWorkflow {
        name: check_name(&r.name)?,
        description: r.description,
        autonomy_type: r.autonomy_type.unwrap_or(AutonomyType::ChainedActions),
        entity_type,
        state: r.state.unwrap_or(WorkflowState::Enabled),
        credit_tier: check_tier(r.credit_tier.unwrap_or(1))?,
        executor: check_executor(&app, p.tenant_id(), entity_type, &r.executor).await?,
    };
    let w = app
        .store
        .insert_workflow(p.tenant_id(), w, app.clock.now())
        .await?;
    Ok(Reply::created(w.into()))
}

/// List workflows by id.
///
/// The tenant's workflows, oldest first, keyset-paginated; executors without their secrets.
#[utoipa::path(get, path = "/public-api/agents", tag = "Agents", operation_id = "listAgents",
    params(PageParams),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicAgent>>)))]
pub async fn list(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Reply<Vec<PublicAgent>>, ApiError> {
    let limit = page_size(q.page_size)?;
    let after: Option<i64> = paging::after(&app, "agents", q.cursor.as_deref())?;
    let page = app
        .store
        .list_workflows(p.tenant_id(), after, limit)
        .await?;
    let next = paging::next(&app, "agents", &page, |w| w.id);
    Ok(Reply::new(page.items.into_iter().map(Into::into).collect()).page(page.has_more, next))
}

/// Get a workflow.
///
/// The workflow with its executor (a webhook's secret is never returned: `secret_set` says one is
/// configured).
#[utoipa::path(get, path = "/public-api/agents/{agent_id}", tag = "Agents", operation_id = "getAgent",
    params(("agent_id" = i64, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicAgent>)))]
pub async fn get(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Reply<PublicAgent>, ApiError> {
    let w = app
        .store
        .workflow(p.tenant_id(), id)
        .await?
        .ok_or_else(ApiError::workflow_not_found)?;
    Ok(Reply::new(w.into()))
}

/// Applies a checked patch (the API's PATCH, enable and disable, and the dashboard's workflow forms).
pub(crate) async fn patch_inner(
    app: &AppState,
    tenant: &str,
    id: i64,
    patch: WorkflowPatch,
) -> Result<Reply<PublicAgent>, ApiError> {
    let w = app
        .store
        .update_workflow(tenant, id, patch, app.clock.now())
        .await?
        .ok_or_else(ApiError::workflow_not_found)?;
    Ok(Reply::new(w.into()))
}

/// Change a workflow (any member of the create body).
///
/// Members left out keep their value; `description: null` clears it. A new executor is validated
/// as on create and applies to what is dispatched after the orchestrator's next tick.
#[utoipa::path(patch, path = "/public-api/agents/{agent_id}", tag = "Agents", operation_id = "updateAgent",
    params(("agent_id" = i64, Path)),
    request_body = PatchAgentRequest,
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicAgent>)))]
pub async fn patch(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
    body: ApiJson<PatchAgentRequest>,
) -> Result<Reply<PublicAgent>, ApiError> {
    let r = body.value;
    // A new executor, or a new entity type under a psa_actions executor, is checked against
    // the workflow as it will be.
    let executor = if r.executor.is_some() || r.entity_type.is_some() {
        let wf = app
            .store
            .workflow(p.tenant_id(), id)
            .await?
            .ok_or_else(ApiError::workflow_not_found)?;
        let entity_type = r.entity_type.unwrap_or(wf.entity_type);
        match &r.executor {
            Some(e) => Some(check_executor(&app, p.tenant_id(), entity_type, e).await?),
            None if ExecutorSpec::is_psa_actions(&wf.executor) => {
                Some(check_executor(&app, p.tenant_id(), entity_type, &wf.executor).await?)
            }
            None => None,
        }
    } else {
        None
    };
    let patch = WorkflowPatch {
        name: r.name.as_deref().map(check_name).transpose()?,
        description: r.description,
        autonomy_type: r.autonomy_type,
        entity_type: r.entity_type,
        state: r.state,
        credit_tier: r.credit_tier.map(check_tier).transpose()?,
        executor,
    };
    patch_inner(&app, p.tenant_id(), id, patch).await
}

/// Enable a workflow.
///
/// An ENABLED workflow can be the target of a new backfill.
#[utoipa::path(post, path = "/public-api/agents/{agent_id}/enable", tag = "Agents", operation_id = "enableAgent",
    params(("agent_id" = i64, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicAgent>)))]
pub async fn enable(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Reply<PublicAgent>, ApiError> {
    patch_inner(
        &app,
        p.tenant_id(),
        id,
        WorkflowPatch {
            state: Some(WorkflowState::Enabled),
            ..Default::default()
        },
    )
    .await
}

/// Disable a workflow.
///
/// A DISABLED workflow cannot be the target of a new backfill (409 `workflow_not_enabled`);
/// running backfills of it continue.
#[utoipa::path(post, path = "/public-api/agents/{agent_id}/disable", tag = "Agents", operation_id = "disableAgent",
    params(("agent_id" = i64, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicAgent>)))]
pub async fn disable(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Reply<PublicAgent>, ApiError> {
    patch_inner(
        &app,
        p.tenant_id(),
        id,
        WorkflowPatch {
            state: Some(WorkflowState::Disabled),
            ..Default::default()
        },
    )
    .await
}

/// Delete a workflow. Its active backfill, if any, ends FAILED.
///
/// Its executions stay listable. Its active backfill (DRAFT, RUNNING or PAUSED), if any, ends
/// FAILED in the same transaction with the error "the target workflow was deleted".
#[utoipa::path(delete, path = "/public-api/agents/{agent_id}", tag = "Agents", operation_id = "deleteAgent",
    params(("agent_id" = i64, Path)),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    if app
        .store
        .delete_workflow(p.tenant_id(), id, app.clock.now())
        .await?
    {
        app.wake();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::workflow_not_found())
    }
}
