//! The generated OpenAPI document: a snapshot of the whole document, its component schemas
//! against the seed contract (`tests/fixtures/seed-rerun-failed.openapi.md`, a verbatim copy of
//! the original), and security and error responses on every operation.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The seed contract: a Markdown page with one YAML OpenAPI block.
const SEED_MD: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/seed-rerun-failed.openapi.md"
));

/// The schemas of the seed that ours must match.
const CONTRACT_SCHEMAS: &[&str] = &[
    "PublicBackfill",
    "CreateBackfillResponse",
    "BackfillCostEstimate",
    "WorkflowDailyExecutionWindows",
    "WorkflowTimeWindow",
    "EntityType",
    "BackfillRunState",
    "AutonomyType",
    "SuccessMeta",
    "Pagination",
    "ErrorEnvelope",
];

/// Operations without a bearer credential.
const PUBLIC_PATHS: &[&str] = &[
    "/public-api/health",
    "/public-api/ready",
    "/public-api/openapi.json",
    "/public-api/executions/{execution_id}/complete",
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "options", "head", "trace",
];

const ERROR_ENVELOPE_REF: &str = "#/components/schemas/ErrorEnvelope";

fn seed() -> Value {
    let mut block = None;
    let mut lines = SEED_MD.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("````yaml") {
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| l.trim_end() != "````")
                .collect();
            assert!(block.is_none(), "the seed has one YAML block");
            block = Some(body.join("\n"));
        }
    }
    let yaml = block.expect("a ````yaml block in the seed");
    serde_yaml::from_str(&yaml).expect("the seed's YAML parses")
}

fn ours() -> Value {
    serde_json::from_str(&neo_api::openapi::document_json()).expect("our document is JSON")
}

#[test]
fn openapi_document_snapshot() {
    insta::assert_snapshot!("openapi", neo_api::openapi::document_json());
}

// ---- schema comparison ------------------------------------------------------------------

/// A schema with nullability taken out: `anyOf/oneOf: [X, {type: null}]` and
/// `type: [X, "null"]` both become `X` with `nullable`.
struct Norm<'a> {
    nullable: bool,
    types: BTreeSet<String>,
    reference: Option<String>,
    /// The schema that carries the remaining facets (`format`, `items`, `properties`, ...).
    node: &'a Value,
}

fn is_null_schema(s: &Value) -> bool {
    s.get("type").and_then(Value::as_str) == Some("null")
}

fn normalise<'a>(path: &str, s: &'a Value, diffs: &mut Vec<String>) -> Norm<'a> {
    let mut nullable = false;
    let mut node = s;
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let (nulls, rest): (Vec<&Value>, Vec<&Value>) =
                alts.iter().partition(|a| is_null_schema(a));
            nullable |= !nulls.is_empty();
            if rest.len() == 1 {
                node = rest[0];
            } else {
                diffs.push(format!(
                    "{path}: cannot compare a {key} of {} non-null alternatives: {s}",
                    rest.len()
                ));
            }
        }
    }
    let mut types = BTreeSet::new();
    match node.get("type") {
        Some(Value::String(t)) => {
            types.insert(t.clone());
        }
        Some(Value::Array(ts)) => {
            types.extend(ts.iter().filter_map(|t| t.as_str()).map(str::to_owned))
        }
        _ => {}
    }
    nullable |= types.remove("null");
    let reference = node
        .get("$ref")
        .and_then(Value::as_str)
        .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned());
    Norm {
        nullable,
        types,
        reference,
        node,
    }
}

fn string_set(v: Option<&Value>) -> Option<BTreeSet<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string())
            })
            .collect()
    })
}

fn fmt_set(s: &BTreeSet<String>) -> String {
    format!("{:?}", s.iter().collect::<Vec<_>>())
}

