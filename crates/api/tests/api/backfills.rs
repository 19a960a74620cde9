//! Backfill lifecycle through HTTP: create, get, items, signals, delete, rerun-failed (the
//! preflight and idempotency keys have their own files).

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn create_returns_backfill_and_cost_estimate() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app
        .workflow_with(
            &key,
            json!({"name": "Triage", "credit_tier": 2, "executor": {"type": "simulated"}}),
        )
        .await;
    let windows = json!({"monday": [{"run_start_time": "22:00", "run_end_time": "06:00"}],
                         "friday": [{"run_start_time": "20:00:00", "run_end_time": "23:30"}]});
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["101", "102", "103"]},
                   "daily_execution_windows": windows, "timezone": "Europe/London", "max_in_flight": 7,
                   "total_estimated": 99}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let b = &r.body["data"]["backfill"];
    assert!(b["id"].as_str().unwrap().starts_with("bf_"));
    assert_eq!(b["state"], "RUNNING");
    assert_eq!(b["target_workflow_id"], wf);
    assert_eq!(b["target_workflow_name"], "Triage");
    assert_eq!(b["target_workflow_autonomy_type"], "CHAINED_ACTIONS");
    assert_eq!(b["entity_type"], "ticket");
    assert_eq!(b["daily_execution_windows"], windows);
    assert_eq!(b["timezone"], "Europe/London");
    assert_eq!(b["max_in_flight"], 7);
    assert_eq!(b["total_estimated"], 3, "the server's own count wins");
    assert_eq!(b["processed_count"], 0);
    assert_eq!(b["pending_count"], 3);
    assert_eq!(b["started_at"], T0);
    assert_eq!(b["created_at"], T0);
    assert!(b["completed_at"].is_null());
    assert!(b["error"].is_null());
    assert!(b["parent_backfill_run_id"].is_null());
    assert!(b["created_by"].as_str().unwrap().starts_with("key_"));
    assert_eq!(
        r.body["data"]["cost_estimate"],
        json!({"total_entities": 3, "credits_per_entity": 2, "total_credits_estimated": 6})
    );

    let id = b["id"].as_str().unwrap();
    let g = app.get(&key, &format!("/public-api/backfills/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["data"], *b);
}

#[tokio::test]
async fn defaults_and_draft() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1"]}, "draft": true}),
        )
        .await;
    let b = &r.body["data"]["backfill"];
    assert_eq!(b["state"], "DRAFT");
    assert!(b["started_at"].is_null());
    assert_eq!(b["timezone"], "UTC");
    assert_eq!(b["max_in_flight"], 5);
    assert_eq!(
        b["daily_execution_windows"],
        json!({}),
        "omitted windows = always open"
    );
    let id = b["id"].as_str().unwrap();
    let s = app
        .post_empty(&key, &format!("/public-api/backfills/{id}/start"))
        .await;
    assert_eq!(s.status, 202);
    assert_eq!(
        s.body["data"],
        json!({"backfill_id": id, "signal": "start", "message": "backfill is now RUNNING"})
    );
    let g = app.get(&key, &format!("/public-api/backfills/{id}")).await;
    assert_eq!(g.body["data"]["state"], "RUNNING");
    assert_eq!(g.body["data"]["started_at"], T0);
}

#[tokio::test]
async fn a_scheduled_start_is_kept_and_is_the_next_window_start() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let create = |start: &str| json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1"]}, "start_at": start});
    for bad in ["tomorrow", "2026-12-24T22:00:00", "2099-01-01T00:00:00Z"] {
        let r = app.post(&key, "/public-api/backfills", create(bad)).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
        assert_eq!(r.body["error"]["details"]["field"], "start_at", "{bad}");
    }
    // Tonight 22:00 in Paris, with its offset: RUNNING, closed until then.
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            create("2026-12-01T22:00:00+01:00"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let b = &r.body["data"]["backfill"];
    assert_eq!(b["state"], "RUNNING");
    assert_eq!(b["start_at"], "2026-12-01T21:00:00Z");
    let id = b["id"].as_str().unwrap();
    let g = app.get(&key, &format!("/public-api/backfills/{id}")).await;
    assert_eq!(g.body["data"]["next_window_start"], "2026-12-01T21:00:00Z");
    assert_eq!(g.body["data"]["start_at"], "2026-12-01T21:00:00Z");
}

