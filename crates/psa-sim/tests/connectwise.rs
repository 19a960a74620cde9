//! The ConnectWise personality over real HTTP: conditions, paging, counts, auth, search, throttling.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use jiff::Timestamp;
use psa_sim::{RateLimit, SimHandle, Ticket};
use reqwest::Method;
use serde_json::{json, Value};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

type Pred = Box<dyn Fn(&Ticket) -> bool>;

/// Checks that forward-only listing and `/count` agree with a Rust reference predicate.
async fn assert_matches(
    sim: &SimHandle,
    conditions: &str,
    custom: Option<&str>,
    pred: impl Fn(&Ticket) -> bool,
) {
    let expected: Vec<u64> = sim
        .tickets()
        .iter()
        .filter(|t| pred(t))
        .map(|t| t.id)
        .collect();
    let got = cw_all_ids(sim, conditions, custom).await;
    assert_eq!(
        got, expected,
        "conditions {conditions:?} / custom {custom:?}"
    );
    assert_eq!(
        cw_count(sim, conditions, custom).await,
        expected.len() as u64,
        "count of {conditions:?}"
    );
}

#[tokio::test]
async fn conditions_match_reference_predicates() {
    let sim = sim().await;
    let data = sim.dataset();
    let b0 = data.boards[0].id;
    let b1 = data.boards[1].id;
    let c0 = data.companies[0].id;
    let c1 = data.companies[1].id;
    let (jan, feb, jun25, jun26) = (
        ts("2026-01-01T00:00:00Z"),
        ts("2026-02-01T00:00:00Z"),
        ts("2025-06-01T00:00:00Z"),
        ts("2026-06-01T00:00:00Z"),
    );
    let cases: Vec<(String, Pred)> = vec![
        (
            r#"board/name in ("Help Desk","Alerts") and (priority/id <= 2 or owner/id = null)"#.into(),
            Box::new(|t| {
                ["Help Desk", "Alerts"].contains(&t.board.name.as_str()) && (t.priority.id <= 2 || t.owner.is_none())
            }),
        ),
        (
            "closedFlag = TRUE and dateEntered >= [2026-01-01T00:00:00Z] AND dateEntered < [2026-02-01T00:00:00Z]".into(),
            Box::new(move |t| t.closed_flag() && t.date_entered >= jan && t.date_entered < feb),
        ),
        (
            "lastUpdated > [2026-06-01T00:00:00.000000] and closedDate = null".into(),
            Box::new(move |t| t.last_updated > jun26 && t.closed_date.is_none()),
        ),
        (
            format!("board/id not in ({b0}, {b1})"),
            Box::new(move |t| t.board.id != b0 && t.board.id != b1),
        ),
        (
            r#"summary contains "User's" or summary contains '"Pro"'"#.into(),
            Box::new(|t| t.summary.contains("User's") || t.summary.contains("\"Pro\"")),
        ),
        (
            r#"summary like "printer*" or summary like '%LAPTOP%'"#.into(),
            Box::new(|t| {
                let s = t.summary.to_lowercase();
                s.starts_with("printer") || s.contains("laptop")
            }),
        ),
        (
            "summary not like \"*VPN*\" and priority/name = 'priority 1 - critical'".into(),
            Box::new(|t| !t.summary.contains("VPN") && t.priority.id == 1),
        ),
        (
            // AND binds tighter than OR.
            r#"id = 1 and id = 2 or board/name = "Escalations""#.into(),
            Box::new(|t| t.board.name == "Escalations"),
        ),
        (
            "_info/dateEntered > [2025-06-01T00:00:00Z] and owner/identifier != null and STATUS/ID in (1, 8)".into(),
            Box::new(move |t| t.date_entered > jun25 && t.owner.is_some() && [1, 8].contains(&t.status.id)),
        ),
        (
            format!("(company/id = {c0} or Company/ID = {c1})"),
            Box::new(move |t| t.company.id == c0 || t.company.id == c1),
        ),
        (
            "summary not contains 'low priority' AND (status/name = \"Waiting Customer\" OR (priority/id >= 4 AND closedFlag = false))".into(),
            Box::new(|t| {
                !t.summary.to_lowercase().contains("low priority")
                    && (t.status.name == "Waiting Customer" || (t.priority.id >= 4 && !t.closed_flag()))
            }),
        ),
        ("id > 9000 and id <= 9100".into(), Box::new(|t| t.id > 9000 && t.id <= 9100)),
    ];
    for (conditions, pred) in &cases {
        assert_matches(&sim, conditions, None, pred).await;
    }
    // A non-trivial spread: most cases select something but not everything.
    let n = sim.tickets().len();
    for (conditions, pred) in &cases[..7] {
        let k = sim.tickets().iter().filter(|t| pred(t)).count();
        assert!(k > 0 && k < n, "{conditions} selects {k} of {n}");
    }
}

