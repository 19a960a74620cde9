//! The store's behaviour, through the trait, against both backends: every case runs as
//! `sqlite::<case>` and `postgres::<case>`. PostgreSQL cases are skipped (loudly) when the
//! server of `NEO_TEST_DATABASE_URL` is unreachable, unless `CI=true`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use neo_domain::backfill::{
    AutonomyType, BackfillRunState, EntityType, ExecutionStatus, ItemStatus, Signal, SignalOutcome,
    SignalRefusal, WorkflowState,
};
use neo_store::testing::{backend_tests, fresh_store, Backend, TestStore};
use neo_store::*;
use serde_json::json;

const T0: &str = "2026-03-02T10:00:00Z";

fn at(secs: i64) -> Timestamp {
    let t0: Timestamp = T0.parse().unwrap();
    t0.checked_add(SignedDuration::from_secs(secs)).unwrap()
}

struct Env {
    t: TestStore,
    tenant: String,
}

async fn env(b: Backend) -> Option<Env> {
    let t = fresh_store(b).await?;
    let tenant = t.store.ensure_tenant("acme", at(0)).await.unwrap().id;
    Some(Env { t, tenant })
}

fn new_backfill(tenant: &str, id: &str, wf: i64, ids: Option<&[&str]>) -> NewBackfill {
    NewBackfill {
        id: id.to_owned(),
        tenant_id: tenant.to_owned(),
        state: BackfillRunState::Running,
        target_workflow_id: wf,
        entity_type: EntityType::Ticket,
        filter_spec: match ids {
            Some(ids) => json!({ "entity_ids": ids }),
            None => json!({"conditions": {"combinator": "and", "rules": []}, "limit": 10}),
        },
        daily_execution_windows: Default::default(),
        timezone: "UTC".into(),
        max_in_flight: 10,
        reprocess: false,
        total_estimated: None,
        credits_per_entity: 2,
        created_by: "key_1".into(),
        created_at: at(0),
        entity_ids: ids.map(|v| v.iter().map(|s| s.to_string()).collect()),
        name: None,
        mode: neo_domain::backfill::BackfillMode::Live,
        start_at: None,
        max_credits: None,
        trial_sample_size: None,
        max_in_flight_per_company: None,
        company_blackouts: None,
    }
}

impl Env {
    fn s(&self) -> &Arc<dyn Store> {
        &self.t.store
    }

    async fn workflow(&self, name: &str) -> i64 {
        self.s()
            .insert_workflow(
                &self.tenant,
                NewWorkflow {
                    name: name.into(),
                    description: None,
                    autonomy_type: AutonomyType::ChainedActions,
                    entity_type: EntityType::Ticket,
                    state: WorkflowState::Enabled,
                    credit_tier: 2,
                    executor: json!({"type": "simulated", "latency_ms": 0}),
                },
                at(0),
            )
            .await
            .unwrap()
            .id
    }

    async fn backfill_with(
        &self,
        id: &str,
        ids: &[&str],
        f: impl FnOnce(&mut NewBackfill),
    ) -> Backfill {
        let wf = self.workflow(&format!("wf for {id}")).await;
        let mut nb = new_backfill(&self.tenant, id, wf, Some(ids));
        f(&mut nb);
        self.s().create_backfill(nb).await.unwrap()
    }

    async fn get(&self, id: &str) -> Backfill {
        self.s().backfill(&self.tenant, id).await.unwrap().unwrap()
    }

    async fn items(&self, id: &str) -> Vec<Item> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let p = self
                .s()
                .list_items(&self.tenant, id, &ItemFilter::default(), after, 1000)
                .await
                .unwrap();
            after = p.items.last().map(|i| i.ord);
            out.extend(p.items);
            if !p.has_more {
                return out;
            }
        }
    }

    /// The counters equal the items' statuses (the store's central invariant).
    async fn check_counters(&self, id: &str) -> Backfill {
        let b = self.get(id).await;
        let items = self.items(id).await;
        let mut n: BTreeMap<&str, i64> = BTreeMap::new();
        for i in &items {
            *n.entry(i.status.as_str()).or_default() += 1;
        }
        let got = |s| n.get(s).copied().unwrap_or(0);
        assert_eq!(
            (
                b.pending_count,
                b.in_flight_count,
                b.succeeded_count,
                b.failed_count,
                b.skipped_count,
                b.cancelled_count,
                b.total_items
            ),
            (
                got("pending"),
                got("in_flight"),
                got("succeeded"),
                got("failed"),
                got("skipped"),
                got("cancelled"),
                items.len() as i64
            ),
            "counters of {id} drifted from its items (pending, in_flight, succeeded, failed, skipped, cancelled, total)"
        );
        b
    }

    async fn claim(&self, id: &str, limit: usize, now: i64) -> ClaimResult {
        self.s()
            .claim_items(id, "w1", limit, at(now), at(now + 30))
            .await
            .unwrap()
    }

    async fn settle(&self, c: &Claimed, s: Settlement, now: i64) {
        self.s().settle(&[outcome(c, s)], 5, at(now)).await.unwrap();
    }
}

fn outcome(c: &Claimed, s: Settlement) -> Outcome {
    Outcome {
        backfill_id: c.backfill_id.clone(),
        ord: c.ord,
        execution_id: c.execution_id.clone(),
        settlement: s,
        attempt: Default::default(),
    }
}

fn ords(r: &ClaimResult) -> Vec<i64> {
    r.claimed.iter().map(|c| c.ord).collect()
}

// ---- backfills: create, list, pages ------------------------------------------------------

