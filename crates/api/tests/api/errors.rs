//! Every error uses the envelope with a request id (docs/api.md §2).

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn unknown_route_is_404_envelope() {
    let app = TestApp::spawn().await;
    let r = app.send(app.client.get(app.url("/public-api/nope"))).await;
    r.assert_error(404, "not_found");
    // `/` is the dashboard; other unknown paths outside the API are JSON 404s too.
    let r = app.send(app.client.get(app.url("/nope"))).await;
    r.assert_error(404, "not_found");
}

#[tokio::test]
async fn wrong_method_is_405_envelope() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let r = app
        .send(
            app.client
                .put(app.url("/public-api/backfills"))
                .bearer_auth(&key),
        )
        .await;
    r.assert_error(405, "method_not_allowed");
    let r = app
        .send(app.client.delete(app.url("/public-api/health")))
        .await;
    r.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn malformed_json_is_400_envelope() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let r = app
        .send(
            app.client
                .post(app.url("/public-api/backfills"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body("{\"target_workflow_id\": 1,"),
        )
        .await;
    r.assert_error(400, "bad_request");
}

#[tokio::test]
async fn wrong_content_type_is_415_envelope() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let r = app
        .send(
            app.client
                .post(app.url("/public-api/agents"))
                .bearer_auth(&key)
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    r.assert_error(415, "unsupported_media_type");
    let r = app
        .send(
            app.client
                .post(app.url("/public-api/agents"))
                .bearer_auth(&key)
                .body("{}"),
        )
        .await;
    r.assert_error(415, "unsupported_media_type");
}

#[tokio::test]
async fn oversized_body_is_413_envelope() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 1024).await;
    let key = app.key("acme").await;
    let ids: Vec<String> = (0..500).map(|i| format!("{i:08}")).collect();
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": 1, "filter_spec": {"entity_ids": ids}}),
        )
        .await;
    r.assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn bad_path_parameter_is_400_envelope() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let r = app.get(&key, "/public-api/agents/not-a-number").await;
    r.assert_error(400, "bad_request");
}

#[tokio::test]
async fn bad_query_parameters_are_400_envelope() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let r = app.get(&key, "/public-api/backfills?page_size=abc").await;
    r.assert_error(400, "bad_request");
    assert_eq!(r.field(), "page_size");
    for bad in ["0", "201"] {
        let r = app
            .get(&key, &format!("/public-api/backfills?page_size={bad}"))
            .await;
        r.assert_error(400, "bad_request");
        assert_eq!(r.field(), "page_size");
    }
    let r = app.get(&key, "/public-api/backfills?state=SLEEPING").await;
    r.assert_error(400, "bad_request");
    assert_eq!(r.field(), "state");
    let r = app
        .get(&key, "/public-api/backfills?target_workflow_id=x")
        .await;
    r.assert_error(400, "bad_request");
    assert_eq!(r.field(), "target_workflow_id");
    let r = app
        .get(&key, "/public-api/billing/credits?month=2026-13")
        .await;
    r.assert_error(400, "bad_request");
    assert_eq!(r.field(), "month");
}

#[tokio::test]
async fn handler_panic_is_500_envelope_and_the_server_goes_on() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let r = app.get(&key, "/public-api/__test/panic").await;
    r.assert_error(500, "internal_error");
    assert!(
        !r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("boom"),
        "panic text must not leak"
    );
    let r = app.get(&key, "/public-api/tenant").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn missing_or_invalid_credentials_are_401_envelope() {
    let app = TestApp::spawn().await;
    let r = app
        .send(app.client.get(app.url("/public-api/backfills")))
        .await;
    r.assert_error(401, "unauthorized");
    assert!(r.header("x-ratelimit-limit").is_none());
    let r = app
        .get(
            "neo_sk_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "/public-api/backfills",
        )
        .await;
    r.assert_error(401, "unauthorized");
    let r = app
        .send(
            app.client
                .get(app.url("/public-api/backfills"))
                .header("authorization", "Basic Zm9vOmJhcg=="),
        )
        .await;
    r.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn expired_and_revoked_keys_are_401() {
    let app = TestApp::spawn().await;
    let t = app.store.ensure_tenant("acme", app.now()).await.unwrap();
    let expires = app.now() + jiff::SignedDuration::from_secs(60);
    let minted = neo_api::auth::mint_key(&t.id, "live", "test", Some(expires), app.now());
    let key = minted.plaintext.clone();
    let id = minted.row.id.clone();
    app.store.insert_api_key(minted.row).await.unwrap();
    assert_eq!(app.get(&key, "/public-api/tenant").await.status, 200);
    app.clock.advance(jiff::SignedDuration::from_secs(60));
    app.get(&key, "/public-api/tenant")
        .await
        .assert_error(401, "unauthorized");

    let key2 = app.key("acme").await;
    let keys = app.store.list_api_keys(&t.id).await.unwrap();
    let id2 = keys.iter().find(|k| k.id != id).unwrap().id.clone();
    assert_eq!(app.get(&key2, "/public-api/tenant").await.status, 200);
    app.store.revoke_api_key(&id2, app.now()).await.unwrap();
    app.get(&key2, "/public-api/tenant")
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn success_envelope_has_request_id_and_timings() {
    let app = TestApp::spawn().await;
    let r = app
        .send(app.client.get(app.url("/public-api/health")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["database"], "ok");
    let rid = r.body["meta"]["request_id"].as_str().unwrap();
    assert_eq!(r.header("x-request-id"), Some(rid));
    assert!(r.body["meta"]["timings_ms"].is_object());
}
