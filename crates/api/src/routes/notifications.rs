//! `/public-api/notification-endpoints` [ours]: where a tenant's backfill events are sent.
//! Secrets are write-only and sealed at rest; events are written by the state changes
//! themselves (the store's outbox) and delivered by the orchestrator's notifier, so nothing
//! here sends anything — "send a test event" writes one to the outbox like any other.
//!
//! The checks are the domain's (`neo_domain::notify`, `executor::check_secret`,
//! `backfill::check_label`, the egress rule for URLs) and shared with the dashboard's
//! notifications page through [`checked_new`] and [`checked_patch`].

use axum::extract::State;
use axum::http::StatusCode;
use neo_domain::clock::rfc3339;
use neo_domain::notify::{self, EventType, Format};
use neo_store::{NewNotificationEndpoint, NotificationEndpoint, NotificationEndpointPatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::envelope::{DataEnvelope, Reply};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::{AppState, Auth};

/// Deliveries an endpoint's history shows.
pub const HISTORY: usize = 50;

/// [ours] A notification endpoint. Its secret is write-only.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "ne_0193a1b2c3d4e5f6a7b8c9d0e1f2a3b4", "url": "https://hooks.example.com/neo",
    "event_types": ["backfill.completed", "backfill.failed"], "format": "json", "enabled": true,
    "description": "Ops channel", "created_at": "2026-12-01T08:00:00Z", "updated_at": "2026-12-01T08:00:00Z"}))]
pub struct PublicNotificationEndpoint {
    pub id: String,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub format: Format,
    pub enabled: bool,
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<NotificationEndpoint> for PublicNotificationEndpoint {
    fn from(e: NotificationEndpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            event_types: e.event_types,
            format: e.format,
            enabled: e.enabled,
            description: e.description,
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// [ours] A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/neo", "secret": "whsec_0123456789abcdef",
    "event_types": ["backfill.paused", "backfill.completed", "backfill.failed"]}))]
pub struct CreateNotificationEndpointRequest {
    /// Where events are POSTed (https; the same egress rules as webhooks).
    pub url: String,
    /// Signs every event (`X-Neo-Signature`); 16 to 512 characters. Write-only.
    pub secret: String,
    /// Which events (default: every type but `endpoint.test`, which is always sent when asked).
    pub event_types: Option<Vec<String>>,
    /// `json` (default) or `slack` (`{"text": …}`, for Slack and Teams incoming webhooks).
    pub format: Option<Format>,
    /// Default true.
    pub enabled: Option<bool>,
    #[schema(max_length = 200)]
    pub description: Option<String>,
}

/// [ours] A change to an endpoint: omitted members keep their value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNotificationEndpointRequest {
    pub url: Option<String>,
    /// A new secret (write-only).
    pub secret: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub format: Option<Format>,
    pub enabled: Option<bool>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "crate::models::present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub description: Option<Option<String>>,
}

/// [ours] The event a test wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestEventResponse {
    /// Its `X-Neo-Event-Id`; see `GET …/deliveries` for whether it arrived.
    pub event_id: String,
}

/// [ours] One event sent (or being sent) to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicDelivery {
    pub event_id: String,
    pub event_type: EventType,
    pub backfill_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub attempts: i64,
    /// While it is neither delivered nor given up.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    /// Given up 72 h after the event.
    #[schema(format = DateTime)]
    pub gave_up_at: Option<String>,
    /// The endpoint's last HTTP status.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, in our words (never the endpoint's body).
    pub last_error: Option<String>,
}

impl From<neo_store::DeliveryRecord> for PublicDelivery {
    fn from(d: neo_store::DeliveryRecord) -> Self {
        Self {
            event_id: d.event_id,
            event_type: d.event_type,
            backfill_id: d.backfill_id,
            created_at: rfc3339(d.created_at),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            delivered_at: d.delivered_at.map(rfc3339),
            gave_up_at: d.gave_up_at.map(rfc3339),
            last_status: d.last_status,
            last_error: d.last_error,
        }
    }
}

fn check_description(d: &str) -> Result<Option<String>, ApiError> {
    neo_domain::backfill::check_label("description", d).map_err(ApiError::validation)
}

