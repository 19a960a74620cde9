//! The support matrix: what `GET /public-api/entity-types` serves, what `docs/entity-types.md`
//! says (the same table), and what create and verify accept because of it.

use serde_json::{json, Value};

use crate::helpers::TestApp;

/// The matrix as the docs' table: a row per entity type, a cell per PSA.
fn markdown(types: &[Value]) -> String {
    let mut out =
        String::from("| entity type | ConnectWise | Autotask | HaloPSA |\n|---|---|---|---|\n");
    for t in types {
        let cells: Vec<String> = t["psas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let mut cell = match c["endpoint"].as_str() {
                    Some(e) => format!("`{e}` {}", c["level"].as_str().unwrap()),
                    None => c["level"].as_str().unwrap().to_owned(),
                };
                if let Some(n) = c["note"].as_str() {
                    cell.push_str(&format!(" ({n})"));
                }
                cell.replace('|', "\\|")
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | {} |\n",
            t["entity_type"].as_str().unwrap(),
            cells.join(" | ")
        ));
    }
    out
}

#[tokio::test]
async fn the_served_matrix_is_the_documented_one() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let r = app.get(&key, "/public-api/entity-types").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let types = r.body["data"].as_array().unwrap();
    assert_eq!(types.len(), 22);
    assert_eq!(
        r.body["meta"]["pagination"]["has_more"], false,
        "a list like every list: one page"
    );
    let ticket = &types[0];
    assert_eq!(ticket["entity_type"], "ticket");
    assert!(ticket["psas"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["level"] == "filters"));
    let none = types.iter().find(|t| t["entity_type"] == "none").unwrap();
    assert_eq!(none["backfillable"], false);

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/entity-types.md")).unwrap();
    let table = markdown(types);
    assert!(
        doc.contains(&table),
        "docs/entity-types.md must hold the served matrix as this table:\n{table}"
    );
}

#[tokio::test]
async fn filters_on_a_type_the_psa_lacks_are_refused_and_explicit_ids_work() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let _sim = app.connectwise_sim(&key, 5).await;
    let tasks = app
        .workflow_with(
            &key,
            json!({"name": "Tidy tasks", "entity_type": "task",
                   "executor": {"type": "simulated"}}),
        )
        .await;
    let filter = json!({"conditions": {"combinator": "and", "rules": [
        {"field": "$id", "operator": ">", "value": 0}]}});
    for (path, body) in [
        (
            "/public-api/backfills/verify",
            json!({"entity_type": "task", "filter_spec": filter}),
        ),
        (
            "/public-api/backfills",
            json!({"target_workflow_id": tasks, "entity_type": "task", "filter_spec": filter}),
        ),
    ] {
        let r = app.post(&key, path, body).await;
        r.assert_error(422, "entity_type_not_supported");
        assert_eq!(r.field(), "entity_type");
        let m = r.body["error"]["message"].as_str().unwrap();
        assert!(
            m.starts_with(
                "connectwise cannot list task entities for a filter (tasks are listed per project ticket): filters on it work on autotask"
            ) && m.contains("give entity_ids"),
            "{m}"
        );
    }
    // A type ConnectWise has no such entity for says so.
    let r = app
        .post(
            &key,
            "/public-api/backfills/verify",
            json!({"entity_type": "servicecall", "filter_spec": filter}),
        )
        .await;
    r.assert_error(422, "entity_type_not_supported");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("connectwise has no servicecall entity"),
        "{:?}",
        r.body
    );
    // Explicit ids work for every type but none.
    let r = app
        .post(
            &key,
            "/public-api/backfills",
            json!({"target_workflow_id": tasks, "entity_type": "task", "filter_spec": {"entity_ids": ["19", "20"]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = app
        .post(
            &key,
            "/public-api/backfills/verify",
            json!({"entity_type": "none", "filter_spec": {"entity_ids": ["1"]}}),
        )
        .await;
    r.assert_error(422, "entity_type_not_supported");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("none is not backfillable"));
}
