//! Daily execution windows (SPEC §3.4): the wire types and their validation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::FieldError;

/// One daily window, wall-clock in the backfill's timezone. `run_end_time` is exclusive; an end
/// before the start wraps past midnight and belongs to the day on which it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(title = "WorkflowTimeWindow")]
#[serde(deny_unknown_fields)]
pub struct WorkflowTimeWindow {
    #[schema(format = "time", example = "22:00")]
    pub run_start_time: String,
    #[schema(format = "time", example = "06:00")]
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

    /// Validates every rule of SPEC §3.2 and returns the windows per weekday (Monday first) in
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

/// Validates an IANA timezone name.
pub fn validate_timezone(name: &str, field: &str) -> Result<jiff::tz::TimeZone, FieldError> {
    jiff::tz::TimeZone::get(name)
        .map_err(|_| FieldError::new(field, format!("{name:?} is not a known IANA timezone")))
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
        d.monday = vec![w("22:00", "06:00"), w("05:00", "07:00")];
        let e = d.validate("dw").unwrap_err();
        assert_eq!(e.field, "dw.monday[1]");
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

    #[test]
    fn timezones() {
        assert!(validate_timezone("Europe/London", "tz").is_ok());
        assert!(validate_timezone("UTC", "tz").is_ok());
        assert_eq!(
            validate_timezone("Mars/Olympus", "tz").unwrap_err().field,
            "tz"
        );
    }
}
