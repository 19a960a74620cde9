//! The orchestrator's window on the tenant's PSA: where the entities of a backfill over a PSA
//! query come from, and (issue 20) how a `psa_actions` execution changes one record. The PSA
//! connectors implement it and the orchestrator calls it; it lives here, below both, so
//! neither depends on the other.

use neo_domain::backfill::{BackfillMode, EntityType};
use serde_json::Value;

use crate::Backfill;

/// One entity of a snapshot as the PSA described it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub id: String,
    /// The human-facing number (Autotask `ticketNumber`), if the PSA has one.
    pub number: Option<String>,
    /// What the operator recognises it by (a ticket's summary), cut short by the connector.
    pub summary: Option<String>,
    /// The PSA company (the MSP's client) the entity belongs to, when the PSA says: claims
    /// go round-robin across companies and apply a backfill's per-company cap and blackouts.
    pub company: Option<String>,
}

impl SnapshotEntry {
    /// An entity known by its id alone (an explicit id list).
    pub fn id(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Default::default()
        }
    }
}

/// The next part of a snapshot: its entities in order, where enumeration resumes after
/// them, and whether the snapshot is complete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourcePage {
    pub items: Vec<SnapshotEntry>,
    pub checkpoint: Option<serde_json::Value>,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// Try again on a later tick (the PSA throttles or is briefly unavailable): slow down,
    /// never fail entities.
    Retry(String),
    /// Enumeration cannot succeed (bad credentials, a query the PSA refuses, retries
    /// exhausted): the backfill ends FAILED with this error.
    Fatal(String),
}

/// One `psa_actions` execution on one record.
#[derive(Debug, Clone)]
pub struct ActionJob<'a> {
    pub tenant_id: &'a str,
    pub backfill_id: &'a str,
    /// The backfill a revert restores (its parent).
    pub parent_backfill_id: Option<&'a str>,
    pub mode: BackfillMode,
    /// A revert that also removes the notes the parent added.
    pub remove_notes: bool,
    pub entity_type: EntityType,
    pub entity_id: &'a str,
    pub execution_id: &'a str,
    pub workflow_id: i64,
    /// The workflow's executor as stored (`{"type": "psa_actions", …}`).
    pub executor: &'a Value,
}

/// How a `psa_actions` execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    Succeeded,
    /// Not processed, for this reason (`changed_since: …`).
    Skipped(String),
    /// Refused or impossible: not retried.
    Failed(String),
    /// The PSA is unavailable: retried with backoff (a plan is made again on the next try).
    Transient(String),
}

/// The tenant's PSA as the orchestrator uses it (the PSA connectors). A backfill over an
/// explicit id list is snapshotted at create and never asks for pages.
#[async_trait::async_trait]
pub trait EntitySource: Send + Sync + 'static {
    /// The next page of the snapshot, resuming from `backfill.snapshot_checkpoint`.
    async fn next_page(&self, backfill: &Backfill) -> Result<SourcePage, SourceError>;

    /// Runs one `psa_actions` execution: reads the record, plans, records the change and
    /// writes it (or only records it, or restores what the parent wrote: `job.mode`).
    async fn act(&self, _job: &ActionJob<'_>) -> ActionOutcome {
        ActionOutcome::Failed("PSA actions are not available in this process".into())
    }
}

/// A source for processes without PSA access: it fails the backfill with a clear error.
pub struct NoPsaSource;

#[async_trait::async_trait]
impl EntitySource for NoPsaSource {
    async fn next_page(&self, _: &Backfill) -> Result<SourcePage, SourceError> {
        Err(SourceError::Fatal(
            "PSA enumeration is not available in this process".into(),
        ))
    }
}
