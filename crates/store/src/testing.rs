//! Test support (cargo feature `testing`): a fresh, empty, migrated store of either backend,
//! for the store's own tests and for the API and orchestrator suites.
//!
//! ```ignore
//! use neo_store::testing::{fresh_store, Backend};
//! let Some(t) = fresh_store(Backend::Postgres).await else { return }; // PostgreSQL skipped
//! t.store.ping().await.unwrap();
//! ```
//!
//! * SQLite: a file in a temporary directory, removed on drop.
//! * PostgreSQL: `CREATE DATABASE neo_test_<uuid>` on the server named by
//!   `NEO_TEST_DATABASE_URL` (default [`DEFAULT_PG_URL`]), dropped on drop (best-effort,
//!   `WITH (FORCE)`). When the server is unreachable, [`fresh_store`] panics if `CI=true` and
//!   otherwise prints a loud message and returns `None`, so the test can return early.
//!
//! Every store opens with [`test_sealer`], a fixed master key, so suites that create
//! integrations and webhook workflows work as they would in production.
//!
//! [`backend_tests!`](crate::backend_tests) turns `async fn name(Backend)` cases into one
//! `#[tokio::test]` per backend.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor};

use crate::{connect_with, MasterKey, Sealer, Store};

/// The fixed master key of the test stores (never use it outside tests).
pub const TEST_MASTER_KEY_HEX: &str =
    "74657374206b657920666f72206e656f2d6261636b66696c6c20746573747321";

/// The sealer of the test stores: [`TEST_MASTER_KEY_HEX`].
pub fn test_sealer() -> Arc<Sealer> {
    Arc::new(Sealer::new(
        MasterKey::from_hex(TEST_MASTER_KEY_HEX).expect("a valid test key"),
    ))
}

async fn connect(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    connect_with(url, Some(test_sealer())).await
}

/// The server the throw-away PostgreSQL databases are created on, unless
/// `NEO_TEST_DATABASE_URL` names another.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const PG_URL_ENV: &str = "NEO_TEST_DATABASE_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh store and what to clean up when it is dropped.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// The URL the store was opened with: open it again ([`TestStore::reopen`], or
    /// `neo_store::connect_with` and [`test_sealer`]) to act as a second process.
    pub url: String,
    pub backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, db: String },
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .finish()
    }
}

impl TestStore {
    /// Another store on the same database (another pool: as another replica would).
    pub async fn reopen(&self) -> Arc<dyn Store> {
        connect(&self.url).await.expect("reopen the test store")
    }

    /// Opens the same database with another master key (or none); the error is the store's.
    pub async fn reopen_with(&self, sealer: Option<Arc<Sealer>>) -> anyhow::Result<Arc<dyn Store>> {
        connect_with(&self.url, sealer).await
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, db } = &self.cleanup {
            drop_pg_database(admin_url, db);
        }
    }
}

/// Drops a test database, best-effort. Blocking: it may run inside a runtime (from `Drop`),
/// so it works from a thread of its own.
pub fn drop_pg_database(admin_url: &str, db: &str) {
    let (admin_url, db) = (admin_url.to_owned(), db.to_owned());
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                let _ = c
                    .execute(&*format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                    .await;
                let _ = c.close().await;
            }
        });
    })
    .join();
}

/// The PostgreSQL server URL of the tests.
pub fn pg_admin_url() -> String {
    std::env::var(PG_URL_ENV).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `url` with its database name replaced by `db` (query string kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    format!("{}/{db}{query}", &base[..authority_end])
}

/// Creates an empty PostgreSQL database; when the server is unreachable, panics if
/// `required` (or in CI), else prints a loud message and returns `None`.
async fn create_pg_database(required: bool) -> Option<(String, String, String)> {
    let admin_url = pg_admin_url();
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::PgConnection::connect(&admin_url),
    )
    .await;
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return unreachable_pg(&admin_url, &e.to_string(), required),
        Err(_) => return unreachable_pg(&admin_url, "connect timed out", required),
    };
    let db = format!("neo_test_{}", uuid::Uuid::new_v4().simple());
    conn.execute(&*format!("CREATE DATABASE \"{db}\""))
        .await
        .expect("CREATE DATABASE for a test");
    let _ = conn.close().await;
    let url = with_database(&admin_url, &db);
    Some((admin_url, db, url))
}

