//! Public resources of the API, as documented in the OpenAPI document.

mod health;
mod integration;
pub use health::Health;
pub use integration::{PublicIntegration, PublicPsaBudget};

use neo_domain::backfill::{
    AutonomyType, BackfillMode, BackfillRunState, EntityType, ExecutionStatus, ItemStatus,
    WorkflowState,
};
use neo_domain::clock::rfc3339;
use neo_domain::control::PauseReason;
use neo_domain::cost::BackfillCostEstimate;
use neo_domain::eta::EtaBasis;
use neo_domain::fairness::{CompanyBlackout, CompanyBlackouts};
use neo_domain::windows::WorkflowDailyExecutionWindows;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One backfill row, as exposed on the public API.
///
/// Naming: stays `backfill` everywhere. Surfacing-only fields (`target_workflow_name`,
/// `target_workflow_autonomy_type`) appear so callers can render a label without a second
/// fetch. Fields after `parent_backfill_run_id` are additive (neo-backfill's own).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "bf_01a242ee521c73da94642fb201a129a9", "state": "COMPLETED",
    "target_workflow_id": 12, "target_workflow_name": "Triage", "target_workflow_autonomy_type": "CHAINED_ACTIONS",
    "entity_type": "ticket", "filter_spec": {"entity_ids": ["1001", "1002", "1003"]},
    "daily_execution_windows": {"monday": [{"run_start_time": "22:00", "run_end_time": "06:00"}]},
    "timezone": "Europe/London", "max_in_flight": 10, "total_estimated": 3,
    "processed_count": 3, "succeeded_count": 2, "failed_count": 1,
    "started_at": "2026-11-30T22:00:01Z", "completed_at": "2026-11-30T22:00:09Z",
    "created_by": "key_3f2a9c41d07e4b6a8c1d", "created_at": "2026-11-30T17:12:40Z", "error": null,
    "parent_backfill_run_id": null, "skipped_count": 0, "in_flight_count": 0, "pending_count": 0,
    "cancelled_count": 0, "total_items": 3, "reprocess": false, "updated_at": "2026-11-30T22:00:09Z",
    "next_window_start": null
}))]
#[schema(title = "PublicBackfill")]
pub struct PublicBackfill {
    pub id: String,
    pub state: BackfillRunState,
    pub target_workflow_id: i64,
    #[schema(required = true)]
    pub target_workflow_name: Option<String>,
    #[schema(required = true)]
    pub target_workflow_autonomy_type: Option<AutonomyType>,
    pub entity_type: EntityType,
    #[schema(value_type = Object, additional_properties = true)]
    pub filter_spec: Value,
    pub daily_execution_windows: WorkflowDailyExecutionWindows,
    pub timezone: String,
    pub max_in_flight: i64,
    #[schema(required = true)]
    pub total_estimated: Option<i64>,
    pub processed_count: i64,
    pub succeeded_count: i64,
    pub failed_count: i64,
    #[schema(required = true)]
    pub started_at: Option<String>,
    #[schema(required = true)]
    pub completed_at: Option<String>,
    pub created_by: String,
    pub created_at: String,
    #[schema(required = true)]
    pub error: Option<String>,
    #[schema(required = false, default = json!(null))]
    pub parent_backfill_run_id: Option<String>,
    // ---- additive (ours) ----
    /// Entities skipped because they already had a successful execution of the workflow.
    #[schema(required = false)]
    pub skipped_count: i64,
    /// Executions outstanding right now.
    #[schema(required = false)]
    pub in_flight_count: i64,
    /// Entities not dispatched yet.
    #[schema(required = false)]
    pub pending_count: i64,
    /// Entities left undone because the backfill was cancelled or failed.
    #[schema(required = false)]
    pub cancelled_count: i64,
    /// Entities in the frozen snapshot so far.
    #[schema(required = false)]
    pub total_items: i64,
    /// When false, entities with an earlier successful execution of the workflow are skipped.
    #[schema(required = false)]
    pub reprocess: bool,
    #[schema(required = false)]
    pub updated_at: String,
    /// While RUNNING outside every window: when the next window opens (RFC 3339).
    #[schema(required = false)]
    pub next_window_start: Option<String>,
    /// The operator's name for the backfill, if given (shown instead of the workflow's).
    #[schema(required = false)]
    pub name: Option<String>,
    /// `live` writes, `shadow` only records the changes it would make, `revert` restores what
    /// its parent wrote (`psa_actions` workflows; every other backfill is `live`).
    #[schema(required = false)]
    pub mode: BackfillMode,
    /// A revert that also removes the notes its parent added.
    #[schema(required = false)]
    pub remove_notes: bool,
    /// The scheduled start, if any (RFC 3339): nothing is dispatched before it.
    #[schema(required = false)]
    pub start_at: Option<String>,
    /// Why it is PAUSED (null otherwise).
    #[schema(required = false)]
    pub pause_reason: Option<PauseReason>,
    /// Its credit cap, if any.
    #[schema(required = false)]
    pub max_credits: Option<i64>,
    /// Credits its succeeded executions cost so far (at its credits per entity).
    #[schema(required = false)]
    pub credits_spent: i64,
    /// Its trial run, if it has one.
    #[schema(required = false)]
    pub trial: Option<PublicTrial>,
    /// When it will be done (RFC 3339): the remaining items at the measured throughput,
    /// walked through its windows in its time zone and after its scheduled start. Null with
    /// `eta_basis` saying why.
    #[schema(required = false, format = DateTime)]
    pub eta: Option<String>,
    #[schema(required = false)]
    pub eta_basis: EtaBasis,
    /// The measured throughput behind the ETA, in items per minute of open time (an EWMA
    /// over recently settled items); null until enough is measured.
    #[schema(required = false)]
    pub items_per_minute: Option<f64>,
    /// A rerun-failed child of chosen causes: the error signatures and failure kinds it was
    /// made from (null for a rerun of every failure, and for every other backfill).
    #[schema(required = false)]
    pub rerun_causes: Option<neo_domain::triage::Causes>,
    /// The in-flight limit it runs under now: `max_in_flight`, or less while its executor or
    /// PSA throttles (adapted by AIMD: halved on a 429, 503 or timeout, one more per limit's
    /// worth of successes within 5 s).
    #[schema(required = false, minimum = 1)]
    pub effective_max_in_flight: i64,
    /// Its cap per PSA company, if any.
    #[schema(required = false)]
    pub max_in_flight_per_company: Option<i64>,
    /// Its companies' change freezes, if any.
    #[schema(required = false, value_type = Option<HashMap<String, CompanyBlackout>>)]
    pub company_blackouts: Option<CompanyBlackouts>,
    /// The companies in a blackout now: none of their entities is started meanwhile.
    #[schema(required = false)]
    pub held_companies: Vec<String>,
}

