//! Every entity type the support matrix marks `filters`, end to end: a real `serve` (SQLite)
//! with one tenant per PSA, each connected to psa-sim, a real webhook receiver. For every
//! (entity type, PSA) pair a workflow on that type gets a filter backfill; the preflight's
//! count and the backfill's items must equal the reference evaluation of the filter over the
//! simulator's rows of that resource, every item must run once, and an unsupported pair must
//! answer 422 `entity_type_not_supported` while explicit ids keep working there.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{create_key_for, serve, Api};
use neo_domain::backfill::EntityType;
use neo_domain::filter::{self, FilterSpec};
use neo_psa::compile::{self, Catalogue};
use neo_psa::support::{self, Level};
use neo_psa::Psa;
use serde_json::{json, Value};

/// A filter that selects a real part of `rows`: the id is in the lower quarter, or the first
/// text field equals a later row's value, and (where the entity has one) the record has a
/// company.
fn conditions(cat: &Catalogue, rows: &[Value]) -> Value {
    let title = cat.fields().find(|(f, _)| {
        rows.iter()
            .any(|r| neo_psa::compile::eval::field(r, cat.psa(), f).is_some_and(Value::is_string))
            && *f != "id"
    });
    let mut ids: Vec<i64> = rows.iter().filter_map(|r| r["id"].as_i64()).collect();
    ids.sort_unstable();
    let quarter = ids[ids.len() / 4];
    let mut any = vec![json!({"field": "$id", "operator": "<", "value": quarter})];
    if let Some((f, _)) = title {
        let late = &rows[rows.len() * 3 / 4];
        if let Some(v) = neo_psa::compile::eval::field(late, cat.psa(), f) {
            any.push(json!({"field": f, "operator": "=", "value": v}));
        }
    }
    let mut all = vec![json!({"combinator": "or", "rules": any})];
    if cat.aliases().any(|a| a == "$company") {
        all.push(json!({"field": "$company", "operator": "notNull"}));
    }
    json!({"combinator": "and", "rules": all})
}

/// The ids of `rows` matching `conditions`, per the reference evaluator.
fn reference(cat: &'static Catalogue, rows: &[Value], conditions: &Value, psa: Psa) -> Vec<String> {
    let spec = json!({ "conditions": conditions });
    let Ok((FilterSpec::Query { root, .. }, _)) =
        filter::parse(&spec, jiff::Timestamp::now(), Some(cat))
    else {
        panic!(
            "{conditions} is valid for {} {}",
            psa.as_str(),
            cat.entity()
        );
    };
    let ctx = compile::EvalContext::default();
    let mut ids: Vec<String> = rows
        .iter()
        .filter(|r| compile::matches(&root, r, cat, &ctx))
        .map(|r| r["id"].as_i64().expect("a numeric id").to_string())
        .collect();
    ids.sort();
    ids
}

