//! Secrets stay secret, with the real binary: a full scenario against `serve` at trace log
//! level never shows the API key, the PSA credentials or the webhook secret in its output, in
//! any response (body or header), in the OpenAPI document or in the metrics, nor in any column
//! of the database (PSA credentials and webhook secrets rest sealed); keys rest in the
//! database only as SHA-256 hashes (SQLite and PostgreSQL); and the SSRF guard holds at
//! dispatch for a name that resolves to loopback.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{create_key, receiver, serve, Api, BIN};
use neo_store::testing::{fresh_store, Backend};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// Everything the server sent back: status line, headers and body of every response.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let mut text = format!("{status}\n");
        for (k, v) in r.headers() {
            text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
        }
        let body = r.text().await.unwrap();
        text.push_str(&body);
        self.0.push(text);
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_responses_openapi_or_metrics() {
    let psa_private = "PRIVcwSECRETk3y9x7Qz";
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets: 200,
        cw_private_key: psa_private.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let webhook_secret = "whsec_LEAKCANARY_0123456789abcdef";
    let notify_secret = "nesec_LEAKCANARY_9876543210fedcba";
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let key = create_key(&db);
    let key_secret = key.rsplit('_').next().unwrap().to_owned();
    assert_eq!(key_secret.len(), 40);
    let server = serve(&db, &[("NEO_LOG", "trace")]);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let mut seen = Seen::default();
    let c = sim.config().clone();

    // A PSA integration with secrets, a webhook workflow with a secret, a PSA-filtered backfill
    // run to completion through the webhook.
    let (s, _) = seen
        .send(
            http.put(format!("{base}/integrations/connectwise"))
                .bearer_auth(&key)
                .json(&json!({
            "site_url": sim.base_url, "company_id": c.cw_company, "public_key": c.cw_public_key,
            "private_key": psa_private, "client_id": c.cw_client_id})),
        )
        .await;
    assert!(s < 300, "integration: {s}");
    let (log, url) = receiver(0).await;
    let (s, wf) = seen
        .send(http.post(format!("{base}/agents")).bearer_auth(&key).json(&json!({
            "name": "Hook", "executor": {"type": "webhook", "url": url, "secret": webhook_secret}})))
        .await;
    assert_eq!(s, 201, "{wf}");
    let wf = wf["data"]["id"].as_i64().unwrap();
    // A notification endpoint with its own secret: the run's events are signed with it (and
    // refused by the receiver, which has no such route: retried, logged).
    let (s, ep) = seen
        .send(
            http.post(format!("{base}/notification-endpoints"))
                .bearer_auth(&key)
                .json(&json!({"url": format!("{url}/events"), "secret": notify_secret})),
        )
        .await;
    assert_eq!(s, 201, "{ep}");
    let ep = ep["data"]["id"].as_str().unwrap().to_owned();
    let (s, bf) = seen
        .send(
            http.post(format!("{base}/backfills"))
                .bearer_auth(&key)
                .json(&json!({
            "target_workflow_id": wf, "max_in_flight": 5,
            "filter_spec": {"conditions": {"combinator": "and", "rules": [
                {"field": "$id", "operator": ">", "value": 0}]}, "limit": 20}})),
        )
        .await;
    assert_eq!(s, 201, "{bf}");
    let bf = bf["data"]["backfill"]["id"].as_str().unwrap().to_owned();
    let api = Api {
        http: http.clone(),
        key: key.clone(),
    };
    api.wait_backfill(&base, &bf, Duration::from_secs(60), |b| {
        b["state"] == "COMPLETED"
    })
    .await;
    assert_eq!(log.total.load(std::sync::atomic::Ordering::SeqCst), 20);

    // Failing requests, several carrying the secrets themselves.
    let wrong_key = format!("neo_sk_live_{}", "A".repeat(40));
    for k in [wrong_key.as_str(), "not-a-key", &key[..key.len() - 1]] {
        let (s, _) = seen
            .send(http.get(format!("{base}/backfills")).bearer_auth(k))
            .await;
        assert_eq!(s, 401);
    }
    let bodies = [
        ("/agents", "{\"name\": ".to_owned()),
        ("/agents", json!({"name": "x", "executor": {"type": "webhook", "url": "ftp://example.com/x", "secret": webhook_secret}}).to_string()),
        ("/agents", json!({"name": "x", "executor": {"type": "webhook", "url": url, "secret": webhook_secret, "extra": webhook_secret}}).to_string()),
        ("/agents", json!({"name": "x", "credit_tier": 9, "executor": {"type": "webhook", "url": url, "secret": webhook_secret}}).to_string()),
        ("/backfills", json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": [key]}, "max_in_flight": 0}).to_string()),
        ("/notification-endpoints", json!({"url": "ftp://example.com/x", "secret": notify_secret}).to_string()),
        ("/notification-endpoints", json!({"url": url, "secret": notify_secret, "extra": notify_secret}).to_string()),
    ];
    for (path, body) in &bodies {
        let (s, _) = seen
            .send(
                http.post(format!("{base}{path}"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone()),
            )
            .await;
        assert!((400..500).contains(&s), "{path} {body}: {s}");
    }
    let (s, _) = seen
        .send(
            http.put(format!("{base}/integrations/connectwise"))
                .bearer_auth(&key)
                .json(&json!({
            "site_url": sim.base_url, "private_key": psa_private})),
        )
        .await;
    assert!((400..500).contains(&s), "incomplete integration: {s}");
    let (s, items) = seen
        .send(
            http.get(format!("{base}/backfills/{bf}/items"))
                .bearer_auth(&key),
        )
        .await;
    assert_eq!(s, 200);
    let exec = items["data"][0]["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    for sig in ["sha256=00", "sha256=not-hex", ""] {
        let (s, _) = seen
            .send(
                http.post(format!("{base}/executions/{exec}/complete"))
                    .header("x-neo-timestamp", &ts)
                    .header("x-neo-signature", sig)
                    .json(&json!({"status": "succeeded"})),
            )
            .await;
        assert!(
            (400..500).contains(&s),
            "complete with signature {sig:?}: {s}"
        );
    }

    // Every GET of the OpenAPI document, with real ids, and the metrics.
    let (s, doc) = seen.send(http.get(format!("{base}/openapi.json"))).await;
    assert_eq!(s, 200);
    let key_id = {
        let out = Command::new(BIN)
            .args(["keys", "list", "--tenant", "acme", "--database-url", &db])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()[..26]
            .trim()
            .to_owned()
    };
    let mut gets = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_none() {
            continue;
        }
        let path = path
            .trim_start_matches("/public-api")
            .replace("{backfill_id}", &bf)
            .replace("{agent_id}", &wf.to_string())
            .replace("{execution_id}", &exec)
            .replace("{key_id}", &key_id)
            .replace("{endpoint_id}", &ep)
            .replace("{psa}", "connectwise");
        assert!(!path.contains('{'), "no id for {path}");
        let (s, _) = seen
            .send(http.get(format!("{base}{path}")).bearer_auth(&key))
            .await;
        assert!(s < 500, "GET {path}: {s}");
        gets += 1;
    }
    assert!(gets >= 12, "{gets} GET operations");
    let root = base.trim_end_matches("/public-api");
    let (s, _) = seen.send(http.get(format!("{root}/metrics"))).await;
    assert_eq!(s, 200);
    let openapi_cli = Command::new(BIN).arg("openapi").output().unwrap().stdout;

    // Give the log a moment to catch up with the last access lines (each is written before its
    // response, so they are in the pipe): poll for the last request's line.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server
        .output
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("\"/metrics\""))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no access line for /metrics"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let output = server.output.lock().unwrap().join("\n");
    assert!(
        output.lines().count() > 100,
        "trace logging is on: {} lines",
        output.lines().count()
    );
    let basic = sim.cw_authorization();
    let basic = basic.trim_start_matches("Basic ");
    let secrets = [
        ("the API key", key.as_str()),
        ("the API key's secret", key_secret.as_str()),
        ("the PSA private key", psa_private),
        ("the PSA Basic credentials", basic),
        ("the webhook secret", webhook_secret),
        ("the notification endpoint's secret", notify_secret),
    ];
    eprintln!(
        "searched {} output lines, {} responses ({gets} GET operations), the OpenAPI document",
        output.lines().count(),
        seen.0.len()
    );
    let places = [
        ("the server's stdout and stderr", output),
        ("the responses", seen.0.join("\n\n")),
        (
            "the `openapi` command",
            String::from_utf8(openapi_cli).unwrap(),
        ),
    ];
    for (what, secret) in secrets {
        for (place, text) in &places {
            if let Some(at) = text.find(secret) {
                let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let to = text[at..].find('\n').map_or(text.len(), |i| at + i);
                panic!("{what} appears in {place}: {}", &text[from..to]);
            }
        }
    }

    // At rest: no column of any table holds the PSA credentials or the webhook secret.
    drop(server);
    let values = dump(&db).await;
    assert!(values.len() > 10, "the dump read the tables");
    let at_rest = [
        ("the PSA private key", psa_private),
        ("the PSA client id", c.cw_client_id.as_str()),
        ("the webhook secret", webhook_secret),
        ("the notification endpoint's secret", notify_secret),
    ];
    for (what, secret) in at_rest {
        for (col, v) in &values {
            assert!(
                !contains(v, secret.as_bytes()),
                "{what} rests in plaintext in {col}"
            );
        }
    }
    assert!(
        values
            .iter()
            .any(|(col, v)| col == "workflows.executor" && contains(v, b"\"secret\":\"nbs1.")),
        "the webhook secret rests sealed"
    );
}

