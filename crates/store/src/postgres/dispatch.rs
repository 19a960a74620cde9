//! The orchestrator's writes: claims under `max_in_flight`, callbacks that finish an
//! execution, lease expiry and release, snapshot pages.

#[allow(unused_imports)]
use super::*;

impl PgStore {
    pub(super) async fn do_finish_execution(
        &self,
        tenant_id: &str,
        id: &str,
        status: ExecutionStatus,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<bool>> {
        let error = error.map(sanitize);
        let error = error.as_deref();
        let mut tx = self.tx().await?;
        // The backfill row first (lock order: backfill, execution, item), then the execution.
        let Some(backfill_id) = sqlx::query_scalar::<_, Option<String>>(
            "SELECT backfill_id FROM executions WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        if let Some(bid) = &backfill_id {
            sqlx::query("SELECT 1 FROM backfills WHERE id = $1 FOR UPDATE")
                .bind(bid)
                .execute(&mut *tx)
                .await?;
        }
        let Some(r) =
            sqlx::query("SELECT * FROM executions WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let e = map_execution(&r)?;
        if e.status.is_final() {
            return Ok(Some(false));
        }
        let settlement = settlement_of(status, error);
        let item: Option<(String, i64)> = match &e.backfill_id {
            Some(bid) => sqlx::query_as("SELECT backfill_id, ord FROM backfill_items WHERE backfill_id = $1 AND execution_id = $2 AND status IN ('pending', 'in_flight')")
                .bind(bid)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?,
            None => None,
        };
        let now_ms = to_ms(now);
        match item {
            Some((bid, ord)) => {
                // Through the same path as the orchestrator: counters, breaker, completion.
                let o = Outcome {
                    backfill_id: bid,
                    ord,
                    execution_id: id.to_owned(),
                    settlement,
                };
                let (_, touched) = settle_batch(&mut tx, &[o], i64::MAX, now_ms).await?;
                complete_in_tx(&mut tx, &touched, now_ms).await?;
            }
            None => {
                let (changes, credit) = lone_execution_writes(id, &settlement);
                write_executions(&mut tx, &changes, &credit, now_ms).await?;
            }
        }
        tx.commit().await?;
        Ok(Some(true))
    }

    pub(super) async fn do_claim_items(
        &self,
        backfill_id: &str,
        worker: &str,
        limit: usize,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<ClaimResult> {
        // One statement in its own transaction: the backfill row lock (which serialises the
        // claimers of one backfill across processes, so `room` stays true) is held for one
        // round trip, not for a transaction of several. A claimer that waited for the lock
        // re-reads the row's latest counters (READ COMMITTED re-check of `FOR UPDATE`), and
        // its `SKIP LOCKED` scan re-checks `status = 'pending'` on items the other claimer
        // took, so two claimers never exceed `max_in_flight` or take the same item.
        let fresh_ids: Vec<String> = (0..limit).map(|_| new_execution_id()).collect();
        #[allow(clippy::type_complexity)]
        let rows: Vec<(String, i64, i64, String, Option<String>, String, i64, bool)> =
            sqlx::query_as(CLAIM_SQL)
                .bind(backfill_id)
                .bind(limit as i64)
                .bind(to_ms(now))
                .bind(&fresh_ids)
                .bind(worker)
                .bind(to_ms(lease_until))
                .fetch_all(&self.pool)
                .await?;
        let mut out = ClaimResult::default();
        for (
            tenant_id,
            workflow_id,
            ord,
            entity_id,
            entity_number,
            execution_id,
            attempt,
            done_before,
        ) in rows
        {
            if done_before {
                out.skipped += 1;
                continue;
            }
            out.claimed.push(Claimed {
                backfill_id: backfill_id.to_owned(),
                tenant_id,
                workflow_id,
                ord,
                entity_id,
                entity_number,
                execution_id,
                attempt,
            });
        }
        Ok(out)
    }

    pub(super) async fn do_reap_expired_leases(&self, now: Timestamp) -> Result<ReapReport> {
        let now_ms = to_ms(now);
        let backfills: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT backfill_id FROM backfill_items WHERE status = 'in_flight' AND lease_expires_at < $1",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        if backfills.is_empty() {
            return Ok(ReapReport::default());
        }
        let mut tx = self.tx().await?;
        let states = lock_backfills(&mut tx, &backfills).await?;
        // Under the backfill locks: what is still expired.
        let expired: Vec<(String, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT backfill_id, ord, lease_owner, execution_id FROM backfill_items \
             WHERE backfill_id = ANY($1) AND status = 'in_flight' AND lease_expires_at < $2 \
             ORDER BY backfill_id, ord FOR UPDATE",
        )
        .bind(&backfills)
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        let mut report = ReapReport::default();
        let mut timeouts = Vec::new();
        let mut leases = Vec::new();
        for (bid, ord, owner, exec) in expired {
            if owner.as_deref() == Some(CALLBACK_OWNER) {
                timeouts.push(Outcome {
                    backfill_id: bid,
                    ord,
                    execution_id: exec.unwrap_or_default(),
                    settlement: Settlement::Failed(
                        "the executor did not report completion before the deadline".into(),
                    ),
                });
            } else {
                leases.push((bid, ord, exec));
            }
        }
        let (applied, touched) = settle_batch(&mut tx, &timeouts, i64::MAX, now_ms).await?;
        report.timed_out = applied.iter().filter(|a| **a).count() as u64;
        report.requeued = requeue_locked(&mut tx, &leases, &states, now_ms).await?;
        complete_in_tx(&mut tx, &touched, now_ms).await?;
        tx.commit().await?;
        Ok(report)
    }

    pub(super) async fn do_release_leases(&self, worker: &str, now: Timestamp) -> Result<u64> {
        let now_ms = to_ms(now);
        let backfills: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT backfill_id FROM backfill_items WHERE status = 'in_flight' AND lease_owner = $1",
        )
        .bind(worker)
        .fetch_all(&self.pool)
        .await?;
        if backfills.is_empty() {
            return Ok(0);
        }
        let mut tx = self.tx().await?;
        let states = lock_backfills(&mut tx, &backfills).await?;
        let held: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT backfill_id, ord, execution_id FROM backfill_items \
             WHERE backfill_id = ANY($1) AND status = 'in_flight' AND lease_owner = $2 \
             ORDER BY backfill_id, ord FOR UPDATE",
        )
        .bind(&backfills)
        .bind(worker)
        .fetch_all(&mut *tx)
        .await?;
        let n = requeue_locked(&mut tx, &held, &states, now_ms).await?;
        tx.commit().await?;
        Ok(n)
    }

