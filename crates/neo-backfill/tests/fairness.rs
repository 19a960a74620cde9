//! Fairness between an MSP's client companies (issue 23, acceptance 3), through the real
//! binary: a `serve` on SQLite connected to psa-sim's ConnectWise over HTTP, a filter backfill
//! of the simulator's tickets (each item carries its ticket's `company.id`), and a webhook
//! receiver that records which entity ran when and how many of each company were in flight at
//! once. Which company an entity belongs to is read from the simulator's data set, never from
//! the service.
//!
//! - One company owning 5,000 tickets and four owning 50 each, `max_in_flight` 20 and
//!   `max_in_flight_per_company` 5: the four small companies are all done before the big one
//!   is 20% done, no company ever has more than 5 entities at the receiver at once, and the
//!   backfill never more than 20.
//! - A company in a blackout: nothing of it runs while the backfill's `held_companies` names
//!   it, the other companies complete meanwhile, and once the blackout's weekly window ends its
//!   entities run and the backfill completes without a failure.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use common::{create_key, serve, Api, Server};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use psa_sim::{SimConfig, SimHandle};
use serde_json::{json, Value};

/// How long the receiver takes per entity.
const LATENCY: Duration = Duration::from_millis(15);

/// One entity as the receiver saw it.
#[derive(Clone, Debug)]
struct Ran {
    entity: String,
    company: String,
    started: Timestamp,
}

#[derive(Default)]
struct Flight {
    /// In flight now, by company.
    now: HashMap<String, usize>,
    total: usize,
    /// The most seen at once, by company, and in all.
    max: HashMap<String, usize>,
    max_total: usize,
    /// Finished, in the order they finished.
    done: Vec<Ran>,
}

/// A webhook receiver that knows each entity's company (from the simulator's data set).
struct Receiver {
    company_of: HashMap<String, String>,
    flight: Mutex<Flight>,
}

impl Receiver {
    fn done(&self) -> Vec<Ran> {
        self.flight.lock().unwrap().done.clone()
    }

    /// How many of `company`'s entities have reached the receiver (finished or not).
    fn reached(&self, company: &str) -> usize {
        let f = self.flight.lock().unwrap();
        f.done.iter().filter(|r| r.company == company).count()
            + f.now.get(company).copied().unwrap_or(0)
    }
}

/// Counts an entity out of the in-flight figures, also when the sender hangs up mid-request.
struct InFlight {
    rx: Arc<Receiver>,
    ran: Option<Ran>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(ran) = self.ran.take() else { return };
        let mut f = self.rx.flight.lock().unwrap();
        *f.now.get_mut(&ran.company).unwrap() -= 1;
        f.total -= 1;
        f.done.push(ran);
    }
}

async fn hook(State(rx): State<Arc<Receiver>>, body: String) -> axum::Json<Value> {
    let v: Value = serde_json::from_str(&body).unwrap();
    let entity = v["entity"]["id"].as_str().unwrap().to_owned();
    let company = rx
        .company_of
        .get(&entity)
        .cloned()
        .unwrap_or_else(|| format!("unknown entity {entity}"));
    {
        let mut f = rx.flight.lock().unwrap();
        let now = f.now.entry(company.clone()).or_default();
        *now += 1;
        let now = *now;
        let max = f.max.entry(company.clone()).or_default();
        *max = (*max).max(now);
        f.total += 1;
        f.max_total = f.max_total.max(f.total);
    }
    let _in_flight = InFlight {
        rx: rx.clone(),
        ran: Some(Ran {
            entity,
            company,
            started: Timestamp::now(),
        }),
    };
    tokio::time::sleep(LATENCY).await;
    axum::Json(json!({"status": "succeeded"}))
}