/// Every text and binary value of every table, as bytes.
async fn dump(url: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&pool)
                .await
                .unwrap();
        for t in tables {
            let cols: Vec<String> =
                sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{t}')"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            for c in cols {
                let rows: Vec<Option<Vec<u8>>> =
                    sqlx::query_scalar(&format!("SELECT CAST(\"{c}\" AS BLOB) FROM \"{t}\""))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                out.extend(rows.into_iter().flatten().map(|v| (format!("{t}.{c}"), v)));
            }
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let cols = sqlx::query(
            "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d \
             FROM information_schema.columns WHERE table_schema = 'public'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for r in cols {
            let (t, c, d): (String, String, String) = (r.get("t"), r.get("c"), r.get("d"));
            let sql = if d == "bytea" {
                format!("SELECT \"{c}\" FROM \"{t}\"")
            } else {
                format!("SELECT convert_to(\"{c}\"::text, 'UTF8') FROM \"{t}\"")
            };
            let rows: Vec<Option<Vec<u8>>> =
                sqlx::query_scalar(&sql).fetch_all(&pool).await.unwrap();
            out.extend(rows.into_iter().flatten().map(|v| (format!("{t}.{c}"), v)));
        }
        pool.close().await;
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `keys create` and `keys rotate` on `url`; returns the plaintext keys.
fn keys_through_the_cli(url: &str) -> Vec<String> {
    let first = create_key(url);
    let out = Command::new(BIN)
        .args(["keys", "list", "--tenant", "acme", "--database-url", url])
        .output()
        .unwrap();
    let id = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()[..26]
        .trim()
        .to_owned();
    let out = Command::new(BIN)
        .args(["keys", "rotate", &id, "--database-url", url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rotated = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    vec![first, rotated]
}

async fn assert_keys_rest_as_hashes(url: &str) {
    let keys = keys_through_the_cli(url);
    let values = dump(url).await;
    assert!(
        values.len() > 10,
        "the dump read the tables: {}",
        values.len()
    );
    for key in &keys {
        let secret = key.rsplit('_').next().unwrap();
        assert_eq!(secret.len(), 40);
        for (col, v) in &values {
            assert!(
                !contains(v, key.as_bytes()) && !contains(v, secret.as_bytes()),
                "{col} holds a plaintext key"
            );
        }
        let hash = Sha256::digest(key.as_bytes()).to_vec();
        let hex_hash = hex::encode(&hash);
        assert!(
            values.iter().any(|(col, v)| col == "api_keys.key_hash"
                && (*v == hash || v.as_slice() == hex_hash.as_bytes())),
            "api_keys.key_hash holds the SHA-256 of {key}"
        );
    }
}

#[tokio::test]
async fn api_keys_rest_only_as_sha256_hashes_on_sqlite() {
    let db = fresh_store(Backend::Sqlite).await.unwrap();
    assert_keys_rest_as_hashes(&db.url).await;
}

#[tokio::test]
async fn api_keys_rest_only_as_sha256_hashes_on_postgres() {
    let Some(db) = fresh_store(Backend::Postgres).await else {
        return;
    };
    assert_keys_rest_as_hashes(&db.url).await;
}

/// The API refuses private targets by default; a workflow that points at one anyway (created
/// while `--webhook-allow-private` was on, or a name that resolves to loopback) fails at
/// dispatch with a clear error after one attempt, and the receiver sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_webhook_targets_are_refused_at_create_and_at_dispatch_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let (log, url) = receiver(0).await;
    let by_name = url.replace("127.0.0.1", "localhost");
    let key = create_key(&db);
    let api = Api {
        http: reqwest::Client::new(),
        key: key.clone(),
    };
    // Allowed: created and delivered.
    let allowed = serve(&db, &[("NEO_WEBHOOK_ALLOW_PRIVATE", "true")]);
    let wf = api
        .post(&allowed.base, "/agents", json!({"name": "Local", "executor": {"type": "webhook", "url": by_name, "secret": "whsec_0123456789abcdef"}}))
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    let b = api
        .post(
            &allowed.base,
            "/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1", "2"]}}),
        )
        .await;
    let id = b["data"]["backfill"]["id"].as_str().unwrap().to_owned();
    let done = api
        .wait_backfill(&allowed.base, &id, Duration::from_secs(30), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["succeeded_count"], 2, "{done}");
    assert_eq!(log.total.load(std::sync::atomic::Ordering::SeqCst), 2);
    drop(allowed);

    // The default: the API refuses loopback targets, by address and by name.
    let denied = serve(&db, &[("NEO_WEBHOOK_ALLOW_PRIVATE", "false")]);
    for u in [&url, &by_name] {
        let r = api
            .http
            .post(format!("{}/agents", denied.base))
            .bearer_auth(&key)
            .json(&json!({"name": "Local", "executor": {"type": "webhook", "url": u, "secret": "whsec_0123456789abcdef"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "validation_error", "{v}");
        assert_eq!(v["error"]["details"]["field"], "executor.url", "{v}");
    }
    // The workflow created while allowed resolves to loopback at dispatch: refused there too,
    // failed at once (not retried), and nothing reaches the receiver.
    let b = api
        .post(&denied.base, "/backfills", json!({"target_workflow_id": wf, "reprocess": true, "filter_spec": {"entity_ids": ["3", "4"]}}))
        .await;
    let id = b["data"]["backfill"]["id"].as_str().unwrap().to_owned();
    let done = api
        .wait_backfill(&denied.base, &id, Duration::from_secs(30), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["failed_count"], 2, "{done}");
    assert_eq!(log.total.load(std::sync::atomic::Ordering::SeqCst), 2);
    let items = api
        .get(&denied.base, &format!("/backfills/{id}/items"))
        .await;
    for it in items["data"].as_array().unwrap() {
        assert_eq!(it["attempts"], 1, "{it}");
        let e = it["error"].as_str().unwrap();
        assert!(
            e.contains("\"localhost\"")
                && e.contains("loopback")
                && e.contains("--egress-allow-private"),
            "{e}"
        );
    }
}
