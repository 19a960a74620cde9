//! Notifications in the store (issue 22), through the trait against both backends: every state
//! change writes its event once, in its own transaction, to the enabled endpoints of its
//! tenant that subscribe to it (never to another tenant's, never for a refused change); the
//! failure-rate alert once; deliveries under a lease, retried when asked, taken again when a
//! lease expires (a killed deliverer), pruned when old.

use std::sync::Arc;

use neo_domain::backfill::{BackfillMode, BackfillRunState, EntityType, Signal};
use neo_domain::control::PauseReason;
use neo_domain::notify::{EventType, Format};
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

    async fn backfill(&self, id: &str, n: usize, state: BackfillRunState) -> Backfill {
        let ids: Vec<String> = (0..n).map(|i| format!("e{i:03}")).collect();
        self.s()
            .create_backfill(NewBackfill {
                id: id.into(),
                tenant_id: self.tenant.clone(),
                state,
                target_workflow_id: self.wf,
                entity_type: EntityType::Ticket,
                filter_spec: json!({ "entity_ids": ids }),
                daily_execution_windows: Default::default(),
                timezone: "UTC".into(),
                max_in_flight: 500,
                reprocess: true,
                total_estimated: None,
                credits_per_entity: 1,
                created_by: "key_1".into(),
                created_at: at(0),
                entity_ids: Some(ids),
                name: Some(format!("{id} <b>")),
                mode: BackfillMode::Live,
                start_at: None,
                max_credits: None,
                trial_sample_size: None,
                max_in_flight_per_company: None,
                company_blackouts: None,
            })
            .await
            .unwrap()
    }

    async fn endpoint(&self, tenant: &str, types: &[EventType], enabled: bool) -> String {
        self.s()
            .insert_notification_endpoint(
                NewNotificationEndpoint {
                    id: neo_store::notifications::new_endpoint_id(),
                    tenant_id: tenant.into(),
                    url: "https://hooks.example.com/neo".into(),
                    secret: "whsec_0123456789abcdef".into(),
                    event_types: types.to_vec(),
                    format: Format::Json,
                    enabled,
                    description: None,
                },
                at(0),
            )
            .await
            .unwrap()
            .id
    }

    async fn signal(&self, id: &str, s: Signal) {
        self.s()
            .signal_backfill(&self.tenant, id, s, "key_1", at(10))
            .await
            .unwrap();
    }

    /// Claims up to `n` items of `id` and settles them: the `i`-th fails when `fail(i)`.
    async fn run(&self, id: &str, n: usize, breaker: i64, fail: impl Fn(usize) -> bool) {
        let claimed = self
            .s()
            .claim_items(id, "w1", n, at(20), at(50))
            .await
            .unwrap()
            .claimed;
        let outcomes: Vec<Outcome> = claimed
            .iter()
            .enumerate()
            .map(|(i, c)| Outcome {
                backfill_id: c.backfill_id.clone(),
                ord: c.ord,
                execution_id: c.execution_id.clone(),
                settlement: if fail(i) {
                    Settlement::Failed(format!("ticket {} is locked", c.entity_id))
                } else {
                    Settlement::Succeeded
                },
                attempt: Default::default(),
            })
            .collect();
        self.s().settle(&outcomes, breaker, at(30)).await.unwrap();
    }

    /// Every due delivery, each marked delivered as it is taken: `(endpoint, type, data)` in
    /// the order taken.
    async fn drain(&self, now: i64) -> Vec<(String, EventType, serde_json::Value)> {
        let mut out = Vec::new();
        loop {
            let due = self
                .s()
                .take_due_deliveries(at(now), at(now + 60), 100, &[])
                .await
                .unwrap();
            if due.is_empty() {
                return out;
            }
            for d in due {
                let ok = DeliveryOutcome::Delivered { status: 200 };
                self.s()
                    .finish_delivery(&d.event_id, &d.endpoint_id, &ok, at(now))
                    .await
                    .unwrap();
                out.push((d.endpoint_id, d.event_type, d.data));
            }
        }
    }
}

