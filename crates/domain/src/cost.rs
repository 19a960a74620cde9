//! The credit cost estimate of a backfill (docs/api.md §3.5).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The customer-facing cost ceiling shown alongside a created backfill.
/// Credit-denominated; an upper bound, since skipped entities cost nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(title = "BackfillCostEstimate")]
pub struct BackfillCostEstimate {
    pub total_entities: i64,
    pub credits_per_entity: i64,
    pub total_credits_estimated: i64,
}

impl BackfillCostEstimate {
    /// `credits_per_entity` is the workflow's credit tier (1 basic, 2 standard, 3 advanced).
    pub fn new(credit_tier: i64, total_entities: i64) -> Self {
        Self {
            total_entities,
            credits_per_entity: credit_tier,
            total_credits_estimated: credit_tier.saturating_mul(total_entities),
        }
    }
}
/// The UTC calendar month holding `first` (any day of it): its first instant and the first
/// instant of the next month. Monthly credit allowances count in these months.
pub fn utc_month(day: jiff::civil::Date) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    let first = day.first_of_month();
    let next = first.checked_add(jiff::Span::new().months(1)).ok()?;
    let utc = jiff::tz::TimeZone::UTC;
    Some((
        first.to_zoned(utc.clone()).ok()?.timestamp(),
        next.to_zoned(utc).ok()?.timestamp(),
    ))
}

/// [`utc_month`] of the instant `now`.
pub fn month_of(now: jiff::Timestamp) -> (jiff::Timestamp, jiff::Timestamp) {
    utc_month(now.to_zoned(jiff::tz::TimeZone::UTC).date()).expect("a month within jiff's range")
}
