//! Each validation rule of docs/api.md §3.2 answers 422 `validation_error` with the exact
//! `details.field`; target checks answer their own codes.

use serde_json::{json, Value};

use crate::helpers::*;

fn base(workflow: i64) -> Value {
    json!({"target_workflow_id": workflow, "filter_spec": {"entity_ids": ["1", "2"]}})
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

fn win(s: &str, e: &str) -> Value {
    json!({"run_start_time": s, "run_end_time": e})
}

#[tokio::test]
async fn create_validation_rules_name_the_field() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown timezone",
            with(base(wf), "timezone", json!("Mars/Olympus_Mons")),
            "timezone",
        ),
        (
            "timezone not a string",
            with(base(wf), "timezone", json!(5)),
            "timezone",
        ),
        (
            "start time not HH:MM",
            with(
                base(wf),
                "daily_execution_windows",
                json!({"monday": [win("7pm", "23:00")]}),
            ),
            "daily_execution_windows.monday[0].run_start_time",
        ),
        (
            "end time out of range",
            with(
                base(wf),
                "daily_execution_windows",
                json!({"friday": [win("22:00", "24:00")]}),
            ),
            "daily_execution_windows.friday[0].run_end_time",
        ),
        (
            "seconds out of range",
            with(
                base(wf),
                "daily_execution_windows",
                json!({"tuesday": [win("22:00:61", "23:00")]}),
            ),
            "daily_execution_windows.tuesday[0].run_start_time",
        ),
        (
            "overlapping windows of one day",
            with(
                base(wf),
                "daily_execution_windows",
                json!({"monday": [win("22:00", "06:00"), win("23:30", "23:45")]}),
            ),
            "daily_execution_windows.monday[1]",
        ),
        (
            "start equals end",
            with(
                base(wf),
                "daily_execution_windows",
                json!({"sunday": [win("09:00", "09:00:00")]}),
            ),
            "daily_execution_windows.sunday[0].run_end_time",
        ),
        (
            "windows given but every day empty",
            with(
                base(wf),
                "daily_execution_windows",
                json!({"monday": [], "tuesday": []}),
            ),
            "daily_execution_windows",
        ),
        (
            "unknown weekday",
            with(
                base(wf),
                "daily_execution_windows",
                json!({"mon": [win("09:00", "10:00")]}),
            ),
            "daily_execution_windows.mon",
        ),
        (
            "max_in_flight zero",
            with(base(wf), "max_in_flight", json!(0)),
            "max_in_flight",
        ),
        (
            "max_in_flight over 100",
            with(base(wf), "max_in_flight", json!(101)),
            "max_in_flight",
        ),
        (
            "max_in_flight not an integer",
            with(base(wf), "max_in_flight", json!("5")),
            "max_in_flight",
        ),
        (
            "filter_spec not an object",
            with(base(wf), "filter_spec", json!([1, 2])),
            "filter_spec",
        ),
        (
            "filter_spec empty",
            with(base(wf), "filter_spec", json!({})),
            "filter_spec",
        ),
        (
            "filter rule with an unknown alias",
            with(
                base(wf),
                "filter_spec",
                json!({"conditions": {"combinator": "and", "rules": [{"field": "$nope", "operator": "=", "value": 1}]}}),
            ),
            "filter_spec.conditions.rules[0].field",
        ),
        (
            "filter rule with an unknown operator",
            with(
                base(wf),
                "filter_spec",
                json!({"conditions": {"combinator": "and", "rules": [{"field": "$id", "operator": "~=", "value": 1}]}}),
            ),
            "filter_spec.conditions.rules[0].operator",
        ),
        (
            "filter value of the wrong type",
            with(
                base(wf),
                "filter_spec",
                json!({"conditions": {"combinator": "or", "rules": [
                    {"field": "$id", "operator": "=", "value": 1},
                    {"combinator": "and", "rules": [{"field": "$closed", "operator": "=", "value": "no"}]}]}}),
            ),
            "filter_spec.conditions.rules[1].rules[0].value",
        ),
        (
            "filter list over 500 values",
            with(
                base(wf),
                "filter_spec",
                json!({"conditions": {"combinator": "and", "rules": [{"field": "$status", "operator": "in", "value": vec!["New"; 501]}]}}),
            ),
            "filter_spec.conditions.rules[0].value",
        ),
        (
            "entity id not a string",
            with(base(wf), "filter_spec", json!({"entity_ids": ["1", 2]})),
            "filter_spec.entity_ids[1]",
        ),
        (
            "missing target_workflow_id",
            json!({"filter_spec": {"entity_ids": ["1"]}}),
            "target_workflow_id",
        ),
        (
            "missing filter_spec",
            json!({"target_workflow_id": wf}),
            "filter_spec",
        ),
        (
            "unknown entity_type",
            with(base(wf), "entity_type", json!("spaceship")),
            "entity_type",
        ),
        (
            "entity_type other than the workflow's",
            with(base(wf), "entity_type", json!("company")),
            "entity_type",
        ),
        (
            "unknown member",
            with(base(wf), "priority", json!(1)),
            "priority",
        ),
    ];
    for (name, body, field) in cases {
        let r = app.post(&key, "/public-api/backfills", body).await;
        assert_eq!(r.status, 422, "{name}: {:?}", r.body);
        assert_eq!(r.code(), "validation_error", "{name}");
        assert_eq!(r.field(), field, "{name}: {:?}", r.body);
    }
    // Nothing was created by any of them.
    let r = app.get(&key, "/public-api/backfills").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn target_workflow_checks() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;

    let r = app.post(&key, "/public-api/backfills", base(999)).await;
    r.assert_error(404, "workflow_not_found");

    let disabled = app
        .workflow_with(
            &key,
            json!({"name": "Off", "state": "DISABLED", "executor": {"type": "simulated"}}),
        )
        .await;
    app.post(&key, "/public-api/backfills", base(disabled))
        .await
        .assert_error(409, "workflow_not_enabled");

    let conv = app
        .workflow_with(&key, json!({"name": "Chat", "autonomy_type": "CONVERSATIONAL", "executor": {"type": "simulated"}}))
        .await;
    let r = app.post(&key, "/public-api/backfills", base(conv)).await;
    r.assert_error(422, "invalid_for_conversational");

    let wf = app.workflow(&key, "Triage").await;
    assert_eq!(
        app.post(&key, "/public-api/backfills", base(wf))
            .await
            .status,
        201
    );
    app.post(&key, "/public-api/backfills", base(wf))
        .await
        .assert_error(409, "backfill_already_active");
    // A DRAFT counts as active too.
    let wf2 = app.workflow(&key, "Triage 2").await;
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            with(base(wf2), "draft", json!(true)),
        )
        .await;
    assert_eq!(r.body["data"]["backfill"]["state"], "DRAFT");
    app.post(&key, "/public-api/backfills", base(wf2))
        .await
        .assert_error(409, "backfill_already_active");
}

