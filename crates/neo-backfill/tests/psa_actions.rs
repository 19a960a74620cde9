//! Safe bulk changes end to end (issue 20): a real `serve` (SQLite file) with one tenant per
//! PSA, each connected to psa-sim over HTTP, running `psa_actions` workflows. Every outcome is
//! checked through the simulator's own view of its tickets and its write log, never through
//! the service alone.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{create_key_for, serve, Api};
use neo_psa::Psa;
use psa_sim::{SimConfig, SimHandle};
use serde_json::{json, Value};

const TICKETS: usize = 500;

/// (priority field, title field) of a ticket on `psa`, in its own names.
fn fields(psa: Psa) -> (&'static str, &'static str) {
    match psa {
        Psa::ConnectWise => ("priority/id", "summary"),
        Psa::Autotask => ("priority", "title"),
        Psa::Halo => ("priority_id", "summary"),
    }
}

fn at<'a>(row: &'a Value, psa: Psa, path: &str) -> &'a Value {
    neo_psa::compile::eval::field(row, psa, path).unwrap_or(&Value::Null)
}

/// A simulator without its request budgets: these tests are about what is written, and 2,000
/// requests a PSA would take minutes under Halo's 300 per 5 minutes (pacing is its own test).
async fn sim(tickets: usize) -> SimHandle {
    let sim = psa_sim::spawn(SimConfig {
        tickets,
        ..Default::default()
    })
    .await
    .expect("simulator starts");
    sim.set_limits(psa_sim::Limits {
        cw_rate_limit: None,
        halo_rate_limit: None,
        at_latency: false,
        at_thread_limit: None,
        ..sim.limits()
    });
    sim
}

/// A simulator of `tickets` tickets and a `serve` on a fresh SQLite file.
struct Setup {
    sim: SimHandle,
    db: String,
    server: common::Server,
    _dir: tempfile::TempDir,
}

async fn setup(tickets: usize) -> Setup {
    let sim = sim(tickets).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let server = serve(&db, &[]);
    Setup {
        sim,
        db,
        server,
        _dir: dir,
    }
}

/// Each ticket of `ids` as `psa` shows it now.
fn rows(sim: &SimHandle, psa: Psa, ids: &[u64]) -> HashMap<u64, Value> {
    ids.iter()
        .map(|id| (*id, sim.ticket_row(psa.as_str(), *id).unwrap()))
        .collect()
}

/// A tenant of `psa` connected to the simulator.
async fn tenant(db: &str, base: &str, sim: &SimHandle, psa: Psa) -> Api {
    let api = Api {
        http: reqwest::Client::new(),
        key: create_key_for(db, &format!("msp-{}", psa.as_str())),
    };
    common::connect_psa(&api, base, sim, psa.as_str(), common::unpaced()).await;
    api
}

/// The workflow of these tests: priority to `priority`, ` [reviewed]` appended to the title,
/// and an internal note quoting the title as it was.
fn executor(psa: Psa, priority: u64) -> Value {
    let (p, title) = fields(psa);
    json!({"type": "psa_actions", "actions": [
        {"type": "update_fields", "fields": {p: priority, title: format!("{{{{{title}}}}} [reviewed]")}},
        {"type": "add_note", "text": format!("Re-prioritised; the title was: {{{{{title}}}}}"), "internal": true}
    ]})
}

async fn workflow(api: &Api, base: &str, psa: Psa, priority: u64) -> i64 {
    api.post(
        base,
        "/agents",
        json!({"name": format!("Re-prioritise {}", psa.as_str()), "executor": executor(psa, priority)}),
    )
    .await["data"]["id"]
        .as_i64()
        .unwrap()
}

/// The target priority and `n` tickets whose priority differs from it.
fn targets(sim: &SimHandle, n: usize) -> (u64, Vec<u64>) {
    let p = sim.dataset().priorities[0].id;
    let ids: Vec<u64> = sim
        .tickets()
        .iter()
        .filter(|t| t.priority.id != p)
        .take(n)
        .map(|t| t.id)
        .collect();
    assert_eq!(ids.len(), n, "enough tickets off the target priority");
    (p, ids)
}

