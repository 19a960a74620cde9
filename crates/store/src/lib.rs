//! Persistence of neo-backfill behind one trait, [`Store`]. The SQLite implementation is the
//! embedded default; the PostgreSQL one ([`PgStore`]) implements the same trait with its own
//! migrations, for production and several replicas sharing one database.
//! Every state change that touches a backfill's items also updates its counters in the same
//! transaction, so counters never drift from the items.

mod backfills;
pub mod backup;
mod control;
mod executions;
mod idempotency;
mod integrations;
pub mod models;
pub mod notifications;
mod postgres;
pub mod psa_changes;
mod rerun;
mod rows;
mod sealed_rows;
pub mod secrets;
mod settlement;
pub mod source;
mod sqlite;
mod store_methods;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
mod triage;
mod workflows;

use async_trait::async_trait;
use jiff::Timestamp;
use neo_domain::backfill::{BackfillRunState, Signal, SignalOutcome, SignalRefusal};
use serde_json::Value;

pub use models::*;
pub use notifications::{
    DeliveryOutcome, DeliveryRecord, DueDelivery, NewNotificationEndpoint, NotificationEndpoint,
    NotificationEndpointPatch,
};
pub use postgres::PgStore;
pub use psa_changes::{Change, ChangeScope, ChangeTotal, ChangesOf, PsaChange};
pub use rows::new_execution_id;
pub use sealed_rows::KEY_CHECK;
pub use secrets::{MasterKey, Sealer};
pub use source::{SnapshotEntry, SourcePage};
pub use sqlite::SqliteStore;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Pending items a cancel (or a failure) moves to `cancelled` in its own transaction; the
/// rest are swept in the background ([`Store::sweep_pending`]), the backfill already ended so
/// nothing more is claimed.
pub const CANCEL_INLINE: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// Another backfill of the same target workflow is active (DRAFT, RUNNING or PAUSED).
    #[error("an active backfill exists for this workflow")]
    AlreadyActive,
    #[error("{0}")]
    Conflict(String),
    /// Another request holds this `Idempotency-Key` (see [`NewIdempotency`]).
    #[error("another request used this idempotency key")]
    IdempotencyKeyTaken,
    /// A secret could not be sealed or opened: no master key is configured, the key is not
    /// the one that sealed it, or the stored value was tampered with or moved.
    #[error("{0}")]
    Secret(String),
    /// The database refused or failed the statement; [`StoreError::unavailable`] says whether
    /// it is worth retrying.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A stored value this release cannot read (an unknown enum text, malformed JSON).
    #[error("{0}")]
    Corrupt(String),
}

/// What sealing the secrets at open, or a master key rotation, changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretsReport {
    /// Integrations whose secrets changed, and how many members.
    pub integrations: u64,
    pub integration_secrets: u64,
    /// Workflows whose executor secret changed.
    pub workflows: u64,
    /// Notification endpoints whose signing secret changed.
    pub notification_endpoints: u64,
}

impl SecretsReport {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Why the database could not serve a request for now (the request may succeed if retried):
/// see [`StoreError::unavailable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Another writer holds the lock past the busy timeout (SQLite `SQLITE_BUSY`/`LOCKED`), no
    /// connection was free in time, or a statement timed out or lost a serialization race.
    Busy,
    /// The database could not write: disk full, file size limit, I/O error.
    CannotWrite,
    /// The database server cannot be reached or is restarting.
    Unreachable,
}

impl Unavailable {
    /// A message for API callers and logs.
    pub fn message(self) -> &'static str {
        match self {
            Unavailable::Busy => "the database is busy (another writer holds its lock); retry shortly",
            Unavailable::CannotWrite => {
                "the database cannot store changes (disk full or I/O error); retry once an operator has freed space"
            }
            Unavailable::Unreachable => "the database is unreachable; retry shortly",
        }
    }
}

impl StoreError {
    /// Whether this is a database that cannot serve requests for now (busy, full,
    /// unreachable) rather than a bug: the API answers 503 for these.
    pub fn unavailable(&self) -> Option<Unavailable> {
        let StoreError::Db(e) = self else { return None };
        classify(e)
    }
}

