//! Daily execution windows (docs/api.md §3.4): the wire types and their validation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::known_timezone;
/// The time zone rule of a create lives with the other input rules.
pub use crate::validation::validate_timezone;
use crate::FieldError;

/// A wall-clock time of day, `HH:MM` or `HH:MM:SS` (what [`parse_time`] accepts), as the
/// window times of the OpenAPI document say (the same literal is in their `#[schema]`). Documented
/// as this pattern rather than Neo's `format: time`: JSON Schema's `time` is an RFC 3339
/// full-time with a UTC offset, which a wall-clock window time never has.
pub const TIME_OF_DAY_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$";

/// One daily window, wall-clock in the backfill's timezone. `run_end_time` is exclusive; an end
/// before the start wraps past midnight and belongs to the day on which it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(title = "WorkflowTimeWindow")]
#[serde(deny_unknown_fields)]
pub struct WorkflowTimeWindow {
    #[schema(
        pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        example = "22:00"
    )]
    pub run_start_time: String,
    #[schema(
        pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        example = "06:00"
    )]
    pub run_end_time: String,
}

/// Windows per weekday. A missing day has no window; `{}` (no day at all) means always open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(title = "WorkflowDailyExecutionWindows")]
#[serde(deny_unknown_fields)]
pub struct WorkflowDailyExecutionWindows {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub monday: Vec<WorkflowTimeWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub tuesday: Vec<WorkflowTimeWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub wednesday: Vec<WorkflowTimeWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub thursday: Vec<WorkflowTimeWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub friday: Vec<WorkflowTimeWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub saturday: Vec<WorkflowTimeWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub sunday: Vec<WorkflowTimeWindow>,
}

pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A validated window in seconds after local midnight of its start day; `end > start`, and a
/// wrapping window has `end > 86_400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayWindow {
    pub start_s: u32,
    pub end_s: u32,
}

impl WorkflowDailyExecutionWindows {
    /// True when no day has a window: how an always-open schedule (windows omitted at create)
    /// is stored and shown (`{}`).
    pub fn is_always_open(&self) -> bool {
        self.days().iter().all(|(_, w)| w.is_empty())
    }

