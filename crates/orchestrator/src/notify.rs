//! Notification delivery (issue 22): sends the outbox's events to the tenants' endpoints, in its
//! own task, never in the orchestrator's tick, so an endpoint that is down or black-holes its
//! requests costs its own events' latency and nobody's dispatch.
//!
//! Each round takes the due deliveries under a lease ([`neo_store::Store::take_due_deliveries`]:
//! the oldest of each endpoint that has nothing in flight here) and sends each in its own task
//! through the guarded egress client, with a timeout, at most one at a time per endpoint and
//! [`MAX_IN_FLIGHT`] in all. A 2xx answer delivers; anything else is tried again after
//! [`neo_domain::notify::backoff`] until [`neo_domain::notify::GIVE_UP_AFTER`] from the event,
//! and the endpoint's other events wait for the same instant (the store holds them), so an
//! endpoint that is down gets one request per backoff step.
//! A process killed mid-send leaves a lease that expires: the event is sent again
//! (at least once; receivers deduplicate by `X-Neo-Event-Id`).
//!
//! Two bodies: `json`, the event envelope `{id, type, created_at, data}`; `slack`, `{"text":
//! …}`, which Slack and Teams incoming webhooks take as is. Both are signed the same way
//! (`neo_domain::signature`, direction `event`, the event's id), and neither ever carries the
//! endpoint's answer back anywhere but its status code.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use neo_domain::clock::{rfc3339, Clock};
use neo_domain::notify::{self, EventType, Format};
use neo_domain::signature::Direction;
use neo_egress::Egress;
use neo_store::{DeliveryOutcome, DueDelivery, Store};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

/// Deliveries sent at once by one process.
pub const MAX_IN_FLIGHT: usize = 32;
/// How long a taken delivery is ours before another process may take it again.
pub const LEASE: Duration = Duration::from_secs(60);
/// The longest an endpoint may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Delivered and given-up deliveries are kept this long (an endpoint's history), then pruned.
pub const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// The deliverer. `poll` is how often it looks for due deliveries.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub store: Arc<dyn Store>,
    pub http: Egress,
    pub clock: Arc<dyn Clock>,
    pub poll: Duration,
}

impl Notifier {
    /// Runs rounds until `stop` turns true; deliveries in flight then finish or, if the process
    /// ends first, are taken again after their lease.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
        let done = Arc::new(Notify::new());
        let mut pruned_at: Option<Timestamp> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let now = self.clock.now();
            if pruned_at.is_none_or(|t| now.duration_since(t) > SignedDuration::from_hours(1)) {
                pruned_at = Some(now);
                let before = now - SignedDuration::try_from(KEEP).expect("fits");
                if let Err(e) = self.store.prune_notifications(before).await {
                    tracing::warn!(error = %e, "could not prune delivered notifications");
                }
            }
            if let Err(e) = self.round(&busy, &done).await {
                tracing::warn!(error = %e, "notification round failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = done.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One round: takes what is due and starts sending it; how many were started.
    pub async fn round(
        &self,
        busy: &Arc<Mutex<HashSet<String>>>,
        done: &Arc<Notify>,
    ) -> neo_store::Result<usize> {
        let taken_busy: Vec<String> = busy.lock().unwrap().iter().cloned().collect();
        let room = MAX_IN_FLIGHT.saturating_sub(taken_busy.len());
        if room == 0 {
            return Ok(0);
        }
        let now = self.clock.now();
        let lease_until = now + SignedDuration::try_from(LEASE).expect("fits");
        let due = self
            .store
            .take_due_deliveries(now, lease_until, room, &taken_busy)
            .await?;
        let n = due.len();
        for d in due {
            busy.lock().unwrap().insert(d.endpoint_id.clone());
            let this = self.clone();
            let busy = busy.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let outcome = deliver(&this.http, &*this.clock, &d).await;
                if let Err(e) = this
                    .store
                    .finish_delivery(&d.event_id, &d.endpoint_id, &outcome, this.clock.now())
                    .await
                {
                    // The lease expires and the delivery is sent again.
                    tracing::warn!(error = %e, event_id = %d.event_id, "could not record a delivery");
                }
                busy.lock().unwrap().remove(&d.endpoint_id);
                done.notify_one();
            });
        }
        Ok(n)
    }
}

