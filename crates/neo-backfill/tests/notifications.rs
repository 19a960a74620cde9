//! Notifications (issue 22, acceptance 3) through the real binary: a receiver sees each event
//! of a run — start, trial pause, resume, completion — exactly once per state change after
//! deduplication by event id, every signature verifying; an event whose delivery failed
//! survives a `kill -9` and is delivered by the next process. (Five minutes of a receiver
//! being down, with an injected clock, is `crates/orchestrator/tests/notify.rs`.)

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{create_key, receiver, serve, Api};
use neo_domain::signature::{self, Direction, Signed};
use serde_json::{json, Value};

const SECRET: &str = "whsec_notify_0123456789";

/// A notification endpoint that checks every signature and records events by id.
#[derive(Default)]
struct Inbox {
    up: AtomicBool,
    /// Every event received, by id: `(type, body, times received)`.
    events: Mutex<BTreeMap<String, (String, Value, usize)>>,
    bad_signatures: Mutex<Vec<String>>,
}

impl Inbox {
    /// Distinct events of each type.
    fn per_type(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (t, _, _) in self.events.lock().unwrap().values() {
            *out.entry(t.clone()).or_default() += 1;
        }
        out
    }

    fn of_type(&self, t: &str) -> Vec<Value> {
        let events = self.events.lock().unwrap();
        events
            .values()
            .filter(|(ty, _, _)| ty == t)
            .map(|(_, b, _)| b.clone())
            .collect()
    }

