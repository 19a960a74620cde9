//! Adaptive concurrency (issue 23, acceptance 2) through the real binary: a webhook receiver
//! that answers 429 above 20 concurrent requests, a backfill with `max_in_flight` 100. The
//! effective limit settles around 20 (read on the backfill and in the metrics), no item fails
//! for throttling, and the limit climbs back once the receiver takes more.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use common::{create_key, metric, serve, Api};
use serde_json::{json, Value};

/// Takes `cap` requests at once, each for `latency`; answers 429 beyond.
#[derive(Default)]
struct Gate {
    cap: AtomicUsize,
    current: AtomicUsize,
    accepted: AtomicU64,
    throttled: AtomicU64,
}

async fn gate(latency: Duration, cap: usize) -> (Arc<Gate>, String) {
    async fn hook(
        State((g, latency)): State<(Arc<Gate>, Duration)>,
    ) -> (StatusCode, axum::Json<Value>) {
        let now = g.current.fetch_add(1, Ordering::SeqCst) + 1;
        if now > g.cap.load(Ordering::SeqCst) {
            g.current.fetch_sub(1, Ordering::SeqCst);
            g.throttled.fetch_add(1, Ordering::SeqCst);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"error": "too many requests"})),
            );
        }
        tokio::time::sleep(latency).await;
        g.current.fetch_sub(1, Ordering::SeqCst);
        g.accepted.fetch_add(1, Ordering::SeqCst);
        (StatusCode::OK, axum::Json(json!({"status": "succeeded"})))
    }
    let g = Arc::new(Gate::default());
    g.cap.store(cap, Ordering::SeqCst);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state((g.clone(), latency));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (g, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_settles_at_what_the_receiver_takes_no_item_fails_and_it_climbs_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let (g, url) = gate(Duration::from_millis(25), 20).await;
    // Retries after 100 ms rather than 1 s: the run is shorter, the attempts the same (5).
    let s = serve(&db, &[("NEO_BACKOFF_BASE_MS", "100")]);
    let api = Api {
        http: reqwest::Client::new(),
        key: create_key(&db),
    };
    let wf = api
        .post(&s.base, "/agents", json!({"name": "Hook", "executor": {"type": "webhook", "url": url, "secret": "whsec_0123456789abcdef"}}))
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    let n = 8_000;
    let ids: Vec<String> = (1..=n).map(|i| format!("T{i:05}")).collect();
    let created = api
        .post(
            &s.base,
            "/backfills",
            json!({"target_workflow_id": wf, "max_in_flight": 100, "filter_spec": {"entity_ids": ids}}),
        )
        .await;
    assert_eq!(created["data"]["backfill"]["effective_max_in_flight"], 100);
    let id = created["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/backfills/{id}");

    // Throttled: the limit comes down to about what the receiver takes.
    let start = Instant::now();
    let mut settled_low = Vec::new();
    loop {
        let b = api.get(&s.base, &path).await["data"].clone();
        assert_eq!(b["failed_count"], 0, "{b}");
        let limit = b["effective_max_in_flight"].as_i64().unwrap();
        let done = b["succeeded_count"].as_i64().unwrap();
        if done >= 1_500 {
            settled_low.push(limit);
        }
        if settled_low.len() >= 10 {
            break;
        }
        assert!(b["state"] == "RUNNING", "ended while throttled: {b}");
        assert!(start.elapsed() < Duration::from_secs(90), "{b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "throttled: limits read {settled_low:?}; {} accepted, {} answered 429",
        g.accepted.load(Ordering::SeqCst),
        g.throttled.load(Ordering::SeqCst)
    );
    assert!(
        settled_low.iter().all(|l| (5..=30).contains(l)),
        "around 20: {settled_low:?}"
    );
    let shown = metric(&api, &s.base, "neo_effective_max_in_flight")
        .await
        .expect("the gauge");
    assert!((5.0..=30.0).contains(&shown), "metrics: {shown}");

    // Lifted: it climbs back.
    g.cap.store(1_000, Ordering::SeqCst);
    let start = Instant::now();
    let climbed = loop {
        let b = api.get(&s.base, &path).await["data"].clone();
        let limit = b["effective_max_in_flight"].as_i64().unwrap();
        if limit >= 60 {
            break limit;
        }
        assert!(b["state"] == "RUNNING", "finished before climbing: {b}");
        assert!(start.elapsed() < Duration::from_secs(60), "{b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let done = api
        .wait_backfill(&s.base, &id, Duration::from_secs(120), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    eprintln!(
        "lifted: climbed to {climbed}; {} accepted, {} answered 429 in all",
        g.accepted.load(Ordering::SeqCst),
        g.throttled.load(Ordering::SeqCst)
    );
    assert_eq!(done["succeeded_count"], n, "{done}");
    assert_eq!(
        done["failed_count"], 0,
        "no item failed for throttling: {done}"
    );
    api.assert_counters_exact(&s.base, &id).await;
}