/// A backfill's trial run.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTrial {
    pub sample_size: i64,
    /// What the sample did, once it has settled.
    #[schema(required = true)]
    pub result: Option<PublicTrialResult>,
}

/// What a trial's sample did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTrialResult {
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
    /// The most common errors of the failed entities, most frequent first (at most 5).
    pub top_errors: Vec<PublicTrialError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTrialError {
    pub error: String,
    pub count: i64,
}

impl PublicBackfill {
    /// The resource as of `now` (`next_window_start` and the ETA depend on it).
    pub fn at(b: neo_store::Backfill, now: jiff::Timestamp) -> Self {
        let next_window_start = (b.state == BackfillRunState::Running)
            .then(|| b.schedule().ok())
            .flatten()
            .filter(|s| !s.inside(now))
            .and_then(|s| s.next_window_start(now))
            .map(rfc3339);
        let (eta, eta_basis) = b.eta(now);
        Self {
            next_window_start,
            eta: eta.map(rfc3339),
            eta_basis,
            items_per_minute: b
                .throughput
                .per_second()
                .map(|r| (r * 600.0).round() / 10.0),
            credits_spent: b.credits_spent(),
            pause_reason: b
                .pause_reason
                .filter(|_| b.state == BackfillRunState::Paused),
            max_credits: b.max_credits,
            rerun_causes: b.rerun_causes.clone(),
            effective_max_in_flight: b.effective_max_in_flight(),
            max_in_flight_per_company: b.max_in_flight_per_company,
            company_blackouts: b.company_blackouts.clone(),
            held_companies: b.held_companies(now),
            trial: b.trial_sample_size.map(|n| PublicTrial {
                sample_size: n,
                result: b.trial_summary.as_ref().map(|t| PublicTrialResult {
                    succeeded: t.succeeded,
                    failed: t.failed,
                    skipped: t.skipped,
                    top_errors: t
                        .top_errors
                        .iter()
                        .map(|e| PublicTrialError {
                            error: e.error.clone(),
                            count: e.count,
                        })
                        .collect(),
                }),
            }),
            processed_count: b.succeeded_count + b.failed_count,
            id: b.id,
            state: b.state,
            target_workflow_id: b.target_workflow_id,
            target_workflow_name: b.target_workflow_name,
            target_workflow_autonomy_type: b.target_workflow_autonomy_type,
            entity_type: b.entity_type,
            filter_spec: b.filter_spec,
            daily_execution_windows: b.daily_execution_windows,
            timezone: b.timezone,
            max_in_flight: b.max_in_flight,
            total_estimated: b.total_estimated,
            succeeded_count: b.succeeded_count,
            failed_count: b.failed_count,
            started_at: b.started_at.map(rfc3339),
            completed_at: b.completed_at.map(rfc3339),
            created_by: b.created_by,
            created_at: rfc3339(b.created_at),
            error: b.error,
            parent_backfill_run_id: b.parent_backfill_run_id,
            skipped_count: b.skipped_count,
            in_flight_count: b.in_flight_count,
            pending_count: b.pending_count,
            cancelled_count: b.cancelled_count,
            total_items: b.total_items,
            reprocess: b.reprocess,
            updated_at: rfc3339(b.updated_at),
            name: b.name,
            mode: b.mode,
            remove_notes: b.remove_notes,
            start_at: b.start_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "backfill": {
        "id": "bf_01a242ee521c73da94642fb201a129a9", "state": "RUNNING",
        "target_workflow_id": 12, "target_workflow_name": "Triage", "target_workflow_autonomy_type": "CHAINED_ACTIONS",
        "entity_type": "ticket", "filter_spec": {"entity_ids": ["1001", "1002", "1003"]},
        "daily_execution_windows": {}, "timezone": "UTC", "max_in_flight": 5, "total_estimated": 3,
        "processed_count": 0, "succeeded_count": 0, "failed_count": 0, "started_at": "2026-11-30T17:12:40Z",
        "completed_at": null, "created_by": "key_3f2a9c41d07e4b6a8c1d", "created_at": "2026-11-30T17:12:40Z",
        "error": null, "total_items": 3, "pending_count": 3
    },
    "cost_estimate": {"total_entities": 3, "credits_per_entity": 2, "total_credits_estimated": 6}
}))]
#[schema(title = "CreateBackfillResponse")]
pub struct CreateBackfillResponse {
    pub backfill: PublicBackfill,
    pub cost_estimate: BackfillCostEstimate,
}