#[tokio::test]
async fn relative_datetimes_are_frozen_at_create() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let sim = app.connectwise_sim(&key, 500).await;
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "total_estimated": 40, "filter_spec": {"conditions": {"combinator": "and", "rules": [
                {"field": "$created", "operator": ">=", "value": {"$ago": "P30D"}}]}, "limit": 100}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let b = &r.body["data"]["backfill"];
    assert_eq!(
        b["filter_spec"]["conditions"]["rules"][0]["value"],
        json!({"$datetime": "2026-10-29T21:07:35Z"})
    );
    // The server's own count (from the PSA) wins over the client's 40.
    let since: jiff::Timestamp = "2026-10-29T21:07:35Z".parse().unwrap();
    let expected = sim
        .tickets()
        .iter()
        .filter(|t| t.date_entered >= since)
        .count();
    assert_eq!(b["total_estimated"], expected);
    assert_eq!(r.body["data"]["cost_estimate"]["total_entities"], expected);
}

/// A rule-group create counts through the PSA; a PSA that does not answer is the documented
/// 503 `psa_unavailable` (documented on the operation since the schemathesis pass: the fuzzer
/// repoints the integration and then creates), and nothing is created.
#[tokio::test]
async fn create_over_an_unreachable_psa_is_a_documented_503() {
    let app = TestApp::spawn_with(|cfg| cfg.psa_policy.max_retries = 0).await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    app.connect_connectwise(
        &key,
        json!({"site_url": format!("http://127.0.0.1:{closed}"), "company_id": "acme",
               "public_key": "pub", "private_key": "priv-secret-7f3a", "client_id": "cid"}),
    )
    .await;
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"conditions": {"combinator": "and", "rules": [
                {"field": "$closed", "operator": "=", "value": false}]}}}),
        )
        .await;
    r.assert_error(503, "psa_unavailable");
    assert!(
        !r.body.to_string().contains("priv-secret-7f3a"),
        "{:?}",
        r.body
    );
    let list = app.get(&key, "/public-api/backfills").await;
    assert_eq!(list.body["data"], json!([]), "nothing was created");

    let doc: serde_json::Value = app
        .send(app.client.get(app.url("/public-api/openapi.json")))
        .await
        .body;
    let documented = &doc["paths"]["/public-api/backfills"]["post"]["responses"];
    for code in ["502", "503"] {
        assert_eq!(
            documented[code]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorEnvelope",
            "{code}: {documented}"
        );
    }
}

#[tokio::test]
async fn signals_follow_the_state_machine() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let id = app.backfill(&key, wf, &["1", "2", "3"]).await;
    let sig = |s: &str| format!("/public-api/backfills/{id}/{s}");
    let state = || async {
        app.get(&key, &format!("/public-api/backfills/{id}"))
            .await
            .body["data"]
            .clone()
    };

    let r = app.post_empty(&key, &sig("pause")).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.body["data"]["signal"], "pause");
    assert_eq!(state().await["state"], "PAUSED", "visible on the next GET");
    let r = app.post_empty(&key, &sig("pause")).await;
    assert_eq!(r.status, 202, "pause of a paused backfill is a no-op");
    assert!(r.body["data"]["message"]
        .as_str()
        .unwrap()
        .contains("already"));
    app.post_empty(&key, &sig("start"))
        .await
        .assert_error(409, "signal_not_applicable");
    assert_eq!(app.post_empty(&key, &sig("resume")).await.status, 202);
    assert_eq!(state().await["state"], "RUNNING");
    assert_eq!(app.post_empty(&key, &sig("resume")).await.status, 202);

    let r = app.post_empty(&key, &sig("cancel")).await;
    assert_eq!(r.status, 202);
    let b = state().await;
    assert_eq!(b["state"], "CANCELLED");
    assert_eq!(b["completed_at"], T0);
    assert_eq!(b["pending_count"], 0);
    assert_eq!(b["cancelled_count"], 3);
    let items = app
        .get(&key, &format!("/public-api/backfills/{id}/items"))
        .await;
    assert!(items.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "cancelled"));

    assert_eq!(
        app.post_empty(&key, &sig("cancel")).await.status,
        202,
        "cancel of CANCELLED is a no-op"
    );
    for s in ["start", "pause", "resume"] {
        app.post_empty(&key, &sig(s))
            .await
            .assert_error(409, "backfill_not_active");
    }
    app.post_empty(&key, "/public-api/backfills/bf_missing/pause")
        .await
        .assert_error(404, "backfill_not_found");
}