async fn backfills_create_list_and_keyset_pages(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let mut wfs = Vec::new();
    for i in 1..=5 {
        let wf = e.workflow(&format!("wf{i}")).await;
        wfs.push(wf);
        let mut nb = new_backfill(&e.tenant, &format!("bf_0{i}"), wf, Some(&["1", "2"]));
        if i == 2 {
            nb.state = BackfillRunState::Draft;
        }
        let created = s.create_backfill(nb).await.unwrap();
        assert_eq!(created.total_items, 2);
        assert_eq!(created.pending_count, 2);
        assert!(created.snapshot_complete);
        assert_eq!(
            created.target_workflow_name.as_deref(),
            Some(&*format!("wf{i}"))
        );
        assert_eq!(
            created.target_workflow_autonomy_type,
            Some(AutonomyType::ChainedActions)
        );
        assert_eq!(
            created.started_at.is_some(),
            i != 2,
            "DRAFT has not started"
        );
        assert_eq!(created.filter_spec, json!({"entity_ids": ["1", "2"]}));
    }
    let all = BackfillFilter::default();
    let ids = |p: &Page<Backfill>| p.items.iter().map(|b| b.id.clone()).collect::<Vec<_>>();
    let p1 = s.list_backfills(&e.tenant, &all, None, 2).await.unwrap();
    assert_eq!(
        (ids(&p1), p1.has_more),
        (vec!["bf_05".into(), "bf_04".into()], true)
    );
    let p2 = s
        .list_backfills(&e.tenant, &all, Some("bf_04"), 2)
        .await
        .unwrap();
    assert_eq!(
        (ids(&p2), p2.has_more),
        (vec!["bf_03".into(), "bf_02".into()], true)
    );
    let p3 = s
        .list_backfills(&e.tenant, &all, Some("bf_02"), 2)
        .await
        .unwrap();
    assert_eq!((ids(&p3), p3.has_more), (vec!["bf_01".to_string()], false));

    let drafts = BackfillFilter {
        states: vec![BackfillRunState::Draft, BackfillRunState::Paused],
        ..Default::default()
    };
    let p = s
        .list_backfills(&e.tenant, &drafts, None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&p), vec!["bf_02".to_string()]);
    let by_wf = BackfillFilter {
        target_workflow_id: Some(wfs[3]),
        ..Default::default()
    };
    let p = s.list_backfills(&e.tenant, &by_wf, None, 10).await.unwrap();
    assert_eq!(ids(&p), vec!["bf_04".to_string()]);

    // Another tenant sees none of it.
    let other = s.ensure_tenant("other", at(0)).await.unwrap().id;
    assert!(s.backfill(&other, "bf_01").await.unwrap().is_none());
    let p = s.list_backfills(&other, &all, None, 10).await.unwrap();
    assert!(p.items.is_empty() && !p.has_more);

    // Items: keyset pages in snapshot order, status filter.
    let big = e
        .backfill_with("bf_10", &["a", "b", "c", "d", "e"], |_| {})
        .await;
    let p = s
        .list_items(&e.tenant, &big.id, &ItemFilter::default(), None, 2)
        .await
        .unwrap();
    let o = |p: &Page<Item>| p.items.iter().map(|i| i.ord).collect::<Vec<_>>();
    assert_eq!((o(&p), p.has_more), (vec![0, 1], true));
    assert_eq!(p.items[1].entity_id, "b");
    let p = s
        .list_items(&e.tenant, &big.id, &ItemFilter::default(), Some(1), 2)
        .await
        .unwrap();
    assert_eq!((o(&p), p.has_more), (vec![2, 3], true));
    let p = s
        .list_items(&e.tenant, &big.id, &ItemFilter::default(), Some(3), 2)
        .await
        .unwrap();
    assert_eq!((o(&p), p.has_more), (vec![4], false));
    let p = s
        .list_items(
            &e.tenant,
            &big.id,
            &ItemFilter {
                statuses: vec![ItemStatus::Failed],
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert!(p.items.is_empty());
    let p = s
        .list_items(&other, &big.id, &ItemFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(p.items.is_empty());
    // One entity, alone or with a status; an unknown one finds nothing.
    let entity = |id: &str, statuses: Vec<ItemStatus>| ItemFilter {
        statuses,
        entity_id: Some(id.to_owned()),
    };
    let p = s
        .list_items(&e.tenant, &big.id, &entity("d", vec![]), None, 10)
        .await
        .unwrap();
    assert_eq!((o(&p), p.has_more), (vec![3], false));
    let p = s
        .list_items(
            &e.tenant,
            &big.id,
            &entity("d", vec![ItemStatus::Pending]),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(o(&p), vec![3]);
    let p = s
        .list_items(
            &e.tenant,
            &big.id,
            &entity("d", vec![ItemStatus::Failed]),
            None,
            10,
        )
        .await
        .unwrap();
    assert!(p.items.is_empty());
    let p = s
        .list_items(&e.tenant, &big.id, &entity("zz", vec![]), None, 10)
        .await
        .unwrap();
    assert!(p.items.is_empty());
}

async fn one_active_backfill_per_workflow(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let wf = e.workflow("wf").await;
    s.create_backfill(new_backfill(&e.tenant, "bf_1", wf, Some(&["1"])))
        .await
        .unwrap();
    let mut draft = new_backfill(&e.tenant, "bf_2", wf, Some(&["1"]));
    draft.state = BackfillRunState::Draft;
    assert!(matches!(
        s.create_backfill(draft).await,
        Err(StoreError::AlreadyActive)
    ));
    assert!(s.backfill(&e.tenant, "bf_2").await.unwrap().is_none());
    s.signal_backfill(&e.tenant, "bf_1", Signal::Cancel, "u", at(1))
        .await
        .unwrap();
    s.create_backfill(new_backfill(&e.tenant, "bf_3", wf, Some(&["1"])))
        .await
        .unwrap();

    // Racing creates on one workflow: exactly one wins.
    let wf2 = e.workflow("wf2").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        let nb = new_backfill(&e.tenant, &format!("bf_race_{i}"), wf2, Some(&["1", "2"]));
        tasks.push(tokio::spawn(async move { s.create_backfill(nb).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::AlreadyActive) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 1);
}

async fn signals_and_their_refusals(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let id = e
        .backfill_with("bf_1", &["1", "2", "3"], |nb| {
            nb.state = BackfillRunState::Draft
        })
        .await
        .id;
    let sig = |signal, t| s.signal_backfill(&e.tenant, &id, signal, "user@x", at(t));
    assert!(matches!(
        sig(Signal::Pause, 1).await,
        Err(SignalError::Refused(SignalRefusal::NotApplicable(
            BackfillRunState::Draft
        )))
    ));
    let (bf, o) = sig(Signal::Start, 2).await.unwrap();
    assert_eq!(o, SignalOutcome::Transition(BackfillRunState::Running));
    assert_eq!(bf.state, BackfillRunState::Running);
    assert_eq!(bf.started_at, Some(at(2)));
    assert_eq!(bf.updated_at, at(2));
    let (_, o) = sig(Signal::Start, 3).await.unwrap();
    assert_eq!(o, SignalOutcome::NoOp);
    let (bf, _) = sig(Signal::Pause, 4).await.unwrap();
    assert_eq!(bf.state, BackfillRunState::Paused);
    let (_, o) = sig(Signal::Pause, 5).await.unwrap();
    assert_eq!(o, SignalOutcome::NoOp);
    let (bf, _) = sig(Signal::Resume, 6).await.unwrap();
    assert_eq!(bf.state, BackfillRunState::Running);
    assert_eq!(bf.started_at, Some(at(2)), "resume keeps the first start");
    // One item in flight when the cancel arrives: it stays in flight, the others cancel.
    let c = e.claim(&id, 1, 7).await;
    assert_eq!(ords(&c), vec![0]);
    let (bf, o) = sig(Signal::Cancel, 8).await.unwrap();
    assert_eq!(o, SignalOutcome::Transition(BackfillRunState::Cancelled));
    assert_eq!(bf.completed_at, Some(at(8)));
    assert_eq!(
        (bf.pending_count, bf.cancelled_count, bf.in_flight_count),
        (0, 2, 1)
    );
    e.check_counters(&id).await;
    let (_, o) = sig(Signal::Cancel, 9).await.unwrap();
    assert_eq!(o, SignalOutcome::NoOp);
    assert!(matches!(
        sig(Signal::Resume, 10).await,
        Err(SignalError::Refused(SignalRefusal::Terminal(
            BackfillRunState::Cancelled
        )))
    ));
    assert!(matches!(
        s.signal_backfill(&e.tenant, "nope", Signal::Pause, "u", at(1))
            .await,
        Err(SignalError::NotFound)
    ));
    let other = s.ensure_tenant("other", at(0)).await.unwrap().id;
    assert!(matches!(
        s.signal_backfill(&other, &id, Signal::Pause, "u", at(1))
            .await,
        Err(SignalError::NotFound)
    ));
    // The in-flight item's late outcome still lands; a cancelled backfill does not complete.
    e.settle(&c.claimed[0], Settlement::Succeeded, 11).await;
    let bf = e.check_counters(&id).await;
    assert_eq!(
        (bf.state, bf.succeeded_count),
        (BackfillRunState::Cancelled, 1)
    );
    assert!(s.dispatchable_backfills().await.unwrap().is_empty());

    // DELETE: only a DRAFT.
    let d = e
        .backfill_with("bf_2", &["1"], |nb| nb.state = BackfillRunState::Draft)
        .await;
    assert!(matches!(
        s.delete_backfill(&e.tenant, &id).await,
        Err(DeleteBackfillError::NotDraft(BackfillRunState::Cancelled))
    ));
    s.delete_backfill(&e.tenant, &d.id).await.unwrap();
    assert!(matches!(
        s.delete_backfill(&e.tenant, &d.id).await,
        Err(DeleteBackfillError::NotFound)
    ));
}

// ---- dispatch ------------------------------------------------------------------------------

async fn claim_settle_counters_and_completion(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let id = e
        .backfill_with("bf_1", &["e0", "e1", "e2", "e3", "e4"], |nb| {
            nb.max_in_flight = 2
        })
        .await
        .id;
    let c1 = e.claim(&id, 10, 0).await;
    assert_eq!(ords(&c1), vec![0, 1]);
    assert!(c1.claimed.iter().all(|c| c.attempt == 1));
    assert_eq!(c1.claimed[1].entity_id, "e1");
    let ex = s
        .execution(&e.tenant, &c1.claimed[0].execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            ex.status,
            ex.attempts,
            ex.backfill_id.as_deref(),
            ex.started_at
        ),
        (ExecutionStatus::Running, 1, Some("bf_1"), Some(at(0)))
    );
    assert_eq!(ex.agent_name.as_deref(), Some("wf for bf_1"));
    assert!(
        e.claim(&id, 10, 0).await.claimed.is_empty(),
        "the cap holds"
    );
    let bf = e.check_counters(&id).await;
    assert_eq!((bf.in_flight_count, bf.pending_count), (2, 3));

    e.settle(&c1.claimed[0], Settlement::Succeeded, 1).await;
    e.settle(
        &c1.claimed[1],
        Settlement::Retry {
            error: "503".into(),
            at: at(60),
        },
        1,
    )
    .await;
    let items = e.items(&id).await;
    assert_eq!(items[1].status, ItemStatus::Pending);
    assert_eq!(items[1].next_attempt_at, Some(at(60)));
    assert_eq!(items[1].error.as_deref(), Some("503"));
    let ex1 = s
        .execution(&e.tenant, &c1.claimed[1].execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ex1.status, ExecutionStatus::Queued);
    e.check_counters(&id).await;

    let c2 = e.claim(&id, 10, 2).await;
    assert_eq!(
        ords(&c2),
        vec![2, 3],
        "the retried item waits until it is due"
    );
    e.settle(&c2.claimed[0], Settlement::Failed("boom".into()), 3)
        .await;
    e.settle(
        &c2.claimed[1],
        Settlement::AwaitCallback { deadline: at(600) },
        3,
    )
    .await;
    let c3 = e.claim(&id, 10, 4).await;
    assert_eq!(
        ords(&c3),
        vec![4],
        "an awaited callback counts against the cap"
    );
    e.settle(&c3.claimed[0], Settlement::Succeeded, 5).await;
    let c4 = e.claim(&id, 10, 61).await;
    assert_eq!(ords(&c4), vec![1]);
    assert_eq!(c4.claimed[0].attempt, 2);
    assert_eq!(
        c4.claimed[0].execution_id, c1.claimed[1].execution_id,
        "a re-dispatch keeps its execution id (the executor's idempotency key)"
    );
    let ex1 = s
        .execution(&e.tenant, &c4.claimed[0].execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ex1.status, ex1.attempts, ex1.error),
        (ExecutionStatus::Running, 2, None)
    );

    // The awaited execution reports through finish_execution.
    let cb = &c2.claimed[1].execution_id;
    assert_eq!(
        s.finish_execution(&e.tenant, cb, ExecutionStatus::Succeeded, None, at(62))
            .await
            .unwrap(),
        Some(true)
    );
    assert_eq!(
        s.finish_execution(&e.tenant, cb, ExecutionStatus::Failed, None, at(63))
            .await
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        s.finish_execution(&e.tenant, "ex_nope", ExecutionStatus::Failed, None, at(63))
            .await
            .unwrap(),
        None
    );
    assert_eq!(e.get(&id).await.state, BackfillRunState::Running);
    e.settle(&c4.claimed[0], Settlement::Succeeded, 64).await;
    let bf = e.check_counters(&id).await;
    assert_eq!(bf.state, BackfillRunState::Completed);
    assert_eq!(bf.completed_at, Some(at(64)));
    assert_eq!((bf.succeeded_count, bf.failed_count), (4, 1));
    assert_eq!(bf.processed_count(), 5);
    // A late duplicate outcome changes nothing.
    e.settle(&c1.claimed[0], Settlement::Failed("late".into()), 65)
        .await;
    let again = e.check_counters(&id).await;
    assert_eq!(
        (again.succeeded_count, again.updated_at),
        (4, bf.updated_at)
    );
    // Credits: 4 successes × tier 2, charged once each.
    assert_eq!(s.credits_used(&e.tenant, at(0), at(100)).await.unwrap(), 8);
    assert_eq!(s.credits_used(&e.tenant, at(0), at(62)).await.unwrap(), 4);
    let ex = s
        .execution(&e.tenant, &c2.claimed[0].execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ex.status, ex.error.as_deref(), ex.finished_at),
        (ExecutionStatus::Failed, Some("boom"), Some(at(3)))
    );

    // A second backfill over the same entities skips the succeeded ones, unless reprocess.
    let wf = e.get(&id).await.target_workflow_id;
    s.create_backfill(new_backfill(
        &e.tenant,
        "bf_2",
        wf,
        Some(&["e0", "e1", "e2", "e3", "e4"]),
    ))
    .await
    .unwrap();
    let c = e.claim("bf_2", 10, 70).await;
    assert_eq!((ords(&c), c.skipped), (vec![2], 4));
    assert_eq!(c.claimed[0].entity_id, "e2");
    let bf2 = e.check_counters("bf_2").await;
    assert_eq!((bf2.skipped_count, bf2.in_flight_count), (4, 1));
    e.settle(&c.claimed[0], Settlement::Succeeded, 71).await;
    assert_eq!(
        e.check_counters("bf_2").await.state,
        BackfillRunState::Completed
    );
    let mut nb = new_backfill(&e.tenant, "bf_3", wf, Some(&["e0", "e1"]));
    nb.reprocess = true;
    s.create_backfill(nb).await.unwrap();
    let c = e.claim("bf_3", 10, 80).await;
    assert_eq!((ords(&c), c.skipped), (vec![0, 1], 0));

    // Claims on a backfill that is not RUNNING, or unknown, claim nothing.
    s.signal_backfill(&e.tenant, "bf_3", Signal::Pause, "u", at(81))
        .await
        .unwrap();
    assert!(e.claim("bf_3", 10, 82).await.claimed.is_empty());
    assert!(e.claim("nope", 10, 82).await.claimed.is_empty());
    let d = s.dispatchable_backfills().await.unwrap();
    assert_eq!(
        d.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        vec!["bf_3"],
        "a paused backfill with items in flight is still dispatchable"
    );
    let inflight = s.in_flight_items("bf_3").await.unwrap();
    assert_eq!(inflight.len(), 2);
    assert_eq!(inflight[0].2.as_deref(), Some("w1"));
}

async fn dispatch_list_leaves_out_finished_snapshot_filters(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let (w1, w2) = (e.workflow("w1").await, e.workflow("w2").await);
    let ids = new_backfill(&e.tenant, "bf_ids", w1, Some(&["a", "b"]));
    let query = new_backfill(&e.tenant, "bf_query", w2, None);
    let query_spec = query.filter_spec.clone();
    s.create_backfill(ids).await.unwrap();
    s.create_backfill(query).await.unwrap();
    let d = s.dispatchable_backfills().await.unwrap();
    let spec = |id: &str| {
        d.iter()
            .find(|b| b.id == id)
            .expect("dispatchable")
            .filter_spec
            .clone()
    };
    // The id list (snapshot complete) is not fetched for the dispatcher; the query, still
    // to enumerate, is.
    assert_eq!(spec("bf_ids"), serde_json::Value::Null);
    assert_eq!(spec("bf_query"), query_spec);
    let full = s.backfill(&e.tenant, "bf_ids").await.unwrap().unwrap();
    assert_eq!(full.filter_spec, json!({"entity_ids": ["a", "b"]}));
}

async fn settle_batch_applies_outcomes_in_order(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let id = e.backfill_with("bf_1", &["a", "b", "c"], |_| {}).await.id;
    let c = e.claim(&id, 10, 0).await;
    let (a, bb, cc) = (&c.claimed[0], &c.claimed[1], &c.claimed[2]);
    s.settle(
        &[
            // a: retried, then succeeds in the same batch (pending → succeeded).
            outcome(
                a,
                Settlement::Retry {
                    error: "x".into(),
                    at: at(1),
                },
            ),
            outcome(a, Settlement::Succeeded),
            // b: succeeds; a duplicate failure is ignored.
            outcome(bb, Settlement::Succeeded),
            outcome(bb, Settlement::Failed("dup".into())),
            // c: an outcome with another execution id is ignored.
            Outcome {
                execution_id: "ex_other".into(),
                ..outcome(cc, Settlement::Succeeded)
            },
        ],
        5,
        at(2),
    )
    .await
    .unwrap();
    let bf = e.check_counters(&id).await;
    assert_eq!(
        (bf.succeeded_count, bf.failed_count, bf.in_flight_count),
        (2, 0, 1)
    );
    let items = e.items(&id).await;
    assert_eq!(items[0].error, None);
    assert_eq!(items[0].next_attempt_at, None);
    assert_eq!(s.credits_used(&e.tenant, at(0), at(9)).await.unwrap(), 4);
    s.settle(&[], 5, at(3)).await.unwrap();
}

async fn circuit_breaker_pauses_and_resume_clears(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let id = e
        .backfill_with("bf_1", &["a", "b", "c", "d", "e", "f"], |_| {})
        .await
        .id;
    let c = e.claim(&id, 10, 0).await;
    let f = |i: usize| outcome(&c.claimed[i], Settlement::Failed(format!("f{i}")));
    // Two failures, a success resets the streak, then three failures trip a threshold of 3,
    // and a success after the trip does not undo it.
    s.settle(
        &[
            f(0),
            f(1),
            outcome(&c.claimed[2], Settlement::Succeeded),
            f(3),
            f(4),
        ],
        3,
        at(1),
    )
    .await
    .unwrap();
    assert_eq!(e.get(&id).await.state, BackfillRunState::Running);
    s.settle(&[f(5)], 3, at(2)).await.unwrap();
    let bf = e.check_counters(&id).await;
    assert_eq!(bf.state, BackfillRunState::Paused);
    assert_eq!(
        bf.error.as_deref(),
        Some("circuit breaker: 3 consecutive failed executions; the backfill paused itself. Fix the workflow, then resume.")
    );
    let (bf, _) = s
        .signal_backfill(&e.tenant, &id, Signal::Resume, "u", at(3))
        .await
        .unwrap();
    assert_eq!((bf.state, bf.error), (BackfillRunState::Running, None));
    assert_eq!(bf.state, BackfillRunState::Running);

    // In one batch: the trip happens at the third failure even if a success follows.
    let id2 = e
        .backfill_with("bf_2", &["a", "b", "c", "d"], |_| {})
        .await
        .id;
    let c = e.claim(&id2, 10, 0).await;
    let f = |i: usize| outcome(&c.claimed[i], Settlement::Failed("x".into()));
    s.settle(
        &[
            f(0),
            f(1),
            f(2),
            outcome(&c.claimed[3], Settlement::Succeeded),
        ],
        3,
        at(1),
    )
    .await
    .unwrap();
    let bf = e.check_counters(&id2).await;
    assert_eq!(bf.state, BackfillRunState::Paused);
    assert!(bf
        .error
        .unwrap()
        .starts_with("circuit breaker: 3 consecutive"));
}

/// A settlement that locks its backfill last (PostgreSQL) and finds the backfill changed when
/// it gets there settles again from the changed row: here another transaction moved the
/// failure streak to 1 while the settlement of a failure waited, so the breaker (threshold
/// 2) trips, and the streak it leaves is 2, not the 1 computed from what it first read.
async fn a_settlement_replans_when_its_backfill_changed_meanwhile(b: Backend) {
    let Some(e) = env(b).await else { return };
    if b != Backend::Postgres {
        return; // SQLite writers run one at a time: nothing can change meanwhile.
    }
    let id = e.backfill_with("bf_1", &["a", "b"], |_| {}).await.id;
    let c = e.claim(&id, 10, 0).await;
    let pool = sqlx::PgPool::connect(&e.t.url).await.unwrap();
    let mut other = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM backfills WHERE id = $1 FOR UPDATE")
        .bind(&id)
        .execute(&mut *other)
        .await
        .unwrap();
    let store = e.s().clone();
    let failure = outcome(&c.claimed[0], Settlement::Failed("boom".into()));
    let settling = tokio::spawn(async move { store.settle(&[failure], 2, at(1)).await });
    // Wait until the settlement is blocked on the backfill row (it has written its item and
    // execution by then), then change the row under it.
    let start = std::time::Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE 'UPDATE backfills b SET%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            !settling.is_finished(),
            "the settlement did not wait for the backfill row"
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the settlement never blocked"
        );
        tokio::task::yield_now().await;
    }
    sqlx::query("UPDATE backfills SET consecutive_failures = 1 WHERE id = $1")
        .bind(&id)
        .execute(&mut *other)
        .await
        .unwrap();
    other.commit().await.unwrap();
    settling.await.unwrap().unwrap();
    let bf = e.check_counters(&id).await;
    assert_eq!(bf.state, BackfillRunState::Paused);
    assert!(bf
        .error
        .unwrap()
        .starts_with("circuit breaker: 2 consecutive"));
    let streak: i64 =
        sqlx::query_scalar("SELECT consecutive_failures FROM backfills WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(streak, 2);
    assert_eq!((bf.failed_count, bf.in_flight_count), (1, 1));
}

