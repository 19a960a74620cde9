//! The orchestrator's [`EntitySource`] over the PSA connectors: one PSA page per call (Halo: a
//! few), resuming from the persisted checkpoint ([`Cursor`]: `{"last_id"}`, Halo
//! `{"last_id","page_no"}`), keeping only rows that match the whole filter, were created before
//! the backfill (the frozen snapshot), and fit its `limit`.
//!
//! Connected clients are kept per tenant while the integration (PSA, settings and secrets) stays
//! the same, so discovery and Halo tokens are not repeated for every page; any error drops the
//! tenant's client, so the next attempt connects afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use neo_domain::filter::{self, FilterSpec};
use neo_store::source::{
    ActionJob, ActionOutcome, EntitySource, SnapshotEntry, SourceError, SourcePage,
};
use neo_store::{Backfill, Store};
use serde_json::{json, Value};

use crate::budget::BudgetGate;
use crate::client::{Cursor, PsaClient};
use crate::http::{Gate, HttpPolicy, PsaError};

/// Consecutive deferred pages after which enumeration counts as failed.
pub const MAX_DEFERRALS: u32 = 30;

pub struct PsaSource {
    store: Arc<dyn Store>,
    http: neo_egress::Egress,
    policy: HttpPolicy,
    deferrals: Mutex<HashMap<String, u32>>,
    /// Per tenant: the integration a client was connected with, and the client.
    clients: Mutex<HashMap<String, (Value, PsaClient)>>,
    /// Per tenant: its request budget, which its clients' requests wait on.
    gates: Mutex<HashMap<String, Gate>>,
}

impl PsaSource {
    pub fn new(store: Arc<dyn Store>, policy: HttpPolicy, http: neo_egress::Egress) -> Self {
        Self {
            store,
            http,
            policy,
            deferrals: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's budget gate (one per tenant for the process's life, so its queue and the
    /// tokens it holds survive a reconnect).
    fn gate(&self, tenant_id: &str) -> Gate {
        self.gates
            .lock()
            .expect("poisoned")
            .entry(tenant_id.to_owned())
            .or_insert_with(|| Gate(Arc::new(BudgetGate::new(self.store.clone(), tenant_id))))
            .clone()
    }

    fn defer(&self, backfill: &str, e: &PsaError) -> SourceError {
        let mut d = self.deferrals.lock().expect("poisoned");
        let n = d.entry(backfill.to_owned()).or_default();
        *n += 1;
        if *n > MAX_DEFERRALS {
            SourceError::Fatal(format!("PSA enumeration failed {} times in a row: {e}", *n))
        } else {
            SourceError::Retry(e.to_string())
        }
    }

    /// The tenant's connected client, connecting when there is none for its integration as it
    /// is now.
    pub(crate) async fn client(&self, tenant_id: &str) -> Result<PsaClient, PsaError> {
        let integration = self
            .store
            .integration(tenant_id)
            .await
            .map_err(|e| PsaError::Unavailable(format!("database: {e}")))?
            .ok_or_else(|| PsaError::Auth("the tenant's PSA integration was removed".into()))?;
        let secrets = self
            .store
            .integration_secrets(tenant_id)
            .await
            .map_err(|e| PsaError::Unavailable(format!("database: {e}")))?
            .unwrap_or_default();
        let key = json!([integration.psa, integration.config, secrets]);
        let cached = {
            let clients = self.clients.lock().expect("poisoned");
            clients
                .get(tenant_id)
                .filter(|(k, _)| *k == key)
                .map(|(_, c)| c.clone())
        };
        Ok(match cached {
            Some(c) => c,
            None => {
                let c = PsaClient::connect(
                    &integration.psa,
                    &integration.config,
                    &secrets,
                    self.http.clone(),
                    HttpPolicy {
                        gate: Some(self.gate(tenant_id)),
                        ..self.policy.clone()
                    },
                )
                .await?;
                self.clients
                    .lock()
                    .expect("poisoned")
                    .insert(tenant_id.to_owned(), (key, c.clone()));
                c
            }
        })
    }

    /// Forgets the tenant's client after an error, so the next call connects afresh.
    pub(crate) fn drop_client(&self, tenant_id: &str) {
        self.clients.lock().expect("poisoned").remove(tenant_id);
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    async fn page(&self, b: &Backfill) -> Result<SourcePage, PsaError> {
        let client = self.client(&b.tenant_id).await?;
        let (spec, _) = filter::parse(&b.filter_spec, b.created_at, None)
            .map_err(|e| PsaError::Rejected(format!("the stored filter is invalid: {e}")))?;
        let FilterSpec::Query { root, limit } = spec else {
            return Err(PsaError::Rejected(
                "an entity_ids backfill has no PSA snapshot".into(),
            ));
        };
        let after = Cursor::from_checkpoint(b.snapshot_checkpoint.as_ref());
        let page = client.page(b.entity_type, &root, &after).await?;
        let mut items: Vec<SnapshotEntry> = page
            .rows
            .into_iter()
            .filter(|r| r.created.is_none_or(|c| c <= b.created_at))
            .map(|r| SnapshotEntry {
                id: r.id.to_string(),
                number: r.number,
                summary: r.summary,
                company: r.company,
            })
            .collect();
        let mut complete = page.exhausted;
        if let Some(limit) = limit {
            let room = (limit as i64 - b.total_items).max(0) as usize;
            if items.len() >= room {
                items.truncate(room);
                complete = true;
            }
        }
        Ok(SourcePage {
            items,
            checkpoint: page.next.map(|c| c.to_checkpoint()),
            complete,
        })
    }
}

#[async_trait::async_trait]
impl EntitySource for PsaSource {
    async fn next_page(&self, b: &Backfill) -> Result<SourcePage, SourceError> {
        match self.page(b).await {
            Ok(p) => {
                self.deferrals.lock().expect("poisoned").remove(&b.id);
                Ok(p)
            }
            Err(e) => {
                self.drop_client(&b.tenant_id);
                if e.is_transient() {
                    Err(self.defer(&b.id, &e))
                } else {
                    Err(SourceError::Fatal(e.to_string()))
                }
            }
        }
    }

    async fn act(&self, job: &ActionJob<'_>) -> ActionOutcome {
        crate::executor::act(self, job).await
    }
}
