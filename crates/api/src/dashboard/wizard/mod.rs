//! The four-step wizard: workflow, filter with preflight, windows, review; creates through
//! the API's own create.
//!
//! Each step is checked on the server before the next one opens (`POST /backfills/check`,
//! [`steps`]), with the functions the create itself runs (the target and active-backfill
//! rules, the API's verify, the window, time zone and `max_in_flight` rules), so the wizard has
//! no rule of its own to drift from the API's. What a check finds is shown next to the input it
//! concerns, in words ([`problems`]); the page's script places it there and marks the input
//! `aria-invalid`. The form is read once, here ([`wizard_input`]): an id list pasted in the
//! "Id list" tab is read by the domain's [`parse_id_list`] into the `entity_ids` the API takes.
//! The rule builder's fields come from the server as well ([`vocabulary`]): per entity type,
//! what the tenant's PSA can filter on, so the builder offers nothing the API would refuse.
//! A workflow that writes to the PSA (`psa_actions`) gets a "Shadow run" choice at review:
//! a change to many records is previewed before it is made. Step 3 also takes the optional
//! operator controls — a scheduled start in the backfill's zone, a credit cap, a trial run's
//! sample size ([`control`]).

mod control;
mod problems;
mod steps;
mod vocabulary;

#[allow(unused_imports)]
use super::*;
use neo_domain::id_list::parse_id_list;
use problems::{FormShape, Problem, StepMarks};
use std::collections::HashMap;

/// The backfill that keeps a workflow from getting another one.
pub(super) struct ActiveBackfill {
    pub(super) id: String,
    pub(super) state: &'static str,
}

pub(super) struct WorkflowChoice {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) entity_type: String,
    pub(super) credit_tier: i64,
    pub(super) autonomy: String,
    /// The executor's type: the shadow-run choice is offered for `psa_actions` alone.
    pub(super) executor: String,
    pub(super) checked: bool,
    pub(super) active: Option<ActiveBackfill>,
    /// Why a rule group cannot target its entity type on the tenant's PSA ("ids only on
    /// ConnectWise: …"); `None` where it can, or without an integration.
    pub(super) ids_only: Option<String>,
}

