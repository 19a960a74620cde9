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

mod backfills;
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
        self.do_insert_workflow(tenant_id, w, now).await
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
        self.do_delete_workflow(tenant_id, id, now).await
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
        self.do_rotate_master_key(new).await
    }

    async fn delete_integration(&self, tenant_id: &str, now: Timestamp) -> Result<bool> {
        self.do_delete_integration(tenant_id, now).await
    }

    async fn create_backfill_idempotent(
        &self,
        b: NewBackfill,
        idem: Option<&NewIdempotency<'_>>,
    ) -> Result<Backfill> {
        self.do_create_backfill_idempotent(b, idem).await
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
        self.do_list_backfills(tenant_id, f, before_id, limit).await
    }

    async fn list_items(
        &self,
        tenant_id: &str,
        backfill_id: &str,
        statuses: &[ItemStatus],
        after_ord: Option<i64>,
        limit: usize,
    ) -> Result<Page<Item>> {
        self.do_list_items(tenant_id, backfill_id, statuses, after_ord, limit)
            .await
    }

    async fn signal_backfill(
        &self,
        tenant_id: &str,
        id: &str,
        signal: Signal,
        actor: &str,
        now: Timestamp,
    ) -> Result<(Backfill, SignalOutcome), SignalError> {
        self.do_signal_backfill(tenant_id, id, signal, actor, now)
            .await
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
        self.do_rerun_failed_idempotent(tenant_id, source_id, new_id, created_by, now, idem)
            .await
    }

    async fn delete_backfill(&self, tenant_id: &str, id: &str) -> Result<(), DeleteBackfillError> {
        self.do_delete_backfill(tenant_id, id).await
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
        self.do_finish_execution(tenant_id, id, status, error, now)
            .await
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
        self.do_claim_items(backfill_id, worker, limit, now, lease_until)
            .await
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
        self.do_reap_expired_leases(now).await
    }

    async fn release_leases(&self, worker: &str, now: Timestamp) -> Result<u64> {
        self.do_release_leases(worker, now).await
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
        self.do_append_items(backfill_id, items, read_from, checkpoint, complete, now)
            .await
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
