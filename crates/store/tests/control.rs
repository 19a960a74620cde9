//! Operator control in the store (issue 21), through the trait against both backends: a
//! trial's held items and its summary, a credit cap in the claim (also with concurrent
//! claimers), the self-pauses re-checked under the lock, the pause reasons, and the measured
//! throughput each settlement moves exactly as the domain's rule says.

use std::collections::BTreeSet;
use std::sync::Arc;

use neo_domain::backfill::{BackfillMode, BackfillRunState, EntityType, Signal};
use neo_domain::control::{trial_positions, PauseReason};
use neo_domain::eta::Throughput;
use neo_store::testing::{at, backend_tests, store_with_workflow, Backend, TestStore};
use neo_store::*;
use serde_json::json;

struct Env {
    t: TestStore,
    tenant: String,
    wf: i64,
}

impl Env {
    fn s(&self) -> &Arc<dyn Store> {
        &self.t.store
    }

    /// A RUNNING backfill over `n` entities (`None`: a PSA query, snapshot to append).
    async fn backfill(
        &self,
        id: &str,
        n: Option<usize>,
        f: impl FnOnce(&mut NewBackfill),
    ) -> Backfill {
        let ids: Option<Vec<String>> = n.map(|n| (0..n).map(|i| format!("e{i:03}")).collect());
        let mut nb = NewBackfill {
            id: id.into(),
            tenant_id: self.tenant.clone(),
            state: BackfillRunState::Running,
            target_workflow_id: self.wf,
            entity_type: EntityType::Ticket,
            filter_spec: json!({ "entity_ids": ids }),
            daily_execution_windows: Default::default(),
            timezone: "UTC".into(),
            max_in_flight: 100,
            reprocess: true,
            total_estimated: None,
            credits_per_entity: 1,
            created_by: "key_1".into(),
            created_at: at(0),
            entity_ids: ids,
            name: None,
            mode: BackfillMode::Live,
            start_at: None,
            max_credits: None,
            trial_sample_size: None,
            max_in_flight_per_company: None,
            company_blackouts: None,
        };
        f(&mut nb);
        self.s().create_backfill(nb).await.unwrap()
    }

    async fn get(&self, id: &str) -> Backfill {
        self.s().backfill(&self.tenant, id).await.unwrap().unwrap()
    }

    async fn claim(&self, id: &str, limit: usize, now: i64) -> Vec<Claimed> {
        self.s()
            .claim_items(id, "w1", limit, at(now), at(now + 30))
            .await
            .unwrap()
            .claimed
    }

    async fn settle(&self, claimed: &[Claimed], now: i64, how: impl Fn(&Claimed) -> Settlement) {
        self.settle_with(claimed, now, 1_000, how).await
    }

    /// [`Env::settle`] with a circuit breaker at `breaker` consecutive failures.
    async fn settle_with(
        &self,
        claimed: &[Claimed],
        now: i64,
        breaker: i64,
        how: impl Fn(&Claimed) -> Settlement,
    ) {
        let outcomes = neo_store::testing::outcomes(claimed, how);
        self.s().settle(&outcomes, breaker, at(now)).await.unwrap();
    }

    async fn pause_itself(&self, id: &str, reason: PauseReason) -> bool {
        self.s()
            .pause_itself(&self.tenant, id, reason, at(100))
            .await
            .unwrap()
    }

    async fn signal(&self, id: &str, s: Signal) {
        self.s()
            .signal_backfill(&self.tenant, id, s, "key_1", at(100))
            .await
            .unwrap();
    }
}

async fn env(b: Backend) -> Option<Env> {
    let (t, tenant, wf) = store_with_workflow(b, "Triage", 2, json!({"type": "simulated"})).await?;
    Some(Env { t, tenant, wf })
}

fn ords(c: &[Claimed]) -> BTreeSet<i64> {
    c.iter().map(|c| c.ord).collect()
}

