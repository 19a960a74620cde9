//! Fairness between an MSP's clients (issue 23). A backfill over a PSA touches many client
//! companies at once; without a rule the biggest client's tickets take every slot for hours, and
//! a client in a change freeze gets touched anyway. Two rules, both decided here and applied by
//! the store's claim:
//!
//! - **`max_in_flight_per_company`**: at most this many of one company's entities run at once.
//!   Claims already go round-robin across companies (items are ranked within their company);
//!   the cap keeps a company that is slow to settle from filling the backfill's slots.
//! - **`company_blackouts`**: company id → dates and weekly windows, in the backfill's
//!   timezone, during which that company's items are not claimed. The rest run; the held
//!   company's items run once its blackout ends.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::known_timezone;
use crate::windows::{Schedule, WorkflowDailyExecutionWindows};
use crate::FieldError;

/// The most companies one backfill may name in `company_blackouts`.
pub const MAX_BLACKOUT_COMPANIES: usize = 500;
/// The most dates one company's blackout may list.
pub const MAX_BLACKOUT_DATES: usize = 366;
/// The longest company id accepted (PSA ids are numbers; 64 leaves room for any).
pub const MAX_COMPANY_ID_LEN: usize = 64;

/// One company's change freeze: whole days (`YYYY-MM-DD`) and weekly windows, both in the
/// backfill's timezone. Its items are not claimed while either covers the current instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(title = "CompanyBlackout")]
#[serde(deny_unknown_fields)]
pub struct CompanyBlackout {
    /// Whole days of freeze, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false, example = json!(["2026-12-24", "2026-12-25"]))]
    pub dates: Vec<String>,
    /// Weekly windows of freeze, in the form of `daily_execution_windows`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub weekly: Option<WorkflowDailyExecutionWindows>,
}

/// `company_blackouts` as given on create: company id → its freeze.
pub type CompanyBlackouts = BTreeMap<String, CompanyBlackout>;

/// The rule for `max_in_flight_per_company`: between 1 and the backfill's `max_in_flight`.
pub fn check_max_in_flight_per_company(n: i64, max_in_flight: i64) -> Result<i64, FieldError> {
    if (1..=max_in_flight).contains(&n) {
        Ok(n)
    } else {
        Err(FieldError::new(
            "max_in_flight_per_company",
            format!(
                "max_in_flight_per_company must be between 1 and max_in_flight ({max_in_flight})"
            ),
        ))
    }
}

/// Blackouts compiled against the backfill's timezone, asked at instants.
#[derive(Debug, Clone)]
pub struct Blackouts {
    tz: jiff::tz::TimeZone,
    companies: Vec<(String, Vec<Date>, Option<Schedule>)>,
}

