//! `neo-backfill`: the one binary. `serve` runs the HTTP API; `migrate`, `keys`, `tenants`,
//! `secrets` and `openapi` are operator commands. Every flag can also be set by its `NEO_*`
//! environment variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use jiff::{SignedDuration, Timestamp};
use neo_api::auth::{mint_key, EntraConfig};
use neo_api::{ApiConfig, AppState};
use neo_domain::clock::{rfc3339, Clock, SystemClock};
use neo_store::{MasterKey, Sealer, Store};

mod demo;

const DEFAULT_DB: &str = "sqlite://./neo-backfill.db";

#[derive(Parser, Debug)]
#[command(
    name = "neo-backfill",
    version,
    about = "Backfill orchestrator for MSP automation: the Neo backfills API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct DbArgs {
    /// Database URL: `sqlite://PATH` (created if missing).
    #[arg(long, env = "NEO_DATABASE_URL", default_value = DEFAULT_DB)]
    database_url: String,
}

/// The master key of the secrets in the database (commands that read or write them).
#[derive(clap::Args, Debug, Clone)]
struct KeyArgs {
    /// File holding the master key that seals PSA credentials and webhook secrets in the
    /// database (64 hex characters; `secrets generate-key` makes one). Default for SQLite:
    /// `<database file>.master-key`, generated on first use. PostgreSQL needs this.
    #[arg(long, env = "NEO_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
}

impl KeyArgs {
    fn key(&self, db: &DbArgs) -> anyhow::Result<MasterKey> {
        neo_store::secrets::master_key_for(&db.database_url, self.master_key_file.as_deref())
    }

    /// The store with its secrets sealed by this key.
    async fn open(&self, db: &DbArgs) -> anyhow::Result<Arc<dyn Store>> {
        let sealer = Arc::new(Sealer::new(self.key(db)?));
        neo_store::connect_with(&db.database_url, Some(sealer))
            .await
            .with_context(|| format!("opening {}", redact_url(&db.database_url)))
    }
}

#[derive(clap::Args, Debug)]
struct MigrateArgs {
    #[command(flatten)]
    db: DbArgs,
    /// As for `serve`; on PostgreSQL without it, only the schema is migrated (no secret is
    /// checked or sealed).
    #[command(flatten)]
    key: KeyArgs,
    /// List the migrations that would run, and run none (nor create the database).
    #[arg(long)]
    dry_run: bool,
}

/// Orchestrator settings (shared by `serve` and `worker`).
#[derive(clap::Args, Debug, Clone)]
struct OrchestratorArgs {
    /// How long a claim holds an item before another worker may take it back.
    #[arg(long, env = "NEO_LEASE_SECS", default_value_t = 30)]
    lease_secs: i64,
    /// How often the orchestrator looks at the database when nothing woke it.
    #[arg(long, env = "NEO_POLL_INTERVAL_MS", default_value_t = 250)]
    poll_interval_ms: u64,
    /// Attempts per item before a transient executor failure counts as failed.
    #[arg(long, env = "NEO_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: i64,
    /// First retry delay ceiling (doubles per attempt, full jitter).
    #[arg(long, env = "NEO_BACKOFF_BASE_MS", default_value_t = 1000)]
    backoff_base_ms: i64,
    /// Largest retry delay.
    #[arg(long, env = "NEO_BACKOFF_CAP_MS", default_value_t = 60_000)]
    backoff_cap_ms: i64,
    /// Consecutive failed executions after which a backfill pauses itself.
    #[arg(long, env = "NEO_BREAKER_THRESHOLD", default_value_t = 25)]
    breaker_threshold: i64,
    /// How long an asynchronous (202) webhook execution may take to report completion.
    #[arg(long, env = "NEO_CALLBACK_DEADLINE_SECS", default_value_t = 3600)]
    callback_deadline_secs: i64,
    /// Default webhook timeout (a workflow's executor `timeout_ms` overrides it).
    #[arg(long, env = "NEO_WEBHOOK_TIMEOUT_MS", default_value_t = 30_000)]
    webhook_timeout_ms: u64,
    /// How long SIGTERM waits for in-flight executions before releasing their leases.
    #[arg(long, env = "NEO_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// Let webhooks and PSA calls target private, loopback, link-local and CGNAT addresses
    /// and `localhost` (refused by default: SSRF guard, checked when a URL is saved and on
    /// every resolved address at connect time). `--webhook-allow-private` and
    /// `NEO_WEBHOOK_ALLOW_PRIVATE` are older names of the same switch.
    #[arg(
        long,
        alias = "webhook-allow-private",
        env = "NEO_EGRESS_ALLOW_PRIVATE"
    )]
    egress_allow_private: bool,
    /// Most executions one tenant may have running in this process (fair dispatch: tenants
    /// take turns at claims, and one tenant's backlog cannot take every slot).
    #[arg(long, env = "NEO_TENANT_MAX_IN_FLIGHT", default_value_t = 500)]
    tenant_max_in_flight: usize,
    /// Most executions this process runs at once, all tenants together.
    #[arg(long, env = "NEO_PROCESS_MAX_IN_FLIGHT", default_value_t = 5000)]
    process_max_in_flight: usize,
    /// Largest PSA answer read, in bytes (a page, a count, a token); a larger one fails the
    /// read with a clear error.
    #[arg(long, env = "NEO_PSA_MAX_RESPONSE_BYTES", default_value_t = 16 << 20)]
    psa_max_response_bytes: usize,
}

