//! The Autotask personality over real HTTP: discovery, auth, query paging (GET and POST), filters, counts,
//! thresholds.

mod common;

use std::collections::HashSet;

use common::*;
use psa_sim::{SimHandle, Ticket};
use reqwest::Method;
use serde_json::{json, Value};

fn all_filter() -> Value {
    json!({"filter": [{"op": "gte", "field": "id", "value": 0}]})
}

async fn query_count(sim: &SimHandle, query: &Value) -> u64 {
    let resp = at(sim, Method::POST, "/Tickets/query/count")
        .json(query)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.expect("json")["queryCount"]
        .as_u64()
        .expect("queryCount")
}

/// Every id a query returns, following `nextPageUrl` with the method that started it.
async fn at_all_ids(sim: &SimHandle, query: &Value, by_post: bool) -> (Vec<u64>, usize) {
    let first = if by_post {
        at(sim, Method::POST, "/Tickets/query").json(query)
    } else {
        at(sim, Method::GET, "/Tickets/query").query(&[("search", query.to_string())])
    };
    let mut resp = first.send().await.expect("send");
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        pages += 1;
        let items = &body["items"];
        assert_eq!(
            body["pageDetails"]["count"].as_u64(),
            items.as_array().map(|a| a.len() as u64)
        );
        out.extend(ids(items));
        let Some(next) = body["pageDetails"]["nextPageUrl"].as_str() else {
            return (out, pages);
        };
        assert!(
            next.starts_with(&format!("{}/Tickets/query/next?paging=", sim.at_api_url())),
            "{next}"
        );
        assert_eq!(next.contains("&search="), !by_post, "{next}");
        resp = if by_post {
            at_url(sim, Method::POST, next).json(query)
        } else {
            at_url(sim, Method::GET, next)
        }
        .send()
        .await
        .expect("send");
    }
}

