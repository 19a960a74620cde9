//! Property over real HTTP: for random filter trees over the simulator's seeded data set, the
//! rows a connector returns from psa-sim (native query evaluated by the simulator's own
//! ConnectWise `conditions` / Autotask `filter` interpreter / Halo parameters, then the residual
//! here) are
//! exactly the rows the reference evaluator ([`super::eval::matches`]) selects from the same
//! data, in ascending id order.

use std::sync::OnceLock;

use neo_domain::backfill::EntityType;
use neo_domain::filter::Group;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use psa_sim::{Dataset, SimConfig, SimHandle};
use serde_json::{json, Value};

use super::eval::{matches, EvalContext};
use super::proptests::{parse_tree, tree_strategy};
use crate::client::{Cursor, PsaClient};
use crate::fuzzing::{dt, FieldGen, Kind};
use crate::http::HttpPolicy;
use crate::Psa;

const SEED: u64 = 42;
const TICKETS: usize = 1_500;
const CASES: u32 = 96;

/// The simulator's data set (the simulator generates the same one from the same seed).
fn data() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| Dataset::generate(SEED, TICKETS))
}

/// Every 97th ticket: values that occur in the data.
fn sample() -> impl Iterator<Item = &'static psa_sim::Ticket> {
    data().tickets.iter().step_by(97)
}

fn ids() -> Vec<Value> {
    let mut v: Vec<Value> = sample().map(|t| json!(t.id)).collect();
    v.push(json!(0));
    v
}

fn dates_of(f: fn(&psa_sim::Ticket) -> jiff::Timestamp) -> Vec<Value> {
    let mut v: Vec<Value> = sample().take(6).map(|t| dt(&f(t).to_string())).collect();
    v.push(dt("2026-01-01T00:00:00Z"));
    v.push(dt("2025-06-30T12:00:00.5Z"));
    v
}

fn created() -> Vec<Value> {
    dates_of(|t| t.date_entered)
}

fn updated() -> Vec<Value> {
    dates_of(|t| t.last_updated)
}

fn bools() -> Vec<Value> {
    vec![json!(true), json!(false)]
}

fn companies() -> Vec<Value> {
    let c = &data().companies;
    vec![
        json!(c[0].id),
        json!(c[1].id),
        json!(c[0].name),
        json!(c[2].identifier),
    ]
}

fn statuses() -> Vec<Value> {
    let mut v: Vec<Value> = data().statuses.iter().map(|s| json!(s.id)).collect();
    v.push(json!(data().statuses[0].name));
    v
}

fn priorities() -> Vec<Value> {
    let p = &data().priorities;
    vec![json!(p[0].id), json!(p[1].id), json!(p[2].name)]
}

fn boards() -> Vec<Value> {
    let b = &data().boards;
    vec![
        json!(b[0].id),
        json!(b[1].id),
        json!(b[0].name),
        json!("help desk"),
    ]
}

fn board_names() -> Vec<Value> {
    let b = &data().boards;
    vec![
        json!(b[0].name),
        json!(b[1].name),
        json!("desk"),
        json!("HELP"),
    ]
}

fn members() -> Vec<Value> {
    let m = &data().members;
    vec![json!(m[0].id), json!(m[1].id), json!(m[0].identifier)]
}

/// Words and fragments of real summaries, in mixed case.
fn words() -> Vec<Value> {
    let mut v: Vec<Value> = sample()
        .take(4)
        .filter_map(|t| t.summary.split_whitespace().next().map(str::to_owned))
        .collect::<Vec<_>>()
        .into_iter()
        .map(Value::String)
        .collect();
    v.push(json!("VPN"));
    v.push(json!("printer"));
    v.push(json!("e"));
    v
}

fn regions() -> Vec<Value> {
    vec![json!("West"), json!("east"), json!("st"), json!("North")]
}

fn ticket_numbers() -> Vec<Value> {
    let mut v: Vec<Value> = sample().take(3).map(|t| json!(t.ticket_number)).collect();
    v.push(json!("T2025"));
    v
}

macro_rules! field {
    ($name:expr, $kind:ident, $pool:expr) => {
        FieldGen {
            name: $name,
            kind: Kind::$kind,
            pool: $pool,
        }
    };
}

const CONNECTWISE: &[FieldGen] = &[
    field!("$id", Number, ids),
    field!("$created", DateTime, created),
    field!("$updated", DateTime, updated),
    field!("$closed", Bool, bools),
    field!("$company", NameOrId, companies),
    field!("$status", NameOrId, statuses),
    field!("$priority", NameOrId, priorities),
    field!("$queue", NameOrId, boards),
    field!("$assignee", NameOrId, members),
    field!("summary", Text, words),
    field!("board/name", Text, board_names),
    field!("closedFlag", Bool, bools),
    field!("custom:Region", Any, regions),
];