async fn env(b: Backend) -> Option<Env> {
    let (t, tenant, wf) = store_with_workflow(b, "Triage", 1, json!({"type": "simulated"})).await?;
    Some(Env { t, tenant, wf })
}

fn types_of(got: &[(String, EventType, serde_json::Value)], endpoint: &str) -> Vec<EventType> {
    got.iter()
        .filter(|(e, _, _)| e == endpoint)
        .map(|(_, t, _)| *t)
        .collect()
}

async fn every_change_writes_its_event_once_for_the_subscribed_endpoints(b: Backend) {
    let Some(e) = env(b).await else { return };
    let all: Vec<EventType> = EventType::subscribable().collect();
    let every = e.endpoint(&e.tenant, &all, true).await;
    let completions = e
        .endpoint(&e.tenant, &[EventType::BackfillCompleted], true)
        .await;
    let disabled = e.endpoint(&e.tenant, &all, false).await;
    let other = e.s().ensure_tenant("globex", at(0)).await.unwrap().id;
    let elsewhere = e.endpoint(&other, &all, true).await;

    let id = e.backfill("bf_life", 10, BackfillRunState::Draft).await.id;
    e.signal(&id, Signal::Start).await;
    e.signal(&id, Signal::Pause).await;
    // No change, no event.
    let _ = e
        .s()
        .signal_backfill(&e.tenant, &id, Signal::Pause, "key_1", at(10))
        .await;
    e.signal(&id, Signal::Resume).await;
    e.run(&id, 10, 1_000, |_| false).await;
    // A refused signal changes nothing and writes nothing.
    assert!(e
        .s()
        .signal_backfill(&e.tenant, &id, Signal::Resume, "key_1", at(40))
        .await
        .is_err());

    let got = e.drain(60).await;
    use EventType::*;
    assert_eq!(
        types_of(&got, &every),
        [
            BackfillStarted,
            BackfillPaused,
            BackfillResumed,
            BackfillCompleted
        ]
    );
    assert_eq!(types_of(&got, &completions), [BackfillCompleted]);
    assert!(types_of(&got, &disabled).is_empty());
    assert!(types_of(&got, &elsewhere).is_empty());
    let data = |t: EventType| {
        got.iter()
            .find(|(e, ty, _)| *e == every && *ty == t)
            .unwrap()
            .2
            .clone()
    };
    assert_eq!(data(BackfillPaused)["backfill"]["pause_reason"], "operator");
    assert_eq!(data(BackfillPaused)["backfill"]["state"], "PAUSED");
    let done = data(BackfillCompleted);
    assert_eq!(done["backfill"]["state"], "COMPLETED");
    assert_eq!(done["backfill"]["succeeded_count"], 10);
    assert_eq!(done["backfill"]["name"], "bf_life <b>");
    assert!(e.drain(120).await.is_empty(), "delivered once");

    // Created RUNNING, then cancelled; a second one FAILED by the orchestrator.
    let c = e
        .backfill("bf_cancel", 5, BackfillRunState::Running)
        .await
        .id;
    e.signal(&c, Signal::Cancel).await;
    let f = e.backfill("bf_fail", 5, BackfillRunState::Running).await.id;
    e.s()
        .fail_backfill(&f, "the PSA integration was removed", at(40))
        .await
        .unwrap();
    // A failure that comes after the cancel changes nothing and says nothing.
    e.s().fail_backfill(&c, "too late", at(50)).await.unwrap();
    let cancelled = e.s().backfill(&e.tenant, &c).await.unwrap().unwrap();
    assert_eq!(cancelled.state, BackfillRunState::Cancelled);
    assert_eq!(cancelled.error, None);
    let got = e.drain(60).await;
    assert_eq!(
        types_of(&got, &every),
        // In the order they happened: both created at 0, cancelled at 10, failed at 40.
        [
            BackfillStarted,
            BackfillStarted,
            BackfillCancelled,
            BackfillFailed
        ]
    );
    let failed = &got.last().unwrap().2;
    assert_eq!(
        failed["backfill"]["error"],
        "the PSA integration was removed"
    );
}