async fn a_trial_holds_everything_outside_its_sample_until_continued(b: Backend) {
    let Some(e) = env(b).await else { return };
    let id = e
        .backfill("bf_trial", Some(100), |nb| nb.trial_sample_size = Some(10))
        .await
        .id;
    let sample: BTreeSet<i64> = trial_positions(100, 10)
        .into_iter()
        .map(|p| p as i64)
        .collect();
    let first = e.claim(&id, 100, 1).await;
    assert_eq!(ords(&first), sample, "only the sample is claimable");
    assert!(e.claim(&id, 100, 1).await.is_empty());
    assert!(
        !e.pause_itself(&id, PauseReason::TrialComplete).await,
        "the sample is in flight"
    );
    e.settle(&first, 2, |c| {
        if c.ord % 50 == 0 {
            Settlement::Failed("board Help Desk is locked".into())
        } else {
            Settlement::Succeeded
        }
    })
    .await;
    assert!(
        !e.pause_itself(&id, PauseReason::BudgetReached).await,
        "no cap: no budget pause"
    );
    assert!(e.pause_itself(&id, PauseReason::TrialComplete).await);
    let paused = e.get(&id).await;
    assert_eq!(paused.state, BackfillRunState::Paused);
    assert_eq!(paused.pause_reason, Some(PauseReason::TrialComplete));
    assert_eq!(
        paused.trial_summary,
        Some(TrialSummary {
            sample_size: 10,
            succeeded: 8,
            failed: 2,
            skipped: 0,
            top_errors: vec![TrialError {
                error: "board Help Desk is locked".into(),
                count: 2
            }],
        })
    );
    assert!(!paused.in_trial());
    assert!(
        !e.pause_itself(&id, PauseReason::TrialComplete).await,
        "once"
    );

    e.signal(&id, Signal::Resume).await;
    let resumed = e.get(&id).await;
    assert_eq!(resumed.pause_reason, None);
    let rest = e.claim(&id, 100, 3).await;
    assert_eq!(rest.len(), 90);
    assert!(ords(&rest).is_disjoint(&sample), "no sample item twice");

    // A PSA query's snapshot: the sample is chosen over all of it once it is complete.
    e.signal(&id, Signal::Cancel).await;
    let q = e
        .backfill("bf_query", None, |nb| nb.trial_sample_size = Some(3))
        .await
        .id;
    let page = |from: usize| -> Vec<SnapshotEntry> {
        (from..from + 15)
            .map(|i| SnapshotEntry::id(format!("q{i}")))
            .collect()
    };
    assert!(e
        .s()
        .append_items(&q, &page(0), None, Some(&json!({"p": 1})), false, at(1))
        .await
        .unwrap());
    assert!(e
        .s()
        .append_items(&q, &page(15), Some(&json!({"p": 1})), None, true, at(1))
        .await
        .unwrap());
    let claimed = e.claim(&q, 100, 2).await;
    assert_eq!(ords(&claimed), BTreeSet::from([0, 10, 20]));
}

async fn a_credit_cap_bounds_every_claim_counting_what_is_in_flight(b: Backend) {
    let Some(e) = env(b).await else { return };
    // Tier 2, cap 20 credits: ten executions.
    let id = e
        .backfill("bf_cap", Some(40), |nb| {
            nb.credits_per_entity = 2;
            nb.max_credits = Some(20);
        })
        .await
        .id;
    let first = e.claim(&id, 100, 1).await;
    assert_eq!(first.len(), 10, "what is in flight counts as spent");
    assert!(e.claim(&id, 100, 1).await.is_empty());
    assert!(
        !e.pause_itself(&id, PauseReason::BudgetReached).await,
        "ten in flight"
    );
    // Four fail (not charged), six succeed: 12 credits spent, room for four more.
    e.settle(&first, 2, |c| {
        if c.ord < 4 {
            Settlement::Failed("nope".into())
        } else {
            Settlement::Succeeded
        }
    })
    .await;
    assert!(
        !e.pause_itself(&id, PauseReason::BudgetReached).await,
        "room for four"
    );
    let more = e.claim(&id, 100, 3).await;
    assert_eq!(more.len(), 4);
    e.settle(&more, 4, |_| Settlement::Succeeded).await;
    assert_eq!(e.get(&id).await.budget_room(), Some(0));
    assert!(e.pause_itself(&id, PauseReason::BudgetReached).await);
    let paused = e.get(&id).await;
    assert_eq!(
        (paused.state, paused.pause_reason, paused.succeeded_count),
        (
            BackfillRunState::Paused,
            Some(PauseReason::BudgetReached),
            10
        )
    );

    // Raised to 30 (five more) and resumed.
    let edit = BackfillEdit {
        max_credits: Some(Some(30)),
        ..Default::default()
    };
    e.s()
        .edit_backfill(&e.tenant, &id, &edit, "key_1", at(5))
        .await
        .unwrap();
    e.signal(&id, Signal::Resume).await;
    assert_eq!(e.claim(&id, 100, 6).await.len(), 5);
}

