//! `POST /public-api/backfills/{id}/rerun-failed`: a child backfill over the failed entities.

#[allow(unused_imports)]
use super::*;

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
    operation_id = "rerunFailedBackfill",
    params(("backfill_id" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]+$", description = "Replays the first response for 24 h")),
    responses((status = 201, description = "Success.", body = DataEnvelope<CreateBackfillResponse>),
              // Neo's page lists 403 for this operation; kept so the seed's responses stay a
              // subset of ours, though no credential that reaches it is refused here.
              (status = 403, description = "Forbidden — authenticated but not allowed.", body = ErrorEnvelope),
              (status = 409, description = "Conflict — the resource is in a state that blocks this operation.", body = ErrorEnvelope),
              (status = 422, description = "`invalid_for_conversational`: the target workflow is CONVERSATIONAL now.", body = ErrorEnvelope)))]
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
) -> Result<Reply<CreateBackfillResponse>, ApiError> {
    child_backfill(app, p, id, ChildKind::RerunFailed, key).await
}

/// Creates a child backfill of `id` (rerun-failed, apply, revert), with its
/// `Idempotency-Key` if any. A source the child's rule refuses is a 409 named after the kind
/// (`backfill_not_rerunnable`, `backfill_not_appliable`, `backfill_not_revertable`).
pub(crate) async fn child_backfill(
    app: &AppState,
    p: &Principal,
    id: &str,
    kind: ChildKind,
    key: Option<IdempotencyKey>,
) -> Result<Reply<CreateBackfillResponse>, ApiError> {
    if let ChildKind::Revert { remove_notes: true } = kind {
        check_remove_notes(app, p.tenant_id()).await?;
    }
    let now = app.clock.now();
    let left = credits_left(app, p).await?;
    let respond = |b: Backfill| {
        let cost = BackfillCostEstimate::new(b.credits_per_entity, b.total_items);
        created(b, cost, now, left)
    };
    let render = |b: &Backfill| rendered(respond(b.clone()));
    let idem = key.as_ref().map(|k| k.record(now, &render));
    let refused = match kind {
        ChildKind::RerunFailed => "backfill_not_rerunnable",
        ChildKind::Apply => "backfill_not_appliable",
        ChildKind::Revert { .. } => "backfill_not_revertable",
    };
    let new_id = new_backfill_id();
    let child = NewChild {
        source_id: id,
        new_id: &new_id,
        kind,
        created_by: &p.actor(),
        now,
    };
    let b = app
        .store
        .create_child(p.tenant_id(), &child, idem.as_ref())
        .await
        .map_err(|e| match e {
            RerunError::NotFound => ApiError::backfill_not_found(),
            RerunError::NotRerunnable(m) => ApiError::conflict(refused, m),
            RerunError::WorkflowNotFound => ApiError::workflow_not_found(),
            RerunError::Target(r) => target_refused(r, "the target workflow"),
            RerunError::AlreadyActive => already_active(StoreError::AlreadyActive),
            RerunError::Store(e) => e.into(),
        })?;
    app.wake();
    Ok(respond(b))
}