/// Which entities a backfill runs over (docs/api.md §5): an explicit list of entity ids, or a
/// react-querybuilder rule group evaluated against the tenant's PSA. Documentation only: the
/// handlers validate the JSON with `neo_domain::filter::parse`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum FilterSpec {
    EntityIds(EntityIdsFilter),
    RuleGroup(RuleGroupFilter),
}

/// Exactly these entities: 1 to 100,000 distinct ids, no PSA query.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct EntityIdsFilter {
    #[schema(schema_with = entity_ids_schema)]
    pub entity_ids: Vec<String>,
}

/// A rule group (`{"combinator": "and"|"or", "rules": [...]}`, depth ≤ 4, ≤ 200 rules) over
/// the PSA's entities, and an optional cap on the snapshot.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RuleGroupFilter {
    #[schema(value_type = crate::schemas::RuleGroup)]
    pub conditions: Value,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub limit: Option<u64>,
}

fn entity_ids_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64))
                // No control characters (`char::is_control`).
                .pattern(Some("^[^\\u0000-\\u001f\\u007f-\\u009f]+$")),
        )
        .min_items(Some(1))
        .max_items(Some(neo_domain::filter::MAX_ENTITY_IDS))
        .unique_items(true)
        .build()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "target_workflow_id": 1,
    "filter_spec": {"entity_ids": ["1001", "1002", "1003"]},
    "timezone": "Europe/London",
    "max_in_flight": 10,
    "daily_execution_windows": {"monday": [{"run_start_time": "22:00", "run_end_time": "06:00"}]}
}))]
pub struct CreateBackfillRequest {
    pub target_workflow_id: i64,
    /// Default `ticket`.
    #[serde(default)]
    pub entity_type: Option<EntityType>,
    /// A rule group (`{"conditions": ..., "limit"?}`) or `{"entity_ids": [...]}`.
    #[schema(value_type = FilterSpec)]
    pub filter_spec: Value,
    /// Omitted means always open.
    #[serde(default)]
    pub daily_execution_windows: Option<WorkflowDailyExecutionWindows>,
    /// IANA name, default `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// 1–100, default 5.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub max_in_flight: Option<i64>,
    /// Ignored for an explicit id list (the server's count wins).
    #[serde(default)]
    pub total_estimated: Option<i64>,
    /// Create in DRAFT instead of RUNNING.
    #[serde(default)]
    pub draft: bool,
    /// Also run entities that already have a successful execution of the workflow.
    #[serde(default)]
    pub reprocess: bool,
    /// A name of your own for the backfill (at most 100 characters).
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// `live` (default) or, for a `psa_actions` workflow, `shadow`: read each entity and
    /// record the changes it would make, writing nothing (`POST /backfills/{id}/apply` then
    /// makes them).
    #[serde(default)]
    pub mode: Option<BackfillMode>,
    /// Dispatch nothing before this instant (RFC 3339 with its offset, at most a year ahead):
    /// the backfill is RUNNING meanwhile, its windows closed until then, and
    /// `next_window_start` says when it opens.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub start_at: Option<String>,
    /// A credit cap: no execution starts that could take the backfill's credits over it
    /// (what is in flight counts as spent); at the cap it pauses with `budget_reached`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub max_credits: Option<i64>,
    /// Run a sample first, then pause with `trial_complete` and a summary.
    #[serde(default)]
    pub trial: Option<TrialRequest>,
    /// At most this many of one PSA company's entities run at once (1 to `max_in_flight`);
    /// claims always go round-robin across companies.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_in_flight_per_company: Option<i64>,
    /// Companies' change freezes: company id → dates and weekly windows, in the backfill's
    /// timezone, during which that company's entities are not started (the rest run).
    #[serde(default)]
    #[schema(value_type = Option<HashMap<String, CompanyBlackout>>)]
    pub company_blackouts: Option<CompanyBlackouts>,
}

