//! Crash safety with the real binary: `kill -9` mid-run, restart, and the backfill completes
//! with every item executed at least once, counts exact, and every duplicate delivery carrying
//! the same `Idempotency-Key`. And SIGTERM: in-flight executions finish, leases are released.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_neo-backfill");

/// A `serve` child process, killed (SIGKILL) when dropped.
struct Server {
    child: Option<Child>,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn serve(db: &str, extra: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", db])
        .env("NEO_LEASE_SECS", "2")
        .env("NEO_POLL_INTERVAL_MS", "50")
        .env("NEO_LOG", "warn,neo_orchestrator=info,neo_backfill=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
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
    }
}

fn create_key(db: &str) -> String {
    let out = Command::new(BIN)
        .args(["keys", "create", "--tenant", "acme", "--database-url", db])
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

#[derive(Default)]
struct Log {
    /// entity id → idempotency keys of every delivery
    deliveries: Mutex<HashMap<String, Vec<String>>>,
    total: AtomicUsize,
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
    log.total.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(latency)).await;
    axum::Json(json!({"status": "succeeded"}))
}

async fn receiver(latency_ms: u64) -> (Arc<Log>, String) {
    let log = Arc::new(Log::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state((log.clone(), latency_ms));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (log, url)
}

struct Api {
    http: reqwest::Client,
    key: String,
}

impl Api {
    async fn post(&self, base: &str, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{base}{path}"))
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

    async fn get(&self, base: &str, path: &str) -> Value {
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

    async fn wait_backfill(
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

async fn setup(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_restart_completes_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let (log, url) = receiver(5).await;
    let first = serve(&db, &[]);
    let (api, id) = setup(&db, &first, &url, 2000, 20).await;

    // Let it run, then kill -9 in the middle.
    let start = Instant::now();
    while log.total.load(Ordering::SeqCst) < 600 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first); // SIGKILL
    let at_kill = log.total.load(Ordering::SeqCst);
    assert!(at_kill < 2000, "the run finished before the kill");

    let second = serve(&db, &[]);
    let done = api
        .wait_backfill(&second.base, &id, Duration::from_secs(120), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    let settled = done["succeeded_count"].as_i64().unwrap()
        + done["failed_count"].as_i64().unwrap()
        + done["skipped_count"].as_i64().unwrap();
    assert_eq!(settled, 2000, "{done}");
    assert_eq!(done["succeeded_count"], 2000);
    assert_eq!(done["in_flight_count"], 0);
    assert_eq!(done["pending_count"], 0);

    let deliveries = log.deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 2000, "every item executed at least once");
    let mut duplicates = 0;
    for (entity, keys) in &deliveries {
        assert!(
            keys.iter().all(|k| k == &keys[0]),
            "{entity} was delivered with different keys: {keys:?}"
        );
        duplicates += keys.len() - 1;
    }
    eprintln!(
        "deliveries: {} (redelivered after the crash: {duplicates})",
        log.total.load(Ordering::SeqCst)
    );
    assert!(
        duplicates <= 20,
        "at most the in-flight items of the killed process are redelivered"
    );

    // The items agree with the counters.
    let mut cursor = String::new();
    let mut succeeded = 0;
    loop {
        let page = api
            .get(
                &second.base,
                &format!("/backfills/{id}/items?page_size=200{cursor}"),
            )
            .await;
        succeeded += page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["status"] == "succeeded")
            .count();
        match page["meta"]["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(succeeded, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_executions_finish_and_releases_leases() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let (log, url) = receiver(700).await;
    let mut server = serve(&db, &[("NEO_SHUTDOWN_GRACE_SECS", "10")]);
    let (api, id) = setup(&db, &server, &url, 30, 5).await;
    api.wait_backfill(&server.base, &id, Duration::from_secs(20), |b| {
        b["in_flight_count"] == 5
    })
    .await;
    let mut child = server.child.take().unwrap();
    let t = Instant::now();
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
    assert!(t.elapsed() < Duration::from_secs(10));
    let delivered = log.total.load(Ordering::SeqCst);

    // Restart at once (leases would take 2 s to expire): what finished is recorded, nothing
    // is left in flight, and the rest completes without redelivery.
    let again = serve(&db, &[]);
    let b = api.get(&again.base, &format!("/backfills/{id}")).await["data"].clone();
    let s = b["succeeded_count"].as_u64().unwrap() as usize;
    assert!(
        s >= 5,
        "the in-flight executions finished and were recorded: {b}"
    );
    assert!(s <= delivered);
    let done = api
        .wait_backfill(&again.base, &id, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["succeeded_count"], 30);
    let deliveries = log.deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 30);
    assert!(
        deliveries.values().all(|k| k.len() == 1),
        "a graceful stop redelivers nothing"
    );
}
