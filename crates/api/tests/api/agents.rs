//! Workflows (agents): CRUD, enable/disable; webhook secrets never come back.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn crud_and_enable_disable() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let secret = "whsec_supersecret_value_123";
    let r = app
        .post(&key, "/public-api/agents", json!({"name": "  Triage  ", "description": "sorts tickets", "credit_tier": 2,
            "executor": {"type": "webhook", "url": "https://hooks.example.com/x", "secret": secret, "timeout_ms": 5000}}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let a = &r.body["data"];
    assert_eq!(a["name"], "Triage");
    assert_eq!(a["autonomy_type"], "CHAINED_ACTIONS");
    assert_eq!(a["entity_type"], "ticket");
    assert_eq!(a["state"], "ENABLED");
    assert_eq!(a["credit_tier"], 2);
    assert_eq!(
        a["executor"],
        json!({"type": "webhook", "url": "https://hooks.example.com/x", "timeout_ms": 5000, "secret_set": true})
    );
    assert!(!r.body.to_string().contains(secret));
    let id = a["id"].as_i64().unwrap();

    let r = app
        .patch(
            &key,
            &format!("/public-api/agents/{id}"),
            json!({"state": "DISABLED", "description": null}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["state"], "DISABLED");
    assert!(r.body["data"]["description"].is_null());
    assert_eq!(r.body["data"]["name"], "Triage");
    assert_eq!(
        app.post_empty(&key, &format!("/public-api/agents/{id}/enable"))
            .await
            .body["data"]["state"],
        "ENABLED"
    );
    assert_eq!(
        app.post_empty(&key, &format!("/public-api/agents/{id}/disable"))
            .await
            .body["data"]["state"],
        "DISABLED"
    );

    let list = app.get(&key, "/public-api/agents").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(!list.body.to_string().contains(secret));
    assert_eq!(list.body["meta"]["pagination"]["has_more"], false);

    assert_eq!(
        app.delete(&key, &format!("/public-api/agents/{id}"))
            .await
            .status,
        204
    );
    app.get(&key, &format!("/public-api/agents/{id}"))
        .await
        .assert_error(404, "workflow_not_found");
}