#[tokio::test]
async fn terminal_backfills_take_no_signal_and_drafts_cannot_pause() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let id = app.backfill(&key, wf, &["1"]).await;
    app.settle(&id, &[("1", "succeeded")], "COMPLETED").await;
    for s in ["start", "pause", "resume", "cancel"] {
        app.post_empty(&key, &format!("/public-api/backfills/{id}/{s}"))
            .await
            .assert_error(409, "backfill_not_active");
    }
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["9"]}, "draft": true}),
        )
        .await;
    let draft = r.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for s in ["pause", "resume"] {
        app.post_empty(&key, &format!("/public-api/backfills/{draft}/{s}"))
            .await
            .assert_error(409, "signal_not_applicable");
    }
}

#[tokio::test]
async fn only_a_draft_can_be_deleted() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let running = app.backfill(&key, wf, &["1"]).await;
    app.delete(&key, &format!("/public-api/backfills/{running}"))
        .await
        .assert_error(409, "backfill_not_draft");
    app.post_empty(&key, &format!("/public-api/backfills/{running}/cancel"))
        .await;
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1"]}, "draft": true}),
        )
        .await;
    let draft = r.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = app
        .delete(&key, &format!("/public-api/backfills/{draft}"))
        .await;
    assert_eq!(d.status, 204);
    app.get(&key, &format!("/public-api/backfills/{draft}"))
        .await
        .assert_error(404, "backfill_not_found");
    app.delete(&key, &format!("/public-api/backfills/{draft}"))
        .await
        .assert_error(404, "backfill_not_found");
}

#[tokio::test]
async fn items_are_in_snapshot_order_and_filter_by_status() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let ids: Vec<String> = (0..12).map(|i| format!("T{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let id = app.backfill(&key, wf, &refs).await;
    app.settle(
        &id,
        &[("T1", "failed"), ("T4", "failed"), ("T5", "skipped")],
        "RUNNING",
    )
    .await;

    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let r = app
            .get(
                &key,
                &format!("/public-api/backfills/{id}/items?page_size=5{q}"),
            )
            .await;
        assert_eq!(r.status, 200);
        for i in r.body["data"].as_array().unwrap() {
            seen.push(i["entity_id"].as_str().unwrap().to_owned());
        }
        if !r.body["meta"]["pagination"]["has_more"].as_bool().unwrap() {
            assert!(r.body["meta"]["pagination"]["next_cursor"].is_null());
            break;
        }
        cursor = r.body["meta"]["pagination"]["next_cursor"]
            .as_str()
            .map(str::to_owned);
    }
    assert_eq!(seen, ids);

    let r = app
        .get(
            &key,
            &format!("/public-api/backfills/{id}/items?status=failed,skipped"),
        )
        .await;
    let got: Vec<(&str, &str)> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["entity_id"].as_str().unwrap(),
                i["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("T1", "failed"), ("T4", "failed"), ("T5", "skipped")]
    );
    let failed = &r.body["data"][0];
    assert_eq!(failed["error"], "executor said no");
    assert_eq!(failed["attempts"], 1);

    // Find one entity: `?entity_id=` (it used to be ignored, listing every item).
    let entity = |q: &str| {
        let path = format!("/public-api/backfills/{id}/items?{q}");
        let app = &app;
        let key = &key;
        async move {
            let r = app.get(key, &path).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["entity_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(entity("entity_id=T4").await, vec!["T4"]);
    assert_eq!(entity("entity_id=T4&status=failed").await, vec!["T4"]);
    assert!(entity("entity_id=T4&status=succeeded").await.is_empty());
    assert!(entity("entity_id=T404").await.is_empty());
    let r = app
        .get(
            &key,
            &format!("/public-api/backfills/{id}/items?entity_id=T%014"),
        )
        .await;
    r.assert_error(400, "bad_request");
    assert_eq!(r.field(), "entity_id");

    let b = app
        .get(&key, &format!("/public-api/backfills/{id}"))
        .await
        .body["data"]
        .clone();
    assert_eq!(b["failed_count"], 2);
    assert_eq!(b["skipped_count"], 1);
    assert_eq!(
        b["processed_count"], 2,
        "processed = succeeded + failed; skipped are not processed"
    );
    let r = app
        .get(
            &key,
            &format!("/public-api/backfills/{id}/items?status=lost"),
        )
        .await;
    r.assert_error(400, "bad_request");
    assert_eq!(r.field(), "status");
}

#[tokio::test]
async fn rerun_failed_creates_a_child_over_the_failed_items() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app
        .workflow_with(
            &key,
            json!({"name": "Triage", "credit_tier": 3, "executor": {"type": "simulated"}}),
        )
        .await;
    let windows = json!({"tuesday": [{"run_start_time": "22:00", "run_end_time": "06:00"}]});
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["a", "b", "c", "d", "e"]},
                   "daily_execution_windows": windows, "timezone": "America/New_York", "max_in_flight": 9}),
        )
        .await;
    let src = r.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle(
        &src,
        &[
            ("a", "succeeded"),
            ("b", "failed"),
            ("c", "skipped"),
            ("d", "failed"),
            ("e", "succeeded"),
        ],
        "COMPLETED",
    )
    .await;

    let r = app
        .post_empty(&key, &format!("/public-api/backfills/{src}/rerun-failed"))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let child = &r.body["data"]["backfill"];
    assert_ne!(child["id"], src);
    assert_eq!(child["parent_backfill_run_id"], src);
    assert_eq!(child["state"], "RUNNING");
    assert_eq!(child["target_workflow_id"], wf);
    assert_eq!(child["daily_execution_windows"], windows);
    assert_eq!(child["timezone"], "America/New_York");
    assert_eq!(child["max_in_flight"], 9);
    assert_eq!(child["total_estimated"], 2);
    assert_eq!(
        r.body["data"]["cost_estimate"],
        json!({"total_entities": 2, "credits_per_entity": 3, "total_credits_estimated": 6})
    );
    let child_id = child["id"].as_str().unwrap();
    let items = app
        .get(&key, &format!("/public-api/backfills/{child_id}/items"))
        .await;
    let ids: Vec<&str> = items.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["entity_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["b", "d"], "only the failed items, in order");
    assert!(items.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "pending"));

    // Another rerun while the child is active: the workflow already has an active backfill.
    app.post_empty(&key, &format!("/public-api/backfills/{src}/rerun-failed"))
        .await
        .assert_error(409, "backfill_already_active");
}

