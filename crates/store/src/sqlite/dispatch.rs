//! The orchestrator's SQLite writes: claims under `max_in_flight` and the credit cap (in one
//! transaction of the one writer), lease heartbeats, expiry and release.

#[allow(unused_imports)]
use super::*;

impl SqliteStore {
    pub(super) async fn do_claim_many(
        &self,
        wants: &[(&str, usize)],
        held: &[(&str, &str)],
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<ClaimResult>> {
        // One transaction of the one writer for all of them: one commit per round.
        let mut tx = self.tx().await?;
        let mut out = Vec::with_capacity(wants.len());
        for (backfill_id, limit) in wants {
            let held: Vec<&str> = held
                .iter()
                .filter(|(b, _)| b == backfill_id)
                .map(|(_, c)| *c)
                .collect();
            let want = Want {
                backfill_id,
                limit: *limit,
                held: &held,
            };
            out.push(claim_one(&mut tx, want, worker, now, lease_until).await?);
        }
        tx.commit().await?;
        Ok(out)
    }
    pub(super) async fn do_reap_expired_leases(&self, now: Timestamp) -> Result<ReapReport> {
        let now_ms = to_ms(now);
        // A look on a reader first: most sweeps find nothing and take no write lock.
        let any: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM backfill_items WHERE status = 'in_flight' AND lease_expires_at < ? LIMIT 1",
        )
        .bind(now_ms)
        .fetch_optional(&self.read)
        .await?;
        if any.is_none() {
            return Ok(ReapReport::default());
        }
        let mut tx = self.tx().await?;
        let expired: Vec<ExpiredItem> = sqlx::query_as(
            "SELECT backfill_id, ord, lease_owner, execution_id FROM backfill_items \
             WHERE status = 'in_flight' AND lease_expires_at < ? ORDER BY backfill_id, ord",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        let (timeouts, leases) = split_expired(expired);
        let (applied, touched) = settle_batch(&mut tx, &timeouts, i64::MAX, now_ms).await?;
        let report = ReapReport {
            timed_out: applied.iter().filter(|a| **a).count() as u64,
            requeued: requeue_items(&mut tx, &leases, now_ms).await?,
        };
        complete_in_tx(&mut tx, &touched, now_ms).await?;
        tx.commit().await?;
        Ok(report)
    }

    pub(super) async fn do_release_leases(&self, worker: &str, now: Timestamp) -> Result<u64> {
        let now_ms = to_ms(now);
        let mut tx = self.tx().await?;
        let held: Vec<HeldItem> = sqlx::query_as(
            "SELECT backfill_id, ord, execution_id FROM backfill_items WHERE status = 'in_flight' AND lease_owner = ? \
             ORDER BY backfill_id, ord",
        )
        .bind(worker)
        .fetch_all(&mut *tx)
        .await?;
        let n = requeue_items(&mut tx, &held, now_ms).await?;
        tx.commit().await?;
        Ok(n)
    }

    pub(super) async fn do_heartbeat(&self, worker: &str, lease_until: Timestamp) -> Result<u64> {
        Ok(sqlx::query("UPDATE backfill_items SET lease_expires_at = $1 WHERE status = 'in_flight' AND lease_owner = $2")
            .bind(to_ms(lease_until))
            .bind(worker)
            .execute(&self.write)
            .await?
            .rows_affected())
    }
}

/// What one backfill's claim asks for.
struct Want<'a> {
    backfill_id: &'a str,
    limit: usize,
    /// Companies in a blackout.
    held: &'a [&'a str],
}

