//! PSA-aware pacing in the store (issue 23), through the trait against both backends: claims
//! round-robin across the items' PSA companies, the per-company cap counting what is in
//! flight, companies a blackout holds, a rerun keeping its items' companies, and the request
//! budget's bucket shared by every store handle.

use std::collections::BTreeSet;
use std::sync::Arc;

use neo_domain::backfill::{BackfillMode, BackfillRunState, EntityType};
use neo_store::testing::{at, backend_tests, outcomes, store_with_workflow, Backend, TestStore};
use neo_store::*;
use serde_json::json;

struct Env {
    t: TestStore,
    tenant: String,
    wf: i64,
}

impl Env {
    fn s(&self) -> &Arc<dyn Store> {
        &self.t.store
    }

    /// A RUNNING backfill over a PSA query whose snapshot is `pages` of (id, company).
    async fn backfill(&self, id: &str, cap: Option<i64>, pages: &[&[(&str, &str)]]) -> String {
        let nb = NewBackfill {
            id: id.into(),
            tenant_id: self.tenant.clone(),
            state: BackfillRunState::Running,
            target_workflow_id: self.wf,
            entity_type: EntityType::Ticket,
            filter_spec: json!({"conditions": {"combinator": "and", "rules": []}}),
            daily_execution_windows: Default::default(),
            timezone: "UTC".into(),
            max_in_flight: 100,
            reprocess: true,
            total_estimated: None,
            credits_per_entity: 1,
            created_by: "key_1".into(),
            created_at: at(0),
            entity_ids: None,
            name: None,
            mode: BackfillMode::Live,
            start_at: None,
            max_credits: None,
            trial_sample_size: None,
            max_in_flight_per_company: cap,
            company_blackouts: None,
        };
        let id = self.s().create_backfill(nb).await.unwrap().id;
        let mut read_from = None;
        for (n, page) in pages.iter().enumerate() {
            let items: Vec<SnapshotEntry> = page
                .iter()
                .map(|(e, c)| SnapshotEntry {
                    company: (!c.is_empty()).then(|| c.to_string()),
                    ..SnapshotEntry::id(*e)
                })
                .collect();
            let checkpoint = json!({"page": n});
            assert!(self
                .s()
                .append_items(
                    &id,
                    &items,
                    read_from.as_ref(),
                    Some(&checkpoint),
                    n + 1 == pages.len(),
                    at(1),
                )
                .await
                .unwrap());
            read_from = Some(checkpoint);
        }
        id
    }

    async fn claim(&self, id: &str, limit: usize, held: &[&str]) -> Vec<Claimed> {
        let held: Vec<(&str, &str)> = held.iter().map(|c| (id, *c)).collect();
        self.s()
            .claim_many(&[(id, limit)], &held, "w1", at(2), at(60))
            .await
            .unwrap()
            .pop()
            .unwrap()
            .claimed
    }

    async fn succeed(&self, claimed: &[Claimed]) {
        let outcomes = outcomes(claimed, |_| Settlement::Succeeded);
        self.s().settle(&outcomes, 1_000, at(3)).await.unwrap();
    }
}

async fn env(b: Backend) -> Option<Env> {
    let (t, tenant, wf) = store_with_workflow(b, "Triage", 1, json!({"type": "simulated"})).await?;
    Some(Env { t, tenant, wf })
}

