//! Notifications in the store (issue 22): a tenant's endpoints, and the outbox their events
//! wait in until a deliverer has sent them.
//!
//! An event is written by [`emit_event`] (defined by `notification_queries!`) in the
//! transaction of the state change it reports, so a change that commits always has its event
//! and a change that rolls back never does: a crash between the change and the delivery
//! loses nothing, it only delays. The event is fanned out to one delivery row per enabled
//! endpoint that subscribes to its type in the same statement; nothing is written when none
//! does, which keeps tenants without endpoints at no cost beyond that one statement.
//!
//! Deliveries are taken under a lease (one replica sends a row at a time; a killed process's
//! lease expires and the row is due again) and finished with the outcome the deliverer
//! decided: delivered, tried again at an instant it chose, or given up. The store decides
//! nothing about retries (`neo_domain::notify` does).

use jiff::Timestamp;
use neo_domain::notify::{EventType, Format};
use serde_json::{json, Value};

use crate::Backfill;

/// An endpoint as the API shows it (its secret never leaves the store but to sign).
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationEndpoint {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub format: Format,
    pub enabled: bool,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A new endpoint; its values are the caller's to validate.
#[derive(Debug, Clone)]
pub struct NewNotificationEndpoint {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub secret: String,
    pub event_types: Vec<EventType>,
    pub format: Format,
    pub enabled: bool,
    pub description: Option<String>,
}

/// A change to an endpoint: `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct NotificationEndpointPatch {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub format: Option<Format>,
    pub enabled: Option<bool>,
    /// `Some(None)` removes the description.
    pub description: Option<Option<String>>,
}

/// A delivery a deliverer has taken (under its lease), with what it needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub event_id: String,
    pub endpoint_id: String,
    pub tenant_id: String,
    pub event_type: EventType,
    pub backfill_id: Option<String>,
    pub data: Value,
    pub event_created_at: Timestamp,
    /// Attempts made before this one.
    pub attempts: i64,
    pub url: String,
    /// Opened: for signing only, never logged.
    pub secret: String,
    pub format: Format,
}

/// What became of one attempt, as the deliverer decided.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered { status: u16 },
    /// Not delivered: try again at `retry_at`, or give up (`None`). `error` is in our own
    /// words (never the receiver's body).
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<Timestamp>,
    },
}

/// A delivery as an endpoint's history shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub event_type: EventType,
    pub backfill_id: Option<String>,
    pub created_at: Timestamp,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub gave_up_at: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

pub fn new_event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

pub fn new_endpoint_id() -> String {
    format!("ne_{}", uuid::Uuid::now_v7().simple())
}

/// Event types as stored: comma-wrapped (`,backfill.paused,backfill.completed,`), so that
/// `LIKE '%,backfill.paused,%'` matches one exactly in both dialects.
pub(crate) fn types_text(types: &[EventType]) -> String {
    let mut s = String::from(",");
    for t in types {
        s.push_str(t.as_str());
        s.push(',');
    }
    s
}

pub(crate) fn parse_types(text: &str) -> Vec<EventType> {
    text.split(',').filter_map(EventType::parse).collect()
}

/// The `LIKE` pattern that matches endpoints subscribed to `t`.
pub(crate) fn type_pattern(t: EventType) -> String {
    format!("%,{},%", t.as_str())
}

/// What every backfill event carries: the backfill as it is in the transaction of the change.
pub(crate) fn event_data(b: &Backfill, extra: Option<Value>) -> Value {
    let mut data = json!({
        "backfill": {
            "id": b.id,
            "name": b.name.as_deref().or(b.target_workflow_name.as_deref()),
            "target_workflow_id": b.target_workflow_id,
            "state": b.state.as_str(),
            "pause_reason": b.pause_reason.map(|r| r.as_str()),
            "error": b.error,
            "total_items": b.total_items,
            "pending_count": b.pending_count,
            "in_flight_count": b.in_flight_count,
            "succeeded_count": b.succeeded_count,
            "failed_count": b.failed_count,
            "skipped_count": b.skipped_count,
            "cancelled_count": b.cancelled_count,
            "parent_backfill_run_id": b.parent_backfill_run_id,
        }
    });
    if let (Some(Value::Object(extra)), Some(o)) = (extra, data.as_object_mut()) {
        o.extend(extra);
    }
    data
}

