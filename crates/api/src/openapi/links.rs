//! OpenAPI links: where the id of a created or listed resource goes next. Clients and stateful
//! fuzzers (schemathesis) follow them from one operation to the next.

/// The operations that act on one backfill, one agent, one execution.
const ON_BACKFILL: &[&str] = &[
    "getBackfill",
    "listBackfillItems",
    "startBackfill",
    "pauseBackfill",
    "resumeBackfill",
    "cancelBackfill",
    "rerunFailedBackfill",
    "deleteBackfill",
];
const ON_AGENT: &[&str] = &[
    "getAgent",
    "updateAgent",
    "disableAgent",
    "enableAgent",
    "deleteAgent",
];
const ON_EXECUTION: &[&str] = &["getExecution", "retryExecution", "cancelExecution"];

/// OpenAPI links: (source operation, status, path parameter, runtime expression, targets).
/// They tell clients (and stateful fuzzers) where the id of a created or listed resource goes.
const LINKS: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "createBackfill",
        "201",
        "backfill_id",
        "$response.body#/data/backfill/id",
        ON_BACKFILL,
    ),
    (
        "rerunFailedBackfill",
        "201",
        "backfill_id",
        "$response.body#/data/backfill/id",
        ON_BACKFILL,
    ),
    (
        "listBackfills",
        "200",
        "backfill_id",
        "$response.body#/data/0/id",
        ON_BACKFILL,
    ),
    (
        "createAgent",
        "201",
        "agent_id",
        "$response.body#/data/id",
        ON_AGENT,
    ),
    (
        "listAgents",
        "200",
        "agent_id",
        "$response.body#/data/0/id",
        ON_AGENT,
    ),
    (
        "listExecutions",
        "200",
        "execution_id",
        "$response.body#/data/0/execution_id",
        ON_EXECUTION,
    ),
    (
        "retryExecution",
        "201",
        "execution_id",
        "$response.body#/data/execution_id",
        ON_EXECUTION,
    ),
    (
        "putIntegration",
        "200",
        "psa",
        "$request.path.psa",
        &["deleteIntegration"],
    ),
];

/// Links that fill a request body: (source operation, status, name, target, body, description).
/// Runtime expressions inside the body are evaluated by link-following tools that support it
/// (schemathesis does); the rest of the body is a literal.
const BODY_LINKS: &[(&str, &str, &str, &str, &str, &str)] = &[(
    "createAgent",
    "201",
    "createBackfill",
    "createBackfill",
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
                resp["links"][*target] = serde_json::json!({
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
