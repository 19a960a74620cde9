//! Orchestrator tests against a real SQLite file, real HTTP webhook receivers on loopback and
//! an injected manual clock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jiff::{SignedDuration, Timestamp};
use neo_domain::backfill::{
    AutonomyType, BackfillRunState, EntityType, ExecutionStatus, ItemStatus, Signal, WorkflowState,
};
use neo_domain::clock::{Clock, ManualClock};
use neo_domain::windows::WorkflowDailyExecutionWindows;
use neo_orchestrator::{Orchestrator, OrchestratorConfig};
use neo_store::{Backfill, NewBackfill, NewWorkflow, Store};
use serde_json::{json, Value};

const T0: &str = "2026-11-30T12:00:00Z"; // a Monday

struct Env {
    store: Arc<dyn Store>,
    clock: ManualClock,
    tenant: String,
    /// The throw-away database (SQLite or PostgreSQL, per `NEO_TEST_BACKEND`).
    _db: neo_store::testing::TestStore,
}

async fn env() -> Env {
    let db = neo_store::testing::suite_store().await;
    let store = db.store.clone();
    let clock = ManualClock::new(T0.parse().unwrap());
    let tenant = store.ensure_tenant("acme", clock.now()).await.unwrap().id;
    Env {
        store,
        clock,
        tenant,
        _db: db,
    }
}

impl Env {
    fn orchestrator(&self, f: impl FnOnce(&mut OrchestratorConfig)) -> Orchestrator {
        let mut cfg = OrchestratorConfig {
            jitter_seed: Some(7),
            poll_interval: Duration::from_millis(20),
            // The receivers are on loopback: opt in (the SSRF tests opt out).
            egress_allow_private: true,
            ..Default::default()
        };
        f(&mut cfg);
        Orchestrator::new(self.store.clone(), Arc::new(self.clock.clone()), cfg)
    }

    async fn workflow(&self, executor: Value) -> i64 {
        self.store
            .insert_workflow(
                &self.tenant,
                NewWorkflow {
                    name: "Triage".into(),
                    description: None,
                    autonomy_type: AutonomyType::ChainedActions,
                    entity_type: EntityType::Ticket,
                    state: WorkflowState::Enabled,
                    credit_tier: 2,
                    executor,
                },
                self.clock.now(),
            )
            .await
            .unwrap()
            .id
    }

    async fn backfill(&self, wf: i64, n: usize, max_in_flight: i64) -> Backfill {
        self.backfill_with(
            wf,
            (0..n).map(|i| format!("E{i}")).collect(),
            max_in_flight,
            WorkflowDailyExecutionWindows::default(),
            false,
        )
        .await
    }

    async fn backfill_with(
        &self,
        wf: i64,
        ids: Vec<String>,
        max_in_flight: i64,
        windows: WorkflowDailyExecutionWindows,
        reprocess: bool,
    ) -> Backfill {
        self.store
            .create_backfill(NewBackfill {
                id: format!("bf_{}", uuid::Uuid::now_v7().simple()),
                tenant_id: self.tenant.clone(),
                state: BackfillRunState::Running,
                target_workflow_id: wf,
                entity_type: EntityType::Ticket,
                filter_spec: json!({"entity_ids": ids}),
                daily_execution_windows: windows,
                timezone: "Europe/London".into(),
                max_in_flight,
                reprocess,
                total_estimated: Some(ids.len() as i64),
                credits_per_entity: 2,
                created_by: "test".into(),
                created_at: self.clock.now(),
                entity_ids: Some(ids),
                name: None,
                mode: neo_domain::backfill::BackfillMode::Live,
                start_at: None,
                max_credits: None,
                trial_sample_size: None,
                max_in_flight_per_company: None,
                company_blackouts: None,
            })
            .await
            .unwrap()
    }

    /// A RUNNING backfill over a PSA query: no snapshot at create.
    async fn query_backfill(&self, id: &str, wf: i64) -> Backfill {
        self.store
            .create_backfill(NewBackfill {
                id: id.into(),
                tenant_id: self.tenant.clone(),
                state: BackfillRunState::Running,
                target_workflow_id: wf,
                entity_type: EntityType::Ticket,
                filter_spec: json!({"conditions": {"combinator": "and", "rules": [{"field": "$closed", "operator": "=", "value": false}]}}),
                daily_execution_windows: Default::default(),
                timezone: "UTC".into(),
                max_in_flight: 10,
                reprocess: false,
                total_estimated: None,
                credits_per_entity: 2,
                created_by: "test".into(),
                created_at: self.clock.now(),
                entity_ids: None,
                name: None,
                mode: neo_domain::backfill::BackfillMode::Live,
                start_at: None,
                max_credits: None,
                trial_sample_size: None,
                max_in_flight_per_company: None,
                company_blackouts: None,
            })
            .await
            .unwrap()
    }