/// A create request checked (the API's and the dashboard's one rule), for `tenant_id`.
pub fn checked_new(
    app: &AppState,
    tenant_id: &str,
    r: CreateNotificationEndpointRequest,
) -> Result<NewNotificationEndpoint, ApiError> {
    super::check_target_url("url", &r.url, app.egress())?;
    neo_domain::executor::check_secret("secret", &r.secret).map_err(ApiError::validation)?;
    let event_types =
        notify::check_event_types(r.event_types.as_deref()).map_err(ApiError::validation)?;
    let description = r
        .description
        .as_deref()
        .map(check_description)
        .transpose()?
        .flatten();
    Ok(NewNotificationEndpoint {
        id: neo_store::notifications::new_endpoint_id(),
        tenant_id: tenant_id.to_owned(),
        url: r.url,
        secret: r.secret,
        event_types,
        format: r.format.unwrap_or(Format::Json),
        enabled: r.enabled.unwrap_or(true),
        description,
    })
}

/// An update request checked.
pub fn checked_patch(
    app: &AppState,
    r: UpdateNotificationEndpointRequest,
) -> Result<NotificationEndpointPatch, ApiError> {
    if let Some(url) = &r.url {
        super::check_target_url("url", url, app.egress())?;
    }
    if let Some(s) = &r.secret {
        neo_domain::executor::check_secret("secret", s).map_err(ApiError::validation)?;
    }
    let event_types = match &r.event_types {
        Some(t) => Some(notify::check_event_types(Some(t)).map_err(ApiError::validation)?),
        None => None,
    };
    let description = match r.description {
        Some(Some(d)) => Some(check_description(&d)?),
        Some(None) => Some(None),
        None => None,
    };
    Ok(NotificationEndpointPatch {
        url: r.url,
        secret: r.secret,
        event_types,
        format: r.format,
        enabled: r.enabled,
        description,
    })
}

/// Adds an endpoint unless the tenant has [`notify::MAX_ENDPOINTS`] already.
pub async fn create_endpoint(
    app: &AppState,
    e: NewNotificationEndpoint,
) -> Result<NotificationEndpoint, ApiError> {
    if app
        .store
        .list_notification_endpoints(&e.tenant_id)
        .await?
        .len()
        >= notify::MAX_ENDPOINTS
    {
        return Err(ApiError::conflict(
            "endpoint_limit",
            format!(
                "a tenant has at most {} notification endpoints; delete one first",
                notify::MAX_ENDPOINTS
            ),
        ));
    }
    Ok(app
        .store
        .insert_notification_endpoint(e, app.clock.now())
        .await?)
}

/// List the tenant's notification endpoints.
///
/// [ours] Each endpoint's URL, event types, format and whether it is enabled; never its secret.
#[utoipa::path(get, path = "/public-api/notification-endpoints", tag = "Notifications",
    operation_id = "listNotificationEndpoints",
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicNotificationEndpoint>>)))]
pub async fn list(
    State(app): State<AppState>,
    Auth(p): Auth,
) -> Result<Reply<Vec<PublicNotificationEndpoint>>, ApiError> {
    let all = app.store.list_notification_endpoints(p.tenant_id()).await?;
    Ok(Reply::new(all.into_iter().map(Into::into).collect()).page(false, None))
}

/// Add a notification endpoint.
///
/// [ours] The endpoint receives signed JSON events (`backfill.started`, `backfill.paused` with
/// its `pause_reason`, `backfill.resumed`, `backfill.completed`, `backfill.failed`,
/// `backfill.cancelled`, `backfill.failure_rate_high`), each written in the transaction of the
/// change it reports and delivered at least once (deduplicate by `X-Neo-Event-Id`). 409
/// `endpoint_limit` beyond 20 endpoints.
#[utoipa::path(post, path = "/public-api/notification-endpoints", tag = "Notifications",
    operation_id = "createNotificationEndpoint",
    request_body = CreateNotificationEndpointRequest,
    responses((status = 201, description = "Created.", body = DataEnvelope<PublicNotificationEndpoint>)))]
