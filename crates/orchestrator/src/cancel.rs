//! A backfill that ended (CANCELLED, FAILED): its running executions are aborted and the ones
//! awaiting a callback settled cancelled; cancel calls to their executors go to the outbound
//! pool, never inside the tick.

use neo_store::{Backfill, Outcome, Settlement, CALLBACK_OWNER};

use crate::executor::{self, ExecutorSpec};
use crate::*;

impl Orchestrator {
    /// Cancels what is outstanding for a backfill that ended: aborts this worker's running
    /// executions and sends a cancel call for asynchronous webhook executions.
    pub(crate) async fn cancel_outstanding(&self, b: &Backfill) -> anyhow::Result<usize> {
        let i = &self.inner;
        let mut n = 0;
        let mine: Vec<(Key, Running)> = {
            let mut running = i.running.lock().expect("poisoned");
            let keys: Vec<Key> = running.keys().filter(|k| k.0 == b.id).cloned().collect();
            keys.into_iter()
                .filter_map(|k| running.remove(&k).map(|r| (k, r)))
                .collect()
        };
        for ((bid, ord), r) in mine {
            r.abort.abort();
            n += 1;
            let _ = i.outcomes.send(Outcome {
                backfill_id: bid,
                ord,
                execution_id: r.execution_id,
                settlement: Settlement::Cancelled(format!("the backfill is {}", b.state)),
                attempt: Default::default(),
            });
        }
        let waiting: Vec<(i64, String)> = i
            .store
            .in_flight_items(&b.id)
            .await?
            .into_iter()
            .filter(|(_, _, owner)| owner.as_deref() == Some(CALLBACK_OWNER))
            .map(|(o, e, _)| (o, e))
            .collect();
        if !waiting.is_empty() {
            let wf = i.store.workflow(&b.tenant_id, b.target_workflow_id).await?;
            let hook = wf.and_then(|w| match ExecutorSpec::from_stored(&w.executor) {
                Ok(ExecutorSpec::Webhook { url, secret, .. }) => Some((url, secret)),
                _ => None,
            });
            let mut outcomes = Vec::new();
            for (ord, exec) in waiting {
                // The cancel call is best effort and runs in the outbound pool: the tick only
                // reads and writes the database.
                if let Some((url, secret)) = hook.clone() {
                    let (http, clock, timeout) =
                        (i.http.clone(), i.clock.clone(), i.cfg.cancel_timeout);
                    let exec = exec.clone();
                    i.outbound.submit(&b.tenant_id, async move {
                        executor::cancel_webhook(
                            &http,
                            clock.as_ref(),
                            &url,
                            &secret,
                            &exec,
                            timeout,
                        )
                        .await;
                    });
                }
                outcomes.push(Outcome {
                    backfill_id: b.id.clone(),
                    ord,
                    execution_id: exec,
                    settlement: Settlement::Cancelled(format!("the backfill is {}", b.state)),
                    attempt: Default::default(),
                });
            }
            n += outcomes.len();
            i.store
                .settle(&outcomes, i.cfg.breaker_threshold, i.clock.now())
                .await?;
        }
        Ok(n)
    }
}
