//! Row ↔ model mapping, the same for both backends (both schemas store the same values:
//! millisecond instants, JSON as text, booleans, 64-bit integers), the shared SELECT lists, and
//! the ids and secrets the store mints.

use jiff::Timestamp;
use neo_domain::backfill::{
    AutonomyType, BackfillMode, BackfillRunState, EntityType, ExecutionStatus, ItemStatus,
    WorkflowState,
};
use neo_domain::clock::{from_ms, to_ms};
use neo_domain::control::PauseReason;
use neo_domain::eta::Throughput;
use serde_json::Value;
use sqlx::Row;

use crate::*;

/// Typed column access over a row of either backend.
pub(crate) trait Cols {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn flag(&self, col: &str) -> Result<bool>;
    fn float(&self, col: &str) -> Result<f64>;
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
            fn float(&self, col: &str) -> Result<f64> {
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
    parse(&s).ok_or_else(|| StoreError::Corrupt(format!("bad {col} value {s:?} in database")))
}
pub(crate) fn parse_json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON in database: {e}")))
}
pub(crate) fn json_col(r: &impl Cols, col: &str) -> Result<Value> {
    parse_json(&r.text(col)?)
}
pub(crate) fn to_json_text<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| StoreError::Corrupt(format!("a value could not be written as JSON: {e}")))
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// `err` for a unique violation (e.g. a second active backfill of a workflow), else `e`.
pub(crate) fn unique_to(e: sqlx::Error, err: StoreError) -> StoreError {
    if is_unique_violation(&e) {
        err
    } else {
        e.into()
    }
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
             b.error, b.parent_backfill_run_id, b.name, b.mode, b.remove_notes, b.start_at, b.pause_reason, b.max_credits, \
             b.trial_sample_size, b.trial_summary, b.rate_items, b.rate_seconds, b.rate_at, b.rerun_causes, b.effective_max_in_flight, b.max_in_flight_per_company, b.company_blackouts, w.name AS wf_name, w.autonomy_type AS wf_autonomy \
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
            .map_err(|e| StoreError::Corrupt(format!("bad JSON in database: {e}")))?,
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
        name: r.opt_text("name")?,
        mode: enum_col(r, "mode", BackfillMode::parse)?,
        remove_notes: r.flag("remove_notes")?,
        start_at: ots(r.opt_int("start_at")?),
        pause_reason: r
            .opt_text("pause_reason")?
            .and_then(|s| PauseReason::parse(&s)),
        max_credits: r.opt_int("max_credits")?,
        trial_sample_size: r.opt_int("trial_sample_size")?,
        trial_summary: r
            .opt_text("trial_summary")?
            .map(|s| {
                serde_json::from_str(&s)
                    .map_err(|e| StoreError::Corrupt(format!("bad trial summary in database: {e}")))
            })
            .transpose()?,
        throughput: Throughput {
            items: r.float("rate_items")?,
            seconds: r.float("rate_seconds")?,
            at: ots(r.opt_int("rate_at")?),
        },
        rerun_causes: r
            .opt_text("rerun_causes")?
            .map(|s| {
                parse_json(&s).and_then(|v| {
                    serde_json::from_value(v).map_err(|e| {
                        StoreError::Corrupt(format!("bad rerun causes in database: {e}"))
                    })
                })
            })
            .transpose()?,
        effective_max_in_flight: r.opt_int("effective_max_in_flight")?,
        max_in_flight_per_company: r.opt_int("max_in_flight_per_company")?,
        company_blackouts: r
            .opt_text("company_blackouts")?
            .map(|s| {
                serde_json::from_str(&s).map_err(|e| {
                    StoreError::Corrupt(format!("bad company blackouts in database: {e}"))
                })
            })
            .transpose()?,
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
        summary: r.opt_text("summary")?,
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
        http_status: r.opt_int("http_status")?.map(|s| s as u16),
        attempt_started_at: ots(r.opt_int("attempt_started_at")?),
    })
}

pub(crate) fn map_attempt(r: &impl Cols) -> Result<ExecutionAttempt> {
    Ok(ExecutionAttempt {
        attempt: r.int("attempt")?,
        started_at: ots(r.opt_int("started_at")?),
        finished_at: ts(r.int("finished_at")?),
        http_status: r.opt_int("http_status")?.map(|s| s as u16),
        error: r.opt_text("error")?,
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
        bucket: neo_domain::budget::Bucket {
            millis: r.int("budget_millis")?,
            at_ms: r.int("budget_at")?,
            hour_ms: r.int("budget_hour")?,
            used: r.int("budget_used")?,
        },
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