    async fn get(&self, id: &str) -> Backfill {
        self.store
            .backfill(&self.tenant, id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn items(&self, id: &str) -> Vec<neo_store::Item> {
        self.store
            .list_items(
                &self.tenant,
                id,
                &neo_store::ItemFilter::default(),
                None,
                200_000,
            )
            .await
            .unwrap()
            .items
    }

    /// Polls until `f` holds (the orchestrator runs in the background), failing after `limit`.
    async fn wait_for(&self, id: &str, limit: Duration, f: impl Fn(&Backfill) -> bool) -> Backfill {
        let start = Instant::now();
        loop {
            let b = self.get(id).await;
            if f(&b) {
                return b;
            }
            assert!(start.elapsed() < limit, "timed out; backfill is {b:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

use neo_store::testing::assert_counters_match as assert_consistent;

// ---- a recording webhook receiver ------------------------------------------------------------

#[derive(Default)]
struct Receiver {
    current: AtomicUsize,
    max: AtomicUsize,
    /// (arrival, idempotency key, entity id)
    log: Mutex<Vec<(Instant, String, String)>>,
    /// Scripted answers, used in order; then `rule`'s answer for the entity; then 200.
    script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    rule: Mutex<Option<Answer>>,
    latency: Mutex<Duration>,
    /// When set, answers other than 2xx carry `{"error": …}` (a receiver's own words).
    error_body: Mutex<Option<&'static str>>,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let now = r.current.fetch_add(1, Ordering::SeqCst) + 1;
    r.max.fetch_max(now, Ordering::SeqCst);
    // Counted out on drop: a client that gives up mid-request (a timeout) makes hyper drop
    // this future, and a decrement at the end would never run.
    let _in_handler = InHandler(&r.current);
    let v: Value = serde_json::from_str(&body).unwrap();
    let key = headers
        .get("idempotency-key")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(key, v["execution_id"].as_str().unwrap());
    r.log.lock().unwrap().push((
        Instant::now(),
        key,
        v["entity"]["id"].as_str().unwrap().to_owned(),
    ));
    let latency = *r.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let entity = v["entity"]["id"].as_str().unwrap();
    let next = r
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| r.rule.lock().unwrap().map(|f| f(entity)));
    drop(_in_handler);
    let (code, retry_after) = next.unwrap_or((200, None));
    let mut h = HeaderMap::new();
    if let Some(ra) = retry_after {
        h.insert("retry-after", ra.parse().unwrap());
    }
    let body = match *r.error_body.lock().unwrap() {
        Some(e) if !(200..300).contains(&code) => json!({"error": e, "trace": "x".repeat(100)}),
        _ => json!({"status": "succeeded"}),
    };
    (StatusCode::from_u16(code).unwrap(), h, axum::Json(body))
}

struct InHandler<'a>(&'a AtomicUsize);

impl Drop for InHandler<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A scripted answer for an entity: status and `Retry-After`.
type Answer = fn(&str) -> (u16, Option<&'static str>);

async fn receiver(latency: Duration) -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    *r.latency.lock().unwrap() = latency;
    let listening = listen(r.clone(), "127.0.0.1:0").await;
    let url = listening.url();
    std::mem::forget(listening.stop); // serves until the test ends
    (r, url)
}

/// A receiver's HTTP server, until [`Listening::close`].
struct Listening {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Listening {
    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Stops listening: from now on connections to the address are refused.
    async fn close(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Serves `r` on `addr` (`127.0.0.1:0`, or the address of a closed [`Listening`] to come back).
async fn listen(r: Arc<Receiver>, addr: &str) -> Listening {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r);
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = l.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(l, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    Listening { addr, stop, task }
}

fn hook(url: &str) -> Value {
    json!({"type": "webhook", "url": url, "secret": "whsec_0123456789abcdef"})
}

fn run(
    o: &Orchestrator,
) -> (
    Arc<tokio::sync::Notify>,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let wake = Arc::new(tokio::sync::Notify::new());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let h = tokio::spawn(o.clone().run(wake.clone(), rx));
    (wake, tx, h)
}

// ---- tests -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_never_exceeds_max_in_flight() {
    let e = env().await;
    let (r, url) = receiver(Duration::from_millis(15)).await;
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 500, 7).await;
    let o = e.orchestrator(|_| {});
    let (_wake, stop, h) = run(&o);
    let done = e
        .wait_for(&b.id, Duration::from_secs(60), |b| {
            b.state == BackfillRunState::Completed
        })
        .await;
    stop.send(true).unwrap();
    h.await.unwrap();
    assert_eq!(
        r.max.load(Ordering::SeqCst),
        7,
        "the executor saw exactly max_in_flight at once"
    );
    assert_eq!(done.succeeded_count, 500);
    assert_eq!(done.processed_count(), 500);
    assert!(done.completed_at.is_some());
    assert_eq!(r.log.lock().unwrap().len(), 500);
    assert_consistent(&done, &e.items(&b.id).await);
    // Each success debited the workflow's credit tier.
    let used = e
        .store
        .credits_used(
            &e.tenant,
            e.clock.now() - SignedDuration::from_hours(1),
            e.clock.now() + SignedDuration::from_hours(1),
        )
        .await
        .unwrap();
    assert_eq!(used, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_dispatch_within_a_second_and_resume_continues() {
    let e = env().await;
    let (r, url) = receiver(Duration::from_millis(200)).await;
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 60, 4).await;
    let o = e.orchestrator(|c| c.poll_interval = Duration::from_millis(250));
    let (wake, stop, h) = run(&o);
    e.wait_for(&b.id, Duration::from_secs(20), |b| b.succeeded_count >= 4)
        .await;
    let (_, outcome) = e
        .store
        .signal_backfill(&e.tenant, &b.id, Signal::Pause, "test", e.clock.now())
        .await
        .unwrap();
    let paused_at = Instant::now();
    wake.notify_waiters();
    assert!(matches!(
        outcome,
        neo_domain::backfill::SignalOutcome::Transition(BackfillRunState::Paused)
    ));
    // In-flight executions finish...
    let p = e
        .wait_for(&b.id, Duration::from_secs(5), |b| b.in_flight_count == 0)
        .await;
    assert_eq!(p.state, BackfillRunState::Paused);
    let seen = r.log.lock().unwrap().len();
    let last_arrival = r
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _, _)| *t)
        .max()
        .unwrap();
    assert!(
        last_arrival < paused_at + Duration::from_secs(1),
        "a request started more than 1 s after pause"
    );
    assert_eq!(
        p.succeeded_count as usize, seen,
        "every dispatched execution finished"
    );
    // ...and nothing new starts (four poll intervals of the loop).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(r.log.lock().unwrap().len(), seen);
    assert!(e.get(&b.id).await.pending_count > 0);

    e.store
        .signal_backfill(&e.tenant, &b.id, Signal::Resume, "test", e.clock.now())
        .await
        .unwrap();
    wake.notify_waiters();
    let done = e
        .wait_for(&b.id, Duration::from_secs(30), |b| {
            b.state == BackfillRunState::Completed
        })
        .await;
    assert_eq!(done.succeeded_count, 60);
    stop.send(true).unwrap();
    h.await.unwrap();
    assert_consistent(&done, &e.items(&b.id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_cancelled_with_no_dispatch_after_it() {
    let e = env().await;
    let (r, url) = receiver(Duration::from_millis(300)).await;
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 40, 5).await;
    let o = e.orchestrator(|_| {});
    let (wake, stop, h) = run(&o);
    e.wait_for(&b.id, Duration::from_secs(10), |b| b.in_flight_count == 5)
        .await;
    e.store
        .signal_backfill(&e.tenant, &b.id, Signal::Cancel, "test", e.clock.now())
        .await
        .unwrap();
    let cancelled_at = Instant::now();
    wake.notify_waiters();
    let c = e
        .wait_for(&b.id, Duration::from_secs(1), |b| b.in_flight_count == 0)
        .await;
    assert_eq!(c.state, BackfillRunState::Cancelled);
    assert!(c.completed_at.is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = r.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .all(|(t, _, _)| *t < cancelled_at + Duration::from_millis(100)),
        "dispatch after cancel"
    );
    let c = e.get(&b.id).await;
    assert_eq!(c.pending_count, 0);
    assert_eq!(
        c.succeeded_count + c.failed_count + c.cancelled_count + c.skipped_count,
        40
    );
    assert_consistent(&c, &e.items(&b.id).await);
    stop.send(true).unwrap();
    h.await.unwrap();
}

/// A cancel of more pending items than the store cancels at once: the backfill is CANCELLED
/// at once and the ticks sweep what was left pending until every item not already in flight
/// is cancelled (none failed).
#[tokio::test]
async fn cancel_of_a_large_backfill_is_swept_by_the_ticks() {
    let e = env().await;
    let wf = e
        .workflow(json!({"type": "simulated", "latency_ms": 200}))
        .await;
    let n = neo_store::CANCEL_INLINE + 3_000;
    let b = e.backfill(wf, n, 5).await;
    let o = e.orchestrator(|_| {});
    let (wake, stop, h) = run(&o);
    e.wait_for(&b.id, Duration::from_secs(10), |b| b.in_flight_count == 5)
        .await;
    let (c, _) = e
        .store
        .signal_backfill(&e.tenant, &b.id, Signal::Cancel, "test", e.clock.now())
        .await
        .unwrap();
    assert_eq!(c.state, BackfillRunState::Cancelled);
    assert!(c.pending_count > 0, "left for the sweep: {c:?}");
    wake.notify_waiters();
    let c = e
        .wait_for(&b.id, Duration::from_secs(10), |b| {
            b.pending_count == 0 && b.in_flight_count == 0
        })
        .await;
    assert_eq!(c.state, BackfillRunState::Cancelled);
    // The 5 in flight at the cancel may finish or be cancelled; nothing fails.
    assert_eq!(c.failed_count, 0);
    assert_eq!(c.succeeded_count + c.cancelled_count, n as i64);
    assert!(c.cancelled_count >= (n - 5) as i64, "{c:?}");
    assert_consistent(&c, &e.items(&b.id).await);
    stop.send(true).unwrap();
    h.await.unwrap();
}

#[tokio::test]
async fn webhook_retries_honour_backoff_and_retry_after() {
    let e = env().await;
    let (r, url) = receiver(Duration::ZERO).await;
    r.script
        .lock()
        .unwrap()
        .extend([(503, None), (429, Some("2"))]);
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 1, 1).await;
    let o = e.orchestrator(|c| {
        c.backoff_base = SignedDuration::from_secs(1);
        c.backoff_cap = SignedDuration::from_secs(60);
    });
    let t0 = e.clock.now();

    o.tick().await.unwrap();
    o.drain().await.unwrap();
    let item = &e.items(&b.id).await[0];
    assert_eq!(item.status, ItemStatus::Pending);
    assert_eq!(item.attempts, 1);
    assert_eq!(
        item.error.as_deref(),
        Some("the executor answered HTTP 503")
    );
    let retry1 = item.next_attempt_at.unwrap();
    assert!(
        retry1 >= t0 && retry1 <= t0 + SignedDuration::from_secs(1),
        "full jitter within base: {retry1}"
    );
    if retry1 > t0 {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
        assert_eq!(
            r.log.lock().unwrap().len(),
            1,
            "no attempt before the backoff elapsed"
        );
    }

    e.clock.set(retry1);
    o.tick().await.unwrap();
    o.drain().await.unwrap();
    let item = &e.items(&b.id).await[0];
    assert_eq!(item.attempts, 2);
    assert_eq!(
        item.next_attempt_at,
        Some(retry1 + SignedDuration::from_secs(2)),
        "Retry-After: 2 honoured"
    );

    e.clock.set(retry1 + SignedDuration::from_millis(1999));
    o.tick().await.unwrap();
    o.drain().await.unwrap();
    assert_eq!(r.log.lock().unwrap().len(), 2);

    e.clock.set(retry1 + SignedDuration::from_secs(2));
    o.tick().await.unwrap();
    o.drain().await.unwrap();
    let log = r.log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter().all(|(_, k, _)| *k == log[0].1),
        "every attempt carries the same Idempotency-Key"
    );
    let done = e.get(&b.id).await;
    assert_eq!(done.state, BackfillRunState::Completed);
    assert_eq!(done.succeeded_count, 1);
    let ex = e
        .store
        .execution(&e.tenant, &log[0].1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ex.status, ExecutionStatus::Succeeded);
    assert_eq!(ex.attempts, 3);
}

/// "Why did it fail?": the receiver's own `error` is kept with the HTTP status of each attempt
/// (the rest of its body is not), the earlier attempt in the execution's history.
#[tokio::test]
async fn a_receivers_error_message_and_every_attempt_are_kept() {
    let e = env().await;
    let (r, url) = receiver(Duration::ZERO).await;
    *r.error_body.lock().unwrap() = Some("board Help Desk is locked");
    r.script.lock().unwrap().extend([(503, None), (422, None)]);
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 1, 1).await;
    let o = e.orchestrator(|c| c.backoff_base = SignedDuration::ZERO);
    for _ in 0..3 {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
    }
    let item = &e.items(&b.id).await[0];
    assert_eq!((item.status, item.attempts), (ItemStatus::Failed, 2));
    assert_eq!(
        item.error.as_deref(),
        Some("the executor answered HTTP 422: board Help Desk is locked")
    );
    let exec_id = item.execution_id.as_deref().unwrap();
    let ex = e
        .store
        .execution(&e.tenant, exec_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ex.attempts, ex.http_status), (2, Some(422)));
    assert!(ex.attempt_started_at.is_some());
    let earlier = e
        .store
        .execution_attempts(&e.tenant, exec_id)
        .await
        .unwrap();
    assert_eq!(earlier.len(), 1, "{earlier:?}");
    assert_eq!((earlier[0].attempt, earlier[0].http_status), (1, Some(503)));
    assert_eq!(
        earlier[0].error.as_deref(),
        Some("the executor answered HTTP 503: board Help Desk is locked")
    );
    assert!(earlier[0]
        .started_at
        .is_some_and(|s| s <= earlier[0].finished_at));
}

#[tokio::test]
async fn permanent_4xx_fails_after_one_attempt_and_exhausted_retries_fail() {
    let e = env().await;
    let (r, url) = receiver(Duration::ZERO).await;
    r.script
        .lock()
        .unwrap()
        .extend([(400, None), (500, None), (500, None)]);
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 2, 1).await;
    let o = e.orchestrator(|c| {
        c.max_attempts = 2;
        c.backoff_base = SignedDuration::ZERO;
    });
    for _ in 0..4 {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
    }
    let items = e.items(&b.id).await;
    assert_eq!(items[0].status, ItemStatus::Failed);
    assert_eq!(items[0].attempts, 1);
    assert_eq!(
        items[0].error.as_deref(),
        Some("the executor answered HTTP 400")
    );
    assert_eq!(items[1].status, ItemStatus::Failed);
    assert_eq!(items[1].attempts, 2);
    assert!(items[1]
        .error
        .as_deref()
        .unwrap()
        .contains("gave up after 2 attempts"));
    assert_eq!(r.log.lock().unwrap().len(), 3);
    let done = e.get(&b.id).await;
    assert_eq!(
        done.state,
        BackfillRunState::Completed,
        "failures do not make it FAILED"
    );
    assert_eq!(done.failed_count, 2);
}

#[tokio::test]
async fn rerun_failed_end_to_end_with_a_30_percent_failing_executor() {
    let e = env().await;
    let wf = e
        .workflow(json!({"type": "simulated", "failure_rate": 0.3, "seed": 42}))
        .await;
    let b = e.backfill(wf, 300, 20).await;
    let o = e.orchestrator(|c| c.breaker_threshold = 1000);
    for _ in 0..100 {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
        if e.get(&b.id).await.state == BackfillRunState::Completed {
            break;
        }
    }
    let parent = e.get(&b.id).await;
    assert_eq!(parent.state, BackfillRunState::Completed);
    assert!(
        (60..=120).contains(&parent.failed_count),
        "{}",
        parent.failed_count
    );
    assert_eq!(parent.succeeded_count + parent.failed_count, 300);
    let failed: Vec<String> = e
        .items(&b.id)
        .await
        .into_iter()
        .filter(|i| i.status == ItemStatus::Failed)
        .map(|i| i.entity_id)
        .collect();

    let child = e
        .store
        .rerun_failed(&e.tenant, &b.id, "bf_child", "test", e.clock.now())
        .await
        .unwrap();
    for _ in 0..100 {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
        if e.get(&child.id).await.state == BackfillRunState::Completed {
            break;
        }
    }
    let child = e.get(&child.id).await;
    assert_eq!(child.state, BackfillRunState::Completed);
    assert_eq!(child.parent_backfill_run_id.as_deref(), Some(b.id.as_str()));
    assert_eq!(
        child.succeeded_count + child.failed_count,
        parent.failed_count
    );
    let dispatched: Vec<String> = e
        .store
        .list_executions(
            &e.tenant,
            &neo_store::ExecutionFilter {
                backfill_id: Some(child.id.clone()),
                ..Default::default()
            },
            None,
            10_000,
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|x| x.entity_id)
        .collect();
    let mut a = dispatched.clone();
    a.sort();
    let mut f = failed.clone();
    f.sort();
    assert_eq!(
        a, f,
        "the child dispatched exactly the parent's failed items"
    );
}

#[tokio::test]
async fn circuit_breaker_pauses_a_backfill_whose_executor_always_fails() {
    let e = env().await;
    let wf = e
        .workflow(json!({"type": "simulated", "failure_rate": 1.0, "seed": 1}))
        .await;
    let b = e.backfill(wf, 100, 1).await;
    let o = e.orchestrator(|c| c.breaker_threshold = 10);
    for _ in 0..30 {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
    }
    let p = e.get(&b.id).await;
    assert_eq!(p.state, BackfillRunState::Paused);
    assert_eq!(p.failed_count, 10);
    let err = p.error.clone().unwrap();
    assert!(
        err.contains("circuit breaker") && err.contains("10 consecutive failed executions"),
        "{err}"
    );
    let (r, _) = e
        .store
        .signal_backfill(&e.tenant, &b.id, Signal::Resume, "test", e.clock.now())
        .await
        .unwrap();
    assert_eq!(r.state, BackfillRunState::Running);
    assert!(r.error.is_none(), "resume clears the breaker's error");
    for _ in 0..30 {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
    }
    assert_eq!(
        e.get(&b.id).await.failed_count,
        20,
        "a fresh streak after resume"
    );
}

#[tokio::test]
async fn entities_with_a_succeeded_execution_are_skipped_unless_reprocess() {
    let e = env().await;
    let wf = e.workflow(json!({"type": "simulated"})).await;
    let first = e
        .backfill_with(
            wf,
            vec!["A".into(), "B".into()],
            5,
            Default::default(),
            false,
        )
        .await;
    let o = e.orchestrator(|_| {});
    o.tick().await.unwrap();
    o.drain().await.unwrap();
    assert_eq!(e.get(&first.id).await.state, BackfillRunState::Completed);

    let second = e
        .backfill_with(
            wf,
            vec!["A".into(), "B".into(), "C".into()],
            5,
            Default::default(),
            false,
        )
        .await;
    o.tick().await.unwrap();
    o.drain().await.unwrap();
    let s = e.get(&second.id).await;
    assert_eq!(
        (
            s.state,
            s.skipped_count,
            s.succeeded_count,
            s.processed_count()
        ),
        (BackfillRunState::Completed, 2, 1, 1)
    );

    let third = e
        .backfill_with(wf, vec!["A".into()], 5, Default::default(), true)
        .await;
    o.tick().await.unwrap();
    o.drain().await.unwrap();
    let t = e.get(&third.id).await;
    assert_eq!(
        (t.skipped_count, t.succeeded_count),
        (0, 1),
        "reprocess runs it again"
    );
}

#[tokio::test]
async fn dispatch_only_inside_windows() {
    let e = env().await;
    let wf = e.workflow(json!({"type": "simulated"})).await;
    // Monday 22:00 → 06:00 London; the clock says Monday 12:00 UTC (12:00 London, winter).
    let windows: WorkflowDailyExecutionWindows = serde_json::from_value(
        json!({"monday": [{"run_start_time": "22:00", "run_end_time": "06:00"}]}),
    )
    .unwrap();
    let b = e
        .backfill_with(wf, vec!["1".into(), "2".into()], 5, windows, false)
        .await;
    let o = e.orchestrator(|_| {});
    let rep = o.tick().await.unwrap();
    assert_eq!(rep.dispatched, 0);
    assert_eq!(e.get(&b.id).await.state, BackfillRunState::Running);
    e.clock.set("2026-11-30T21:59:59Z".parse().unwrap());
    assert_eq!(o.tick().await.unwrap().dispatched, 0);
    e.clock.set("2026-11-30T22:00:00Z".parse().unwrap());
    assert_eq!(o.tick().await.unwrap().dispatched, 2);
    o.drain().await.unwrap();
    assert_eq!(e.get(&b.id).await.state, BackfillRunState::Completed);
}

#[tokio::test]
async fn nothing_is_claimed_before_the_scheduled_start_and_dispatch_begins_at_it() {
    let e = env().await;
    let wf = e.workflow(json!({"type": "simulated"})).await;
    let start: Timestamp = "2026-11-30T22:00:00Z".parse().unwrap();
    let ids: Vec<String> = (0..3).map(|i| format!("E{i}")).collect();
    let b = e
        .store
        .create_backfill(NewBackfill {
            id: "bf_scheduled".into(),
            tenant_id: e.tenant.clone(),
            state: BackfillRunState::Running,
            target_workflow_id: wf,
            entity_type: EntityType::Ticket,
            filter_spec: json!({ "entity_ids": ids }),
            daily_execution_windows: WorkflowDailyExecutionWindows::default(),
            timezone: "Europe/London".into(),
            max_in_flight: 5,
            reprocess: false,
            total_estimated: Some(3),
            credits_per_entity: 1,
            created_by: "test".into(),
            created_at: e.clock.now(),
            entity_ids: Some(ids),
            name: None,
            mode: neo_domain::backfill::BackfillMode::Live,
            start_at: Some(start),
            max_credits: None,
            trial_sample_size: None,
            max_in_flight_per_company: None,
            company_blackouts: None,
        })
        .await
        .unwrap();
    let o = e.orchestrator(|_| {});
    assert_eq!(o.tick().await.unwrap().dispatched, 0);
    e.clock.set(start - SignedDuration::from_secs(1));
    assert_eq!(o.tick().await.unwrap().dispatched, 0);
    // Not one item was claimed meanwhile: no execution exists yet.
    assert!(
        e.items(&b.id)
            .await
            .iter()
            .all(|i| i.execution_id.is_none()
                && i.status == neo_domain::backfill::ItemStatus::Pending)
    );
    assert_eq!(e.get(&b.id).await.state, BackfillRunState::Running);
    e.clock.set(start);
    assert_eq!(o.tick().await.unwrap().dispatched, 3);
    o.drain().await.unwrap();
    assert_eq!(e.get(&b.id).await.state, BackfillRunState::Completed);
}

#[tokio::test]
async fn an_expired_lease_puts_the_item_back_with_the_same_execution_id() {
    let e = env().await;
    let (r, url) = receiver(Duration::ZERO).await;
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 3, 3).await;
    // A worker that claims and dies.
    let now = e.clock.now();
    let dead = e
        .store
        .claim_items(
            &b.id,
            "dead-worker",
            2,
            now,
            now + SignedDuration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(dead.claimed.len(), 2);
    let o = e.orchestrator(|_| {});
    o.tick().await.unwrap();
    o.drain().await.unwrap();
    assert_eq!(
        r.log.lock().unwrap().len(),
        1,
        "only the unclaimed item; the others are leased"
    );
    e.clock.advance(SignedDuration::from_secs(31));
    let rep = o.tick().await.unwrap();
    assert_eq!(rep.requeued, 2);
    o.drain().await.unwrap();
    let done = e.get(&b.id).await;
    assert_eq!(done.state, BackfillRunState::Completed);
    assert_eq!(done.succeeded_count, 3);
    let log = r.log.lock().unwrap().clone();
    let keys: HashMap<String, String> = log
        .iter()
        .map(|(_, k, ent)| (ent.clone(), k.clone()))
        .collect();
    for c in &dead.claimed {
        assert_eq!(
            keys[&c.entity_id], c.execution_id,
            "re-dispatch keeps the Idempotency-Key"
        );
    }
    assert_consistent(&done, &e.items(&b.id).await);
}

#[tokio::test]
async fn accepted_executions_wait_for_completion_until_the_deadline() {
    let e = env().await;
    let (r, url) = receiver(Duration::ZERO).await;
    r.script.lock().unwrap().extend([(202, None), (202, None)]);
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 2, 2).await;
    let o = e.orchestrator(|c| c.callback_deadline = SignedDuration::from_secs(600));
    o.tick().await.unwrap();
    o.drain().await.unwrap();
    let items = e.items(&b.id).await;
    assert!(items.iter().all(|i| i.status == ItemStatus::InFlight));
    // The executor reports one of them.
    let ex = items[0].execution_id.clone().unwrap();
    assert_eq!(
        e.store
            .finish_execution(
                &e.tenant,
                &ex,
                ExecutionStatus::Succeeded,
                None,
                e.clock.now()
            )
            .await
            .unwrap(),
        Some(true)
    );
    // The other never does: after the deadline it fails.
    e.clock.advance(SignedDuration::from_secs(601));
    o.tick().await.unwrap();
    let done = e.get(&b.id).await;
    assert_eq!(done.state, BackfillRunState::Completed);
    assert_eq!((done.succeeded_count, done.failed_count), (1, 1));
    let failed = e
        .items(&b.id)
        .await
        .into_iter()
        .find(|i| i.status == ItemStatus::Failed)
        .unwrap();
    assert!(failed.error.unwrap().contains("deadline"));
}

