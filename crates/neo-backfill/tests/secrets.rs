//! The master key with the real binary: `serve` with a PSA integration and a signing webhook,
//! `secrets rotate-master-key`, and a restart on the new key, after which a backfill still
//! enumerates the PSA (its credentials open) and every delivery is still signed with the
//! workflow's secret (the receiver verifies `X-Neo-Signature`). The old key, or any other,
//! no longer starts the service: a clear error and a non-zero exit, not a panic. On SQLite
//! with the default key beside the database file, and on PostgreSQL with key files.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{create_key, serve, Api, BIN};
use neo_store::testing::{fresh_store, Backend};
use serde_json::{json, Value};

const WEBHOOK_SECRET: &str = "whsec_rotation_0123456789abcdef";

#[derive(Default)]
struct Verified {
    ok: AtomicUsize,
    refused: AtomicUsize,
}

async fn verify(
    State(v): State<Arc<Verified>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let header = |n: &str| headers.get(n).and_then(|h| h.to_str().ok()).unwrap_or("");
    let ts = header("x-neo-timestamp").parse::<i64>().unwrap_or(0);
    let now = jiff::Timestamp::now().as_second();
    let execution_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["execution_id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let signed = neo_domain::signature::Signed {
        timestamp: ts,
        direction: neo_domain::signature::Direction::Execution,
        execution_id: &execution_id,
        body: &body,
    };
    match neo_domain::signature::verify(
        WEBHOOK_SECRET.as_bytes(),
        signed,
        header("x-neo-signature"),
        now,
    ) {
        Ok(()) => {
            v.ok.fetch_add(1, Ordering::SeqCst);
            (StatusCode::OK, axum::Json(json!({"status": "succeeded"})))
        }
        Err(e) => {
            v.refused.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": e.to_string()})),
            )
        }
    }
}

