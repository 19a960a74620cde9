//! Operator control as the backfill page and the list show it (issue 21): why a PAUSED
//! backfill is paused, its trial run and the trial's result, its credits against its cap, and
//! its ETA. Everything is read from the store's row with the functions the API's
//! `PublicBackfill` uses — [`neo_store::Backfill::eta`], [`PauseReason::message`], the
//! credits per entity — so the page says what `GET /public-api/backfills/{id}` says; only the
//! words are the dashboard's.
//!
//! A file of its own: `backfill.rs` holds the page's loading, actions, chain and history, and
//! with these it would pass the 800 lines a file is kept under. The list's rows
//! ([`super::list::BackfillView`]) and the page's live part both carry a [`ControlView`].

use jiff::{SignedDuration, Timestamp};
use neo_domain::backfill::BackfillRunState;
use neo_domain::control::PauseReason;
use neo_domain::eta::{EtaBasis, MIN_ITEMS, MIN_SECONDS};
use neo_store::{Backfill, TrialSummary};

use super::{times, view};

/// What the page and the list show of a backfill's operator control.
pub(super) struct ControlView {
    /// PAUSED, and why (none while it is not, or for a pause from before the reasons).
    pub(super) pause: Option<PauseView>,
    /// Its trial run, if it has one.
    pub(super) trial: Option<TrialView>,
    pub(super) credits: CreditsView,
    pub(super) eta: EtaView,
    /// Its scheduled start (a `<time>` element, HTML), if it has one.
    pub(super) start_at: Option<String>,
}

impl ControlView {
    pub(super) fn new(b: &Backfill, now: Timestamp, waiting: bool) -> Self {
        Self {
            pause: pause(b),
            trial: trial(b),
            credits: credits(b),
            eta: eta(b, now, waiting),
            start_at: b.start_at.map(|t| times::when(t, &b.timezone).to_string()),
        }
    }
}

pub(super) struct PauseView {
    /// `budget_reached`, … (the API's `pause_reason`).
    pub(super) reason: &'static str,
    /// The domain's sentence for the operator: what happened and what to do.
    pub(super) message: &'static str,
    /// A few words for the list.
    pub(super) label: &'static str,
}

pub(super) fn pause(b: &Backfill) -> Option<PauseView> {
    let r = b
        .pause_reason
        .filter(|_| b.state == BackfillRunState::Paused)?;
    Some(PauseView {
        reason: r.as_str(),
        message: r.message(),
        label: match r {
            PauseReason::Operator => "paused by an operator",
            PauseReason::TrialComplete => "trial done: check its result",
            PauseReason::BudgetReached => "credit cap reached",
            PauseReason::AllowanceExhausted => "monthly allowance spent",
            PauseReason::CircuitBreaker => "too many failures in a row",
        },
    })
}

pub(super) struct TrialView {
    pub(super) sample_size: i64,
    /// `running` (its sample is not done), `awaiting` (paused for the operator to continue or
    /// cancel) or `done` (continued, or ended after it).
    pub(super) phase: &'static str,
    pub(super) result: Option<TrialSummary>,
    /// In words, for the live part.
    pub(super) text: String,
}

pub(super) fn trial(b: &Backfill) -> Option<TrialView> {
    let n = b.trial_sample_size?;
    let awaiting = b.state == BackfillRunState::Paused
        && b.pause_reason == Some(PauseReason::TrialComplete)
        && b.trial_summary.is_some();
    let entities = |n: i64| format!("{n} entit{}", if n == 1 { "y" } else { "ies" });
    let (phase, text) = match &b.trial_summary {
        None => (
            "running",
            format!(
                "{} first, spread over the snapshot; then it pauses for you to check their results",
                entities(n)
            ),
        ),
        Some(t) => {
            let counts = format!(
                "{} succeeded, {} failed, {} skipped",
                t.succeeded, t.failed, t.skipped
            );
            if awaiting {
                (
                    "awaiting",
                    format!(
                        "sample of {} done: {counts}; waiting for you to continue or cancel",
                        entities(t.sample_size)
                    ),
                )
            } else {
                (
                    "done",
                    format!("sample of {}: {counts}", entities(t.sample_size)),
                )
            }
        }
    };
    Some(TrialView {
        sample_size: n,
        phase,
        result: b.trial_summary.clone(),
        text,
    })
}

/// The "Trial result" panel with its Continue and Cancel buttons: while the backfill waits
/// for the operator after its trial.
pub(super) struct TrialPanel {
    pub(super) result: TrialSummary,
    /// Entities Continue would run.
    pub(super) rest: i64,
}

pub(super) fn trial_panel(b: &Backfill) -> Option<TrialPanel> {
    let t = trial(b).filter(|t| t.phase == "awaiting")?;
    Some(TrialPanel {
        result: t.result?,
        rest: b.pending_count,
    })
}

