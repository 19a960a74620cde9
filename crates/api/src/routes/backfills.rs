//! `/public-api/backfills` (docs/api.md §3).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use neo_domain::backfill::{check_backfill_target, TargetRefusal};
use neo_domain::backfill::{
    BackfillRunState, EntityType, ItemStatus, Signal, SignalOutcome, SignalRefusal,
};
use neo_domain::cost::BackfillCostEstimate;
use neo_domain::filter::{self, FilterSpec};
use neo_domain::windows::{validate_timezone, WorkflowDailyExecutionWindows};
use neo_store::{
    Backfill, BackfillFilter, DeleteBackfillError, NewBackfill, RerunError, SignalError, StoreError,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{comma_list, page_size};
use crate::auth::Principal;
use crate::envelope::{DataEnvelope, Ok};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::models::*;
use crate::{AppState, Auth};

pub const MIN_IN_FLIGHT: i64 = 1;
pub const MAX_IN_FLIGHT: i64 = 100;
pub const DEFAULT_IN_FLIGHT: i64 = 5;

/// The answer to a target workflow [`check_backfill_target`] refuses, for create and
/// rerun-failed alike.
fn target_refused(r: TargetRefusal, workflow: &str) -> ApiError {
    match r {
        TargetRefusal::Disabled => ApiError::conflict(
            "workflow_not_enabled",
            format!("{workflow} is disabled; enable it first"),
        ),
        TargetRefusal::Conversational => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_for_conversational",
            "a CONVERSATIONAL workflow cannot be backfilled",
        )
        .with_field("target_workflow_id"),
    }
}

fn new_backfill_id() -> String {
    format!("bf_{}", uuid::Uuid::now_v7().simple())
}

/// Create a backfill.
///
/// Freezes the filter (relative `$ago` values are resolved now) and, for an explicit
/// `entity_ids` list, the snapshot. Starts RUNNING unless `draft` is true.
#[utoipa::path(post, path = "/public-api/backfills", tag = "Backfills",
    operation_id = "public_api.backfills_post",
    request_body = CreateBackfillRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]+$", description = "Replays the first response for 24 h for the same body")),
    responses((status = 201, description = "Success.", body = DataEnvelope<CreateBackfillResponse>),
              (status = 502, description = "`psa_unavailable`: the PSA refused the integration's credentials or answered unexpectedly (rule-group filters are counted through it).", body = ErrorEnvelope),
              (status = 503, description = "`psa_unavailable`: the PSA could not be reached.", body = ErrorEnvelope)))]
pub async fn create(
    State(app): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: ApiJson<CreateBackfillRequest>,
) -> Result<Response, ApiError> {
    idempotent(
        &app,
        &p,
        &headers,
        "POST /public-api/backfills",
        &body.raw,
        |key| create_backfill(&app, &p, body.value, key),
    )
    .await
}