#[tokio::test]
async fn snapshot_sources_feed_items_and_failures_fail_the_backfill() {
    type Page = Vec<neo_store::SnapshotEntry>;
    struct Pages(Mutex<Vec<Page>>);
    #[async_trait::async_trait]
    impl neo_orchestrator::EntitySource for Pages {
        async fn next_page(
            &self,
            b: &Backfill,
        ) -> Result<neo_orchestrator::SourcePage, neo_orchestrator::SourceError> {
            let mut p = self.0.lock().unwrap();
            if p.is_empty() {
                return Err(neo_orchestrator::SourceError::Fatal("PSA said no".into()));
            }
            let page = p.remove(0);
            // The checkpoint of the previous page is handed back.
            let expect = if p.is_empty() {
                Some(json!({"page": 1}))
            } else {
                None
            };
            assert_eq!(b.snapshot_checkpoint, expect);
            Ok(neo_orchestrator::SourcePage {
                items: page,
                checkpoint: Some(json!({"page": 1})),
                complete: p.is_empty(),
            })
        }
    }
    let e = env().await;
    let wf = e.workflow(json!({"type": "simulated"})).await;
    // A PSA-query backfill: no snapshot at create.
    let b = e.query_backfill("bf_query", wf).await;
    let entry = |id: &str, number: Option<&str>| neo_store::SnapshotEntry {
        id: id.into(),
        number: number.map(Into::into),
        summary: Some(format!("ticket {id}")),
        company: None,
    };
    let pages = vec![
        vec![entry("10", Some("#10")), entry("11", None)],
        vec![entry("12", None)],
    ];
    let o = Orchestrator::with_source(
        e.store.clone(),
        Arc::new(e.clock.clone()),
        OrchestratorConfig::default(),
        Arc::new(Pages(Mutex::new(pages))),
    );
    for _ in 0..3 {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
    }
    let done = e.get(&b.id).await;
    assert_eq!(done.state, BackfillRunState::Completed);
    assert_eq!(
        (done.total_items, done.succeeded_count, done.total_estimated),
        (3, 3, Some(3))
    );
    let items: Vec<(String, Option<String>, Option<String>)> = e
        .items(&b.id)
        .await
        .into_iter()
        .map(|i| (i.entity_id, i.entity_number, i.summary))
        .collect();
    let want = |id: &str, n: Option<&str>| {
        (
            id.to_owned(),
            n.map(Into::into),
            Some(format!("ticket {id}")),
        )
    };
    assert_eq!(
        items,
        vec![want("10", Some("#10")), want("11", None), want("12", None)],
        "ids, numbers and summaries are kept in snapshot order"
    );

    // Without a source the backfill fails with a clear error.
    let wf2 = e.workflow(json!({"type": "simulated"})).await;
    let b2 = e.query_backfill("bf_query2", wf2).await;
    let plain = e.orchestrator(|_| {});
    plain.tick().await.unwrap();
    plain.drain().await.unwrap(); // the snapshot task runs off the tick
    let f = e.get(&b2.id).await;
    assert_eq!(f.state, BackfillRunState::Failed);
    assert!(f
        .error
        .unwrap()
        .contains("PSA enumeration is not available"));
    let _: Timestamp = e.clock.now();
}

