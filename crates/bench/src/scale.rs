//! Workload 5, scale: one backfill over every ticket of a simulated ConnectWise with 1,000,000
//! tickets, end to end through real processes: the `psa-sim` binary, the release
//! `neo-backfill serve` on a fresh database, and the public API over loopback HTTP, as a user
//! would run it (window always open, so it dispatches while the snapshot is taken).
//!
//! Figures: the create request (the PSA count included); time to snapshot (create answered →
//! every item stored) with PSA pages and items per second; items settled meanwhile; dispatch
//! for `--dispatch-secs` after the snapshot; the cancel request (it answers with the backfill
//! CANCELLED and the orchestrator sweeps the pending items to cancelled: both times, and that
//! nothing is claimed after it); the service's peak RSS (`VmHWM` of `/proc/<pid>/status`, sampled to the end);
//! and the database size per item when the snapshot is complete (SQLite: pages × page size,
//! which is main file + WAL after a checkpoint; PostgreSQL: the `pg_database_size` delta).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};

use crate::result;
use crate::service::{create_key, KillOnDrop, Serve};

#[derive(clap::Args)]
pub struct ScaleArgs {
    /// `sqlite://…` or `postgres://…`: a fresh database for the service.
    #[arg(long)]
    database_url: String,
    /// Tickets in the simulated ConnectWise; the backfill takes every one.
    #[arg(long, default_value_t = 1_000_000)]
    items: usize,
    #[arg(long, default_value_t = 100)]
    max_in_flight: i64,
    /// How long it dispatches after the snapshot (inside the peak RSS) before it is cancelled.
    #[arg(long, default_value_t = 20)]
    dispatch_secs: u64,
    /// The `neo-backfill` binary.
    #[arg(long, default_value = "target/release/neo-backfill")]
    bin: String,
    /// The `psa-sim` binary.
    #[arg(long, default_value = "target/release/psa-sim")]
    sim_bin: String,
    /// Prefix of the figures.
    #[arg(long, default_value = "scale")]
    name: String,
    /// Give up when the snapshot takes longer than this.
    #[arg(long, default_value_t = 1200)]
    timeout_secs: u64,
}

/// The public API with the bench tenant's key.
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    /// `data` of a successful answer.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/public-api{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await?;
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {v}");
        Ok(v["data"].clone())
    }
}

/// `VmRSS` and `VmHWM` of a process, in kB.
fn rss_kb(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The database's size in bytes: SQLite pages × page size (the main file after a checkpoint
/// of the WAL); PostgreSQL `pg_database_size`.
async fn db_size(url: &str) -> anyhow::Result<i64> {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await?;
        let n: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut c)
            .await?;
        c.close().await?;
        Ok(n)
    } else {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
        let mut c = sqlx::SqliteConnection::connect_with(&opts.read_only(true)).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&mut c)
        .await?;
        c.close().await?;
        Ok(n)
    }
}

fn settled(b: &Value) -> i64 {
    ["succeeded_count", "failed_count", "skipped_count"]
        .iter()
        .map(|k| b[*k].as_i64().unwrap_or(0))
        .sum()
}