pub async fn create(
    State(app): State<AppState>,
    Auth(p): Auth,
    body: ApiJson<CreateNotificationEndpointRequest>,
) -> Result<Reply<PublicNotificationEndpoint>, ApiError> {
    let new = checked_new(&app, p.tenant_id(), body.value)?;
    Ok(Reply::created(create_endpoint(&app, new).await?.into()))
}

async fn own(app: &AppState, tenant_id: &str, id: &str) -> Result<NotificationEndpoint, ApiError> {
    app.store
        .notification_endpoint(tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification endpoint"))
}

/// Get a notification endpoint.
///
/// [ours] Its URL, event types, format, description and whether it is enabled; never its secret.
#[utoipa::path(get, path = "/public-api/notification-endpoints/{endpoint_id}", tag = "Notifications",
    operation_id = "getNotificationEndpoint",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicNotificationEndpoint>)))]
pub async fn get(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<PublicNotificationEndpoint>, ApiError> {
    Ok(Reply::new(own(&app, p.tenant_id(), &id).await?.into()))
}

/// Change a notification endpoint.
///
/// [ours] Omitted members keep their value; `description: null` removes it. Disabling an
/// endpoint holds its undelivered events until it is enabled again.
#[utoipa::path(patch, path = "/public-api/notification-endpoints/{endpoint_id}", tag = "Notifications",
    operation_id = "updateNotificationEndpoint",
    params(("endpoint_id" = String, Path)),
    request_body = UpdateNotificationEndpointRequest,
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicNotificationEndpoint>)))]
pub async fn update(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    body: ApiJson<UpdateNotificationEndpointRequest>,
) -> Result<Reply<PublicNotificationEndpoint>, ApiError> {
    let patch = checked_patch(&app, body.value)?;
    let e = app
        .store
        .update_notification_endpoint(p.tenant_id(), &id, &patch, app.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("notification endpoint"))?;
    Ok(Reply::new(e.into()))
}

/// Delete a notification endpoint and its undelivered events.
///
/// [ours] Events already written for it are not sent; its delivery history goes with it.
#[utoipa::path(delete, path = "/public-api/notification-endpoints/{endpoint_id}", tag = "Notifications",
    operation_id = "deleteNotificationEndpoint",
    params(("endpoint_id" = String, Path)),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if !app
        .store
        .delete_notification_endpoint(p.tenant_id(), &id)
        .await?
    {
        return Err(ApiError::not_found("notification endpoint"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test event to a notification endpoint.
///
/// [ours] Writes an `endpoint.test` event for this endpoint (enabled or not), delivered,
/// signed and retried like any other; its delivery shows in `GET …/deliveries`.
#[utoipa::path(post, path = "/public-api/notification-endpoints/{endpoint_id}/test", tag = "Notifications",
    operation_id = "testNotificationEndpoint",
    params(("endpoint_id" = String, Path)),
    responses((status = 202, description = "Written to the outbox.", body = DataEnvelope<TestEventResponse>)))]
pub async fn test(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<TestEventResponse>, ApiError> {
    let event_id = app
        .store
        .send_test_event(p.tenant_id(), &id, app.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("notification endpoint"))?;
    Ok(Reply::new(TestEventResponse { event_id }).status(StatusCode::ACCEPTED))
}

/// List a notification endpoint's latest deliveries.
///
/// [ours] The 50 newest events sent or being sent to it: attempts, when it was delivered, the
/// next attempt, the last status and error (in our words). Kept 7 days after they end.
#[utoipa::path(get, path = "/public-api/notification-endpoints/{endpoint_id}/deliveries", tag = "Notifications",
    operation_id = "listNotificationDeliveries",
    params(("endpoint_id" = String, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicDelivery>>)))]
pub async fn deliveries(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<Vec<PublicDelivery>>, ApiError> {
    own(&app, p.tenant_id(), &id).await?;
    let rows = app
        .store
        .notification_deliveries(p.tenant_id(), &id, HISTORY)
        .await?;
    Ok(Reply::new(rows.into_iter().map(Into::into).collect()).page(false, None))
}
