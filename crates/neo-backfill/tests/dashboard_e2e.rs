//! The dashboard in a real browser: Debian's headless Chromium, driven by playwright-core
//! (`e2e/dashboard.mjs`), against the real `serve` binary on a fresh SQLite file. Signs in,
//! creates a backfill with the wizard (rule builder, preflight, windows), watches it advance,
//! pauses, resumes, lets it complete with failures, reruns the failed ones and follows the
//! child/parent links; checks labels, 375 px and 1440 px layouts, and that no secret reaches
//! the browser. A second tenant is connected to the ConnectWise simulator (the first has no
//! integration, so its id lists are not checked against a PSA): there the wizard offers a
//! company workflow the company fields and a task workflow ids only, and a company backfill
//! built with the rule builder runs over the simulator's companies. Screenshots go to
//! `target/e2e-screenshots/`.
//!
//! A second test takes safe bulk changes through the dashboard against the ConnectWise
//! simulator over HTTP: a workflow's executor edited into `psa_actions`, a shadow run started
//! from the wizard and read (its diff table, the execution's audit, the simulator's empty write
//! log), applied, then reverted after a technician edited one ticket, which the revert skips
//! with its `changed_since` reason.
//!
//! A third test takes operator control (issue 21) through the dashboard
//! (`e2e/operator_control.mjs`): a trial run created in the wizard pauses with its result
//! panel and is continued to the end; a credit cap refused at step 3, then set, pauses the
//! backfill with its reason shown, and is raised in the edit form before Resume; and a
//! backfill on a slow receiver shows "measuring throughput…", then a measured ETA in the
//! viewer's zone and in its own.
//!
//! A fourth test takes failure triage (issue 22) through the dashboard (`e2e/failures.mjs`): a
//! backfill whose receiver failed in two ways (a 422 naming the ticket, a 503) shows two
//! causes with their counts in its Failures section, and "Rerun this cause" on the 422s
//! creates a child over exactly those entities (checked through the API).
//!
//! Needs `node` and `/usr/bin/chromium` (`./scripts/test` installs them, and `npm ci` in
//! `e2e/`). Without them the test is skipped with a message, except under `CI=true`, where it
//! fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn chromium() -> PathBuf {
    std::env::var_os("NEO_E2E_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Runs the browser script `e2e/<script>` against `base` (the service's `/public-api` URL)
/// with `key`, the given `env`, screenshots in `target/e2e-screenshots/<shots>`, within
/// `limit`; asserts it succeeded and returns its `RESULT {…}` line.
async fn run_script(
    script: &str,
    base: &str,
    key: &str,
    env: &[(&str, String)],
    shots: &str,
    limit: Duration,
) -> serde_json::Value {
    let root = workspace();
    let shots = root.join("target/e2e-screenshots").join(shots);
    let _ = std::fs::remove_dir_all(&shots);
    let start = Instant::now();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(root.join("e2e").join(script))
        .current_dir(&root)
        .env("NEO_E2E_DIR", root.join("e2e"))
        .env("NEO_E2E_BASE", base.trim_end_matches("/public-api"))
        .env("NEO_E2E_KEY", key)
        .env("NEO_E2E_SCREENSHOTS", &shots)
        .env("NEO_E2E_CHROMIUM", chromium())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("run node");
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("e2e/{script} took more than {limit:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    eprintln!("browser test took {:?}", start.elapsed());
    assert!(
        out.status.success(),
        "e2e/{script} failed ({}); screenshots in {}",
        out.status,
        shots.display()
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|r| serde_json::from_str(r).unwrap())
        .expect("the script's RESULT line")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tools(e2e: &Path) -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed (apt-get install -y nodejs npm)".into());
    }
    if !chromium().exists() {
        return Some(format!(
            "{} is missing (apt-get install -y chromium)",
            chromium().display()
        ));
    }
    if !e2e.join("node_modules/playwright-core").exists() {
        // `npm ci` installs the locked playwright-core (no browser download).
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(e2e)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Some("`npm ci` in e2e/ failed".into());
        }
    }
    None
}

/// Whether the browser tests can run here; panics under `CI=true` when they cannot.
fn tools_ready(e2e: &Path) -> bool {
    let Some(why) = missing_tools(e2e) else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the dashboard browser test cannot run: {why}");
    }
    eprintln!("SKIPPED dashboard browser test: {why} (./scripts/test installs what is missing)");
    false
}

