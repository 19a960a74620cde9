//! Operator control (issue 21): the rules for a trial run's sample and a budget cap, pure so
//! that the claim (which enforces them), the API (which explains them) and the dashboard (which
//! shows them) agree. The store and orchestrator call them; nothing here does I/O.
//!
//! - A trial runs a few entities first, *spread over the snapshot* rather than its head: the
//!   first N tickets of a query are often the oldest and least like the rest.
//! - A budget never lets a claim start an execution that could take the backfill's credits
//!   over its cap: what is in flight counts as spent, since each may succeed.

/// The smallest trial sample (the largest is the snapshot).
pub const MIN_SAMPLE: u64 = 1;

/// The positions (0-based, ascending, distinct) of a trial sample of `n` entities in a
/// snapshot of `total`: evenly spread, the first at 0, deterministic. `n` is clamped to
/// `1..=total`; an empty snapshot has no sample.
pub fn trial_positions(total: u64, n: u64) -> Vec<u64> {
    if total == 0 {
        return Vec::new();
    }
    let n = n.clamp(MIN_SAMPLE, total);
    // Position i is floor(i * total / n): strictly increasing because total >= n.
    (0..n)
        .map(|i| ((i as u128 * total as u128) / n as u128) as u64)
        .collect()
}

/// How many more executions a claim may start under a cap of `max_credits` for a backfill
/// whose succeeded executions cost `spent` credits and that has `in_flight` executions out,
/// each costing `per_entity` credits if it succeeds. `None` cap: no limit from it.
pub fn budget_room(
    max_credits: Option<i64>,
    spent: i64,
    in_flight: i64,
    per_entity: i64,
) -> Option<u64> {
    let cap = max_credits?;
    let per = per_entity.max(1);
    let committed = spent.saturating_add(in_flight.saturating_mul(per));
    Some((cap.saturating_sub(committed).max(0) / per) as u64)
}

use crate::validation::FieldError;

/// The largest accepted `max_credits` (a trillion credits: "no cap" is `null`, not a big number).
pub const MAX_CREDITS: i64 = 1_000_000_000_000;

/// The rule for `trial.sample_size` at create: at least one entity and, when the snapshot is
/// known (`total`: an explicit id list), at most all of them. A PSA query's snapshot is not
/// known at create; a sample larger than it runs every entity as the trial.
pub fn check_sample_size(n: i64, total: Option<i64>) -> Result<i64, FieldError> {
    let field = "trial.sample_size";
    if n < MIN_SAMPLE as i64 {
        return Err(FieldError::new(
            field,
            "trial.sample_size must be at least 1",
        ));
    }
    if let Some(total) = total.filter(|t| n > *t) {
        return Err(FieldError::new(
            field,
            format!("trial.sample_size must be at most the {total} entities of the backfill"),
        ));
    }
    Ok(n)
}

/// The rule for `max_credits` (create and PATCH): a positive whole number of credits.
pub fn check_max_credits(c: i64) -> Result<i64, FieldError> {
    if !(1..=MAX_CREDITS).contains(&c) {
        return Err(FieldError::new(
            "max_credits",
            format!("max_credits must be between 1 and {MAX_CREDITS}, or null for no cap"),
        ));
    }
    Ok(c)
}

crate::backfill::string_enum!(
    /// Why a backfill is PAUSED: `operator` (a pause signal), or the backfill itself:
    /// `trial_complete` (its trial sample has run), `budget_reached` (its credits reached
    /// `max_credits`), `allowance_exhausted` (the tenant's monthly allowance is spent),
    /// `circuit_breaker` (too many consecutive failures).
    #[schema(title = "PauseReason")]
    PauseReason {
        Operator => "operator",
        TrialComplete => "trial_complete",
        BudgetReached => "budget_reached",
        AllowanceExhausted => "allowance_exhausted",
        CircuitBreaker => "circuit_breaker",
    }
);

impl PauseReason {
    /// What the operator reads, and what to do about it.
    pub fn message(self) -> &'static str {
        match self {
            PauseReason::Operator => "Paused by an operator. Resume to continue.",
            PauseReason::TrialComplete => {
                "The trial sample has run. Check its results, then continue with the rest or cancel."
            }
            PauseReason::BudgetReached => {
                "The backfill reached its credit cap (max_credits). Raise the cap, then resume."
            }
            PauseReason::AllowanceExhausted => {
                "The tenant's monthly credit allowance is spent. Resume next month or once the allowance is raised."
            }
            PauseReason::CircuitBreaker => {
                "Too many executions failed in a row. Fix the workflow, then resume."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sample_is_spread_over_the_snapshot() {
        assert_eq!(trial_positions(1_000, 50)[..3], [0, 20, 40]);
        assert_eq!(trial_positions(10, 3), [0, 3, 6]);
        assert_eq!(trial_positions(5, 5), [0, 1, 2, 3, 4]);
        assert_eq!(trial_positions(5, 99), [0, 1, 2, 3, 4]);
        assert_eq!(trial_positions(5, 0), [0]);
        assert!(trial_positions(0, 3).is_empty());
    }

    #[test]
    fn the_budget_counts_what_is_in_flight() {
        // Tier 2, cap 500: 250 executions in all.
        assert_eq!(budget_room(Some(500), 0, 0, 2), Some(250));
        assert_eq!(budget_room(Some(500), 400, 40, 2), Some(10));
        assert_eq!(budget_room(Some(500), 480, 10, 2), Some(0));
        // Already over (a cap lowered below what was spent): no room, never negative.
        assert_eq!(budget_room(Some(100), 480, 10, 2), Some(0));
        // An odd credit left does not buy half an execution.
        assert_eq!(budget_room(Some(501), 0, 0, 2), Some(250));
        assert_eq!(budget_room(None, 480, 10, 2), None);
    }

    proptest! {
        #[test]
        fn samples_are_distinct_ascending_in_range_and_of_the_asked_size(
            total in 1u64..100_000,
            n in 1u64..5_000,
        ) {
            let p = trial_positions(total, n);
            prop_assert_eq!(p.len() as u64, n.min(total));
            prop_assert_eq!(p[0], 0);
            prop_assert!(p.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(*p.last().unwrap() < total);
            // Even: consecutive positions differ by floor or ceil of total / n.
            let (lo, hi) = (total / n.min(total), total.div_ceil(n.min(total)));
            prop_assert!(p.windows(2).all(|w| (lo..=hi).contains(&(w[1] - w[0]))));
        }

        #[test]
        fn claims_within_the_room_never_exceed_the_cap(
            cap in 0i64..100_000,
            per in 1i64..4,
            spent_units in 0i64..20_000,
            in_flight in 0i64..200,
        ) {
            let spent = spent_units * per;
            let room = budget_room(Some(cap), spent, in_flight, per).unwrap() as i64;
            // Starting `room` more and all of them (and all in flight) succeeding stays
            // within the cap whenever the cap was not already passed.
            if spent + in_flight * per <= cap {
                prop_assert!(spent + (in_flight + room) * per <= cap);
                // And one more would pass it.
                prop_assert!(spent + (in_flight + room + 1) * per > cap);
            } else {
                prop_assert_eq!(room, 0);
            }
        }
    }
}
