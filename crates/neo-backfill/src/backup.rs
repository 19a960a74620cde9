//! `backup` and `restore` of the embedded (SQLite) database. A backup is two files: the
//! database as of one commit, taken while `serve` runs, and a copy of the master key that
//! seals its secrets (a backup without its key restores a database whose PSA credentials and
//! webhook secrets cannot be opened). The key copy is as secret as the credentials themselves,
//! which is why the commands say where it went and that it belongs somewhere else than the
//! backup. PostgreSQL has its own tools for this (`pg_dump`, `pg_restore`); these commands only
//! point at them.
//!
//! Restore refuses rather than guesses: a file that is not a sound neo-backfill database, a
//! schema newer than this release, a target something still has open, a database or key it
//! would replace without `--force` (and with it, the old files are kept aside, not deleted).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use neo_store::backup::{
    check_new_file, inspect_sqlite, publish, remove_sidecar_files, sqlite_backup, sqlite_file,
    sqlite_take_offline, sync_dir, temporary_beside, SqliteSummary,
};
use neo_store::MasterKey;

use crate::args::{redact_url, DbArgs, KeyArgs};

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The backup file to write (must not exist). The master key in use is copied to
    /// `FILE.master-key` (0600): a secret, to be stored apart from the backup.
    #[arg(long, env = "NEO_BACKUP_TO")]
    pub to: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The backup file to restore (made by `backup`); `FILE.master-key`, when present, is
    /// restored as the database's key file. Stop `serve` and `worker` first.
    #[arg(long, env = "NEO_RESTORE_FROM")]
    pub from: PathBuf,
    /// Replace an existing database (and a different key file); the old files are kept as
    /// `<name>.before-restore-<UTC time>`.
    #[arg(long, env = "NEO_RESTORE_FORCE")]
    pub force: bool,
    #[command(flatten)]
    pub db: DbArgs,
    /// Where the restored database's key goes (default: `<database file>.master-key`, where
    /// `serve` looks for it).
    #[command(flatten)]
    pub key: KeyArgs,
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