async fn backfill(api: &Api, base: &str, wf: i64, ids: &[u64], mode: &str) -> String {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    let b = api
        .post(
            base,
            "/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}, "max_in_flight": 20, "mode": mode}),
        )
        .await;
    b["data"]["backfill"]["id"].as_str().unwrap().to_owned()
}

async fn finished(api: &Api, base: &str, id: &str) -> Value {
    let b = api
        .wait_backfill(base, id, Duration::from_secs(180), |b| {
            b["state"] == "COMPLETED" || b["state"] == "FAILED"
        })
        .await;
    assert_eq!(b["state"], "COMPLETED", "{b}");
    b
}

/// Each item's diff by entity id.
async fn diffs(api: &Api, base: &str, id: &str) -> HashMap<u64, Value> {
    api.items(base, id)
        .await
        .into_iter()
        .map(|i| {
            (
                i["entity_id"].as_str().unwrap().parse().unwrap(),
                i["diff"].clone(),
            )
        })
        .collect()
}

/// (field, previous, new) of a diff's changes.
fn changes(diff: &Value) -> Vec<(String, Value, Value)> {
    diff["changes"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["field"].as_str().unwrap().to_owned(),
                        c["previous_value"].clone(),
                        c["new_value"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_leaves_every_ticket_as_intended_and_audits_each_field() {
    let Setup {
        sim,
        db,
        server,
        _dir,
    } = setup(TICKETS + 300).await;
    let base = server.base.clone();
    let (priority, ids) = targets(&sim, TICKETS);
    for psa in Psa::ALL {
        let here = psa.as_str();
        let (p, title) = fields(psa);
        let api = tenant(&db, &base, &sim, psa).await;
        let before = rows(&sim, psa, &ids);
        let wf = workflow(&api, &base, psa, priority).await;
        sim.clear_writes();
        let id = backfill(&api, &base, wf, &ids, "live").await;
        let b = finished(&api, &base, &id).await;
        assert_eq!(b["succeeded_count"], json!(TICKETS), "{here}: {b}");

        // Every ticket, through the simulator's own view: exactly the intended values.
        for t in &ids {
            let row = sim.ticket_row(here, *t).unwrap();
            let old_title = at(&before[t], psa, title).as_str().unwrap();
            assert_eq!(at(&row, psa, p), &json!(priority), "{here} {t}");
            assert_eq!(
                at(&row, psa, title),
                &json!(format!("{old_title} [reviewed]")),
                "{here} {t}"
            );
            let notes = sim.notes(here, *t);
            let want = format!("Re-prioritised; the title was: {old_title}");
            assert_eq!(
                notes
                    .iter()
                    .filter(|n| n.as_object().unwrap().values().any(|v| *v == want))
                    .count(),
                1,
                "{here} {t}: one note {notes:?}"
            );
        }
        // One update and one note per ticket, nothing else, nothing refused.
        let writes = sim.writes();
        assert_eq!(writes.len(), TICKETS * 2, "{here}");
        assert!(writes.iter().all(|w| w.status < 300), "{here}");

        // The audit: two field changes per execution with the true previous values.
        let mut audited = 0;
        for item in api.items(&base, &id).await {
            let t: u64 = item["entity_id"].as_str().unwrap().parse().unwrap();
            let exec = item["execution_id"].as_str().unwrap();
            let audit = api
                .get(&base, &format!("/executions/{exec}/field-update-audit"))
                .await;
            let entries = audit["data"].as_array().expect("an audit");
            let got: Vec<(&str, &Value, &Value, bool)> = entries
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap(),
                        &e["previous_value"],
                        &e["new_value"],
                        e["written"].as_bool().unwrap(),
                    )
                })
                .collect();
            let old_title = at(&before[&t], psa, title);
            let new_title = json!(format!("{} [reviewed]", old_title.as_str().unwrap()));
            assert_eq!(
                got,
                vec![
                    (p, at(&before[&t], psa, p), &json!(priority), true),
                    (title, old_title, &new_title, true),
                ],
                "{here} {t}"
            );
            audited += entries.len();
        }
        assert_eq!(audited, TICKETS * 2, "{here}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_writes_nothing_apply_re_evaluates_and_revert_skips_what_changed_since() {
    let Setup {
        sim,
        db,
        server,
        _dir,
    } = setup(TICKETS + 300).await;
    let base = server.base.clone();
    let (priority, ids) = targets(&sim, TICKETS);
    for psa in Psa::ALL {
        let here = psa.as_str();
        let (p, title) = fields(psa);
        let api = tenant(&db, &base, &sim, psa).await;
        let original = rows(&sim, psa, &ids);
        let wf = workflow(&api, &base, psa, priority).await;

        // Shadow: every diff recorded, nothing written.
        sim.clear_writes();
        let shadow = backfill(&api, &base, wf, &ids, "shadow").await;
        let b = finished(&api, &base, &shadow).await;
        assert_eq!(b["mode"], "shadow");
        assert_eq!(b["succeeded_count"], json!(TICKETS), "{here}: {b}");
        assert!(sim.writes().is_empty(), "{here}: a shadow run wrote");
        let shadow_diffs = diffs(&api, &base, &shadow).await;
        let totals = api
            .get(&base, &format!("/backfills/{shadow}/changes"))
            .await;
        let priority_entities: i64 = totals["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["field"] == p)
            .map(|t| t["entities"].as_i64().unwrap())
            .sum();
        assert_eq!(priority_entities, TICKETS as i64, "{here}: {totals}");

        // Between shadow and apply a technician edits 20 tickets: 10 titles, and 10 already
        // put at the target priority.
        let (retitled, reprioritised) = (&ids[..10], &ids[10..20]);
        for t in retitled {
            sim.technician_edit(here, *t, title, json!(format!("Edited title {t}")));
        }
        for t in reprioritised {
            sim.technician_edit(here, *t, p, json!(priority));
        }
        sim.clear_writes();
        let apply = api
            .post(&base, &format!("/backfills/{shadow}/apply"), json!({}))
            .await["data"]["backfill"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let b = finished(&api, &base, &apply).await;
        assert_eq!(b["succeeded_count"], json!(TICKETS), "{here}: {b}");
        assert_eq!(b["parent_backfill_run_id"], json!(shadow));
        let applied = diffs(&api, &base, &apply).await;
        for t in &ids {
            let row = sim.ticket_row(here, *t).unwrap();
            assert_eq!(at(&row, psa, p), &json!(priority), "{here} {t}");
            if retitled.contains(t) {
                // Planned again on the technician's title, not the shadow's stale one.
                assert_eq!(
                    at(&row, psa, title),
                    &json!(format!("Edited title {t} [reviewed]")),
                    "{here} {t}"
                );
                assert_eq!(
                    changes(&applied[t])[1].1,
                    json!(format!("Edited title {t}")),
                    "{here} {t}"
                );
            } else if reprioritised.contains(t) {
                // Already at the target: only the title is written.
                let c = changes(&applied[t]);
                assert_eq!(c.len(), 1, "{here} {t}: {c:?}");
                assert_eq!(c[0].0, title);
            } else {
                // The rest: exactly what the shadow run showed.
                assert_eq!(
                    applied[t]["changes"], shadow_diffs[t]["changes"],
                    "{here} {t}"
                );
                assert_eq!(
                    applied[t]["notes"][0]["text"], shadow_diffs[t]["notes"][0]["text"],
                    "{here} {t}"
                );
            }
        }
        let updates = sim
            .writes()
            .iter()
            .filter(|w| w.kind == psa_sim::WriteKind::Update)
            .count();
        assert_eq!(updates, TICKETS, "{here}: one update per ticket");

        // Revert with 25 tickets edited since the apply: the other 475 are restored exactly.
        let edited = &ids[100..125];
        for t in edited {
            sim.technician_edit(here, *t, title, json!(format!("Later edit {t}")));
        }
        let revert = api
            .post(&base, &format!("/backfills/{apply}/revert"), json!({}))
            .await["data"]["backfill"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let b = finished(&api, &base, &revert).await;
        assert_eq!(b["mode"], "revert");
        assert_eq!(b["succeeded_count"], json!(TICKETS - 25), "{here}: {b}");
        assert_eq!(b["skipped_count"], json!(25), "{here}: {b}");
        check_reverted(
            &sim,
            psa,
            &ids,
            edited,
            retitled,
            reprioritised,
            &original,
            priority,
        );
        for item in api.items(&base, &revert).await {
            let t: u64 = item["entity_id"].as_str().unwrap().parse().unwrap();
            if edited.contains(&t) {
                assert_eq!(item["status"], "skipped", "{here} {t}");
                assert!(
                    item["error"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("changed_since: {title}")),
                    "{here} {t}: {item}"
                );
            }
        }
    }
}

/// After a revert of the apply: every ticket but the `edited` ones holds its `original`
/// values again; those keep the technician's edit. The technician's own earlier edits
/// (`retitled`, `reprioritised`) are what the apply found, so they are what is restored.
#[allow(clippy::too_many_arguments)]
fn check_reverted(
    sim: &SimHandle,
    psa: Psa,
    ids: &[u64],
    edited: &[u64],
    retitled: &[u64],
    reprioritised: &[u64],
    original: &HashMap<u64, Value>,
    priority: u64,
) {
    let here = psa.as_str();
    let (p, title) = fields(psa);
    for t in ids {
        let row = sim.ticket_row(here, *t).unwrap();
        if edited.contains(t) {
            assert_eq!(at(&row, psa, title), &json!(format!("Later edit {t}")));
            assert_eq!(at(&row, psa, p), &json!(priority), "{here} {t}");
            continue;
        }
        let want_title = if retitled.contains(t) {
            json!(format!("Edited title {t}"))
        } else {
            at(&original[t], psa, title).clone()
        };
        let want_priority = if reprioritised.contains(t) {
            json!(priority)
        } else {
            at(&original[t], psa, p).clone()
        };
        assert_eq!(at(&row, psa, title), &want_title, "{here} {t}");
        assert_eq!(at(&row, psa, p), &want_priority, "{here} {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_killed_midway_resumes_and_writes_each_ticket_once() {
    let psa = Psa::ConnectWise;
    let here = psa.as_str();
    let (_, title) = fields(psa);
    let Setup {
        sim,
        db,
        server: first,
        _dir,
    } = setup(TICKETS + 300).await;
    let base = first.base.clone();
    let (priority, ids) = targets(&sim, TICKETS);
    let original = rows(&sim, psa, &ids);
    let api = tenant(&db, &base, &sim, psa).await;
    let wf = workflow(&api, &base, psa, priority).await;
    let live = backfill(&api, &base, wf, &ids, "live").await;
    finished(&api, &base, &live).await;
    let edited = &ids[200..225];
    for t in edited {
        sim.technician_edit(here, *t, title, json!(format!("Later edit {t}")));
    }

    // Slow writes, so the kill lands with restores in flight (some sent, not yet settled).
    sim.inject(psa_sim::Fault::delay(150).method("PATCH").every(1).times(0));
    sim.clear_writes();
    let revert = api
        .post(&base, &format!("/backfills/{live}/revert"), json!({}))
        .await["data"]["backfill"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let midway = api
        .wait_backfill(&base, &revert, Duration::from_secs(120), |b| {
            b["succeeded_count"].as_i64().unwrap() >= 100
        })
        .await;
    drop(first); // SIGKILL
    assert!(
        midway["succeeded_count"].as_i64().unwrap() < (TICKETS - 25) as i64,
        "killed before the end: {midway}"
    );

    sim.clear_faults();
    let second = serve(&db, &[]);
    let base = second.base.clone();
    let b = finished(&api, &base, &revert).await;
    assert_eq!(b["succeeded_count"], json!(TICKETS - 25), "{b}");
    assert_eq!(b["skipped_count"], json!(25), "{b}");
    check_reverted(&sim, psa, &ids, edited, &[], &[], &original, priority);
    // A restore sent before the kill was recognised, not sent again.
    let mut per_ticket: HashMap<u64, usize> = HashMap::new();
    for w in sim.writes() {
        if w.kind == psa_sim::WriteKind::Update && w.status < 300 {
            *per_ticket.entry(w.ticket_id).or_default() += 1;
        }
    }
    assert_eq!(per_ticket.len(), TICKETS - 25);
    assert!(per_ticket.values().all(|n| *n == 1), "{per_ticket:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_actions_are_refused_at_create_and_a_refused_write_is_sent_once() {
    let psa = Psa::ConnectWise;
    let here = psa.as_str();
    let Setup {
        sim,
        db,
        server,
        _dir,
    } = setup(100).await;
    let base = server.base.clone();
    let api = tenant(&db, &base, &sim, psa).await;
    let create = |executor: Value| {
        let api = &api;
        let base = &base;
        async move {
            let r = api
                .http
                .post(format!("{base}/agents"))
                .bearer_auth(&api.key)
                .json(&json!({"name": "Bad", "executor": executor}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let update = |fields: Value| json!({"type": "psa_actions", "actions": [{"type": "update_fields", "fields": fields}]});
    for (executor, field) in [
        (
            update(json!({"nonsense": 1})),
            "executor.actions[0].fields.nonsense",
        ),
        (
            update(json!({"priority/id": "high"})),
            "executor.actions[0].fields.priority/id",
        ),
        (
            json!({"type": "psa_actions", "actions": [{"type": "add_note", "text": "Was {{no_such_field}}"}]}),
            "executor.actions[0].text",
        ),
    ] {
        let (status, body) = create(executor.clone()).await;
        assert_eq!(status, 422, "{executor}: {body}");
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
    }
    // A tenant without a PSA cannot write to one.
    let lone = Api {
        http: reqwest::Client::new(),
        key: create_key_for(&db, "no-psa"),
    };
    let r = lone
        .http
        .post(format!("{base}/agents"))
        .bearer_auth(&lone.key)
        .json(&json!({"name": "x", "executor": update(json!({"summary": "x"}))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["details"]["field"],
        "executor.type"
    );

    // The PSA refuses: a priority it does not have (400) on every ticket, and a 409 on one.
    let (_, ids) = targets(&sim, 20);
    let wf = api
        .post(
            &base,
            "/agents",
            json!({"name": "Refused", "executor": update(json!({"priority/id": 999_999}))}),
        )
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    sim.clear_writes();
    let refused = backfill(&api, &base, wf, &ids[..10], "live").await;
    let b = finished(&api, &base, &refused).await;
    assert_eq!(b["failed_count"], json!(10), "{b}");
    for item in api.items(&base, &refused).await {
        let error = item["error"].as_str().unwrap();
        assert!(error.starts_with("the PSA refused the request"), "{error}");
        assert_eq!(item["attempts"], json!(1), "{item}");
    }
    assert_eq!(sim.writes().len(), 10, "each refused write sent once");

    let (priority, _) = targets(&sim, 1);
    let wf = workflow(&api, &base, psa, priority).await;
    let conflicted = ids[10];
    let path = format!("{}/service/tickets/{conflicted}", psa_sim::CW_API_PREFIX);
    sim.inject(
        psa_sim::Fault::status(409)
            .method("PATCH")
            .path_prefix(&path)
            .times(0),
    );
    sim.clear_requests();
    let run = backfill(&api, &base, wf, &ids[10..], "live").await;
    let b = finished(&api, &base, &run).await;
    assert_eq!(
        (b["succeeded_count"].clone(), b["failed_count"].clone()),
        (json!(9), json!(1)),
        "{b}"
    );
    let item = api
        .items(&base, &run)
        .await
        .into_iter()
        .find(|i| i["entity_id"] == json!(conflicted.to_string()))
        .unwrap();
    assert!(
        item["error"]
            .as_str()
            .unwrap()
            .starts_with("the PSA refused the write as a conflict"),
        "{item}"
    );
    let patches = sim
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with(&format!("/tickets/{conflicted}")))
        .count();
    assert_eq!(patches, 1, "{here}: the 409 was not sent again");
    // The refused write is not in the audit.
    let exec = item["execution_id"].as_str().unwrap();
    let audit = api
        .get(&base, &format!("/executions/{exec}/field-update-audit"))
        .await;
    assert_eq!(audit["data"], json!([]), "{audit}");
}