    pub fn days(&self) -> [(&'static str, &Vec<WorkflowTimeWindow>); 7] {
        [
            ("monday", &self.monday),
            ("tuesday", &self.tuesday),
            ("wednesday", &self.wednesday),
            ("thursday", &self.thursday),
            ("friday", &self.friday),
            ("saturday", &self.saturday),
            ("sunday", &self.sunday),
        ]
    }

    /// The windows of one weekday, Monday = 0 (as [`Self::days`] orders them); 6 and above is
    /// Sunday.
    pub fn day_mut(&mut self, monday_zero: usize) -> &mut Vec<WorkflowTimeWindow> {
        match monday_zero {
            0 => &mut self.monday,
            1 => &mut self.tuesday,
            2 => &mut self.wednesday,
            3 => &mut self.thursday,
            4 => &mut self.friday,
            5 => &mut self.saturday,
            _ => &mut self.sunday,
        }
    }

    /// Validates every rule of docs/api.md §3.2 and returns the windows per weekday (Monday first) in
    /// seconds. `prefix` is the JSON path of this object in the request.
    pub fn validate(&self, prefix: &str) -> Result<[Vec<DayWindow>; 7], FieldError> {
        let mut out: [Vec<DayWindow>; 7] = Default::default();
        for (d, (day, windows)) in self.days().into_iter().enumerate() {
            for (i, w) in windows.iter().enumerate() {
                let path = format!("{prefix}.{day}[{i}]");
                let start = parse_time(&w.run_start_time)
                    .ok_or_else(|| bad_time(&path, "run_start_time", &w.run_start_time))?;
                let end = parse_time(&w.run_end_time)
                    .ok_or_else(|| bad_time(&path, "run_end_time", &w.run_end_time))?;
                if start == end {
                    return Err(FieldError::new(
                        format!("{path}.run_end_time"),
                        "run_end_time must differ from run_start_time (an empty window never opens)",
                    ));
                }
                let end = if end < start { end + 86_400 } else { end };
                let this = DayWindow {
                    start_s: start,
                    end_s: end,
                };
                if let Some(j) = out[d]
                    .iter()
                    .position(|o| o.start_s < this.end_s && this.start_s < o.end_s)
                {
                    return Err(FieldError::new(
                        path,
                        format!("overlaps {prefix}.{day}[{j}]; a day's windows must not overlap"),
                    ));
                }
                out[d].push(this);
            }
        }
        if out.iter().all(Vec::is_empty) {
            return Err(FieldError::new(
                prefix,
                "at least one day needs a window (omit daily_execution_windows for always open)",
            ));
        }
        Ok(out)
    }
}

fn bad_time(path: &str, member: &str, value: &str) -> FieldError {
    FieldError::new(
        format!("{path}.{member}"),
        format!("{value:?} is not a time of day as HH:MM or HH:MM:SS"),
    )
}

/// Parses `HH:MM` or `HH:MM:SS` (24-hour clock) into seconds after midnight.
pub fn parse_time(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    let two = |i: usize| -> Option<u32> {
        let (a, c) = (*b.get(i)?, *b.get(i + 1)?);
        (a.is_ascii_digit() && c.is_ascii_digit()).then(|| u32::from((a - b'0') * 10 + (c - b'0')))
    };
    let (h, m, sec) = match b.len() {
        5 if b[2] == b':' => (two(0)?, two(3)?, 0),
        8 if b[2] == b':' && b[5] == b':' => (two(0)?, two(3)?, two(6)?),
        _ => return None,
    };
    (h < 24 && m < 60 && sec < 60).then_some(h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str, e: &str) -> WorkflowTimeWindow {
        WorkflowTimeWindow {
            run_start_time: s.into(),
            run_end_time: e.into(),
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("00:00"), Some(0));
        assert_eq!(parse_time("22:30"), Some(81_000));
        assert_eq!(parse_time("23:59:59"), Some(86_399));
        for bad in [
            "24:00", "7:00", "12:60", "12:00:60", "12-00", "", "12:00:0", "ab:cd",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn validation_paths() {
        let mut d = WorkflowDailyExecutionWindows::default();
        assert_eq!(d.validate("dw").unwrap_err().field, "dw");
        d.monday = vec![w("22:00", "06:00"), w("23:00", "01:00")];
        let e = d.validate("dw").unwrap_err();
        assert_eq!(e.field, "dw.monday[1]");
        // Monday morning does not overlap Monday night's window (which ends Tuesday morning).
        d.monday = vec![w("22:00", "06:00"), w("05:00", "07:00")];
        assert!(d.validate("dw").is_ok());
        d.monday = vec![w("22:00", "06:00"), w("06:00", "07:00")];
        assert!(d.validate("dw").is_ok());
        d.monday = vec![w("22:00", "22:00")];
        assert_eq!(
            d.validate("dw").unwrap_err().field,
            "dw.monday[0].run_end_time"
        );
        d.monday = vec![w("25:00", "22:00")];
        assert_eq!(
            d.validate("dw").unwrap_err().field,
            "dw.monday[0].run_start_time"
        );
        d.monday = vec![];
        d.sunday = vec![w("01:00", "02:00"), w("01:30", "nope")];
        assert_eq!(
            d.validate("dw").unwrap_err().field,
            "dw.sunday[1].run_end_time"
        );
        assert!(WorkflowDailyExecutionWindows::default().is_always_open());
    }
}

// ---- evaluation --------------------------------------------------------------------------

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// A validated schedule in a time zone, evaluated on instants.
///
/// Each window occurrence (a window on a date of its weekday) is the interval of instants
/// `[S, E)`: `S` is the first instant whose wall-clock time reaches the start (in a DST gap: the
/// end of the gap; in a fold: the first pass), `E` is the instant after which the wall clock
/// never again shows a time before the end (in a gap: the end of the gap; in a fold: the second
/// pass). So a window spanning a spring-forward gap is shorter, one spanning a fall-back fold is
/// longer by the repeated hour, a start in a gap opens at the first valid instant after it, and
/// no occurrence opens twice.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: TimeZone,
    days: [Vec<DayWindow>; 7],
    always_open: bool,
    /// Nothing is open before this instant (a backfill's scheduled start).
    start_at: Option<Timestamp>,
}

fn weekday_index(w: Weekday) -> usize {
    w.to_monday_zero_offset() as usize
}

impl Schedule {
    /// Builds the schedule of stored windows (already validated at create). `{}` is always open.
    pub fn new(
        windows: &WorkflowDailyExecutionWindows,
        timezone: &str,
    ) -> Result<Self, FieldError> {
        let tz = known_timezone(timezone, "timezone")?;
        if windows.is_always_open() {
            return Ok(Self {
                tz,
                days: Default::default(),
                always_open: true,
                start_at: None,
            });
        }
        let days = windows.validate("daily_execution_windows")?;
        Ok(Self {
            tz,
            days,
            always_open: false,
            start_at: None,
        })
    }

    /// The schedule closed before `start_at` (a backfill's scheduled start, issue 21): every
    /// question asked of it — inside, the next opening, the open time ahead — then accounts
    /// for the start, so the orchestrator, the API and the ETA agree on it.
    pub fn starting(mut self, start_at: Option<Timestamp>) -> Self {
        self.start_at = start_at;
        self
    }

    /// Whether a scheduled start after `t` keeps the schedule closed at `t`.
    fn not_started(&self, t: Timestamp) -> Option<Timestamp> {
        self.start_at.filter(|s| *s > t)
    }

    pub fn is_always_open(&self) -> bool {
        self.always_open
    }

    /// The first instant whose wall clock reaches `c`.
    fn start_instant(&self, c: DateTime) -> Timestamp {
        let amb = self.tz.to_ambiguous_timestamp(c);
        match amb.offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(c).expect("in range"),
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(c).expect("in range"),
            AmbiguousOffset::Gap { after, .. } => self.gap_end(c, after),
        }
    }

    /// The instant from which the wall clock never shows a time before `c` again.
    fn end_instant(&self, c: DateTime) -> Timestamp {
        let amb = self.tz.to_ambiguous_timestamp(c);
        match amb.offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(c).expect("in range"),
            AmbiguousOffset::Fold { after, .. } => after.to_timestamp(c).expect("in range"),
            AmbiguousOffset::Gap { after, .. } => self.gap_end(c, after),
        }
    }

