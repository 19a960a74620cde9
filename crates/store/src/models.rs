//! Rows as the store returns them. The API maps these to its public resources.

use jiff::Timestamp;
use neo_domain::backfill::{
    AutonomyType, BackfillMode, BackfillRunState, EntityType, ExecutionStatus, ItemStatus,
    WorkflowState,
};
use neo_domain::budget::{Bucket, Budget};
use neo_domain::control::{budget_room, PauseReason};
use neo_domain::eta::{EtaBasis, Throughput};
use neo_domain::fairness::{Blackouts, CompanyBlackouts};
use neo_domain::triage::Causes;
use neo_domain::windows::WorkflowDailyExecutionWindows;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub entra_tenant_id: Option<String>,
    pub monthly_credit_allowance: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub env: String,
    /// The last four characters of the secret, to tell keys apart in listings.
    pub hint: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub rotated_to: Option<String>,
    pub last_used_at: Option<Timestamp>,
}

impl ApiKey {
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub tenant_id: String,
    pub env: String,
    pub key_hash: [u8; 32],
    pub hint: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub id: i64,
    pub tenant_id: String,
    pub name: String,
    pub description: Option<String>,
    pub autonomy_type: AutonomyType,
    pub entity_type: EntityType,
    pub state: WorkflowState,
    pub credit_tier: i64,
    /// The executor configuration, secrets included: never serialize this to a client as is.
    pub executor: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewWorkflow {
    pub name: String,
    pub description: Option<String>,
    pub autonomy_type: AutonomyType,
    pub entity_type: EntityType,
    pub state: WorkflowState,
    pub credit_tier: i64,
    pub executor: Value,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WorkflowPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub autonomy_type: Option<AutonomyType>,
    pub entity_type: Option<EntityType>,
    pub state: Option<WorkflowState>,
    pub credit_tier: Option<i64>,
    pub executor: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub tenant_id: String,
    pub psa: String,
    /// Non-secret settings (URLs, ids).
    pub config: Value,
    /// Names of the secrets that are set (their values never leave the store through the API).
    pub secret_names: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Its request budget's bucket, shared by every replica ([`neo_domain::budget`]).
    pub bucket: Bucket,
}

impl Integration {
    /// Its request budget: `requests_per_hour` and `backfill_share` from its config, else the
    /// PSA's defaults.
    pub fn budget(&self) -> Budget {
        let n = |k: &str| self.config.get(k).and_then(Value::as_i64);
        Budget::of(&self.psa, n("requests_per_hour"), n("backfill_share"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    pub id: String,
    pub tenant_id: String,
    pub state: BackfillRunState,
    pub target_workflow_id: i64,
    /// From the workflow, `None` once it is deleted.
    pub target_workflow_name: Option<String>,
    pub target_workflow_autonomy_type: Option<AutonomyType>,
    pub entity_type: EntityType,
    pub filter_spec: Value,
    pub daily_execution_windows: WorkflowDailyExecutionWindows,
    pub timezone: String,
    pub max_in_flight: i64,
    pub reprocess: bool,
    pub total_estimated: Option<i64>,
    pub total_items: i64,
    pub snapshot_complete: bool,
    /// Where enumeration of the snapshot resumes (connector-defined, e.g. `{"last_id": 1234}`).
    pub snapshot_checkpoint: Option<Value>,
    pub pending_count: i64,
    pub in_flight_count: i64,
    pub succeeded_count: i64,
    pub failed_count: i64,
    pub skipped_count: i64,
    pub cancelled_count: i64,
    pub credits_per_entity: i64,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub error: Option<String>,
    pub parent_backfill_run_id: Option<String>,
    /// The operator's name for it (none: shown by its workflow's name).
    pub name: Option<String>,
    /// What its executions do with a `psa_actions` workflow (live for every other executor).
    pub mode: BackfillMode,
    /// A revert that also removes the notes its parent added.
    pub remove_notes: bool,
    /// Nothing is dispatched before this instant (a scheduled start).
    pub start_at: Option<Timestamp>,
    /// Why it is PAUSED (`None` while it runs, or for a backfill paused before migration 0015).
    pub pause_reason: Option<PauseReason>,
    /// Its credit cap: claims never start an execution that could take it over.
    pub max_credits: Option<i64>,
    /// A trial run: this many entities first (`None`: no trial).
    pub trial_sample_size: Option<i64>,
    /// The trial's result, once its sample has settled.
    pub trial_summary: Option<TrialSummary>,
    /// Its measured throughput (moved by every settlement), for the ETA.
    pub throughput: Throughput,
    /// A rerun-failed child of chosen causes: which (`None`: every failure, or not a rerun).
    pub rerun_causes: Option<Causes>,
    /// The in-flight limit the orchestrator adapted it to (`None`: `max_in_flight`).
    pub effective_max_in_flight: Option<i64>,
    /// At most this many of one PSA company's items in flight (`None`: no cap).
    pub max_in_flight_per_company: Option<i64>,
    /// Companies' change freezes ([`neo_domain::fairness`]).
    pub company_blackouts: Option<CompanyBlackouts>,
}

/// What a trial's sample did, kept on the backfill when it pauses with `trial_complete`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialSummary {
    pub sample_size: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
    /// The most common errors of the failed items, most frequent first.
    pub top_errors: Vec<TrialError>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialError {
    pub error: String,
    pub count: i64,
}

impl Backfill {
    /// When the backfill may dispatch: its windows in its time zone, closed before its
    /// scheduled start. The one schedule the orchestrator, the API and the dashboard read.
    pub fn schedule(
        &self,
    ) -> Result<neo_domain::windows::Schedule, neo_domain::validation::FieldError> {
        Ok(
            neo_domain::windows::Schedule::new(&self.daily_execution_windows, &self.timezone)?
                .starting(self.start_at),
        )
    }

    /// `succeeded + failed`: skipped and cancelled entities are not processed.
    pub fn processed_count(&self) -> i64 {
        self.succeeded_count + self.failed_count
    }

    /// A trial whose sample has not finished: nothing outside the sample may run, and nothing
    /// may run before the snapshot is complete (the sample is spread over all of it).
    pub fn in_trial(&self) -> bool {
        self.trial_sample_size.is_some() && self.trial_summary.is_none()
    }

    /// The in-flight limit it runs under: what the orchestrator adapted it to (AIMD, see
    /// `neo_domain::pacing`), never above `max_in_flight`.
    pub fn effective_max_in_flight(&self) -> i64 {
        self.effective_max_in_flight
            .unwrap_or(self.max_in_flight)
            .clamp(1, self.max_in_flight.max(1))
    }

    /// Its company blackouts compiled in its time zone (`None`: it has none).
    pub fn blackouts(&self) -> Result<Option<Blackouts>, neo_domain::validation::FieldError> {
        self.company_blackouts
            .as_ref()
            .map(|b| Blackouts::new(b, &self.timezone))
            .transpose()
    }

    /// The companies its blackouts hold at `now` (none when it has none; blackouts are
    /// checked at create and edit, so a stored one compiles).
    pub fn held_companies(&self, now: Timestamp) -> Vec<String> {
        self.blackouts()
            .ok()
            .flatten()
            .map(|bo| bo.held_at(now))
            .unwrap_or_default()
    }

    /// What its succeeded executions cost: what the credit ledger charged for it (the cap
    /// counts this).
    pub fn credits_spent(&self) -> i64 {
        self.succeeded_count * self.credits_per_entity
    }

    /// How many more executions its credit cap allows ([`budget_room`]); `None`: no cap.
    pub fn budget_room(&self) -> Option<u64> {
        budget_room(
            self.max_credits,
            self.credits_spent(),
            self.in_flight_count,
            self.credits_per_entity,
        )
    }

    /// Items not yet settled: pending and in flight, and those a snapshot in progress is
    /// expected to add.
    pub fn remaining(&self) -> u64 {
        let unlisted = if self.snapshot_complete {
            0
        } else {
            (self.total_estimated.unwrap_or(0) - self.total_items).max(0)
        };
        (self.pending_count + self.in_flight_count + unlisted).max(0) as u64
    }

    /// Its ETA at `now` ([`neo_domain::eta::estimate`]).
    pub fn eta(&self, now: Timestamp) -> (Option<Timestamp>, EtaBasis) {
        let running = self.state == BackfillRunState::Running;
        match self.schedule() {
            Ok(s) => {
                neo_domain::eta::estimate(&s, now, running, self.remaining(), &self.throughput)
            }
            Err(_) => (None, EtaBasis::NotRunning),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewBackfill {
    pub id: String,
    pub tenant_id: String,
    pub state: BackfillRunState,
    pub target_workflow_id: i64,
    pub entity_type: EntityType,
    pub filter_spec: Value,
    pub daily_execution_windows: WorkflowDailyExecutionWindows,
    pub timezone: String,
    pub max_in_flight: i64,
    pub reprocess: bool,
    pub total_estimated: Option<i64>,
    pub credits_per_entity: i64,
    pub created_by: String,
    pub created_at: Timestamp,
    /// The snapshot when it is known at create (an explicit id list); `None` for a PSA query,
    /// which the orchestrator enumerates.
    pub entity_ids: Option<Vec<String>>,
    /// Checked by [`neo_domain::backfill::check_name`].
    pub name: Option<String>,
    /// `live` or `shadow` (a revert is only ever a child: [`crate::Store::create_child`]).
    pub mode: BackfillMode,
    /// Dispatch nothing before this instant.
    pub start_at: Option<Timestamp>,
    /// Checked by [`neo_domain::control::check_max_credits`].
    pub max_credits: Option<i64>,
    /// Checked by [`neo_domain::control::check_sample_size`].
    pub trial_sample_size: Option<i64>,
    /// Checked by [`neo_domain::fairness::check_max_in_flight_per_company`].
    pub max_in_flight_per_company: Option<i64>,
    /// Checked by [`neo_domain::fairness::Blackouts::new`].
    pub company_blackouts: Option<CompanyBlackouts>,
}

/// The kinds of child backfill ([`crate::Store::create_child`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// Over the source's failed entities, in its mode.
    RerunFailed,
    /// A shadow run's apply: over its whole snapshot, live.
    Apply,
    /// Over the entities a live run changed, restoring what it wrote.
    Revert { remove_notes: bool },
}

/// A child backfill to create.
#[derive(Debug, Clone, Copy)]
pub struct NewChild<'a> {
    pub source_id: &'a str,
    pub new_id: &'a str,
    pub kind: ChildKind,
    pub created_by: &'a str,
    pub now: Timestamp,
    /// A rerun-failed of these causes only (`None`, or both lists empty: every failure).
    pub causes: Option<&'a Causes>,
}

/// Settings of an active backfill an operator changes ([`crate::Store::edit_backfill`]); each
/// `None` leaves its setting as it is.
#[derive(Debug, Clone, Default)]
pub struct BackfillEdit {
    /// `Some(None)` removes the name.
    pub name: Option<Option<String>>,
    pub max_in_flight: Option<i64>,
    pub daily_execution_windows: Option<WorkflowDailyExecutionWindows>,
    pub timezone: Option<String>,
    /// `Some(None)` removes the cap.
    pub max_credits: Option<Option<i64>>,
    /// `Some(None)` removes the cap.
    pub max_in_flight_per_company: Option<Option<i64>>,
    /// `Some(None)` removes every blackout.
    pub company_blackouts: Option<Option<CompanyBlackouts>>,
}

/// One entry of a backfill's audit: a signal or an edit, who made it and when.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillEvent {
    pub at: Timestamp,
    pub actor: String,
    /// `pause`, `resume`…, or the edited setting (`max_in_flight`, `name`, …).
    pub what: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub ord: i64,
    pub entity_id: String,
    pub entity_number: Option<String>,
    pub status: ItemStatus,
    pub execution_id: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub updated_at: Timestamp,
    /// When a retried item may be dispatched again.
    pub next_attempt_at: Option<Timestamp>,
    /// What the snapshot's PSA page said the entity is (a ticket's summary), if anything.
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub id: String,
    pub tenant_id: String,
    pub agent_id: i64,
    pub agent_name: Option<String>,
    pub backfill_id: Option<String>,
    pub entity_id: String,
    pub entity_number: Option<String>,
    pub status: ExecutionStatus,
    pub attempts: i64,
    pub error: Option<String>,
    pub retry_of: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The HTTP status the executor answered on the latest attempt (webhooks).
    pub http_status: Option<u16>,
    /// When the latest attempt started (`started_at` is the first's).
    pub attempt_started_at: Option<Timestamp>,
}

/// One attempt of an execution that was followed by another (a transient failure retried).
/// The execution row itself is its latest attempt, so a first attempt that settles writes
/// nothing here: the history costs a row only when there is history.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionAttempt {
    pub attempt: i64,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    pub http_status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: String,
    pub tenant_id: String,
    pub agent_id: i64,
    pub agent_name: Option<String>,
    pub backfill_id: Option<String>,
    pub entity_id: String,
    pub entity_number: Option<String>,
    pub status: ExecutionStatus,
    pub retry_of: Option<String>,
    pub created_at: Timestamp,
}

/// Filters of `GET /executions`.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub agent_id: Option<i64>,
    pub entity_id: Option<String>,
    pub entity_number: Option<String>,
    pub statuses: Vec<ExecutionStatus>,
    pub backfill_id: Option<String>,
}

/// Filters of a backfill's items (`GET /backfills/{id}/items`, the dashboard's items table).
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    /// Any of these statuses (all when empty).
    pub statuses: Vec<ItemStatus>,
    /// Only this entity.
    pub entity_id: Option<String>,
}

/// Filters of `GET /backfills`.
#[derive(Debug, Clone, Default)]
pub struct BackfillFilter {
    pub states: Vec<BackfillRunState>,
    pub target_workflow_id: Option<i64>,
}

/// A stored first response of an idempotent request.
#[derive(Debug, Clone)]
pub struct IdempotentResponse {
    pub fingerprint: Vec<u8>,
    pub status: u16,
    pub response: Value,
    pub created_at: Timestamp,
}

/// The `Idempotency-Key` of a create or rerun-failed, written in the same transaction as the
/// backfill it creates: an expired row of the key (created before `not_before`) is replaced; a
/// live one means another request with the key won, and the call fails with
/// [`crate::StoreError::IdempotencyKeyTaken`] without creating anything.
pub struct NewIdempotency<'a> {
    pub key: &'a str,
    pub fingerprint: &'a [u8],
    pub created_at: Timestamp,
    pub not_before: Timestamp,
    /// The response to replay (status, body), rendered from the created backfill.
    pub render: &'a (dyn Fn(&Backfill) -> (u16, Value) + Send + Sync),
}