/// Many claimers at once (each with its own connection pool, as replicas would have) never
/// have more than `max_in_flight` items out, and never claim an item twice.
async fn one_claim_serves_several_backfills_each_under_its_own_cap(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let a = e
        .backfill_with("bf_a", &["1", "2", "3", "4", "5"], |nb| {
            nb.max_in_flight = 2
        })
        .await
        .id;
    let bb = e
        .backfill_with("bf_b", &["1", "2", "3"], |nb| nb.max_in_flight = 10)
        .await
        .id;
    let c = e.backfill_with("bf_c", &["1", "2"], |_| {}).await.id;
    s.signal_backfill(&e.tenant, &c, Signal::Pause, "user@x", at(1))
        .await
        .unwrap();
    let missing = "bf_missing";

    // The results follow the order asked for, whatever order the backfills are locked in.
    let got = s
        .claim_many(
            &[
                (c.as_str(), 5),
                (bb.as_str(), 2),
                (missing, 3),
                (a.as_str(), 10),
            ],
            &[],
            "w1",
            at(2),
            at(30),
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(
        ords(&got[0]),
        Vec::<i64>::new(),
        "a paused backfill gives nothing"
    );
    assert_eq!(ords(&got[1]), vec![0, 1], "bf_b: its limit of 2");
    assert!(
        got[2].claimed.is_empty(),
        "an unknown backfill gives nothing"
    );
    assert_eq!(ords(&got[3]), vec![0, 1], "bf_a: its max_in_flight of 2");
    for (r, id) in [(&got[1], &bb), (&got[3], &a)] {
        assert!(r.claimed.iter().all(|x| &x.backfill_id == id));
        let execs: HashSet<&str> = r.claimed.iter().map(|x| x.execution_id.as_str()).collect();
        assert_eq!(execs.len(), 2, "one fresh execution per item");
    }
    let all_execs: HashSet<&str> = got[1]
        .claimed
        .iter()
        .chain(&got[3].claimed)
        .map(|x| x.execution_id.as_str())
        .collect();
    assert_eq!(
        all_execs.len(),
        4,
        "no execution id shared between backfills"
    );
    for id in [&a, &bb, &c] {
        e.check_counters(id).await;
    }
    assert_eq!(e.get(&a).await.in_flight_count, 2);
    assert_eq!(e.get(&bb).await.in_flight_count, 2);
    assert_eq!(e.get(&c).await.in_flight_count, 0);

    // Full: bf_a has no room left, bf_b has one item left.
    let again = s
        .claim_many(
            &[(a.as_str(), 10), (bb.as_str(), 10)],
            &[],
            "w1",
            at(3),
            at(30),
        )
        .await
        .unwrap();
    assert_eq!((ords(&again[0]), ords(&again[1])), (vec![], vec![2]));
    e.check_counters(&bb).await;
}

async fn claim_cap_holds_with_concurrent_claimers(b: Backend) {
    let Some(e) = env(b).await else { return };
    const MAX: i64 = 3;
    const N: usize = 40;
    let names: Vec<String> = (0..N).map(|i| format!("e{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let id = e
        .backfill_with("bf_1", &refs, |nb| nb.max_in_flight = MAX)
        .await
        .id;
    let mut replicas = Vec::new();
    for _ in 0..8 {
        replicas.push(e.t.reopen().await);
    }

    // Round 1: eight simultaneous claims of up to 10.
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for (i, s) in replicas.iter().enumerate() {
        let (s, id, barrier) = (s.clone(), id.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.claim_items(&id, &format!("w{i}"), 10, at(0), at(30))
                .await
                .unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap().claimed);
    }
    assert_eq!(claimed.len() as i64, MAX, "exactly the cap is claimed");
    let distinct: HashSet<i64> = claimed.iter().map(|c| c.ord).collect();
    assert_eq!(distinct.len(), claimed.len());
    e.check_counters(&id).await;
    let outcomes: Vec<Outcome> = claimed
        .iter()
        .map(|c| outcome(c, Settlement::Succeeded))
        .collect();
    e.s().settle(&outcomes, 5, at(1)).await.unwrap();

    // Round 2: claim/settle loops until the backfill completes.
    let out = Arc::new(AtomicI64::new(0));
    let seen = Arc::new(Mutex::new(distinct));
    let mut tasks = Vec::new();
    for (i, s) in replicas.iter().enumerate() {
        let (s, id, out, seen) = (s.clone(), id.clone(), out.clone(), seen.clone());
        let tenant = e.tenant.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let c = s
                    .claim_items(&id, &format!("w{i}"), 2, at(2), at(30))
                    .await
                    .unwrap();
                if c.claimed.is_empty() {
                    if s.backfill(&tenant, &id).await.unwrap().unwrap().state
                        == BackfillRunState::Completed
                    {
                        return;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                // Counted after the claim committed and uncounted before the settlement
                // commits: never more than what the database has in flight.
                let now_out = out.fetch_add(c.claimed.len() as i64, Ordering::SeqCst)
                    + c.claimed.len() as i64;
                assert!(now_out <= MAX, "{now_out} items in flight, cap {MAX}");
                for x in &c.claimed {
                    assert!(
                        seen.lock().unwrap().insert(x.ord),
                        "ord {} claimed twice",
                        x.ord
                    );
                }
                out.fetch_sub(c.claimed.len() as i64, Ordering::SeqCst);
                let o: Vec<Outcome> = c
                    .claimed
                    .iter()
                    .map(|x| outcome(x, Settlement::Succeeded))
                    .collect();
                s.settle(&o, 5, at(3)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let bf = e.check_counters(&id).await;
    assert_eq!(bf.state, BackfillRunState::Completed);
    assert_eq!(bf.succeeded_count, N as i64);
    assert_eq!(seen.lock().unwrap().len(), N);
    let execs = e
        .s()
        .list_executions(
            &e.tenant,
            &ExecutionFilter {
                backfill_id: Some(id.clone()),
                ..Default::default()
            },
            None,
            200,
        )
        .await
        .unwrap();
    assert_eq!(execs.items.len(), N, "one execution per item");
    assert_eq!(
        e.s().credits_used(&e.tenant, at(0), at(9)).await.unwrap(),
        2 * N as i64
    );
}

async fn leases_heartbeat_reap_and_release(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let id = e
        .backfill_with("bf_1", &["a", "b", "c", "d"], |_| {})
        .await
        .id;
    let c = s.claim_items(&id, "w1", 10, at(0), at(30)).await.unwrap();
    assert_eq!(c.claimed.len(), 4);
    assert_eq!(s.heartbeat("w1", at(90)).await.unwrap(), 4);
    assert_eq!(s.heartbeat("w-other", at(90)).await.unwrap(), 0);
    assert_eq!(
        s.reap_expired_leases(at(60)).await.unwrap(),
        ReapReport::default(),
        "the heartbeat extended the leases"
    );
    s.settle(
        &[outcome(
            &c.claimed[3],
            Settlement::AwaitCallback { deadline: at(100) },
        )],
        5,
        at(61),
    )
    .await
    .unwrap();
    let r = s.reap_expired_leases(at(95)).await.unwrap();
    assert_eq!(
        r,
        ReapReport {
            requeued: 3,
            timed_out: 0
        }
    );
    let bf = e.check_counters(&id).await;
    assert_eq!((bf.pending_count, bf.in_flight_count), (3, 1));
    let ex = s
        .execution(&e.tenant, &c.claimed[0].execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ex.status, ExecutionStatus::Queued);
    let r = s.reap_expired_leases(at(101)).await.unwrap();
    assert_eq!(
        r,
        ReapReport {
            requeued: 0,
            timed_out: 1
        }
    );
    let items = e.items(&id).await;
    assert_eq!(items[3].status, ItemStatus::Failed);
    assert_eq!(
        items[3].error.as_deref(),
        Some("the executor did not report completion before the deadline")
    );
    e.check_counters(&id).await;

    // Re-claimed with the same execution ids, then released on shutdown.
    let c2 = s
        .claim_items(&id, "w2", 10, at(102), at(130))
        .await
        .unwrap();
    assert_eq!(ords(&c2), vec![0, 1, 2]);
    assert!(c2.claimed.iter().all(|x| x.attempt == 2));
    assert_eq!(c2.claimed[0].execution_id, c.claimed[0].execution_id);
    assert_eq!(s.release_leases("w2", at(103)).await.unwrap(), 3);
    assert_eq!(s.release_leases("w2", at(103)).await.unwrap(), 0);
    let bf = e.check_counters(&id).await;
    assert_eq!((bf.pending_count, bf.in_flight_count), (3, 0));

    // Leases expiring on a cancelled backfill: the items end cancelled, counters follow.
    let c3 = s
        .claim_items(&id, "w3", 10, at(104), at(130))
        .await
        .unwrap();
    assert_eq!(c3.claimed.len(), 3);
    s.signal_backfill(&e.tenant, &id, Signal::Cancel, "u", at(105))
        .await
        .unwrap();
    let r = s.reap_expired_leases(at(200)).await.unwrap();
    assert_eq!(
        r,
        ReapReport {
            requeued: 3,
            timed_out: 0
        }
    );
    let bf = e.check_counters(&id).await;
    assert_eq!(
        (
            bf.state,
            bf.in_flight_count,
            bf.pending_count,
            bf.cancelled_count
        ),
        (BackfillRunState::Cancelled, 0, 0, 3)
    );
    let ex = s
        .execution(&e.tenant, &c3.claimed[0].execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ex.status, ex.error.as_deref()),
        (
            ExecutionStatus::Cancelled,
            Some("the backfill is CANCELLED")
        )
    );
    assert!(s.dispatchable_backfills().await.unwrap().is_empty());
}

async fn append_items_with_checkpoint(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let wf = e.workflow("wf").await;
    let bf = s
        .create_backfill(new_backfill(&e.tenant, "bf_1", wf, None))
        .await
        .unwrap();
    assert_eq!(
        (bf.total_items, bf.snapshot_complete, bf.snapshot_checkpoint),
        (0, false, None)
    );
    // An entry with a number carries a summary too (103's with a NUL the store removes).
    let pair = |id: &str, n: Option<&str>| SnapshotEntry {
        id: id.to_owned(),
        number: n.map(str::to_owned),
        summary: n.map(|_| format!("summary\u{0} of {id}")),
        company: None,
    };
    assert!(s
        .append_items(
            "bf_1",
            &[pair("101", Some("#101")), pair("102", None)],
            None,
            Some(&json!({"last_id": 102})),
            false,
            at(1),
        )
        .await
        .unwrap());
    // The same page read by a second process from the old checkpoint is not appended again.
    assert!(!s
        .append_items(
            "bf_1",
            &[pair("101", Some("#101")), pair("102", None)],
            None,
            Some(&json!({"last_id": 102})),
            false,
            at(1),
        )
        .await
        .unwrap());
    let bf = e.check_counters("bf_1").await;
    assert_eq!(
        (
            bf.total_items,
            bf.pending_count,
            bf.snapshot_complete,
            bf.total_estimated
        ),
        (2, 2, false, None)
    );
    assert_eq!(bf.snapshot_checkpoint, Some(json!({"last_id": 102})));
    // Settling everything before the snapshot is complete does not complete the backfill.
    let c = e.claim("bf_1", 10, 2).await;
    let o: Vec<Outcome> = c
        .claimed
        .iter()
        .map(|x| outcome(x, Settlement::Succeeded))
        .collect();
    s.settle(&o, 5, at(3)).await.unwrap();
    assert!(!s.complete_if_settled("bf_1", at(3)).await.unwrap());
    assert_eq!(e.get("bf_1").await.state, BackfillRunState::Running);
    // No checkpoint keeps the previous one.
    assert!(s
        .append_items(
            "bf_1",
            &[],
            Some(&json!({"last_id": 102})),
            None,
            false,
            at(4)
        )
        .await
        .unwrap());
    assert_eq!(
        e.get("bf_1").await.snapshot_checkpoint,
        Some(json!({"last_id": 102}))
    );
    assert!(s
        .append_items(
            "bf_1",
            &[pair("103", Some("#103"))],
            Some(&json!({"last_id": 102})),
            Some(&json!({"last_id": 103})),
            true,
            at(5),
        )
        .await
        .unwrap());
    // A complete snapshot takes nothing more.
    assert!(!s
        .append_items(
            "bf_1",
            &[pair("104", None)],
            Some(&json!({"last_id": 103})),
            None,
            true,
            at(5),
        )
        .await
        .unwrap());
    let bf = e.check_counters("bf_1").await;
    assert_eq!(
        (bf.total_items, bf.snapshot_complete, bf.total_estimated),
        (3, true, Some(3))
    );
    assert_eq!(bf.snapshot_checkpoint, Some(json!({"last_id": 103})));
    let items = e.items("bf_1").await;
    assert_eq!(
        items
            .iter()
            .map(|i| (
                i.ord,
                i.entity_id.as_str(),
                i.entity_number.as_deref(),
                i.summary.as_deref()
            ))
            .collect::<Vec<_>>(),
        vec![
            (0, "101", Some("#101"), Some("summary of 101")),
            (1, "102", None, None),
            (2, "103", Some("#103"), Some("summary of 103"))
        ]
    );
    let c = e.claim("bf_1", 10, 6).await;
    assert_eq!(c.claimed[0].entity_number.as_deref(), Some("#103"));
    e.settle(&c.claimed[0], Settlement::Failed("no".into()), 7)
        .await;
    assert_eq!(e.get("bf_1").await.state, BackfillRunState::Completed);
    // A rerun's items keep what the snapshot knew of them.
    s.rerun_failed(&e.tenant, "bf_1", "bf_1r", "k", at(8))
        .await
        .unwrap();
    let child = e.items("bf_1r").await;
    assert_eq!(
        (
            child[0].entity_number.as_deref(),
            child[0].summary.as_deref()
        ),
        (Some("#103"), Some("summary of 103"))
    );
    assert!(s
        .append_items("nope", &[], None, None, true, at(8))
        .await
        .is_err());
}

async fn rerun_failed_rules(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let src = e
        .backfill_with("bf_1", &["a", "b", "c", "d"], |nb| {
            nb.max_in_flight = 7;
            nb.timezone = "Europe/Paris".into();
        })
        .await;
    let wf = src.target_workflow_id;
    let rerun = |new: &str, t| {
        let s = s.clone();
        let (tenant, new) = (e.tenant.clone(), new.to_owned());
        async move { s.rerun_failed(&tenant, "bf_1", &new, "key_2", at(t)).await }
    };
    assert!(matches!(
        rerun("bf_x", 1).await,
        Err(RerunError::NotRerunnable(m)) if m.contains("RUNNING")
    ));
    let c = e.claim("bf_1", 10, 1).await;
    let res = [
        Settlement::Succeeded,
        Settlement::Failed("x".into()),
        Settlement::Succeeded,
        Settlement::Failed("y".into()),
    ];
    let o: Vec<Outcome> = c
        .claimed
        .iter()
        .zip(res)
        .map(|(x, r)| outcome(x, r))
        .collect();
    s.settle(&o, 5, at(2)).await.unwrap();
    // The refused rerun above released the source's row: the claim took all four items.
    assert_eq!(c.claimed.len(), 4);
    assert_eq!(e.get("bf_1").await.state, BackfillRunState::Completed);

    let child = rerun("bf_2", 3).await.unwrap();
    assert_eq!(
        (
            child.state,
            child.parent_backfill_run_id.as_deref(),
            child.total_items,
            child.pending_count,
            child.reprocess,
            child.max_in_flight,
            child.timezone.as_str(),
            child.credits_per_entity,
            child.total_estimated,
            child.created_by.as_str(),
            child.started_at,
        ),
        (
            BackfillRunState::Running,
            Some("bf_1"),
            2,
            2,
            true,
            7,
            "Europe/Paris",
            2,
            Some(2),
            "key_2",
            Some(at(3)),
        )
    );
    assert_eq!(child.filter_spec, json!({"entity_ids": ["b", "d"]}));
    let items = e.items("bf_2").await;
    assert_eq!(
        items
            .iter()
            .map(|i| i.entity_id.as_str())
            .collect::<Vec<_>>(),
        vec!["b", "d"]
    );
    assert!(matches!(
        rerun("bf_3", 4).await,
        Err(RerunError::AlreadyActive)
    ));
    s.signal_backfill(&e.tenant, "bf_2", Signal::Cancel, "u", at(5))
        .await
        .unwrap();
    s.update_workflow(
        &e.tenant,
        wf,
        WorkflowPatch {
            state: Some(WorkflowState::Disabled),
            ..Default::default()
        },
        at(6),
    )
    .await
    .unwrap();
    assert!(matches!(
        rerun("bf_3", 7).await,
        Err(RerunError::Target(
            neo_domain::backfill::TargetRefusal::Disabled
        ))
    ));
    assert!(s.delete_workflow(&e.tenant, wf, at(8)).await.unwrap());
    assert!(matches!(
        rerun("bf_3", 9).await,
        Err(RerunError::WorkflowNotFound)
    ));
    assert!(matches!(
        s.rerun_failed(&e.tenant, "nope", "bf_4", "k", at(9)).await,
        Err(RerunError::NotFound)
    ));
    // The cancelled child has no failures.
    assert!(matches!(
        s.rerun_failed(&e.tenant, "bf_2", "bf_4", "k", at(9)).await,
        Err(RerunError::NotRerunnable(m)) if m.contains("no failed")
    ));
}

// ---- tenants, keys, workflows, integrations, executions, idempotency -------------------------

async fn tenants_and_api_keys(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let again = s.ensure_tenant("acme", at(5)).await.unwrap();
    assert_eq!(again.id, e.tenant);
    assert_eq!(again.created_at, at(0));
    assert_eq!(s.tenant_by_name("acme").await.unwrap(), Some(again.clone()));
    let other = s.ensure_tenant("other", at(0)).await.unwrap();
    s.set_tenant_entra_tid(&e.tenant, Some("tid-1"))
        .await
        .unwrap();
    assert_eq!(
        s.tenant_by_entra_tid("tid-1").await.unwrap().unwrap().id,
        e.tenant
    );
    assert!(matches!(
        s.set_tenant_entra_tid(&other.id, Some("tid-1")).await,
        Err(StoreError::Conflict(_))
    ));
    s.set_tenant_entra_tid(&e.tenant, None).await.unwrap();
    assert!(s.tenant_by_entra_tid("tid-1").await.unwrap().is_none());
    assert!(s.tenant("tn_nope").await.unwrap().is_none());

    let key = |id: &str, hash: u8, t| NewApiKey {
        id: id.into(),
        tenant_id: e.tenant.clone(),
        env: "live".into(),
        key_hash: [hash; 32],
        hint: "abcd".into(),
        created_by: "cli".into(),
        created_at: at(t),
        expires_at: None,
    };
    let k1 = s.insert_api_key(key("key_1", 7, 1)).await.unwrap();
    assert_eq!(
        (k1.env.as_str(), k1.hint.as_str(), k1.created_at),
        ("live", "abcd", at(1))
    );
    let (found, hash) = s.api_key_by_hash(&[7; 32]).await.unwrap().unwrap();
    assert_eq!((found, hash), (k1.clone(), vec![7u8; 32]));
    assert!(s.api_key_by_hash(&[8; 32]).await.unwrap().is_none());
    assert!(
        s.insert_api_key(key("key_dup", 7, 1)).await.is_err(),
        "hashes are unique"
    );
    s.touch_api_key("key_1", at(2)).await.unwrap();
    assert_eq!(
        s.api_key("key_1").await.unwrap().unwrap().last_used_at,
        Some(at(2))
    );
    let k2 = s
        .rotate_api_key("key_1", at(3600), key("key_2", 9, 3))
        .await
        .unwrap();
    assert_eq!(k2.id, "key_2");
    let old = s.api_key("key_1").await.unwrap().unwrap();
    assert_eq!(
        (old.rotated_to.as_deref(), old.expires_at),
        (Some("key_2"), Some(at(3600)))
    );
    assert!(old.is_usable(at(3599)) && !old.is_usable(at(3600)));
    let listed: Vec<String> = s
        .list_api_keys(&e.tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, vec!["key_1", "key_2"]);
    assert!(s.revoke_api_key("key_2", at(4)).await.unwrap());
    assert!(!s.revoke_api_key("key_2", at(5)).await.unwrap());
    assert!(!s.revoke_api_key("key_nope", at(5)).await.unwrap());
    assert_eq!(
        s.api_key("key_2").await.unwrap().unwrap().revoked_at,
        Some(at(4))
    );
    let secret = s.server_secret().await.unwrap();
    assert_eq!(secret.len(), 32);
    assert_eq!(s.server_secret().await.unwrap(), secret);
    s.ping().await.unwrap();
}

async fn idempotent_responses(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let w1 = e.workflow("w1").await;
    let w2 = e.workflow("w2").await;
    let render = |b: &Backfill| (201, json!({"data": {"id": b.id, "b": 1, "a": 2}}));
    let idem = |t: i64, fingerprint: &'static [u8; 32]| NewIdempotency {
        key: "k1",
        fingerprint,
        created_at: at(t),
        not_before: at(t - 100),
        render: &render,
    };
    const FP1: [u8; 32] = [1; 32];
    const FP2: [u8; 32] = [2; 32];
    assert!(s
        .idempotent_response(&e.tenant, "k1", at(0))
        .await
        .unwrap()
        .is_none());
    // The response is written with the backfill.
    s.create_backfill_idempotent(
        new_backfill(&e.tenant, "bf_1", w1, Some(&["1"])),
        Some(&idem(10, &FP1)),
    )
    .await
    .unwrap();
    let got = s
        .idempotent_response(&e.tenant, "k1", at(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.fingerprint, got.status, got.created_at),
        (vec![1; 32], 201, at(10))
    );
    // Stored as rendered: key order too.
    assert_eq!(
        serde_json::to_string(&got.response).unwrap(),
        r#"{"data":{"id":"bf_1","b":1,"a":2}}"#
    );
    // A live key is taken: nothing is created.
    assert!(matches!(
        s.create_backfill_idempotent(
            new_backfill(&e.tenant, "bf_2", w2, Some(&["1"])),
            Some(&idem(20, &FP2)),
        )
        .await,
        Err(StoreError::IdempotencyKeyTaken)
    ));
    assert!(s.backfill(&e.tenant, "bf_2").await.unwrap().is_none());
    // A create that fails leaves no key behind.
    assert!(matches!(
        s.create_backfill_idempotent(
            new_backfill(&e.tenant, "bf_3", w1, Some(&["1"])),
            Some(&NewIdempotency {
                key: "k2",
                ..idem(20, &FP2)
            }),
        )
        .await,
        Err(StoreError::AlreadyActive)
    ));
    assert!(s
        .idempotent_response(&e.tenant, "k2", at(0))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .idempotent_response(&e.tenant, "k1", at(11))
        .await
        .unwrap()
        .is_none());
    let other = s.ensure_tenant("other", at(0)).await.unwrap().id;
    assert!(s
        .idempotent_response(&other, "k1", at(0))
        .await
        .unwrap()
        .is_none());
    // An expired entry is replaced.
    s.signal_backfill(&e.tenant, "bf_1", Signal::Cancel, "k", at(30))
        .await
        .unwrap();
    s.create_backfill_idempotent(
        new_backfill(&e.tenant, "bf_4", w2, Some(&["1"])),
        Some(&idem(200, &FP2)),
    )
    .await
    .unwrap();
    let got = s
        .idempotent_response(&e.tenant, "k1", at(150))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.fingerprint, got.created_at), (vec![2; 32], at(200)));
    assert_eq!(got.response["data"]["id"], "bf_4");
    // The purge deletes what was created before its cutoff.
    s.create_backfill_idempotent(
        new_backfill(&e.tenant, "bf_5", w1, Some(&["1"])),
        Some(&NewIdempotency {
            key: "k3",
            ..idem(300, &FP1)
        }),
    )
    .await
    .unwrap();
    assert_eq!(s.purge_idempotency_keys(at(300)).await.unwrap(), 1);
    assert!(s
        .idempotent_response(&e.tenant, "k1", at(0))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .idempotent_response(&e.tenant, "k3", at(0))
        .await
        .unwrap()
        .is_some());
    assert_eq!(s.purge_idempotency_keys(at(300)).await.unwrap(), 0);
}

async fn workflows_and_integrations(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let w1 = e.workflow("one").await;
    let w2 = e.workflow("two").await;
    let w3 = e.workflow("three").await;
    let p = s.list_workflows(&e.tenant, None, 2).await.unwrap();
    assert_eq!(
        (p.items.iter().map(|w| w.id).collect::<Vec<_>>(), p.has_more),
        (vec![w1, w2], true)
    );
    let p = s.list_workflows(&e.tenant, Some(w2), 2).await.unwrap();
    assert_eq!(
        (p.items.iter().map(|w| w.id).collect::<Vec<_>>(), p.has_more),
        (vec![w3], false)
    );
    let w = s
        .update_workflow(
            &e.tenant,
            w1,
            WorkflowPatch {
                name: Some("uno".into()),
                description: Some(Some("first".into())),
                credit_tier: Some(3),
                executor: Some(json!({"type": "webhook", "url": "http://x", "secret": "s"})),
                ..Default::default()
            },
            at(7),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            w.name.as_str(),
            w.description.as_deref(),
            w.credit_tier,
            w.updated_at
        ),
        ("uno", Some("first"), 3, at(7))
    );
    assert_eq!(s.workflow(&e.tenant, w1).await.unwrap(), Some(w));
    assert!(s
        .update_workflow(&e.tenant, 999_999, WorkflowPatch::default(), at(7))
        .await
        .unwrap()
        .is_none());
    let other = s.ensure_tenant("other", at(0)).await.unwrap().id;
    assert!(s.workflow(&other, w1).await.unwrap().is_none());

    // Deleting a workflow fails its active backfill.
    s.create_backfill(new_backfill(&e.tenant, "bf_1", w1, Some(&["1", "2"])))
        .await
        .unwrap();
    assert!(s.delete_workflow(&e.tenant, w1, at(8)).await.unwrap());
    assert!(!s.delete_workflow(&e.tenant, w1, at(8)).await.unwrap());
    let bf = e.check_counters("bf_1").await;
    assert_eq!(
        (
            bf.state,
            bf.error.as_deref(),
            bf.cancelled_count,
            bf.target_workflow_name
        ),
        (
            BackfillRunState::Failed,
            Some("the target workflow was deleted"),
            2,
            None
        )
    );

    // Integrations.
    assert!(s.integration(&e.tenant).await.unwrap().is_none());
    let i = s
        .put_integration(
            &e.tenant,
            "connectwise",
            json!({"site": "https://cw"}),
            json!({"private_key": "p", "client_id": "c"}),
            at(9),
        )
        .await
        .unwrap();
    assert_eq!(i.secret_names, vec!["client_id", "private_key"]);
    let i2 = s
        .put_integration(
            &e.tenant,
            "autotask",
            json!({"zone": "z"}),
            json!({"secret": "s"}),
            at(10),
        )
        .await
        .unwrap();
    assert_eq!(
        (i2.psa.as_str(), i2.created_at, i2.updated_at),
        ("autotask", at(9), at(10))
    );
    assert_eq!(s.integration(&e.tenant).await.unwrap(), Some(i2));
    assert_eq!(
        s.integration_secrets(&e.tenant).await.unwrap(),
        Some(json!({"secret": "s"}))
    );
    // Removing it fails the PSA-query backfills only.
    s.create_backfill(new_backfill(&e.tenant, "bf_psa", w2, None))
        .await
        .unwrap();
    s.create_backfill(new_backfill(&e.tenant, "bf_ids", w3, Some(&["1"])))
        .await
        .unwrap();
    assert!(s.delete_integration(&e.tenant, at(11)).await.unwrap());
    assert!(!s.delete_integration(&e.tenant, at(11)).await.unwrap());
    assert_eq!(e.get("bf_psa").await.state, BackfillRunState::Failed);
    assert_eq!(e.get("bf_ids").await.state, BackfillRunState::Running);
}

async fn executions_list_and_filters(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    for i in 1..=5 {
        let x = s
            .insert_execution(NewExecution {
                id: format!("ex_0{i}"),
                tenant_id: e.tenant.clone(),
                agent_id: if i % 2 == 0 { 2 } else { 1 },
                agent_name: Some("wf".into()),
                backfill_id: None,
                entity_id: format!("ent{}", i % 3),
                entity_number: Some(format!("#{i}")),
                status: ExecutionStatus::Queued,
                retry_of: None,
                created_at: at(i),
            })
            .await
            .unwrap();
        assert_eq!(
            (x.status, x.attempts, x.created_at),
            (ExecutionStatus::Queued, 0, at(i))
        );
    }
    let ids = |p: Page<Execution>| {
        (
            p.items.into_iter().map(|x| x.id).collect::<Vec<_>>(),
            p.has_more,
        )
    };
    let all = ExecutionFilter::default();
    assert_eq!(
        ids(s.list_executions(&e.tenant, &all, None, 2).await.unwrap()),
        (vec!["ex_05".into(), "ex_04".into()], true)
    );
    assert_eq!(
        ids(s
            .list_executions(&e.tenant, &all, Some("ex_02"), 2)
            .await
            .unwrap()),
        (vec!["ex_01".into()], false)
    );
    let f = ExecutionFilter {
        agent_id: Some(1),
        statuses: vec![ExecutionStatus::Queued, ExecutionStatus::Failed],
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_executions(&e.tenant, &f, None, 10).await.unwrap()).0,
        vec!["ex_05", "ex_03", "ex_01"]
    );
    let f = ExecutionFilter {
        entity_id: Some("ent1".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_executions(&e.tenant, &f, None, 10).await.unwrap()).0,
        vec!["ex_04", "ex_01"]
    );
    let f = ExecutionFilter {
        entity_number: Some("#3".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_executions(&e.tenant, &f, None, 10).await.unwrap()).0,
        vec!["ex_03"]
    );
    // An execution outside any backfill finishes on its own, with its credits.
    assert_eq!(
        s.finish_execution(&e.tenant, "ex_01", ExecutionStatus::Succeeded, None, at(9))
            .await
            .unwrap(),
        Some(true)
    );
    let x = s.execution_by_id("ex_01").await.unwrap().unwrap();
    assert_eq!(
        (x.status, x.finished_at),
        (ExecutionStatus::Succeeded, Some(at(9)))
    );
    assert_eq!(s.credits_used(&e.tenant, at(0), at(10)).await.unwrap(), 1);
    let other = s.ensure_tenant("other", at(0)).await.unwrap().id;
    assert!(s.execution(&other, "ex_01").await.unwrap().is_none());
    assert_eq!(
        s.finish_execution(&other, "ex_02", ExecutionStatus::Failed, None, at(9))
            .await
            .unwrap(),
        None
    );
}

/// Replicas claiming, heartbeating, settling (with retries), releasing and reaping at once on
/// two backfills: no error (PostgreSQL would report a deadlock), both complete, counters hold.
async fn dispatch_operations_interleave(b: Backend) {
    let Some(e) = env(b).await else { return };
    const N: usize = 30;
    let names: Vec<String> = (0..N).map(|i| format!("e{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut ids = Vec::new();
    for i in 0..2 {
        let bf = e
            .backfill_with(&format!("bf_{i}"), &refs, |nb| nb.max_in_flight = 5)
            .await;
        ids.push(bf.id);
    }
    let mut tasks = Vec::new();
    for w in 0..6usize {
        let s = e.t.reopen().await;
        let (ids, tenant) = (ids.clone(), e.tenant.clone());
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            for round in 0usize.. {
                let id = &ids[(w + round) % 2];
                let c = s.claim_items(id, &worker, 3, at(1), at(30)).await.unwrap();
                s.heartbeat(&worker, at(60)).await.unwrap();
                if round % 3 == 2 {
                    s.release_leases(&worker, at(2)).await.unwrap();
                } else if !c.claimed.is_empty() {
                    let o: Vec<Outcome> = c
                        .claimed
                        .iter()
                        .map(|x| {
                            let r = if x.attempt == 1 && x.ord % 2 == 1 {
                                Settlement::Retry {
                                    error: "busy".into(),
                                    at: at(0),
                                }
                            } else {
                                Settlement::Succeeded
                            };
                            outcome(x, r)
                        })
                        .collect();
                    s.settle(&o, 5, at(2)).await.unwrap();
                }
                s.reap_expired_leases(at(5)).await.unwrap();
                let mut done = 0;
                for id in &ids {
                    let st = s.backfill(&tenant, id).await.unwrap().unwrap().state;
                    done += (st == BackfillRunState::Completed) as usize;
                }
                if done == ids.len() {
                    return;
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for id in &ids {
        let bf = e.check_counters(id).await;
        assert_eq!(
            (bf.state, bf.succeeded_count),
            (BackfillRunState::Completed, N as i64)
        );
    }
}

/// A cancel of more pending items than [`CANCEL_INLINE`] answers with the backfill CANCELLED
/// and that many cancelled; nothing is claimed after it; the rest are swept in batches until
/// the counters are exact (cancelled, never failed), and the sweep then leaves the backfill.
async fn cancel_of_a_large_backfill_is_swept_in_batches(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let n = CANCEL_INLINE + 2_500;
    let names: Vec<String> = (0..n).map(|i| format!("E{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let id = e.backfill_with("bf_big", &refs, |_| {}).await.id;
    let c = e.claim(&id, 3, 1).await;
    assert_eq!(c.claimed.len(), 3);
    let (bf, _) = s
        .signal_backfill(&e.tenant, &id, Signal::Cancel, "u", at(2))
        .await
        .unwrap();
    assert_eq!(bf.state, BackfillRunState::Cancelled);
    assert_eq!(bf.cancelled_count, CANCEL_INLINE as i64);
    assert_eq!(bf.pending_count, (n - 3 - CANCEL_INLINE) as i64);
    assert!(
        e.claim(&id, 100, 3).await.claimed.is_empty(),
        "claimed after cancel"
    );
    assert!(
        s.dispatchable_backfills()
            .await
            .unwrap()
            .iter()
            .any(|d| d.id == id),
        "a cancelled backfill with pending items is swept"
    );
    let mut swept = 0;
    loop {
        let k = s.sweep_pending(&id, 1_000, at(4)).await.unwrap();
        if k == 0 {
            break;
        }
        swept += k;
    }
    assert_eq!(swept as usize, n - 3 - CANCEL_INLINE);
    for c in &c.claimed {
        e.settle(c, Settlement::Succeeded, 5).await;
    }
    let bf = e.check_counters(&id).await;
    assert_eq!(
        (
            bf.pending_count,
            bf.in_flight_count,
            bf.failed_count,
            bf.succeeded_count
        ),
        (0, 0, 0, 3)
    );
    assert_eq!(bf.cancelled_count, (n - 3) as i64);
    assert!(!s
        .dispatchable_backfills()
        .await
        .unwrap()
        .iter()
        .any(|d| d.id == id));
    // A running backfill is never swept.
    let other = e.backfill_with("bf_run", &["x", "y"], |_| {}).await.id;
    assert_eq!(s.sweep_pending(&other, 1_000, at(6)).await.unwrap(), 0);
}

/// Credits: each succeeded execution is charged once, at its workflow's tier (2 here),
/// however often its outcome arrives: twice in one batch, again in a later batch, and through
/// a completion call after the orchestrator settled it. Failures cost nothing.
async fn credits_are_charged_once_per_succeeded_execution(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let id = e
        .backfill_with("bf_c", &["1", "2", "3", "4"], |_| {})
        .await
        .id;
    let c = e.claim(&id, 4, 1).await;
    let [one, two, three, four] = &c.claimed[..] else {
        panic!("claimed {:?}", c.claimed)
    };
    let failed = Settlement::Failed("no".into());
    s.settle(
        &[
            outcome(one, Settlement::Succeeded),
            outcome(one, Settlement::Succeeded),
            outcome(two, Settlement::Succeeded),
            outcome(three, failed),
        ],
        5,
        at(2),
    )
    .await
    .unwrap();
    e.settle(two, Settlement::Succeeded, 3).await;
    let finished = s
        .finish_execution(
            &e.tenant,
            &one.execution_id,
            ExecutionStatus::Succeeded,
            None,
            at(4),
        )
        .await
        .unwrap();
    assert_eq!(finished, Some(false), "already final");
    assert_eq!(s.credits_used(&e.tenant, at(0), at(10)).await.unwrap(), 4);
    e.settle(four, Settlement::Succeeded, 5).await;
    assert_eq!(s.credits_used(&e.tenant, at(0), at(10)).await.unwrap(), 6);
    assert_eq!(s.credits_used(&e.tenant, at(5), at(10)).await.unwrap(), 2);
    let bf = e.check_counters(&id).await;
    assert_eq!((bf.succeeded_count, bf.failed_count), (3, 1));
}

/// An execution's earlier attempts are kept with their start, end, HTTP status and error; the
/// row itself is the latest attempt. Another tenant cannot read them.
async fn an_execution_keeps_its_attempt_history(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let id = e.backfill_with("bf_1", &["e0", "e1"], |_| {}).await.id;
    let c1 = e.claim(&id, 10, 0).await;
    let report = |start: i64, code: u16| AttemptReport {
        started_at: Some(at(start)),
        http_status: Some(code),
    };
    let with = |c: &Claimed, st: Settlement, r: AttemptReport| Outcome {
        attempt: r,
        ..outcome(c, st)
    };
    let (first, other) = (&c1.claimed[0], &c1.claimed[1]);
    s.settle(
        &[
            with(
                first,
                Settlement::Retry {
                    error: "the executor answered HTTP 503: maintenance".into(),
                    at: at(10),
                },
                report(0, 503),
            ),
            with(other, Settlement::Succeeded, report(0, 200)),
        ],
        5,
        at(2),
    )
    .await
    .unwrap();
    let c2 = e.claim(&id, 10, 11).await;
    assert_eq!(c2.claimed[0].attempt, 2);
    s.settle(
        &[with(
            &c2.claimed[0],
            Settlement::Failed("the executor answered HTTP 422: board Help Desk is locked".into()),
            report(11, 422),
        )],
        5,
        at(13),
    )
    .await
    .unwrap();

    let ex = s
        .execution(&e.tenant, &first.execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            ex.attempts,
            ex.http_status,
            ex.attempt_started_at,
            ex.finished_at
        ),
        (2, Some(422), Some(at(11)), Some(at(13)))
    );
    let history = s
        .execution_attempts(&e.tenant, &first.execution_id)
        .await
        .unwrap();
    assert_eq!(
        history,
        vec![ExecutionAttempt {
            attempt: 1,
            started_at: Some(at(0)),
            finished_at: at(2),
            http_status: Some(503),
            error: Some("the executor answered HTTP 503: maintenance".into()),
        }]
    );
    // A first attempt that settles writes no history row.
    assert!(s
        .execution_attempts(&e.tenant, &other.execution_id)
        .await
        .unwrap()
        .is_empty());
    let ok = s
        .execution(&e.tenant, &other.execution_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.http_status, Some(200));
    assert!(s
        .execution_attempts("another-tenant", &first.execution_id)
        .await
        .unwrap()
        .is_empty());
}

/// An active backfill's name, cap and windows change in one transaction with an audit entry
/// per changed setting; a no-op edit records nothing; an ended backfill refuses.
async fn edits_are_applied_and_audited(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let id = e.backfill_with("bf_1", &["e0"], |_| {}).await.id;
    let before = s.backfill(&e.tenant, &id).await.unwrap().unwrap();
    assert_eq!(before.name, None);
    let edit = BackfillEdit {
        name: Some(Some("Q4 clean-up".into())),
        max_in_flight: Some(before.max_in_flight + 7),
        timezone: Some("Europe/London".into()),
        ..Default::default()
    };
    let after = s
        .edit_backfill(&e.tenant, &id, &edit, "key:k1", at(5))
        .await
        .unwrap();
    assert_eq!(after.name.as_deref(), Some("Q4 clean-up"));
    assert_eq!(after.max_in_flight, before.max_in_flight + 7);
    assert_eq!(after.timezone, "Europe/London");
    // The same edit again changes nothing and records nothing.
    s.edit_backfill(&e.tenant, &id, &edit, "key:k1", at(6))
        .await
        .unwrap();
    s.signal_backfill(&e.tenant, &id, Signal::Pause, "key:k2", at(7))
        .await
        .unwrap();
    let history = s.backfill_history(&e.tenant, &id, 10).await.unwrap();
    let seen: Vec<(&str, Option<&str>, Option<&str>, &str)> = history
        .iter()
        .map(|h| {
            (
                h.what.as_str(),
                h.from.as_deref(),
                h.to.as_deref(),
                h.actor.as_str(),
            )
        })
        .collect();
    let cap = (
        before.max_in_flight.to_string(),
        (before.max_in_flight + 7).to_string(),
    );
    assert_eq!(
        seen,
        vec![
            ("pause", Some("RUNNING"), Some("PAUSED"), "key:k2"),
            (
                "timezone",
                Some(before.timezone.as_str()),
                Some("Europe/London"),
                "key:k1"
            ),
            (
                "max_in_flight",
                Some(cap.0.as_str()),
                Some(cap.1.as_str()),
                "key:k1"
            ),
            ("name", None, Some("Q4 clean-up"), "key:k1"),
        ]
    );
    assert!(s
        .backfill_history("another-tenant", &id, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        s.edit_backfill("another-tenant", &id, &edit, "x", at(8))
            .await,
        Err(EditError::NotFound)
    ));
    s.signal_backfill(&e.tenant, &id, Signal::Cancel, "key:k2", at(9))
        .await
        .unwrap();
    assert!(matches!(
        s.edit_backfill(
            &e.tenant,
            &id,
            &BackfillEdit {
                max_in_flight: Some(3),
                ..Default::default()
            },
            "x",
            at(10)
        )
        .await,
        Err(EditError::Refused(_))
    ));
}

backend_tests!(
    backfills_create_list_and_keyset_pages,
    one_active_backfill_per_workflow,
    signals_and_their_refusals,
    claim_settle_counters_and_completion,
    an_execution_keeps_its_attempt_history,
    edits_are_applied_and_audited,
    dispatch_list_leaves_out_finished_snapshot_filters,
    settle_batch_applies_outcomes_in_order,
    circuit_breaker_pauses_and_resume_clears,
    a_settlement_replans_when_its_backfill_changed_meanwhile,
    one_claim_serves_several_backfills_each_under_its_own_cap,
    claim_cap_holds_with_concurrent_claimers,
    dispatch_operations_interleave,
    leases_heartbeat_reap_and_release,
    append_items_with_checkpoint,
    rerun_failed_rules,
    tenants_and_api_keys,
    idempotent_responses,
    workflows_and_integrations,
    executions_list_and_filters,
    cancel_of_a_large_backfill_is_swept_in_batches,
    credits_are_charged_once_per_succeeded_execution,
);
