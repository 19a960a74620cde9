//! Passes over the generated document where utoipa's derive cannot say what clients need.
//! Generated clients build one type per schema: a resource copied inline into every envelope
//! becomes a new, incompatible type each time (openapi-python-client made `PublicBackfill`,
//! `DataEnvelopePublicBackfillPublicBackfill` and `DataEnvelopeVecPublicBackfillPublicBackfill`),
//! and a timestamp without a format is a plain string to them.

use serde_json::{json, Value};

const SCHEMAS: &str = "#/components/schemas/";
const ENVELOPE: &str = "DataEnvelope_";

/// The meta of a list response: [`crate::envelope::SuccessMeta`] with `pagination` required
/// (every list answers it; on one resource it is absent).
pub(super) const LIST_META: &str = "ListMeta";

/// Every `DataEnvelope_<Resource>` refers to the `<Resource>` component instead of copying it
/// (utoipa inlines a generic's argument), and every `DataEnvelope_Vec_<Resource>` to an array
/// of it with a [`LIST_META`] meta. Panics if a copy differs from its component: the
/// reference would then change what the document says.
pub(super) fn reference_resources(doc: &mut Value) {
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .expect("the document has component schemas");
    let mut list_meta = schemas["SuccessMeta"].clone();
    list_meta["required"]
        .as_array_mut()
        .expect("SuccessMeta has required members")
        .insert(0, json!("pagination"));
    list_meta["description"] =
        json!("The meta of a list response: `pagination` is always present.");
    schemas.insert(LIST_META.to_owned(), list_meta);
    let envelopes: Vec<String> = schemas
        .keys()
        .filter(|k| k.starts_with(ENVELOPE))
        .cloned()
        .collect();
    for name in envelopes {
        let inner = &name[ENVELOPE.len()..];
        let (resource, list) = match inner.strip_prefix("Vec_") {
            Some(r) => (r, true),
            None => (inner, false),
        };
        let Some(component) = schemas.get(resource).cloned() else {
            continue; // not a named resource (a plain value): nothing to refer to
        };
        let env = &mut schemas[&name];
        let data = &mut env["properties"]["data"];
        let copy = if list { &mut data["items"] } else { data };
        assert!(
            same_schema(copy, &component),
            "{name}'s data is not a copy of {resource}: {copy}"
        );
        *copy = json!({ "$ref": format!("{SCHEMAS}{resource}") });
        if list {
            env["properties"]["meta"] = json!({ "$ref": format!("{SCHEMAS}{LIST_META}") });
        }
        env["description"] = json!(if list {
            format!("A page of `{resource}`: `{{data: [{resource}], meta: ListMeta}}`.")
        } else {
            format!("`{{data: {resource}, meta: SuccessMeta}}`.")
        });
    }
}

/// A copy equals its component up to the `title` utoipa adds to one of them.
fn same_schema(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("title");
        }
        v
    };
    strip(a) == strip(b)
}

/// Every `*_at` member that is a string is an RFC 3339 instant (`format: date-time`): the API
/// writes every instant with [`neo_domain::clock::rfc3339`] and names every instant `*_at`.
pub(super) fn instants(doc: &mut Value) {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if let Some(Value::Object(props)) = o.get_mut("properties") {
                    for (name, p) in props.iter_mut() {
                        if name.ends_with("_at") && is_string(p) {
                            p["format"] = json!("date-time");
                        }
                    }
                }
                o.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(doc);
}

/// `type: string` or `type: [string, null]`.
fn is_string(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(t) => t == "string",
        Value::Array(ts) => {
            ts.iter().any(|t| t == "string") && ts.iter().all(|t| t == "string" || t == "null")
        }
        _ => false,
    }
}

/// Where the API is served: a variable base URL (the document is the same for every
/// self-hosted deployment), defaulting to `neo-backfill serve`'s own default address.
pub(super) fn servers(doc: &mut Value) {
    doc["servers"] = json!([{
        "url": "{base_url}",
        "description": "Your neo-backfill deployment (scheme, host and port; the paths start with /public-api).",
        "variables": {"base_url": {
            "default": "http://127.0.0.1:8080",
            "description": "`neo-backfill serve` listens on 127.0.0.1:8080 unless `--listen` says otherwise."
        }}
    }]);
}

