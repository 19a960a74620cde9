//! Every resource besides tickets over real HTTP, on all three PSAs: lists, counts and single
//! records with auth answer exactly `SimHandle::resource_rows`; ConnectWise conditions and
//! Autotask filters on non-ticket resources select the rows the same predicate selects from
//! those rows; HaloPSA's paged and bare list shapes.

mod common;

use std::collections::HashSet;

use common::*;
use psa_sim::{SimConfig, SimHandle};
use reqwest::Method;
use serde_json::{json, Value};

/// Every ConnectWise resource (schedule entries serve scheduled entries and appointments).
const CW: [&str; 13] = [
    "/service/tickets",
    "/project/tickets",
    "/project/projects",
    "/company/companies",
    "/company/contacts",
    "/company/configurations",
    "/time/entries",
    "/sales/opportunities",
    "/finance/agreements",
    "/system/members",
    "/schedule/entries",
    "/time/workRoles",
    "/procurement/products",
];

/// Every Autotask entity (service calls serve scheduled entries and service calls).
const AT: [&str; 17] = [
    "Tickets",
    "Tasks",
    "ServiceCalls",
    "TimeEntries",
    "Projects",
    "Companies",
    "Contacts",
    "Resources",
    "Contracts",
    "Opportunities",
    "ConfigurationItems",
    "TicketNotes",
    "Roles",
    "Appointments",
    "ContractServices",
    "CompanyLocations",
    "Products",
];

/// An id no resource has.
const NO_SUCH_ID: u64 = 999_999_999;

/// Every HaloPSA resource with its list key (`None`: a bare array).
const HALO: [(&str, Option<&str>); 14] = [
    ("/tickets", Some("tickets")),
    ("/projects", Some("tickets")),
    ("/opportunities", Some("tickets")),
    ("/client", Some("clients")),
    ("/users", Some("users")),
    ("/asset", Some("assets")),
    ("/agent", None),
    ("/clientcontract", Some("contracts")),
    ("/timesheetevent", None),
    ("/appointment", None),
    ("/team", None),
    ("/roles", None),
    ("/site", Some("sites")),
    ("/item", Some("items")),
];

async fn small() -> SimHandle {
    let sim = sim_with(SimConfig {
        tickets: 400,
        ..SimConfig::default()
    })
    .await;
    let mut limits = sim.limits();
    limits.cw_rate_limit = None;
    limits.halo_rate_limit = None;
    sim.set_limits(limits);
    sim
}

fn rows(sim: &SimHandle, psa: &str, endpoint: &str) -> Vec<Value> {
    sim.resource_rows(psa, endpoint)
        .unwrap_or_else(|| panic!("{psa} {endpoint} has rows"))
}

fn ids_where(rows: &[Value], f: impl Fn(&Value) -> bool) -> Vec<u64> {
    rows.iter()
        .filter(|r| f(r))
        .map(|r| r["id"].as_u64().expect("id"))
        .collect()
}

