//! Safe bulk changes (issue 20, docs/psa-actions.md): what a `psa_actions` backfill changed or
//! would change, and its two children — `POST /backfills/{id}/apply` (a shadow run made
//! live) and `POST /backfills/{id}/revert` (what a live run wrote, restored).

#[allow(unused_imports)]
use super::*;
use axum::body::Bytes;
use neo_store::{Change, ChangesOf, PsaChange};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// One field's change, as Neo's field-update audit names it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicFieldChange {
    /// The PSA's own field path, `/` between segments (`priority/id`).
    pub field: String,
    /// The value before (null when the record had none).
    pub previous_value: Value,
    pub new_value: Value,
}

/// A note a run added (or, in a shadow run, would add).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicNote {
    pub text: String,
    pub internal: bool,
    /// The note's id in the PSA; null in a shadow run.
    pub note_id: Option<String>,
}

/// What a `psa_actions` execution changed on its entity (a shadow run: would change).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ItemDiff {
    pub changes: Vec<PublicFieldChange>,
    pub notes: Vec<PublicNote>,
    /// Ids of the notes a revert removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes_removed: Vec<String>,
}

impl ItemDiff {
    pub(crate) fn add(&mut self, c: &Change) {
        match c {
            Change::Field {
                field,
                previous,
                new,
            } => self.changes.push(PublicFieldChange {
                field: field.clone(),
                previous_value: previous.clone(),
                new_value: new.clone(),
            }),
            Change::Note {
                note_id,
                text,
                internal,
            } => self.notes.push(PublicNote {
                text: text.clone(),
                internal: *internal,
                note_id: note_id.clone(),
            }),
            Change::NoteRemoved { note_id } => self.notes_removed.push(note_id.clone()),
        }
    }
}

/// The diffs of a page of items, by execution id.
fn diffs_by_execution(changes: Vec<PsaChange>) -> std::collections::HashMap<String, ItemDiff> {
    let mut out: std::collections::HashMap<String, ItemDiff> = Default::default();
    for c in changes {
        out.entry(c.execution_id).or_default().add(&c.change);
    }
    out
}

/// A page of items with their diffs (the items list's `diff`).
pub(crate) async fn with_diffs(
    app: &AppState,
    tenant: &str,
    backfill_id: &str,
    items: Vec<neo_store::Item>,
) -> Result<Vec<PublicBackfillItem>, ApiError> {
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return Ok(Vec::new());
    };
    let changes = app
        .store
        .psa_changes(
            tenant,
            ChangesOf::Items {
                backfill_id,
                first: first.ord,
                last: last.ord,
            },
        )
        .await?;
    let mut diffs = diffs_by_execution(changes);
    Ok(items
        .into_iter()
        .map(|i| {
            let diff = i.execution_id.as_ref().and_then(|e| diffs.remove(e));
            let mut p = PublicBackfillItem::from(i);
            p.diff = diff;
            p
        })
        .collect())
}

/// How many entities one field change touched.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicChangeTotal {
    pub field: String,
    pub previous_value: Value,
    pub new_value: Value,
    /// Entities changed (a shadow run: that would change) from `previous_value` to `new_value`.
    pub entities: i64,
}

/// Most groups [`changes`] returns.
pub const MAX_CHANGE_TOTALS: usize = 200;

/// The changes of a `psa_actions` backfill, totalled.
///
/// Each (field, previous value, new value) with the number of entities the backfill changed
/// that way — or, for a shadow run, would change — most entities first, at most 200 groups:
/// "priority: 412 entities, Normal → High". The per-entity diff is the items list's `diff`.
#[utoipa::path(get, path = "/public-api/backfills/{backfill_id}/changes", tag = "Backfills",
    operation_id = "listBackfillChanges",
    params(("backfill_id" = String, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicChangeTotal>>)))]
