//! Hardening of the HTTP surface: webhook URLs (SSRF guard), request body limit, slow clients.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

fn hook(url: &str) -> serde_json::Value {
    json!({"name": "Hook", "executor": {"type": "webhook", "url": url, "secret": "whsec_0123456789abcdef"}})
}

/// One URL per refused class, in the spellings a user might try.
const REFUSED: &[&str] = &[
    "http://127.0.0.1:9000/hook",
    "http://127.1.2.3/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://localhost:8080/hook",
    "http://LocalHost./hook",
    "http://api.localhost/hook",
    "http://[::1]:9000/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data",
    "http://10.0.0.5/hook",
    "http://172.20.1.1/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/hook",
    "http://100.64.0.1/hook",
    "http://[fd00::1]/hook",
    "http://[fc00::1]/hook",
    "http://0.0.0.0:9000/hook",
    "http://[::]/hook",
];

/// PSA URLs are called by the service too: the same SSRF rules apply when they are saved.
#[tokio::test]
async fn psa_urls_to_private_loopback_and_link_local_targets_are_refused_by_default() {
    let app = TestApp::spawn_with(|c| c.egress_allow_private = false).await;
    let key = app.key("acme").await;
    let cases = [
        (
            "autotask",
            "zone_url",
            json!({"zone_url": "http://127.0.0.1:9/", "username": "u", "secret": "s", "integration_code": "c"}),
        ),
        (
            "autotask",
            "zone_url",
            json!({"zone_url": "http://169.254.169.254/latest/", "username": "u", "secret": "s", "integration_code": "c"}),
        ),
        (
            "connectwise",
            "site_url",
            json!({"site_url": "http://169.254.169.254", "company_id": "c", "public_key": "p", "private_key": "k", "client_id": "i"}),
        ),
        (
            "connectwise",
            "site_url",
            json!({"site_url": "http://localhost:8080", "company_id": "c", "public_key": "p", "private_key": "k", "client_id": "i"}),
        ),
        (
            "halopsa",
            "url",
            json!({"url": "http://[::ffff:10.0.0.1]/", "client_id": "c", "client_secret": "s"}),
        ),
    ];
    for (psa, field, body) in cases {
        let r = app
            .put(
                &key,
                &format!("/public-api/integrations/{psa}"),
                body.clone(),
            )
            .await;
        r.assert_error(422, "validation_error");
        assert_eq!(r.field(), field, "{psa}: {:?}", r.body);
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("--egress-allow-private"), "{psa}: {msg}");
    }
    assert_eq!(
        app.get(&key, "/public-api/integrations").await.body["data"],
        json!([])
    );
    // A public URL is accepted.
    let r = app
        .put(
            &key,
            "/public-api/integrations/halopsa",
            json!({"url": "https://acme.halopsa.com", "client_id": "c", "client_secret": "s"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn webhooks_to_private_loopback_and_link_local_targets_are_refused_by_default() {
    let app = TestApp::spawn_with(|c| c.egress_allow_private = false).await;
    let key = app.key("acme").await;
    for url in REFUSED {
        let r = app.post(&key, "/public-api/agents", hook(url)).await;
        r.assert_error(422, "validation_error");
        assert_eq!(r.field(), "executor.url", "{url}: {:?}", r.body);
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("--egress-allow-private"), "{url}: {msg}");
    }
    // A public target is fine, and a PATCH cannot move it somewhere private.
    let wf = app
        .workflow_with(&key, hook("https://automation.example.com/neo"))
        .await;
    let r = app
        .patch(
            &key,
            &format!("/public-api/agents/{wf}"),
            json!({"executor": {"type": "webhook", "url": "http://169.254.169.254/", "secret": "whsec_0123456789abcdef"}}),
        )
        .await;
    r.assert_error(422, "validation_error");
    assert_eq!(r.field(), "executor.url");
    let got = app.get(&key, &format!("/public-api/agents/{wf}")).await;
    assert_eq!(
        got.body["data"]["executor"]["url"], "https://automation.example.com/neo",
        "{:?}",
        got.body
    );
}

#[tokio::test]
async fn only_http_and_https_webhooks_are_accepted_even_when_private_targets_are_allowed() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    for url in [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "gopher://example.com:70/x",
        "ws://example.com/hook",
        "javascript:alert(1)",
    ] {
        let r = app.post(&key, "/public-api/agents", hook(url)).await;
        r.assert_error(422, "validation_error");
        assert_eq!(r.field(), "executor.url", "{url}: {:?}", r.body);
    }
}

#[tokio::test]
async fn with_egress_allow_private_loopback_and_private_targets_are_accepted() {
    // `TestApp::spawn` opts in, as `serve --webhook-allow-private` does.
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    for url in REFUSED {
        let r = app.post(&key, "/public-api/agents", hook(url)).await;
        assert_eq!(r.status, 201, "{url}: {:?}", r.body);
    }
}

#[tokio::test]
async fn an_oversized_body_is_413_in_the_envelope_and_the_server_keeps_serving() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 1024).await;
    let key = app.key("acme").await;
    let big = "x".repeat(64 * 1024);
    let r = app
        .post(
            &key,
            "/public-api/agents",
            json!({"name": "big", "description": big, "executor": {"type": "simulated"}}),
        )
        .await;
    r.assert_error(413, "payload_too_large");
    assert!(r.body.get("data").is_none());
    // Nothing was created, and the next requests are answered normally.
    let list = app.get(&key, "/public-api/agents").await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);
    app.workflow(&key, "small").await;
}

