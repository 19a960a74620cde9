//! One PSA request budget shared by every replica (issue 23, acceptance 1): three `serve`
//! replicas on one PostgreSQL database run a `psa_actions` backfill (every entity is a read and
//! a write to the PSA) against psa-sim limited to 600 requests a minute, with the integration's
//! `requests_per_hour` at 36,000 (600 a minute) and `backfill_share` 50%. The simulator's own
//! request log is the judge: at most 300 requests in every sliding minute, no 429 at all, and
//! every item completes. The budget's use is on the integration read and in the metrics.

mod common;

use std::time::Duration;

use common::{create_key_for, metric, serve, Api, SharedDb};
use psa_sim::SimConfig;
use serde_json::json;

const ITEMS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_stay_within_the_backfill_share_of_one_budget() {
    let Some(db) = SharedDb::create() else { return };
    let sim = psa_sim::spawn(SimConfig {
        tickets: ITEMS + 50,
        ..Default::default()
    })
    .await
    .expect("simulator starts");
    sim.set_limits(psa_sim::Limits {
        cw_rate_limit: Some(psa_sim::RateLimit {
            requests: 600,
            per_ms: 60_000,
        }),
        ..sim.limits()
    });
    let replicas: Vec<_> = (0..3).map(|_| serve(&db.url, &[])).collect();
    let base = replicas[0].base.clone();
    let api = Api {
        http: reqwest::Client::new(),
        key: create_key_for(&db.url, "msp-budget"),
    };
    let i = common::connect_psa(
        &api,
        &base,
        &sim,
        "connectwise",
        json!({"requests_per_hour": 36_000, "backfill_share": 50}),
    )
    .await;
    assert_eq!(
        i["data"]["budget"]["backfill_requests_per_hour"], 18_000,
        "{i}"
    );
    // A bad share is refused with the field named.
    let bad = api
        .http
        .put(format!("{base}/integrations/connectwise"))
        .bearer_auth(&api.key)
        .json(&json!({"backfill_share": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let bad: serde_json::Value = bad.json().await.unwrap();
    assert!(bad.to_string().contains("backfill_share"), "{bad}");

    let p = sim.dataset().priorities[0].id;
    let wf = api
        .post(
            &base,
            "/agents",
            json!({"name": "Re-prioritise", "executor": {"type": "psa_actions", "actions": [
                {"type": "update_fields", "fields": {"priority/id": p, "summary": "{{summary}} [paced]"}}
            ]}}),
        )
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    let ids: Vec<String> = sim
        .tickets()
        .iter()
        .take(ITEMS)
        .map(|t| t.id.to_string())
        .collect();
    sim.clear_requests();
    let b = api
        .post(
            &base,
            "/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}, "max_in_flight": 50}),
        )
        .await;
    let id = b["data"]["backfill"]["id"].as_str().unwrap().to_owned();
    let done = api
        .wait_backfill(&base, &id, Duration::from_secs(240), |b| {
            b["state"] == "COMPLETED" || b["state"] == "FAILED"
        })
        .await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(done["succeeded_count"], ITEMS as i64, "{done}");

    // The simulator's log: every request of the run, when it arrived and what it answered.
    let log = sim.requests().await;
    let mut at: Vec<u64> = log.iter().map(|r| r.received_ms).collect();
    at.sort_unstable();
    assert!(at.len() >= 2 * ITEMS, "{} requests", at.len());
    let throttled = log.iter().filter(|r| r.status == Some(429)).count();
    assert_eq!(throttled, 0, "no request was throttled");
    let (mut lo, mut busiest) = (0, 0);
    for hi in 0..at.len() {
        while at[hi] - at[lo] >= 60_000 {
            lo += 1;
        }
        busiest = busiest.max(hi - lo + 1);
    }
    let span_s = (at[at.len() - 1] - at[0]) as f64 / 1000.0;
    eprintln!(
        "{} PSA requests over {span_s:.0} s; busiest sliding minute: {busiest}",
        at.len()
    );
    assert!(busiest <= 300, "{busiest} requests within one minute");
    assert!(span_s > 60.0, "the run outlasts a minute ({span_s} s)");
    // The budget says what backfills used this hour, and the replicas' metrics agree (unless
    // the run crossed the top of an hour, when the hour's count started again).
    let now_ms = jiff::Timestamp::now().as_millisecond() as u64;
    if at[0] / 3_600_000 != now_ms / 3_600_000 {
        return;
    }
    let i = api.get(&base, "/integrations").await;
    let used = i["data"][0]["budget"]["backfill_requests_this_hour"]
        .as_i64()
        .unwrap();
    assert!(
        used >= at.len() as i64,
        "{used} taken for {} sent",
        at.len()
    );
    let mut granted = 0.0;
    for r in &replicas {
        granted += metric(&api, &r.base, "neo_psa_budget_requests_total")
            .await
            .unwrap_or(0.0);
    }
    assert_eq!(
        granted as i64, used,
        "the metrics count what the bucket granted"
    );
}
