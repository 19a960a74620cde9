//! `PATCH /public-api/backfills/{id}`: change an active backfill's name, `max_in_flight`,
//! windows or credit cap while it runs. Each value is checked by the rule create uses; the store applies
//! the edit under the backfill's row lock and audits every setting that changed.

#[allow(unused_imports)]
use super::*;

use neo_domain::backfill::EditRefusal;
use neo_store::{BackfillEdit, EditError};

/// Edit a backfill.
///
/// Changes the name, `max_in_flight`, `daily_execution_windows`, `timezone`, `max_credits`,
/// `max_in_flight_per_company` or `company_blackouts`
/// of a DRAFT, RUNNING or PAUSED backfill; omitted members stay as they are. The orchestrator applies a new
/// cap or schedule on its next round. Each changed setting is recorded (who, when, from what,
/// to what). A COMPLETED, CANCELLED or FAILED backfill answers 409 `backfill_not_active`.
#[utoipa::path(patch, path = "/public-api/backfills/{backfill_id}", tag = "Backfills",
    operation_id = "editBackfill",
    params(("backfill_id" = String, Path)),
    request_body = EditBackfillRequest,
    responses((status = 200, description = "Success: the backfill as edited.", body = DataEnvelope<PublicBackfill>),
              (status = 409, description = "Conflict — the backfill has ended.", body = ErrorEnvelope)))]
pub async fn edit(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<EditBackfillRequest>,
) -> Result<Reply<PublicBackfill>, ApiError> {
    edit_backfill(&app, &p, &id, body.value).await
}

/// Applies an edit (the API's PATCH and the dashboard's edit form).
pub(crate) async fn edit_backfill(
    app: &AppState,
    p: &Principal,
    id: &str,
    req: EditBackfillRequest,
) -> Result<Reply<PublicBackfill>, ApiError> {
    let edit = edit_of(req)?;
    let now = app.clock.now();
    let b = app
        .store
        .edit_backfill(p.tenant_id(), id, &edit, &p.actor(), now)
        .await
        .map_err(|e| match e {
            EditError::NotFound => ApiError::backfill_not_found(),
            EditError::Refused(EditRefusal::Terminal(s)) => ApiError::conflict(
                "backfill_not_active",
                format!("backfill {id} is {s}; an ended backfill cannot be edited"),
            ),
            EditError::Store(e) => e.into(),
        })?;
    app.wake();
    Ok(Reply::new(PublicBackfill::at(b, now)))
}

/// The request checked member by member, with create's rules.
fn edit_of(req: EditBackfillRequest) -> Result<BackfillEdit, ApiError> {
    if req.name.is_none()
        && req.max_in_flight.is_none()
        && req.daily_execution_windows.is_none()
        && req.timezone.is_none()
        && req.max_credits.is_none()
        && req.max_in_flight_per_company.is_none()
        && req.company_blackouts.is_none()
    {
        return Err(ApiError::bad_request(
            "nothing to change: give name, max_in_flight, daily_execution_windows, timezone, max_credits, max_in_flight_per_company or company_blackouts",
        ));
    }
    if let Some(Some(n)) = req.max_in_flight_per_company {
        let max = req
            .max_in_flight
            .unwrap_or(neo_domain::backfill::MAX_IN_FLIGHT);
        neo_domain::fairness::check_max_in_flight_per_company(n, max)
            .map_err(ApiError::validation)?;
    }
    if let Some(Some(b)) = &req.company_blackouts {
        // Every rule but the time zone's, which is the backfill's (checked at create or above).
        neo_domain::fairness::Blackouts::new(b, req.timezone.as_deref().unwrap_or("UTC"))
            .map_err(ApiError::validation)?;
    }
    if let Some(Some(c)) = req.max_credits {
        neo_domain::control::check_max_credits(c).map_err(ApiError::validation)?;
    }
    if let Some(n) = req.max_in_flight {
        check_max_in_flight(n).map_err(ApiError::validation)?;
    }
    if let Some(tz) = &req.timezone {
        validate_timezone(tz, "timezone").map_err(ApiError::validation)?;
    }
    if let Some(w) = &req.daily_execution_windows {
        w.validate("daily_execution_windows")
            .map_err(ApiError::validation)?;
    }
    Ok(BackfillEdit {
        name: req
            .name
            .as_deref()
            .map(check_name)
            .transpose()
            .map_err(ApiError::validation)?,
        max_in_flight: req.max_in_flight,
        daily_execution_windows: req.daily_execution_windows,
        timezone: req.timezone,
        max_credits: req.max_credits,
        max_in_flight_per_company: req.max_in_flight_per_company,
        company_blackouts: req.company_blackouts,
    })
}