/// Compares one schema of the seed with ours; pushes one message per difference.
fn compare_schema(path: &str, seed: &Value, ours: &Value, diffs: &mut Vec<String>) {
    let s = normalise(path, seed, diffs);
    let o = normalise(path, ours, diffs);
    if s.nullable != o.nullable {
        diffs.push(format!(
            "{path}: nullable: seed {} vs ours {}\n    seed: {seed}\n    ours: {ours}",
            s.nullable, o.nullable
        ));
    }
    if s.types != o.types {
        diffs.push(format!(
            "{path}: type: seed {} vs ours {}\n    seed: {seed}\n    ours: {ours}",
            fmt_set(&s.types),
            fmt_set(&o.types)
        ));
    }
    if s.reference != o.reference {
        diffs.push(format!(
            "{path}: $ref: seed {:?} vs ours {:?}\n    seed: {seed}\n    ours: {ours}",
            s.reference, o.reference
        ));
    }
    let (se, oe) = (
        string_set(s.node.get("enum")),
        string_set(o.node.get("enum")),
    );
    if se != oe {
        let show = |e: &Option<BTreeSet<String>>| e.as_ref().map(fmt_set).unwrap_or("none".into());
        diffs.push(format!(
            "{path}: enum: seed {} vs ours {}",
            show(&se),
            show(&oe)
        ));
    }
    // Neo's seed says `format: time` for window times (Python's `time`, "22:00"); JSON
    // Schema's `time` is an RFC 3339 full-time with an offset, which no window time has, so
    // ours documents the `HH:MM[:SS]` pattern instead (a schemathesis finding).
    let time_of_day = s.node.get("format") == Some(&Value::from("time"))
        && o.node.get("pattern").and_then(Value::as_str)
            == Some(neo_domain::windows::TIME_OF_DAY_PATTERN);
    if let Some(f) = s.node.get("format").filter(|_| !time_of_day) {
        if o.node.get("format") != Some(f) {
            diffs.push(format!(
                "{path}: format: seed {f} vs ours {}",
                o.node.get("format").unwrap_or(&Value::Null)
            ));
        }
    }
    match (s.node.get("items"), o.node.get("items")) {
        (Some(si), Some(oi)) => compare_schema(&format!("{path}[]"), si, oi, diffs),
        (None, None) => {}
        (si, oi) => diffs.push(format!(
            "{path}: items: seed {} vs ours {}",
            si.unwrap_or(&Value::Null),
            oi.unwrap_or(&Value::Null)
        )),
    }
    // `additionalProperties`, where the seed constrains it (a schema or `false`; absent or
    // `true` allows anything). Ours may say `false` where the seed is silent: request types
    // with `deny_unknown_fields` document that they reject unknown members.
    match s.node.get("additionalProperties") {
        None | Some(Value::Bool(true)) => {}
        Some(sa) => match o.node.get("additionalProperties") {
            Some(oa) if sa.is_object() && oa.is_object() => {
                compare_schema(&format!("{path}{{*}}"), sa, oa, diffs)
            }
            Some(oa) if oa == sa => {}
            oa => diffs.push(format!(
                "{path}: additionalProperties: seed {sa} vs ours {}",
                oa.unwrap_or(&Value::Bool(true))
            )),
        },
    }
    if s.node.get("properties").is_some() {
        compare_object(path, s.node, o.node, diffs);
    }
}

/// Compares the members of an object schema (recursing into inline objects).
fn compare_object(path: &str, seed: &Value, ours: &Value, diffs: &mut Vec<String>) {
    let empty = serde_json::Map::new();
    let props = |n: &Value| {
        n.get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty)
            .clone()
    };
    let required = |n: &Value| string_set(n.get("required")).unwrap_or_default();
    let (sp, op) = (props(seed), props(ours));
    let (sr, or) = (required(seed), required(ours));

    for name in sp.keys().filter(|k| !op.contains_key(*k)) {
        diffs.push(format!(
            "{path}: property `{name}` of the seed is missing from ours"
        ));
    }
    for name in op
        .keys()
        .filter(|k| !sp.contains_key(*k) && or.contains(*k))
    {
        diffs.push(format!(
            "{path}: our extra property `{name}` is required (extras must be optional)"
        ));
    }
    if sr != or {
        let only_seed: BTreeSet<_> = sr.difference(&or).cloned().collect();
        let only_ours: BTreeSet<_> = or.difference(&sr).cloned().collect();
        diffs.push(format!(
            "{path}: required differs: only in seed {}, only in ours {}",
            fmt_set(&only_seed),
            fmt_set(&only_ours)
        ));
    }
    for (name, s) in &sp {
        if let Some(o) = op.get(name) {
            compare_schema(&format!("{path}.{name}"), s, o, diffs);
        }
    }
}

