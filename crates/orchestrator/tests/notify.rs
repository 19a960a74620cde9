//! The notifier against a real HTTP receiver, on both backends, with an injected clock: a
//! receiver that is down for five minutes gets the event once it is back (the attempts in
//! between backed off as the domain says), signed so that it verifies; a Slack-format
//! endpoint gets `{"text": …}`; a black-holed endpoint does not hold up another tenant's.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use neo_domain::clock::{Clock, ManualClock};
use neo_domain::notify::{EventType, Format};
use neo_domain::signature::{self, Direction, Signed};
use neo_egress::{Egress, EgressPolicy};
use neo_orchestrator::notify::Notifier;
use neo_store::testing::{backend_tests, fresh_store, Backend};
use neo_store::*;
use serde_json::Value;
use tokio::sync::Notify;

const SECRET: &str = "whsec_0123456789abcdef";

#[derive(Default)]
struct Receiver {
    up: AtomicBool,
    /// Requests that reached it while it was down.
    refused: AtomicUsize,
    /// `(event id header, body)` of every request answered 200.
    got: Mutex<Vec<(String, Value)>>,
    /// Answers never (a black hole) when true.
    hang: AtomicBool,
}

async fn hook(
    State((r, clock)): State<(Arc<Receiver>, ManualClock)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if r.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if !r.up.load(Ordering::SeqCst) {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = |n: &str| headers[n].to_str().unwrap().to_owned();
    let id = h("x-neo-event-id");
    let ts: i64 = h("x-neo-timestamp").parse().unwrap();
    let signed = Signed {
        timestamp: ts,
        direction: Direction::Event,
        execution_id: &id,
        body: &body,
    };
    let now = clock.now().as_second();
    assert_eq!(
        signature::verify(SECRET.as_bytes(), signed, &h("x-neo-signature"), now),
        Ok(()),
        "the signature verifies"
    );
    r.got
        .lock()
        .unwrap()
        .push((id, serde_json::from_slice(&body).unwrap()));
    StatusCode::OK
}

async fn receiver(clock: ManualClock) -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state((r.clone(), clock));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (r, url)
}

fn t0() -> Timestamp {
    "2026-03-02T10:00:00Z".parse().unwrap()
}

async fn endpoint(s: &Arc<dyn Store>, tenant: &str, url: &str, format: Format) -> String {
    s.insert_notification_endpoint(
        NewNotificationEndpoint {
            id: neo_store::notifications::new_endpoint_id(),
            tenant_id: tenant.into(),
            url: url.into(),
            secret: SECRET.into(),
            event_types: EventType::subscribable().collect(),
            format,
            enabled: true,
            description: None,
        },
        t0(),
    )
    .await
    .unwrap()
    .id
}

/// Runs rounds at the clock's instant until nothing is in flight.
async fn round(n: &Notifier, busy: &Arc<Mutex<HashSet<String>>>, done: &Arc<Notify>) -> usize {
    let started = n.round(busy, done).await.unwrap();
    while !busy.lock().unwrap().is_empty() {
        let _ = tokio::time::timeout(Duration::from_millis(50), done.notified()).await;
    }
    started
}

