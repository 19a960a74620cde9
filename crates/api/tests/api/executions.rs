//! Executions: list filters, retry, cancel and the signed completion of asynchronous webhook
//! executions.

use neo_domain::backfill::ExecutionStatus;
use serde_json::json;

use crate::helpers::*;

const SECRET: &str = "whsec_0123456789abcdef";

async fn setup(app: &TestApp) -> (String, i64, String) {
    let key = app.key("acme").await;
    let wf = app
        .workflow_with(&key, json!({"name": "Hook", "credit_tier": 2,
            "executor": {"type": "webhook", "url": "https://hooks.example.com/run", "secret": SECRET}}))
        .await;
    let t = app.store.tenant_by_name("acme").await.unwrap().unwrap();
    (key, wf, t.id)
}

async fn execution(
    app: &TestApp,
    tenant: &str,
    wf: i64,
    id: &str,
    entity: &str,
    status: ExecutionStatus,
) {
    app.store
        .insert_execution(neo_store::NewExecution {
            id: id.into(),
            tenant_id: tenant.into(),
            agent_id: wf,
            agent_name: Some("Hook".into()),
            backfill_id: None,
            entity_id: entity.into(),
            entity_number: Some(format!("#{entity}")),
            status,
            retry_of: None,
            created_at: app.now(),
        })
        .await
        .unwrap();
}

fn signed(app: &TestApp, id: &str, body: &str, secret: &str) -> reqwest::RequestBuilder {
    signed_for(app, id, id, body, secret)
}

/// A completion signed for execution `signed_id`, sent to `/executions/{sent_to}/complete`.
fn signed_for(
    app: &TestApp,
    signed_id: &str,
    sent_to: &str,
    body: &str,
    secret: &str,
) -> reqwest::RequestBuilder {
    use neo_domain::signature::{sign, Direction};
    let ts = app.now().as_second();
    let sig = sign(
        secret.as_bytes(),
        ts,
        Direction::Complete,
        signed_id,
        body.as_bytes(),
    );
    app.client
        .post(app.url(&format!("/public-api/executions/{sent_to}/complete")))
        .header("content-type", "application/json")
        .header("x-neo-timestamp", ts.to_string())
        .header("x-neo-signature", sig)
        .body(body.to_owned())
}

/// A completion is bound to its execution: one signed for X never settles Y (401, Y stays
/// running), and X's own completion replayed after X settled answers 409.
#[tokio::test]
async fn a_completion_signed_for_one_execution_never_settles_another() {
    let app = TestApp::spawn().await;
    let (key, wf, tenant) = setup(&app).await;
    execution(&app, &tenant, wf, "ex_x", "100", ExecutionStatus::Running).await;
    execution(&app, &tenant, wf, "ex_y", "200", ExecutionStatus::Running).await;
    let body = r#"{"status":"failed","error":"nope"}"#;
    app.send(signed_for(&app, "ex_x", "ex_y", body, SECRET))
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(
        app.get(&key, "/public-api/executions/ex_y").await.body["data"]["status"],
        "running"
    );
    let r = app
        .send(signed_for(&app, "ex_x", "ex_x", body, SECRET))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["status"], "failed");
    app.send(signed_for(&app, "ex_x", "ex_x", body, SECRET))
        .await
        .assert_error(409, "execution_already_final");
    assert_eq!(
        app.get(&key, "/public-api/executions/ex_y").await.body["data"]["status"],
        "running"
    );
}

