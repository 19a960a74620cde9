//! `/public-api/integrations`: the tenant's one PSA connection. Secrets are write-only.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use neo_domain::budget;

use crate::envelope::{DataEnvelope, Reply};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::models::PublicIntegration;
use crate::{AppState, Auth};

/// The connection settings of a PSA. Which members are required depends on the PSA:
/// `connectwise`: `site_url`, `company_id`, `public_key`, `private_key`, `client_id`;
/// `autotask`: `username`, `secret`, `integration_code` (and `zone_url`, else discovered; and
/// `complete_status_ids`, the ticket status ids `$closed` counts as complete, default `[5]`);
/// `halopsa`: `url`, `client_id`, `client_secret`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutIntegrationRequest {
    pub site_url: Option<String>,
    pub company_id: Option<String>,
    pub public_key: Option<String>,
    /// Write-only.
    pub private_key: Option<String>,
    /// Write-only.
    pub client_id: Option<String>,
    pub zone_url: Option<String>,
    pub username: Option<String>,
    /// Write-only.
    pub secret: Option<String>,
    /// Write-only.
    pub integration_code: Option<String>,
    pub url: Option<String>,
    /// Write-only.
    pub client_secret: Option<String>,
    /// Autotask: the ticket status ids that mean complete for `$closed` (1 to 100 integers;
    /// default `[5]`, Autotask's Complete).
    pub complete_status_ids: Option<Vec<i64>>,
    /// Any PSA: the PSA's allowance per hour, shared by every replica (60 to 10,000,000;
    /// default: Autotask 10,000, HaloPSA 3,600, ConnectWise 60,000).
    #[schema(minimum = 60, maximum = 10_000_000)]
    pub requests_per_hour: Option<i64>,
    /// Any PSA: the percentage of `requests_per_hour` backfills may use (1 to 100; default 50);
    /// the rest is left for the MSP's live traffic. When it is spent, backfill requests wait.
    #[schema(minimum = 1, maximum = 100)]
    pub backfill_share: Option<i64>,
}

/// The PSAs an integration can connect (the `{psa}` path parameter).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documentation only: the handlers take the name as a string
pub enum PsaName {
    Connectwise,
    Autotask,
    Halopsa,
}

/// (member, is secret, required) per PSA.
fn members(psa: &str) -> Option<&'static [(&'static str, bool, bool)]> {
    Some(match psa {
        "connectwise" => &[
            ("site_url", false, true),
            ("company_id", false, true),
            ("public_key", false, true),
            ("private_key", true, true),
            ("client_id", true, true),
        ],
        "autotask" => &[
            ("zone_url", false, false),
            ("username", false, true),
            ("secret", true, true),
            ("integration_code", true, true),
            ("complete_status_ids", false, false),
        ],
        "halopsa" => &[
            ("url", false, true),
            ("client_id", false, true),
            ("client_secret", true, true),
        ],
        _ => return None,
    })
}

/// A non-empty list of at most 100 integers.
fn status_ids(field: &str, v: &Value) -> Result<Value, ApiError> {
    let bad = || {
        ApiError::field(
            field,
            format!("{field} must be an array of 1 to 100 integers"),
        )
    };
    let xs = v
        .as_array()
        .filter(|a| (1..=100).contains(&a.len()))
        .ok_or_else(bad)?;
    let ids = xs
        .iter()
        .map(|x| x.as_i64().ok_or_else(bad))
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(json!(ids))
}

/// List the tenant's PSA integrations (at most one).
///
/// The connected PSA with its non-secret settings; `secrets_set` names the secrets that are stored
/// (sealed), never their values.
#[utoipa::path(get, path = "/public-api/integrations", tag = "Integrations", operation_id = "listIntegrations",
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicIntegration>>)))]
pub async fn list(
    State(app): State<AppState>,
    Auth(p): Auth,
) -> Result<Reply<Vec<PublicIntegration>>, ApiError> {
    let i = app.store.integration(p.tenant_id()).await?;
    let now = app.clock.now();
    Ok(Reply::new(
        i.into_iter()
            .map(|i| PublicIntegration::new(i, now))
            .collect(),
    )
    .page(false, None))
}

