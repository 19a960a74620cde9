//! The connectors against the PSA simulator over real HTTP: discovery, counts, enumeration of every page (the
//! exact reference set: `compile::matches` over the simulator's own rows), throttling and 5xx mid-enumeration, no
//! retry of a 400, bad credentials, Autotask `complete_status_ids`, Halo token refresh and page step-back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

mod common;

use common::{connect, connect_with, policy};
use neo_domain::backfill::EntityType;
use neo_domain::filter::{self, FilterSpec, Group};
use neo_psa::client::{Cursor, PsaClient};
use neo_psa::compile::{self, EvalContext};
use neo_psa::http::PsaError;
use neo_psa::Psa;
use psa_sim::{Fault, SimConfig, SimHandle};
use serde_json::{json, Value};

const TICKETS: usize = 2500;

async fn sim() -> SimHandle {
    psa_sim::spawn(SimConfig {
        tickets: TICKETS,
        ..Default::default()
    })
    .await
    .expect("simulator starts")
}

/// The validated tree of a top-level AND of `rules`.
fn and(rules: Value) -> Group {
    let now = "2026-11-28T21:07:35Z".parse().expect("instant");
    let spec = json!({"conditions": {"combinator": "and", "rules": rules}});
    match filter::parse(&spec, now, None) {
        Ok((FilterSpec::Query { root, .. }, _)) => root,
        other => panic!("not a valid rule group: {other:?}"),
    }
}

/// The integration (`config`, `secrets`) pointing at the simulator, as the API stores it.
fn integration(sim: &SimHandle, psa: Psa) -> (Value, Value) {
    common::unpaced_integration(sim, psa)
}

/// The ids of the simulator's tickets that match `root` per the reference evaluator.
fn reference(sim: &SimHandle, psa: Psa, root: &Group, ctx: &EvalContext) -> Vec<i64> {
    let pred = compile::Predicate::new(root, compile::tickets(psa), ctx);
    sim.tickets()
        .iter()
        .filter(|t| {
            let row = match psa {
                Psa::ConnectWise => psa_sim::cw_json(t),
                Psa::Autotask => psa_sim::at_json(t),
                Psa::Halo => psa_sim::halo_json(t),
            };
            debug_assert_eq!(
                pred.matches(&row),
                compile::matches(root, &row, compile::tickets(psa), ctx)
            );
            pred.matches(&row)
        })
        .map(|t| t.id as i64)
        .collect()
}

/// Every matching id, page by page, persisting the cursor as a checkpoint between pages (as `PsaSource` does).
async fn enumerate(client: &PsaClient, root: &Group) -> Result<Vec<i64>, PsaError> {
    let mut checkpoint: Option<Value> = None;
    let mut out = Vec::new();
    for _ in 0..200 {
        let after = Cursor::from_checkpoint(checkpoint.as_ref());
        let page = client.page(EntityType::Ticket, root, &after).await?;
        out.extend(page.rows.iter().map(|r| r.id));
        if let Some(next) = page.next {
            let cp = next.to_checkpoint();
            match client.psa() {
                Psa::Halo => {
                    assert_eq!(cp.as_object().map(|o| o.len()), Some(2), "{cp}");
                    assert!(cp["page_no"].as_u64().is_some_and(|p| p >= 1), "{cp}");
                }
                _ => assert_eq!(cp, json!({ "last_id": next.last_id })),
            }
            checkpoint = Some(cp);
        }
        if page.exhausted {
            let unique: HashSet<i64> = out.iter().copied().collect();
            assert_eq!(unique.len(), out.len(), "no id twice");
            return Ok(out);
        }
    }
    panic!("enumeration did not end");
}