    pub(super) async fn do_append_items(
        &self,
        backfill_id: &str,
        items: &[(String, Option<String>)],
        read_from: Option<&Value>,
        checkpoint: Option<&Value>,
        complete: bool,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.tx().await?;
        let now_ms = to_ms(now);
        let (start, done, current): (i64, bool, Option<String>) = sqlx::query_as(
            "SELECT total_items, snapshot_complete, snapshot_checkpoint FROM backfills WHERE id = $1 FOR UPDATE",
        )
        .bind(backfill_id)
        .fetch_one(&mut *tx)
        .await?;
        let current: Option<Value> = current.and_then(|c| serde_json::from_str(&c).ok());
        if done || current.as_ref() != read_from {
            return Ok(false);
        }
        let items = storable_entities(items);
        insert_items_from(&mut tx, backfill_id, &items, start, now_ms).await?;
        let n = items.len() as i64;
        sqlx::query("UPDATE backfills SET total_items = total_items + $1, pending_count = pending_count + $1, snapshot_complete = $2, \
                     snapshot_checkpoint = COALESCE($3, snapshot_checkpoint), \
                     total_estimated = CASE WHEN $2 THEN total_items + $1 ELSE total_estimated END, updated_at = $4 WHERE id = $5")
            .bind(n)
            .bind(complete)
            .bind(checkpoint.map(|c| c.to_string()))
            .bind(now_ms)
            .bind(backfill_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