/// The SSRF guard at dispatch (`egress_allow_private` off, the default): workflows stored
/// with a private target — an address in any spelling, or a name that resolves to loopback —
/// fail at once with the reason, are not retried, and the receiver sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_webhook_targets_fail_at_dispatch_without_retries_unless_allowed() {
    let e = env().await;
    let (r, url) = receiver(Duration::ZERO).await;
    let port = url.rsplit(':').next().unwrap().trim_end_matches("/hook");
    let mut backfills = Vec::new();
    for target in [
        url.clone(),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ] {
        let wf = e.workflow(hook(&target)).await;
        backfills.push((target, e.backfill(wf, 3, 3).await));
    }
    let o = e.orchestrator(|c| c.egress_allow_private = false);
    let (_wake, stop, h) = run(&o);
    for (target, b) in &backfills {
        let done = e
            .wait_for(&b.id, Duration::from_secs(30), |b| {
                b.state == BackfillRunState::Completed
            })
            .await;
        assert_eq!(done.failed_count, 3, "{target}");
        for it in e.items(&b.id).await {
            assert_eq!(it.attempts, 1, "{target}: not retried");
            let err = it.error.unwrap();
            assert!(
                err.contains("loopback") && err.contains("--egress-allow-private"),
                "{target}: {err}"
            );
        }
    }
    stop.send(true).unwrap();
    h.await.unwrap();
    assert_eq!(
        r.log.lock().unwrap().len(),
        0,
        "nothing reached the receiver"
    );

    // Allowed: the same kind of target is delivered.
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 3, 3).await;
    let o = e.orchestrator(|_| {});
    let (_wake, stop, h) = run(&o);
    let done = e
        .wait_for(&b.id, Duration::from_secs(30), |b| {
            b.state == BackfillRunState::Completed
        })
        .await;
    stop.send(true).unwrap();
    h.await.unwrap();
    assert_eq!(done.succeeded_count, 3);
    assert_eq!(r.log.lock().unwrap().len(), 3);
}

