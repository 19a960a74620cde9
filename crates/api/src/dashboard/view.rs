//! What the dashboard shows, computed from store rows: progress segments, the
//! plain-language window summary, the throughput chart (the ETA is the domain's, worded in
//! `control.rs`). Pure functions of their inputs and `now`, unit-tested here.

use jiff::{SignedDuration, Timestamp};
use neo_domain::windows::{parse_time, Schedule, WorkflowDailyExecutionWindows};
use neo_store::Backfill;

/// `3 h 12 min`, `45 min`, `2 d 3 h`, `less than a minute`.
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => "less than a minute".to_owned(),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// `2026-11-28 21:07 UTC`.
pub fn short_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// `5 min ago`, `in 3 h`.
pub fn relative(t: Timestamp, now: Timestamp) -> String {
    let d = now.duration_since(t);
    if d >= SignedDuration::ZERO {
        match human_duration(d).as_str() {
            "less than a minute" => "just now".to_owned(),
            s => format!("{s} ago"),
        }
    } else {
        format!("in {}", human_duration(-d))
    }
}

/// `bf_01a242ee…a129a9`: an id short enough for a table cell, still telling ids apart at a
/// glance (ids are time-ordered: the head is the time, the tail the random part).
pub fn short_id(id: &str) -> String {
    let n = id.chars().count();
    if n <= 16 {
        return id.to_owned();
    }
    let head: String = id.chars().take(9).collect();
    let tail: String = id.chars().skip(n - 6).collect();
    format!("{head}…{tail}")
}

/// What a backfill is called on every page: its own name, else its workflow's.
pub fn display_name(b: &Backfill) -> String {
    b.name.clone().unwrap_or_else(|| workflow_name(b))
}

/// The name of a backfill's workflow, or what is left of it once deleted.
pub fn workflow_name(b: &Backfill) -> String {
    b.target_workflow_name
        .clone()
        .unwrap_or_else(|| format!("workflow {} (deleted)", b.target_workflow_id))
}

/// One coloured segment of a progress bar, in a 0–1000 wide SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub class: &'static str,
    pub label: &'static str,
    pub count: i64,
    pub x: f64,
    pub width: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub segments: Vec<Segment>,
    /// Every segment, including empty ones, for the legend.
    pub legend: Vec<Segment>,
    pub total: i64,
    /// Settled (succeeded, failed, skipped) out of total, in percent.
    pub percent: i64,
    pub aria: String,
}

/// The entities a backfill is known to cover: the snapshot, or the estimate while the
/// snapshot is still being read from the PSA.
pub fn total(b: &Backfill) -> i64 {
    b.total_items.max(b.total_estimated.unwrap_or(0))
}

pub fn progress(b: &Backfill) -> Progress {
    let total = total(b);
    let known = b.succeeded_count
        + b.failed_count
        + b.skipped_count
        + b.in_flight_count
        + b.pending_count
        + b.cancelled_count;
    // Entities not enumerated yet count as pending.
    let pending = b.pending_count + (total - known).max(0);
    let parts: [(&'static str, &'static str, i64); 6] = [
        ("succeeded", "succeeded", b.succeeded_count),
        ("failed", "failed", b.failed_count),
        ("skipped", "skipped", b.skipped_count),
        ("in_flight", "in flight", b.in_flight_count),
        ("cancelled", "cancelled", b.cancelled_count),
        ("pending", "pending", pending),
    ];
    let denom = parts.iter().map(|p| p.2).sum::<i64>().max(1) as f64;
    let mut x = 0.0;
    let mut legend = Vec::new();
    for (class, label, count) in parts {
        let width = count as f64 * 1000.0 / denom;
        legend.push(Segment {
            class,
            label,
            count,
            x,
            width,
        });
        x += width;
    }
    let settled = b.succeeded_count + b.failed_count + b.skipped_count;
    let percent = if total > 0 { settled * 100 / total } else { 0 };
    let aria = legend
        .iter()
        .map(|s| format!("{} {}", s.count, s.label))
        .collect::<Vec<_>>()
        .join(", ");
    Progress {
        segments: legend.iter().filter(|s| s.count > 0).cloned().collect(),
        legend: legend
            .into_iter()
            .filter(|s| s.count > 0 || s.class != "cancelled")
            .collect(),
        total,
        percent,
        aria,
    }
}

const DAY_SHORT: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn hhmm(s: &str) -> String {
    // Stored times are validated; show HH:MM (and seconds only when set).
    match s.len() {
        8 if s.ends_with(":00") => s[..5].to_owned(),
        _ => s.to_owned(),
    }
}

