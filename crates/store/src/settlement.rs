//! The rules that turn outcomes into item, execution, counter and backfill changes: both
//! backends read the rows, plan here ([`plan_settlement`]), and write the plan in a fixed
//! number of set-based statements. Text from outside is made storable first.

use std::collections::{BTreeMap, HashMap};

use neo_domain::backfill::ExecutionStatus;
use neo_domain::clock::to_ms;
pub(crate) use neo_domain::text::sanitize;

use crate::*;

/// Outcomes whose error text is storable ([`neo_domain::text::sanitize`]): an executor's
/// report may hold NUL bytes or megabytes, and one outcome the database refuses must not fail
/// a whole settle batch. Borrowed when nothing changes (the common case).
pub(crate) fn storable_outcomes(outcomes: &[Outcome]) -> std::borrow::Cow<'_, [Outcome]> {
    use std::borrow::Cow;
    let dirty = |e: &str| matches!(sanitize(e), Cow::Owned(_));
    let needs = outcomes.iter().any(|o| match &o.settlement {
        Settlement::Failed(e)
        | Settlement::Skipped(e)
        | Settlement::Cancelled(e)
        | Settlement::Retry { error: e, .. } => dirty(e),
        _ => false,
    });
    if !needs {
        return Cow::Borrowed(outcomes);
    }
    let clean = |e: &str| sanitize(e).into_owned();
    Cow::Owned(
        outcomes
            .iter()
            .map(|o| Outcome {
                settlement: match &o.settlement {
                    Settlement::Failed(e) => Settlement::Failed(clean(e)),
                    Settlement::Skipped(e) => Settlement::Skipped(clean(e)),
                    Settlement::Cancelled(e) => Settlement::Cancelled(clean(e)),
                    Settlement::Retry { error, at } => Settlement::Retry {
                        error: clean(error),
                        at: *at,
                    },
                    s => s.clone(),
                },
                ..o.clone()
            })
            .collect(),
    )
}

/// Snapshot entries (ids, numbers and summaries read from a PSA) made storable.
pub(crate) fn storable_entities(items: &[SnapshotEntry]) -> std::borrow::Cow<'_, [SnapshotEntry]> {
    use std::borrow::Cow;
    let dirty = |t: &str| matches!(sanitize(t), Cow::Owned(_));
    let opt = |t: &Option<String>| t.as_deref().is_some_and(dirty);
    if !items
        .iter()
        .any(|e| dirty(&e.id) || opt(&e.number) || opt(&e.summary) || opt(&e.company))
    {
        return Cow::Borrowed(items);
    }
    let clean = |t: &Option<String>| t.as_deref().map(|t| sanitize(t).into_owned());
    Cow::Owned(
        items
            .iter()
            .map(|e| SnapshotEntry {
                id: sanitize(&e.id).into_owned(),
                number: clean(&e.number),
                summary: clean(&e.summary),
                company: clean(&e.company),
            })
            .collect(),
    )
}

/// The settlement an executor's final status reports through `finish_execution`.
pub(crate) fn settlement_of(status: ExecutionStatus, error: Option<&str>) -> Settlement {
    match status {
        ExecutionStatus::Succeeded => Settlement::Succeeded,
        ExecutionStatus::Failed => Settlement::Failed(error.unwrap_or("failed").to_owned()),
        _ => Settlement::Cancelled(error.unwrap_or("cancelled").to_owned()),
    }
}

/// How a settlement changes its execution row: status, error, and whether it is final
/// (`finished_at` is set and, on success, the credit ledger charged).
pub(crate) fn execution_change(s: &Settlement) -> (&'static str, Option<&str>, bool) {
    match s {
        Settlement::Succeeded => ("succeeded", None, true),
        Settlement::Failed(e) => ("failed", Some(e.as_str()), true),
        Settlement::Skipped(e) => ("skipped", Some(e.as_str()), true),
        Settlement::Cancelled(e) => ("cancelled", Some(e.as_str()), true),
        Settlement::Retry { error, .. } => ("queued", Some(error.as_str()), false),
        Settlement::AwaitCallback { .. } => ("running", None, false),
    }
}