fn entities(c: &[Claimed]) -> BTreeSet<String> {
    c.iter().map(|c| c.entity_id.clone()).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn claims_go_round_robin_across_companies_over_pages(b: Backend) {
    let Some(e) = env(b).await else { return };
    let page1: Vec<(String, &str)> = (0..6)
        .map(|i| (format!("a{i}"), "A"))
        .chain((0..2).map(|i| (format!("b{i}"), "B")))
        .collect();
    let page2: Vec<(String, &str)> = (6..8)
        .map(|i| (format!("a{i}"), "A"))
        .chain((0..2).map(|i| (format!("c{i}"), "C")))
        .chain([("x0".to_owned(), "")])
        .collect();
    let p1: Vec<(&str, &str)> = page1.iter().map(|(e, c)| (e.as_str(), *c)).collect();
    let p2: Vec<(&str, &str)> = page2.iter().map(|(e, c)| (e.as_str(), *c)).collect();
    let id = e.backfill("bf_rr", None, &[&p1, &p2]).await;
    // Every company's first item (the item of no company too), then every company's second:
    // company A's ranks continue across pages.
    let first = e.claim(&id, 4, &[]).await;
    assert_eq!(entities(&first), set(&["a0", "b0", "c0", "x0"]));
    let next = e.claim(&id, 3, &[]).await;
    assert_eq!(entities(&next), set(&["a1", "b1", "c1"]));
    let rest = e.claim(&id, 100, &[]).await;
    assert_eq!(rest.len(), 6, "a2..a7");
    assert!(rest.iter().all(|c| c.entity_id.starts_with('a')));
}

async fn the_per_company_cap_counts_what_is_in_flight(b: Backend) {
    let Some(e) = env(b).await else { return };
    let page: Vec<(String, &str)> = (0..10)
        .map(|i| (format!("a{i}"), "A"))
        .chain([("b0".to_owned(), "B")])
        .collect();
    let p: Vec<(&str, &str)> = page.iter().map(|(e, c)| (e.as_str(), *c)).collect();
    let id = e.backfill("bf_cap", Some(2), &[&p]).await;
    let first = e.claim(&id, 10, &[]).await;
    assert_eq!(
        entities(&first),
        set(&["a0", "a1", "b0"]),
        "two of A, B's one"
    );
    assert!(
        e.claim(&id, 10, &[]).await.is_empty(),
        "A is at its cap, B has nothing left"
    );
    let a0: Vec<Claimed> = first.into_iter().filter(|c| c.entity_id == "a0").collect();
    e.succeed(&a0).await;
    assert_eq!(entities(&e.claim(&id, 10, &[]).await), set(&["a2"]));
    let got = e.s().backfill(&e.tenant, &id).await.unwrap().unwrap();
    assert_eq!(got.max_in_flight_per_company, Some(2));
    assert_eq!(got.in_flight_count, 3);
    assert_eq!(got.pending_count, 7);
}

/// A company at its cap whose pending items rank before every other company's (it runs slower)
/// must not use up a claim: the others are still claimed.
async fn a_company_at_its_cap_does_not_starve_the_others(b: Backend) {
    let Some(e) = env(b).await else { return };
    let page: Vec<(String, &str)> = (0..10)
        .map(|i| (format!("a{i}"), "A"))
        .chain((0..6).map(|i| (format!("b{i}"), "B")))
        .collect();
    let p: Vec<(&str, &str)> = page.iter().map(|(e, c)| (e.as_str(), *c)).collect();
    let id = e.backfill("bf_slow", Some(2), &[&p]).await;
    let first = e.claim(&id, 4, &[]).await;
    assert_eq!(entities(&first), set(&["a0", "a1", "b0", "b1"]));
    // B's run fast, A's hang: B moves ahead in rank.
    let b_only: Vec<Claimed> = first
        .into_iter()
        .filter(|c| c.entity_id.starts_with('b'))
        .collect();
    e.succeed(&b_only).await;
    let next = e.claim(&id, 2, &[]).await;
    assert_eq!(entities(&next), set(&["b2", "b3"]));
    e.succeed(&next).await;
    // A's pending items (ranks 2..9) now come before B's (4, 5), and A is at its cap.
    assert_eq!(entities(&e.claim(&id, 1, &[]).await), set(&["b4"]));
}

async fn a_held_company_has_nothing_claimed(b: Backend) {
    let Some(e) = env(b).await else { return };
    let p: Vec<(&str, &str)> = vec![("a0", "A"), ("a1", "A"), ("b0", "B"), ("b1", "B")];
    let id = e.backfill("bf_held", None, &[&p]).await;
    let got = e.claim(&id, 10, &["A"]).await;
    assert_eq!(entities(&got), set(&["b0", "b1"]));
    assert!(e.claim(&id, 10, &["A"]).await.is_empty());
    // Another backfill's hold does not apply to this one.
    let other: Vec<(&str, &str)> = vec![("bf_other", "A")];
    let got = e
        .s()
        .claim_many(&[(id.as_str(), 10)], &other, "w1", at(2), at(60))
        .await
        .unwrap()
        .pop()
        .unwrap()
        .claimed;
    assert_eq!(entities(&got), set(&["a0", "a1"]), "the blackout ended");
}

async fn the_budget_bucket_is_shared_and_counts_the_hour(b: Backend) {
    let Some(e) = env(b).await else { return };
    assert!(
        e.s()
            .take_psa_budget(&e.tenant, 5, at(0))
            .await
            .unwrap()
            .is_none(),
        "no integration, no budget"
    );
    e.s()
        .put_integration(
            &e.tenant,
            "connectwise",
            json!({"site_url": "https://psa.example", "requests_per_hour": 36_000, "backfill_share": 50}),
            json!({"private_key": "k"}),
            at(0),
        )
        .await
        .unwrap();
    let t0 = 1_000;
    let g = e
        .s()
        .take_psa_budget(&e.tenant, 100, at(t0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        g.granted, 10,
        "a full bucket holds two seconds of 300 a minute"
    );
    let g = e
        .s()
        .take_psa_budget(&e.tenant, 1, at(t0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.granted, 0);
    assert!(g.wait_ms > 0);
    // A second handle on the same database (another replica) sees the same bucket.
    let again = e.t.reopen().await;
    let g = again
        .take_psa_budget(&e.tenant, 100, at(t0 + 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.granted, 4, "one second's refill at 95% of 5 a second");
    let i = e.s().integration(&e.tenant).await.unwrap().unwrap();
    assert_eq!(i.bucket.used, 14);
    assert_eq!(i.budget().backfill_per_hour(), 18_000);
    // Reconnecting keeps the bucket.
    e.s()
        .put_integration(
            &e.tenant,
            "connectwise",
            json!({"site_url": "https://psa.example", "requests_per_hour": 36_000}),
            json!({"private_key": "k"}),
            at(t0 + 2),
        )
        .await
        .unwrap();
    let i = e.s().integration(&e.tenant).await.unwrap().unwrap();
    assert_eq!(i.bucket.used, 14);
    assert_eq!(i.budget().backfill_share, 50, "the default share");
}

backend_tests!(
    claims_go_round_robin_across_companies_over_pages,
    the_per_company_cap_counts_what_is_in_flight,
    a_company_at_its_cap_does_not_starve_the_others,
    a_held_company_has_nothing_claimed,
    the_budget_bucket_is_shared_and_counts_the_hour,
);
