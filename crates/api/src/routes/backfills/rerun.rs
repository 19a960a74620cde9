//! `POST /public-api/backfills/{id}/rerun-failed`: a child backfill over the failed entities.

#[allow(unused_imports)]
use super::*;

use axum::body::Bytes;
use neo_domain::triage::Causes;

/// Rerun a backfill against its failed tickets
///
/// Spawn a new backfill scoped to the source's failed entities — [ours] or, with a body
/// `{"error_signatures": [...], "failure_kinds": [...]}`, to those of the causes listed (the
/// signatures and kinds of `GET /public-api/backfills/{id}/failures`; either list may be
/// omitted; the child's `rerun_causes` records them). Without a body, every failed entity. The new backfill inherits the
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
              (status = 422, description = "`invalid_for_conversational`: the target workflow is CONVERSATIONAL now; `validation_error`: a cause list too long or an empty signature.", body = ErrorEnvelope)),
    request_body(content = Option<RerunFailedRequest>, description = "Optional [ours]: only the failures of these causes."))]
pub async fn rerun_failed(
    State(app): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let causes = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let req: RerunFailedRequest = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("the body is not a rerun-failed request: {e}"))
        })?;
        Some(check_causes(req)?)
    };
    let route = format!("POST /public-api/backfills/{id}/rerun-failed");
    idempotent(&app, &p, &headers, &route, &body, |key| {
        rerun_failed_backfill(&app, &p, &id, causes.as_ref(), key)
    })
    .await
}

/// Most signatures or kinds one rerun names.
pub const MAX_CAUSES: usize = 100;

/// The causes of a rerun-failed request, checked (the API's body and the dashboard's
/// "Rerun this cause").
pub(crate) fn check_causes(req: RerunFailedRequest) -> Result<Causes, ApiError> {
    if req.error_signatures.len() > MAX_CAUSES || req.failure_kinds.len() > MAX_CAUSES {
        return Err(ApiError::field(
            "error_signatures",
            format!("at most {MAX_CAUSES} error signatures and {MAX_CAUSES} failure kinds"),
        ));
    }
    if let Some(at) = req
        .error_signatures
        .iter()
        .position(|s| s.trim().is_empty() || s.len() > 2_000)
    {
        return Err(ApiError::field(
            &format!("error_signatures[{at}]"),
            "an error signature is a non-empty text of at most 2,000 bytes, as GET /failures gives it",
        ));
    }
    Ok(Causes {
        error_signatures: req.error_signatures,
        failure_kinds: req.failure_kinds,
    })
}

/// Creates the rerun-failed child (the API's rerun-failed and the dashboard's button), with
/// its `Idempotency-Key` if any.
pub(crate) async fn rerun_failed_backfill(
    app: &AppState,
    p: &Principal,
    id: &str,
    causes: Option<&Causes>,
    key: Option<IdempotencyKey>,
) -> Result<Reply<CreateBackfillResponse>, ApiError> {
    child_backfill(app, p, id, ChildKind::RerunFailed, causes, key).await
}

/// Creates a child backfill of `id` (rerun-failed, apply, revert), with its
/// `Idempotency-Key` if any. A source the child's rule refuses is a 409 named after the kind
/// (`backfill_not_rerunnable`, `backfill_not_appliable`, `backfill_not_revertable`).
pub(crate) async fn child_backfill(
    app: &AppState,
    p: &Principal,
    id: &str,
    kind: ChildKind,
    causes: Option<&Causes>,
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
        causes,
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