#[test]
fn component_schemas_match_the_seed_contract() {
    let seed = seed();
    let ours = ours();
    let seed_schemas = &seed["components"]["schemas"];
    let our_schemas = &ours["components"]["schemas"];
    let mut diffs = Vec::new();
    for name in CONTRACT_SCHEMAS {
        let s = seed_schemas
            .get(*name)
            .unwrap_or_else(|| panic!("the seed has no schema {name}"));
        match our_schemas.get(*name) {
            Some(o) => compare_schema(name, s, o, &mut diffs),
            None => diffs.push(format!("{name}: missing from our components.schemas")),
        }
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s) between the seed contract and our schemas:\n  - {}",
        diffs.len(),
        diffs.join("\n  - ")
    );
}

#[test]
fn the_comparison_sees_differences() {
    // Equivalent nullable forms compare equal ...
    let mut diffs = Vec::new();
    let seed: Value =
        serde_json::json!({"anyOf": [{"type": "string"}, {"type": "null"}], "title": "X"});
    for ours in [
        serde_json::json!({"type": ["string", "null"]}),
        serde_json::json!({"oneOf": [{"type": "null"}, {"type": "string"}]}),
    ] {
        compare_schema("x", &seed, &ours, &mut diffs);
    }
    let seed_ref: Value =
        serde_json::json!({"anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}]});
    let ours_ref: Value = serde_json::json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/A", "description": "d"}]});
    compare_schema("r", &seed_ref, &ours_ref, &mut diffs);
    assert_eq!(diffs, Vec::<String>::new());

    // ... and real differences do not.
    let seed_obj: Value = serde_json::json!({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "string", "format": "uuid"},
        "b": {"type": "array", "items": {"$ref": "#/components/schemas/A"}},
        "c": {"type": "string", "enum": ["X", "Y"]},
        "d": {"type": "integer"},
        "t": {"type": "object", "additionalProperties": {"type": "number"}},
        "i": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}}}});
    let ours_obj: Value = serde_json::json!({"type": "object", "required": ["a", "e"], "properties": {
        "a": {"type": ["string", "null"]},
        "b": {"type": "array", "items": {"$ref": "#/components/schemas/B"}},
        "c": {"type": "string", "enum": ["X", "Z"]},
        "e": {"type": "integer"},
        "t": {"type": "object", "additionalProperties": {"type": "string"}},
        "i": {"type": "object", "properties": {"k": {"type": "integer"}}}}});
    compare_schema("o", &seed_obj, &ours_obj, &mut diffs);
    let text = diffs.join("\n");
    for expected in [
        "o: property `d` of the seed is missing",
        "o: our extra property `e` is required",
        "o: required differs",
        "o.a: nullable: seed false vs ours true",
        "o.a: format: seed \"uuid\"",
        "o.b[]: $ref: seed Some(\"A\") vs ours Some(\"B\")",
        "o.c: enum",
        "o.t{*}: type: seed [\"number\"] vs ours [\"string\"]",
        "o.i: required differs: only in seed [\"k\"]",
        "o.i.k: type",
    ] {
        assert!(text.contains(expected), "{expected:?} not in\n{text}");
    }
}

// ---- operations ---------------------------------------------------------------------------

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                ops.push((path.clone(), m.to_string(), op));
            }
        }
    }
    ops
}

fn has_bearer(op: &Value) -> bool {
    op["security"]
        .as_array()
        .is_some_and(|reqs| reqs.iter().any(|r| r.get("bearerAuth").is_some()))
}

