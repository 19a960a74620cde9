//! The four-step wizard: workflow, filter with preflight, windows, review; creates through
//! the API's own create.

#[allow(unused_imports)]
use super::*;

pub(super) struct WorkflowChoice {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) entity_type: String,
    pub(super) credit_tier: i64,
    pub(super) autonomy: String,
    pub(super) checked: bool,
}

#[derive(Template)]
#[template(path = "wizard.html")]
pub(super) struct WizardTpl {
    pub(super) layout: Layout,
    pub(super) workflows: Vec<WorkflowChoice>,
    pub(super) weekdays: Vec<(&'static str, String)>,
    pub(super) timezones: Vec<String>,
    pub(super) default_filter: String,
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

#[derive(Deserialize)]
pub(super) struct WizardQuery {
    pub(super) workflow: Option<i64>,
}

pub(super) async fn wizard(
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
pub(super) struct WizardInput {
    pub(super) workflow: Option<Workflow>,
    pub(super) filter_spec: Result<Value, String>,
    pub(super) windows: Option<WorkflowDailyExecutionWindows>,
    pub(super) timezone: String,
    pub(super) max_in_flight: Result<Option<i64>, String>,
    pub(super) draft: bool,
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

pub(super) async fn wizard_input(
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
pub(super) struct PreflightTpl {
    pub(super) level: &'static str,
    pub(super) class: &'static str,
    pub(super) message: String,
    pub(super) matching: Option<i64>,
    pub(super) cost: Option<BackfillCostEstimate>,
    pub(super) warnings: Vec<String>,
}

pub(super) async fn preflight(State(app): State<AppState>, u: DashUser, body: Bytes) -> Response {
    let (_, input) = match posted_input(&app, &u, &body).await {
        Ok(x) => x,
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

pub(super) async fn windows_summary(
    State(app): State<AppState>,
    u: DashUser,
    body: Bytes,
) -> Response {
    let (form, input) = match posted_input(&app, &u, &body).await {
        Ok(x) => x,
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
pub(super) struct ReviewTpl {
    pub(super) workflow: Option<String>,
    pub(super) credit_tier: i64,
    pub(super) filter: Result<String, String>,
    pub(super) schedule: String,
    pub(super) max_in_flight: String,
    pub(super) draft: bool,
}

pub(super) async fn review(State(app): State<AppState>, u: DashUser, body: Bytes) -> Response {
    let (_, input) = match posted_input(&app, &u, &body).await {
        Ok(x) => x,
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
