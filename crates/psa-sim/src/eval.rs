//! Helpers shared by both dialects' evaluators: datetime parsing, case-insensitive comparison, JSON ordering.

use std::cmp::Ordering;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value;

/// Parses the datetime spellings clients send: RFC 3339 with an offset (`2024-01-01T00:00:00Z`,
/// `…00.000Z`), a civil datetime taken as UTC (`2024-01-01T00:00:00.000000`), or a bare date (`2024-01-01`, midnight
/// UTC).
pub(crate) fn parse_datetime(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return TimeZone::UTC.to_timestamp(dt).ok();
    }
    if let Ok(d) = s.parse::<Date>() {
        return TimeZone::UTC
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .ok();
    }
    None
}

/// Case-insensitive string ordering (the PSAs run on case-insensitive collations).
pub(crate) fn cmp_ci(a: &str, b: &str) -> Ordering {
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

/// The value at a `/`-separated canonical path, or `Null` when any step is missing or not an object.
pub(crate) fn value_at<'a>(row: &'a Value, segments: &[&str]) -> &'a Value {
    let mut cur = row;
    for seg in segments {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return &Value::Null,
        }
    }
    cur
}

/// A total order over JSON scalars for `orderBy`: nulls first, then booleans, numbers, strings (case-insensitive).
pub(crate) fn cmp_json(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => cmp_ci(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// The text of a scalar as a string comparison sees it.
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        let z = parse_datetime("2024-01-01T00:00:00Z");
        assert!(z.is_some());
        assert_eq!(parse_datetime("2024-01-01T00:00:00.000Z"), z);
        assert_eq!(parse_datetime("2024-01-01T00:00:00.000000"), z);
        assert_eq!(parse_datetime("2024-01-01"), z);
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn ci() {
        assert_eq!(cmp_ci("Help Desk", "help desk"), Ordering::Equal);
        assert_eq!(cmp_ci("a", "B"), Ordering::Less);
    }
}