/// A fresh service for a browser test: `serve` with `env` on a new SQLite file, and an API key of
/// `tenant`; `None` when the browser tools are missing (the test is skipped, see
/// [`tools_ready`]). Keep the directory for as long as the service runs.
fn service(
    tenant: &str,
    env: &[(&str, &str)],
) -> Option<(tempfile::TempDir, common::Server, common::Api)> {
    if !tools_ready(&workspace().join("e2e")) {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("e2e.db").display());
    let server = common::serve(&db, env);
    let api = common::Api {
        http: reqwest::Client::new(),
        key: common::create_key_for(&db, tenant),
    };
    Some((tmp, server, api))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_end_to_end_in_headless_chromium() {
    let root = workspace();
    let e2e = root.join("e2e");
    if !tools_ready(&e2e) {
        return;
    }

    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("e2e.db").display());
    // Retries come back within the test's patience.
    let server = common::serve(
        &db,
        &[
            ("NEO_BACKOFF_BASE_MS", "200"),
            ("NEO_BACKOFF_CAP_MS", "400"),
        ],
    );
    let api = common::Api {
        http: reqwest::Client::new(),
        key: common::create_key(&db),
    };
    let webhook_secret = "whsec_e2e_never_in_a_page_42";
    let refusing = common::refusing_receiver("board Help Desk is locked").await;
    api.post(
        &server.base,
        "/agents",
        json!({"name": "E2E Simulated", "credit_tier": 2, "description": "30% failures, 100 ms each",
               "executor": {"type": "simulated", "failure_rate": 0.3, "latency_ms": 100, "seed": 7}}),
    )
    .await;
    let hook = api
        .post(
            &server.base,
            "/agents",
            json!({"name": "Webhook Hook", "executor": {"type": "webhook", "url": refusing, "secret": webhook_secret}}),
        )
        .await;
    // A backfill whose receiver refuses (503, then 422 with its reason), settled before the
    // browser looks at why it failed.
    let refused = api
        .post(
            &server.base,
            "/backfills",
            json!({"target_workflow_id": hook["data"]["id"], "filter_spec": {"entity_ids": ["HD-1"]}}),
        )
        .await;
    let refused = refused["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.wait_backfill(&server.base, &refused, Duration::from_secs(30), |b| {
        b["state"] == "COMPLETED"
    })
    .await;

    // The ConnectWise tenant: its integration is the simulator; a company workflow (filters)
    // and a task workflow (ids only on ConnectWise).
    let cw_private_key = "cwPRIVATEe2eNeverInAPage7";
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets: 20,
        cw_private_key: cw_private_key.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let cw = common::Api {
        http: reqwest::Client::new(),
        key: common::create_key_for(&db, "globex"),
    };
    let c = sim.config();
    cw.put(
        &server.base,
        "/integrations/connectwise",
        json!({"site_url": sim.base_url, "company_id": c.cw_company, "public_key": c.cw_public_key,
               "private_key": c.cw_private_key, "client_id": c.cw_client_id}),
    )
    .await;
    for (name, entity) in [("Enrich companies", "company"), ("Chase tasks", "task")] {
        cw.post(
            &server.base,
            "/agents",
            json!({"name": name, "entity_type": entity,
                   "executor": {"type": "simulated", "failure_rate": 0, "latency_ms": 20, "seed": 3}}),
        )
        .await;
    }
    let companies: Vec<serde_json::Value> = sim
        .dataset()
        .companies
        .iter()
        .take(2)
        .map(|c| json!({"id": c.id.to_string(), "name": c.name}))
        .collect();
    assert_eq!(companies.len(), 2, "the simulator has companies");

    let shots = root.join("target/e2e-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let base = server.base.trim_end_matches("/public-api").to_owned();
    let start = Instant::now();
    let mut child = tokio::process::Command::new("node")
        .arg(e2e.join("dashboard.mjs"))
        .current_dir(&root)
        .env("NEO_E2E_BASE", &base)
        .env("NEO_E2E_KEY", &api.key)
        .env("NEO_E2E_WORKFLOW", "E2E Simulated")
        .env("NEO_E2E_IDS", "120")
        .env(
            "NEO_E2E_SECRETS",
            format!("{webhook_secret},{cw_private_key},{}", cw.key),
        )
        .env("NEO_E2E_CW_KEY", &cw.key)
        .env(
            "NEO_E2E_CW_COMPANIES",
            serde_json::to_string(&companies).unwrap(),
        )
        .env("NEO_E2E_SCREENSHOTS", &shots)
        .env("NEO_E2E_REFUSED", &refused)
        .env("NEO_E2E_CHROMIUM", chromium())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let status = tokio::time::timeout(Duration::from_secs(150), child.wait())
        .await
        .expect("the browser test took more than 150 s")
        .unwrap();
    eprintln!("browser test took {:?}", start.elapsed());
    assert!(
        status.success(),
        "e2e/dashboard.mjs failed ({status}); screenshots in {}",
        shots.display()
    );
    let n = std::fs::read_dir(&shots).unwrap().count();
    assert!(n >= 15, "only {n} screenshots in {}", shots.display());
}

