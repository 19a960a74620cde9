//! `neo-bench`: the workloads of `./bench/run`. Each prints human-readable progress on stderr
//! and its figures on stdout as `RESULT <name> <value> <unit>` lines, which `bench/run`
//! collects into one table.

mod api;
mod scale;
mod service;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use neo_domain::backfill::{AutonomyType, BackfillRunState, EntityType, WorkflowState};
use neo_domain::clock::{to_ms, Clock, SystemClock};
use neo_orchestrator::{Orchestrator, OrchestratorConfig};
use neo_store::{ExecutionFilter, NewBackfill, NewWorkflow, Store};
use serde_json::{json, Value};
use service::KillOnDrop;

#[derive(Parser)]
#[command(about = "neo-backfill benchmarks (see BENCHMARKS.md)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One backfill through the zero-latency simulated executor: items settled per second.
    Dispatch {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        #[arg(long, default_value_t = 100)]
        max_in_flight: i64,
        /// Split the items over K backfills (of K workflows), each at `--max-in-flight`: how a
        /// user runs more than the API's per-backfill cap of 100 at once.
        #[arg(long, default_value_t = 1)]
        backfills: usize,
        /// Run the orchestrator in N `neo-backfill worker` processes instead of in-process.
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// The `neo-backfill` binary (for --workers).
        #[arg(long, default_value = "target/release/neo-backfill")]
        bin: String,
        /// Name of the figure.
        #[arg(long, default_value = "dispatch")]
        name: String,
    },
    /// The same through the webhook executor to a minimal loopback receiver.
    Webhook {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        #[arg(long, default_value_t = 100)]
        max_in_flight: i64,
    },
    /// Enumerate tickets from psa-sim (ConnectWise, pages of 1,000).
    Enumerate {
        #[arg(long, default_value_t = 100_000)]
        tickets: usize,
        /// Latency added by the simulator to every page request.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// API latency under a fixed request rate (needs `oha`).
    Api(api::ApiArgs),
    /// A 1,000,000-item backfill from psa-sim: snapshot time, peak RSS, database size per item.
    Scale(scale::ScaleArgs),
}

fn result(name: &str, value: f64, unit: &str) {
    println!("RESULT {name} {value:.1} {unit}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NEO_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Dispatch {
            database_url,
            items,
            max_in_flight,
            backfills,
            workers,
            bin,
            name,
        } => {
            anyhow::ensure!(
                (1..=items).contains(&backfills),
                "--backfills must be from 1 to --items"
            );
            let f = Fixture::open(&database_url).await?;
            let ids = f
                .backfills(
                    items,
                    backfills,
                    max_in_flight,
                    json!({"type": "simulated"}),
                )
                .await?;
            let took = if workers == 0 {
                f.run_in_process(&ids, max_in_flight * backfills as i64)
                    .await?
            } else {
                f.run_in_workers(&ids, &database_url, &bin, workers).await?
            };
            let rate = items as f64 / took.as_secs_f64();
            eprintln!("{name}: {items} items in {took:.2?}: {rate:.0} items/s");
            result(&name, rate, "items/s");
        }
        Cmd::Webhook {
            database_url,
            items,
            max_in_flight,
        } => webhook(&database_url, items, max_in_flight).await?,
        Cmd::Enumerate {
            tickets,
            latency_ms,
        } => enumerate(tickets, latency_ms).await?,
        Cmd::Api(a) => api::run(a).await?,
        Cmd::Scale(a) => scale::run(a).await?,
    }
    Ok(())
}

/// A migrated database with one tenant.
pub(crate) struct Fixture {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub tenant: String,
}