fn unreachable_pg<T>(url: &str, err: &str, required: bool) -> Option<T> {
    if required {
        panic!("{BACKEND_ENV}=postgres but PostgreSQL is unreachable at {url} ({err})");
    }
    if in_ci() {
        panic!("PostgreSQL is unreachable at {url} ({err}) and CI=true: the PostgreSQL tests cannot be skipped");
    }
    eprintln!(
        "\n**********************************************************************\n\
         ** PostgreSQL unreachable at {url}: {err}\n\
         ** SKIPPING this PostgreSQL store test (set {PG_URL_ENV} to a server;\n\
         ** with CI=true this is a failure).\n\
         **********************************************************************\n"
    );
    None
}

/// The instant the store suites count from, plus `secs`: 2026-03-02T10:00:00Z + `secs`.
pub fn at(secs: i64) -> jiff::Timestamp {
    let t0: jiff::Timestamp = "2026-03-02T10:00:00Z".parse().expect("a valid instant");
    t0.checked_add(jiff::SignedDuration::from_secs(secs))
        .expect("within range")
}

/// A [`fresh_store`] with tenant `acme` and one ENABLED ticket workflow named `name` at
/// `credit_tier`, running `executor`: the store, the tenant's id and the workflow's id.
pub async fn store_with_workflow(
    backend: Backend,
    name: &str,
    credit_tier: i64,
    executor: serde_json::Value,
) -> Option<(TestStore, String, i64)> {
    use neo_domain::backfill::{AutonomyType, EntityType, WorkflowState};
    let t = fresh_store(backend).await?;
    let tenant = t.store.ensure_tenant("acme", at(0)).await.unwrap().id;
    let wf = t
        .store
        .insert_workflow(
            &tenant,
            crate::NewWorkflow {
                name: name.into(),
                description: None,
                autonomy_type: AutonomyType::ChainedActions,
                entity_type: EntityType::Ticket,
                state: WorkflowState::Enabled,
                credit_tier,
                executor,
            },
            at(0),
        )
        .await
        .unwrap()
        .id;
    Some((t, tenant, wf))
}

/// A fresh, empty, migrated store. `None` only for PostgreSQL when the server is unreachable
/// outside CI (the caller returns early: the test is skipped).
pub async fn fresh_store(backend: Backend) -> Option<TestStore> {
    open_store(backend, false).await
}

async fn open_store(backend: Backend, required: bool) -> Option<TestStore> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("neo.db").display());
            let store = connect(&url).await.expect("open SQLite test store");
            Some(TestStore {
                store,
                url,
                backend,
                cleanup: Cleanup::Sqlite(dir),
            })
        }
        Backend::Postgres => {
            let (admin_url, db, url) = create_pg_database(required).await?;
            let store = match connect(&url).await {
                Ok(s) => s,
                Err(e) => {
                    drop_pg_database(&admin_url, &db);
                    panic!("open PostgreSQL test store: {e:#}");
                }
            };
            let cleanup = Cleanup::Postgres { admin_url, db };
            Some(TestStore {
                store,
                url,
                backend,
                cleanup,
            })
        }
    }
}

/// An upgrade: a fresh database migrated with only the first `upto` migrations of `backend`,
/// given `seed` (SQL written against that older schema), then opened as a store, which applies
/// the remaining migrations. `None` as for [`fresh_store`].
pub async fn upgraded_store(backend: Backend, upto: usize, seed: &str) -> Option<TestStore> {
    upgraded_store_seeded_at(backend, upto, upto, seed).await
}

/// How many migrations `backend` has: its schema versions are 1 to this.
pub fn migration_count(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => crate::sqlite::MIGRATOR.migrations.len(),
        Backend::Postgres => crate::postgres::MIGRATOR.migrations.len(),
    }
}

/// [`upgraded_store`] for a deployment whose data was written at schema `seeded_at` (SQL
/// against that schema), then carried by its migrations to schema `upto` (the release it runs
/// now), then opened by this one. So one seed serves every earlier version.
pub async fn upgraded_store_seeded_at(
    backend: Backend,
    seeded_at: usize,
    upto: usize,
    seed: &str,
) -> Option<TestStore> {
    assert!(seeded_at <= upto, "data is written before it is migrated");
    let older = |m: &sqlx::migrate::Migrator, n: usize| sqlx::migrate::Migrator {
        migrations: m.migrations[..n].to_vec().into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    let (url, cleanup) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("neo.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.expect("SQLite");
            older(&crate::sqlite::MIGRATOR, seeded_at)
                .run(&mut c)
                .await
                .expect("older migrations");
            sqlx::raw_sql(seed).execute(&mut c).await.expect("seed");
            older(&crate::sqlite::MIGRATOR, upto)
                .run(&mut c)
                .await
                .expect("the release's migrations");
            c.close().await.expect("close");
            (url, Cleanup::Sqlite(dir))
        }
        Backend::Postgres => {
            let (admin_url, db, url) = create_pg_database(false).await?;
            let cleanup = Cleanup::Postgres { admin_url, db };
            let mut c = sqlx::PgConnection::connect(&url).await.expect("PostgreSQL");
            older(&crate::postgres::MIGRATOR, seeded_at)
                .run(&mut c)
                .await
                .expect("older migrations");
            sqlx::raw_sql(seed).execute(&mut c).await.expect("seed");
            older(&crate::postgres::MIGRATOR, upto)
                .run(&mut c)
                .await
                .expect("the release's migrations");
            c.close().await.expect("close");
            (url, cleanup)
        }
    };
    let store = connect(&url).await.expect("open (and upgrade) the store");
    Some(TestStore {
        store,
        url,
        backend,
        cleanup,
    })
}

