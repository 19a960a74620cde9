//! Adaptive concurrency (issue 23): a backfill's effective in-flight limit moves between 1 and
//! its `max_in_flight` with AIMD, the rule TCP uses to share a link it cannot see. Each
//! execution that succeeds within the latency target adds `1 / limit` (one more slot per
//! limit's worth of successes); a throttle — HTTP 429 or 503, a timeout, from the executor or
//! the PSA — halves it. Only feedback from executions started after the last decrease can
//! decrease it again: a wave of 429s answering requests sent under the old limit is one
//! signal, not fifty, so the limit settles just under what the receiver takes instead of
//! collapsing to 1.
//!
//! Pure: the orchestrator keeps one [`Aimd`] per backfill it drives and tells it what each
//! execution did and when it started.

use std::time::Duration;

use jiff::Timestamp;

use crate::triage::{classify, FailureKind};

/// What a throttle does to the limit.
pub const DECREASE: f64 = 0.5;
/// Successes slower than this hold the limit (they neither raise nor lower it).
pub const LATENCY_TARGET: Duration = Duration::from_secs(5);

/// What one execution said about the receiver's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// Succeeded (or failed on its own merits) this fast.
    Answered { latency: Duration },
    /// Throttled: 429, 503 or a timeout.
    Throttled,
}

impl Feedback {
    /// An execution's feedback from how it ended: its error (if any), its HTTP status and how
    /// long it took. Throttling is what the triage calls `throttled` or `timeout`, or a 503.
    pub fn of(error: Option<&str>, http_status: Option<u16>, latency: Duration) -> Feedback {
        let throttled = matches!(http_status, Some(429 | 503))
            || error.is_some_and(|e| match classify(e, http_status) {
                FailureKind::Throttled | FailureKind::Timeout => true,
                // The PSA's own throttling, after the connector's waits.
                FailureKind::PsaUnavailable => {
                    e.contains("429") || e.contains("503") || e.contains("throttl")
                }
                _ => false,
            });
        if throttled {
            Feedback::Throttled
        } else {
            Feedback::Answered { latency }
        }
    }
}

/// One backfill's effective limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Aimd {
    limit: f64,
    max: u32,
    decreased_at: Option<Timestamp>,
}

impl Aimd {
    /// Starts at `max` (an executor that copes never waits for the limit to grow).
    pub fn new(max: u32) -> Self {
        let max = max.max(1);
        Self {
            limit: f64::from(max),
            max,
            decreased_at: None,
        }
    }