/// Objects whose members the document leaves open say so (`additionalProperties: true`), and
/// an error's `details` documents the member every validation error has (`field`, the
/// request member it is about). Generators otherwise read a bare `type: object` as an object
/// with no members (openapi-typescript: `Record<string, never>`).
pub(super) fn open_objects(doc: &mut Value) {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                let object = match o.get("type") {
                    Some(Value::String(t)) => t == "object",
                    Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                    _ => false,
                };
                let shaped = [
                    "properties",
                    "additionalProperties",
                    "oneOf",
                    "anyOf",
                    "allOf",
                ]
                .iter()
                .any(|k| o.contains_key(*k));
                if object && !shaped {
                    o.insert("additionalProperties".into(), Value::Bool(true));
                }
                o.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let details = &mut doc["components"]["schemas"]["ErrorEnvelope"]["properties"]["error"]
        ["properties"]["details"];
    assert!(details.is_object(), "ErrorEnvelope has error.details");
    details["description"] = json!(
        "More about the error. A `validation_error` (and a `bad_request` about one parameter) names the request member in `field` (`executor.url`, `daily_execution_windows.monday[0].run_start_time`)."
    );
    details["properties"] = json!({"field": {
        "type": "string",
        "description": "The request member (body member, path or query parameter) the error is about."
    }});
    details["additionalProperties"] = Value::Bool(true);
    walk(doc);
}

/// `PublicBackfill.filter_spec` is a [`FilterSpec`](crate::models::FilterSpec), as in the
/// requests. The seed contract says `type: object` (open) for it, which stays: the reference
/// joins it as `allOf`, so the member keeps the seed's type and generated clients get the
/// union (openapi-typescript: `FilterSpec`; openapi-python-client:
/// `EntityIdsFilter | RuleGroupFilter`).
pub(super) fn filter_spec(doc: &mut Value) {
    let member = &mut doc["components"]["schemas"]["PublicBackfill"]["properties"]["filter_spec"];
    assert!(member.is_object(), "PublicBackfill has filter_spec");
    member["allOf"] = json!([{ "$ref": format!("{SCHEMAS}FilterSpec") }]);
    // No `additionalProperties: true` beside it (the seed's `true` and absent mean the same):
    // openapi-typescript would add an index signature that defeats narrowing on `entity_ids`.
    member["description"] =
        json!("Which entities the backfill runs over, as stored at create (relative instants such as `{\"$ago\": \"P30D\"}` resolved to the instant they meant then; a rerun-failed child: the source's failed entity ids).");
}

/// The response headers, declared once in `components/headers` (with whether they are always
/// there) and referenced from each response that carries them: `X-Request-Id` on every
/// response (the outermost layer sets it); the `X-RateLimit-*` trio on every response of an
/// authenticated operation once the caller is known (not on 401, nor on answers that can come
/// before the limiter: 408, 413, 415, 500, 503); `Retry-After` on 429 (always there) and 503
/// (when the wait is known); `Idempotent-Replayed: true` on a replayed 201 of the operations
/// that take `Idempotency-Key`. That header parameter is a plain string, not `string | null`.
pub(super) fn headers(doc: &mut Value) {
    let int = |d: &str, required: bool| json!({"description": d, "required": required, "schema": {"type": "integer", "minimum": 0}});
    doc["components"]["headers"] = json!({
        "X-Request-Id": {"description": "The request's id (the caller's own `X-Request-Id` when it is a UUID); also `meta.request_id` and the access log's.", "required": true, "schema": {"type": "string", "format": "uuid"}},
        "X-RateLimit-Limit": int("Requests the tenant may make per window (shared by all its keys and sessions).", true),
        "X-RateLimit-Remaining": int("Requests left in the current window.", true),
        "X-RateLimit-Reset": int("When the window resets (Unix epoch seconds).", true),
        "Retry-After": int("Seconds to wait before trying again: always on 429, on 503 when the wait is known.", false),
        "Idempotent-Replayed": {"description": "`true` when this is the stored first response to the same `Idempotency-Key` and body.", "required": false, "schema": {"type": "string", "enum": ["true"]}},
    });
    let header = |name: &str| json!({ "$ref": format!("#/components/headers/{name}") });
    for op in operations_mut(doc) {
        let secured = secured(op);
        let mut idempotent = false;
        let params = op.get_mut("parameters").and_then(Value::as_array_mut);
        for p in params.into_iter().flatten() {
            if p["name"] == "Idempotency-Key" {
                p["schema"]["type"] = json!("string");
                idempotent = true;
            }
        }
        let Some(responses) = op["responses"].as_object_mut() else {
            continue;
        };
        for (code, resp) in responses.iter_mut() {
            let mut h = serde_json::Map::new();
            h.insert("X-Request-Id".into(), header("X-Request-Id"));
            let before_limiter = ["401", "408", "413", "415", "500", "503"];
            if secured && !before_limiter.contains(&code.as_str()) {
                for name in [
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                ] {
                    h.insert(name.into(), header(name));
                }
            }
            if code == "429" || code == "503" {
                h.insert("Retry-After".into(), header("Retry-After"));
            }
            if idempotent && code == "201" {
                h.insert("Idempotent-Replayed".into(), header("Idempotent-Replayed"));
            }
            resp["headers"] = Value::Object(h);
        }
    }
}