#[tokio::test]
async fn discovery_and_auth() {
    let sim = sim().await;
    let c = client();
    let v: Value = c
        .get(format!(
            "{}/atservicesrest/versioninformation",
            sim.base_url
        ))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v, json!({"apiVersions": ["1.0"]}));

    for prefix in ["/atservicesrest/v1.0", "/ATServicesRest/V1.0"] {
        let zone: Value = c
            .get(format!("{}{prefix}/zoneInformation", sim.base_url))
            .query(&[("user", sim.config().at_username.to_uppercase())])
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(zone["zoneName"], "Sim");
        assert_eq!(zone["url"], format!("{}/ATServicesRest/", sim.base_url));
        assert_eq!(zone["ci"], 0);
    }
    let resp = c
        .get(format!(
            "{}/atservicesrest/v1.0/zoneInformation?user=nobody@example.com",
            sim.base_url
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 500);
    assert!(resp.json::<Value>().await.expect("json")["errors"][0].is_string());

    // Missing and wrong credentials.
    let url = format!("{}/Tickets/query", sim.at_api_url());
    let resp = c.post(&url).json(&all_filter()).send().await.expect("send");
    assert_eq!(resp.status(), 401);
    assert!(resp.json::<Value>().await.expect("json")["errors"][0].is_string());
    let resp = c
        .post(&url)
        .header("UserName", sim.config().at_username.clone())
        .header("Secret", "wrong")
        .header(
            "ApiIntegrationCode",
            sim.config().at_integration_code.clone(),
        )
        .json(&all_filter())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn get_started_query_pages_through_every_row_once() {
    let sim = sim().await;
    let (got, pages) = at_all_ids(&sim, &all_filter(), false).await;
    let expected: Vec<u64> = sim.tickets().iter().map(|t| t.id).collect();
    assert_eq!(pages, 20);
    assert_eq!(got.iter().copied().collect::<HashSet<_>>().len(), got.len());
    assert_eq!(got, expected);
}

#[tokio::test]
async fn post_started_query_pages_with_the_same_body() {
    let sim = sim().await;
    let query = json!({
        "filter": [
            {"op": "noteq", "field": "status", "value": 5},
            {"op": "or", "items": [
                {"op": "eq", "field": "priority", "value": 3},
                {"op": "and", "items": [
                    {"op": "in", "field": "priority", "value": [1, 2]},
                    {"op": "exist", "field": "assignedResourceID"}
                ]}
            ]}
        ],
        "MaxRecords": 300
    });
    let pred = |t: &Ticket| {
        t.status.id != 5 && (t.priority.id == 3 || (t.priority.id <= 2 && t.owner.is_some()))
    };
    let expected: Vec<u64> = sim
        .tickets()
        .iter()
        .filter(|t| pred(t))
        .map(|t| t.id)
        .collect();
    let (got, pages) = at_all_ids(&sim, &query, true).await;
    assert_eq!(got, expected);
    assert_eq!(pages, expected.len().div_ceil(300));
    assert_eq!(query_count(&sim, &query).await, expected.len() as u64);

    // A POST-started cursor must be re-POSTed: GET there is 405.
    let first: Value = at(&sim, Method::POST, "/Tickets/query")
        .json(&query)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(first["pageDetails"]["requestCount"], 300);
    assert_eq!(first["pageDetails"]["prevPageUrl"], Value::Null);
    let next = first["pageDetails"]["nextPageUrl"]
        .as_str()
        .expect("next")
        .to_string();
    let resp = at_url(&sim, Method::GET, &next).send().await.expect("send");
    assert_eq!(resp.status(), 405);
    let second: Value = at_url(&sim, Method::POST, &next)
        .json(&query)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    // prevPageUrl leads back to the first page.
    let prev = second["pageDetails"]["prevPageUrl"]
        .as_str()
        .expect("prev")
        .to_string();
    let back: Value = at_url(&sim, Method::POST, &prev)
        .json(&query)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(back["items"], first["items"]);
}

#[tokio::test]
async fn udf_filter_projection_count_and_single_ticket() {
    let sim = sim().await;
    let query = json!({
        "filter": [
            {"op": "eq", "field": "Region", "udf": true, "value": "west"},
            {"op": "gte", "field": "createDate", "value": "2026-01-01T00:00:00Z"},
            {"op": "contains", "field": "TITLE", "value": "printer"}
        ],
        "IncludeFields": ["lastActivityDate", "userDefinedFields"]
    });
    let since: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let tickets = sim.tickets();
    let expected: Vec<&Ticket> = tickets
        .iter()
        .filter(|t| {
            t.region.as_deref() == Some("West")
                && t.date_entered >= since
                && t.summary.to_lowercase().contains("printer")
        })
        .collect();
    assert!(!expected.is_empty());
    let body: Value = at(&sim, Method::POST, "/Tickets/query")
        .json(&query)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), expected.len());
    for (item, t) in items.iter().zip(&expected) {
        let full = SimHandle::at_json(t);
        assert_eq!(
            item,
            &json!({"id": t.id, "lastActivityDate": full["lastActivityDate"], "userDefinedFields": full["userDefinedFields"]})
        );
        assert!(full["createDate"]
            .as_str()
            .is_some_and(|d| d.ends_with(".000Z")));
    }
    let count: Value = at(&sim, Method::GET, "/Tickets/query/count")
        .query(&[("search", query.to_string())])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(count["queryCount"], expected.len());

    // notExist on the UDF = null region; count agrees with the data.
    let nulls = json!({"filter": [{"op": "notExist", "field": "region", "udf": true}]});
    let n = tickets.iter().filter(|t| t.region.is_none()).count();
    assert_eq!(query_count(&sim, &nulls).await, n as u64);

    let t = &tickets[42];
    let item: Value = at(&sim, Method::GET, &format!("/tickets/{}", t.id))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(item, json!({"item": SimHandle::at_json(t)}));
}