#[tokio::test]
async fn a_psa_filter_needs_an_integration() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let query = json!({"conditions": {"combinator": "and", "rules": [{"field": "$closed", "operator": "=", "value": false}]}});
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            with(base(wf), "filter_spec", query.clone()),
        )
        .await;
    r.assert_error(409, "integration_not_configured");
    let r = app
        .post(
            &key,
            "/public-api/backfills/verify",
            json!({"entity_type": "ticket", "filter_spec": query}),
        )
        .await;
    r.assert_error(409, "integration_not_configured");
}

/// A time zone abbreviation is one fixed offset (EST is UTC-5 all year): windows in it drift an
/// hour from the clocks of the place meant. Refused with the IANA zone to use; UTC stays.
#[tokio::test]
async fn a_fixed_offset_time_zone_is_refused_with_the_zone_to_use() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    for (tz, suggestion) in [
        ("EST", "use an IANA zone such as America/New_York"),
        ("PST", "such as America/Los_Angeles"),
        ("CET", "such as Europe/Paris"),
        ("GMT+1", "such as Europe/Paris"),
        ("EST5EDT", "such as America/New_York"),
    ] {
        let r = app
            .post(
                &key,
                "/public-api/backfills",
                with(base(wf), "timezone", json!(tz)),
            )
            .await;
        r.assert_error(422, "validation_error");
        assert_eq!(r.field(), "timezone", "{tz}");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{tz} is a ")), "{message}");
        assert!(message.contains("not a place's time zone"), "{message}");
        assert!(message.contains(suggestion), "{tz}: {message}");
    }
    for tz in ["UTC", "Etc/UTC", "America/New_York"] {
        let w = app.workflow(&key, &format!("Zone {tz}")).await;
        let r = app
            .post(
                &key,
                "/public-api/backfills",
                with(base(w), "timezone", json!(tz)),
            )
            .await;
        assert_eq!(r.status, 201, "{tz}: {:?}", r.body);
        assert_eq!(r.body["data"]["backfill"]["timezone"], tz);
    }
}