#[test]
fn every_operation_has_security_and_the_standard_error_responses() {
    let doc = ours();
    let ops = operations(&doc);
    assert!(ops.len() > 10, "{} operations", ops.len());
    let mut problems = Vec::new();
    for (path, method, op) in &ops {
        let public = PUBLIC_PATHS.contains(&path.as_str());
        let at = format!("{} {path}", method.to_uppercase());
        match op.get("security").and_then(Value::as_array) {
            None => problems.push(format!("{at}: no `security`")),
            Some(_) if public && has_bearer(op) => {
                problems.push(format!("{at}: public, but requires bearerAuth"))
            }
            Some(reqs) if !public && reqs.as_slice() != [serde_json::json!({"bearerAuth": []})] => {
                problems.push(format!(
                    "{at}: security is {}, not [{{bearerAuth: []}}]",
                    op["security"]
                ))
            }
            Some(_) => {}
        }
        // Only what the operation can answer.
        let codes_of_op: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        let has_body = op.get("requestBody").is_some();
        for code in &codes_of_op {
            let impossible = match code.as_str() {
                "405" => true,
                "409" => method == "get",
                "408" | "413" | "415" => !has_body,
                "422" => !has_body && path != RERUN,
                // Without an id in the path, only an operation's own 404 (an id in its body).
                "404" => !params_in(op, "path") && op["responses"]["404"].get("$ref").is_some(),
                "429" => public,
                _ => false,
            };
            if impossible {
                problems.push(format!("{at}: documents {code}, which it cannot answer"));
            }
            if code.starts_with('4') || code.starts_with('5') {
                let resp = response(&doc, &op["responses"][code.as_str()]);
                let examples = &resp["content"]["application/json"]["examples"];
                for (c, s, _) in neo_api::error::ERROR_CODES {
                    if s.to_string() == **code && examples.get(*c).is_none() {
                        problems.push(format!("{at} {code}: no example of `{c}`"));
                    }
                }
            }
        }
        let params = |place: &str| params_in(op, place);
        let mut codes = vec!["400", "500", "503"];
        if params("path") {
            codes.push("404");
        }
        if !public {
            codes.extend(["401", "429"]);
        }
        for code in codes {
            let schema =
                &response(&doc, &op["responses"][code])["content"]["application/json"]["schema"];
            if schema.get("$ref").and_then(Value::as_str) != Some(ERROR_ENVELOPE_REF) {
                problems.push(format!(
                    "{at}: response {code} is not an ErrorEnvelope: {}",
                    op["responses"].get(code).unwrap_or(&Value::Null)
                ));
            }
        }
        for part in ["summary", "description"] {
            if op[part].as_str().is_none_or(|s| s.trim().is_empty()) {
                problems.push(format!("{at}: no {part}"));
            }
        }
        // Verb-noun (`listBackfills`, `rerunFailedBackfill`): generated clients name their
        // functions after it.
        let id = op["operationId"].as_str().unwrap_or_default();
        let verb_noun = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && id.chars().all(|c| c.is_ascii_alphanumeric())
            && id.chars().any(|c| c.is_ascii_uppercase());
        if !verb_noun {
            problems.push(format!(
                "{at}: operationId {id:?} is not verb-noun camelCase"
            ));
        }
    }
    for p in PUBLIC_PATHS {
        if doc["paths"].get(*p).is_none() {
            problems.push(format!("public path {p} is not documented"));
        }
    }
    let ids: BTreeMap<&str, usize> = ops.iter().fold(BTreeMap::new(), |mut m, (_, _, op)| {
        *m.entry(op["operationId"].as_str().unwrap_or(""))
            .or_default() += 1;
        m
    });
    for (id, n) in ids.iter().filter(|(_, n)| **n > 1) {
        problems.push(format!("operationId {id:?} is used {n} times"));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

/// The seed's operation: it answers 422 `invalid_for_conversational` without a body.
const RERUN: &str = "/public-api/backfills/{backfill_id}/rerun-failed";

fn params_in(op: &Value, place: &str) -> bool {
    op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == place))
}

/// A response, through its `$ref` to `components/responses` if it has one.
fn response<'a>(doc: &'a Value, r: &'a Value) -> &'a Value {
    match r.get("$ref").and_then(Value::as_str) {
        Some(name) => {
            let name = name
                .strip_prefix("#/components/responses/")
                .expect("a response ref");
            &doc["components"]["responses"][name]
        }
        None => r,
    }
}

fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .expect("a component ref");
            &doc["components"]["schemas"][name]
        }
        None => s,
    }
}