/// The statements, written once (`$N` placeholders): `notification_queries!($db)` in a backend
/// module.
macro_rules! notification_queries {
    ($db:ty) => {
        /// Writes `event_type` about `backfill_id` to the outbox, for every enabled endpoint of
        /// its tenant that subscribes to it, in `tx` (see the module doc). `extra` members
        /// join the event's data.
        pub(crate) async fn emit_event(
            tx: &mut sqlx::Transaction<'_, $db>,
            backfill_id: &str,
            event_type: neo_domain::notify::EventType,
            extra: Option<Value>,
            now_ms: i64,
        ) -> Result<()> {
            use crate::notifications::*;
            let Some(tenant_id): Option<String> =
                sqlx::query_scalar("SELECT tenant_id FROM backfills WHERE id = $1")
                    .bind(backfill_id)
                    .fetch_optional(&mut **tx)
                    .await?
            else {
                return Ok(());
            };
            let event_id = new_event_id();
            let fanned = sqlx::query(
                "INSERT INTO notification_deliveries (event_id, endpoint_id, tenant_id, next_attempt_at, created_at) \
                 SELECT $1, id, tenant_id, $2, $2 FROM notification_endpoints \
                 WHERE tenant_id = $3 AND enabled AND event_types LIKE $4",
            )
            .bind(&event_id)
            .bind(now_ms)
            .bind(&tenant_id)
            .bind(type_pattern(event_type))
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if fanned == 0 {
                return Ok(());
            }
            let b = fetch_backfill(tx, &tenant_id, backfill_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            insert_event_row(tx, &event_id, &tenant_id, event_type, Some(backfill_id), &event_data(&b, extra), now_ms).await
        }

        async fn insert_event_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            event_id: &str,
            tenant_id: &str,
            event_type: neo_domain::notify::EventType,
            backfill_id: Option<&str>,
            data: &Value,
            now_ms: i64,
        ) -> Result<()> {
            sqlx::query("INSERT INTO notification_events (id, tenant_id, type, backfill_id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(event_id)
                .bind(tenant_id)
                .bind(event_type.as_str())
                .bind(backfill_id)
                .bind(to_json_text(data)?)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// After a settlement moved these backfills' latest outcomes (`(id, window,
        /// alerted)`, read back from the updated rows): `backfill.failure_rate_high` for each
        /// whose window is now over the threshold, once per backfill (the flag is set under
        /// the row lock the settlement holds).
        pub(crate) async fn alert_failure_rates(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: &[(String, String, bool)],
            now_ms: i64,
        ) -> Result<()> {
            use neo_domain::notify;
            for (id, window, alerted) in rows {
                if *alerted || !notify::failure_rate_high(window) {
                    continue;
                }
                let set = sqlx::query(
                    "UPDATE backfills SET failure_rate_alerted = TRUE WHERE id = $1 AND NOT failure_rate_alerted",
                )
                .bind(id)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if set == 1 {
                    let rate = notify::failure_rate(window).unwrap_or_default();
                    let extra = serde_json::json!({"failure_rate": rate, "window": window.len()});
                    emit_event(tx, id, notify::EventType::BackfillFailureRateHigh, Some(extra), now_ms).await?;
                }
            }
            Ok(())
        }

        fn map_endpoint(r: &<$db as sqlx::Database>::Row) -> Result<crate::notifications::NotificationEndpoint> {
            use crate::notifications::*;
            let format = r.text("format")?;
            Ok(NotificationEndpoint {
                id: r.text("id")?,
                tenant_id: r.text("tenant_id")?,
                url: r.text("url")?,
                event_types: parse_types(&r.text("event_types")?),
                format: neo_domain::notify::Format::parse(&format)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown notification format {format:?}")))?,
                enabled: r.flag("enabled")?,
                description: r.opt_text("description")?,
                created_at: neo_domain::clock::from_ms(r.int("created_at")?),
                updated_at: neo_domain::clock::from_ms(r.int("updated_at")?),
            })
        }

        const ENDPOINT_SELECT: &str = "SELECT id, tenant_id, url, event_types, format, enabled, description, created_at, updated_at FROM notification_endpoints";

        pub(crate) async fn select_endpoint<'e, E: sqlx::Executor<'e, Database = $db>>(
            e: E,
            tenant_id: &str,
            id: &str,
        ) -> Result<Option<crate::notifications::NotificationEndpoint>> {
            let row = sqlx::query(&format!("{ENDPOINT_SELECT} WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(e)
                .await?;
            row.as_ref().map(map_endpoint).transpose()
        }

        pub(crate) async fn select_endpoints(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
        ) -> Result<Vec<crate::notifications::NotificationEndpoint>> {
            let rows = sqlx::query(&format!("{ENDPOINT_SELECT} WHERE tenant_id = $1 ORDER BY id"))
                .bind(tenant_id)
                .fetch_all(r)
                .await?;
            rows.iter().map(map_endpoint).collect()
        }

        pub(crate) async fn insert_endpoint_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            sealer: Option<&Sealer>,
            n: &crate::notifications::NewNotificationEndpoint,
            now: Timestamp,
        ) -> Result<crate::notifications::NotificationEndpoint> {
            let secret = seal_endpoint_secret(sealer, &n.tenant_id, &n.id, &n.secret)?;
            let now_ms = to_ms(now);
            sqlx::query("INSERT INTO notification_endpoints (id, tenant_id, url, secret, event_types, format, enabled, description, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)")
                .bind(&n.id)
                .bind(&n.tenant_id)
                .bind(&n.url)
                .bind(secret)
                .bind(crate::notifications::types_text(&n.event_types))
                .bind(n.format.as_str())
                .bind(n.enabled)
                .bind(&n.description)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
            select_endpoint(&mut **tx, &n.tenant_id, &n.id).await?.ok_or(StoreError::NotFound)
        }

        pub(crate) async fn patch_endpoint_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            sealer: Option<&Sealer>,
            tenant_id: &str,
            id: &str,
            p: &crate::notifications::NotificationEndpointPatch,
            now: Timestamp,
        ) -> Result<Option<crate::notifications::NotificationEndpoint>> {
            let Some(cur) = select_endpoint(&mut **tx, tenant_id, id).await? else {
                return Ok(None);
            };
            let secret = p
                .secret
                .as_deref()
                .map(|s| seal_endpoint_secret(sealer, tenant_id, id, s))
                .transpose()?;
            let types = p.event_types.as_deref().unwrap_or(&cur.event_types);
            let description = match &p.description {
                Some(d) => d.clone(),
                None => cur.description.clone(),
            };
            sqlx::query("UPDATE notification_endpoints SET url = $1, secret = COALESCE($2, secret), event_types = $3, format = $4, \
                         enabled = $5, description = $6, updated_at = $7 WHERE tenant_id = $8 AND id = $9")
                .bind(p.url.as_deref().unwrap_or(&cur.url))
                .bind(secret)
                .bind(crate::notifications::types_text(types))
                .bind(p.format.unwrap_or(cur.format).as_str())
                .bind(p.enabled.unwrap_or(cur.enabled))
                .bind(description)
                .bind(to_ms(now))
                .bind(tenant_id)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            select_endpoint(&mut **tx, tenant_id, id).await
        }

        /// Writes an `endpoint.test` event for this one endpoint (enabled or not); its id, or
        /// `None` when the endpoint does not exist.
        pub(crate) async fn insert_test_event(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            endpoint_id: &str,
            now: Timestamp,
        ) -> Result<Option<String>> {
            if select_endpoint(&mut **tx, tenant_id, endpoint_id).await?.is_none() {
                return Ok(None);
            }
            let now_ms = to_ms(now);
            let event_id = crate::notifications::new_event_id();
            let data = serde_json::json!({"endpoint_id": endpoint_id, "message": "a test event from neo-backfill"});
            insert_event_row(tx, &event_id, tenant_id, neo_domain::notify::EventType::EndpointTest, None, &data, now_ms).await?;
            sqlx::query("INSERT INTO notification_deliveries (event_id, endpoint_id, tenant_id, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $4)")
                .bind(&event_id)
                .bind(endpoint_id)
                .bind(tenant_id)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
            Ok(Some(event_id))
        }

        /// An endpoint's deliveries, newest first, at most `limit`.
        pub(crate) async fn select_deliveries(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            endpoint_id: &str,
            limit: usize,
        ) -> Result<Vec<crate::notifications::DeliveryRecord>> {
            #[allow(clippy::type_complexity)]
            let rows: Vec<(String, String, Option<String>, i64, i64, i64, Option<i64>, Option<i64>, Option<i64>, Option<String>)> = sqlx::query_as(
                "SELECT d.event_id, e.type, e.backfill_id, d.created_at, d.attempts, d.next_attempt_at, d.delivered_at, d.gave_up_at, \
                 d.last_status, d.last_error FROM notification_deliveries d JOIN notification_events e ON e.id = d.event_id \
                 WHERE d.tenant_id = $1 AND d.endpoint_id = $2 ORDER BY d.created_at DESC, d.event_id DESC LIMIT $3",
            )
            .bind(tenant_id)
            .bind(endpoint_id)
            .bind(limit as i64)
            .fetch_all(r)
            .await?;
            rows.into_iter()
                .map(|(event_id, t, backfill_id, created, attempts, next, delivered, gave_up, status, error)| {
                    let pending = delivered.is_none() && gave_up.is_none();
                    Ok(crate::notifications::DeliveryRecord {
                        event_type: neo_domain::notify::EventType::parse(&t)
                            .ok_or_else(|| StoreError::Corrupt(format!("unknown event type {t:?}")))?,
                        event_id,
                        backfill_id,
                        created_at: neo_domain::clock::from_ms(created),
                        attempts,
                        next_attempt_at: pending.then(|| neo_domain::clock::from_ms(next)),
                        delivered_at: delivered.map(neo_domain::clock::from_ms),
                        gave_up_at: gave_up.map(neo_domain::clock::from_ms),
                        last_status: status.and_then(|s| u16::try_from(s).ok()),
                        last_error: error,
                    })
                })
                .collect()
        }

        /// Takes up to `limit` due deliveries — the oldest of each endpoint, none of `busy` —
        /// under a lease until `lease_until`.
        pub(crate) async fn take_due_deliveries(
            tx: &mut sqlx::Transaction<'_, $db>,
            sealer: Option<&Sealer>,
            now: Timestamp,
            lease_until: Timestamp,
            limit: usize,
            busy: &[String],
        ) -> Result<Vec<crate::notifications::DueDelivery>> {
            let now_ms = to_ms(now);
            #[allow(clippy::type_complexity)]
            let rows: Vec<(String, String, String, i64, String, Option<String>, String, i64, String, String, String)> = sqlx::query_as(
                "SELECT t.event_id, t.endpoint_id, t.tenant_id, t.attempts, e.type, e.backfill_id, e.data, e.created_at, n.url, n.secret, n.format \
                 FROM (SELECT d.event_id, d.endpoint_id, d.tenant_id, d.attempts, \
                              ROW_NUMBER() OVER (PARTITION BY d.endpoint_id ORDER BY d.created_at, d.event_id) AS rn \
                       FROM notification_deliveries d \
                       WHERE d.delivered_at IS NULL AND d.gave_up_at IS NULL AND d.next_attempt_at <= $1 \
                         AND (d.lease_until IS NULL OR d.lease_until <= $1)) AS t \
                 JOIN notification_events e ON e.id = t.event_id \
                 JOIN notification_endpoints n ON n.id = t.endpoint_id \
                 WHERE t.rn = 1 AND (n.enabled OR e.type = $2) ORDER BY e.created_at LIMIT $3",
            )
            .bind(now_ms)
            .bind(neo_domain::notify::EventType::EndpointTest.as_str())
            .bind((limit + busy.len()) as i64)
            .fetch_all(&mut **tx)
            .await?;
            let mut out = Vec::new();
            for (event_id, endpoint_id, tenant_id, attempts, t, backfill_id, data, created, url, secret, format) in rows {
                if out.len() >= limit || busy.contains(&endpoint_id) {
                    continue;
                }
                let taken = sqlx::query(
                    "UPDATE notification_deliveries SET lease_until = $1 WHERE event_id = $2 AND endpoint_id = $3 \
                     AND delivered_at IS NULL AND gave_up_at IS NULL AND (lease_until IS NULL OR lease_until <= $4)",
                )
                .bind(to_ms(lease_until))
                .bind(&event_id)
                .bind(&endpoint_id)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if taken == 0 {
                    continue; // another replica took it meanwhile
                }
                out.push(crate::notifications::DueDelivery {
                    event_type: neo_domain::notify::EventType::parse(&t)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown event type {t:?}")))?,
                    format: neo_domain::notify::Format::parse(&format)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown notification format {format:?}")))?,
                    secret: open_endpoint_secret(sealer, &tenant_id, &endpoint_id, &secret)?,
                    data: parse_json(&data)?,
                    event_created_at: neo_domain::clock::from_ms(created),
                    event_id,
                    endpoint_id,
                    tenant_id,
                    attempts,
                    backfill_id,
                    url,
                });
            }
            Ok(out)
        }

        /// Records what became of a taken delivery. A failure to be retried holds the
        /// endpoint's other undelivered events until the same instant: an endpoint that is down
        /// is tried once per backoff step, not once per event it has waiting.
        pub(crate) async fn finish_delivery_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            event_id: &str,
            endpoint_id: &str,
            outcome: &crate::notifications::DeliveryOutcome,
            now: Timestamp,
        ) -> Result<()> {
            use crate::notifications::DeliveryOutcome;
            let now_ms = to_ms(now);
            let (status, error, delivered, retry_at, gave_up) = match outcome {
                DeliveryOutcome::Delivered { status } => (Some(*status), None, Some(now_ms), None, None),
                DeliveryOutcome::Failed { status, error, retry_at } => (
                    *status,
                    Some(error.as_str()),
                    None,
                    retry_at.map(to_ms),
                    retry_at.is_none().then_some(now_ms),
                ),
            };
            sqlx::query(
                "UPDATE notification_deliveries SET attempts = attempts + 1, lease_until = NULL, last_status = $1, last_error = $2, \
                 delivered_at = $3, next_attempt_at = COALESCE($4, next_attempt_at), gave_up_at = $5 \
                 WHERE event_id = $6 AND endpoint_id = $7 AND delivered_at IS NULL AND gave_up_at IS NULL",
            )
            .bind(status.map(i64::from))
            .bind(error)
            .bind(delivered)
            .bind(retry_at)
            .bind(gave_up)
            .bind(event_id)
            .bind(endpoint_id)
            .execute(&mut **tx)
            .await?;
            if let Some(retry_at) = retry_at {
                sqlx::query(
                    "UPDATE notification_deliveries SET next_attempt_at = $1 WHERE endpoint_id = $2 \
                     AND delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at < $1",
                )
                .bind(retry_at)
                .bind(endpoint_id)
                .execute(&mut **tx)
                .await?;
            }
            Ok(())
        }

        /// Deletes deliveries that ended before `before`, and the events left without any.
        pub(crate) async fn prune_notification_rows(
            tx: &mut sqlx::Transaction<'_, $db>,
            before: Timestamp,
        ) -> Result<u64> {
            let before = to_ms(before);
            let n = sqlx::query("DELETE FROM notification_deliveries WHERE delivered_at < $1 OR gave_up_at < $1")
                .bind(before)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            sqlx::query(
                "DELETE FROM notification_events WHERE created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.event_id = notification_events.id)",
            )
            .bind(before)
            .execute(&mut **tx)
            .await?;
            Ok(n)
        }
    };
}
pub(crate) use notification_queries;