    async fn wait_for(&self, t: &str) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self.of_type(t).pop() {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {t} event; got {:?}",
                self.per_type()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn inbox() -> (Arc<Inbox>, String) {
    async fn hook(
        State(inbox): State<Arc<Inbox>>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> StatusCode {
        if !inbox.up.load(Ordering::SeqCst) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let h = |n: &str| headers[n].to_str().unwrap().to_owned();
        let id = h("x-neo-event-id");
        let signed = Signed {
            timestamp: h("x-neo-timestamp").parse().unwrap(),
            direction: Direction::Event,
            execution_id: &id,
            body: &body,
        };
        let now = jiff::Timestamp::now().as_second();
        if signature::verify(SECRET.as_bytes(), signed, &h("x-neo-signature"), now).is_err() {
            inbox.bad_signatures.lock().unwrap().push(id.clone());
        }
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], id.as_str(), "the header names the body's event");
        assert_eq!(v["type"], h("x-neo-event-type").as_str());
        let mut events = inbox.events.lock().unwrap();
        let e = events
            .entry(id)
            .or_insert_with(|| (v["type"].as_str().unwrap().to_owned(), v.clone(), 0));
        e.2 += 1;
        StatusCode::NO_CONTENT
    }
    let inbox = Arc::new(Inbox::default());
    let app = axum::Router::new()
        .route("/events", axum::routing::post(hook))
        .with_state(inbox.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (inbox, url)
}

async fn add_endpoint(api: &Api, base: &str, url: &str) -> String {
    let created = api
        .post(
            base,
            "/notification-endpoints",
            json!({"url": url, "secret": SECRET, "description": "ops"}),
        )
        .await;
    assert!(
        !created.to_string().contains(SECRET),
        "the secret is write-only"
    );
    created["data"]["id"].as_str().unwrap().to_owned()
}

/// A webhook workflow over `n` entities, and a backfill of it with `extra` settings.
async fn backfill(api: &Api, base: &str, hook: &str, n: usize, extra: Value) -> String {
    let wf = api
        .post(base, "/agents", json!({"name": "Hook", "executor": {"type": "webhook", "url": hook, "secret": "whsec_0123456789abcdef"}}))
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    let ids: Vec<String> = (1..=n).map(|i| format!("T{i:05}")).collect();
    let mut body = json!({"target_workflow_id": wf, "name": "Nightly <triage>", "filter_spec": {"entity_ids": ids}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    api.post(base, "/backfills", body).await["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sends_each_event_once_signed_and_a_test_event_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let (_log, hook) = receiver(2).await;
    let (inbox, url) = inbox().await;
    inbox.up.store(true, Ordering::SeqCst);
    let s = serve(&db, &[]);
    let api = Api {
        http: reqwest::Client::new(),
        key: create_key(&db),
    };
    let ep = add_endpoint(&api, &s.base, &url).await;

    let test = api
        .post(
            &s.base,
            &format!("/notification-endpoints/{ep}/test"),
            json!({}),
        )
        .await;
    let test_id = test["data"]["event_id"].as_str().unwrap().to_owned();
    let got = inbox.wait_for("endpoint.test").await;
    assert_eq!(got["id"], test_id.as_str());

    let id = backfill(
        &api,
        &s.base,
        &hook,
        40,
        json!({"trial": {"sample_size": 5}}),
    )
    .await;
    api.wait_backfill(&s.base, &id, WAIT, |b| b["state"] == "PAUSED")
        .await;
    let paused = inbox.wait_for("backfill.paused").await;
    assert_eq!(paused["data"]["backfill"]["id"], id.as_str());
    assert_eq!(paused["data"]["backfill"]["pause_reason"], "trial_complete");
    assert_eq!(paused["data"]["backfill"]["succeeded_count"], 5);
    api.post(&s.base, &format!("/backfills/{id}/resume"), json!({}))
        .await;
    api.wait_backfill(&s.base, &id, WAIT, |b| b["state"] == "COMPLETED")
        .await;
    let done = inbox.wait_for("backfill.completed").await;
    assert_eq!(done["data"]["backfill"]["succeeded_count"], 40);
    assert_eq!(done["data"]["backfill"]["name"], "Nightly <triage>");

    // Whatever is still on its way arrives within a few polls; nothing more is sent.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let per_type = inbox.per_type();
    let expected: BTreeMap<String, usize> = [
        "endpoint.test",
        "backfill.started",
        "backfill.paused",
        "backfill.resumed",
        "backfill.completed",
    ]
    .into_iter()
    .map(|t| (t.to_owned(), 1))
    .collect();
    assert_eq!(per_type, expected, "each state change once");
    assert!(inbox.bad_signatures.lock().unwrap().is_empty());
    let started = inbox.of_type("backfill.started").pop().unwrap();
    assert_eq!(started["data"]["backfill"]["state"], "RUNNING");
    assert_eq!(started["data"]["backfill"]["total_items"], 40);

    let history = api
        .get(&s.base, &format!("/notification-endpoints/{ep}/deliveries"))
        .await;
    let rows = history["data"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{history}");
    assert!(rows
        .iter()
        .all(|r| r["delivered_at"].is_string() && r["last_status"] == 204));
    assert!(!history.to_string().contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_delivery_failed_survives_a_kill_and_is_delivered_by_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let (_log, hook) = receiver(2).await;
    let (inbox, url) = inbox().await; // down: answers 503
    let s = serve(&db, &[]);
    let api = Api {
        http: reqwest::Client::new(),
        key: create_key(&db),
    };
    let ep = add_endpoint(&api, &s.base, &url).await;
    let id = backfill(&api, &s.base, &hook, 10, json!({})).await;
    api.wait_backfill(&s.base, &id, WAIT, |b| b["state"] == "COMPLETED")
        .await;
    // The completion is committed (its event is in the outbox, undelivered) and the endpoint
    // refused what was tried (the oldest event first; the others wait for its retry).
    let start = Instant::now();
    loop {
        let h = api
            .get(&s.base, &format!("/notification-endpoints/{ep}/deliveries"))
            .await;
        let rows = h["data"].as_array().unwrap();
        let completed = rows
            .iter()
            .find(|r| r["event_type"] == "backfill.completed");
        let refused = rows.iter().find(|r| r["attempts"].as_i64() >= Some(1));
        if let (Some(c), Some(r)) = (completed, refused) {
            assert!(c["delivered_at"].is_null(), "{h}");
            assert_eq!(r["last_status"], 503, "{h}");
            assert_eq!(r["last_error"], "the endpoint answered HTTP 503");
            assert!(r["delivered_at"].is_null());
            break;
        }
        assert!(start.elapsed() < WAIT, "never tried: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(s); // kill -9
    assert!(inbox.per_type().is_empty());

    inbox.up.store(true, Ordering::SeqCst);
    let s2 = serve(&db, &[]);
    let done = inbox.wait_for("backfill.completed").await;
    assert_eq!(done["data"]["backfill"]["id"], id.as_str());
    inbox.wait_for("backfill.started").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_type = inbox.per_type();
    assert_eq!(per_type["backfill.completed"], 1);
    assert_eq!(per_type["backfill.started"], 1);
    assert!(inbox.bad_signatures.lock().unwrap().is_empty());
    drop(s2);
}