/// Creates a backfill (the API's create and the dashboard's wizard), with its
/// `Idempotency-Key` if any.
pub(crate) async fn create_backfill(
    app: &AppState,
    p: &Principal,
    req: CreateBackfillRequest,
    key: Option<IdempotencyKey>,
) -> Result<Ok<CreateBackfillResponse>, ApiError> {
    let now = app.clock.now();
    let max_in_flight = req.max_in_flight.unwrap_or(DEFAULT_IN_FLIGHT);
    if !(MIN_IN_FLIGHT..=MAX_IN_FLIGHT).contains(&max_in_flight) {
        return Err(ApiError::field(
            "max_in_flight",
            format!("max_in_flight must be from {MIN_IN_FLIGHT} to {MAX_IN_FLIGHT}"),
        ));
    }
    let timezone = req.timezone.unwrap_or_else(|| "UTC".to_owned());
    validate_timezone(&timezone, "timezone").map_err(ApiError::validation)?;
    let windows = match req.daily_execution_windows {
        Some(w) => {
            w.validate("daily_execution_windows")
                .map_err(ApiError::validation)?;
            w
        }
        None => WorkflowDailyExecutionWindows::default(),
    };
    if let Some(t) = req.total_estimated {
        if t < 0 {
            return Err(ApiError::field(
                "total_estimated",
                "total_estimated must not be negative",
            ));
        }
    }
    let (spec, stored_spec) =
        filter::parse(&req.filter_spec, now, None).map_err(ApiError::validation)?;
    let entity_type = req.entity_type.unwrap_or(EntityType::Ticket);

    let wf = app
        .store
        .workflow(p.tenant_id(), req.target_workflow_id)
        .await?
        .ok_or_else(ApiError::workflow_not_found)?;
    check_backfill_target(wf.state, wf.autonomy_type)
        .map_err(|r| target_refused(r, &format!("workflow {}", wf.id)))?;
    if wf.entity_type != entity_type {
        return Err(ApiError::field(
            "entity_type",
            format!(
                "the workflow runs on {} entities, not {}",
                wf.entity_type, entity_type
            ),
        ));
    }
    let (entity_ids, total_estimated) = match spec {
        FilterSpec::EntityIds(ids) => {
            let n = ids.len() as i64;
            (Some(ids), Some(n))
        }
        FilterSpec::Query { .. } => {
            let integration = require_integration(app, p).await?;
            let (_, count) = psa_count(app, p, &integration, entity_type, &req.filter_spec, now)
                .await
                .map_err(|e| match e {
                    PsaCheck::Invalid(e) => ApiError::validation(e),
                    PsaCheck::Psa(e) => psa_error(e),
                })?;
            // The server's own count wins (an upper bound when part of the filter runs locally).
            (None, Some(count.count as i64))
        }
    };
    let left = credits_left(app, p).await?;
    let respond = |b: Backfill| {
        let cost = BackfillCostEstimate::new(wf.credit_tier, b.total_estimated.unwrap_or(0));
        created(b, cost, now, left)
    };
    let render = |b: &Backfill| rendered(respond(b.clone()));
    let idem = key.as_ref().map(|k| k.record(now, &render));
    let b = app
        .store
        .create_backfill_idempotent(
            NewBackfill {
                id: new_backfill_id(),
                tenant_id: p.tenant_id().to_owned(),
                state: if req.draft {
                    BackfillRunState::Draft
                } else {
                    BackfillRunState::Running
                },
                target_workflow_id: wf.id,
                entity_type,
                filter_spec: stored_spec,
                daily_execution_windows: windows,
                timezone,
                max_in_flight,
                reprocess: req.reprocess,
                total_estimated,
                credits_per_entity: wf.credit_tier,
                created_by: p.actor(),
                created_at: now,
                entity_ids,
            },
            idem.as_ref(),
        )
        .await
        .map_err(already_active)?;
    app.wake();
    Ok(respond(b))
}

/// The 201 of a create or rerun-failed.
fn created(
    b: Backfill,
    cost: BackfillCostEstimate,
    now: jiff::Timestamp,
    credits_left: i64,
) -> Ok<CreateBackfillResponse> {
    let warnings = credit_warnings(&cost, credits_left);
    Ok::created(CreateBackfillResponse {
        backfill: PublicBackfill::at(b, now),
        cost_estimate: cost,
    })
    .warnings(warnings)
}

/// A response as an idempotency record replays it.
fn rendered<T: serde::Serialize>(ok: Ok<T>) -> (u16, serde_json::Value) {
    (ok.status_code().as_u16(), ok.body())
}

/// Why a PSA filter could not be counted.
enum PsaCheck {
    /// Invalid for this PSA (an unknown native field, a wrong value type).
    Invalid(neo_domain::FieldError),
    Psa(neo_psa::http::PsaError),
}