async fn get_json(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn halo_token(sim: &SimHandle) -> String {
    let cfg = sim.config();
    let body: Value = client()
        .post(format!("{}/auth/token", sim.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=all",
            cfg.halo_client_id, cfg.halo_client_secret
        ))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    body["access_token"].as_str().expect("token").to_string()
}

fn halo(sim: &SimHandle, token: &str, path: &str) -> reqwest::RequestBuilder {
    client()
        .get(format!("{}{path}", sim.halo_api_url()))
        .bearer_auth(token)
}

/// Every row of an Autotask query, following `nextPageUrl` by POST.
async fn at_all(sim: &SimHandle, entity: &str, query: &Value) -> Vec<Value> {
    let mut resp = at(sim, Method::POST, &format!("/{entity}/query"))
        .json(query)
        .send()
        .await
        .expect("send");
    let mut out = Vec::new();
    loop {
        assert_eq!(resp.status(), 200, "{entity} {query}");
        let body: Value = resp.json().await.expect("json");
        out.extend(body["items"].as_array().expect("items").iter().cloned());
        let Some(next) = body["pageDetails"]["nextPageUrl"].as_str() else {
            return out;
        };
        let prefix = format!("{}/{entity}/query/next?paging=", sim.at_api_url());
        assert!(next.starts_with(&prefix), "{next}");
        resp = at_url(sim, Method::POST, next)
            .json(query)
            .send()
            .await
            .expect("send");
    }
}

async fn at_count(sim: &SimHandle, entity: &str, query: &Value) -> u64 {
    let (status, body) =
        get_json(at(sim, Method::POST, &format!("/{entity}/query/count")).json(query)).await;
    assert_eq!(status, 200, "{entity} {body}");
    body["queryCount"].as_u64().expect("queryCount")
}

#[tokio::test]
async fn every_connectwise_resource_lists_counts_and_gets() {
    let sim = small().await;
    for endpoint in CW {
        let want = rows(&sim, "connectwise", endpoint);
        assert!(want.len() >= 5 && want.len() <= 1000, "{endpoint}");
        let (status, body) =
            get_json(cw(&sim, Method::GET, endpoint).query(&[("pageSize", "1000")])).await;
        assert_eq!(status, 200, "{endpoint}: {body}");
        assert_eq!(body, Value::Array(want.clone()), "{endpoint}");
        let (status, body) = get_json(cw(&sim, Method::GET, &format!("{endpoint}/count"))).await;
        assert_eq!(status, 200, "{endpoint}/count");
        assert_eq!(
            body["count"].as_u64(),
            Some(want.len() as u64),
            "{endpoint}"
        );
        let last = &want[want.len() - 1];
        let one = format!("{endpoint}/{}", last["id"]);
        let (status, body) = get_json(cw(&sim, Method::GET, &one)).await;
        assert_eq!((status, &body), (200, last), "{one}");
        let (status, body) =
            get_json(cw(&sim, Method::GET, &format!("{endpoint}/{NO_SUCH_ID}"))).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("NotFound")));
    }
    let resp = client()
        .get(format!("{}/company/contacts", sim.cw_api_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn every_autotask_entity_queries_counts_and_gets() {
    let sim = small().await;
    let all = json!({"filter": [{"op": "gte", "field": "id", "value": 0}], "MaxRecords": 100});
    for entity in AT {
        let want = rows(&sim, "autotask", entity);
        assert!(want.len() >= 5, "{entity}");
        assert_eq!(at_all(&sim, entity, &all).await, want, "{entity}");
        assert_eq!(at_count(&sim, entity, &all).await, want.len() as u64);
        let first = &want[0];
        let (status, body) =
            get_json(at(&sim, Method::GET, &format!("/{entity}/{}", first["id"]))).await;
        assert_eq!((status, &body["item"]), (200, first), "{entity}");
        let (status, body) =
            get_json(at(&sim, Method::GET, &format!("/{entity}/{NO_SUCH_ID}"))).await;
        assert_eq!((status, &body["item"]), (200, &Value::Null), "{entity}");
    }
    // Entity names ignore case, as Autotask's do.
    let (status, body) = get_json(at(&sim, Method::GET, "/COMPANIES/query").query(&[(
        "search",
        json!({"filter": [{"op": "exist", "field": "id"}]}).to_string(),
    )]))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["items"].as_array().map(Vec::len),
        Some(rows(&sim, "autotask", "companies").len())
    );
    let resp = client()
        .post(format!("{}/Contacts/query", sim.at_api_url()))
        .json(&all)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn every_halo_resource_lists_in_its_shape_and_gets() {
    let sim = small().await;
    let token = halo_token(&sim).await;
    for (endpoint, key) in HALO {
        let want = rows(&sim, "halo", endpoint);
        assert!(want.len() >= 5, "{endpoint}");
        let paged = [
            ("pageinate", "true"),
            ("page_size", "3"),
            ("page_no", "2"),
            ("order", "id"),
        ];
        let (status, body) = get_json(halo(&sim, &token, endpoint).query(&paged)).await;
        assert_eq!(status, 200, "{endpoint}");
        match key {
            // The count the connector reads is `record_count`.
            Some(key) => {
                assert_eq!(body["record_count"].as_u64(), Some(want.len() as u64));
                assert_eq!(body[key], Value::Array(want[3..6].to_vec()), "{endpoint}");
            }
            None => assert_eq!(body, Value::Array(want.clone()), "{endpoint}: every row"),
        }
        let last = &want[want.len() - 1];
        let one = format!("{endpoint}/{}", last["id"]);
        let (status, body) = get_json(halo(&sim, &token, &one)).await;
        assert_eq!((status, &body), (200, last), "{one}");
        let missing = format!("{endpoint}/{NO_SUCH_ID}");
        let (status, _) = get_json(halo(&sim, &token, &missing)).await;
        assert_eq!(status, 404, "{missing}");
    }
    let (status, _) = get_json(halo(&sim, "not-a-token", "/client")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn halo_paged_lists_page_and_bare_lists_ignore_paging() {
    let sim = small().await;
    let token = halo_token(&sim).await;
    let clients = rows(&sim, "halo", "/client");
    let mut seen = Vec::new();
    for page in 1.. {
        let p = page.to_string();
        let q = [
            ("pageinate", "true"),
            ("page_size", "7"),
            ("page_no", p.as_str()),
        ];
        let (_, body) = get_json(halo(&sim, &token, "/client").query(&q)).await;
        assert_eq!(body["record_count"].as_u64(), Some(clients.len() as u64));
        let page_rows = body["clients"].as_array().expect("clients").clone();
        if page_rows.is_empty() {
            break;
        }
        seen.extend(page_rows);
    }
    assert_eq!(seen, clients);
    // Without pageinate a paged resource answers every row, still under its key.
    let (_, body) = get_json(halo(&sim, &token, "/projects")).await;
    assert_eq!(
        body["tickets"],
        Value::Array(rows(&sim, "halo", "/projects"))
    );
    // Ordering applies to every resource; paging never to a bare one.
    let q = [
        ("order", "name"),
        ("orderdesc", "true"),
        ("pageinate", "true"),
        ("page_size", "1"),
    ];
    let (_, body) = get_json(halo(&sim, &token, "/team").query(&q)).await;
    let names: Vec<&str> = body
        .as_array()
        .expect("a bare array")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| std::cmp::Reverse(n.to_lowercase()));
    assert_eq!(
        (names.len(), names),
        (rows(&sim, "halo", "/team").len(), sorted)
    );
}

#[tokio::test]
async fn connectwise_conditions_select_non_ticket_rows() {
    let sim = small().await;
    let contacts = rows(&sim, "connectwise", "/company/contacts");
    let company = contacts[7]["company"]["id"].as_u64().expect("company");
    let cond = format!("company/id = {company} and inactiveFlag = false");
    let want = ids_where(&contacts, |c| {
        c["company"]["id"] == company && c["inactiveFlag"] == false
    });
    assert!(!want.is_empty() && want.len() < contacts.len());
    let (_, body) = get_json(
        cw(&sim, Method::GET, "/company/contacts").query(&[("conditions", cond.as_str())]),
    )
    .await;
    assert_eq!(ids(&body), want);
    let (_, body) = get_json(
        cw(&sim, Method::GET, "/company/contacts/count").query(&[("conditions", cond.as_str())]),
    )
    .await;
    assert_eq!(body["count"].as_u64(), Some(want.len() as u64));

    // `dateEntered` names `_info/dateEntered`; forward-only paging over 600 time entries.
    let entries = rows(&sim, "connectwise", "/time/entries");
    let member = entries[3]["member"]["identifier"]
        .as_str()
        .expect("member")
        .to_string();
    let cond = format!("dateEntered >= [2025-09-01T00:00:00Z] and (member/identifier = \"{member}\" or billableOption = 'NoCharge')");
    let want = ids_where(&entries, |e| {
        e["_info"]["dateEntered"].as_str() >= Some("2025-09-01T00:00:00Z")
            && (e["member"]["identifier"] == member.as_str() || e["billableOption"] == "NoCharge")
    });
    assert!(!want.is_empty() && want.len() < entries.len());
    let mut got = Vec::new();
    let mut req = cw(&sim, Method::GET, "/time/entries")
        .header("pagination-type", "forward-only")
        .query(&[("conditions", cond.as_str()), ("pageSize", "10")]);
    loop {
        let resp = req.send().await.expect("send");
        let link = resp
            .headers()
            .get("link")
            .map(|l| l.to_str().expect("ascii").to_string());
        let page: Value = resp.json().await.expect("json");
        got.extend(ids(&page));
        match link.and_then(|l| link_rel(&l, "next")) {
            Some(next) => {
                req = cw_url(&sim, Method::GET, &next).header("pagination-type", "forward-only")
            }
            None => break,
        }
    }
    assert_eq!(got, want);

    // POST …/search, orderBy and a projection.
    let companies = rows(&sim, "connectwise", "/company/companies");
    let (status, body) = get_json(
        cw(&sim, Method::POST, "/company/companies/search")
            .query(&[("fields", "id,name,status/name"), ("pageSize", "1000")])
            .json(&json!({"conditions": "leadFlag = false and numberOfEmployees > 50", "orderBy": "name desc"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut want: Vec<&Value> = companies
        .iter()
        .filter(|c| {
            c["leadFlag"] == false && c["numberOfEmployees"].as_u64().is_some_and(|n| n > 50)
        })
        .collect();
    want.sort_by_key(|c| std::cmp::Reverse(c["name"].as_str().expect("name").to_lowercase()));
    let want: Vec<Value> = want
        .iter()
        .map(|c| json!({"id": c["id"], "name": c["name"], "status": {"name": c["status"]["name"]}}))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(body, Value::Array(want));

    // A field of another resource is unknown here.
    let (status, body) = get_json(
        cw(&sim, Method::GET, "/company/companies").query(&[("conditions", "summary = 'x'")]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["field"], "summary");
    // References are objects: `contact = null` works as on tickets.
    let configs = rows(&sim, "connectwise", "/company/configurations");
    let (_, body) = get_json(
        cw(&sim, Method::GET, "/company/configurations")
            .query(&[("conditions", "contact = null"), ("pageSize", "1000")]),
    )
    .await;
    assert_eq!(ids(&body), ids_where(&configs, |c| c["contact"].is_null()));
}

#[tokio::test]
async fn autotask_filters_select_non_ticket_rows() {
    let sim = small().await;
    let contacts = rows(&sim, "autotask", "Contacts");
    let company = contacts[4]["companyID"].as_u64().expect("company");
    let query = json!({"filter": [
        {"op": "eq", "field": "COMPANYID", "value": company},
        {"op": "or", "items": [
            {"op": "eq", "field": "isActive", "value": 1},
            {"op": "notExist", "field": "mobilePhone"},
        ]},
    ]});
    let want: Vec<Value> = contacts
        .iter()
        .filter(|c| c["companyID"] == company && (c["isActive"] == 1 || c["mobilePhone"].is_null()))
        .cloned()
        .collect();
    assert!(!want.is_empty() && want.len() < contacts.len());
    assert_eq!(at_all(&sim, "Contacts", &query).await, want);
    assert_eq!(at_count(&sim, "Contacts", &query).await, want.len() as u64);

    // Datetimes, booleans and text on 600 time entries, 50 to a page.
    let entries = rows(&sim, "autotask", "TimeEntries");
    let query = json!({"MaxRecords": 50, "filter": [
        {"op": "gt", "field": "startDateTime", "value": "2025-07-01T00:00:00Z"},
        {"op": "eq", "field": "isNonBillable", "value": false},
        {"op": "contains", "field": "summaryNotes", "value": "REMOTE"},
    ]});
    let got: Vec<u64> = at_all(&sim, "TimeEntries", &query)
        .await
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect();
    let want = ids_where(&entries, |e| {
        e["startDateTime"].as_str() > Some("2025-07-01T00:00:00.000Z")
            && e["isNonBillable"] == false
            && e["summaryNotes"]
                .as_str()
                .is_some_and(|s| s.to_lowercase().contains("remote"))
    });
    assert!(!want.is_empty() && want.len() < entries.len());
    assert_eq!(got, want);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len());

    // Each entity checks its own fields; only tickets have UDFs.
    for (filter, message) in [
        (
            json!({"op": "eq", "field": "ticketNumber", "value": "x"}),
            "Unable to find the field 'ticketNumber' in the Contact entity.",
        ),
        (
            json!({"op": "eq", "field": "Region", "udf": true, "value": "West"}),
            "'Region' is not a user-defined field of the Contact entity.",
        ),
        (
            json!({"op": "gt", "field": "isActive", "value": "soon"}),
            "The value \"soon\" is not valid for the field 'isActive'.",
        ),
    ] {
        let (status, body) =
            get_json(at(&sim, Method::POST, "/Contacts/query").json(&json!({"filter": [filter]})))
                .await;
        assert_eq!(status, 500);
        assert_eq!(body["errors"][0], message);
    }
    // IncludeFields projects on the entity's own fields.
    let (_, body) = get_json(at(&sim, Method::POST, "/Companies/query").json(&json!({
        "filter": [{"op": "beginsWith", "field": "companyName", "value": "a"}],
        "IncludeFields": ["companyName"],
    })))
    .await;
    let companies = rows(&sim, "autotask", "Companies");
    let want: Vec<Value> = companies
        .iter()
        .filter(|c| {
            c["companyName"]
                .as_str()
                .is_some_and(|n| n.to_lowercase().starts_with('a'))
        })
        .map(|c| json!({"id": c["id"], "companyName": c["companyName"]}))
        .collect();
    assert_eq!(body["items"], Value::Array(want));
}
