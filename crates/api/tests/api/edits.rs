//! Names and edits: `name` at create, `PATCH /public-api/backfills/{id}` on an active
//! backfill (each rule create uses, the audit), and the refusals.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_named_backfill_is_edited_while_it_runs_and_every_change_is_audited() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1", "2"]},
                   "name": "  Q4 clean-up  ", "max_in_flight": 5}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.body["data"]["backfill"]["name"], "Q4 clean-up");
    let path = format!("/public-api/backfills/{id}");

    let r = app.patch(&key, &path, json!({"max_in_flight": 20})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["max_in_flight"], 20);
    assert_eq!(
        r.body["data"]["name"], "Q4 clean-up",
        "omitted members stay"
    );
    let r = app
        .patch(
            &key,
            &path,
            json!({"name": "", "timezone": "Europe/London",
                   "daily_execution_windows": {"monday": [{"run_start_time": "22:00", "run_end_time": "06:00"}]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["data"]["name"],
        serde_json::Value::Null,
        "an empty name removes it"
    );
    assert_eq!(r.body["data"]["timezone"], "Europe/London");
    assert_eq!(
        r.body["data"]["daily_execution_windows"]["monday"][0]["run_start_time"],
        "22:00"
    );
    let got = app.get(&key, &path).await;
    assert_eq!(got.body["data"]["max_in_flight"], 20);

    // The audit: who changed what, from what, to what (newest first).
    let tenant = app.store.tenant_by_name("acme").await.unwrap().unwrap();
    let history = app
        .store
        .backfill_history(&tenant.id, &id, 10)
        .await
        .unwrap();
    let seen: Vec<(&str, Option<&str>, Option<&str>)> = history
        .iter()
        .map(|h| (h.what.as_str(), h.from.as_deref(), h.to.as_deref()))
        .collect();
    assert!(
        seen.contains(&("max_in_flight", Some("5"), Some("20"))),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("name", Some("Q4 clean-up"), None)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("timezone", Some("UTC"), Some("Europe/London"))),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.0 == "daily_execution_windows"),
        "{seen:?}"
    );
    assert!(
        history.iter().all(|h| h.actor.starts_with("key_")),
        "{history:?}"
    );
}

#[tokio::test]
async fn edits_are_refused_in_words() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let id = app.backfill(&key, wf, &["1"]).await;
    let path = format!("/public-api/backfills/{id}");
    for (body, status, code, field) in [
        (
            json!({"max_in_flight": 0}),
            422,
            "validation_error",
            "max_in_flight",
        ),
        (
            json!({"max_in_flight": 1000}),
            422,
            "validation_error",
            "max_in_flight",
        ),
        (
            json!({"timezone": "Mars/Olympus"}),
            422,
            "validation_error",
            "timezone",
        ),
        (
            json!({"name": "x".repeat(101)}),
            422,
            "validation_error",
            "name",
        ),
        (
            json!({"daily_execution_windows": {"monday": [{"run_start_time": "25:00", "run_end_time": "06:00"}]}}),
            422,
            "validation_error",
            "daily_execution_windows.monday[0].run_start_time",
        ),
        (json!({}), 400, "bad_request", ""),
        (
            json!({"state": "RUNNING"}),
            422,
            "validation_error",
            "state",
        ),
    ] {
        let r = app.patch(&key, &path, body.clone()).await;
        r.assert_error(status, code);
        if !field.is_empty() {
            assert_eq!(r.field(), field, "{body} → {:?}", r.body);
        }
    }
    // Another tenant's backfill does not exist for this key.
    let other = app.key("globex").await;
    app.patch(&other, &path, json!({"max_in_flight": 3}))
        .await
        .assert_error(404, "backfill_not_found");
    // An ended backfill is history.
    let r = app.post_empty(&key, &format!("{path}/cancel")).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let r = app.patch(&key, &path, json!({"max_in_flight": 3})).await;
    r.assert_error(409, "backfill_not_active");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("CANCELLED"));
}