/// A filter each PSA runs exactly (so its count is exact), and one with a residual spanning several pages.
fn filters(psa: Psa) -> (Group, Group) {
    let since = json!({"$datetime": "2025-03-01T00:00:00Z"});
    match psa {
        Psa::ConnectWise => (
            and(json!([
                {"field": "$closed", "operator": "=", "value": false},
                {"field": "board/name", "operator": "=", "value": "Help Desk"}])),
            // One custom field is pushed down, the second is residual.
            and(json!([
                {"custom_field": "Region", "operator": "!=", "value": "Atlantis"},
                {"custom_field": "Region", "operator": "!=", "value": "East"}])),
        ),
        Psa::Autotask => (
            and(json!([
                {"field": "$closed", "operator": "=", "value": false},
                {"field": "$priority", "operator": "in", "value": [2, 3]}])),
            and(json!([
                {"field": "$created", "operator": ">=", "value": since},
                {"field": "title", "operator": "doesNotContain", "value": "printer"}])),
        ),
        Psa::Halo => (
            and(json!([
                {"field": "$closed", "operator": "=", "value": true},
                {"field": "$created", "operator": ">=", "value": since}])),
            and(json!([
                {"field": "$created", "operator": ">=", "value": since},
                {"field": "$priority", "operator": "in", "value": [2, 3, 4]}])),
        ),
    }
}

/// The request path prefix of each PSA's enumeration requests.
fn page_path(psa: Psa) -> &'static str {
    match psa {
        Psa::ConnectWise => "/v4_6_release/apis/3.0/service/tickets",
        Psa::Autotask => "/ATServicesRest/V1.0/Tickets/query",
        Psa::Halo => "/api/tickets",
    }
}

async fn counts_and_enumerates(psa: Psa) {
    let sim = sim().await;
    let client = connect(&sim, psa).await;
    assert_eq!(client.psa(), psa);
    let ctx = EvalContext::default();
    let (exact, residual) = filters(psa);

    let count = client
        .count(EntityType::Ticket, &exact)
        .await
        .expect("count");
    let expected = reference(&sim, psa, &exact, &ctx);
    assert!(count.exact, "{psa:?}: the count filter runs in the PSA");
    assert_eq!(count.count, expected.len() as u64);
    assert!(!expected.is_empty());
    assert_eq!(enumerate(&client, &exact).await.expect("pages"), expected);

    let expected = reference(&sim, psa, &residual, &ctx);
    let count = client
        .count(EntityType::Ticket, &residual)
        .await
        .expect("count");
    assert!(!count.exact && count.count > expected.len() as u64);
    assert!(expected.len() > 1000, "several pages: {}", expected.len());
    assert_eq!(
        enumerate(&client, &residual).await.expect("pages"),
        expected
    );
}

#[tokio::test]
async fn connectwise_counts_and_enumerates() {
    counts_and_enumerates(Psa::ConnectWise).await;
}

#[tokio::test]
async fn autotask_counts_and_enumerates() {
    counts_and_enumerates(Psa::Autotask).await;
}

#[tokio::test]
async fn halo_counts_and_enumerates() {
    counts_and_enumerates(Psa::Halo).await;
}

/// A 429 with `Retry-After: 1` and a 503 in the middle of an enumeration: slower, but the exact set.
async fn survives_throttling_and_5xx(psa: Psa) {
    let sim = sim().await;
    let client = connect(&sim, psa).await;
    let (_, root) = filters(psa);
    let expected = reference(&sim, psa, &root, &EvalContext::default());
    sim.clear_requests();
    sim.inject(
        Fault::status(429)
            .retry_after("1")
            .path_prefix(page_path(psa))
            .nth(2),
    );
    sim.inject(Fault::status(503).path_prefix(page_path(psa)).nth(3));
    let started = Instant::now();
    assert_eq!(enumerate(&client, &root).await.expect("pages"), expected);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    let statuses: Vec<Option<u16>> = sim.requests().await.iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&Some(429)) && statuses.contains(&Some(503)),
        "{statuses:?}"
    );
    assert!(sim.faults().is_empty(), "both faults fired");
}

#[tokio::test]
async fn connectwise_survives_throttling_and_5xx() {
    survives_throttling_and_5xx(Psa::ConnectWise).await;
}

#[tokio::test]
async fn autotask_survives_throttling_and_5xx() {
    survives_throttling_and_5xx(Psa::Autotask).await;
}

#[tokio::test]
async fn halo_survives_throttling_and_5xx() {
    survives_throttling_and_5xx(Psa::Halo).await;
}

