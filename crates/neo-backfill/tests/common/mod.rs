//! Shared by the binary's integration tests: start `serve` as a child process, create keys
//! with the CLI, call the API.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_neo-backfill");

/// The master key file the tests' PostgreSQL servers share (SQLite ones generate their own
/// beside the database file): one fixed key, in a directory that lives as long as the test
/// process.
pub fn pg_master_key_file() -> String {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("a temporary directory");
        neo_store::MasterKey::from_hex(neo_store::testing::TEST_MASTER_KEY_HEX)
            .expect("the test master key")
            .write_new(&d.path().join("master.key"))
            .expect("write the test master key");
        d
    });
    dir.path().join("master.key").display().to_string()
}

/// A `serve` child process, killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub base: String,
    /// Every stdout (the JSON log) and stderr (panics) line so far.
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Sends SIGTERM, as systemd stops the service, and asserts a clean exit.
    pub async fn terminate(&mut self) {
        let mut child = self.child.take().expect("a running serve");
        assert!(Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert!(
            status.success(),
            "serve exits cleanly on SIGTERM: {status:?}"
        );
    }

    /// The output lines so far that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.output
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn serve(db: &str, extra: &[(&str, &str)]) -> Server {
    serve_with(db, extra, |_| {})
}

/// [`serve`], with `customize` applied to the command before it is spawned (e.g. a
/// `pre_exec` setting resource limits).
pub fn serve_with(
    db: &str,
    extra: &[(&str, &str)],
    customize: impl FnOnce(&mut Command),
) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", db])
        .env("NEO_LEASE_SECS", "2")
        .env("NEO_POLL_INTERVAL_MS", "50")
        .env("NEO_LOG", "warn,neo_orchestrator=info,neo_backfill=info")
        // The receivers are on loopback: opt in (`extra` may say "false").
        .env("NEO_WEBHOOK_ALLOW_PRIVATE", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if db.starts_with("postgres") {
        cmd.env("NEO_MASTER_KEY_FILE", pg_master_key_file());
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    customize(&mut cmd);
    let mut child = cmd.spawn().expect("spawn serve");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let output: Arc<Mutex<Vec<String>>> = Arc::default();
    let err_out = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("serve: {line}");
            err_out.lock().unwrap().push(line);
        }
    });
    let out = output.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            out.lock().unwrap().push(line.clone());
            if !sent {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "listening" {
                        let _ = tx.send(v["fields"]["addr"].as_str().unwrap().to_owned());
                        sent = true;
                    }
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve did not log its address");
    Server {
        child: Some(child),
        base: format!("http://{addr}/public-api"),
        output,
    }
}

pub fn create_key(db: &str) -> String {
    create_key_for(db, "acme")
}