impl Fixture {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let key =
            neo_store::secrets::master_key_for(url, service::master_key_file(url)?.as_deref())?;
        let sealer = Arc::new(neo_store::Sealer::new(key));
        let store = neo_store::connect_with(url, Some(sealer))
            .await
            .with_context(|| format!("opening {url}"))?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let tenant = store.ensure_tenant("bench", clock.now()).await?.id;
        // The monthly allowance (10,000 credits by default) would pause the run.
        store.set_monthly_allowance(&tenant, i64::MAX / 4).await?;
        Ok(Self {
            store,
            clock,
            tenant,
        })
    }

    pub async fn workflow(&self, executor: Value) -> anyhow::Result<i64> {
        Ok(self
            .store
            .insert_workflow(
                &self.tenant,
                NewWorkflow {
                    name: format!("bench {}", uuid::Uuid::new_v4().simple()),
                    description: None,
                    autonomy_type: AutonomyType::ChainedActions,
                    entity_type: EntityType::Ticket,
                    state: WorkflowState::Enabled,
                    credit_tier: 1,
                    executor,
                },
                self.clock.now(),
            )
            .await?
            .id)
    }

    /// A RUNNING backfill over `items` explicit ids (the snapshot is taken here, not timed).
    pub async fn backfill(
        &self,
        items: usize,
        max_in_flight: i64,
        executor: Value,
    ) -> anyhow::Result<String> {
        let mut ids = self.backfills(items, 1, max_in_flight, executor).await?;
        Ok(ids.remove(0))
    }

    /// `count` RUNNING backfills sharing `items` distinct explicit ids, each of its own
    /// workflow (a workflow has one active backfill at a time).
    pub async fn backfills(
        &self,
        items: usize,
        count: usize,
        max_in_flight: i64,
        executor: Value,
    ) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::with_capacity(count);
        for k in 0..count {
            let wf = self.workflow(executor.clone()).await?;
            let range = items * k / count..items * (k + 1) / count;
            out.push(self.create(wf, range, max_in_flight).await?);
        }
        Ok(out)
    }

    async fn create(
        &self,
        wf: i64,
        range: std::ops::Range<usize>,
        max_in_flight: i64,
    ) -> anyhow::Result<String> {
        let ids: Vec<String> = range.map(|i| format!("E{i:07}")).collect();
        let items = ids.len();
        let started = Instant::now();
        let b = self
            .store
            .create_backfill(NewBackfill {
                id: format!("bf_{}", uuid::Uuid::now_v7().simple()),
                tenant_id: self.tenant.clone(),
                state: BackfillRunState::Running,
                target_workflow_id: wf,
                entity_type: EntityType::Ticket,
                filter_spec: json!({"entity_ids": ids}),
                daily_execution_windows: Default::default(),
                timezone: "UTC".into(),
                max_in_flight,
                reprocess: false,
                total_estimated: Some(items as i64),
                credits_per_entity: 1,
                created_by: "bench".into(),
                created_at: self.clock.now(),
                entity_ids: Some(ids),
                name: None,
                mode: neo_domain::backfill::BackfillMode::Live,
                start_at: None,
                max_credits: None,
                trial_sample_size: None,
                max_in_flight_per_company: None,
                company_blackouts: None,
            })
            .await?;
        eprintln!(
            "created {} with {items} items in {:.2?}",
            b.id,
            started.elapsed()
        );
        Ok(b.id)
    }

    /// Polls until every backfill is COMPLETED; the time since `started`.
    async fn wait_complete(&self, ids: &[String], started: Instant) -> anyhow::Result<Duration> {
        let mut last = Instant::now();
        let mut done = vec![false; ids.len()];
        loop {
            // The dispatch list is the cheap look: it leaves out a complete snapshot's filter,
            // which for an explicit id list is megabytes of JSON (read every poll, it took a
            // few percent of the CPU the dispatch is measured on). A backfill itself is read
            // once it left the list, and every 5 s for the progress line.
            let listed = self.store.dispatchable_backfills().await?;
            let progress = last.elapsed() > Duration::from_secs(5);
            let (mut settled, mut total) = (0, 0);
            for (id, done) in ids.iter().zip(done.iter_mut()) {
                if *done {
                    continue;
                }
                let b = match listed.iter().find(|b| &b.id == id) {
                    Some(b) if !progress => b.clone(),
                    _ => self
                        .store
                        .backfill(&self.tenant, id)
                        .await?
                        .context("backfill vanished")?,
                };
                match b.state {
                    BackfillRunState::Completed => *done = true,
                    BackfillRunState::Running => {}
                    other => anyhow::bail!("backfill {id} ended {other}: {:?}", b.error),
                }
                settled += b.succeeded_count + b.failed_count + b.skipped_count;
                total += b.total_items;
            }
            if done.iter().all(|d| *d) {
                return Ok(started.elapsed());
            }
            if progress {
                eprintln!("  {settled} settled of {total} (unfinished backfills)");
                last = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The orchestrator of the in-process runs. The fixture has one tenant, so the per-tenant
    /// cap (there to share a process between tenants; `--tenant-max-in-flight`) is raised to
    /// the backfills' caps together.
    fn orchestrator(&self, max_in_flight: i64) -> Orchestrator {
        let defaults = OrchestratorConfig::default();
        let cap = defaults
            .tenant_max_in_flight
            .max(usize::try_from(max_in_flight).unwrap_or(0));
        Orchestrator::new(
            self.store.clone(),
            self.clock.clone(),
            OrchestratorConfig {
                poll_interval: Duration::from_millis(20),
                // The webhook workload's receiver is on loopback.
                egress_allow_private: true,
                tenant_max_in_flight: cap,
                ..defaults
            },
        )
    }

    /// Runs the orchestrator in this process until every backfill completed; `max_in_flight`
    /// is theirs together.
    async fn run_in_process(&self, ids: &[String], max_in_flight: i64) -> anyhow::Result<Duration> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        let task = tokio::spawn(
            self.orchestrator(max_in_flight)
                .run(Arc::new(tokio::sync::Notify::new()), stopped),
        );
        let took = self.wait_complete(ids, started).await;
        let _ = stop.send(true);
        let _ = task.await;
        took
    }

    async fn run_in_workers(
        &self,
        ids: &[String],
        url: &str,
        bin: &str,
        n: usize,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut children = Vec::new();
        for _ in 0..n {
            let mut cmd = Command::new(bin);
            cmd.args(["worker", "--database-url", url])
                .env("NEO_POLL_INTERVAL_MS", "20")
                .env("NEO_LOG", "warn");
            service::with_master_key(&mut cmd, url)?;
            children.push(KillOnDrop(
                cmd.spawn()
                    .with_context(|| format!("starting {bin} worker"))?,
            ));
        }
        self.wait_complete(ids, started).await
    }
}

/// Arrival times (unix ms) of webhook deliveries by execution id.
type Arrivals = Arc<Mutex<HashMap<String, i64>>>;

async fn receiver() -> anyhow::Result<(Arrivals, String)> {
    let arrivals: Arrivals = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(a): axum::extract::State<Arrivals>,
                 headers: axum::http::HeaderMap| async move {
                    let now = to_ms(jiff::Timestamp::now());
                    if let Some(k) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
                        a.lock().expect("poisoned").insert(k.to_owned(), now);
                    }
                    axum::Json(json!({"status": "succeeded"}))
                },
            ),
        )
        .with_state(arrivals.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok((arrivals, url))
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64
}

