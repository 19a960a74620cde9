//! PSA enumeration end to end: psa-sim over real HTTP → connector → `PsaSource` → orchestrator
//! → a real SQLite file, with the simulated executor. Throttling and 5xx during enumeration
//! slow it down without failing an item; pause and resume continue from the persisted
//! checkpoint without re-reading earlier pages (checked in the simulator's request log).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use neo_domain::backfill::{
    AutonomyType, BackfillRunState, EntityType, ItemStatus, Signal, WorkflowState,
};
use neo_domain::clock::{Clock, ManualClock};
use neo_domain::filter::{self, FilterSpec, Group};
use neo_orchestrator::{Orchestrator, OrchestratorConfig};
use neo_psa::compile::{matches, EvalContext};
use neo_psa::http::HttpPolicy;
use neo_psa::source::PsaSource;
use neo_psa::Psa;
use neo_store::{Backfill, NewBackfill, NewWorkflow, Store};
use psa_sim::{Fault, SimConfig, SimHandle};
use serde_json::{json, Value};

const T0: &str = "2026-11-30T12:00:00Z";
const CW_TICKETS: &str = "/v4_6_release/apis/3.0/service/tickets";
const AT_QUERY: &str = "/ATServicesRest/V1.0/Tickets/query";

struct Env {
    store: Arc<dyn Store>,
    clock: ManualClock,
    tenant: String,
    sim: SimHandle,
    orchestrator: Orchestrator,
    /// The throw-away database (SQLite or PostgreSQL, per `NEO_TEST_BACKEND`).
    _db: neo_store::testing::TestStore,
}

/// Fast retries so injected 5xx cost milliseconds; `Retry-After` is still honoured as sent.
/// A page that takes longer than 3 s is given up (and retried).
fn policy() -> HttpPolicy {
    HttpPolicy {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(3),
        ..HttpPolicy::default()
    }
}