/// A fresh API key of `tenant` (created if new), made with the CLI.
pub fn create_key_for(db: &str, tenant: &str) -> String {
    let out = Command::new(BIN)
        .args(["keys", "create", "--tenant", tenant, "--database-url", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

pub struct Api {
    pub http: reqwest::Client,
    pub key: String,
}

impl Api {
    pub async fn post(&self, base: &str, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, base, path, body).await
    }

    pub async fn put(&self, base: &str, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::PUT, base, path, body).await
    }

    /// Sends `body` as JSON and asserts a 2xx answer; returns its body.
    async fn send(&self, method: reqwest::Method, base: &str, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    pub async fn get(&self, base: &str, path: &str) -> Value {
        self.http
            .get(format!("{base}{path}"))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn wait_backfill(
        &self,
        base: &str,
        id: &str,
        limit: Duration,
        f: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let b = self.get(base, &format!("/backfills/{id}")).await["data"].clone();
            if f(&b) {
                return b;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting; backfill is {b}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Api {
    /// Every item of backfill `id`, page by page.
    pub async fn items(&self, base: &str, id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .get(
                    base,
                    &format!("/backfills/{id}/items?page_size=200{cursor}"),
                )
                .await;
            out.extend(
                page["data"]
                    .as_array()
                    .expect("an items page")
                    .iter()
                    .cloned(),
            );
            match page["meta"]["pagination"]["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return out,
            }
        }
    }

    /// Reads every item of backfill `id` (all pages) and asserts that each counter of the
    /// backfill equals the number of items in that status, and `total_items` their number.
    /// Returns the backfill as read.
    pub async fn assert_counters_exact(&self, base: &str, id: &str) -> Value {
        let mut counts: HashMap<String, i64> = HashMap::new();
        let items = self.items(base, id).await;
        let total = items.len() as i64;
        for item in items {
            *counts
                .entry(item["status"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        let b = self.get(base, &format!("/backfills/{id}")).await["data"].clone();
        for status in [
            "pending",
            "in_flight",
            "succeeded",
            "failed",
            "skipped",
            "cancelled",
        ] {
            assert_eq!(
                b[format!("{status}_count")].as_i64(),
                Some(counts.get(status).copied().unwrap_or(0)),
                "{status}: counter vs items; {b}"
            );
        }
        assert_eq!(b["total_items"].as_i64(), Some(total), "total_items; {b}");
        b
    }
}

/// Executions the replica at `base` dispatched, from its `/metrics`.
/// Integration members that take the PSA request budget out of the way (the largest allowance,
/// all of it for backfills): for tests about something else than pacing, whose thousands of
/// PSA requests would otherwise take minutes under a PSA's documented limit.
pub fn unpaced() -> Value {
    json!({"requests_per_hour": 10_000_000, "backfill_share": 100})
}

/// Connects the tenant of `api` to the simulator's `psa` (its settings and secrets, plus the
/// members of `extra`, such as `requests_per_hour`); returns the integration as read.
pub async fn connect_psa(
    api: &Api,
    base: &str,
    sim: &psa_sim::SimHandle,
    psa: &str,
    extra: Value,
) -> Value {
    let (mut config, secrets) = sim.integration(psa);
    let c = config.as_object_mut().unwrap();
    c.extend(secrets.as_object().unwrap().clone());
    c.extend(extra.as_object().cloned().unwrap_or_default());
    api.put(base, &format!("/integrations/{psa}"), config).await
}

pub async fn dispatched(api: &Api, base: &str) -> u64 {
    metric(api, base, "neo_executions_dispatched_total")
        .await
        .unwrap_or(0.0) as u64
}

/// The sum of a process's `/metrics` series named `name` (any labels); `None` if it has none.
pub async fn metric(api: &Api, base: &str, name: &str) -> Option<f64> {
    let text = api
        .http
        .get(base.replace("/public-api", "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let values: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

pub async fn setup(
    db: &str,
    server: &Server,
    url: &str,
    n: usize,
    max_in_flight: i64,
) -> (Api, String) {
    let api = Api {
        http: reqwest::Client::new(),
        key: create_key(db),
    };
    let wf = api
        .post(&server.base, "/agents", json!({"name": "Hook", "executor": {"type": "webhook", "url": url, "secret": "whsec_0123456789abcdef"}}))
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("T{i:05}")).collect();
    let b = api
        .post(&server.base, "/backfills", json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}, "max_in_flight": max_in_flight}))
        .await;
    (
        api,
        b["data"]["backfill"]["id"].as_str().unwrap().to_owned(),
    )
}

// ---- a recording webhook receiver ----

#[derive(Default)]
pub struct Log {
    /// entity id → idempotency keys of every delivery
    pub deliveries: Mutex<HashMap<String, Vec<String>>>,
    pub total: AtomicUsize,
    pub current: AtomicUsize,
    pub max: AtomicUsize,
}

async fn hook(
    State((log, latency)): State<(Arc<Log>, u64)>,
    headers: HeaderMap,
    body: String,
) -> axum::Json<Value> {
    let v: Value = serde_json::from_str(&body).unwrap();
    let key = headers["idempotency-key"].to_str().unwrap().to_owned();
    let entity = v["entity"]["id"].as_str().unwrap().to_owned();
    log.deliveries
        .lock()
        .unwrap()
        .entry(entity)
        .or_default()
        .push(key);
    let now = log.current.fetch_add(1, Ordering::SeqCst) + 1;
    log.max.fetch_max(now, Ordering::SeqCst);
    log.total.fetch_add(1, Ordering::SeqCst);
    // Counted out on drop: when a sender dies mid-request (a killed replica), hyper drops this
    // future during the sleep, and a decrement after it would never run, leaving `current`
    // too high for the rest of the run.
    let _in_handler = InHandler(&log.current);
    tokio::time::sleep(Duration::from_millis(latency)).await;
    axum::Json(json!({"status": "succeeded"}))
}

struct InHandler<'a>(&'a AtomicUsize);

impl Drop for InHandler<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A recording webhook receiver answering 200 after `latency_ms`; returns its log and URL.
pub async fn receiver(latency_ms: u64) -> (Arc<Log>, String) {
    let log = Arc::new(Log::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state((log.clone(), latency_ms));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (log, url)
}

/// A receiver that refuses the way a real one does: HTTP 503 on an entity's first attempt
/// (the service retries), then 422 with its reason in the structured `error` member, which the
/// dashboard shows; returns its URL.
pub async fn refusing_receiver(reason: &'static str) -> String {
    async fn refuse(
        State(reason): State<&'static str>,
        body: String,
    ) -> (axum::http::StatusCode, axum::Json<Value>) {
        let v: Value = serde_json::from_str(&body).unwrap();
        let code = if v["attempt"].as_i64() == Some(1) {
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        };
        (code, axum::Json(json!({"error": reason})))
    }
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(refuse))
        .with_state(reason);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

// ---- PostgreSQL ----

pub fn unavailable(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL is required in CI: {why}");
    }
    eprintln!("SKIPPED: PostgreSQL is not available: {why}");
}

pub fn psql(url: &str, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A throw-away database on the shared server, dropped at the end.
pub struct SharedDb {
    admin: String,
    name: String,
    pub url: String,
}

impl SharedDb {
    pub fn create() -> Option<Self> {
        let admin = std::env::var("NEO_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("neo_replicas_{}", uuid::Uuid::new_v4().simple());
        if let Err(e) = psql(&admin, &format!("CREATE DATABASE {name}")) {
            unavailable(&e);
            return None;
        }
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Some(Self {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for SharedDb {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