fn only_sqlite(url: &str) -> anyhow::Result<()> {
    if url.starts_with("sqlite:") {
        Ok(())
    } else {
        bail!(
            "unsupported database URL scheme in {}: use sqlite://PATH",
            redact_url(url)
        )
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn describe(s: &SqliteSummary) -> String {
    format!(
        "{}, schema migration {}, {} backfills, {} items",
        human_size(s.bytes),
        s.schema_version,
        s.backfills,
        s.items
    )
}

/// Says that a key file is a secret and where it belongs.
fn key_is_secret(path: &Path) {
    println!(
        "{} is a SECRET: it opens every PSA credential and webhook secret in the database. \
         Store it separately from the backup file, somewhere safe (a password manager or secret \
         store); a restore needs both",
        path.display()
    );
}

pub async fn backup(a: BackupArgs) -> anyhow::Result<()> {
    let url = &a.db.database_url;
    if is_postgres(url) {
        bail!(
            "backup copies SQLite databases only; for PostgreSQL use its own tools, e.g. \
             `pg_dump --format=custom --file=neo-backfill.dump <database URL>` (a consistent \
             snapshot while serve runs), and back up the master key file (--master-key-file) \
             separately and safely: without it the secrets in the dump cannot be opened"
        );
    }
    only_sqlite(url)?;
    let key_copy = with_suffix(&a.to, ".master-key");
    check_new_file(&a.to, "backup")?;
    check_new_file(&key_copy, "backup")?;
    let source = sqlite_file(url)?;
    // The key in use: the configured file, else the one beside the database (never created
    // here: a new key would open nothing).
    let key_file = a.key.file(&a.db);
    let key = match &key_file {
        Some(p) if a.key.master_key_file.is_some() || p.exists() => Some(MasterKey::load(p)?),
        _ => None,
    };
    let started = Instant::now();
    let summary = sqlite_backup(url, &a.to, key.as_ref()).await?;
    let took = started.elapsed();
    let keyed = match (&key, &summary.sealed_with) {
        (Some(k), _) => k
            .write_new(&key_copy)
            .with_context(|| format!("writing {}", key_copy.display()))
            .map(|()| true),
        (None, Some(id)) => Err(anyhow::anyhow!(
            "the database's secrets are sealed with master key {id}, but there is no key file \
             at {}: pass --master-key-file with the file of key {id}",
            key_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )),
        (None, None) => Ok(false),
    };
    let keyed = match keyed {
        Ok(k) => k,
        Err(e) => {
            let _ = std::fs::remove_file(&a.to);
            return Err(e.context("no backup was kept"));
        }
    };
    println!(
        "backed up {} to {} in {:.1} s: {}",
        source.display(),
        a.to.display(),
        took.as_secs_f64(),
        describe(&summary)
    );
    match &key {
        Some(k) if keyed => {
            println!(
                "copied master key {} to {} (mode 0600)",
                k.id(),
                key_copy.display()
            );
            key_is_secret(&key_copy);
        }
        _ => println!("no master key file was copied: no secret is sealed in this database yet"),
    }
    Ok(())
}

/// What restore does with the key file.
enum KeyPlan {
    /// The key file in place is the right one (or there is none and nothing is sealed).
    Keep,
    /// Write the backup's key where there is none.
    Write(MasterKey),
    /// Keep the different key file aside and write the backup's key (`--force`).
    Replace(MasterKey),
}

pub async fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let url = &a.db.database_url;
    if is_postgres(url) {
        bail!(
            "restore writes SQLite databases only; for PostgreSQL stop serve and worker, restore \
             the dump with its own tools, e.g. `pg_restore --clean --if-exists --dbname <database \
             URL> neo-backfill.dump`, and start them with the master key file (--master-key-file) \
             that was in use when the dump was taken"
        );
    }
    only_sqlite(url)?;
    let target = sqlite_file(url)?;
    if !a.from.is_file() {
        bail!("there is no backup file at {}", a.from.display());
    }
    if target.exists() && std::fs::canonicalize(&target)? == std::fs::canonicalize(&a.from)? {
        bail!("{} is the database itself", a.from.display());
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!(
            "the database's directory {} does not exist: create it first",
            dir.display()
        );
    }
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let aside = |p: &Path| with_suffix(p, &format!(".before-restore-{stamp}"));
    if target.exists() && !a.force {
        bail!(
            "{} exists: restore replaces a database only with --force (the old file is then kept \
             as {}); stop serve and worker first",
            target.display(),
            aside(&target).display()
        );
    }

    let backup_key_file = with_suffix(&a.from, ".master-key");
    let backup_key = match backup_key_file.exists() {
        true => Some(MasterKey::load(&backup_key_file)?),
        false => None,
    };
    let key_dest = a
        .key
        .file(&a.db)
        .context("no place for the master key: pass --master-key-file")?;
    let existing_key = match key_dest.exists() {
        true => Some(MasterKey::load(&key_dest)?),
        false => None,
    };
    let plan = match (&backup_key, &existing_key) {
        (Some(b), Some(e)) if b.id() == e.id() => KeyPlan::Keep,
        (Some(b), Some(e)) if !a.force => bail!(
            "{} holds master key {}, but the backup's key ({}) is {}: restore replaces a key \
             file only with --force (the old one is then kept as {})",
            key_dest.display(),
            e.id(),
            backup_key_file.display(),
            b.id(),
            aside(&key_dest).display()
        ),
        (Some(b), Some(_)) => KeyPlan::Replace(b.clone()),
        (Some(b), None) => KeyPlan::Write(b.clone()),
        (None, _) => KeyPlan::Keep,
    };

    // The backup is copied beside the target and checked there, so that nothing of the
    // deployment changes until the copy is known to be sound.
    let tmp = temporary_beside(&target, "restore");
    let restored = async {
        let started = Instant::now();
        neo_store::backup::copy_private(&a.from, &tmp)?;
        let key = backup_key.as_ref().or(existing_key.as_ref());
        let summary = inspect_sqlite(&tmp, key, true)
            .await
            .map_err(|e| anyhow::anyhow!("{} cannot be restored: {e:#}", a.from.display()))?;
        if let (Some(id), None) = (&summary.sealed_with, key) {
            bail!(
                "the backup's secrets are sealed with master key {id}, but there is neither {} \
                 nor {}: put the file of key {id} at {} (or pass --master-key-file) and run \
                 restore again",
                backup_key_file.display(),
                key_dest.display(),
                key_dest.display()
            );
        }
        let mut kept = Vec::new();
        if target.exists() {
            sqlite_take_offline(&target).await?;
            let old = aside(&target);
            if old.exists() {
                bail!("{} exists: run restore again in a second", old.display());
            }
            std::fs::rename(&target, &old)
                .with_context(|| format!("moving {} aside", target.display()))?;
            kept.push(old);
        }
        remove_sidecar_files(&target)?;
        match &plan {
            KeyPlan::Keep => {}
            KeyPlan::Write(k) => k
                .write_new(&key_dest)
                .with_context(|| format!("writing {}", key_dest.display()))?,
            KeyPlan::Replace(k) => {
                let old = aside(&key_dest);
                std::fs::rename(&key_dest, &old)
                    .with_context(|| format!("moving {} aside", key_dest.display()))?;
                kept.push(old);
                k.write_new(&key_dest)
                    .with_context(|| format!("writing {}", key_dest.display()))?;
            }
        }
        publish(&tmp, &target)?;
        sync_dir(&key_dest);
        Ok((summary, kept, started.elapsed()))
    }
    .await;
    let (summary, kept, took) = match restored {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    println!(
        "restored {} to {} in {:.1} s: {}",
        a.from.display(),
        target.display(),
        took.as_secs_f64(),
        describe(&summary)
    );
    for old in &kept {
        println!("kept the previous file as {}", old.display());
    }
    match (&plan, &summary.sealed_with) {
        (KeyPlan::Write(k) | KeyPlan::Replace(k), _) => {
            println!(
                "restored master key {} to {} (mode 0600)",
                k.id(),
                key_dest.display()
            );
            key_is_secret(&key_dest);
        }
        (KeyPlan::Keep, Some(id)) => println!(
            "{} already holds the database's master key {id}",
            key_dest.display()
        ),
        (KeyPlan::Keep, None) => {}
    }
    println!("start serve and worker on {}", redact_url(url));
    Ok(())
}
