//! SQLite settling and the writes that share its plan: outcomes applied in set-based
//! statements over `json_each`, requeues of expired or released leases, completion.

#[allow(unused_imports)]
use super::*;

/// A JSON array for `json_each(?)`: SQLite has no array parameters, and one fixed statement per
/// kind of batch (whatever its size) keeps the prepared-statement cache warm.
pub(super) fn json_rows<T: serde::Serialize>(rows: &[T]) -> Result<String> {
    to_json_text(&rows)
}

impl SqliteStore {
    /// [`Store::settle`]: one write transaction (SQLite has one writer at a time, so there
    /// is no lock order to choose).
    pub(super) async fn do_settle(
        &self,
        outcomes: &[Outcome],
        breaker_threshold: i64,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.tx().await?;
        let (_, touched) = settle_batch(&mut tx, outcomes, breaker_threshold, now).await?;
        complete_in_tx(&mut tx, &touched, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Applies outcomes to items, executions, counters, credit ledger and circuit breaker exactly
/// as applying them one by one in order would (see [`plan_settlement`]), in a fixed number of
/// set-based statements whatever the size of the batch. Returns whether each outcome applied
/// and the ids of the backfills it applied to; completion is the caller's.
pub(super) async fn settle_batch(
    tx: &mut Transaction<'_, Sqlite>,
    outcomes: &[Outcome],
    breaker_threshold: i64,
    now: i64,
) -> Result<(Vec<bool>, Vec<String>)> {
    if outcomes.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let keys: Vec<(&str, i64)> = outcomes
        .iter()
        .map(|o| (o.backfill_id.as_str(), o.ord))
        .collect();
    let rows: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT i.backfill_id, i.ord, i.status, i.execution_id FROM json_each(?) AS v \
         CROSS JOIN backfill_items i ON i.backfill_id = v.value ->> 0 AND i.ord = v.value ->> 1",
    )
    .bind(json_rows(&keys)?)
    .fetch_all(&mut **tx)
    .await?;
    let items: HashMap<(String, i64), (String, Option<String>)> = rows
        .into_iter()
        .map(|(b, o, s, e)| ((b, o), (s, e)))
        .collect();
    let mut bids: Vec<&str> = keys.iter().map(|k| k.0).collect();
    bids.sort_unstable();
    bids.dedup();
    // The throughput beside the state: one statement (SQLite's one writer means the values
    // read are still the rows' when the counters are written below).
    #[allow(clippy::type_complexity)]
    let rows: Vec<(String, String, i64, f64, f64, Option<i64>)> = sqlx::query_as(
        "SELECT id, state, consecutive_failures, rate_items, rate_seconds, rate_at FROM backfills \
         WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(json_rows(&bids)?)
    .fetch_all(&mut **tx)
    .await?;
    let mut rates: HashMap<String, Throughput> = HashMap::with_capacity(rows.len());
    let mut backfills = Vec::with_capacity(rows.len());
    for (id, state, streak, items, seconds, at) in rows {
        let at = at.map(from_ms);
        rates.insert(id.clone(), Throughput { items, seconds, at });
        backfills.push((id, state, streak));
    }
    let plan = plan_settlement(outcomes, items, backfills, breaker_threshold);

    if !plan.items.is_empty() {
        let rows: Vec<_> = plan
            .items
            .iter()
            .map(|((bid, ord), c)| {
                (
                    bid,
                    ord,
                    c.status,
                    c.error,
                    c.next_attempt_at,
                    c.lease_owner,
                    c.lease_expires_at,
                )
            })
            .collect();
        sqlx::query(
            "UPDATE backfill_items AS i SET status = v.value ->> 2, error = v.value ->> 3, next_attempt_at = v.value ->> 4, \
             lease_owner = v.value ->> 5, lease_expires_at = v.value ->> 6, updated_at = ?1 \
             FROM json_each(?2) AS v WHERE i.backfill_id = v.value ->> 0 AND i.ord = v.value ->> 1",
        )
        .bind(now)
        .bind(json_rows(&rows)?)
        .execute(&mut **tx)
        .await?;
    }
    write_executions(tx, &plan.execs, &plan.retried, &plan.credit_ids, now).await?;
    let mut windows = Vec::new();
    for (id, d) in plan.touched() {
        let rate = rates.get(id).copied().unwrap_or_default();
        let rate = match d.settled() {
            0 => rate,
            n => rate.observe(n, from_ms(now)),
        };
        let row = sqlx::query(
            "UPDATE backfills SET pending_count = pending_count + ?1, in_flight_count = in_flight_count + ?2, \
             succeeded_count = succeeded_count + ?3, failed_count = failed_count + ?4, cancelled_count = cancelled_count + ?5, \
             skipped_count = skipped_count + ?6, \
             consecutive_failures = ?7, state = CASE WHEN ?9 IS NULL THEN state ELSE 'PAUSED' END, \
             error = COALESCE(?9, error), pause_reason = CASE WHEN ?9 IS NULL THEN pause_reason ELSE ?10 END, \
             rate_items = ?11, rate_seconds = ?12, rate_at = ?13, updated_at = ?8, \
             recent_outcomes = substr(recent_outcomes || ?15, -?16) WHERE id = ?14 \
             RETURNING recent_outcomes, failure_rate_alerted",
        )
        .bind(d.counter(COUNTERS[0]))
        .bind(d.counter(COUNTERS[1]))
        .bind(d.counter(COUNTERS[2]))
        .bind(d.counter(COUNTERS[3]))
        .bind(d.counter(COUNTERS[4]))
        .bind(d.counter(COUNTERS[5]))
        .bind(d.streak)
        .bind(now)
        .bind(d.tripped.as_deref())
        .bind(PauseReason::CircuitBreaker.as_str())
        .bind(rate.items)
        .bind(rate.seconds)
        .bind(rate.at.map(to_ms))
        .bind(id)
        .bind(&d.outcomes)
        .bind(neo_domain::notify::FAILURE_WINDOW as i64)
        .fetch_one(&mut **tx)
        .await?;
        let (window, alerted): (String, bool) = (row.get(0), row.get(1));
        if !d.outcomes.is_empty() {
            windows.push((id.to_owned(), window, alerted));
        }
        if d.tripped.is_some() {
            emit_event(tx, id, EventType::BackfillPaused, None, now).await?;
        }
    }
    alert_failure_rates(tx, &windows, now).await?;
    let done = plan.applied_backfills();
    Ok((plan.applied, done))
}

/// Final statuses of execution rows, and the credit ledger entries of `credit_ids` (in order).
pub(super) async fn write_executions(
    tx: &mut Transaction<'_, Sqlite>,
    execs: &[(String, ExecChange)],
    retried: &[AttemptWrite],
    credit_ids: &[String],
    now: i64,
) -> Result<()> {
    if !retried.is_empty() {
        // Before the rows change: the attempt's number is the execution's `attempts`.
        sqlx::query(
            "INSERT INTO execution_attempts (execution_id, attempt, started_at, finished_at, http_status, error) \
             SELECT e.id, e.attempts, v.value ->> 'started_at', ?1, v.value ->> 'http_status', v.value ->> 'error' \
             FROM json_each(?2) AS v JOIN executions e ON e.id = v.value ->> 'execution_id' WHERE true \
             ON CONFLICT DO NOTHING",
        )
        .bind(now)
        .bind(json_rows(retried)?)
        .execute(&mut **tx)
        .await?;
    }
    if !execs.is_empty() {
        let rows: Vec<_> = execs
            .iter()
            .map(|(id, c)| {
                (
                    id,
                    c.status,
                    c.error.as_deref(),
                    c.finished,
                    c.http_status,
                    c.attempt_started_at,
                )
            })
            .collect();
        sqlx::query(
            "UPDATE executions AS e SET status = v.value ->> 1, error = v.value ->> 2, updated_at = ?1, \
             finished_at = CASE WHEN v.value ->> 3 THEN ?1 ELSE e.finished_at END, \
             http_status = COALESCE(v.value ->> 4, e.http_status), \
             attempt_started_at = COALESCE(v.value ->> 5, e.attempt_started_at) \
             FROM json_each(?2) AS v WHERE e.id = v.value ->> 0",
        )
        .bind(now)
        .bind(json_rows(&rows)?)
        .execute(&mut **tx)
        .await?;
    }
    if !credit_ids.is_empty() {
        // One ledger row per workflow and batch (see `SettlePlan::credit_ids`).
        sqlx::query(
            "INSERT INTO credit_ledger (tenant_id, agent_id, credits, executions, created_at) \
             SELECT e.tenant_id, e.agent_id, SUM(COALESCE(w.credit_tier, 1)), COUNT(*), ?1 \
             FROM json_each(?2) AS v CROSS JOIN executions e ON e.id = v.value \
             LEFT JOIN workflows w ON w.id = e.agent_id GROUP BY e.tenant_id, e.agent_id",
        )
        .bind(now)
        .bind(json_rows(credit_ids)?)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Puts in-flight items back to pending, keeping their execution ids (a re-dispatch carries
/// the same idempotency key). Items of a CANCELLED or FAILED backfill, which nothing will
/// dispatch again, end cancelled instead. Returns how many items moved.
pub(super) async fn requeue_items(
    tx: &mut Transaction<'_, Sqlite>,
    items: &[HeldItem],
    now: i64,
) -> Result<u64> {
    if items.is_empty() {
        return Ok(0);
    }
    let bids: Vec<String> = items.iter().map(|i| i.0.clone()).collect();
    let states = lock_backfills(tx, &bids).await?;
    let (cancel, back) = split_requeue(items, &states);
    let mut n = 0;
    if !cancel.is_empty() {
        let (applied, _) = settle_batch(tx, &cancel, i64::MAX, now).await?;
        n += applied.iter().filter(|a| **a).count() as u64;
    }
    if !back.is_empty() {
        let moved: Vec<(String, Option<String>)> = sqlx::query_as(
            "UPDATE backfill_items AS i SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1 \
             FROM json_each(?2) AS v WHERE i.backfill_id = v.value ->> 0 AND i.ord = v.value ->> 1 AND i.status = 'in_flight' \
             RETURNING backfill_id, execution_id",
        )
        .bind(now)
        .bind(json_rows(&back)?)
        .fetch_all(&mut **tx)
        .await?;
        n += moved.len() as u64;
        let execs: Vec<&str> = moved.iter().filter_map(|(_, e)| e.as_deref()).collect();
        if !execs.is_empty() {
            sqlx::query("UPDATE executions SET status = 'queued', updated_at = ? WHERE id IN (SELECT value FROM json_each(?))")
                .bind(now)
                .bind(json_rows(&execs)?)
                .execute(&mut **tx)
                .await?;
        }
        let mut per: BTreeMap<&str, i64> = BTreeMap::new();
        for (bid, _) in &moved {
            *per.entry(bid.as_str()).or_default() += 1;
        }
        for (bid, k) in per {
            sqlx::query("UPDATE backfills SET in_flight_count = in_flight_count - ?1, pending_count = pending_count + ?1, updated_at = ?2 WHERE id = ?3")
                .bind(k)
                .bind(now)
                .bind(bid)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(n)
}

/// COMPLETED, of these backfills, those RUNNING, snapshotted and with every item settled;
/// how many.
pub(super) async fn complete_in_tx(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &[String],
    now: i64,
) -> Result<u64> {
    let mut n = 0;
    for id in ids {
        let done = sqlx::query("UPDATE backfills SET state = 'COMPLETED', completed_at = $1, updated_at = $1 \
                          WHERE id = $2 AND state = 'RUNNING' AND snapshot_complete AND pending_count = 0 AND in_flight_count = 0")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if done > 0 {
            emit_event(tx, id, EventType::BackfillCompleted, None, now).await?;
        }
        n += done;
    }
    Ok(n)
}
