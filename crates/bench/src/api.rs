//! API latency under a fixed request rate: 100,000 backfills in PostgreSQL, `neo-backfill
//! serve` in front, and `oha` (open loop, `-q` requests/s) or, if oha is missing, `wrk`
//! (closed loop, no fixed rate) on `GET /public-api/backfills/{id}` and on list pages at
//! depth 1 and depth 1,000. Without oha, the default is neo-bench's own open-loop generator
//! (a request every 1/rate s, latency from the scheduled send time, like oha's
//! `--latency-correction`); `--loadgen wrk` measures closed loop instead.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use neo_domain::backfill::Signal;
use serde_json::{json, Value};

use crate::service::{create_key, Serve};
use crate::{result, Fixture};

#[derive(clap::Args)]
pub struct ApiArgs {
    /// PostgreSQL only (the backfills are cloned with `psql`).
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value_t = 100_000)]
    backfills: usize,
    /// Requests per second.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    #[arg(long, default_value = "target/release/neo-backfill")]
    bin: String,
    /// List page depth for the deep figure.
    #[arg(long, default_value_t = 1000)]
    depth: usize,
    /// Load generator: auto (oha if installed, else builtin), oha, wrk or builtin.
    #[arg(long, default_value = "auto", value_parser = ["auto", "oha", "wrk", "builtin"])]
    loadgen: String,
}

pub async fn run(a: ApiArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.database_url.starts_with("postgres"),
        "the api workload needs a PostgreSQL --database-url"
    );
    // The key first: it creates the tenant `bench` that the fixture then reuses.
    let key = create_key(&a.bin, &a.database_url)?;

    let f = Fixture::open(&a.database_url).await?;
    let started = Instant::now();
    // One backfill through the store (workflow, snapshot, cancel), then the rest cloned from
    // it in one statement: each clone has its own workflow, CANCELLED like the template.
    let template = f.backfill(1, 100, json!({"type": "simulated"})).await?;
    f.store
        .signal_backfill(&f.tenant, &template, Signal::Cancel, "bench", f.clock.now())
        .await
        .map_err(|e| anyhow::anyhow!("cancel: {e:?}"))?;
    let sql = format!(
        "WITH w AS (
           INSERT INTO workflows (tenant_id, name, description, autonomy_type, entity_type, state,
                                  credit_tier, executor, created_at, updated_at)
           SELECT w.tenant_id, w.name || ' ' || g, w.description, w.autonomy_type, w.entity_type,
                  w.state, w.credit_tier, w.executor, w.created_at, w.updated_at
           FROM workflows w JOIN backfills b ON b.target_workflow_id = w.id AND b.id = '{template}',
                generate_series(1, {n}) g
           RETURNING id)
         INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type,
             daily_execution_windows, timezone, max_in_flight, reprocess, total_estimated,
             total_items, snapshot_complete, pending_count, in_flight_count, succeeded_count,
             failed_count, skipped_count, cancelled_count, credits_per_entity, started_at,
             completed_at, created_by, created_at, updated_at, error, parent_backfill_run_id)
         SELECT 'bf_' || lpad(to_hex(w.id), 32, '0'), t.tenant_id, t.state, w.id, t.entity_type,
             t.daily_execution_windows, t.timezone, t.max_in_flight, t.reprocess,
             t.total_estimated, t.total_items, t.snapshot_complete, t.pending_count,
             t.in_flight_count, t.succeeded_count, t.failed_count, t.skipped_count,
             t.cancelled_count, t.credits_per_entity, t.started_at, t.completed_at, t.created_by,
             t.created_at, t.updated_at, t.error, t.parent_backfill_run_id
         FROM w, backfills t WHERE t.id = '{template}';
         INSERT INTO backfill_filters (backfill_id, filter_spec)
         SELECT b.id, f.filter_spec FROM backfills b, backfill_filters f
         WHERE f.backfill_id = '{template}'
           AND NOT EXISTS (SELECT 1 FROM backfill_filters x WHERE x.backfill_id = b.id);