/// Turns `async fn case(backend: Backend)` functions into one `#[tokio::test]` per backend:
/// `mod sqlite { fn case }` and `mod postgres { fn case }`. The cases must be in scope where
/// the macro is invoked, and the crate using it needs `tokio` with `macros` and `rt-multi-thread`.
#[macro_export]
macro_rules! backend_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::testing::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::testing::Backend::Postgres).await
                }
            )*
        }
    };
}

pub use crate::backend_tests;

/// Asserts that a backfill's counters equal its items' real statuses: pending, in flight,
/// succeeded, failed, skipped and cancelled each count exactly the items in that status, and
/// `total_items` counts them all.
pub fn assert_counters_match(b: &crate::Backfill, items: &[crate::Item]) {
    use neo_domain::backfill::ItemStatus;
    let count = |s: ItemStatus| items.iter().filter(|i| i.status == s).count() as i64;
    let counters = [
        ("pending", b.pending_count, count(ItemStatus::Pending)),
        ("in_flight", b.in_flight_count, count(ItemStatus::InFlight)),
        ("succeeded", b.succeeded_count, count(ItemStatus::Succeeded)),
        ("failed", b.failed_count, count(ItemStatus::Failed)),
        ("skipped", b.skipped_count, count(ItemStatus::Skipped)),
        ("cancelled", b.cancelled_count, count(ItemStatus::Cancelled)),
        ("total_items", b.total_items, items.len() as i64),
    ];
    for (name, counter, real) in counters {
        assert_eq!(counter, real, "{}: {name} counter vs items", b.id);
    }
}

/// Reads a backfill and all its items and [`assert_counters_match`]; returns the backfill.
pub async fn assert_counters_exact(
    store: &dyn Store,
    tenant_id: &str,
    backfill_id: &str,
) -> crate::Backfill {
    let b = store
        .backfill(tenant_id, backfill_id)
        .await
        .expect("read the backfill")
        .expect("the backfill exists");
    let items = store
        .list_items(
            tenant_id,
            backfill_id,
            &crate::ItemFilter::default(),
            None,
            10_000_000,
        )
        .await
        .expect("list the items")
        .items;
    assert_counters_match(&b, &items);
    b
}

/// The variable that picks the backend of the API, orchestrator and PSA test suites.
pub const BACKEND_ENV: &str = "NEO_TEST_BACKEND";

/// The backend the API, orchestrator and PSA suites run on: `NEO_TEST_BACKEND` = `sqlite`
/// (the default) or `postgres`. `./scripts/test` runs those suites once per backend.
pub fn suite_backend() -> Backend {
    match std::env::var(BACKEND_ENV).as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") => Backend::Postgres,
        Ok(other) => panic!("{BACKEND_ENV}={other}: expected sqlite or postgres"),
    }
}

/// A fresh store of [`suite_backend`]. A suite asked to run on PostgreSQL never skips: an
/// unreachable server is a failure.
pub async fn suite_store() -> TestStore {
    open_store(suite_backend(), true)
        .await
        .expect("a test store")
}

/// The outcomes that settle `claimed`, each as `how` says (what an executor reported).
pub fn outcomes(
    claimed: &[crate::Claimed],
    how: impl Fn(&crate::Claimed) -> crate::Settlement,
) -> Vec<crate::Outcome> {
    claimed
        .iter()
        .map(|c| crate::Outcome {
            backfill_id: c.backfill_id.clone(),
            ord: c.ord,
            execution_id: c.execution_id.clone(),
            settlement: how(c),
            attempt: Default::default(),
        })
        .collect()
}