#[tokio::test]
async fn custom_field_conditions() {
    let sim = sim().await;
    let region = |t: &Ticket| t.region.clone();
    assert_matches(
        &sim,
        "",
        Some(r#"caption="Region" AND value = "West""#),
        |t| region(t).as_deref() == Some("West"),
    )
    .await;
    assert_matches(&sim, "", Some("caption = 'Region' and value = null"), |t| {
        t.region.is_none()
    })
    .await;
    assert_matches(
        &sim,
        "",
        Some(r#"caption="Region" AND value != null"#),
        |t| t.region.is_some(),
    )
    .await;
    assert_matches(
        &sim,
        "",
        Some(r#"caption="Region" AND value in ("North", "south")"#),
        |t| matches!(region(t).as_deref(), Some("North" | "South")),
    )
    .await;
    assert_matches(
        &sim,
        "priority/id = 3",
        Some(r#"caption="Region" AND value contains "st""#),
        |t| t.priority.id == 3 && matches!(region(t).as_deref(), Some("West" | "East")),
    )
    .await;
    // A caption that no ticket has matches nothing.
    assert_eq!(
        cw_count(&sim, "", Some(r#"caption="Tier" AND value = "Gold""#)).await,
        0
    );
}

#[tokio::test]
async fn condition_errors_use_the_documented_shapes() {
    let sim = sim().await;
    let get = |conditions: &'static str| {
        cw(&sim, Method::GET, "/service/tickets")
            .query(&[("conditions", conditions)])
            .send()
    };
    for bad in [
        "summary = abc",
        "summary = \"unterminated",
        "dateEntered > [last tuesday]",
        "id = 1.2.3",
    ] {
        let resp = get(bad).await.expect("send");
        assert_eq!(resp.status(), 400, "{bad}");
        assert!(resp.headers().contains_key("api-current-version"));
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["code"], "InvalidObject", "{bad}");
        assert_eq!(body["message"], psa_sim::CW_BAD_LITERAL_MESSAGE, "{bad}");
    }
    let resp = get("nosuchfield = 1").await.expect("send");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "InvalidObject");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("ApiFindCondition")),
        "{body}"
    );
    assert_eq!(body["errors"][0]["field"], "nosuchfield");
    for bad in ["(id = 1", "id 1", "id = 1 and", "id = 1)"] {
        let resp = get(bad).await.expect("send");
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["code"], "InvalidObject");
    }
    let resp = cw(&sim, Method::GET, "/service/tickets")
        .query(&[("orderBy", "nosuch asc")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn forward_only_paging_sees_every_ticket_once() {
    let sim = sim().await;
    sim.clear_requests();
    let got = cw_all_ids(&sim, "", None).await;
    let expected: Vec<u64> = sim.tickets().iter().map(|t| t.id).collect();
    assert_eq!(expected.len(), 10_000);
    assert_eq!(got.len(), expected.len());
    assert_eq!(
        got.iter().copied().collect::<HashSet<_>>().len(),
        got.len(),
        "no duplicates"
    );
    assert_eq!(got, expected, "ordered by id");
    // Ten full pages, then the terminal empty page.
    let log = sim.requests().await;
    assert_eq!(log.len(), 11);
    assert_eq!(
        log[1].query_param("pageId"),
        Some(expected[999].to_string())
    );
    // Sparse ids: gaps of 1..=5.
    assert!(expected
        .windows(2)
        .all(|w| (1..=5).contains(&(w[1] - w[0]))));
    assert!(expected.windows(2).any(|w| w[1] - w[0] > 1));

    // orderBy cannot be combined with forward-only.
    let resp = cw(&sim, Method::GET, "/service/tickets")
        .header("pagination-type", "forward-only")
        .query(&[("orderBy", "id desc")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn navigable_paging_and_link_headers() {
    let sim = sim().await;
    let conditions = r#"board/name = "Help Desk""#;
    let expected: Vec<u64> = sim
        .tickets()
        .iter()
        .filter(|t| t.board.name == "Help Desk")
        .map(|t| t.id)
        .collect();
    let page_size = 250;
    let last_page = expected.len().div_ceil(page_size);
    assert!(last_page >= 3);

    let resp = cw(&sim, Method::GET, "/service/tickets")
        .query(&[("conditions", conditions), ("pageSize", "250")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["api-current-version"],
        psa_sim::CW_API_VERSION
    );
    let link = resp.headers()["link"].to_str().expect("ascii").to_string();
    assert!(link_rel(&link, "prev").is_none());
    assert!(link_rel(&link, "first")
        .is_some_and(|u| u.starts_with(&sim.cw_api_url()) && u.contains("page=1")));
    let last = link_rel(&link, "last").expect("last");
    assert!(last.contains(&format!("page={last_page}")), "{last}");
    let mut next = link_rel(&link, "next");
    let mut seen = ids(&resp.json::<Value>().await.expect("json"));
    let mut pages = 1;
    while let Some(url) = next {
        let resp = cw_url(&sim, Method::GET, &url).send().await.expect("send");
        let link = resp.headers()["link"].to_str().expect("ascii").to_string();
        pages += 1;
        assert!(link_rel(&link, "prev").is_some());
        assert!(url.contains(&format!("page={pages}")));
        next = link_rel(&link, "next");
        seen.extend(ids(&resp.json::<Value>().await.expect("json")));
    }
    assert_eq!(pages, last_page);
    assert_eq!(seen, expected);

    // Past the end: [] with 200.
    let resp = cw(&sim, Method::GET, "/service/tickets")
        .query(&[
            ("conditions", conditions),
            ("pageSize", "250"),
            ("page", "999"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.expect("json"), json!([]));

    // Default page size 25, cap 1000, orderBy.
    let page: Value = cw(&sim, Method::GET, "/service/tickets")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(page.as_array().map(Vec::len), Some(25));
    let page: Value = cw(&sim, Method::GET, "/service/tickets")
        .query(&[("pageSize", "5000"), ("orderBy", "id desc")])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let desc = ids(&page);
    assert_eq!(desc.len(), 1000);
    let all: Vec<u64> = sim
        .tickets()
        .iter()
        .rev()
        .take(1000)
        .map(|t| t.id)
        .collect();
    assert_eq!(desc, all);
    let page: Value = cw(&sim, Method::GET, "/service/tickets")
        .query(&[("pageSize", "50"), ("orderBy", "priority/id asc, id desc")])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let first_p1: Vec<u64> = sim
        .tickets()
        .iter()
        .rev()
        .filter(|t| t.priority.id == 1)
        .take(50)
        .map(|t| t.id)
        .collect();
    assert_eq!(ids(&page), first_p1);
}

#[tokio::test]
async fn single_ticket_search_fields_and_shape() {
    let sim = sim().await;
    let t = sim.tickets()[123].clone();
    let resp = cw(&sim, Method::GET, &format!("/service/tickets/{}", t.id))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body, SimHandle::cw_json(&t));
    for key in [
        "id",
        "summary",
        "board",
        "status",
        "priority",
        "company",
        "owner",
        "closedFlag",
        "closedDate",
    ] {
        assert!(body.get(key).is_some(), "{key}");
    }
    assert_eq!(body["customFields"][0]["caption"], "Region");
    let entered = body["_info"]["dateEntered"].as_str().expect("dateEntered");
    assert_eq!(entered.len(), "2025-01-01T00:00:00Z".len());
    assert!(entered.ends_with('Z'));

    let resp = cw(&sim, Method::GET, "/service/tickets/1")
        .send()
        .await
        .expect("send");
    let missing = !sim.tickets().iter().any(|t| t.id == 1);
    if missing {
        assert_eq!(resp.status(), 404);
        assert_eq!(
            resp.json::<Value>().await.expect("json")["code"],
            "NotFound"
        );
    }
    let resp = cw(&sim, Method::GET, "/service/tickets/abc")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);

    // fields= projection.
    let page: Value = cw(&sim, Method::GET, "/service/tickets")
        .query(&[
            ("fields", "id,board/name,_info/lastUpdated"),
            ("pageSize", "1"),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let first = &sim.tickets()[0];
    assert_eq!(
        page[0],
        json!({"id": first.id, "board": {"name": first.board.name}, "_info": {"lastUpdated": psa_sim::data::cw_datetime(first.last_updated)}})
    );

    // POST /search with the filter in the body equals the GET form.
    let conditions = "priority/id = 1 and closedFlag = false";
    let via_get = cw(&sim, Method::GET, "/service/tickets")
        .query(&[("conditions", conditions), ("pageSize", "1000")])
        .send()
        .await
        .expect("send")
        .json::<Value>()
        .await
        .expect("json");
    let resp = cw(&sim, Method::POST, "/service/tickets/search")
        .query(&[("pageSize", "1000")])
        .json(
            &json!({"conditions": conditions, "customFieldConditions": null, "orderBy": "id asc"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.expect("json"), via_get);
    let resp = cw(&sim, Method::POST, "/service/tickets/search")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn auth_failures_and_company_info() {
    let sim = sim().await;
    let url = format!("{}/service/tickets", sim.cw_api_url());
    let c = client();

    let resp = c.get(&url).send().await.expect("send");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "Unauthorized");
    assert_eq!(body["errors"], Value::Null);

    let resp = c
        .get(&url)
        .basic_auth("acme+sim-public-key", Some("wrong"))
        .header("clientId", sim.config().cw_client_id.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);

    let resp = c
        .get(&url)
        .header("Authorization", sim.cw_authorization())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401, "clientId is required");

    let resp = c
        .get(&url)
        .header("Authorization", "Bearer nope")
        .header("clientId", sim.config().cw_client_id.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);

    // Company info is unauthenticated; unknown companies answer null.
    let info: Value = c
        .get(format!("{}/login/companyinfo/ACME", sim.base_url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(info["Codebase"], "v4_6_release/");
    assert_eq!(info["CompanyID"], "acme");
    let resp = c
        .get(format!("{}/login/companyinfo/nobody", sim.base_url))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("text"), "null");
}

#[tokio::test]
async fn rate_limit_per_client_id() {
    let sim = sim().await;
    let mut limits = sim.limits();
    limits.cw_rate_limit = Some(RateLimit {
        requests: 3,
        per_ms: 60_000,
    });
    sim.set_limits(limits);
    for _ in 0..3 {
        let resp = cw(&sim, Method::GET, "/service/tickets/count")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
    }
    let resp = cw(&sim, Method::GET, "/service/tickets/count")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&retry), "{retry}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "ConnectWiseAPI");
    assert_eq!(
        body["message"],
        format!("Too many requests. Please try again in {retry} seconds.")
    );
    assert_eq!(sim.stats().cw_throttled, 1);
    // The virtual clock refills the bucket.
    sim.advance_clock(Duration::from_secs(retry));
    let resp = cw(&sim, Method::GET, "/service/tickets/count")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
}
