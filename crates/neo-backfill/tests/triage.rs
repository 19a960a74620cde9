//! Failure triage (issue 22) through the real binary: a webhook that fails in three distinct
//! ways yields three clusters with the right counts, kinds and masked signatures, and a rerun
//! of one cluster is a child over exactly its entities.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{create_key, serve, Api};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A receiver written on raw TCP so it can also break a connection: for the entity `T{n}`,
/// `n % 10 == 1` answers 422 naming the ticket, `2` answers 504, `3` closes the connection
/// without an answer, and every other one succeeds. Returns its URL.
async fn three_way_receiver() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // One request per connection is enough: read until the body is in.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let body = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(head_end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= head_end + 4 + len {
                        break String::from_utf8_lossy(&buf[head_end + 4..head_end + 4 + len])
                            .to_string();
                    }
                };
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let entity = v["entity"]["id"].as_str().unwrap_or("T0").to_owned();
                let n: u64 = entity.trim_start_matches('T').parse().unwrap_or(0);
                let (status, answer) = match n % 10 {
                    1 => (
                        "422 Unprocessable Entity",
                        json!({"error": format!("ticket {entity} failed validation: field \"priority\" is required")}),
                    ),
                    2 => ("504 Gateway Timeout", json!({})),
                    3 => return, // dropped: the connection breaks without an answer
                    _ => ("200 OK", json!({"status": "succeeded"})),
                };
                let body = answer.to_string();
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_failure_causes_make_three_clusters_and_one_can_be_rerun_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let url = three_way_receiver().await;
    // One attempt each (the 504 and the broken connection would otherwise be retried with
    // backoff), and no circuit breaker in the way.
    let s = serve(
        &db,
        &[
            ("NEO_MAX_ATTEMPTS", "1"),
            ("NEO_BREAKER_THRESHOLD", "100000"),
        ],
    );
    let api = Api {
        http: reqwest::Client::new(),
        key: create_key(&db),
    };
    let wf = api
        .post(&s.base, "/agents", json!({"name": "Hook", "executor": {"type": "webhook", "url": url, "secret": "whsec_0123456789abcdef"}}))
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    let ids: Vec<String> = (0..1_000).map(|i| format!("T{i:05}")).collect();
    let id = api
        .post(&s.base, "/backfills", json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}, "max_in_flight": 20}))
        .await["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = api
        .wait_backfill(&s.base, &id, Duration::from_secs(120), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["failed_count"], 300, "{}", done["failed_count"]);

    let clusters = api.get(&s.base, &format!("/backfills/{id}/failures")).await["data"].clone();
    let clusters = clusters.as_array().unwrap();
    assert_eq!(clusters.len(), 3, "{clusters:#?}");
    let by_kind = |kind: &str| {
        clusters
            .iter()
            .find(|c| c["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} cluster: {clusters:#?}"))
            .clone()
    };
    let invalid = by_kind("http_4xx");
    assert_eq!(invalid["count"], 100);
    assert_eq!(
        invalid["signature"],
        "the executor answered HTTP 422: ticket <id> failed validation: field \"…\" is required"
    );
    assert_eq!(
        invalid["sample_error"],
        "the executor answered HTTP 422: ticket T00001 failed validation: field \"priority\" is required"
    );
    assert_eq!(
        invalid["sample_entities"],
        json!(["T00001", "T00011", "T00021", "T00031", "T00041"])
    );
    let gateway = by_kind("http_5xx");
    assert_eq!(gateway["count"], 100);
    assert_eq!(
        gateway["signature"],
        "the executor answered HTTP 504 (gave up after <n> attempts)"
    );
    let broken = by_kind("connection");
    assert_eq!(broken["count"], 100);
    assert!(
        broken["signature"]
            .as_str()
            .unwrap()
            .contains("broke the connection"),
        "{broken}"
    );
    for c in clusters {
        assert!(c["first_seen"].as_str().unwrap() <= c["last_seen"].as_str().unwrap());
    }

    // Rerun only the validation errors, by their signature: a child over exactly those 100.
    let r = api
        .http
        .post(format!("{}/backfills/{id}/rerun-failed", s.base))
        .bearer_auth(&api.key)
        .json(&json!({"error_signatures": [invalid["signature"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let child: Value = r.json().await.unwrap();
    let child = child["data"]["backfill"].clone();
    assert_eq!(child["total_items"], 100, "{}", child["total_items"]);
    assert_eq!(
        child["rerun_causes"],
        json!({"error_signatures": [invalid["signature"]], "failure_kinds": []})
    );
    let entities: BTreeSet<String> = child["filter_spec"]["entity_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = (0..100).map(|k| format!("T{:05}", k * 10 + 1)).collect();
    assert_eq!(entities, expected);
    let child_id = child["id"].as_str().unwrap().to_owned();
    api.wait_backfill(&s.base, &child_id, Duration::from_secs(60), |b| {
        b["state"] == "COMPLETED"
    })
    .await;

    // A cause none of the failures has is refused; by kind, the timeouts and breaks together.
    let r = api
        .http
        .post(format!("{}/backfills/{id}/rerun-failed", s.base))
        .bearer_auth(&api.key)
        .json(&json!({"failure_kinds": ["throttled"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = api
        .http
        .post(format!("{}/backfills/{id}/rerun-failed", s.base))
        .bearer_auth(&api.key)
        .json(&json!({"failure_kinds": ["http_5xx", "connection"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let child: Value = r.json().await.unwrap();
    assert_eq!(child["data"]["backfill"]["total_items"], 200);
    // A malformed body says why.
    let r = api
        .http
        .post(format!("{}/backfills/{id}/rerun-failed", s.base))
        .bearer_auth(&api.key)
        .json(&json!({"failure_kinds": ["nope"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
