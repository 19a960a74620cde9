//! The orchestrator's [`EntitySource`] over the PSA connectors: one PSA page per call,
//! resuming from the persisted `{"last_id"}` checkpoint, keeping only rows that match the
//! whole filter, were created before the backfill (the frozen snapshot), and fit its `limit`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use neo_domain::filter::{self, FilterSpec};
use neo_orchestrator::{EntitySource, SourceError, SourcePage};
use neo_store::{Backfill, Store};
use serde_json::json;

use crate::client::PsaClient;
use crate::http::{HttpPolicy, PsaError};

/// Consecutive deferred pages after which enumeration counts as failed.
pub const MAX_DEFERRALS: u32 = 30;

pub struct PsaSource {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    policy: HttpPolicy,
    deferrals: Mutex<HashMap<String, u32>>,
}

impl PsaSource {
    pub fn new(store: Arc<dyn Store>, policy: HttpPolicy) -> Self {
        Self {
            store,
            http: reqwest::Client::new(),
            policy,
            deferrals: Mutex::new(HashMap::new()),
        }
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

    async fn page(&self, b: &Backfill) -> Result<SourcePage, PsaError> {
        let integration = self
            .store
            .integration(&b.tenant_id)
            .await
            .map_err(|e| PsaError::Unavailable(format!("database: {e}")))?
            .ok_or_else(|| PsaError::Auth("the tenant's PSA integration was removed".into()))?;
        let secrets = self
            .store
            .integration_secrets(&b.tenant_id)
            .await
            .map_err(|e| PsaError::Unavailable(format!("database: {e}")))?
            .unwrap_or_default();
        let client = PsaClient::connect(
            &integration.psa,
            &integration.config,
            &secrets,
            self.http.clone(),
            self.policy.clone(),
        )
        .await?;
        let (spec, _) = filter::parse(&b.filter_spec, b.created_at, None)
            .map_err(|e| PsaError::Rejected(format!("the stored filter is invalid: {e}")))?;
        let FilterSpec::Query { root, limit } = spec else {
            return Err(PsaError::Rejected(
                "an entity_ids backfill has no PSA snapshot".into(),
            ));
        };
        let after = b
            .snapshot_checkpoint
            .as_ref()
            .and_then(|c| c.get("last_id"))
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let page = client.page(b.entity_type, &root, after).await?;
        let mut items: Vec<(String, Option<String>)> = page
            .rows
            .into_iter()
            .filter(|r| r.created.is_none_or(|c| c <= b.created_at))
            .map(|r| (r.id.to_string(), r.number))
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
            checkpoint: page.last_id.map(|l| json!({ "last_id": l })),
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
            Err(e) if e.is_transient() => Err(self.defer(&b.id, &e)),
            Err(e) => Err(SourceError::Fatal(e.to_string())),
        }
    }
}
