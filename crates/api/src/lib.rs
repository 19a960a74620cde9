//! The HTTP API of neo-backfill: the Neo Public API's backfills, agents, executions,
//! integrations, tenant, billing and API-key routes, with the `{data, meta}` envelope, API-key
//! and Entra ID auth, a per-tenant rate limit and a generated OpenAPI 3.1 document.

// `ApiError` carries the whole error envelope (about 130 bytes); it only travels on the error
// path of a request, where its size costs nothing measurable.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod context;
pub mod dashboard;
pub mod envelope;
pub mod error;
pub mod extract;
/// The fuzz targets' bodies (`fuzz/`), replayed by the test suite: only with the `fuzzing`
/// feature, never in a normal build.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod models;
pub mod openapi;
pub mod paging;
pub mod ratelimit;
pub mod routes;
pub mod schemas;
pub mod server;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use neo_domain::clock::Clock;
use neo_domain::cursor::CursorCodec;
use neo_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};

use crate::auth::{EntraConfig, EntraVerifier, Principal, PrincipalKind};
use crate::error::ApiError;
use crate::ratelimit::RateLimiter;

/// Settings of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Requests per tenant per window (docs/api.md §2: 1,200 per 60 s).
    pub rate_limit: u32,
    pub rate_window: SignedDuration,
    /// Verify answers WARNING above this many matches.
    pub verify_soft_limit: i64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    pub entra: Option<EntraConfig>,
    /// Retry and throttling policy of PSA reads (verify and create count with the connector).
    pub psa_policy: neo_psa::http::HttpPolicy,
    /// Whether webhooks and PSA calls may reach private, loopback and link-local targets
    /// (`--egress-allow-private`).
    pub egress_allow_private: bool,
    /// Time a client has to send a request's headers (see [`server::serve`]).
    pub header_read_timeout: std::time::Duration,
    /// Time a client has, after the headers, to send the whole body.
    pub body_read_timeout: std::time::Duration,
    /// Whether a proxy in front sets `X-Forwarded-For` / `X-Forwarded-Proto` (trusted only then;
    /// see [`server::ClientInfo`]).
    pub behind_proxy: bool,
    /// Whether `/metrics` is served with the API (off when `--metrics-listen` gives it its own
    /// address; see [`metrics_router`]).
    pub metrics_on_api: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            rate_limit: 1200,
            rate_window: SignedDuration::from_secs(60),
            verify_soft_limit: 1000,
            max_body_bytes: 4 * 1024 * 1024,
            entra: None,
            psa_policy: neo_psa::http::HttpPolicy::default(),
            egress_allow_private: false,
            header_read_timeout: std::time::Duration::from_secs(10),
            body_read_timeout: std::time::Duration::from_secs(30),
            behind_proxy: false,
            metrics_on_api: true,
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub limiter: Arc<RateLimiter>,
    pub entra: Option<Arc<EntraVerifier>>,
    pub cursors: CursorCodec,
    pub cfg: Arc<ApiConfig>,
    pub openapi_json: Arc<String>,
    pub metrics: PrometheusHandle,
    /// The guarded egress client of the PSA connectors (verify and create count through it).
    pub psa_http: neo_egress::Egress,
    /// Notified on every change the orchestrator should react to at once (signals, creates).
    pub wake: Arc<tokio::sync::Notify>,
    /// The dashboard's signed-in sessions.
    pub sessions: Arc<dashboard::session::Sessions>,
    /// Dashboard sign-in attempts per client address.
    pub sign_in_limiter: Arc<RateLimiter>,
}

impl AppState {
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cfg: ApiConfig,
    ) -> anyhow::Result<Self> {
        let cursors = CursorCodec::new(store.server_secret().await?);
        let entra = cfg
            .entra
            .clone()
            .map(|e| Arc::new(EntraVerifier::new(e, clock.clone())));
        let psa_http = neo_egress::Egress::new(neo_domain::egress::EgressPolicy::new(
            cfg.egress_allow_private,
        ));
        Ok(Self {
            limiter: Arc::new(RateLimiter::new(cfg.rate_limit, cfg.rate_window)),
            store,
            clock,
            entra,
            cursors,
            cfg: Arc::new(cfg),
            openapi_json: Arc::new(openapi::document_json()),
            metrics: metrics_handle(),
            psa_http,
            wake: Arc::new(tokio::sync::Notify::new()),
            sessions: Arc::default(),
            sign_in_limiter: Arc::new(RateLimiter::new(
                dashboard::session::SIGN_IN_ATTEMPTS,
                dashboard::session::SIGN_IN_WINDOW,
            )),
        })
    }

    /// Where the tenant's webhooks and PSA URLs may point.
    pub fn egress(&self) -> neo_domain::egress::EgressPolicy {
        neo_domain::egress::EgressPolicy::new(self.cfg.egress_allow_private)
    }

    /// Tells the orchestrator that something changed. `notify_one` keeps the wake-up for the
    /// orchestrator's loop when it is busy at that moment (it then ticks right after), so a
    /// new backfill is claimed for in the next round, not a poll interval later.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("buckets")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The authenticated caller of a route behind [`authenticate`].
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| ApiError::unauthorized("missing credentials"))
    }
}

/// Tenant of the request, for the access log.
#[derive(Clone)]
struct TenantTag(String);