pub(super) struct CreditsView {
    /// What its succeeded executions cost (the API's `credits_spent`).
    pub(super) spent: i64,
    pub(super) cap: Option<i64>,
    /// "8 / 8 credits" or "8 credits (no cap)".
    pub(super) text: String,
    /// "1 per entity; all 20 entities: 20".
    pub(super) note: String,
}

pub(super) fn credits(b: &Backfill) -> CreditsView {
    let spent = b.credits_spent();
    let all = view::total(b) * b.credits_per_entity;
    CreditsView {
        spent,
        cap: b.max_credits,
        text: match b.max_credits {
            Some(cap) => format!("{spent} / {cap} credits"),
            None => format!("{spent} credits (no cap)"),
        },
        note: format!(
            "{} per entity; all {} entities: {all}",
            b.credits_per_entity,
            view::total(b)
        ),
    }
}

pub(super) struct EtaView {
    /// The API's `eta_basis`: `measured`, `finished`, `not_running`, `measuring` or
    /// `beyond_horizon`.
    pub(super) basis: &'static str,
    /// The instant (RFC 3339), when measured.
    pub(super) iso: Option<String>,
    /// The instant in the viewer's own zone: a `<time data-viewer>` element (HTML), shown
    /// in UTC until the page's script knows the viewer's zone.
    pub(super) viewer: Option<String>,
    /// The instant in the backfill's zone, in words that name the zone:
    /// "Thu 3 Dec 22:00 GMT (Europe/London)".
    pub(super) in_zone: Option<String>,
    /// A few words: "in 3 h 12 min", "measuring throughput…", "done".
    pub(super) short: String,
    /// Why there is no ETA, in a sentence (none when there is one).
    pub(super) why: Option<String>,
    /// The measured throughput: "12.5 items/min".
    pub(super) rate: Option<String>,
}