    /// The transition that ends the gap containing civil time `c`.
    fn gap_end(&self, c: DateTime, after: jiff::tz::Offset) -> Timestamp {
        // `c` read with the later offset is an instant before the transition.
        let probe = after.to_timestamp(c).expect("in range");
        self.tz
            .following(probe)
            .next()
            .map(|t| t.timestamp())
            .expect("a gap ends with a transition")
    }

    fn occurrences(&self, date: Date) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let midnight = date.to_datetime(jiff::civil::Time::midnight());
        self.days[weekday_index(date.weekday())]
            .iter()
            .map(move |w| {
                let s = midnight + SignedDuration::from_secs(i64::from(w.start_s));
                let e = midnight + SignedDuration::from_secs(i64::from(w.end_s));
                (self.start_instant(s), self.end_instant(e))
            })
    }

    /// Whether dispatch is allowed at `t`.
    pub fn inside(&self, t: Timestamp) -> bool {
        self.not_started(t).is_none() && self.in_windows(t)
    }

    /// Whether `t` is inside a window, the scheduled start aside.
    fn in_windows(&self, t: Timestamp) -> bool {
        if self.always_open {
            return true;
        }
        let local = t.to_zoned(self.tz.clone()).date();
        (-2..=1).any(|k| {
            let d = local + jiff::Span::new().days(k);
            self.occurrences(d).any(|(s, e)| s <= t && t < e)
        })
    }

    /// The open stretches of the schedule that end after `from`, in order and merged (an
    /// overnight window running into the next day's first one is one stretch), those starting
    /// before `until`. An always-open schedule is one stretch from `from` to `until`.
    pub fn open_between(&self, from: Timestamp, until: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let from = self.not_started(from).unwrap_or(from);
        if from >= until {
            return Vec::new();
        }
        if self.always_open {
            return vec![(from, until)];
        }
        let first = from.to_zoned(self.tz.clone()).date();
        let last = until.to_zoned(self.tz.clone()).date();
        let mut all: Vec<(Timestamp, Timestamp)> = Vec::new();
        let mut d = first - jiff::Span::new().days(2);
        while d <= last {
            all.extend(self.occurrences(d).filter(|(s, e)| s < e));
            d = d.tomorrow().expect("in range");
        }
        all.sort();
        let mut out: Vec<(Timestamp, Timestamp)> = Vec::new();
        for (s, e) in all {
            match out.last_mut() {
                Some((_, end)) if s <= *end => *end = (*end).max(e),
                _ => out.push((s, e)),
            }
        }
        out.retain(|(s, e)| *e > from && *s < until);
        if let Some((s, _)) = out.first_mut() {
            *s = (*s).max(from);
        }
        out
    }

    /// The first instant after `t` at which a window opens (`None` when always open and
    /// started).
    pub fn next_window_start(&self, t: Timestamp) -> Option<Timestamp> {
        match self.not_started(t) {
            Some(start) if self.in_windows(start) => Some(start),
            Some(start) => self.next_opening(start),
            None => self.next_opening(t),
        }
    }

    /// The first window opening after `t`, the scheduled start aside.
    fn next_opening(&self, t: Timestamp) -> Option<Timestamp> {
        if self.always_open {
            return None;
        }
        let local = t.to_zoned(self.tz.clone()).date();
        // Every weekday recurs within 7 days, but an occurrence that falls in a DST gap
        // collapses (start ≥ end) and the next one is 7 days later: 16 covers that, wrap-arounds
        // and far offsets.
        (-1..=16)
            .flat_map(|k| {
                let d = local + jiff::Span::new().days(k);
                self.occurrences(d).collect::<Vec<_>>()
            })
            .filter(|(s, e)| s < e && *s > t)
            .map(|(s, _)| s)
            .min()
    }
}