/// Tickets the safe-bulk-changes run takes (the filter's `limit`).
const BULK_LIMIT: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_safe_bulk_changes_in_headless_chromium() {
    let Some((_tmp, server, api)) = service("initech", &[]) else {
        return;
    };
    let cw_private_key = "cwPRIVATEbulkNeverInAPage9";
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets: 400,
        cw_private_key: cw_private_key.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    common::connect_psa(&api, &server.base, &sim, "connectwise", common::unpaced()).await;
    // No workflow form on the dashboard: created through the API on the simulated executor,
    // turned into psa_actions on the workflows page by the browser.
    let wf = api
        .post(
            &server.base,
            "/agents",
            json!({"name": "Escalate Normal tickets", "description": "priority and severity to High, with a note",
                   "executor": {"type": "simulated", "latency_ms": 10}}),
        )
        .await;
    api.post(
        &server.base,
        "/agents",
        json!({"name": "Plain triage", "executor": {"type": "simulated", "latency_ms": 10}}),
    )
    .await;

    let result = run_script(
        "psa_actions.mjs",
        &server.base,
        &api.key,
        &[
            ("NEO_E2E_SIM", sim.base_url.clone()),
            ("NEO_E2E_WORKFLOW", "Escalate Normal tickets".into()),
            ("NEO_E2E_WORKFLOW_ID", wf["data"]["id"].to_string()),
            ("NEO_E2E_PLAIN", "Plain triage".into()),
            ("NEO_E2E_LIMIT", BULK_LIMIT.to_string()),
            ("NEO_E2E_SECRETS", cw_private_key.into()),
        ],
        "psa-actions",
        Duration::from_secs(150),
    )
    .await;

    // What the PSA holds, read from the simulator itself.
    let edited: u64 = result["edited"].as_str().unwrap().parse().unwrap();
    let items = api
        .items(&server.base, result["shadow"].as_str().unwrap())
        .await;
    assert_eq!(items.len() as u64, BULK_LIMIT);
    for i in &items {
        let id: u64 = i["entity_id"].as_str().unwrap().parse().unwrap();
        let row = sim.ticket_row("connectwise", id).unwrap();
        let notes = sim.notes("connectwise", id);
        let ours = notes
            .iter()
            .filter(|n| n.to_string().contains("Escalated from"))
            .count();
        if id == edited {
            assert_eq!(
                row["priority"]["id"], 1,
                "the technician's edit stays: {row}"
            );
            assert_eq!(ours, 1, "a skipped ticket keeps its note: {notes:?}");
        } else {
            assert_eq!(row["priority"]["id"], 3, "reverted: {row}");
            assert_eq!(ours, 0, "the revert removed the note: {notes:?}");
        }
    }
    let writes = sim.writes();
    let count = |k: psa_sim::WriteKind| {
        writes
            .iter()
            .filter(|w| w.kind == k && (200..300).contains(&w.status))
            .count() as u64
    };
    assert_eq!(
        count(psa_sim::WriteKind::Update),
        2 * BULK_LIMIT - 1,
        "the apply's updates and the revert's: {writes:?}"
    );
    assert_eq!(count(psa_sim::WriteKind::Note), BULK_LIMIT);
    assert_eq!(count(psa_sim::WriteKind::DeleteNote), BULK_LIMIT - 1);
}