/// A trial run: `sample_size` entities spread evenly over the snapshot run first; then the
/// backfill pauses itself (`pause_reason: trial_complete`) with their results, and `resume`
/// continues with the rest.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrialRequest {
    /// At least 1 and, for an explicit id list, at most its length.
    #[schema(minimum = 1)]
    pub sample_size: i64,
}

/// `Some(value)` for a member that is present, `null` included (`Some(None)`); an absent
/// member is `None` through `#[serde(default)]`.
/// A member that may be `null` (`Some(None)`) or omitted (`None`).
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// [ours] The causes a rerun-failed takes (`GET /public-api/backfills/{id}/failures` lists
/// them); omitted lists are empty, and both empty takes every failure.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"failure_kinds": ["timeout", "http_5xx"], "error_signatures": ["the executor answered HTTP 422: ticket <n> is locked"]}))]
pub struct RerunFailedRequest {
    /// Failures whose masked error is one of these.
    #[serde(default)]
    pub error_signatures: Vec<String>,
    /// Failures of these kinds.
    #[serde(default)]
    pub failure_kinds: Vec<neo_domain::triage::FailureKind>,
}

/// The settings of an active backfill that can change while it runs. Omitted members stay
/// as they are; at least one must be given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"max_in_flight": 20, "name": "Q4 clean-up"}))]
pub struct EditBackfillRequest {
    /// At most 100 characters; an empty string removes the name.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// 1–100.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub max_in_flight: Option<i64>,
    /// Replaces every day's windows (an empty object: always open).
    #[serde(default)]
    pub daily_execution_windows: Option<WorkflowDailyExecutionWindows>,
    /// IANA name.
    #[serde(default)]
    pub timezone: Option<String>,
    /// A new credit cap, or `null` to remove it. Raising it and resuming continues a backfill
    /// paused with `budget_reached`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub max_credits: Option<Option<i64>>,
    /// A new cap per PSA company, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub max_in_flight_per_company: Option<Option<i64>>,
    /// Replaces every company blackout (a change freeze announced mid-run), or `null` to
    /// remove them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<HashMap<String, CompanyBlackout>>)]
    pub company_blackouts: Option<Option<CompanyBlackouts>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"entity_type": "ticket", "filter_spec": {"entity_ids": ["1001", "1002"]}}))]
