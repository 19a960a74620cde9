//! Traces over OTLP/HTTP through the real binary (issue 24): a local collector receives a span
//! per request, with its route template, status and tenant, and a span per execution
//! dispatch, with the backfill, tenant and execution; no exported byte holds the API key, the
//! webhook secret or a credential header. A collector that is down changes nothing for the
//! API or the backfills, and is logged once; SIGTERM sends the spans still queued.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{receiver, serve, setup};
use serde_json::Value;

/// What the collector received: each request's content type and body.
#[derive(Default)]
struct Collector {
    posts: Mutex<Vec<(String, Vec<u8>)>>,
}

/// One exported span, its attributes flattened to strings.
#[derive(Debug, Clone)]
struct Exported {
    name: String,
    attrs: BTreeMap<String, String>,
    resource: BTreeMap<String, String>,
}

impl Collector {
    fn spans(&self) -> Vec<Exported> {
        let mut out = Vec::new();
        for (_, body) in self.posts.lock().unwrap().iter() {
            let v: Value = serde_json::from_slice(body).expect("an OTLP/JSON body");
            for rs in v["resourceSpans"].as_array().into_iter().flatten() {
                let resource = attrs(&rs["resource"]["attributes"]);
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    for s in ss["spans"].as_array().into_iter().flatten() {
                        out.push(Exported {
                            name: s["name"].as_str().unwrap_or_default().to_owned(),
                            attrs: attrs(&s["attributes"]),
                            resource: resource.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Every byte exported so far.
    fn bytes(&self) -> Vec<u8> {
        let posts = self.posts.lock().unwrap();
        posts.iter().flat_map(|(_, b)| b.iter().copied()).collect()
    }

    /// Polls until `find` picks a span, for at most `limit`.
    async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        find: impl Fn(&Exported) -> bool,
    ) -> Exported {
        let start = Instant::now();
        loop {
            if let Some(s) = self.spans().into_iter().find(&find) {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "no {what} span; received: {:#?}",
                self.spans()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// OTLP attributes (`[{key, value: {stringValue | intValue | ...}}]`) as strings.
fn attrs(v: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for kv in v.as_array().into_iter().flatten() {
        let val = &kv["value"];
        let s = ["stringValue", "intValue", "boolValue", "doubleValue"]
            .iter()
            .find_map(|k| match &val[*k] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })
            .unwrap_or_else(|| val.to_string());
        out.insert(kv["key"].as_str().unwrap_or_default().to_owned(), s);
    }
    out
}

/// A local OTLP/HTTP collector (`POST /v1/traces`); returns it and its base URL.
async fn collector() -> (Arc<Collector>, String) {
    async fn traces(
        State(c): State<Arc<Collector>>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        c.posts.lock().unwrap().push((ct, body.to_vec()));
        (StatusCode::OK, [("content-type", "application/json")], "{}")
    }
    let c = Arc::new(Collector::default());
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(c.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (c, url)
}

fn sqlite(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("neo.db").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_dispatches_are_traced_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    let (otel, otel_url) = collector().await;
    let (_hooks, hook_url) = receiver(0).await;
    let server = serve(
        &db,
        &[
            ("NEO_OTLP_ENDPOINT", otel_url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let (api, id) = setup(&db, &server, &hook_url, 5, 5).await;
    let done = api
        .wait_backfill(&server.base, &id, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["succeeded_count"], 5, "{done}");
    // A request with a path parameter and a query, and one that matches no route.
    let items = api
        .get(&server.base, &format!("/backfills/{id}/items?page_size=2"))
        .await;
    assert!(items["data"].is_array(), "{items}");
    let nope = api
        .http
        .get(format!("{}/no-such-thing", server.base))
        .bearer_auth(&api.key)
        .send()
        .await
        .unwrap();
    assert_eq!(nope.status(), 404);

    let limit = Duration::from_secs(30);
    let create = otel
        .wait_for("POST /public-api/backfills", limit, |s| {
            s.name == "http.request"
                && s.attrs.get("http.route").map(String::as_str) == Some("/public-api/backfills")
                && s.attrs.get("http.request.method").map(String::as_str) == Some("POST")
        })
        .await;
    assert_eq!(
        create.attrs["http.response.status_code"], "201",
        "{create:?}"
    );
    let tenant = create.attrs["tenant.id"].clone();
    assert!(tenant.starts_with("tn_"), "{create:?}");
    assert!(!create.attrs["request.id"].is_empty(), "{create:?}");
    assert_eq!(create.resource["service.name"], "neo-backfill");
    assert_eq!(
        create.resource["service.version"],
        env!("CARGO_PKG_VERSION")
    );

    // The route template, never the raw path with its ids.
    let items_span = otel
        .wait_for("GET items", limit, |s| {
            s.attrs.get("http.route").map(String::as_str)
                == Some("/public-api/backfills/{backfill_id}/items")
        })
        .await;
    assert_eq!(items_span.attrs["http.response.status_code"], "200");
    assert_eq!(items_span.attrs["tenant.id"], tenant);

    let dispatch = otel
        .wait_for("execution.dispatch", limit, |s| {
            s.name == "execution.dispatch"
                && s.attrs.get("backfill.id") == Some(&id)
                && s.attrs.contains_key("outcome")
        })
        .await;
    assert_eq!(dispatch.attrs["tenant.id"], tenant, "{dispatch:?}");
    assert!(!dispatch.attrs["execution.id"].is_empty(), "{dispatch:?}");
    assert!(dispatch.attrs["entity.id"].starts_with('T'), "{dispatch:?}");
    assert_eq!(dispatch.attrs["executor.type"], "webhook");
    assert_eq!(dispatch.attrs["outcome"], "succeeded");
    // Every item's dispatch is traced, once.
    let start = Instant::now();
    loop {
        let n = otel
            .spans()
            .iter()
            .filter(|s| s.name == "execution.dispatch" && s.attrs.get("backfill.id") == Some(&id))
            .count();
        if n == 5 {
            break;
        }
        assert!(n < 5 && start.elapsed() < limit, "{n} dispatch spans");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Spans only, and only the service's own: no dependency's (sqlx, hyper), no log event.
    let names: std::collections::BTreeSet<String> =
        otel.spans().into_iter().map(|s| s.name).collect();
    let expected: std::collections::BTreeSet<String> = ["http.request", "execution.dispatch"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, expected);
    let posts = otel.posts.lock().unwrap().clone();
    assert!(
        posts.iter().all(|(ct, _)| ct == "application/json"),
        "OTLP/JSON"
    );

    // Nothing secret in any byte sent.
    let sent = String::from_utf8_lossy(&otel.bytes()).to_lowercase();
    for secret in [
        api.key.to_lowercase(),
        "whsec_0123456789abcdef".to_owned(),
        "authorization".to_owned(),
        "bearer".to_owned(),
        "x-neo-signature".to_owned(),
        hook_url.to_lowercase(),
    ] {
        assert!(!sent.contains(&secret), "exported: {secret}");
    }
    // No raw path either (the 404's path is bounded to "unmatched").
    assert!(!sent.contains("no-such-thing"));
    assert!(!sent.contains("page_size"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let endpoint = format!("http://{closed}");
    let (_hooks, hook_url) = receiver(0).await;
    let server = serve(
        &db,
        &[
            ("NEO_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    let t = Instant::now();
    let (api, id) = setup(&db, &server, &hook_url, 20, 5).await;
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let done = api
        .wait_backfill(&server.base, &id, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["succeeded_count"], 20, "{done}");
    // More batches fail while requests go on; the failure is logged once, at warn.
    for _ in 0..10 {
        let t = Instant::now();
        let b = api.get(&server.base, &format!("/backfills/{id}")).await;
        assert_eq!(b["data"]["state"], "COMPLETED");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let failed = server.log_lines("traces: export failed");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0].contains("\"WARN\""), "{}", failed[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_the_queued_spans() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(&dir);
    let (otel, otel_url) = collector().await;
    let (_hooks, hook_url) = receiver(0).await;
    // A batch delay longer than the test: only the shutdown flush can send them.
    let mut server = serve(
        &db,
        &[
            ("NEO_OTLP_ENDPOINT", otel_url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    );
    let _ = setup(&db, &server, &hook_url, 1, 1).await;
    assert!(otel.spans().is_empty());
    server.terminate().await;
    let spans = otel.spans();
    assert!(
        spans.iter().any(|s| s.name == "http.request"
            && s.attrs.get("http.route").map(String::as_str) == Some("/public-api/backfills")),
        "{spans:#?}"
    );
}
