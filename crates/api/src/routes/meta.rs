//! Health, tenant and billing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;

use crate::envelope::{DataEnvelope, Reply};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::models::*;
use crate::{AppState, Auth};

/// Service health: answers 200 when the database answers, else 503.
///
/// No credential needed: for load balancers and probes. The 503 is the error envelope with
/// `database_unavailable`.
#[utoipa::path(get, path = "/public-api/health", tag = "Meta", operation_id = "getHealth",
    security(()),
    responses((status = 200, description = "Success.", body = DataEnvelope<Health>),
              (status = 503, description = "The database does not answer.", body = ErrorEnvelope)))]
pub async fn health(State(app): State<AppState>) -> Result<Reply<Health>, ApiError> {
    let t = std::time::Instant::now();
    let db = tokio::time::timeout(std::time::Duration::from_secs(5), app.store.ping()).await;
    match db {
        Ok(Ok(())) => {
            metrics::histogram!("neo_health_db_seconds").record(t.elapsed().as_secs_f64());
            Ok(Reply::new(Health {
                status: "ok".into(),
                database: "ok".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            }))
        }
        other => {
            tracing::warn!(result = ?other.map(|r| r.map_err(|e| e.to_string())), "health check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database does not answer",
            ))
        }
    }
}

/// The OpenAPI 3.1 document of this API.
///
/// This document, generated from the code. No credential needed.
#[utoipa::path(get, path = "/public-api/openapi.json", tag = "Meta", operation_id = "getOpenApiDocument",
    security(()),
    responses((status = 200, description = "The OpenAPI document.", content_type = "application/json", body = Object)))]
pub async fn openapi(State(app): State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        app.openapi_json.as_ref().clone(),
    )
        .into_response()
}

/// The authenticated tenant.
///
/// The tenant the credential belongs to: its monthly credit allowance, rate limit and connected
/// PSA.
#[utoipa::path(get, path = "/public-api/tenant", tag = "Tenant", operation_id = "getTenant",
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicTenant>)))]
pub async fn tenant(
    State(app): State<AppState>,
    Auth(p): Auth,
) -> Result<Reply<PublicTenant>, ApiError> {
    let integration = app.store.integration(p.tenant_id()).await?.map(|i| i.psa);
    let t = p.tenant;
    Ok(Reply::new(PublicTenant {
        id: t.id,
        name: t.name,
        created_at: neo_domain::clock::rfc3339(t.created_at),
        monthly_credit_allowance: t.monthly_credit_allowance,
        rate_limit: RateLimitInfo {
            limit: app.limiter.limit(),
            window_seconds: app.limiter.window().as_secs(),
        },
        integration,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreditsParams {
    /// `YYYY-MM` (UTC); default the current month.
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2026-11")]
    pub month: Option<String>,
}

/// `[start, end)` of a UTC month given as `YYYY-MM` (default: the month of `now`), with its label.
pub fn month_bounds(
    now: Timestamp,
    month: Option<&str>,
) -> Result<((String, Timestamp), Timestamp), ApiError> {
    let bad = || ApiError::bad_request("month must be YYYY-MM").with_field("month");
    let first: Date = match month {
        None => {
            let d = now.to_zoned(TimeZone::UTC).date();
            d.first_of_month()
        }
        Some(m) => {
            let (y, mo) = m.split_once('-').ok_or_else(bad)?;
            if y.len() != 4 || mo.len() != 2 {
                return Err(bad());
            }
            let y: i16 = y.parse().map_err(|_| bad())?;
            let mo: i8 = mo.parse().map_err(|_| bad())?;
            Date::new(y, mo, 1).map_err(|_| bad())?
        }
    };
    let (start, end) = neo_domain::cost::utc_month(first).ok_or_else(bad)?;
    Ok(((first.strftime("%Y-%m").to_string(), start), end))
}

/// Credit usage of the tenant for a month.
///
/// Credits charged for succeeded executions in a UTC month (`month=YYYY-MM`, default the current
/// one), the allowance and what remains.
#[utoipa::path(get, path = "/public-api/billing/credits", tag = "Billing", operation_id = "getCreditUsage",
    params(CreditsParams),
    responses((status = 200, description = "Success.", body = DataEnvelope<CreditUsage>)))]
pub async fn credits(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<CreditsParams>,
) -> Result<Reply<CreditUsage>, ApiError> {
    let ((label, from), to) = month_bounds(app.clock.now(), q.month.as_deref())?;
    let used = app.store.credits_used(p.tenant_id(), from, to).await?;
    let allowance = p.tenant.monthly_credit_allowance;
    Ok(Reply::new(CreditUsage {
        month: label,
        credits_used: used,
        monthly_allowance: allowance,
        credits_remaining: (allowance - used).max(0),
    }))
}