/// Validates a PSA filter against the PSA's field catalogue and counts it with the connector.
async fn psa_count(
    app: &AppState,
    p: &Principal,
    integration: &neo_store::Integration,
    entity: EntityType,
    filter_spec: &serde_json::Value,
    now: jiff::Timestamp,
) -> Result<(serde_json::Value, neo_psa::client::Count), PsaCheck> {
    let psa = neo_psa::Psa::parse(&integration.psa).ok_or_else(|| {
        PsaCheck::Psa(neo_psa::http::PsaError::Rejected(format!(
            "unknown PSA {}",
            integration.psa
        )))
    })?;
    let catalogue = neo_psa::compile::catalogue(psa, entity);
    let (spec, stored) = filter::parse(filter_spec, now, catalogue).map_err(PsaCheck::Invalid)?;
    let FilterSpec::Query { root, .. } = spec else {
        unreachable!("called for rule-group filters only")
    };
    let secrets = app
        .store
        .integration_secrets(p.tenant_id())
        .await
        .map_err(|e| {
            PsaCheck::Psa(neo_psa::http::PsaError::Unavailable(format!(
                "database: {e}"
            )))
        })?
        .unwrap_or_default();
    let client = neo_psa::client::PsaClient::connect(
        &integration.psa,
        &integration.config,
        &secrets,
        app.psa_http.clone(),
        app.cfg.psa_policy.clone(),
    )
    .await
    .map_err(PsaCheck::Psa)?;
    let count = client.count(entity, &root).await.map_err(PsaCheck::Psa)?;
    Result::Ok((stored, count))
}

fn psa_error(e: neo_psa::http::PsaError) -> ApiError {
    use neo_psa::http::PsaError as E;
    match e {
        E::Rejected(m) => {
            ApiError::field("filter_spec", format!("the PSA refused the filter: {m}"))
        }
        E::Unavailable(m) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "psa_unavailable",
            format!("the PSA is unavailable: {m}"),
        ),
        E::Auth(m) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "psa_unavailable",
            format!("the PSA refused the integration's credentials: {m}"),
        ),
        E::Protocol(m) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "psa_unavailable",
            format!("unexpected answer from the PSA: {m}"),
        ),
    }
}

fn already_active(e: StoreError) -> ApiError {
    match e {
        StoreError::AlreadyActive => ApiError::conflict(
            "backfill_already_active",
            "another backfill of this workflow is active (DRAFT, RUNNING or PAUSED)",
        ),
        e => e.into(),
    }
}

async fn require_integration(
    app: &AppState,
    p: &Principal,
) -> Result<neo_store::Integration, ApiError> {
    app.store.integration(p.tenant_id()).await?.ok_or_else(|| {
        ApiError::conflict(
            "integration_not_configured",
            "this filter queries the PSA, and the tenant has no PSA integration; connect one at /public-api/integrations or give entity_ids",
        )
    })
}

/// What is left of the tenant's monthly credits.
async fn credits_left(app: &AppState, p: &Principal) -> Result<i64, ApiError> {
    let (from, to) = crate::routes::meta::month_bounds(app.clock.now(), None)?;
    let used = app.store.credits_used(p.tenant_id(), from.1, to).await?;
    Ok(p.tenant.monthly_credit_allowance - used)
}

/// Warns when the estimate exceeds what is left of the tenant's monthly credits.
fn credit_warnings(cost: &BackfillCostEstimate, remaining: i64) -> Vec<String> {
    if cost.total_credits_estimated > remaining {
        vec![format!(
            "the estimate of {} credits exceeds the {} credits left this month",
            cost.total_credits_estimated,
            remaining.max(0)
        )]
    } else {
        vec![]
    }
}

/// How long an `Idempotency-Key` replays its first response.
pub const IDEMPOTENCY_TTL: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// The `Idempotency-Key` of a request and the fingerprint of its route and body.
pub(crate) struct IdempotencyKey {
    key: String,
    fingerprint: Vec<u8>,
}

impl IdempotencyKey {
    /// The record written with what the request creates, at `now`.
    fn record<'a>(
        &'a self,
        now: jiff::Timestamp,
        render: &'a (dyn Fn(&Backfill) -> (u16, serde_json::Value) + Send + Sync),
    ) -> neo_store::NewIdempotency<'a> {
        neo_store::NewIdempotency {
            key: &self.key,
            fingerprint: &self.fingerprint,
            created_at: now,
            not_before: now - IDEMPOTENCY_TTL,
            render,
        }
    }
}

/// Deletes the idempotency keys past [`IDEMPOTENCY_TTL`] (a periodic task of `serve`).
pub async fn purge_idempotency_keys(app: &AppState) -> Result<u64, ApiError> {
    Ok(app
        .store
        .purge_idempotency_keys(app.clock.now() - IDEMPOTENCY_TTL)
        .await?)
}

