//! Ticket writes over real HTTP with each PSA's auth: a write changes the row and later reads
//! and filters see it, a stale concurrency token (or a technician's edit since the read) is
//! refused with 409 and changes nothing, notes come and go (not on Autotask), the write log
//! holds before/after, validation errors answer in each PSA's shape, and faults, throttling and
//! reset apply to writes as to reads.

#[path = "../common/mod.rs"]
mod common;

mod at;
mod cw;
mod halo;

use std::time::Duration;

use common::*;
use psa_sim::{Fault, Limits, RateLimit, SimConfig, SimHandle, Ticket, WriteKind};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

pub fn small() -> SimConfig {
    SimConfig {
        tickets: 200,
        ..SimConfig::default()
    }
}

/// The first ticket satisfying `pred`.
pub fn ticket_where(sim: &SimHandle, pred: impl Fn(&Ticket) -> bool) -> Ticket {
    sim.tickets()
        .into_iter()
        .find(|t| pred(t))
        .expect("a ticket matches")
}

pub async fn halo_token(sim: &SimHandle) -> String {
    let cfg = sim.config();
    let resp = client()
        .post(format!("{}/auth/token", sim.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=all",
            cfg.halo_client_id, cfg.halo_client_secret
        ))
        .send()
        .await
        .expect("send");
    let body: Value = resp.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_string()
}

/// A Halo request (`path` under `/api`) with a bearer token.
pub fn halo(sim: &SimHandle, method: Method, path: &str, token: &str) -> RequestBuilder {
    client()
        .request(method, format!("{}{}", sim.halo_api_url(), path))
        .bearer_auth(token)
}

/// Sends and returns `(status, JSON body or null)`.
pub async fn send(req: RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn reset_clears_writes_notes_and_logs_and_the_admin_api_serves_them() {
    let sim = sim_with(small()).await;
    let t = sim.tickets()[3].clone();
    let patch = json!([{"op": "replace", "path": "/summary", "value": "written"}]);
    let path = format!("/service/tickets/{}", t.id);
    assert_eq!(
        send(cw(&sim, Method::PATCH, &path).json(&patch)).await.0,
        200
    );
    let note = json!({"text": "a note", "internalAnalysisFlag": true});
    let (status, _) = send(cw(&sim, Method::POST, &format!("{path}/notes")).json(&note)).await;
    assert_eq!(status, 201);
    let at_body = json!({"id": t.id, "title": "written too"});
    assert_eq!(
        send(at(&sim, Method::PATCH, "/Tickets").json(&at_body))
            .await
            .0,
        200
    );
    sim.technician_edit("halopsa", t.id, "summary", json!("by a person"));

    // The admin API serves the write log and the technician's edits.
    let admin = |m: Method, p: &str| client().request(m, format!("{}/__sim{p}", sim.base_url));
    let (status, log) = send(admin(Method::GET, "/writes")).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::to_value(sim.writes()).expect("json"), log);
    assert_eq!(log.as_array().map(Vec::len), Some(3), "{log}");
    let (_, edits) = send(admin(Method::GET, "/technician")).await;
    assert_eq!(edits[0]["psa"], "halo");
    assert_eq!(edits[0]["after"], "by a person");
    let body = json!({"psa": "autotask", "ticket_id": t.id, "field": "priority", "value": 1});
    let (status, row) = send(admin(Method::POST, "/technician").json(&body)).await;
    assert_eq!((status, &row["priority"]), (200, &json!(1)));
    let body = json!({"psa": "autotask", "ticket_id": 1_000_000, "field": "priority", "value": 1});
    assert_eq!(
        send(admin(Method::POST, "/technician").json(&body)).await.0,
        404
    );
    let body = json!({"psa": "autotask", "ticket_id": t.id, "field": "ticketNumber", "value": "x"});
    assert_eq!(
        send(admin(Method::POST, "/technician").json(&body)).await.0,
        400
    );
    assert_eq!(sim.technician_edits().len(), 2);
    assert!(sim
        .try_technician_edit("nope", t.id, "summary", json!("x"))
        .is_err());
    let (status, _) = send(admin(Method::DELETE, "/writes")).await;
    assert_eq!(status, 204);
    assert!(sim.writes().is_empty());

    // Reset undoes the writes, the notes and the logs.
    assert_eq!(send(admin(Method::POST, "/reset")).await.0, 200);
    assert_eq!(
        sim.ticket_row("connectwise", t.id),
        Some(SimHandle::cw_json(&t))
    );
    assert_eq!(
        sim.ticket_row("autotask", t.id),
        Some(SimHandle::at_json(&t))
    );
    assert_eq!(sim.ticket_row("halo", t.id), Some(SimHandle::halo_json(&t)));
    assert!(sim.notes("connectwise", t.id).is_empty());
    assert!(sim.writes().is_empty() && sim.technician_edits().is_empty());
    sim.technician_edit("connectwise", t.id, "summary", json!("again"));
    sim.reset();
    assert_eq!(
        sim.ticket_row("connectwise", t.id),
        Some(SimHandle::cw_json(&t))
    );
}

