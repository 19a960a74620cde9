//! Bodies of the fuzz targets over this crate (`fuzz/fuzz_targets/`). The same functions replay the
//! committed corpora in the normal test suite (`crates/neo-backfill/tests/fuzz_corpus.rs`), so the
//! target and the replay cannot drift. Each takes the fuzzer's raw input and panics when an
//! invariant breaks.

use std::sync::OnceLock;

use arbitrary::Unstructured;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Span, Timestamp};
use serde::Deserialize;

use crate::windows::{
    parse_time, Schedule, WorkflowDailyExecutionWindows, WorkflowTimeWindow, WEEKDAYS,
};

/// The instants the fuzzer picks "now" from: 1800-01-01 to 3000-01-01, wide around any real
/// clock and inside the range where every calendar computation of a schedule is defined.
const NOW_MIN: i64 = -5_364_662_400;
const NOW_MAX: i64 = 32_503_680_000;

/// Zones with unusual transitions (half-hour DST, skipped days, double DST, negative DST),
/// picked more often than the rest of the database.
const ODD_ZONES: &[&str] = &[
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "America/Santiago",
    "Antarctica/Troll",
    "Europe/Dublin",
    "Africa/Casablanca",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/St_Johns",
    "UTC",
];

fn zone_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut v: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .collect();
        v.sort();
        v
    })
}

/// The JSON form of a `windows` input (first byte even): what an API client could send.
#[derive(Deserialize)]
struct JsonInput {
    timezone: String,
    #[serde(default)]
    now: i64,
    #[serde(default)]
    daily_execution_windows: WorkflowDailyExecutionWindows,
    #[serde(default)]
    probe: u32,
}

/// `windows`: execution windows and time zones (docs/api.md §3.4). The first byte selects the input
/// form: even, a JSON document `{"timezone", "now"?, "daily_execution_windows"?, "probe"?}`;
/// odd, a compact binary description (zone, instant, windows) that reaches the DST logic of
/// every zone in the database.
pub fn windows(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let input = if mode % 2 == 0 {
        let Ok(j) = serde_json::from_slice::<JsonInput>(rest) else {
            return;
        };
        Some((
            j.daily_execution_windows,
            j.timezone,
            j.now.clamp(NOW_MIN, NOW_MAX),
            j.probe,
        ))
    } else {
        binary_input(&mut Unstructured::new(rest)).ok()
    };
    let Some((windows, tz, now, probe)) = input else {
        return;
    };
    check_times(&windows);
    check_schedule(
        &windows,
        &tz,
        Timestamp::from_second(now).expect("in range"),
        probe,
    );
}

fn binary_input(
    u: &mut Unstructured<'_>,
) -> arbitrary::Result<(WorkflowDailyExecutionWindows, String, i64, u32)> {
    let tz = if u.arbitrary::<bool>()? {
        (*u.choose(ODD_ZONES)?).to_owned()
    } else {
        u.choose(zone_names())?.clone()
    };
    let now = u.int_in_range(NOW_MIN..=NOW_MAX)?;
    let mut w = WorkflowDailyExecutionWindows::default();
    for _ in 0..u.int_in_range(0..=4)? {
        let day = u.choose_index(7)?;
        let seconds = u.arbitrary::<bool>()?;
        let mut time = || -> arbitrary::Result<String> {
            let s: u32 = u.int_in_range(0..=86_399)?;
            Ok(if seconds {
                format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            } else {
                format!("{:02}:{:02}", s / 3600, s / 60 % 60)
            })
        };
        let win = WorkflowTimeWindow {
            run_start_time: time()?,
            run_end_time: time()?,
        };
        w.day_mut(day).push(win);
    }
    Ok((w, tz, now, u.arbitrary()?))
}

/// `HH:MM[:SS]` parsing: whatever parses is a time of day and formats back to itself.
fn check_times(w: &WorkflowDailyExecutionWindows) {
    for (_, day) in w.days() {
        for win in day {
            for s in [&win.run_start_time, &win.run_end_time] {
                let Some(secs) = parse_time(s) else { continue };
                assert!(secs < 86_400, "{s:?} parsed to {secs} s");
                let (h, m, sec) = (secs / 3600, secs / 60 % 60, secs % 60);
                let back = if s.len() == 5 {
                    format!("{h:02}:{m:02}")
                } else {
                    format!("{h:02}:{m:02}:{sec:02}")
                };
                assert_eq!(&back, s, "parse_time({s:?}) = {secs} does not format back");
            }
        }
    }
}

fn check_schedule(w: &WorkflowDailyExecutionWindows, tz_name: &str, now: Timestamp, probe: u32) {
    let Ok(schedule) = Schedule::new(w, tz_name) else {
        return;
    };
    if schedule.is_always_open() {
        assert!(w.is_always_open());
        assert!(schedule.inside(now), "an always-open schedule is closed");
        assert_eq!(schedule.next_window_start(now), None);
        return;
    }
    let days = w
        .validate("daily_execution_windows")
        .expect("Schedule::new validated");
    let open = schedule.inside(now);
    let next = schedule.next_window_start(now);
    let Some(next) = next else {
        panic!("{tz_name} at {now}: a schedule with windows never opens again: {w:?}");
    };
    assert!(
        next > now,
        "{tz_name}: next window start {next} is not after now {now}"
    );
    assert!(
        next.duration_since(now) <= SignedDuration::from_hours(24 * 15),
        "{tz_name}: next window start {next} is more than 15 days after {now} (a week, or two when a DST gap swallows one occurrence)"
    );
    assert!(
        schedule.inside(next),
        "{tz_name}: closed at {next}, the instant its next window opens"
    );
    if !open {
        // Nothing opens between now and the next start.
        let gap = next.duration_since(now).as_secs();
        for k in 1..4 {
            let t = now + SignedDuration::from_secs(gap * k / 4);
            if t > now && t < next {
                assert!(
                    !schedule.inside(t),
                    "{tz_name}: closed at {now}, next start {next}, but open at {t}"
                );
            }
        }
    }
    // A wall-clock time inside a window, on an unambiguous instant, is open.
    let tz = TimeZone::get(tz_name).expect("validated");
    let today = now.to_zoned(tz.clone()).date();
    let windows: Vec<(usize, u32, u32)> = days
        .iter()
        .enumerate()
        .flat_map(|(d, ws)| ws.iter().map(move |w| (d, w.start_s, w.end_s)))
        .collect();
    let (day, start_s, end_s) = windows[probe as usize % windows.len()];
    let Some(date) = (0..7)
        .filter_map(|k| today.checked_add(Span::new().days(k)).ok())
        .find(|d: &Date| d.weekday().to_monday_zero_offset() as usize == day)
    else {
        return;
    };
    let offset = probe % (end_s - start_s);
    let civil: DateTime =
        date.to_datetime(Time::midnight()) + SignedDuration::from_secs(i64::from(start_s + offset));
    if let AmbiguousOffset::Unambiguous { offset: o } = tz.to_ambiguous_timestamp(civil).offset() {
        let t = o.to_timestamp(civil).expect("in range");
        assert!(
            schedule.inside(t),
            "{tz_name}: {civil} ({t}) is inside {}'s window {start_s}..{end_s} s: reported closed",
            WEEKDAYS[day]
        );
    }
}
