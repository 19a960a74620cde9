//! `psa-sim [--listen 127.0.0.1:0] [--seed N] [--tickets N]`: serves the simulator until killed and prints one JSON
//! line `{"listening":"http://…"}` to stdout once it accepts connections. Logs go to stderr (`RUST_LOG`).

use std::io::Write;
use std::net::SocketAddr;

use clap::Parser;
use psa_sim::SimConfig;

#[derive(Parser, Debug)]
#[command(
    name = "psa-sim",
    about = "A loopback ConnectWise PSA / Autotask / HaloPSA simulator"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0", env = "PSA_SIM_LISTEN")]
    listen: SocketAddr,
    /// Data-set seed.
    #[arg(long, default_value_t = 42, env = "PSA_SIM_SEED")]
    seed: u64,
    /// Number of tickets.
    #[arg(long, default_value_t = 10_000, env = "PSA_SIM_TICKETS")]
    tickets: usize,
    /// ConnectWise company id.
    #[arg(long, env = "PSA_SIM_CW_COMPANY")]
    cw_company: Option<String>,
    #[arg(long, env = "PSA_SIM_CW_PUBLIC_KEY")]
    cw_public_key: Option<String>,
    #[arg(long, env = "PSA_SIM_CW_PRIVATE_KEY")]
    cw_private_key: Option<String>,
    #[arg(long, env = "PSA_SIM_CW_CLIENT_ID")]
    cw_client_id: Option<String>,
    #[arg(long, env = "PSA_SIM_AT_USERNAME")]
    at_username: Option<String>,
    #[arg(long, env = "PSA_SIM_AT_SECRET")]
    at_secret: Option<String>,
    #[arg(long, env = "PSA_SIM_AT_INTEGRATION_CODE")]
    at_integration_code: Option<String>,
    #[arg(long, env = "PSA_SIM_HALO_CLIENT_ID")]
    halo_client_id: Option<String>,
    #[arg(long, env = "PSA_SIM_HALO_CLIENT_SECRET")]
    halo_client_secret: Option<String>,
    /// Virtual-clock speed multiplier.
    #[arg(long, default_value_t = 1.0)]
    clock_speed: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    let mut cfg = SimConfig {
        seed: args.seed,
        tickets: args.tickets,
        clock_speed: args.clock_speed,
        ..SimConfig::default()
    };
    let overrides = [
        (args.cw_company, &mut cfg.cw_company),
        (args.cw_public_key, &mut cfg.cw_public_key),
        (args.cw_private_key, &mut cfg.cw_private_key),
        (args.cw_client_id, &mut cfg.cw_client_id),
        (args.at_username, &mut cfg.at_username),
        (args.at_secret, &mut cfg.at_secret),
        (args.at_integration_code, &mut cfg.at_integration_code),
        (args.halo_client_id, &mut cfg.halo_client_id),
        (args.halo_client_secret, &mut cfg.halo_client_secret),
    ];
    for (value, slot) in overrides {
        if let Some(v) = value {
            *slot = v;
        }
    }
    let sim = psa_sim::spawn_on(cfg, args.listen).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::json!({ "listening": sim.base_url }))?;
        out.flush()?;
    }
    wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