// ---- fault injection: the webhook executor down --------------------------------------------

/// How the executor answers while it is down: 503, with `Retry-After: 300` for even entities.
fn down_503(entity: &str) -> (u16, Option<&'static str>) {
    let n: u32 = entity.trim_start_matches('E').parse().unwrap();
    (503, n.is_multiple_of(2).then_some("300"))
}

fn always_503(_: &str) -> (u16, Option<&'static str>) {
    (503, None)
}

/// The executor is down for the whole of Monday's 13:00 → 14:00 window (503 for the first half,
/// `Retry-After: 300` on half of the entities; connection refused for the second half) and back
/// up for Tuesday's. Every attempt is retried within the attempt policy — each delay drawn from
/// `[0, min(cap, base·2^(attempt−1))]` and never shorter than `Retry-After` — no item fails, the
/// backfill stays RUNNING (retries are not failures, so the circuit breaker does not trip);
/// from the close of the window nothing is dispatched, however overdue the retries are, until
/// Tuesday's window opens; then every item succeeds with the execution id it had from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_executor_down_for_a_whole_window_backs_off_and_finishes_in_the_next_window() {
    let e = env().await;
    let r = Arc::new(Receiver::default());
    *r.rule.lock().unwrap() = Some(down_503);
    // An address of its own on loopback: once the receiver closes, its port must stay
    // refused, and another test's listener on 127.0.0.1 may take a freed port number.
    let listening = listen(r.clone(), "127.0.45.67:0").await;
    let addr = listening.addr.to_string();
    let wf = e.workflow(hook(&listening.url())).await;
    let windows: WorkflowDailyExecutionWindows = serde_json::from_value(json!({
        "monday": [{"run_start_time": "13:00", "run_end_time": "14:00"}],
        "tuesday": [{"run_start_time": "13:00", "run_end_time": "14:00"}]}))
    .unwrap();
    let ids: Vec<String> = (0..40).map(|i| format!("E{i}")).collect();
    let b = e.backfill_with(wf, ids, 10, windows, false).await;
    let (base, cap, max_attempts) = (60, 600, 20);
    let o = e.orchestrator(|c| {
        c.max_attempts = max_attempts;
        c.backoff_base = SignedDuration::from_secs(base);
        c.backoff_cap = SignedDuration::from_secs(cap);
    });
    let at = |t: &str| -> Timestamp { t.parse().unwrap() };
    // London is on UTC in November: the window is 13:00Z → 14:00Z.
    assert_eq!(o.tick().await.unwrap().dispatched, 0, "before the window");

    // The window: one tick a minute. `attempts` per entity as last seen.
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut listening = Some(listening);
    let (mut delays, mut retry_after_delays) = (Vec::new(), 0);
    for minute in 0..60 {
        let now = at("2026-11-30T13:00:00Z") + SignedDuration::from_mins(minute);
        e.clock.set(now);
        let refused = minute >= 30;
        if refused {
            if let Some(l) = listening.take() {
                l.close().await;
            }
        }
        let rep = o.tick().await.unwrap();
        assert!(rep.dispatched <= 10, "max_in_flight");
        o.drain().await.unwrap();
        let bf = e.get(&b.id).await;
        let items = e.items(&b.id).await;
        assert_consistent(&bf, &items);
        assert_eq!(bf.state, BackfillRunState::Running, "{:?}", bf.error);
        assert_eq!(
            (bf.failed_count, bf.in_flight_count),
            (0, 0),
            "minute {minute}"
        );
        for i in &items {
            assert_eq!(i.status, ItemStatus::Pending, "{i:?}");
            let before = seen.insert(i.entity_id.clone(), i.attempts).unwrap_or(0);
            if i.attempts == before {
                continue;
            }
            assert_eq!(i.attempts, before + 1, "one attempt per tick");
            assert!(i.attempts < max_attempts);
            // This attempt ran at `now`; the retry is due `delay` later.
            let delay = i.next_attempt_at.unwrap().duration_since(now).as_secs();
            let ceiling = cap.min(base << (i.attempts - 1));
            let retry_after = (!refused && down_503(&i.entity_id).1.is_some()).then_some(300);
            let error = i.error.as_deref().unwrap();
            if refused {
                assert_eq!(error, "the executor could not be reached");
            } else {
                assert_eq!(error, "the executor answered HTTP 503");
            }
            match retry_after {
                Some(ra) => {
                    assert!(
                        (ra..=ceiling.max(ra)).contains(&delay),
                        "attempt {}: {delay} s, Retry-After {ra}",
                        i.attempts
                    );
                    retry_after_delays += 1;
                }
                None => {
                    assert!(
                        (0..=ceiling).contains(&delay),
                        "attempt {}: {delay} s outside [0, {ceiling}]",
                        i.attempts
                    );
                    delays.push((i.attempts, delay));
                }
            }
        }
    }
    let attempts_in_window: i64 = seen.values().sum();
    assert!(
        seen.values().all(|a| *a >= 2),
        "every item was tried, and retried, in the window: {seen:?}"
    );
    assert!(retry_after_delays > 0);
    // The delays are jittered and grow with the attempt, up to the cap.
    let late = delays.iter().filter(|(a, _)| *a >= 4).map(|(_, d)| *d);
    assert!(late.clone().max().unwrap() > 2 * base, "{delays:?}");
    assert!(late.max().unwrap() <= cap);
    let first: std::collections::HashSet<i64> = delays
        .iter()
        .filter(|(a, _)| *a == 1)
        .map(|(_, d)| *d)
        .collect();
    assert!(first.len() > 1, "no jitter: {first:?}");
    let delivered = r.log.lock().unwrap().len();
    eprintln!(
        "in the window: {attempts_in_window} attempts ({delivered} answered 503, the rest refused)"
    );

    // Closed from 14:00 (the end is exclusive) to Tuesday 13:00: every retry is overdue, none
    // is dispatched.
    let mut t = at("2026-11-30T14:00:00Z");
    while t < at("2026-12-01T13:00:00Z") {
        e.clock.set(t);
        assert_eq!(o.tick().await.unwrap().dispatched, 0, "dispatch at {t}");
        o.drain().await.unwrap();
        t += SignedDuration::from_mins(10);
    }
    let items = e.items(&b.id).await;
    assert!(items
        .iter()
        .all(|i| i.status == ItemStatus::Pending && i.next_attempt_at.unwrap() < t));
    assert_eq!(
        items.iter().map(|i| i.attempts).sum::<i64>(),
        attempts_in_window
    );

    // Tuesday: the executor is back at the same address.
    *r.rule.lock().unwrap() = None;
    let _back = listen(r.clone(), &addr).await;
    e.clock.set(at("2026-12-01T13:00:00Z"));
    let mut done = e.get(&b.id).await;
    for _ in 0..10 {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
        done = e.get(&b.id).await;
        if done.state != BackfillRunState::Running {
            break;
        }
    }
    assert_eq!(done.state, BackfillRunState::Completed);
    assert_eq!((done.succeeded_count, done.failed_count), (40, 0));
    let items = e.items(&b.id).await;
    assert_consistent(&done, &items);
    assert_eq!(
        items.iter().map(|i| i.attempts).sum::<i64>(),
        attempts_in_window + 40,
        "one more attempt per item, in the next window"
    );
    // Every delivery of an entity carried its one execution id as the Idempotency-Key.
    let mut keys: HashMap<String, String> = HashMap::new();
    for (_, key, entity) in r.log.lock().unwrap().iter() {
        assert_eq!(keys.entry(entity.clone()).or_insert(key.clone()), key);
    }
    for i in &items {
        assert_eq!(i.execution_id.as_ref(), keys.get(&i.entity_id));
        let ex = e
            .store
            .execution(&e.tenant, i.execution_id.as_ref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (ex.status, ex.attempts),
            (ExecutionStatus::Succeeded, i.attempts)
        );
    }
}