#[tokio::test]
async fn filter_validation_errors() {
    let sim = sim().await;
    let cases = [
        (
            json!({"filter": [
                {"op": "eq", "field": "Region", "udf": true, "value": "West"},
                {"op": "eq", "field": "Tier", "udf": true, "value": "Gold"}
            ]}),
            "one user-defined field",
        ),
        (
            json!({"filter": [{"op": "or", "items": (0..501).map(|i| json!({"op": "eq", "field": "id", "value": i})).collect::<Vec<_>>()}]}),
            "Queries are limited to 500 or fewer 'OR' conditions",
        ),
        (
            json!({"filter": [{"op": "eq", "field": "serviceLevelAgreementHasBeenMet", "value": "true"}]}),
            "true or false",
        ),
        (
            json!({"filter": [{"op": "eq", "field": "nope", "value": 1}]}),
            "Unable to find",
        ),
        (json!({"filter": []}), "at least one"),
        (
            json!({"filter": [{"op": "gte", "field": "id", "value": 0}], "MaxRecords": 501}),
            "MaxRecords",
        ),
    ];
    for (query, needle) in cases {
        let resp = at(&sim, Method::POST, "/Tickets/query")
            .json(&query)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 500, "{needle}");
        let body: Value = resp.json().await.expect("json");
        let msg = body["errors"][0].as_str().expect("error text");
        assert!(msg.contains(needle), "{msg} should contain {needle}");
    }
    // 500 OR items are fine.
    let ok = json!({"filter": [{"op": "or", "items": (0..500).map(|i| json!({"op": "eq", "field": "id", "value": i})).collect::<Vec<_>>()}]});
    let resp = at(&sim, Method::POST, "/Tickets/query")
        .json(&ok)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let resp = at(&sim, Method::GET, "/Tickets/query")
        .query(&[("search", "{oops")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 500);
}

#[tokio::test]
async fn threshold_information_and_429() {
    let sim = sim().await;
    let mut limits = sim.limits();
    limits.at_threshold = 5;
    limits.at_latency = false;
    sim.set_limits(limits);
    for _ in 0..5 {
        let resp = at(&sim, Method::POST, "/Tickets/query/count")
            .json(&all_filter())
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
    }
    let info: Value = at(&sim, Method::GET, "/ThresholdInformation")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        info,
        json!({"externalRequestThreshold": 5, "requestThresholdTimeframe": 60, "currentTimeframeRequestCount": 5})
    );
    let resp = at(&sim, Method::POST, "/Tickets/query/count")
        .json(&all_filter())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!(retry > 3000 && retry <= 3600, "{retry}");
    assert!(resp.json::<Value>().await.expect("json")["errors"][0].is_string());
    // The window drains on the virtual clock.
    sim.advance_clock(std::time::Duration::from_secs(3600));
    let resp = at(&sim, Method::POST, "/Tickets/query/count")
        .json(&all_filter())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn latency_tiers_occupy_the_thread_slot() {
    let sim = sim_with(psa_sim::SimConfig {
        tickets: 200,
        ..psa_sim::SimConfig::default()
    })
    .await;
    let mut limits = sim.limits();
    limits.at_threshold = 4;
    limits.at_thread_limit = Some(1);
    limits.at_thread_limit_mode = psa_sim::ThreadLimitMode::Reject;
    sim.set_limits(limits);
    let count = || {
        at(&sim, Method::POST, "/Tickets/query/count")
            .json(&all_filter())
            .send()
    };
    // 1 of 4: no added latency.
    let start = std::time::Instant::now();
    assert_eq!(count().await.expect("send").status(), 200);
    assert!(start.elapsed() < std::time::Duration::from_millis(400));
    // 2 of 4 (50%): 0.5 s of latency, during which a second concurrent request finds no free thread.
    let start = std::time::Instant::now();
    let (a, b) = tokio::join!(count(), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        count().await
    });
    let mut statuses = [
        a.expect("send").status().as_u16(),
        b.expect("send").status().as_u16(),
    ];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429]);
    assert!(start.elapsed() >= std::time::Duration::from_millis(500));
    assert_eq!(sim.stats().at_throttled, 1);
}