/// The trial backfill's entities and its sample; the capped backfill's entities and its cap.
const TRIAL_IDS: u64 = 60;
const TRIAL_SAMPLE: u64 = 6;
const BUDGET_IDS: u64 = 20;
const BUDGET_CAP: u64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_operator_control_in_headless_chromium() {
    let Some((_tmp, server, api)) = service(
        "acme",
        &[
            ("NEO_BACKOFF_BASE_MS", "200"),
            ("NEO_BACKOFF_CAP_MS", "400"),
        ],
    ) else {
        return;
    };
    // Some of the trial's sample fails, so its result lists errors.
    api.post(
        &server.base,
        "/agents",
        json!({"name": "Trial triage", "credit_tier": 2,
               "executor": {"type": "simulated", "failure_rate": 0.3, "latency_ms": 30, "seed": 11}}),
    )
    .await;
    api.post(
        &server.base,
        "/agents",
        json!({"name": "Budget sweep", "credit_tier": 1,
               "executor": {"type": "simulated", "failure_rate": 0.0, "latency_ms": 30, "seed": 1}}),
    )
    .await;
    // A backfill that runs for the whole test on a slow receiver (2 at a time, 300 ms each),
    // started first so that it has been measured (20 items over 30 s of work) by the time the
    // browser looks again.
    let (_log, url) = common::receiver(300).await;
    let slow = api
        .post(
            &server.base,
            "/agents",
            json!({"name": "Slow receiver", "executor": {"type": "webhook", "url": url, "secret": "whsec_operator_control_e2e"}}),
        )
        .await;
    let ids: Vec<String> = (1..=2000).map(|i| format!("S{i}")).collect();
    let eta = api
        .post(
            &server.base,
            "/backfills",
            json!({"target_workflow_id": slow["data"]["id"], "filter_spec": {"entity_ids": ids},
                   "max_in_flight": 2, "timezone": "Europe/London", "name": "Slow sweep"}),
        )
        .await;
    let eta = eta["data"]["backfill"]["id"].as_str().unwrap().to_owned();

    let result = run_script(
        "operator_control.mjs",
        &server.base,
        &api.key,
        &[
            ("NEO_E2E_TRIAL_WF", "Trial triage".into()),
            ("NEO_E2E_TRIAL_IDS", TRIAL_IDS.to_string()),
            ("NEO_E2E_TRIAL_SAMPLE", TRIAL_SAMPLE.to_string()),
            ("NEO_E2E_BUDGET_WF", "Budget sweep".into()),
            ("NEO_E2E_BUDGET_IDS", BUDGET_IDS.to_string()),
            ("NEO_E2E_BUDGET_CAP", BUDGET_CAP.to_string()),
            ("NEO_E2E_ETA", eta.clone()),
            ("NEO_E2E_VIEWER_TZ", "Asia/Tokyo".into()),
        ],
        "operator-control",
        Duration::from_secs(150),
    )
    .await;

    // What the API says of what the browser did.
    let trial = api
        .get(
            &server.base,
            &format!("/backfills/{}", result["trial"].as_str().unwrap()),
        )
        .await;
    let trial = &trial["data"];
    assert_eq!(trial["state"], "COMPLETED", "{trial}");
    assert_eq!(trial["trial"]["sample_size"], TRIAL_SAMPLE);
    let shown = &result["trial_result"];
    for k in ["succeeded", "failed", "skipped"] {
        assert_eq!(
            trial["trial"]["result"][k], shown[k],
            "the panel showed the API's {k}: {trial}"
        );
    }
    assert_eq!(
        trial["succeeded_count"].as_u64().unwrap()
            + trial["failed_count"].as_u64().unwrap()
            + trial["skipped_count"].as_u64().unwrap(),
        TRIAL_IDS
    );
    let budget = api
        .get(
            &server.base,
            &format!("/backfills/{}", result["budget"].as_str().unwrap()),
        )
        .await;
    let budget = &budget["data"];
    assert_eq!(budget["state"], "COMPLETED", "{budget}");
    assert_eq!(
        budget["max_credits"], BUDGET_IDS,
        "the cap raised in the edit form"
    );
    assert_eq!(budget["credits_spent"], BUDGET_IDS);
    assert_eq!(result["eta_basis"], "measured", "{result}");
}

