//! The dashboard: server-rendered pages (askama templates under `crates/api/templates/`) with
//! htmx for live refresh and partial updates, served at `/` by the same process as the API.
//! Everything it needs is embedded in the binary: the templates are compiled in, and htmx
//! (vendored from the npm registry, see `crates/api/static/README.md`), the stylesheet and the
//! wizard's script are `include_str!`ed.
//!
//! The dashboard never re-implements what the API does: creating, preflighting, signalling,
//! rerunning, applying and reverting call the same functions as the API handlers
//! ([`crate::routes::backfills`]), so validation and business rules are the API's, and errors
//! show the API's messages. Reads go to the [`neo_store::Store`] directly, as the API's
//! list and get handlers do.

pub mod session;
pub mod times;
pub mod view;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jiff::Timestamp;
use neo_domain::backfill::{
    check_backfill_target, check_rerunnable, signals_that_apply, BackfillRunState, ExecutionStatus,
    ItemStatus, Signal,
};
use neo_domain::cost::BackfillCostEstimate;
use neo_domain::windows::{WorkflowDailyExecutionWindows, WorkflowTimeWindow, WEEKDAYS};
use neo_store::{Backfill, BackfillFilter, ExecutionFilter, Workflow};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::models::{
    CreateBackfillRequest, PublicAgent, PublicApiKey, PublicExecution, VerifyBackfillRequest,
    VerifyLevel,
};
use crate::routes::backfills as api;
use crate::server::ClientInfo;
use crate::AppState;
use session::{cookie, is_htmx, redirect, set_cookie, DashUser, LOGIN_COOKIE, SESSION_COOKIE};

const HTMX_JS: &str = include_str!("../../static/htmx-2.0.11.min.js");
const DASHBOARD_JS: &str = include_str!("../../static/dashboard.js");
const PAGES_JS: &str = include_str!("../../static/pages.js");
const DASHBOARD_CSS: &str = include_str!("../../static/dashboard.css");

/// How often the live parts of the pages refresh.
const POLL: &str = "every 1s";
const PAGE_SIZE: usize = 25;

/// The dashboard's routes (mounted at `/` by [`crate::router_with`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/backfills", get(backfills_page).post(create))
        .route("/backfills/rows", get(backfill_rows))
        .route("/backfills/new", get(wizard))
        .route("/backfills/preflight", post(preflight))
        .route("/backfills/windows-summary", post(windows_summary))
        .route("/backfills/review", post(review))
        .route("/backfills/check", post(check_steps))
        .route("/backfills/{id}", get(backfill_page))
        .route("/backfills/{id}/live", get(backfill_live))
        .route("/backfills/{id}/items", get(backfill_items))
        .route("/backfills/{id}/actions", get(backfill_actions))
        .route("/backfills/{id}/changes", get(changes::backfill_changes))
        .route("/backfills/{id}/failures", get(failures::backfill_failures))
        .route("/backfills/{id}/rerun-cause", post(failures::rerun_cause))
        .route("/backfills/{id}/{action}", post(action))
        .route("/executions/{id}", get(execution_page))
        .route("/workflows", get(workflows_page))
        .route("/workflows/{id}/{action}", post(workflow_action))
        .route("/api-keys", get(keys_page))
        .route(
            "/notifications",
            get(notifications::notifications_page).post(notifications::create_notification),
        )
        .route("/notifications/{id}", get(notifications::endpoint_page))
        .route(
            "/notifications/{id}/{action}",
            post(notifications::endpoint_action),
        )
        .route("/search", get(search_page))
        .route("/static/{file}", get(asset))
        .layer(middleware::from_fn(full_page_errors))
        .layer(middleware::map_response(security_headers))
}

/// No caching of pages, no framing, no inline script or style, no third-party anything.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, ct) = match file.as_str() {
        "htmx-2.0.11.min.js" => (HTMX_JS, "text/javascript; charset=utf-8"),
        "dashboard.js" => (DASHBOARD_JS, "text/javascript; charset=utf-8"),
        "pages.js" => (PAGES_JS, "text/javascript; charset=utf-8"),
        "dashboard.css" => (DASHBOARD_CSS, "text/css; charset=utf-8"),
        _ => return error_response(StatusCode::NOT_FOUND, "No such file."),
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

// ---- rendering helpers -----------------------------------------------------------------

fn render<T: Template>(t: &T) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "template failed");
        "<p class=\"msg error\" role=\"alert\">This page could not be rendered.</p>".to_owned()
    })
}