async fn env(psa: Psa, tickets: usize) -> Env {
    let sim = psa_sim::spawn(SimConfig {
        tickets,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let db = neo_store::testing::suite_store().await;
    let store = db.store.clone();
    let clock = ManualClock::new(T0.parse().unwrap());
    let tenant = store.ensure_tenant("acme", clock.now()).await.unwrap().id;
    let (config, secrets) = common::unpaced_integration(&sim, psa);
    store
        .put_integration(&tenant, psa.as_str(), config, secrets, clock.now())
        .await
        .unwrap();
    let orchestrator = Orchestrator::with_source(
        store.clone(),
        Arc::new(clock.clone()),
        OrchestratorConfig {
            poll_interval: Duration::from_millis(20),
            jitter_seed: Some(3),
            ..Default::default()
        },
        Arc::new(PsaSource::new(
            store.clone(),
            policy(),
            neo_egress::Egress::new(neo_egress::EgressPolicy::new(true)),
        )),
    );
    Env {
        store,
        clock,
        tenant,
        sim,
        orchestrator,
        _db: db,
    }
}

impl Env {
    async fn backfill(&self, filter_spec: Value) -> Backfill {
        let wf = self.workflow().await;
        self.backfill_of(wf, "bf_psa", filter_spec).await
    }

    async fn workflow(&self) -> i64 {
        self.store
            .insert_workflow(
                &self.tenant,
                NewWorkflow {
                    name: "Triage".into(),
                    description: None,
                    autonomy_type: AutonomyType::ChainedActions,
                    entity_type: EntityType::Ticket,
                    state: WorkflowState::Enabled,
                    credit_tier: 1,
                    executor: json!({"type": "simulated"}),
                },
                self.clock.now(),
            )
            .await
            .unwrap()
            .id
    }

    /// A RUNNING backfill `id` of workflow `wf` over a PSA query.
    async fn backfill_of(&self, wf: i64, id: &str, filter_spec: Value) -> Backfill {
        self.store
            .create_backfill(NewBackfill {
                id: id.into(),
                tenant_id: self.tenant.clone(),
                state: BackfillRunState::Running,
                target_workflow_id: wf,
                entity_type: EntityType::Ticket,
                filter_spec,
                daily_execution_windows: Default::default(),
                timezone: "UTC".into(),
                max_in_flight: 50,
                reprocess: false,
                total_estimated: None,
                credits_per_entity: 1,
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

    async fn get(&self) -> Backfill {
        self.store
            .backfill(&self.tenant, "bf_psa")
            .await
            .unwrap()
            .unwrap()
    }

    async fn item_ids(&self) -> Vec<String> {
        self.store
            .list_items(
                &self.tenant,
                "bf_psa",
                &neo_store::ItemFilter::default(),
                None,
                100_000,
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|i| i.entity_id)
            .collect()
    }

    /// Ticks (and drains) until the backfill is no longer RUNNING.
    async fn run_to_end(&self) -> Backfill {
        self.run_until_done("bf_psa").await
    }

    /// Ticks (and drains) until backfill `id` is no longer RUNNING.
    async fn run_until_done(&self, id: &str) -> Backfill {
        let start = Instant::now();
        loop {
            self.orchestrator.tick().await.unwrap();
            self.orchestrator.drain().await.unwrap();
            let b = self
                .store
                .backfill(&self.tenant, id)
                .await
                .unwrap()
                .unwrap();
            if b.state != BackfillRunState::Running {
                return b;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "stuck: {b:?}");
        }
    }

    /// The statuses of the requests to `path`, in order (`None`: no response).
    async fn statuses(&self, path: &str) -> Vec<Option<u16>> {
        self.sim
            .requests()
            .await
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| r.status)
            .collect()
    }

    /// The page requests the simulator answered with 200, in order.
    async fn served_pages(&self, prefix: &str) -> Vec<psa_sim::LoggedRequest> {
        self.sim
            .requests()
            .await
            .into_iter()
            .filter(|r| r.path == prefix && r.status == Some(200))
            .collect()
    }
}

fn root(spec: &Value) -> Group {
    match filter::parse(spec, T0.parse().unwrap(), None).unwrap().0 {
        FilterSpec::Query { root, .. } => root,
        other => panic!("not a query: {other:?}"),
    }
}

/// The ids the reference evaluator selects from the simulator's data set, in id order.
fn expected(sim: &SimHandle, spec: &Value, psa: Psa) -> Vec<String> {
    let root = root(spec);
    sim.tickets()
        .iter()
        .filter(|t| {
            let row = match psa {
                Psa::ConnectWise => psa_sim::cw_json(t),
                _ => psa_sim::at_json(t),
            };
            matches(
                &root,
                &row,
                neo_psa::compile::tickets(psa),
                &EvalContext::default(),
            )
        })
        .map(|t| t.id.to_string())
        .collect()
}

fn query_param(r: &psa_sim::LoggedRequest, name: &str) -> Option<String> {
    form_urlencoded::parse(r.query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn assert_all_succeeded(b: &Backfill, expected: &[String], ids: &[String]) {
    assert_eq!(b.state, BackfillRunState::Completed, "{b:?}");
    assert_eq!(ids.len(), expected.len(), "item count");
    assert!(ids == expected, "the item set differs from the reference");
    assert_eq!(
        (b.total_items, b.succeeded_count, b.failed_count),
        (expected.len() as i64, expected.len() as i64, 0)
    );
}

#[tokio::test]
async fn connectwise_2500_tickets_with_429_and_5xx_during_enumeration() {
    let e = env(Psa::ConnectWise, 2_500).await;
    let spec = json!({"conditions": {"combinator": "and", "rules": [
        {"field": "$created", "operator": ">=", "value": {"$datetime": "2025-01-01T00:00:00Z"}}
    ]}});
    let want = expected(&e.sim, &spec, Psa::ConnectWise);
    assert_eq!(want.len(), 2_500);
    // Page 2 is throttled once (Retry-After 1 s), then fails with 503, 502 and a dropped
    // connection before it is served; page 3 is throttled once more.
    e.sim.inject(
        Fault::status(429)
            .retry_after("1")
            .path_prefix(CW_TICKETS)
            .nth(2),
    );
    e.sim
        .inject(Fault::status(503).path_prefix(CW_TICKETS).nth(3));
    e.sim
        .inject(Fault::status(502).path_prefix(CW_TICKETS).nth(4));
    e.sim
        .inject(Fault::drop_connection().path_prefix(CW_TICKETS).nth(5));
    e.sim.inject(
        Fault::status(429)
            .retry_after("0")
            .path_prefix(CW_TICKETS)
            .nth(7),
    );
    e.backfill(spec).await;
    let b = e.run_to_end().await;
    assert_all_succeeded(&b, &want, &e.item_ids().await);
    // Every fault fired (the dropped connection has no status), and was retried.
    assert_eq!(
        e.statuses(CW_TICKETS).await,
        vec![
            Some(200),
            Some(429),
            Some(503),
            Some(502),
            None,
            Some(200),
            Some(429),
            Some(200)
        ]
    );
    // Each page was served once: pageId 0, then the last id of each full page.
    let ids: Vec<i64> = want.iter().map(|s| s.parse().unwrap()).collect();
    let page_ids: Vec<String> = e
        .served_pages(CW_TICKETS)
        .await
        .iter()
        .map(|r| query_param(r, "pageId").unwrap())
        .collect();
    assert_eq!(
        page_ids,
        vec!["0".to_string(), ids[999].to_string(), ids[1999].to_string()]
    );
}

#[tokio::test]
async fn autotask_enumeration_with_429_and_5xx_gives_the_exact_item_set() {
    let e = env(Psa::Autotask, 2_500).await;
    // Open tickets of some queues: everything is pushed down; the row set is the reference's.
    let spec = json!({"conditions": {"combinator": "and", "rules": [
        {"field": "$closed", "operator": "=", "value": false},
        {"field": "$created", "operator": "<", "value": {"$datetime": "2026-10-01T00:00:00Z"}}
    ]}});
    let want = expected(&e.sim, &spec, Psa::Autotask);
    assert!(want.len() > 1_000, "{} tickets", want.len());
    e.sim.inject(
        Fault::status(429)
            .retry_after("1")
            .path_prefix(AT_QUERY)
            .nth(2),
    );
    e.sim
        .inject(Fault::status(500).path_prefix(AT_QUERY).nth(3));
    e.sim
        .inject(Fault::status(503).path_prefix(AT_QUERY).every(4));
    e.backfill(spec).await;
    let b = e.run_to_end().await;
    assert_all_succeeded(&b, &want, &e.item_ids().await);
    // Pages follow one another by `id gt` the last id of the previous page; none twice.
    let lows: Vec<i64> = e
        .served_pages(AT_QUERY)
        .await
        .iter()
        .map(|r| id_gt(&serde_json::from_str(&r.body).unwrap()))
        .collect();
    let mut sorted = lows.clone();
    sorted.dedup();
    assert_eq!(sorted, lows, "a page was read twice: {lows:?}");
    assert_eq!(
        lows.len(),
        want.len().div_ceil(500) + usize::from(want.len().is_multiple_of(500))
    );
    assert_eq!(
        e.statuses(AT_QUERY).await,
        vec![
            Some(200),
            Some(429),
            Some(500),
            Some(503),
            Some(200),
            Some(200)
        ]
    );
}

/// The `id gt N` bound of an Autotask query body (0 when absent).
fn id_gt(body: &Value) -> i64 {
    fn walk(v: &Value) -> Option<i64> {
        match v {
            Value::Object(o) => {
                if o.get("field").and_then(Value::as_str) == Some("id")
                    && o.get("op").and_then(Value::as_str) == Some("gt")
                {
                    return o.get("value").and_then(Value::as_i64);
                }
                o.values().find_map(walk)
            }
            Value::Array(a) => a.iter().find_map(walk),
            _ => None,
        }
    }
    walk(body).unwrap_or(0)
}

#[tokio::test]
async fn enumeration_resumes_from_the_checkpoint_after_pause() {
    let e = env(Psa::ConnectWise, 2_500).await;
    let spec = json!({"conditions": {"combinator": "and", "rules": [
        {"field": "$id", "operator": ">", "value": 0}
    ]}});
    let want = expected(&e.sim, &spec, Psa::ConnectWise);
    let ids: Vec<i64> = want.iter().map(|s| s.parse().unwrap()).collect();
    // Page 2 takes a while, so the test can pause while it is in flight.
    e.sim
        .inject(Fault::delay(400).path_prefix(CW_TICKETS).nth(2));
    e.backfill(spec).await;
    e.orchestrator.tick().await.unwrap();
    let start = Instant::now();
    while !e
        .sim
        .requests()
        .await
        .iter()
        .any(|r| r.path == CW_TICKETS && r.fault.is_some() && r.status.is_none())
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "page 2 never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    e.store
        .signal_backfill(&e.tenant, "bf_psa", Signal::Pause, "test", e.clock.now())
        .await
        .unwrap();
    e.orchestrator.drain().await.unwrap();
    // The page in flight was kept (with its checkpoint); nothing after it was read.
    let paused = e.get().await;
    assert_eq!(paused.state, BackfillRunState::Paused);
    assert_eq!(paused.total_items, 2_000);
    assert_eq!(
        paused.snapshot_checkpoint,
        Some(json!({"last_id": ids[1999]}))
    );
    for _ in 0..3 {
        e.orchestrator.tick().await.unwrap();
        e.orchestrator.drain().await.unwrap();
    }
    assert_eq!(
        e.served_pages(CW_TICKETS).await.len(),
        2,
        "read while paused"
    );

    e.store
        .signal_backfill(&e.tenant, "bf_psa", Signal::Resume, "test", e.clock.now())
        .await
        .unwrap();
    let b = e.run_to_end().await;
    let items = e
        .store
        .list_items(
            &e.tenant,
            "bf_psa",
            &neo_store::ItemFilter::default(),
            None,
            100_000,
        )
        .await
        .unwrap()
        .items;
    assert!(items.iter().all(|i| i.status == ItemStatus::Succeeded));
    assert_all_succeeded(
        &b,
        &want,
        &items.into_iter().map(|i| i.entity_id).collect::<Vec<_>>(),
    );
    let page_ids: Vec<String> = e
        .served_pages(CW_TICKETS)
        .await
        .iter()
        .map(|r| query_param(r, "pageId").unwrap())
        .collect();
    assert_eq!(
        page_ids,
        vec!["0".to_string(), ids[999].to_string(), ids[1999].to_string()],
        "after resume, enumeration continued from the checkpoint"
    );
}

/// A storm during enumeration: every 2nd request throttled for a long stretch (429, one of them
/// with `Retry-After: 2`), a burst of 500/502/503, two dropped connections and a page slower
/// than the client's timeout. The page that runs out of its retries within one read is deferred
/// and read again; every page is served once, the item set is exactly the reference's, and
/// every counter matches the items.
#[tokio::test]
async fn connectwise_storm_of_429_5xx_drops_and_a_slow_page_loses_nothing() {
    let e = env(Psa::ConnectWise, 2_500).await;
    let spec = json!({"conditions": {"combinator": "and", "rules": [
        {"field": "$id", "operator": ">", "value": 0}
    ]}});
    let want = expected(&e.sim, &spec, Psa::ConnectWise);
    let ids: Vec<i64> = want.iter().map(|s| s.parse().unwrap()).collect();
    let on = |f: Fault| e.sim.inject(f.path_prefix(CW_TICKETS));
    // By request number on the tickets resource: every even one from 2 to 20 is a 429.
    on(Fault::status(429).retry_after("0").every(2).times(10));
    on(Fault::status(429).retry_after("2").nth(3));
    on(Fault::status(500).nth(5));
    on(Fault::status(502).nth(7));
    on(Fault::status(503).nth(9).times(2)); // 9 and 11
    on(Fault::drop_connection().nth(13).times(2)); // 13 and 15
    let slow = on(Fault::delay(6_000).nth(17)); // past the 3 s client timeout
    e.backfill(spec).await;
    let started = Instant::now();
    let b = e.run_to_end().await;
    let took = started.elapsed();
    assert_all_succeeded(&b, &want, &e.item_ids().await);
    neo_store::testing::assert_counters_exact(e.store.as_ref(), &e.tenant, "bf_psa").await;
    assert!(e.sim.faults().is_empty(), "every fault fired");
    let log: Vec<psa_sim::LoggedRequest> = e
        .sim
        .requests()
        .await
        .into_iter()
        .filter(|r| r.path == CW_TICKETS)
        .collect();
    let statuses: Vec<Option<u16>> = log
        .iter()
        .map(|r| {
            if r.fault == Some(slow) {
                Some(0)
            } else {
                r.status
            }
        })
        .collect();
    // Page 2's first read meets six errors (500, 502, 503, 503, two drops): one more than its
    // five retries, so it is deferred and read again (17: timed out, 19: served).
    assert_eq!(
        statuses,
        [
            Some(200),
            Some(429),
            Some(429),
            Some(429),
            Some(500),
            Some(429),
            Some(502),
            Some(429),
            Some(503),
            Some(429),
            Some(503),
            Some(429),
            None,
            Some(429),
            None,
            Some(429),
            Some(0),
            Some(429),
            Some(200),
            Some(429),
            Some(200)
        ]
    );
    let served: Vec<String> = log
        .iter()
        .filter(|r| r.status == Some(200) && r.fault != Some(slow))
        .map(|r| query_param(r, "pageId").unwrap())
        .collect();
    assert_eq!(
        served,
        [0, ids[999], ids[1999]].map(|i| i.to_string()),
        "each page served once"
    );
    // Retry-After: 2 was waited out, and so was the slow page's timeout.
    assert!(took >= Duration::from_secs(5), "{took:?}");
}

/// A storm that outlasts the retry budget: every read of page 2 fails with 503, so after 30
/// deferred reads in a row the backfill ends FAILED with the PSA's error; what page 1 brought
/// was executed or cancelled, with counters exact. Creating the backfill again once the PSA is
/// back skips the entities already done and executes the others: every entity exactly once.
#[tokio::test]
async fn a_storm_outlasting_the_retry_budget_fails_the_backfill_and_a_new_one_finishes_exactly() {
    let e = env(Psa::ConnectWise, 2_500).await;
    let spec = json!({"conditions": {"combinator": "and", "rules": [
        {"field": "$id", "operator": ">", "value": 0}
    ]}});
    let want = expected(&e.sim, &spec, Psa::ConnectWise);
    e.sim
        .inject(Fault::status(503).path_prefix(CW_TICKETS).nth(2).times(0));
    let wf = e.workflow().await;
    e.backfill_of(wf, "bf_psa", spec.clone()).await;
    let failed = e.run_to_end().await;
    assert_eq!(failed.state, BackfillRunState::Failed);
    let error = failed.error.clone().unwrap();
    assert!(
        error.starts_with(&format!(
            "PSA enumeration failed {} times in a row: the PSA is unavailable:",
            neo_psa::source::MAX_DEFERRALS + 1
        )) && error.ends_with("HTTP 503"),
        "{error}"
    );
    // 31 reads of page 2, each with its 5 retries.
    let statuses = e.statuses(CW_TICKETS).await;
    assert_eq!(statuses.len(), 1 + 31 * 6);
    assert!(statuses[1..].iter().all(|s| *s == Some(503)));
    let first =
        neo_store::testing::assert_counters_exact(e.store.as_ref(), &e.tenant, "bf_psa").await;
    assert_eq!(first.total_items, 1_000, "page 1 was kept");
    assert_eq!(
        (
            first.pending_count,
            first.in_flight_count,
            first.failed_count
        ),
        (0, 0, 0)
    );
    assert_eq!(first.succeeded_count + first.cancelled_count, 1_000);

    e.sim.clear_faults();
    e.backfill_of(wf, "bf_psa_again", spec).await;
    let again = e.run_until_done("bf_psa_again").await;
    assert_eq!(again.state, BackfillRunState::Completed, "{again:?}");
    let again =
        neo_store::testing::assert_counters_exact(e.store.as_ref(), &e.tenant, "bf_psa_again")
            .await;
    assert_eq!(again.total_items, 2_500);
    assert_eq!(again.skipped_count, first.succeeded_count);
    assert_eq!(again.succeeded_count, 2_500 - first.succeeded_count);
    // Every entity of the filter has exactly one succeeded execution of the workflow.
    let mut done: Vec<String> = e
        .store
        .list_executions(
            &e.tenant,
            &neo_store::ExecutionFilter {
                statuses: vec![neo_domain::backfill::ExecutionStatus::Succeeded],
                ..Default::default()
            },
            None,
            100_000,
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|x| x.entity_id)
        .collect();
    done.sort_by_key(|id| id.parse::<i64>().unwrap());
    assert_eq!(done, want);
}
