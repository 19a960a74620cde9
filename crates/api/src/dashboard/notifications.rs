//! The Notifications page: the tenant's notification endpoints (where its backfill events are
//! sent), a form to add one, and each endpoint's page with its latest deliveries.
//!
//! Its own module because it is its own page with its own actions, and because it must not
//! grow rules of its own: a new endpoint goes through the API's [`api::checked_new`] and
//! [`api::create_endpoint`] (the URL's egress rule, the secret's length, the event types, the
//! per-tenant limit), enabling and disabling through [`api::checked_patch`], and a refusal is
//! shown as the API's message. Sending a test event writes one to the outbox like the API
//! does; nothing here delivers anything. The secret is write-only: it is read from the form,
//! handed to the store (which seals it) and never written into a page, not even back into the
//! form after a refusal. URLs and descriptions are the tenant's text: the templates escape
//! them like any other value.

#[allow(unused_imports)]
use super::*;

use neo_domain::notify::{EventType, Format};
use neo_store::{DeliveryRecord, NotificationEndpoint};

use super::times;
use crate::routes::notifications::{
    self as api, CreateNotificationEndpointRequest, UpdateNotificationEndpointRequest, HISTORY,
};

/// The zone of the page's times: endpoints belong to no backfill, so UTC (the page-wide
/// switch shows them in the viewer's zone).
const ZONE: &str = "UTC";

/// One endpoint, as shown.
pub(super) struct EndpointRow {
    pub(super) id: String,
    pub(super) url: String,
    /// "backfill.started, backfill.paused" (or "every backfill event").
    pub(super) events: String,
    pub(super) format: &'static str,
    pub(super) enabled: bool,
    pub(super) description: Option<String>,
    pub(super) created: times::When,
    pub(super) updated: times::When,
}

impl From<NotificationEndpoint> for EndpointRow {
    fn from(e: NotificationEndpoint) -> Self {
        let events = if EventType::subscribable().all(|t| e.event_types.contains(&t)) {
            "every backfill event".to_owned()
        } else {
            let names: Vec<&str> = e.event_types.iter().map(|t| t.as_str()).collect();
            names.join(", ")
        };
        Self {
            events,
            format: e.format.as_str(),
            enabled: e.enabled,
            created: times::when(e.created_at, ZONE),
            updated: times::when(e.updated_at, ZONE),
            id: e.id,
            url: e.url,
            description: e.description,
        }
    }
}

/// One event type's checkbox.
pub(super) struct Choice {
    pub(super) value: &'static str,
    pub(super) checked: bool,
}

/// What the create form holds: empty (every event checked) or what was submitted, never the
/// secret.
pub(super) struct CreateForm {
    pub(super) url: String,
    pub(super) choices: Vec<Choice>,
    pub(super) format: String,
    pub(super) description: String,
}