/// `/complete` stores a failed execution's `error` made harmless: control characters removed,
/// at most 4 KiB.
#[tokio::test]
async fn a_completion_error_is_stored_sanitized_and_capped() {
    let app = TestApp::spawn().await;
    let (key, wf, tenant) = setup(&app).await;
    execution(&app, &tenant, wf, "ex_1", "100", ExecutionStatus::Running).await;
    let body =
        json!({"status": "failed", "error": format!("bad\u{0}thing {}", "x".repeat(100_000))})
            .to_string();
    let r = app.send(signed(&app, "ex_1", &body, SECRET)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let e = app.get(&key, "/public-api/executions/ex_1").await.body["data"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        e.starts_with("badthing xxx") && e.ends_with('…'),
        "{}",
        &e[..40]
    );
    assert!(e.len() <= 4096, "{}", e.len());
}

#[tokio::test]
async fn signed_completion_settles_a_running_execution_and_debits_credits() {
    let app = TestApp::spawn().await;
    let (key, wf, tenant) = setup(&app).await;
    execution(&app, &tenant, wf, "ex_1", "100", ExecutionStatus::Running).await;
    execution(&app, &tenant, wf, "ex_2", "200", ExecutionStatus::Running).await;

    // Wrong secret, stale timestamp and missing headers are refused; nothing changes.
    app.send(signed(
        &app,
        "ex_1",
        r#"{"status":"succeeded"}"#,
        "not-the-secret-at-all",
    ))
    .await
    .assert_error(401, "unauthorized");
    let stale = {
        let ts = app.now().as_second() - 301;
        let body = r#"{"status":"succeeded"}"#;
        app.client
            .post(app.url("/public-api/executions/ex_1/complete"))
            .header("content-type", "application/json")
            .header("x-neo-timestamp", ts.to_string())
            .header(
                "x-neo-signature",
                neo_domain::signature::sign(
                    SECRET.as_bytes(),
                    ts,
                    neo_domain::signature::Direction::Complete,
                    "ex_1",
                    body.as_bytes(),
                ),
            )
            .body(body)
    };
    app.send(stale).await.assert_error(401, "unauthorized");
    app.send(
        app.client
            .post(app.url("/public-api/executions/ex_1/complete"))
            .json(&json!({"status": "succeeded"})),
    )
    .await
    .assert_error(401, "unauthorized");
    assert_eq!(
        app.get(&key, "/public-api/executions/ex_1").await.body["data"]["status"],
        "running"
    );

    let r = app
        .send(signed(&app, "ex_1", r#"{"status":"succeeded"}"#, SECRET))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["status"], "succeeded");
    let r = app
        .send(signed(
            &app,
            "ex_2",
            r#"{"status":"failed","error":"ticket locked"}"#,
            SECRET,
        ))
        .await;
    assert_eq!(r.body["data"]["status"], "failed");
    assert_eq!(r.body["data"]["error"], "ticket locked");
    // A second completion is a conflict.
    app.send(signed(&app, "ex_1", r#"{"status":"failed"}"#, SECRET))
        .await
        .assert_error(409, "execution_already_final");
    // A bad status is a validation error (after the signature checks out).
    execution(&app, &tenant, wf, "ex_3", "300", ExecutionStatus::Running).await;
    let r = app
        .send(signed(&app, "ex_3", r#"{"status":"done"}"#, SECRET))
        .await;
    r.assert_error(422, "validation_error");
    assert_eq!(r.field(), "status");

    // Only the succeeded execution consumed credits (tier 2).
    let c = app.get(&key, "/public-api/billing/credits").await;
    assert_eq!(c.body["data"]["credits_used"], 2);
    assert_eq!(c.body["data"]["credits_remaining"], 9998);
    let c = app
        .get(&key, "/public-api/billing/credits?month=2026-10")
        .await;
    assert_eq!(c.body["data"]["credits_used"], 0);
    assert_eq!(c.body["data"]["month"], "2026-10");
}

#[tokio::test]
async fn list_filters_retry_and_cancel() {
    let app = TestApp::spawn().await;
    let (key, wf, tenant) = setup(&app).await;
    execution(&app, &tenant, wf, "ex_a", "1", ExecutionStatus::Failed).await;
    execution(&app, &tenant, wf, "ex_b", "2", ExecutionStatus::Queued).await;
    execution(&app, &tenant, wf, "ex_c", "1", ExecutionStatus::Succeeded).await;

    let ids = |r: Resp| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["execution_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(app.get(&key, "/public-api/executions?entity_id=1").await),
        vec!["ex_c", "ex_a"]
    );
    assert_eq!(
        ids(app
            .get(&key, "/public-api/executions?status=failed,queued")
            .await),
        vec!["ex_b", "ex_a"]
    );
    assert_eq!(
        ids(app
            .get(&key, "/public-api/executions?entity_number=%232")
            .await),
        vec!["ex_b"]
    );
    assert_eq!(
        ids(app
            .get(
                &key,
                &format!("/public-api/executions?agent_id={wf}&page_size=1")
            )
            .await),
        vec!["ex_c"]
    );
    let e = app.get(&key, "/public-api/executions/ex_a").await.body["data"].clone();
    assert_eq!(e["agent_id"], wf);
    assert_eq!(e["agent_name"], "Hook");
    assert_eq!(e["entity_number"], "#1");

    // Retry: only failed or cancelled.
    app.post_empty(&key, "/public-api/executions/ex_c/retry")
        .await
        .assert_error(409, "execution_not_retryable");
    let r = app
        .post_empty(&key, "/public-api/executions/ex_a/retry")
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["data"]["status"], "queued");
    assert_eq!(r.body["data"]["retry_of"], "ex_a");
    assert_eq!(r.body["data"]["entity_id"], "1");

    // Cancel: only a non-final execution.
    let r = app
        .post_empty(&key, "/public-api/executions/ex_b/cancel")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["status"], "cancelled");
    app.post_empty(&key, "/public-api/executions/ex_b/cancel")
        .await
        .assert_error(409, "execution_already_final");
    app.get(&key, "/public-api/executions/ex_zzz")
        .await
        .assert_error(404, "not_found");
}
