//! Tenant isolation: every route called with another tenant's ids answers 404 and never shows
//! or changes the resource.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn another_tenants_ids_are_404_on_every_route() {
    let app = TestApp::spawn().await;
    let owner = app.key("acme").await;
    let intruder = app.key("globex").await;

    let wf = app.workflow(&owner, "Triage").await;
    let bf = app.backfill(&owner, wf, &["1", "2"]).await;
    let draft_wf = app.workflow(&owner, "Drafty").await;
    let r = app
        .post(&owner, "/public-api/backfills", json!({"target_workflow_id": draft_wf, "filter_spec": {"entity_ids": ["1"]}, "draft": true}))
        .await;
    let draft = r.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = app
        .backfill(&owner, app.workflow(&owner, "Done").await, &["1"])
        .await;
    app.settle(&done, &[("1", "failed")], "COMPLETED").await;
    let t = app.store.tenant_by_name("acme").await.unwrap().unwrap();
    let ex = app
        .store
        .insert_execution(neo_store::NewExecution {
            id: "ex_owner_1".into(),
            tenant_id: t.id.clone(),
            agent_id: wf,
            agent_name: Some("Triage".into()),
            backfill_id: None,
            entity_id: "1".into(),
            entity_number: None,
            status: neo_domain::backfill::ExecutionStatus::Failed,
            retry_of: None,
            created_at: app.now(),
        })
        .await
        .unwrap();

    // (method, path, body, expected code)
    let cases: Vec<(&str, String, Option<serde_json::Value>, &str)> = vec![
        (
            "GET",
            format!("/public-api/backfills/{bf}"),
            None,
            "backfill_not_found",
        ),
        (
            "GET",
            format!("/public-api/backfills/{bf}/items"),
            None,
            "backfill_not_found",
        ),
        (
            "POST",
            format!("/public-api/backfills/{bf}/pause"),
            None,
            "backfill_not_found",
        ),
        (
            "POST",
            format!("/public-api/backfills/{bf}/resume"),
            None,
            "backfill_not_found",
        ),
        (
            "POST",
            format!("/public-api/backfills/{bf}/cancel"),
            None,
            "backfill_not_found",
        ),
        (
            "POST",
            format!("/public-api/backfills/{draft}/start"),
            None,
            "backfill_not_found",
        ),
        (
            "DELETE",
            format!("/public-api/backfills/{draft}"),
            None,
            "backfill_not_found",
        ),
        (
            "POST",
            format!("/public-api/backfills/{done}/rerun-failed"),
            None,
            "backfill_not_found",
        ),
        (
            "GET",
            format!("/public-api/agents/{wf}"),
            None,
            "workflow_not_found",
        ),
        (
            "PATCH",
            format!("/public-api/agents/{wf}"),
            Some(json!({"name": "mine now"})),
            "workflow_not_found",
        ),
        (
            "POST",
            format!("/public-api/agents/{wf}/enable"),
            None,
            "workflow_not_found",
        ),
        (
            "POST",
            format!("/public-api/agents/{wf}/disable"),
            None,
            "workflow_not_found",
        ),
        (
            "DELETE",
            format!("/public-api/agents/{wf}"),
            None,
            "workflow_not_found",
        ),
        (
            "GET",
            format!("/public-api/executions/{}", ex.id),
            None,
            "not_found",
        ),
        (
            "POST",
            format!("/public-api/executions/{}/retry", ex.id),
            None,
            "not_found",
        ),
        (
            "POST",
            format!("/public-api/executions/{}/cancel", ex.id),
            None,
            "not_found",
        ),
        (
            "POST",
            "/public-api/backfills".into(),
            Some(json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1"]}})),
            "workflow_not_found",
        ),
    ];
    for (method, path, body, code) in &cases {
        let mut req = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(&intruder);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = app.send(req).await;
        assert_eq!(r.status, 404, "{method} {path}: {:?}", r.body);
        assert_eq!(r.code(), *code, "{method} {path}");
        let text = r.body.to_string();
        assert!(
            !text.contains("Triage"),
            "{method} {path} leaked the resource: {text}"
        );
    }

    // Lists show nothing of the other tenant.
    for path in [
        "/public-api/backfills",
        "/public-api/agents",
        "/public-api/executions",
        "/public-api/integrations",
    ] {
        let r = app.get(&intruder, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body["data"], json!([]), "{path}");
    }
    let r = app
        .get(
            &intruder,
            &format!("/public-api/executions?backfill_id={bf}"),
        )
        .await;
    assert_eq!(r.body["data"], json!([]));

    // And nothing changed for the owner.
    let b = app
        .get(&owner, &format!("/public-api/backfills/{bf}"))
        .await;
    assert_eq!(b.body["data"]["state"], "RUNNING");
    let w = app.get(&owner, &format!("/public-api/agents/{wf}")).await;
    assert_eq!(w.body["data"]["name"], "Triage");
    assert_eq!(w.body["data"]["state"], "ENABLED");
    assert_eq!(
        app.get(&owner, &format!("/public-api/backfills/{draft}"))
            .await
            .body["data"]["state"],
        "DRAFT"
    );
    assert_eq!(
        app.get(&owner, &format!("/public-api/executions/{}", ex.id))
            .await
            .body["data"]["status"],
        "failed"
    );
    assert_eq!(
        app.get(&owner, "/public-api/executions").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn cursors_of_another_list_are_refused() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let ids: Vec<String> = (0..3).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let bf = app.backfill(&key, wf, &refs).await;
    let r = app
        .get(
            &key,
            &format!("/public-api/backfills/{bf}/items?page_size=1"),
        )
        .await;
    let cursor = r.body["meta"]["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get(&key, &format!("/public-api/backfills?cursor={cursor}"))
        .await
        .assert_error(400, "invalid_cursor");
}