/// Reads from `s` until EOF (or an error such as a reset), within `limit`; returns what came.
async fn read_to_close(s: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&buf).into_owned(),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {limit:?}; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
}

/// Polls `GET /public-api/agents` on fresh connections while `busy` runs; every answer must be
/// 200. Returns how many were served.
async fn served_meanwhile(app: &TestApp, key: &str, busy: impl std::future::Future) -> usize {
    let mut busy = std::pin::pin!(busy);
    let mut served = 0;
    loop {
        let client = reqwest::Client::new();
        let started = Instant::now();
        tokio::select! {
            _ = busy.as_mut() => return served,
            r = client.get(app.url("/public-api/agents")).bearer_auth(key).send() => {
                let r = r.unwrap();
                assert_eq!(r.status(), 200, "served in {:?}", started.elapsed());
                served += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_trickling_its_body_is_cut_at_the_body_timeout_while_others_are_served() {
    let app = TestApp::spawn_with(|c| c.body_read_timeout = Duration::from_secs(1)).await;
    let key = app.key("acme").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let body = json!({"name": "slow", "executor": {"type": "simulated"}}).to_string();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /public-api/agents HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut rd, mut wr) = s.into_split();
    // One byte every 200 ms: the whole body would take ~10 s.
    let trickle = tokio::spawn(async move {
        for b in body.bytes() {
            if wr.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = String::new();
    let served = served_meanwhile(&app, &key, async {
        answer = read_to_close(&mut rd, Duration::from_secs(10)).await;
    })
    .await;
    let took = started.elapsed();
    trickle.abort();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "the slow client is answered 408: {answer:?}"
    );
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"));
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "cut after {took:?}, configured 1 s"
    );
    assert!(served >= 1, "other clients were served meanwhile: {served}");
    // Nothing was created from the partial body.
    let list = app.get(&key, "/public-api/agents").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = TestApp::spawn_with(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let key = app.key("acme").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Headers sent one byte every 200 ms, never finished: trickling does not keep it open.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let (mut rd, mut wr) = s.split();
    let head = format!("GET /public-api/agents HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
    let trickle = async move {
        for b in head.bytes().chain(std::iter::repeat(b'a')) {
            if wr.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let mut answer = String::new();
    let served = served_meanwhile(&app, &key, async {
        tokio::select! {
            _ = trickle => {},
            a = read_to_close(&mut rd, Duration::from_secs(10)) => answer = a,
        }
    })
    .await;
    let took = started.elapsed();
    assert!(
        !answer.contains(" 200 "),
        "no answer to unfinished headers: {answer:?}"
    );
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "disconnected after {took:?}, configured 1 s"
    );
    assert!(served >= 1, "other clients were served meanwhile: {served}");
}
