//! Helpers shared by the integration tests: a simulator per test and pre-authenticated request builders.
#![allow(dead_code)]

use psa_sim::{SimConfig, SimHandle};
use reqwest::{Client, Method, RequestBuilder};
use serde_json::Value;

pub async fn sim() -> SimHandle {
    sim_with(SimConfig::default()).await
}

pub async fn sim_with(cfg: SimConfig) -> SimHandle {
    psa_sim::spawn(cfg).await.expect("simulator starts")
}

pub fn client() -> Client {
    Client::builder().build().expect("reqwest client")
}

/// A ConnectWise request (`path` relative to the API root) with valid credentials.
pub fn cw(sim: &SimHandle, method: Method, path: &str) -> RequestBuilder {
    client()
        .request(method, format!("{}{}", sim.cw_api_url(), path))
        .header("Authorization", sim.cw_authorization())
        .header("clientId", sim.config().cw_client_id.clone())
}

/// A request to an absolute URL with the ConnectWise credentials.
pub fn cw_url(sim: &SimHandle, method: Method, url: &str) -> RequestBuilder {
    client()
        .request(method, url)
        .header("Authorization", sim.cw_authorization())
        .header("clientId", sim.config().cw_client_id.clone())
}

/// An Autotask request to an absolute URL with valid credentials.
pub fn at_url(sim: &SimHandle, method: Method, url: &str) -> RequestBuilder {
    let cfg = sim.config();
    client()
        .request(method, url)
        .header("UserName", cfg.at_username.clone())
        .header("Secret", cfg.at_secret.clone())
        .header("ApiIntegrationCode", cfg.at_integration_code.clone())
        .header("Content-Type", "application/json")
}

/// An Autotask request (`path` relative to `…/V1.0`) with valid credentials.
pub fn at(sim: &SimHandle, method: Method, path: &str) -> RequestBuilder {
    at_url(sim, method, &format!("{}{}", sim.at_api_url(), path))
}

/// The `<url>` of the `rel` entry of a `Link` header.
pub fn link_rel(link: &str, rel: &str) -> Option<String> {
    link.split(", <").find_map(|part| {
        let part = part.trim_start_matches('<');
        let (url, params) = part.split_once('>')?;
        params
            .contains(&format!("rel=\"{rel}\""))
            .then(|| url.to_string())
    })
}

pub fn ids(items: &Value) -> Vec<u64> {
    items
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["id"].as_u64().expect("id"))
        .collect()
}

/// Every id matching `conditions` / `customFieldConditions`, via forward-only paging with 1,000-row pages.
pub async fn cw_all_ids(sim: &SimHandle, conditions: &str, custom: Option<&str>) -> Vec<u64> {
    let mut query = vec![
        ("conditions", conditions.to_string()),
        ("pageSize", "1000".to_string()),
    ];
    if let Some(c) = custom {
        query.push(("customFieldConditions", c.to_string()));
    }
    let mut resp = cw(sim, Method::GET, "/service/tickets")
        .header("pagination-type", "forward-only")
        .query(&query)
        .send()
        .await
        .expect("send");
    let mut out = Vec::new();
    loop {
        assert_eq!(resp.status(), 200, "conditions {conditions:?}");
        let link = resp
            .headers()
            .get("link")
            .map(|v| v.to_str().expect("ascii").to_string());
        let page: Value = resp.json().await.expect("json");
        let page_ids = ids(&page);
        if page_ids.is_empty() {
            assert!(link.is_none(), "no Link on the empty page");
            return out;
        }
        out.extend(page_ids);
        let next = link_rel(&link.expect("Link on a non-empty page"), "next").expect("rel=next");
        resp = cw_url(sim, Method::GET, &next)
            .header("pagination-type", "forward-only")
            .send()
            .await
            .expect("send");
    }
}

/// `GET /service/tickets/count`.
pub async fn cw_count(sim: &SimHandle, conditions: &str, custom: Option<&str>) -> u64 {
    let mut query = vec![("conditions", conditions.to_string())];
    if let Some(c) = custom {
        query.push(("customFieldConditions", c.to_string()));
    }
    let resp = cw(sim, Method::GET, "/service/tickets/count")
        .query(&query)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    body["count"].as_u64().expect("count")
}
