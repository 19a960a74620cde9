//! The admin API, fault injection, the request log, and the `psa-sim` binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use psa_sim::{Fault, LoggedRequest, SimConfig};
use reqwest::Method;
use serde_json::{json, Value};

fn small() -> SimConfig {
    SimConfig {
        tickets: 300,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn injected_429_with_retry_after_then_success() {
    let sim = sim_with(small()).await;
    let c = client();
    let resp = c
        .post(format!("{}/__sim/faults", sim.base_url))
        .json(&json!({
            "method": "GET",
            "path_prefix": "/v4_6_release/apis/3.0/service/tickets",
            "nth": 1,
            "status": 429,
            "retry_after": "1"
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.expect("json")["id"]
        .as_u64()
        .expect("id");

    let resp = cw(&sim, Method::GET, "/service/tickets")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": "ConnectWiseAPI", "message": "Too many requests. Please try again in 1 seconds."})
    );
    let resp = cw(&sim, Method::GET, "/service/tickets")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);

    let log = sim.requests().await;
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].status, log[0].fault), (Some(429), Some(id)));
    assert_eq!((log[1].status, log[1].fault), (Some(200), None));
    assert_eq!(sim.stats().faults_fired, 1);
    assert!(sim.faults().is_empty(), "a times=1 fault is used up");
}

#[tokio::test]
async fn nth_and_times_on_autotask() {
    let sim = sim_with(small()).await;
    sim.inject(
        Fault::status(503)
            .path_prefix("/atservicesrest/")
            .method("post")
            .nth(2)
            .times(2),
    );
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let resp = at(&sim, Method::POST, "/Tickets/query/count")
            .json(&json!({"filter": [{"op": "exist", "field": "id"}]}))
            .send()
            .await
            .expect("send");
        statuses.push(resp.status().as_u16());
        if resp.status() == 503 {
            assert!(resp.json::<Value>().await.expect("json")["errors"][0].is_string());
        }
    }
    assert_eq!(statuses, [200, 503, 503, 200, 200]);
}

#[tokio::test]
async fn dropped_connection_then_recovery() {
    let sim = sim_with(small()).await;
    sim.inject(
        Fault::drop_connection().path_prefix("/v4_6_release/apis/3.0/service/tickets/count"),
    );
    let err = cw(&sim, Method::GET, "/service/tickets/count").send().await;
    assert!(
        err.is_err(),
        "the connection is closed without a response: {err:?}"
    );
    let resp = cw(&sim, Method::GET, "/service/tickets/count")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"count": 300})
    );
    let log = sim.requests().await;
    assert_eq!(log[0].status, None, "no response was sent");

    // The same through the admin API, on Autotask.
    let resp = client()
        .post(format!("{}/__sim/faults", sim.base_url))
        .json(&json!({"path_prefix": "/ATServicesRest/V1.0/Tickets", "drop": true}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 201);
    assert!(at(&sim, Method::GET, "/Tickets/1").send().await.is_err());
    assert!(at(&sim, Method::GET, "/Tickets/1").send().await.is_ok());
}

#[tokio::test]
async fn delay_fault_and_fault_validation() {
    let sim = sim_with(small()).await;
    sim.inject(Fault::delay(300));
    let start = Instant::now();
    let resp = cw(&sim, Method::GET, "/service/tickets/count")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(300));

    let c = client();
    for bad in [
        json!({"status": 429, "nth": 1, "every": 2}),
        json!({}),
        json!({"status": 42}),
        json!({"status": 500, "probabilty": 0.5}),
    ] {
        let resp = c
            .post(format!("{}/__sim/faults", sim.base_url))
            .json(&bad)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 400, "{bad}");
    }
    // Probability faults use the seeded RNG; every=N is periodic.
    sim.inject(
        Fault::status(500)
            .every(3)
            .times(0)
            .path_prefix("/v4_6_release/apis/3.0/service/tickets/count"),
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            cw(&sim, Method::GET, "/service/tickets/count")
                .send()
                .await
                .expect("send")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 500, 200, 200, 500]);
    let resp = c
        .delete(format!("{}/__sim/faults", sim.base_url))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 204);
    assert!(sim.faults().is_empty());
}