    /// The effective limit: from 1 to `max`.
    pub fn limit(&self) -> u32 {
        (self.limit.floor() as u32).clamp(1, self.max)
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// Follows an edit of `max_in_flight`: the limit never exceeds it.
    pub fn set_max(&mut self, max: u32) {
        self.max = max.max(1);
        self.limit = self.limit.min(f64::from(self.max));
    }

    /// Applies the feedback of an execution started at `started_at`, at `now`.
    pub fn observe(&mut self, feedback: Feedback, started_at: Timestamp, now: Timestamp) {
        match feedback {
            Feedback::Throttled => {
                if self.decreased_at.is_none_or(|d| started_at >= d) {
                    self.limit = (self.limit * DECREASE).max(1.0);
                    self.decreased_at = Some(now);
                }
            }
            Feedback::Answered { latency } if latency <= LATENCY_TARGET => {
                self.limit = (self.limit + 1.0 / self.limit).min(f64::from(self.max));
            }
            Feedback::Answered { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use proptest::prelude::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_millis(ms)
    }

    const FAST: Feedback = Feedback::Answered {
        latency: Duration::from_millis(10),
    };

    #[test]
    fn a_wave_of_throttles_is_one_decrease() {
        let mut a = Aimd::new(100);
        for _ in 0..80 {
            a.observe(Feedback::Throttled, t(0), t(100));
        }
        assert_eq!(a.limit(), 50, "the 80 answered requests sent under 100");
        a.observe(Feedback::Throttled, t(150), t(300));
        assert_eq!(a.limit(), 25, "one sent after the decrease");
        for _ in 0..10 {
            a.observe(Feedback::Throttled, t(0), t(1_000));
            a.observe(Feedback::Throttled, t(1), t(1_000));
        }
        assert_eq!(a.limit(), 25, "old news");
    }

    #[test]
    fn successes_add_one_per_limit_and_slow_ones_hold() {
        let mut a = Aimd::new(40);
        a.observe(Feedback::Throttled, t(0), t(1));
        assert_eq!(a.limit(), 20);
        for _ in 0..20 {
            a.observe(FAST, t(2), t(3));
        }
        assert_eq!(a.limit(), 20, "just under 21: one more needs 20 successes");
        a.observe(FAST, t(2), t(3));
        assert_eq!(a.limit(), 21);
        let slow = Feedback::Answered {
            latency: LATENCY_TARGET + Duration::from_millis(1),
        };
        for _ in 0..500 {
            a.observe(slow, t(2), t(3));
        }
        assert_eq!(a.limit(), 21);
        for _ in 0..10_000 {
            a.observe(FAST, t(2), t(3));
        }
        assert_eq!(a.limit(), 40, "never above max_in_flight");
        a.set_max(10);
        assert_eq!(a.limit(), 10);
    }

    #[test]
    fn throttling_is_read_from_the_status_and_the_error() {
        let ms = Duration::from_millis(3);
        let f = |e: Option<&str>, s: Option<u16>| Feedback::of(e, s, ms);
        assert_eq!(
            f(Some("the executor answered HTTP 429"), Some(429)),
            Feedback::Throttled
        );
        assert_eq!(
            f(Some("the executor answered HTTP 503"), Some(503)),
            Feedback::Throttled
        );
        assert_eq!(
            f(Some("the executor did not answer within 30000 ms"), None),
            Feedback::Throttled
        );
        assert_eq!(
            f(Some("the PSA is unavailable: HTTP 503 from the PSA"), None),
            Feedback::Throttled
        );
        assert_eq!(
            f(Some("the executor answered HTTP 500"), Some(500)),
            Feedback::Answered { latency: ms }
        );
        assert_eq!(
            f(Some("the executor answered HTTP 422: locked"), Some(422)),
            Feedback::Answered { latency: ms }
        );
        assert_eq!(f(None, Some(200)), Feedback::Answered { latency: ms });
    }

    /// A receiver that takes `capacity` requests at once and throttles the rest, driven in
    /// rounds (each round sends `limit` requests, started after every earlier answer).
    fn simulate(max: u32, capacity: u32, rounds: usize) -> Vec<u32> {
        let mut a = Aimd::new(max);
        let mut seen = Vec::new();
        for r in 0..rounds as i64 {
            let sent = a.limit();
            seen.push(sent);
            for k in 0..sent {
                let fb = if k < capacity {
                    FAST
                } else {
                    Feedback::Throttled
                };
                a.observe(fb, t(r * 1_000), t(r * 1_000 + 500));
            }
        }
        seen
    }

    #[test]
    fn it_settles_around_what_the_receiver_takes_and_climbs_back_when_it_takes_more() {
        let limits = simulate(100, 20, 300);
        let tail = &limits[100..];
        assert!(tail.iter().all(|l| (10..=21).contains(l)), "{tail:?}");
        let mean = tail.iter().sum::<u32>() as f64 / tail.len() as f64;
        assert!((14.0..=21.0).contains(&mean), "mean {mean}");
        // Lifted: one more slot per round, all the way up.
        let mut a = Aimd::new(100);
        a.observe(Feedback::Throttled, t(0), t(1));
        a.observe(Feedback::Throttled, t(2), t(3));
        assert_eq!(a.limit(), 25);
        for r in 0..200 {
            for _ in 0..a.limit() {
                a.observe(FAST, t(10 + r), t(11 + r));
            }
        }
        assert_eq!(a.limit(), 100);
    }

    proptest! {
        #[test]
        fn the_limit_stays_within_one_and_max(
            max in 1u32..500,
            events in proptest::collection::vec((any::<bool>(), 0i64..1_000, 0u64..10_000), 0..300),
        ) {
            let mut a = Aimd::new(max);
            for (throttled, started, latency) in events {
                let fb = if throttled {
                    Feedback::Throttled
                } else {
                    Feedback::Answered { latency: Duration::from_millis(latency) }
                };
                a.observe(fb, t(started), t(started + 1));
                prop_assert!((1..=max).contains(&a.limit()));
            }
        }

        #[test]
        fn any_capacity_is_tracked_from_below(capacity in 1u32..200) {
            let limits = simulate(200, capacity, 400);
            let tail = &limits[200..];
            prop_assert!(tail.iter().all(|l| *l <= capacity + 1), "{:?}", tail);
            prop_assert!(tail.iter().all(|l| *l >= (capacity / 2).max(1)), "{:?}", tail);
        }
    }
}
