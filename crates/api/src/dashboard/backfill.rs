//! One backfill: live progress, the actions its state allows, items, the rerun chain, the
//! throughput chart; actions go through the API's own signal, rerun and child code (the
//! safe-bulk-changes parts are in [`super::changes`], the pause reason, trial, credits and
//! ETA in [`super::control`]).

#[allow(unused_imports)]
use super::*;

use std::collections::HashMap;

use super::changes;
use super::control;
use super::items::{items, ItemsQuery};
use super::times;
use neo_domain::control::PauseReason;

pub(super) struct ActionButton {
    pub(super) action: &'static str,
    pub(super) label: &'static str,
    pub(super) confirm: &'static str,
    pub(super) class: &'static str,
    /// A checkbox sent with the action.
    pub(super) option: Option<ActionOption>,
}

pub(super) struct ActionOption {
    pub(super) name: &'static str,
    pub(super) label: &'static str,
}

/// What the page of a `psa_actions` backfill needs to offer its buttons.
#[derive(Clone, Copy, Default)]
pub(super) struct PsaFacts {
    /// The backfill changes (or previews changes to) PSA records.
    pub(super) psa: bool,
    /// The tenant's PSA can delete the notes a run added.
    pub(super) deletes_notes: bool,
}

impl PsaFacts {
    pub(super) async fn of(app: &AppState, u: &DashUser, b: &Backfill) -> Result<Self, Response> {
        let tenant = u.principal.tenant_id();
        let psa = changes::is_psa(app, tenant, b).await?;
        let deletes_notes = psa
            && api::notes_removable(app, tenant)
                .await
                .map_err(|e| api_error(&e))?;
        Ok(Self { psa, deletes_notes })
    }
}