async fn receiver(company_of: HashMap<String, String>) -> (Arc<Receiver>, String) {
    let rx = Arc::new(Receiver {
        company_of,
        flight: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(rx.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (rx, url)
}

/// A simulated ConnectWise whose tickets belong to the first companies, `company_tickets[i]`
/// to the `i`-th, a `serve` with a tenant connected to it, a receiver and a webhook workflow
/// pointing at it.
struct Setup {
    _sim: SimHandle,
    server: Server,
    api: Api,
    rx: Arc<Receiver>,
    workflow: i64,
    /// The companies' ids, as `company_tickets` names them.
    companies: Vec<String>,
    _dir: tempfile::TempDir,
}

async fn setup(company_tickets: &[usize]) -> Setup {
    let sim = psa_sim::spawn(SimConfig {
        tickets: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    // The data set, through the simulator's admin API.
    let http = reqwest::Client::new();
    let reset = http
        .post(format!("{}/__sim/reset", sim.base_url))
        .json(&json!({ "company_tickets": company_tickets }))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let data = sim.dataset();
    let companies: Vec<String> = data.companies[..company_tickets.len()]
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    let company_of: HashMap<String, String> = data
        .tickets
        .iter()
        .map(|t| (t.id.to_string(), t.company.id.to_string()))
        .collect();
    for (c, want) in companies.iter().zip(company_tickets) {
        assert_eq!(
            company_of.values().filter(|x| *x == c).count(),
            *want,
            "company {c} in the data set"
        );
    }
    assert_eq!(company_of.len(), company_tickets.iter().sum::<usize>());

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let server = serve(&db, &[]);
    let api = Api {
        http,
        key: create_key(&db),
    };
    common::connect_psa(&api, &server.base, &sim, "connectwise", json!({})).await;
    let (rx, url) = receiver(company_of).await;
    let workflow = api
        .post(&server.base, "/agents", json!({"name": "Per client", "executor": {"type": "webhook", "url": url, "secret": "whsec_0123456789abcdef"}}))
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    Setup {
        _sim: sim,
        server,
        api,
        rx,
        workflow,
        companies,
        _dir: dir,
    }
}

/// Every ticket of the simulator.
fn all_tickets() -> Value {
    json!({"conditions": {"combinator": "and", "rules": [{"field": "$id", "operator": ">", "value": 0}]}})
}

/// How many entities of each company the receiver saw, and whether any ran twice.
fn per_company(done: &[Ran]) -> BTreeMap<String, usize> {
    let mut seen = std::collections::HashSet::new();
    let mut out = BTreeMap::new();
    for r in done {
        assert!(seen.insert(r.entity.clone()), "{} ran twice", r.entity);
        *out.entry(r.company.clone()).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_companies_finish_before_the_big_one_is_a_fifth_done_and_none_exceeds_its_cap() {
    const BIG: usize = 5_000;
    const SMALL: usize = 50;
    let s = setup(&[BIG, SMALL, SMALL, SMALL, SMALL]).await;
    let big = s.companies[0].clone();
    let total = BIG + 4 * SMALL;
    let started = Instant::now();
    let created = s
        .api
        .post(
            &s.server.base,
            "/backfills",
            json!({"target_workflow_id": s.workflow, "filter_spec": all_tickets(),
                "max_in_flight": 20, "max_in_flight_per_company": 5}),
        )
        .await;
    let b = &created["data"]["backfill"];
    assert_eq!(b["max_in_flight_per_company"], 5, "{b}");
    let id = b["id"].as_str().unwrap().to_owned();

    let done = s
        .api
        .wait_backfill(&s.server.base, &id, Duration::from_secs(100), |b| {
            b["state"] != "RUNNING"
        })
        .await;
    let elapsed = started.elapsed();
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(done["succeeded_count"], total, "{done}");
    assert_eq!(done["failed_count"], 0, "{done}");
    s.api.assert_counters_exact(&s.server.base, &id).await;

    let ran = s.rx.done();
    let counts = per_company(&ran);
    assert_eq!(ran.len(), total, "every ticket ran once: {counts:?}");
    for (i, c) in s.companies.iter().enumerate() {
        let want = if i == 0 { BIG } else { SMALL };
        assert_eq!(counts.get(c), Some(&want), "company {c}: {counts:?}");
    }
    // When the last small company's last entity had run, how far the big one was.
    let last_small = ran.iter().rposition(|r| r.company != big).unwrap();
    let big_then = ran[..last_small]
        .iter()
        .filter(|r| r.company == big)
        .count();
    let f = s.rx.flight.lock().unwrap();
    let max_big = f.max[&big];
    let max_small = s.companies[1..].iter().map(|c| f.max[c]).max().unwrap();
    eprintln!(
        "fairness: the last small company finished at entity {} of {total}, when {big_then} of \
         the big company's {BIG} had run; at once at most {max_big} of the big company, {max_small} \
         of a small one, {} in all; the backfill completed in {elapsed:?}",
        last_small + 1,
        f.max_total
    );
    assert!(
        big_then < BIG / 5,
        "the small companies finished after the big one was {big_then} of {BIG} done"
    );
    for (c, m) in &f.max {
        assert!(*m <= 5, "company {c} had {m} entities in flight at once");
    }
    assert_eq!(max_big, 5, "the big company ran at its cap");
    assert!(f.max_total <= 20, "{} in flight at once", f.max_total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_in_blackout_runs_nothing_until_it_ends_then_completes() {
    let s = setup(&[200, 50, 50, 50, 50]).await;
    let held = s.companies[1].clone();
    let others = 200 + 3 * 50;

    // A weekly blackout, in UTC, on the weekday of its start: from a minute ago until 25 s
    // from now, to the second (windows take `HH:MM:SS`, so no rounding to a minute: the end is
    // `now + 25` whole seconds, between 24 and 25 s away). The other 350 entities take about
    // 2 s, so they complete well inside it. A window that wraps past midnight (23:59:40 to
    // 00:00:05) belongs to its start's day, which is why the day is the start's.
    let now = Timestamp::now().as_second();
    let start = Timestamp::from_second(now - 60).unwrap();
    let end = Timestamp::from_second(now + 25).unwrap();
    let utc = |t: Timestamp| t.to_zoned(TimeZone::UTC);
    let day = utc(start).strftime("%A").to_string().to_lowercase();
    let window = json!({"run_start_time": utc(start).strftime("%H:%M:%S").to_string(),
        "run_end_time": utc(end).strftime("%H:%M:%S").to_string()});
    let blackouts = json!({ held.clone(): {"weekly": { day.clone(): [window] }} });
    let created = s
        .api
        .post(
            &s.server.base,
            "/backfills",
            json!({"target_workflow_id": s.workflow, "filter_spec": all_tickets(),
                "timezone": "UTC", "max_in_flight": 20, "max_in_flight_per_company": 5,
                "company_blackouts": blackouts}),
        )
        .await;
    let b = &created["data"]["backfill"];
    assert_eq!(b["company_blackouts"], blackouts, "{b}");
    assert_eq!(b["held_companies"], json!([held]), "{b}");
    let id = b["id"].as_str().unwrap().to_owned();
    let path = format!("/backfills/{id}");

    // While it is held: none of its entities reaches the receiver, the others complete.
    let mut others_done_while_held = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Counted before the read: a read naming the company means the blackout held all
        // along until then.
        let reached = s.rx.reached(&held);
        let b = s.api.get(&s.server.base, &path).await["data"].clone();
        assert_eq!(b["failed_count"], 0, "{b}");
        if b["held_companies"] != json!([held]) {
            assert_eq!(b["held_companies"], json!([]), "{b}");
            assert!(Timestamp::now() >= end, "released before {end}: {b}");
            break;
        }
        assert_eq!(
            reached, 0,
            "{reached} entities of company {held} ran during its blackout: {b}"
        );
        if b["succeeded_count"] == others && others_done_while_held.is_none() {
            assert_eq!(b["state"], "RUNNING", "{b}");
            assert_eq!(b["pending_count"], 50, "{b}");
            assert_eq!(b["in_flight_count"], 0, "{b}");
            others_done_while_held = Some(Timestamp::now());
        }
        assert!(Instant::now() < deadline, "still held: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let others_done = others_done_while_held.unwrap_or_else(|| {
        panic!(
            "the other companies did not complete during the blackout (until {end}); ran: {:?}",
            per_company(&s.rx.done())
        )
    });

    // After it: its entities run, all of them, and the backfill completes without a failure.
    let done = s
        .api
        .wait_backfill(&s.server.base, &id, Duration::from_secs(60), |b| {
            b["state"] != "RUNNING"
        })
        .await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    assert_eq!(done["succeeded_count"], others + 50, "{done}");
    assert_eq!(done["failed_count"], 0, "{done}");
    assert_eq!(done["held_companies"], json!([]), "{done}");
    s.api.assert_counters_exact(&s.server.base, &id).await;
    let ran = s.rx.done();
    let counts = per_company(&ran);
    assert_eq!(ran.len(), others + 50, "every ticket ran once: {counts:?}");
    assert_eq!(counts.get(&held), Some(&50), "{counts:?}");
    let held_runs: Vec<Timestamp> = ran
        .iter()
        .filter(|r| r.company == held)
        .map(|r| r.started)
        .collect();
    let first = *held_runs.iter().min().unwrap();
    let last = *held_runs.iter().max().unwrap();
    eprintln!(
        "blackout until {end}: the others completed at {others_done}; company {held}'s 50 \
         entities ran from {first} ({} ms after the end) to {last}",
        first.duration_since(end).as_millis()
    );
    assert!(
        first >= end,
        "company {held} ran at {first}, before its blackout ended at {end}"
    );
}
