//! Fair dispatch between tenants. A claim round gives every tenant with work one claim, and
//! that claim covers the tenant's backfills that want work, the tenant's room shared among
//! them evenly with the remainder going round, so a tenant with many large backfills gets one
//! claim per round like everybody else, and a round is short: another tenant's new backfill is
//! claimed in the next round however big the backlog ahead of it (a round that went on while
//! one backlog kept freeing room would shut newcomers out). One claim for all of a tenant's
//! backfills is one statement and one commit, where a claim per backfill cost ten of each for
//! ten backfills. [`Slots`] counts what each tenant (and the whole process) has running, for
//! the per-tenant and per-process in-flight caps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One claim round: each tenant with work gets one claim, for all of its backfills, in turn
/// order: the first backfill after the one served last (remembered across rounds in
/// `last_served`), wrapping around. Tenants are ordered by id, rotated by `rotation` so rounds
/// start with another tenant each time.
///
/// `items` are `(tenant, backfill id, payload)`. Returns each tenant's backfills, in order.
#[allow(clippy::type_complexity)]
pub fn plan_round<T>(
    items: Vec<(String, String, T)>,
    last_served: &HashMap<String, String>,
    rotation: usize,
) -> Vec<(String, Vec<(String, T)>)> {
    let mut by_tenant: std::collections::BTreeMap<String, Vec<(String, T)>> = Default::default();
    for (tenant, backfill, item) in items {
        by_tenant.entry(tenant).or_default().push((backfill, item));
    }
    let n = by_tenant.len();
    let mut tenants: Vec<(String, Vec<(String, T)>)> = by_tenant.into_iter().collect();
    if n > 0 {
        tenants.rotate_left(rotation % n);
    }
    for (tenant, backfills) in tenants.iter_mut() {
        backfills.sort_by(|a, b| a.0.cmp(&b.0));
        backfills.dedup_by(|a, b| a.0 == b.0);
        let first = last_served
            .get(tenant)
            .and_then(|last| backfills.iter().position(|(id, _)| id > last))
            .unwrap_or(0);
        backfills.rotate_left(first);
    }
    tenants
}

/// How one claim's `limit` is shared among `n` backfills in turn order: evenly, the
/// remainder one each to the first ones (with `limit < n`, the last ones get nothing this
/// round and are first in the next).
pub fn shares(limit: usize, n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    (0..n)
        .map(|k| limit / n + usize::from(k < limit % n))
        .collect()
}

/// Executions running in this process, per tenant and in all.
#[derive(Debug, Default)]
pub struct Slots {
    by_tenant: Mutex<HashMap<String, usize>>,
}

/// One running execution's place in [`Slots`]; freed when dropped (the execution finished or
/// was aborted).
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    tenant: String,
}

impl Slots {
    /// Takes a slot for `tenant`.
    pub fn take(self: &Arc<Self>, tenant: &str) -> Slot {
        *self
            .by_tenant
            .lock()
            .expect("poisoned")
            .entry(tenant.to_owned())
            .or_default() += 1;
        Slot {
            slots: self.clone(),
            tenant: tenant.to_owned(),
        }
    }

    /// `(running for tenant, running in all)`.
    pub fn running(&self, tenant: &str) -> (usize, usize) {
        let m = self.by_tenant.lock().expect("poisoned");
        (m.get(tenant).copied().unwrap_or(0), m.values().sum())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.slots.by_tenant.lock().expect("poisoned");
        if let Some(n) = m.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(v: &[(&str, &str)]) -> Vec<(String, String, ())> {
        v.iter()
            .map(|(t, b)| (t.to_string(), b.to_string(), ()))
            .collect()
    }

    fn ids(v: &[(String, Vec<(String, ())>)]) -> Vec<Vec<String>> {
        v.iter()
            .map(|(_, bs)| bs.iter().map(|(b, _)| b.clone()).collect())
            .collect()
    }

    #[test]
    fn every_tenant_gets_one_claim_and_a_newcomer_is_served_in_the_first_round() {
        let all = items(&[("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")]);
        let round = plan_round(all, &HashMap::new(), 0);
        assert_eq!(ids(&round), [vec!["a1", "a2", "a3"], vec!["b1"]]);
    }

    #[test]
    fn a_tenants_backfills_take_turns_to_go_first() {
        let mut last = HashMap::new();
        let mut first = Vec::new();
        for round in 0..5 {
            let all = items(&[("a", "a1"), ("a", "a2"), ("a", "a3")]);
            let planned = plan_round(all, &last, round);
            let (t, bs) = &planned[0];
            // As the orchestrator does when the limit covers only the first backfill.
            last.insert(t.clone(), bs[0].0.clone());
            first.push(bs[0].0.clone());
        }
        assert_eq!(first, ["a1", "a2", "a3", "a1", "a2"]);
    }

    #[test]
    fn rotation_changes_who_goes_first() {
        let all = || items(&[("a", "a1"), ("b", "b1"), ("c", "c1")]);
        assert_eq!(
            ids(&plan_round(all(), &HashMap::new(), 1)),
            [vec!["b1"], vec!["c1"], vec!["a1"]]
        );
        assert_eq!(
            ids(&plan_round(all(), &HashMap::new(), 5)),
            [vec!["c1"], vec!["a1"], vec!["b1"]]
        );
    }

    #[test]
    fn a_limit_is_shared_evenly_and_the_remainder_goes_to_the_first() {
        assert_eq!(shares(500, 10), [50; 10]);
        assert_eq!(shares(7, 3), [3, 2, 2]);
        assert_eq!(shares(2, 4), [1, 1, 0, 0]);
        assert_eq!(shares(5, 0), Vec::<usize>::new());
    }

    #[test]
    fn slots_count_per_tenant_and_free_on_drop() {
        let s = Arc::new(Slots::default());
        let a1 = s.take("a");
        let _a2 = s.take("a");
        let _b = s.take("b");
        assert_eq!(s.running("a"), (2, 3));
        drop(a1);
        assert_eq!(s.running("a"), (1, 2));
        assert_eq!(s.running("z"), (0, 2));
    }

    proptest! {
        /// Every backfill is served exactly once, by its tenant's one claim of the round.
        #[test]
        fn one_claim_per_tenant_and_nothing_lost(
            raw in proptest::collection::vec((0u8..4, 0u8..6), 0..30),
            rot in 0usize..8,
        ) {
            let mut all: Vec<(String, String, ())> = raw
                .iter()
                .map(|(t, b)| (format!("t{t}"), format!("t{t}-b{b}"), ()))
                .collect();
            all.sort();
            all.dedup();
            let tenants: std::collections::BTreeSet<String> = all.iter().map(|x| x.0.clone()).collect();
            let round = plan_round(all.clone(), &HashMap::new(), rot);
            prop_assert_eq!(round.len(), tenants.len());
            let mut got: Vec<_> = round
                .into_iter()
                .flat_map(|(t, bs)| bs.into_iter().map(move |(b, x)| (t.clone(), b, x)))
                .collect();
            got.sort();
            prop_assert_eq!(got, all);
        }

        /// Shares add up to the limit and differ by at most one.
        #[test]
        fn shares_add_up(limit in 0usize..2000, n in 1usize..50) {
            let s = shares(limit, n);
            prop_assert_eq!(s.iter().sum::<usize>(), limit);
            prop_assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
        }
    }
}