/// An item claimed for dispatch: it is `in_flight` under the claimer's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub backfill_id: String,
    pub tenant_id: String,
    pub workflow_id: i64,
    pub ord: i64,
    pub entity_id: String,
    pub entity_number: Option<String>,
    /// Stable across re-dispatches of the same item: the executor's idempotency key.
    pub execution_id: String,
    /// 1 for the first dispatch.
    pub attempt: i64,
}

/// What a claim did.
#[derive(Debug, Clone, Default)]
pub struct ClaimResult {
    pub claimed: Vec<Claimed>,
    /// Items marked `skipped` because the workflow already succeeded on their entity.
    pub skipped: u64,
}

/// The end of one dispatch of an item.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    Succeeded,
    Failed(String),
    /// Not processed, for the reason given (a revert that finds the record edited since:
    /// `changed_since: …`). Final, and charges no credit.
    Skipped(String),
    Cancelled(String),
    /// A transient failure: the item goes back to pending until `at`.
    Retry {
        error: String,
        at: Timestamp,
    },
    /// The executor accepted the work (HTTP 202) and reports later through the completion
    /// endpoint; the item stays in flight until `deadline`.
    AwaitCallback {
        deadline: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub backfill_id: String,
    pub ord: i64,
    pub execution_id: String,
    pub settlement: Settlement,
    /// What the orchestrator saw of the attempt (none for outcomes it did not run: cancels,
    /// timeouts, callbacks).
    pub attempt: AttemptReport,
}

/// The attempt an outcome ends, as the orchestrator saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptReport {
    pub started_at: Option<Timestamp>,
    pub http_status: Option<u16>,
}

/// What a lease sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReapReport {
    /// In-flight items whose lease expired, put back to pending.
    pub requeued: u64,
    /// Items that waited for an executor's completion past the deadline, now failed.
    pub timed_out: u64,
}

/// The lease owner recorded for items waiting on an asynchronous completion.
pub const CALLBACK_OWNER: &str = "@callback";