const AUTOTASK: &[FieldGen] = &[
    field!("$id", Number, ids),
    field!("$created", DateTime, created),
    field!("$updated", DateTime, updated),
    field!("$closed", Bool, bools),
    field!("$company", NameOrId, companies),
    field!("$status", NameOrId, statuses),
    field!("$priority", NameOrId, priorities),
    field!("$queue", NameOrId, boards),
    field!("$assignee", NameOrId, members),
    field!("title", Text, words),
    field!("ticketNumber", Text, ticket_numbers),
    field!("serviceLevelAgreementHasBeenMet", Bool, bools),
    field!("custom:Region", Any, regions),
];

async fn connect(sim: &SimHandle, psa: Psa) -> PsaClient {
    let (config, secrets) = sim.integration(psa.as_str());
    PsaClient::connect(
        psa.as_str(),
        &config,
        &secrets,
        neo_egress::Egress::new(neo_egress::EgressPolicy::new(true)),
        HttpPolicy::default(),
    )
    .await
    .expect("connect to psa-sim")
}

/// Every matching id, page after page.
async fn enumerate(client: &PsaClient, root: &Group) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    let mut after = Cursor::default();
    loop {
        let page = client
            .page(EntityType::Ticket, root, &after)
            .await
            .map_err(|e| e.to_string())?;
        out.extend(page.rows.iter().map(|r| r.id as u64));
        match page.next {
            Some(next) if !page.exhausted => after = next,
            _ => return Ok(out),
        }
    }
}

fn equivalence(psa: Psa, fields: &'static [FieldGen], json_of: fn(&psa_sim::Ticket) -> Value) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sim, client) = rt.block_on(async {
        let sim = psa_sim::spawn(SimConfig {
            seed: SEED,
            tickets: TICKETS,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let mut limits = sim.limits();
        limits.cw_rate_limit = None;
        limits.halo_rate_limit = None;
        sim.set_limits(limits);
        let client = connect(&sim, psa).await;
        (sim, client)
    });
    assert_eq!(sim.tickets(), data().tickets, "the simulator's data set");
    let rows: Vec<(u64, Value)> = data().tickets.iter().map(|t| (t.id, json_of(t))).collect();
    let ctx = EvalContext::default();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let non_trivial = std::cell::Cell::new(0u32);
    runner
        .run(&tree_strategy(fields), |conditions| {
            let root = parse_tree(&conditions, psa);
            let want: Vec<u64> = rows
                .iter()
                .filter(|(_, row)| matches(&root, row, super::tickets(psa), &ctx))
                .map(|(id, _)| *id)
                .collect();
            if !want.is_empty() && want.len() < rows.len() {
                non_trivial.set(non_trivial.get() + 1);
            }
            let got = rt
                .block_on(enumerate(&client, &root))
                .map_err(|e| TestCaseError::fail(format!("{conditions}: {e}")))?;
            if got != want {
                return Err(TestCaseError::fail(format!(
                    "{conditions}: the connector returned {} rows, the reference {}",
                    got.len(),
                    want.len()
                )));
            }
            Ok(())
        })
        .unwrap();
    // The generator must exercise selective filters, not only "all" or "none".
    let n = non_trivial.get();
    assert!(n >= CASES / 4, "{n} selective trees");
}

const HALO: &[FieldGen] = &[
    field!("$id", Number, ids),
    field!("$created", DateTime, created),
    field!("$updated", DateTime, updated),
    field!("$closed", Bool, bools),
    field!("$company", NameOrId, companies),
    field!("$status", NameOrId, statuses),
    field!("$assignee", NameOrId, members),
    field!("summary", Text, words),
    field!("team", Text, board_names),
    field!("custom:Region", Any, regions),
];

#[test]
fn connectwise_rows_from_the_simulator_equal_the_reference() {
    equivalence(Psa::ConnectWise, CONNECTWISE, psa_sim::cw_json);
}

#[test]
fn autotask_rows_from_the_simulator_equal_the_reference() {
    equivalence(Psa::Autotask, AUTOTASK, psa_sim::at_json);
}

#[test]
fn halo_rows_from_the_simulator_equal_the_reference() {
    equivalence(Psa::Halo, HALO, psa_sim::halo_json);
}
