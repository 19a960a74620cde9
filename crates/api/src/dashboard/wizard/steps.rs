//! What each step of the wizard is checked with before the next one opens, and the review.
//! Every check is a call into the rules the API's create runs — [`check_backfill_target`] and
//! the one-active-backfill-per-workflow rule ([`BackfillRunState::is_active`]) for step 1, the
//! API's verify for step 2, the window, time zone, `max_in_flight`, `start_at`, `max_credits`
//! and `trial.sample_size` rules for step 3, and
//! the create's cost estimate and credit warning for the review — so a step that passes here
//! is not refused at Create for a reason the wizard could have shown at that step.

use super::problems::Note;
use super::*;

/// Step 1: a workflow is picked, can be backfilled, and has no active backfill.
pub(super) async fn check_workflow(
    app: &AppState,
    u: &DashUser,
    input: &WizardInput,
) -> Result<StepMarks, Response> {
    let mut m = StepMarks::new(1);
    let at = |text: String| Problem::at(1, Some("workflow-choices"), text);
    let wf = match (input.workflow_id, &input.workflow) {
        (None, _) => {
            m.push(at("Pick a workflow to continue.".into()));
            return Ok(m);
        }
        (Some(id), None) => {
            m.push(at(format!(
                "Workflow #{id} no longer exists; reload the page and pick another."
            )));
            return Ok(m);
        }
        (Some(_), Some(wf)) => wf,
    };
    if let Err(r) = check_backfill_target(wf.state, wf.autonomy_type) {
        let e = api::target_refused(r, &wf.name);
        m.push(Problem::of("target_workflow_id", &e.message, &input.shape));
        return Ok(m);
    }
    if let Some(b) = active_backfill_of(app, u.principal.tenant_id(), wf.id).await? {
        let mut p = at(format!(
            "{} already has an active backfill ({}, {}), and a workflow runs one at a time: finish, cancel or delete it first, or pick another workflow.",
            wf.name, b.id, b.state
        ));
        p.link = Some((format!("/backfills/{}", b.id), format!("Open {}", b.id)));
        m.push(p);
    }
    Ok(m)
}

/// The active backfill of one workflow, if any.
async fn active_backfill_of(
    app: &AppState,
    tenant: &str,
    workflow: i64,
) -> Result<Option<ActiveBackfill>, Response> {
    let filter = BackfillFilter {
        states: active_states(),
        target_workflow_id: Some(workflow),
    };
    let page = app
        .store
        .list_backfills(tenant, &filter, None, 1)
        .await
        .map_err(store_error)?;
    Ok(page.items.into_iter().next().map(|b| ActiveBackfill {
        state: b.state.as_str(),
        id: b.id,
    }))
}

/// The input a filter problem without a field of its own is shown at.
fn filter_input(shape: &problems::FormShape) -> &'static str {
    match shape.filter_mode.as_str() {
        "ids" => "entity_ids_text",
        "builder" => "builder",
        _ => "filter_spec",
    }
}

/// An API error that names a field, as the wizard shows it.
pub(super) fn api_problem(e: &ApiError, shape: &problems::FormShape) -> Option<Problem> {
    let field = e.details.as_ref()?.get("field")?.as_str()?;
    Some(Problem::of(field, &e.message, shape))
}

/// What the preflight (step 2's check) found.
pub(super) struct Preflight {
    pub(super) status: StatusCode,
    pub(super) level: VerifyLevel,
    /// In words: an error is the problem's text.
    pub(super) message: String,
    pub(super) matching: Option<i64>,
    pub(super) cost: Option<BackfillCostEstimate>,
    pub(super) warnings: Vec<String>,
    pub(super) marks: StepMarks,
}

