//! The wizard's operator-control fields (issue 21), in step 3 beside the time zone: a
//! scheduled start typed as a wall-clock time in the backfill's own zone, a credit cap, and a
//! trial run's sample size. Each is optional.
//!
//! What is read here is only the form's own format (a `datetime-local` value, whole numbers);
//! the rules are the API's: step 3's check runs the functions the create runs
//! ([`check_start_at`], [`check_max_credits`], [`check_sample_size`]), and Create sends the
//! values to the API's create, whose refusal names `start_at`, `max_credits` or
//! `trial.sample_size` — shown at these inputs by [`Problem::of`], like every other field.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use neo_domain::backfill::check_start_at;
use neo_domain::control::{check_max_credits, check_sample_size};

use super::problems::{FormShape, Problem};

/// A scheduled start as typed and as the API takes it.
#[derive(Debug, Clone)]
pub(super) struct Start {
    /// RFC 3339 with the zone's offset at that instant: `2026-12-24T22:00:00+00:00`.
    pub(super) rfc3339: String,
    pub(super) at: Timestamp,
}

/// The three fields as read from the form (`Ok(None)`: left empty).
#[derive(Debug, Clone)]
pub(super) struct ControlInput {
    pub(super) start_at: Result<Option<Start>, Problem>,
    pub(super) max_credits: Result<Option<i64>, Problem>,
    pub(super) sample_size: Result<Option<i64>, Problem>,
}

fn whole_number(raw: Option<&str>, input: &str, what: &str) -> Result<Option<i64>, Problem> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            Problem::at(
                3,
                Some(input),
                format!("{what} must be a whole number, not \u{201c}{s}\u{201d}; leave it empty for none."),
            )
        }),
    }
}

/// `2026-12-24T22:00` (what a `datetime-local` input sends; seconds and a space instead of
/// the `T` are taken too) read as a wall-clock time in `tz`; an instant with its offset is
/// taken as it is. A time the zone skips (the clocks go forward) is refused; a time it has
/// twice (they go back) is the first.
fn read_start(raw: &str, tz: &str) -> Result<Option<Start>, Problem> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let at = |text: String| Problem::at(3, Some("start_at"), text);
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Ok(Some(Start {
            rfc3339: t.to_string(),
            at: t,
        }));
    }
    let dt: DateTime = raw.parse().map_err(|_| {
        at(format!(
            "Start at must be a date and time such as 2026-12-24 22:00, not \u{201c}{raw}\u{201d}."
        ))
    })?;
    // A zone the time zone rule refuses is marked at the time zone; nothing to read in.
    let Ok(zone) = TimeZone::get(tz) else {
        return Ok(None);
    };
    let ambiguous = zone.to_ambiguous_zoned(dt);
    if let AmbiguousOffset::Gap { .. } = ambiguous.offset() {
        return Err(at(format!(
            "Start at: {} does not exist in {tz} (the clocks go forward then); pick a time outside the gap.",
            dt.strftime("%Y-%m-%d %H:%M")
        )));
    }
    let z = ambiguous
        .compatible()
        .map_err(|e| at(format!("Start at: {e}")))?;
    Ok(Some(Start {
        rfc3339: z.timestamp().display_with_offset(z.offset()).to_string(),
        at: z.timestamp(),
    }))
}

/// Reads the fields (`start_at`, `max_credits`, `trial_sample_size`) of the form.
pub(super) fn read(
    start_at: Option<&str>,
    max_credits: Option<&str>,
    sample_size: Option<&str>,
    timezone: &str,
) -> ControlInput {
    ControlInput {
        start_at: read_start(start_at.unwrap_or(""), timezone),
        max_credits: whole_number(max_credits, "max_credits", "The credit cap"),
        sample_size: whole_number(sample_size, "trial_sample_size", "The trial sample size"),
    }
}