/// Runs [`purge_idempotency_keys`] now and then every `every`, until the task is aborted.
pub async fn purge_idempotency_keys_periodically(app: AppState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match purge_idempotency_keys(&app).await {
            Result::Ok(n) => tracing::debug!(deleted = n, "idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
    }
}

/// Replays the first response of an `Idempotency-Key` within 24 h; refuses the key for
/// another body. The response is saved in the transaction of what the request creates, so
/// concurrent requests with one key create one thing: the losers replay the winner's response.
async fn idempotent<T, F, Fut>(
    app: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    route: &str,
    raw: &[u8],
    run: F,
) -> Result<Response, ApiError>
where
    T: serde::Serialize,
    F: FnOnce(Option<IdempotencyKey>) -> Fut,
    Fut: std::future::Future<Output = Result<Ok<T>, ApiError>>,
{
    let Some(key) = headers.get("idempotency-key") else {
        return run(None).await.map(IntoResponse::into_response);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .with_field("Idempotency-Key")
        })?
        .to_owned();
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(raw);
    let fingerprint = h.finalize().to_vec();
    if let Some(r) = replay(app, p, &key, &fingerprint, true).await? {
        return Ok(r);
    }
    let idem = IdempotencyKey {
        key: key.clone(),
        fingerprint: fingerprint.clone(),
    };
    match run(Some(idem)).await {
        // The body saved with the backfill, so that every answer for the key is the same.
        Result::Ok(ok) => Ok(replay(app, p, &key, &fingerprint, false)
            .await?
            .unwrap_or_else(|| ok.into_response())),
        // Another request with the key committed first: answer what it answered.
        Err(e) if e.code == crate::error::IDEMPOTENCY_KEY_IN_USE => {
            replay(app, p, &key, &fingerprint, true).await?.ok_or(e)
        }
        Err(e) => Err(e),
    }
}

/// The saved response of `key` (409 `idempotency_key_reused` for another request), if any,
/// marked `Idempotent-Replayed: true` if `replayed`.
async fn replay(
    app: &AppState,
    p: &Principal,
    key: &str,
    fingerprint: &[u8],
    replayed: bool,
) -> Result<Option<Response>, ApiError> {
    let not_before = app.clock.now() - IDEMPOTENCY_TTL;
    let Some(prev) = app
        .store
        .idempotent_response(p.tenant_id(), key, not_before)
        .await?
    else {
        return Ok(None);
    };
    if prev.fingerprint != fingerprint {
        return Err(ApiError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used with another request in the last 24 h",
        ));
    }
    let mut resp = (
        StatusCode::from_u16(prev.status).unwrap_or(StatusCode::OK),
        axum::Json(prev.response),
    )
        .into_response();
    if replayed {
        resp.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(Some(resp))
}

/// Preflight a filter.
///
/// Counts the entities the filter matches and classifies the result: OK, WARNING (more than
/// the soft limit, or the count is an upper bound), ERROR (invalid filter, PSA query failed or
/// no match). Creates nothing.
#[utoipa::path(post, path = "/public-api/backfills/verify", tag = "Backfills",
    operation_id = "public_api.backfills_verify_post",
    request_body = VerifyBackfillRequest,
    responses((status = 200, description = "Success.", body = DataEnvelope<VerifyBackfillResponse>)))]
pub async fn verify(
    State(app): State<AppState>,
    Auth(p): Auth,
    body: ApiJson<VerifyBackfillRequest>,
) -> Result<Ok<VerifyBackfillResponse>, ApiError> {
    verify_filter(&app, &p, body.value).await
}