/// Step 2: the API's verify of the filter (an id list is checked against the PSA when one is
/// connected), with its cost estimate.
pub(super) async fn preflight(
    app: &AppState,
    u: &DashUser,
    input: &WizardInput,
) -> Result<Preflight, Response> {
    let mut marks = StepMarks::new(2);
    if let Some(n) = &input.ids_notice {
        marks.notes.push(Note {
            input: "entity_ids_text".into(),
            text: format!("{n}."),
        });
    }
    let notice: Vec<String> = input.ids_notice.iter().map(|n| format!("{n}.")).collect();
    let failed = |mut marks: StepMarks, status: StatusCode, p: Problem| {
        let message = p.text.clone();
        if p.step == 2 {
            marks.push(p);
        }
        Ok(Preflight {
            status,
            level: VerifyLevel::Error,
            message,
            matching: None,
            cost: None,
            warnings: notice.clone(),
            marks,
        })
    };
    let Some(wf) = &input.workflow else {
        let p = Problem::at(1, None, "Pick a workflow first (step 1).");
        return failed(marks, StatusCode::UNPROCESSABLE_ENTITY, p);
    };
    let filter_spec = match &input.filter_spec {
        Ok(f) => f.clone(),
        Err(p) => return failed(marks, StatusCode::UNPROCESSABLE_ENTITY, p.clone()),
    };
    let req = VerifyBackfillRequest {
        entity_type: wf.entity_type,
        filter_spec,
    };
    match api::verify_filter(app, &u.principal, req).await {
        Ok(ok) => {
            let (v, warnings) = ok.into_parts();
            if v.level == VerifyLevel::Error {
                let p = match &v.field {
                    Some(f) => Problem::of(
                        f,
                        v.message.trim_start_matches("invalid filter: "),
                        &input.shape,
                    ),
                    None => {
                        Problem::at(2, Some(filter_input(&input.shape)), capitalise(&v.message))
                    }
                };
                return failed(marks, StatusCode::OK, p);
            }
            let mut shown: Vec<String> = warnings.into_iter().filter(|w| *w != v.message).collect();
            shown.extend(notice.iter().cloned());
            Ok(Preflight {
                status: StatusCode::OK,
                level: v.level,
                message: capitalise(&v.message),
                cost: v
                    .matching_entities
                    .map(|n| BackfillCostEstimate::new(wf.credit_tier, n)),
                matching: v.matching_entities,
                warnings: shown,
                marks,
            })
        }
        Err(e) => {
            let at_filter =
                || Problem::at(2, Some(filter_input(&input.shape)), capitalise(&e.message));
            // A type the PSA cannot filter is the filter's problem (ids would do), unless the
            // workflow's type is not backfillable at all (`none`: step 1's).
            let p = if e.code == "entity_type_not_supported" && wf.entity_type.is_backfillable() {
                at_filter()
            } else {
                api_problem(&e, &input.shape).unwrap_or_else(at_filter)
            };
            let status = if e.status.is_server_error() {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                e.status
            };
            failed(marks, status, p)
        }
    }
}

/// Step 3: the windows, the time zone, `max_in_flight` and the operator controls (start,
/// credit cap, trial), every problem at once.
pub(super) fn check_settings(input: &WizardInput) -> StepMarks {
    let mut m = StepMarks::new(3);
    if let Some(w) = &input.windows {
        if w.is_always_open() {
            m.push(Problem::at(
                3,
                Some("windows-editor"),
                "Add at least one window, or choose \u{201c}Always open\u{201d}.",
            ));
        } else if let Err(e) = w.validate("daily_execution_windows") {
            m.push(Problem::of(&e.field, &e.message, &input.shape));
        }
    }
    if let Err(e) = neo_domain::windows::validate_timezone(&input.timezone, "timezone") {
        m.push(Problem::of(&e.field, &e.message, &input.shape));
    }
    if let Err(p) = &input.max_in_flight {
        m.push(p.clone());
    }
    for p in input
        .control
        .problems(input.listed(), input.now, &input.shape)
    {
        m.push(p);
    }
    m
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "review.html")]
pub(super) struct ReviewTpl {
    pub(super) workflow: Option<String>,
    pub(super) credit_tier: i64,
    /// The filter in short: an id list's size and first ids, or a rule group's JSON.
    pub(super) filter: Result<String, String>,
    pub(super) filter_is_json: bool,
    pub(super) schedule: String,
    pub(super) max_in_flight: String,
    pub(super) draft: bool,
    /// For a `psa_actions` workflow, `shadow` or `live`; empty for any other.
    pub(super) mode: &'static str,
    /// The name as it will be stored, or why it will be refused.
    pub(super) name: Result<Option<String>, String>,
    /// The entities the backfill runs over (the preflight's count), or why it is not known.
    pub(super) entities: Result<i64, String>,
    pub(super) entities_note: Option<String>,
    pub(super) cost: Option<BackfillCostEstimate>,
    pub(super) credits_left: Option<i64>,
    pub(super) allowance: i64,
    pub(super) credit_warning: Option<String>,
    /// The scheduled start in the backfill's zone ("Thu 24 Dec 22:00 GMT (Europe/London)"),
    /// or why it will be refused.
    pub(super) start: Result<Option<String>, String>,
    pub(super) credit_cap: Result<Option<i64>, String>,
    /// A cap below the cost estimate, in words.
    pub(super) cap_note: Option<String>,
    pub(super) trial: Result<Option<i64>, String>,
}

/// Ids the review names before "and N more".
const REVIEW_IDS: usize = 10;

