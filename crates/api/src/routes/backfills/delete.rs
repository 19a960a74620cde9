//! `DELETE /public-api/backfills/{id}`: only a DRAFT.

#[allow(unused_imports)]
use super::*;

/// Delete a DRAFT backfill.
///
/// Only a DRAFT (never started) can be deleted; any other state answers 409 `backfill_not_draft`
/// (cancel it instead).
#[utoipa::path(delete, path = "/public-api/backfills/{backfill_id}", tag = "Backfills",
    operation_id = "deleteBackfill",
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
