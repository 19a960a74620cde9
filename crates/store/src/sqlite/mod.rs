//! The embedded SQLite store: one WAL-mode file, a single writer connection (writes are
//! serialised in-process and every write transaction starts with `BEGIN IMMEDIATE`, so a second
//! process waits on the busy timeout instead of failing) and a small pool of readers.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use neo_domain::backfill::{
    apply_signal, BackfillRunState, ExecutionStatus, ItemStatus, Signal, SignalOutcome,
};
use neo_domain::clock::to_ms;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::{BTreeMap, HashMap};

use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

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

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    sealer: Option<std::sync::Arc<Sealer>>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url` (`sqlite://path` or
    /// `sqlite::memory:` for a private in-memory database).
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_with(url, None).await
    }

    /// [`SqliteStore::open`] with the master key of the secrets: checks it against the
    /// database's key check (written if absent) and seals plaintext secrets.
    pub async fn open_with(
        url: &str,
        sealer: Option<std::sync::Arc<Sealer>>,
    ) -> anyhow::Result<Self> {
        let memory = url.contains(":memory:");
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&write).await?;
        let read = if memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts.read_only(true))
                .await?
        };
        let s = Self {
            write,
            read,
            sealer,
        };
        s.ensure_server_secret().await?;
        if let Some(sealer) = &s.sealer {
            s.ensure_sealed(sealer).await?;
        }
        Ok(s)
    }

    /// The key check, and every plaintext secret sealed, in one transaction.
    async fn ensure_sealed(&self, sealer: &Sealer) -> Result<()> {
        let mut tx = self.tx().await?;
        let check: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM server_settings WHERE name = ?")
                .bind(KEY_CHECK)
                .fetch_optional(&mut *tx)
                .await?;
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

    async fn ensure_server_secret(&self) -> anyhow::Result<()> {
        let secret = random_secret();
        sqlx::query("INSERT INTO server_settings (name, value) VALUES ('cursor_secret', ?) ON CONFLICT (name) DO NOTHING")
            .bind(&secret[..])
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn tx(&self) -> Result<Transaction<'static, Sqlite>> {
        let mut replaced = 0;
        loop {
            match self.write.begin_with("BEGIN IMMEDIATE").await {
                // A COMMIT that failed (disk full, I/O error) is rolled back by SQLite itself,
                // but sqlx still counts the transaction as open, so every later BEGIN on that
                // connection is refused. Replace it with a fresh one (while the disk stays
                // full, another failed commit may break the new one too).
                Err(sqlx::Error::InvalidSavePointStatement) if replaced < 5 => {
                    tracing::warn!("replacing the SQLite writer connection after a failed commit");
                    self.write.acquire().await?.close_on_drop();
                    replaced += 1;
                }
                r => return Ok(r?),
            }
        }
    }
}