/// A 400 is returned as `Rejected` after one request; bad credentials are `Auth`.
async fn rejects_and_refuses(psa: Psa) {
    let sim = sim().await;
    let client = connect(&sim, psa).await;
    let (_, root) = filters(psa);
    sim.clear_requests();
    sim.inject(Fault::status(400).path_prefix(page_path(psa)).times(0));
    let err = client
        .page(EntityType::Ticket, &root, &Cursor::default())
        .await
        .expect_err("400");
    assert!(matches!(err, PsaError::Rejected(_)), "{err:?}");
    assert!(!err.is_transient());
    let sent = sim
        .requests()
        .await
        .iter()
        .filter(|r| r.path.starts_with(page_path(psa)))
        .count();
    assert_eq!(sent, 1, "a 400 is not retried");
    sim.clear_faults();

    let (config, mut secrets) = integration(&sim, psa);
    let key = match psa {
        Psa::ConnectWise => "private_key",
        Psa::Autotask => "secret",
        Psa::Halo => "client_secret",
    };
    secrets[key] = json!("wrong");
    let err = match connect_with(psa, &config, &secrets).await {
        Ok(c) => c
            .count(EntityType::Ticket, &root)
            .await
            .expect_err("bad credentials"),
        Err(e) => e,
    };
    assert!(matches!(err, PsaError::Auth(_)), "{err:?}");
}

#[tokio::test]
async fn connectwise_rejects_and_refuses() {
    rejects_and_refuses(Psa::ConnectWise).await;
}

#[tokio::test]
async fn autotask_rejects_and_refuses() {
    rejects_and_refuses(Psa::Autotask).await;
}

#[tokio::test]
async fn halo_rejects_and_refuses() {
    rejects_and_refuses(Psa::Halo).await;
}

#[tokio::test]
async fn autotask_complete_status_ids_from_the_integration() {
    let sim = sim().await;
    let (mut config, secrets) = integration(&sim, Psa::Autotask);
    let open = and(json!([{"field": "$closed", "operator": "=", "value": false}]));

    // Default [5]: tickets in status 13 (Closed) count as open.
    let client = connect_with(Psa::Autotask, &config, &secrets)
        .await
        .expect("connects");
    assert_eq!(client.eval_context().complete_status_ids, [5]);
    let default_open = enumerate(&client, &open).await.expect("pages");
    assert_eq!(
        default_open,
        reference(&sim, Psa::Autotask, &open, &EvalContext::default())
    );

    config["complete_status_ids"] = json!([13, 5]);
    let client = connect_with(Psa::Autotask, &config, &secrets)
        .await
        .expect("connects");
    let ctx = EvalContext {
        complete_status_ids: vec![5, 13],
    };
    assert_eq!(client.eval_context(), ctx);
    let expected = reference(&sim, Psa::Autotask, &open, &ctx);
    let got = enumerate(&client, &open).await.expect("pages");
    assert_eq!(got, expected);
    assert!(got.len() < default_open.len());
    let open_ids: HashSet<i64> = got.iter().copied().collect();
    assert!(sim
        .tickets()
        .iter()
        .filter(|t| open_ids.contains(&(t.id as i64)))
        .all(|t| !t.closed_flag()));
    let count = client
        .count(EntityType::Ticket, &open)
        .await
        .expect("count");
    assert!(count.exact);
    assert_eq!(count.count, expected.len() as u64);

    for bad in [json!([]), json!("5"), json!([5, "13"]), json!([5.5])] {
        config["complete_status_ids"] = bad.clone();
        let err = connect_with(Psa::Autotask, &config, &secrets)
            .await
            .expect_err("refused");
        assert!(matches!(err, PsaError::Rejected(_)), "{bad}: {err:?}");
    }
}

