//! Operator control (issue 21) through the API: the trial and credit cap settings (checked at
//! create and PATCH, shown on every read), the pause reasons, and the ETA with its basis.

use crate::helpers::*;
use jiff::{SignedDuration, Timestamp};
use neo_store::{Outcome, Settlement};
use serde_json::json;

#[tokio::test]
async fn trial_and_credit_cap_are_checked_shown_and_edited() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let create = |extra: serde_json::Value| {
        let mut b = json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1", "2"]}});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (bad, field) in [
        (json!({"max_credits": 0}), "max_credits"),
        (json!({"max_credits": -5}), "max_credits"),
        (json!({"trial": {"sample_size": 0}}), "trial.sample_size"),
        (json!({"trial": {"sample_size": 3}}), "trial.sample_size"),
    ] {
        let r = app
            .post(&key, "/public-api/backfills", create(bad.clone()))
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
        assert_eq!(r.field(), field, "{bad}: {}", r.body);
    }
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            create(json!({"trial": {"sample_size": 1, "extra": true}})),
        )
        .await;
    assert!(r.status == 400 || r.status == 422, "{}", r.body);

    let r = app
        .post(
            &key,
            "/public-api/backfills",
            create(json!({"max_credits": 500, "trial": {"sample_size": 1}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let b = &r.body["data"]["backfill"];
    assert_eq!(b["max_credits"], 500);
    assert_eq!(b["credits_spent"], 0);
    assert_eq!(b["trial"], json!({"sample_size": 1, "result": null}));
    assert_eq!(b["pause_reason"], serde_json::Value::Null);
    assert_eq!(b["eta"], serde_json::Value::Null);
    assert_eq!(b["eta_basis"], "measuring");
    let id = b["id"].as_str().unwrap().to_owned();
    let path = format!("/public-api/backfills/{id}");

    let r = app.patch(&key, &path, json!({"max_credits": 0})).await;
    assert_eq!((r.status, r.field()), (422, "max_credits"), "{}", r.body);
    let r = app.patch(&key, &path, json!({"max_credits": 2000})).await;
    assert_eq!(r.body["data"]["max_credits"], 2000, "{}", r.body);
    let r = app.patch(&key, &path, json!({"max_credits": null})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["data"]["max_credits"],
        serde_json::Value::Null,
        "null removes the cap"
    );
    let tenant = app.store.tenant_by_name("acme").await.unwrap().unwrap().id;
    let history = app.store.backfill_history(&tenant, &id, 10).await.unwrap();
    let caps: Vec<_> = history
        .iter()
        .filter(|e| e.what == "max_credits")
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    assert_eq!(
        caps,
        [
            (Some("2000".into()), Some("none".into())),
            (Some("500".into()), Some("2000".into())),
        ],
        "each change of the cap is audited, newest first"
    );
    let r = app.post(&key, &format!("{path}/pause"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let g = app.get(&key, &path).await;
    assert_eq!(g.body["data"]["pause_reason"], "operator");
    assert_eq!(g.body["data"]["eta_basis"], "not_running");
    app.post(&key, &format!("{path}/resume"), json!({})).await;
    let g = app.get(&key, &path).await;
    assert_eq!(g.body["data"]["pause_reason"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_eta_walks_the_measured_throughput_through_the_windows() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let ids: Vec<String> = (0..3_000).map(|i| i.to_string()).collect();
    // Saturdays 16:00–16:10 in New York (21:00–21:10Z in November): the clock is Saturday
    // 21:07:35Z, 2 min 25 s before the window closes.
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}, "max_in_flight": 100,
                   "timezone": "America/New_York",
                   "daily_execution_windows": {"saturday": [{"run_start_time": "16:00", "run_end_time": "16:10"}]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/public-api/backfills/{id}");
    assert_eq!(
        app.get(&key, &path).await.body["data"]["eta_basis"],
        "measuring"
    );

    // Ten items settled every second for the last minute.
    let now = app.now();
    for k in 0..=60 {
        let t = now - SignedDuration::from_secs(60 - k);
        let c = app
            .store
            .claim_items(&id, "w1", 10, t, t + SignedDuration::from_secs(30))
            .await
            .unwrap();
        let outcomes: Vec<Outcome> = c
            .claimed
            .iter()
            .map(|c| Outcome {
                backfill_id: id.clone(),
                ord: c.ord,
                execution_id: c.execution_id.clone(),
                settlement: Settlement::Succeeded,
                attempt: Default::default(),
            })
            .collect();
        app.store.settle(&outcomes, 50, t).await.unwrap();
    }
    let b = app.get(&key, &path).await.body["data"].clone();
    assert_eq!(b["eta_basis"], "measured", "{}", b["eta_basis"]);
    let per_minute = b["items_per_minute"].as_f64().unwrap();
    assert!((600.0..=620.0).contains(&per_minute), "{per_minute}");
    // 2,390 left at ~10.2/s: ~235 s of open time. 145 s fit in tonight's window; the other
    // ~90 s run in next Saturday's.
    let eta: Timestamp = b["eta"].as_str().unwrap().parse().unwrap();
    let expected: Timestamp = "2026-12-05T21:01:30Z".parse().unwrap();
    let off = eta.duration_since(expected).as_secs().abs();
    assert!(off <= 10, "eta {eta}, expected about {expected}");
    // The list shows the same.
    let list = app.get(&key, "/public-api/backfills").await;
    assert_eq!(list.body["data"][0]["eta"], b["eta"]);
}
