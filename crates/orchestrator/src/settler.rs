//! Settling outcomes: group settlement (one transaction for many outcomes), and the rule that
//! no outcome can stall the settler. A database that is busy, full or unreachable is waited
//! for (retrying the same batch, since nothing may be lost); any other failure will not go
//! away on retry (a value the database refuses, a constraint), so the batch is split in halves
//! until the outcome that fails is alone, and that one settles as `failed` with a fixed error.
//! Every tenant's outcomes share the settler, so one tenant's poison outcome never stops
//! another tenant's backfills from settling.

use std::sync::atomic::Ordering;
use std::time::Duration;

use neo_store::{Outcome, Settlement};

use crate::{db_hint, Orchestrator};

/// The error an outcome that could not be stored as it was settles with.
pub const UNSTORABLE: &str =
    "the execution's outcome could not be stored as reported; settled as failed";

/// Whether a settle error is the database being unavailable (worth waiting for) rather than
/// something about the batch itself.
fn unavailable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<neo_store::StoreError>()
        .and_then(|s| s.unavailable())
        .is_some()
}

impl Orchestrator {
    /// Settles every outcome received so far. Returns how many.
    pub async fn settle_pending(&self) -> anyhow::Result<usize> {
        let i = &self.inner;
        let mut rx = i.outcomes_rx.lock().await;
        let mut batch = Vec::new();
        while let Ok(o) = rx.try_recv() {
            batch.push(o);
        }
        drop(rx);
        let n = batch.len();
        if n > 0 {
            self.settle_resilient(batch).await;
        }
        Ok(n)
    }

    /// Settles `batch` whatever it holds: waits out an unavailable database, splits a batch
    /// that fails for another reason, and settles an outcome that cannot be stored as
    /// [`UNSTORABLE`]. Only an outcome whose fixed failure cannot be stored either is given up
    /// (logged; its item's lease expires and it is dispatched again).
    pub(crate) async fn settle_resilient(&self, batch: Vec<Outcome>) {
        let i = &self.inner;
        let mut work = vec![(batch, false)];
        while let Some((batch, fixed)) = work.pop() {
            let mut attempt = 0u32;
            loop {
                let e = match i
                    .store
                    .settle(&batch, i.cfg.breaker_threshold, i.clock.now())
                    .await
                {
                    Ok(()) => {
                        self.settled(&batch);
                        break;
                    }
                    Err(e) => anyhow::Error::from(e),
                };
                if unavailable(&e) {
                    // Never lose an outcome: retry until the database answers.
                    attempt += 1;
                    tracing::error!(error = %e, hint = db_hint(&e), attempt, "settling outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(25))))
                        .await;
                    continue;
                }
                if batch.len() > 1 {
                    tracing::warn!(error = %e, outcomes = batch.len(), "a settle batch failed; splitting it");
                    let mut first = batch;
                    let second = first.split_off(first.len() / 2);
                    work.push((second, false));
                    work.push((first, false));
                } else if !fixed {
                    let o = &batch[0];
                    tracing::warn!(error = %e, backfill = %o.backfill_id, execution = %o.execution_id, "an outcome could not be stored; settling it as failed");
                    let fixed_outcome = Outcome {
                        settlement: Settlement::Failed(UNSTORABLE.to_owned()),
                        ..o.clone()
                    };
                    work.push((vec![fixed_outcome], true));
                } else {
                    tracing::error!(error = %e, backfill = %batch[0].backfill_id, execution = %batch[0].execution_id, "an outcome could not be stored even as a failure; its lease will expire");
                    self.settled(&batch);
                }
                break;
            }
        }
    }

    /// Accounting after a batch is settled (or given up): capacity to refill, the in-flight
    /// count, waiters.
    fn settled(&self, batch: &[Outcome]) {
        let i = &self.inner;
        let n = batch.len();
        i.refill
            .lock()
            .expect("poisoned")
            .extend(batch.iter().map(|o| o.backfill_id.clone()));
        metrics::gauge!("neo_items_in_flight").decrement(n as f64);
        if i.outstanding.fetch_sub(n, Ordering::SeqCst) == n {
            i.idle.notify_waiters();
        }
        i.kick.notify_one();
    }

    /// The settler task: takes outcomes as executions finish and settles them in groups.
    pub(crate) fn spawn_settler(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut rx = me.inner.outcomes_rx.lock().await;
            while let Some(first) = rx.recv().await {
                // Executions that are ready run first, so their outcomes join this batch
                // (the woken settler would otherwise run right after the first outcome).
                tokio::task::yield_now().await;
                let mut batch = vec![first];
                // Group settlement: while more dispatched executions are outstanding, wait up
                // to `settle_window` for their outcomes to join this batch, so one
                // transaction settles (and the refill then claims) many items.
                let until = tokio::time::Instant::now() + me.inner.cfg.settle_window;
                while batch.len() < 1000 {
                    match rx.try_recv() {
                        Ok(o) => batch.push(o),
                        Err(_) => {
                            if me.inner.outstanding.load(Ordering::SeqCst) <= batch.len() {
                                break;
                            }
                            match tokio::time::timeout_at(until, rx.recv()).await {
                                Ok(Some(o)) => batch.push(o),
                                _ => break,
                            }
                        }
                    }
                }
                me.settle_resilient(batch).await;
            }
        })
    }
}