/// `NEO_WEBHOOK_ALLOW_PRIVATE`, the older name of `NEO_EGRESS_ALLOW_PRIVATE`.
fn legacy_allow_private() -> bool {
    std::env::var("NEO_WEBHOOK_ALLOW_PRIVATE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        )
    })
}

impl OrchestratorArgs {
    fn allow_private(&self) -> bool {
        self.egress_allow_private || legacy_allow_private()
    }

    fn psa_policy(&self) -> neo_psa::http::HttpPolicy {
        neo_psa::http::HttpPolicy {
            max_response_bytes: self.psa_max_response_bytes.max(1024),
            ..Default::default()
        }
    }

    fn egress(&self) -> neo_egress::Egress {
        neo_egress::Egress::new(neo_egress::EgressPolicy::new(self.allow_private()))
    }
    fn config(&self) -> anyhow::Result<neo_orchestrator::OrchestratorConfig> {
        if self.lease_secs <= 0 || self.max_attempts <= 0 || self.breaker_threshold <= 0 {
            bail!("--lease-secs, --max-attempts and --breaker-threshold must be positive");
        }
        if self.tenant_max_in_flight == 0 || self.process_max_in_flight == 0 {
            bail!("--tenant-max-in-flight and --process-max-in-flight must be positive");
        }
        Ok(neo_orchestrator::OrchestratorConfig {
            lease: SignedDuration::from_secs(self.lease_secs),
            poll_interval: std::time::Duration::from_millis(self.poll_interval_ms.max(10)),
            max_attempts: self.max_attempts,
            backoff_base: SignedDuration::from_millis(self.backoff_base_ms.max(0)),
            backoff_cap: SignedDuration::from_millis(self.backoff_cap_ms.max(0)),
            breaker_threshold: self.breaker_threshold,
            callback_deadline: SignedDuration::from_secs(self.callback_deadline_secs.max(1)),
            webhook_timeout: std::time::Duration::from_millis(self.webhook_timeout_ms.max(1)),
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace_secs),
            egress_allow_private: self.allow_private(),
            tenant_max_in_flight: self.tenant_max_in_flight,
            process_max_in_flight: self.process_max_in_flight,
            ..Default::default()
        })
    }
}

