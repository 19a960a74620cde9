//! `POST /public-api/backfills` (docs/api.md §3.2): validate, freeze the filter, count a PSA
//! query, insert with the snapshot or an open one.

#[allow(unused_imports)]
use super::*;

use neo_domain::control::{check_max_credits, check_sample_size};

/// Create a backfill.
///
/// Freezes the filter (relative `$ago` values are resolved now) and, for an explicit
/// `entity_ids` list, the snapshot. Starts RUNNING unless `draft` is true.
#[utoipa::path(post, path = "/public-api/backfills", tag = "Backfills",
    operation_id = "createBackfill",
    request_body = CreateBackfillRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]+$", description = "Replays the first response for 24 h for the same body")),
    responses((status = 201, description = "Success.", body = DataEnvelope<CreateBackfillResponse>),
              (status = 404, description = "`workflow_not_found`: the target workflow does not exist for this tenant.", body = ErrorEnvelope),
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
) -> Result<Reply<CreateBackfillResponse>, ApiError> {
    let now = app.clock.now();
    let max_in_flight = req.max_in_flight.unwrap_or(DEFAULT_IN_FLIGHT);
    check_max_in_flight(max_in_flight).map_err(ApiError::validation)?;
    let name = match req.name.as_deref() {
        Some(n) => check_name(n).map_err(ApiError::validation)?,
        None => None,
    };
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
    let start_at = req
        .start_at
        .as_deref()
        .map(|s| neo_domain::backfill::check_start_at(s, now))
        .transpose()
        .map_err(ApiError::validation)?;
    let max_credits = req
        .max_credits
        .map(check_max_credits)
        .transpose()
        .map_err(ApiError::validation)?;
    let max_in_flight_per_company = req
        .max_in_flight_per_company
        .map(|n| neo_domain::fairness::check_max_in_flight_per_company(n, max_in_flight))
        .transpose()
        .map_err(ApiError::validation)?;
    if let Some(b) = &req.company_blackouts {
        neo_domain::fairness::Blackouts::new(b, &timezone).map_err(ApiError::validation)?;
    }
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
    let executor = ExecutorSpec::from_stored(&wf.executor).map_err(|e| {
        ApiError::field(
            "target_workflow_id",
            format!("the workflow's executor is invalid: {e}"),
        )
    })?;
    let mode = req.mode.unwrap_or(BackfillMode::Live);
    executor.check_mode(mode).map_err(ApiError::validation)?;
    check_entity(entity_type, &spec, None)?;
    let (entity_ids, total_estimated) = match &spec {
        FilterSpec::EntityIds(ids) => (Some(ids.clone()), Some(ids.len() as i64)),
        FilterSpec::Query { .. } => {
            let integration = require_integration(app, p).await?;
            check_entity(entity_type, &spec, Some(&integration.psa))?;
            let (_, count) = psa_count(app, p, &integration, entity_type, &req.filter_spec, now)
                .await
                .map_err(|e| match e {
                    PsaCheck::Invalid(e) => ApiError::validation(e),
                    PsaCheck::Psa(e) => psa_error(e),
                })?;
            // The server's own count wins (an upper bound when part of the filter runs locally),
            // capped by the filter's `limit` as the snapshot is.
            (None, Some(spec.snapshot_size(count.count) as i64))
        }
    };
    let trial_sample_size = req
        .trial
        .as_ref()
        .map(|t| check_sample_size(t.sample_size, entity_ids.as_ref().map(|v| v.len() as i64)))
        .transpose()
        .map_err(ApiError::validation)?;
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
                reprocess: executor.reprocess(req.reprocess),
                total_estimated,
                credits_per_entity: wf.credit_tier,
                created_by: p.actor(),
                created_at: now,
                entity_ids,
                name,
                mode,
                start_at,
                max_credits,
                trial_sample_size,
                max_in_flight_per_company,
                company_blackouts: req.company_blackouts.clone(),
            },
            idem.as_ref(),
        )
        .await
        .map_err(already_active)?;
    app.wake();
    Ok(respond(b))
}
