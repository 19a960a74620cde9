//! Side effects off the control loop. Calls whose destination a tenant controls and whose
//! outcome nothing waits for (cancel calls to webhook executors) run here, in a bounded pool,
//! never inside the orchestrator's tick: a receiver that black-holes them costs its own
//! tenant's queue, not anybody's signals or dispatch.
//!
//! Each tenant has at most [`PER_TENANT_CONCURRENCY`] calls running and [`PER_TENANT_QUEUE`]
//! waiting (beyond it new calls are dropped, with a warning: they are best effort); the
//! process runs at most [`GLOBAL_CONCURRENCY`] at once. Every call carries its own timeout.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

pub const PER_TENANT_CONCURRENCY: usize = 4;
pub const PER_TENANT_QUEUE: usize = 10_000;
pub const GLOBAL_CONCURRENCY: usize = 64;

#[derive(Debug)]
struct TenantQueue {
    /// Calls queued or running.
    pending: usize,
    permits: Arc<Semaphore>,
}

/// The pool. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Outbound {
    global: Arc<Semaphore>,
    tenants: Mutex<HashMap<String, TenantQueue>>,
}

impl Default for Outbound {
    fn default() -> Self {
        Self {
            global: Arc::new(Semaphore::new(GLOBAL_CONCURRENCY)),
            tenants: Mutex::new(HashMap::new()),
        }
    }
}

impl Outbound {
    /// Queues `call` for `tenant`; returns false (and drops it) when the tenant's queue is
    /// full.
    pub fn submit(
        self: &Arc<Self>,
        tenant: &str,
        call: impl Future<Output = ()> + Send + 'static,
    ) -> bool {
        let permits = {
            let mut t = self.tenants.lock().expect("poisoned");
            let q = t.entry(tenant.to_owned()).or_insert_with(|| TenantQueue {
                pending: 0,
                permits: Arc::new(Semaphore::new(PER_TENANT_CONCURRENCY)),
            });
            if q.pending >= PER_TENANT_QUEUE {
                metrics::counter!("neo_outbound_dropped_total").increment(1);
                tracing::warn!(
                    tenant,
                    "outbound queue full; a best-effort call was dropped"
                );
                return false;
            }
            q.pending += 1;
            q.permits.clone()
        };
        let me = self.clone();
        let tenant = tenant.to_owned();
        tokio::spawn(async move {
            if let Ok(_mine) = permits.acquire().await {
                if let Ok(_any) = me.global.acquire().await {
                    call.await;
                }
            }
            let mut t = me.tenants.lock().expect("poisoned");
            if let Some(q) = t.get_mut(&tenant) {
                q.pending -= 1;
                if q.pending == 0 {
                    t.remove(&tenant);
                }
            }
        });
        true
    }

    /// Calls queued or running for `tenant`.
    pub fn pending(&self, tenant: &str) -> usize {
        self.tenants
            .lock()
            .expect("poisoned")
            .get(tenant)
            .map_or(0, |q| q.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A tenant whose calls never finish holds only its own permits: another tenant's call
    /// runs at once.
    #[tokio::test]
    async fn a_stuck_tenant_does_not_block_another() {
        let pool = Arc::new(Outbound::default());
        for _ in 0..100 {
            assert!(pool.submit("a", std::future::pending()));
        }
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        pool.submit("b", async move {
            d.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(());
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), rx)
            .await
            .expect("b's call ran while a's hang")
            .unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 1);
        assert_eq!(pool.pending("a"), 100);
    }
}