#[tokio::test]
async fn agent_validation_names_the_field() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "", "executor": {"type": "simulated"}}),
            "name",
        ),
        (
            json!({"name": "x".repeat(201), "executor": {"type": "simulated"}}),
            "name",
        ),
        (
            json!({"name": "a", "credit_tier": 4, "executor": {"type": "simulated"}}),
            "credit_tier",
        ),
        (json!({"name": "a"}), "executor"),
        (
            json!({"name": "a", "executor": {"type": "ftp"}}),
            "executor.type",
        ),
        (
            json!({"name": "a", "executor": {"type": "webhook", "url": "ftp://x", "secret": "0123456789abcdef"}}),
            "executor.url",
        ),
        (
            json!({"name": "a", "executor": {"type": "webhook", "url": "https://hooks.example.com/x", "secret": "short"}}),
            "executor.secret",
        ),
        (
            json!({"name": "a", "executor": {"type": "simulated", "failure_rate": 1.5}}),
            "executor.failure_rate",
        ),
        (
            json!({"name": "a", "autonomy_type": "SENTIENT", "executor": {"type": "simulated"}}),
            "autonomy_type",
        ),
    ];
    for (body, field) in cases {
        let r = app.post(&key, "/public-api/agents", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        assert_eq!(r.field(), field, "{body}: {:?}", r.body);
    }
}

#[tokio::test]
async fn verify_classifies_ok_warning_error() {
    let app = TestApp::spawn_with(|c| c.verify_soft_limit = 3).await;
    let key = app.key("acme").await;
    let r = app
        .post(
            &key,
            "/public-api/backfills/verify",
            json!({"entity_type": "ticket", "filter_spec": {"entity_ids": ["1", "2"]}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["level"], "OK");
    assert_eq!(r.body["data"]["matching_entities"], 2);
    assert_eq!(r.body["data"]["success"], true);

    let r = app
        .post(
            &key,
            "/public-api/backfills/verify",
            json!({"entity_type": "ticket", "filter_spec": {"entity_ids": ["1", "2", "3", "4"]}}),
        )
        .await;
    assert_eq!(r.body["data"]["level"], "WARNING");
    assert_eq!(r.body["meta"]["warnings"].as_array().unwrap().len(), 1);

    let r = app
        .post(
            &key,
            "/public-api/backfills/verify",
            json!({"entity_type": "ticket", "filter_spec": {"conditions": {"combinator": "and", "rules": [{"field": "$when", "operator": "=", "value": 1}]}}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["level"], "ERROR");
    assert_eq!(r.body["data"]["success"], false);
    assert_eq!(
        r.body["data"]["field"],
        "filter_spec.conditions.rules[0].field"
    );

    let r = app
        .post(
            &key,
            "/public-api/backfills/verify",
            json!({"filter_spec": {"entity_ids": ["1"]}}),
        )
        .await;
    r.assert_error(422, "validation_error");
    assert_eq!(r.field(), "entity_type");
}

/// A query parameter the operation does not document is refused, naming it: a misspelt filter
/// would otherwise list everything (`?entity_id=` was ignored before it existed).
#[tokio::test]
async fn unknown_query_parameters_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let created = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1", "2"]}}),
        )
        .await;
    let id = created.body["data"]["backfill"]["id"].as_str().unwrap();
    for (path, field) in [
        (
            "/public-api/backfills?statuss=RUNNING".to_owned(),
            "statuss",
        ),
        (
            format!("/public-api/backfills/{id}/items?entity=1"),
            "entity",
        ),
        (format!("/public-api/backfills/{id}?verbose=1"), "verbose"),
        ("/public-api/health?probe=1".to_owned(), "probe"),
    ] {
        let r = app.get(&key, &path).await;
        r.assert_error(400, "bad_request");
        assert_eq!(r.field(), field, "{path}");
        if !path.contains("health") {
            assert!(
                r.header("x-ratelimit-remaining").is_some(),
                "{path}: rate-limit headers"
            );
        }
    }
    // Documented ones still work.
    let ok = app
        .get(
            &key,
            &format!("/public-api/backfills/{id}/items?status=pending&entity_id=1&page_size=5"),
        )
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["data"].as_array().unwrap().len(), 1);
}