/// Preflights a filter (the API's verify and the dashboard's Preflight button).
pub(crate) async fn verify_filter(
    app: &AppState,
    p: &Principal,
    req: VerifyBackfillRequest,
) -> Result<Ok<VerifyBackfillResponse>, ApiError> {
    let error = |message: String, field: Option<String>| {
        Ok(Ok::new(VerifyBackfillResponse {
            matching_entities: None,
            success: false,
            message,
            level: VerifyLevel::Error,
            field,
        }))
    };
    let now = app.clock.now();
    let spec = match filter::parse(&req.filter_spec, now, None) {
        Result::Ok((spec, _)) => spec,
        Err(e) => return error(format!("invalid filter: {}", e.message), Some(e.field)),
    };
    let (count, exact) = match spec {
        FilterSpec::EntityIds(ids) => (ids.len() as i64, true),
        FilterSpec::Query { .. } => {
            let integration = require_integration(app, p).await?;
            match psa_count(app, p, &integration, req.entity_type, &req.filter_spec, now).await {
                Result::Ok((_, c)) => (c.count as i64, c.exact),
                Err(PsaCheck::Invalid(e)) => {
                    return error(format!("invalid filter: {}", e.message), Some(e.field))
                }
                Err(PsaCheck::Psa(e)) => return error(format!("the PSA query failed: {e}"), None),
            }
        }
    };
    let soft = app.cfg.verify_soft_limit;
    if count == 0 {
        return error("the filter matches no entity".into(), None);
    }
    let (level, message, warnings) = if !exact {
        let m = format!(
            "at most {count} entities match: the PSA cannot evaluate the whole filter, so the count is an upper bound"
        );
        (VerifyLevel::Warning, m.clone(), vec![m])
    } else if count > soft {
        let m = format!("{count} entities match, more than the soft limit of {soft}");
        (VerifyLevel::Warning, m.clone(), vec![m])
    } else {
        (VerifyLevel::Ok, format!("{count} entities match"), vec![])
    };
    Ok(Ok::new(VerifyBackfillResponse {
        matching_entities: Some(count),
        success: true,
        message,
        level,
        field: None,
    })
    .warnings(warnings))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListBackfillsParams {
    /// Comma list of states, e.g. `RUNNING,PAUSED`.
    pub state: Option<String>,
    pub target_workflow_id: Option<i64>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    /// Opaque cursor from `meta.pagination.next_cursor`.
    pub cursor: Option<String>,
}

const LIST_BACKFILLS: &str = "backfills";

/// List backfills, newest first.
#[utoipa::path(get, path = "/public-api/backfills", tag = "Backfills",
    operation_id = "public_api.backfills_get",
    params(ListBackfillsParams),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicBackfill>>)))]
pub async fn list(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListBackfillsParams>,
) -> Result<Ok<Vec<PublicBackfill>>, ApiError> {
    let limit = page_size(q.page_size)?;
    let filter = BackfillFilter {
        states: comma_list(q.state.as_deref(), "state", BackfillRunState::parse)?,
        target_workflow_id: q.target_workflow_id,
    };
    let before: Option<String> = match &q.cursor {
        Some(c) => Some(
            app.cursors
                .decode(LIST_BACKFILLS, c)
                .map_err(|_| ApiError::invalid_cursor())?,
        ),
        None => None,
    };
    let page = app
        .store
        .list_backfills(p.tenant_id(), &filter, before.as_deref(), limit)
        .await?;
    let next = page
        .has_more
        .then(|| {
            page.items
                .last()
                .map(|b| app.cursors.encode(LIST_BACKFILLS, &b.id))
        })
        .flatten();
    let now = app.clock.now();
    Ok(Ok::new(
        page.items
            .into_iter()
            .map(|b| PublicBackfill::at(b, now))
            .collect(),
    )
    .page(page.has_more, next))
}