impl CreateForm {
    /// The form as submitted; `None`: a fresh one, every event checked.
    fn of(form: Option<&FormData>) -> Self {
        let text = |name| {
            form.and_then(|f| f.get(name))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let chosen = form.map(|f| f.all("event_types"));
        Self {
            url: text("url"),
            choices: EventType::subscribable()
                .map(|t| Choice {
                    value: t.as_str(),
                    checked: chosen.as_ref().is_none_or(|c| c.contains(&t.as_str())),
                })
                .collect(),
            format: text("format"),
            description: form
                .and_then(|f| f.get("description"))
                .unwrap_or("")
                .to_owned(),
        }
    }
}

#[derive(Template)]
#[template(path = "notifications.html")]
pub(super) struct NotificationsTpl {
    pub(super) layout: Layout,
    pub(super) endpoints: Vec<EndpointRow>,
    pub(super) flash: Option<&'static str>,
    /// Why the last create was refused (the API's message).
    pub(super) error: Option<String>,
    pub(super) form: CreateForm,
    pub(super) max: usize,
}

/// One delivery, as shown.
pub(super) struct DeliveryRow {
    pub(super) event_id: String,
    pub(super) event_type: &'static str,
    pub(super) backfill_id: Option<String>,
    pub(super) created: times::When,
    pub(super) attempts: i64,
    /// `delivered`, `pending` or `gave up`, with when.
    pub(super) state: &'static str,
    pub(super) badge: &'static str,
    pub(super) at: Option<times::When>,
    pub(super) last_status: Option<u16>,
    pub(super) last_error: Option<String>,
}

impl From<DeliveryRecord> for DeliveryRow {
    fn from(d: DeliveryRecord) -> Self {
        let (state, badge, at) = match (d.delivered_at, d.gave_up_at) {
            (Some(t), _) => ("delivered", "completed", Some(t)),
            (None, Some(t)) => ("gave up", "failed", Some(t)),
            (None, None) => ("pending", "waiting", d.next_attempt_at),
        };
        Self {
            event_id: d.event_id,
            event_type: d.event_type.as_str(),
            backfill_id: d.backfill_id,
            created: times::when(d.created_at, ZONE),
            attempts: d.attempts,
            state,
            badge,
            at: at.map(|t| times::when(t, ZONE)),
            last_status: d.last_status,
            last_error: d.last_error,
        }
    }
}

#[derive(Template)]
#[template(path = "notification_endpoint.html")]
pub(super) struct EndpointTpl {
    pub(super) layout: Layout,
    pub(super) e: EndpointRow,
    pub(super) flash: Option<&'static str>,
    pub(super) deliveries: Vec<DeliveryRow>,
    pub(super) history: usize,
}

#[derive(Deserialize)]
pub(super) struct FlashQuery {
    flash: Option<String>,
}

/// The words of a `?flash=` (only these; the query's own text is never shown).
fn flash_text(flash: Option<&str>) -> Option<&'static str> {
    Some(match flash? {
        "created" => "Endpoint added. Send it a test event to check that it receives events.",
        "deleted" => "Endpoint deleted, with its undelivered events.",
        "enabled" => "Enabled: new events reach it again, and its held ones are sent.",
        "disabled" => {
            "Disabled: it gets no new events; undelivered ones are held until it is enabled again."
        }
        "test" => "Test event written; its delivery is listed below.",
        _ => return None,
    })
}

async fn list_page(
    app: &AppState,
    u: &DashUser,
    status: StatusCode,
    flash: Option<&'static str>,
    error: Option<String>,
    form: CreateForm,
) -> Response {
    let endpoints = match app
        .store
        .list_notification_endpoints(u.principal.tenant_id())
        .await
    {
        Ok(e) => e,
        Err(e) => return store_error(e),
    };
    page(
        status,
        &NotificationsTpl {
            layout: Layout::new(u, "Notifications", "notifications"),
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            flash,
            error,
            form,
            max: neo_domain::notify::MAX_ENDPOINTS,
        },
    )
}

/// `GET /notifications`.
pub(super) async fn notifications_page(
    State(app): State<AppState>,
    u: DashUser,
    Query(q): Query<FlashQuery>,
) -> Response {
    let flash = flash_text(q.flash.as_deref());
    list_page(&app, &u, StatusCode::OK, flash, None, CreateForm::of(None)).await
}

/// `POST /notifications`: the API's checks and create; a refusal re-shows the form with the
/// API's message and what was typed, but not the secret.
pub(super) async fn create_notification(
    State(app): State<AppState>,
    u: DashUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    let kept = CreateForm::of(Some(&form));
    let format = match kept.format.as_str() {
        "" => Ok(None),
        f => Format::parse(f)
            .map(Some)
            .ok_or_else(|| ApiError::field("format", "choose json or slack")),
    };
    let checked = format.and_then(|format| {
        let req = CreateNotificationEndpointRequest {
            url: kept.url.clone(),
            secret: form.get("secret").unwrap_or("").to_owned(),
            event_types: Some(
                form.all("event_types")
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            ),
            format,
            enabled: None,
            description: Some(kept.description.clone()),
        };
        api::checked_new(&app, u.principal.tenant_id(), req)
    });
    let created = match checked {
        Ok(new) => api::create_endpoint(&app, new).await,
        Err(e) => Err(e),
    };
    let e = match created {
        Ok(_) => return redirect(&headers, "/notifications?flash=created"),
        Err(e) => e,
    };
    let status = if e.status.is_server_error() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        e.status
    };
    list_page(&app, &u, status, None, Some(api_error_text(&e)), kept).await
}