/// Moves every pending item of a backfill to `cancelled` and fixes the counters.
async fn cancel_pending(tx: &mut Transaction<'_, Sqlite>, id: &str, now: i64) -> Result<()> {
    let n = sqlx::query("UPDATE backfill_items SET status = 'cancelled', updated_at = ? WHERE backfill_id = ? AND status = 'pending'")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected() as i64;
    sqlx::query("UPDATE backfills SET pending_count = pending_count - ?, cancelled_count = cancelled_count + ? WHERE id = ?")
        .bind(n)
        .bind(n)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A backfill's `filter_spec`, kept out of its row (migration 0005: SQLite rewrites a whole
/// row on every update, and the counters change on every claim and settlement).
async fn insert_filter(
    tx: &mut Transaction<'_, Sqlite>,
    backfill_id: &str,
    filter_spec: &Value,
) -> Result<()> {
    sqlx::query("INSERT INTO backfill_filters (backfill_id, filter_spec) VALUES (?, ?)")
        .bind(backfill_id)
        .bind(filter_spec.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_items(
    tx: &mut Transaction<'_, Sqlite>,
    backfill_id: &str,
    ids: &[(String, Option<String>)],
    now: i64,
) -> Result<()> {
    insert_items_from(tx, backfill_id, ids, 0, now).await
}

async fn insert_items_from(
    tx: &mut Transaction<'_, Sqlite>,
    backfill_id: &str,
    ids: &[(String, Option<String>)],
    first_ord: i64,
    now: i64,
) -> Result<()> {
    // SQLite allows 32,766 bound parameters; 4 per row.
    for (chunk_no, chunk) in ids.chunks(2000).enumerate() {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO backfill_items (backfill_id, ord, entity_id, entity_number, status, updated_at) ",
        );
        qb.push_values(chunk.iter().enumerate(), |mut b, (i, (id, num))| {
            b.push_bind(backfill_id)
                .push_bind(first_ord + (chunk_no * 2000 + i) as i64)
                .push_bind(id)
                .push_bind(num)
                .push("'pending'")
                .push_bind(now);
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn fetch_backfill(
    tx: &mut Transaction<'_, Sqlite>,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Backfill>> {
    let row = sqlx::query(&format!(
        "{BACKFILL_SELECT} WHERE b.tenant_id = ? AND b.id = ?"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(map_backfill).transpose()
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn server_secret(&self) -> Result<Vec<u8>> {
        let v: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM server_settings WHERE name = 'cursor_secret'")
                .fetch_one(&self.write)
                .await?;
        Ok(v)
    }

    async fn ensure_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant> {
        upsert_tenant(&self.write, name, now).await
    }

    async fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        select_tenant(&self.read, TENANT_BY_ID, id).await
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        select_tenant(&self.read, TENANT_BY_NAME, name).await
    }

    async fn tenant_by_entra_tid(&self, tid: &str) -> Result<Option<Tenant>> {
        select_tenant(&self.read, TENANT_BY_ENTRA_TID, tid).await
    }

    async fn set_tenant_entra_tid(&self, tenant_id: &str, tid: Option<&str>) -> Result<()> {
        update_tenant_entra_tid(&self.write, tenant_id, tid).await
    }

    async fn insert_api_key(&self, k: NewApiKey) -> Result<ApiKey> {
        insert_key(&self.write, &k).await?;
        self.api_key(&k.id).await?.ok_or(StoreError::NotFound)
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKey, Vec<u8>)>> {
        select_key_by_hash(&self.read, hash).await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>> {
        // The writer: a key read right after its insert or rotation.
        select_key(&self.write, id).await
    }

    async fn list_api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>> {
        select_keys(&self.read, tenant_id).await
    }

    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> Result<bool> {
        update_key_revoked(&self.write, id, now).await
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
        update_key_used(&self.write, id, now).await
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
        select_workflow(&self.write, self.sealer.as_deref(), tenant_id, id).await
    }

    async fn list_workflows(
        &self,
        tenant_id: &str,
        after_id: Option<i64>,
        limit: usize,
    ) -> Result<Page<Workflow>> {
        select_workflows(
            &self.read,
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
        upsert_integration(&self.write, sealer, tenant_id, psa, &config, &secrets, now).await
    }

    async fn integration(&self, tenant_id: &str) -> Result<Option<Integration>> {
        select_integration(&self.write, tenant_id).await
    }

    async fn integration_secrets(&self, tenant_id: &str) -> Result<Option<Value>> {
        select_integration_secrets(&self.write, self.sealer.as_deref(), tenant_id).await
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
            "{BACKFILL_SELECT} WHERE b.tenant_id = ? AND b.id = ?"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.read)
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
        insert_execution_row(&self.write, &e).await?;
        self.execution(&e.tenant_id, &e.id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn execution(&self, tenant_id: &str, id: &str) -> Result<Option<Execution>> {
        select_execution(&self.write, Some(tenant_id), id).await
    }

    async fn execution_by_id(&self, id: &str) -> Result<Option<Execution>> {
        select_execution(&self.write, None, id).await
    }

    async fn list_executions(
        &self,
        tenant_id: &str,
        f: &ExecutionFilter,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Page<Execution>> {
        select_executions(&self.read, tenant_id, f, before_id, limit).await
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
            .fetch_all(&self.read)
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
        for b in touched {
            complete_in_tx(&mut tx, &b, now_ms).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn heartbeat(&self, worker: &str, lease_until: Timestamp) -> Result<u64> {
        Ok(sqlx::query("UPDATE backfill_items SET lease_expires_at = ? WHERE status = 'in_flight' AND lease_owner = ?")
            .bind(to_ms(lease_until))
            .bind(worker)
            .execute(&self.write)
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
        let done = complete_in_tx(&mut tx, backfill_id, to_ms(now)).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn in_flight_items(
        &self,
        backfill_id: &str,
    ) -> Result<Vec<(i64, String, Option<String>)>> {
        let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as("SELECT ord, execution_id, lease_owner FROM backfill_items WHERE backfill_id = ? AND status = 'in_flight' ORDER BY ord")
            .bind(backfill_id)
            .fetch_all(&self.read)
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
        fail_backfill(&mut tx, backfill_id, &error, to_ms(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn credits_used(&self, tenant_id: &str, from: Timestamp, to: Timestamp) -> Result<i64> {
        let v: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(credits), 0) FROM credit_ledger WHERE tenant_id = ? AND created_at >= ? AND created_at < ?")
            .bind(tenant_id)
            .bind(to_ms(from))
            .bind(to_ms(to))
            .fetch_one(&self.read)
            .await?;
        Ok(v)
    }

    async fn idempotent_response(
        &self,
        tenant_id: &str,
        key: &str,
        not_before: Timestamp,
    ) -> Result<Option<IdempotentResponse>> {
        select_idempotent(&self.write, tenant_id, key, not_before).await
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
        delete_idempotency_keys(&self.write, before).await
    }
}

idempotency_writes!(sqlx::Sqlite);
sealing_writes!(sqlx::Sqlite, "");
tenant_queries!(sqlx::Sqlite);
execution_queries!(sqlx::Sqlite);
workflow_queries!(sqlx::Sqlite, "");
integration_queries!(sqlx::Sqlite);