/// The executor stays down: items that use up `max_attempts` fail one by one with the last
/// error, and after `breaker_threshold` consecutive failures the backfill pauses itself with
/// the breaker's error instead of failing every item; nothing is dispatched while it is paused.
/// When the executor is back, resume finishes the rest and rerun-failed the failed ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_fail_items_one_by_one_and_the_breaker_pauses_the_backfill() {
    let e = env().await;
    let (r, url) = receiver(Duration::ZERO).await;
    *r.rule.lock().unwrap() = Some(always_503);
    let wf = e.workflow(hook(&url)).await;
    let b = e.backfill(wf, 20, 4).await;
    let o = e.orchestrator(|c| {
        c.max_attempts = 3;
        c.backoff_base = SignedDuration::from_secs(1);
        c.backoff_cap = SignedDuration::from_secs(4);
        c.breaker_threshold = 5;
    });
    // Each step is longer than the cap, so every retry is due at the next one.
    let step = || async {
        o.tick().await.unwrap();
        o.drain().await.unwrap();
        e.clock.advance(SignedDuration::from_secs(5));
        e.get(&b.id).await
    };
    let mut paused = step().await;
    for _ in 0..30 {
        if paused.state != BackfillRunState::Running {
            break;
        }
        paused = step().await;
    }
    assert_eq!(paused.state, BackfillRunState::Paused);
    let error = paused.error.clone().unwrap();
    assert!(
        error.starts_with("circuit breaker: 5 consecutive failed executions"),
        "{error}"
    );
    let items = e.items(&b.id).await;
    assert_consistent(&paused, &items);
    let failed: Vec<&neo_store::Item> = items
        .iter()
        .filter(|i| i.status == ItemStatus::Failed)
        .collect();
    // The items in flight when it tripped settle too (at most max_in_flight − 1 more).
    assert!((5..=8).contains(&failed.len()), "{} failed", failed.len());
    assert!(
        paused.pending_count >= 12,
        "not failed en masse: {paused:?}"
    );
    let deliveries = |entity: &str| -> Vec<String> {
        r.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, ent)| ent == entity)
            .map(|(_, k, _)| k.clone())
            .collect()
    };
    for i in &failed {
        assert_eq!(i.attempts, 3);
        assert_eq!(
            i.error.as_deref(),
            Some("the executor answered HTTP 503 (gave up after 3 attempts)")
        );
        assert_eq!(
            deliveries(&i.entity_id),
            vec![i.execution_id.clone().unwrap(); 3]
        );
    }
    // Paused: nothing is dispatched, however long it waits.
    let sent = r.log.lock().unwrap().len();
    for _ in 0..5 {
        assert_eq!(step().await.state, BackfillRunState::Paused);
    }
    assert_eq!(r.log.lock().unwrap().len(), sent);

    // The executor is back: resume finishes the rest; the failed ones stay failed.
    *r.rule.lock().unwrap() = None;
    e.store
        .signal_backfill(&e.tenant, &b.id, Signal::Resume, "test", e.clock.now())
        .await
        .unwrap();
    let mut done = step().await;
    for _ in 0..30 {
        if done.state != BackfillRunState::Running {
            break;
        }
        done = step().await;
    }
    assert_eq!(done.state, BackfillRunState::Completed);
    assert_eq!(done.failed_count, failed.len() as i64);
    assert_eq!(done.succeeded_count, 20 - failed.len() as i64);
    assert!(done.error.is_none());
    assert_consistent(&done, &e.items(&b.id).await);

    let child = e
        .store
        .rerun_failed(&e.tenant, &b.id, "bf_rerun", "test", e.clock.now())
        .await
        .unwrap();
    let mut c = step().await;
    for _ in 0..10 {
        c = e.get(&child.id).await;
        if c.state != BackfillRunState::Running {
            break;
        }
        step().await;
    }
    assert_eq!(c.state, BackfillRunState::Completed);
    assert_eq!(
        (c.succeeded_count, c.failed_count),
        (failed.len() as i64, 0)
    );
    assert_consistent(&c, &e.items(&c.id).await);
}