async fn self_pauses_the_breaker_and_a_high_failure_rate_are_sent_once(b: Backend) {
    let Some(e) = env(b).await else { return };
    let all: Vec<EventType> = EventType::subscribable().collect();
    let ep = e.endpoint(&e.tenant, &all, true).await;

    // 200 items: 60 succeed, then 40 with 30 failures (30% of the last 100 > 25%), then
    // 100 more failing ones (still high: no second alert).
    let id = e
        .backfill("bf_rate", 200, BackfillRunState::Running)
        .await
        .id;
    e.run(&id, 60, 1_000, |_| false).await;
    let got = e.drain(31).await;
    assert_eq!(types_of(&got, &ep), [EventType::BackfillStarted]);
    e.run(&id, 40, 1_000, |i| i < 30).await;
    let got = e.drain(32).await;
    assert_eq!(types_of(&got, &ep), [EventType::BackfillFailureRateHigh]);
    assert_eq!(got[0].2["failure_rate"], 0.3);
    assert_eq!(got[0].2["window"], 100);
    assert_eq!(got[0].2["backfill"]["failed_count"], 30);
    e.run(&id, 100, 1_000, |_| true).await;
    let got = e.drain(33).await;
    assert_eq!(types_of(&got, &ep), [EventType::BackfillCompleted]);

    // The circuit breaker's pause, with its reason.
    let br = e
        .backfill("bf_breaker", 50, BackfillRunState::Running)
        .await
        .id;
    e.run(&br, 10, 5, |_| true).await;
    let got = e.drain(34).await;
    let paused: Vec<_> = got
        .iter()
        .filter(|(_, t, _)| *t == EventType::BackfillPaused)
        .collect();
    assert_eq!(paused.len(), 1, "{got:?}");
    assert_eq!(paused[0].2["backfill"]["pause_reason"], "circuit_breaker");

    // A self-pause (here the monthly allowance) says its reason too.
    e.signal(&br, Signal::Resume).await;
    assert!(e
        .s()
        .pause_itself(&e.tenant, &br, PauseReason::AllowanceExhausted, at(40))
        .await
        .unwrap());
    let got = e.drain(41).await;
    assert_eq!(
        types_of(&got, &ep),
        [EventType::BackfillResumed, EventType::BackfillPaused]
    );
    assert_eq!(got[1].2["backfill"]["pause_reason"], "allowance_exhausted");
}

