//! The execution page: what ran, and why it failed. Every attempt is listed with its start,
//! duration, outcome, the HTTP status the executor answered and its own error message (the
//! structured `error` a receiver returns, cut and cleaned by the orchestrator; never a raw
//! body). Times are in the backfill's zone, as on its page.
//!
//! A `psa_actions` execution also lists its field-update audit: each field it changed in the
//! PSA with the value before and after, and when, so an operator can answer "what did this
//! run do to ticket 590" without the PSA's own history. A shadow run's entries are what it
//! would have written, and say so.

#[allow(unused_imports)]
use super::*;

use super::times::{self, When};
use neo_domain::backfill::BackfillMode;
use neo_store::{Change, ChangesOf, Execution, ExecutionAttempt, PsaChange};

use super::changes::{shown, Shown};

/// One entry of the field-update audit.
pub(super) struct AuditRow {
    pub(super) field: String,
    pub(super) before: Shown,
    pub(super) after: Shown,
    pub(super) at: When,
}

/// A note the execution added or removed.
pub(super) struct NoteRow {
    pub(super) text: String,
    pub(super) at: When,
}

/// The audit of an execution: its field changes, and its notes, in order.
pub(super) fn audit_rows(
    changes: Vec<PsaChange>,
    mode: BackfillMode,
    tz: &str,
) -> (Vec<AuditRow>, Vec<NoteRow>) {
    let mut fields = Vec::new();
    let mut notes = Vec::new();
    for c in changes {
        let at = times::when(c.at, tz);
        match c.change {
            Change::Field {
                field,
                previous,
                new,
            } => fields.push(AuditRow {
                field,
                before: shown(&previous),
                after: shown(&new),
                at,
            }),
            Change::Note {
                note_id,
                text,
                internal,
            } => notes.push(NoteRow {
                text: format!(
                    "{}{}{}: {text}",
                    if mode == BackfillMode::Shadow {
                        "would add "
                    } else {
                        "added "
                    },
                    if internal {
                        "an internal note"
                    } else {
                        "a note"
                    },
                    note_id.map(|i| format!(" ({i})")).unwrap_or_default()
                ),
                at,
            }),
            Change::NoteRemoved { note_id } => notes.push(NoteRow {
                text: format!("removed note {note_id}"),
                at,
            }),
        }
    }
    (fields, notes)
}

/// One row of the attempt history.
pub(super) struct AttemptRow {
    pub(super) n: i64,
    pub(super) started: Option<When>,
    pub(super) duration: String,
    pub(super) outcome: &'static str,
    pub(super) outcome_class: &'static str,
    pub(super) http_status: Option<u16>,
    pub(super) error: String,
}

#[derive(Template)]
#[template(path = "execution.html")]
pub(super) struct ExecutionTpl {
    pub(super) layout: Layout,
    pub(super) e: PublicExecution,
    pub(super) backfill_name: Option<String>,
    pub(super) created: When,
    pub(super) updated: When,
    pub(super) attempts: Vec<AttemptRow>,
    /// The execution changes PSA records: the audit is shown.
    pub(super) psa: bool,
    /// Its backfill's mode (`shadow`: nothing was written).
    pub(super) mode: &'static str,
    pub(super) audit: Vec<AuditRow>,
    pub(super) notes: Vec<NoteRow>,
}

fn seconds(from: Option<Timestamp>, to: Option<Timestamp>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => {
            let ms = b.duration_since(a).as_millis().max(0);
            if ms < 1000 {
                format!("{ms} ms")
            } else {
                format!("{:.1} s", ms as f64 / 1000.0)
            }
        }
        _ => "—".into(),
    }
}

/// The attempts of `e`, oldest first: the kept earlier ones, then the row's own latest one
/// (finished, running, or the retry it waits for).
pub(super) fn attempt_rows(
    e: &Execution,
    earlier: &[ExecutionAttempt],
    tz: &str,
) -> Vec<AttemptRow> {
    let mut rows: Vec<AttemptRow> = earlier
        .iter()
        .map(|a| AttemptRow {
            n: a.attempt,
            started: a.started_at.map(|t| times::when(t, tz)),
            duration: seconds(a.started_at, Some(a.finished_at)),
            outcome: "failed, retried",
            outcome_class: "item-failed",
            http_status: a.http_status,
            error: a.error.clone().unwrap_or_default(),
        })
        .collect();
    let last_kept = earlier.last().map_or(0, |a| a.attempt);
    let latest = match e.status {
        ExecutionStatus::Succeeded | ExecutionStatus::Failed | ExecutionStatus::Cancelled
            if e.attempts > last_kept || e.attempts == 0 =>
        {
            let started = e.attempt_started_at.or(e.started_at);
            Some(AttemptRow {
                n: e.attempts.max(1),
                started: started.map(|t| times::when(t, tz)),
                duration: seconds(started, e.finished_at),
                outcome: e.status.as_str(),
                outcome_class: match e.status {
                    ExecutionStatus::Succeeded => "item-succeeded",
                    ExecutionStatus::Failed => "item-failed",
                    _ => "item-cancelled",
                },
                http_status: e.http_status,
                error: e.error.clone().unwrap_or_default(),
            })
        }
        ExecutionStatus::Running if e.attempts > last_kept => Some(AttemptRow {
            n: e.attempts,
            // A running attempt's row was last written by its claim.
            started: Some(times::when(e.updated_at, tz)),
            duration: "running".into(),
            outcome: "running",
            outcome_class: "item-in_flight",
            http_status: None,
            error: String::new(),
        }),
        ExecutionStatus::Queued if last_kept > 0 => Some(AttemptRow {
            n: last_kept + 1,
            started: None,
            duration: "—".into(),
            outcome: "waiting to retry",
            outcome_class: "item-pending",
            http_status: None,
            error: String::new(),
        }),
        _ => None,
    };
    rows.extend(latest);
    rows
}

pub(super) async fn execution_page(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
) -> Response {
    let tenant = u.principal.tenant_id();
    let e = match app.store.execution(tenant, &id).await {
        Ok(Some(e)) => e,
        Ok(None) => return api_error(&ApiError::not_found("execution")),
        Err(e) => return store_error(e),
    };
    let earlier = match app.store.execution_attempts(tenant, &id).await {
        Ok(a) => a,
        Err(e) => return store_error(e),
    };
    let backfill = match &e.backfill_id {
        Some(b) => match app.store.backfill(tenant, b).await {
            Ok(b) => b,
            Err(e) => return store_error(e),
        },
        None => None,
    };
    let tz = backfill.as_ref().map_or("UTC", |b| b.timezone.as_str());
    let mode = backfill.as_ref().map_or(BackfillMode::Live, |b| b.mode);
    let changes = match app
        .store
        .psa_changes(tenant, ChangesOf::Execution(&id))
        .await
    {
        Ok(c) => c,
        Err(e) => return store_error(e),
    };
    let psa = !changes.is_empty() || mode != BackfillMode::Live;
    let (audit, notes) = audit_rows(changes, mode, tz);
    page(
        StatusCode::OK,
        &ExecutionTpl {
            layout: Layout::new(&u, format!("Execution {id}"), "backfills"),
            attempts: attempt_rows(&e, &earlier, tz),
            psa,
            mode: mode.as_str(),
            audit,
            notes,
            created: times::when(e.created_at, tz),
            updated: times::when(e.updated_at, tz),
            backfill_name: backfill.map(|b| view::display_name(&b)),
            e: e.into(),
        },
    )
}
