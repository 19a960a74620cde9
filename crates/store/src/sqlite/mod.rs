//! The embedded SQLite store: one WAL-mode file, a single writer connection (writes are
//! serialised in-process and every write transaction starts with `BEGIN IMMEDIATE`, so a second
//! process waits on the busy timeout instead of failing) and a small pool of readers.

use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use neo_domain::backfill::{
    apply_signal, check_editable, BackfillRunState, ExecutionStatus, Signal, SignalOutcome,
};
use neo_domain::clock::{from_ms, to_ms};
use neo_domain::windows::WorkflowDailyExecutionWindows;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::{BTreeMap, HashMap};

use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

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
use neo_domain::eta::Throughput;
use neo_domain::notify::EventType;

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
    /// Items were added to `backfill_items`: nothing to do (SQLite plans without
    /// statistics, preferring the indexes; see the PostgreSQL store's).
    async fn items_added(&self, _n: usize) {}

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
        crate::migrate(&MIGRATOR, &write).await?;
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

    async fn ensure_server_secret(&self) -> anyhow::Result<()> {
        let secret = random_secret();
        sqlx::query("INSERT INTO server_settings (name, value) VALUES ('cursor_secret', ?) ON CONFLICT (name) DO NOTHING")
            .bind(&secret[..])
            .execute(&self.write)
            .await?;
        Ok(())
    }

    fn reader(&self) -> &SqlitePool {
        &self.read
    }

    fn writer(&self) -> &SqlitePool {
        &self.write
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

/// Snapshot items, in chunks of a multi-row `VALUES` (SQLite has no array parameters).
pub(super) async fn insert_items_from(
    tx: &mut Transaction<'_, Sqlite>,
    backfill_id: &str,
    ids: &[SnapshotEntry],
    first_ord: i64,
    now: i64,
) -> Result<()> {
    let ranks = company_ranks(tx, backfill_id, ids).await?;
    // SQLite allows 32,766 bound parameters; 6 per row.
    for (chunk_no, chunk) in ids.chunks(2000).enumerate() {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO backfill_items (backfill_id, ord, entity_id, entity_number, company, company_rank, status, updated_at) ",
        );
        qb.push_values(chunk.iter().enumerate(), |mut b, (i, e)| {
            let at = chunk_no * 2000 + i;
            b.push_bind(backfill_id)
                .push_bind(first_ord + at as i64)
                .push_bind(&e.id)
                .push_bind(&e.number)
                .push_bind(&e.company)
                .push_bind(ranks[at])
                .push("'pending'")
                .push_bind(now);
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The states of these backfills. No row lock to take: the one writer connection already
/// serialises every write transaction.
pub(super) async fn lock_backfills(
    tx: &mut Transaction<'_, Sqlite>,
    ids: &[String],
) -> Result<HashMap<String, String>> {
    Ok(sqlx::query_as(
        "SELECT id, state FROM backfills WHERE id IN (SELECT value FROM json_each($1))",
    )
    .bind(json_rows(ids)?)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect())
}

/// The key check (serialised by the one writer, as [`lock_backfills`]).
pub(super) async fn lock_key_check(tx: &mut Transaction<'_, Sqlite>) -> Result<Option<Vec<u8>>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
            .bind(KEY_CHECK)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

impl_store!(SqliteStore);
idempotency_queries!(sqlx::Sqlite);
psa_change_queries!(sqlx::Sqlite);
sealing_writes!(sqlx::Sqlite, "");
tenant_queries!(sqlx::Sqlite);
execution_queries!(sqlx::Sqlite, "");
workflow_queries!(sqlx::Sqlite, "");
integration_queries!(sqlx::Sqlite, "", "");
control_queries!(sqlx::Sqlite);
triage_queries!(sqlx::Sqlite);
notification_queries!(sqlx::Sqlite);
backfill_queries!(sqlx::Sqlite, "");