/// Create and rerun-failed apply one rule to the target workflow
/// (`neo_domain::backfill::check_backfill_target`): a workflow PATCHed to CONVERSATIONAL after
/// its backfill completed with failures cannot get a rerun child, with the same answer as
/// create (it used to get one, and run it).
#[tokio::test]
async fn rerun_failed_refuses_a_workflow_made_conversational_as_create_does() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["a", "b"]}}),
        )
        .await;
    let src = r.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle(&src, &[("a", "failed"), ("b", "succeeded")], "COMPLETED")
        .await;
    let r = app
        .patch(
            &key,
            &format!("/public-api/agents/{wf}"),
            json!({"autonomy_type": "CONVERSATIONAL"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let create = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["a"]}}),
        )
        .await;
    create.assert_error(422, "invalid_for_conversational");
    let rerun = app
        .post_empty(&key, &format!("/public-api/backfills/{src}/rerun-failed"))
        .await;
    rerun.assert_error(422, "invalid_for_conversational");
    assert_eq!(rerun.field(), create.field());
    assert_eq!(
        rerun.body["error"]["message"],
        create.body["error"]["message"]
    );
    let list = app.get(&key, "/public-api/backfills").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1, "no child");
}

#[tokio::test]
async fn rerun_failed_refuses_ineligible_sources() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;

    // Non-terminal source (RUNNING), even with failures.
    let running = app.backfill(&key, wf, &["1", "2"]).await;
    app.settle(&running, &[("1", "failed")], "RUNNING").await;
    app.post_empty(
        &key,
        &format!("/public-api/backfills/{running}/rerun-failed"),
    )
    .await
    .assert_error(409, "backfill_not_rerunnable");
    // PAUSED is not terminal either.
    app.post_empty(&key, &format!("/public-api/backfills/{running}/pause"))
        .await;
    app.post_empty(
        &key,
        &format!("/public-api/backfills/{running}/rerun-failed"),
    )
    .await
    .assert_error(409, "backfill_not_rerunnable");
    app.post_empty(&key, &format!("/public-api/backfills/{running}/cancel"))
        .await;

    // Terminal with failed_count == 0.
    let clean = app.backfill(&key, wf, &["3"]).await;
    app.settle(&clean, &[("3", "succeeded")], "COMPLETED").await;
    app.post_empty(&key, &format!("/public-api/backfills/{clean}/rerun-failed"))
        .await
        .assert_error(409, "backfill_not_rerunnable");

    // CANCELLED and FAILED sources with failures are eligible.
    let cancelled = app.backfill(&key, wf, &["4", "5"]).await;
    app.settle(&cancelled, &[("4", "failed")], "CANCELLED")
        .await;
    let r = app
        .post_empty(
            &key,
            &format!("/public-api/backfills/{cancelled}/rerun-failed"),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let child = r.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Terminal source with failures, but another backfill of the workflow is active (the child).
    let done = {
        app.post_empty(&key, &format!("/public-api/backfills/{child}/cancel"))
            .await;
        let b = app.backfill(&key, wf, &["7", "8"]).await;
        app.settle(&b, &[("7", "failed")], "FAILED").await;
        b
    };
    let blocker = app.backfill(&key, wf, &["9"]).await;
    app.post_empty(&key, &format!("/public-api/backfills/{done}/rerun-failed"))
        .await
        .assert_error(409, "backfill_already_active");
    app.post_empty(&key, &format!("/public-api/backfills/{blocker}/cancel"))
        .await;
    assert_eq!(
        app.post_empty(&key, &format!("/public-api/backfills/{done}/rerun-failed"))
            .await
            .status,
        201
    );

    app.post_empty(&key, "/public-api/backfills/bf_nope/rerun-failed")
        .await
        .assert_error(404, "backfill_not_found");
}