",
        n = a.backfills.saturating_sub(1)
    );
    // Then vacuum and analyze, as autovacuum would soon after 100,000 inserts: otherwise it
    // does so during the measurement.
    let vacuum = "VACUUM ANALYZE workflows, backfills, backfill_filters";
    for sql in [sql.as_str(), vacuum] {
        let st = Command::new("psql")
            .args([
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &a.database_url,
                "-c",
                sql,
            ])
            .status()
            .context("running psql")?;
        anyhow::ensure!(st.success(), "psql failed: {sql}");
    }
    eprintln!(
        "api: {} backfills in {:.2?}",
        a.backfills,
        started.elapsed()
    );

    let serve = Serve::start(&a.bin, &a.database_url).await?;
    let base = &serve.base;
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        let key = key.clone();
        async move {
            let r = http.get(&url).bearer_auth(&key).send().await?;
            let status = r.status();
            let body: Value = r.json().await?;
            anyhow::ensure!(status.is_success(), "{url}: {status} {body}");
            Ok::<Value, anyhow::Error>(body)
        }
    };
    let list = format!("{base}/public-api/backfills?page_size=50");
    // Walk to the deep page.
    let mut deep = list.clone();
    for _ in 0..a.depth {
        let page = get(deep.clone()).await?;
        let cursor = page["meta"]["pagination"]["next_cursor"]
            .as_str()
            .context("ran out of pages before the depth")?
            .to_owned();
        deep = format!("{list}&cursor={cursor}");
    }
    let one = format!("{base}/public-api/backfills/{template}");
    let tool = match a.loadgen.as_str() {
        "auto" if which("oha") => "oha",
        "auto" => "builtin",
        other => other,
    };
    eprintln!("api: load generator {tool}");
    let mut p50 = Vec::new();
    for (name, url) in [
        ("api_get".to_owned(), one),
        ("api_list_depth1".to_owned(), list),
        (format!("api_list_depth{}", a.depth), deep),
    ] {
        let (q50, q99, max) = if tool == "builtin" {
            open_loop(&http, &url, &key, a.rate, a.duration_secs).await?
        } else {
            load(tool, &url, &key, a.rate, a.duration_secs)?
        };
        eprintln!("{name}: p50 {q50:.2} ms p99 {q99:.2} ms max {max:.2} ms");
        result(&format!("{name}_p50"), q50, "ms");
        result(&format!("{name}_p99"), q99, "ms");
        result(&format!("{name}_max"), max, "ms");
        p50.push(q50);
    }
    println!(
        "RESULT api_depth_ratio {:.2} x (depth{} p50 / depth1 p50)",
        p50[2] / p50[1],
        a.depth
    );
    Ok(())
}

/// A request every 1/rate s for `secs`, each on its own task; p50, p99 and max latency in
/// ms, measured from the scheduled send time so a stall counts against every request it
/// delays.
async fn open_loop(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    rate: u32,
    secs: u64,
) -> anyhow::Result<(f64, f64, f64)> {
    let n = u64::from(rate) * secs;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let (http, url, key) = (http.clone(), url.to_owned(), key.to_owned());
        tasks.spawn(async move {
            let r = http.get(&url).bearer_auth(&key).send().await?;
            let status = r.status();
            r.bytes().await?;
            anyhow::ensure!(status.is_success(), "{url}: {status}");
            Ok::<f64, anyhow::Error>(due.elapsed().as_secs_f64() * 1000.0)
        });
    }
    let mut lat = Vec::with_capacity(n as usize);
    while let Some(r) = tasks.join_next().await {
        lat.push(r??);
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    Ok((q(0.5), q(0.99), q(1.0)))
}

fn which(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// p50, p99 and max latency in ms.
fn load(tool: &str, url: &str, key: &str, rate: u32, secs: u64) -> anyhow::Result<(f64, f64, f64)> {
    let auth = format!("Authorization: Bearer {key}");
    if tool == "oha" {
        let out = Command::new("oha")
            .args([
                "--no-tui",
                "--output-format",
                "json",
                "--latency-correction",
            ])
            .args([
                "-c",
                "50",
                "-q",
                &rate.to_string(),
                "-z",
                &format!("{secs}s"),
            ])
            .args(["-H", &auth, url])
            .output()
            .context("running oha")?;
        anyhow::ensure!(out.status.success(), "oha failed");
        let v: Value = serde_json::from_slice(&out.stdout)?;
        let ok = v["statusCodeDistribution"]["200"].as_u64().unwrap_or(0);
        let all: u64 = v["statusCodeDistribution"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        anyhow::ensure!(
            ok > 0 && ok == all,
            "{url}: not all 200: {}",
            v["statusCodeDistribution"]
        );
        let ms = |x: &Value| x.as_f64().unwrap_or(f64::NAN) * 1000.0;
        return Ok((
            ms(&v["latencyPercentiles"]["p50"]),
            ms(&v["latencyPercentiles"]["p99"]),
            ms(&v["summary"]["slowest"]),
        ));
    }
    // wrk: closed loop with 2 threads and 10 connections (wrk cannot fix the rate).
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c10",
            &format!("-d{secs}s"),
            "--latency",
            "-H",
            &auth,
            url,
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success() && !text.contains("Non-2xx"),
        "wrk failed: {text}"
    );
    let dur = |s: &str| -> f64 {
        let (n, mult) = if let Some(n) = s.strip_suffix("us") {
            (n, 0.001)
        } else if let Some(n) = s.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = s.strip_suffix('s') {
            (n, 1000.0)
        } else {
            (s, f64::NAN)
        };
        n.parse::<f64>().unwrap_or(f64::NAN) * mult
    };
    let field = |prefix: &str, idx: usize| -> f64 {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(idx))
            .map_or(f64::NAN, dur)
    };
    // "Latency   1.2ms  0.3ms  9.9ms  90%" (avg, stdev, max); "50%  1.1ms"; "99%  3.0ms".
    Ok((field("50%", 1), field("99%", 1), field("Latency", 3)))
}
