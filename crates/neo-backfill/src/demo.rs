//! `neo-backfill demo`: everything in one command, no set-up. A PSA simulator, the service on
//! a fresh SQLite file, a demo tenant with a ConnectWise integration pointing at the
//! simulator, a CHAINED_ACTIONS workflow on the simulated executor (10% failures), and one
//! backfill over a few hundred open Help Desk tickets with its window open now. Shows progress
//! until the backfill completes, then serves until Ctrl-C.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use neo_api::ApiConfig;
use neo_domain::backfill::{AutonomyType, EntityType, WorkflowState};
use neo_domain::clock::{Clock, SystemClock};
use neo_store::NewWorkflow;
use serde_json::{json, Value};

use crate::{shutdown_signal, Service};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Address of the service (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "NEO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Database URL; default a fresh SQLite file in a temporary directory.
    #[arg(long, env = "NEO_DEMO_DATABASE_URL")]
    database_url: Option<String>,
    /// Master key file of the secrets (default for SQLite: beside the database file).
    #[arg(long, env = "NEO_MASTER_KEY_FILE")]
    master_key_file: Option<std::path::PathBuf>,
    /// Tickets in the simulated ConnectWise.
    #[arg(long, env = "NEO_DEMO_TICKETS", default_value_t = 10_000)]
    tickets: usize,
    /// How many tickets the demo backfill takes.
    #[arg(long, env = "NEO_DEMO_LIMIT", default_value_t = 300)]
    limit: u64,
    /// Simulated execution latency in milliseconds.
    #[arg(long, env = "NEO_DEMO_LATENCY_MS", default_value_t = 150)]
    latency_ms: u64,
}

