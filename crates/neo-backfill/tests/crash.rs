//! Crash safety with the real binary: `kill -9` mid-run, restart, and the backfill completes
//! with every item executed at least once, counts exact, and every duplicate delivery carrying
//! the same `Idempotency-Key`. And SIGTERM: in-flight executions finish, leases are released.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{receiver, serve, setup};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_restart_completes_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let (log, url) = receiver(5).await;
    let first = serve(&db, &[]);
    let (api, id) = setup(&db, &first, &url, 2000, 20).await;

    // Let it run, then kill -9 in the middle.
    let start = Instant::now();
    while log.total.load(Ordering::SeqCst) < 600 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first); // SIGKILL
    let at_kill = log.total.load(Ordering::SeqCst);
    assert!(at_kill < 2000, "the run finished before the kill");

    let second = serve(&db, &[]);
    let done = api
        .wait_backfill(&second.base, &id, Duration::from_secs(120), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    let settled = done["succeeded_count"].as_i64().unwrap()
        + done["failed_count"].as_i64().unwrap()
        + done["skipped_count"].as_i64().unwrap();
    assert_eq!(settled, 2000, "{done}");
    assert_eq!(done["succeeded_count"], 2000);
    assert_eq!(done["in_flight_count"], 0);
    assert_eq!(done["pending_count"], 0);

    let deliveries = log.deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 2000, "every item executed at least once");
    let mut duplicates = 0;
    for (entity, keys) in &deliveries {
        assert!(
            keys.iter().all(|k| k == &keys[0]),
            "{entity} was delivered with different keys: {keys:?}"
        );
        duplicates += keys.len() - 1;
    }
    eprintln!(
        "deliveries: {} (redelivered after the crash: {duplicates})",
        log.total.load(Ordering::SeqCst)
    );
    assert!(
        duplicates <= 20,
        "at most the in-flight items of the killed process are redelivered"
    );

    // The items agree with the counters.
    let b = api.assert_counters_exact(&second.base, &id).await;
    assert_eq!(b["succeeded_count"], 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_executions_finish_and_releases_leases() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let (log, url) = receiver(700).await;
    let mut server = serve(&db, &[("NEO_SHUTDOWN_GRACE_SECS", "10")]);
    let (api, id) = setup(&db, &server, &url, 30, 5).await;
    api.wait_backfill(&server.base, &id, Duration::from_secs(20), |b| {
        b["in_flight_count"] == 5
    })
    .await;
    let t = Instant::now();
    server.terminate().await;
    assert!(t.elapsed() < Duration::from_secs(10));
    let delivered = log.total.load(Ordering::SeqCst);

    // Restart at once (leases would take 2 s to expire): what finished is recorded, nothing
    // is left in flight, and the rest completes without redelivery.
    let again = serve(&db, &[]);
    let b = api.get(&again.base, &format!("/backfills/{id}")).await["data"].clone();
    let s = b["succeeded_count"].as_u64().unwrap() as usize;
    assert!(
        s >= 5,
        "the in-flight executions finished and were recorded: {b}"
    );
    assert!(s <= delivered);
    let done = api
        .wait_backfill(&again.base, &id, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["succeeded_count"], 30);
    let deliveries = log.deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 30);
    assert!(
        deliveries.values().all(|k| k.len() == 1),
        "a graceful stop redelivers nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_shares_the_work_and_the_cap_holds_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let (log, url) = receiver(20).await;
    let server = serve(&db, &[]);
    let mut worker = Command::new(common::BIN)
        .args(["worker", "--database-url", &db])
        .env("NEO_POLL_INTERVAL_MS", "20")
        .env("NEO_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("NEO_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (api, id) = setup(&db, &server, &url, 300, 6).await;
    let done = api
        .wait_backfill(&server.base, &id, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    let _ = worker.kill();
    let _ = worker.wait();
    assert_eq!(done["succeeded_count"], 300);
    assert_eq!(log.deliveries.lock().unwrap().len(), 300);
    assert!(
        log.max.load(Ordering::SeqCst) <= 6,
        "max_in_flight holds across serve and worker: {}",
        log.max.load(Ordering::SeqCst)
    );
}

/// `kill -9` while a PSA page is being read: the restarted service resumes enumeration from
/// the last appended page's checkpoint; earlier pages are not read again (simulator log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_psa_enumeration_resumes_from_the_checkpoint() {
    const TICKETS: &str = "/v4_6_release/apis/3.0/service/tickets";
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets: 2_500,
        ..Default::default()
    })
    .await
    .unwrap();
    let ids: Vec<u64> = sim.tickets().iter().map(|t| t.id).collect();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let first = serve(&db, &[]);
    let api = common::Api {
        http: reqwest::Client::new(),
        key: common::create_key(&db),
    };
    let c = sim.config();
    api.put(
        &first.base,
        "/integrations/connectwise",
        json!({
        "site_url": sim.base_url, "company_id": c.cw_company, "public_key": c.cw_public_key,
        "private_key": c.cw_private_key, "client_id": c.cw_client_id}),
    )
    .await;
    let wf = api
        .post(
            &first.base,
            "/agents",
            json!({"name": "Sim", "executor": {"type": "simulated"}}),
        )
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    // Requests to the tickets resource: the create's count, then pages 1, 2, 3. Page 3 hangs.
    sim.inject(psa_sim::Fault::delay(60_000).path_prefix(TICKETS).nth(4));
    let b = api
        .post(&first.base, "/backfills", json!({"target_workflow_id": wf, "max_in_flight": 20,
            "filter_spec": {"conditions": {"combinator": "and", "rules": [{"field": "$id", "operator": ">", "value": 0}]}}}))
        .await;
    let id = b["data"]["backfill"]["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    while !sim
        .requests()
        .await
        .iter()
        .any(|r| r.fault.is_some() && r.status.is_none())
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "page 3 never asked"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(first); // SIGKILL while page 3 is in flight
    sim.clear_faults();
    let before: Vec<u64> = sim.requests().await.iter().map(|r| r.seq).collect();

    let second = serve(&db, &[]);
    let done = api
        .wait_backfill(&second.base, &id, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(
        (
            done["succeeded_count"].as_i64(),
            done["failed_count"].as_i64()
        ),
        (Some(2_500), Some(0)),
        "{done}"
    );
    let page_id = |r: &psa_sim::LoggedRequest| {
        form_urlencoded::parse(r.query.as_deref().unwrap_or("").as_bytes())
            .find(|(k, _)| k == "pageId")
            .map(|(_, v)| v.into_owned())
    };
    let log = sim.requests().await;
    let after: Vec<Option<String>> = log
        .iter()
        .filter(|r| r.path == TICKETS && !before.contains(&r.seq))
        .map(page_id)
        .collect();
    assert_eq!(
        after,
        vec![Some(ids[1999].to_string())],
        "after the restart only page 3 is read"
    );
    let all: Vec<Option<String>> = log
        .iter()
        .filter(|r| r.path == TICKETS)
        .map(page_id)
        .collect();
    assert_eq!(
        all,
        vec![
            Some("0".into()),
            Some(ids[999].to_string()),
            Some(ids[1999].to_string()),
            Some(ids[1999].to_string())
        ]
    );
}
