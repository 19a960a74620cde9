//! The dashboard: server-rendered pages (askama templates under `crates/api/templates/`) with
//! htmx for live refresh and partial updates, served at `/` by the same process as the API.
//! Everything it needs is embedded in the binary: the templates are compiled in, and htmx
//! (vendored from the npm registry, see `crates/api/static/README.md`), the stylesheet and the
//! wizard's script are `include_str!`ed.
//!
//! The dashboard never re-implements what the API does: creating, preflighting, signalling
//! and rerunning call the same functions as the API handlers
//! ([`crate::routes::backfills`]), so validation and business rules are the API's, and errors
//! show the API's messages. Reads go to the [`neo_store::Store`] directly, as the API's
//! list and get handlers do.

pub mod session;
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
use neo_domain::windows::{Schedule, WorkflowDailyExecutionWindows, WorkflowTimeWindow, WEEKDAYS};
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
        .route("/backfills/{id}", get(backfill_page))
        .route("/backfills/{id}/live", get(backfill_live))
        .route("/backfills/{id}/items", get(backfill_items))
        .route("/backfills/{id}/actions", get(backfill_actions))
        .route("/backfills/{id}/{action}", post(action))
        .route("/executions/{id}", get(execution_page))
        .route("/workflows", get(workflows_page))
        .route("/api-keys", get(keys_page))
        .route("/static/{file}", get(asset))
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

/// A message fragment (`ok`, `warn` or `error`), alone in a page when not swapped by htmx.
fn message(status: StatusCode, class: &str, text: &str) -> Response {
    page(
        status,
        &MessageTpl {
            class,
            text,
            link: None,
        },
    )
}

/// An error as a standalone message with a way back.
pub(crate) fn error_response(status: StatusCode, text: &str) -> Response {
    page(
        status,
        &MessageTpl {
            class: "error",
            text,
            link: Some(("/backfills", "Back to the backfills")),
        },
    )
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

// ---- sign-in ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTpl {
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
}

async fn home(u: DashUser) -> Response {
    let _ = u;
    axum::response::Redirect::to("/backfills").into_response()
}

fn login_form(
    client: ClientInfo,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let csrf = session::random_token();
    let mut r = page(
        status,
        &LoginTpl {
            csrf: csrf.clone(),
            error,
            notice,
        },
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(client, LOGIN_COOKIE, &csrf, 3600),
    );
    r
}

#[derive(Deserialize)]
struct LoginQuery {
    signed_out: Option<String>,
}

async fn login_page(client: ClientInfo, Query(q): Query<LoginQuery>) -> Response {
    let notice = q.signed_out.map(|_| "You are signed out.".to_owned());
    login_form(client, StatusCode::OK, None, notice)
}

async fn login(
    State(app): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Every attempt counts against the client's address, before the key is looked at.
    let addr = client
        .addr
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let d = app.sign_in_limiter.check(&addr, app.clock.now());
    if !d.allowed {
        return session::too_many_requests("to sign in from your address", d.retry_after);
    }
    let form = FormData::parse(&body);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !form
        .get("csrf")
        .is_some_and(|t| session::tokens_match(t, expected))
    {
        return login_form(
            client,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired. Please try again.".into()),
            None,
        );
    }
    let token = form.get("api_key").unwrap_or("").trim();
    if token.is_empty() {
        return login_form(
            client,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter an API key.".into()),
            None,
        );
    }
    let now = app.clock.now();
    match crate::auth::verify_api_key(app.store.as_ref(), token, now).await {
        Ok((key, tenant)) => {
            crate::auth::note_key_use(&app.store, &key, now);
            let sid = app.sessions.create(&key.id, &tenant.id, now);
            let mut r = redirect(&headers, "/backfills");
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(client, SESSION_COOKIE, &sid, session::SESSION_TTL.as_secs()),
            );
            h.append(header::SET_COOKIE, set_cookie(client, LOGIN_COOKIE, "", 0));
            r
        }
        Err(e) => login_form(
            client,
            StatusCode::UNAUTHORIZED,
            Some(format!("Sign-in refused: {}.", e.message)),
            None,
        ),
    }
}

async fn logout(
    State(app): State<AppState>,
    u: DashUser,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    app.sessions.remove(&u.session_id);
    let mut r = redirect(&headers, "/login?signed_out=1");
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(client, SESSION_COOKIE, "", 0),
    );
    r
}

// ---- backfills list ----------------------------------------------------------------------

