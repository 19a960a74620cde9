//! Tenant isolation with the real binary: what one tenant's URLs and receivers can do to the
//! service and to other tenants. A redirect to an internal endpoint is never followed (and its
//! answer never echoed); poison answers (a NUL byte, a 10 MB error, a 100 MB body) settle as
//! failed with bounded memory while another tenant's backfill completes; a black-holed cancel
//! receiver delays nobody's signals or dispatch; a tenant with a big backlog cannot starve a
//! newcomer.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use common::{create_key_for, serve, Api, Server, SharedDb};
use serde_json::{json, Value};

const INTERNAL: &str = "INTERNAL-METADATA-7f3a";

async fn listen(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    base
}

/// Every path answers `302 Location: /internal`; `/internal` counts its hits and answers JSON
/// that would satisfy any PSA call (so a followed redirect would "succeed" and leak it).
async fn redirector() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let h = h.clone();
        async move {
            if uri.path() == "/internal" {
                h.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"queryCount": 3, "count": 3, "url": INTERNAL, "Codebase": INTERNAL, "status": "succeeded", "error": INTERNAL}))
                    .into_response()
            } else {
                (StatusCode::FOUND, [(header::LOCATION, "/internal")], INTERNAL).into_response()
            }
        }
    });
    (listen(app).await, hits)
}

fn api(db: &str, tenant: &str) -> Api {
    Api {
        http: reqwest::Client::new(),
        key: create_key_for(db, tenant),
    }
}

async fn workflow(api: &Api, s: &Server, name: &str, executor: Value) -> i64 {
    api.post(
        &s.base,
        "/agents",
        json!({"name": name, "executor": executor}),
    )
    .await["data"]["id"]
        .as_i64()
        .unwrap()
}

async fn backfill(api: &Api, s: &Server, wf: i64, n: usize, max_in_flight: i64) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("{}", 1000 + i)).collect();
    api.post(&s.base, "/backfills", json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}, "max_in_flight": max_in_flight}))
        .await["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn items(api: &Api, s: &Server, id: &str) -> Vec<Value> {
    api.get(&s.base, &format!("/backfills/{id}/items?page_size=200"))
        .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Acceptance 1: the PSA URLs of all three PSAs and a webhook URL point at a redirector, with
/// private egress allowed (so only the redirect rule protects): the internal endpoint is never
/// contacted, no answer and no log line carries its body, and the error names the status.
#[tokio::test]
async fn a_redirect_to_an_internal_endpoint_is_never_followed_nor_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/r.db", dir.path().display());
    let s = serve(&db, &[("NEO_LOG", "trace")]);
    let api = api(&db, "acme");
    let (base, hits) = redirector().await;
    let mut answers = Vec::new();
    let filter = json!({"conditions": {"combinator": "and", "rules": [{"field": "$id", "operator": ">", "value": 0}]}});
    for (psa, settings) in [
        (
            "connectwise",
            json!({"site_url": base, "company_id": "acme", "public_key": "p", "private_key": "k", "client_id": "i"}),
        ),
        (
            "autotask",
            json!({"zone_url": base, "username": "u@acme", "secret": "s", "integration_code": "c"}),
        ),
        (
            "halopsa",
            json!({"url": base, "client_id": "c", "client_secret": "s"}),
        ),
    ] {
        api.put(&s.base, &format!("/integrations/{psa}"), settings)
            .await;
        let v = api
            .post(
                &s.base,
                "/backfills/verify",
                json!({"entity_type": "ticket", "filter_spec": filter}),
            )
            .await;
        let msg = v["data"]["message"].as_str().unwrap().to_owned();
        assert_eq!(v["data"]["level"], "ERROR", "{psa}: {v}");
        assert!(
            msg.contains("HTTP 302") && msg.contains("redirects are not followed"),
            "{psa}: {msg}"
        );
        answers.push(v.to_string());
    }
    let wf = workflow(&api, &s, "Hook", json!({"type": "webhook", "url": format!("{base}/hook"), "secret": "whsec_0123456789abcdef"})).await;
    let id = backfill(&api, &s, wf, 2, 2).await;
    let done = api
        .wait_backfill(&s.base, &id, Duration::from_secs(30), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["failed_count"], 2, "{done}");
    for it in items(&api, &s, &id).await {
        assert_eq!(it["attempts"], 1, "a redirect is not retried: {it}");
        assert_eq!(
            it["error"],
            "the executor answered HTTP 302, a redirect (redirects are not followed)"
        );
        answers.push(it.to_string());
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the internal endpoint was contacted"
    );
    for a in &answers {
        assert!(
            !a.contains(INTERNAL),
            "an answer echoes the upstream body: {a}"
        );
    }
    let leaked = s.log_lines(INTERNAL);
    assert!(
        leaked.is_empty(),
        "log lines echo the upstream body: {leaked:?}"
    );
}