pub struct VerifyBackfillRequest {
    pub entity_type: EntityType,
    #[schema(value_type = FilterSpec)]
    pub filter_spec: Value,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
pub enum VerifyLevel {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "WARNING")]
    Warning,
    #[serde(rename = "ERROR")]
    Error,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"matching_entities": 1200, "success": true, "message": "1240 entities match; the filter's limit takes the first 1200, more than the soft limit of 1000", "level": "WARNING"}))]
pub struct VerifyBackfillResponse {
    /// The entities a backfill of this filter would run over: the matches, capped by the
    /// filter's `limit` (the message gives both when they differ). `null` on ERROR.
    #[schema(required = true)]
    pub matching_entities: Option<i64>,
    pub success: bool,
    pub message: String,
    pub level: VerifyLevel,
    /// The JSON path of the offending member when the filter is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub field: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"backfill_id": "bf_01a242ee521c73da94642fb201a129a9", "signal": "pause", "message": "backfill is now PAUSED"}))]
pub struct SignalResponse {
    pub backfill_id: String,
    #[schema(schema_with = signal_names)]
    pub signal: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"entity_id": "1002", "entity_number": "T20261130.0002", "status": "failed", "execution_id": "ex_019ad3c2a4b77c1e9f0b2d6e8a4c1f3b", "attempts": 1, "error": "the executor answered HTTP 422: board Help Desk is locked", "updated_at": "2026-11-30T22:00:05Z", "next_attempt_at": null, "summary": "Printer on the 3rd floor jams"}))]
