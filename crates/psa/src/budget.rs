//! The PSA request budget as the connectors meet it: every request a backfill sends to a
//! tenant's PSA (snapshot pages, `psa_actions` reads and writes, their retries) first takes a
//! token from the tenant's bucket in the database ([`neo_domain::budget`]), which every replica
//! shares. When the bucket is empty the request waits; it never fails for it.
//!
//! Tokens are taken in batches, as many as there are requests waiting in this process (at most
//! [`MAX_BATCH`]), so the bucket's row is written once per batch rather than per request; one
//! waiter at a time asks the database (the others queue behind it), and a token not used within
//! [`neo_domain::budget::HELD_FOR`] is dropped, so what a replica holds never adds to a burst.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use neo_store::Store;

/// The most tokens one take asks for.
pub const MAX_BATCH: i64 = 20;

/// What a request waits on before it is sent ([`crate::http::HttpPolicy::gate`]).
#[async_trait::async_trait]
pub trait RequestGate: Send + Sync {
    async fn admit(&self);
}

/// A tenant's budget, taken from the store.
pub struct BudgetGate {
    store: Arc<dyn Store>,
    tenant_id: String,
    waiting: AtomicI64,
    held: tokio::sync::Mutex<Held>,
}

struct Held {
    tokens: i64,
    until: Instant,
}

impl BudgetGate {
    pub fn new(store: Arc<dyn Store>, tenant_id: &str) -> Self {
        Self {
            store,
            tenant_id: tenant_id.to_owned(),
            waiting: AtomicI64::new(0),
            held: tokio::sync::Mutex::new(Held {
                tokens: 0,
                until: Instant::now(),
            }),
        }
    }
}

#[async_trait::async_trait]
impl RequestGate for BudgetGate {
    async fn admit(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let mut held = self.held.lock().await;
        loop {
            if held.tokens > 0 && Instant::now() < held.until {
                held.tokens -= 1;
                break;
            }
            let want = self.waiting.load(Ordering::SeqCst).clamp(1, MAX_BATCH);
            let now = jiff::Timestamp::now();
            match self.store.take_psa_budget(&self.tenant_id, want, now).await {
                Ok(Some(g)) if g.granted > 0 => {
                    metrics::counter!("neo_psa_budget_requests_total").increment(g.granted as u64);
                    held.tokens = g.granted - 1;
                    held.until = Instant::now() + neo_domain::budget::HELD_FOR;
                    break;
                }
                // The bucket is empty: wait for the next token, holding the queue.
                Ok(Some(g)) => {
                    tokio::time::sleep(Duration::from_millis(g.wait_ms.clamp(1, 60_000) as u64))
                        .await
                }
                // No integration (removed meanwhile): the request fails on its own.
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "PSA budget unavailable; waiting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        drop(held);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        // Requests that waited on the budget (an empty bucket, not the queue of a batch).
        if started.elapsed() >= Duration::from_millis(50) {
            metrics::counter!("neo_psa_budget_waits_total").increment(1);
        }
    }
}