/// A receiver with three poison answers: a NUL byte in the reported error, a 10 MB error
/// (announced size), a 100 MB body (streamed).
async fn poison_receiver() -> String {
    let app = axum::Router::new()
        .route(
            "/nul",
            axum::routing::post(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    "{\"status\":\"failed\",\"error\":\"bad\\u0000thing\"}",
                )
            }),
        )
        .route(
            "/big-error",
            axum::routing::post(|| async {
                axum::Json(json!({"status": "failed", "error": "e".repeat(10 << 20)}))
            }),
        )
        .route(
            "/huge",
            axum::routing::post(|| async {
                static CHUNK: [u8; 65536] = [b'a'; 65536];
                let chunks = (0..1600).map(|_| Ok::<_, std::io::Error>(&CHUNK[..]));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        );
    listen(app).await
}

/// Peak resident memory of a process, from `/proc/<pid>/status` (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Acceptance 2, on the given database: every poison item settles `failed` with a fixed
/// (or sanitized) error, the process stays under 200 MB, and another tenant's backfill
/// running at the same time completes.
async fn poison_answers_settle_as_failed(db: &str, extra: &[(&str, &str)]) {
    let s = serve(db, extra);
    let a = api(db, "poisoner");
    let b = api(db, "bystander");
    let base = poison_receiver().await;
    let mut poisoned = Vec::new();
    for (path, want) in [
        ("nul", "badthing"),
        (
            "big-error",
            "the executor answered more than 64 KiB (the limit); the rest was not read",
        ),
        (
            "huge",
            "the executor answered more than 64 KiB (the limit); the rest was not read",
        ),
    ] {
        let wf = workflow(&a, &s, path, json!({"type": "webhook", "url": format!("{base}/{path}"), "secret": "whsec_0123456789abcdef"})).await;
        poisoned.push((backfill(&a, &s, wf, 5, 5).await, want));
    }
    let wf = workflow(
        &b,
        &s,
        "Sim",
        json!({"type": "simulated", "latency_ms": 20}),
    )
    .await;
    let other = backfill(&b, &s, wf, 40, 5).await;
    let done = b
        .wait_backfill(&s.base, &other, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["succeeded_count"], 40, "{done}");
    for (id, want) in &poisoned {
        let done = a
            .wait_backfill(&s.base, id, Duration::from_secs(60), |b| {
                b["state"] == "COMPLETED"
            })
            .await;
        assert_eq!(done["failed_count"], 5, "{done}");
        for it in items(&a, &s, id).await {
            assert_eq!(it["status"], "failed", "{it}");
            assert_eq!(it["error"], *want, "{it}");
        }
    }
    let rss = peak_rss(s.child.as_ref().unwrap().id());
    assert!(rss < 200 << 20, "peak RSS {} MB", rss >> 20);
    eprintln!("peak RSS {:.1} MB", rss as f64 / 1048576.0);
}

#[tokio::test]
async fn poison_answers_settle_as_failed_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/p.db", dir.path().display());
    poison_answers_settle_as_failed(&db, &[]).await;
}

#[tokio::test]
async fn poison_answers_settle_as_failed_on_postgres() {
    let Some(pg) = SharedDb::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    let key = key.display().to_string();
    poison_answers_settle_as_failed(&pg.url, &[("NEO_MASTER_KEY_FILE", &key)]).await;
}

