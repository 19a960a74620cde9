//! Notifications (issue 22): the events a tenant's notification endpoints can receive, when a
//! backfill's failure rate is "high", and how often an undelivered event is tried again.
//!
//! Events are written to an outbox in the transaction of the state change they report, and
//! delivered later, off the control loop, at least once: a receiver deduplicates by the
//! event's id. The rules that decide *whether* and *when* live here so that the store (which
//! writes the outbox) and the deliverer (which retries) agree without sharing code paths.

use std::time::Duration;

use crate::backfill::{string_enum, Signal};
use crate::validation::FieldError;

string_enum!(
    /// What happened. `endpoint.test` is only ever sent by "send a test event".
    #[schema(title = "NotificationEventType")]
    EventType {
        BackfillStarted => "backfill.started",
        BackfillPaused => "backfill.paused",
        BackfillResumed => "backfill.resumed",
        BackfillCompleted => "backfill.completed",
        BackfillFailed => "backfill.failed",
        BackfillCancelled => "backfill.cancelled",
        BackfillFailureRateHigh => "backfill.failure_rate_high",
        EndpointTest => "endpoint.test",
    }
);

string_enum!(
    /// The body an endpoint receives: `json` (the signed event envelope) or `slack` (`{"text":
    /// ...}`, which Slack and Microsoft Teams incoming webhooks accept as is; still signed).
    #[schema(title = "NotificationFormat")]
    Format {
        Json => "json",
        Slack => "slack",
    }
);

impl EventType {
    /// The event a signal's transition writes.
    pub fn of_signal(signal: Signal) -> EventType {
        match signal {
            Signal::Start => EventType::BackfillStarted,
            Signal::Pause => EventType::BackfillPaused,
            Signal::Resume => EventType::BackfillResumed,
            Signal::Cancel => EventType::BackfillCancelled,
        }
    }

    /// The events an endpoint may subscribe to (everything but the test event, which every
    /// endpoint receives when asked).
    pub fn subscribable() -> impl Iterator<Item = EventType> {
        EventType::ALL
            .iter()
            .copied()
            .filter(|t| *t != EventType::EndpointTest)
    }
}

/// Endpoints a tenant may have.
pub const MAX_ENDPOINTS: usize = 20;

/// The event types an endpoint subscribes to, from a request: known, subscribable, at least
/// one, each once (in the order given). `None` (omitted) is every subscribable type.
pub fn check_event_types(given: Option<&[String]>) -> Result<Vec<EventType>, FieldError> {
    let Some(given) = given else {
        return Ok(EventType::subscribable().collect());
    };
    let mut out = Vec::new();
    for s in given {
        let t = EventType::parse(s)
            .filter(|t| *t != EventType::EndpointTest)
            .ok_or_else(|| {
                let known: Vec<&str> = EventType::subscribable().map(EventType::as_str).collect();
                FieldError::new(
                    "event_types",
                    format!("{s:?} is not an event type; use {}", known.join(", ")),
                )
            })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(FieldError::new(
            "event_types",
            "event_types must name at least one event type (omit it for all)",
        ));
    }
    Ok(out)
}

/// How many of a backfill's latest outcomes the failure rate is taken over.
pub const FAILURE_WINDOW: usize = 100;
/// The failure rate over the window above which `backfill.failure_rate_high` is sent (once per
/// backfill).
pub const FAILURE_RATE_THRESHOLD: f64 = 0.25;
/// Fewer outcomes than this say nothing yet.
pub const FAILURE_MIN_OUTCOMES: usize = 20;

/// A backfill's latest outcomes as stored: `s` (succeeded) and `f` (failed), oldest first, at
/// most [`FAILURE_WINDOW`] of them. Skips and cancellations are not outcomes of the workflow.
pub fn push_outcome(window: &mut String, failed: bool) {
    window.push(if failed { 'f' } else { 's' });
    if window.len() > FAILURE_WINDOW {
        window.drain(..window.len() - FAILURE_WINDOW);
    }
}

/// The failure rate over `window` (see [`push_outcome`]); `None` under
/// [`FAILURE_MIN_OUTCOMES`].
pub fn failure_rate(window: &str) -> Option<f64> {
    let n = window.len();
    (n >= FAILURE_MIN_OUTCOMES)
        .then(|| window.bytes().filter(|b| *b == b'f').count() as f64 / n as f64)
}

/// Whether `window` is over the threshold.
pub fn failure_rate_high(window: &str) -> bool {
    failure_rate(window).is_some_and(|r| r > FAILURE_RATE_THRESHOLD)
}

/// Undelivered events are tried again for this long after they were written, then given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(72 * 3600);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait after the `attempts`-th failed attempt (1-based): 2 s, 4 s, 8 s, … up to
/// [`MAX_BACKOFF`]. A receiver that was down for five minutes gets its events within a minute
/// of coming back.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 1u64 << attempts.clamp(1, 16);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_window_keeps_the_last_hundred() {
        let mut w = String::new();
        for i in 0..250 {
            push_outcome(&mut w, i >= 200);
        }
        assert_eq!(w.len(), FAILURE_WINDOW);
        assert_eq!(failure_rate(&w), Some(0.5));
        assert!(failure_rate_high(&w));
    }

    #[test]
    fn a_few_outcomes_say_nothing_and_the_threshold_is_strict() {
        assert_eq!(failure_rate("ffff"), None);
        let mut w = "s".repeat(75);
        w.push_str(&"f".repeat(25));
        assert_eq!(failure_rate(&w), Some(0.25));
        assert!(!failure_rate_high(&w), "25% is not over 25%");
        push_outcome(&mut w, true); // drops the oldest, a success
        assert_eq!(failure_rate(&w), Some(0.26));
        assert!(failure_rate_high(&w));
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let secs: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(0), Duration::from_secs(2));
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn the_test_event_cannot_be_subscribed_to() {
        assert!(EventType::subscribable().all(|t| t != EventType::EndpointTest));
        assert_eq!(EventType::subscribable().count(), EventType::ALL.len() - 1);
    }

    #[test]
    fn event_types_are_checked() {
        assert_eq!(
            check_event_types(None).unwrap().len(),
            EventType::ALL.len() - 1
        );
        let given = ["backfill.paused".to_owned(), "backfill.paused".to_owned()];
        assert_eq!(
            check_event_types(Some(&given)).unwrap(),
            [EventType::BackfillPaused]
        );
        for bad in [&["endpoint.test".to_owned()][..], &["nope".to_owned()], &[]] {
            assert_eq!(
                check_event_types(Some(bad)).unwrap_err().field,
                "event_types"
            );
        }
    }

    proptest! {
        #[test]
        fn the_rate_is_the_share_of_failures_among_the_last_hundred(outcomes in proptest::collection::vec(any::<bool>(), 0..400)) {
            let mut w = String::new();
            for f in &outcomes {
                push_outcome(&mut w, *f);
            }
            let last: Vec<bool> = outcomes.iter().rev().take(FAILURE_WINDOW).copied().collect();
            prop_assert_eq!(w.len(), last.len());
            let expected = (last.len() >= FAILURE_MIN_OUTCOMES)
                .then(|| last.iter().filter(|f| **f).count() as f64 / last.len() as f64);
            prop_assert_eq!(failure_rate(&w), expected);
        }
    }
}