#[tokio::test]
async fn deleting_the_workflow_fails_its_active_backfill() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let id = app.backfill(&key, wf, &["1", "2"]).await;
    assert_eq!(
        app.delete(&key, &format!("/public-api/agents/{wf}"))
            .await
            .status,
        204
    );
    let b = app
        .get(&key, &format!("/public-api/backfills/{id}"))
        .await
        .body["data"]
        .clone();
    assert_eq!(b["state"], "FAILED");
    assert_eq!(b["error"], "the target workflow was deleted");
    assert!(b["target_workflow_name"].is_null());
    assert_eq!(b["cancelled_count"], 2);
}

#[tokio::test]
async fn credit_warning_when_the_estimate_exceeds_the_allowance() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app
        .workflow_with(
            &key,
            json!({"name": "Big", "credit_tier": 3, "executor": {"type": "simulated"}}),
        )
        .await;
    let ids: Vec<String> = (0..4000).map(|i| i.to_string()).collect();
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body["data"]["cost_estimate"]["total_credits_estimated"],
        12000
    );
    let w = r.body["meta"]["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].as_str().unwrap().contains("12000"), "{w:?}");
    let c = app.get(&key, "/public-api/billing/credits").await;
    assert_eq!(
        c.body["data"],
        json!({"month": "2026-11", "credits_used": 0, "monthly_allowance": 10000, "credits_remaining": 10000})
    );
}

#[tokio::test]
async fn list_filters_by_state_and_workflow() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let w1 = app.workflow(&key, "One").await;
    let w2 = app.workflow(&key, "Two").await;
    let a = app.backfill(&key, w1, &["1"]).await;
    let b = app.backfill(&key, w2, &["1"]).await;
    app.post_empty(&key, &format!("/public-api/backfills/{a}/pause"))
        .await;
    let ids = |r: Resp| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(app.get(&key, "/public-api/backfills").await),
        vec![b.clone(), a.clone()],
        "newest first"
    );
    assert_eq!(
        ids(app.get(&key, "/public-api/backfills?state=PAUSED").await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(app
            .get(&key, "/public-api/backfills?state=RUNNING,PAUSED")
            .await)
        .len(),
        2
    );
    assert_eq!(
        ids(app
            .get(
                &key,
                &format!("/public-api/backfills?target_workflow_id={w2}")
            )
            .await),
        vec![b]
    );
}
