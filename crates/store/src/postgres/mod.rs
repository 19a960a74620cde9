//! The PostgreSQL store, for production and for several replicas sharing one database.
//!
//! Behaviour is that of [`crate::SqliteStore`] method for method; what differs is how it stays
//! correct with concurrent transactions from several processes (READ COMMITTED):
//! * every transaction that changes a backfill's items or counters first locks the backfill row
//!   (`SELECT … FOR UPDATE`, several backfills in id order), so item states and counters are read
//!   and written consistently, and counters only move by `x = x + n`;
//! * items are locked in `(backfill_id, ord)` order wherever several are locked, so two
//!   transactions never wait on each other in a cycle;
//! * `claim_many` counts each backfill's in-flight items under its lock, so `max_in_flight`
//!   holds across replicas, and takes candidates with `FOR UPDATE SKIP LOCKED`;
//! * claims, settlements and requeues are batched: a few statements per call whatever the
//!   number of items (arrays and `UNNEST`).
//!
//! Each connection gets a server-side `statement_timeout` (and an idle-in-transaction timeout,
//! so a stuck client cannot hold a backfill lock for ever).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use neo_domain::backfill::{
    apply_signal, check_editable, BackfillRunState, ExecutionStatus, Signal, SignalOutcome,
};
use neo_domain::clock::to_ms;
use neo_domain::windows::WorkflowDailyExecutionWindows;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::backfills::*;
use crate::control::*;
use crate::executions::*;
use crate::idempotency::*;
use crate::integrations::*;
use crate::notifications::*;
use crate::psa_changes::*;
use crate::rerun::*;
use crate::rows::*;
use crate::sealed_rows::*;
use crate::settlement::*;
use crate::store_methods::*;
use crate::tenants::*;
use crate::triage::*;
use crate::workflows::*;
use crate::*;
use neo_domain::control::PauseReason;
use neo_domain::eta;
use neo_domain::notify::EventType;

mod dispatch;
mod settle;

use settle::*;

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
    /// `backfill_items` is known to have statistics (see [`PgStore::items_added`]).
    items_analyzed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl PgStore {
    /// Items were added to `backfill_items`. A table PostgreSQL never analysed has no
    /// statistics, and a connection keeps the plans it prepared from none: on a fresh
    /// database the first big backfill's claims fetched and sorted every pending item to take
    /// 250 (a bitmap scan, cheapest for the 2 rows the planner assumed; 8,200 items/s at
    /// 200,000 items, the sort spilling to disk). So the first time a table without
    /// statistics receives a page of items, it is analysed then (about 0.1 s once, before the
    /// call returns); autovacuum refreshes them as the table grows. Until it does, a backfill
    /// created after that analysis is estimated at about one item, so the statements that
    /// touch a backfill's items are written not to depend on that estimate (`CLAIM_SQL`).
    async fn items_added(&self, n: usize) {
        use std::sync::atomic::Ordering;
        if n < 1_000 || self.items_analyzed.load(Ordering::Relaxed) {
            return;
        }
        let never: Result<bool, sqlx::Error> = sqlx::query_scalar(
            "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM pg_stat_user_tables \
             WHERE relid = 'backfill_items'::regclass",
        )
        .fetch_one(&self.pool)
        .await;
        let done = match never {
            Ok(false) => Ok(()),
            Ok(true) => sqlx::query("ANALYZE backfill_items")
                .execute(&self.pool)
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => self.items_analyzed.store(true, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "analysing backfill_items failed"),
        }
    }

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
                // Every statement here is short. With statistics the claim's estimated cost
                // (the planner cannot know its LIMIT is a few hundred) passes `jit_above_cost`,
                // and compiling it took 30 ms of CPU per claim: 5,800 items/s instead of
                // 27,000 at 200,000 items.
                ("jit", "off"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        // Takes an advisory lock: replicas starting together migrate once.
        crate::migrate(&MIGRATOR, &pool).await?;
        let secret = random_secret();
        sqlx::query("INSERT INTO server_settings (name, value) VALUES ('cursor_secret', $1) ON CONFLICT (name) DO NOTHING")
            .bind(&secret[..])
            .execute(&pool)
            .await?;
        let s = Self {
            pool,
            sealer,
            items_analyzed: Default::default(),
        };
        if let Some(sealer) = &s.sealer {
            s.ensure_sealed(sealer).await?;
        }
        Ok(s)
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn tx(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }
}

/// Serialises the transactions that seal or re-wrap secrets, and reads the key check.
pub(super) async fn lock_key_check(tx: &mut Transaction<'_, Postgres>) -> Result<Option<Vec<u8>>> {
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

/// Locks backfill rows in id order; returns the state of each that exists.
pub(super) async fn lock_backfills(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[String],
) -> Result<HashMap<String, String>> {
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

/// Snapshot items, in chunks of one `INSERT … SELECT FROM UNNEST`.
pub(super) async fn insert_items_from(
    tx: &mut Transaction<'_, Postgres>,
    backfill_id: &str,
    items: &[SnapshotEntry],
    first_ord: i64,
    now: i64,
) -> Result<()> {
    let ranks = company_ranks(tx, backfill_id, items).await?;
    for (chunk_no, chunk) in items.chunks(INSERT_CHUNK).enumerate() {
        let ids: Vec<&str> = chunk.iter().map(|e| e.id.as_str()).collect();
        let nums: Vec<Option<&str>> = chunk.iter().map(|e| e.number.as_deref()).collect();
        let companies: Vec<Option<&str>> = chunk.iter().map(|e| e.company.as_deref()).collect();
        let at = chunk_no * INSERT_CHUNK;
        sqlx::query(
            "INSERT INTO backfill_items (backfill_id, ord, entity_id, entity_number, company, company_rank, status, updated_at) \
             SELECT $1, $2 + u.n - 1, u.entity_id, u.entity_number, u.company, u.company_rank, 'pending', $3 \
             FROM UNNEST($4::text[], $5::text[], $6::text[], $7::bigint[]) WITH ORDINALITY AS u(entity_id, entity_number, company, company_rank, n)",
        )
        .bind(backfill_id)
        .bind(first_ord + at as i64)
        .bind(now)
        .bind(&ids)
        .bind(&nums)
        .bind(&companies)
        .bind(&ranks[at..at + chunk.len()])
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl_store!(PgStore);
idempotency_queries!(sqlx::Postgres);
psa_change_queries!(sqlx::Postgres);
sealing_writes!(sqlx::Postgres, " FOR UPDATE");
tenant_queries!(sqlx::Postgres);
execution_queries!(sqlx::Postgres, " FOR UPDATE");
workflow_queries!(sqlx::Postgres, " FOR UPDATE");
integration_queries!(sqlx::Postgres, " FOR UPDATE OF b", " FOR UPDATE");
control_queries!(sqlx::Postgres);
triage_queries!(sqlx::Postgres);
notification_queries!(sqlx::Postgres);
backfill_queries!(sqlx::Postgres, " FOR UPDATE OF b");
