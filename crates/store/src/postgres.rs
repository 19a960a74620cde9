//! The PostgreSQL store, for production and for several replicas sharing one database.
//!
//! Behaviour is that of [`crate::SqliteStore`] method for method; what differs is how it stays
//! correct with concurrent transactions from several processes (READ COMMITTED):
//! * every transaction that changes a backfill's items or counters first locks the backfill row
//!   (`SELECT … FOR UPDATE`, several backfills in id order), so item states and counters are read
//!   and written consistently, and counters only move by `x = x + n`;
//! * items are locked in `(backfill_id, ord)` order wherever several are locked, so two
//!   transactions never wait on each other in a cycle;
//! * `claim_items` counts the backfill's in-flight items under that lock, so `max_in_flight`
//!   holds across replicas, and takes candidates with `FOR UPDATE SKIP LOCKED`;
//! * claims, settlements and requeues are batched: a few statements per call whatever the
//!   number of items (arrays and `UNNEST`).
//!
//! Each connection gets a server-side `statement_timeout` (and an idle-in-transaction timeout,
//! so a stuck client cannot hold a backfill lock for ever).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use neo_domain::backfill::{
    apply_signal, BackfillRunState, ExecutionStatus, ItemStatus, Signal, SignalOutcome,
};
use neo_domain::clock::to_ms;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};

use crate::executions::*;
use crate::idempotency::*;
use crate::integrations::*;
use crate::rerun::*;
use crate::rows::*;
use crate::sealed_rows::*;
use crate::settlement::*;
use crate::tenants::*;
use crate::workflows::*;
use crate::*;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Server-side limit of one statement (lock waits included).
pub const STATEMENT_TIMEOUT: &str = "30s";
/// A session idle inside a transaction longer than this is ended by the server.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";
/// Rows per `INSERT … SELECT FROM UNNEST` of snapshot items.
const INSERT_CHUNK: usize = 10_000;

