//! PostgreSQL settling and the writes that share its plan: outcomes applied with arrays
//! (`UNNEST`) under the backfill and item locks (in a fixed order), requeues of expired or
//! released leases, completion.
//!
//! A statement that joins a table keyed by one column to `UNNEST`ed keys also names them as
//! `= ANY(…)`, so its plan reaches the rows through the primary key whatever the statistics
//! say. Without it, the plan prepared while a fresh database's `executions` was empty (a hash
//! join over a sequential scan, right for 0 rows) stayed cached on the connection as the table
//! grew: at 100,000 executions each settle spent 30 ms scanning them, holding the backfill
//! lock every claim waits for. Item keys are two columns and stay a join: `backfill_id =
//! ANY(…)` beside `ord = ANY(…)` is costed as every id times every ord and planned as a scan.

#[allow(unused_imports)]
use super::*;

impl PgStore {
    /// [`Store::settle`]: the backfill rows are locked last ([`BackfillLock::Last`]), so
    /// the batch's item, execution and ledger writes run while claims of the same backfill
    /// (which hold its row for their one statement) go on; if a backfill's state or failure
    /// streak changed meanwhile, the batch is settled again with the backfills locked first.
    pub(super) async fn do_settle(
        &self,
        outcomes: &[Outcome],
        breaker_threshold: i64,
        now: i64,
    ) -> Result<()> {
        for lock in [BackfillLock::Last, BackfillLock::First] {
            let mut tx = self.tx().await?;
            let Some((_, touched)) =
                settle_locked(&mut tx, outcomes, breaker_threshold, now, lock).await?
            else {
                tx.rollback().await?;
                continue;
            };
            complete_in_tx(&mut tx, &touched, now).await?;
            tx.commit().await?;
            return Ok(());
        }
        unreachable!("a settlement with the backfills locked first always applies")
    }
}

/// COMPLETED when RUNNING, snapshotted and every item settled.
pub(super) async fn complete_in_tx(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[String],
    now: i64,
) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done: Vec<String> = sqlx::query_scalar("UPDATE backfills SET state = 'COMPLETED', completed_at = $1, updated_at = $1 \
                    WHERE id = ANY($2) AND state = 'RUNNING' AND snapshot_complete AND pending_count = 0 AND in_flight_count = 0 \
                    RETURNING id")
        .bind(now)
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
    for id in &done {
        emit_event(tx, id, EventType::BackfillCompleted, None, now).await?;
    }
    Ok(done.len() as u64)
}