/// The error codes, from [`crate::error::ERROR_CODES`]: listed in the description of
/// `error.code`, and an example envelope per code on every error response of its status.
pub(super) fn error_codes(doc: &mut Value) {
    use crate::error::ERROR_CODES;
    let list: Vec<String> = ERROR_CODES
        .iter()
        .map(|(code, status, meaning)| format!("`{code}` ({status}): {meaning}"))
        .collect();
    doc["components"]["schemas"]["ErrorEnvelope"]["properties"]["error"]["properties"]["code"]
        ["description"] = json!(format!(
        "Stable machine-readable error code, one of:\n\n- {}",
        list.join("\n- ")
    ));
    for op in operations_mut(doc) {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, resp) in responses.iter_mut() {
            let Some(media) = resp
                .get_mut("content")
                .and_then(|c| c.get_mut("application/json"))
            else {
                continue;
            };
            if media["schema"]["$ref"] != "#/components/schemas/ErrorEnvelope" {
                continue;
            }
            let mut examples = serde_json::Map::new();
            for (code, _, meaning) in ERROR_CODES
                .iter()
                .filter(|(_, s, _)| s.to_string() == *status)
            {
                let mut error = json!({"code": code, "message": meaning});
                if *code == "validation_error" || *code == "bad_request" {
                    error["details"] = json!({"field": "max_in_flight"});
                }
                examples.insert(
                    (*code).to_owned(),
                    json!({"summary": meaning, "value": {
                        "error": error,
                        "meta": {"request_id": "0193a4c2-7d1e-7b3a-9f2e-5c8d1a6b4e20"}
                    }}),
                );
            }
            if !examples.is_empty() {
                media["examples"] = Value::Object(examples);
            }
        }
    }
}

/// The shared error responses (`standard`: status and description) move to
/// `components/responses`, one per status and kind of operation (behind a credential, or
/// public: their headers differ), and operations refer to them. An operation's own error
/// response (another description) stays inline. Runs after [`headers`] and [`error_codes`],
/// whose results the components carry.
pub(super) fn shared_responses(doc: &mut Value, standard: &[(&str, &str)]) {
    fn name(status: &str) -> &'static str {
        match status {
            "400" => "BadRequest",
            "401" => "Unauthorized",
            "404" => "NotFound",
            "408" => "RequestTimeout",
            "409" => "Conflict",
            "413" => "PayloadTooLarge",
            "415" => "UnsupportedMediaType",
            "422" => "UnprocessableEntity",
            "429" => "TooManyRequests",
            "500" => "InternalError",
            "503" => "ServiceUnavailable",
            other => panic!("no shared response for {other}"),
        }
    }
    let mut shared = serde_json::Map::new();
    for op in operations_mut(doc) {
        let secured = secured(op);
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, resp) in responses.iter_mut() {
            let is_standard = standard
                .iter()
                .any(|(s, d)| s == status && resp["description"] == *d);
            if !is_standard {
                continue;
            }
            let component = format!("{}{}", name(status), if secured { "" } else { "Public" });
            let existing = shared
                .entry(component.clone())
                .or_insert_with(|| resp.clone());
            assert_eq!(
                existing, resp,
                "{component}: two operations answer it differently"
            );
            *resp = json!({ "$ref": format!("#/components/responses/{component}") });
        }
    }
    doc["components"]["responses"] = Value::Object(shared);
}

/// An optional request body (`Option<T>` in the route) is `required: false` with `T`'s schema,
/// not a required-by-default body whose schema is `oneOf [null, T]`: with the latter,
/// openapi-python-client sends its "unset" marker as the JSON body when a caller gives none
/// (`rerun-failed` without causes failed with a `TypeError` in the client). Sending no body
/// is what the API takes.
pub(super) fn optional_bodies(doc: &mut Value) {
    for op in operations_mut(doc) {
        let Some(body) = op.get_mut("requestBody") else {
            continue;
        };
        let mut optional = false;
        for (_, media) in body["content"]
            .as_object_mut()
            .into_iter()
            .flat_map(|c| c.iter_mut())
        {
            let one_of = media["schema"]["oneOf"].as_array().cloned();
            let Some(alts) = one_of else { continue };
            let rest: Vec<&Value> = alts.iter().filter(|a| a["type"] != "null").collect();
            if alts.len() == 2 && rest.len() == 1 {
                media["schema"] = rest[0].clone();
                optional = true;
            }
        }
        if optional {
            body["required"] = Value::Bool(false);
        }
    }
}

/// Every operation of the document.
fn operations_mut(doc: &mut Value) -> impl Iterator<Item = &mut Value> {
    doc["paths"]
        .as_object_mut()
        .expect("the document has paths")
        .values_mut()
        .flat_map(|item| {
            item.as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
        })
}

/// Whether an operation needs the bearer credential.
fn secured(op: &Value) -> bool {
    op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r.get("bearerAuth").is_some()))
}