async fn deliveries_are_leased_retried_taken_again_after_a_crash_and_pruned(b: Backend) {
    let Some(e) = env(b).await else { return };
    let ep = e
        .endpoint(&e.tenant, &[EventType::BackfillFailed], false)
        .await;
    let event = e
        .s()
        .send_test_event(&e.tenant, &ep, at(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        e.s().send_test_event("globex", &ep, at(0)).await.unwrap(),
        None,
        "another tenant's endpoint"
    );
    let env = &e;
    let take = |now: i64| async move {
        env.s()
            .take_due_deliveries(at(now), at(now + 60), 10, &[])
            .await
            .unwrap()
    };
    // A disabled endpoint still gets its test event; the opened secret signs it.
    let first = take(0).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event_id, event);
    assert_eq!(first[0].event_type, EventType::EndpointTest);
    assert_eq!(first[0].secret, "whsec_0123456789abcdef");
    assert!(take(1).await.is_empty(), "leased");
    let failed = DeliveryOutcome::Failed {
        status: Some(503),
        error: "the endpoint answered HTTP 503".into(),
        retry_at: Some(at(10)),
    };
    e.s()
        .finish_delivery(&event, &ep, &failed, at(2))
        .await
        .unwrap();
    assert!(take(9).await.is_empty(), "not before its retry");
    assert!(
        e.s()
            .take_due_deliveries(at(10), at(70), 10, std::slice::from_ref(&ep))
            .await
            .unwrap()
            .is_empty(),
        "busy endpoints are left out"
    );
    let second = take(10).await;
    assert_eq!(second[0].attempts, 1);
    // The deliverer dies here: its lease expires and the delivery is due again.
    assert!(take(60).await.is_empty());
    let third = take(71).await;
    assert_eq!(third.len(), 1);
    e.s()
        .finish_delivery(
            &event,
            &ep,
            &DeliveryOutcome::Delivered { status: 204 },
            at(72),
        )
        .await
        .unwrap();
    assert!(take(200).await.is_empty(), "delivered");
    let history = e
        .s()
        .notification_deliveries(&e.tenant, &ep, 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0].attempts, 2,
        "the killed attempt was never recorded"
    );
    assert_eq!(history[0].delivered_at, Some(at(72)));
    assert_eq!(history[0].last_status, Some(204));
    assert_eq!(history[0].last_error, None);
    assert_eq!(history[0].next_attempt_at, None);
    assert!(e
        .s()
        .notification_deliveries("globex", &ep, 10)
        .await
        .unwrap()
        .is_empty());

    // Given up: never due again.
    let event2 = e
        .s()
        .send_test_event(&e.tenant, &ep, at(100))
        .await
        .unwrap()
        .unwrap();
    take(100).await;
    let give_up = DeliveryOutcome::Failed {
        status: None,
        error: "the endpoint could not be reached".into(),
        retry_at: None,
    };
    e.s()
        .finish_delivery(&event2, &ep, &give_up, at(101))
        .await
        .unwrap();
    assert!(take(10_000).await.is_empty());
    let history = e
        .s()
        .notification_deliveries(&e.tenant, &ep, 10)
        .await
        .unwrap();
    assert_eq!(history[0].event_id, event2);
    assert_eq!(history[0].gave_up_at, Some(at(101)));

    assert_eq!(e.s().prune_notifications(at(101)).await.unwrap(), 1);
    assert_eq!(e.s().prune_notifications(at(102)).await.unwrap(), 1);
    assert!(e
        .s()
        .notification_deliveries(&e.tenant, &ep, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn endpoints_are_kept_per_tenant_with_their_secret_sealed(b: Backend) {
    let Some(e) = env(b).await else { return };
    let ep = e
        .endpoint(&e.tenant, &[EventType::BackfillCompleted], true)
        .await;
    let got = e
        .s()
        .notification_endpoint(&e.tenant, &ep)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.event_types, [EventType::BackfillCompleted]);
    assert!(e
        .s()
        .notification_endpoint("globex", &ep)
        .await
        .unwrap()
        .is_none());
    let patch = NotificationEndpointPatch {
        event_types: Some(vec![EventType::BackfillPaused, EventType::BackfillFailed]),
        format: Some(Format::Slack),
        enabled: Some(false),
        description: Some(Some("ops".into())),
        secret: Some("whsec_another_secret_123".into()),
        ..Default::default()
    };
    let changed = e
        .s()
        .update_notification_endpoint(&e.tenant, &ep, &patch, at(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        changed.event_types,
        [EventType::BackfillPaused, EventType::BackfillFailed]
    );
    assert_eq!(changed.format, Format::Slack);
    assert!(!changed.enabled);
    assert_eq!(changed.description.as_deref(), Some("ops"));
    assert_eq!(changed.updated_at, at(5));
    assert!(e
        .s()
        .update_notification_endpoint("globex", &ep, &patch, at(5))
        .await
        .unwrap()
        .is_none());
    e.s().send_test_event(&e.tenant, &ep, at(6)).await.unwrap();
    let due = e
        .s()
        .take_due_deliveries(at(6), at(66), 10, &[])
        .await
        .unwrap();
    assert_eq!(due[0].secret, "whsec_another_secret_123");
    assert_eq!(due[0].format, Format::Slack);

    // Rotating the master key re-wraps the endpoint's secret; it still opens.
    let new = Sealer::new(MasterKey::from_bytes([7; 32]));
    let report = e.s().rotate_master_key(&new).await.unwrap();
    assert_eq!(report.notification_endpoints, 1);
    let reopened = e.t.reopen_with(Some(Arc::new(new))).await.unwrap();
    reopened
        .send_test_event(&e.tenant, &ep, at(200))
        .await
        .unwrap();
    let due = reopened
        .take_due_deliveries(at(200), at(260), 10, &[])
        .await
        .unwrap();
    assert!(due.iter().all(|d| d.secret == "whsec_another_secret_123"));

    assert!(!e
        .s()
        .delete_notification_endpoint("globex", &ep)
        .await
        .unwrap());
    assert!(e
        .s()
        .delete_notification_endpoint(&e.tenant, &ep)
        .await
        .unwrap());
    assert!(e
        .s()
        .list_notification_endpoints(&e.tenant)
        .await
        .unwrap()
        .is_empty());
    let left = reopened
        .take_due_deliveries(at(300), at(360), 10, &[])
        .await
        .unwrap();
    assert!(
        left.is_empty(),
        "a deleted endpoint's deliveries go with it"
    );
}

async fn a_failing_endpoint_holds_its_other_events_until_its_retry(b: Backend) {
    let Some(e) = env(b).await else { return };
    let down = e
        .endpoint(&e.tenant, &[EventType::BackfillFailed], true)
        .await;
    let up = e
        .endpoint(&e.tenant, &[EventType::BackfillFailed], true)
        .await;
    let mut events = Vec::new();
    for t in 0..3 {
        events.push(
            e.s()
                .send_test_event(&e.tenant, &down, at(t))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let other = e
        .s()
        .send_test_event(&e.tenant, &up, at(3))
        .await
        .unwrap()
        .unwrap();
    let env = &e;
    let take = |now: i64| async move {
        let due = env
            .s()
            .take_due_deliveries(at(now), at(now + 60), 10, &[])
            .await
            .unwrap();
        due.into_iter().map(|d| d.event_id).collect::<Vec<_>>()
    };
    assert_eq!(
        take(5).await,
        [events[0].clone(), other.clone()],
        "the oldest of each"
    );
    let failed = DeliveryOutcome::Failed {
        status: Some(503),
        error: "the endpoint answered HTTP 503".into(),
        retry_at: Some(at(20)),
    };
    e.s()
        .finish_delivery(&events[0], &down, &failed, at(6))
        .await
        .unwrap();
    let ok = DeliveryOutcome::Delivered { status: 200 };
    e.s()
        .finish_delivery(&other, &up, &ok, at(6))
        .await
        .unwrap();
    assert!(
        take(19).await.is_empty(),
        "the down endpoint's other events wait for its retry"
    );
    assert_eq!(
        take(20).await,
        [events[0].clone()],
        "then its oldest goes first"
    );
    e.s()
        .finish_delivery(&events[0], &down, &ok, at(21))
        .await
        .unwrap();
    assert_eq!(take(21).await, [events[1].clone()]);
    let history = e
        .s()
        .notification_deliveries(&e.tenant, &down, 10)
        .await
        .unwrap();
    let attempts: Vec<i64> = history.iter().map(|d| d.attempts).collect();
    assert_eq!(
        attempts,
        [0, 0, 2],
        "newest first: the held events spent no attempt (the second is taken, not finished)"
    );
}

backend_tests!(
    a_failing_endpoint_holds_its_other_events_until_its_retry,
    every_change_writes_its_event_once_for_the_subscribed_endpoints,
    self_pauses_the_breaker_and_a_high_failure_rate_are_sent_once,
    deliveries_are_leased_retried_taken_again_after_a_crash_and_pruned,
    endpoints_are_kept_per_tenant_with_their_secret_sealed,
);
