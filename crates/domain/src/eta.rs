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

/// The measured throughput of a backfill: settled items and seconds, both decayed
/// exponentially with time constant [`TAU_SECS`], so `items / seconds` is an exponentially
/// weighted moving average of the rate that follows a change within minutes. A silence longer
/// than [`GAP_SECS`] (the window closed, the backfill paused) is not counted as time: the
/// rate is of the backfill while it works, which is what the windows calendar multiplies.
/// Kept on the backfill row and moved by every settlement (on PostgreSQL in the settling
/// statement itself, which mirrors [`Throughput::observe`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Throughput {
    pub items: f64,
    pub seconds: f64,
    /// The last settlement measured; `None`: nothing yet.
    pub at: Option<Timestamp>,
}

/// Time constant of the decay: a settlement five minutes old weighs 1/e of a new one.
pub const TAU_SECS: f64 = 300.0;
/// A longer silence between settlements is not counted as working time.
pub const GAP_SECS: f64 = 120.0;
/// An ETA needs at least this many settled items measured…
pub const MIN_ITEMS: f64 = 20.0;
/// …over at least this many seconds of work.
pub const MIN_SECONDS: f64 = 30.0;

impl Throughput {
    /// After `settled` more items settled at `now`.
    pub fn observe(self, settled: u64, now: Timestamp) -> Throughput {
        let Some(at) = self.at else {
            return Throughput {
                items: settled as f64,
                seconds: 0.0,
                at: Some(now),
            };
        };
        let dt = (now.as_millisecond() - at.as_millisecond()).max(0) as f64 / 1000.0;
        let dt = if dt > GAP_SECS { 0.0 } else { dt };
        let decay = (-dt / TAU_SECS).exp();
        Throughput {
            items: self.items * decay + settled as f64,
            seconds: self.seconds * decay + dt,
            at: Some(now.max(at)),
        }
    }

    /// Items per second of work, once enough has been measured.
    pub fn per_second(&self) -> Option<f64> {
        (self.items >= MIN_ITEMS && self.seconds >= MIN_SECONDS).then(|| self.items / self.seconds)
    }
}

crate::backfill::string_enum!(
    /// Why an ETA is what it is: `measured` (remaining items at the measured throughput,
    /// through the windows), `finished` (nothing remains), `not_running` (a draft, paused or
    /// ended backfill has no finish to predict), `measuring` (too little measured yet: 20
    /// settled items over 30 s of work), `beyond_horizon` (the windows do not give enough open
    /// time within a year).
    #[schema(title = "EtaBasis")]
    EtaBasis {
        Measured => "measured",
        Finished => "finished",
        NotRunning => "not_running",
        Measuring => "measuring",
        BeyondHorizon => "beyond_horizon",
    }
);

/// A backfill's ETA: `running` says whether it is RUNNING, `remaining` how many items are
/// left (pending, in flight, and not yet enumerated).
pub fn estimate(
    schedule: &Schedule,
    now: Timestamp,
    running: bool,
    remaining: u64,
    throughput: &Throughput,
) -> (Option<Timestamp>, EtaBasis) {
    if !running {
        return (None, EtaBasis::NotRunning);
    }
    if remaining == 0 {
        return (None, EtaBasis::Finished);
    }
    let Some(rate) = throughput.per_second() else {
        return (None, EtaBasis::Measuring);
    };
    match finish_at(schedule, now, remaining, rate) {
        Some(t) => (Some(t), EtaBasis::Measured),
        None => (None, EtaBasis::BeyondHorizon),
    }
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

    #[test]
    fn the_measured_rate_follows_the_settlements_and_ignores_silences() {
        let t0 = ts("2026-12-01T10:00:00Z");
        let at = |s: i64| t0.checked_add(SignedDuration::from_secs(s)).unwrap();
        let mut m = Throughput::default();
        assert_eq!(m.per_second(), None);
        // 10 items a second for a minute.
        for s in 0..=60 {
            m = m.observe(10, at(s));
        }
        let r = m.per_second().unwrap();
        assert!((r - 10.0).abs() < 0.3, "{r}");
        // An hour of silence (the window closed) is not time worked…
        m = m.observe(10, at(3_660));
        let r = m.per_second().unwrap();
        assert!((r - 10.0).abs() < 0.5, "{r}");
        // …and a slower pace takes over within a few time constants.
        for s in 1..=1_500 {
            m = m.observe(2, at(3_660 + s));
        }
        let r = m.per_second().unwrap();
        assert!((r - 2.0).abs() < 0.2, "{r}");
    }

    #[test]
    fn an_estimate_says_why_it_has_no_eta() {
        let s = Schedule::new(&WorkflowDailyExecutionWindows::default(), "UTC").unwrap();
        let now = ts("2026-12-01T10:00:00Z");
        let mut m = Throughput::default();
        for k in 0..=40 {
            m = m.observe(1, now.checked_add(SignedDuration::from_secs(k)).unwrap());
        }
        assert_eq!(
            estimate(&s, now, false, 10, &m),
            (None, EtaBasis::NotRunning)
        );
        assert_eq!(estimate(&s, now, true, 0, &m), (None, EtaBasis::Finished));
        assert_eq!(
            estimate(&s, now, true, 10, &Throughput::default()),
            (None, EtaBasis::Measuring)
        );
        let (eta, basis) = estimate(&s, now, true, 100, &m);
        assert_eq!(basis, EtaBasis::Measured);
        let secs = eta.unwrap().duration_since(now).as_secs();
        assert!((95..=105).contains(&secs), "{secs}");
    }
}