pub struct PublicBackfillItem {
    pub entity_id: String,
    #[schema(required = true)]
    pub entity_number: Option<String>,
    pub status: ItemStatus,
    #[schema(required = true)]
    pub execution_id: Option<String>,
    pub attempts: i64,
    #[schema(required = true)]
    pub error: Option<String>,
    pub updated_at: String,
    /// When a failed attempt will be retried.
    #[schema(required = false)]
    pub next_attempt_at: Option<String>,
    /// What the PSA said the entity is when the snapshot read it (a ticket's summary, at most
    /// 120 characters); `null` for an explicit id list.
    #[schema(required = false)]
    pub summary: Option<String>,
    /// A `psa_actions` backfill's change to the entity: the fields it changed (a shadow run:
    /// would change) with their values before and after, and its notes. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub diff: Option<crate::routes::backfills::ItemDiff>,
}

impl From<neo_store::Item> for PublicBackfillItem {
    fn from(i: neo_store::Item) -> Self {
        Self {
            entity_id: i.entity_id,
            entity_number: i.entity_number,
            status: i.status,
            execution_id: i.execution_id,
            attempts: i.attempts,
            error: i.error,
            updated_at: rfc3339(i.updated_at),
            next_attempt_at: i.next_attempt_at.map(rfc3339),
            summary: i.summary,
            diff: None,
        }
    }
}

/// A workflow ("agent").
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 12, "name": "Triage", "description": "Sets priority and board from the summary", "autonomy_type": "CHAINED_ACTIONS", "entity_type": "ticket", "state": "ENABLED", "credit_tier": 2, "executor": {"type": "webhook", "url": "https://automation.example.com/neo", "secret_set": true}, "created_at": "2026-11-28T09:30:00Z", "updated_at": "2026-11-28T09:30:00Z"}))]
pub struct PublicAgent {
    pub id: i64,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    pub autonomy_type: AutonomyType,
    pub entity_type: EntityType,
    pub state: WorkflowState,
    pub credit_tier: i64,
    /// The executor without its secret (`secret_set` tells whether one is configured).
    #[schema(value_type = crate::schemas::ExecutorView)]
    pub executor: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<neo_store::Workflow> for PublicAgent {
    fn from(w: neo_store::Workflow) -> Self {
        let mut executor = w.executor;
        if let Some(o) = executor.as_object_mut() {
            if o.remove("secret").is_some() {
                o.insert("secret_set".into(), Value::Bool(true));
            }
        }
        Self {
            id: w.id,
            name: w.name,
            description: w.description,
            autonomy_type: w.autonomy_type,
            entity_type: w.entity_type,
            state: w.state,
            credit_tier: w.credit_tier,
            executor,
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"execution_id": "ex_019ad3c2a4b77c1e9f0b2d6e8a4c1f3b", "agent_id": 12, "agent_name": "Triage", "entity_id": "1002", "entity_number": "T20261130.0002", "status": "failed", "created_at": "2026-11-30T22:00:02Z", "updated_at": "2026-11-30T22:00:05Z", "seconds_spent": 2.8, "error": "the executor answered HTTP 422", "backfill_id": "bf_01a242ee521c73da94642fb201a129a9", "attempts": 1, "retry_of": null}))]
pub struct PublicExecution {
    pub execution_id: String,
    pub agent_id: i64,
    #[schema(required = true)]
    pub agent_name: Option<String>,
    pub entity_id: String,
    #[schema(required = true)]
    pub entity_number: Option<String>,
    pub status: ExecutionStatus,
    pub created_at: String,
    pub updated_at: String,
    #[schema(required = true)]
    pub seconds_spent: Option<f64>,
    #[schema(required = true)]
    pub error: Option<String>,
    #[schema(required = true)]
    pub backfill_id: Option<String>,
    pub attempts: i64,
    /// The execution this one retries.
    #[schema(required = true)]
    pub retry_of: Option<String>,
}