#[tokio::test]
async fn request_log_records_requests_but_not_admin_calls() {
    let sim = sim_with(small()).await;
    let conditions = r#"board/name = "Help Desk" and summary contains "VPN""#;
    let resp = cw(&sim, Method::GET, "/service/tickets")
        .query(&[("conditions", conditions), ("pageSize", "10")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body = json!({"filter": [{"op": "eq", "field": "status", "value": 1}]});
    at(&sim, Method::POST, "/Tickets/query")
        .json(&body)
        .send()
        .await
        .expect("send");

    let c = client();
    let log: Vec<LoggedRequest> = c
        .get(format!("{}/__sim/requests", sim.base_url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(log.len(), 2, "admin requests are not logged");
    assert_eq!(log, sim.requests().await);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/v4_6_release/apis/3.0/service/tickets");
    assert_eq!(
        log[0].query_param("conditions").as_deref(),
        Some(conditions)
    );
    assert_eq!(
        log[0].header("clientid"),
        Some(sim.config().cw_client_id.as_str())
    );
    assert_eq!(log[0].status, Some(200));
    assert_eq!(log[1].method, "POST");
    assert_eq!(
        log[1].path, "/ATServicesRest/V1.0/Tickets/query",
        "the path as sent"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&log[1].body).expect("json body"),
        body
    );
    assert!(log[0].seq < log[1].seq);

    let stats: Value = c
        .get(format!("{}/__sim/stats", sim.base_url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["requests"], 2);
    assert_eq!(stats["connectwise_requests"], 1);
    assert_eq!(stats["autotask_requests"], 1);
    assert_eq!(stats["tickets"], 300);

    let resp = c
        .delete(format!("{}/__sim/requests", sim.base_url))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 204);
    assert!(sim.requests().await.is_empty());
    cw(&sim, Method::GET, "/service/tickets/count")
        .send()
        .await
        .expect("send");
    assert_eq!(sim.requests().await.len(), 1);
    sim.clear_requests();
    assert!(sim.requests().await.is_empty());
}

#[tokio::test]
async fn limits_and_reset_through_the_admin_api() {
    let sim = sim_with(small()).await;
    let c = client();
    let resp = c
        .post(format!("{}/__sim/limits", sim.base_url))
        .json(&json!({"cw_page_size_default": 10, "cw_forward_only_empty_link": "empty"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(sim.limits().cw_page_size_default, 10);
    let page: Value = cw(&sim, Method::GET, "/service/tickets")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(page.as_array().map(Vec::len), Some(10));
    let resp = cw(&sim, Method::GET, "/service/tickets")
        .header("pagination-type", "forward-only")
        .query(&[("pageId", "999999")])
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.headers().get("link").map(|v| v.as_bytes().to_vec()),
        Some(Vec::new())
    );
    let resp = c
        .post(format!("{}/__sim/limits", sim.base_url))
        .json(&json!({"no_such_limit": 1}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);

    let resp = c
        .post(format!("{}/__sim/reset", sim.base_url))
        .json(&json!({"seed": 7, "tickets": 120}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(sim.tickets().len(), 120);
    assert_eq!(sim.limits().cw_page_size_default, 25);
    assert!(sim.requests().await.is_empty());
    assert_eq!(sim.stats().requests, 0);
    let count: Value = cw(&sim, Method::GET, "/service/tickets/count")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(count, json!({"count": 120}));
    // The virtual clock moves on request.
    let clock: Value = c
        .post(format!("{}/__sim/clock", sim.base_url))
        .json(&json!({"advance_ms": 5000}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(clock["clock_ms"].as_u64().is_some_and(|ms| ms >= 5000));
    // Same seed, same data.
    assert_eq!(psa_sim::Dataset::generate(7, 120).tickets, sim.tickets());
}

#[test]
fn binary_prints_its_url_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_psa-sim"))
        .args(["--listen", "127.0.0.1:0", "--seed", "3", "--tickets", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn psa-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read line");
    let result = std::panic::catch_unwind(|| {
        let v: Value = serde_json::from_str(line.trim()).expect("one JSON line");
        let url = v["listening"].as_str().expect("listening").to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let info: Value = client()
                .get(format!("{url}/login/companyinfo/acme"))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            assert_eq!(info["Codebase"], "v4_6_release/");
            let stats: Value = client()
                .get(format!("{url}/__sim/stats"))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            assert_eq!(stats["tickets"], 50);
        });
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// A data set above `render_once_max_tickets` renders rows per read (so a million tickets fit
/// in memory); every personality answers it exactly as it answers the same data kept rendered.
#[tokio::test]
async fn rows_rendered_per_read_answer_like_rows_kept_rendered() {
    let cfg = SimConfig {
        tickets: 700,
        ..SimConfig::default()
    };
    let kept = sim_with(cfg.clone()).await;
    let per_read = sim_with(SimConfig {
        render_once_max_tickets: 0,
        ..cfg
    })
    .await;
    let one = format!("/service/tickets/{}", kept.tickets()[25].id);
    let cw_requests = [
        (
            "/service/tickets",
            vec![
                ("conditions", "closedFlag = false"),
                ("pageSize", "100"),
                ("pageId", "40"),
            ],
            true,
        ),
        (
            "/service/tickets",
            vec![
                ("conditions", r#"board/name = "Help Desk""#),
                ("orderBy", "priority/name desc, _info/lastUpdated"),
                ("pageSize", "50"),
                ("page", "2"),
                ("fields", "id,summary,_info"),
            ],
            false,
        ),
        (
            "/service/tickets/count",
            vec![(
                "customFieldConditions",
                r#"caption="Region" AND value = "West""#,
            )],
            false,
        ),
        ("/service/tickets/count", vec![], false),
        (
            "/service/tickets/count",
            vec![("conditions", "id > 900 and id < 2000 or id = 5")],
            false,
        ),
        (one.as_str(), vec![], false),
    ];
    for (path, query, forward_only) in cw_requests {
        let mut bodies = Vec::new();
        for sim in [&kept, &per_read] {
            let mut req = cw(sim, Method::GET, path).query(&query);
            if forward_only {
                req = req.header("pagination-type", "forward-only");
            }
            let resp = req.send().await.expect("send");
            assert_eq!(resp.status(), 200, "{path} {query:?}");
            bodies.push(resp.json::<Value>().await.expect("json"));
        }
        assert_ne!(bodies[0], json!([]), "{path} {query:?} answers something");
        assert_eq!(bodies[0], bodies[1], "{path} {query:?}");
    }

    // A count on the id alone does not render rows; it still counts exactly.
    let in_range = kept
        .tickets()
        .iter()
        .filter(|t| t.id > 900 && t.id < 2000)
        .count() as u64;
    assert!(in_range > 0);
    for sim in [&kept, &per_read] {
        assert_eq!(
            cw_count(sim, "id > 900 and id < 2000", None).await,
            in_range
        );
    }

    let at_query =
        json!({"filter": [{"op": "eq", "field": "status", "value": 1}], "MaxRecords": 40});
    let mut at_bodies = Vec::new();
    for sim in [&kept, &per_read] {
        let mut body = Vec::new();
        for path in ["/Tickets/query", "/Tickets/query/count"] {
            let resp = at(sim, Method::POST, path)
                .json(&at_query)
                .send()
                .await
                .expect("send");
            assert_eq!(resp.status(), 200);
            let mut v: Value = resp.json().await.expect("json");
            // The next-page URL names the simulator's own port.
            v["pageDetails"]["nextPageUrl"] = Value::Null;
            body.push(v);
        }
        at_bodies.push(body);
    }
    assert_eq!(at_bodies[0][0]["items"].as_array().map(Vec::len), Some(40));
    assert_eq!(at_bodies[0], at_bodies[1]);

    let mut halo_bodies = Vec::new();
    for sim in [&kept, &per_read] {
        let c = sim.config();
        let token: Value = client()
            .post(format!("{}/auth/token", sim.base_url))
            .query(&[("tenant", "sim")])
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&scope=all",
                c.halo_client_id, c.halo_client_secret
            ))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let resp = client()
            .get(format!("{}/tickets", sim.halo_api_url()))
            .bearer_auth(token["access_token"].as_str().expect("token"))
            .query(&[
                ("order", "lastactiondate"),
                ("orderdesc", "true"),
                ("pageinate", "true"),
                ("page_size", "30"),
                ("page_no", "3"),
            ])
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        halo_bodies.push(resp.json::<Value>().await.expect("json"));
    }
    assert_eq!(halo_bodies[0]["tickets"].as_array().map(Vec::len), Some(30));
    assert_eq!(halo_bodies[0], halo_bodies[1]);
}