fn not_found() -> Response {
    api_error(&ApiError::not_found("notification endpoint"))
}

/// `GET /notifications/{id}`: the endpoint and its latest deliveries.
pub(super) async fn endpoint_page(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
    Query(q): Query<FlashQuery>,
) -> Response {
    let tenant = u.principal.tenant_id();
    let e = match app.store.notification_endpoint(tenant, &id).await {
        Ok(Some(e)) => e,
        Ok(None) => return not_found(),
        Err(e) => return store_error(e),
    };
    let deliveries = match app
        .store
        .notification_deliveries(tenant, &id, HISTORY)
        .await
    {
        Ok(d) => d,
        Err(e) => return store_error(e),
    };
    page(
        StatusCode::OK,
        &EndpointTpl {
            layout: Layout::new(&u, "Notification endpoint", "notifications"),
            flash: flash_text(q.flash.as_deref()),
            e: e.into(),
            deliveries: deliveries.into_iter().map(Into::into).collect(),
            history: HISTORY,
        },
    )
}

/// `POST /notifications/{id}/{test|toggle|delete}`. Another tenant's endpoint is not found,
/// as in the API.
pub(super) async fn endpoint_action(
    State(app): State<AppState>,
    u: DashUser,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    let tenant = u.principal.tenant_id();
    let now = app.clock.now();
    match action.as_str() {
        "test" => match app.store.send_test_event(tenant, &id, now).await {
            Ok(Some(_)) => redirect(&headers, &format!("/notifications/{id}?flash=test")),
            Ok(None) => not_found(),
            Err(e) => store_error(e),
        },
        "delete" => match app.store.delete_notification_endpoint(tenant, &id).await {
            Ok(true) => redirect(&headers, "/notifications?flash=deleted"),
            Ok(false) => not_found(),
            Err(e) => store_error(e),
        },
        "toggle" => {
            // The state the button asked for (so a double submit does not flip it back);
            // without one, the opposite of the stored state.
            let enabled = match form.get("enabled") {
                Some("true") => true,
                Some("false") => false,
                _ => match app.store.notification_endpoint(tenant, &id).await {
                    Ok(Some(e)) => !e.enabled,
                    Ok(None) => return not_found(),
                    Err(e) => return store_error(e),
                },
            };
            let patch = match api::checked_patch(
                &app,
                UpdateNotificationEndpointRequest {
                    enabled: Some(enabled),
                    ..Default::default()
                },
            ) {
                Ok(p) => p,
                Err(e) => return api_error(&e),
            };
            let flash = if enabled { "enabled" } else { "disabled" };
            let back = match form.get("next") {
                Some("endpoint") => format!("/notifications/{id}?flash={flash}"),
                _ => format!("/notifications?flash={flash}"),
            };
            match app
                .store
                .update_notification_endpoint(tenant, &id, &patch, now)
                .await
            {
                Ok(Some(_)) => redirect(&headers, &back),
                Ok(None) => not_found(),
                Err(e) => store_error(e),
            }
        }
        _ => error_response(StatusCode::NOT_FOUND, "No such action."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_keeps_what_was_typed_but_never_the_secret() {
        let body = "url=https%3A%2F%2Fh.example.com&secret=s3cret_s3cret_s3cret&event_types=backfill.failed&format=slack&description=Ops";
        let f = CreateForm::of(Some(&FormData::parse(body.as_bytes())));
        assert_eq!(f.url, "https://h.example.com");
        assert_eq!(f.format, "slack");
        let checked: Vec<&str> = f
            .choices
            .iter()
            .filter(|c| c.checked)
            .map(|c| c.value)
            .collect();
        assert_eq!(checked, ["backfill.failed"]);
        assert!(CreateForm::of(None).choices.iter().all(|c| c.checked));
        assert_eq!(flash_text(Some("<script>")), None);
    }
}