/// Sends one delivery and says what became of it (the retry instant chosen by the domain's
/// backoff, or giving up).
pub async fn deliver(http: &Egress, clock: &dyn Clock, d: &DueDelivery) -> DeliveryOutcome {
    let body = serde_json::to_vec(&body(d)).expect("serializes");
    let req = crate::executor::signed_headers(
        http.post(&d.url),
        clock,
        &d.secret,
        Direction::Event,
        &d.event_id,
        &body,
    )
    .header("x-neo-event-id", &d.event_id)
    .header("x-neo-event-type", d.event_type.as_str())
    .header("user-agent", "neo-backfill-notifications")
    .body(body);
    let (status, error) = match http.send(req, TIMEOUT).await {
        Ok(resp) if resp.status().is_success() => {
            return DeliveryOutcome::Delivered {
                status: resp.status().as_u16(),
            }
        }
        Ok(resp) => {
            let code = resp.status().as_u16();
            (Some(code), format!("the endpoint answered HTTP {code}"))
        }
        Err(e) => (None, e.describe("the endpoint")),
    };
    let attempts = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
    let now = clock.now();
    let next = now + SignedDuration::try_from(notify::backoff(attempts)).expect("fits");
    let give_up_at =
        d.event_created_at + SignedDuration::try_from(notify::GIVE_UP_AFTER).expect("fits");
    DeliveryOutcome::Failed {
        status,
        error,
        retry_at: (next <= give_up_at).then_some(next),
    }
}

/// The body `d`'s endpoint receives, in its format.
pub fn body(d: &DueDelivery) -> Value {
    match d.format {
        Format::Json => json!({
            "id": d.event_id,
            "type": d.event_type.as_str(),
            "created_at": rfc3339(d.event_created_at),
            "tenant_id": d.tenant_id,
            "data": d.data,
        }),
        Format::Slack => json!({ "text": chat_text(d.event_type, &d.data) }),
    }
}

/// One line for a chat channel. Names come from the tenant's own data; Slack's and Teams'
/// markup characters are escaped so a backfill's name cannot turn into a mention or a link.
pub fn chat_text(t: EventType, data: &Value) -> String {
    let b = &data["backfill"];
    let name = b["name"]
        .as_str()
        .or(b["id"].as_str())
        .map(chat_escape)
        .unwrap_or_default();
    let n = |k: &str| b[k].as_i64().unwrap_or(0);
    let counts = format!(
        "{} succeeded, {} failed, {} skipped of {}",
        n("succeeded_count"),
        n("failed_count"),
        n("skipped_count"),
        n("total_items")
    );
    match t {
        EventType::BackfillStarted => {
            format!("Backfill \"{name}\" started ({} items).", n("total_items"))
        }
        EventType::BackfillPaused => {
            let why = b["pause_reason"]
                .as_str()
                .and_then(neo_domain::control::PauseReason::parse)
                .map(|r| format!(": {}", r.message()))
                .unwrap_or_default();
            format!("Backfill \"{name}\" paused{why} ({counts}).")
        }
        EventType::BackfillResumed => format!("Backfill \"{name}\" resumed ({counts})."),
        EventType::BackfillCompleted => format!("Backfill \"{name}\" completed: {counts}."),
        EventType::BackfillFailed => {
            let error = b["error"].as_str().map(chat_escape).unwrap_or_default();
            format!("Backfill \"{name}\" failed: {error} ({counts}).")
        }
        EventType::BackfillCancelled => format!("Backfill \"{name}\" was cancelled ({counts})."),
        EventType::BackfillFailureRateHigh => {
            let rate = data["failure_rate"].as_f64().unwrap_or(0.0) * 100.0;
            let window = data["window"].as_i64().unwrap_or(0);
            format!("Backfill \"{name}\": {rate:.0}% of its last {window} executions failed ({counts}).")
        }
        EventType::EndpointTest => {
            "A test event from neo-backfill: this endpoint receives its notifications.".into()
        }
    }
}

/// `&`, `<` and `>` escaped, as Slack asks; Teams renders them as written.
fn chat_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_text_escapes_names_and_says_why_it_paused() {
        let data = json!({"backfill": {"name": "<!channel> & co", "pause_reason": "budget_reached",
            "succeeded_count": 3, "failed_count": 1, "skipped_count": 0, "total_items": 10}});
        let t = chat_text(EventType::BackfillPaused, &data);
        assert!(
            t.starts_with("Backfill \"&lt;!channel&gt; &amp; co\" paused: "),
            "{t}"
        );
        assert!(t.contains("3 succeeded, 1 failed, 0 skipped of 10"), "{t}");
        assert!(!t.contains("<!channel>"));
    }

    #[test]
    fn every_event_type_has_a_sentence() {
        let data = json!({"backfill": {"id": "bf_1"}, "failure_rate": 0.3, "window": 100});
        for t in EventType::ALL {
            let s = chat_text(*t, &data);
            assert!(!s.is_empty() && s.ends_with('.'), "{t}: {s}");
        }
        assert!(
            chat_text(EventType::BackfillFailureRateHigh, &data).contains("30% of its last 100")
        );
    }
}