#[derive(Template)]
#[template(path = "wizard.html")]
pub(super) struct WizardTpl {
    pub(super) layout: Layout,
    pub(super) workflows: Vec<WorkflowChoice>,
    pub(super) weekdays: Vec<(&'static str, String)>,
    pub(super) timezones: Vec<String>,
    pub(super) default_filter: String,
    pub(super) min_in_flight: i64,
    pub(super) max_in_flight: i64,
    pub(super) default_in_flight: i64,
    /// "Clone into a new backfill": the source's settings, filled in.
    pub(super) clone: Option<ClonePrefill>,
    /// The rule builder's fields per entity type on the tenant's PSA, as JSON
    /// ([`vocabulary`]).
    pub(super) vocabulary: String,
    /// The workflow picked at first writes to the PSA: the shadow-run choice shows at once
    /// (the page's script follows later picks).
    pub(super) shadow_offered: bool,
    /// A clone of a shadow run starts as one.
    pub(super) shadow_checked: bool,
}

impl WizardTpl {
    /// The cloned source's windows (empty: always open, or no clone).
    pub(super) fn cloned_windows(&self) -> &str {
        self.clone.as_ref().map_or("", |c| c.windows_json.as_str())
    }
}

/// What a clone starts from: its source backfill's workflow, filter, windows, zone, cap and
/// name. The wizard checks them as it checks typed input.
pub(super) struct ClonePrefill {
    pub(super) from_id: String,
    pub(super) from_title: String,
    /// The windows as the API writes them; empty when always open.
    pub(super) windows_json: String,
    pub(super) timezone: String,
    pub(super) max_in_flight: i64,
    pub(super) name: String,
    pub(super) max_credits: Option<i64>,
    pub(super) trial_sample_size: Option<i64>,
}

/// Every workflow of the tenant (up to 1,000).
pub(super) async fn all_workflows(app: &AppState, tenant: &str) -> Result<Vec<Workflow>, Response> {
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

/// The states [`BackfillRunState::is_active`] counts: a workflow has at most one backfill in
/// them (the store refuses a second one).
fn active_states() -> Vec<BackfillRunState> {
    BackfillRunState::ALL
        .iter()
        .copied()
        .filter(|s| s.is_active())
        .collect()
}

/// The active backfill of each workflow that has one (up to 1,000 workflows).
async fn active_backfills(
    app: &AppState,
    tenant: &str,
) -> Result<HashMap<i64, ActiveBackfill>, Response> {
    let filter = BackfillFilter {
        states: active_states(),
        ..Default::default()
    };
    let mut out = HashMap::new();
    let mut before: Option<String> = None;
    for _ in 0..5 {
        let page = app
            .store
            .list_backfills(tenant, &filter, before.as_deref(), 200)
            .await
            .map_err(store_error)?;
        before = page.items.last().map(|b| b.id.clone());
        for b in page.items {
            out.entry(b.target_workflow_id).or_insert(ActiveBackfill {
                id: b.id,
                state: b.state.as_str(),
            });
        }
        if !page.has_more {
            break;
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
pub(super) struct WizardQuery {
    pub(super) workflow: Option<i64>,
    /// A backfill to clone.
    pub(super) from: Option<String>,
}

pub(super) async fn wizard(
    State(app): State<AppState>,
    u: DashUser,
    Query(q): Query<WizardQuery>,
) -> Response {
    let tenant = u.principal.tenant_id();
    let workflows = match all_workflows(&app, tenant).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut active = match active_backfills(&app, tenant).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let source = match q.from.as_deref() {
        Some(id) => match load_backfill(&app, &u, id).await {
            Ok(b) => Some(b),
            Err(r) => return r,
        },
        None => None,
    };
    let picked = source.as_ref().map(|b| b.target_workflow_id).or(q.workflow);
    let psa = match app.store.integration(tenant).await {
        Ok(i) => i.and_then(|i| neo_psa::Psa::parse(&i.psa)),
        Err(e) => return store_error(e),
    };
    let mut timezones: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .filter(|n| neo_domain::windows::validate_timezone(n, "timezone").is_ok())
        .collect();
    timezones.sort();
    let shadow_offered = workflows.iter().any(|w| {
        picked == Some(w.id) && neo_domain::executor::ExecutorSpec::is_psa_actions(&w.executor)
    });
    let shadow_checked = shadow_offered
        && source
            .as_ref()
            .is_some_and(|b| b.mode == neo_domain::backfill::BackfillMode::Shadow);
    page(
        StatusCode::OK,
        &WizardTpl {
            layout: Layout::new(&u, "New backfill", "new"),
            workflows: workflows
                .into_iter()
                .filter(|w| check_backfill_target(w.state, w.autonomy_type).is_ok())
                .map(|w| {
                    let active = active.remove(&w.id);
                    WorkflowChoice {
                        checked: picked == Some(w.id) && active.is_none(),
                        active,
                        ids_only: psa.and_then(|p| vocabulary::ids_only_mark(p, w.entity_type)),
                        id: w.id,
                        description: w.description.unwrap_or_default(),
                        entity_type: w.entity_type.to_string(),
                        credit_tier: w.credit_tier,
                        autonomy: w.autonomy_type.to_string(),
                        executor: w
                            .executor
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        name: w.name,
                    }
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
            default_filter: source
                .as_ref()
                .and_then(|b| serde_json::to_string_pretty(&b.filter_spec).ok())
                .unwrap_or_else(|| "{\n  \"entity_ids\": []\n}".into()),
            clone: source.map(|b| ClonePrefill {
                from_title: view::display_name(&b),
                windows_json: if b.daily_execution_windows.is_always_open() {
                    String::new()
                } else {
                    serde_json::to_string(&b.daily_execution_windows).unwrap_or_default()
                },
                timezone: b.timezone.clone(),
                max_in_flight: b.max_in_flight,
                name: b.name.clone().unwrap_or_default(),
                max_credits: b.max_credits,
                trial_sample_size: b.trial_sample_size,
                from_id: b.id,
            }),
            min_in_flight: api::MIN_IN_FLIGHT,
            max_in_flight: api::MAX_IN_FLIGHT,
            default_in_flight: api::DEFAULT_IN_FLIGHT,
            vocabulary: vocabulary::Vocabulary::of(psa).json(),
            shadow_offered,
            shadow_checked,
        },
    )
}

/// What the wizard's form says, before the API validates it.
struct WizardInput {
    /// The id picked in step 1, and that workflow if it exists.
    workflow_id: Option<i64>,
    workflow: Option<Workflow>,
    filter_spec: Result<Value, Problem>,
    /// What reading a pasted id list changed ("2 duplicates removed").
    ids_notice: Option<String>,
    windows: Option<WorkflowDailyExecutionWindows>,
    timezone: String,
    max_in_flight: Result<Option<i64>, Problem>,
    draft: bool,
    /// The backfill's own name (step 4), if one was typed.
    name: Option<String>,
    /// "Shadow run" ticked (step 4); the API refuses it for a workflow that is not
    /// `psa_actions`.
    mode: Option<neo_domain::backfill::BackfillMode>,
    /// Start at, credit cap and trial sample size (step 3).
    control: control::ControlInput,
    /// When the form was read (a start is checked against it).
    now: Timestamp,
    shape: FormShape,
}

impl WizardInput {
    /// The length of an explicit id list, which bounds a trial's sample as at create.
    fn listed(&self) -> Option<i64> {
        self.filter_spec
            .as_ref()
            .ok()
            .and_then(|v| v.get("entity_ids"))
            .and_then(Value::as_array)
            .map(|ids| ids.len() as i64)
    }
}

/// A wizard step's POST: the form, its CSRF token checked, and what it says so far.
async fn posted_input(
    app: &AppState,
    u: &DashUser,
    body: &[u8],
) -> Result<(FormData, WizardInput), Response> {
    let form = FormData::parse(body);
    u.check_csrf(form.get("csrf"))?;
    let input = wizard_input(app, u, &form).await?;
    Ok((form, input))
}

async fn wizard_input(
    app: &AppState,
    u: &DashUser,
    form: &FormData,
) -> Result<WizardInput, Response> {
    let workflow_id = form.get("workflow").and_then(|w| w.parse::<i64>().ok());
    let workflow = match workflow_id {
        Some(id) => app
            .store
            .workflow(u.principal.tenant_id(), id)
            .await
            .map_err(store_error)?,
        None => None,
    };
    let mut shape = FormShape {
        filter_mode: form.get("filter_mode").unwrap_or("json").to_owned(),
        ..Default::default()
    };
    let mut ids_notice = None;
    let filter_spec = if shape.filter_mode == "ids" {
        match parse_id_list(form.get("entity_ids_text").unwrap_or("")) {
            Ok(list) => {
                ids_notice = list.notice();
                Ok(serde_json::json!({ "entity_ids": list.ids }))
            }
            Err(m) => Err(Problem::at(2, Some("entity_ids_text"), m)),
        }
    } else {
        let input = if shape.filter_mode == "builder" {
            "builder"
        } else {
            "filter_spec"
        };
        let raw = form.get("filter_spec").unwrap_or("").trim();
        if raw.is_empty() {
            Err(Problem::at(
                2,
                Some(input),
                "The filter is empty: build rules, paste JSON, or paste ids in the Id list tab.",
            ))
        } else {
            serde_json::from_str::<Value>(raw).map_err(|e| {
                Problem::at(
                    2,
                    Some(input),
                    format!(
                        "The filter is not valid JSON: {e}. To paste ids one a line, use the Id list tab."
                    ),
                )
            })
        }
    };
    let windows = if form.get("windows_mode") == Some("windows") {
        let mut w = WorkflowDailyExecutionWindows::default();
        for (d, day) in WEEKDAYS.iter().enumerate() {
            let starts = form.all(&format!("{day}_start"));
            let ends = form.all(&format!("{day}_end"));
            for (row, (s, e)) in starts.iter().zip(ends.iter()).enumerate() {
                // A row left empty is no window (the "Add window" button adds one).
                if s.trim().is_empty() && e.trim().is_empty() {
                    continue;
                }
                w.day_mut(d).push(WorkflowTimeWindow {
                    run_start_time: s.trim().to_owned(),
                    run_end_time: e.trim().to_owned(),
                });
                shape.window_rows[d].push(row);
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
        Some(s) => match s.parse::<i64>() {
            Ok(n) => api::check_max_in_flight(n)
                .map(|_| Some(n))
                .map_err(|e| Problem::of(&e.field, &e.message, &shape)),
            Err(_) => Err(Problem::at(
                3,
                Some("max_in_flight"),
                format!("Max in flight must be a whole number, not \u{201c}{s}\u{201d}."),
            )),
        },
    };
    let control = control::read(
        form.get("start_at"),
        form.get("max_credits"),
        form.get("trial_sample_size"),
        &timezone,
    );
    Ok(WizardInput {
        control,
        now: app.clock.now(),
        workflow_id,
        workflow,
        filter_spec,
        ids_notice,
        windows,
        timezone,
        max_in_flight,
        draft: form.get("draft").is_some(),
        name: form
            .get("name")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        mode: (form.get("mode") == Some("shadow"))
            .then_some(neo_domain::backfill::BackfillMode::Shadow),
        shape,
    })
}

#[derive(Template)]
#[template(path = "wizard_marks.html")]
struct MarksTpl<'a> {
    m: &'a StepMarks,
}

/// The marks of a step as the page's script reads them: an inert `<template>` holding each
/// problem and note, keyed by the id of its input (`err-{input}`, `note-{input}`).
fn marks_html(m: &StepMarks) -> String {
    render(&MarksTpl { m })
}

/// A message fragment followed by a step's marks.
fn message_with_marks(status: StatusCode, class: &str, text: &str, m: &StepMarks) -> Response {
    let msg = render(&MessageTpl {
        class,
        text,
        link: None,
    });
    (status, Html(msg + &marks_html(m))).into_response()
}

#[derive(Template)]
#[template(path = "preflight.html")]
pub(super) struct PreflightTpl {
    pub(super) level: &'static str,
    pub(super) class: &'static str,
    pub(super) message: String,
    pub(super) matching: Option<i64>,
    pub(super) cost: Option<BackfillCostEstimate>,
    pub(super) warnings: Vec<String>,
    pub(super) marks: String,
}

pub(super) async fn preflight(State(app): State<AppState>, u: DashUser, body: Bytes) -> Response {
    let (_, input) = match posted_input(&app, &u, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pf = match steps::preflight(&app, &u, &input).await {
        Ok(pf) => pf,
        Err(r) => return r,
    };
    let (level, class) = match pf.level {
        VerifyLevel::Ok => ("OK", "ok"),
        VerifyLevel::Warning => ("WARNING", "warn"),
        VerifyLevel::Error => ("ERROR", "error"),
    };
    page(
        pf.status,
        &PreflightTpl {
            level,
            class,
            cost: pf.cost,
            matching: pf.matching,
            warnings: pf.warnings,
            message: pf.message,
            marks: marks_html(&pf.marks),
        },
    )
}

pub(super) async fn windows_summary(
    State(app): State<AppState>,
    u: DashUser,
    body: Bytes,
) -> Response {
    let (_, input) = match posted_input(&app, &u, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let marks = steps::check_settings(&input);
    if !marks.problems.is_empty() {
        let n = marks.problems.len();
        let text = if n == 1 {
            "No summary until the problem marked above is fixed.".to_owned()
        } else {
            format!("No summary until the {n} problems marked above are fixed.")
        };
        return message_with_marks(StatusCode::OK, "pending", &text, &marks);
    }
    let windows = input.windows.unwrap_or_default();
    match view::windows_summary(&windows, &input.timezone, app.clock.now()) {
        Ok(s) => message_with_marks(StatusCode::OK, "ok", &s, &marks),
        Err(e) => message_with_marks(StatusCode::OK, "error", &e, &marks),
    }
}

#[derive(Template)]
#[template(path = "wizard_check.html")]
struct CheckTpl {
    ok: bool,
    /// The step to show: the one asked for, or the first with a problem.
    open: u8,
    summary: String,
    marks: Vec<String>,
}

/// `POST /backfills/check`: checks every step before `step` (the one the user wants to open),
/// in order, and says which step to show: `step` when all pass, else the first with a problem.
pub(super) async fn check_steps(State(app): State<AppState>, u: DashUser, body: Bytes) -> Response {
    let (form, input) = match posted_input(&app, &u, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let want: u8 = form
        .get("step")
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
        .clamp(1, 4);
    let mut marks = Vec::new();
    for step in 1..want {
        let m = match step {
            1 => steps::check_workflow(&app, &u, &input).await,
            2 => steps::preflight(&app, &u, &input).await.map(|p| p.marks),
            _ => Ok(steps::check_settings(&input)),
        };
        let m = match m {
            Ok(m) => m,
            Err(r) => return r,
        };
        let failed = !m.problems.is_empty();
        let n = m.problems.len();
        marks.push(marks_html(&m));
        if failed {
            let summary = if n == 1 {
                "Fix the problem marked in this step to continue.".to_owned()
            } else {
                format!("Fix the {n} problems marked in this step to continue.")
            };
            return page(
                StatusCode::OK,
                &CheckTpl {
                    ok: false,
                    open: step,
                    summary,
                    marks,
                },
            );
        }
    }
    page(
        StatusCode::OK,
        &CheckTpl {
            ok: true,
            open: want,
            summary: String::new(),
            marks,
        },
    )
}

pub(super) async fn review(State(app): State<AppState>, u: DashUser, body: Bytes) -> Response {
    let (_, input) = match posted_input(&app, &u, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match steps::review(&app, &u, input).await {
        Ok(t) => page(StatusCode::OK, &t),
        Err(r) => r,
    }
}

pub(super) async fn create(
    State(app): State<AppState>,
    u: DashUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, input) = match posted_input(&app, &u, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let refuse = |p: Problem| {
        let mut m = StepMarks::new(p.step);
        let text = p.text.clone();
        m.problems.push(p);
        message_with_marks(StatusCode::UNPROCESSABLE_ENTITY, "error", &text, &m)
    };
    let Some(wf) = input.workflow else {
        return refuse(Problem::at(
            1,
            Some("workflow-choices"),
            "Pick a workflow to continue.",
        ));
    };
    let filter_spec = match input.filter_spec {
        Ok(f) => f,
        Err(p) => return refuse(p),
    };
    let max_in_flight = match input.max_in_flight {
        Ok(m) => m,
        Err(p) => return refuse(p),
    };
    // Only what the form could not read is refused here; the API's create checks the rest.
    let c = input.control;
    let (start_at, max_credits, sample_size) = match (c.start_at, c.max_credits, c.sample_size) {
        (Ok(s), Ok(m), Ok(n)) => (s, m, n),
        (Err(p), _, _) | (_, Err(p), _) | (_, _, Err(p)) => return refuse(p),
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
        name: input.name,
        mode: input.mode,
        start_at: start_at.map(|s| s.rfc3339),
        max_credits,
        trial: sample_size.map(|sample_size| crate::models::TrialRequest { sample_size }),
        max_in_flight_per_company: None,
        company_blackouts: None,
    };
    match api::create_backfill(&app, &u.principal, req, None).await {
        Ok(ok) => {
            let (created, _) = ok.into_parts();
            redirect(
                &headers,
                &format!("/backfills/{}?flash=created", created.backfill.id),
            )
        }
        Err(e) => match steps::api_problem(&e, &input.shape) {
            Some(p) if !e.status.is_server_error() => {
                let text = p.text.clone();
                let mut m = StepMarks::new(p.step);
                m.problems.push(p);
                message_with_marks(e.status, "error", &text, &m)
            }
            _ => api_error(&e),
        },
    }
}