fn page<T: Template>(status: StatusCode, t: &T) -> Response {
    (status, Html(render(t))).into_response()
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessageTpl<'a> {
    class: &'a str,
    text: &'a str,
    link: Option<(&'a str, &'a str)>,
}

/// A message fragment (`ok`, `warn` or `error`) for htmx to swap in. An error's text rides
/// along ([`ErrorText`]) so that [`full_page_errors`] can make a whole page of it when the
/// browser asked for a page rather than a fragment.
fn message(status: StatusCode, class: &str, text: &str) -> Response {
    let mut r = page(
        status,
        &MessageTpl {
            class,
            text,
            link: None,
        },
    );
    if class == "error" {
        r.extensions_mut().insert(ErrorText(text.to_owned()));
    }
    r
}

/// An error as a standalone message with a way back.
pub(crate) fn error_response(status: StatusCode, text: &str) -> Response {
    let mut r = page(
        status,
        &MessageTpl {
            class: "error",
            text,
            link: Some(("/backfills", "Back to the backfills")),
        },
    );
    r.extensions_mut().insert(ErrorText(text.to_owned()));
    r
}

/// The words of an error response, for [`full_page_errors`].
#[derive(Clone)]
struct ErrorText(String);

#[derive(Template)]
#[template(path = "error_page.html")]
struct ErrorPageTpl<'a> {
    title: &'a str,
    text: &'a str,
}

/// A whole styled page for an error (a missing backfill, an unknown address).
pub(crate) fn error_page(status: StatusCode, text: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        s if s.is_server_error() => "Something went wrong",
        _ => "This did not work",
    };
    page(status, &ErrorPageTpl { title, text })
}

/// Errors a browser navigated to (no `HX-Request`) become whole pages in the dashboard's
/// style; htmx requests keep the fragment they swap into place.
async fn full_page_errors(req: axum::extract::Request, next: middleware::Next) -> Response {
    let htmx = req.headers().contains_key("hx-request");
    let r = next.run(req).await;
    if htmx || !(r.status().is_client_error() || r.status().is_server_error()) {
        return r;
    }
    let Some(ErrorText(text)) = r.extensions().get::<ErrorText>() else {
        return r;
    };
    // The page replaces the body only: `Retry-After`, cookies and the rest stay.
    let mut full = error_page(r.status(), text);
    for (name, value) in r.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            full.headers_mut().insert(name.clone(), value.clone());
        }
    }
    full
}

/// How an API error reads on the dashboard: its message, and the field it names.
fn api_error_text(e: &ApiError) -> String {
    match e
        .details
        .as_ref()
        .and_then(|d| d.get("field"))
        .and_then(Value::as_str)
    {
        Some(f) if !f.is_empty() => format!("{} (field: {f})", e.message),
        _ => e.message.clone(),
    }
}

fn api_error(e: &ApiError) -> Response {
    let status = if e.status.is_server_error() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        e.status
    };
    message(status, "error", &api_error_text(e))
}

fn store_error(e: neo_store::StoreError) -> Response {
    api_error(&ApiError::from(e))
}

/// What every page's frame needs.
pub struct Layout {
    pub title: String,
    pub nav: &'static str,
    pub tenant: String,
    pub key_id: String,
    pub csrf: String,
    /// Whether the nav offers the API-keys page ([`crate::routes::keys::require_admin`]).
    pub manages_keys: bool,
}

impl Layout {
    fn new(u: &DashUser, title: impl Into<String>, nav: &'static str) -> Self {
        Self {
            title: title.into(),
            nav,
            tenant: u.principal.tenant.name.clone(),
            key_id: u.key_id().to_owned(),
            csrf: u.csrf.clone(),
            manages_keys: crate::routes::keys::require_admin(&u.principal).is_ok(),
        }
    }
}

/// A form body as ordered pairs (keys may repeat: one per window row).
struct FormData(Vec<(String, String)>);

impl FormData {
    fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn state_class(s: BackfillRunState) -> &'static str {
    match s {
        BackfillRunState::Draft => "draft",
        BackfillRunState::Running => "running",
        BackfillRunState::Paused => "paused",
        BackfillRunState::Completed => "completed",
        BackfillRunState::Cancelled => "cancelled",
        BackfillRunState::Failed => "failed",
    }
}

mod backfill;
mod changes;
mod control;
mod execution;
mod failures;
mod items;
mod list;
mod login;
mod notifications;
mod search;
mod settings;
mod wizard;
mod workflow_edit;

use backfill::*;
use execution::*;
use items::backfill_items;
use list::*;
use login::*;
use search::search_page;
use settings::*;
use wizard::*;
use workflow_edit::workflow_action;
