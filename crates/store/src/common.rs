//! What the SQLite and PostgreSQL stores share: row → model mapping (both schemas store the
//! same values: millisecond instants, JSON as text, booleans, 64-bit integers), the rules that
//! turn a settlement into item and execution changes, and the rerun-failed checks.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use neo_domain::backfill::{
    AutonomyType, BackfillRunState, EntityType, ExecutionStatus, ItemStatus, WorkflowState,
};
use neo_domain::clock::{from_ms, to_ms};
pub(crate) use neo_domain::text::sanitize;
use serde_json::Value;
use sqlx::Row;

use crate::secrets::OpenError;
use crate::*;

/// Typed column access over a row of either backend.
pub(crate) trait Cols {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn flag(&self, col: &str) -> Result<bool>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>>;
}

macro_rules! impl_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn text(&self, col: &str) -> Result<String> {
                Ok(self.try_get(col)?)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>> {
                Ok(self.try_get(col)?)
            }
            fn int(&self, col: &str) -> Result<i64> {
                Ok(self.try_get(col)?)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>> {
                Ok(self.try_get(col)?)
            }
            fn flag(&self, col: &str) -> Result<bool> {
                Ok(self.try_get(col)?)
            }
            fn bytes(&self, col: &str) -> Result<Vec<u8>> {
                Ok(self.try_get(col)?)
            }
        }
    };
}
impl_cols!(sqlx::sqlite::SqliteRow);
impl_cols!(sqlx::postgres::PgRow);

fn ts(ms: i64) -> Timestamp {
    from_ms(ms)
}
fn ots(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(from_ms)
}
fn enum_col<T>(r: &impl Cols, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s = r.text(col)?;
    parse(&s).ok_or_else(|| StoreError::Db(anyhow::anyhow!("bad {col} value {s:?} in database")))
}
pub(crate) fn parse_json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Db(e.into()))
}
pub(crate) fn json_col(r: &impl Cols, col: &str) -> Result<Value> {
    parse_json(&r.text(col)?)
}
pub(crate) fn to_json_text<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Db(e.into()))
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The backfill columns with its workflow's name and autonomy type (`wf_name`, `wf_autonomy`),
/// as [`map_backfill`] reads them, `filter_spec` being the given expression (it lives in
/// `backfill_filters`: migrations 0005 SQLite, 0004 PostgreSQL). Both dialects accept it.
macro_rules! backfill_select {
    ($filter_spec:literal) => {
        concat!(
            "SELECT b.id, b.tenant_id, b.state, b.target_workflow_id, b.entity_type, ",
            $filter_spec,
            " AS filter_spec, b.daily_execution_windows, b.timezone, b.max_in_flight, b.reprocess, \
             b.total_estimated, b.total_items, b.snapshot_complete, b.snapshot_checkpoint, b.pending_count, \
             b.in_flight_count, b.succeeded_count, b.failed_count, b.skipped_count, b.cancelled_count, \
             b.credits_per_entity, b.started_at, b.completed_at, b.created_by, b.created_at, b.updated_at, \
             b.error, b.parent_backfill_run_id, w.name AS wf_name, w.autonomy_type AS wf_autonomy \
             FROM backfills b LEFT JOIN workflows w ON w.id = b.target_workflow_id AND w.tenant_id = b.tenant_id"
        )
    };
}
/// A scalar subquery, not a join: a page of a keyset list reads the filters of its own rows
/// only (with a join, PostgreSQL chose a merge join that walked the filters of every newer
/// backfill, so a page's cost grew with its depth).
pub(crate) const BACKFILL_SELECT: &str =
    backfill_select!("(SELECT f.filter_spec FROM backfill_filters f WHERE f.backfill_id = b.id)");
/// As [`BACKFILL_SELECT`] for [`crate::Store::dispatchable_backfills`]: the `filter_spec` of a
/// backfill whose snapshot is complete reads as JSON `null`. Nothing dispatching reads it, and
/// an explicit id list is megabytes of JSON that every poll would otherwise fetch and parse.
pub(crate) const DISPATCH_SELECT: &str =
    backfill_select!("CASE WHEN b.snapshot_complete THEN 'null' ELSE (SELECT f.filter_spec FROM backfill_filters f WHERE f.backfill_id = b.id) END");

