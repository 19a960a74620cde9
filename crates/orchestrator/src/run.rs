//! The loop: ticks when woken or every poll interval, refills capacity as settlements free it,
//! heartbeats leases, and on shutdown lets in-flight executions finish within the grace period
//! and releases the leases of what is left.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::*;

impl Orchestrator {
    /// Waits until every dispatched execution has finished and its outcome is settled, and
    /// every snapshot task of this process has stopped.
    pub async fn drain(&self) -> anyhow::Result<()> {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            self.settle_pending().await?;
            if self.inner.outstanding.load(Ordering::SeqCst) == 0
                && self.inner.enumerating.lock().expect("poisoned").is_empty()
            {
                return Ok(());
            }
            tokio::select! {
                _ = &mut idle => {}
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }

    /// Runs until `shutdown` turns true: ticks when woken (`wake`, a settled batch) or every
    /// poll interval, settles outcomes as they arrive, heartbeats leases. On shutdown it stops
    /// claiming, waits up to the grace period for in-flight executions, and releases the
    /// leases of what is left.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let i = self.inner.clone();
        tracing::info!(worker = %i.worker, "orchestrator started");
        let settler = self.spawn_settler();
        // The notification outbox, delivered in its own task (never by the tick).
        let notifier = tokio::spawn(
            crate::notify::Notifier {
                store: i.store.clone(),
                http: i.http.clone(),
                clock: i.clock.clone(),
                poll: i.cfg.poll_interval.max(Duration::from_millis(100)),
            }
            .run(shutdown.clone()),
        );
        let heartbeat = {
            let i = i.clone();
            tokio::spawn(async move {
                let every = Duration::from_millis((i.cfg.lease.as_millis() / 3).max(50) as u64);
                loop {
                    tokio::time::sleep(every).await;
                    let until = i.clock.now() + i.cfg.lease;
                    if let Err(e) = i.store.heartbeat(&i.worker, until).await {
                        tracing::warn!(error = %e, "heartbeat failed");
                    }
                }
            })
        };
        // A full tick when woken by this process (a signal, a create) and every poll
        // interval; a refill when a settlement freed capacity or a snapshot page landed.
        let mut next_tick = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if tokio::time::Instant::now() >= next_tick {
                if let Err(e) = self.tick().await {
                    tracing::error!(error = %e, hint = db_hint(&e), "orchestrator tick failed");
                }
                next_tick = tokio::time::Instant::now() + i.cfg.poll_interval;
            } else if let Err(e) = self.refill().await {
                tracing::error!(error = %e, hint = db_hint(&e), "orchestrator refill failed");
            }
            tokio::select! {
                _ = wake.notified() => next_tick = tokio::time::Instant::now(),
                _ = i.kick.notified() => {}
                _ = tokio::time::sleep_until(next_tick) => {}
                _ = shutdown.changed() => {}
            }
        }
        // Graceful shutdown.
        i.stopping.store(true, Ordering::SeqCst);
        tracing::info!(
            in_flight = i.outstanding.load(Ordering::SeqCst),
            "orchestrator stopping"
        );
        let _ = tokio::time::timeout(i.cfg.shutdown_grace, async {
            while i.outstanding.load(Ordering::SeqCst) > 0 {
                let idle = i.idle.notified();
                if i.outstanding.load(Ordering::SeqCst) == 0 {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), idle).await;
            }
        })
        .await;
        let left: Vec<Running> = i
            .running
            .lock()
            .expect("poisoned")
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in &left {
            r.abort.abort();
        }
        // A snapshot page in progress is not appended; the next process resumes from the
        // last appended page's checkpoint.
        for (_, t) in i.enumerating.lock().expect("poisoned").drain() {
            t.abort();
        }
        heartbeat.abort();
        settler.abort();
        notifier.abort();
        let _ = self.settle_pending().await;
        match i.store.release_leases(&i.worker, i.clock.now()).await {
            Ok(n) => tracing::info!(released = n, "orchestrator stopped"),
            Err(e) => {
                tracing::error!(error = %e, "releasing leases failed; they expire on their own")
            }
        }
    }
}