pub(super) fn actions(b: &Backfill, facts: PsaFacts) -> Vec<ActionButton> {
    let mut out = Vec::new();
    let mut add = |action, label, confirm, class| {
        out.push(ActionButton {
            action,
            label,
            confirm,
            class,
            option: None,
        })
    };
    // After a trial, the "Trial result" panel offers resume and cancel as Continue and Cancel.
    let trial = control::trial_panel(b).is_some();
    // The state machine and the rerun rule decide; this only labels them.
    for signal in signals_that_apply(b.state) {
        match signal {
            Signal::Resume | Signal::Cancel if trial => {}
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
    out.extend(changes::child_buttons(b, facts.psa, facts.deletes_notes));
    out
}

#[derive(Template)]
#[template(path = "backfill_live.html")]
pub(super) struct LiveTpl {
    pub(super) v: BackfillView,
    pub(super) poll: Option<&'static str>,
    pub(super) chart: view::Chart,
    pub(super) chart_w: f64,
    pub(super) chart_h: f64,
    pub(super) pacing: Pacing,
}

/// What paces the backfill beyond its windows (issue 23): the PSA's request budget and its
/// fairness between companies.
pub(super) struct Pacing {
    /// "3,120 / 5,000 backfill requests this hour …" when the tenant has a PSA.
    pub(super) budget: Option<String>,
    /// "at most 5 of one company at once", when capped.
    pub(super) per_company: Option<String>,
    /// Each blackout: the company and when it holds.
    pub(super) blackouts: Vec<(String, String)>,
    /// The companies held now.
    pub(super) held: Vec<String>,
}

/// `12345` as `12,345`.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

impl Pacing {
    fn new(b: &Backfill, integration: Option<&neo_store::Integration>, now: Timestamp) -> Self {
        // The tenant's PSA budget, which every backfill reading or writing the PSA waits on.
        let budget = integration.map(|i| {
            let budget = i.budget();
            let used = neo_domain::budget::Budget::used_this_hour(&i.bucket, neo_domain::clock::to_ms(now));
            format!(
                "{} / {} backfill requests this hour ({}% of the PSA's {} an hour; the rest is left for live traffic)",
                grouped(used),
                grouped(budget.backfill_per_hour()),
                budget.backfill_share,
                grouped(budget.requests_per_hour),
            )
        });
        let blackouts = b
            .company_blackouts
            .iter()
            .flatten()
            .map(|(company, bo)| {
                let mut when: Vec<String> = bo.dates.clone();
                if let Some(w) = &bo.weekly {
                    when.push(format!("weekly {} ({})", view::windows_text(w), b.timezone));
                }
                (company.clone(), when.join(", "))
            })
            .collect();
        Self {
            budget,
            per_company: b
                .max_in_flight_per_company
                .map(|n| format!("at most {n} of one company at once")),
            blackouts,
            held: b.held_companies(now),
        }
    }
}

pub(super) struct ChainEntry {
    pub(super) id: String,
    pub(super) title: String,
    pub(super) short_id: String,
    pub(super) state: &'static str,
    pub(super) state_class: &'static str,
    pub(super) relation: &'static str,
    pub(super) current: bool,
    pub(super) failed: i64,
    pub(super) total: i64,
}

#[derive(Template)]
#[template(path = "backfill.html")]
pub(super) struct BackfillTpl {
    pub(super) layout: Layout,
    pub(super) id: String,
    pub(super) flash: Option<String>,
    pub(super) live_html: String,
    pub(super) actions_html: String,
    /// What kind of run a `psa_actions` backfill is (none for other backfills).
    pub(super) banner: Option<changes::ModeBanner>,
    /// Its field changes, totalled.
    pub(super) changes_html: Option<String>,
    pub(super) items_html: String,
    /// Its failures by cause ([`super::failures`]).
    pub(super) failures_html: String,
    pub(super) chain: Vec<ChainEntry>,
    pub(super) history: Vec<HistoryRow>,
    pub(super) csrf: String,
    pub(super) v: BackfillView,
}

pub(super) async fn load_backfill(
    app: &AppState,
    u: &DashUser,
    id: &str,
) -> Result<Backfill, Response> {
    app.store
        .backfill(u.principal.tenant_id(), id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| api_error(&ApiError::backfill_not_found()))
}

/// The finish instants of the backfill's settled executions (newest 2,000).
pub(super) async fn finished_executions(
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

pub(super) async fn live(app: &AppState, u: &DashUser, b: Backfill) -> Result<LiveTpl, Response> {
    let now = app.clock.now();
    let tenant = u.principal.tenant_id();
    let finished = finished_executions(app, tenant, &b.id).await?;
    let relation = changes::parent_relation(app, tenant, &b).await?;
    let end = match b.completed_at {
        Some(c) if b.state.is_terminal() => c,
        _ => now,
    };
    let integration = app.store.integration(tenant).await.map_err(store_error)?;
    let pacing = Pacing::new(&b, integration.as_ref(), now);
    let mut v = BackfillView::new(b, now);
    v.relation(relation);
    Ok(LiveTpl {
        pacing,
        poll: v.b.state.is_active().then_some(POLL),
        chart: view::throughput(&finished, end, &v.b.timezone),
        chart_w: view::CHART_W,
        chart_h: view::CHART_H,
        v,
    })
}

/// The buttons that apply to the backfill's state. Not polled: refreshed after an action and
/// when the live part sees the state change (`state-changed`, fired by dashboard.js).
#[derive(Template)]
#[template(path = "backfill_actions.html")]
pub(super) struct ActionsTpl {
    pub(super) id: String,
    pub(super) state: &'static str,
    pub(super) failed: i64,
    pub(super) csrf: String,
    pub(super) actions: Vec<ActionButton>,
    /// A trial's result while the backfill waits for Continue or Cancel.
    pub(super) trial: Option<control::TrialPanel>,
}

pub(super) fn actions_tpl(u: &DashUser, b: &Backfill, facts: PsaFacts) -> ActionsTpl {
    ActionsTpl {
        id: b.id.clone(),
        state: b.state.as_str(),
        failed: b.failed_count,
        csrf: u.csrf.clone(),
        actions: actions(b, facts),
        trial: control::trial_panel(b),
    }
}

pub(super) async fn backfill_actions(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
) -> Response {
    let b = match load_backfill(&app, &u, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match PsaFacts::of(&app, &u, &b).await {
        Ok(facts) => page(StatusCode::OK, &actions_tpl(&u, &b, facts)),
        Err(r) => r,
    }
}

/// The rerun chain: ancestors (parents up to the root), this backfill, and its reruns.
pub(super) async fn chain(
    app: &AppState,
    u: &DashUser,
    b: &Backfill,
) -> Result<Vec<ChainEntry>, Response> {
    let tenant = u.principal.tenant_id();
    let entry = |x: &Backfill, relation, current| ChainEntry {
        id: x.id.clone(),
        title: view::display_name(x),
        short_id: view::short_id(&x.id),
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
    // Each child is named by its mode and its parent's: rerun, apply, revert.
    let mut modes: HashMap<&str, neo_domain::backfill::BackfillMode> =
        siblings.iter().map(|s| (s.id.as_str(), s.mode)).collect();
    modes.insert(b.id.as_str(), b.mode);
    let mut frontier = vec![b.id.clone()];
    let mut depth = 0;
    while !frontier.is_empty() && depth < 20 {
        let mut next = Vec::new();
        // Oldest first.
        for c in siblings.iter().rev() {
            let Some(p) = c
                .parent_backfill_run_id
                .as_ref()
                .filter(|p| frontier.contains(p))
            else {
                continue;
            };
            let relation = changes::child_relation(c.mode, modes.get(p.as_str()).copied());
            out.push(entry(
                c,
                match (relation, depth) {
                    ("rerun", 0) => "rerun",
                    ("rerun", _) => "rerun of a rerun",
                    ("apply", 0) => "apply",
                    ("apply", _) => "apply of a later run",
                    ("revert", 0) => "revert",
                    _ => "revert of a later run",
                },
                false,
            ));
            next.push(c.id.clone());
        }
        frontier = next;
        depth += 1;
    }
    Ok(out)
}

/// One line of the backfill's audit, as shown.
pub(super) struct HistoryRow {
    pub(super) at: String,
    pub(super) actor: String,
    pub(super) text: String,
}

fn history_text(e: &neo_store::BackfillEvent) -> String {
    let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "none".into());
    match e.what.as_str() {
        "name" => format!("renamed from {} to {}", v(&e.from), v(&e.to)),
        "max_in_flight" => format!("max in flight {} → {}", v(&e.from), v(&e.to)),
        "timezone" => format!("time zone {} → {}", v(&e.from), v(&e.to)),
        "max_credits" => format!("credit cap {} → {}", v(&e.from), v(&e.to)),
        "daily_execution_windows" => {
            let text = |x: &Option<String>| {
                x.as_deref()
                    .and_then(|j| serde_json::from_str::<WorkflowDailyExecutionWindows>(j).ok())
                    .map(|w| view::windows_text(&w))
                    .unwrap_or_else(|| "—".into())
            };
            format!("windows {} → {}", text(&e.from), text(&e.to))
        }
        signal => format!("{signal}: {} → {}", v(&e.from), v(&e.to)),
    }
}

/// Who did something, in words: an API key by its environment and last characters.
pub(super) async fn actor_names(app: &AppState, tenant: &str) -> HashMap<String, String> {
    app.store
        .list_api_keys(tenant)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|k| (k.id, format!("{} key …{}", k.env, k.hint)))
        .collect()
}

pub(super) fn actor_name(names: &HashMap<String, String>, actor: &str) -> String {
    names
        .get(actor)
        .cloned()
        .unwrap_or_else(|| actor.to_owned())
}

pub(super) async fn backfill_page(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
    Query(q): Query<ItemsQuery>,
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
        Some(action) => changes::child_flash(&b, action),
        None => None,
    };
    let facts = match PsaFacts::of(&app, &u, &b).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let changes_html = if facts.psa {
        match changes::changes_card(&app, u.principal.tenant_id(), &b).await {
            Ok(c) => Some(render(&c)),
            Err(r) => return r,
        }
    } else {
        None
    };
    let chain = match chain(&app, &u, &b).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let items = match items(&app, &u, &b, &q).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let failures = match super::failures::failures_tpl(&app, &u, &b).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let live = match live(&app, &u, b.clone()).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let tenant = u.principal.tenant_id();
    let names = actor_names(&app, tenant).await;
    let history = match app.store.backfill_history(tenant, &id, 50).await {
        Ok(h) => h,
        Err(e) => return store_error(e),
    };
    let now = app.clock.now();
    let mut v = BackfillView::new(b, now);
    v.created_by = actor_name(&names, &v.created_by);
    page(
        StatusCode::OK,
        &BackfillTpl {
            layout: Layout::new(&u, format!("Backfill {}", v.title), "backfills"),
            id,
            flash,
            live_html: render(&live),
            actions_html: render(&actions_tpl(&u, &v.b, facts)),
            banner: facts.psa.then(|| changes::mode_banner(&v.b)),
            changes_html,
            items_html: render(&items),
            failures_html: render(&failures),
            chain,
            history: history
                .iter()
                .map(|e| HistoryRow {
                    at: times::when(e.at, &v.timezone).to_string(),
                    actor: actor_name(&names, &e.actor),
                    text: history_text(e),
                })
                .collect(),
            csrf: u.csrf.clone(),
            v,
        },
    )
}

pub(super) async fn backfill_live(
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

/// Pause, resume, cancel, start, rerun-failed, apply and revert: the API's own functions.
pub(super) async fn action(
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
        "edit" => return edit(&app, &u, &headers, &id, &form).await,
        "apply" | "revert" => {
            return changes::create_child(&app, &u, &headers, &id, &action, &form).await;
        }
        "rerun-failed" => {
            let created = api::rerun_failed_backfill(&app, &u.principal, &id, None, None).await;
            return changes::child_created(&headers, created, "rerun");
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

/// The settings form: name, max in flight and credit cap, through the API's own edit.
async fn edit(
    app: &AppState,
    u: &DashUser,
    headers: &HeaderMap,
    id: &str,
    form: &FormData,
) -> Response {
    let max_in_flight = match form.get("max_in_flight").map(str::trim) {
        None | Some("") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "error",
                    &format!(
                        "Max in flight must be a whole number from {} to {}.",
                        api::MIN_IN_FLIGHT,
                        api::MAX_IN_FLIGHT
                    ),
                )
            }
        },
    };
    // Sent only when the form has the field; empty removes the cap.
    let max_credits = match form.get("max_credits").map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(n) => match n.parse::<i64>() {
            Ok(n) => Some(Some(n)),
            Err(_) => {
                return message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "error",
                    "The credit cap must be a whole number of credits, or empty for no cap.",
                )
            }
        },
    };
    let req = crate::models::EditBackfillRequest {
        name: form.get("name").map(str::to_owned),
        max_in_flight,
        daily_execution_windows: None,
        timezone: None,
        max_credits,
        max_in_flight_per_company: None,
        company_blackouts: None,
    };
    match api::edit_backfill(app, &u.principal, id, req).await {
        Ok(ok) if is_htmx(headers) => {
            let (edited, _) = ok.into_parts();
            let budget = edited.pause_reason == Some(PauseReason::BudgetReached);
            let mut r = message(
                StatusCode::OK,
                "ok",
                if budget {
                    "Saved. It stays paused at its credit cap until you resume it."
                } else {
                    "Saved. The new settings apply from the next dispatch round."
                },
            );
            r.headers_mut()
                .insert("hx-trigger", HeaderValue::from_static("refresh-live"));
            r
        }
        Ok(_) => redirect(headers, &format!("/backfills/{id}")),
        Err(e) => api_error(&e),
    }
}

pub(super) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}