/// Final statuses of execution rows (ids in first-seen order), and the credit ledger entries
/// of the successes among `credit_ids`.
pub(super) async fn write_executions(
    tx: &mut Transaction<'_, Postgres>,
    changes: &[(String, ExecChange)],
    retried: &[AttemptWrite],
    credit_ids: &[String],
    now: i64,
) -> Result<()> {
    if !retried.is_empty() {
        // Before the rows change: the attempt's number is the execution's `attempts`.
        let ids: Vec<&str> = retried.iter().map(|a| a.execution_id.as_str()).collect();
        let started: Vec<Option<i64>> = retried.iter().map(|a| a.started_at).collect();
        let http: Vec<Option<i64>> = retried.iter().map(|a| a.http_status).collect();
        let errors: Vec<&str> = retried.iter().map(|a| a.error.as_str()).collect();
        sqlx::query(
            "INSERT INTO execution_attempts (execution_id, attempt, started_at, finished_at, http_status, error) \
             SELECT e.id, e.attempts, u.started_at, $1, u.http_status, u.error \
             FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS u(id, started_at, http_status, error) \
             JOIN executions e ON e.id = u.id WHERE e.id = ANY($2) ON CONFLICT DO NOTHING",
        )
        .bind(now)
        .bind(&ids)
        .bind(&started)
        .bind(&http)
        .bind(&errors)
        .execute(&mut **tx)
        .await?;
    }
    if !changes.is_empty() {
        let ids: Vec<&str> = changes.iter().map(|(id, _)| id.as_str()).collect();
        let statuses: Vec<&str> = changes.iter().map(|(_, c)| c.status).collect();
        let errors: Vec<Option<&str>> = changes.iter().map(|(_, c)| c.error.as_deref()).collect();
        let finished: Vec<bool> = changes.iter().map(|(_, c)| c.finished).collect();
        let http: Vec<Option<i64>> = changes.iter().map(|(_, c)| c.http_status).collect();
        let started: Vec<Option<i64>> = changes.iter().map(|(_, c)| c.attempt_started_at).collect();
        sqlx::query(
            "UPDATE executions e SET status = u.status, error = u.error, updated_at = $1, \
             finished_at = CASE WHEN u.finished THEN $1 ELSE e.finished_at END, \
             http_status = COALESCE(u.http_status, e.http_status), \
             attempt_started_at = COALESCE(u.attempt_started_at, e.attempt_started_at) \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bool[], $6::bigint[], $7::bigint[]) \
                  AS u(id, status, error, finished, http_status, attempt_started_at) \
             WHERE e.id = ANY($2) AND e.id = u.id",
        )
        .bind(now)
        .bind(&ids)
        .bind(&statuses)
        .bind(&errors)
        .bind(&finished)
        .bind(&http)
        .bind(&started)
        .execute(&mut **tx)
        .await?;
    }
    if !credit_ids.is_empty() {
        // One ledger row per workflow and batch (see `SettlePlan::credit_ids`).
        sqlx::query(
            "INSERT INTO credit_ledger (tenant_id, agent_id, credits, executions, created_at) \
             SELECT e.tenant_id, e.agent_id, SUM(COALESCE(w.credit_tier, 1)), COUNT(*), $1 \
             FROM executions e LEFT JOIN workflows w ON w.id = e.agent_id \
             WHERE e.id = ANY($2::text[]) GROUP BY e.tenant_id, e.agent_id",
        )
        .bind(now)
        .bind(credit_ids)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Applies outcomes to items, executions, counters, credit ledger and circuit breaker, exactly
/// as applying them one by one in order would (a later outcome for the same item sees the
/// earlier one's result), in a fixed number of statements. Locks the items (key order), then
/// the backfills (id order): see [`BackfillLock`]. Returns whether each outcome applied, and
/// the ids of the backfills it touched; completion is the caller's.
pub(super) async fn settle_batch(
    tx: &mut Transaction<'_, Postgres>,
    outcomes: &[Outcome],
    breaker_threshold: i64,
    now: i64,
) -> Result<(Vec<bool>, Vec<String>)> {
    Ok(
        settle_locked(tx, outcomes, breaker_threshold, now, BackfillLock::First)
            .await?
            .expect("a settlement under the backfill locks always applies"),
    )
}

/// When a settlement takes its backfills' row locks.
///
/// The lock order of every PostgreSQL transaction that waits for locks is items (key order),
/// executions, backfills (id order): settlements, completions (callbacks), expired and
/// released leases. The two writers that lock a backfill first never wait for an item a
/// settlement holds: a claim takes its items `SKIP LOCKED`, and cancel and its sweep touch
/// pending items, which a settlement locks only for an outcome that arrives after its item
/// went back to pending; should that meet a cancel, PostgreSQL ends the deadlock and the
/// settler (or the API caller, answered 503) tries again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum BackfillLock {
    /// Right after the items.
    First,
    /// Last: the plan is made from the backfills' state and failure streak read without a
    /// lock, and the final counter update applies only if both are unchanged (else `None`:
    /// the caller rolls back and settles again with [`BackfillLock::First`]).
    Last,
}

/// The seconds since a backfill's throughput was last measured (`$1` now, `$16` the longest
/// silence counted): the decay of [`neo_domain::eta::Throughput::observe`], which the settling
/// statement applies to the row it updates, so concurrent settlements never lose a batch.
macro_rules! rate_secs {
    () => {
        "(CASE WHEN b.rate_at IS NULL OR $1 - b.rate_at > $16 THEN 0.0 ELSE GREATEST($1 - b.rate_at, 0) / 1000.0 END)"
    };
}

/// [`settle_batch`] with the backfill lock taken where `lock` says.
pub(super) async fn settle_locked(
    tx: &mut Transaction<'_, Postgres>,
    outcomes: &[Outcome],
    breaker_threshold: i64,
    now: i64,
    lock: BackfillLock,
) -> Result<Option<(Vec<bool>, Vec<String>)>> {
    if outcomes.is_empty() {
        return Ok(Some((Vec::new(), Vec::new())));
    }
    let bids: Vec<String> = outcomes.iter().map(|o| o.backfill_id.clone()).collect();
    let mut sorted = bids.clone();
    sorted.sort();
    sorted.dedup();
    let ords: Vec<i64> = outcomes.iter().map(|o| o.ord).collect();
    let rows: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT backfill_id, ord, status, execution_id FROM backfill_items \
         WHERE (backfill_id, ord) IN (SELECT * FROM UNNEST($1::text[], $2::bigint[])) \
         ORDER BY backfill_id, ord FOR UPDATE",
    )
    .bind(&bids)
    .bind(&ords)
    .fetch_all(&mut **tx)
    .await?;
    let backfills: Vec<(String, String, i64)> = sqlx::query_as(if lock == BackfillLock::First {
        "SELECT id, state, consecutive_failures FROM backfills WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    } else {
        "SELECT id, state, consecutive_failures FROM backfills WHERE id = ANY($1) ORDER BY id"
    })
    .bind(&sorted)
    .fetch_all(&mut **tx)
    .await?;
    let read: HashMap<String, (String, i64)> = backfills
        .iter()
        .map(|(id, st, streak)| (id.clone(), (st.clone(), *streak)))
        .collect();
    let items: HashMap<(String, i64), (String, Option<String>)> = rows
        .into_iter()
        .map(|(b, o, s, e)| ((b, o), (s, e)))
        .collect();
    let plan = plan_settlement(outcomes, items, backfills, breaker_threshold);
    if !plan.items.is_empty() {
        let mut b = Vec::new();
        let mut ord = Vec::new();
        let mut status = Vec::new();
        let mut error = Vec::new();
        let mut next = Vec::new();
        let mut owner = Vec::new();
        let mut lease = Vec::new();
        for ((bid, o), c) in &plan.items {
            b.push(bid.as_str());
            ord.push(*o);
            status.push(c.status);
            error.push(c.error);
            next.push(c.next_attempt_at);
            owner.push(c.lease_owner);
            lease.push(c.lease_expires_at);
        }
        sqlx::query(
            "UPDATE backfill_items i SET status = u.status, error = u.error, next_attempt_at = u.next_attempt_at, \
             lease_owner = u.lease_owner, lease_expires_at = u.lease_expires_at, updated_at = $1 \
             FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[]) \
                  AS u(backfill_id, ord, status, error, next_attempt_at, lease_owner, lease_expires_at) \
             WHERE i.backfill_id = u.backfill_id AND i.ord = u.ord",
        )
        .bind(now)
        .bind(&b)
        .bind(&ord)
        .bind(&status)
        .bind(&error)
        .bind(&next)
        .bind(&owner)
        .bind(&lease)
        .execute(&mut **tx)
        .await?;
    }
    write_executions(tx, &plan.execs, &plan.retried, &plan.credit_ids, now).await?;

    let touched = plan.touched();
    if !touched.is_empty() {
        let ids: Vec<&str> = touched.iter().map(|(id, _)| *id).collect();
        let counter =
            |name: &str| -> Vec<i64> { touched.iter().map(|(_, d)| d.counter(name)).collect() };
        let streaks: Vec<i64> = touched.iter().map(|(_, d)| d.streak).collect();
        let trips: Vec<Option<&str>> = touched.iter().map(|(_, d)| d.tripped.as_deref()).collect();
        let late = lock == BackfillLock::Last;
        let (was_state, was_streak): (Vec<&str>, Vec<i64>) = touched
            .iter()
            .map(|(id, _)| read.get(*id).map_or(("", 0), |(st, n)| (st.as_str(), *n)))
            .unzip();
        let outcomes: Vec<&str> = touched.iter().map(|(_, d)| d.outcomes.as_str()).collect();
        let updated: Vec<(String, String, bool)> = sqlx::query_as(concat!(
            "UPDATE backfills b SET pending_count = b.pending_count + u.dp, in_flight_count = b.in_flight_count + u.di, \
             succeeded_count = b.succeeded_count + u.ds, failed_count = b.failed_count + u.df, \
             cancelled_count = b.cancelled_count + u.dc, skipped_count = b.skipped_count + u.dk, \
             consecutive_failures = u.streak, \
             state = CASE WHEN u.trip IS NULL THEN b.state ELSE 'PAUSED' END, \
             error = COALESCE(u.trip, b.error), pause_reason = CASE WHEN u.trip IS NULL THEN b.pause_reason ELSE $14 END, \
             rate_items = CASE WHEN u.dp + u.di < 0 THEN b.rate_items * exp(-", rate_secs!(), " / $15) - (u.dp + u.di) ELSE b.rate_items END, \
             rate_seconds = CASE WHEN u.dp + u.di < 0 THEN b.rate_seconds * exp(-", rate_secs!(), " / $15) + ", rate_secs!(), " ELSE b.rate_seconds END, \
             rate_at = CASE WHEN u.dp + u.di < 0 THEN GREATEST(COALESCE(b.rate_at, $1), $1) ELSE b.rate_at END, \
             recent_outcomes = right(b.recent_outcomes || u.outcomes, $18), \
             updated_at = $1 \
             FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], \
                         $12::text[], $13::bigint[], $17::text[]) \
                  AS u(id, dp, di, ds, df, dc, dk, streak, trip, was_state, was_streak, outcomes) \
             WHERE b.id = ANY($2) AND b.id = u.id \
               AND (NOT $11 OR (b.state = u.was_state AND b.consecutive_failures = u.was_streak)) \
             RETURNING b.id, b.recent_outcomes, b.failure_rate_alerted",
        ))
        .bind(now)
        .bind(&ids)
        .bind(counter(COUNTERS[0]))
        .bind(counter(COUNTERS[1]))
        .bind(counter(COUNTERS[2]))
        .bind(counter(COUNTERS[3]))
        .bind(counter(COUNTERS[4]))
        .bind(counter(COUNTERS[5]))
        .bind(&streaks)
        .bind(&trips)
        .bind(late)
        .bind(&was_state)
        .bind(&was_streak)
        .bind(PauseReason::CircuitBreaker.as_str())
        .bind(eta::TAU_SECS)
        .bind((eta::GAP_SECS * 1000.0) as i64)
        .bind(&outcomes)
        .bind(neo_domain::notify::FAILURE_WINDOW as i32)
        .fetch_all(&mut **tx)
        .await?;
        if late && updated.len() < ids.len() {
            return Ok(None);
        }
        for (id, d) in &touched {
            if d.tripped.is_some() {
                emit_event(tx, id, EventType::BackfillPaused, None, now).await?;
            }
        }
        let moved: Vec<(String, String, bool)> = updated
            .into_iter()
            .filter(|(id, _, _)| {
                touched
                    .iter()
                    .any(|(t, d)| t == id && !d.outcomes.is_empty())
            })
            .collect();
        alert_failure_rates(tx, &moved, now).await?;
    }
    let done = plan.applied_backfills();
    Ok(Some((plan.applied, done)))
}

