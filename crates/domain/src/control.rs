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