/// ConnectWise requests the simulator has served.
async fn sim_requests(http: &reqwest::Client, sim: &str) -> anyhow::Result<u64> {
    let stats: psa_sim::Stats = http
        .get(format!("{sim}/__sim/stats"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(stats.connectwise_requests)
}

pub async fn run(a: ScaleArgs) -> anyhow::Result<()> {
    let n = a.name.as_str();
    // The simulator, seeded with `items` tickets; it prints its URL once it listens.
    let started = Instant::now();
    let mut child = Command::new(&a.sim_bin)
        .args(["--tickets", &a.items.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", a.sim_bin))?;
    let stdout = child.stdout.take().context("psa-sim stdout")?;
    let sim_proc = KillOnDrop(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let sim = serde_json::from_str::<Value>(&line)
        .ok()
        .and_then(|v| v["listening"].as_str().map(str::to_owned))
        .with_context(|| format!("psa-sim did not start: {line:?}"))?;
    eprintln!(
        "{n}: psa-sim with {} tickets listening after {:.1?} (RSS {} MB)",
        a.items,
        started.elapsed(),
        rss_kb(sim_proc.0.id())?.0 / 1024
    );
    let http = reqwest::Client::new();
    // The figure is ours, not the simulated ConnectWise throttle.
    http.post(format!("{sim}/__sim/limits"))
        .json(&json!({"cw_rate_limit": null}))
        .send()
        .await?
        .error_for_status()?;

    // The service on a fresh database, set up through the public API.
    let key = create_key(&a.bin, &a.database_url)?;
    let size_before = db_size(&a.database_url).await?;
    let serve = Serve::start(&a.bin, &a.database_url).await?;
    let pid = serve.pid();
    let api = Api {
        http: http.clone(),
        base: serve.base.clone(),
        key,
    };
    let cw = psa_sim::SimConfig::default();
    api.send(
        Method::PUT,
        "/integrations/connectwise",
        Some(
            // The request budget out of the way: this measures the service, not a PSA's allowance.
            json!({"site_url": sim, "company_id": cw.cw_company, "public_key": cw.cw_public_key,
                    "private_key": cw.cw_private_key, "client_id": cw.cw_client_id,
                    "requests_per_hour": 10_000_000, "backfill_share": 100}),
        ),
    )
    .await?;
    let wf = api
        .send(
            Method::POST,
            "/agents",
            Some(json!({"name": "scale", "executor": {"type": "simulated"}})),
        )
        .await?["id"]
        .as_i64()
        .context("agent id")?;

    let t = Instant::now();
    let created = api
        .send(
            Method::POST,
            "/backfills",
            Some(json!({
                "target_workflow_id": wf,
                "filter_spec": {"conditions": {"combinator": "and",
                    "rules": [{"field": "$id", "operator": ">", "value": 0}]}},
                "max_in_flight": a.max_in_flight,
            })),
        )
        .await?;
    let create = t.elapsed();
    let id = created["backfill"]["id"]
        .as_str()
        .context("backfill id")?
        .to_owned();
    let estimated = created["cost_estimate"]["total_entities"].as_u64();
    anyhow::ensure!(
        estimated == Some(a.items as u64),
        "the PSA count says {estimated:?}, not {}",
        a.items
    );
    eprintln!("{n}: created {id} over {} tickets in {create:.2?}", a.items);

    // Snapshot: until every item is stored.
    let requests_before = sim_requests(&http, &sim).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.timeout_secs);
    let mut logged = Instant::now();
    let path = format!("/backfills/{id}");
    let b = loop {
        let b = api.send(Method::GET, &path, None).await?;
        rss_kb(pid)?;
        let state = b["state"].as_str().unwrap_or_default();
        anyhow::ensure!(
            state == "RUNNING" || state == "COMPLETED",
            "the backfill is {state}: {}",
            b["error"]
        );
        let stored = b["total_items"].as_u64().unwrap_or(0);
        if stored >= a.items as u64 {
            break b;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "snapshot not complete after {} s: {stored} items",
            a.timeout_secs
        );
        if logged.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {stored} items stored, {} settled, RSS {} MB",
                settled(&b),
                rss_kb(pid)?.0 / 1024
            );
            logged = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let snapshot = started.elapsed();
    let pages = sim_requests(&http, &sim).await? - requests_before;
    let size = db_size(&a.database_url).await? - size_before;
    let during = settled(&b);
    eprintln!(
        "{n}: snapshot of {} items in {snapshot:.2?} ({pages} PSA requests), {during} settled meanwhile; \
         database +{} MB ({} bytes/item, executions of the settled items included)",
        a.items,
        size / (1 << 20),
        size / a.items as i64
    );

    // Dispatch for a bounded time, then cancel what is left.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(a.dispatch_secs) {
        rss_kb(pid)?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let b2 = api.send(Method::GET, &path, None).await?;
    let dispatch = (settled(&b2) - during) as f64 / t.elapsed().as_secs_f64();
    let cancel = if b2["state"] == "RUNNING" {
        let t = Instant::now();
        api.send(Method::POST, &format!("{path}/cancel"), None)
            .await?;
        let took = t.elapsed();
        let b3 = api.send(Method::GET, &path, None).await?;
        eprintln!(
            "{n}: cancel in {took:.2?}: {} cancelled, {} settled, {} in flight, {} pending left to sweep",
            b3["cancelled_count"],
            settled(&b3),
            b3["in_flight_count"],
            b3["pending_count"]
        );
        // Nothing is claimed after the cancel (what settles is what was in flight), and the
        // pending items left to the orchestrator's sweep all end cancelled.
        let ceiling = settled(&b3) + b3["in_flight_count"].as_i64().unwrap_or(0);
        let b4 = loop {
            rss_kb(pid)?;
            let b = api.send(Method::GET, &path, None).await?;
            if b["pending_count"] == 0 && b["in_flight_count"] == 0 {
                break b;
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(300),
                "the sweep did not finish: {b}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let sweep = t.elapsed();
        anyhow::ensure!(
            settled(&b4) <= ceiling,
            "{} settled after the cancel, more than the {ceiling} settled or in flight at it",
            settled(&b4)
        );
        eprintln!(
            "{n}: every pending item cancelled {sweep:.2?} after the cancel ({} cancelled, {} settled)",
            b4["cancelled_count"],
            settled(&b4)
        );
        Some((took, sweep))
    } else {
        None
    };
    let (rss, hwm) = rss_kb(pid)?;
    eprintln!(
        "{n}: dispatch after the snapshot {dispatch:.0} items/s; service RSS now {} MB, peak {} MB; psa-sim peak {} MB",
        rss / 1024,
        hwm / 1024,
        rss_kb(sim_proc.0.id())?.1 / 1024
    );
    drop(serve);
    drop(sim_proc);

    result(&format!("{n}_create"), create.as_secs_f64(), "s");
    result(&format!("{n}_snapshot"), snapshot.as_secs_f64(), "s");
    result(
        &format!("{n}_snapshot_pages"),
        pages as f64 / snapshot.as_secs_f64(),
        "pages/s",
    );
    result(
        &format!("{n}_snapshot_items"),
        a.items as f64 / snapshot.as_secs_f64(),
        "items/s",
    );
    result(
        &format!("{n}_settled_during_snapshot"),
        during as f64,
        "items",
    );
    result(&format!("{n}_dispatch"), dispatch, "items/s");
    if let Some((c, sweep)) = cancel {
        result(&format!("{n}_cancel"), c.as_secs_f64(), "s");
        result(&format!("{n}_cancel_swept"), sweep.as_secs_f64(), "s");
    }
    result(&format!("{n}_peak_rss"), hwm as f64 / 1024.0, "MB");
    result(
        &format!("{n}_db_per_item"),
        size as f64 / a.items as f64,
        "bytes/item",
    );
    Ok(())
}
