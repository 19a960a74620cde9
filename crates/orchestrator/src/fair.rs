//! Fair dispatch between tenants. A claim round gives every tenant with work one claim, and a
//! tenant's backfills take turns across rounds, so a tenant with many large backfills gets one
//! claim per round like everybody else, and a round is short: another tenant's new backfill is
//! claimed in the next round however big the backlog ahead of it (a round that went on while
//! one backlog kept freeing room would shut newcomers out). [`Slots`] counts what each tenant
//! (and the whole process) has running, for the per-tenant and per-process in-flight caps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One claim round: each tenant with work gets exactly one claim, for the backfill whose turn
/// it is (round-robin over the tenant's backfills, remembered across rounds in
/// `last_served`); every other backfill waits for a later round. Tenants are ordered by id,
/// rotated by `rotation` so rounds start with another tenant each time.
///
/// `items` are `(tenant, backfill id, payload)`. Returns the turns of this round, in order,
/// and the items that wait.
#[allow(clippy::type_complexity)]
pub fn plan_round<T>(
    items: Vec<(String, String, T)>,
    last_served: &HashMap<String, String>,
    rotation: usize,
) -> (Vec<(String, String, T)>, Vec<(String, String, T)>) {
    let mut by_tenant: std::collections::BTreeMap<String, Vec<(String, T)>> = Default::default();
    for (tenant, backfill, item) in items {
        by_tenant.entry(tenant).or_default().push((backfill, item));
    }
    let mut turns = Vec::with_capacity(by_tenant.len());
    let mut waiting = Vec::new();
    let n = by_tenant.len();
    let mut tenants: Vec<(String, Vec<(String, T)>)> = by_tenant.into_iter().collect();
    if n > 0 {
        tenants.rotate_left(rotation % n);
    }
    for (tenant, mut backfills) in tenants {
        backfills.sort_by(|a, b| a.0.cmp(&b.0));
        backfills.dedup_by(|a, b| a.0 == b.0);
        // The first backfill after the one served last, wrapping around.
        let pick = last_served
            .get(&tenant)
            .and_then(|last| backfills.iter().position(|(id, _)| id > last))
            .unwrap_or(0);
        for (i, (backfill, item)) in backfills.into_iter().enumerate() {
            if i == pick {
                turns.push((tenant.clone(), backfill, item));
            } else {
                waiting.push((tenant.clone(), backfill, item));
            }
        }
    }
    (turns, waiting)
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

    fn ids(v: &[(String, String, ())]) -> Vec<String> {
        v.iter().map(|(_, b, _)| b.clone()).collect()
    }

    #[test]
    fn every_tenant_gets_one_turn_and_a_newcomer_is_served_in_the_first_round() {
        let all = items(&[("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")]);
        let (turns, waiting) = plan_round(all, &HashMap::new(), 0);
        assert_eq!(ids(&turns), ["a1", "b1"]);
        assert_eq!(ids(&waiting), ["a2", "a3"]);
    }

    #[test]
    fn a_tenants_backfills_take_turns_across_rounds() {
        let mut last = HashMap::new();
        let mut served = Vec::new();
        for round in 0..5 {
            let all = items(&[("a", "a1"), ("a", "a2"), ("a", "a3")]);
            let (turns, _) = plan_round(all, &last, round);
            let (t, b, _) = &turns[0];
            last.insert(t.clone(), b.clone());
            served.push(b.clone());
        }
        assert_eq!(served, ["a1", "a2", "a3", "a1", "a2"]);
    }

    #[test]
    fn rotation_changes_who_goes_first() {
        let all = || items(&[("a", "a1"), ("b", "b1"), ("c", "c1")]);
        assert_eq!(
            ids(&plan_round(all(), &HashMap::new(), 1).0),
            ["b1", "c1", "a1"]
        );
        assert_eq!(
            ids(&plan_round(all(), &HashMap::new(), 5).0),
            ["c1", "a1", "b1"]
        );
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
        /// Every backfill is either served or waits, exactly once; each tenant has exactly
        /// one turn per round.
        #[test]
        fn one_turn_per_tenant_and_nothing_lost(
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
            let (turns, waiting) = plan_round(all.clone(), &HashMap::new(), rot);
            prop_assert_eq!(turns.len(), tenants.len());
            let mut got: Vec<_> = turns.into_iter().chain(waiting).collect();
            got.sort();
            prop_assert_eq!(got, all);
        }
    }
}
