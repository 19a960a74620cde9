//! The flags of the commands that open the database or run the service, shared by them. Every
//! flag has a `NEO_*` environment variable and a key of the config file (see `config`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use jiff::SignedDuration;
use neo_store::{MasterKey, Sealer, Store};

pub const DEFAULT_DB: &str = "sqlite://./neo-backfill.db";

#[derive(clap::Args, Debug, Clone)]
pub struct DbArgs {
    /// Database URL: `sqlite://PATH` (created if missing).
    #[arg(long, env = "NEO_DATABASE_URL", default_value = DEFAULT_DB)]
    pub database_url: String,
}

/// The master key of the secrets in the database (commands that read or write them).
#[derive(clap::Args, Debug, Clone)]
pub struct KeyArgs {
    /// File holding the master key that seals PSA credentials and webhook secrets in the
    /// database (64 hex characters; `secrets generate-key` makes one). Default for SQLite:
    /// `<database file>.master-key`, generated on first use. PostgreSQL needs this.
    #[arg(long, env = "NEO_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key file of this deployment: the configured one, else (SQLite) the one beside the
    /// database file; `None` for PostgreSQL without `--master-key-file`.
    pub fn file(&self, db: &DbArgs) -> Option<PathBuf> {
        self.master_key_file
            .clone()
            .or_else(|| neo_store::secrets::sqlite_key_path(&db.database_url))
    }

    pub fn key(&self, db: &DbArgs) -> anyhow::Result<MasterKey> {
        neo_store::secrets::master_key_for(&db.database_url, self.master_key_file.as_deref())
    }

    /// The store with its secrets sealed by this key.
    pub async fn open(&self, db: &DbArgs) -> anyhow::Result<Arc<dyn Store>> {
        let sealer = Arc::new(Sealer::new(self.key(db)?));
        neo_store::connect_with(&db.database_url, Some(sealer))
            .await
            .with_context(|| format!("opening {}", redact_url(&db.database_url)))
    }
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// As for `serve`; on PostgreSQL without it, only the schema is migrated (no secret is
    /// checked or sealed).
    #[command(flatten)]
    pub key: KeyArgs,
    /// List the migrations that would run, and run none (nor create the database).
    #[arg(long)]
    pub dry_run: bool,
}

/// Orchestrator settings (shared by `serve` and `worker`).
#[derive(clap::Args, Debug, Clone)]
pub struct OrchestratorArgs {
    /// How long a claim holds an item before another worker may take it back.
    #[arg(long, env = "NEO_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: i64,
    /// How often the orchestrator looks at the database when nothing woke it.
    #[arg(long, env = "NEO_POLL_INTERVAL_MS", default_value_t = 250)]
    pub poll_interval_ms: u64,
    /// Attempts per item before a transient executor failure counts as failed.
    #[arg(long, env = "NEO_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: i64,
    /// First retry delay ceiling (doubles per attempt, full jitter).
    #[arg(long, env = "NEO_BACKOFF_BASE_MS", default_value_t = 1000)]
    pub backoff_base_ms: i64,
    /// Largest retry delay.
    #[arg(long, env = "NEO_BACKOFF_CAP_MS", default_value_t = 60_000)]
    pub backoff_cap_ms: i64,
    /// Consecutive failed executions after which a backfill pauses itself.
    #[arg(long, env = "NEO_BREAKER_THRESHOLD", default_value_t = 25)]
    pub breaker_threshold: i64,
    /// How long an asynchronous (202) webhook execution may take to report completion.
    #[arg(long, env = "NEO_CALLBACK_DEADLINE_SECS", default_value_t = 3600)]
    pub callback_deadline_secs: i64,
    /// Default webhook timeout (a workflow's executor `timeout_ms` overrides it).
    #[arg(long, env = "NEO_WEBHOOK_TIMEOUT_MS", default_value_t = 30_000)]
    pub webhook_timeout_ms: u64,
    /// How long SIGTERM waits for in-flight executions before releasing their leases.
    #[arg(long, env = "NEO_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Let webhooks and PSA calls target private, loopback, link-local and CGNAT addresses
    /// and `localhost` (refused by default: SSRF guard, checked when a URL is saved and on
    /// every resolved address at connect time). `--webhook-allow-private` and
    /// `NEO_WEBHOOK_ALLOW_PRIVATE` are older names of the same switch.
    #[arg(
        long,
        alias = "webhook-allow-private",
        env = "NEO_EGRESS_ALLOW_PRIVATE"
    )]
    pub egress_allow_private: bool,
    /// Most executions one tenant may have running in this process (fair dispatch: tenants
    /// take turns at claims, and one tenant's backlog cannot take every slot).
    #[arg(long, env = "NEO_TENANT_MAX_IN_FLIGHT", default_value_t = 500)]
    pub tenant_max_in_flight: usize,
    /// Most executions this process runs at once, all tenants together.
    #[arg(long, env = "NEO_PROCESS_MAX_IN_FLIGHT", default_value_t = 5000)]
    pub process_max_in_flight: usize,
    /// Largest PSA answer read, in bytes (a page, a count, a token); a larger one fails the
    /// read with a clear error.
    #[arg(long, env = "NEO_PSA_MAX_RESPONSE_BYTES", default_value_t = 16 << 20)]
    pub psa_max_response_bytes: usize,
}

