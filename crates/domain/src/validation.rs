//! Input validation shared by the API and the dashboard: the [`FieldError`] every rule answers
//! with (a JSON path and words), and the time zone rule of a create ([`validate_timezone`]).

/// A semantic validation failure: the request was well formed but one field is wrong.
/// `field` is the JSON path of the offending member (e.g. `daily_execution_windows.monday[0].run_end_time`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Validates the time zone a backfill is created with (the API's create and the dashboard's
/// wizard): a zone of the IANA database that names a place (`America/New_York`), or `UTC`.
///
/// Abbreviations (`EST`, `CET`, `GMT+1`) are refused even where the database knows them: each
/// is one fixed offset, so windows given in it drift by an hour against the clocks of the place
/// meant for half the year; the legacy POSIX-style zones (`EST5EDT`) are refused likewise. The
/// answer names the place zone to use instead ([`FIXED_OFFSET_ZONES`], or by offset). Zones
/// under `Etc/` (`Etc/GMT+5`) are IANA's explicit fixed offsets and stay accepted as deliberate.
pub fn validate_timezone(name: &str, field: &str) -> Result<jiff::tz::TimeZone, FieldError> {
    if let Some(why) = not_a_place(name) {
        return Err(FieldError::new(field, why));
    }
    known_timezone(name, field)
}

/// A zone the IANA database knows, without the place rule of [`validate_timezone`]: how a
/// stored backfill's zone is read, so one created before that rule keeps its schedule.
pub(crate) fn known_timezone(name: &str, field: &str) -> Result<jiff::tz::TimeZone, FieldError> {
    jiff::tz::TimeZone::get(name)
        .map_err(|_| FieldError::new(field, format!("{name:?} is not a known IANA timezone")))
}

/// Abbreviations and legacy zone names people type for a time zone, with the IANA zone of the
/// place they usually mean (case-insensitive; `GMT` and `BST` mean London's clocks).
pub const FIXED_OFFSET_ZONES: &[(&str, &str)] = &[
    ("EST", "America/New_York"),
    ("EDT", "America/New_York"),
    ("ET", "America/New_York"),
    ("CST", "America/Chicago"),
    ("CDT", "America/Chicago"),
    ("CT", "America/Chicago"),
    ("MST", "America/Denver"),
    ("MDT", "America/Denver"),
    ("MT", "America/Denver"),
    ("PST", "America/Los_Angeles"),
    ("PDT", "America/Los_Angeles"),
    ("PT", "America/Los_Angeles"),
    ("AKST", "America/Anchorage"),
    ("AKDT", "America/Anchorage"),
    ("HST", "Pacific/Honolulu"),
    ("AST", "America/Halifax"),
    ("ADT", "America/Halifax"),
    ("NST", "America/St_Johns"),
    ("NDT", "America/St_Johns"),
    ("GMT", "Europe/London"),
    ("BST", "Europe/London"),
    ("WET", "Europe/Lisbon"),
    ("WEST", "Europe/Lisbon"),
    ("CET", "Europe/Paris"),
    ("CEST", "Europe/Paris"),
    ("MET", "Europe/Paris"),
    ("MEST", "Europe/Paris"),
    ("EET", "Europe/Athens"),
    ("EEST", "Europe/Athens"),
    ("MSK", "Europe/Moscow"),
    ("IST", "Asia/Kolkata"),
    ("PKT", "Asia/Karachi"),
    ("SGT", "Asia/Singapore"),
    ("HKT", "Asia/Hong_Kong"),
    ("JST", "Asia/Tokyo"),
    ("KST", "Asia/Seoul"),
    ("AWST", "Australia/Perth"),
    ("ACST", "Australia/Adelaide"),
    ("ACDT", "Australia/Adelaide"),
    ("AEST", "Australia/Sydney"),
    ("AEDT", "Australia/Sydney"),
    ("NZST", "Pacific/Auckland"),
    ("NZDT", "Pacific/Auckland"),
    ("SAST", "Africa/Johannesburg"),
    ("WAT", "Africa/Lagos"),
    ("EAT", "Africa/Nairobi"),
    ("BRT", "America/Sao_Paulo"),
    ("EST5EDT", "America/New_York"),
    ("CST6CDT", "America/Chicago"),
    ("MST7MDT", "America/Denver"),
    ("PST8PDT", "America/Los_Angeles"),
];