pub(crate) fn map_backfill(r: &impl Cols) -> Result<Backfill> {
    Ok(Backfill {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        state: enum_col(r, "state", BackfillRunState::parse)?,
        target_workflow_id: r.int("target_workflow_id")?,
        target_workflow_name: r.opt_text("wf_name")?,
        target_workflow_autonomy_type: r
            .opt_text("wf_autonomy")?
            .and_then(|s| AutonomyType::parse(&s)),
        entity_type: enum_col(r, "entity_type", EntityType::parse)?,
        filter_spec: json_col(r, "filter_spec")?,
        daily_execution_windows: serde_json::from_str(&r.text("daily_execution_windows")?)
            .map_err(|e| StoreError::Db(e.into()))?,
        timezone: r.text("timezone")?,
        max_in_flight: r.int("max_in_flight")?,
        reprocess: r.flag("reprocess")?,
        total_estimated: r.opt_int("total_estimated")?,
        total_items: r.int("total_items")?,
        snapshot_complete: r.flag("snapshot_complete")?,
        snapshot_checkpoint: r
            .opt_text("snapshot_checkpoint")?
            .map(|s| parse_json(&s))
            .transpose()?,
        pending_count: r.int("pending_count")?,
        in_flight_count: r.int("in_flight_count")?,
        succeeded_count: r.int("succeeded_count")?,
        failed_count: r.int("failed_count")?,
        skipped_count: r.int("skipped_count")?,
        cancelled_count: r.int("cancelled_count")?,
        credits_per_entity: r.int("credits_per_entity")?,
        started_at: ots(r.opt_int("started_at")?),
        completed_at: ots(r.opt_int("completed_at")?),
        created_by: r.text("created_by")?,
        created_at: ts(r.int("created_at")?),
        updated_at: ts(r.int("updated_at")?),
        error: r.opt_text("error")?,
        parent_backfill_run_id: r.opt_text("parent_backfill_run_id")?,
    })
}

pub(crate) fn map_tenant(r: &impl Cols) -> Result<Tenant> {
    Ok(Tenant {
        id: r.text("id")?,
        name: r.text("name")?,
        entra_tenant_id: r.opt_text("entra_tenant_id")?,
        monthly_credit_allowance: r.int("monthly_credit_allowance")?,
        created_at: ts(r.int("created_at")?),
    })
}

pub(crate) fn map_key(r: &impl Cols) -> Result<ApiKey> {
    Ok(ApiKey {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        env: r.text("env")?,
        hint: r.text("hint")?,
        created_at: ts(r.int("created_at")?),
        created_by: r.text("created_by")?,
        expires_at: ots(r.opt_int("expires_at")?),
        revoked_at: ots(r.opt_int("revoked_at")?),
        rotated_to: r.opt_text("rotated_to")?,
        last_used_at: ots(r.opt_int("last_used_at")?),
    })
}

/// A key and its stored hash, as `api_key_by_hash` returns them.
pub(crate) fn map_key_with_hash(r: &impl Cols) -> Result<(ApiKey, Vec<u8>)> {
    Ok((map_key(r)?, r.bytes("key_hash")?))
}

