//! Backups of the embedded SQLite database, and the one read `export` makes before it knows a
//! backfill's tenant.
//!
//! A file copy (`cp`) of a database that `serve` is writing is not a backup: the newest commits
//! live in the `-wal` file, and pages copied while a checkpoint runs can come from different
//! commits. So the copy is made by SQLite itself (`VACUUM INTO`), inside one read transaction:
//! WAL lets that reader see one commit while the writer carries on, so the service never stops
//! and the copy is exactly the database as of one commit (counters and items agree).
//!
//! Restoring is the opposite problem: nothing may have the target open, or the process holding
//! it would go on writing to a file that is no longer the database (or its `-wal` would be
//! replayed onto the restored one). A connection in every WAL process holds a shared lock on
//! the file for as long as it is open, so taking an exclusive lock is a reliable "is anyone
//! there" test; the same exclusive connection then folds the old file's log into it, so the
//! copy kept aside is complete on its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteLockingMode};
use sqlx::{ConnectOptions, Connection};

use crate::sealed_rows::{verify_key_check, KEY_CHECK};
use crate::{MasterKey, Sealer, Unavailable};

/// What a neo-backfill SQLite file holds, as far as a backup or a restore reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSummary {
    /// The newest schema migration applied.
    pub schema_version: i64,
    pub backfills: i64,
    /// Items of every backfill (their `total_items`, summed).
    pub items: i64,
    /// The id of the master key whose check the database holds: the key its secrets are
    /// sealed with (`None`: no key has opened it yet, so nothing is sealed).
    pub sealed_with: Option<String>,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// Tables every neo-backfill database has, whatever its schema version.
const NEO_TABLES: [&str; 5] = [
    "_sqlx_migrations",
    "server_settings",
    "tenants",
    "backfills",
    "backfill_items",
];

/// The file of a `sqlite://PATH` URL; an error for an in-memory database (nothing to copy).
pub fn sqlite_file(url: &str) -> anyhow::Result<PathBuf> {
    let opts = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("{url:?} is not a SQLite database URL"))?;
    let path = opts.get_filename();
    if url.contains(":memory:") || url.contains("mode=memory") || path.as_os_str().is_empty() {
        anyhow::bail!("{url:?} is an in-memory database: there is no file to back up or restore");
    }
    Ok(path.to_path_buf())
}

fn file_options(path: &Path) -> SqliteConnectOptions {
    // A copy of a large database, or a wait on a lock, is slow on purpose: no "slow
    // statement" warnings in an operator's terminal.
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(10))
        .disable_statement_logging()
}

async fn open_file(path: &Path) -> anyhow::Result<SqliteConnection> {
    if !path.is_file() {
        anyhow::bail!("there is no database file at {}", path.display());
    }
    SqliteConnection::connect_with(&file_options(path))
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// Refuses a `path` that exists, or whose directory does not: the commands that write a file
/// (`backup`, `export`) never overwrite one.
pub fn check_new_file(path: &Path, command: &str) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!(
            "{} exists: {command} never overwrites a file; choose a new name",
            path.display()
        );
    }
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        anyhow::bail!("the directory {} does not exist", dir.display());
    }
    Ok(())
}

/// A name beside `path` for a file being written, so that `path` itself appears complete or
/// not at all.
pub fn temporary_beside(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "neo".into());
    path.with_file_name(format!(
        ".{name}.{what}-{}.tmp",
        uuid::Uuid::new_v4().simple()
    ))
}

/// Gives the finished file `tmp` the name `path`, refusing to replace a file created there
/// meanwhile (a hard link fails where a rename would overwrite), and makes the new name
/// durable.
pub fn publish(tmp: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", tmp.display()))?;
    std::fs::hard_link(tmp, path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{} was created by something else meanwhile; nothing was replaced",
            path.display()
        ),
        _ => anyhow::anyhow!("cannot create {}: {e}", path.display()),
    })?;
    let _ = std::fs::remove_file(tmp);
    sync_dir(path);
    Ok(())
}