/// Makes the database itself refuse to store one kind of outcome (a trigger on SQLite, a check
/// constraint on PostgreSQL): an item error mentioning HTTP 418. Such a refusal will not go
/// away on retry, as a value the database cannot store would not.
async fn refuse_teapots(db: &neo_store::testing::TestStore) {
    use sqlx::{Connection, Executor};
    match db.backend {
        neo_store::testing::Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            c.execute("CREATE TRIGGER refuse_teapots BEFORE UPDATE ON backfill_items WHEN NEW.error LIKE '%HTTP 418%' BEGIN SELECT RAISE(ABORT, 'refused'); END")
                .await
                .unwrap();
        }
        neo_store::testing::Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            c.execute("ALTER TABLE backfill_items ADD CONSTRAINT refuse_teapots CHECK (error IS NULL OR error NOT LIKE '%HTTP 418%') NOT VALID")
                .await
                .unwrap();
        }
    }
}

/// An outcome the database refuses does not stall settling: its batch is split, the others
/// settle as they were, and the refused one settles `failed` with a fixed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_the_database_refuses_settles_as_failed_and_the_rest_of_its_batch_settles() {
    let e = env().await;
    refuse_teapots(&e._db).await;
    let (r, url) = receiver(Duration::ZERO).await;
    *r.rule.lock().unwrap() = Some(|entity| {
        if entity == "E3" || entity == "E7" {
            (418, None)
        } else {
            (200, None)
        }
    });
    let wf = e
        .workflow(json!({"type": "webhook", "url": url, "secret": "whsec_0123456789abcdef"}))
        .await;
    let b = e.backfill(wf, 20, 20).await;
    let o = e.orchestrator(|_| {});
    let (_wake, stop, h) = run(&o);
    let done = e
        .wait_for(&b.id, Duration::from_secs(30), |b| {
            b.state == BackfillRunState::Completed
        })
        .await;
    stop.send(true).unwrap();
    h.await.unwrap();
    assert_eq!((done.succeeded_count, done.failed_count), (18, 2));
    for it in e.items(&b.id).await {
        if it.entity_id == "E3" || it.entity_id == "E7" {
            assert_eq!(it.status, ItemStatus::Failed);
            assert_eq!(
                it.error.as_deref(),
                Some(neo_orchestrator::settler::UNSTORABLE)
            );
        } else {
            assert_eq!(it.status, ItemStatus::Succeeded, "{it:?}");
        }
    }
    assert_consistent(&done, &e.items(&b.id).await);
}
