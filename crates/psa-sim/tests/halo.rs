//! The HaloPSA personality over real HTTP: authinfo, client-credentials tokens on the virtual clock, ticket paging,
//! the allowlisted parameters (and unknown ones ignored), the sliding window, faults and the request log.

mod common;

use std::time::Duration;

use common::*;
use psa_sim::{Fault, RateLimit, SimConfig, SimHandle, Ticket};
use serde_json::Value;

fn small() -> SimConfig {
    SimConfig {
        tickets: 640,
        ..SimConfig::default()
    }
}

async fn token_with(sim: &SimHandle, id: &str, secret: &str) -> reqwest::Response {
    client()
        .post(format!("{}/auth/token", sim.base_url))
        .query(&[("tenant", "sim")])
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=all"
        ))
        .send()
        .await
        .expect("send")
}

async fn token(sim: &SimHandle) -> String {
    let cfg = sim.config();
    let resp = token_with(sim, &cfg.halo_client_id, &cfg.halo_client_secret).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_string()
}

async fn tickets(sim: &SimHandle, token: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let resp = client()
        .get(format!("{}/tickets", sim.halo_api_url()))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn reference(sim: &SimHandle, f: impl Fn(&Ticket) -> bool) -> Vec<u64> {
    sim.tickets()
        .iter()
        .filter(|t| f(t))
        .map(|t| t.id)
        .collect()
}

/// Every id of a paged query (ascending `order=id`), and the `record_count` of each page.
async fn all_ids(sim: &SimHandle, token: &str, query: &[(&str, &str)], size: usize) -> Vec<u64> {
    let mut out = Vec::new();
    for page in 1.. {
        let (p, s) = (page.to_string(), size.to_string());
        let mut q = query.to_vec();
        q.extend([
            ("pageinate", "true"),
            ("page_size", s.as_str()),
            ("page_no", p.as_str()),
            ("order", "id"),
        ]);
        let (status, body) = tickets(sim, token, &q).await;
        assert_eq!(status, 200, "{body}");
        let page_ids = ids(&body["tickets"]);
        let total = body["record_count"].as_u64().expect("record_count") as usize;
        out.extend(&page_ids);
        if page_ids.len() < size {
            assert_eq!(total, out.len(), "record_count is the total");
            return out;
        }
    }
    unreachable!()
}

#[tokio::test]
async fn authinfo_and_tokens() {
    let sim = sim_with(small()).await;
    let info: Value = client()
        .get(format!("{}/authinfo", sim.halo_api_url()))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(info["auth_url"], format!("{}/auth", sim.base_url));
    assert_eq!(info["tenant_id"], "sim");

    let cfg = sim.config().clone();
    let resp = token_with(&sim, &cfg.halo_client_id, &cfg.halo_client_secret).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let tok = body["access_token"].as_str().expect("token").to_string();

    let bad = token_with(&sim, &cfg.halo_client_id, "wrong").await;
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.json::<Value>().await.expect("json")["error"],
        "invalid_client"
    );
    let grant = client()
        .post(format!("{}/auth/token", sim.base_url))
        .body("grant_type=password")
        .send()
        .await
        .expect("send");
    assert_eq!(grant.status(), 400);

    assert_eq!(tickets(&sim, &tok, &[]).await.0, 200);
    assert_eq!(tickets(&sim, "made-up", &[]).await.0, 401);
    let none = client()
        .get(format!("{}/tickets", sim.halo_api_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(none.status(), 401);
    // Expiry follows the virtual clock.
    sim.advance_clock(Duration::from_secs(3599));
    assert_eq!(tickets(&sim, &tok, &[]).await.0, 200);
    sim.advance_clock(Duration::from_secs(2));
    assert_eq!(tickets(&sim, &tok, &[]).await.0, 401);
    let fresh = token(&sim).await;
    assert_eq!(tickets(&sim, &fresh, &[]).await.0, 200);
}

#[tokio::test]
async fn paging_and_order() {
    let sim = sim_with(small()).await;
    let tok = token(&sim).await;
    let all = reference(&sim, |_| true);
    assert_eq!(all_ids(&sim, &tok, &[], 100).await, all);
    assert_eq!(all_ids(&sim, &tok, &[], 64).await, all, "exact multiple");

    // Past the end: an empty page with the total.
    let (status, body) = tickets(
        &sim,
        &tok,
        &[
            ("pageinate", "true"),
            ("page_size", "100"),
            ("page_no", "99"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["tickets"], Value::Array(vec![]));
    assert_eq!(body["record_count"], all.len());
    assert_eq!(body["page_no"], 99);

    // Default page size; descending order; unpaged returns everything.
    let (_, body) = tickets(&sim, &tok, &[("pageinate", "true")]).await;
    assert_eq!(ids(&body["tickets"]), all[..50]);
    let (_, body) = tickets(
        &sim,
        &tok,
        &[
            ("pageinate", "true"),
            ("page_size", "3"),
            ("order", "id"),
            ("orderdesc", "true"),
        ],
    )
    .await;
    let mut last3: Vec<u64> = all[all.len() - 3..].to_vec();
    last3.reverse();
    assert_eq!(ids(&body["tickets"]), last3);
    let (_, body) = tickets(&sim, &tok, &[]).await;
    assert_eq!(ids(&body["tickets"]), all);

    // Rows carry the Halo field names.
    let first = &body["tickets"][0];
    assert_eq!(first, &psa_sim::halo_json(&sim.tickets()[0]));
    for f in [
        "summary",
        "status_id",
        "priority_id",
        "client_id",
        "client_name",
        "team",
        "dateoccurred",
        "lastactiondate",
        "hasbeenclosed",
    ] {
        assert!(first.get(f).is_some(), "{f}");
    }

    // Malformed paging parameters are refused.
    let (status, _) = tickets(&sim, &tok, &[("pageinate", "true"), ("page_no", "0")]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn allowlisted_parameters() {
    let sim = sim_with(small()).await;
    let tok = token(&sim).await;
    let t = sim.tickets();
    let company = t[0].company.id.to_string();
    let agent = t
        .iter()
        .find_map(|t| t.owner.as_ref())
        .expect("an owner")
        .id
        .to_string();
    let start = t[100].date_entered;
    let end = t[300].date_entered;
    let (start_s, end_s) = (start.to_string(), end.to_string());

    type Query<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Query, Vec<u64>)> = vec![
        (
            vec![("closed_only", "true")],
            reference(&sim, |t| t.closed_flag()),
        ),
        (
            vec![("open_only", "true")],
            reference(&sim, |t| !t.closed_flag()),
        ),
        (
            vec![("client_id", company.as_str())],
            reference(&sim, |t| t.company.id.to_string() == company),
        ),
        (
            vec![("status_id", "13")],
            reference(&sim, |t| t.status.id == 13),
        ),
        (
            vec![("agent_id", agent.as_str())],
            reference(&sim, |t| {
                t.owner.as_ref().is_some_and(|o| o.id.to_string() == agent)
            }),
        ),
        (
            vec![
                ("datesearch", "dateoccurred"),
                ("startdate", start_s.as_str()),
                ("enddate", end_s.as_str()),
            ],
            reference(&sim, |t| t.date_entered >= start && t.date_entered <= end),
        ),
        (
            vec![
                ("datesearch", "dateoccurred"),
                ("startdate", start_s.as_str()),
            ],
            reference(&sim, |t| t.date_entered >= start),
        ),
        (
            vec![("open_only", "true"), ("client_id", company.as_str())],
            reference(&sim, |t| {
                !t.closed_flag() && t.company.id.to_string() == company
            }),
        ),
        // Unknown parameters (and startdate without datesearch) are silently ignored.
        (
            vec![
                ("tickettype_id", "99"),
                ("status[]", "1"),
                ("startdate", start_s.as_str()),
            ],
            reference(&sim, |_| true),
        ),
    ];
    for (query, expected) in cases {
        assert!(!expected.is_empty(), "{query:?} selects something");
        assert_eq!(
            all_ids(&sim, &tok, &query, 100).await,
            expected,
            "{query:?}"
        );
    }
    let (status, _) = tickets(&sim, &tok, &[("client_id", "acme")]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sliding_window_answers_429() {
    let sim = sim_with(small()).await;
    let tok = token(&sim).await;
    let mut limits = sim.limits();
    assert_eq!(
        limits.halo_rate_limit,
        Some(RateLimit {
            requests: 300,
            per_ms: 300_000
        })
    );
    limits.halo_rate_limit = Some(RateLimit {
        requests: 3,
        per_ms: 60_000,
    });
    sim.set_limits(limits);
    for _ in 0..3 {
        assert_eq!(tickets(&sim, &tok, &[]).await.0, 200);
    }
    let resp = client()
        .get(format!("{}/tickets", sim.halo_api_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((59..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.expect("json");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("Rate Limit")));
    assert_eq!(sim.stats().halo_throttled, 1);
    // Token requests count against the same window.
    let cfg = sim.config().clone();
    assert_eq!(
        token_with(&sim, &cfg.halo_client_id, &cfg.halo_client_secret)
            .await
            .status(),
        429
    );
    // The window slides on the virtual clock.
    sim.advance_clock(Duration::from_secs(60));
    assert_eq!(tickets(&sim, &tok, &[]).await.0, 200);
}

#[tokio::test]
async fn faults_and_the_request_log_apply() {
    let sim = sim_with(small()).await;
    let tok = token(&sim).await;
    sim.clear_requests();
    sim.inject(Fault::status(503).path_prefix("/api/tickets"));
    sim.inject(
        Fault::status(429)
            .retry_after("7")
            .path_prefix("/api/tickets"),
    );
    let (status, body) = tickets(&sim, &tok, &[("open_only", "true")]).await;
    assert_eq!(status, 503);
    assert!(body["message"].is_string());
    let resp = client()
        .get(format!("{}/tickets", sim.halo_api_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(tickets(&sim, &tok, &[]).await.0, 200);

    let log = sim.requests().await;
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].path, "/api/tickets");
    assert_eq!(log[0].query_param("open_only").as_deref(), Some("true"));
    assert_eq!(log[0].status, Some(503));
    assert!(log[0].fault.is_some());
    assert_eq!(log[2].status, Some(200));
    assert_eq!(
        log[2].header("authorization"),
        Some(format!("Bearer {tok}").as_str())
    );
    assert_eq!(sim.stats().halo_requests, 4, "token request included");
}