/// Step 4: what will be created, what it will cost, and whether the month's credits cover it.
pub(super) async fn review(
    app: &AppState,
    u: &DashUser,
    input: WizardInput,
) -> Result<ReviewTpl, Response> {
    let settings = check_settings(&input);
    let windows = input.windows.clone().unwrap_or_default();
    // The problems of step 3's other fields are shown on their own lines.
    let own_line = [
        "max_in_flight",
        "start_at",
        "max_credits",
        "trial_sample_size",
    ];
    let schedule = match settings
        .problems
        .iter()
        .find(|p| !own_line.contains(&p.input.as_deref().unwrap_or("")))
    {
        Some(p) => p.text.clone(),
        None => {
            view::windows_summary(&windows, &input.timezone, app.clock.now()).unwrap_or_else(|e| e)
        }
    };
    let pf = preflight(app, u, &input).await?;
    // What the create counts: an id list's length (ids the PSA lacks included: they are run
    // and fail), or the PSA's matches capped by the limit.
    let listed = input
        .filter_spec
        .as_ref()
        .ok()
        .and_then(|v| v.get("entity_ids"))
        .and_then(Value::as_array)
        .map(|ids| ids.len() as i64);
    let (entities, entities_note) = match (pf.level, listed.or(pf.matching)) {
        (VerifyLevel::Error, _) | (_, None) => (Err(pf.message.clone()), None),
        (VerifyLevel::Warning, Some(n)) => (Ok(n), Some(pf.message.clone())),
        (VerifyLevel::Ok, Some(n)) => (Ok(n), None),
    };
    let tier = input.workflow.as_ref().map(|w| w.credit_tier).unwrap_or(0);
    let cost = entities
        .as_ref()
        .ok()
        .filter(|_| input.workflow.is_some())
        .map(|n| BackfillCostEstimate::new(tier, *n));
    let (credits_left, credit_warning) = match &cost {
        Some(c) => {
            let left = api::credits_left(app, &u.principal)
                .await
                .map_err(|e| api_error(&e))?;
            let warning = api::credit_warnings(c, left).into_iter().next().map(|w| {
                format!(
                    "{}; the backfill can still be created, and each succeeded entity is charged.",
                    capitalise(&w)
                )
            });
            (Some(left.max(0)), warning)
        }
        None => (None, None),
    };
    let filter = match &input.filter_spec {
        Ok(v) => match v.get("entity_ids").and_then(Value::as_array) {
            Some(ids) => {
                let mut s = ids
                    .iter()
                    .take(REVIEW_IDS)
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if ids.len() > REVIEW_IDS {
                    s.push_str(&format!(" and {} more", ids.len() - REVIEW_IDS));
                }
                let notice = input
                    .ids_notice
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                Ok(format!(
                    "{} entity id{}{notice}: {s}",
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" }
                ))
            }
            None => Ok(serde_json::to_string_pretty(v).unwrap_or_default()),
        },
        Err(p) => Err(p.text.clone()),
    };
    let problem = |id: &str| {
        settings
            .problems
            .iter()
            .find(|p| p.input.as_deref() == Some(id))
            .map(|p| p.text.clone())
    };
    let field = |id: &str, v: &Result<Option<i64>, Problem>| match (problem(id), v) {
        (Some(e), _) => Err(e),
        (None, Ok(n)) => Ok(*n),
        (None, Err(p)) => Err(p.text.clone()),
    };
    let credit_cap = field("max_credits", &input.control.max_credits);
    let cap_note = match (&credit_cap, &cost) {
        (Ok(Some(cap)), Some(c)) if *cap < c.total_credits_estimated => Some(format!(
            "The credit cap ({cap}) is below the cost estimate ({} credits): the backfill pauses at the cap until you raise it.",
            c.total_credits_estimated
        )),
        _ => None,
    };
    Ok(ReviewTpl {
        start: match (problem("start_at"), &input.control.start_at) {
            (Some(e), _) => Err(e),
            (None, Ok(Some(s))) => {
                let w = times::when(s.at, &input.timezone);
                Ok(Some(format!("{} ({})", w.text, w.zone)))
            }
            (None, Ok(None)) => Ok(None),
            (None, Err(p)) => Err(p.text.clone()),
        },
        trial: field("trial_sample_size", &input.control.sample_size),
        credit_cap,
        cap_note,
        filter_is_json: input
            .filter_spec
            .as_ref()
            .is_ok_and(|v| v.get("entity_ids").is_none()),
        filter,
        credit_tier: tier,
        workflow: input
            .workflow
            .as_ref()
            .map(|w| format!("{} (#{})", w.name, w.id)),
        schedule,
        max_in_flight: match input.max_in_flight {
            Ok(Some(n)) => n.to_string(),
            Ok(None) => format!("{} (default)", api::DEFAULT_IN_FLIGHT),
            Err(p) => p.text,
        },
        draft: input.draft,
        mode: match (&input.workflow, input.mode) {
            (Some(w), m) if neo_domain::executor::ExecutorSpec::is_psa_actions(&w.executor) => m
                .unwrap_or(neo_domain::backfill::BackfillMode::Live)
                .as_str(),
            (_, Some(m)) => m.as_str(),
            _ => "",
        },
        name: match &input.name {
            Some(n) => {
                api::check_name(n).map_err(|e| Problem::of(&e.field, &e.message, &input.shape).text)
            }
            None => Ok(None),
        },
        entities,
        entities_note,
        cost,
        credits_left,
        allowance: u.principal.tenant.monthly_credit_allowance,
        credit_warning,
    })
}
