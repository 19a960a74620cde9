//! Integrations (secrets write-only), tenant, health, OpenAPI and metrics endpoints.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn integration_secrets_are_write_only() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let body = json!({"site_url": "https://api-na.myconnectwise.net", "company_id": "acme",
                      "public_key": "pubkey", "private_key": "PRIVATE-cw-secret-1", "client_id": "CLIENT-guid-secret-2"});
    let r = app
        .send(
            app.client
                .put(app.url("/public-api/integrations/connectwise"))
                .bearer_auth(&key)
                .json(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["psa"], "connectwise");
    assert_eq!(
        r.body["data"]["config"],
        json!({"site_url": "https://api-na.myconnectwise.net", "company_id": "acme", "public_key": "pubkey"})
    );
    assert_eq!(
        r.body["data"]["secrets_set"],
        json!(["client_id", "private_key"])
    );
    let list = app.get(&key, "/public-api/integrations").await;
    let tenant = app.get(&key, "/public-api/tenant").await;
    for text in [
        r.body.to_string(),
        list.body.to_string(),
        tenant.body.to_string(),
    ] {
        assert!(
            !text.contains("PRIVATE-cw-secret-1") && !text.contains("CLIENT-guid-secret-2"),
            "{text}"
        );
    }
    assert_eq!(tenant.body["data"]["integration"], "connectwise");
    // The connector can read them.
    let t = app.store.tenant_by_name("acme").await.unwrap().unwrap();
    let s = app.store.integration_secrets(&t.id).await.unwrap().unwrap();
    assert_eq!(s["private_key"], "PRIVATE-cw-secret-1");

    // Validation: missing secret, unknown member, unknown PSA.
    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("private_key");
    let r = app
        .send(
            app.client
                .put(app.url("/public-api/integrations/connectwise"))
                .bearer_auth(&key)
                .json(&missing),
        )
        .await;
    r.assert_error(422, "validation_error");
    assert_eq!(r.field(), "private_key");
    let r = app
        .send(
            app.client
                .put(app.url("/public-api/integrations/autotask"))
                .bearer_auth(&key)
                .json(&body),
        )
        .await;
    r.assert_error(422, "validation_error");
    let r = app
        .send(
            app.client
                .put(app.url("/public-api/integrations/freshdesk"))
                .bearer_auth(&key)
                .json(&body),
        )
        .await;
    r.assert_error(404, "not_found");

    assert_eq!(
        app.delete(&key, "/public-api/integrations/connectwise")
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&key, "/public-api/integrations").await.body["data"],
        json!([])
    );
    app.delete(&key, "/public-api/integrations/connectwise")
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn removing_the_integration_fails_psa_backfills_only() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets: 200,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = sim.config().clone();
    let body = json!({"zone_url": format!("{}/ATServicesRest/", sim.base_url), "username": c.at_username,
                      "secret": c.at_secret, "integration_code": c.at_integration_code});
    assert_eq!(
        app.send(
            app.client
                .put(app.url("/public-api/integrations/autotask"))
                .bearer_auth(&key)
                .json(&body)
        )
        .await
        .status,
        200
    );
    let w1 = app.workflow(&key, "Query").await;
    let w2 = app.workflow(&key, "List").await;
    let q = app
        .post(&key, "/public-api/backfills", json!({"target_workflow_id": w1, "filter_spec": {"conditions": {"combinator": "and", "rules": [{"field": "$closed", "operator": "=", "value": false}]}}}))
        .await;
    assert_eq!(q.status, 201, "{:?}", q.body);
    let qid = q.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lid = app.backfill(&key, w2, &["1"]).await;
    assert_eq!(
        app.delete(&key, "/public-api/integrations/autotask")
            .await
            .status,
        204
    );
    let qb = app
        .get(&key, &format!("/public-api/backfills/{qid}"))
        .await
        .body["data"]
        .clone();
    assert_eq!(qb["state"], "FAILED");
    assert_eq!(qb["error"], "the tenant's PSA integration was removed");
    assert_eq!(
        app.get(&key, &format!("/public-api/backfills/{lid}"))
            .await
            .body["data"]["state"],
        "RUNNING"
    );
}

#[tokio::test]
async fn tenant_openapi_and_metrics() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let t = app.get(&key, "/public-api/tenant").await;
    assert_eq!(t.body["data"]["name"], "acme");
    assert_eq!(
        t.body["data"]["rate_limit"],
        json!({"limit": 1200, "window_seconds": 60})
    );
    assert!(t.body["data"]["integration"].is_null());

    let doc = app
        .send(app.client.get(app.url("/public-api/openapi.json")))
        .await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert_eq!(doc.body["info"]["title"], "Neo Public API");
    assert!(
        doc.body["paths"]["/public-api/backfills/{backfill_id}/rerun-failed"]["post"].is_object()
    );

    let m = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(m.status(), 200);
    let text = m.text().await.unwrap();
    assert!(text.contains("neo_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/public-api/tenant\""), "{text}");
    assert!(!text.contains(&key));
}

#[tokio::test]
async fn autotask_complete_status_ids_and_a_halo_integration() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let put = |psa: &str, body: serde_json::Value| {
        app.client
            .put(app.url(&format!("/public-api/integrations/{psa}")))
            .bearer_auth(&key)
            .json(&body)
    };
    let at = json!({"username": "api@acme.example", "secret": "s", "integration_code": "c",
                    "complete_status_ids": [5, 13]});
    let r = app.send(put("autotask", at.clone())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["data"]["config"]["complete_status_ids"],
        json!([5, 13])
    );
    for bad in [
        json!("5"),
        json!([]),
        json!(["5"]),
        json!([1.5]),
        json!({"a": 1}),
    ] {
        let mut b = at.clone();
        b["complete_status_ids"] = bad.clone();
        let r = app.send(put("autotask", b)).await;
        r.assert_error(422, "validation_error");
        assert_eq!(r.field(), "complete_status_ids", "{bad}");
    }
    let mut cw = at.clone();
    cw["complete_status_ids"] = json!(null);
    assert_eq!(
        app.send(put("autotask", cw)).await.status,
        200,
        "null = default"
    );

    // HaloPSA: `client_id` is a setting, `client_secret` a secret; counts come from the PSA.
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets: 300,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = sim.config().clone();
    let r = app
        .send(put(
            "halopsa",
            json!({"url": sim.base_url, "client_id": c.halo_client_id, "client_secret": c.halo_client_secret}),
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["data"]["config"],
        json!({"url": sim.base_url, "client_id": c.halo_client_id})
    );
    assert_eq!(r.body["data"]["secrets_set"], json!(["client_secret"]));
    let wf = app.workflow(&key, "Triage").await;
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"conditions": {"combinator": "and", "rules": [
                {"field": "$closed", "operator": "=", "value": false},
                {"field": "client_id", "operator": "=", "value": sim.tickets()[0].company.id}]}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let expected = sim
        .tickets()
        .iter()
        .filter(|t| !t.closed_flag() && t.company.id == sim.tickets()[0].company.id)
        .count();
    assert_eq!(r.body["data"]["backfill"]["total_estimated"], expected);
}
