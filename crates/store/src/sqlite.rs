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
        let sealer = self.sealer.as_deref();
        check_can_seal(sealer, &w.executor)?;
        // The secret is sealed for the row's id, known after the insert: the row is inserted
        // without it, then sealed, in one transaction (plaintext never reaches the file).
        let secret = executor_secret(&w.executor).is_some();
        let unsealed = if secret {
            with_executor_secret(&w.executor, Value::Null)
        } else {
            w.executor.clone()
        };
        let mut tx = self.tx().await?;
        // `execute`, not `RETURNING` with `fetch_one`: a row taken before the statement ends
        // hides a failed write (disk full).
        let id = sqlx::query("INSERT INTO workflows (tenant_id, name, description, autonomy_type, entity_type, state, credit_tier, executor, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(tenant_id)
            .bind(&w.name)
            .bind(&w.description)
            .bind(w.autonomy_type.as_str())
            .bind(w.entity_type.as_str())
            .bind(w.state.as_str())
            .bind(w.credit_tier)
            .bind(unsealed.to_string())
            .bind(to_ms(now))
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
        if secret {
            sqlx::query("UPDATE workflows SET executor = ? WHERE id = ?")
                .bind(seal_executor(sealer, tenant_id, id, &w.executor)?.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let r = sqlx::query("SELECT * FROM workflows WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = map_workflow(&r)?;
        out.executor = w.executor;
        Ok(out)
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
        let mut tx = self.tx().await?;
        let n = sqlx::query("DELETE FROM workflows WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let active: Vec<String> = sqlx::query_scalar("SELECT id FROM backfills WHERE tenant_id = ? AND target_workflow_id = ? AND state IN ('DRAFT', 'RUNNING', 'PAUSED')")
            .bind(tenant_id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        for b in active {
            fail_backfill(&mut tx, &b, "the target workflow was deleted", to_ms(now)).await?;
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
        upsert_integration(&self.write, sealer, tenant_id, psa, &config, &secrets, now).await
    }

    async fn integration(&self, tenant_id: &str) -> Result<Option<Integration>> {
        select_integration(&self.write, tenant_id).await
    }

    async fn integration_secrets(&self, tenant_id: &str) -> Result<Option<Value>> {
        select_integration_secrets(&self.write, self.sealer.as_deref(), tenant_id).await
    }

    async fn rotate_master_key(&self, new: &Sealer) -> Result<SecretsReport> {
        let old = self.sealer.as_deref().ok_or_else(|| {
            StoreError::Secret("no master key configured: rotation needs the current key".into())
        })?;
        let mut tx = self.tx().await?;
        let check: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM server_settings WHERE name = ?")
                .bind(KEY_CHECK)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(v) = check {
            verify_key_check(old, &v)?;
        }
        let report = reseal_all(&mut tx, Some(old), new).await?;
        put_key_check(&mut tx, new).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn delete_integration(&self, tenant_id: &str, now: Timestamp) -> Result<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query("DELETE FROM integrations WHERE tenant_id = ?")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        // Backfills over an explicit id list do not need the PSA; the others cannot go on.
        let active: Vec<String> = sqlx::query_scalar("SELECT b.id FROM backfills b JOIN backfill_filters f ON f.backfill_id = b.id WHERE b.tenant_id = ? AND b.state IN ('DRAFT', 'RUNNING', 'PAUSED') AND json_extract(f.filter_spec, '$.entity_ids') IS NULL")
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await?;
        for b in active {
            fail_backfill(
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
        let res = sqlx::query("INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, daily_execution_windows, timezone, max_in_flight, reprocess, total_estimated, total_items, snapshot_complete, pending_count, credits_per_entity, started_at, created_by, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
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
            .bind(n_items)
            .bind(b.credits_per_entity)
            .bind(started)
            .bind(&b.created_by)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await;
        match res {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyActive),
            r => r?,
        };
        insert_filter(&mut tx, &b.id, &b.filter_spec).await?;
        if let Some(ids) = &b.entity_ids {
            let pairs: Vec<(String, Option<String>)> =
                ids.iter().map(|i| (i.clone(), None)).collect();
            insert_items(&mut tx, &b.id, &pairs, now).await?;
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
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(BACKFILL_SELECT);
        qb.push(" WHERE b.tenant_id = ").push_bind(tenant_id);
        if let Some(before) = before_id {
            qb.push(" AND b.id < ").push_bind(before);
        }
        if let Some(w) = f.target_workflow_id {
            qb.push(" AND b.target_workflow_id = ").push_bind(w);
        }
        if !f.states.is_empty() {
            qb.push(" AND b.state IN (");
            let mut sep = qb.separated(", ");
            for s in &f.states {
                sep.push_bind(s.as_str());
            }
            qb.push(")");
        }
        qb.push(" ORDER BY b.id DESC LIMIT ")
            .push_bind(limit as i64 + 1);
        let rows = qb.build().fetch_all(&self.read).await?;
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
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT i.* FROM backfill_items i JOIN backfills b ON b.id = i.backfill_id WHERE b.tenant_id = ",
        );
        qb.push_bind(tenant_id);
        qb.push(" AND i.backfill_id = ").push_bind(backfill_id);
        qb.push(" AND i.ord > ").push_bind(after_ord.unwrap_or(-1));
        if !statuses.is_empty() {
            qb.push(" AND i.status IN (");
            let mut sep = qb.separated(", ");
            for s in statuses {
                sep.push_bind(s.as_str());
            }
            qb.push(")");
        }
        qb.push(" ORDER BY i.ord LIMIT ")
            .push_bind(limit as i64 + 1);
        let rows = qb.build().fetch_all(&self.read).await?;
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
        let b = fetch_backfill(&mut tx, tenant_id, id)
            .await?
            .ok_or(SignalError::NotFound)?;
        let outcome = apply_signal(b.state, signal).map_err(SignalError::Refused)?;
        let now_ms = to_ms(now);
        let to = match outcome {
            SignalOutcome::Transition(to) => to,
            SignalOutcome::NoOp => b.state,
        };
        if let SignalOutcome::Transition(to) = outcome {
            // `$N` placeholders (numbered by first appearance), so `$2` (now) can appear twice.
            let mut q = String::from("UPDATE backfills SET state = $1, updated_at = $2");
            if to == BackfillRunState::Running {
                q.push_str(", started_at = COALESCE(started_at, $2)");
            }
            if to == BackfillRunState::Cancelled {
                q.push_str(", completed_at = $2");
            }
            if signal == Signal::Resume {
                // Resume clears a pause reason (e.g. the circuit breaker's) and its streak.
                q.push_str(", error = NULL, consecutive_failures = 0");
            }
            q.push_str(" WHERE id = $3");
            sqlx::query(&q)
                .bind(to.as_str())
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            if to == BackfillRunState::Cancelled {
                cancel_pending(&mut tx, id, now_ms).await?;
            }
        }
        sqlx::query("INSERT INTO backfill_signals (backfill_id, signal, from_state, to_state, actor, created_at) VALUES (?, ?, ?, ?, ?, ?)")
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
        let src = fetch_backfill(&mut tx, tenant_id, source_id)
            .await?
            .ok_or(RerunError::NotFound)?;
        check_rerunnable(&src)?;
        let wf = sqlx::query("SELECT * FROM workflows WHERE tenant_id = ? AND id = ?")
            .bind(tenant_id)
            .bind(src.target_workflow_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let wf = check_rerun_workflow(wf.as_ref().map(map_workflow).transpose()?)?;
        let failed: Vec<(String, Option<String>)> = sqlx::query_as("SELECT entity_id, entity_number FROM backfill_items WHERE backfill_id = ? AND status = 'failed' ORDER BY ord")
            .bind(source_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let filter = rerun_filter(&failed);
        let now_ms = to_ms(now);
        let n = failed.len() as i64;
        let res = sqlx::query("INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, daily_execution_windows, timezone, max_in_flight, reprocess, total_estimated, total_items, snapshot_complete, pending_count, credits_per_entity, started_at, created_by, created_at, updated_at, parent_backfill_run_id) \
                     VALUES (?, ?, 'RUNNING', ?, ?, ?, ?, ?, 1, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)")
            .bind(new_id)
            .bind(tenant_id)
            .bind(src.target_workflow_id)
            .bind(src.entity_type.as_str())
            .bind(to_json_text(&src.daily_execution_windows)?)
            .bind(&src.timezone)
            .bind(src.max_in_flight)
            .bind(n)
            .bind(n)
            .bind(n)
            .bind(wf.credit_tier)
            .bind(now_ms)
            .bind(created_by)
            .bind(now_ms)
            .bind(now_ms)
            .bind(source_id)
            .execute(&mut *tx)
            .await;
        match res {
            Err(e) if is_unique_violation(&e) => return Err(RerunError::AlreadyActive),
            r => r.map_err(StoreError::from)?,
        };
        insert_filter(&mut tx, new_id, &filter).await?;
        insert_items(&mut tx, new_id, &failed, now_ms).await?;
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
        let b = fetch_backfill(&mut tx, tenant_id, id)
            .await?
            .ok_or(DeleteBackfillError::NotFound)?;
        if b.state != BackfillRunState::Draft {
            return Err(DeleteBackfillError::NotDraft(b.state));
        }
        sqlx::query("DELETE FROM backfills WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
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
        let error = error.map(sanitize);
        let error = error.as_deref();
        let mut tx = self.tx().await?;
        let Some(r) = sqlx::query("SELECT * FROM executions WHERE tenant_id = ? AND id = ?")
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
            Some(bid) => sqlx::query_as("SELECT backfill_id, ord FROM backfill_items WHERE backfill_id = ? AND execution_id = ? AND status IN ('pending', 'in_flight')")
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
                for b in touched {
                    complete_in_tx(&mut tx, &b, now_ms).await?;
                }
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
        let mut tx = self.tx().await?;
        let now_ms = to_ms(now);
        let Some(b) = sqlx::query("SELECT b.tenant_id, b.state, b.target_workflow_id, b.max_in_flight, b.in_flight_count, b.reprocess, w.name AS wf_name \
                                    FROM backfills b LEFT JOIN workflows w ON w.id = b.target_workflow_id AND w.tenant_id = b.tenant_id WHERE b.id = ?")
            .bind(backfill_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(ClaimResult::default());
        };
        let state: String = b.try_get("state")?;
        let max: i64 = b.try_get("max_in_flight")?;
        let in_flight: i64 = b.try_get("in_flight_count")?;
        let n = (max - in_flight).min(limit as i64);
        if state != "RUNNING" || n <= 0 {
            return Ok(ClaimResult::default());
        }
        let tenant: String = b.try_get("tenant_id")?;
        let workflow: i64 = b.try_get("target_workflow_id")?;
        let reprocess: bool = b.try_get("reprocess")?;
        let wf_name: Option<String> = b.try_get("wf_name")?;
        #[allow(clippy::type_complexity)]
        let rows: Vec<(i64, String, Option<String>, Option<String>, i64, bool)> = sqlx::query_as(
            "SELECT i.ord, i.entity_id, i.entity_number, i.execution_id, i.attempts, \
                    (NOT ?2 AND EXISTS (SELECT 1 FROM executions e WHERE e.tenant_id = ?3 AND e.agent_id = ?4 \
                                        AND e.entity_id = i.entity_id AND e.status = 'succeeded')) AS done_before \
             FROM backfill_items i \
             WHERE i.backfill_id = ?1 AND i.status = 'pending' AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= ?5) \
             ORDER BY i.ord LIMIT ?6",
        )
        .bind(backfill_id)
        .bind(reprocess)
        .bind(&tenant)
        .bind(workflow)
        .bind(now_ms)
        .bind(n)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(ClaimResult::default());
        }
        let mut out = ClaimResult::default();
        let mut skipped_ords = Vec::new();
        let mut rerun_execs = Vec::new();
        let mut new_execs = Vec::new();
        for (ord, entity_id, entity_number, execution_id, attempts, done_before) in rows {
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
            .execute(&mut *tx)
            .await?;
        }
        if !rerun_execs.is_empty() {
            sqlx::query("UPDATE executions SET status = 'running', attempts = attempts + 1, error = NULL, updated_at = ?1, \
                         started_at = COALESCE(started_at, ?1) WHERE id IN (SELECT value FROM json_each(?2))")
                .bind(now_ms)
                .bind(json_rows(&rerun_execs)?)
                .execute(&mut *tx)
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
                .execute(&mut *tx)
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
                .execute(&mut *tx)
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
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        let expired: Vec<(String, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT backfill_id, ord, lease_owner, execution_id FROM backfill_items \
             WHERE status = 'in_flight' AND lease_expires_at < ? ORDER BY backfill_id, ord",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
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
        let report = ReapReport {
            timed_out: applied.iter().filter(|a| **a).count() as u64,
            requeued: requeue_items(&mut tx, &leases, now_ms).await?,
        };
        for b in touched {
            complete_in_tx(&mut tx, &b, now_ms).await?;
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn release_leases(&self, worker: &str, now: Timestamp) -> Result<u64> {
        let now_ms = to_ms(now);
        let mut tx = self.tx().await?;
        let held: Vec<(String, i64, Option<String>)> = sqlx::query_as(
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
        let mut tx = self.tx().await?;
        let now_ms = to_ms(now);
        let (start, done, current): (i64, bool, Option<String>) = sqlx::query_as(
            "SELECT total_items, snapshot_complete, snapshot_checkpoint FROM backfills WHERE id = ?",
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
        sqlx::query("UPDATE backfills SET total_items = total_items + ?, pending_count = pending_count + ?, snapshot_complete = ?, \
                     snapshot_checkpoint = COALESCE(?, snapshot_checkpoint), \
                     total_estimated = CASE WHEN ? THEN total_items + ? ELSE total_estimated END, updated_at = ? WHERE id = ?")
            .bind(n)
            .bind(n)
            .bind(complete)
            .bind(checkpoint.map(|c| c.to_string()))
            .bind(complete)
            .bind(n)
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

/// Ends an active backfill FAILED with `error`: pending items are cancelled.
async fn fail_backfill(
    tx: &mut Transaction<'_, Sqlite>,
    id: &str,
    error: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE backfills SET state = 'FAILED', error = ?, completed_at = ?, updated_at = ? WHERE id = ?")
        .bind(error)
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    cancel_pending(tx, id, now).await
}

/// A JSON array for `json_each(?)`: SQLite has no array parameters, and one fixed statement per
/// kind of batch (whatever its size) keeps the prepared-statement cache warm.
fn json_rows<T: serde::Serialize>(rows: &[T]) -> Result<String> {
    to_json_text(&rows)
}

/// Applies outcomes to items, executions, counters, credit ledger and circuit breaker exactly
/// as applying them one by one in order would (see [`plan_settlement`]), in a fixed number of
/// set-based statements whatever the size of the batch. Returns whether each outcome applied
/// and the ids of the backfills it applied to; completion is the caller's.
async fn settle_batch(
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
    let backfills: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, state, consecutive_failures FROM backfills WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(json_rows(&bids)?)
    .fetch_all(&mut **tx)
    .await?;
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
    write_executions(tx, &plan.execs, &plan.credit_ids, now).await?;
    for (id, d) in plan.touched() {
        sqlx::query(
            "UPDATE backfills SET pending_count = pending_count + ?1, in_flight_count = in_flight_count + ?2, \
             succeeded_count = succeeded_count + ?3, failed_count = failed_count + ?4, cancelled_count = cancelled_count + ?5, \
             consecutive_failures = ?6, state = CASE WHEN ?8 IS NULL THEN state ELSE 'PAUSED' END, \
             error = COALESCE(?8, error), updated_at = ?7 WHERE id = ?9",
        )
        .bind(d.counter(COUNTERS[0]))
        .bind(d.counter(COUNTERS[1]))
        .bind(d.counter(COUNTERS[2]))
        .bind(d.counter(COUNTERS[3]))
        .bind(d.counter(COUNTERS[4]))
        .bind(d.streak)
        .bind(now)
        .bind(d.tripped.as_deref())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    let done = plan.applied_backfills();
    Ok((plan.applied, done))
}

/// Final statuses of execution rows, and the credit ledger entries of `credit_ids` (in order).
async fn write_executions(
    tx: &mut Transaction<'_, Sqlite>,
    execs: &[(String, ExecChange)],
    credit_ids: &[String],
    now: i64,
) -> Result<()> {
    if !execs.is_empty() {
        let rows: Vec<_> = execs
            .iter()
            .map(|(id, c)| (id, c.status, c.error.as_deref(), c.finished))
            .collect();
        sqlx::query(
            "UPDATE executions AS e SET status = v.value ->> 1, error = v.value ->> 2, updated_at = ?1, \
             finished_at = CASE WHEN v.value ->> 3 THEN ?1 ELSE e.finished_at END \
             FROM json_each(?2) AS v WHERE e.id = v.value ->> 0",
        )
        .bind(now)
        .bind(json_rows(&rows)?)
        .execute(&mut **tx)
        .await?;
    }
    if !credit_ids.is_empty() {
        // `WHERE true`: SQLite's upsert after a join needs a WHERE to parse.
        sqlx::query(
            "INSERT INTO credit_ledger (tenant_id, execution_id, agent_id, credits, created_at) \
             SELECT e.tenant_id, e.id, e.agent_id, COALESCE(w.credit_tier, 1), ?1 \
             FROM json_each(?2) AS v CROSS JOIN executions e ON e.id = v.value \
             LEFT JOIN workflows w ON w.id = e.agent_id WHERE true ORDER BY v.key \
             ON CONFLICT (execution_id) DO NOTHING",
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
async fn requeue_items(
    tx: &mut Transaction<'_, Sqlite>,
    items: &[(String, i64, Option<String>)],
    now: i64,
) -> Result<u64> {
    if items.is_empty() {
        return Ok(0);
    }
    let mut bids: Vec<&str> = items.iter().map(|i| i.0.as_str()).collect();
    bids.sort_unstable();
    bids.dedup();
    let states: HashMap<String, String> = sqlx::query_as(
        "SELECT id, state FROM backfills WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(json_rows(&bids)?)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    let mut cancel = Vec::new();
    let mut back = Vec::new();
    for (bid, ord, exec) in items {
        match states.get(bid).map(String::as_str) {
            Some(state @ ("CANCELLED" | "FAILED")) => cancel.push(Outcome {
                backfill_id: bid.clone(),
                ord: *ord,
                execution_id: exec.clone().unwrap_or_default(),
                settlement: Settlement::Cancelled(format!("the backfill is {state}")),
            }),
            _ => back.push((bid.as_str(), *ord)),
        }
    }
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

/// COMPLETED when RUNNING, snapshotted and every item settled.
async fn complete_in_tx(
    tx: &mut Transaction<'_, Sqlite>,
    backfill_id: &str,
    now: i64,
) -> Result<bool> {
    let n = sqlx::query("UPDATE backfills SET state = 'COMPLETED', completed_at = ?, updated_at = ? \
                         WHERE id = ? AND state = 'RUNNING' AND snapshot_complete = 1 AND pending_count = 0 AND in_flight_count = 0")
        .bind(now)
        .bind(now)
        .bind(backfill_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(n == 1)
}

idempotency_writes!(sqlx::Sqlite);

sealing_writes!(sqlx::Sqlite, "");

tenant_queries!(sqlx::Sqlite);

execution_queries!(sqlx::Sqlite);

workflow_queries!(sqlx::Sqlite, "");

integration_queries!(sqlx::Sqlite);