impl From<neo_store::Execution> for PublicExecution {
    fn from(e: neo_store::Execution) -> Self {
        let seconds_spent = match (e.started_at, e.finished_at) {
            (Some(s), Some(f)) => Some(f.duration_since(s).as_secs_f64()),
            _ => None,
        };
        Self {
            execution_id: e.id,
            agent_id: e.agent_id,
            agent_name: e.agent_name,
            entity_id: e.entity_id,
            entity_number: e.entity_number,
            status: e.status,
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
            seconds_spent,
            error: e.error,
            backfill_id: e.backfill_id,
            attempts: e.attempts,
            retry_of: e.retry_of,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "key_3f2a9c41d07e4b6a8c1d", "env": "live", "hint": "x9Qa", "created_at": "2026-11-01T08:00:00Z", "created_by": "admin@msp.example", "expires_at": null, "revoked_at": null, "rotated_to": null, "last_used_at": "2026-11-30T17:12:40Z"}))]
pub struct PublicApiKey {
    pub id: String,
    #[schema(schema_with = key_envs)]
    pub env: String,
    /// The last four characters of the secret.
    pub hint: String,
    pub created_at: String,
    pub created_by: String,
    #[schema(required = true)]
    pub expires_at: Option<String>,
    #[schema(required = true)]
    pub revoked_at: Option<String>,
    #[schema(required = true)]
    pub rotated_to: Option<String>,
    #[schema(required = true)]
    pub last_used_at: Option<String>,
}

impl From<neo_store::ApiKey> for PublicApiKey {
    fn from(k: neo_store::ApiKey) -> Self {
        Self {
            id: k.id,
            env: k.env,
            hint: k.hint,
            created_at: rfc3339(k.created_at),
            created_by: k.created_by,
            expires_at: k.expires_at.map(rfc3339),
            revoked_at: k.revoked_at.map(rfc3339),
            rotated_to: k.rotated_to,
            last_used_at: k.last_used_at.map(rfc3339),
        }
    }
}

/// A newly created key: the plaintext `secret` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"key": {"id": "key_3f2a9c41d07e4b6a8c1d", "env": "live", "hint": "x9Qa", "created_at": "2026-11-01T08:00:00Z", "created_by": "admin@msp.example", "expires_at": null, "revoked_at": null, "rotated_to": null, "last_used_at": null}, "secret": "neo_sk_live_Xk2v9PqR7sT1uW3yZ5aB8cD0eF4gH6jK9mN2x9Qa"}))]
pub struct CreatedApiKey {
    pub key: PublicApiKey,
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitInfo {
    pub limit: u32,
    pub window_seconds: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "tn_msp", "name": "MSP", "created_at": "2026-11-01T08:00:00Z", "monthly_credit_allowance": 100000, "rate_limit": {"limit": 1200, "window_seconds": 60}, "integration": "connectwise"}))]
pub struct PublicTenant {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub monthly_credit_allowance: i64,
    pub rate_limit: RateLimitInfo,
    /// The connected PSA, if any.
    #[schema(required = true)]
    pub integration: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"month": "2026-11", "credits_used": 5120, "monthly_allowance": 100000, "credits_remaining": 94880}))]
pub struct CreditUsage {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub credits_used: i64,
    pub monthly_allowance: i64,
    pub credits_remaining: i64,
}

// ---- closed sets kept as strings -----------------------------------------------------------
// These members stay `String` in Rust (the handlers check them and answer a `validation_error`
// naming the member); the document still states their values, from the one list of each.

/// A string schema that admits only `values`.
pub(crate) fn string_enum<'a>(
    values: impl IntoIterator<Item = &'a str>,
    description: &str,
) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

fn signal_names() -> utoipa::openapi::Object {
    use neo_domain::backfill::Signal;
    string_enum(
        Signal::ALL.iter().map(|s| s.as_str()),
        "The signal applied.",
    )
}

/// `live` or `test` (the `<env>` of `neo_sk_<env>_<secret>`).
pub(crate) fn key_envs() -> utoipa::openapi::Object {
    string_enum(
        crate::auth::KEY_ENVS.iter().copied(),
        "The key's environment: the `<env>` of `neo_sk_<env>_<secret>`.",
    )
}