#[tokio::test]
async fn halo_discovers_and_refreshes_expired_tokens() {
    let sim = sim().await;
    let client = connect(&sim, Psa::Halo).await;
    let log = sim.requests().await;
    let paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/authinfo", "/auth/token"]);
    assert_eq!(log[1].query_param("tenant").as_deref(), Some("sim"));
    for (k, v) in [
        ("grant_type", "client_credentials"),
        ("scope", "all"),
        ("client_id", sim.config().halo_client_id.as_str()),
    ] {
        assert!(
            log[1].body.contains(&format!("{k}={v}")),
            "{k} in {}",
            log[1].body
        );
    }

    // The token expires (virtual clock) between pages: one 401, a new token, the exact set.
    let (_, root) = filters(Psa::Halo);
    let expected = reference(&sim, Psa::Halo, &root, &EvalContext::default());
    let first = client
        .page(EntityType::Ticket, &root, &Cursor::default())
        .await
        .expect("page");
    assert!(!first.exhausted);
    sim.advance_clock(Duration::from_secs(7200));
    sim.clear_requests();
    let mut got: Vec<i64> = first.rows.iter().map(|r| r.id).collect();
    let mut after = first.next.expect("progress");
    loop {
        let p = client
            .page(EntityType::Ticket, &root, &after)
            .await
            .expect("page");
        got.extend(p.rows.iter().map(|r| r.id));
        if p.exhausted {
            break;
        }
        after = p.next.expect("progress");
    }
    assert_eq!(got, expected);
    let log = sim.requests().await;
    assert_eq!(log[0].status, Some(401));
    assert_eq!(log[1].path, "/auth/token");
    assert_eq!(
        log.iter().filter(|r| r.path == "/auth/token").count(),
        1,
        "one refresh"
    );

    // Pages are asked for with the compiler's parameters plus paging, ascending by id.
    let q = log
        .iter()
        .find(|r| r.status == Some(200) && r.path == "/api/tickets")
        .expect("a page");
    assert_eq!(q.query_param("pageinate").as_deref(), Some("true"));
    assert_eq!(q.query_param("page_size").as_deref(), Some("100"));
    assert_eq!(q.query_param("order").as_deref(), Some("id"));
    assert_eq!(q.query_param("datesearch").as_deref(), Some("dateoccurred"));
    assert!(q
        .header("authorization")
        .is_some_and(|a| a.starts_with("Bearer ")));
}

#[tokio::test]
async fn halo_resume_steps_back_one_page() {
    let sim = sim().await;
    let client = connect(&sim, Psa::Halo).await;
    let all = and(json!([{"field": "$id", "operator": ">", "value": 0}]));
    let ids = reference(&sim, Psa::Halo, &all, &EvalContext::default());
    let rest = |cursor: Cursor| {
        let client = client.clone();
        let all = all.clone();
        async move {
            let mut after = cursor;
            let mut got = Vec::new();
            loop {
                let p = client
                    .page(EntityType::Ticket, &all, &after)
                    .await
                    .expect("page");
                got.extend(p.rows.iter().map(|r| r.id));
                if p.exhausted {
                    return got;
                }
                after = p.next.expect("progress");
            }
        }
    };
    // Resuming where page 2 ended: nothing twice.
    let cursor = Cursor {
        last_id: ids[199],
        page_no: Some(2),
    };
    assert_eq!(rest(cursor).await, ids[200..]);
    // The state after 30 rows below `last_id` were deleted since page 2 was read: `last_id` (then the 200th row)
    // is now the 170th, so the 30 rows after it moved back onto page 2. Reading on from page 3 would skip them.
    let cursor = Cursor {
        last_id: ids[169],
        page_no: Some(2),
    };
    assert_eq!(rest(cursor).await, ids[170..]);
    // Rows below `last_id` that started matching pushed it five pages later: the cursor still moves on.
    let cursor = Cursor {
        last_id: ids[599],
        page_no: Some(1),
    };
    assert_eq!(rest(cursor).await, ids[600..]);
    // A fresh start.
    assert_eq!(rest(Cursor::default()).await, ids);
    // An empty result set is exhausted at once, without progress.
    let none = and(json!([{"field": "$company", "operator": "=", "value": 999_999}]));
    let p = client
        .page(EntityType::Ticket, &none, &Cursor::default())
        .await
        .expect("page");
    assert!(p.exhausted && p.rows.is_empty() && p.next.is_none());
}