#[cfg(test)]
pub(crate) mod schedule_tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Found by the `windows` fuzz target: a weekly window that falls in the spring-forward
    /// gap collapses that week, so the next start is two weeks away, not "never".
    #[test]
    fn a_window_lost_to_a_dst_gap_opens_the_week_after() {
        // St. John's springs forward on Sunday 2027-03-14 at 02:00 (→ 03:00, -03:30 → -02:30).
        let s = sched(&[("sunday", "02:07:57", "02:50:39")], "America/St_Johns");
        let now = ts("2027-03-07T10:00:00Z"); // the Sunday before, after its window
        assert_eq!(
            s.next_window_start(now),
            Some(ts("2027-03-21T04:37:57Z")),
            "02:07:57 -02:30 on the Sunday after the gap"
        );
    }

    fn sched(days: &[(&str, &str, &str)], tz: &str) -> Schedule {
        let mut w = WorkflowDailyExecutionWindows::default();
        for (day, s, e) in days {
            let win = WorkflowTimeWindow {
                run_start_time: (*s).into(),
                run_end_time: (*e).into(),
            };
            match *day {
                "monday" => w.monday.push(win),
                "tuesday" => w.tuesday.push(win),
                "wednesday" => w.wednesday.push(win),
                "thursday" => w.thursday.push(win),
                "friday" => w.friday.push(win),
                "saturday" => w.saturday.push(win),
                _ => w.sunday.push(win),
            }
        }
        Schedule::new(&w, tz).unwrap()
    }

    #[test]
    fn overnight_window_belongs_to_its_start_day() {
        // Monday 22:00 → 06:00 London, in winter (UTC+0). 2026-11-30 is a Monday.
        let s = sched(&[("monday", "22:00", "06:00")], "Europe/London");
        assert!(!s.inside(ts("2026-11-30T21:59:59Z")));
        assert!(s.inside(ts("2026-11-30T22:00:00Z")));
        assert!(s.inside(ts("2026-12-01T05:59:59Z")));
        assert!(!s.inside(ts("2026-12-01T06:00:00Z")), "end is exclusive");
        assert!(
            !s.inside(ts("2026-12-01T23:00:00Z")),
            "Tuesday night has no window"
        );
        assert_eq!(
            s.next_window_start(ts("2026-12-01T06:00:00Z")),
            Some(ts("2026-12-07T22:00:00Z"))
        );
        // Sunday night → Monday morning is not Monday's window.
        assert!(!s.inside(ts("2026-11-30T01:00:00Z")));
    }

    #[test]
    fn spring_forward_gap_shortens_and_a_start_in_the_gap_opens_after_it() {
        // 2026-03-08: New York jumps 02:00 → 03:00 (EST → EDT). A Sunday.
        let s = sched(&[("sunday", "01:00", "04:00")], "America/New_York");
        assert!(s.inside(ts("2026-03-08T06:00:00Z"))); // 01:00 EST
        assert!(s.inside(ts("2026-03-08T06:59:59Z"))); // 01:59:59 EST
        assert!(s.inside(ts("2026-03-08T07:00:00Z"))); // 03:00 EDT
        assert!(!s.inside(ts("2026-03-08T08:00:00Z"))); // 04:00 EDT: 2 real hours
        let g = sched(&[("sunday", "02:30", "05:00")], "America/New_York");
        assert!(!g.inside(ts("2026-03-08T06:59:59Z")));
        assert!(
            g.inside(ts("2026-03-08T07:00:00Z")),
            "opens at the first valid instant after the gap"
        );
        assert_eq!(
            g.next_window_start(ts("2026-03-08T00:00:00Z")),
            Some(ts("2026-03-08T07:00:00Z"))
        );
        // A window entirely inside the gap never opens that day, and is not reported as next.
        let e = sched(&[("sunday", "02:10", "02:50")], "America/New_York");
        assert!(!e.inside(ts("2026-03-08T07:00:00Z")));
        assert_eq!(
            e.next_window_start(ts("2026-03-08T00:00:00Z")),
            Some(ts("2026-03-15T06:10:00Z"))
        );
    }

    #[test]
    fn fall_back_fold_lengthens_and_never_opens_twice() {
        // 2026-11-01: New York repeats 01:00–02:00 (EDT → EST). A Sunday.
        let s = sched(&[("sunday", "00:30", "01:30")], "America/New_York");
        assert!(s.inside(ts("2026-11-01T04:30:00Z"))); // 00:30 EDT
        assert!(s.inside(ts("2026-11-01T05:59:00Z"))); // 01:59 EDT (first pass)
        assert!(s.inside(ts("2026-11-01T06:29:59Z"))); // 01:29:59 EST (second pass)
        assert!(!s.inside(ts("2026-11-01T06:30:00Z"))); // 01:30 EST
                                                        // Window inside the fold: opens at the first 01:10 and stays open until the second 01:20.
        let f = sched(&[("sunday", "01:10", "01:20")], "America/New_York");
        assert!(f.inside(ts("2026-11-01T05:10:00Z")));
        assert!(f.inside(ts("2026-11-01T05:30:00Z")));
        assert!(f.inside(ts("2026-11-01T06:19:59Z")));
        assert!(!f.inside(ts("2026-11-01T06:20:00Z")));
        assert_eq!(
            f.next_window_start(ts("2026-11-01T05:30:00Z")),
            Some(ts("2026-11-08T06:10:00Z"))
        );
    }

    #[test]
    fn always_open() {
        let s = Schedule::new(&WorkflowDailyExecutionWindows::default(), "UTC").unwrap();
        assert!(s.inside(ts("2026-01-01T00:00:00Z")));
        assert_eq!(s.next_window_start(ts("2026-01-01T00:00:00Z")), None);
    }

    // ---- brute-force reference: minute-by-minute civil time --------------------------------

    /// DST in both hemispheres, a 30-minute shift (Lord Howe), a skipped day (Apia's
    /// history), a 2-hour shift (Troll): also the ETA tests' zones.
    pub(crate) const ZONES: [&str; 6] = [
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "Pacific/Apia",
        "America/Santiago",
        "Antarctica/Troll",
    ];

    fn civil(tz: &TimeZone, t: Timestamp) -> DateTime {
        t.to_zoned(tz.clone()).datetime()
    }

    /// `S` by scanning minutes forward: the first minute whose wall clock reaches `c`.
    fn ref_start(tz: &TimeZone, c: DateTime) -> Timestamp {
        let guess = c.to_zoned(TimeZone::UTC).unwrap().timestamp();
        let mut u = guess - SignedDuration::from_hours(16);
        while civil(tz, u) < c {
            u += SignedDuration::from_mins(1);
        }
        u
    }

    /// `E` by scanning minutes backward: one minute after the last minute whose wall clock is
    /// before `c`.
    fn ref_end(tz: &TimeZone, c: DateTime) -> Timestamp {
        let guess = c.to_zoned(TimeZone::UTC).unwrap().timestamp();
        let mut u = guess + SignedDuration::from_hours(16);
        while civil(tz, u - SignedDuration::from_mins(1)) >= c {
            u -= SignedDuration::from_mins(1);
        }
        u
    }

    fn ref_inside(tz: &TimeZone, days: &[Vec<(u32, u32)>; 7], t: Timestamp) -> bool {
        let local = civil(tz, t).date();
        (-2..=1).any(|k| {
            let d = local + jiff::Span::new().days(k);
            let midnight = d.to_datetime(jiff::civil::Time::midnight());
            days[d.weekday().to_monday_zero_offset() as usize]
                .iter()
                .any(|(s, e)| {
                    let sc = midnight + SignedDuration::from_secs(i64::from(*s));
                    let ec = midnight + SignedDuration::from_secs(i64::from(*e));
                    ref_start(tz, sc) <= t && t < ref_end(tz, ec)
                })
        })
    }

    pub(crate) fn hhmm(m: u32) -> String {
        format!("{:02}:{:02}", m / 60, m % 60)
    }

    /// Up to two non-overlapping minute-aligned windows on random days (some overnight).
    fn arb_windows() -> impl Strategy<Value = Vec<(usize, u32, u32)>> {
        prop::collection::vec((0usize..7, 0u32..1440, 1u32..1000), 1..4)
    }

    pub(crate) type RawDays = [Vec<(u32, u32)>; 7];

    /// The schedule of `raw` windows `(weekday, start minute, length in minutes)` in `zone`,
    /// with its windows as minutes; `None` when they do not validate (overlaps).
    pub(crate) fn build(zone: &str, raw: &[(usize, u32, u32)]) -> Option<(Schedule, RawDays)> {
        let mut w = WorkflowDailyExecutionWindows::default();
        for (day, start, len) in raw {
            let end = (start + len) % 1440;
            let win = WorkflowTimeWindow {
                run_start_time: hhmm(*start),
                run_end_time: hhmm(end),
            };
            w.day_mut(*day).push(win);
        }
        let days = w.validate("w").ok()?;
        let raw_days = days
            .clone()
            .map(|v| v.iter().map(|d| (d.start_s, d.end_s)).collect());
        Some((Schedule::new(&w, zone).ok()?, raw_days))
    }

    /// Instants between 2024 and 2028, biased towards each zone's DST transitions.
    fn arb_instant() -> impl Strategy<Value = Timestamp> {
        (1_704_067_200i64..1_830_297_600).prop_map(|s| Timestamp::from_second(s).unwrap())
    }

    fn near_transition(zone: &str, t: Timestamp, jitter: i64) -> Timestamp {
        let tz = TimeZone::get(zone).unwrap();
        match tz.following(t).next() {
            Some(tr) => tr.timestamp() + SignedDuration::from_secs(jitter),
            None => t,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn inside_agrees_with_the_civil_time_reference(
            zone in prop::sample::select(ZONES.to_vec()),
            raw in arb_windows(),
            t in arb_instant(),
            jitter in -30_000i64..30_000,
            near in any::<bool>(),
        ) {
            let Some((s, days)) = build(zone, &raw) else { return Ok(()) };
            let tz = TimeZone::get(zone).unwrap();
            let t = if near { near_transition(zone, t, jitter) } else { t };
            prop_assert_eq!(s.inside(t), ref_inside(&tz, &days, t), "zone {} windows {:?} at {}", zone, raw, t);
        }

        #[test]
        fn next_window_start_is_the_first_opening(
            zone in prop::sample::select(ZONES.to_vec()),
            raw in arb_windows(),
            t in arb_instant(),
            jitter in -30_000i64..30_000,
            near in any::<bool>(),
        ) {
            let Some((s, _)) = build(zone, &raw) else { return Ok(()) };
            let t = if near { near_transition(zone, t, jitter) } else { t };
            let n = s.next_window_start(t).expect("a schedule with windows opens within 8 days");
            prop_assert!(n > t);
            prop_assert!(s.inside(n), "inside at next_window_start {}", n);
            prop_assert!(!s.inside(n - SignedDuration::from_secs(1)) || n - SignedDuration::from_secs(1) <= t || s.inside(t),
                "already open just before {}", n);
            if !s.inside(t) {
                // Closed at every minute between t and n.
                let mut u = t;
                while u < n {
                    prop_assert!(!s.inside(u), "open at {} before next_window_start {}", u, n);
                    u += SignedDuration::from_mins(1);
                }
                prop_assert!(!s.inside(n - SignedDuration::from_secs(1)));
            }
        }
    }
}