/// `NEO_WEBHOOK_ALLOW_PRIVATE`, the older name of `NEO_EGRESS_ALLOW_PRIVATE`.
pub fn legacy_allow_private() -> bool {
    std::env::var("NEO_WEBHOOK_ALLOW_PRIVATE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        )
    })
}

impl OrchestratorArgs {
    pub fn allow_private(&self) -> bool {
        self.egress_allow_private || legacy_allow_private()
    }

    pub fn psa_policy(&self) -> neo_psa::http::HttpPolicy {
        neo_psa::http::HttpPolicy {
            max_response_bytes: self.psa_max_response_bytes.max(1024),
            ..Default::default()
        }
    }

    pub fn egress(&self) -> neo_egress::Egress {
        neo_egress::Egress::new(neo_egress::EgressPolicy::new(self.allow_private()))
    }
    pub fn config(&self) -> anyhow::Result<neo_orchestrator::OrchestratorConfig> {
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

/// Traces (shared by `serve` and `worker`).
#[derive(clap::Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// OTLP/HTTP endpoint to send traces to, e.g. `http://127.0.0.1:4318` (spans of each
    /// request and each execution dispatch). Off when unset.
    #[arg(long, env = "NEO_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub orchestrator: OrchestratorArgs,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub orchestrator: OrchestratorArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Serve `/metrics` on this address instead of the API's (e.g. `127.0.0.1:9090`, so the
    /// API's address need not expose it). Unset: `/metrics` is on the API's address.
    #[arg(long, env = "NEO_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Address to listen on (`127.0.0.1:0` picks a free port; the log says which).
    #[arg(long, env = "NEO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Requests per tenant per rate-limit window.
    #[arg(long, env = "NEO_RATE_LIMIT", default_value_t = 1200)]
    pub rate_limit: u32,
    /// Length of the rate-limit window in seconds.
    #[arg(long, env = "NEO_RATE_LIMIT_WINDOW_SECS", default_value_t = 60)]
    pub rate_limit_window_secs: i64,
    /// Verify answers WARNING above this many matching entities.
    #[arg(long, env = "NEO_VERIFY_SOFT_LIMIT", default_value_t = 1000)]
    pub verify_soft_limit: i64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "NEO_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds a client has to send a request's headers (also closes idle kept-alive
    /// connections).
    #[arg(long, env = "NEO_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a client has, after the headers, to send the whole body (else 408).
    #[arg(long, env = "NEO_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,
    /// Trust `X-Forwarded-For` / `X-Forwarded-Proto` from a reverse proxy in front (client
    /// address of the sign-in limit, `Secure` cookies). Off: both headers are ignored.
    #[arg(long, env = "NEO_BEHIND_PROXY")]
    pub behind_proxy: bool,
    /// Accepted Entra ID token issuers (comma list), e.g. https://login.microsoftonline.com/<tid>/v2.0.
    #[arg(long, env = "NEO_ENTRA_ISSUERS", value_delimiter = ',')]
    pub entra_issuers: Vec<String>,
    /// Accepted Entra ID token audiences (comma list).
    #[arg(long, env = "NEO_ENTRA_AUDIENCES", value_delimiter = ',')]
    pub entra_audiences: Vec<String>,
    /// JWKS URL of the Entra ID tenant(s), e.g. https://login.microsoftonline.com/common/discovery/v2.0/keys.
    #[arg(long, env = "NEO_ENTRA_JWKS_URL")]
    pub entra_jwks_url: Option<String>,
    /// App role that may manage API keys over HTTP.
    #[arg(long, env = "NEO_ENTRA_ADMIN_ROLE", default_value = "Neo.Admin")]
    pub entra_admin_role: String,
}

/// Drops credentials from a database URL before it is logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}
