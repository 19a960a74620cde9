//! `neo-backfill demo`: everything in one command, no set-up. A PSA simulator, the service on
//! a fresh SQLite file, a demo tenant with a ConnectWise integration pointing at the
//! simulator, a CHAINED_ACTIONS workflow on the simulated executor (6% of the tickets fail
//! every time, 8% hit a record locked by another user and fail once), and one backfill over a
//! few hundred open Help Desk tickets with its window open now. Shows progress until the
//! backfill completes, then starts a second, slow backfill to pause and resume, prints the next
//! steps as commands that work while it serves (rerun the failed ones: the locked records now
//! succeed, the others fail again), and serves until Ctrl-C.
//!
//! Before the slow backfill, safe bulk changes (a `psa_actions` workflow that really writes to the
//! simulated PSA): a change to hundreds of records is only trusted once it has been previewed
//! and can be undone, so the demo shows the preview (a shadow run, with the simulator's write
//! log as proof that nothing was written), the apply, and a revert that leaves alone the one
//! ticket a technician edited in the meantime.

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
    /// How many tickets the safe-bulk-changes scenario previews, applies and reverts.
    #[arg(long, env = "NEO_DEMO_BULK_LIMIT", default_value_t = 200)]
    bulk_limit: u64,
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
    // The PSA request budget is the simulator's own limit (ConnectWise's 1,000 a minute), all of
    // it for backfills: the demo has no live traffic to leave room for.
    let (mut config, secrets) = sim.integration("connectwise");
    if let Some(c) = config.as_object_mut() {
        c.insert("requests_per_hour".into(), json!(60_000));
        c.insert("backfill_share".into(), json!(100));
    }
    store
        .put_integration(&tenant.id, "connectwise", config, secrets, now)
        .await?;
    let triage = store
        .insert_workflow(
            &tenant.id,
            NewWorkflow {
                name: "Demo triage".into(),
                description: Some(format!(
                    "Classifies and routes tickets (simulated executor: {:.0}% fail every time, \
                     {:.0}% hit a record locked by another user and fail once)",
                    PERMANENT_RATE * 100.0,
                    TRANSIENT_RATE * 100.0
                )),
                autonomy_type: AutonomyType::ChainedActions,
                entity_type: EntityType::Ticket,
                state: WorkflowState::Enabled,
                credit_tier: 1,
                executor: json!({"type": "simulated", "latency_ms": a.latency_ms,
                    "failure_rate": PERMANENT_RATE, "transient_rate": TRANSIENT_RATE, "seed": SEED}),
            },
            now,
        )
        .await?;
    let enrichment = store
        .insert_workflow(
            &tenant.id,
            NewWorkflow {
                name: "Demo enrichment".into(),
                description: Some(format!(
                    "Adds company details to tickets, slowly (simulated executor, {} s per \
                     ticket, no failures)",
                    SLOW_LATENCY_MS / 1000
                )),
                autonomy_type: AutonomyType::ChainedActions,
                entity_type: EntityType::Ticket,
                state: WorkflowState::Enabled,
                credit_tier: 1,
                executor: json!({"type": "simulated", "latency_ms": SLOW_LATENCY_MS, "seed": 7}),
            },
            now,
        )
        .await?;

    // Beyond tickets: a workflow over companies and one over configurations (assets).
    let mut beyond = Vec::new();
    for (name, description, entity_type) in BEYOND_TICKETS {
        let wf = store
            .insert_workflow(
                &tenant.id,
                NewWorkflow {
                    name: (*name).into(),
                    description: Some((*description).into()),
                    autonomy_type: AutonomyType::ChainedActions,
                    entity_type: *entity_type,
                    state: WorkflowState::Enabled,
                    credit_tier: 1,
                    executor: json!({"type": "simulated", "latency_ms": 20, "seed": 11}),
                },
                now,
            )
            .await?;
        beyond.push(wf.id);
    }

    let orchestrator = neo_orchestrator::OrchestratorConfig {
        // Everything in the demo runs on loopback: webhooks may target it too.
        egress_allow_private: true,
        // Ctrl-C need not wait for the slow backfill's execution in flight.
        shutdown_grace: Duration::from_secs(1),
        ..Default::default()
    };
    let breaker_threshold = orchestrator.breaker_threshold;
    let service = Service::start(
        store,
        clock,
        ApiConfig {
            egress_allow_private: true,
            ..Default::default()
        },
        orchestrator,
        a.listen,
    )
    .await?;
    let base = format!("http://{}", service.addr);
    let stop = Arc::new(tokio::sync::Notify::new());
    let serving = {
        let stop = stop.clone();
        tokio::spawn(service.run_until(async move { stop.notified().await }))
    };

    // The backfills are created through the public API, as a user would.
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("{base}/public-api"),
        key: key.clone(),
    };
    let (id, _) = api
        .create_backfill(json!({
            "target_workflow_id": triage.id,
            "filter_spec": {"conditions": {"combinator": "and", "rules": [
                {"field": "board/name", "operator": "=", "value": "Help Desk"},
                {"field": "$closed", "operator": "=", "value": false}]}, "limit": a.limit},
            "max_in_flight": 10,
            "timezone": "UTC",
        }))
        .await?;

    println!("neo-backfill demo");
    println!("  Dashboard:  {base}/  (sign in with the API key below)");
    println!("  API key:    {key}");
    println!("  API:        {}  (OpenAPI: {0}/openapi.json)", api.base);
    println!(
        "  PSA:        simulated ConnectWise at {} ({} tickets)",
        sim.base_url, a.tickets
    );
    println!("  Database:   {url}");
    println!();
    println!(
        "Backfill {id} runs \"Demo triage\" over {} open Help Desk tickets.",
        a.limit
    );
    println!("Paste this line into a shell to use the API while the demo serves:");
    println!("  export NEO={base} NEO_KEY={key} ID={id}");
    println!("  curl -s --fail-with-body -H \"Authorization: Bearer $NEO_KEY\" $NEO/public-api/backfills/$ID");
    println!();
    std::io::stdout().flush()?;

    let ctrl_c = tokio::spawn(shutdown_signal());
    tokio::pin!(ctrl_c);
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let b = loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                stop.notify_one();
                let _ = serving.await;
                return Ok(());
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let b = api.get(&format!("/backfills/{id}"), &[]).await?["data"].clone();
        let line = progress_line(&b);
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
            break b;
        }
    };
    let state = b["state"].as_str().unwrap_or("");
    println!(
        "Backfill {id} is {state}: {} succeeded, {} failed, {} skipped.",
        b["succeeded_count"], b["failed_count"], b["skipped_count"]
    );
    // What the failures were, as the API reports them.
    let failed = api.failed_items(&id).await?;
    let locked = failed
        .iter()
        .filter(|i| i["error"].as_str() == Some(neo_orchestrator::executor::SIMULATED_LOCKED))
        .count();
    let permanent = failed.len() - locked;
    if !failed.is_empty() {
        println!(
            "  {locked} failed on a record locked by another user (they succeed when run \
             again), {permanent} fail every time."
        );
    }

    // Companies and configurations, each with a filter on its own fields.
    let mut others = Vec::new();
    for ((name, _, entity), (wf, (what, filter))) in BEYOND_TICKETS
        .iter()
        .zip(beyond.iter().zip(beyond_filters()))
    {
        let (id, _) = api
            .create_backfill(
                json!({"target_workflow_id": wf, "entity_type": entity.as_str(),
                "max_in_flight": 10,
                "timezone": "UTC", "filter_spec": {"conditions": filter}}),
            )
            .await?;
        others.push((id, *name, what));
    }
    for (id, name, what) in &others {
        let b = loop {
            let b = api.get(&format!("/backfills/{id}"), &[]).await?["data"].clone();
            if matches!(
                b["state"].as_str(),
                Some("COMPLETED" | "FAILED" | "CANCELLED")
            ) {
                break b;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        println!(
            "Backfill {id} ran \"{name}\" over {} {what}: {}, {} succeeded.",
            b["total_items"],
            b["state"].as_str().unwrap_or("?"),
            b["succeeded_count"]
        );
    }

    // Safe bulk changes: a psa_actions workflow previewed, applied and undone.
    let bulk = safe_bulk_changes(&api, &sim, a.bulk_limit).await?;

    // Something that runs for hours, to pause and resume.
    let (slow, created) = api
        .create_backfill(json!({
            "target_workflow_id": enrichment.id,
            "filter_spec": {"conditions": {"combinator": "and", "rules": [
                {"field": "$closed", "operator": "=", "value": false}]}},
            "max_in_flight": 1,
            "timezone": "UTC",
        }))
        .await?;
    let slow_total = created["backfill"]["total_estimated"]
        .as_u64()
        .or_else(|| created["cost_estimate"]["total_entities"].as_u64())
        .unwrap_or(0);
    let slow_minutes = slow_total * SLOW_LATENCY_MS / 60_000;
    let slow_takes = if slow_minutes >= 120 {
        format!("{} h", slow_minutes / 60)
    } else {
        format!("{slow_minutes} min")
    };

    println!();
    println!("Next steps: paste the export line into a shell, then any command below (each works");
    println!("while the demo serves; the API tour in README.md runs as written after it too).");
    println!(
        "  export NEO={base} NEO_KEY={key} ID={id} SLOW={slow} SHADOW={}",
        bulk.shadow
    );
    let auth = "-H \"Authorization: Bearer $NEO_KEY\"";
    if !failed.is_empty() {
        println!("  # 1. The failed tickets, each with its error:");
        println!(
            "  curl -s --fail-with-body {auth} \"$NEO/public-api/backfills/$ID/items?status=failed&page_size=200\""
        );
        println!(
            "  # 2. Rerun the failed ones (a child backfill): the {locked} locked records now \
             succeed, the {permanent} others fail again."
        );
        if permanent as i64 >= breaker_threshold {
            println!(
                "  #    With {permanent} failures to come the child may pause itself (circuit \
                 breaker: {breaker_threshold} failures in a row): resume it with \
                 POST $NEO/public-api/backfills/<child id>/resume."
            );
        }
        println!(
            "  curl -s --fail-with-body -X POST {auth} -H \"Idempotency-Key: rerun-$ID\" \
             $NEO/public-api/backfills/$ID/rerun-failed"
        );
    }
    println!(
        "  # 3. $SLOW runs \"Demo enrichment\" over {slow_total} open tickets, one at a time, {} s \
         each (about {slow_takes}): pause it, see it stop on the dashboard, resume it.",
        SLOW_LATENCY_MS / 1000
    );
    println!("  curl -s --fail-with-body -X POST {auth} $NEO/public-api/backfills/$SLOW/pause");
    println!("  curl -s --fail-with-body -X POST {auth} $NEO/public-api/backfills/$SLOW/resume");
    println!(
        "  # 4. What the shadow run $SHADOW would have changed, totalled (its apply is {}, \
         and the apply's revert {}).",
        bulk.apply, bulk.revert
    );
    println!("  curl -s --fail-with-body {auth} $NEO/public-api/backfills/$SHADOW/changes");
    println!();
    println!("Dashboard: {base}/ (sign in with the API key {key}). Serving until Ctrl-C.");
    std::io::stdout().flush()?;

    ctrl_c.await.ok();
    stop.notify_one();
    let _ = serving.await;
    Ok(())
}

/// The demo workflow's shares of tickets that fail every time and that fail once.
const PERMANENT_RATE: f64 = 0.06;
const TRANSIENT_RATE: f64 = 0.08;
/// Which tickets fail. Over the default 300 tickets of the default simulator this one gives
/// 18 permanent and 24 transient failures (the expected 6% and 8%): the rerun's 18 failures
/// stay under the circuit breaker's 25 in a row.
const SEED: u64 = 34;
/// The demo's workflows over other entity types: (name, description, entity type).
const BEYOND_TICKETS: &[(&str, &str, EntityType)] = &[
    (
        "Demo company enrichment",
        "Fills in each active client company's details (simulated executor)",
        EntityType::Company,
    ),
    (
        "Demo warranty check",
        "Flags configurations (assets) whose warranty ends by mid-2027 (simulated executor)",
        EntityType::Configuration,
    ),
];

/// What each of [`BEYOND_TICKETS`] runs over: a description and its ConnectWise filter.
fn beyond_filters() -> [(&'static str, Value); 2] {
    [
        (
            "active companies",
            json!({"combinator": "and", "rules": [
                {"field": "deletedFlag", "operator": "=", "value": false}]}),
        ),
        (
            "active configurations whose warranty ends before 2027-07-01",
            json!({"combinator": "and", "rules": [
                {"field": "activeFlag", "operator": "=", "value": true},
                {"field": "warrantyExpirationDate", "operator": "<",
                 "value": {"$datetime": "2027-07-01T00:00:00Z"}}]}),
        ),
    ]
}

/// The safe-bulk-changes workflow's changes: two fields and an internal note on each ticket.
fn escalation_executor() -> Value {
    json!({"type": "psa_actions", "actions": [
        {"type": "update_fields", "fields": {"priority/id": ESCALATED_PRIORITY, "severity": "High"}},
        {"type": "add_note", "internal": true,
         "text": "Escalated from {{priority/name}} by backfill {{backfill_id}} (neo-backfill demo)."}]})
}

/// The priority the escalation leaves, and the one it sets (the simulator's 3 and 2).
const NORMAL_PRIORITY: i64 = 3;
const ESCALATED_PRIORITY: i64 = 2;

/// What the safe-bulk-changes scenario created: the shadow run and its two children.
struct Bulk {
    shadow: String,
    apply: String,
    revert: String,
}

/// The second scenario: a `psa_actions` workflow previewed by a shadow run (nothing written),
/// applied, then reverted after a technician has edited one of its tickets (that one is
/// skipped, not overwritten). The write log of the simulator shows what reached the PSA.
async fn safe_bulk_changes(
    api: &Api,
    sim: &psa_sim::SimHandle,
    limit: u64,
) -> anyhow::Result<Bulk> {
    let wf = api
        .post(
            "/agents",
            json!({"name": "Demo escalation",
                "description": "Raises open Normal tickets to High priority and severity, with an internal note (psa_actions)",
                "executor": escalation_executor()}),
        )
        .await?;
    let wf = wf["data"]["id"].as_i64().context("workflow id")?;
    println!();
    println!(
        "Safe bulk changes: \"Demo escalation\" (psa_actions) sets priority/id {NORMAL_PRIORITY} \
         → {ESCALATED_PRIORITY} and severity → High on open Normal tickets, with an internal note."
    );
    let log_before = sim.writes().len();
    let (shadow, _) = api
        .create_backfill(json!({
            "target_workflow_id": wf,
            "mode": "shadow",
            "filter_spec": {"conditions": {"combinator": "and", "rules": [
                {"field": "priority/id", "operator": "=", "value": NORMAL_PRIORITY},
                {"field": "$closed", "operator": "=", "value": false}]}, "limit": limit},
            "max_in_flight": 20,
            "timezone": "UTC",
        }))
        .await?;
    let b = follow(api, &shadow).await?;
    let written = sim.writes().len() - log_before;
    println!(
        "Shadow run {shadow} over {} tickets: {}, {} succeeded, {} failed; nothing written (the \
         simulator's write log has {written} new writes).",
        b["total_items"],
        b["state"].as_str().unwrap_or("?"),
        b["succeeded_count"],
        b["failed_count"]
    );
    let totals = api
        .get(&format!("/backfills/{shadow}/changes"), &[])
        .await?["data"]
        .clone();
    let notes = api
        .items(&shadow, None)
        .await?
        .iter()
        .filter(|i| i["diff"]["notes"].as_array().is_some_and(|n| !n.is_empty()))
        .count();
    println!("  It would change (GET /public-api/backfills/{shadow}/changes):");
    for t in totals.as_array().into_iter().flatten().take(20) {
        println!(
            "    {}: {} tickets, {} → {}",
            t["field"].as_str().unwrap_or("?"),
            t["entities"],
            t["previous_value"],
            t["new_value"]
        );
    }
    println!("    and add an internal note to {notes} tickets.");

    let applied = api
        .post(&format!("/backfills/{shadow}/apply"), Value::Null)
        .await?;
    let apply = child_id(&applied)?;
    let b = follow(api, &apply).await?;
    let writes = &sim.writes()[log_before..];
    let count = |k: psa_sim::WriteKind| {
        writes
            .iter()
            .filter(|w| w.kind == k && (200..300).contains(&w.status))
            .count()
    };
    println!(
        "Applied as {apply}: {}, {} succeeded, {} failed; the simulator logged {} ticket updates \
         and {} notes.",
        b["state"].as_str().unwrap_or("?"),
        b["succeeded_count"],
        b["failed_count"],
        count(psa_sim::WriteKind::Update),
        count(psa_sim::WriteKind::Note)
    );

    // A technician changes one of the escalated tickets before the revert.
    let edited = api
        .items(&apply, Some("succeeded"))
        .await?
        .into_iter()
        .find(|i| {
            i["diff"]["changes"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
        .and_then(|i| i["entity_id"].as_str().map(str::to_owned))
        .context("an escalated ticket")?;
    sim.try_technician_edit(
        "connectwise",
        edited.parse().context("a ticket id")?,
        "priority/id",
        json!(1),
    )
    .map_err(anyhow::Error::msg)?;
    println!("Meanwhile a technician set ticket {edited} to priority 1 in the PSA.");

    let reverted = api
        .post(
            &format!("/backfills/{apply}/revert"),
            json!({"remove_notes": true}),
        )
        .await?;
    let revert = child_id(&reverted)?;
    let b = follow(api, &revert).await?;
    println!(
        "Reverted as {revert} (notes removed too): {}, {} succeeded, {} failed, {} skipped.",
        b["state"].as_str().unwrap_or("?"),
        b["succeeded_count"],
        b["failed_count"],
        b["skipped_count"]
    );
    for i in api.items(&revert, Some("skipped")).await? {
        println!(
            "  skipped ticket {}: {}",
            i["entity_id"].as_str().unwrap_or("?"),
            i["error"].as_str().unwrap_or("")
        );
    }
    // What the PSA holds now.
    let snapshot = api.items(&shadow, None).await?;
    let back = snapshot
        .iter()
        .filter_map(|i| i["entity_id"].as_str()?.parse::<u64>().ok())
        .filter_map(|t| sim.ticket_row("connectwise", t))
        .filter(|row| row["priority"]["id"].as_i64() == Some(NORMAL_PRIORITY))
        .count();
    println!(
        "  {back} of {} tickets are back at priority/id {NORMAL_PRIORITY}; ticket {edited} keeps \
         the technician's priority.",
        snapshot.len()
    );
    Ok(Bulk {
        shadow,
        apply,
        revert,
    })
}

/// The id of the child backfill an apply or revert answered.
fn child_id(created: &Value) -> anyhow::Result<String> {
    created["data"]["backfill"]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no child backfill in {created}"))
}

/// Follows backfill `id` until it ends, with a progress line on stderr; its final state.
async fn follow(api: &Api, id: &str) -> anyhow::Result<Value> {
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    loop {
        let b = api.get(&format!("/backfills/{id}"), &[]).await?["data"].clone();
        let line = format!("{id} {}", progress_line(&b));
        if tty {
            eprint!("\r{line}");
        } else if line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        if matches!(
            b["state"].as_str(),
            Some("COMPLETED" | "FAILED" | "CANCELLED")
        ) {
            if tty {
                eprintln!();
            }
            return Ok(b);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Time one execution of the slow backfill takes (one at a time: it runs for hours).
const SLOW_LATENCY_MS: u64 = 5_000;

/// The public API, with the demo's key.
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    /// The answer of a GET (`{data, meta}`).
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .bearer_auth(&self.key)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        anyhow::ensure!(status.is_success(), "GET {path}: {status} {v}");
        Ok(v)
    }

    /// Creates a backfill: its id and the answer's `data`.
    async fn create_backfill(&self, body: Value) -> anyhow::Result<(String, Value)> {
        let r = self
            .http
            .post(format!("{}/backfills", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let created: Value = r.json().await?;
        anyhow::ensure!(
            status.is_success(),
            "creating a demo backfill failed: {status} {created}"
        );
        let id = created["data"]["backfill"]["id"]
            .as_str()
            .context("backfill id")?
            .to_owned();
        Ok((id, created["data"].clone()))
    }

    /// The answer of a POST with a JSON body (`Value::Null`: none).
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if !body.is_null() {
            r = r.json(&body);
        }
        let r = r.send().await?;
        let status = r.status();
        let v: Value = r.json().await?;
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {v}");
        Ok(v)
    }

    /// Every failed item of backfill `id`, page by page.
    async fn failed_items(&self, id: &str) -> anyhow::Result<Vec<Value>> {
        self.items(id, Some("failed")).await
    }

    /// Every item of backfill `id` (with `status`, if given), page by page.
    async fn items(&self, id: &str, status: Option<&str>) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("page_size", "200")];
            if let Some(s) = status {
                query.push(("status", s));
            }
            if let Some(c) = &cursor {
                query.push(("cursor", c));
            }
            let page = self.get(&format!("/backfills/{id}/items"), &query).await?;
            items.extend(page["data"].as_array().cloned().unwrap_or_default());
            cursor = page["meta"]["pagination"]["next_cursor"]
                .as_str()
                .map(str::to_owned);
            if cursor.is_none() {
                return Ok(items);
            }
        }
    }
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