/// The writes of a settlement of an execution that has no backfill item (its callback after
/// the item moved on, or an execution outside a backfill): its row, and its credit when it
/// succeeded, as [`crate::Store::settle`] would write them.
pub(crate) fn lone_execution_writes(
    id: &str,
    s: &Settlement,
) -> (Vec<(String, ExecChange)>, Vec<String>) {
    let (status, error, finished) = execution_change(s);
    let change = ExecChange {
        status,
        error: error.map(str::to_owned),
        finished,
        http_status: None,
        attempt_started_at: None,
    };
    let credit = match s {
        Settlement::Succeeded => vec![id.to_owned()],
        _ => Vec::new(),
    };
    (vec![(id.to_owned(), change)], credit)
}

/// How an outcome changes its item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ItemChange<'a> {
    /// The backfill counter the item moves to.
    pub counter: &'static str,
    pub status: &'static str,
    pub error: Option<&'a str>,
    pub next_attempt_at: Option<i64>,
    pub lease_owner: Option<&'static str>,
    pub lease_expires_at: Option<i64>,
}

pub(crate) fn item_change(s: &Settlement) -> ItemChange<'_> {
    let plain = |counter, status, error| ItemChange {
        counter,
        status,
        error,
        next_attempt_at: None,
        lease_owner: None,
        lease_expires_at: None,
    };
    match s {
        Settlement::Succeeded => plain("succeeded_count", "succeeded", None),
        Settlement::Failed(e) => plain("failed_count", "failed", Some(e.as_str())),
        Settlement::Skipped(e) => plain("skipped_count", "skipped", Some(e.as_str())),
        Settlement::Cancelled(e) => plain("cancelled_count", "cancelled", Some(e.as_str())),
        Settlement::Retry { error, at } => ItemChange {
            next_attempt_at: Some(to_ms(*at)),
            ..plain("pending_count", "pending", Some(error.as_str()))
        },
        Settlement::AwaitCallback { deadline } => ItemChange {
            lease_owner: Some(CALLBACK_OWNER),
            lease_expires_at: Some(to_ms(*deadline)),
            ..plain("in_flight_count", "in_flight", None)
        },
    }
}

/// The counter an item in `status` is counted in, for the statuses an outcome may apply to.
pub(crate) fn settleable_counter(status: &str) -> Option<&'static str> {
    match status {
        "in_flight" => Some("in_flight_count"),
        "pending" => Some("pending_count"),
        _ => None,
    }
}

/// The final change of one execution row in a settlement batch.
pub(crate) struct ExecChange {
    pub status: &'static str,
    pub error: Option<String>,
    pub finished: bool,
    /// The attempt's report; `None` keeps what the row holds.
    pub http_status: Option<i64>,
    pub attempt_started_at: Option<i64>,
}

/// An attempt a retry follows, kept in the execution's history (`execution_attempts`; its
/// number is the execution's `attempts` when written).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct AttemptWrite {
    pub execution_id: String,
    pub started_at: Option<i64>,
    pub http_status: Option<i64>,
    pub error: String,
}

/// What a batch of outcomes does to one backfill.
#[derive(Default)]
pub(crate) struct BackfillDelta {
    pub state: String,
    pub streak: i64,
    pub counters: BTreeMap<&'static str, i64>,
    /// Counters or state changed: `updated_at` moves.
    pub touched: bool,
    /// At least one outcome applied: the backfill may complete.
    pub applied: bool,
    /// The circuit breaker tripped with this error.
    pub tripped: Option<String>,
    /// The workflow's outcomes in this batch, in order: `s` succeeded, `f` failed (appended to
    /// the backfill's latest outcomes, see `neo_domain::notify::push_outcome`).
    pub outcomes: String,
}

impl BackfillDelta {
    pub fn counter(&self, name: &str) -> i64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Items that left pending and in flight for good (the throughput the ETA measures).
    pub fn settled(&self) -> u64 {
        (-(self.counter(COUNTERS[0]) + self.counter(COUNTERS[1]))).max(0) as u64
    }
}

/// The counters a settlement moves, in the order the backends bind them.
pub(crate) const COUNTERS: [&str; 6] = [
    "pending_count",
    "in_flight_count",
    "succeeded_count",
    "failed_count",
    "cancelled_count",
    "skipped_count",
];