#[test]
fn rerun_failed_operation_matches_the_seed() {
    const PATH: &str = "/public-api/backfills/{backfill_id}/rerun-failed";
    let doc = ours();
    let seed = seed();
    let op = &doc["paths"][PATH]["post"];
    let seed_op = &seed["paths"][PATH]["post"];
    assert!(op.is_object(), "POST {PATH} is documented");
    // The one deliberate difference in the operation: operationIds are verb-noun for generated
    // clients (`rerunFailedBackfill`, not the seed's `public_api.backfills_rerun_failed_post`).
    assert_eq!(op["operationId"], "rerunFailedBackfill");
    assert_eq!(
        seed_op["operationId"],
        "public_api.backfills_rerun_failed_post"
    );
    assert_eq!(op["security"], seed_op["security"]);
    assert_eq!(op["tags"], seed_op["tags"]);

    // The path parameter.
    let params = op["parameters"].as_array().expect("parameters");
    let p = params
        .iter()
        .find(|p| p["name"] == "backfill_id")
        .expect("a backfill_id parameter");
    assert_eq!(p["in"], "path");
    assert_eq!(p["required"], true);
    assert_eq!(p["schema"]["type"], "string");

    // Every response code of the seed, errors as ErrorEnvelope.
    let seed_codes: BTreeSet<&String> = seed_op["responses"].as_object().unwrap().keys().collect();
    let our_codes: BTreeSet<&String> = op["responses"].as_object().unwrap().keys().collect();
    let missing: Vec<_> = seed_codes.difference(&our_codes).collect();
    assert!(
        missing.is_empty(),
        "responses missing from ours: {missing:?}"
    );
    for code in seed_codes.iter().filter(|c| c.as_str() != "201") {
        assert_eq!(
            response(&doc, &op["responses"][code.as_str()])["content"]["application/json"]
                ["schema"]["$ref"],
            ERROR_ENVELOPE_REF,
            "response {code}"
        );
    }

    // 201: {data: CreateBackfillResponse, meta: SuccessMeta}.
    let created = resolve(
        &doc,
        &op["responses"]["201"]["content"]["application/json"]["schema"],
    );
    assert!(
        created.is_object(),
        "201 has a JSON schema: {}",
        op["responses"]["201"]
    );
    let required = string_set(created.get("required")).unwrap_or_default();
    assert!(
        required.contains("data") && required.contains("meta"),
        "{created}"
    );
    assert_eq!(
        created["properties"]["meta"]["$ref"],
        "#/components/schemas/SuccessMeta"
    );
    let mut diffs = Vec::new();
    compare_schema(
        "201.data",
        &seed["components"]["schemas"]["CreateBackfillResponse"],
        resolve(&doc, &created["properties"]["data"]),
        &mut diffs,
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

// ---- what schemathesis (./scripts/contract) found ------------------------------------------

/// Window times were documented as `format: time` (an RFC 3339 full-time, which needs a UTC
/// offset), so every backfill with windows violated its own documented schema: "22:00" is
/// what the API takes and returns. They are documented as the `HH:MM[:SS]` pattern now.
#[tokio::test]
async fn documented_window_times_admit_what_the_api_returns() {
    let app = crate::helpers::TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Nightly").await;
    let windows = serde_json::json!({
        "monday": [{"run_start_time": "22:00", "run_end_time": "06:00"}],
        "friday": [{"run_start_time": "08:00:30", "run_end_time": "09:15"}]});
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            serde_json::json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1"]},
                               "daily_execution_windows": windows}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["data"]["backfill"]["id"].as_str().unwrap();
    let got = app.get(&key, &format!("/public-api/backfills/{id}")).await;
    assert_eq!(got.body["data"]["daily_execution_windows"], windows);

    let doc = app
        .send(app.client.get(app.url("/public-api/openapi.json")))
        .await
        .body;
    let window = &doc["components"]["schemas"]["WorkflowTimeWindow"]["properties"];
    for member in ["run_start_time", "run_end_time"] {
        let s = &window[member];
        assert_eq!(s["type"], "string", "{member}: {s}");
        assert!(s.get("format").is_none(), "{member}: {s}");
        assert_eq!(
            s["pattern"].as_str(),
            Some(neo_domain::windows::TIME_OF_DAY_PATTERN),
            "{member}: {s}"
        );
    }
    // The pattern's language is parse_time's (HH:MM or HH:MM:SS, 24-hour clock): every time the
    // API returned is in it.
    for day in windows.as_object().unwrap().keys() {
        for w in got.body["data"]["daily_execution_windows"][day]
            .as_array()
            .unwrap()
        {
            for member in ["run_start_time", "run_end_time"] {
                let t = w[member].as_str().unwrap();
                assert!(
                    neo_domain::windows::parse_time(t).is_some(),
                    "{day}.{member} = {t:?}"
                );
            }
        }
    }
}

/// The document's links (how schemathesis' stateful phase and clients chain calls) name
/// operations that exist, with path parameters those operations take, in OpenAPI's own
/// spelling (`operationId`: utoipa 5.5 writes `operation_id`, which no tool reads); and
/// following the create-backfill link with a real response reaches that backfill.
#[tokio::test]
async fn links_lead_to_existing_operations() {
    let doc = ours();
    let ops = operations(&doc);
    let by_id: BTreeMap<&str, &Value> = ops
        .iter()
        .filter_map(|(_, _, op)| Some((op["operationId"].as_str()?, *op)))
        .collect();
    let mut problems = Vec::new();
    let mut links = 0;
    for (path, method, op) in &ops {
        let responses = op["responses"].as_object().unwrap();
        for (status, resp) in responses {
            let Some(ls) = resp.get("links").and_then(Value::as_object) else {
                continue;
            };
            for (name, link) in ls {
                links += 1;
                let at = format!("{} {path} {status} link {name}", method.to_uppercase());
                let Some(target) = link["operationId"].as_str().and_then(|t| by_id.get(t)) else {
                    problems.push(format!("{at}: no operation {}", link));
                    continue;
                };
                for (param, expr) in link["parameters"].as_object().into_iter().flatten() {
                    let takes = target["parameters"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| p["name"] == *param && p["in"] == "path")
                    });
                    let expr = expr.as_str().unwrap_or_default();
                    if !takes {
                        problems.push(format!("{at}: the target takes no path parameter {param}"));
                    }
                    if !(expr.starts_with("$response.body#/") || expr.starts_with("$request.path."))
                    {
                        problems.push(format!("{at}: {param} = {expr:?}"));
                    }
                }
            }
        }
    }
    assert!(links >= 40, "only {links} links");
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let app = crate::helpers::TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Linked").await;
    let created = app
        .post(
            &key,
            "/public-api/backfills",
            serde_json::json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["7"]}}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let link =
        &doc["paths"]["/public-api/backfills"]["post"]["responses"]["201"]["links"]["getBackfill"];
    assert_eq!(link["operationId"], "getBackfill");
    let pointer = link["parameters"]["backfill_id"]
        .as_str()
        .unwrap()
        .trim_start_matches("$response.body#");
    let id = created
        .body
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap();
    let got = app.get(&key, &format!("/public-api/backfills/{id}")).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["data"]["id"], id);
}