/// Connect (or reconnect) the tenant's PSA. Replaces any other PSA connection.
///
/// The body is the PSA's settings and credentials (ConnectWise: site URL, company id, public and
/// private key, client id; Autotask: zone URL, username, secret, integration code; HaloPSA: URL,
/// client id and secret). Secrets are write-only and sealed at rest; URLs the service may not call
/// answer 422.
#[utoipa::path(put, path = "/public-api/integrations/{psa}", tag = "Integrations", operation_id = "putIntegration",
    params(("psa" = inline(PsaName), Path, description = "connectwise, autotask or halopsa")),
    request_body = PutIntegrationRequest,
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicIntegration>)))]
pub async fn put(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(psa): ApiPath<String>,
    body: ApiJson<Value>,
) -> Result<Reply<PublicIntegration>, ApiError> {
    let spec = members(&psa).ok_or_else(|| ApiError::not_found("PSA type"))?;
    let mut obj = body
        .value
        .as_object()
        .cloned()
        .ok_or_else(|| ApiError::field("", "the body must be a JSON object"))?;
    // The request budget, the same members for every PSA.
    let mut budget = Map::new();
    for (k, check) in [
        (
            "requests_per_hour",
            budget::check_requests_per_hour as fn(i64) -> _,
        ),
        ("backfill_share", budget::check_backfill_share),
    ] {
        match obj.remove(k) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v
                    .as_i64()
                    .ok_or_else(|| ApiError::field(k, format!("{k} must be an integer")))?;
                budget.insert(k.into(), json!(check(n).map_err(ApiError::validation)?));
            }
        }
    }
    for k in obj.keys() {
        if !spec.iter().any(|(m, _, _)| m == k) {
            return Err(ApiError::field(k, format!("{k} is not a setting of {psa}")));
        }
    }
    let (mut config, mut secrets) = (Map::new(), Map::new());
    for (m, secret, required) in spec {
        match obj.get(*m) {
            Some(v) if *m == "complete_status_ids" && !v.is_null() => {
                config.insert((*m).into(), status_ids(m, v)?);
            }
            Some(Value::String(s)) if !s.trim().is_empty() => {
                if m.ends_with("url") {
                    // The service calls it: the same egress rules as webhooks (SSRF guard).
                    super::check_target_url(m, s, app.egress())?;
                }
                if *secret {
                    secrets.insert((*m).into(), json!(s));
                } else {
                    config.insert((*m).into(), json!(s));
                }
            }
            Some(Value::Null) | None if !required => {}
            _ => {
                return Err(ApiError::field(
                    m,
                    format!("{m} must be a non-empty string ({psa} needs it)"),
                ))
            }
        }
    }
    config.extend(budget);
    let i = app
        .store
        .put_integration(
            p.tenant_id(),
            &psa,
            Value::Object(config),
            Value::Object(secrets),
            app.clock.now(),
        )
        .await?;
    Ok(Reply::new(PublicIntegration::new(i, app.clock.now())))
}

/// Disconnect the PSA. Active backfills that query it end FAILED.
///
/// Its settings and sealed secrets are deleted. Active backfills over a PSA filter end FAILED
/// ("the tenant's PSA integration was removed"); those over an explicit `entity_ids` list need no
/// PSA query and go on.
#[utoipa::path(delete, path = "/public-api/integrations/{psa}", tag = "Integrations", operation_id = "deleteIntegration",
    params(("psa" = inline(PsaName), Path, description = "the connected PSA")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(psa): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    match app.store.integration(p.tenant_id()).await? {
        Some(i) if i.psa == psa => {
            app.store
                .delete_integration(p.tenant_id(), app.clock.now())
                .await?;
            app.wake();
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::not_found("integration")),
    }
}