/// A webhook receiver that accepts only deliveries signed with [`WEBHOOK_SECRET`].
async fn verifying_receiver() -> (Arc<Verified>, String) {
    let v = Arc::new(Verified::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(verify))
        .with_state(v.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (v, url)
}

/// A backfill over the first 10 PSA tickets, run to completion; asserts all 10 succeeded.
async fn run_backfill(api: &Api, base: &str, wf: i64) {
    let b = api
        .post(
            base,
            "/backfills",
            json!({"target_workflow_id": wf, "reprocess": true, "max_in_flight": 5,
                   "filter_spec": {"conditions": {"combinator": "and", "rules": [
                       {"field": "$id", "operator": ">", "value": 0}]}, "limit": 10}}),
        )
        .await;
    let id = b["data"]["backfill"]["id"].as_str().unwrap().to_owned();
    let done = api
        .wait_backfill(base, &id, Duration::from_secs(60), |b| {
            matches!(b["state"].as_str(), Some("COMPLETED" | "FAILED"))
        })
        .await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(done["total_items"], 10, "the PSA was enumerated: {done}");
    assert_eq!(done["succeeded_count"], 10, "{done}");
}

/// `serve` with `key_file` must refuse to start: returns its stderr.
fn refused_start(db: &str, key_file: &Path) -> String {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", db])
        .env("NEO_MASTER_KEY_FILE", key_file)
        .env("NEO_LOG", "warn")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "serve started with the wrong master key {}",
                key_file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert_eq!(
        status.code(),
        Some(1),
        "an error exit, not a crash: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn run_ok(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("NEO_MASTER_KEY_FILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The whole scenario on `db`; `old_key`: the key file the database is sealed with (`None`:
/// SQLite's default file beside the database).
async fn rotate_and_restart(db: &str, old_key: Option<&Path>, dir: &Path) {
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets: 50,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = sim.config().clone();
    let (verified, hook) = verifying_receiver().await;
    let api = Api {
        http: reqwest::Client::new(),
        key: create_key(db),
    };
    let old_env: Vec<(&str, String)> = old_key
        .map(|k| ("NEO_MASTER_KEY_FILE", k.display().to_string()))
        .into_iter()
        .collect();
    let extra: Vec<(&str, &str)> = old_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = serve(db, &extra);
    api.put(
        &server.base,
        "/integrations/connectwise",
        json!({
        "site_url": sim.base_url, "company_id": c.cw_company, "public_key": c.cw_public_key,
        "private_key": c.cw_private_key, "client_id": c.cw_client_id}),
    )
    .await;
    let wf = api
        .post(&server.base, "/agents", json!({"name": "Signed hook", "executor": {"type": "webhook", "url": hook, "secret": WEBHOOK_SECRET}}))
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    run_backfill(&api, &server.base, wf).await;
    assert_eq!(verified.ok.load(Ordering::SeqCst), 10);
    drop(server);

    // The old key, kept aside to show it no longer opens the database.
    let old_copy = dir.join("old.key");
    let old_path = old_key.map(Path::to_path_buf).unwrap_or_else(|| {
        neo_store::secrets::sqlite_key_path(db).expect("a SQLite file database")
    });
    std::fs::copy(&old_path, &old_copy).unwrap();
    let new_key = dir.join("new.key");
    let new_key_s = new_key.display().to_string();
    let out = run_ok(&["secrets", "generate-key", "--out", &new_key_s]);
    assert!(out.starts_with("wrote master key "), "{out}");
    let mut rotate = vec![
        "secrets",
        "rotate-master-key",
        "--new-key-file",
        &new_key_s,
        "--database-url",
        db,
    ];
    let old_s = old_key.map(|k| k.display().to_string());
    if let Some(k) = &old_s {
        rotate.extend(["--master-key-file", k]);
    }
    let out = run_ok(&rotate);
    assert!(
        out.contains("re-wrapped 2 secrets of 1 integrations, 1 webhook secrets and 0 notification endpoint secrets"),
        "{out}"
    );

    // Restarted on the new key: the PSA credentials and the webhook secret still open.
    let server = serve(db, &[("NEO_MASTER_KEY_FILE", &new_key_s)]);
    run_backfill(&api, &server.base, wf).await;
    assert_eq!(verified.ok.load(Ordering::SeqCst), 20);
    assert_eq!(verified.refused.load(Ordering::SeqCst), 0);
    let integration = api.get(&server.base, "/integrations").await;
    assert!(
        integration.to_string().contains("private_key"),
        "secret names still listed: {integration}"
    );
    drop(server);

    // The old key, and any other, are refused at start, naming both keys.
    let new_id = neo_store::MasterKey::load(&new_key)
        .unwrap()
        .id()
        .to_owned();
    let other = dir.join("other.key");
    run_ok(&[
        "secrets",
        "generate-key",
        "--out",
        &other.display().to_string(),
    ]);
    for wrong in [&old_copy, &other] {
        let stderr = refused_start(db, wrong);
        let wrong_id = neo_store::MasterKey::load(wrong).unwrap().id().to_owned();
        assert!(
            stderr.contains("wrong master key")
                && stderr.contains(&new_id)
                && stderr.contains(&wrong_id),
            "{stderr}"
        );
    }
    // A malformed key file: a clear error too.
    let bad = dir.join("bad.key");
    std::fs::write(&bad, "0123 not a key\n").unwrap();
    let stderr = refused_start(db, &bad);
    assert!(
        stderr.contains("is malformed") && stderr.contains("64 hexadecimal"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_on_sqlite_with_the_default_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    rotate_and_restart(&db, None, dir.path()).await;
    // The default key file now holds the new key: a plain restart works.
    let new_id = neo_store::MasterKey::load(&dir.path().join("new.key"))
        .unwrap()
        .id()
        .to_owned();
    let default = neo_store::MasterKey::load(&dir.path().join("neo.db.master-key")).unwrap();
    assert_eq!(default.id(), new_id);
    drop(serve(&db, &[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_on_postgres_with_key_files() {
    let Some(t) = fresh_store(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The test store sealed its key check with the tests' fixed key.
    let old = dir.path().join("test.key");
    std::fs::write(&old, neo_store::testing::TEST_MASTER_KEY_HEX).unwrap();
    rotate_and_restart(&t.url, Some(&old), dir.path()).await;
    // Without any key file PostgreSQL refuses to start, and says what to do.
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &t.url])
        .env_remove("NEO_MASTER_KEY_FILE")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("PostgreSQL needs --master-key-file"),
        "{stderr}"
    );
}