/// Makes a rename or a new name in `path`'s directory durable (best effort: not every
/// filesystem syncs directories).
pub fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Copies the SQLite database of `url` into the new file `to` as of one commit, while other
/// processes keep reading and writing it. The copy is written beside `to` and named `to` only
/// once it is complete and checked (SQLite's quick check, its schema, and `key`, when given,
/// against the database's master key check). Refuses when `to` exists.
pub async fn sqlite_backup(
    url: &str,
    to: &Path,
    key: Option<&MasterKey>,
) -> anyhow::Result<SqliteSummary> {
    check_new_file(to, "backup")?;
    let source = sqlite_file(url)?;
    let tmp = temporary_beside(to, "backup");
    let made = async {
        let mut c = open_file(&source).await?;
        // One read transaction: the copy is the database as of one commit, and the writer
        // carries on beside it (WAL).
        sqlx::query("VACUUM INTO $1")
            .bind(
                tmp.to_str()
                    .context("the backup's path is not valid UTF-8")?,
            )
            .execute(&mut c)
            .await
            .with_context(|| format!("copying {} into {}", source.display(), tmp.display()))?;
        c.close().await?;
        // A backup is one self-contained file (no `-wal` beside it once opened).
        let mut t = open_file(&tmp).await?;
        sqlx::query("PRAGMA journal_mode = DELETE")
            .execute(&mut t)
            .await?;
        t.close().await?;
        let summary = inspect_sqlite(&tmp, key, false)
            .await
            .context("checking the copy")?;
        publish(&tmp, to)?;
        Ok(summary)
    }
    .await;
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made
}

/// Checks that `path` is a sound neo-backfill SQLite database this release can run (SQLite's
/// integrity check, or its quick check unless `thorough`; its tables; no schema migration
/// newer than this release knows) and, with `key`, that `key` opens its secrets; says what it
/// holds. Reads only. The errors name no file: the caller says which.
pub async fn inspect_sqlite(
    path: &Path,
    key: Option<&MasterKey>,
    thorough: bool,
) -> anyhow::Result<SqliteSummary> {
    let mut c = open_file(path).await?;
    let checked = inspect_on(&mut c, key, thorough).await;
    let _ = c.close().await;
    let mut summary = checked?;
    summary.bytes = std::fs::metadata(path)?.len();
    Ok(summary)
}

async fn inspect_on(
    c: &mut SqliteConnection,
    key: Option<&MasterKey>,
    thorough: bool,
) -> anyhow::Result<SqliteSummary> {
    let check = if thorough {
        "PRAGMA integrity_check"
    } else {
        "PRAGMA quick_check"
    };
    let problems: Vec<String> = sqlx::query_scalar(check)
        .fetch_all(&mut *c)
        .await
        .map_err(|e| anyhow::anyhow!("the file is not a readable SQLite database ({e})"))?;
    if problems != ["ok"] {
        let first: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
        anyhow::bail!(
            "the file fails SQLite's integrity check ({}): it is damaged; use another backup",
            first.join("; ")
        );
    }
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut *c)
            .await?;
    if let Some(missing) = NEO_TABLES.iter().find(|t| !tables.iter().any(|n| n == *t)) {
        anyhow::bail!(
            "the file is a SQLite database but not a neo-backfill one (it has no {missing} table)"
        );
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *c)
            .await?;
    let migrator = &crate::sqlite::MIGRATOR;
    if let Some(v) = applied
        .iter()
        .find(|v| !migrator.migrations.iter().any(|m| m.version == **v))
    {
        anyhow::bail!(crate::newer_release(*v, migrator));
    }
    let (backfills, items): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(total_items), 0) FROM backfills")
            .fetch_one(&mut *c)
            .await?;
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
            .bind(KEY_CHECK)
            .fetch_optional(&mut *c)
            .await?;
    let sealed_with = stored.as_deref().map(|s| {
        String::from_utf8_lossy(s)
            .strip_prefix(crate::secrets::SEALED_PREFIX)
            .and_then(|s| s.split('.').next())
            .unwrap_or("unknown")
            .to_owned()
    });
    if let (Some(key), Some(stored)) = (key, &stored) {
        verify_key_check(&Sealer::new(key.clone()), stored).map_err(anyhow::Error::new)?;
    }
    Ok(SqliteSummary {
        schema_version: applied.last().copied().unwrap_or(0),
        backfills,
        items,
        sealed_with,
        bytes: 0,
    })
}

