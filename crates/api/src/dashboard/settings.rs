//! The workflows page and the API-keys page.

#[allow(unused_imports)]
use super::*;

pub(super) struct WorkflowRow {
    pub(super) a: PublicAgent,
    pub(super) executor: String,
    pub(super) enabled: bool,
    /// The executor's members for the edit form (never the secret).
    pub(super) kind: String,
    pub(super) url: String,
    pub(super) timeout_ms: String,
    pub(super) latency_ms: String,
    pub(super) failure_rate: String,
    pub(super) transient_rate: String,
    pub(super) seed: String,
    /// A `psa_actions` executor's actions, as pretty JSON.
    pub(super) actions: String,
}

#[derive(Template)]
#[template(path = "workflows.html")]
pub(super) struct WorkflowsTpl {
    pub(super) layout: Layout,
    pub(super) workflows: Vec<WorkflowRow>,
    pub(super) csrf: String,
    /// What a `psa_actions` workflow may write on the tenant's PSA, in words (empty without
    /// an integration).
    pub(super) writable: String,
}

/// "On connectwise, ticket fields: summary, board/id, …; set_status writes status/id."
fn writable_hint(psa: Option<neo_psa::Psa>) -> String {
    let Some(w) = psa.and_then(|p| {
        neo_psa::write::fields::writable(p, neo_domain::backfill::EntityType::Ticket)
    }) else {
        return String::new();
    };
    let fields: Vec<&str> = w.fields.iter().map(|(f, _)| *f).collect();
    format!(
        "On {}, psa_actions write tickets: fields {}; set_status writes {}; add_note adds a note. Values may use {{{{field}}}} templates of the ticket's own fields.",
        w.psa.as_str(),
        fields.join(", "),
        w.status
    )
}

/// "psa_actions: update priority/id, severity; add a note".
fn psa_actions_summary(executor: &Value) -> String {
    let parts: Vec<String> = executor
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| match a.get("type").and_then(Value::as_str) {
            Some("update_fields") => format!(
                "update {}",
                a.get("fields")
                    .and_then(Value::as_object)
                    .map(|f| f.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ),
            Some("add_note") => "add a note".to_owned(),
            Some("set_status") => format!(
                "set status {}",
                a.get("status").map(Value::to_string).unwrap_or_default()
            ),
            Some(t) => t.to_owned(),
            None => "?".to_owned(),
        })
        .collect();
    format!("psa_actions: {}", parts.join("; "))
}

pub(super) async fn workflows_page(State(app): State<AppState>, u: DashUser) -> Response {
    let workflows = match all_workflows(&app, u.principal.tenant_id()).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let psa = match app.store.integration(u.principal.tenant_id()).await {
        Ok(i) => i.and_then(|i| neo_psa::Psa::parse(&i.psa)),
        Err(e) => return store_error(e),
    };
    page(
        StatusCode::OK,
        &WorkflowsTpl {
            layout: Layout::new(&u, "Workflows", "workflows"),
            csrf: u.csrf.clone(),
            writable: writable_hint(psa),
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
                        Some(neo_domain::actions::EXECUTOR_TYPE) => {
                            psa_actions_summary(&a.executor)
                        }
                        Some(t) => t.to_owned(),
                        None => "?".into(),
                    };
                    let field = |name: &str| match a.executor.get(name) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => String::new(),
                    };
                    WorkflowRow {
                        kind: field("type"),
                        url: field("url"),
                        timeout_ms: field("timeout_ms"),
                        latency_ms: field("latency_ms"),
                        failure_rate: field("failure_rate"),
                        transient_rate: field("transient_rate"),
                        seed: field("seed"),
                        actions: a
                            .executor
                            .get("actions")
                            .and_then(|v| serde_json::to_string_pretty(v).ok())
                            .unwrap_or_default(),
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