type Tx = Transaction<'static, Postgres>;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    sealer: Option<std::sync::Arc<Sealer>>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`), migrates the database and makes sure the server
    /// secret exists. A pool of 10 connections.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_with_pool_size(url, 10).await
    }

    pub async fn open_with_pool_size(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        Self::open_with(url, max_connections, None).await
    }

    /// [`PgStore::open_with_pool_size`] with the master key of the secrets: checks it against
    /// the database's key check (written if absent) and seals plaintext secrets.
    pub async fn open_with(
        url: &str,
        max_connections: u32,
        sealer: Option<std::sync::Arc<Sealer>>,
    ) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(url)?
            .application_name("neo-backfill")
            .options([
                ("statement_timeout", STATEMENT_TIMEOUT),
                (
                    "idle_in_transaction_session_timeout",
                    IDLE_IN_TRANSACTION_TIMEOUT,
                ),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        // Takes an advisory lock: replicas starting together migrate once.
        MIGRATOR.run(&pool).await?;
        let secret = random_secret();
        sqlx::query("INSERT INTO server_settings (name, value) VALUES ('cursor_secret', $1) ON CONFLICT (name) DO NOTHING")
            .bind(&secret[..])
            .execute(&pool)
            .await?;
        let s = Self { pool, sealer };
        if let Some(sealer) = &s.sealer {
            s.ensure_sealed(sealer).await?;
        }
        Ok(s)
    }

    /// The key check, and every plaintext secret sealed, in one transaction; replicas
    /// starting together take turns (advisory lock).
    async fn ensure_sealed(&self, sealer: &Sealer) -> Result<()> {
        let mut tx = self.tx().await?;
        let check = lock_key_check(&mut tx).await?;
        match check {
            Some(v) => verify_key_check(sealer, &v)?,
            None => put_key_check(&mut tx, sealer).await?,
        }
        let report = reseal_all(&mut tx, None, sealer).await?;
        tx.commit().await?;
        if !report.is_empty() {
            tracing::info!(?report, "sealed the secrets stored in plaintext");
        }
        Ok(())
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn tx(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }
}

/// Serialises the transactions that seal or re-wrap secrets, and reads the key check.
async fn lock_key_check(tx: &mut Tx) -> Result<Option<Vec<u8>>> {
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

async fn fetch_backfill(tx: &mut Tx, tenant_id: &str, id: &str) -> Result<Option<Backfill>> {
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
async fn lock_backfill(tx: &mut Tx, tenant_id: &str, id: &str) -> Result<Option<Backfill>> {
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
async fn lock_backfills(tx: &mut Tx, ids: &[String]) -> Result<HashMap<String, String>> {
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
async fn cancel_pending(tx: &mut Tx, id: &str, now: i64) -> Result<()> {
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
async fn fail_backfill_tx(tx: &mut Tx, id: &str, error: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE backfills SET state = 'FAILED', error = $1, completed_at = $2, updated_at = $2 WHERE id = $3")
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    cancel_pending(tx, id, now).await
}

/// A backfill's `filter_spec`, kept out of its row (migration 0004).
async fn insert_filter(tx: &mut Tx, backfill_id: &str, filter_spec: &Value) -> Result<()> {
    sqlx::query("INSERT INTO backfill_filters (backfill_id, filter_spec) VALUES ($1, $2)")
        .bind(backfill_id)
        .bind(filter_spec.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_items_from(
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
async fn complete_in_tx(tx: &mut Tx, ids: &[String], now: i64) -> Result<u64> {
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
async fn write_executions(
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
async fn settle_batch(
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
async fn requeue_locked(
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
const CLAIM_SQL: &str = "\
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

fn unique_to(e: sqlx::Error, err: StoreError) -> StoreError {
    if is_unique_violation(&e) {
        err
    } else {
        e.into()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn server_secret(&self) -> Result<Vec<u8>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM server_settings WHERE name = 'cursor_secret'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn ensure_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant> {
        upsert_tenant(&self.pool, name, now).await
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        select_tenant(&self.pool, TENANT_BY_ID, id).await
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        select_tenant(&self.pool, TENANT_BY_NAME, name).await
    }

    async fn tenant_by_entra_tid(&self, tid: &str) -> Result<Option<Tenant>> {
        select_tenant(&self.pool, TENANT_BY_ENTRA_TID, tid).await
    }

    async fn set_tenant_entra_tid(&self, tenant_id: &str, tid: Option<&str>) -> Result<()> {
        update_tenant_entra_tid(&self.pool, tenant_id, tid).await
    }

    async fn insert_api_key(&self, k: NewApiKey) -> Result<ApiKey> {
        insert_key(&self.pool, &k).await?;
        self.api_key(&k.id).await?.ok_or(StoreError::NotFound)
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKey, Vec<u8>)>> {
        select_key_by_hash(&self.pool, hash).await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>> {
        // The writer: a key read right after its insert or rotation.
        select_key(&self.pool, id).await
    }

    async fn list_api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>> {
        select_keys(&self.pool, tenant_id).await
    }

    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> Result<bool> {
        update_key_revoked(&self.pool, id, now).await
    }

    async fn rotate_api_key(
        &self,
        old_id: &str,
        old_expires_at: Timestamp,
        k: NewApiKey,
    ) -> Result<ApiKey> {
        let mut tx = self.tx().await?;
        insert_key(&mut *tx, &k).await?;
        update_key_rotated(&mut *tx, old_id, old_expires_at, &k.id).await?;
        tx.commit().await?;
        self.api_key(&k.id).await?.ok_or(StoreError::NotFound)
    }

    async fn touch_api_key(&self, id: &str, now: Timestamp) -> Result<()> {
        update_key_used(&self.pool, id, now).await
    }

    async fn insert_workflow(
        &self,
        tenant_id: &str,
        w: NewWorkflow,
        now: Timestamp,
    ) -> Result<Workflow> {
        let sealer = self.sealer.as_deref();
        check_can_seal(sealer, &w.executor)?;
        // The secret is sealed for the row's id, known after the insert: the row is inserted
        // without it, then sealed, in one transaction (plaintext never reaches the database).
        let secret = executor_secret(&w.executor).is_some();
        let unsealed = if secret {
            with_executor_secret(&w.executor, Value::Null)
        } else {
            w.executor.clone()
        };
        let mut tx = self.tx().await?;
        let r = sqlx::query("INSERT INTO workflows (tenant_id, name, description, autonomy_type, entity_type, state, credit_tier, executor, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING *")
            .bind(tenant_id)
            .bind(&w.name)
            .bind(&w.description)
            .bind(w.autonomy_type.as_str())
            .bind(w.entity_type.as_str())
            .bind(w.state.as_str())
            .bind(w.credit_tier)
            .bind(unsealed.to_string())
            .bind(to_ms(now))
            .fetch_one(&mut *tx)
            .await?;
        let mut out = map_workflow(&r)?;
        if secret {
            sqlx::query("UPDATE workflows SET executor = $1 WHERE id = $2")
                .bind(seal_executor(sealer, tenant_id, out.id, &w.executor)?.to_string())
                .bind(out.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        out.executor = w.executor;
        Ok(out)
    }

    async fn workflow(&self, tenant_id: &str, id: i64) -> Result<Option<Workflow>> {
        select_workflow(&self.pool, self.sealer.as_deref(), tenant_id, id).await
    }

    async fn list_workflows(
        &self,
        tenant_id: &str,
        after_id: Option<i64>,
        limit: usize,
    ) -> Result<Page<Workflow>> {
        select_workflows(
            &self.pool,
            self.sealer.as_deref(),
            tenant_id,
            after_id,
            limit,
        )
        .await
    }

    async fn update_workflow(
        &self,
        tenant_id: &str,
        id: i64,
        p: WorkflowPatch,
        now: Timestamp,
    ) -> Result<Option<Workflow>> {
        let mut tx = self.tx().await?;
        let w = patch_workflow_row(&mut tx, self.sealer.as_deref(), tenant_id, id, p, now).await?;
        if w.is_some() {
            tx.commit().await?;
        }
        Ok(w)
    }

    async fn delete_workflow(&self, tenant_id: &str, id: i64, now: Timestamp) -> Result<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query("DELETE FROM workflows WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let active: Vec<String> = sqlx::query_scalar("SELECT id FROM backfills WHERE tenant_id = $1 AND target_workflow_id = $2 AND state IN ('DRAFT', 'RUNNING', 'PAUSED') ORDER BY id FOR UPDATE")
            .bind(tenant_id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        for b in active {
            fail_backfill_tx(&mut tx, &b, "the target workflow was deleted", to_ms(now)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn put_integration(
        &self,
        tenant_id: &str,
        psa: &str,
        config: Value,
        secrets: Value,
        now: Timestamp,
    ) -> Result<Integration> {
        let sealer = self.sealer.as_deref();
        upsert_integration(&self.pool, sealer, tenant_id, psa, &config, &secrets, now).await
    }

    async fn integration(&self, tenant_id: &str) -> Result<Option<Integration>> {
        select_integration(&self.pool, tenant_id).await
    }

    async fn integration_secrets(&self, tenant_id: &str) -> Result<Option<Value>> {
        select_integration_secrets(&self.pool, self.sealer.as_deref(), tenant_id).await
    }

    async fn rotate_master_key(&self, new: &Sealer) -> Result<SecretsReport> {
        let old = self.sealer.as_deref().ok_or_else(|| {
            StoreError::Secret("no master key configured: rotation needs the current key".into())
        })?;
        let mut tx = self.tx().await?;
        if let Some(v) = lock_key_check(&mut tx).await? {
            verify_key_check(old, &v)?;
        }
        let report = reseal_all(&mut tx, Some(old), new).await?;
        put_key_check(&mut tx, new).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn delete_integration(&self, tenant_id: &str, now: Timestamp) -> Result<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query("DELETE FROM integrations WHERE tenant_id = $1")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        // Backfills over an explicit id list do not need the PSA; the others cannot go on.
        // (A JSON null counts as absent, as with SQLite's json_extract.)
        let active: Vec<String> = sqlx::query_scalar("SELECT b.id FROM backfills b JOIN backfill_filters f ON f.backfill_id = b.id WHERE b.tenant_id = $1 AND b.state IN ('DRAFT', 'RUNNING', 'PAUSED') \
                                                     AND COALESCE(jsonb_typeof(f.filter_spec::jsonb -> 'entity_ids'), 'null') = 'null' ORDER BY b.id FOR UPDATE OF b")
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await?;
        for b in active {
            fail_backfill_tx(
                &mut tx,
                &b,
                "the tenant's PSA integration was removed",
                to_ms(now),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn create_backfill_idempotent(
        &self,
        b: NewBackfill,
        idem: Option<&NewIdempotency<'_>>,
    ) -> Result<Backfill> {
        let mut tx = self.tx().await?;
        if let Some(idem) = idem {
            claim_idempotency_key(&mut tx, &b.tenant_id, idem).await?;
        }
        let now = to_ms(b.created_at);
        let n_items = b.entity_ids.as_ref().map_or(0, |v| v.len() as i64);
        let started = (b.state == BackfillRunState::Running).then_some(now);
        sqlx::query("INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, daily_execution_windows, timezone, max_in_flight, reprocess, total_estimated, total_items, snapshot_complete, pending_count, credits_per_entity, started_at, created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, $13, $14, $15, $16, $16)")
            .bind(&b.id)
            .bind(&b.tenant_id)
            .bind(b.state.as_str())
            .bind(b.target_workflow_id)
            .bind(b.entity_type.as_str())
            .bind(to_json_text(&b.daily_execution_windows)?)
            .bind(&b.timezone)
            .bind(b.max_in_flight)
            .bind(b.reprocess)
            .bind(b.total_estimated)
            .bind(n_items)
            .bind(b.entity_ids.is_some())
            .bind(b.credits_per_entity)
            .bind(started)
            .bind(&b.created_by)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_to(e, StoreError::AlreadyActive))?;
        insert_filter(&mut tx, &b.id, &b.filter_spec).await?;
        if let Some(ids) = &b.entity_ids {
            let pairs: Vec<(String, Option<String>)> =
                ids.iter().map(|i| (i.clone(), None)).collect();
            insert_items_from(&mut tx, &b.id, &pairs, 0, now).await?;
        }
        let out = fetch_backfill(&mut tx, &b.tenant_id, &b.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if let Some(idem) = idem {
            save_idempotent_response(&mut tx, &b.tenant_id, idem, &out).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn backfill(&self, tenant_id: &str, id: &str) -> Result<Option<Backfill>> {
        let row = sqlx::query(&format!(
            "{BACKFILL_SELECT} WHERE b.tenant_id = $1 AND b.id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(map_backfill).transpose()
    }

    async fn list_backfills(
        &self,
        tenant_id: &str,
        f: &BackfillFilter,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Page<Backfill>> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(BACKFILL_SELECT);
        qb.push(" WHERE b.tenant_id = ").push_bind(tenant_id);
        if let Some(before) = before_id {
            qb.push(" AND b.id < ").push_bind(before);
        }
        if let Some(w) = f.target_workflow_id {
            qb.push(" AND b.target_workflow_id = ").push_bind(w);
        }
        if !f.states.is_empty() {
            let states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
            qb.push(" AND b.state = ANY(").push_bind(states).push(")");
        }
        qb.push(" ORDER BY b.id DESC LIMIT ")
            .push_bind(limit as i64 + 1);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let rows: Vec<Backfill> = rows.iter().map(map_backfill).collect::<Result<_>>()?;
        Ok(Page::from_overfetch(rows, limit))
    }

    async fn list_items(
        &self,
        tenant_id: &str,
        backfill_id: &str,
        statuses: &[ItemStatus],
        after_ord: Option<i64>,
        limit: usize,
    ) -> Result<Page<Item>> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT i.* FROM backfill_items i JOIN backfills b ON b.id = i.backfill_id WHERE b.tenant_id = ",
        );
        qb.push_bind(tenant_id);
        qb.push(" AND i.backfill_id = ").push_bind(backfill_id);
        qb.push(" AND i.ord > ").push_bind(after_ord.unwrap_or(-1));
        if !statuses.is_empty() {
            let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            qb.push(" AND i.status = ANY(")
                .push_bind(statuses)
                .push(")");
        }
        qb.push(" ORDER BY i.ord LIMIT ")
            .push_bind(limit as i64 + 1);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let rows: Vec<Item> = rows.iter().map(map_item).collect::<Result<_>>()?;
        Ok(Page::from_overfetch(rows, limit))
    }

    async fn signal_backfill(
        &self,
        tenant_id: &str,
        id: &str,
        signal: Signal,
        actor: &str,
        now: Timestamp,
    ) -> Result<(Backfill, SignalOutcome), SignalError> {
        let mut tx = self.tx().await?;
        let b = lock_backfill(&mut tx, tenant_id, id)
            .await?
            .ok_or(SignalError::NotFound)?;
        let outcome = apply_signal(b.state, signal).map_err(SignalError::Refused)?;
        let now_ms = to_ms(now);
        let to = match outcome {
            SignalOutcome::Transition(to) => to,
            SignalOutcome::NoOp => b.state,
        };
        if let SignalOutcome::Transition(to) = outcome {
            // Resume clears a pause reason (e.g. the circuit breaker's) and its streak.
            sqlx::query(
                "UPDATE backfills SET state = $1, updated_at = $2, \
                 started_at = CASE WHEN $3 THEN COALESCE(started_at, $2) ELSE started_at END, \
                 completed_at = CASE WHEN $4 THEN $2 ELSE completed_at END, \
                 error = CASE WHEN $5 THEN NULL ELSE error END, \
                 consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures END \
                 WHERE id = $6",
            )
            .bind(to.as_str())
            .bind(now_ms)
            .bind(to == BackfillRunState::Running)
            .bind(to == BackfillRunState::Cancelled)
            .bind(signal == Signal::Resume)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            if to == BackfillRunState::Cancelled {
                cancel_pending(&mut tx, id, now_ms).await?;
            }
        }
        sqlx::query("INSERT INTO backfill_signals (backfill_id, signal, from_state, to_state, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(signal.as_str())
            .bind(b.state.as_str())
            .bind(to.as_str())
            .bind(actor)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let out = fetch_backfill(&mut tx, tenant_id, id)
            .await?
            .ok_or(SignalError::NotFound)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok((out, outcome))
    }

    async fn rerun_failed_idempotent(
        &self,
        tenant_id: &str,
        source_id: &str,
        new_id: &str,
        created_by: &str,
        now: Timestamp,
        idem: Option<&NewIdempotency<'_>>,
    ) -> Result<Backfill, RerunError> {
        let mut tx = self.tx().await?;
        if let Some(idem) = idem {
            claim_idempotency_key(&mut tx, tenant_id, idem).await?;
        }
        let src = lock_backfill(&mut tx, tenant_id, source_id)
            .await?
            .ok_or(RerunError::NotFound)?;
        check_rerunnable(&src)?;
        let wf = sqlx::query("SELECT * FROM workflows WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(src.target_workflow_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let wf = check_rerun_workflow(wf.as_ref().map(map_workflow).transpose()?)?;
        let failed: Vec<(String, Option<String>)> = sqlx::query_as("SELECT entity_id, entity_number FROM backfill_items WHERE backfill_id = $1 AND status = 'failed' ORDER BY ord")
            .bind(source_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let filter = rerun_filter(&failed);
        let now_ms = to_ms(now);
        let n = failed.len() as i64;
        sqlx::query("INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, daily_execution_windows, timezone, max_in_flight, reprocess, total_estimated, total_items, snapshot_complete, pending_count, credits_per_entity, started_at, created_by, created_at, updated_at, parent_backfill_run_id) \
                     VALUES ($1, $2, 'RUNNING', $3, $4, $5, $6, $7, TRUE, $8, $8, TRUE, $8, $9, $10, $11, $10, $10, $12)")
            .bind(new_id)
            .bind(tenant_id)
            .bind(src.target_workflow_id)
            .bind(src.entity_type.as_str())
            .bind(to_json_text(&src.daily_execution_windows)?)
            .bind(&src.timezone)
            .bind(src.max_in_flight)
            .bind(n)
            .bind(wf.credit_tier)
            .bind(now_ms)
            .bind(created_by)
            .bind(source_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    RerunError::AlreadyActive
                } else {
                    StoreError::from(e).into()
                }
            })?;
        insert_filter(&mut tx, new_id, &filter).await?;
        insert_items_from(&mut tx, new_id, &failed, 0, now_ms).await?;
        let out = fetch_backfill(&mut tx, tenant_id, new_id)
            .await?
            .ok_or(RerunError::NotFound)?;
        if let Some(idem) = idem {
            save_idempotent_response(&mut tx, tenant_id, idem, &out).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(out)
    }

    async fn delete_backfill(&self, tenant_id: &str, id: &str) -> Result<(), DeleteBackfillError> {
        let mut tx = self.tx().await?;
        let b = lock_backfill(&mut tx, tenant_id, id)
            .await?
            .ok_or(DeleteBackfillError::NotFound)?;
        if b.state != BackfillRunState::Draft {
            return Err(DeleteBackfillError::NotDraft(b.state));
        }
        sqlx::query("DELETE FROM backfills WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    async fn insert_execution(&self, e: NewExecution) -> Result<Execution> {
        insert_execution_row(&self.pool, &e).await?;
        self.execution(&e.tenant_id, &e.id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn execution(&self, tenant_id: &str, id: &str) -> Result<Option<Execution>> {
        select_execution(&self.pool, Some(tenant_id), id).await
    }

    async fn execution_by_id(&self, id: &str) -> Result<Option<Execution>> {
        select_execution(&self.pool, None, id).await
    }

    async fn list_executions(
        &self,
        tenant_id: &str,
        f: &ExecutionFilter,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Page<Execution>> {
        select_executions(&self.pool, tenant_id, f, before_id, limit).await
    }

    async fn finish_execution(
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

    async fn dispatchable_backfills(&self) -> Result<Vec<Backfill>> {
        let rows = sqlx::query(&format!("{DISPATCH_SELECT} WHERE (b.state = 'RUNNING' OR b.in_flight_count > 0) AND b.state IN ('RUNNING', 'PAUSED', 'CANCELLED', 'FAILED') ORDER BY b.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(map_backfill).collect()
    }

    async fn claim_items(
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

    async fn settle(
        &self,
        outcomes: &[Outcome],
        breaker_threshold: i64,
        now: Timestamp,
    ) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let outcomes = storable_outcomes(outcomes);
        let mut tx = self.tx().await?;
        let now_ms = to_ms(now);
        let (_, touched) = settle_batch(&mut tx, &outcomes, breaker_threshold, now_ms).await?;
        complete_in_tx(&mut tx, &touched, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn heartbeat(&self, worker: &str, lease_until: Timestamp) -> Result<u64> {
        // Items are locked in key order, like everywhere else, so this cannot deadlock with
        // a settlement.
        Ok(sqlx::query("UPDATE backfill_items SET lease_expires_at = $1 WHERE (backfill_id, ord) IN \
                        (SELECT backfill_id, ord FROM backfill_items WHERE status = 'in_flight' AND lease_owner = $2 \
                         ORDER BY backfill_id, ord FOR UPDATE) \
                        AND status = 'in_flight' AND lease_owner = $2")
            .bind(to_ms(lease_until))
            .bind(worker)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn reap_expired_leases(&self, now: Timestamp) -> Result<ReapReport> {
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

    async fn release_leases(&self, worker: &str, now: Timestamp) -> Result<u64> {
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

    async fn complete_if_settled(&self, backfill_id: &str, now: Timestamp) -> Result<bool> {
        let mut tx = self.tx().await?;
        let n = complete_in_tx(&mut tx, &[backfill_id.to_owned()], to_ms(now)).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn in_flight_items(
        &self,
        backfill_id: &str,
    ) -> Result<Vec<(i64, String, Option<String>)>> {
        let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as("SELECT ord, execution_id, lease_owner FROM backfill_items WHERE backfill_id = $1 AND status = 'in_flight' ORDER BY ord")
            .bind(backfill_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(o, e, w)| (o, e.unwrap_or_default(), w))
            .collect())
    }

    async fn append_items(
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

    async fn fail_backfill(&self, backfill_id: &str, error: &str, now: Timestamp) -> Result<()> {
        let error = sanitize(error);
        let mut tx = self.tx().await?;
        fail_backfill_tx(&mut tx, backfill_id, &error, to_ms(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn credits_used(&self, tenant_id: &str, from: Timestamp, to: Timestamp) -> Result<i64> {
        // SUM over BIGINT is NUMERIC in PostgreSQL: back to BIGINT.
        let v: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(credits), 0)::BIGINT FROM credit_ledger WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3")
            .bind(tenant_id)
            .bind(to_ms(from))
            .bind(to_ms(to))
            .fetch_one(&self.pool)
            .await?;
        Ok(v)
    }

    async fn idempotent_response(
        &self,
        tenant_id: &str,
        key: &str,
        not_before: Timestamp,
    ) -> Result<Option<IdempotentResponse>> {
        select_idempotent(&self.pool, tenant_id, key, not_before).await
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
        delete_idempotency_keys(&self.pool, before).await
    }
}

idempotency_writes!(sqlx::Postgres);

sealing_writes!(sqlx::Postgres, " FOR UPDATE");

tenant_queries!(sqlx::Postgres);

execution_queries!(sqlx::Postgres);

workflow_queries!(sqlx::Postgres, " FOR UPDATE");

integration_queries!(sqlx::Postgres);