/// Makes sure no other process has the database at `path` open (a running `serve` or `worker`
/// does: the error says to stop them), then folds its write-ahead log into the file and leaves
/// it in rollback-journal mode, so that the file alone is the whole database and can be moved.
pub async fn sqlite_take_offline(path: &Path) -> anyhow::Result<()> {
    let in_use = || {
        anyhow::anyhow!(
            "{} is in use: a running serve or worker has it open; stop serve and worker first, \
             then run restore again",
            path.display()
        )
    };
    let busy = |e: &sqlx::Error| crate::classify(e) == Some(Unavailable::Busy);
    let opts = file_options(path)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::from_secs(2));
    let mut c = match SqliteConnection::connect_with(&opts).await {
        Err(e) if busy(&e) => return Err(in_use()),
        r => r.with_context(|| format!("opening {}", path.display()))?,
    };
    let taken = async {
        // In exclusive locking mode the first read takes the file's exclusive lock, which no
        // other open connection lets go.
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut c).await?;
        sqlx::query("SELECT COUNT(*) FROM sqlite_master")
            .execute(&mut c)
            .await?;
        sqlx::query("COMMIT").execute(&mut c).await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = DELETE")
            .fetch_one(&mut c)
            .await?;
        Ok::<_, sqlx::Error>(mode)
    }
    .await;
    let _ = c.close().await;
    match taken {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => Ok(()),
        Ok(_) => Err(in_use()),
        Err(e) if busy(&e) => Err(in_use()),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "{} exists but cannot be opened as a SQLite database",
            path.display()
        ))),
    }
}