/// A place zone for a whole-hour UTC offset (an example: many places share an offset).
const ZONE_BY_OFFSET: [(i32, &str); 22] = [
    (-10, "Pacific/Honolulu"),
    (-9, "America/Anchorage"),
    (-8, "America/Los_Angeles"),
    (-7, "America/Denver"),
    (-6, "America/Chicago"),
    (-5, "America/New_York"),
    (-4, "America/Halifax"),
    (-3, "America/Sao_Paulo"),
    (0, "Europe/London"),
    (1, "Europe/Paris"),
    (2, "Europe/Athens"),
    (3, "Europe/Moscow"),
    (4, "Asia/Dubai"),
    (5, "Asia/Karachi"),
    (6, "Asia/Dhaka"),
    (7, "Asia/Bangkok"),
    (8, "Asia/Singapore"),
    (9, "Asia/Tokyo"),
    (10, "Australia/Sydney"),
    (11, "Pacific/Noumea"),
    (12, "Pacific/Auckland"),
    (13, "Pacific/Tongatapu"),
];

/// Why `name` is not a place's time zone, with the zone to use instead; `None` for anything
/// else (which may still be unknown).
fn not_a_place(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    if let Some((abbr, zone)) = FIXED_OFFSET_ZONES.iter().find(|(a, _)| *a == upper) {
        let what = if abbr.bytes().any(|b| b.is_ascii_digit()) {
            "a legacy POSIX-style zone"
        } else {
            "a fixed offset"
        };
        let or_utc = if *abbr == "GMT" { ", or UTC" } else { "" };
        return Some(format!(
            "{name} is {what}, not a place's time zone; use an IANA zone such as {zone}{or_utc}"
        ));
    }
    // `GMT+1`, `UTC-05:00`, `+02`, `GMT0`: an offset, with or without a prefix.
    let rest = ["GMT", "UTC", "UT"]
        .iter()
        .find_map(|p| upper.strip_prefix(p))
        .unwrap_or(&upper);
    let hours = offset_hours(rest)?;
    let zone = match hours {
        Some(0) => "UTC".to_owned(),
        Some(h) => match ZONE_BY_OFFSET.iter().find(|(o, _)| *o == h) {
            Some((_, z)) => (*z).to_owned(),
            None => "the zone of the place, such as Europe/Paris".to_owned(),
        },
        None => "the zone of the place, such as Asia/Kolkata".to_owned(),
    };
    Some(format!(
        "{name} is a fixed offset, not a place's time zone; use an IANA zone such as {zone}"
    ))
}

/// `+1`, `-05`, `+05:30`, `0` as a UTC offset: `Some(Some(hours))` for a whole hour,
/// `Some(None)` for an offset with minutes, `None` when `s` is no offset.
fn offset_hours(s: &str) -> Option<Option<i32>> {
    let (sign, digits) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        b'0' if s == "0" => return Some(Some(0)),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let all_digits =
        |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || !all_digits(m) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    Some((m == 0).then_some(sign * h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::{Schedule, WorkflowDailyExecutionWindows};

    #[test]
    fn timezones() {
        for ok in [
            "Europe/London",
            "UTC",
            "Etc/UTC",
            "America/New_York",
            "Etc/GMT+5",
        ] {
            assert!(validate_timezone(ok, "tz").is_ok(), "{ok}");
        }
        assert_eq!(
            validate_timezone("Mars/Olympus", "tz").unwrap_err().field,
            "tz"
        );
    }

    #[test]
    fn fixed_offsets_are_refused_with_a_place_to_use() {
        let refused = |name: &str| validate_timezone(name, "timezone").unwrap_err();
        let e = refused("EST");
        assert_eq!(e.field, "timezone");
        assert_eq!(
            e.message,
            "EST is a fixed offset, not a place's time zone; use an IANA zone such as America/New_York"
        );
        for (name, zone) in [
            ("PST", "America/Los_Angeles"),
            ("cet", "Europe/Paris"),
            ("GMT+1", "Europe/Paris"),
            ("UTC-05:00", "America/New_York"),
            ("+09", "Asia/Tokyo"),
            ("GMT0", "UTC"),
            ("GMT", "Europe/London, or UTC"),
            ("UTC+05:30", "such as Asia/Kolkata"),
        ] {
            let m = refused(name).message;
            assert!(m.starts_with(&format!("{name} is a fixed offset")), "{m}");
            assert!(m.ends_with(zone), "{name}: {m}");
        }
        let m = refused("EST5EDT").message;
        assert_eq!(
            m,
            "EST5EDT is a legacy POSIX-style zone, not a place's time zone; use an IANA zone such as America/New_York"
        );
        // Not offsets: unknown names keep the plain answer.
        for name in ["GMT+1x", "UTC+99", "Mars"] {
            assert!(
                refused(name).message.contains("not a known IANA timezone"),
                "{name}"
            );
        }
        // A backfill stored with such a zone before the rule keeps its schedule.
        assert!(Schedule::new(&WorkflowDailyExecutionWindows::default(), "EST").is_ok());
    }
}