/// `PsaSource` over a real store: pages appended as the orchestrator does, until the snapshot is complete.
async fn source_enumerates(psa: Psa) {
    use neo_domain::backfill::{AutonomyType, BackfillRunState, WorkflowState};
    use neo_store::source::EntitySource;
    use neo_store::{NewBackfill, NewWorkflow};

    let sim = sim().await;
    let db = neo_store::testing::suite_store().await;
    let store = db.store.clone();
    let now: jiff::Timestamp = "2026-11-28T21:07:35Z".parse().expect("instant");
    let tenant = store.ensure_tenant("acme", now).await.expect("tenant").id;
    let (config, secrets) = integration(&sim, psa);
    store
        .put_integration(&tenant, psa.as_str(), config, secrets, now)
        .await
        .expect("integration");
    let wf = store
        .insert_workflow(
            &tenant,
            NewWorkflow {
                name: "Triage".into(),
                description: None,
                autonomy_type: AutonomyType::ChainedActions,
                entity_type: EntityType::Ticket,
                state: WorkflowState::Enabled,
                credit_tier: 1,
                executor: json!({"type": "simulated"}),
            },
            now,
        )
        .await
        .expect("workflow")
        .id;
    let rules = json!([
        {"field": "$created", "operator": ">=", "value": {"$datetime": "2025-03-01T00:00:00Z"}},
        {"field": "$priority", "operator": "in", "value": [2, 3, 4]}]);
    let b = store
        .create_backfill(NewBackfill {
            id: "bf_source".into(),
            tenant_id: tenant.clone(),
            state: BackfillRunState::Running,
            target_workflow_id: wf,
            entity_type: EntityType::Ticket,
            filter_spec: json!({"conditions": {"combinator": "and", "rules": rules}}),
            daily_execution_windows: Default::default(),
            timezone: "UTC".into(),
            max_in_flight: 10,
            reprocess: false,
            total_estimated: None,
            credits_per_entity: 1,
            created_by: "test".into(),
            created_at: now,
            entity_ids: None,
            name: None,
            mode: neo_domain::backfill::BackfillMode::Live,
            start_at: None,
            max_credits: None,
            trial_sample_size: None,
            max_in_flight_per_company: None,
            company_blackouts: None,
        })
        .await
        .expect("backfill");
    let source = neo_psa::source::PsaSource::new(
        store.clone(),
        policy(),
        neo_egress::Egress::new(neo_egress::EgressPolicy::new(true)),
    );
    sim.clear_requests();
    let tickets = sim.tickets();
    let mut got = Vec::new();
    let mut b = b;
    for _ in 0..100 {
        let page = source.next_page(&b).await.expect("page");
        if let Some(cp) = &page.checkpoint {
            let keys: Vec<&String> = cp.as_object().expect("object").keys().collect();
            match psa {
                Psa::Halo => assert_eq!(keys, ["last_id", "page_no"]),
                _ => assert_eq!(keys, ["last_id"]),
            }
        }
        got.extend(page.items.iter().map(|e| e.id.parse::<i64>().expect("id")));
        // Each entry carries the ticket's summary, as the PSA writes it (cut at 120 characters).
        for e in &page.items {
            let t = tickets
                .iter()
                .find(|t| t.id.to_string() == e.id)
                .expect("a seeded ticket");
            let want: String = t
                .summary
                .chars()
                .take(neo_psa::client::MAX_SUMMARY_CHARS)
                .collect();
            let got = e.summary.as_deref().expect("a summary");
            assert!(
                got.trim_end_matches('…').starts_with(want.trim_end()),
                "{got:?} vs {:?}",
                t.summary
            );
        }
        assert!(store
            .append_items(
                &b.id,
                &page.items,
                b.snapshot_checkpoint.as_ref(),
                page.checkpoint.as_ref(),
                page.complete,
                now,
            )
            .await
            .expect("append"));
        b = store
            .backfill(&tenant, &b.id)
            .await
            .expect("read")
            .expect("backfill");
        if b.snapshot_complete {
            break;
        }
    }
    assert!(b.snapshot_complete);
    let root = and(rules);
    assert_eq!(got, reference(&sim, psa, &root, &EvalContext::default()));
    // The client is connected once and kept between pages.
    let discovery = match psa {
        Psa::Halo => "/api/authinfo",
        Psa::ConnectWise => "/login/companyinfo",
        Psa::Autotask => "/ATServicesRest/V1.0/zoneInformation",
    };
    let connects = sim
        .requests()
        .await
        .iter()
        .filter(|r| r.path.starts_with(discovery) || r.path == "/auth/token")
        .count();
    assert!(connects <= 2, "{connects} connect requests");
}

#[tokio::test]
async fn connectwise_source_enumerates() {
    source_enumerates(Psa::ConnectWise).await;
}

#[tokio::test]
async fn halo_source_enumerates() {
    source_enumerates(Psa::Halo).await;
}
