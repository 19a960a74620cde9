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

/// Liveness: answers 200 while the process serves requests.
///
/// No credential needed: for a liveness probe, which should restart the process only when it
/// no longer answers. `database` says whether the database answered within 5 s (`ok`), did not
/// (`unavailable`), or is being migrated at startup (`migrating`); none of these is a reason to
/// restart, so the answer stays 200. Use `/public-api/ready` to decide whether to send traffic.
#[utoipa::path(get, path = "/public-api/health", tag = "Meta", operation_id = "getHealth",
    security(()),
    responses((status = 200, description = "Success.", body = DataEnvelope<Health>)))]
pub async fn health(State(app): State<AppState>) -> Reply<Health> {
    let database = match database_answers(&app).await {
        Ok(()) => "ok",
        Err(_) => "unavailable",
    };
    Reply::new(Health::new(database))
}

/// Readiness: answers 200 when this process can take traffic, else 503.
///
/// No credential needed: for a readiness probe or a load balancer. 503 `not_ready` while the
/// database is being migrated at startup; 503 `database_unavailable` when the database does not
/// answer within 5 s. Both carry `Retry-After`.
#[utoipa::path(get, path = "/public-api/ready", tag = "Meta", operation_id = "getReadiness",
    security(()),
    responses((status = 200, description = "Ready.", body = DataEnvelope<Health>),
              (status = 503, description = "Not ready: migrating, or the database does not answer.", body = ErrorEnvelope)))]
pub async fn ready(State(app): State<AppState>) -> Result<Reply<Health>, ApiError> {
    database_answers(&app).await?;
    Ok(Reply::new(Health::new("ok")))
}

/// What the listener answers while `serve` migrates the database at startup, before the API
/// exists: liveness is 200 (`database: migrating`: a long migration is no reason to restart),
/// readiness and every other request 503 `not_ready`. Each answer closes its connection, so
/// that a client's next request reaches the API once it is up, not this router's last
/// connection.
pub fn starting_router() -> axum::Router {
    async fn not_ready() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the service is starting: it is migrating the database",
        );
        e.retry_after = Some(5);
        e
    }
    axum::Router::new()
        .route(
            "/public-api/health",
            axum::routing::get(|| async { Reply::new(Health::new("migrating")) }),
        )
        .fallback(not_ready)
        .layer(axum::middleware::map_response(|mut r: Response| async {
            r.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            r
        }))
}

/// Pings the database with a 5 s bound; a failure is the 503 `database_unavailable` envelope.
async fn database_answers(app: &AppState) -> Result<(), ApiError> {
    let t = std::time::Instant::now();
    let db = tokio::time::timeout(std::time::Duration::from_secs(5), app.store.ping()).await;
    match db {
        Ok(Ok(())) => {
            metrics::histogram!("neo_health_db_seconds").record(t.elapsed().as_secs_f64());
            Ok(())
        }
        other => {
            tracing::warn!(result = ?other.map(|r| r.map_err(|e| e.to_string())), "the database did not answer a health check");
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database does not answer",
            );
            e.retry_after = Some(5);
            Err(e)
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
