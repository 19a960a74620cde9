//! The operator's commands on keys, tenants and the master key: each one opens the database,
//! does one thing and says what it did.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Subcommand;
use jiff::Timestamp;
use neo_api::auth::mint_key;
use neo_domain::clock::{rfc3339, Clock};
use neo_store::{MasterKey, Sealer};

use crate::args::{redact_url, DbArgs, KeyArgs, MigrateArgs};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key (and the tenant, if new). The plaintext key is the last line of stdout, shown once.
    Create {
        #[arg(long, env = "NEO_TENANT")]
        tenant: String,
        #[arg(long, env = "NEO_KEY_ENV", default_value = "live", value_parser = ["live", "test"])]
        env: String,
        /// RFC 3339 instant after which the key stops working.
        #[arg(long, env = "NEO_KEY_EXPIRES_AT")]
        expires_at: Option<Timestamp>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List a tenant's keys (never their secrets).
    List {
        #[arg(long, env = "NEO_TENANT")]
        tenant: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a key, effective immediately.
    Revoke {
        key_id: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Replace a key; the old one keeps working for 24 h. The new key is the last line of stdout.
    Rotate {
        key_id: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Re-wrap every sealed secret with a new master key, in one transaction. Stop `serve` and
    /// `worker` first, then restart them with the new key file.
    RotateMasterKey {
        /// File holding the new master key (make it with `secrets generate-key --out FILE`).
        #[arg(long, env = "NEO_NEW_MASTER_KEY_FILE")]
        new_key_file: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Make a fresh master key: printed (64 hex characters), or written to a new file that
    /// only its owner can read.
    GenerateKey {
        /// Write the key to this new file (0600; never overwritten) instead of stdout.
        #[arg(long, env = "NEO_KEY_OUT")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// Set the credits a tenant may spend per UTC month (its backfills pause with
    /// `allowance_exhausted` when they are spent; resume them after raising it).
    SetAllowance {
        #[arg(long, env = "NEO_TENANT")]
        tenant: String,
        /// Credits per month (0 or more).
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..=1_000_000_000_000))]
        credits: i64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Link a tenant to a Microsoft Entra ID tenant id (the `tid` claim of its users' tokens).
    LinkEntra {
        #[arg(long, env = "NEO_TENANT")]
        tenant: String,
        #[arg(long, env = "NEO_ENTRA_TID")]
        tid: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// The store of `db` and its tenant named `name` (an error naming it when there is none).
pub async fn tenant_named(
    db: &DbArgs,
    name: &str,
) -> anyhow::Result<(Arc<dyn neo_store::Store>, neo_store::Tenant)> {
    let store = neo_store::connect(&db.database_url).await?;
    let t = store
        .tenant_by_name(name)
        .await?
        .with_context(|| format!("no tenant named {name:?}"))?;
    Ok((store, t))
}

pub async fn keys(cmd: KeysCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let now = clock.now();
    match cmd {
        KeysCommand::Create {
            tenant,
            env,
            expires_at,
            db,
        } => {
            if tenant.trim().is_empty() {
                bail!("--tenant must not be empty");
            }
            if expires_at.is_some_and(|e| e <= now) {
                bail!("--expires-at must be in the future");
            }
            let store = neo_store::connect(&db.database_url).await?;
            let t = store.ensure_tenant(tenant.trim(), now).await?;
            let minted = mint_key(&t.id, &env, "cli", expires_at, now);
            let key = store.insert_api_key(minted.row).await?;
            println!("tenant: {} ({})", t.name, t.id);
            println!("key id: {}", key.id);
            println!(
                "expires: {}",
                key.expires_at
                    .map(rfc3339)
                    .unwrap_or_else(|| "never".into())
            );
            println!("The key below is shown once; store it now.");
            println!("{}", minted.plaintext);
            Ok(())
        }
        KeysCommand::List { tenant, db } => {
            let store = neo_store::connect(&db.database_url).await?;
            let t = store
                .tenant_by_name(&tenant)
                .await?
                .with_context(|| format!("no tenant named {tenant:?}"))?;
            println!(
                "{:<26} {:<5} {:<6} {:<21} {:<21} {:<21}",
                "ID", "ENV", "HINT", "CREATED", "EXPIRES", "REVOKED"
            );
            for k in store.list_api_keys(&t.id).await? {
                println!(
                    "{:<26} {:<5} …{:<5} {:<21} {:<21} {:<21}",
                    k.id,
                    k.env,
                    k.hint,
                    rfc3339(k.created_at),
                    k.expires_at.map(rfc3339).unwrap_or_else(|| "-".into()),
                    k.revoked_at.map(rfc3339).unwrap_or_else(|| "-".into())
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { key_id, db } => {
            let store = neo_store::connect(&db.database_url).await?;
            if store.api_key(&key_id).await?.is_none() {
                bail!("no key {key_id}");
            }
            if store.revoke_api_key(&key_id, now).await? {
                println!("key {key_id} is revoked");
            } else {
                println!("key {key_id} was already revoked");
            }
            Ok(())
        }
        KeysCommand::Rotate { key_id, db } => {
            let store = neo_store::connect(&db.database_url).await?;
            let old = store
                .api_key(&key_id)
                .await?
                .with_context(|| format!("no key {key_id}"))?;
            let created = neo_api::routes::keys::rotate_key(&store, &old, "cli", now)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("key id: {}", created.key.id);
            println!(
                "old key {key_id} keeps working until {}",
                rfc3339(now + neo_api::routes::keys::ROTATION_GRACE)
            );
            println!("The key below is shown once; store it now.");
            println!("{}", created.secret);
            Ok(())
        }
    }
}

pub async fn secrets(cmd: SecretsCommand) -> anyhow::Result<()> {
    match cmd {
        SecretsCommand::GenerateKey { out } => {
            let key = MasterKey::generate();
            match out {
                Some(path) => {
                    key.write_new(&path)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("wrote master key {} to {}", key.id(), path.display());
                }
                None => println!("{}", &*key.to_hex()),
            }
            Ok(())
        }
        SecretsCommand::RotateMasterKey {
            new_key_file,
            key,
            db,
        } => {
            let new = Sealer::new(MasterKey::load(&new_key_file)?);
            let old = key.key(&db)?;
            if old.id() == new.key_id() {
                bail!(
                    "{} holds the current master key {}: nothing to rotate",
                    new_key_file.display(),
                    old.id()
                );
            }
            let old_id = old.id().to_owned();
            let store = neo_store::connect_with(&db.database_url, Some(Arc::new(Sealer::new(old))))
                .await
                .with_context(|| format!("opening {}", redact_url(&db.database_url)))?;
            let r = store.rotate_master_key(&new).await?;
            println!(
                "re-wrapped {} secrets of {} integrations, {} webhook secrets and {} notification endpoint secrets, and the key check, with master key {} (was {old_id}), in one transaction",
                r.integration_secrets,
                r.integrations,
                r.workflows,
                r.notification_endpoints,
                new.key_id()
            );
            let default = neo_store::secrets::sqlite_key_path(&db.database_url);
            match (&key.master_key_file, default) {
                (None, Some(path)) => {
                    replace_key_file(&path, &new_key_file)?;
                    println!(
                        "{} now holds the new key; restart serve and worker",
                        path.display()
                    );
                }
                _ => println!(
                    "restart serve and worker with --master-key-file {} (the old key no longer opens this database)",
                    new_key_file.display()
                ),
            }
            Ok(())
        }
    }
}

/// Puts the key of `from` into `path` (the default key file of a SQLite database), atomically.
pub fn replace_key_file(path: &Path, from: &Path) -> anyhow::Result<()> {
    let key = MasterKey::load(from)?;
    let tmp = path.with_extension("master-key.new");
    let _ = std::fs::remove_file(&tmp);
    key.write_new(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| {
            format!(
                "the database is rotated, but {} could not be replaced: copy {} over it",
                path.display(),
                from.display()
            )
        })
}

/// `migrate`: apply the pending migrations (or, with `--dry-run`, list them).
pub async fn migrate(a: MigrateArgs) -> anyhow::Result<()> {
    let MigrateArgs { db, key, dry_run } = a;
    if dry_run {
        let pending = neo_store::pending_migrations(&db.database_url).await?;
        if pending.is_empty() {
            println!("database at {} is up to date", redact_url(&db.database_url));
        } else {
            println!(
                "would apply {} migration(s) to {}:",
                pending.len(),
                redact_url(&db.database_url)
            );
            for (version, description) in pending {
                println!("  {version:04} {description}");
            }
        }
        return Ok(());
    }
    let keyless = key.master_key_file.is_none() && !db.database_url.starts_with("sqlite:");
    if keyless {
        neo_store::connect(&db.database_url).await?;
    } else {
        key.open(&db).await?;
    }
    println!("database at {} is migrated", redact_url(&db.database_url));
    if keyless {
        println!("(no --master-key-file: secrets were neither checked nor sealed)");
    }
    Ok(())
}

pub async fn tenants(cmd: TenantsCommand) -> anyhow::Result<()> {
    match cmd {
        TenantsCommand::SetAllowance {
            tenant,
            credits,
            db,
        } => {
            let (store, t) = tenant_named(&db, &tenant).await?;
            store.set_monthly_allowance(&t.id, credits).await?;
            println!(
                "tenant {} ({}) may spend {credits} credits a month",
                t.name, t.id
            );
        }
        TenantsCommand::LinkEntra { tenant, tid, db } => {
            let (store, t) = tenant_named(&db, &tenant).await?;
            store.set_tenant_entra_tid(&t.id, Some(&tid)).await?;
            println!(
                "tenant {} ({}) is linked to Entra tenant {tid}",
                t.name, t.id
            );
        }
    }
    Ok(())
}
