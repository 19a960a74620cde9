//! The execution page, the workflows page and the API-keys page.

#[allow(unused_imports)]
use super::*;

#[derive(Template)]
#[template(path = "execution.html")]
pub(super) struct ExecutionTpl {
    pub(super) layout: Layout,
    pub(super) e: PublicExecution,
}

pub(super) async fn execution_page(
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

pub(super) struct WorkflowRow {
    pub(super) a: PublicAgent,
    pub(super) executor: String,
    pub(super) enabled: bool,
}

#[derive(Template)]
#[template(path = "workflows.html")]
pub(super) struct WorkflowsTpl {
    pub(super) layout: Layout,
    pub(super) workflows: Vec<WorkflowRow>,
}

pub(super) async fn workflows_page(State(app): State<AppState>, u: DashUser) -> Response {
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

pub(super) struct KeyRow {
    pub(super) k: PublicApiKey,
    pub(super) status: &'static str,
    pub(super) current: bool,
}

#[derive(Template)]
#[template(path = "keys.html")]
pub(super) struct KeysTpl {
    pub(super) layout: Layout,
    pub(super) keys: Vec<KeyRow>,
}

pub(super) async fn keys_page(State(app): State<AppState>, u: DashUser) -> Response {
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