// ---- what generated clients need (issue 17) -----------------------------------------------

/// Every object schema in the document, with its path.
fn object_schemas(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            let is_object = match o.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                _ => false,
            };
            if is_object {
                out.push((path.clone(), v.clone()));
            }
            for (k, c) in o {
                object_schemas(c, format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                object_schemas(c, format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// openapi-python-client made a new class for each inline copy of a resource, so a
/// `PublicBackfill` from a list could not be passed where one from `GET` was expected.
#[test]
fn envelopes_refer_to_their_resource_and_every_component_is_used() {
    let doc = ours();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    let mut problems = Vec::new();
    for (name, s) in schemas {
        if !text.contains(&format!("\"#/components/schemas/{name}\"")) {
            problems.push(format!("{name} is never referenced"));
        }
        let Some(inner) = name.strip_prefix("DataEnvelope_") else {
            continue;
        };
        let (resource, list) = match inner.strip_prefix("Vec_") {
            Some(r) => (r, true),
            None => (inner, false),
        };
        let data = &s["properties"]["data"];
        let r = if list { &data["items"] } else { data };
        if schemas.contains_key(resource)
            && r["$ref"].as_str() != Some(format!("#/components/schemas/{resource}").as_str())
        {
            problems.push(format!("{name}.data does not refer to {resource}: {data}"));
        }
        let meta = &s["properties"]["meta"]["$ref"];
        let want = if list { "ListMeta" } else { "SuccessMeta" };
        if meta.as_str() != Some(format!("#/components/schemas/{want}").as_str()) {
            problems.push(format!("{name}.meta is {meta}, not {want}"));
        }
    }
    let required = string_set(schemas["ListMeta"].get("required")).unwrap_or_default();
    assert!(required.contains("pagination"), "ListMeta: {required:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_instant_is_a_date_time_and_no_object_is_closed_by_accident() {
    let doc = ours();
    let mut objects = Vec::new();
    object_schemas(&doc, String::new(), &mut objects);
    assert!(objects.len() > 50, "{} object schemas", objects.len());
    let mut problems = Vec::new();
    for (path, o) in &objects {
        for (name, p) in o["properties"].as_object().into_iter().flatten() {
            let stringy = p["type"] == "string"
                || p["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&Value::from("string")));
            if name.ends_with("_at") && stringy && p["format"] != "date-time" {
                problems.push(format!("{path}.{name} has no `format: date-time`"));
            }
        }
        let shaped = [
            "properties",
            "additionalProperties",
            "oneOf",
            "anyOf",
            "allOf",
        ]
        .iter()
        .any(|k| o.get(*k).is_some());
        if !shaped {
            problems.push(format!(
                "{path}: an object with no members and no additionalProperties"
            ));
        }
    }
    let details = &doc["components"]["schemas"]["ErrorEnvelope"]["properties"]["error"]
        ["properties"]["details"];
    if details["properties"]["field"]["type"] != "string" {
        problems.push(format!("error.details documents no `field`: {details}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn servers_security_and_closed_sets_are_declared() {
    let doc = ours();
    assert_eq!(doc["security"], serde_json::json!([{"bearerAuth": []}]));
    let server = &doc["servers"][0];
    assert_eq!(
        server["variables"]["base_url"]["default"],
        "http://127.0.0.1:8080"
    );
    let s = &doc["components"]["schemas"];
    let enum_of = |v: &Value| string_set(v.get("enum")).unwrap_or_default();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        enum_of(&s["SignalResponse"]["properties"]["signal"]),
        set(&["start", "pause", "resume", "cancel"])
    );
    assert_eq!(
        enum_of(&s["PublicIntegration"]["properties"]["psa"]),
        set(&["connectwise", "autotask", "halopsa"])
    );
    assert_eq!(
        enum_of(&s["PublicApiKey"]["properties"]["env"]),
        set(&["live", "test"])
    );
    assert_eq!(
        enum_of(&s["CompleteExecutionRequest"]["properties"]["status"]),
        set(&["succeeded", "failed"])
    );
    assert_eq!(enum_of(&s["Health"]["properties"]["status"]), set(&["ok"]));
    for (path, param, of) in [
        ("/public-api/backfills", "state", "BackfillRunState"),
        (
            "/public-api/backfills/{backfill_id}/items",
            "status",
            "ItemStatus",
        ),
        ("/public-api/executions", "status", "ExecutionStatus"),
    ] {
        let p = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == param)
            .unwrap_or_else(|| panic!("{path} has a {param} parameter"));
        assert_eq!(p["schema"]["type"], "array", "{path} {param}: {p}");
        assert_eq!(
            p["schema"]["items"]["$ref"],
            format!("#/components/schemas/{of}")
        );
        assert_eq!(
            (&p["style"], &p["explode"]),
            (&"form".into(), &false.into())
        );
    }
}

/// The executor schemas are written for the document (the handlers validate JSON with the
/// domain): each one's example must be what the domain accepts, and a generated client can
/// tell them apart by `type`.
#[test]
fn executor_examples_pass_the_domains_validation_and_the_discriminator_maps_every_type() {
    use neo_domain::egress::EgressPolicy;
    use neo_domain::executor::ExecutorSpec;
    let doc = ours();
    let s = &doc["components"]["schemas"];
    // The psa_actions example is checked against ConnectWise's ticket fields.
    let writable = neo_psa::write::fields::writable(
        neo_psa::Psa::ConnectWise,
        neo_domain::backfill::EntityType::Ticket,
    )
    .map(|w| w as &dyn neo_domain::actions::WritableFields);
    for name in ["WebhookExecutor", "SimulatedExecutor", "PsaActionsExecutor"] {
        let example = &s[name]["example"];
        assert!(example.is_object(), "{name} has an example");
        ExecutorSpec::validate(example, EgressPolicy::new(false), writable)
            .unwrap_or_else(|e| panic!("{name}'s example is refused: {}", e.message));
    }
    for (union, webhook) in [
        ("Executor", "WebhookExecutor"),
        ("ExecutorView", "WebhookExecutorView"),
    ] {
        let mapping = &s[union]["discriminator"]["mapping"];
        assert_eq!(
            mapping["webhook"],
            format!("#/components/schemas/{webhook}")
        );
        assert_eq!(
            mapping["simulated"],
            "#/components/schemas/SimulatedExecutor"
        );
        for (value, target) in mapping.as_object().unwrap() {
            let target = target.as_str().unwrap().rsplit('/').next().unwrap();
            assert_eq!(
                s[target]["properties"]["type"]["enum"],
                serde_json::json!([value]),
                "{union}: {value} maps to {target}, whose `type` must be {value}"
            );
        }
    }
    assert_eq!(
        doc["components"]["schemas"]["CreateAgentRequest"]["properties"]["executor"]["$ref"],
        "#/components/schemas/Executor"
    );
    assert_eq!(
        doc["components"]["schemas"]["PublicAgent"]["properties"]["executor"]["$ref"],
        "#/components/schemas/ExecutorView"
    );
}

#[test]
fn filter_specs_are_typed_wherever_they_appear() {
    let doc = ours();
    let s = &doc["components"]["schemas"];
    let fs = "#/components/schemas/FilterSpec";
    assert_eq!(
        s["CreateBackfillRequest"]["properties"]["filter_spec"]["$ref"],
        fs
    );
    assert_eq!(
        s["VerifyBackfillRequest"]["properties"]["filter_spec"]["$ref"],
        fs
    );
    // The seed's `type: object` stays; the reference joins it.
    let member = &s["PublicBackfill"]["properties"]["filter_spec"];
    assert_eq!(member["type"], "object");
    assert_eq!(member["allOf"][0]["$ref"], fs);
    assert_eq!(
        s["RuleGroupFilter"]["properties"]["conditions"]["$ref"],
        "#/components/schemas/RuleGroup"
    );
    let rules = &s["RuleGroup"]["properties"]["rules"]["items"]["$ref"];
    assert_eq!(rules, "#/components/schemas/RuleOrGroup");
    let ops: BTreeSet<String> =
        string_set(s["Rule"]["properties"]["operator"].get("enum")).expect("operators are an enum");
    assert_eq!(ops.len(), neo_domain::filter::Operator::NAMES.len());
}

/// Response headers are declared once and referenced where they are sent (schemathesis's
/// `response_headers_conformance` then checks the required ones on every answer).
#[test]
fn response_headers_are_shared_and_declared_where_they_are_sent() {
    let doc = ours();
    let headers = doc["components"]["headers"]
        .as_object()
        .expect("components/headers");
    for name in [
        "X-Request-Id",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "Retry-After",
        "Idempotent-Replayed",
    ] {
        assert!(headers.contains_key(name), "components/headers/{name}");
    }
    let r = |name: &str| serde_json::json!({ "$ref": format!("#/components/headers/{name}") });
    let mut problems = Vec::new();
    for (path, method, op) in operations(&doc) {
        let at = format!("{} {path}", method.to_uppercase());
        if op.get("parameters").is_some_and(|p| !p.is_array()) {
            problems.push(format!("{at}: parameters is {}", op["parameters"]));
        }
        for (code, resp) in op["responses"].as_object().unwrap() {
            let h = &response(&doc, resp)["headers"];
            if h["X-Request-Id"] != r("X-Request-Id") {
                problems.push(format!("{at} {code}: no X-Request-Id"));
            }
            if has_bearer(op)
                && code.starts_with('2')
                && h["X-RateLimit-Remaining"] != r("X-RateLimit-Remaining")
            {
                problems.push(format!("{at} {code}: no X-RateLimit-Remaining"));
            }
            if code == "429" && h["Retry-After"] != r("Retry-After") {
                problems.push(format!("{at} 429: no Retry-After"));
            }
        }
    }
    for (path, op) in [
        ("/public-api/backfills", "post"),
        ("/public-api/backfills/{backfill_id}/rerun-failed", "post"),
    ] {
        let op = &doc["paths"][path][op];
        assert_eq!(
            op["responses"]["201"]["headers"]["Idempotent-Replayed"],
            r("Idempotent-Replayed"),
            "{path}"
        );
        let key = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .expect("an Idempotency-Key parameter");
        assert_eq!(key["schema"]["type"], "string", "{path}: {key}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