/// Files SQLite keeps beside a database (`-wal`, `-shm`, `-journal`): left behind by a process
/// that had the old file open, they would be replayed onto a new file of the same name.
pub fn remove_sidecar_files(path: &Path) -> anyhow::Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(anyhow::anyhow!(
                    "cannot remove {}: {e}",
                    Path::new(&p).display()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Copies `from` to the new file `to`, synced, with `to` created readable by its owner only.
pub fn copy_private(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let mut src =
        std::fs::File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut dst = opts
        .open(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    let n = std::io::copy(&mut src, &mut dst)?;
    dst.flush()?;
    dst.sync_all()?;
    Ok(n)
}

/// The tenant of backfill `backfill_id` in the database at `url` (SQLite or PostgreSQL),
/// without creating or migrating anything: `None` when there is no such backfill.
pub async fn backfill_tenant(url: &str, backfill_id: &str) -> anyhow::Result<Option<String>> {
    const SQL: &str = "SELECT tenant_id FROM backfills WHERE id = $1";
    let found = if url.starts_with("sqlite:") {
        let path = sqlite_file(url)?;
        let mut c = open_file(&path).await?;
        let r = sqlx::query_scalar(SQL)
            .bind(backfill_id)
            .fetch_optional(&mut c)
            .await;
        let _ = c.close().await;
        r
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let mut c = sqlx::PgConnection::connect(url).await?;
        let r = sqlx::query_scalar(SQL)
            .bind(backfill_id)
            .fetch_optional(&mut c)
            .await;
        let _ = c.close().await;
        r
    } else {
        anyhow::bail!(
            "unsupported database URL scheme in {url:?}: use sqlite://PATH or postgres://…"
        )
    };
    found.context("reading the backfill (is this a neo-backfill database?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wal_connection(path: &Path) -> SqliteConnection {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        SqliteConnection::connect_with(&opts).await.unwrap()
    }

    #[test]
    fn sqlite_files_of_urls() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/neo/neo.db?mode=rwc").unwrap(),
            PathBuf::from("/var/lib/neo/neo.db")
        );
        assert_eq!(
            sqlite_file("sqlite://./a%23b.db").unwrap(),
            PathBuf::from("./a#b.db")
        );
        let e = sqlite_file("sqlite::memory:").unwrap_err().to_string();
        assert!(e.contains("in-memory"), "{e}");
    }

    /// A backup is one file as of one commit, checked, never written over an existing file.
    #[tokio::test]
    async fn a_backup_is_one_checked_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("neo.db");
        let url = format!("sqlite://{}", db.display());
        let store = crate::SqliteStore::open(&url).await.unwrap();
        let to = dir.path().join("b.db");
        let s = sqlite_backup(&url, &to, None).await.unwrap();
        let newest = crate::sqlite::MIGRATOR
            .migrations
            .iter()
            .map(|m| m.version)
            .max();
        assert_eq!(Some(s.schema_version), newest);
        assert_eq!((s.backfills, s.items, s.sealed_with.clone()), (0, 0, None));
        assert_eq!(s.bytes, std::fs::metadata(&to).unwrap().len());
        let e = sqlite_backup(&url, &to, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("never overwrites"), "{e}");
        let e = sqlite_backup(&url, &dir.path().join("no/b.db"), None).await;
        assert!(e.unwrap_err().to_string().contains("does not exist"));
        drop(store);
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("b.db"))
            .collect();
        files.sort();
        assert_eq!(files, ["b.db"], "no -wal, no temporary file");
        assert_eq!(inspect_sqlite(&to, None, true).await.unwrap(), s);
    }

    /// Another open connection makes the file in use; once it is closed, the log is folded
    /// into the file, which then stands alone.
    #[tokio::test]
    async fn taking_a_database_offline() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("neo.db");
        let mut other = wal_connection(&db).await;
        sqlx::query("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('in the log')")
            .execute(&mut other)
            .await
            .unwrap();
        let e = sqlite_take_offline(&db).await.unwrap_err().to_string();
        assert!(e.contains("stop serve and worker first"), "{e}");
        let wal = with_suffix(&db, "-wal");
        assert!(wal.exists());
        // A crashed process's leftovers: the file and its log (closing the last connection
        // would fold the log itself).
        std::fs::copy(&db, dir.path().join("copy.db")).unwrap();
        std::fs::copy(&wal, with_suffix(&dir.path().join("copy.db"), "-wal")).unwrap();
        other.close().await.unwrap();
        let copy = dir.path().join("copy.db");
        sqlite_take_offline(&copy).await.unwrap();
        assert!(!with_suffix(&copy, "-wal").exists());
        let opts = SqliteConnectOptions::new().filename(&copy).read_only(true);
        let mut c = SqliteConnection::connect_with(&opts).await.unwrap();
        let v: String = sqlx::query_scalar("SELECT v FROM t")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(v, "in the log");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(mode, "delete");
    }

    fn with_suffix(p: &Path, s: &str) -> PathBuf {
        let mut o = p.as_os_str().to_owned();
        o.push(s);
        PathBuf::from(o)
    }

    #[tokio::test]
    async fn the_tenant_of_a_backfill_without_creating_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.db");
        let url = format!("sqlite://{}", missing.display());
        let e = backfill_tenant(&url, "bf_x").await.unwrap_err().to_string();
        assert!(e.contains("no database file"), "{e}");
        assert!(!missing.exists());
        let db = dir.path().join("neo.db");
        let url = format!("sqlite://{}", db.display());
        drop(crate::SqliteStore::open(&url).await.unwrap());
        assert_eq!(backfill_tenant(&url, "bf_x").await.unwrap(), None);
    }
}