async fn resolve_principal(
    app: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, ApiError> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
    let token = auth::bearer_token(raw)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be Bearer <token>"))?;
    let now = app.clock.now();
    if token.starts_with(auth::KEY_PREFIX) {
        let (key, tenant) = auth::verify_api_key(app.store.as_ref(), token, now).await?;
        auth::note_key_use(&app.store, &key, now);
        return Ok(Principal {
            tenant,
            kind: PrincipalKind::ApiKey { key_id: key.id },
        });
    }
    let entra = app
        .entra
        .as_ref()
        .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
    let user = entra.verify(token).await?;
    let tenant = app
        .store
        .tenant_by_entra_tid(&user.tid)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("the token's Entra tenant is not linked to a tenant here")
        })?;
    Ok(Principal {
        tenant,
        kind: PrincipalKind::Entra {
            user: user.user,
            admin: user.admin,
        },
    })
}

/// Authenticates the caller and applies the tenant's rate limit; every authenticated response
/// carries the `X-RateLimit-*` headers.
async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let principal = match resolve_principal(&app, req.headers()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let d = app.limiter.check(&principal.tenant.id, app.clock.now());
    let tag = TenantTag(principal.tenant.id.clone());
    let mut resp = if d.allowed {
        req.extensions_mut().insert(principal);
        next.run(req).await
    } else {
        metrics::counter!("neo_rate_limited_total").increment(1);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "more than {} requests in {} s; retry after {} s",
                d.limit,
                app.limiter.window().as_secs(),
                d.retry_after
            ),
        );
        e.retry_after = Some(d.retry_after);
        e.into_response()
    };
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(d.reset));
    resp.extensions_mut().insert(tag);
    resp
}

/// Outermost layer: request id, the request's trace span, one JSON access-log line per request,
/// HTTP metrics.
async fn request_context(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
        .unwrap_or_else(uuid::Uuid::new_v4);
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    // The trace of the request (exported only with `--otlp-endpoint`; otherwise disabled at
    // its call site). The route template, not the path, keeps its values bounded; no header,
    // query or body goes in it. The tenant and the status are known from the response.
    let span = tracing::info_span!(
        "http.request",
        otel.kind = "server",
        http.request.method = method.as_str(),
        http.route = route.as_str(),
        http.response.status_code = tracing::field::Empty,
        request.id = %id,
        tenant.id = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let run = context::scope(context::RequestCtx { id, start }, next.run(req));
    let mut resp = tracing::Instrument::instrument(run, span.clone()).await;
    let latency = start.elapsed();
    let status = resp.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let tenant = resp.extensions().get::<TenantTag>().map(|t| t.0.clone());
    span.record("http.response.status_code", status);
    if let Some(t) = &tenant {
        span.record("tenant.id", t.as_str());
    }
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
    drop(span);
    tracing::info!(
        target: "neo_access",
        request_id = %id,
        method = %method,
        path = %path,
        route = %route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        tenant = tenant.as_deref().unwrap_or("-"),
        "request"
    );
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("neo_http_requests_total", &labels).increment(1);
    metrics::histogram!("neo_http_request_duration_seconds", &labels[..2])
        .record(latency.as_secs_f64());
    resp
}

/// An unknown address: the error envelope for the API and any client that does not ask for
/// HTML; a styled page for a browser outside `/public-api`.
async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser && !uri.path().starts_with("/public-api") {
        return dashboard::error_page(StatusCode::NOT_FOUND, "There is no page at this address.");
    }
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::internal().into_response()
}

fn prometheus(metrics: &PrometheusHandle) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
        .into_response()
}

/// `/metrics` alone, for its own listen address (`--metrics-listen`): Prometheus reaches it
/// there, and the API's address, which may face the internet, does not expose it.
pub fn metrics_router(metrics: PrometheusHandle) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { prometheus(&metrics) }
        }),
    )
}

/// The whole HTTP application.
pub fn router(state: AppState) -> axum::Router {
    router_with(state, axum::Router::new())
}

/// The application with `extra` routes behind authentication (tests use it to add a route
/// that panics, to check that the panic becomes an error envelope). The API is under
/// `/public-api`, the dashboard (its own session auth) at `/`.
pub fn router_with(state: AppState, extra: axum::Router<AppState>) -> axum::Router {
    let (authed, _) = openapi::authed_routes().split_for_parts();
    let authed = authed.merge(extra);
    let (public, _) = openapi::public_routes().split_for_parts();
    let public = public.route_layer(middleware::from_fn(extract::reject_unknown_query));
    let metrics = if state.cfg.metrics_on_api {
        metrics_router(state.metrics.clone()).with_state(())
    } else {
        axum::Router::new()
    };
    authed
        .route_layer(middleware::from_fn(extract::reject_unknown_query))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .merge(public)
        .merge(dashboard::router())
        .merge(metrics)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.cfg.max_body_bytes,
        ))
        .layer(middleware::from_fn_with_state(
            state.cfg.body_read_timeout,
            server::body_deadline,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(request_context))
        // Outermost: credentials are marked sensitive before anything can log them (their
        // `Debug` form is then `Sensitive`).
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::HeaderName::from_static("x-neo-signature"),
        ]))
        .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
        .with_state(state)
}