/// A backfill as the list and the detail page show it.
struct BackfillView {
    id: String,
    workflow: String,
    workflow_id: i64,
    state: &'static str,
    state_class: &'static str,
    progress: view::Progress,
    done: i64,
    total: i64,
    created_by: String,
    created_at: String,
    started: String,
    completed: String,
    eta: String,
    next_window: Option<String>,
    error: Option<String>,
    parent: Option<String>,
    max_in_flight: i64,
    timezone: String,
    windows_text: String,
    windows_summary: String,
    credits_per_entity: i64,
    filter_json: String,
    entity_type: String,
    reprocess: bool,
    b: Backfill,
}

impl BackfillView {
    fn new(b: Backfill, now: Timestamp) -> Self {
        let schedule = Schedule::new(&b.daily_execution_windows, &b.timezone).ok();
        let next_window = match (&schedule, b.state) {
            (Some(s), BackfillRunState::Running | BackfillRunState::Paused) if !s.inside(now) => {
                s.next_window_start(now).map(|t| {
                    format!(
                        "{} (in {})",
                        view::short_time(t),
                        view::human_duration(t.duration_since(now))
                    )
                })
            }
            _ => None,
        };
        let summary = view::windows_summary(&b.daily_execution_windows, &b.timezone, now)
            .unwrap_or_else(|e| e);
        let progress = view::progress(&b);
        Self {
            workflow: b
                .target_workflow_name
                .clone()
                .unwrap_or_else(|| format!("workflow {} (deleted)", b.target_workflow_id)),
            workflow_id: b.target_workflow_id,
            state: b.state.as_str(),
            state_class: state_class(b.state),
            done: b.succeeded_count + b.failed_count + b.skipped_count,
            total: progress.total,
            progress,
            created_by: b.created_by.clone(),
            created_at: view::short_time(b.created_at),
            started: b
                .started_at
                .map(|t| view::relative(t, now))
                .unwrap_or_else(|| "not yet".into()),
            completed: b
                .completed_at
                .map(view::short_time)
                .unwrap_or_else(|| "—".into()),
            eta: view::eta(&b, now),
            next_window,
            error: b.error.clone(),
            parent: b.parent_backfill_run_id.clone(),
            max_in_flight: b.max_in_flight,
            timezone: b.timezone.clone(),
            windows_text: view::windows_text(&b.daily_execution_windows),
            windows_summary: summary,
            credits_per_entity: b.credits_per_entity,
            filter_json: serde_json::to_string_pretty(&b.filter_spec).unwrap_or_default(),
            entity_type: b.entity_type.to_string(),
            reprocess: b.reprocess,
            id: b.id.clone(),
            b,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    cursor: Option<String>,
}

const STATE_FILTERS: [(&str, &str); 8] = [
    ("", "All"),
    ("DRAFT,RUNNING,PAUSED", "Active"),
    ("RUNNING", "Running"),
    ("PAUSED", "Paused"),
    ("COMPLETED", "Completed"),
    ("CANCELLED", "Cancelled"),
    ("FAILED", "Failed"),
    ("DRAFT", "Draft"),
];

#[derive(Template)]
#[template(path = "backfill_rows.html")]
struct RowsTpl {
    rows: Vec<BackfillView>,
    poll_url: String,
    poll: &'static str,
    next_url: Option<String>,
    first_url: Option<String>,
}

#[derive(Template)]
#[template(path = "backfills.html")]
struct BackfillsTpl {
    layout: Layout,
    filters: Vec<(&'static str, &'static str, bool)>,
    rows_html: String,
    credits: String,
}

fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn rows(app: &AppState, u: &DashUser, q: &ListQuery) -> Result<RowsTpl, Response> {
    let state = q.state.clone().unwrap_or_default();
    let filter = BackfillFilter {
        states: crate::routes::comma_list(Some(&state), "state", BackfillRunState::parse)
            .map_err(|e| api_error(&e))?,
        target_workflow_id: None,
    };
    let before: Option<String> = match &q.cursor {
        Some(c) if !c.is_empty() => Some(
            app.cursors
                .decode("backfills", c)
                .map_err(|_| api_error(&ApiError::invalid_cursor()))?,
        ),
        _ => None,
    };
    let page = app
        .store
        .list_backfills(
            u.principal.tenant_id(),
            &filter,
            before.as_deref(),
            PAGE_SIZE,
        )
        .await
        .map_err(store_error)?;
    let now = app.clock.now();
    let next_url = page.has_more.then(|| page.items.last()).flatten().map(|b| {
        format!(
            "/backfills?state={}&cursor={}",
            url_encode(&state),
            url_encode(&app.cursors.encode("backfills", &b.id))
        )
    });
    let cursor = q.cursor.clone().unwrap_or_default();
    Ok(RowsTpl {
        rows: page
            .items
            .into_iter()
            .map(|b| BackfillView::new(b, now))
            .collect(),
        poll_url: format!(
            "/backfills/rows?state={}&cursor={}",
            url_encode(&state),
            url_encode(&cursor)
        ),
        poll: POLL,
        next_url,
        first_url: (!cursor.is_empty()).then(|| format!("/backfills?state={}", url_encode(&state))),
    })
}

async fn backfills_page(
    State(app): State<AppState>,
    u: DashUser,
    Query(q): Query<ListQuery>,
) -> Response {
    let rows = match rows(&app, &u, &q).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let state = q.state.clone().unwrap_or_default();
    let now = app.clock.now();
    let credits = match crate::routes::meta::month_bounds(now, None) {
        Ok(((_, from), to)) => {
            match app
                .store
                .credits_used(u.principal.tenant_id(), from, to)
                .await
            {
                Ok(used) => format!(
                    "{used} of {} credits used this month",
                    u.principal.tenant.monthly_credit_allowance
                ),
                Err(_) => String::new(),
            }
        }
        Err(_) => String::new(),
    };
    page(
        StatusCode::OK,
        &BackfillsTpl {
            layout: Layout::new(&u, "Backfills", "backfills"),
            filters: STATE_FILTERS
                .iter()
                .map(|(v, l)| (*v, *l, *v == state))
                .collect(),
            rows_html: render(&rows),
            credits,
        },
    )
}

async fn backfill_rows(
    State(app): State<AppState>,
    u: DashUser,
    Query(q): Query<ListQuery>,
) -> Response {
    match rows(&app, &u, &q).await {
        Ok(r) => page(StatusCode::OK, &r),
        Err(r) => r,
    }
}

// ---- the wizard --------------------------------------------------------------------------

struct WorkflowChoice {
    id: i64,
    name: String,
    description: String,
    entity_type: String,
    credit_tier: i64,
    autonomy: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "wizard.html")]
struct WizardTpl {
    layout: Layout,
    workflows: Vec<WorkflowChoice>,
    weekdays: Vec<(&'static str, String)>,
    timezones: Vec<String>,
    default_filter: String,
}

/// Every workflow of the tenant (up to 1,000).
async fn all_workflows(app: &AppState, tenant: &str) -> Result<Vec<Workflow>, Response> {
    let mut out = Vec::new();
    let mut after = None;
    for _ in 0..5 {
        let page = app
            .store
            .list_workflows(tenant, after, 200)
            .await
            .map_err(store_error)?;
        after = page.items.last().map(|w| w.id);
        out.extend(page.items);
        if !page.has_more {
            break;
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct WizardQuery {
    workflow: Option<i64>,
}

async fn wizard(
    State(app): State<AppState>,
    u: DashUser,
    Query(q): Query<WizardQuery>,
) -> Response {
    let workflows = match all_workflows(&app, u.principal.tenant_id()).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut timezones: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .collect();
    timezones.sort();
    page(
        StatusCode::OK,
        &WizardTpl {
            layout: Layout::new(&u, "New backfill", "new"),
            workflows: workflows
                .into_iter()
                .filter(|w| check_backfill_target(w.state, w.autonomy_type).is_ok())
                .map(|w| WorkflowChoice {
                    checked: q.workflow == Some(w.id),
                    id: w.id,
                    description: w.description.unwrap_or_default(),
                    entity_type: w.entity_type.to_string(),
                    credit_tier: w.credit_tier,
                    autonomy: w.autonomy_type.to_string(),
                    name: w.name,
                })
                .collect(),
            weekdays: WEEKDAYS
                .iter()
                .map(|d| {
                    let mut c = d.chars();
                    let cap = c
                        .next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default();
                    (*d, cap)
                })
                .collect(),
            timezones,
            default_filter: "{\n  \"entity_ids\": []\n}".into(),
        },
    )
}

/// What the wizard's form says, before the API validates it.
struct WizardInput {
    workflow: Option<Workflow>,
    filter_spec: Result<Value, String>,
    windows: Option<WorkflowDailyExecutionWindows>,
    timezone: String,
    max_in_flight: Result<Option<i64>, String>,
    draft: bool,
}

async fn wizard_input(
    app: &AppState,
    u: &DashUser,
    form: &FormData,
) -> Result<WizardInput, Response> {
    let workflow = match form.get("workflow").and_then(|w| w.parse::<i64>().ok()) {
        Some(id) => app
            .store
            .workflow(u.principal.tenant_id(), id)
            .await
            .map_err(store_error)?,
        None => None,
    };
    let raw = form.get("filter_spec").unwrap_or("").trim();
    let filter_spec = if raw.is_empty() {
        Err("The filter is empty: build rules or paste JSON in step 2.".to_owned())
    } else {
        serde_json::from_str::<Value>(raw)
            .map_err(|e| format!("The filter is not valid JSON: {e}."))
    };
    let windows = if form.get("windows_mode") == Some("windows") {
        let mut w = WorkflowDailyExecutionWindows::default();
        for day in WEEKDAYS {
            let starts = form.all(&format!("{day}_start"));
            let ends = form.all(&format!("{day}_end"));
            let rows: Vec<WorkflowTimeWindow> = starts
                .iter()
                .zip(ends.iter())
                .filter(|(s, e)| !s.is_empty() || !e.is_empty())
                .map(|(s, e)| WorkflowTimeWindow {
                    run_start_time: (*s).to_owned(),
                    run_end_time: (*e).to_owned(),
                })
                .collect();
            match day {
                "monday" => w.monday = rows,
                "tuesday" => w.tuesday = rows,
                "wednesday" => w.wednesday = rows,
                "thursday" => w.thursday = rows,
                "friday" => w.friday = rows,
                "saturday" => w.saturday = rows,
                _ => w.sunday = rows,
            }
        }
        Some(w)
    } else {
        None
    };
    let timezone = form
        .get("timezone")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("UTC")
        .to_owned();
    let max_in_flight = match form.get("max_in_flight").map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("Max in flight must be a whole number, not {s:?}.")),
    };
    Ok(WizardInput {
        workflow,
        filter_spec,
        windows,
        timezone,
        max_in_flight,
        draft: form.get("draft").is_some(),
    })
}

#[derive(Template)]
#[template(path = "preflight.html")]
struct PreflightTpl {
    level: &'static str,
    class: &'static str,
    message: String,
    matching: Option<i64>,
    cost: Option<BackfillCostEstimate>,
    warnings: Vec<String>,
}

async fn preflight(State(app): State<AppState>, u: DashUser, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    let input = match wizard_input(&app, &u, &form).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(wf) = input.workflow else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "error",
            "Pick a workflow first (step 1).",
        );
    };
    let filter_spec = match input.filter_spec {
        Ok(f) => f,
        Err(m) => return message(StatusCode::UNPROCESSABLE_ENTITY, "error", &m),
    };
    let req = VerifyBackfillRequest {
        entity_type: wf.entity_type,
        filter_spec,
    };
    match api::verify_filter(&app, &u.principal, req).await {
        Ok(ok) => {
            let (v, warnings) = ok.into_parts();
            let (level, class) = match v.level {
                VerifyLevel::Ok => ("OK", "ok"),
                VerifyLevel::Warning => ("WARNING", "warn"),
                VerifyLevel::Error => ("ERROR", "error"),
            };
            let message = match &v.field {
                Some(f) => format!("{} (field: {f})", v.message),
                None => v.message.clone(),
            };
            page(
                StatusCode::OK,
                &PreflightTpl {
                    level,
                    class,
                    message,
                    matching: v.matching_entities,
                    cost: v
                        .matching_entities
                        .filter(|_| v.success)
                        .map(|n| BackfillCostEstimate::new(wf.credit_tier, n)),
                    warnings: warnings.into_iter().filter(|w| *w != v.message).collect(),
                },
            )
        }
        Err(e) => api_error(&e),
    }
}

async fn windows_summary(State(app): State<AppState>, u: DashUser, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    let input = match wizard_input(&app, &u, &form).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let windows = input.windows.unwrap_or_default();
    if !windows.is_always_open() {
        // The API's own validation, with its JSON paths.
        if let Err(e) = windows.validate("daily_execution_windows") {
            return message(
                StatusCode::OK,
                "error",
                &format!("{} (field: {})", e.message, e.field),
            );
        }
    } else if form.get("windows_mode") == Some("windows") {
        return message(
            StatusCode::OK,
            "error",
            "Add at least one window, or choose \u{201c}Always open\u{201d}.",
        );
    }
    match view::windows_summary(&windows, &input.timezone, app.clock.now()) {
        Ok(s) => message(StatusCode::OK, "ok", &s),
        Err(e) => message(StatusCode::OK, "error", &e),
    }
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewTpl {
    workflow: Option<String>,
    credit_tier: i64,
    filter: Result<String, String>,
    schedule: String,
    max_in_flight: String,
    draft: bool,
}

async fn review(State(app): State<AppState>, u: DashUser, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    let input = match wizard_input(&app, &u, &form).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let windows = input.windows.clone().unwrap_or_default();
    let schedule = if input.windows.is_some() && windows.is_always_open() {
        "No window given: add one in step 3 or choose \u{201c}Always open\u{201d}.".to_owned()
    } else {
        view::windows_summary(&windows, &input.timezone, app.clock.now()).unwrap_or_else(|e| e)
    };
    page(
        StatusCode::OK,
        &ReviewTpl {
            credit_tier: input.workflow.as_ref().map(|w| w.credit_tier).unwrap_or(0),
            workflow: input.workflow.map(|w| format!("{} (#{})", w.name, w.id)),
            filter: input
                .filter_spec
                .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default()),
            schedule,
            max_in_flight: match input.max_in_flight {
                Ok(Some(n)) => n.to_string(),
                Ok(None) => format!("{} (default)", api::DEFAULT_IN_FLIGHT),
                Err(e) => e,
            },
            draft: input.draft,
        },
    )
}

async fn create(
    State(app): State<AppState>,
    u: DashUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    let input = match wizard_input(&app, &u, &form).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let invalid = |m: &str| message(StatusCode::UNPROCESSABLE_ENTITY, "error", m);
    let Some(wf) = input.workflow else {
        return invalid("Pick a workflow first (step 1).");
    };
    let filter_spec = match input.filter_spec {
        Ok(f) => f,
        Err(m) => return invalid(&m),
    };
    let max_in_flight = match input.max_in_flight {
        Ok(m) => m,
        Err(m) => return invalid(&m),
    };
    let req = CreateBackfillRequest {
        target_workflow_id: wf.id,
        entity_type: Some(wf.entity_type),
        filter_spec,
        daily_execution_windows: input.windows,
        timezone: Some(input.timezone),
        max_in_flight,
        total_estimated: None,
        draft: input.draft,
        reprocess: false,
    };
    match api::create_backfill(&app, &u.principal, req, None).await {
        Ok(ok) => {
            let (created, _) = ok.into_parts();
            redirect(
                &headers,
                &format!("/backfills/{}?flash=created", created.backfill.id),
            )
        }
        Err(e) => api_error(&e),
    }
}

// ---- one backfill ------------------------------------------------------------------------

struct ActionButton {
    action: &'static str,
    label: &'static str,
    confirm: &'static str,
    class: &'static str,
}

fn actions(b: &Backfill) -> Vec<ActionButton> {
    let mut out = Vec::new();
    let mut add = |action, label, confirm, class| {
        out.push(ActionButton {
            action,
            label,
            confirm,
            class,
        })
    };
    // The state machine and the rerun rule decide; this only labels them.
    for signal in signals_that_apply(b.state) {
        match signal {
            Signal::Start => add("start", "Start", "Start this backfill now?", "primary"),
            Signal::Pause => add(
                "pause",
                "Pause",
                "Pause this backfill? In-flight executions finish; nothing new is dispatched.",
                "",
            ),
            Signal::Resume => add("resume", "Resume", "Resume this backfill?", "primary"),
            Signal::Cancel => add(
                "cancel",
                "Cancel",
                "Cancel this backfill? Pending entities will not run. This cannot be undone.",
                "danger",
            ),
        }
    }
    if check_rerunnable(b.state, b.failed_count).is_ok() {
        add(
            "rerun-failed",
            "Rerun failed",
            "Create a new backfill over the failed entities?",
            "primary",
        );
    }
    out
}

#[derive(Template)]
#[template(path = "backfill_live.html")]
struct LiveTpl {
    v: BackfillView,
    poll: Option<&'static str>,
    chart: view::Chart,
    chart_w: f64,
    chart_h: f64,
}

struct ChainEntry {
    id: String,
    state: &'static str,
    state_class: &'static str,
    relation: &'static str,
    current: bool,
    failed: i64,
    total: i64,
}

#[derive(Template)]
#[template(path = "backfill.html")]
struct BackfillTpl {
    layout: Layout,
    id: String,
    flash: Option<String>,
    live_html: String,
    actions_html: String,
    items_html: String,
    chain: Vec<ChainEntry>,
    v: BackfillView,
}

async fn load_backfill(app: &AppState, u: &DashUser, id: &str) -> Result<Backfill, Response> {
    app.store
        .backfill(u.principal.tenant_id(), id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| api_error(&ApiError::backfill_not_found()))
}

/// The finish instants of the backfill's settled executions (newest 2,000).
async fn finished_executions(
    app: &AppState,
    tenant: &str,
    id: &str,
) -> Result<Vec<(Timestamp, bool)>, Response> {
    let filter = ExecutionFilter {
        backfill_id: Some(id.to_owned()),
        statuses: vec![ExecutionStatus::Succeeded, ExecutionStatus::Failed],
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..10 {
        let page = app
            .store
            .list_executions(tenant, &filter, before.as_deref(), 200)
            .await
            .map_err(store_error)?;
        before = page.items.last().map(|e| e.id.clone());
        out.extend(page.items.into_iter().map(|e| {
            (
                e.finished_at.unwrap_or(e.updated_at),
                e.status == ExecutionStatus::Succeeded,
            )
        }));
        if !page.has_more {
            break;
        }
    }
    Ok(out)
}

async fn live(app: &AppState, u: &DashUser, b: Backfill) -> Result<LiveTpl, Response> {
    let now = app.clock.now();
    let finished = finished_executions(app, u.principal.tenant_id(), &b.id).await?;
    let end = match b.completed_at {
        Some(c) if b.state.is_terminal() => c,
        _ => now,
    };
    Ok(LiveTpl {
        poll: b.state.is_active().then_some(POLL),
        chart: view::throughput(&finished, end),
        chart_w: view::CHART_W,
        chart_h: view::CHART_H,
        v: BackfillView::new(b, now),
    })
}

/// The buttons that apply to the backfill's state. Not polled: refreshed after an action and
/// when the live part sees the state change (`state-changed`, fired by dashboard.js).
#[derive(Template)]
#[template(path = "backfill_actions.html")]
struct ActionsTpl {
    id: String,
    state: &'static str,
    failed: i64,
    csrf: String,
    actions: Vec<ActionButton>,
}

fn actions_tpl(u: &DashUser, b: &Backfill) -> ActionsTpl {
    ActionsTpl {
        id: b.id.clone(),
        state: b.state.as_str(),
        failed: b.failed_count,
        csrf: u.csrf.clone(),
        actions: actions(b),
    }
}

async fn backfill_actions(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
) -> Response {
    match load_backfill(&app, &u, &id).await {
        Ok(b) => page(StatusCode::OK, &actions_tpl(&u, &b)),
        Err(r) => r,
    }
}

/// The rerun chain: ancestors (parents up to the root), this backfill, and its reruns.
async fn chain(app: &AppState, u: &DashUser, b: &Backfill) -> Result<Vec<ChainEntry>, Response> {
    let tenant = u.principal.tenant_id();
    let entry = |x: &Backfill, relation, current| ChainEntry {
        id: x.id.clone(),
        state: x.state.as_str(),
        state_class: state_class(x.state),
        relation,
        current,
        failed: x.failed_count,
        total: view::total(x),
    };
    let mut up = Vec::new();
    let mut parent = b.parent_backfill_run_id.clone();
    while let Some(pid) = parent.take() {
        if up.len() >= 20 {
            break;
        }
        if let Some(p) = app
            .store
            .backfill(tenant, &pid)
            .await
            .map_err(store_error)?
        {
            parent = p.parent_backfill_run_id.clone();
            up.push(p);
        }
    }
    let mut out: Vec<ChainEntry> = up
        .iter()
        .rev()
        .enumerate()
        .map(|(i, p)| {
            entry(
                p,
                if i + 1 == up.len() {
                    "parent"
                } else {
                    "ancestor"
                },
                false,
            )
        })
        .collect();
    out.push(entry(b, "this backfill", true));
    // Reruns share the target workflow: walk its backfills for children, grandchildren…
    let siblings = app
        .store
        .list_backfills(
            tenant,
            &BackfillFilter {
                states: vec![],
                target_workflow_id: Some(b.target_workflow_id),
            },
            None,
            200,
        )
        .await
        .map_err(store_error)?
        .items;
    let mut frontier = vec![b.id.clone()];
    let mut depth = 0;
    while !frontier.is_empty() && depth < 20 {
        let mut next = Vec::new();
        // Oldest first.
        for c in siblings.iter().rev() {
            if c.parent_backfill_run_id
                .as_ref()
                .is_some_and(|p| frontier.contains(p))
            {
                out.push(entry(
                    c,
                    if depth == 0 {
                        "rerun"
                    } else {
                        "rerun of a rerun"
                    },
                    false,
                ));
                next.push(c.id.clone());
            }
        }
        frontier = next;
        depth += 1;
    }
    Ok(out)
}

#[derive(Deserialize)]
struct BackfillQuery {
    flash: Option<String>,
}

async fn backfill_page(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
    Query(q): Query<BackfillQuery>,
) -> Response {
    let b = match load_backfill(&app, &u, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let flash = match q.flash.as_deref() {
        Some("created") => {
            let cost = BackfillCostEstimate::new(b.credits_per_entity, view::total(&b));
            Some(format!(
                "Backfill created over {} entities; cost estimate {} credits ({} per entity).",
                cost.total_entities, cost.total_credits_estimated, cost.credits_per_entity
            ))
        }
        Some("rerun") => Some(format!(
            "Rerun created over the {} failed entities of {}.",
            b.total_items,
            b.parent_backfill_run_id.as_deref().unwrap_or("its parent")
        )),
        _ => None,
    };
    let chain = match chain(&app, &u, &b).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let items = match items(&app, &u, &id, &ItemsQuery::default()).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let live = match live(&app, &u, b.clone()).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let now = app.clock.now();
    page(
        StatusCode::OK,
        &BackfillTpl {
            layout: Layout::new(&u, format!("Backfill {id}"), "backfills"),
            id,
            flash,
            live_html: render(&live),
            actions_html: render(&actions_tpl(&u, &b)),
            items_html: render(&items),
            chain,
            v: BackfillView::new(b, now),
        },
    )
}

async fn backfill_live(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
) -> Response {
    let b = match load_backfill(&app, &u, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match live(&app, &u, b).await {
        Ok(l) => page(StatusCode::OK, &l),
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
struct ItemsQuery {
    status: Option<String>,
    cursor: Option<String>,
}

struct ItemRow {
    entity_id: String,
    entity_number: String,
    status: &'static str,
    execution_id: Option<String>,
    attempts: i64,
    error: String,
    updated: String,
    next_attempt: Option<String>,
}

#[derive(Template)]
#[template(path = "items.html")]
struct ItemsTpl {
    id: String,
    self_url: String,
    rows: Vec<ItemRow>,
    statuses: Vec<(&'static str, bool)>,
    status: String,
    next_url: Option<String>,
    first_url: Option<String>,
}

async fn items(
    app: &AppState,
    u: &DashUser,
    id: &str,
    q: &ItemsQuery,
) -> Result<ItemsTpl, Response> {
    let status = q.status.clone().unwrap_or_default();
    let statuses = crate::routes::comma_list(Some(&status), "status", ItemStatus::parse)
        .map_err(|e| api_error(&e))?;
    let list = format!("items:{id}");
    let after: Option<i64> = match &q.cursor {
        Some(c) if !c.is_empty() => Some(
            app.cursors
                .decode(&list, c)
                .map_err(|_| api_error(&ApiError::invalid_cursor()))?,
        ),
        _ => None,
    };
    let page = app
        .store
        .list_items(u.principal.tenant_id(), id, &statuses, after, PAGE_SIZE)
        .await
        .map_err(store_error)?;
    let now = app.clock.now();
    let next_url = page.has_more.then(|| page.items.last()).flatten().map(|i| {
        format!(
            "/backfills/{id}/items?status={}&cursor={}",
            url_encode(&status),
            url_encode(&app.cursors.encode(&list, &i.ord))
        )
    });
    Ok(ItemsTpl {
        id: id.to_owned(),
        self_url: format!(
            "/backfills/{id}/items?status={}&cursor={}",
            url_encode(&status),
            url_encode(q.cursor.as_deref().unwrap_or(""))
        ),
        rows: page
            .items
            .into_iter()
            .map(|i| ItemRow {
                entity_id: i.entity_id,
                entity_number: i.entity_number.unwrap_or_default(),
                status: i.status.as_str(),
                execution_id: i.execution_id,
                attempts: i.attempts,
                error: i.error.unwrap_or_default(),
                updated: view::relative(i.updated_at, now),
                next_attempt: i.next_attempt_at.map(view::short_time),
            })
            .collect(),
        statuses: ItemStatus::ALL
            .iter()
            .map(|s| (s.as_str(), s.as_str() == status))
            .collect(),
        first_url: q
            .cursor
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|_| format!("/backfills/{id}/items?status={}", url_encode(&status))),
        status,
        next_url,
    })
}

async fn backfill_items(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> Response {
    if let Err(r) = load_backfill(&app, &u, &id).await {
        return r;
    }
    match items(&app, &u, &id, &q).await {
        Ok(i) => page(StatusCode::OK, &i),
        Err(r) => r,
    }
}

/// Pause, resume, cancel, start and rerun-failed: the API's own functions.
async fn action(
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
    let sig = match action.as_str() {
        "start" => Signal::Start,
        "pause" => Signal::Pause,
        "resume" => Signal::Resume,
        "cancel" => Signal::Cancel,
        "rerun-failed" => {
            return match api::rerun_failed_backfill(&app, &u.principal, &id, None).await {
                Ok(ok) => {
                    let (created, _) = ok.into_parts();
                    redirect(
                        &headers,
                        &format!("/backfills/{}?flash=rerun", created.backfill.id),
                    )
                }
                Err(e) => api_error(&e),
            };
        }
        _ => return error_response(StatusCode::NOT_FOUND, "No such action."),
    };
    let result = api::signal(&app, &u.principal, &id, sig).await;
    let mut r = match result {
        Ok(ok) => {
            let (s, _) = ok.into_parts();
            let text = format!("{}: {}.", capitalize(&s.signal), s.message);
            if is_htmx(&headers) {
                message(StatusCode::OK, "ok", &text)
            } else {
                redirect(&headers, &format!("/backfills/{id}"))
            }
        }
        Err(e) => api_error(&e),
    };
    // The live part of the page refreshes at once.
    r.headers_mut()
        .insert("hx-trigger", HeaderValue::from_static("refresh-live"));
    r
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

// ---- executions, workflows, keys ---------------------------------------------------------

#[derive(Template)]
#[template(path = "execution.html")]
struct ExecutionTpl {
    layout: Layout,
    e: PublicExecution,
}

async fn execution_page(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
) -> Response {
    match app.store.execution(u.principal.tenant_id(), &id).await {
        Ok(Some(e)) => page(
            StatusCode::OK,
            &ExecutionTpl {
                layout: Layout::new(&u, format!("Execution {id}"), "backfills"),
                e: e.into(),
            },
        ),
        Ok(None) => api_error(&ApiError::not_found("execution")),
        Err(e) => store_error(e),
    }
}

struct WorkflowRow {
    a: PublicAgent,
    executor: String,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "workflows.html")]
struct WorkflowsTpl {
    layout: Layout,
    workflows: Vec<WorkflowRow>,
}

async fn workflows_page(State(app): State<AppState>, u: DashUser) -> Response {
    let workflows = match all_workflows(&app, u.principal.tenant_id()).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    page(
        StatusCode::OK,
        &WorkflowsTpl {
            layout: Layout::new(&u, "Workflows", "workflows"),
            workflows: workflows
                .into_iter()
                .map(|w| {
                    let enabled = check_backfill_target(w.state, w.autonomy_type).is_ok();
                    // The public shape: the webhook secret is already removed.
                    let a = PublicAgent::from(w);
                    let executor = match a.executor.get("type").and_then(Value::as_str) {
                        Some("webhook") => format!(
                            "webhook → {}",
                            a.executor.get("url").and_then(Value::as_str).unwrap_or("?")
                        ),
                        Some("simulated") => format!(
                            "simulated ({}% failures, {} ms)",
                            a.executor
                                .get("failure_rate")
                                .and_then(Value::as_f64)
                                .map(|r| (r * 100.0).round())
                                .unwrap_or(0.0),
                            a.executor
                                .get("latency_ms")
                                .and_then(Value::as_u64)
                                .unwrap_or(0)
                        ),
                        Some(t) => t.to_owned(),
                        None => "?".into(),
                    };
                    WorkflowRow {
                        a,
                        executor,
                        enabled,
                    }
                })
                .collect(),
        },
    )
}

struct KeyRow {
    k: PublicApiKey,
    status: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysTpl {
    layout: Layout,
    keys: Vec<KeyRow>,
}

async fn keys_page(State(app): State<AppState>, u: DashUser) -> Response {
    // The API's rule: a dashboard session (an API key) is answered 403 with where keys are managed.
    if let Err(e) = crate::routes::keys::require_admin(&u.principal) {
        return error_response(StatusCode::FORBIDDEN, &format!("{}.", e.message));
    }
    let now = app.clock.now();
    let keys = match app.store.list_api_keys(u.principal.tenant_id()).await {
        Ok(k) => k,
        Err(e) => return store_error(e),
    };
    let current = u.key_id().to_owned();
    page(
        StatusCode::OK,
        &KeysTpl {
            layout: Layout::new(&u, "API keys", "keys"),
            keys: keys
                .into_iter()
                .map(|k| KeyRow {
                    status: if k.revoked_at.is_some() {
                        "revoked"
                    } else if !k.is_usable(now) {
                        "expired"
                    } else {
                        "active"
                    },
                    current: k.id == current,
                    k: k.into(),
                })
                .collect(),
        },
    )
}