/// `waiting`: RUNNING outside its windows (or before its scheduled start).
pub(super) fn eta(b: &Backfill, now: Timestamp, waiting: bool) -> EtaView {
    let (at, basis) = b.eta(now);
    let rate = b
        .throughput
        .per_second()
        .map(|r| format!("{:.1} items/min", r * 60.0));
    let mut v = EtaView {
        basis: basis.as_str(),
        iso: None,
        viewer: None,
        in_zone: None,
        short: String::new(),
        why: None,
        rate,
    };
    match (basis, at) {
        (EtaBasis::Measured, Some(t)) => {
            // Whole seconds, as the API's `eta` (`2026-12-03T22:00:00Z`).
            let t = Timestamp::from_second(t.as_second()).unwrap_or(t);
            let w = times::when(t, &b.timezone);
            v.short = match t.duration_since(now).as_secs() {
                s if s < 60 => "in under a minute".into(),
                // Rounded up: "in 2 min" for 1 min 58 s.
                s => format!(
                    "in {}",
                    view::human_duration(SignedDuration::from_secs((s + 59) / 60 * 60))
                ),
            };
            v.in_zone = Some(format!("{} ({})", w.text, w.zone));
            v.viewer = Some(times::viewer(t));
            v.iso = Some(w.iso);
        }
        (EtaBasis::Finished, _) => {
            v.short = "finishing".into();
            v.why = Some("finishing: nothing is left to dispatch".into());
        }
        (EtaBasis::Measuring, _) => {
            v.short = if waiting {
                "when its window opens".into()
            } else {
                "measuring throughput…".into()
            };
            v.why = Some(format!(
                "measuring throughput… (an ETA needs {MIN_ITEMS:.0} settled items over {MIN_SECONDS:.0} s of work{})",
                if waiting { "; it works once its window opens" } else { "" }
            ));
        }
        (EtaBasis::BeyondHorizon, _) => {
            v.short = "more than a year away".into();
            v.why = Some(
                "more than a year away: its windows leave too little open time at the measured rate"
                    .into(),
            );
        }
        _ => {
            let (short, why) = match b.state {
                BackfillRunState::Completed => ("done", "done: nothing is left to run"),
                BackfillRunState::Paused => ("paused", "not running: no ETA while it is paused"),
                BackfillRunState::Draft => ("not started", "not running: a draft has no ETA"),
                BackfillRunState::Cancelled => ("—", "not running: it was cancelled"),
                BackfillRunState::Failed => ("—", "not running: it failed"),
                BackfillRunState::Running => ("—", "not running"),
            };
            v.short = short.into();
            v.why = Some(why.into());
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use neo_domain::eta::Throughput;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn backfill(state: BackfillRunState) -> Backfill {
        let t = ts("2026-12-01T10:00:00Z");
        Backfill {
            id: "bf_1".into(),
            tenant_id: "t".into(),
            state,
            target_workflow_id: 1,
            target_workflow_name: Some("W".into()),
            target_workflow_autonomy_type: None,
            entity_type: neo_domain::backfill::EntityType::Ticket,
            filter_spec: serde_json::json!({}),
            daily_execution_windows: Default::default(),
            timezone: "Australia/Sydney".into(),
            max_in_flight: 5,
            reprocess: false,
            total_estimated: Some(100),
            total_items: 100,
            snapshot_complete: true,
            snapshot_checkpoint: None,
            pending_count: 60,
            in_flight_count: 0,
            succeeded_count: 35,
            failed_count: 5,
            skipped_count: 0,
            cancelled_count: 0,
            credits_per_entity: 2,
            started_at: Some(t),
            completed_at: None,
            created_by: "k".into(),
            created_at: t,
            updated_at: t,
            error: None,
            parent_backfill_run_id: None,
            name: None,
            mode: neo_domain::backfill::BackfillMode::Live,
            remove_notes: false,
            start_at: None,
            pause_reason: None,
            max_credits: Some(100),
            trial_sample_size: None,
            trial_summary: None,
            throughput: Throughput::default(),
            rerun_causes: None,
            effective_max_in_flight: None,
            max_in_flight_per_company: None,
            company_blackouts: None,
        }
    }

    #[test]
    fn a_measured_eta_is_shown_in_both_zones() {
        let now = ts("2026-12-01T11:00:00Z");
        let mut b = backfill(BackfillRunState::Running);
        // An item a minute: the 60 pending take an hour.
        b.throughput = Throughput {
            items: 60.0,
            seconds: 3600.0,
            at: Some(now),
        };
        let e = eta(&b, now, false);
        assert_eq!(e.basis, "measured");
        assert_eq!(e.iso.as_deref(), Some("2026-12-01T12:00:00Z"));
        assert_eq!(e.short, "in 1 h");
        assert_eq!(
            e.in_zone.as_deref(),
            Some("Tue 1 Dec 23:00 AEDT (Australia/Sydney)")
        );
        assert!(e.viewer.unwrap().contains("data-viewer"));
        assert_eq!(e.rate.as_deref(), Some("1.0 items/min"));
        assert!(e.why.is_none());
    }

    #[test]
    fn without_an_eta_the_basis_says_why() {
        let now = ts("2026-12-01T11:00:00Z");
        let b = backfill(BackfillRunState::Running);
        let e = eta(&b, now, false);
        assert_eq!(
            (e.basis, e.short.as_str()),
            ("measuring", "measuring throughput…")
        );
        assert!(e.why.unwrap().contains("20 settled items over 30 s"));
        assert_eq!(eta(&b, now, true).short, "when its window opens");
        let e = eta(&backfill(BackfillRunState::Completed), now, false);
        assert_eq!((e.basis, e.short.as_str()), ("not_running", "done"));
        let e = eta(&backfill(BackfillRunState::Paused), now, false);
        assert_eq!((e.basis, e.short.as_str()), ("not_running", "paused"));
    }

    #[test]
    fn pause_trial_and_credits_in_words() {
        let mut b = backfill(BackfillRunState::Paused);
        b.pause_reason = Some(PauseReason::BudgetReached);
        let p = pause(&b).unwrap();
        assert_eq!(p.reason, "budget_reached");
        assert_eq!(p.message, PauseReason::BudgetReached.message());
        // Only a PAUSED backfill has a reason.
        b.state = BackfillRunState::Running;
        assert!(pause(&b).is_none());
        let c = credits(&b);
        assert_eq!((c.spent, c.text.as_str()), (70, "70 / 100 credits"));
        assert_eq!(c.note, "2 per entity; all 100 entities: 200");
        b.max_credits = None;
        assert_eq!(credits(&b).text, "70 credits (no cap)");

        b.trial_sample_size = Some(6);
        assert_eq!(trial(&b).unwrap().phase, "running");
        assert!(trial_panel(&b).is_none());
        b.state = BackfillRunState::Paused;
        b.pause_reason = Some(PauseReason::TrialComplete);
        b.trial_summary = Some(TrialSummary {
            sample_size: 6,
            succeeded: 5,
            failed: 1,
            skipped: 0,
            top_errors: vec![],
        });
        let t = trial(&b).unwrap();
        assert_eq!(t.phase, "awaiting");
        assert_eq!(
            t.text,
            "sample of 6 entities done: 5 succeeded, 1 failed, 0 skipped; waiting for you to continue or cancel"
        );
        assert_eq!(trial_panel(&b).unwrap().rest, 60);
        // Continued: the result stays, the panel goes.
        b.state = BackfillRunState::Running;
        b.pause_reason = None;
        assert_eq!(trial(&b).unwrap().phase, "done");
        assert!(trial_panel(&b).is_none());
    }
}