/// Every item's entity id of backfill `id`, sorted.
async fn item_ids(api: &Api, base: &str, id: &str) -> Vec<String> {
    let mut out: Vec<String> = api
        .items(base, id)
        .await
        .iter()
        .map(|i| i["entity_id"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filterable_pair_backfills_exactly_the_reference() {
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets: 400,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let server = serve(&db, &[]);
    let base = server.base.clone();
    let (log, hook) = common::receiver(0).await;
    // Explicit-id backfills of the pairs without filters deliver elsewhere, out of the count.
    let (_, other_hook) = common::receiver(0).await;
    let mut created = Vec::new();
    for psa in Psa::ALL {
        let api = Api {
            http: reqwest::Client::new(),
            key: create_key_for(&db, &format!("msp-{}", psa.as_str())),
        };
        common::connect_psa(&api, &base, &sim, psa.as_str(), common::unpaced()).await;
        for entity in EntityType::ALL {
            let pair = support::pair(psa, *entity);
            let url = if pair.level == Level::Filters {
                &hook
            } else {
                &other_hook
            };
            let wf = api
                .post(&base, "/agents", json!({"name": format!("{} {entity}", psa.as_str()),
                    "entity_type": entity.as_str(),
                    "executor": {"type": "webhook", "url": url, "secret": "whsec_0123456789abcdef"}}))
                .await["data"]["id"]
                .as_i64()
                .unwrap();
            if pair.level != Level::Filters {
                check_unsupported(&api, &base, psa, *entity, wf).await;
                continue;
            }
            let cat = compile::table(psa, *entity).unwrap();
            let rows = sim
                .resource_rows(psa.as_str(), pair.endpoint.unwrap())
                .expect("psa-sim serves every filters pair");
            let conditions = conditions(cat, &rows);
            let want = reference(cat, &rows, &conditions, psa);
            let here = format!("{} {entity} {conditions}", psa.as_str());
            assert!(
                !want.is_empty() && want.len() < rows.len(),
                "{here}: a selective filter ({} of {})",
                want.len(),
                rows.len()
            );
            let spec = json!({ "conditions": conditions });
            let v = api
                .post(
                    &base,
                    "/backfills/verify",
                    json!({"entity_type": entity.as_str(), "filter_spec": spec}),
                )
                .await;
            assert_eq!(
                v["data"]["matching_entities"].as_u64(),
                Some(want.len() as u64),
                "{here}: verify {v}"
            );
            let b = api
                .post(&base, "/backfills", json!({"target_workflow_id": wf, "entity_type": entity.as_str(), "filter_spec": spec, "max_in_flight": 20}))
                .await;
            let id = b["data"]["backfill"]["id"].as_str().unwrap().to_owned();
            created.push((api.key.clone(), id, want, here));
        }
    }
    assert_eq!(created.len(), 47, "the filterable pairs");
    let mut executed = 0;
    for (key, id, want, here) in &created {
        let api = Api {
            http: reqwest::Client::new(),
            key: key.clone(),
        };
        let done = api
            .wait_backfill(&base, id, Duration::from_secs(120), |b| {
                b["state"] == "COMPLETED" || b["state"] == "FAILED"
            })
            .await;
        assert_eq!(done["state"], "COMPLETED", "{here}: {done}");
        assert_eq!(
            done["succeeded_count"].as_u64(),
            Some(want.len() as u64),
            "{here}"
        );
        let got = item_ids(&api, &base, id).await;
        assert_eq!(
            got.len(),
            got.iter().collect::<HashSet<_>>().len(),
            "{here}: an entity twice"
        );
        assert_eq!(&got, want, "{here}: the items vs the reference");
        executed += want.len();
    }
    // Every item ran once, through the real receiver.
    let delivered = log.total.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(delivered, executed, "webhook deliveries");
}

/// A filter on a pair without filters is 422 `entity_type_not_supported`, naming where filters
/// on the type work; an explicit id list runs on every type but `none`.
async fn check_unsupported(api: &Api, base: &str, psa: Psa, entity: EntityType, wf: i64) {
    let spec = json!({"conditions": {"combinator": "and", "rules": [
        {"field": "$id", "operator": ">", "value": 0}]}});
    let r = api
        .http
        .post(format!("{base}/backfills"))
        .bearer_auth(&api.key)
        .json(
            &json!({"target_workflow_id": wf, "entity_type": entity.as_str(), "filter_spec": spec}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "{} {entity}", psa.as_str());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "entity_type_not_supported", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    for other in support::filterable_on(entity) {
        assert!(
            message.contains(other.as_str()),
            "{message} names {other:?}"
        );
    }
    let ids = json!({"target_workflow_id": wf, "entity_type": entity.as_str(),
        "filter_spec": {"entity_ids": ["101", "102"]}});
    let r = api
        .http
        .post(format!("{base}/backfills"))
        .bearer_auth(&api.key)
        .json(&ids)
        .send()
        .await
        .unwrap();
    let want = if entity == EntityType::None { 422 } else { 201 };
    assert_eq!(r.status(), want, "{} {entity}: explicit ids", psa.as_str());
}