/// Puts locked in-flight items back to pending, keeping their execution ids (a re-dispatch
/// carries the same idempotency key). Items of a CANCELLED or FAILED backfill, which nothing
/// will dispatch again, end cancelled instead. `states` holds the (locked) backfills' states.
/// Returns how many items moved.
pub(super) async fn requeue_locked(
    tx: &mut Transaction<'_, Postgres>,
    items: &[HeldItem],
    states: &HashMap<String, String>,
    now: i64,
) -> Result<u64> {
    let (cancel, back) = split_requeue(items, states);
    let (back_b, back_o): (Vec<&str>, Vec<i64>) = back.into_iter().unzip();
    let mut n = 0;
    if !cancel.is_empty() {
        let (applied, _) = settle_batch(tx, &cancel, i64::MAX, now).await?;
        n += applied.iter().filter(|a| **a).count() as u64;
    }
    if !back_b.is_empty() {
        let moved: Vec<(String, Option<String>)> = sqlx::query_as(
            "UPDATE backfill_items i SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
             FROM UNNEST($2::text[], $3::bigint[]) AS u(backfill_id, ord) \
             WHERE i.backfill_id = u.backfill_id AND i.ord = u.ord AND i.status = 'in_flight' \
             RETURNING i.backfill_id, i.execution_id",
        )
        .bind(now)
        .bind(&back_b)
        .bind(&back_o)
        .fetch_all(&mut **tx)
        .await?;
        n += moved.len() as u64;
        let execs: Vec<&str> = moved.iter().filter_map(|(_, e)| e.as_deref()).collect();
        if !execs.is_empty() {
            sqlx::query(
                "UPDATE executions SET status = 'queued', updated_at = $1 WHERE id = ANY($2)",
            )
            .bind(now)
            .bind(&execs)
            .execute(&mut **tx)
            .await?;
        }
        let mut per: BTreeMap<&str, i64> = BTreeMap::new();
        for (bid, _) in &moved {
            *per.entry(bid.as_str()).or_default() += 1;
        }
        if !per.is_empty() {
            let ids: Vec<&str> = per.keys().copied().collect();
            let counts: Vec<i64> = per.values().copied().collect();
            sqlx::query(
                "UPDATE backfills b SET in_flight_count = b.in_flight_count - u.n, pending_count = b.pending_count + u.n, updated_at = $1 \
                 FROM UNNEST($2::text[], $3::bigint[]) AS u(id, n) WHERE b.id = ANY($2) AND b.id = u.id",
            )
            .bind(now)
            .bind(&ids)
            .bind(&counts)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(n)
}
