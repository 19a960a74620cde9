//! The statements the PostgreSQL store's methods share: row locks in a fixed order, settling
//! with arrays (`UNNEST`), requeues, completion, the one-statement claim (`CLAIM_SQL`).

#[allow(unused_imports)]
use super::*;

/// Serialises the transactions that seal or re-wrap secrets, and reads the key check.
pub(super) async fn lock_key_check(tx: &mut Tx) -> Result<Option<Vec<u8>>> {
    // An arbitrary constant: "neo secrets".
    sqlx::query("SELECT pg_advisory_xact_lock(7366173150317)")
        .execute(&mut **tx)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
            .bind(KEY_CHECK)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

pub(super) async fn fetch_backfill(
    tx: &mut Tx,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Backfill>> {
    let row = sqlx::query(&format!(
        "{BACKFILL_SELECT} WHERE b.tenant_id = $1 AND b.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(map_backfill).transpose()
}

/// Reads a backfill and locks its row until the end of the transaction.
pub(super) async fn lock_backfill(
    tx: &mut Tx,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Backfill>> {
    let row = sqlx::query(&format!(
        "{BACKFILL_SELECT} WHERE b.tenant_id = $1 AND b.id = $2 FOR UPDATE OF b"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(map_backfill).transpose()
}

/// Locks backfill rows in id order; returns the state of each that exists.
pub(super) async fn lock_backfills(tx: &mut Tx, ids: &[String]) -> Result<HashMap<String, String>> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, state FROM backfills WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Moves every pending item of a backfill to `cancelled` and fixes the counters.
pub(super) async fn cancel_pending(tx: &mut Tx, id: &str, now: i64) -> Result<()> {
    let n = sqlx::query("UPDATE backfill_items SET status = 'cancelled', updated_at = $1 WHERE backfill_id = $2 AND status = 'pending'")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected() as i64;
    sqlx::query("UPDATE backfills SET pending_count = pending_count - $1, cancelled_count = cancelled_count + $1 WHERE id = $2")
        .bind(n)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ends an active backfill FAILED with `error`: pending items are cancelled.
pub(super) async fn fail_backfill_tx(tx: &mut Tx, id: &str, error: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE backfills SET state = 'FAILED', error = $1, completed_at = $2, updated_at = $2 WHERE id = $3")
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    cancel_pending(tx, id, now).await
}

/// A backfill's `filter_spec`, kept out of its row (migration 0004).
pub(super) async fn insert_filter(
    tx: &mut Tx,
    backfill_id: &str,
    filter_spec: &Value,
) -> Result<()> {
    sqlx::query("INSERT INTO backfill_filters (backfill_id, filter_spec) VALUES ($1, $2)")
        .bind(backfill_id)
        .bind(filter_spec.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn insert_items_from(
    tx: &mut Tx,
    backfill_id: &str,
    items: &[(String, Option<String>)],
    first_ord: i64,
    now: i64,
) -> Result<()> {
    for (chunk_no, chunk) in items.chunks(INSERT_CHUNK).enumerate() {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        let nums: Vec<Option<&str>> = chunk.iter().map(|(_, n)| n.as_deref()).collect();
        sqlx::query(
            "INSERT INTO backfill_items (backfill_id, ord, entity_id, entity_number, status, updated_at) \
             SELECT $1, $2 + u.n - 1, u.entity_id, u.entity_number, 'pending', $3 \
             FROM UNNEST($4::text[], $5::text[]) WITH ORDINALITY AS u(entity_id, entity_number, n)",
        )
        .bind(backfill_id)
        .bind(first_ord + (chunk_no * INSERT_CHUNK) as i64)
        .bind(now)
        .bind(&ids)
        .bind(&nums)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// COMPLETED when RUNNING, snapshotted and every item settled.
pub(super) async fn complete_in_tx(tx: &mut Tx, ids: &[String], now: i64) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query("UPDATE backfills SET state = 'COMPLETED', completed_at = $1, updated_at = $1 \
                    WHERE id = ANY($2) AND state = 'RUNNING' AND snapshot_complete AND pending_count = 0 AND in_flight_count = 0")
        .bind(now)
        .bind(ids)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Final statuses of execution rows (ids in first-seen order), and the credit ledger entries
/// of the successes among `credit_ids`.
pub(super) async fn write_executions(
    tx: &mut Tx,
    changes: &[(String, ExecChange)],
    credit_ids: &[String],
    now: i64,
) -> Result<()> {
    if !changes.is_empty() {
        let ids: Vec<&str> = changes.iter().map(|(id, _)| id.as_str()).collect();
        let statuses: Vec<&str> = changes.iter().map(|(_, c)| c.status).collect();
        let errors: Vec<Option<&str>> = changes.iter().map(|(_, c)| c.error.as_deref()).collect();
        let finished: Vec<bool> = changes.iter().map(|(_, c)| c.finished).collect();
        sqlx::query(
            "UPDATE executions e SET status = u.status, error = u.error, updated_at = $1, \
             finished_at = CASE WHEN u.finished THEN $1 ELSE e.finished_at END \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bool[]) AS u(id, status, error, finished) \
             WHERE e.id = u.id",
        )
        .bind(now)
        .bind(&ids)
        .bind(&statuses)
        .bind(&errors)
        .bind(&finished)
        .execute(&mut **tx)
        .await?;
    }
    if !credit_ids.is_empty() {
        sqlx::query(
            "INSERT INTO credit_ledger (tenant_id, execution_id, agent_id, credits, created_at) \
                     SELECT e.tenant_id, e.id, e.agent_id, COALESCE(w.credit_tier, 1), $1 \
                     FROM UNNEST($2::text[]) WITH ORDINALITY AS u(id, n) \
                     JOIN executions e ON e.id = u.id LEFT JOIN workflows w ON w.id = e.agent_id \
                     ORDER BY u.n \
                     ON CONFLICT (execution_id) DO NOTHING",
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
/// earlier one's result), in a fixed number of statements. Locks the backfills (id order),
/// then the items (key order). Returns whether each outcome applied, and the ids of the
/// backfills it touched; completion is the caller's.
pub(super) async fn settle_batch(
    tx: &mut Tx,
    outcomes: &[Outcome],
    breaker_threshold: i64,
    now: i64,
) -> Result<(Vec<bool>, Vec<String>)> {
    if outcomes.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let bids: Vec<String> = outcomes.iter().map(|o| o.backfill_id.clone()).collect();
    let mut sorted = bids.clone();
    sorted.sort();
    sorted.dedup();
    let backfills: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, state, consecutive_failures FROM backfills WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&sorted)
    .fetch_all(&mut **tx)
    .await?;
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
    write_executions(tx, &plan.execs, &plan.credit_ids, now).await?;

    let touched = plan.touched();
    if !touched.is_empty() {
        let ids: Vec<&str> = touched.iter().map(|(id, _)| *id).collect();
        let counter =
            |name: &str| -> Vec<i64> { touched.iter().map(|(_, d)| d.counter(name)).collect() };
        let streaks: Vec<i64> = touched.iter().map(|(_, d)| d.streak).collect();
        let trips: Vec<Option<&str>> = touched.iter().map(|(_, d)| d.tripped.as_deref()).collect();
        sqlx::query(
            "UPDATE backfills b SET pending_count = b.pending_count + u.dp, in_flight_count = b.in_flight_count + u.di, \
             succeeded_count = b.succeeded_count + u.ds, failed_count = b.failed_count + u.df, \
             cancelled_count = b.cancelled_count + u.dc, consecutive_failures = u.streak, \
             state = CASE WHEN u.trip IS NULL THEN b.state ELSE 'PAUSED' END, \
             error = COALESCE(u.trip, b.error), updated_at = $1 \
             FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[]) \
                  AS u(id, dp, di, ds, df, dc, streak, trip) \
             WHERE b.id = u.id",
        )
        .bind(now)
        .bind(&ids)
        .bind(counter(COUNTERS[0]))
        .bind(counter(COUNTERS[1]))
        .bind(counter(COUNTERS[2]))
        .bind(counter(COUNTERS[3]))
        .bind(counter(COUNTERS[4]))
        .bind(&streaks)
        .bind(&trips)
        .execute(&mut **tx)
        .await?;
    }
    let done = plan.applied_backfills();
    Ok((plan.applied, done))
}

/// Puts locked in-flight items back to pending, keeping their execution ids (a re-dispatch
/// carries the same idempotency key). Items of a CANCELLED or FAILED backfill, which nothing
/// will dispatch again, end cancelled instead. `states` holds the (locked) backfills' states.
/// Returns how many items moved.
pub(super) async fn requeue_locked(
    tx: &mut Tx,
    items: &[(String, i64, Option<String>)],
    states: &HashMap<String, String>,
    now: i64,
) -> Result<u64> {
    let mut cancel = Vec::new();
    let mut back_b = Vec::new();
    let mut back_o = Vec::new();
    for (bid, ord, exec) in items {
        match states.get(bid).map(String::as_str) {
            Some(state @ ("CANCELLED" | "FAILED")) => cancel.push(Outcome {
                backfill_id: bid.clone(),
                ord: *ord,
                execution_id: exec.clone().unwrap_or_default(),
                settlement: Settlement::Cancelled(format!("the backfill is {state}")),
            }),
            _ => {
                back_b.push(bid.as_str());
                back_o.push(*ord);
            }
        }
    }
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
                 FROM UNNEST($2::text[], $3::bigint[]) AS u(id, n) WHERE b.id = u.id",
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

/// The claim of [`PgStore::claim_items`], one statement: lock the backfill if RUNNING (its room
/// is `max_in_flight` minus its in-flight counter), lock up to that many due pending items in
/// order (`SKIP LOCKED`), mark those whose entity already succeeded under the workflow
/// `skipped` (unless reprocess), start an execution for each other one (a fresh id, or the
/// item's own on a retry), mark them in flight under the worker's lease, and move the
/// counters. $1 backfill, $2 limit, $3 now, $4 fresh execution ids (at least $2), $5 worker,
/// $6 lease expiry. Returns the picked items in order.
pub(super) const CLAIM_SQL: &str = "\
WITH b AS (
    SELECT b.id, b.tenant_id, b.target_workflow_id, b.reprocess, w.name AS wf_name,
           GREATEST(LEAST(b.max_in_flight - b.in_flight_count, $2), 0) AS room
    FROM backfills b LEFT JOIN workflows w ON w.id = b.target_workflow_id AND w.tenant_id = b.tenant_id
    WHERE b.id = $1 AND b.state = 'RUNNING'
    FOR UPDATE OF b
), locked AS (
    SELECT i.ord, i.entity_id, i.entity_number, i.execution_id, i.attempts
    FROM backfill_items i
    WHERE i.backfill_id = $1 AND i.status = 'pending' AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= $3)
    ORDER BY i.ord
    LIMIT COALESCE((SELECT room FROM b), 0)
    FOR UPDATE OF i SKIP LOCKED
), judged AS (
    SELECT l.*, row_number() OVER (ORDER BY l.ord) AS n,
           (NOT b.reprocess AND EXISTS (SELECT 1 FROM executions e WHERE e.tenant_id = b.tenant_id AND e.agent_id = b.target_workflow_id
                                        AND e.entity_id = l.entity_id AND e.status = 'succeeded')) AS done_before
    FROM locked l CROSS JOIN b
), picked AS (
    SELECT j.*, CASE WHEN j.done_before THEN NULL ELSE COALESCE(j.execution_id, ($4::text[])[j.n]) END AS exec_id
    FROM judged j
), started AS (
    INSERT INTO executions (id, tenant_id, agent_id, agent_name, backfill_id, entity_id, entity_number, status, attempts, created_at, updated_at, started_at)
    SELECT p.exec_id, b.tenant_id, b.target_workflow_id, b.wf_name, b.id, p.entity_id, p.entity_number, 'running', 1, $3, $3, $3
    FROM picked p CROSS JOIN b WHERE NOT p.done_before AND p.execution_id IS NULL ORDER BY p.ord
), restarted AS (
    UPDATE executions e SET status = 'running', attempts = e.attempts + 1, error = NULL, updated_at = $3, started_at = COALESCE(e.started_at, $3)
    FROM picked p WHERE NOT p.done_before AND e.id = p.execution_id
), moved AS (
    UPDATE backfill_items i SET
        status = CASE WHEN p.done_before THEN 'skipped' ELSE 'in_flight' END,
        error = CASE WHEN p.done_before THEN NULL ELSE i.error END,
        attempts = CASE WHEN p.done_before THEN i.attempts ELSE i.attempts + 1 END,
        execution_id = COALESCE(p.exec_id, i.execution_id),
        lease_owner = CASE WHEN p.done_before THEN i.lease_owner ELSE $5 END,
        lease_expires_at = CASE WHEN p.done_before THEN i.lease_expires_at ELSE $6 END,
        next_attempt_at = CASE WHEN p.done_before THEN i.next_attempt_at ELSE NULL END,
        updated_at = $3
    FROM picked p WHERE i.backfill_id = $1 AND i.ord = p.ord
), counted AS (
    UPDATE backfills c SET pending_count = c.pending_count - t.picked, in_flight_count = c.in_flight_count + t.picked - t.skipped,
           skipped_count = c.skipped_count + t.skipped, updated_at = $3
    FROM (SELECT count(*) AS picked, count(*) FILTER (WHERE done_before) AS skipped FROM picked) t
    WHERE c.id = $1 AND t.picked > 0
)
SELECT b.tenant_id, b.target_workflow_id, p.ord, p.entity_id, p.entity_number, COALESCE(p.exec_id, ''), p.attempts + 1, p.done_before
FROM picked p CROSS JOIN b ORDER BY p.ord";

pub(super) fn unique_to(e: sqlx::Error, err: StoreError) -> StoreError {
    if is_unique_violation(&e) {
        err
    } else {
        e.into()
    }
}