/// Get a backfill.
#[utoipa::path(get, path = "/public-api/backfills/{backfill_id}", tag = "Backfills",
    operation_id = "public_api.backfills_get_one",
    params(("backfill_id" = String, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicBackfill>),
              (status = 404, description = "Not found.", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Ok<PublicBackfill>, ApiError> {
    let b = app
        .store
        .backfill(p.tenant_id(), &id)
        .await?
        .ok_or_else(ApiError::backfill_not_found)?;
    Ok(Ok::new(PublicBackfill::at(b, app.clock.now())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListItemsParams {
    /// Comma list of item statuses, e.g. `failed,skipped`.
    pub status: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    /// Opaque cursor from `meta.pagination.next_cursor`.
    pub cursor: Option<String>,
}

/// The snapshot's entities with their status, in snapshot order.
#[utoipa::path(get, path = "/public-api/backfills/{backfill_id}/items", tag = "Backfills",
    operation_id = "public_api.backfills_items_get",
    params(("backfill_id" = String, Path), ListItemsParams),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicBackfillItem>>)))]
pub async fn items(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListItemsParams>,
) -> Result<Ok<Vec<PublicBackfillItem>>, ApiError> {
    let limit = page_size(q.page_size)?;
    let statuses = comma_list(q.status.as_deref(), "status", ItemStatus::parse)?;
    let list = format!("items:{id}");
    let after: Option<i64> = match &q.cursor {
        Some(c) => Some(
            app.cursors
                .decode(&list, c)
                .map_err(|_| ApiError::invalid_cursor())?,
        ),
        None => None,
    };
    if app.store.backfill(p.tenant_id(), &id).await?.is_none() {
        return Err(ApiError::backfill_not_found());
    }
    let page = app
        .store
        .list_items(p.tenant_id(), &id, &statuses, after, limit)
        .await?;
    let next = page
        .has_more
        .then(|| page.items.last().map(|i| app.cursors.encode(&list, &i.ord)))
        .flatten();
    Ok(Ok::new(page.items.into_iter().map(Into::into).collect()).page(page.has_more, next))
}

/// Applies a user signal (the API's signal routes and the dashboard's buttons).
pub(crate) async fn signal(
    app: &AppState,
    p: &Principal,
    id: &str,
    sig: Signal,
) -> Result<Ok<SignalResponse>, ApiError> {
    let now = app.clock.now();
    let (b, outcome) = app
        .store
        .signal_backfill(p.tenant_id(), id, sig, &p.actor(), now)
        .await
        .map_err(|e| match e {
            SignalError::NotFound => ApiError::backfill_not_found(),
            SignalError::Refused(SignalRefusal::Terminal(s)) => ApiError::conflict(
                "backfill_not_active",
                format!("backfill {id} is {s}; a terminal backfill takes no signal"),
            ),
            SignalError::Refused(SignalRefusal::NotApplicable(s)) => ApiError::conflict(
                "signal_not_applicable",
                match (sig, s) {
                    (Signal::Start, BackfillRunState::Paused) => {
                        format!("backfill {id} is PAUSED; use resume")
                    }
                    _ => format!(
                        "backfill {id} is {s}; {} does not apply (start it first)",
                        sig
                    ),
                },
            ),
            SignalError::Store(e) => e.into(),
        })?;
    app.wake();
    let message = match outcome {
        SignalOutcome::Transition(to) => format!("backfill is now {to}"),
        SignalOutcome::NoOp => format!("backfill is already {}; nothing to do", b.state),
    };
    Ok(Ok::new(SignalResponse {
        backfill_id: b.id,
        signal: sig.as_str().to_owned(),
        message,
    })
    .status(StatusCode::ACCEPTED))
}

macro_rules! signal_route {
    ($fn:ident, $sig:expr, $path:literal, $op:literal, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "Backfills", operation_id = $op,
            params(("backfill_id" = String, Path)),
            responses((status = 202, description = "Accepted.", body = DataEnvelope<SignalResponse>),
                      (status = 409, description = "Conflict — the resource is in a state that blocks this operation.", body = ErrorEnvelope)))]
        pub async fn $fn(
            State(app): State<AppState>,
            Auth(p): Auth,
            ApiPath(id): ApiPath<String>,
        ) -> Result<Ok<SignalResponse>, ApiError> {
            signal(&app, &p, &id, $sig).await
        }
    };
}

signal_route!(
    start,
    Signal::Start,
    "/public-api/backfills/{backfill_id}/start",
    "public_api.backfills_start_post",
    "Start a DRAFT backfill (DRAFT → RUNNING)."
);
signal_route!(
    pause,
    Signal::Pause,
    "/public-api/backfills/{backfill_id}/pause",
    "public_api.backfills_pause_post",
    "Pause: no new dispatch; in-flight executions finish. Idempotent."
);
signal_route!(
    resume,
    Signal::Resume,
    "/public-api/backfills/{backfill_id}/resume",
    "public_api.backfills_resume_post",
    "Resume a paused backfill. Idempotent."
);
signal_route!(
    cancel,
    Signal::Cancel,
    "/public-api/backfills/{backfill_id}/cancel",
    "public_api.backfills_cancel_post",
    "Cancel: no new dispatch; outstanding executions are cancelled best-effort."
);

