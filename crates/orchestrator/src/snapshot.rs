//! Snapshot tasks: PSA pages are read off the tick (a throttled PSA never delays dispatch) and
//! appended with their checkpoint in one transaction, so a crash resumes after the last page.

use std::sync::atomic::Ordering;

use neo_domain::backfill::BackfillRunState;
use neo_store::Backfill;

use crate::*;

impl Orchestrator {
    /// Starts the snapshot task of `b` unless one runs in this process already.
    pub(crate) fn spawn_snapshot(&self, b: &Backfill) {
        let i = &self.inner;
        let mut tasks = i.enumerating.lock().expect("poisoned");
        if i.stopping.load(Ordering::SeqCst) || tasks.contains_key(&b.id) {
            return;
        }
        let me = self.clone();
        let bf = b.clone();
        let task = tokio::spawn(async move {
            let id = bf.id.clone();
            if let Err(e) = me.snapshot(bf).await {
                tracing::error!(backfill = %id, error = %e, "snapshot task failed");
            }
            me.inner.enumerating.lock().expect("poisoned").remove(&id);
            me.inner.idle.notify_waiters();
        });
        tasks.insert(b.id.clone(), task.abort_handle());
    }

    /// Reads snapshot pages back to back while the backfill is RUNNING, appending each page
    /// with its checkpoint in one transaction (a crash resumes after the last appended page;
    /// a page another process appended first is not appended twice). Stops on pause, cancel,
    /// shutdown, completion, or a deferred page (the next tick starts it again).
    async fn snapshot(&self, mut b: Backfill) -> anyhow::Result<()> {
        let i = &self.inner;
        loop {
            if i.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            match i.source.next_page(&b).await {
                Ok(p) => {
                    let appended = i
                        .store
                        .append_items(
                            &b.id,
                            &p.items,
                            b.snapshot_checkpoint.as_ref(),
                            p.checkpoint.as_ref(),
                            p.complete,
                            i.clock.now(),
                        )
                        .await?;
                    if appended && !p.items.is_empty() {
                        i.refill.lock().expect("poisoned").insert(b.id.clone());
                        i.kick.notify_one();
                    }
                }
                Err(SourceError::Retry(e)) => {
                    tracing::warn!(backfill = %b.id, error = %e, "snapshot page deferred");
                    return Ok(());
                }
                Err(SourceError::Fatal(e)) => {
                    tracing::warn!(backfill = %b.id, error = %e, "snapshot failed");
                    i.store.fail_backfill(&b.id, &e, i.clock.now()).await?;
                    return Ok(());
                }
            }
            match i.store.backfill(&b.tenant_id, &b.id).await? {
                Some(next)
                    if next.state == BackfillRunState::Running && !next.snapshot_complete =>
                {
                    b = next
                }
                _ => return Ok(()),
            }
        }
    }
}