fn classify(e: &sqlx::Error) -> Option<Unavailable> {
    match e {
        sqlx::Error::PoolTimedOut => Some(Unavailable::Busy),
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Some(Unavailable::Unreachable)
        }
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Primary result code: the low byte of the extended one.
                match code.parse::<i64>().ok()? & 0xff {
                    5 | 6 => Some(Unavailable::Busy), // SQLITE_BUSY, SQLITE_LOCKED
                    10 | 13 => Some(Unavailable::CannotWrite), // SQLITE_IOERR, SQLITE_FULL
                    _ => None,
                }
            } else {
                // PostgreSQL SQLSTATE classes and codes.
                match code.as_ref() {
                    "40001" | "40P01" | "55P03" | "57014" => Some(Unavailable::Busy),
                    c if c.starts_with("53") || c.starts_with("58") => {
                        Some(Unavailable::CannotWrite)
                    }
                    c if c.starts_with("08") || c.starts_with("57P") => {
                        Some(Unavailable::Unreachable)
                    }
                    _ => None,
                }
            }
        }
        _ => None,
    }
}

/// Why a rerun-failed request is refused.
#[derive(Debug, thiserror::Error)]
pub enum RerunError {
    #[error("backfill not found")]
    NotFound,
    #[error("{0}")]
    NotRerunnable(String),
    #[error("target workflow not found")]
    WorkflowNotFound,
    /// The target workflow may no longer be backfilled ([`neo_domain::backfill::check_backfill_target`]).
    #[error("the target workflow cannot be backfilled")]
    Target(neo_domain::backfill::TargetRefusal),
    #[error("an active backfill exists for this workflow")]
    AlreadyActive,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a signal is refused.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("backfill not found")]
    NotFound,
    #[error("signal refused")]
    Refused(SignalRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an edit is refused.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("backfill not found")]
    NotFound,
    #[error("edit refused")]
    Refused(neo_domain::backfill::EditRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a DRAFT delete is refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteBackfillError {
    #[error("backfill not found")]
    NotFound,
    #[error("only a DRAFT backfill can be deleted")]
    NotDraft(BackfillRunState),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of a keyset-paginated list: `items` holds at most `limit` rows and `has_more` says
/// whether another page follows.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    pub fn from_overfetch(mut rows: Vec<T>, limit: usize) -> Self {
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        Page {
            items: rows,
            has_more,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// The server's random secret (created at migration), used to sign cursors.
    async fn server_secret(&self) -> Result<Vec<u8>>;

    // ---- tenants and keys --------------------------------------------------------------
    async fn ensure_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant>;
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>>;
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>>;
    async fn tenant_by_entra_tid(&self, tid: &str) -> Result<Option<Tenant>>;
    async fn set_tenant_entra_tid(&self, tenant_id: &str, tid: Option<&str>) -> Result<()>;
    /// Sets the credits a tenant may spend per UTC month (the orchestrator pauses its
    /// backfills with `allowance_exhausted` beyond them). Whether the tenant exists.
    async fn set_monthly_allowance(&self, tenant_id: &str, credits: i64) -> Result<bool>;

    async fn insert_api_key(&self, key: NewApiKey) -> Result<ApiKey>;
    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKey, Vec<u8>)>>;
    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>>;
    async fn list_api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>>;
    /// Revokes now; `false` if the key does not exist or was already revoked.
    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> Result<bool>;
    /// Inserts `new` and makes `old_id` expire at `old_expires_at` (if earlier than its own
    /// expiry), in one transaction.
    async fn rotate_api_key(
        &self,
        old_id: &str,
        old_expires_at: Timestamp,
        new: NewApiKey,
    ) -> Result<ApiKey>;
    async fn touch_api_key(&self, id: &str, now: Timestamp) -> Result<()>;

    // ---- workflows -----------------------------------------------------------------------
    async fn insert_workflow(
        &self,
        tenant_id: &str,
        w: NewWorkflow,
        now: Timestamp,
    ) -> Result<Workflow>;
    async fn workflow(&self, tenant_id: &str, id: i64) -> Result<Option<Workflow>>;
    async fn list_workflows(
        &self,
        tenant_id: &str,
        after_id: Option<i64>,
        limit: usize,
    ) -> Result<Page<Workflow>>;
    async fn update_workflow(
        &self,
        tenant_id: &str,
        id: i64,
        patch: WorkflowPatch,
        now: Timestamp,
    ) -> Result<Option<Workflow>>;
    /// Deletes the workflow; its active backfills end FAILED with `error` set. Returns false if
    /// it did not exist.
    async fn delete_workflow(&self, tenant_id: &str, id: i64, now: Timestamp) -> Result<bool>;

    // ---- integrations -----------------------------------------------------------------
    async fn put_integration(
        &self,
        tenant_id: &str,
        psa: &str,
        config: Value,
        secrets: Value,
        now: Timestamp,
    ) -> Result<Integration>;
    async fn integration(&self, tenant_id: &str) -> Result<Option<Integration>>;
    /// Takes up to `want` requests from the tenant's PSA request budget, shared by every
    /// replica ([`neo_domain::budget::Budget::take`]); `None` when it has no integration.
    async fn take_psa_budget(
        &self,
        tenant_id: &str,
        want: i64,
        now: Timestamp,
    ) -> Result<Option<neo_domain::budget::Grant>>;
    /// The secrets of the tenant's integration, for the PSA connector only.
    async fn integration_secrets(&self, tenant_id: &str) -> Result<Option<Value>>;
    /// Removes the integration; active backfills that query the PSA end FAILED.
    async fn delete_integration(&self, tenant_id: &str, now: Timestamp) -> Result<bool>;

    /// Re-wraps every sealed secret and the master key check with `new` instead of this
    /// store's key, in one transaction. The store keeps its old key: reopen with `new`.
    async fn rotate_master_key(&self, new: &Sealer) -> Result<SecretsReport>;

    // ---- backfills ----------------------------------------------------------------------
    /// Fails with [`StoreError::AlreadyActive`] when the workflow has an active backfill.
    async fn create_backfill(&self, b: NewBackfill) -> Result<Backfill> {
        self.create_backfill_idempotent(b, None).await
    }
    /// [`Store::create_backfill`], writing `idem` in the same transaction.
    async fn create_backfill_idempotent(
        &self,
        b: NewBackfill,
        idem: Option<&NewIdempotency<'_>>,
    ) -> Result<Backfill>;
    async fn backfill(&self, tenant_id: &str, id: &str) -> Result<Option<Backfill>>;
    /// Newest first; `before_id` is the last id of the previous page.
    async fn list_backfills(
        &self,
        tenant_id: &str,
        filter: &BackfillFilter,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Page<Backfill>>;
    /// Items in snapshot order after `after_ord`.
    async fn list_items(
        &self,
        tenant_id: &str,
        backfill_id: &str,
        filter: &ItemFilter,
        after_ord: Option<i64>,
        limit: usize,
    ) -> Result<Page<Item>>;
    /// Applies a user signal atomically and records it.
    async fn signal_backfill(
        &self,
        tenant_id: &str,
        id: &str,
        signal: Signal,
        actor: &str,
        now: Timestamp,
    ) -> Result<(Backfill, SignalOutcome), SignalError>;
    /// Changes an active backfill's settings ([`neo_domain::backfill::check_editable`], read
    /// under its row lock) and records each change that differs in its audit, in one
    /// transaction. Values are the caller's to validate.
    async fn edit_backfill(
        &self,
        tenant_id: &str,
        id: &str,
        edit: &BackfillEdit,
        actor: &str,
        now: Timestamp,
    ) -> Result<Backfill, EditError>;
    /// A backfill's audit (signals and edits), newest first, at most `limit`.
    async fn backfill_history(
        &self,
        tenant_id: &str,
        id: &str,
        limit: usize,
    ) -> Result<Vec<BackfillEvent>>;
    /// Creates the child backfill of `source_id` over its failed items, in one transaction.
    async fn rerun_failed(
        &self,
        tenant_id: &str,
        source_id: &str,
        new_id: &str,
        created_by: &str,
        now: Timestamp,
    ) -> Result<Backfill, RerunError> {
        let child = NewChild {
            source_id,
            new_id,
            kind: ChildKind::RerunFailed,
            created_by,
            now,
            causes: None,
        };
        self.create_child(tenant_id, &child, None).await
    }
    /// Creates a child backfill of `child.source_id` (rerun-failed, apply, revert: its rules
    /// checked on rows read in the same transaction), writing `idem` in that transaction.
    async fn create_child(
        &self,
        tenant_id: &str,
        child: &NewChild<'_>,
        idem: Option<&NewIdempotency<'_>>,
    ) -> Result<Backfill, RerunError>;
    async fn delete_backfill(&self, tenant_id: &str, id: &str) -> Result<(), DeleteBackfillError>;

    // ---- executions -------------------------------------------------------------------
    async fn insert_execution(&self, e: NewExecution) -> Result<Execution>;
    async fn execution(&self, tenant_id: &str, id: &str) -> Result<Option<Execution>>;
    /// An execution by id alone, for signed completions from an executor (no tenant credential).
    async fn execution_by_id(&self, id: &str) -> Result<Option<Execution>>;
    /// The earlier attempts of a tenant's execution (its row is the latest), oldest first;
    /// at most the newest 100.
    async fn execution_attempts(
        &self,
        tenant_id: &str,
        execution_id: &str,
    ) -> Result<Vec<ExecutionAttempt>>;
    /// Newest first.
    async fn list_executions(
        &self,
        tenant_id: &str,
        filter: &ExecutionFilter,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Page<Execution>>;
    /// Sets the final status of an execution that is not final yet, the matching backfill
    /// item and counters, and the credit ledger on success, in one transaction. Returns
    /// `None` when the execution is missing, `Some(false)` when it was already final.
    async fn finish_execution(
        &self,
        tenant_id: &str,
        id: &str,
        status: neo_domain::backfill::ExecutionStatus,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<bool>>;

    // ---- dispatch (the orchestrator) ---------------------------------------------------
    /// RUNNING backfills, other backfills that still have items in flight, and CANCELLED or
    /// FAILED ones with pending items left to sweep ([`Store::sweep_pending`]). The
    /// `filter_spec` of a backfill whose snapshot is complete is `null` here (dispatch never
    /// needs it; an explicit id list would be parsed on every poll).
    async fn dispatchable_backfills(&self) -> Result<Vec<Backfill>>;
    /// Moves up to `limit` pending items of a CANCELLED or FAILED backfill to `cancelled`
    /// and fixes its counters; how many moved (0 for a backfill in any other state). Ending a
    /// backfill cancels at most [`CANCEL_INLINE`] pending items in its own transaction, so a
    /// cancel of a million items answers at once; the orchestrator sweeps the rest with this.
    async fn sweep_pending(&self, backfill_id: &str, limit: usize, now: Timestamp) -> Result<u64>;
    /// Claims, for each `(backfill id, limit)` of `wants`, up to `limit` pending items of that
    /// backfill if it is RUNNING (never more than its `max_in_flight` minus what is in
    /// flight), marking entities that already have a succeeded execution of the workflow
    /// `skipped` (unless `reprocess`). One transaction for all of them; the results are in
    /// the order of `wants`.
    ///
    /// Items are taken round-robin across their PSA companies (by rank within the company,
    /// then order), at most the backfill's `max_in_flight_per_company` of one company in
    /// flight, and none of a company `held` names for that backfill (`(backfill id, company)`:
    /// a company blackout, which the orchestrator evaluates).
    async fn claim_many(
        &self,
        wants: &[(&str, usize)],
        held: &[(&str, &str)],
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<ClaimResult>>;
    /// [`Store::claim_many`] for one backfill.
    async fn claim_items(
        &self,
        backfill_id: &str,
        worker: &str,
        limit: usize,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<ClaimResult> {
        let mut res = self
            .claim_many(&[(backfill_id, limit)], &[], worker, now, lease_until)
            .await?;
        Ok(res.pop().unwrap_or_default())
    }
    /// Records outcomes (items, executions, counters, credit ledger, circuit breaker and
    /// completion) in one transaction. An outcome for an item that was settled meanwhile is
    /// ignored.
    async fn settle(
        &self,
        outcomes: &[Outcome],
        breaker_threshold: i64,
        now: Timestamp,
    ) -> Result<()>;
    /// Extends the leases of every item `worker` holds.
    async fn heartbeat(&self, worker: &str, lease_until: Timestamp) -> Result<u64>;
    /// Puts items with expired leases back to pending and fails items whose completion
    /// deadline passed.
    async fn reap_expired_leases(&self, now: Timestamp) -> Result<ReapReport>;
    /// Puts every item `worker` holds back to pending (graceful shutdown).
    async fn release_leases(&self, worker: &str, now: Timestamp) -> Result<u64>;
    /// COMPLETED when RUNNING, snapshotted and every item settled. Returns true if it completed.
    async fn complete_if_settled(&self, backfill_id: &str, now: Timestamp) -> Result<bool>;
    /// `(ord, execution_id, lease owner)` of a backfill's in-flight items.
    async fn in_flight_items(
        &self,
        backfill_id: &str,
    ) -> Result<Vec<(i64, String, Option<String>)>>;
    /// Adds entities to a backfill's snapshot (in order) and records where enumeration resumes,
    /// in one transaction; `complete` marks the snapshot final. A compare-and-set on the
    /// checkpoint: the page is appended only if the snapshot is still open and its checkpoint
    /// is still `read_from` (the one the page was read after), so two processes enumerating
    /// the same backfill never append a page twice. Returns whether it was appended.
    async fn append_items(
        &self,
        backfill_id: &str,
        items: &[SnapshotEntry],
        read_from: Option<&Value>,
        checkpoint: Option<&Value>,
        complete: bool,
        now: Timestamp,
    ) -> Result<bool>;
    /// Records the in-flight limits the orchestrator adapted backfills to (`None`: back at
    /// `max_in_flight`), for reads; the orchestrator applies them itself.
    async fn set_effective_max_in_flight(&self, limits: &[(String, Option<i64>)]) -> Result<()>;
    /// Ends an active backfill FAILED with `error` (orchestrator-level failure); one that ended
    /// meanwhile (cancelled, completed) is left as it is.
    async fn fail_backfill(&self, backfill_id: &str, error: &str, now: Timestamp) -> Result<()>;
    /// Pauses a RUNNING backfill with nothing in flight for `reason` (one of the self-pauses:
    /// `TrialComplete`, with the trial's summary; `BudgetReached`; `AllowanceExhausted`, which
    /// the caller measured), re-checked under the backfill's lock. Whether it paused.
    async fn pause_itself(
        &self,
        tenant_id: &str,
        backfill_id: &str,
        reason: neo_domain::control::PauseReason,
        now: Timestamp,
    ) -> Result<bool>;

    // ---- what psa_actions changed (psa_changes) --------------------------------------------
    /// Records `changes` of one execution after those it has; with `replace_fields` its field
    /// changes recorded so far are dropped first (a write planned again, or refused).
    async fn record_psa_changes(
        &self,
        scope: &ChangeScope<'_>,
        changes: &[Change],
        at: Timestamp,
        replace_fields: bool,
    ) -> Result<()>;
    async fn psa_changes(&self, tenant_id: &str, of: ChangesOf<'_>) -> Result<Vec<PsaChange>>;
    /// A backfill's field changes grouped by (field, previous, new), most entities first.
    async fn psa_change_totals(
        &self,
        tenant_id: &str,
        backfill_id: &str,
        limit: usize,
    ) -> Result<Vec<ChangeTotal>>;

    // ---- notifications (the outbox is written by the state changes themselves) -----------
    /// Adds an endpoint, its secret sealed.
    async fn insert_notification_endpoint(
        &self,
        e: NewNotificationEndpoint,
        now: Timestamp,
    ) -> Result<NotificationEndpoint>;
    async fn notification_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<NotificationEndpoint>>;
    async fn list_notification_endpoints(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<NotificationEndpoint>>;
    async fn update_notification_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
        patch: &NotificationEndpointPatch,
        now: Timestamp,
    ) -> Result<Option<NotificationEndpoint>>;
    /// Removes an endpoint and its undelivered events; whether it existed.
    async fn delete_notification_endpoint(&self, tenant_id: &str, id: &str) -> Result<bool>;
    /// Writes an `endpoint.test` event for one endpoint (delivered like any other); its id,
    /// `None` when there is no such endpoint.
    async fn send_test_event(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        now: Timestamp,
    ) -> Result<Option<String>>;
    /// An endpoint's deliveries, newest first.
    async fn notification_deliveries(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>>;
    /// Takes up to `limit` due deliveries (the oldest of each enabled endpoint not in `busy`)
    /// under a lease until `lease_until`, for every tenant.
    async fn take_due_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
        busy: &[String],
    ) -> Result<Vec<DueDelivery>>;
    /// Records what became of a taken delivery; a failure to be retried holds the endpoint's
    /// other undelivered events until the same instant.
    async fn finish_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        outcome: &DeliveryOutcome,
        now: Timestamp,
    ) -> Result<()>;
    /// Deletes deliveries that ended before `before` and events left without any; how many
    /// deliveries.
    async fn prune_notifications(&self, before: Timestamp) -> Result<u64>;

    // ---- credits and idempotency --------------------------------------------------------
    /// A backfill's failed items (in snapshot order) with their errors and the HTTP status
    /// their execution got; none for another tenant's backfill.
    async fn failures(
        &self,
        tenant_id: &str,
        backfill_id: &str,
    ) -> Result<Vec<neo_domain::triage::Failure<Timestamp>>>;
    /// Credits consumed by the tenant in `[from, to)`.
    async fn credits_used(&self, tenant_id: &str, from: Timestamp, to: Timestamp) -> Result<i64>;
    async fn idempotent_response(
        &self,
        tenant_id: &str,
        key: &str,
        not_before: Timestamp,
    ) -> Result<Option<IdempotentResponse>>;
    /// Deletes the idempotency keys created before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64>;
}

/// Migrates a database to this release's schema (forward-only). A database that a newer
/// release has migrated further is refused with words an operator can act on, before anything
/// is written to it: running an older binary against it would misread what it does not know.
pub(crate) async fn migrate<'a, A>(
    migrator: &sqlx::migrate::Migrator,
    conn: A,
) -> anyhow::Result<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    match migrator.run(conn).await {
        Err(sqlx::migrate::MigrateError::VersionMissing(v)) => {
            anyhow::bail!(newer_release(v, migrator))
        }
        r => Ok(r?),
    }
}

/// The migrations opening the database at `url` would apply (version, description), in order,
/// without applying any or creating the database; refused as [`migrate`] refuses a database
/// from a newer release.
pub async fn pending_migrations(url: &str) -> anyhow::Result<Vec<(i64, String)>> {
    use sqlx::Connection;
    const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success";
    let (migrator, applied): (&sqlx::migrate::Migrator, Vec<i64>) = if url.starts_with("sqlite:") {
        let opts = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)?
            .create_if_missing(false)
            .read_only(true);
        let applied = match sqlx::SqliteConnection::connect_with(&opts).await {
            // No file yet: everything is to apply.
            Err(_) => Vec::new(),
            Ok(mut c) => sqlx::query_scalar(APPLIED)
                .fetch_all(&mut c)
                .await
                .unwrap_or_default(),
        };
        (&sqlite::MIGRATOR, applied)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let mut c = sqlx::PgConnection::connect(url).await?;
        let applied = match sqlx::query_scalar(APPLIED).fetch_all(&mut c).await {
            Ok(v) => v,
            // No migrations table yet (error 42P01): a fresh database.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        (&postgres::MIGRATOR, applied)
    } else {
        anyhow::bail!(
            "unsupported database URL scheme in {url:?}: use sqlite://PATH or postgres://…"
        )
    };
    let known: Vec<i64> = migrator.migrations.iter().map(|m| m.version).collect();
    if let Some(v) = applied.iter().find(|v| !known.contains(v)) {
        anyhow::bail!(newer_release(*v, migrator));
    }
    Ok(migrator
        .migrations
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| (m.version, m.description.to_string()))
        .collect())
}

/// What refusing a database from a newer release says.
fn newer_release(v: i64, migrator: &sqlx::migrate::Migrator) -> String {
    let known = migrator
        .migrations
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    format!(
        "this database was upgraded by a newer release of neo-backfill (it has schema \
         migration {v}; this release knows migrations up to {known}): run that release or a \
         later one, or restore the backup taken before the upgrade"
    )
}

/// Opens the store a database URL names (`sqlite://PATH`, `postgres://…` or
/// `postgresql://…`) and migrates it, without a master key: for commands that never touch
/// secrets (reading or writing one fails). See [`connect_with`].
pub async fn connect(url: &str) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    connect_with(url, None).await
}

/// [`connect`] with the master key that seals the secrets. With a key, opening checks that it
/// is the database's key (the first key to open a database becomes its key) and seals any
/// secret still stored in plaintext.
pub async fn connect_with(
    url: &str,
    sealer: Option<std::sync::Arc<Sealer>>,
) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(
            SqliteStore::open_with(url, sealer).await?,
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(
            PgStore::open_with(url, 10, sealer).await?,
        ))
    } else {
        anyhow::bail!(
            "unsupported database URL scheme in {url:?}: use sqlite://PATH or postgres://…"
        )
    }
}