/// Rerun a backfill against its failed tickets
///
/// Spawn a new backfill scoped to the source's failed entities. The new backfill inherits the
/// source's target workflow, execution windows, timezone, and concurrency cap; only the tickets
/// that failed in the source are dispatched (no PSA filter re-evaluation). Eligibility: source
/// state is terminal (Completed / Cancelled / Failed), `failed_count > 0`, and no active
/// backfill exists for the same target workflow — otherwise `409 backfill_not_rerunnable` (or
/// `409 backfill_already_active` for the conflict case). Returns 201 with the new backfill +
/// cost estimate (credits).
#[utoipa::path(post, path = "/public-api/backfills/{backfill_id}/rerun-failed", tag = "Backfills",
    operation_id = "public_api.backfills_rerun_failed_post",
    params(("backfill_id" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]+$", description = "Replays the first response for 24 h")),
    responses((status = 201, description = "Success.", body = DataEnvelope<CreateBackfillResponse>),
              (status = 409, description = "Conflict — the resource is in a state that blocks this operation.", body = ErrorEnvelope)))]
pub async fn rerun_failed(
    State(app): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let route = format!("POST /public-api/backfills/{id}/rerun-failed");
    idempotent(&app, &p, &headers, &route, b"", |key| {
        rerun_failed_backfill(&app, &p, &id, key)
    })
    .await
}

/// Creates the rerun-failed child (the API's rerun-failed and the dashboard's button), with
/// its `Idempotency-Key` if any.
pub(crate) async fn rerun_failed_backfill(
    app: &AppState,
    p: &Principal,
    id: &str,
    key: Option<IdempotencyKey>,
) -> Result<Ok<CreateBackfillResponse>, ApiError> {
    let now = app.clock.now();
    let left = credits_left(app, p).await?;
    let respond = |b: Backfill| {
        let cost = BackfillCostEstimate::new(b.credits_per_entity, b.total_items);
        created(b, cost, now, left)
    };
    let render = |b: &Backfill| rendered(respond(b.clone()));
    let idem = key.as_ref().map(|k| k.record(now, &render));
    let b = app
        .store
        .rerun_failed_idempotent(
            p.tenant_id(),
            id,
            &new_backfill_id(),
            &p.actor(),
            now,
            idem.as_ref(),
        )
        .await
        .map_err(|e| match e {
            RerunError::NotFound => ApiError::backfill_not_found(),
            RerunError::NotRerunnable(m) => ApiError::conflict("backfill_not_rerunnable", m),
            RerunError::WorkflowNotFound => ApiError::workflow_not_found(),
            RerunError::Target(r) => target_refused(r, "the target workflow"),
            RerunError::AlreadyActive => already_active(StoreError::AlreadyActive),
            RerunError::Store(e) => e.into(),
        })?;
    app.wake();
    Ok(respond(b))
}

/// Delete a DRAFT backfill.
#[utoipa::path(delete, path = "/public-api/backfills/{backfill_id}", tag = "Backfills",
    operation_id = "public_api.backfills_delete",
    params(("backfill_id" = String, Path)),
    responses((status = 204, description = "Deleted."),
              (status = 409, description = "Conflict — only a DRAFT backfill can be deleted.", body = ErrorEnvelope)))]
pub async fn delete(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.store.delete_backfill(p.tenant_id(), &id).await.map_err(|e| match e {
        DeleteBackfillError::NotFound => ApiError::backfill_not_found(),
        DeleteBackfillError::NotDraft(s) => ApiError::conflict(
            "backfill_not_draft",
            format!("backfill {id} is {s}; only a DRAFT backfill can be deleted (cancel it instead)"),
        ),
        DeleteBackfillError::Store(e) => e.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}