async fn a_receiver_down_for_five_minutes_gets_the_event_when_it_is_back(b: Backend) {
    let Some(t) = fresh_store(b).await else {
        return;
    };
    let s = t.store.clone();
    let clock = ManualClock::new(t0());
    let (r, url) = receiver(clock.clone()).await;
    let tenant = s.ensure_tenant("acme", t0()).await.unwrap().id;
    let ep = endpoint(&s, &tenant, &url, Format::Json).await;
    let event = s
        .send_test_event(&tenant, &ep, t0())
        .await
        .unwrap()
        .unwrap();
    let n = Notifier {
        store: s.clone(),
        http: Egress::new(EgressPolicy::new(true)),
        clock: Arc::new(clock.clone()),
        poll: Duration::from_millis(10),
    };
    let busy = Arc::default();
    let done = Arc::new(Notify::new());

    // Down for five minutes: every attempt is refused, each one later than the last.
    let mut attempts_at = Vec::new();
    for sec in 0..300 {
        clock.set(t0() + SignedDuration::from_secs(sec));
        if round(&n, &busy, &done).await > 0 {
            attempts_at.push(sec);
        }
    }
    assert_eq!(
        attempts_at,
        [0, 2, 6, 14, 30, 62, 122, 182, 242],
        "backed off 2, 4, 8, 16, 32 s, then every minute"
    );
    assert_eq!(r.refused.load(Ordering::SeqCst), attempts_at.len());
    let history = s.notification_deliveries(&tenant, &ep, 10).await.unwrap();
    assert_eq!(history[0].attempts, 9);
    assert_eq!(history[0].last_status, Some(503));
    assert_eq!(
        history[0].last_error.as_deref(),
        Some("the endpoint answered HTTP 503")
    );
    assert_eq!(
        history[0].next_attempt_at,
        Some(t0() + SignedDuration::from_secs(302))
    );

    // Back at 5 min: delivered at the next attempt, once.
    r.up.store(true, Ordering::SeqCst);
    for sec in 300..400 {
        clock.set(t0() + SignedDuration::from_secs(sec));
        round(&n, &busy, &done).await;
    }
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "delivered once");
    assert_eq!(got[0].0, event);
    assert_eq!(got[0].1["id"], event.as_str());
    assert_eq!(got[0].1["type"], "endpoint.test");
    assert_eq!(got[0].1["tenant_id"], tenant.as_str());
    assert_eq!(got[0].1["created_at"], "2026-03-02T10:00:00Z");
    let history = s.notification_deliveries(&tenant, &ep, 10).await.unwrap();
    assert_eq!(
        history[0].delivered_at,
        Some(t0() + SignedDuration::from_secs(302))
    );
    assert_eq!(history[0].attempts, 10);
}

async fn slack_bodies_and_a_black_hole_that_holds_up_nobody_else(b: Backend) {
    let Some(t) = fresh_store(b).await else {
        return;
    };
    let s = t.store.clone();
    let clock = ManualClock::new(t0());
    let (slack, slack_url) = receiver(clock.clone()).await;
    slack.up.store(true, Ordering::SeqCst);
    let (hole, hole_url) = receiver(clock.clone()).await;
    hole.hang.store(true, Ordering::SeqCst);
    let acme = s.ensure_tenant("acme", t0()).await.unwrap().id;
    let globex = s.ensure_tenant("globex", t0()).await.unwrap().id;
    let chat = endpoint(&s, &acme, &slack_url, Format::Slack).await;
    let black = endpoint(&s, &globex, &hole_url, Format::Json).await;
    s.send_test_event(&globex, &black, t0()).await.unwrap();
    let n = Notifier {
        store: s.clone(),
        http: Egress::new(EgressPolicy::new(true)),
        clock: Arc::new(clock.clone()),
        poll: Duration::from_millis(10),
    };
    let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
    let done = Arc::new(Notify::new());
    // The black hole's request is sent and hangs (until its timeout).
    assert_eq!(n.round(&busy, &done).await.unwrap(), 1);
    s.send_test_event(&acme, &chat, t0()).await.unwrap();
    assert_eq!(
        n.round(&busy, &done).await.unwrap(),
        1,
        "the other endpoint is taken"
    );
    tokio::time::timeout(Duration::from_secs(5), async {
        while slack.got.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("delivered while the other tenant's endpoint hangs");
    let got = slack.got.lock().unwrap().clone();
    assert_eq!(
        got[0].1,
        serde_json::json!({"text": "A test event from neo-backfill: this endpoint receives its notifications."})
    );
    assert!(busy.lock().unwrap().contains(&black), "still hanging");
}

backend_tests!(
    a_receiver_down_for_five_minutes_gets_the_event_when_it_is_back,
    slack_bodies_and_a_black_hole_that_holds_up_nobody_else,
);