pub async fn changes(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<Vec<PublicChangeTotal>>, ApiError> {
    if app.store.backfill(p.tenant_id(), &id).await?.is_none() {
        return Err(ApiError::backfill_not_found());
    }
    let totals = app
        .store
        .psa_change_totals(p.tenant_id(), &id, MAX_CHANGE_TOTALS)
        .await?;
    Ok(Reply::new(
        totals
            .into_iter()
            .map(|t| PublicChangeTotal {
                field: t.field,
                previous_value: t.previous,
                new_value: t.new,
                entities: t.entities,
            })
            .collect(),
    )
    .page(false, None))
}

/// Apply a shadow run.
///
/// Creates the apply child of an ended shadow run: a live backfill of the same workflow over
/// the same snapshot. Each entity is read and planned again before it is written, so an entity
/// that changed in the PSA since the shadow read is re-evaluated, never overwritten with the
/// shadow's diff. `409 backfill_not_appliable` for a backfill that is not an ended shadow run.
#[utoipa::path(post, path = "/public-api/backfills/{backfill_id}/apply", tag = "Backfills",
    operation_id = "applyBackfill",
    params(("backfill_id" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]+$", description = "Replays the first response for 24 h")),
    responses((status = 201, description = "Success.", body = DataEnvelope<CreateBackfillResponse>),
              (status = 409, description = "Conflict — the resource is in a state that blocks this operation.", body = ErrorEnvelope)))]
pub async fn apply(
    State(app): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let route = format!("POST /public-api/backfills/{id}/apply");
    idempotent(&app, &p, &headers, &route, b"", |key| {
        child_backfill(&app, &p, &id, ChildKind::Apply, None, key)
    })
    .await
}

/// The body of a revert (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertRequest {
    /// Also remove the notes the backfill added (not on Autotask, whose API cannot delete
    /// notes). Default false: the notes are listed in the revert's items.
    #[serde(default)]
    pub remove_notes: bool,
}

/// Revert a backfill's changes.
///
/// Creates a child backfill that restores, on each entity the ended live run changed, the
/// values it recorded before writing. An entity edited in the PSA after the run wrote it is
/// `skipped` with an error starting `changed_since` and left as it is. The audit is durable,
/// so a revert works after a crash or a restart. `409 backfill_not_revertable` for a backfill
/// that is still active, wrote nothing, or is itself a shadow run or a revert.
#[utoipa::path(post, path = "/public-api/backfills/{backfill_id}/revert", tag = "Backfills",
    operation_id = "revertBackfill",
    params(("backfill_id" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[ -~]+$", description = "Replays the first response for 24 h")),
    request_body(content = Option<RevertRequest>, content_type = "application/json"),
    responses((status = 201, description = "Success.", body = DataEnvelope<CreateBackfillResponse>),
              (status = 409, description = "Conflict — the resource is in a state that blocks this operation.", body = ErrorEnvelope),
              (status = 422, description = "`remove_notes` on a PSA that cannot delete notes.", body = ErrorEnvelope)))]
pub async fn revert(
    State(app): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: RevertRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RevertRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not a revert request: {e}")))?
    };
    let route = format!("POST /public-api/backfills/{id}/revert");
    let kind = ChildKind::Revert {
        remove_notes: req.remove_notes,
    };
    idempotent(&app, &p, &headers, &route, &body, |key| {
        child_backfill(&app, &p, &id, kind, None, key)
    })
    .await
}

/// Whether a revert can remove notes on the tenant's PSA (its API can delete them): the
/// dashboard offers the choice by it, and [`check_remove_notes`] refuses it by it.
pub(crate) async fn notes_removable(app: &AppState, tenant: &str) -> Result<bool, ApiError> {
    let integration = app.store.integration(tenant).await?;
    let psa = integration.and_then(|i| neo_psa::Psa::parse(&i.psa));
    Ok(psa.is_none_or(neo_psa::write::can_delete_notes))
}

/// A revert with `remove_notes` where the PSA cannot delete notes: 422 naming `remove_notes`
/// (the revert would restore the fields and then fail every entity on its notes).
pub(crate) async fn check_remove_notes(app: &AppState, tenant: &str) -> Result<(), ApiError> {
    if notes_removable(app, tenant).await? {
        return Ok(());
    }
    Err(ApiError::field(
        "remove_notes",
        "Autotask's API cannot delete notes: revert without remove_notes, and remove them in Autotask if needed",
    ))
}
