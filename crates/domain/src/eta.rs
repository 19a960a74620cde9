//! When a backfill will be done (issue 21). A backfill only works inside its windows, so
//! "remaining ÷ throughput" is the amount of *open* time still needed, not wall time: the ETA
//! walks that amount forward through the windows calendar in the backfill's time zone (time
//! outside the windows does not count; a window shortened or lengthened by a DST transition
//! counts as long as it really is), starting no earlier than a scheduled start (the
//! schedule's own: [`Schedule::starting`]). Pure: the caller measures the throughput and says
//! what "now" is.

use jiff::{SignedDuration, Timestamp};

use crate::windows::Schedule;

/// How far ahead an ETA is looked for; beyond it there is none ("more than a year").
pub const HORIZON: SignedDuration = SignedDuration::from_hours(366 * 24);

/// Open time is searched in slices of this many days (a slice is one pass over the calendar).
const SLICE_DAYS: i64 = 14;

/// When `remaining` items are done at `per_second` items per second of open time, from `now`.
/// `None` when there is no throughput, or when the windows do not give enough open time
/// within [`HORIZON`].
pub fn finish_at(
    schedule: &Schedule,
    now: Timestamp,
    remaining: u64,
    per_second: f64,
) -> Option<Timestamp> {
    if remaining == 0 {
        return Some(now);
    }
    if !(per_second.is_finite() && per_second > 0.0) {
        return None;
    }
    open_time_reached(schedule, now, remaining as f64 / per_second)
}

/// The instant at which `need` seconds of open time have passed since `from`.
fn open_time_reached(schedule: &Schedule, from: Timestamp, need: f64) -> Option<Timestamp> {
    let horizon = from.checked_add(HORIZON).ok()?;
    let mut left = need;
    let mut cursor = from;
    while cursor < horizon {
        let until = cursor
            .checked_add(SignedDuration::from_hours(24 * SLICE_DAYS))
            .ok()?
            .min(horizon);
        for (s, e) in schedule.open_between(cursor, until) {
            let s = s.max(cursor);
            let e = e.min(until);
            if e <= s {
                continue;
            }
            let open = e.duration_since(s).as_secs_f64();
            if left <= open {
                return s.checked_add(SignedDuration::from_secs_f64(left)).ok();
            }
            left -= open;
        }
        cursor = until;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::schedule_tests::{build, ZONES};
    use crate::windows::{WorkflowDailyExecutionWindows, WorkflowTimeWindow};
    use proptest::prelude::*;

    fn schedule(zone: &str, raw: &[(usize, u32, u32)]) -> Option<Schedule> {
        build(zone, raw).map(|(s, _)| s)
    }

    /// The reference: minute by minute from `from` (minute-aligned, as every window edge and
    /// DST transition of these zones is), each open minute doing 60 s of the work.
    fn simulate(s: &Schedule, from: Timestamp, need: f64) -> Timestamp {
        let mut u = from;
        let mut left = need;
        loop {
            if s.inside(u) {
                if left <= 60.0 {
                    return u + SignedDuration::from_secs_f64(left);
                }
                left -= 60.0;
            }
            u += SignedDuration::from_mins(1);
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn open_time_only_counts_inside_the_windows() {
        // Weekdays 22:00–02:00 in New York; 5 hours of work from Friday 21:00 local.
        let mut w = WorkflowDailyExecutionWindows::default();
        for d in 0..5 {
            w.day_mut(d).push(WorkflowTimeWindow {
                run_start_time: "22:00".into(),
                run_end_time: "02:00".into(),
            });
        }
        let s = Schedule::new(&w, "America/New_York").unwrap();
        let later = |start: Timestamp| s.clone().starting(Some(start));
        let friday_9pm = ts("2026-03-07T02:00:00Z"); // Friday 6 March, 21:00 EST
                                                     // Friday night gives 4 h (22:00–02:00); the rest waits for Monday 22:00 EDT (the
                                                     // clocks went forward on Sunday): 02:00Z + 1 h.
        assert_eq!(
            finish_at(&s, friday_9pm, 5 * 3600, 1.0),
            Some(ts("2026-03-10T03:00:00Z"))
        );
        // A scheduled start after the Friday window moves all of it to the next week.
        let saturday = ts("2026-03-07T12:00:00Z");
        assert_eq!(
            finish_at(&later(saturday), friday_9pm, 3600, 1.0),
            Some(ts("2026-03-10T03:00:00Z"))
        );
        // Nothing left: done now; no throughput: no ETA.
        assert_eq!(finish_at(&s, friday_9pm, 0, 0.0), Some(friday_9pm));
        assert_eq!(finish_at(&s, friday_9pm, 10, 0.0), None);
        assert_eq!(finish_at(&s, friday_9pm, 10, f64::NAN), None);
        // Always open: plain division.
        let open = Schedule::new(&WorkflowDailyExecutionWindows::default(), "UTC").unwrap();
        assert_eq!(
            finish_at(&open, friday_9pm, 1_000, 4.0),
            Some(friday_9pm + SignedDuration::from_secs(250))
        );
        // More than a year of work at this pace: no ETA.
        assert_eq!(finish_at(&s, friday_9pm, u64::MAX, 1.0), None);
        // An always-open schedule with a scheduled start opens at it.
        let open_later = open.clone().starting(Some(saturday));
        assert_eq!(
            finish_at(&open_later, friday_9pm, 60, 1.0),
            Some(saturday + SignedDuration::from_secs(60))
        );
        assert_eq!(open_later.next_window_start(friday_9pm), Some(saturday));
        assert!(!open_later.inside(friday_9pm) && open_later.inside(saturday));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_eta_is_within_a_minute_of_a_minute_by_minute_simulation(
            zone in prop::sample::select(ZONES.to_vec()),
            raw in prop::collection::vec((0usize..7, 0u32..1440, 30u32..900), 1..4),
            // Minute-aligned starts between 2024 and 2028.
            start_min in 28_401_120i64..30_504_960,
            later in prop::option::of(0i64..20_000),
            remaining in 1u64..5_000,
            // Items per open hour, so that the work needs up to about two days of open time.
            per_hour in 100.0f64..20_000.0,
        ) {
            let Some(s) = schedule(zone, &raw) else { return Ok(()) };
            let now = Timestamp::from_second(start_min * 60).unwrap();
            let s = s.starting(later.map(|m| now + SignedDuration::from_mins(m)));
            let per_second = per_hour / 3600.0;
            let eta = finish_at(&s, now, remaining, per_second).expect("an ETA");
            // The reference asks the schedule minute by minute, the scheduled start included.
            let want = simulate(&s, now, remaining as f64 / per_second);
            let off = eta.duration_since(want).abs();
            prop_assert!(
                off <= SignedDuration::from_mins(1),
                "zone {} windows {:?} from {} need {} s: eta {} simulation {}",
                zone, raw, now, remaining as f64 / per_second, eta, want
            );
        }
    }
}
