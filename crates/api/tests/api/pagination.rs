//! Keyset pagination (docs/api.md §2): every row exactly once, tampered cursors refused.

use std::collections::HashSet;

use neo_domain::backfill::{BackfillRunState, EntityType};
use neo_domain::windows::WorkflowDailyExecutionWindows;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn pages_through_1000_backfills_with_page_size_7() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let tenant = app.store.tenant_by_name("acme").await.unwrap().unwrap();
    let other = app.key("globex").await;
    let other_tenant = app.store.tenant_by_name("globex").await.unwrap().unwrap();
    // Seed through the store (one workflow id per backfill: one active backfill per workflow).
    let mut expected = HashSet::new();
    for i in 0..1000i64 {
        for t in [&tenant.id, &other_tenant.id] {
            let b = app
                .store
                .create_backfill(neo_store::NewBackfill {
                    id: format!("bf_{}", uuid::Uuid::now_v7().simple()),
                    tenant_id: t.clone(),
                    state: BackfillRunState::Running,
                    target_workflow_id: i,
                    entity_type: EntityType::Ticket,
                    filter_spec: json!({"entity_ids": ["1"]}),
                    daily_execution_windows: WorkflowDailyExecutionWindows::default(),
                    timezone: "UTC".into(),
                    max_in_flight: 5,
                    reprocess: false,
                    total_estimated: Some(1),
                    credits_per_entity: 1,
                    created_by: "seed".into(),
                    created_at: app.now(),
                    entity_ids: Some(vec!["1".into()]),
                    name: None,
                    mode: neo_domain::backfill::BackfillMode::Live,
                    start_at: None,
                    max_credits: None,
                    trial_sample_size: None,
                    max_in_flight_per_company: None,
                    company_blackouts: None,
                })
                .await
                .unwrap();
            if *t == tenant.id {
                expected.insert(b.id);
            }
        }
    }
    let _ = other;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let r = app
            .get(&key, &format!("/public-api/backfills?page_size=7{q}"))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        pages += 1;
        let data = r.body["data"].as_array().unwrap();
        let p = &r.body["meta"]["pagination"];
        if p["has_more"].as_bool().unwrap() {
            assert_eq!(data.len(), 7);
        }
        seen.extend(data.iter().map(|b| b["id"].as_str().unwrap().to_owned()));
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(!p["has_more"].as_bool().unwrap());
                break;
            }
        }
    }
    assert_eq!(pages, 143, "ceil(1000 / 7)");
    assert_eq!(seen.len(), 1000, "no duplicates, no gaps");
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique, expected);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
}

#[tokio::test]
async fn tampered_cursor_is_400_invalid_cursor() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    for i in 0..3 {
        let wf = app.workflow(&key, &format!("W{i}")).await;
        app.backfill(&key, wf, &["1"]).await;
    }
    let r = app.get(&key, "/public-api/backfills?page_size=1").await;
    let cursor = r.body["meta"]["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get(
            &key,
            &format!("/public-api/backfills?page_size=1&cursor={cursor}")
        )
        .await
        .status,
        200
    );

    let (payload, sig) = cursor.split_once('.').unwrap();
    // Flip one character of the payload: still base64, no longer signed.
    let mut chars: Vec<char> = payload.chars().collect();
    chars[2] = if chars[2] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    for bad in [
        format!("{tampered}.{sig}"),
        "not-a-cursor".to_owned(),
        format!("{payload}.AAAA"),
        String::new() + "%00",
    ] {
        let r = app
            .get(&key, &format!("/public-api/backfills?cursor={bad}"))
            .await;
        r.assert_error(400, "invalid_cursor");
        assert_eq!(r.field(), "cursor");
    }
}
