//! Where the entities of a backfill over a PSA query come from: the interface the PSA
//! connectors implement and the orchestrator calls. It lives here, below both, so neither
//! depends on the other.

use crate::Backfill;

/// One entity of a snapshot as the PSA described it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub id: String,
    /// The human-facing number (Autotask `ticketNumber`), if the PSA has one.
    pub number: Option<String>,
    /// What the operator recognises it by (a ticket's summary), cut short by the connector.
    pub summary: Option<String>,
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

/// Where the entities of a backfill whose snapshot is not complete come from (the PSA
/// connectors). A backfill over an explicit id list is snapshotted at create and never asks.
#[async_trait::async_trait]
pub trait EntitySource: Send + Sync + 'static {
    /// The next page of the snapshot, resuming from `backfill.snapshot_checkpoint`.
    async fn next_page(&self, backfill: &Backfill) -> Result<SourcePage, SourceError>;
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