impl Blackouts {
    /// Checks `company_blackouts` (every rule, with the JSON path of the first broken one) and
    /// compiles it for `timezone`.
    pub fn new(blackouts: &CompanyBlackouts, timezone: &str) -> Result<Self, FieldError> {
        const F: &str = "company_blackouts";
        let tz = known_timezone(timezone, "timezone")?;
        if blackouts.len() > MAX_BLACKOUT_COMPANIES {
            return Err(FieldError::new(
                F,
                format!("at most {MAX_BLACKOUT_COMPANIES} companies may have a blackout"),
            ));
        }
        let mut companies = Vec::with_capacity(blackouts.len());
        for (company, b) in blackouts {
            let path = format!("{F}.{company}");
            if company.is_empty()
                || company.len() > MAX_COMPANY_ID_LEN
                || company.chars().any(char::is_control)
            {
                return Err(FieldError::new(
                    F,
                    format!("a company id must be 1 to {MAX_COMPANY_ID_LEN} printable characters"),
                ));
            }
            if b.dates.is_empty() && b.weekly.is_none() {
                return Err(FieldError::new(
                    path,
                    "give dates, weekly windows or both (an empty blackout holds nothing)",
                ));
            }
            if b.dates.len() > MAX_BLACKOUT_DATES {
                return Err(FieldError::new(
                    format!("{path}.dates"),
                    format!("at most {MAX_BLACKOUT_DATES} dates"),
                ));
            }
            let dates = b
                .dates
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    d.parse::<Date>()
                        .ok()
                        .filter(|_| d.len() == 10)
                        .ok_or_else(|| {
                            FieldError::new(
                                format!("{path}.dates[{i}]"),
                                format!("{d:?} is not a date as YYYY-MM-DD"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let weekly = match &b.weekly {
                None => None,
                Some(w) => {
                    w.validate(&format!("{path}.weekly"))?;
                    Some(Schedule::new(w, timezone)?)
                }
            };
            companies.push((company.clone(), dates, weekly));
        }
        Ok(Self { tz, companies })
    }

    /// The companies in a blackout at `t`.
    pub fn held_at(&self, t: Timestamp) -> Vec<String> {
        let today = t.to_zoned(self.tz.clone()).date();
        self.companies
            .iter()
            .filter(|(_, dates, weekly)| {
                dates.contains(&today) || weekly.as_ref().is_some_and(|w| w.inside(t))
            })
            .map(|(c, _, _)| c.clone())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.companies.is_empty()
    }
}

/// Which of `candidates` (each item's company, `None` when unknown, in claim order) one claim
/// takes: at most `n`, and with `cap`, no company beyond `cap` counting what it already has in
/// flight (`in_flight`, by company; unknown companies count together). Returns their indexes.
pub fn pick(
    candidates: &[Option<&str>],
    in_flight: &BTreeMap<Option<String>, i64>,
    cap: Option<i64>,
    n: usize,
) -> Vec<usize> {
    let mut taken: BTreeMap<Option<&str>, i64> = BTreeMap::new();
    let mut out = Vec::with_capacity(n.min(candidates.len()));
    for (i, c) in candidates.iter().enumerate() {
        if out.len() >= n {
            break;
        }
        let now = taken.entry(*c).or_insert_with(|| {
            in_flight
                .get(&c.map(str::to_owned))
                .copied()
                .unwrap_or_default()
        });
        if cap.is_some_and(|cap| *now >= cap) {
            continue;
        }
        *now += 1;
        out.push(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::WorkflowTimeWindow;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn dates_and_weekly_windows_hold_in_the_backfill_timezone() {
        let weekly = WorkflowDailyExecutionWindows {
            saturday: vec![WorkflowTimeWindow {
                run_start_time: "08:00".into(),
                run_end_time: "12:00".into(),
            }],
            ..Default::default()
        };
        let b = CompanyBlackouts::from([
            (
                "19".to_owned(),
                CompanyBlackout {
                    dates: vec!["2026-12-24".into()],
                    weekly: None,
                },
            ),
            (
                "20".to_owned(),
                CompanyBlackout {
                    dates: vec![],
                    weekly: Some(weekly),
                },
            ),
        ]);
        let bo = Blackouts::new(&b, "America/New_York").unwrap();
        // 05:30Z is 00:30 on the 24th in New York.
        assert_eq!(bo.held_at(ts("2026-12-24T05:30:00Z")), vec!["19"]);
        // 04:30Z is 23:30 on the 23rd in New York.
        assert!(bo.held_at(ts("2026-12-24T04:30:00Z")).is_empty());
        // Saturday 2026-12-26 09:00 New York = 14:00Z.
        assert_eq!(bo.held_at(ts("2026-12-26T14:00:00Z")), vec!["20"]);
        assert!(bo.held_at(ts("2026-12-26T18:00:00Z")).is_empty());
    }

    #[test]
    fn every_rule_names_its_field() {
        let one = |c: &str, b: CompanyBlackout| {
            Blackouts::new(&CompanyBlackouts::from([(c.to_owned(), b)]), "UTC")
                .unwrap_err()
                .field
        };
        assert_eq!(
            one("19", CompanyBlackout::default()),
            "company_blackouts.19"
        );
        let bad_date = CompanyBlackout {
            dates: vec!["2026-12-24".into(), "24/12/2026".into()],
            weekly: None,
        };
        assert_eq!(one("19", bad_date), "company_blackouts.19.dates[1]");
        let empty_weekly = CompanyBlackout {
            dates: vec![],
            weekly: Some(WorkflowDailyExecutionWindows::default()),
        };
        assert_eq!(one("19", empty_weekly), "company_blackouts.19.weekly");
        let ok = CompanyBlackout {
            dates: vec!["2026-12-24".into()],
            weekly: None,
        };
        assert_eq!(one("", ok.clone()), "company_blackouts");
        assert_eq!(one(&"9".repeat(65), ok), "company_blackouts");
        assert_eq!(
            check_max_in_flight_per_company(0, 20).unwrap_err().field,
            "max_in_flight_per_company"
        );
        assert!(check_max_in_flight_per_company(21, 20).is_err());
        assert_eq!(check_max_in_flight_per_company(5, 20), Ok(5));
    }

    #[test]
    fn pick_caps_each_company_counting_what_is_in_flight() {
        let c = [Some("a"), Some("b"), Some("a"), None, Some("a"), Some("b")];
        let in_flight = BTreeMap::from([(Some("a".to_owned()), 1)]);
        assert_eq!(pick(&c, &in_flight, Some(2), 10), vec![0, 1, 3, 5]);
        assert_eq!(pick(&c, &in_flight, None, 3), vec![0, 1, 2]);
    }

    proptest! {
        /// Whatever the candidates, no company ends above its cap, nothing beyond `n` is
        /// taken, and a candidate is skipped only because its company is full.
        #[test]
        fn pick_never_exceeds_a_cap(
            comps in proptest::collection::vec(proptest::option::of(0u8..4), 0..60),
            flying in proptest::collection::vec(0i64..4, 4),
            cap in 1i64..5,
            n in 0usize..40,
        ) {
            let names: Vec<Option<String>> = comps.iter().map(|c| c.map(|c| c.to_string())).collect();
            let cands: Vec<Option<&str>> = names.iter().map(|c| c.as_deref()).collect();
            let in_flight: BTreeMap<Option<String>, i64> =
                (0..4u8).map(|c| (Some(c.to_string()), flying[c as usize])).collect();
            let got = pick(&cands, &in_flight, Some(cap), n);
            prop_assert!(got.len() <= n);
            let mut per: BTreeMap<Option<&str>, i64> = BTreeMap::new();
            for &i in &got {
                *per.entry(cands[i]).or_default() += 1;
            }
            for (c, k) in &per {
                let before = in_flight.get(&c.map(str::to_owned)).copied().unwrap_or(0);
                prop_assert!(before + k <= cap.max(before));
            }
            if got.len() < n {
                // Every candidate not taken belongs to a company at its cap.
                for (i, c) in cands.iter().enumerate() {
                    if !got.contains(&i) {
                        let before = in_flight.get(&c.map(str::to_owned)).copied().unwrap_or(0);
                        prop_assert!(before + per.get(c).copied().unwrap_or(0) >= cap);
                    }
                }
            }
        }
    }
}
