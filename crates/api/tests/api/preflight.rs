//! The preflight (`POST /public-api/backfills/verify`) and the counts create takes from it: a
//! filter's `limit`, explicit ids checked against the connected PSA, exact counts where the
//! PSA's count is only a bound.

use serde_json::json;

use crate::helpers::*;

/// A rule group's `limit` caps the snapshot, so it caps what create counts and charges and what
/// the preflight reports (it said 545 entities / 1,090 credits for `"limit": 120`).
#[tokio::test]
async fn a_limit_caps_the_estimate_of_create_and_the_preflights_count() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let sim = app.connectwise_sim(&key, 300).await;
    let all = sim.tickets().len();
    assert!(all > 120, "{all} tickets");
    let filter = |limit: Option<u64>| {
        let mut f = json!({"conditions": {"combinator": "and", "rules": [
            {"field": "$id", "operator": ">", "value": 0}]}});
        if let Some(l) = limit {
            f["limit"] = json!(l);
        }
        f
    };

    let v = app
        .post(
            &key,
            "/public-api/backfills/verify",
            json!({"entity_type": "ticket", "filter_spec": filter(Some(120))}),
        )
        .await;
    assert_eq!(v.status, 200, "{:?}", v.body);
    assert_eq!(v.body["data"]["matching_entities"], 120);
    let message = v.body["data"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{all} entities match")) && message.contains("first 120"),
        "{message}"
    );
    let open = app
        .post(
            &key,
            "/public-api/backfills/verify",
            json!({"entity_type": "ticket", "filter_spec": filter(None)}),
        )
        .await;
    assert_eq!(open.body["data"]["matching_entities"], all);

    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": wf, "filter_spec": filter(Some(120))}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let tier = r.body["data"]["cost_estimate"]["credits_per_entity"]
        .as_i64()
        .unwrap();
    assert_eq!(r.body["data"]["backfill"]["total_estimated"], 120);
    assert_eq!(r.body["data"]["cost_estimate"]["total_entities"], 120);
    assert_eq!(
        r.body["data"]["cost_estimate"]["total_credits_estimated"],
        120 * tier
    );
}

/// The preflight of an explicit id list asks the connected PSA which ids exist: it said "OK 2
/// entities match" for ids no PSA has.
#[tokio::test]
async fn verify_checks_explicit_ids_against_the_connected_psa() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let verify = |ids: serde_json::Value| {
        verify_ok(
            &app,
            &key,
            json!({"entity_type": "ticket", "filter_spec": {"entity_ids": ids}}),
        )
    };
    // No PSA: counted, not checked, and said so.
    let v = verify(json!(["999999999", "not-a-ticket"])).await;
    assert_eq!(v["data"]["level"], "OK");
    assert_eq!(v["data"]["matching_entities"], 2);
    let m = v["data"]["message"].as_str().unwrap();
    assert!(
        m.contains("2 entities match")
            && m.contains("not checked")
            && m.contains("no PSA integration"),
        "{m}"
    );

    let sim = app.connectwise_sim(&key, 50).await;
    // Ticket ids have gaps: two that exist.
    let (a, b) = (
        sim.tickets()[0].id.to_string(),
        sim.tickets()[49].id.to_string(),
    );
    // None exists: ERROR, naming them.
    let v = verify(json!(["999999999", "not-a-ticket"])).await;
    assert_eq!(v["data"]["level"], "ERROR", "{v}");
    assert_eq!(v["data"]["success"], false);
    assert_eq!(v["data"]["field"], "filter_spec.entity_ids");
    assert_eq!(
        v["data"]["message"],
        "2 of 2 entity ids were not found in the PSA: 999999999, not-a-ticket"
    );
    // Some exist: WARNING with the count not found; matching_entities counts those found.
    let v = verify(json!([a, "999999999", b])).await;
    assert_eq!(v["data"]["level"], "WARNING", "{v}");
    assert_eq!(v["data"]["success"], true);
    assert_eq!(v["data"]["matching_entities"], 2);
    let m = v["data"]["message"].as_str().unwrap();
    assert!(
        m.contains("2 entities match; 1 of 3 entity ids was not found in the PSA: 999999999"),
        "{m}"
    );
    assert_eq!(v["meta"]["warnings"][0], m);
    // At most ten are named.
    let many: Vec<String> = (1000..1012).map(|i| i.to_string()).collect();
    let v = verify(json!(many)).await;
    let m = v["data"]["message"].as_str().unwrap();
    assert!(
        m.ends_with("1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009 and 2 more"),
        "{m}"
    );
    // All exist: OK.
    let v = verify(json!([a, b])).await;
    assert_eq!(v["data"]["level"], "OK", "{v}");
    assert_eq!(v["data"]["matching_entities"], 2);
    assert!(v["data"]["message"]
        .as_str()
        .unwrap()
        .contains("every id is in the PSA"));
}

/// A filter the PSA answers only in part (`endsWith` goes out as `contains`, a superset, and
/// stays residual): a small bound is read and counted exactly, a large one is reported as a
/// bound with a warning.
#[tokio::test]
async fn verify_counts_exactly_what_it_can_read_and_says_when_it_cannot() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let sim = app.connectwise_sim(&key, 1_500).await;
    let verify = |rules: serde_json::Value| {
        verify_ok(
            &app,
            &key,
            json!({"entity_type": "ticket", "filter_spec": {"conditions": {"combinator": "and", "rules": rules}}}),
        )
    };
    let tickets = sim.tickets();
    let ends = |t: &psa_sim::Ticket| t.summary.to_lowercase().ends_with('e');
    let contains = |t: &psa_sim::Ticket| t.summary.to_lowercase().contains('e');
    let bound = tickets.iter().filter(|t| contains(t)).count();
    assert!(
        bound > 1_000,
        "the whole filter's bound is past what a count reads: {bound}"
    );
    let v = verify(json!([{"field": "summary", "operator": "endsWith", "value": "e"}])).await;
    assert_eq!(v["data"]["level"], "WARNING", "{v}");
    assert_eq!(v["data"]["matching_entities"], bound as i64, "{v}");
    assert!(
        v["data"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("at most {bound} entities match")),
        "{v}"
    );
    // The first 400 tickets: a bound under 1,000, read and counted.
    let cut = tickets[400].id;
    let exact = tickets[..400].iter().filter(|t| ends(t)).count();
    assert!(exact > 0 && exact < tickets[..400].iter().filter(|t| contains(t)).count());
    let v = verify(json!([
        {"field": "$id", "operator": "<", "value": cut},
        {"field": "summary", "operator": "endsWith", "value": "e"}]))
    .await;
    assert_eq!(v["data"]["level"], "OK", "{v}");
    assert_eq!(v["data"]["matching_entities"], exact as i64, "{v}");
}

/// The answer of a preflight that must succeed (HTTP 200).
async fn verify_ok(app: &TestApp, key: &str, body: serde_json::Value) -> serde_json::Value {
    let r = app.post(key, "/public-api/backfills/verify", body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}