impl ControlInput {
    /// Step 3's check: what could not be read, then the API's own rules for what could
    /// (`listed`: the length of an explicit id list, which bounds the sample as at create).
    pub(super) fn problems(
        &self,
        listed: Option<i64>,
        now: Timestamp,
        shape: &FormShape,
    ) -> Vec<Problem> {
        let mut out = Vec::new();
        let rule = |e: neo_domain::validation::FieldError| Problem::of(&e.field, &e.message, shape);
        match &self.start_at {
            Err(p) => out.push(p.clone()),
            Ok(Some(s)) => {
                if let Err(e) = check_start_at(&s.rfc3339, now) {
                    out.push(rule(e));
                }
            }
            Ok(None) => {}
        }
        match &self.max_credits {
            Err(p) => out.push(p.clone()),
            Ok(Some(c)) => {
                if let Err(e) = check_max_credits(*c) {
                    out.push(rule(e));
                }
            }
            Ok(None) => {}
        }
        match &self.sample_size {
            Err(p) => out.push(p.clone()),
            Ok(Some(n)) => {
                if let Err(e) = check_sample_size(*n, listed) {
                    out.push(rule(e));
                }
            }
            Ok(None) => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_read_in_the_backfills_zone() {
        let s = read_start("2026-12-24T22:00", "Australia/Sydney")
            .unwrap()
            .unwrap();
        assert_eq!(s.rfc3339, "2026-12-24T22:00:00+11:00");
        assert_eq!(s.at, "2026-12-24T11:00:00Z".parse::<Timestamp>().unwrap());
        let s = read_start("2026-07-01 09:30:15", "Europe/London")
            .unwrap()
            .unwrap();
        assert_eq!(s.rfc3339, "2026-07-01T09:30:15+01:00");
        // An instant with its offset stands as it is.
        let s = read_start("2026-12-24T22:00:00Z", "Asia/Tokyo")
            .unwrap()
            .unwrap();
        assert_eq!(s.rfc3339, "2026-12-24T22:00:00Z");
        assert!(read_start("  ", "UTC").unwrap().is_none());
        // 01:30 on 29 March 2026 does not happen in London.
        let p = read_start("2026-03-29T01:30", "Europe/London").unwrap_err();
        assert_eq!((p.step, p.input.as_deref()), (3, Some("start_at")));
        assert!(
            p.text.contains("does not exist in Europe/London"),
            "{}",
            p.text
        );
        let p = read_start("next tuesday", "UTC").unwrap_err();
        assert!(
            p.text.contains("not \u{201c}next tuesday\u{201d}"),
            "{}",
            p.text
        );
        // Read in the zone once the zone is fixed.
        assert!(read_start("2026-12-24T22:00", "Mars/Olympus")
            .unwrap()
            .is_none());
    }

    #[test]
    fn numbers_then_the_apis_rules() {
        let now: Timestamp = "2026-11-28T21:07:35Z".parse().unwrap();
        let shape = FormShape::default();
        let c = read(Some(""), Some(" 8 "), Some("6"), "UTC");
        assert_eq!(
            (
                c.max_credits.clone().unwrap(),
                c.sample_size.clone().unwrap()
            ),
            (Some(8), Some(6))
        );
        assert!(c.problems(Some(60), now, &shape).is_empty());
        let too_big = c.problems(Some(5), now, &shape);
        assert_eq!(too_big.len(), 1);
        assert_eq!(too_big[0].input.as_deref(), Some("trial_sample_size"));
        assert_eq!(
            too_big[0].text,
            "The trial sample size must be at most the 5 entities of the backfill"
        );
        let c = read(Some("2028-01-01T00:00"), Some("0"), Some("x"), "UTC");
        let p = c.problems(None, now, &shape);
        let texts: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.input.as_deref().unwrap(), p.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                ("start_at", "Start at must be within a year from now"),
                (
                    "max_credits",
                    "The credit cap must be between 1 and 1000000000000, or empty for no cap"
                ),
                (
                    "trial_sample_size",
                    "The trial sample size must be a whole number, not \u{201c}x\u{201d}; leave it empty for none."
                ),
            ]
        );
    }
}
