//! OpenAPI links: where the id of a created or listed resource goes next. Clients and stateful
//! fuzzers (schemathesis) follow them from one operation to the next.

/// The operations that act on one backfill, one agent, one execution.
const ON_BACKFILL: &[&str] = &[
    "public_api.backfills_get_one",
    "public_api.backfills_items_get",
    "public_api.backfills_start_post",
    "public_api.backfills_pause_post",
    "public_api.backfills_resume_post",
    "public_api.backfills_cancel_post",
    "public_api.backfills_rerun_failed_post",
    "public_api.backfills_delete",
];
const ON_AGENT: &[&str] = &[
    "public_api.agents_get_one",
    "public_api.agents_patch",
    "public_api.agents_disable_post",
    "public_api.agents_enable_post",
    "public_api.agents_delete",
];
const ON_EXECUTION: &[&str] = &[
    "public_api.executions_get_one",
    "public_api.executions_retry_post",
    "public_api.executions_cancel_post",
];

/// OpenAPI links: (source operation, status, path parameter, runtime expression, targets).
/// They tell clients (and stateful fuzzers) where the id of a created or listed resource goes.
const LINKS: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "public_api.backfills_post",
        "201",
        "backfill_id",
        "$response.body#/data/backfill/id",
        ON_BACKFILL,
    ),
    (
        "public_api.backfills_rerun_failed_post",
        "201",
        "backfill_id",
        "$response.body#/data/backfill/id",
        ON_BACKFILL,
    ),
    (
        "public_api.backfills_get",
        "200",
        "backfill_id",
        "$response.body#/data/0/id",
        ON_BACKFILL,
    ),
    (
        "public_api.agents_post",
        "201",
        "agent_id",
        "$response.body#/data/id",
        ON_AGENT,
    ),
    (
        "public_api.agents_get",
        "200",
        "agent_id",
        "$response.body#/data/0/id",
        ON_AGENT,
    ),
    (
        "public_api.executions_get",
        "200",
        "execution_id",
        "$response.body#/data/0/execution_id",
        ON_EXECUTION,
    ),
    (
        "public_api.executions_retry_post",
        "201",
        "execution_id",
        "$response.body#/data/execution_id",
        ON_EXECUTION,
    ),
    (
        "public_api.integrations_put",
        "200",
        "psa",
        "$request.path.psa",
        &["public_api.integrations_delete"],
    ),
];

/// Links that fill a request body: (source operation, status, name, target, body, description).
/// Runtime expressions inside the body are evaluated by link-following tools that support it
/// (schemathesis does); the rest of the body is a literal.
const BODY_LINKS: &[(&str, &str, &str, &str, &str, &str)] = &[(
    "public_api.agents_post",
    "201",
    "backfills_post",
    "public_api.backfills_post",
    r#"{"target_workflow_id": "$response.body#/data/id", "filter_spec": {"entity_ids": ["1001", "1002", "1003"]}}"#,
    "Backfill this agent over explicit entity ids.",
)];

/// Adds [`LINKS`] and [`BODY_LINKS`] to the responses they start from. Done on the JSON: utoipa 5.5 serializes a
/// `Link`'s members in snake case (`operation_id`), which no OpenAPI tool reads.
pub(super) fn add_links(doc: &mut serde_json::Value) {
    let ops = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut());
    for op in ops {
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        for (_, status, param, expr, targets) in LINKS.iter().filter(|l| l.0 == id) {
            let Some(resp) = op["responses"].get_mut(*status) else {
                panic!("{id} documents no {status} response to link from");
            };
            for target in *targets {
                let name = target
                    .trim_start_matches("public_api.")
                    .trim_end_matches("_post");
                resp["links"][name] = serde_json::json!({
                    "operationId": target,
                    "parameters": {*param: expr},
                });
            }
        }
        for (_, status, name, target, body, description) in BODY_LINKS.iter().filter(|l| l.0 == id)
        {
            let Some(resp) = op["responses"].get_mut(*status) else {
                panic!("{id} documents no {status} response to link from");
            };
            resp["links"][*name] = serde_json::json!({
                "operationId": target,
                "description": description,
                "requestBody": serde_json::from_str::<serde_json::Value>(body)
                    .expect("BODY_LINKS bodies are JSON"),
            });
        }
    }
}
