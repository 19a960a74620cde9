//! Notification endpoints (issue 22) through the API: every bad input refused in the envelope
//! naming its field, the secret write-only, another tenant's endpoints invisible, the limit, a
//! PATCH that keeps what it omits, and "send a test event" written to the outbox.

use crate::helpers::*;
use serde_json::json;

const URL: &str = "https://hooks.example.com/neo";
const SECRET: &str = "whsec_0123456789abcdef";

#[tokio::test]
async fn endpoints_are_checked_kept_per_tenant_and_tested() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let other = app.key("globex").await;
    let path = "/public-api/notification-endpoints";
    for (bad, field) in [
        (
            json!({"url": "ftp://x.example.com", "secret": SECRET}),
            "url",
        ),
        (json!({"url": URL, "secret": "short"}), "secret"),
        (
            json!({"url": URL, "secret": SECRET, "event_types": ["backfill.exploded"]}),
            "event_types",
        ),
        (
            json!({"url": URL, "secret": SECRET, "event_types": ["endpoint.test"]}),
            "event_types",
        ),
        (
            json!({"url": URL, "secret": SECRET, "event_types": []}),
            "event_types",
        ),
        (
            json!({"url": URL, "secret": SECRET, "description": "a\u{7}b"}),
            "description",
        ),
    ] {
        let r = app.post(&key, path, bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
        assert_eq!(r.field(), field, "{bad}: {}", r.body);
    }
    for bad in [
        json!({"url": URL, "secret": SECRET, "format": "xml"}),
        json!({"url": URL, "secret": SECRET, "colour": "red"}),
        json!({"secret": SECRET}),
    ] {
        let r = app.post(&key, path, bad.clone()).await;
        assert!(
            r.status == 400 || r.status == 422,
            "{bad}: {} {}",
            r.status,
            r.body
        );
    }
    assert!(
        app.get(&key, path).await.body["data"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was created"
    );

    let r = app
        .post(
            &key,
            path,
            json!({"url": URL, "secret": SECRET, "event_types": ["backfill.completed", "backfill.failed"], "format": "slack", "description": " Ops <channel> "}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        !r.body.to_string().contains(SECRET),
        "write-only: {}",
        r.body
    );
    let e = &r.body["data"];
    assert_eq!(
        e["event_types"],
        json!(["backfill.completed", "backfill.failed"])
    );
    assert_eq!(e["format"], "slack");
    assert_eq!(e["enabled"], true);
    assert_eq!(e["description"], "Ops <channel>");
    let id = e["id"].as_str().unwrap().to_owned();
    let one = format!("{path}/{id}");

    // Every subscribable type by default.
    let r = app
        .post(&key, path, json!({"url": URL, "secret": SECRET}))
        .await;
    assert_eq!(
        r.body["data"]["event_types"].as_array().unwrap().len(),
        7,
        "{}",
        r.body
    );
    assert_eq!(r.body["data"]["format"], "json");

    // Another tenant sees none of it.
    assert!(app.get(&other, path).await.body["data"]
        .as_array()
        .unwrap()
        .is_empty());
    for r in [
        app.get(&other, &one).await,
        app.patch(&other, &one, json!({"enabled": false})).await,
        app.post(&other, &format!("{one}/test"), json!({})).await,
        app.get(&other, &format!("{one}/deliveries")).await,
        app.delete(&other, &one).await,
    ] {
        assert_eq!(r.status, 404, "{}", r.body);
    }

    let r = app
        .patch(&key, &one, json!({"enabled": false, "description": null}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["enabled"], false);
    assert_eq!(r.body["data"]["description"], serde_json::Value::Null);
    assert_eq!(
        r.body["data"]["format"], "slack",
        "omitted members are kept"
    );
    let r = app
        .patch(&key, &one, json!({"url": "http://10.0.0.1/hook"}))
        .await;
    assert_eq!(
        (r.status, r.field()),
        (200, ""),
        "this test app allows private targets: {}",
        r.body
    );
    let r = app.patch(&key, &one, json!({"secret": "short"})).await;
    assert_eq!((r.status, r.field()), (422, "secret"), "{}", r.body);

    let r = app.post(&key, &format!("{one}/test"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let event = r.body["data"]["event_id"].as_str().unwrap().to_owned();
    assert!(event.starts_with("evt_"));
    let r = app.get(&key, &format!("{one}/deliveries")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["event_id"], event.as_str());
    assert_eq!(rows[0]["event_type"], "endpoint.test");
    assert_eq!(rows[0]["attempts"], 0);
    assert!(rows[0]["next_attempt_at"].is_string());

    let r = app.delete(&key, &one).await;
    assert_eq!(r.status, 204);
    assert_eq!(app.get(&key, &one).await.status, 404);
    assert_eq!(app.delete(&key, &one).await.status, 404);
}

#[tokio::test]
async fn a_tenant_has_at_most_twenty_endpoints() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let path = "/public-api/notification-endpoints";
    for _ in 0..20 {
        let r = app
            .post(&key, path, json!({"url": URL, "secret": SECRET}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = app
        .post(&key, path, json!({"url": URL, "secret": SECRET}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.code(), "endpoint_limit");
    let other = app.key("globex").await;
    let r = app
        .post(&other, path, json!({"url": URL, "secret": SECRET}))
        .await;
    assert_eq!(r.status, 201, "another tenant's limit is its own");
}
