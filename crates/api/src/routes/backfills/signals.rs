//! `start`, `pause`, `resume`, `cancel`: the state machine of docs/api.md §3.3, applied by the store.

#[allow(unused_imports)]
use super::*;

/// Applies a user signal (the API's signal routes and the dashboard's buttons).
pub(crate) async fn signal(
    app: &AppState,
    p: &Principal,
    id: &str,
    sig: Signal,
) -> Result<Reply<SignalResponse>, ApiError> {
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
    Ok(Reply::new(SignalResponse {
        backfill_id: b.id,
        signal: sig.as_str().to_owned(),
        message,
    })
    .status(StatusCode::ACCEPTED))
}

macro_rules! signal_route {
    ($fn:ident, $sig:expr, $path:literal, $op:literal, $summary:literal, $description:literal) => {
        #[doc = $summary]
        #[doc = ""]
        #[doc = $description]
        #[utoipa::path(post, path = $path, tag = "Backfills", operation_id = $op,
            params(("backfill_id" = String, Path)),
            responses((status = 202, description = "Accepted.", body = DataEnvelope<SignalResponse>),
                      (status = 409, description = "Conflict — the resource is in a state that blocks this operation.", body = ErrorEnvelope)))]
        pub async fn $fn(
            State(app): State<AppState>,
            Auth(p): Auth,
            ApiPath(id): ApiPath<String>,
        ) -> Result<Reply<SignalResponse>, ApiError> {
            signal(&app, &p, &id, $sig).await
        }
    };
}

signal_route!(
    start,
    Signal::Start,
    "/public-api/backfills/{backfill_id}/start",
    "startBackfill",
    "Start a DRAFT backfill (DRAFT → RUNNING).",
    "Only a DRAFT starts; the orchestrator dispatches its entities within the execution windows. The new state is visible on the next GET."
);
signal_route!(
    pause,
    Signal::Pause,
    "/public-api/backfills/{backfill_id}/pause",
    "pauseBackfill",
    "Pause: no new dispatch; in-flight executions finish. Idempotent.",
    "In-flight executions finish and settle; nothing new is dispatched until resume. Pausing a PAUSED backfill answers 202 and changes nothing; a terminal one answers 409 `backfill_not_active`."
);
signal_route!(
    resume,
    Signal::Resume,
    "/public-api/backfills/{backfill_id}/resume",
    "resumeBackfill",
    "Resume a paused backfill. Idempotent.",
    "Dispatch continues where it stopped, within the windows, and the circuit breaker's failure streak starts again from zero. Resuming a RUNNING backfill answers 202 and changes nothing."
);
signal_route!(
    cancel,
    Signal::Cancel,
    "/public-api/backfills/{backfill_id}/cancel",
    "cancelBackfill",
    "Cancel: no new dispatch; outstanding executions are cancelled best-effort.",
    "The state is CANCELLED at once and nothing more is dispatched; pending entities are cancelled (a large backfill's in the background), and outstanding webhook executions are told, best effort. Cancelling a CANCELLED backfill answers 202 and changes nothing."
);