/// A batch of outcomes turned into row changes, exactly as applying them one by one in order
/// would (a later outcome for the same item sees the earlier one's result). Both backends
/// read the rows, plan here, and write the plan in a fixed number of set-based statements.
pub(crate) struct SettlePlan<'a> {
    /// Whether each outcome applied (false: the item was settled meanwhile, or is unknown).
    pub applied: Vec<bool>,
    /// The last change of each item, in key order.
    pub items: BTreeMap<(String, i64), ItemChange<'a>>,
    /// The last change of each execution, in first-seen order.
    pub execs: Vec<(String, ExecChange)>,
    /// Attempts followed by a retry, for the executions' history.
    pub retried: Vec<AttemptWrite>,
    /// Executions to charge in the credit ledger, in first-seen order. Each is charged once
    /// because it succeeds once: an outcome applies only to its item in flight under that
    /// execution (rows locked), and a lone execution only while it is not final. So the
    /// ledger holds one row per workflow and settled batch (`executions` counts them), not a
    /// row per execution: three index entries a batch instead of three an item.
    pub credit_ids: Vec<String>,
    /// Every backfill the batch names that exists, by id.
    pub backfills: BTreeMap<String, BackfillDelta>,
}

impl SettlePlan<'_> {
    /// Backfills whose counters or state change, in id order.
    pub fn touched(&self) -> Vec<(&str, &BackfillDelta)> {
        self.backfills
            .iter()
            .filter(|(_, d)| d.touched)
            .map(|(id, d)| (id.as_str(), d))
            .collect()
    }

    /// Backfills at least one outcome applied to (they may complete), in id order.
    pub fn applied_backfills(&self) -> Vec<String> {
        self.backfills
            .iter()
            .filter(|(_, d)| d.applied)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Plans a settlement. `items` holds the current `(status, execution_id)` of the outcomes'
/// items and `backfills` the `(id, state, consecutive_failures)` of their backfills, both read
/// (and, on PostgreSQL, locked) in the settling transaction.
pub(crate) fn plan_settlement(
    outcomes: &[Outcome],
    mut items: HashMap<(String, i64), (String, Option<String>)>,
    backfills: impl IntoIterator<Item = (String, String, i64)>,
    breaker_threshold: i64,
) -> SettlePlan<'_> {
    let mut deltas: BTreeMap<String, BackfillDelta> = backfills
        .into_iter()
        .map(|(id, state, streak)| {
            (
                id,
                BackfillDelta {
                    state,
                    streak,
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut applied = Vec::with_capacity(outcomes.len());
    let mut item_changes: BTreeMap<(String, i64), ItemChange<'_>> = BTreeMap::new();
    let mut exec_order: Vec<String> = Vec::new();
    let mut exec_changes: HashMap<String, ExecChange> = HashMap::new();
    let mut credit_ids: Vec<String> = Vec::new();
    let mut retried: Vec<AttemptWrite> = Vec::new();
    let mut credited: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for o in outcomes {
        let key = (o.backfill_id.clone(), o.ord);
        let Some((status, exec)) = items.get_mut(&key) else {
            applied.push(false);
            continue;
        };
        let from = settleable_counter(status);
        let (Some(from), Some(d)) = (from, deltas.get_mut(&o.backfill_id)) else {
            applied.push(false);
            continue;
        };
        if exec.as_deref() != Some(o.execution_id.as_str()) {
            applied.push(false);
            continue;
        }
        applied.push(true);
        let c = item_change(&o.settlement);
        *status = c.status.to_owned();
        let to = c.counter;
        item_changes.insert(key, c);

        let (st, err, fin) = execution_change(&o.settlement);
        let http_status = o.attempt.http_status.map(i64::from);
        let attempt_started_at = o.attempt.started_at.map(to_ms);
        if let Settlement::Retry { error, .. } = &o.settlement {
            retried.push(AttemptWrite {
                execution_id: o.execution_id.clone(),
                started_at: attempt_started_at,
                http_status,
                error: error.clone(),
            });
        }
        match exec_changes.get_mut(&o.execution_id) {
            Some(ec) => {
                ec.status = st;
                ec.error = err.map(str::to_owned);
                ec.finished |= fin;
                ec.http_status = http_status.or(ec.http_status);
                ec.attempt_started_at = attempt_started_at.or(ec.attempt_started_at);
            }
            None => {
                exec_order.push(o.execution_id.clone());
                exec_changes.insert(
                    o.execution_id.clone(),
                    ExecChange {
                        status: st,
                        error: err.map(str::to_owned),
                        finished: fin,
                        http_status,
                        attempt_started_at,
                    },
                );
            }
        }
        if o.settlement == Settlement::Succeeded && credited.insert(o.execution_id.as_str()) {
            credit_ids.push(o.execution_id.clone());
        }

        d.applied = true;
        if from != to {
            *d.counters.entry(from).or_default() -= 1;
            *d.counters.entry(to).or_default() += 1;
            d.streak = match &o.settlement {
                Settlement::Succeeded => 0,
                Settlement::Failed(_) => d.streak + 1,
                _ => d.streak,
            };
            match &o.settlement {
                Settlement::Succeeded => d.outcomes.push('s'),
                Settlement::Failed(_) => d.outcomes.push('f'),
                _ => {}
            }
            d.touched = true;
        }
        if matches!(o.settlement, Settlement::Failed(_))
            && d.state == "RUNNING"
            && d.streak >= breaker_threshold
        {
            d.state = "PAUSED".to_owned();
            d.tripped = Some(breaker_error(d.streak));
            d.touched = true;
        }
    }
    let execs = exec_order
        .into_iter()
        .map(|id| {
            let c = exec_changes.remove(&id).expect("recorded with its id");
            (id, c)
        })
        .collect();
    SettlePlan {
        applied,
        items: item_changes,
        execs,
        retried,
        credit_ids,
        backfills: deltas,
    }
}

/// The error a backfill paused by the circuit breaker shows.
pub(crate) fn breaker_error(consecutive_failures: i64) -> String {
    format!(
        "circuit breaker: {consecutive_failures} consecutive failed executions; the backfill paused itself. Fix the workflow, then resume."
    )
}

/// An expired lease's item, as the reaper reads it: backfill, ord, lease owner, execution.
pub(crate) type ExpiredItem = (String, i64, Option<String>, Option<String>);
/// An in-flight item to requeue: backfill, ord, execution.
pub(crate) type HeldItem = (String, i64, Option<String>);

/// Expired leases sorted out: an item a callback executor holds ([`CALLBACK_OWNER`]) ran past
/// its deadline and fails; any other was held by a worker that stopped, and is requeued.
pub(crate) fn split_expired(expired: Vec<ExpiredItem>) -> (Vec<Outcome>, Vec<HeldItem>) {
    let mut timeouts = Vec::new();
    let mut leases = Vec::new();
    for (backfill_id, ord, owner, exec) in expired {
        if owner.as_deref() == Some(CALLBACK_OWNER) {
            timeouts.push(Outcome {
                backfill_id,
                ord,
                execution_id: exec.unwrap_or_default(),
                settlement: Settlement::Failed(
                    "the executor did not report completion before the deadline".into(),
                ),
                attempt: AttemptReport::default(),
            });
        } else {
            leases.push((backfill_id, ord, exec));
        }
    }
    (timeouts, leases)
}

/// Items to requeue sorted out by their backfill's state (`states`): those of a CANCELLED or
/// FAILED backfill, which nothing will dispatch again, end cancelled (outcomes to settle); the
/// others go back to pending (their keys).
pub(crate) fn split_requeue<'a>(
    items: &'a [HeldItem],
    states: &HashMap<String, String>,
) -> (Vec<Outcome>, Vec<(&'a str, i64)>) {
    let mut cancel = Vec::new();
    let mut back = Vec::new();
    for (bid, ord, exec) in items {
        match states.get(bid).map(String::as_str) {
            Some(state @ ("CANCELLED" | "FAILED")) => cancel.push(Outcome {
                backfill_id: bid.clone(),
                ord: *ord,
                execution_id: exec.clone().unwrap_or_default(),
                settlement: Settlement::Cancelled(format!("the backfill is {state}")),
                attempt: AttemptReport::default(),
            }),
            _ => back.push((bid.as_str(), *ord)),
        }
    }
    (cancel, back)
}