/// One backfill's part of [`SqliteStore::do_claim_many`], in its transaction.
async fn claim_one(
    tx: &mut Transaction<'_, Sqlite>,
    want: Want<'_>,
    worker: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<ClaimResult> {
    let (backfill_id, limit) = (want.backfill_id, want.limit);
    let now_ms = to_ms(now);
    let Some(b) = sqlx::query("SELECT b.tenant_id, b.state, b.target_workflow_id, b.max_in_flight, b.in_flight_count, b.reprocess, w.name AS wf_name, \
                                b.max_credits, b.succeeded_count, b.credits_per_entity, b.max_in_flight_per_company \
                                FROM backfills b LEFT JOIN workflows w ON w.id = b.target_workflow_id AND w.tenant_id = b.tenant_id WHERE b.id = ?")
        .bind(backfill_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(ClaimResult::default());
    };
    let state: String = b.try_get("state")?;
    let max: i64 = b.try_get("max_in_flight")?;
    let in_flight: i64 = b.try_get("in_flight_count")?;
    let per_entity: i64 = b.try_get("credits_per_entity")?;
    let budget = neo_domain::control::budget_room(
        b.try_get("max_credits")?,
        b.try_get::<i64, _>("succeeded_count")? * per_entity,
        in_flight,
        per_entity,
    );
    let n = (max - in_flight)
        .min(limit as i64)
        .min(budget.map_or(i64::MAX, |r| r as i64));
    if state != "RUNNING" || n <= 0 {
        return Ok(ClaimResult::default());
    }
    let tenant: String = b.try_get("tenant_id")?;
    let workflow: i64 = b.try_get("target_workflow_id")?;
    let reprocess: bool = b.try_get("reprocess")?;
    let wf_name: Option<String> = b.try_get("wf_name")?;
    let cap: Option<i64> = b.try_get("max_in_flight_per_company")?;
    // Under a per-company cap: what each company has in flight; the companies at their cap are
    // left out with those a blackout holds, and twice the room is read, so that one company
    // filling its cap within this claim does not use up the room of the others.
    let in_flight: BTreeMap<Option<String>, i64> = match cap {
        None => BTreeMap::new(),
        Some(_) => sqlx::query_as(
            "SELECT company, COUNT(*) FROM backfill_items WHERE backfill_id = ?1 AND status = 'in_flight' GROUP BY company",
        )
        .bind(backfill_id)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect(),
    };
    let mut excluded: Vec<&str> = want.held.to_vec();
    excluded.extend(
        in_flight
            .iter()
            .filter(|(_, k)| cap.is_some_and(|cap| **k >= cap))
            .map(|(c, _)| c.as_deref().unwrap_or("")),
    );
    let fetch = if cap.is_some() { n * 2 } else { n };
    #[allow(clippy::type_complexity)]
    let candidates: Vec<(i64, String, Option<String>, Option<String>, i64, bool, Option<String>)> = sqlx::query_as(
        "SELECT i.ord, i.entity_id, i.entity_number, i.execution_id, i.attempts, \
                (NOT ?2 AND EXISTS (SELECT 1 FROM executions e WHERE e.tenant_id = ?3 AND e.agent_id = ?4 \
                                    AND e.entity_id = i.entity_id AND e.status = 'succeeded')) AS done_before, i.company \
         FROM backfill_items i \
         WHERE i.backfill_id = ?1 AND i.status = 'pending' AND NOT i.held AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= ?5) \
           AND COALESCE(i.company, '') NOT IN (SELECT value FROM json_each(?7)) \
         ORDER BY i.company_rank, i.ord LIMIT ?6",
    )
    .bind(backfill_id)
    .bind(reprocess)
    .bind(&tenant)
    .bind(workflow)
    .bind(now_ms)
    .bind(fetch)
    .bind(json_rows(&excluded)?)
    .fetch_all(&mut **tx)
    .await?;
    let rows = match cap {
        None => candidates,
        Some(_) => {
            let companies: Vec<Option<&str>> = candidates.iter().map(|c| c.6.as_deref()).collect();
            let picked = neo_domain::fairness::pick(&companies, &in_flight, cap, n as usize);
            let mut candidates: Vec<_> = candidates.into_iter().map(Some).collect();
            picked
                .into_iter()
                .filter_map(|i| candidates[i].take())
                .collect()
        }
    };
    if rows.is_empty() {
        return Ok(ClaimResult::default());
    }
    let mut out = ClaimResult::default();
    let mut skipped_ords = Vec::new();
    let mut rerun_execs = Vec::new();
    let mut new_execs = Vec::new();
    for (ord, entity_id, entity_number, execution_id, attempts, done_before, _) in rows {
        if done_before {
            skipped_ords.push(ord);
            continue;
        }
        let exec_id = match execution_id {
            Some(id) => {
                rerun_execs.push(id.clone());
                id
            }
            None => {
                let id = new_execution_id();
                new_execs.push((id.clone(), entity_id.clone(), entity_number.clone()));
                id
            }
        };
        out.claimed.push(Claimed {
            backfill_id: backfill_id.to_owned(),
            tenant_id: tenant.clone(),
            workflow_id: workflow,
            ord,
            entity_id,
            entity_number,
            execution_id: exec_id,
            attempt: attempts + 1,
        });
    }
    out.skipped = skipped_ords.len() as u64;
    if !skipped_ords.is_empty() {
        sqlx::query(
            "UPDATE backfill_items SET status = 'skipped', error = NULL, updated_at = ?1 \
                     WHERE backfill_id = ?2 AND ord IN (SELECT value FROM json_each(?3))",
        )
        .bind(now_ms)
        .bind(backfill_id)
        .bind(json_rows(&skipped_ords)?)
        .execute(&mut **tx)
        .await?;
    }
    if !rerun_execs.is_empty() {
        sqlx::query("UPDATE executions SET status = 'running', attempts = attempts + 1, error = NULL, updated_at = ?1, \
                     started_at = COALESCE(started_at, ?1) WHERE id IN (SELECT value FROM json_each(?2))")
            .bind(now_ms)
            .bind(json_rows(&rerun_execs)?)
            .execute(&mut **tx)
            .await?;
    }
    if !new_execs.is_empty() {
        sqlx::query("INSERT INTO executions (id, tenant_id, agent_id, agent_name, backfill_id, entity_id, entity_number, status, attempts, created_at, updated_at, started_at) \
                     SELECT v.value ->> 0, ?1, ?2, ?3, ?4, v.value ->> 1, v.value ->> 2, 'running', 1, ?5, ?5, ?5 \
                     FROM json_each(?6) AS v ORDER BY v.key")
            .bind(&tenant)
            .bind(workflow)
            .bind(&wf_name)
            .bind(backfill_id)
            .bind(now_ms)
            .bind(json_rows(&new_execs)?)
            .execute(&mut **tx)
            .await?;
    }
    if !out.claimed.is_empty() {
        // The backfill id in every row makes the planner loop over the batch and look each
        // item up by key (with it as a constant it would scan the backfill's items).
        let rows: Vec<(i64, &str, &str)> = out
            .claimed
            .iter()
            .map(|c| (c.ord, c.execution_id.as_str(), backfill_id))
            .collect();
        sqlx::query("UPDATE backfill_items AS i SET status = 'in_flight', attempts = i.attempts + 1, execution_id = v.value ->> 1, \
                     lease_owner = ?1, lease_expires_at = ?2, next_attempt_at = NULL, updated_at = ?3 \
                     FROM json_each(?4) AS v WHERE i.backfill_id = v.value ->> 2 AND i.ord = v.value ->> 0")
            .bind(worker)
            .bind(to_ms(lease_until))
            .bind(now_ms)
            .bind(json_rows(&rows)?)
            .execute(&mut **tx)
            .await?;
    }
    let claimed = out.claimed.len() as i64;
    let skipped = out.skipped as i64;
    sqlx::query("UPDATE backfills SET pending_count = pending_count - ?, in_flight_count = in_flight_count + ?, skipped_count = skipped_count + ?, updated_at = ? WHERE id = ?")
        .bind(claimed + skipped)
        .bind(claimed)
        .bind(skipped)
        .bind(now_ms)
        .bind(backfill_id)
        .execute(&mut **tx)
        .await?;
    Ok(out)
}