/// Acceptance 3: tenant A's receiver accepts executions (202) and black-holes every cancel
/// call. After A cancels, tenant B's signals show at once and B's new backfill dispatches and
/// completes as if A did not exist.
#[tokio::test]
async fn a_black_holed_cancel_receiver_delays_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/c.db", dir.path().display());
    let s = serve(&db, &[]);
    let cancels = Arc::new(AtomicUsize::new(0));
    let c = cancels.clone();
    let hook = listen(axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let c = c.clone();
            async move {
                if headers.get("x-neo-event").is_some_and(|v| v == "cancel") {
                    c.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
                StatusCode::ACCEPTED
            }
        }),
    ))
    .await;
    let a = api(&db, "blackhole");
    let b = api(&db, "neighbour");
    let wf = workflow(&a, &s, "Async", json!({"type": "webhook", "url": format!("{hook}/hook"), "secret": "whsec_0123456789abcdef"})).await;
    let id = backfill(&a, &s, wf, 40, 40).await;
    a.wait_backfill(&s.base, &id, Duration::from_secs(30), |b| {
        b["in_flight_count"] == 40
    })
    .await;
    a.post(&s.base, &format!("/backfills/{id}/cancel"), json!({}))
        .await;
    // The orchestrator picks the cancel up and sends the cancel calls, which hang.
    let start = Instant::now();
    while cancels.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no cancel call was made"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wf = workflow(
        &b,
        &s,
        "Sim",
        json!({"type": "simulated", "latency_ms": 50}),
    )
    .await;
    let created = Instant::now();
    let other = backfill(&b, &s, wf, 30, 3).await;
    b.wait_backfill(&s.base, &other, Duration::from_secs(5), |b| {
        b["succeeded_count"].as_i64() > Some(0)
    })
    .await;
    let first = created.elapsed();
    let asked = Instant::now();
    b.post(&s.base, &format!("/backfills/{other}/pause"), json!({}))
        .await;
    b.wait_backfill(&s.base, &other, Duration::from_secs(1), |b| {
        b["state"] == "PAUSED"
    })
    .await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "pause took {:?}",
        asked.elapsed()
    );
    b.post(&s.base, &format!("/backfills/{other}/resume"), json!({}))
        .await;
    let done = b
        .wait_backfill(&s.base, &other, Duration::from_secs(15), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["succeeded_count"], 30, "{done}");
    assert!(
        first < Duration::from_secs(3),
        "first dispatch after {first:?}"
    );
    let cancelled = a.get(&s.base, &format!("/backfills/{id}")).await["data"].clone();
    assert_eq!(cancelled["cancelled_count"], 40, "{cancelled}");
}

/// Acceptance 4: tenant A runs 5 backfills of 10,000 items (zero-latency simulated executor,
/// `max_in_flight` 100 each); tenant B then creates one of 200 items. B is claimed for in the
/// next claim round and completes before A settles another 5,000.
#[tokio::test]
async fn a_tenant_with_a_big_backlog_cannot_starve_a_newcomer() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/f.db", dir.path().display());
    let s = serve(&db, &[]);
    let a = api(&db, "big");
    let b = api(&db, "small");
    let mut mine = Vec::new();
    for n in 0..5 {
        let wf = workflow(&a, &s, &format!("A{n}"), json!({"type": "simulated"})).await;
        mine.push(backfill(&a, &s, wf, 10_000, 100).await);
    }
    let settled =
        |bf: &Value| bf["succeeded_count"].as_i64().unwrap() + bf["failed_count"].as_i64().unwrap();
    let a_settled = || async {
        let mut n = 0;
        for id in &mine {
            n += settled(&a.get(&s.base, &format!("/backfills/{id}")).await["data"]);
        }
        n
    };
    // A is in full swing.
    let start = Instant::now();
    while a_settled().await < 2_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "A does not progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wf = workflow(&b, &s, "B", json!({"type": "simulated"})).await;
    let before = a_settled().await;
    let id = backfill(&b, &s, wf, 200, 100).await;
    b.wait_backfill(&s.base, &id, Duration::from_secs(60), |b| {
        b["succeeded_count"].as_i64() > Some(0)
    })
    .await;
    // B's first claim is the next round's: A moves on by at most a few of its batches
    // meanwhile (a claim round used to go on for as long as A kept freeing room). Counted
    // in the database, by when executions started, so that how fast A runs and how often
    // this test polls do not enter into it.
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let (created, first_b): (i64, i64) = sqlx::query_as(
        "SELECT b.created_at, (SELECT MIN(e.started_at) FROM executions e WHERE e.backfill_id = b.id) \
         FROM backfills b WHERE b.id = ?",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let first: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM executions e JOIN backfills b ON b.id = e.backfill_id \
         WHERE b.tenant_id = (SELECT tenant_id FROM backfills WHERE id = ?) \
           AND e.started_at >= ? AND e.started_at < ?",
    )
    .bind(&mine[0])
    .bind(created)
    .bind(first_b)
    .fetch_one(&pool)
    .await
    .unwrap();
    eprintln!("A started {first} executions between B's create and B's first");
    assert!(
        first < 1_500,
        "A started {first} executions before B's first"
    );
    let done = b
        .wait_backfill(&s.base, &id, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    let after = a_settled().await;
    assert_eq!(done["succeeded_count"], 200, "{done}");
    assert!(
        after - before < 5_000,
        "A settled {} items while B ran its 200",
        after - before
    );
    eprintln!("A settled {} items while B ran its 200", after - before);
    // Six backfills ran: no metric series is kept per backfill or workflow.
    let metrics = reqwest::get(s.base.replace("/public-api", "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("neo_backfills_window_open"), "{metrics}");
    for l in metrics.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !l.contains("backfill=") && !l.contains("workflow="),
            "a per-backfill series: {l}"
        );
    }
}