/// A receiver failing by entity `F{n}`: `n % 5` of 1 or 2 answers 422 naming the ticket (in
/// markup, which the page must show as text), 3 answers 503, the rest succeed.
async fn two_way_receiver() -> String {
    async fn answer(body: String) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let entity = v["entity"]["id"].as_str().unwrap_or("F0").to_owned();
        let n: u64 = entity.trim_start_matches('F').parse().unwrap_or(0);
        match n % 5 {
            1 | 2 => (
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(
                    json!({"error": format!("<b>ticket {entity}</b> failed validation: field \"priority\" is required")}),
                ),
            ),
            3 => (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": "down for maintenance"})),
            ),
            _ => (
                axum::http::StatusCode::OK,
                axum::Json(json!({"status": "succeeded"})),
            ),
        }
    }
    let app = axum::Router::new().route("/hook", axum::routing::post(answer));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_failure_triage_in_headless_chromium() {
    // One attempt each (the 503 fails at once), and no circuit breaker in the way.
    let Some((_tmp, server, api)) = service(
        "acme",
        &[
            ("NEO_MAX_ATTEMPTS", "1"),
            ("NEO_BREAKER_THRESHOLD", "100000"),
        ],
    ) else {
        return;
    };
    let url = two_way_receiver().await;
    let hook = api
        .post(
            &server.base,
            "/agents",
            json!({"name": "Two-way hook", "executor": {"type": "webhook", "url": url, "secret": "whsec_failures_e2e_0123456789"}}),
        )
        .await;
    let ids: Vec<String> = (1..=30).map(|i| format!("F{i}")).collect();
    let parent = api
        .post(
            &server.base,
            "/backfills",
            json!({"target_workflow_id": hook["data"]["id"], "filter_spec": {"entity_ids": ids},
                   "max_in_flight": 10, "timezone": "Europe/London", "name": "Two-way sweep"}),
        )
        .await;
    let parent = parent["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = api
        .wait_backfill(&server.base, &parent, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    // F1..F30: 12 with a 422, 6 with a 503.
    assert_eq!(done["failed_count"], 18, "{done}");
    let failed_with = |code: &str| -> Vec<String> {
        let mut out: Vec<String> = ids
            .iter()
            .filter(|e| {
                let n: u64 = e[1..].parse().unwrap();
                match code {
                    "422" => matches!(n % 5, 1 | 2),
                    _ => n % 5 == 3,
                }
            })
            .cloned()
            .collect();
        out.sort();
        out
    };

    let result = run_script(
        "failures.mjs",
        &server.base,
        &api.key,
        &[("NEO_E2E_BACKFILL", parent.clone())],
        "failures",
        Duration::from_secs(90),
    )
    .await;

    // The page showed the API's clusters.
    let clusters = api
        .get(&server.base, &format!("/backfills/{parent}/failures"))
        .await["data"]
        .clone();
    let shown = result["clusters"].as_array().unwrap();
    assert_eq!(shown.len(), 2, "{result}");
    for (page, api) in shown.iter().zip(clusters.as_array().unwrap()) {
        assert_eq!(page["kind"], api["kind"], "{page} {api}");
        assert_eq!(page["count"], api["count"], "{page} {api}");
        assert_eq!(page["signature"], api["signature"], "{page} {api}");
    }
    let count = |kind: &str| {
        shown
            .iter()
            .find(|c| c["kind"] == kind)
            .map(|c| c["count"].clone())
    };
    assert_eq!(count("http_4xx"), Some(json!(12)), "{result}");
    assert_eq!(count("http_5xx"), Some(json!(6)), "{result}");

    // The child reruns exactly the 422s.
    let child = result["child"].as_str().unwrap();
    let b = api.get(&server.base, &format!("/backfills/{child}")).await["data"].clone();
    assert_eq!(b["parent_backfill_run_id"], parent.as_str(), "{b}");
    let four = shown.iter().find(|c| c["kind"] == "http_4xx").unwrap();
    assert_eq!(
        b["rerun_causes"],
        json!({"error_signatures": [four["signature"]], "failure_kinds": []}),
        "{b}"
    );
    let mut entities: Vec<String> = api
        .items(&server.base, child)
        .await
        .iter()
        .map(|i| i["entity_id"].as_str().unwrap().to_owned())
        .collect();
    entities.sort();
    assert_eq!(entities, failed_with("422"));
    assert_eq!(failed_with("503").len(), 6);
}