pub async fn run(a: DemoArgs) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let tmp = tempfile_dir()?;
    let url = a
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", tmp.join("neo-backfill-demo.db").display()));

    let sim_cfg = psa_sim::SimConfig {
        tickets: a.tickets,
        ..Default::default()
    };
    let sim = psa_sim::spawn(sim_cfg.clone())
        .await
        .context("starting the PSA simulator")?;

    let key = neo_store::secrets::master_key_for(&url, a.master_key_file.as_deref())?;
    let sealer = Arc::new(neo_store::Sealer::new(key));
    let store = neo_store::connect_with(&url, Some(sealer))
        .await
        .with_context(|| format!("opening {url}"))?;
    let now = clock.now();
    let tenant = store.ensure_tenant("demo", now).await?;
    let minted = neo_api::auth::mint_key(&tenant.id, "test", "demo", None, now);
    let key = minted.plaintext.clone();
    store.insert_api_key(minted.row).await?;
    store
        .put_integration(
            &tenant.id,
            "connectwise",
            json!({"site_url": sim.base_url, "company_id": sim_cfg.cw_company, "public_key": sim_cfg.cw_public_key}),
            json!({"private_key": sim_cfg.cw_private_key, "client_id": sim_cfg.cw_client_id}),
            now,
        )
        .await?;
    let wf = store
        .insert_workflow(
            &tenant.id,
            NewWorkflow {
                name: "Demo triage".into(),
                description: Some("Classifies and routes tickets (simulated executor, ~10% failures)".into()),
                autonomy_type: AutonomyType::ChainedActions,
                entity_type: EntityType::Ticket,
                state: WorkflowState::Enabled,
                credit_tier: 1,
                executor: json!({"type": "simulated", "latency_ms": a.latency_ms, "failure_rate": 0.1, "seed": 7}),
            },
            now,
        )
        .await?;

    let service = Service::start(
        store,
        clock,
        // Everything in the demo runs on loopback: webhooks may target it too.
        ApiConfig {
            egress_allow_private: true,
            ..Default::default()
        },
        neo_orchestrator::OrchestratorConfig {
            egress_allow_private: true,
            ..Default::default()
        },
        a.listen,
    )
    .await?;
    let base = format!("http://{}", service.addr);
    let stop = Arc::new(tokio::sync::Notify::new());
    let serving = {
        let stop = stop.clone();
        tokio::spawn(service.run_until(async move { stop.notified().await }))
    };

    // Create the backfill through the public API, as a user would.
    let http = reqwest::Client::new();
    let api = format!("{base}/public-api");
    let body = json!({
        "target_workflow_id": wf.id,
        "filter_spec": {"conditions": {"combinator": "and", "rules": [
            {"field": "board/name", "operator": "=", "value": "Help Desk"},
            {"field": "$closed", "operator": "=", "value": false}]}, "limit": a.limit},
        "max_in_flight": 10,
        "timezone": "UTC",
    });
    let r = http
        .post(format!("{api}/backfills"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let created: Value = r.json().await?;
    anyhow::ensure!(
        status.is_success(),
        "creating the demo backfill failed: {status} {created}"
    );
    let id = created["data"]["backfill"]["id"]
        .as_str()
        .context("backfill id")?
        .to_owned();

    println!("neo-backfill demo");
    println!("  API:        {api}");
    println!("  OpenAPI:    {api}/openapi.json");
    println!("  Dashboard:  {base}/ (sign in with the API key below)");
    println!(
        "  PSA:        simulated ConnectWise at {} ({} tickets)",
        sim.base_url, a.tickets
    );
    println!("  Database:   {url}");
    println!("  API key:    {key}");
    println!();
    println!("Try:");
    println!("  curl -s -H 'Authorization: Bearer {key}' {api}/backfills/{id}");
    println!(
        "  curl -s -H 'Authorization: Bearer {key}' '{api}/backfills/{id}/items?status=failed'"
    );
    println!("  curl -s -X POST -H 'Authorization: Bearer {key}' {api}/backfills/{id}/pause");
    println!();
    std::io::stdout().flush()?;

    let ctrl_c = tokio::spawn(shutdown_signal());
    tokio::pin!(ctrl_c);
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                stop.notify_one();
                let _ = serving.await;
                return Ok(());
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let b: Value = http
            .get(format!("{api}/backfills/{id}"))
            .bearer_auth(&key)
            .send()
            .await?
            .json()
            .await?;
        let b = &b["data"];
        let line = progress_line(b);
        if tty {
            eprint!("\r{line}");
        } else if line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        let state = b["state"].as_str().unwrap_or("");
        if matches!(state, "COMPLETED" | "FAILED" | "CANCELLED") {
            if tty {
                eprintln!();
            }
            println!(
                "Backfill {id} is {state}: {} succeeded, {} failed, {} skipped.",
                b["succeeded_count"], b["failed_count"], b["skipped_count"]
            );
            if b["failed_count"].as_i64().unwrap_or(0) > 0 {
                println!("Rerun the failed ones:");
                println!("  curl -s -X POST -H 'Authorization: Bearer {key}' {api}/backfills/{id}/rerun-failed");
            }
            println!("Serving until Ctrl-C.");
            std::io::stdout().flush()?;
            break;
        }
    }
    ctrl_c.await.ok();
    stop.notify_one();
    let _ = serving.await;
    Ok(())
}

/// `[##########··········] 150/300  ✓ 135  ✗ 15  ⋯ 10 in flight  RUNNING`
fn progress_line(b: &Value) -> String {
    let n = |k: &str| b[k].as_i64().unwrap_or(0);
    let total = n("total_items")
        .max(b["total_estimated"].as_i64().unwrap_or(0))
        .max(1);
    let done = n("succeeded_count") + n("failed_count") + n("skipped_count");
    let width = 30;
    let filled = ((done * width) / total).clamp(0, width) as usize;
    format!(
        "[{}{}] {done}/{total}  succeeded {}  failed {}  skipped {}  in flight {}  {}",
        "#".repeat(filled),
        ".".repeat(width as usize - filled),
        n("succeeded_count"),
        n("failed_count"),
        n("skipped_count"),
        n("in_flight_count"),
        b["state"].as_str().unwrap_or("?")
    )
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("neo-backfill-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