#[derive(clap::Args, Debug)]
struct WorkerArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    orchestrator: OrchestratorArgs,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    orchestrator: OrchestratorArgs,
    /// Address to listen on (`127.0.0.1:0` picks a free port; the log says which).
    #[arg(long, env = "NEO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    key: KeyArgs,
    /// Requests per tenant per rate-limit window.
    #[arg(long, env = "NEO_RATE_LIMIT", default_value_t = 1200)]
    rate_limit: u32,
    /// Length of the rate-limit window in seconds.
    #[arg(long, env = "NEO_RATE_LIMIT_WINDOW_SECS", default_value_t = 60)]
    rate_limit_window_secs: i64,
    /// Verify answers WARNING above this many matching entities.
    #[arg(long, env = "NEO_VERIFY_SOFT_LIMIT", default_value_t = 1000)]
    verify_soft_limit: i64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "NEO_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Seconds a client has to send a request's headers (also closes idle kept-alive
    /// connections).
    #[arg(long, env = "NEO_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Seconds a client has, after the headers, to send the whole body (else 408).
    #[arg(long, env = "NEO_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    body_read_timeout_secs: u64,
    /// Trust `X-Forwarded-For` / `X-Forwarded-Proto` from a reverse proxy in front (client
    /// address of the sign-in limit, `Secure` cookies). Off: both headers are ignored.
    #[arg(long, env = "NEO_BEHIND_PROXY")]
    behind_proxy: bool,
    /// Accepted Entra ID token issuers (comma list), e.g. https://login.microsoftonline.com/<tid>/v2.0.
    #[arg(long, env = "NEO_ENTRA_ISSUERS", value_delimiter = ',')]
    entra_issuers: Vec<String>,
    /// Accepted Entra ID token audiences (comma list).
    #[arg(long, env = "NEO_ENTRA_AUDIENCES", value_delimiter = ',')]
    entra_audiences: Vec<String>,
    /// JWKS URL of the Entra ID tenant(s), e.g. https://login.microsoftonline.com/common/discovery/v2.0/keys.
    #[arg(long, env = "NEO_ENTRA_JWKS_URL")]
    entra_jwks_url: Option<String>,
    /// App role that may manage API keys over HTTP.
    #[arg(long, env = "NEO_ENTRA_ADMIN_ROLE", default_value = "Neo.Admin")]
    entra_admin_role: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP API and the orchestrator (creates and migrates the database if needed).
    Serve(ServeArgs),
    /// Run the orchestrator alone (no HTTP API) against the same database.
    Worker(WorkerArgs),
    /// Create or upgrade the database schema (and seal any secret stored in plaintext), then exit.
    Migrate(MigrateArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage tenants.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Manage the master key that seals the secrets in the database.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Everything in one command: a PSA simulator, the service, a demo tenant, workflow and
    /// backfill, with progress in the terminal.
    Demo(demo::DemoArgs),
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
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
enum SecretsCommand {
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
enum TenantsCommand {
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

fn init_logs(to_stdout: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NEO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let b = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false);
    if to_stdout {
        b.with_writer(std::io::stdout).init();
    } else {
        b.with_writer(std::io::stderr).init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Demo(_)) && std::env::var_os("NEO_LOG").is_none() {
        // The demo's terminal is for its progress; logs only for warnings.
        std::env::set_var("NEO_LOG", "warn");
    }
    init_logs(matches!(
        cli.command,
        Command::Serve(_) | Command::Worker(_)
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve(a) => serve(a, clock).await,
        Command::Worker(a) => worker(a, clock).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Migrate(MigrateArgs {
            db, dry_run: true, ..
        }) => {
            let pending = neo_store::pending_migrations(&db.database_url).await?;
            if pending.is_empty() {
                println!("database at {} is up to date", db.database_url);
            } else {
                println!(
                    "would apply {} migration(s) to {}:",
                    pending.len(),
                    db.database_url
                );
                for (version, description) in pending {
                    println!("  {version:04} {description}");
                }
            }
            Ok(())
        }
        Command::Migrate(MigrateArgs { db, key, .. }) => {
            let keyless = key.master_key_file.is_none() && !db.database_url.starts_with("sqlite:");
            if keyless {
                neo_store::connect(&db.database_url).await?;
            } else {
                key.open(&db).await?;
            }
            println!("database at {} is migrated", db.database_url);
            if keyless {
                println!("(no --master-key-file: secrets were neither checked nor sealed)");
            }
            Ok(())
        }
        Command::Secrets { command } => secrets(command).await,
        Command::Openapi => {
            println!("{}", neo_api::openapi::document_json());
            Ok(())
        }
        Command::Tenants {
            command:
                TenantsCommand::SetAllowance {
                    tenant,
                    credits,
                    db,
                },
        } => {
            let (store, t) = tenant_named(&db, &tenant).await?;
            store.set_monthly_allowance(&t.id, credits).await?;
            println!(
                "tenant {} ({}) may spend {credits} credits a month",
                t.name, t.id
            );
            Ok(())
        }
        Command::Tenants {
            command: TenantsCommand::LinkEntra { tenant, tid, db },
        } => {
            let (store, t) = tenant_named(&db, &tenant).await?;
            store.set_tenant_entra_tid(&t.id, Some(&tid)).await?;
            println!(
                "tenant {} ({}) is linked to Entra tenant {tid}",
                t.name, t.id
            );
            Ok(())
        }
        Command::Keys { command } => keys(command, clock).await,
    }
}

/// The store of `db` and its tenant named `name` (an error naming it when there is none).
async fn tenant_named(
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

async fn keys(cmd: KeysCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
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

async fn secrets(cmd: SecretsCommand) -> anyhow::Result<()> {
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
fn replace_key_file(path: &Path, from: &Path) -> anyhow::Result<()> {
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

async fn serve(a: ServeArgs, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let entra = match (
        a.entra_jwks_url,
        a.entra_issuers.is_empty(),
        a.entra_audiences.is_empty(),
    ) {
        (None, true, true) => None,
        (Some(jwks_url), false, false) => Some(EntraConfig {
            issuers: a.entra_issuers,
            audiences: a.entra_audiences,
            jwks_url,
            admin_role: a.entra_admin_role,
        }),
        _ => bail!("Entra ID needs all of --entra-jwks-url, --entra-issuers and --entra-audiences"),
    };
    if a.rate_limit_window_secs <= 0 {
        bail!("--rate-limit-window-secs must be positive");
    }
    if a.header_read_timeout_secs == 0 || a.body_read_timeout_secs == 0 {
        bail!("--header-read-timeout-secs and --body-read-timeout-secs must be positive");
    }
    let store = a.key.open(&a.db).await?;
    let cfg = ApiConfig {
        rate_limit: a.rate_limit,
        rate_window: SignedDuration::from_secs(a.rate_limit_window_secs),
        verify_soft_limit: a.verify_soft_limit,
        max_body_bytes: a.max_body_bytes,
        entra,
        egress_allow_private: a.orchestrator.allow_private(),
        psa_policy: a.orchestrator.psa_policy(),
        header_read_timeout: std::time::Duration::from_secs(a.header_read_timeout_secs),
        body_read_timeout: std::time::Duration::from_secs(a.body_read_timeout_secs),
        behind_proxy: a.behind_proxy,
    };
    let service = Service::start(store, clock, cfg, a.orchestrator.config()?, a.listen).await?;
    tracing::info!(addr = %service.addr, database = %redact_url(&a.db.database_url), "listening");
    service.run_until(shutdown_signal()).await
}

/// The HTTP API and the orchestrator on one store: what `serve` and `demo` run.
pub struct Service {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    listener: tokio::net::TcpListener,
    orchestrator: neo_orchestrator::Orchestrator,
}

impl Service {
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cfg: ApiConfig,
        orch_cfg: neo_orchestrator::OrchestratorConfig,
        listen: SocketAddr,
    ) -> anyhow::Result<Self> {
        let source = Arc::new(neo_psa::source::PsaSource::new(
            store.clone(),
            cfg.psa_policy.clone(),
            neo_egress::Egress::new(neo_egress::EgressPolicy::new(orch_cfg.egress_allow_private)),
        ));
        let state = AppState::new(store.clone(), clock.clone(), cfg).await?;
        let orchestrator =
            neo_orchestrator::Orchestrator::with_source(store, clock, orch_cfg, source);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        Ok(Self {
            addr: listener.local_addr()?,
            state,
            listener,
            orchestrator,
        })
    }

    /// Serves until `stop` resolves, then stops the orchestrator gracefully.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let orch_task = tokio::spawn(self.orchestrator.run(self.state.wake.clone(), stop_rx));
        // Idempotency keys replay for 24 h; older ones are deleted hourly.
        let purge = tokio::spawn(
            neo_api::routes::backfills::purge_idempotency_keys_periodically(
                self.state.clone(),
                std::time::Duration::from_secs(3600),
            ),
        );
        let header_read_timeout = self.state.cfg.header_read_timeout;
        let app = neo_api::router(self.state);
        let served = neo_api::server::serve(self.listener, app, header_read_timeout, stop).await;
        purge.abort();
        served?;
        let _ = stop_tx.send(true);
        let _ = orch_task.await;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn worker(a: WorkerArgs, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let store = a.key.open(&a.db).await?;
    let source = Arc::new(neo_psa::source::PsaSource::new(
        store.clone(),
        a.orchestrator.psa_policy(),
        a.orchestrator.egress(),
    ));
    let orchestrator =
        neo_orchestrator::Orchestrator::with_source(store, clock, a.orchestrator.config()?, source);
    tracing::info!(worker = orchestrator.worker_id(), database = %redact_url(&a.db.database_url), "worker started");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(orchestrator.run(Arc::new(tokio::sync::Notify::new()), stop_rx));
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = task.await;
    Ok(())
}

/// Drops credentials from a database URL before it is logged.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