fn day_set_name(days: &[usize], night: bool) -> String {
    let named = match days {
        [0, 1, 2, 3, 4] => Some(if night { "Weeknights" } else { "Weekdays" }),
        [5, 6] => Some(if night { "Weekend nights" } else { "Weekends" }),
        [0, 1, 2, 3, 4, 5, 6] => Some(if night { "Every night" } else { "Every day" }),
        _ => None,
    };
    if let Some(n) = named {
        return n.to_owned();
    }
    // Runs of consecutive days: Mon–Wed, Fri.
    let mut parts = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let mut j = i;
        while j + 1 < days.len() && days[j + 1] == days[j] + 1 {
            j += 1;
        }
        parts.push(match j - i {
            0 => DAY_SHORT[days[i]].to_owned(),
            1 => format!("{}, {}", DAY_SHORT[days[i]], DAY_SHORT[days[j]]),
            _ => format!("{}–{}", DAY_SHORT[days[i]], DAY_SHORT[days[j]]),
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// "Weeknights 22:00 → 06:00" (without the time zone and next window).
pub fn windows_text(w: &WorkflowDailyExecutionWindows) -> String {
    if w.is_always_open() {
        return "Always open".into();
    }
    // Group the days that have the same windows, in weekday order of their first day.
    // (weekdays, their windows as (start, end)).
    type Group = (Vec<usize>, Vec<(String, String)>);
    let mut groups: Vec<Group> = Vec::new();
    for (d, (_, wins)) in w.days().into_iter().enumerate() {
        if wins.is_empty() {
            continue;
        }
        let key: Vec<(String, String)> = wins
            .iter()
            .map(|x| (hhmm(&x.run_start_time), hhmm(&x.run_end_time)))
            .collect();
        match groups.iter_mut().find(|g| g.1 == key) {
            Some(g) => g.0.push(d),
            None => groups.push((vec![d], key)),
        }
    }
    groups
        .iter()
        .map(|(days, wins)| {
            // A night schedule: every window wraps past midnight or starts in the evening.
            let night = wins.iter().all(|(s, e)| {
                let (s, e) = (parse_time(s).unwrap_or(0), parse_time(e).unwrap_or(0));
                e < s || s >= 18 * 3600
            });
            let times = wins
                .iter()
                .map(|(s, e)| format!("{s} → {e}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("{} {}", day_set_name(days, night), times)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The full plain-language summary: "Weeknights 22:00 → 06:00 Europe/London; next window
/// opens in 3 h 12 min". `Err` carries the validation message of bad windows.
pub fn windows_summary(
    w: &WorkflowDailyExecutionWindows,
    tz: &str,
    now: Timestamp,
) -> Result<String, String> {
    let schedule = Schedule::new(w, tz).map_err(|e| e.message)?;
    let text = windows_text(w);
    if schedule.is_always_open() {
        return Ok(format!("{text} ({tz}): dispatches whenever it runs"));
    }
    let when = if schedule.inside(now) {
        "a window is open now".to_owned()
    } else {
        match schedule.next_window_start(now) {
            Some(t) => format!(
                "next window opens in {}",
                human_duration(t.duration_since(now))
            ),
            None => "no window ever opens".to_owned(),
        }
    };
    Ok(format!("{text} {tz}; {when}"))
}

/// One minute of the throughput chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub width: f64,
    pub succeeded: i64,
    pub failed: i64,
    /// Top and height of the succeeded part (the failed part sits on the baseline).
    pub s_y: f64,
    pub s_h: f64,
    pub f_y: f64,
    pub f_h: f64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub bars: Vec<Bar>,
    pub max: i64,
    pub start_label: String,
    pub end_label: String,
    pub total_succeeded: i64,
    pub total_failed: i64,
    pub minutes: usize,
}

pub const CHART_W: f64 = 600.0;
pub const CHART_H: f64 = 160.0;
/// Most minutes shown.
pub const CHART_MINUTES: i64 = 30;
/// Fewest minutes shown (a run of one minute is one bar among ten).
pub const CHART_MIN_MINUTES: i64 = 10;

/// Executions per minute (succeeded vs failed) over the last minutes up to `end`, from the
/// finish instants of the backfill's final executions; minutes labelled in the zone `tz`.
pub fn throughput(finished: &[(Timestamp, bool)], end: Timestamp, tz: &str) -> Chart {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    let end_min = end.as_second().div_euclid(60);
    let first = finished
        .iter()
        .map(|(t, _)| t.as_second().div_euclid(60))
        .min()
        .unwrap_or(end_min);
    // At least the last 10 minutes, at most the last 30, from the first execution.
    let start_min = first
        .max(end_min - CHART_MINUTES + 1)
        .min(end_min - CHART_MIN_MINUTES + 1);
    let n = (end_min - start_min + 1) as usize;
    let mut counts = vec![(0i64, 0i64); n];
    for (t, ok) in finished {
        let m = t.as_second().div_euclid(60);
        if m < start_min || m > end_min {
            continue;
        }
        let c = &mut counts[(m - start_min) as usize];
        if *ok {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    let max = counts.iter().map(|c| c.0 + c.1).max().unwrap_or(0).max(1);
    let slot = CHART_W / n as f64;
    let width = (slot * 0.8).clamp(1.0, 40.0);
    let scale = (CHART_H - 4.0) / max as f64;
    let label = |m: i64| {
        Timestamp::from_second(m * 60)
            .map(|t| t.to_zoned(zone.clone()).strftime("%H:%M %Z").to_string())
            .unwrap_or_default()
    };
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, (s, f))| {
            let f_h = *f as f64 * scale;
            let s_h = *s as f64 * scale;
            Bar {
                x: i as f64 * slot + (slot - width) / 2.0,
                width,
                succeeded: *s,
                failed: *f,
                f_y: CHART_H - f_h,
                f_h,
                s_y: CHART_H - f_h - s_h,
                s_h,
                label: format!("{}: {s} succeeded, {f} failed", label(start_min + i as i64)),
            }
        })
        .collect();
    Chart {
        bars,
        max,
        start_label: label(start_min),
        end_label: label(end_min),
        total_succeeded: counts.iter().map(|c| c.0).sum(),
        total_failed: counts.iter().map(|c| c.1).sum(),
        minutes: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neo_domain::windows::WorkflowTimeWindow;

    fn win(s: &str, e: &str) -> Vec<WorkflowTimeWindow> {
        vec![WorkflowTimeWindow {
            run_start_time: s.into(),
            run_end_time: e.into(),
        }]
    }

    #[test]
    fn durations() {
        assert_eq!(
            human_duration(SignedDuration::from_secs(30)),
            "less than a minute"
        );
        assert_eq!(human_duration(SignedDuration::from_secs(45 * 60)), "45 min");
        assert_eq!(
            human_duration(SignedDuration::from_secs(3 * 3600 + 12 * 60 + 5)),
            "3 h 12 min"
        );
        assert_eq!(human_duration(SignedDuration::from_secs(7200)), "2 h");
        assert_eq!(
            human_duration(SignedDuration::from_secs(2 * 86_400 + 3 * 3600)),
            "2 d 3 h"
        );
    }

    #[test]
    fn weeknights_summary_with_next_window() {
        let mut w = WorkflowDailyExecutionWindows::default();
        for d in [
            &mut w.monday,
            &mut w.tuesday,
            &mut w.wednesday,
            &mut w.thursday,
            &mut w.friday,
        ] {
            *d = win("22:00", "06:00");
        }
        // Monday 2026-11-30 18:48 London (UTC in winter): the window opens in 3 h 12 min.
        let now: Timestamp = "2026-11-30T18:48:00Z".parse().unwrap();
        assert_eq!(
            windows_summary(&w, "Europe/London", now).unwrap(),
            "Weeknights 22:00 → 06:00 Europe/London; next window opens in 3 h 12 min"
        );
        let inside: Timestamp = "2026-11-30T23:00:00Z".parse().unwrap();
        assert_eq!(
            windows_summary(&w, "Europe/London", inside).unwrap(),
            "Weeknights 22:00 → 06:00 Europe/London; a window is open now"
        );
    }

    #[test]
    fn other_day_sets() {
        let w = WorkflowDailyExecutionWindows {
            saturday: win("09:00", "17:00"),
            sunday: win("09:00", "17:00"),
            monday: win("08:00:00", "09:30"),
            tuesday: win("08:00", "09:30"),
            wednesday: win("08:00", "09:30"),
            friday: win("12:00", "13:00"),
            ..Default::default()
        };
        assert_eq!(
            windows_text(&w),
            "Mon–Wed 08:00 → 09:30; Fri 12:00 → 13:00; Weekends 09:00 → 17:00"
        );
        assert_eq!(
            windows_text(&WorkflowDailyExecutionWindows::default()),
            "Always open"
        );
        let bad = WorkflowDailyExecutionWindows {
            monday: win("10:00", "10:00"),
            ..Default::default()
        };
        assert!(windows_summary(&bad, "UTC", Timestamp::UNIX_EPOCH).is_err());
        assert!(windows_summary(&w, "Mars/Olympus", Timestamp::UNIX_EPOCH).is_err());
    }

    #[test]
    fn chart_buckets_per_minute() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let fin = [
            (t("2026-01-01T10:00:05Z"), true),
            (t("2026-01-01T10:00:50Z"), false),
            (t("2026-01-01T10:02:00Z"), true),
        ];
        let c = throughput(&fin, t("2026-01-01T10:02:30Z"), "UTC");
        assert_eq!(c.minutes, 10);
        assert_eq!(c.start_label, "09:53 UTC");
        assert_eq!((c.bars[7].succeeded, c.bars[7].failed), (1, 1));
        assert_eq!((c.bars[8].succeeded, c.bars[8].failed), (0, 0));
        assert_eq!((c.bars[9].succeeded, c.bars[9].failed), (1, 0));
        assert_eq!(c.max, 2);
        assert_eq!((c.total_succeeded, c.total_failed), (2, 1));
        // A long run shows its last 30 minutes.
        let c = throughput(&fin, t("2026-01-01T11:00:00Z"), "UTC");
        assert_eq!((c.minutes, c.total_succeeded), (30, 0));
        let empty = throughput(&[], t("2026-01-01T10:02:30Z"), "UTC");
        assert_eq!(
            throughput(&fin, t("2026-01-01T10:02:30Z"), "Australia/Sydney").start_label,
            "20:53 AEDT"
        );
        assert_eq!(empty.minutes, 10);
    }
}