async fn concurrent_claimers_share_one_cap(b: Backend) {
    let Some(e) = env(b).await else { return };
    // 15 credits at 2 each: seven executions, whatever the number of claimers.
    let id = e
        .backfill("bf_race", Some(60), |nb| {
            nb.credits_per_entity = 2;
            nb.max_credits = Some(15);
        })
        .await
        .id;
    let mut replicas = Vec::new();
    for _ in 0..8 {
        replicas.push(e.t.reopen().await);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for (i, s) in replicas.into_iter().enumerate() {
        let (id, barrier) = (id.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut got = 0;
            // Each keeps claiming (a claimer that found the row locked claims nothing).
            for _ in 0..20 {
                got += s
                    .claim_items(&id, &format!("w{i}"), 3, at(1), at(30))
                    .await
                    .unwrap()
                    .claimed
                    .len();
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 7, "exactly what the cap allows");
    assert_eq!(e.get(&id).await.in_flight_count, 7);
}

async fn pauses_say_why_and_resume_clears_the_reason(b: Backend) {
    let Some(e) = env(b).await else { return };
    let id = e.backfill("bf_why", Some(10), |_| {}).await.id;
    e.signal(&id, Signal::Pause).await;
    assert_eq!(e.get(&id).await.pause_reason, Some(PauseReason::Operator));
    e.signal(&id, Signal::Resume).await;
    assert_eq!(e.get(&id).await.pause_reason, None);
    // The circuit breaker (threshold 3 here).
    let claimed = e.claim(&id, 3, 1).await;
    e.settle_with(&claimed, 2, 3, |_| Settlement::Failed("boom".into()))
        .await;
    let tripped = e.get(&id).await;
    assert_eq!(tripped.state, BackfillRunState::Paused);
    assert_eq!(tripped.pause_reason, Some(PauseReason::CircuitBreaker));
    // The allowance reason is the orchestrator's measure; the store checks the rest.
    e.signal(&id, Signal::Resume).await;
    assert!(e.pause_itself(&id, PauseReason::AllowanceExhausted).await);
    assert_eq!(
        e.get(&id).await.pause_reason,
        Some(PauseReason::AllowanceExhausted)
    );
    // Not for a backfill that is not RUNNING.
    assert!(!e.pause_itself(&id, PauseReason::AllowanceExhausted).await);
}

async fn settlements_measure_throughput_as_the_domain_rule_does(b: Backend) {
    let Some(e) = env(b).await else { return };
    let id = e.backfill("bf_rate", Some(200), |_| {}).await.id;
    let mut expected = Throughput::default();
    // Batches of varied sizes at varied moments, one silence longer than the gap among them.
    let plan: [(i64, usize); 7] = [
        (1, 5),
        (3, 20),
        (4, 1),
        (10, 30),
        (400, 10),
        (401, 7),
        (460, 12),
    ];
    for (t, n) in plan {
        let c = e.claim(&id, n, t).await;
        assert_eq!(c.len(), n);
        e.settle(&c, t, |_| Settlement::Succeeded).await;
        expected = expected.observe(n as u64, at(t));
        let got = e.get(&id).await.throughput;
        assert_eq!(got.at, expected.at, "at t={t}");
        assert!(
            (got.items - expected.items).abs() < 1e-9,
            "items at t={t}: {got:?} vs {expected:?}"
        );
        assert!(
            (got.seconds - expected.seconds).abs() < 1e-9,
            "seconds at t={t}: {got:?} vs {expected:?}"
        );
    }
    let rate = e.get(&id).await.throughput.per_second().unwrap();
    assert!(rate > 0.0, "{rate}");
}

async fn failures_are_read_with_their_status_and_a_rerun_takes_only_its_causes(b: Backend) {
    use neo_domain::triage::{Causes, FailureKind};
    let Some(e) = env(b).await else { return };
    let id = e.backfill("bf_fail", Some(30), |_| {}).await.id;
    let claimed = e.claim(&id, 30, 1).await;
    let outcomes: Vec<Outcome> = claimed
        .iter()
        .map(|c| {
            let (settlement, status) = match c.ord % 3 {
                0 => (Settlement::Succeeded, 200),
                1 => (
                    Settlement::Failed(format!(
                        "the executor answered HTTP 422: ticket {} is locked",
                        c.entity_id
                    )),
                    422,
                ),
                _ => (
                    Settlement::Failed(
                        "the executor answered HTTP 504 (gave up after 5 attempts)".into(),
                    ),
                    504,
                ),
            };
            Outcome {
                backfill_id: c.backfill_id.clone(),
                ord: c.ord,
                execution_id: c.execution_id.clone(),
                settlement,
                attempt: AttemptReport {
                    http_status: Some(status),
                    ..Default::default()
                },
            }
        })
        .collect();
    e.s().settle(&outcomes, 1_000, at(2)).await.unwrap();
    let failures = e.s().failures(&e.tenant, &id).await.unwrap();
    assert_eq!(failures.len(), 20);
    assert_eq!(failures[0].entity_id, "e001");
    assert_eq!(failures[0].http_status, Some(422));
    assert_eq!(failures[1].http_status, Some(504));
    assert!(e.s().failures("another", &id).await.unwrap().is_empty());

    let causes = Causes {
        error_signatures: Vec::new(),
        failure_kinds: vec![FailureKind::Http5xx],
    };
    let child = NewChild {
        source_id: &id,
        new_id: "bf_child",
        kind: ChildKind::RerunFailed,
        created_by: "key_1",
        now: at(3),
        causes: Some(&causes),
    };
    let c = e.s().create_child(&e.tenant, &child, None).await.unwrap();
    assert_eq!(c.total_items, 10);
    assert_eq!(c.rerun_causes, Some(causes));
    let ids = c.filter_spec["entity_ids"].as_array().unwrap().clone();
    assert_eq!(ids[0], "e002");
    assert_eq!(ids[9], "e029");
}

backend_tests!(
    a_trial_holds_everything_outside_its_sample_until_continued,
    a_credit_cap_bounds_every_claim_counting_what_is_in_flight,
    concurrent_claimers_share_one_cap,
    pauses_say_why_and_resume_clears_the_reason,
    settlements_measure_throughput_as_the_domain_rule_does,
    failures_are_read_with_their_status_and_a_rerun_takes_only_its_causes,
);
