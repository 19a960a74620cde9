//! Operator control in the loop (issue 21): the self-pauses and the tenant's monthly credit
//! allowance.
//!
//! The per-backfill rules are enforced where they cannot be raced: a trial's held items and a
//! backfill's credit cap in the claim itself (`neo_store`), so no replica ever starts what they
//! forbid. What the loop adds is the *pause*: once a backfill can do nothing more for one of
//! these reasons and nothing of it is in flight, it pauses itself with a `pause_reason` the
//! operator can act on, instead of sitting RUNNING with nothing happening. The store re-checks
//! every reason under the backfill's lock.
//!
//! The tenant's allowance spans backfills, so it is enforced here, on the claim's limit: the
//! month's ledger and what is in flight when read (again every [`ALLOWANCE_REFRESH`], and
//! every tick once less than [`ALLOWANCE_CLOSE`] of it is left), plus everything this process
//! claimed since (counted until the next reading whether it succeeded or not, so a process
//! never overshoots by itself). Replicas each claim against their own reading, so near the
//! end a tenant may overshoot by what the other replicas claim within one tick.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use neo_domain::control::PauseReason;
use neo_store::Backfill;

use crate::*;

/// How long a reading of a tenant's month in the ledger is used.
pub(crate) const ALLOWANCE_REFRESH: Duration = Duration::from_secs(30);
/// Below this share of the allowance left, the ledger is read every tick.
const ALLOWANCE_CLOSE: f64 = 0.1;

/// One tenant's allowance as last measured.
#[derive(Debug, Clone, Copy)]
struct Reading {
    allowance: i64,
    /// Charged this month, per the ledger when read.
    used: i64,
    read_at: Timestamp,
    month_start: Timestamp,
    /// Credits in flight when read (each may succeed), plus what this process claimed since.
    committed: i64,
}

impl Reading {
    fn left(&self) -> i64 {
        self.allowance - self.used - self.committed
    }
}

/// The tenants' allowances as this process last measured them.
#[derive(Default)]
pub(crate) struct Allowances(Mutex<HashMap<String, Reading>>);

impl Allowances {
    /// How many executions at `per_entity` credits `tenant` may still start (`None`: not
    /// measured, no limit known).
    pub(crate) fn room(&self, tenant: &str, per_entity: i64) -> Option<usize> {
        let map = self.0.lock().expect("poisoned");
        let r = map.get(tenant)?;
        Some((r.left().max(0) / per_entity.max(1)) as usize)
    }

    /// `n` more executions at `per_entity` credits were claimed for `tenant` (negative: a
    /// reservation given back).
    pub(crate) fn claimed(&self, tenant: &str, n: i64, per_entity: i64) {
        if let Some(r) = self.0.lock().expect("poisoned").get_mut(tenant) {
            r.committed += n * per_entity;
        }
    }
}

impl Orchestrator {
    /// Measures the allowance of every tenant with a backfill to drive this tick.
    pub(crate) async fn measure_allowances<'a>(
        &self,
        driven: impl Iterator<Item = &'a Backfill>,
    ) -> anyhow::Result<()> {
        let i = &self.inner;
        let now = i.clock.now();
        let (month_start, month_end) = neo_domain::cost::month_of(now);
        let mut in_flight: HashMap<&str, i64> = HashMap::new();
        for b in driven {
            *in_flight.entry(b.tenant_id.as_str()).or_default() +=
                b.in_flight_count * b.credits_per_entity;
        }
        for (tenant, in_flight) in in_flight {
            let last = i
                .allowances
                .0
                .lock()
                .expect("poisoned")
                .get(tenant)
                .copied();
            let fresh = last.is_some_and(|r| {
                let age = now.duration_since(r.read_at).as_secs_f64();
                r.month_start == month_start
                    && age < ALLOWANCE_REFRESH.as_secs_f64()
                    && r.left() as f64 > r.allowance as f64 * ALLOWANCE_CLOSE
            });
            if fresh {
                // What was claimed since the reading is still counted as committed: either in
                // flight, or settled into a ledger not read again yet.
                continue;
            }
            let Some(t) = i.store.tenant(tenant).await? else {
                continue;
            };
            let used = i.store.credits_used(tenant, month_start, month_end).await?;
            let reading = Reading {
                allowance: t.monthly_credit_allowance,
                used,
                read_at: now,
                month_start,
                committed: in_flight,
            };
            i.allowances
                .0
                .lock()
                .expect("poisoned")
                .insert(tenant.to_owned(), reading);
        }
        Ok(())
    }

    /// Pauses `b` (read this tick, nothing dispatched for it) when it can do nothing more for
    /// one of the self-pause reasons; the store re-checks under the backfill's lock.
    pub(crate) async fn pause_if_stuck(&self, b: &Backfill) -> anyhow::Result<()> {
        let i = &self.inner;
        let reason = if b.in_trial() {
            PauseReason::TrialComplete
        } else if b.max_credits.is_some() && b.budget_room() == Some(0) {
            PauseReason::BudgetReached
        } else if i.allowances.room(&b.tenant_id, b.credits_per_entity) == Some(0) {
            PauseReason::AllowanceExhausted
        } else {
            return Ok(());
        };
        if b.in_flight_count > 0 && reason != PauseReason::BudgetReached {
            return Ok(());
        }
        let now = i.clock.now();
        if i.store
            .pause_itself(&b.tenant_id, &b.id, reason, now)
            .await?
        {
            i.drivers.lock().expect("poisoned").remove(&b.id);
            tracing::info!(backfill = %b.id, reason = reason.as_str(), "backfill paused itself");
            metrics::counter!("neo_backfills_self_paused_total", "reason" => reason.as_str())
                .increment(1);
        }
        Ok(())
    }
}