async fn webhook(url: &str, items: usize, max_in_flight: i64) -> anyhow::Result<()> {
    let (arrivals, hook) = receiver().await?;
    let f = Fixture::open(url).await?;
    let id = f
        .backfill(
            items,
            max_in_flight,
            json!({"type": "webhook", "url": hook, "secret": "whsec_bench_0123456789"}),
        )
        .await?;
    let took = f
        .run_in_process(std::slice::from_ref(&id), max_in_flight)
        .await?;
    let rate = items as f64 / took.as_secs_f64();
    // Claim → delivery: the execution's start (set in the claim transaction) to its arrival.
    let arrivals = arrivals.lock().expect("poisoned").clone();
    let mut lat = Vec::with_capacity(items);
    let mut before = None;
    let filter = ExecutionFilter {
        backfill_id: Some(id.clone()),
        ..Default::default()
    };
    loop {
        let page = f
            .store
            .list_executions(&f.tenant, &filter, before.as_deref(), 1000)
            .await?;
        for e in &page.items {
            if let (Some(s), Some(a)) = (e.started_at, arrivals.get(&e.id)) {
                lat.push(a - to_ms(s));
            }
        }
        match (page.has_more, page.items.last()) {
            (true, Some(last)) => before = Some(last.id.clone()),
            _ => break,
        }
    }
    lat.sort_unstable();
    eprintln!(
        "webhook: {items} items in {took:.2?}: {rate:.0} items/s; claim→delivery p50 {} ms p99 {} ms ({} samples)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len()
    );
    result("webhook", rate, "items/s");
    result("webhook_p50", percentile(&lat, 0.5), "ms");
    result("webhook_p99", percentile(&lat, 0.99), "ms");
    Ok(())
}

async fn enumerate(tickets: usize, latency_ms: u64) -> anyhow::Result<()> {
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets,
        ..Default::default()
    })
    .await?;
    let mut limits = sim.limits();
    limits.cw_rate_limit = None;
    sim.set_limits(limits);
    if latency_ms > 0 {
        sim.inject(
            psa_sim::Fault::delay(latency_ms)
                .path_prefix("/v4_6_release/apis/3.0/service/tickets")
                .times(0),
        );
    }
    let c = sim.config();
    let client = neo_psa::client::PsaClient::connect(
        "connectwise",
        &json!({"site_url": sim.base_url, "company_id": c.cw_company, "public_key": c.cw_public_key}),
        &json!({"private_key": c.cw_private_key, "client_id": c.cw_client_id}),
        neo_egress::Egress::new(neo_egress::EgressPolicy::new(true)),
        Default::default(),
    )
    .await?;
    let (spec, _) = neo_domain::filter::parse(
        &json!({"conditions": {"combinator": "and", "rules": [{"field": "$id", "operator": ">", "value": 0}]}}),
        jiff::Timestamp::now(),
        None,
    )?;
    let neo_domain::filter::FilterSpec::Query { root, .. } = spec else {
        unreachable!()
    };
    let started = Instant::now();
    let (mut pages, mut rows) = (0u64, 0usize);
    let mut after = neo_psa::client::Cursor::default();
    loop {
        let p = client.page(EntityType::Ticket, &root, &after).await?;
        pages += 1;
        rows += p.rows.len();
        match p.next {
            Some(next) if !p.exhausted => after = next,
            _ => break,
        }
    }
    let took = started.elapsed();
    anyhow::ensure!(rows == tickets, "enumerated {rows} of {tickets}");
    let name = if latency_ms > 0 {
        format!("enumerate_latency_{latency_ms}ms")
    } else {
        "enumerate".into()
    };
    eprintln!(
        "{name}: {rows} tickets, {pages} pages in {took:.2?}: {:.1} pages/s",
        pages as f64 / took.as_secs_f64()
    );
    result(&name, pages as f64 / took.as_secs_f64(), "pages/s");
    result(
        &format!("{name}_rows"),
        rows as f64 / took.as_secs_f64(),
        "rows/s",
    );
    Ok(())
}