#[tokio::test]
async fn faults_and_throttling_apply_to_writes() {
    let sim = sim_with(small()).await;
    let t = sim.tickets()[5].clone();
    let path = format!("/service/tickets/{}", t.id);
    let patch = json!([{"op": "replace", "path": "/summary", "value": "faulted"}]);
    let fault = sim.inject(
        Fault::status(409)
            .method("PATCH")
            .path_prefix("/v4_6_release/apis/3.0/service/tickets"),
    );
    let (status, body) = send(cw(&sim, Method::PATCH, &path).json(&patch)).await;
    assert_eq!((status, &body["code"]), (409, &json!("Conflict")), "{body}");
    assert_eq!(
        sim.ticket_row("connectwise", t.id),
        Some(SimHandle::cw_json(&t))
    );
    // Answered by the fault, before the write logic: in the request log, not the write log.
    let logged = sim.requests().await;
    assert_eq!(logged.last().map(|r| r.fault), Some(Some(fault)));
    assert!(sim.writes().is_empty());

    sim.inject(
        Fault::status(503)
            .method("POST")
            .path_prefix("/api/tickets"),
    );
    let token = halo_token(&sim).await;
    let body = json!([{"id": t.id, "summary": "faulted"}]);
    let (status, _) = send(halo(&sim, Method::POST, "/tickets", &token).json(&body)).await;
    assert_eq!(status, 503);
    assert_eq!(sim.ticket_row("halo", t.id), Some(SimHandle::halo_json(&t)));

    sim.set_limits(Limits {
        cw_rate_limit: Some(RateLimit {
            requests: 1,
            per_ms: 3_600_000,
        }),
        ..Limits::default()
    });
    assert_eq!(
        send(cw(&sim, Method::PATCH, &path).json(&patch)).await.0,
        200
    );
    let resp = cw(&sim, Method::PATCH, &path)
        .json(&patch)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(sim.writes().len(), 1);
    assert_eq!(sim.writes()[0].kind, WriteKind::Update);
}

#[tokio::test]
async fn tokens_move_strictly_forward_in_whole_seconds() {
    let sim = sim_with(small()).await;
    let t = sim.tickets()[0].clone();
    let token = |row: &Value| {
        row["_info"]["lastUpdated"]
            .as_str()
            .expect("token")
            .to_string()
    };
    let mut last = token(&SimHandle::cw_json(&t));
    for i in 0..3 {
        let row = sim.technician_edit("connectwise", t.id, "summary", json!(format!("edit {i}")));
        let now = token(&row);
        assert!(now > last, "{now} after {last}");
        assert!(now.ends_with('Z') && now.len() == 20, "{now}");
        last = now;
    }
    sim.advance_clock(Duration::from_secs(3600));
    let before = psa_sim::data::cw_datetime(sim.now());
    let row = sim.technician_edit("connectwise", t.id, "summary", json!("an hour later"));
    let after = psa_sim::data::cw_datetime(sim.now());
    assert!(
        before <= token(&row) && token(&row) <= after,
        "{before} {row} {after}"
    );
}
