//! Changing a workflow from the dashboard: its executor (so "fix the workflow, then resume"
//! can be done where the breaker says it), and enable / disable. The forms build the API's
//! own bodies and go through its checks ([`crate::routes::agents::check_executor`]) and
//! update. A webhook's secret is write-only: left blank, the stored one is kept.
//!
//! A `psa_actions` executor is edited as its JSON list of actions: the list is what the API
//! documents and stores, and the API's check names the failing action and field
//! (`executor.actions[0].fields.priority/id`) against the tenant's PSA, which a form of
//! per-action inputs would have to re-implement to say as much.

#[allow(unused_imports)]
use super::*;

use neo_store::WorkflowPatch;
use serde_json::json;

/// The executor a form describes, or the problem in words.
fn executor_of(form: &FormData, stored: &Value) -> Result<Value, String> {
    let text = |name: &str| form.get(name).map(str::trim).unwrap_or("");
    let number = |name: &str| -> Result<Option<f64>, String> {
        match text(name) {
            "" => Ok(None),
            t => t
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("{} must be a number.", name.replace('_', " "))),
        }
    };
    match text("type") {
        "webhook" => {
            let mut e = json!({"type": "webhook", "url": text("url")});
            let secret = match text("secret") {
                "" => stored
                    .get("secret")
                    .and_then(Value::as_str)
                    .filter(|_| stored.get("type").and_then(Value::as_str) == Some("webhook"))
                    .ok_or("A new webhook needs its signing secret.")?
                    .to_owned(),
                s => s.to_owned(),
            };
            e["secret"] = json!(secret);
            if let Some(t) = number("timeout_ms")? {
                e["timeout_ms"] = json!(t as u64);
            }
            Ok(e)
        }
        "simulated" => {
            let mut e = json!({"type": "simulated"});
            for (field, whole) in [
                ("latency_ms", true),
                ("failure_rate", false),
                ("transient_rate", false),
                ("seed", true),
            ] {
                if let Some(n) = number(field)? {
                    e[field] = if whole { json!(n as u64) } else { json!(n) };
                }
            }
            Ok(e)
        }
        "psa_actions" => {
            let raw = text("actions");
            if raw.is_empty() {
                return Err("List the PSA actions: a JSON array such as [{\"type\": \"update_fields\", \"fields\": {\"priority/id\": 2}}].".into());
            }
            let actions: Value = serde_json::from_str(raw)
                .map_err(|e| format!("The PSA actions are not valid JSON: {e}."))?;
            if !actions.is_array() {
                return Err("The PSA actions must be a JSON array of actions.".into());
            }
            Ok(json!({"type": "psa_actions", "actions": actions}))
        }
        _ => Err("Choose webhook, simulated or psa_actions.".into()),
    }
}

/// `POST /workflows/{id}/{executor|enable|disable}`.
pub(super) async fn workflow_action(
    State(app): State<AppState>,
    u: DashUser,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    let tenant = u.principal.tenant_id();
    let stored = match app.store.workflow(tenant, id).await {
        Ok(Some(w)) => w,
        Ok(None) => return api_error(&ApiError::workflow_not_found()),
        Err(e) => return store_error(e),
    };
    let (patch, done) = match action.as_str() {
        "enable" => (
            WorkflowPatch {
                state: Some(neo_domain::backfill::WorkflowState::Enabled),
                ..Default::default()
            },
            "Enabled.",
        ),
        "disable" => (
            WorkflowPatch {
                state: Some(neo_domain::backfill::WorkflowState::Disabled),
                ..Default::default()
            },
            "Disabled.",
        ),
        "executor" => {
            let e = match executor_of(&form, &stored.executor) {
                Ok(e) => e,
                Err(m) => return message(StatusCode::UNPROCESSABLE_ENTITY, "error", &m),
            };
            match crate::routes::agents::check_executor(&app, tenant, stored.entity_type, &e).await
            {
                Ok(e) => (
                    WorkflowPatch {
                        executor: Some(e),
                        ..Default::default()
                    },
                    "Executor saved. It applies to what is dispatched from now on.",
                ),
                Err(e) => return api_error(&e),
            }
        }
        _ => return error_response(StatusCode::NOT_FOUND, "No such action."),
    };
    match crate::routes::agents::patch_inner(&app, tenant, id, patch).await {
        Ok(_) if is_htmx(&headers) => message(StatusCode::OK, "ok", done),
        Ok(_) => redirect(&headers, "/workflows"),
        Err(e) => api_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormData {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        FormData::parse(body.as_bytes())
    }

    #[test]
    fn a_blank_secret_keeps_the_stored_one_and_numbers_are_checked() {
        let stored = json!({"type": "webhook", "url": "https://a.example.com", "secret": "whsec_kept_0123456789"});
        let e = executor_of(
            &form(&[
                ("type", "webhook"),
                ("url", "https://b.example.com/hook"),
                ("secret", ""),
            ]),
            &stored,
        )
        .unwrap();
        assert_eq!(e["secret"], "whsec_kept_0123456789");
        assert_eq!(e["url"], "https://b.example.com/hook");
        let sim = json!({"type": "simulated"});
        assert!(executor_of(
            &form(&[("type", "webhook"), ("url", "https://b.example.com")]),
            &sim
        )
        .unwrap_err()
        .contains("secret"));
        let e = executor_of(
            &form(&[
                ("type", "simulated"),
                ("failure_rate", "0.25"),
                ("latency_ms", "50"),
            ]),
            &stored,
        )
        .unwrap();
        assert_eq!(
            e,
            json!({"type": "simulated", "failure_rate": 0.25, "latency_ms": 50})
        );
        assert!(executor_of(
            &form(&[("type", "simulated"), ("failure_rate", "lots")]),
            &stored
        )
        .is_err());
        assert!(executor_of(&form(&[("type", "shell")]), &stored).is_err());
    }

    #[test]
    fn psa_actions_are_read_as_the_json_array_the_api_takes() {
        let stored = json!({"type": "simulated"});
        let e = executor_of(
            &form(&[
                ("type", "psa_actions"),
                ("actions", r#"[{"type": "set_status", "status": 5}]"#),
            ]),
            &stored,
        )
        .unwrap();
        assert_eq!(
            e,
            json!({"type": "psa_actions", "actions": [{"type": "set_status", "status": 5}]})
        );
        for bad in ["", "[{", r#"{"type": "set_status"}"#] {
            assert!(
                executor_of(&form(&[("type", "psa_actions"), ("actions", bad)]), &stored).is_err(),
                "{bad}"
            );
        }
    }
}
