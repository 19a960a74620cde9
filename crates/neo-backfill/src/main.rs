//! `neo-backfill`: the one binary. `serve` runs the HTTP API and the orchestrator, `worker` the
//! orchestrator alone; the rest are operator commands. Every flag can also be set by its `NEO_*`
//! environment variable and by a key of the config file (`config`): a flag wins over the
//! environment, which wins over the file, which wins over the default.
//!
//! The map: `args` (the shared flags), `config` (the file), `serve` (the long-running
//! commands), `admin` (keys, tenants, secrets, migrate), `backup` (backup and restore),
//! `export`, `doctor`, `telemetry` (logs and traces), `demo`.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use neo_domain::clock::{Clock, SystemClock};

mod admin;
mod args;
mod backup;
mod config;
mod demo;
mod doctor;
mod export;
mod serve;
mod telemetry;

pub use serve::{shutdown_signal, Service};

#[derive(Parser, Debug)]
#[command(
    name = "neo-backfill",
    version,
    about = "Backfill orchestrator for MSP automation: the Neo backfills API"
)]
struct Cli {
    /// Config file (TOML; its keys are the flags' long names). Default:
    /// /etc/neo-backfill/config.toml when it exists.
    #[arg(long, global = true, env = "NEO_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of `serve`'s flags costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP API and the orchestrator (creates and migrates the database if needed).
    Serve(args::ServeArgs),
    /// Run the orchestrator alone (no HTTP API) against the same database.
    Worker(args::WorkerArgs),
    /// Create or upgrade the database schema (and seal any secret stored in plaintext), then exit.
    Migrate(args::MigrateArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: admin::KeysCommand,
    },
    /// Manage tenants.
    Tenants {
        #[command(subcommand)]
        command: admin::TenantsCommand,
    },
    /// Manage the master key that seals the secrets in the database.
    Secrets {
        #[command(subcommand)]
        command: admin::SecretsCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Take a consistent copy of a SQLite database while `serve` keeps running.
    Backup(backup::BackupArgs),
    /// Put a backup in place of a stopped deployment's SQLite database.
    Restore(backup::RestoreArgs),
    /// Write a backfill's items and their outcomes as CSV or JSON lines.
    Export(export::ExportArgs),
    /// Check the database, the master key, each tenant's PSA and the clock; say what is wrong.
    Doctor(doctor::DoctorArgs),
    /// The configuration in effect.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Everything in one command: a PSA simulator, the service, a demo tenant, workflow and
    /// backfill, with progress in the terminal.
    Demo(demo::DemoArgs),
}

fn main() -> anyhow::Result<()> {
    // The file fills in what neither a flag nor the environment set, before the flags are read.
    let file = config::load(std::env::args_os())?;
    let cli = Cli::parse();
    if matches!(cli.command, Command::Demo(_)) && std::env::var_os("NEO_LOG").is_none() {
        // The demo's terminal is for its progress; logs only for warnings.
        std::env::set_var("NEO_LOG", "warn");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli, file))
}

async fn run(cli: Cli, file: config::Loaded) -> anyhow::Result<()> {
    let (to_stdout, otlp) = match &cli.command {
        Command::Serve(a) => (true, Some(&a.telemetry)),
        Command::Worker(a) => (true, Some(&a.telemetry)),
        _ => (false, None),
    };
    let _telemetry = telemetry::init(to_stdout, otlp)?;
    if let Some(path) = &file.path {
        tracing::info!(config = %path.display(), keys = file.keys.len(), "read the config file");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve(a) => serve::serve(a, clock).await,
        Command::Worker(a) => serve::worker(a, clock).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Migrate(a) => admin::migrate(a).await,
        Command::Secrets { command } => admin::secrets(command).await,
        Command::Tenants { command } => admin::tenants(command).await,
        Command::Keys { command } => admin::keys(command, clock).await,
        Command::Openapi => {
            println!("{}", neo_api::openapi::document_json());
            Ok(())
        }
        Command::Backup(a) => backup::backup(a).await,
        Command::Restore(a) => backup::restore(a).await,
        Command::Export(a) => export::export(a).await,
        Command::Doctor(a) => doctor::doctor(a, clock).await,
        Command::Config { command } => config::run(command, &file),
    }
}