pub(crate) fn map_workflow(r: &impl Cols) -> Result<Workflow> {
    Ok(Workflow {
        id: r.int("id")?,
        tenant_id: r.text("tenant_id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        autonomy_type: enum_col(r, "autonomy_type", AutonomyType::parse)?,
        entity_type: enum_col(r, "entity_type", EntityType::parse)?,
        state: enum_col(r, "state", WorkflowState::parse)?,
        credit_tier: r.int("credit_tier")?,
        executor: json_col(r, "executor")?,
        created_at: ts(r.int("created_at")?),
        updated_at: ts(r.int("updated_at")?),
    })
}

/// Applies a partial update to a workflow read from the database.
pub(crate) fn patch_workflow(w: &mut Workflow, p: WorkflowPatch, now: Timestamp) {
    if let Some(v) = p.name {
        w.name = v;
    }
    if let Some(v) = p.description {
        w.description = v;
    }
    if let Some(v) = p.autonomy_type {
        w.autonomy_type = v;
    }
    if let Some(v) = p.entity_type {
        w.entity_type = v;
    }
    if let Some(v) = p.state {
        w.state = v;
    }
    if let Some(v) = p.credit_tier {
        w.credit_tier = v;
    }
    if let Some(v) = p.executor {
        w.executor = v;
    }
    // As stored: millisecond precision.
    w.updated_at = from_ms(to_ms(now));
}

pub(crate) fn map_item(r: &impl Cols) -> Result<Item> {
    Ok(Item {
        ord: r.int("ord")?,
        entity_id: r.text("entity_id")?,
        entity_number: r.opt_text("entity_number")?,
        status: enum_col(r, "status", ItemStatus::parse)?,
        execution_id: r.opt_text("execution_id")?,
        attempts: r.int("attempts")?,
        error: r.opt_text("error")?,
        updated_at: ts(r.int("updated_at")?),
        next_attempt_at: ots(r.opt_int("next_attempt_at")?),
    })
}

pub(crate) fn map_execution(r: &impl Cols) -> Result<Execution> {
    Ok(Execution {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        agent_id: r.int("agent_id")?,
        agent_name: r.opt_text("agent_name")?,
        backfill_id: r.opt_text("backfill_id")?,
        entity_id: r.text("entity_id")?,
        entity_number: r.opt_text("entity_number")?,
        status: enum_col(r, "status", ExecutionStatus::parse)?,
        attempts: r.int("attempts")?,
        error: r.opt_text("error")?,
        retry_of: r.opt_text("retry_of")?,
        created_at: ts(r.int("created_at")?),
        updated_at: ts(r.int("updated_at")?),
        started_at: ots(r.opt_int("started_at")?),
        finished_at: ots(r.opt_int("finished_at")?),
    })
}

pub(crate) fn map_integration(r: &impl Cols) -> Result<Integration> {
    let secrets = json_col(r, "secrets")?;
    let mut secret_names: Vec<String> = secrets
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    secret_names.sort();
    Ok(Integration {
        tenant_id: r.text("tenant_id")?,
        psa: r.text("psa")?,
        config: json_col(r, "config")?,
        secret_names,
        created_at: ts(r.int("created_at")?),
        updated_at: ts(r.int("updated_at")?),
    })
}

pub(crate) fn map_idempotent(r: &impl Cols) -> Result<IdempotentResponse> {
    Ok(IdempotentResponse {
        fingerprint: r.bytes("fingerprint")?,
        status: r.int("status")? as u16,
        response: json_col(r, "response")?,
        created_at: ts(r.int("created_at")?),
    })
}

/// Outcomes whose error text is storable ([`neo_domain::text::sanitize`]): an executor's
/// report may hold NUL bytes or megabytes, and one outcome the database refuses must not fail
/// a whole settle batch. Borrowed when nothing changes (the common case).
pub(crate) fn storable_outcomes(outcomes: &[Outcome]) -> std::borrow::Cow<'_, [Outcome]> {
    use std::borrow::Cow;
    let dirty = |e: &str| matches!(sanitize(e), Cow::Owned(_));
    let needs = outcomes.iter().any(|o| match &o.settlement {
        Settlement::Failed(e) | Settlement::Cancelled(e) | Settlement::Retry { error: e, .. } => {
            dirty(e)
        }
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

/// Snapshot entries (ids and numbers read from a PSA) made storable.
pub(crate) fn storable_entities(
    items: &[(String, Option<String>)],
) -> std::borrow::Cow<'_, [(String, Option<String>)]> {
    use std::borrow::Cow;
    let dirty = |t: &str| matches!(sanitize(t), Cow::Owned(_));
    if !items
        .iter()
        .any(|(id, n)| dirty(id) || n.as_deref().is_some_and(dirty))
    {
        return Cow::Borrowed(items);
    }
    Cow::Owned(
        items
            .iter()
            .map(|(id, n)| {
                (
                    sanitize(id).into_owned(),
                    n.as_deref().map(|n| sanitize(n).into_owned()),
                )
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
}

impl BackfillDelta {
    pub fn counter(&self, name: &str) -> i64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// The counters a settlement moves, in the order the backends bind them.
pub(crate) const COUNTERS: [&str; 5] = [
    "pending_count",
    "in_flight_count",
    "succeeded_count",
    "failed_count",
    "cancelled_count",
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
    /// Executions to charge in the credit ledger, in first-seen order.
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
        match exec_changes.get_mut(&o.execution_id) {
            Some(ec) => {
                ec.status = st;
                ec.error = err.map(str::to_owned);
                ec.finished |= fin;
            }
            None => {
                exec_order.push(o.execution_id.clone());
                exec_changes.insert(
                    o.execution_id.clone(),
                    ExecChange {
                        status: st,
                        error: err.map(str::to_owned),
                        finished: fin,
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

/// The source-backfill checks of rerun-failed.
pub(crate) fn check_rerunnable(src: &Backfill) -> Result<(), RerunError> {
    if !src.state.is_terminal() {
        return Err(RerunError::NotRerunnable(format!(
            "backfill {} is {}; only a COMPLETED, CANCELLED or FAILED backfill can be rerun",
            src.id, src.state
        )));
    }
    if src.failed_count == 0 {
        return Err(RerunError::NotRerunnable(format!(
            "backfill {} has no failed entities",
            src.id
        )));
    }
    Ok(())
}

/// The target workflow checks of rerun-failed.
pub(crate) fn check_rerun_workflow(wf: Option<Workflow>) -> Result<Workflow, RerunError> {
    let wf = wf.ok_or(RerunError::WorkflowNotFound)?;
    neo_domain::backfill::check_backfill_target(wf.state, wf.autonomy_type)
        .map_err(RerunError::Target)?;
    Ok(wf)
}

/// The `filter_spec` of a rerun child: the failed entities as an explicit list.
pub(crate) fn rerun_filter(failed: &[(String, Option<String>)]) -> Value {
    serde_json::json!({ "entity_ids": failed.iter().map(|(id, _)| id).collect::<Vec<_>>() })
}

/// A fresh execution id (`ex_` and a time-ordered UUID): the one place ids are minted.
pub fn new_execution_id() -> String {
    format!("ex_{}", uuid::Uuid::now_v7().simple())
}

/// 32 random bytes for the cursor-signing secret.
pub(crate) fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    for (i, b) in uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .enumerate()
    {
        secret[i] = *b;
    }
    secret
}

/// The idempotency-key writes of create and rerun-failed, one statement text for both backends
/// (`$N` placeholders, which SQLite accepts too): `idempotency_writes!(sqlx::Sqlite)` in a
/// backend module defines `claim_idempotency_key` and `save_idempotent_response` for its
/// transactions.
macro_rules! idempotency_writes {
    ($db:ty) => {
/// Takes the `Idempotency-Key` of `idem` in this transaction: its expired row is deleted, and a
/// live one (another request won) is [`StoreError::IdempotencyKeyTaken`]. The row is written
/// now and completed by [`save_idempotent_response`] before the commit, so no other
/// transaction ever sees it half-written.
pub(crate) async fn claim_idempotency_key(
    tx: &mut sqlx::Transaction<'_, $db>,
    tenant_id: &str,
    idem: &NewIdempotency<'_>,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND created_at < $3",
    )
    .bind(tenant_id)
    .bind(idem.key)
    .bind(to_ms(idem.not_before))
    .execute(&mut **tx)
    .await?;
    let n = sqlx::query("INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status, response, created_at) VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (tenant_id, key) DO NOTHING")
        .bind(tenant_id)
        .bind(idem.key)
        .bind(idem.fingerprint)
        .bind(to_ms(idem.created_at))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::IdempotencyKeyTaken);
    }
    Ok(())
}

/// Writes the response `idem` renders for `b` into the row [`claim_idempotency_key`] took.
pub(crate) async fn save_idempotent_response(
    tx: &mut sqlx::Transaction<'_, $db>,
    tenant_id: &str,
    idem: &NewIdempotency<'_>,
    b: &Backfill,
) -> Result<()> {
    let (status, response) = (idem.render)(b);
    sqlx::query(
        "UPDATE idempotency_keys SET status = $1, response = $2 WHERE tenant_id = $3 AND key = $4",
    )
    .bind(i64::from(status))
    .bind(response.to_string())
    .bind(tenant_id)
    .bind(idem.key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
    };
}
pub(crate) use idempotency_writes;
// ---- secrets at rest (see `crate::secrets`) ---------------------------------------------

/// The `server_settings` row that tells whether the configured master key is the database's.
pub(crate) const KEY_CHECK: &str = "master_key_check";
const KEY_CHECK_PLAIN: &str = "neo-backfill master key check v1";
const KEY_CHECK_CONTEXT: &str = "server_settings|master_key_check";

fn no_key(what: &str) -> StoreError {
    StoreError::Secret(format!(
        "no master key configured: cannot seal or open {what} (start with --master-key-file or NEO_MASTER_KEY_FILE)"
    ))
}

fn secret_context(tenant_id: &str, name: &str) -> (String, String) {
    (
        format!("integrations|{tenant_id}|secrets.{name}"),
        format!("integrations.secrets.{name} of tenant {tenant_id}"),
    )
}

fn executor_context(tenant_id: &str, id: i64) -> (String, String) {
    (
        format!("workflows|{tenant_id}|{id}|executor.secret"),
        format!("workflows.executor.secret of workflow {id} (tenant {tenant_id})"),
    )
}

fn unopenable(place: &str, e: OpenError) -> StoreError {
    StoreError::Secret(format!("cannot open {place}: {e}"))
}

/// A stored secret brought under `new`: sealed if plaintext, re-wrapped if sealed by `old`
/// (a rotation), else unchanged (`None`).
fn reseal_value(
    old: Option<&Sealer>,
    new: &Sealer,
    stored: &str,
    (context, place): &(String, String),
) -> Result<Option<String>> {
    if !Sealer::is_sealed(stored) {
        return Ok(Some(new.seal(stored, context)));
    }
    match old {
        Some(old) => old
            .rewrap(stored, context, new)
            .map(Some)
            .map_err(|e| unopenable(place, e)),
        // Sealed by another key: the key check is missing or was replaced; refuse to go on.
        None => match stored.split('.').nth(1) {
            Some(id) if id != new.key_id() => Err(unopenable(
                place,
                OpenError::OtherKey {
                    sealed_with: id.to_owned(),
                    configured: new.key_id().to_owned(),
                },
            )),
            _ => Ok(None),
        },
    }
}

/// An integration's secrets as stored: each member's value sealed for its tenant and name
/// (the names stay readable: the API lists them).
pub(crate) fn seal_secrets(
    sealer: Option<&Sealer>,
    tenant_id: &str,
    secrets: &Value,
) -> Result<Value> {
    let Some(members) = secrets.as_object().filter(|m| !m.is_empty()) else {
        return Ok(secrets.clone());
    };
    let sealer = sealer.ok_or_else(|| no_key("integration secrets"))?;
    let mut out = serde_json::Map::new();
    for (name, v) in members {
        let Some(s) = v.as_str() else {
            return Err(StoreError::Conflict(format!(
                "integration secret {name:?} must be a string"
            )));
        };
        out.insert(
            name.clone(),
            Value::String(sealer.seal(s, &secret_context(tenant_id, name).0)),
        );
    }
    Ok(Value::Object(out))
}

/// An integration's secrets as the PSA connector needs them: every member opened.
pub(crate) fn open_secrets(
    sealer: Option<&Sealer>,
    tenant_id: &str,
    stored: Value,
) -> Result<Value> {
    let Value::Object(members) = stored else {
        return Ok(stored);
    };
    if members.is_empty() {
        return Ok(Value::Object(members));
    }
    let sealer = sealer.ok_or_else(|| no_key("integration secrets"))?;
    let mut out = serde_json::Map::new();
    for (name, v) in members {
        let v = match v {
            Value::String(s) if Sealer::is_sealed(&s) => {
                let (context, place) = secret_context(tenant_id, &name);
                let plain = sealer
                    .open(&s, &context)
                    .map_err(|e| unopenable(&place, e))?;
                Value::String(plain.to_string())
            }
            other => other,
        };
        out.insert(name, v);
    }
    Ok(Value::Object(out))
}

/// The executor's `secret` (a webhook's signing secret), if it has one.
pub(crate) fn executor_secret(executor: &Value) -> Option<&str> {
    executor.get("secret")?.as_str()
}

/// The executor with its `secret` replaced by `secret`.
pub(crate) fn with_executor_secret(executor: &Value, secret: Value) -> Value {
    let mut e = executor.clone();
    if let Some(o) = e.as_object_mut() {
        o.insert("secret".into(), secret);
    }
    e
}

/// A workflow's executor as stored: `secret` sealed for its tenant and workflow id.
pub(crate) fn seal_executor(
    sealer: Option<&Sealer>,
    tenant_id: &str,
    id: i64,
    executor: &Value,
) -> Result<Value> {
    let Some(secret) = executor_secret(executor) else {
        return Ok(executor.clone());
    };
    let sealer = sealer.ok_or_else(|| no_key("webhook secrets"))?;
    let sealed = sealer.seal(secret, &executor_context(tenant_id, id).0);
    Ok(with_executor_secret(executor, Value::String(sealed)))
}

/// Fails as writing would without a master key: before a write that seals after its insert.
pub(crate) fn check_can_seal(sealer: Option<&Sealer>, executor: &Value) -> Result<()> {
    match (sealer, executor_secret(executor)) {
        (None, Some(_)) => Err(no_key("webhook secrets")),
        _ => Ok(()),
    }
}

/// Opens the executor secret of a workflow read from the database, in place.
pub(crate) fn open_workflow(sealer: Option<&Sealer>, w: &mut Workflow) -> Result<()> {
    let Some(stored) = executor_secret(&w.executor) else {
        return Ok(());
    };
    let sealer = sealer.ok_or_else(|| no_key("webhook secrets"))?;
    if !Sealer::is_sealed(stored) {
        return Ok(());
    }
    let (context, place) = executor_context(&w.tenant_id, w.id);
    let plain = sealer
        .open(stored, &context)
        .map_err(|e| unopenable(&place, e))?;
    w.executor = with_executor_secret(&w.executor, Value::String(plain.to_string()));
    Ok(())
}

/// [`open_workflow`] over a page or list.
pub(crate) fn open_workflows(sealer: Option<&Sealer>, ws: &mut [Workflow]) -> Result<()> {
    ws.iter_mut().try_for_each(|w| open_workflow(sealer, w))
}

/// An integration's stored `secrets` text brought under `new` (see [`reseal_value`]); `None`
/// when nothing changes. Returns the number of members changed too.
pub(crate) fn reseal_secrets_text(
    old: Option<&Sealer>,
    new: &Sealer,
    tenant_id: &str,
    text: &str,
) -> Result<Option<(String, u64)>> {
    let Value::Object(mut members) = parse_json(text)? else {
        return Ok(None);
    };
    let mut changed = 0;
    for (name, v) in members.iter_mut() {
        if let Value::String(s) = v {
            if let Some(n) = reseal_value(old, new, s, &secret_context(tenant_id, name))? {
                *s = n;
                changed += 1;
            }
        }
    }
    Ok((changed > 0).then(|| (Value::Object(members).to_string(), changed)))
}

/// A workflow's stored `executor` text brought under `new`; `None` when nothing changes.
pub(crate) fn reseal_executor_text(
    old: Option<&Sealer>,
    new: &Sealer,
    tenant_id: &str,
    id: i64,
    text: &str,
) -> Result<Option<String>> {
    let executor = parse_json(text)?;
    let Some(stored) = executor_secret(&executor) else {
        return Ok(None);
    };
    Ok(
        reseal_value(old, new, stored, &executor_context(tenant_id, id))?
            .map(|n| with_executor_secret(&executor, Value::String(n)).to_string()),
    )
}

/// The key check sealed with `sealer`, as `server_settings` stores it.
pub(crate) fn key_check_value(sealer: &Sealer) -> Vec<u8> {
    sealer.seal(KEY_CHECK_PLAIN, KEY_CHECK_CONTEXT).into_bytes()
}

/// Whether `sealer` is the database's master key, by its stored key check.
pub(crate) fn verify_key_check(sealer: &Sealer, stored: &[u8]) -> Result<()> {
    let stored = String::from_utf8_lossy(stored);
    let db_key = stored
        .strip_prefix(crate::secrets::SEALED_PREFIX)
        .and_then(|s| s.split('.').next())
        .unwrap_or("unknown");
    match sealer.open(&stored, KEY_CHECK_CONTEXT) {
        Ok(v) if v.as_str() == KEY_CHECK_PLAIN => Ok(()),
        Ok(_) | Err(OpenError::Malformed(_)) | Err(OpenError::Tampered(_)) => {
            Err(StoreError::Secret(format!(
                "the database's master key check does not open with the configured master key {}: the key does not match or the check was tampered with",
                sealer.key_id()
            )))
        }
        Err(OpenError::OtherKey { .. }) => Err(StoreError::Secret(format!(
            "wrong master key: the database's secrets are sealed with master key {db_key}, but the configured master key is {}; start with the key file of key {db_key} (see `neo-backfill secrets rotate-master-key` to change keys)",
            sealer.key_id()
        ))),
    }
}
