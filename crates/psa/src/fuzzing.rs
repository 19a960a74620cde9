//! Bodies of the fuzz targets over this crate (`fuzz/fuzz_targets/`), replayed on the committed
//! corpora by the normal test suite (`crates/neo-backfill/tests/fuzz_corpus.rs`), so the two cannot
//! drift; and the filter generator, rows and native-query interpreters that the property tests
//! (`compile/proptests.rs`, `compile/sim_equivalence.rs`) share with them.

use arbitrary::Unstructured;
use jiff::Timestamp;
use neo_domain::backfill::EntityType;
use neo_domain::filter::{self, FilterSpec, Group, Operand, Operator, Scalar};
use serde_json::{json, Value};

use crate::compile::eval::{self, matches, EvalContext};
use crate::compile::{
    catalogue, compile_autotask, compile_connectwise, compile_halo, table, tickets, CompileError,
};
use crate::Psa;

// ---- the filter generator ------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Number,
    DateTime,
    Bool,
    Text,
    /// An alias taking an id or a name.
    NameOrId,
    /// A custom field: anything.
    Any,
}

pub struct FieldGen {
    /// `$alias`, a native field, or `custom:Caption`.
    pub name: &'static str,
    pub kind: Kind,
    pub pool: fn() -> Vec<Value>,
}

pub fn dt(s: &str) -> Value {
    json!({ "$datetime": s })
}

fn dates() -> Vec<Value> {
    vec![
        dt("2026-04-01T00:00:00Z"),
        dt("2026-04-01T00:00:00.5Z"),
        dt("2026-05-01T12:00:00Z"),
        dt("2025-12-31T23:59:59Z"),
    ]
}

fn texts() -> Vec<Value> {
    vec![
        json!("VPN down"),
        json!("vpn"),
        json!("Printer"),
        json!("printer on FIRE"),
        json!("a_b"),
        json!("Ärger"),
    ]
}

pub const AUTOTASK_FIELDS: &[FieldGen] = &[
    FieldGen {
        name: "$id",
        kind: Kind::Number,
        pool: || vec![json!(1), json!(3), json!(5), json!(8)],
    },
    FieldGen {
        name: "$created",
        kind: Kind::DateTime,
        pool: dates,
    },
    FieldGen {
        name: "$updated",
        kind: Kind::DateTime,
        pool: dates,
    },
    FieldGen {
        name: "dueDateTime",
        kind: Kind::DateTime,
        pool: dates,
    },
    FieldGen {
        name: "$closed",
        kind: Kind::Bool,
        pool: || vec![json!(true), json!(false)],
    },
    FieldGen {
        name: "$company",
        kind: Kind::NameOrId,
        pool: || vec![json!(174), json!(175), json!("Acme")],
    },
    FieldGen {
        name: "$status",
        kind: Kind::NameOrId,
        pool: || vec![json!(1), json!(5), json!(8), json!(10), json!("New")],
    },
    FieldGen {
        name: "$priority",
        kind: Kind::NameOrId,
        pool: || vec![json!(1), json!(2), json!(3)],
    },
    FieldGen {
        name: "$queue",
        kind: Kind::NameOrId,
        pool: || vec![json!(7), json!(9)],
    },
    FieldGen {
        name: "$assignee",
        kind: Kind::NameOrId,
        pool: || vec![json!(10), json!(11), json!("jdoe")],
    },
    FieldGen {
        name: "title",
        kind: Kind::Text,
        pool: texts,
    },
    FieldGen {
        name: "TicketNumber",
        kind: Kind::Text,
        pool: || vec![json!("T1"), json!("t2"), json!("T")],
    },
    FieldGen {
        name: "custom:Region",
        kind: Kind::Any,
        pool: || vec![json!("West"), json!("east"), json!("st"), json!(3)],
    },
    FieldGen {
        name: "custom:Seats",
        kind: Kind::Any,
        pool: || vec![json!(5), json!(12), json!("12"), json!("x")],
    },
];

pub const HALO_FIELDS: &[FieldGen] = &[
    FieldGen {
        name: "$id",
        kind: Kind::Number,
        pool: || vec![json!(1), json!(3), json!(5)],
    },
    FieldGen {
        name: "$created",
        kind: Kind::DateTime,
        pool: dates,
    },
    FieldGen {
        name: "$updated",
        kind: Kind::DateTime,
        pool: dates,
    },
    FieldGen {
        name: "$closed",
        kind: Kind::Bool,
        pool: || vec![json!(true), json!(false)],
    },
    FieldGen {
        name: "$company",
        kind: Kind::NameOrId,
        pool: || vec![json!(3), json!(4), json!(0), json!("acme")],
    },
    FieldGen {
        name: "$status",
        kind: Kind::NameOrId,
        pool: || vec![json!(1), json!(2), json!("New")],
    },
    FieldGen {
        name: "$queue",
        kind: Kind::NameOrId,
        pool: || vec![json!("Service Desk"), json!(1)],
    },
    FieldGen {
        name: "$assignee",
        kind: Kind::NameOrId,
        pool: || vec![json!(4), json!(5)],
    },
    FieldGen {
        name: "summary",
        kind: Kind::Text,
        pool: texts,
    },
    FieldGen {
        name: "custom:Region",
        kind: Kind::Any,
        pool: || vec![json!("West"), json!("east")],
    },
];

/// A valid rule for `f`, from raw choices: the operator (modulo the ones `f` takes) and value
/// picks into the field's pool.
pub fn rule(f: &FieldGen, op: usize, picks: &[usize]) -> Value {
    let pool = (f.pool)();
    let strings: Vec<Value> = pool.iter().filter(|v| v.is_string()).cloned().collect();
    let orderable: Vec<Value> = pool.iter().filter(|v| !v.is_boolean()).cloned().collect();
    let allowed: Vec<&str> = neo_domain::filter::Operator::NAMES
        .iter()
        .copied()
        .filter(|op| match *op {
            "<" | "<=" | ">" | ">=" | "between" => f.kind != Kind::Bool && !orderable.is_empty(),
            "contains" | "doesNotContain" | "beginsWith" | "endsWith" => {
                matches!(f.kind, Kind::Text | Kind::NameOrId | Kind::Any) && !strings.is_empty()
            }
            _ => true,
        })
        .collect();
    let op = allowed[op % allowed.len()];
    let pick = |from: &[Value], i: usize| from[picks[i % picks.len()] % from.len()].clone();
    let value = match op {
        "null" | "notNull" => Value::Null,
        "in" | "notIn" => {
            Value::Array(picks.iter().map(|i| pool[i % pool.len()].clone()).collect())
        }
        "between" => {
            // Two values of one type.
            let a = pick(&orderable, 0);
            let same: Vec<Value> = orderable
                .iter()
                .filter(|v| std::mem::discriminant(*v) == std::mem::discriminant(&a))
                .cloned()
                .collect();
            json!([a, pick(&same, 1)])
        }
        "<" | "<=" | ">" | ">=" => pick(&orderable, 0),
        "contains" | "doesNotContain" | "beginsWith" | "endsWith" => pick(&strings, 0),
        _ => pick(&pool, 0),
    };
    let mut r = match f.name.strip_prefix("custom:") {
        Some(c) => json!({"custom_field": c, "operator": op}),
        None => json!({"field": f.name, "operator": op}),
    };
    if !value.is_null() {
        r["value"] = value;
    }
    r
}

/// ConnectWise fields for the fuzzer's generated trees (values of [`cw_rows`]).
pub const CONNECTWISE_FIELDS: &[FieldGen] = &[
    FieldGen {
        name: "$id",
        kind: Kind::Number,
        pool: || vec![json!(1), json!(3), json!(5)],
    },
    FieldGen {
        name: "$created",
        kind: Kind::DateTime,
        pool: dates,
    },
    FieldGen {
        name: "$updated",
        kind: Kind::DateTime,
        pool: dates,
    },
    FieldGen {
        name: "$closed",
        kind: Kind::Bool,
        pool: || vec![json!(true), json!(false)],
    },
    FieldGen {
        name: "$company",
        kind: Kind::NameOrId,
        pool: || vec![json!(174), json!("Acme"), json!("a*b")],
    },
    FieldGen {
        name: "$status",
        kind: Kind::NameOrId,
        pool: || vec![json!(1), json!("New"), json!("50% done")],
    },
    FieldGen {
        name: "$queue",
        kind: Kind::NameOrId,
        pool: || vec![json!("Help Desk"), json!(2)],
    },
    FieldGen {
        name: "summary",
        kind: Kind::Text,
        pool: || {
            let mut v = texts();
            v.extend([json!("say \"hi\""), json!("it's"), json!("[x]")]);
            v
        },
    },
    FieldGen {
        name: "board/name",
        kind: Kind::Text,
        pool: || vec![json!("Help Desk"), json!("help")],
    },
    FieldGen {
        name: "budgetHours",
        kind: Kind::Number,
        pool: || vec![json!(1.5), json!(2), json!(1e3)],
    },
    FieldGen {
        name: "custom:Region",
        kind: Kind::Any,
        pool: || vec![json!("West"), json!("east"), json!(3)],
    },
];

// ---- rows and native-query interpreters -----------------------------------------------------

/// ConnectWise ticket rows (docs/psa.md §1.10) for the residual checks.
pub fn cw_rows() -> Vec<Value> {
    vec![
        json!({"id": 1, "summary": "VPN down", "board": {"id": 2, "name": "Help Desk"},
               "status": {"id": 1, "name": "New"}, "company": {"id": 174, "identifier": "Acme", "name": "Acme"},
               "closedFlag": false, "budgetHours": 1.5,
               "_info": {"dateEntered": "2026-04-01T00:00:00Z", "lastUpdated": "2026-05-01T12:00:00Z"},
               "customFields": [{"caption": "Region", "value": "West"}]}),
        json!({"id": 3, "summary": "say \"hi\" it's [x]", "board": {"id": 3, "name": "Projects"},
               "status": {"id": 5, "name": "50% done"}, "company": null, "closedFlag": true,
               "_info": {"dateEntered": "2026-04-01T00:00:00.5Z", "lastUpdated": null},
               "customFields": [{"caption": "region", "value": 3}]}),
        json!({"id": 5, "summary": null, "closedFlag": null, "budgetHours": 1000,
               "_info": {"dateEntered": "2025-12-31T23:59:59Z"}}),
    ]
}

pub fn autotask_rows() -> Vec<Value> {
    vec![
        json!({"id": 1, "title": "VPN down", "ticketNumber": "T1", "status": 1, "priority": 1, "queueID": 7,
               "companyID": 174, "assignedResourceID": 10, "createDate": "2026-04-01T00:00:00.000Z",
               "lastActivityDate": "2026-05-01T12:00:00.000Z", "dueDateTime": null,
               "userDefinedFields": [{"name": "Region", "value": "West"}, {"name": "Seats", "value": "12"}]}),
        json!({"id": 3, "title": "printer on fire", "ticketNumber": "t2", "status": 5, "priority": 2, "queueID": 9,
               "companyID": 175, "assignedResourceID": null, "createDate": "2026-04-01T00:00:00.250Z",
               "lastActivityDate": "2026-04-01T00:00:00.750Z", "dueDateTime": "2026-04-01T00:00:00Z",
               "userDefinedFields": [{"name": "region", "value": null}, {"name": "Seats", "value": "x"}]}),
        json!({"id": 5, "title": "A_B", "ticketNumber": "T", "status": 8, "priority": 3, "queueID": 7,
               "companyID": null, "assignedResourceID": 11, "createDate": "2025-12-31T23:59:59.000Z",
               "lastActivityDate": "2026-04-01T00:00:00.500Z", "dueDateTime": "2025-12-31T23:59:59.999Z",
               "userDefinedFields": []}),
        json!({"id": 8, "title": "ärger mit vpn", "status": 10, "priority": 1, "queueID": 9,
               "companyID": 174, "assignedResourceID": 10, "createDate": "2026-05-01T12:00:00Z",
               "lastActivityDate": null, "dueDateTime": "2026-05-01T12:00:00.000Z",
               "userDefinedFields": [{"name": "Seats", "value": "5"}, {"name": "Region", "value": "East"}]}),
        json!({"id": 9, "title": null, "ticketNumber": "T9", "status": null, "priority": 2,
               "companyID": 176, "createDate": "2026-04-15T00:00:00.000Z"}),
        json!({"id": 10, "title": "Printer", "ticketNumber": "T10", "status": 5, "priority": 3, "queueID": 7,
               "companyID": 174, "assignedResourceID": 10, "createDate": "2026-04-01T00:00:01.000Z",
               "lastActivityDate": "2026-03-31T23:59:59.000Z", "dueDateTime": "2026-04-01T00:00:00.500Z",
               "userDefinedFields": [{"name": "Region", "value": "west"}, {"name": "Seats", "value": 3}]}),
    ]
}

pub fn halo_rows() -> Vec<Value> {
    vec![
        json!({"id": 1, "summary": "VPN down", "client_id": 3, "client_name": "Acme", "status_id": 1,
               "priority_id": 1, "team": "Service Desk", "agent_id": 4, "hasbeenclosed": false,
               "dateoccurred": "2026-04-01T00:00:00", "lastactiondate": "2026-05-01T12:00:00",
               "customfields": [{"name": "Region", "value": "West"}]}),
        json!({"id": 3, "summary": "printer on fire", "client_id": 4, "client_name": "Other", "status_id": 2,
               "team": "Projects", "agent_id": 5, "hasbeenclosed": true,
               "dateoccurred": "2026-04-01T00:00:00.5", "lastactiondate": null}),
        json!({"id": 5, "summary": "a_b", "client_id": 3, "client_name": "ACME", "status_id": 9,
               "team": null, "agent_id": null, "hasbeenclosed": false,
               "dateoccurred": "2026-05-01T12:00:00Z", "customfields": [{"name": "region", "value": "east"}]}),
        json!({"id": 7, "summary": null, "client_id": null, "status_id": 1, "hasbeenclosed": null,
               "dateoccurred": "2025-12-31T23:59:59"}),
        json!({"id": 9, "summary": "Ärger", "client_id": 4, "status_id": 2, "agent_id": 4,
               "hasbeenclosed": true, "dateoccurred": "2026-04-01T00:00:01Z"}),
    ]
}

/// A JSON literal of a native query back as a rule value (datetimes are recognised by form).
fn scalar(v: &Value) -> Scalar {
    match v {
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => Scalar::Number(n.clone()),
        Value::String(s) if s.len() == 20 && s.ends_with('Z') => match s.parse() {
            Ok(t) => Scalar::DateTime(t),
            Err(_) => Scalar::String(s.clone()),
        },
        Value::String(s) => Scalar::String(s.clone()),
        other => panic!("not a literal: {other}"),
    }
}

/// Evaluates one Autotask filter node on a row.
pub fn autotask_native(c: &Value, row: &Value) -> bool {
    let op = c["op"].as_str().expect("op");
    let items = || c["items"].as_array().expect("items").iter();
    let operator = match op {
        "and" => return items().all(|i| autotask_native(i, row)),
        "or" => return items().any(|i| autotask_native(i, row)),
        "eq" => Operator::Eq,
        "noteq" => Operator::Ne,
        "lt" => Operator::Lt,
        "lte" => Operator::Le,
        "gt" => Operator::Gt,
        "gte" => Operator::Ge,
        "in" => Operator::In,
        "notIn" => Operator::NotIn,
        "contains" => Operator::Contains,
        "beginsWith" => Operator::BeginsWith,
        "endsWith" => Operator::EndsWith,
        "exist" => Operator::NotNull,
        "notExist" => Operator::Null,
        other => panic!("unknown Autotask operator {other}"),
    };
    let operand = match c.get("value") {
        None => Operand::None,
        Some(Value::Array(xs)) => Operand::List(xs.iter().map(scalar).collect()),
        Some(v) => Operand::One(scalar(v)),
    };
    let field = c["field"].as_str().expect("field");
    // A UDF is a column of the ticket: its entry's value (rows have one entry per name).
    let value = if c.get("udf") == Some(&Value::Bool(true)) {
        eval::custom_values(row, Psa::Autotask, field)
            .next()
            .flatten()
    } else {
        eval::field(row, Psa::Autotask, field)
    };
    eval::test(value, operator, &operand)
}

/// Evaluates Halo parameters on a row.
pub fn halo_native(params: &[(String, String)], row: &Value) -> bool {
    params.iter().all(|(k, v)| {
        let (field, op, value) = match k.as_str() {
            "datesearch" => {
                assert_eq!(v, "dateoccurred");
                return true;
            }
            "open_only" => ("hasbeenclosed", Operator::Eq, Scalar::Bool(false)),
            "closed_only" => ("hasbeenclosed", Operator::Eq, Scalar::Bool(true)),
            "client_id" | "status_id" | "agent_id" => (
                k.as_str(),
                Operator::Eq,
                Scalar::Number(v.parse::<u64>().expect("id").into()),
            ),
            "startdate" => (
                "dateoccurred",
                Operator::Ge,
                Scalar::DateTime(v.parse().expect("date")),
            ),
            "enddate" => (
                "dateoccurred",
                Operator::Le,
                Scalar::DateTime(v.parse().expect("date")),
            ),
            other => panic!("parameter {other} is not on the allowlist"),
        };
        eval::test(row.get(field), op, &Operand::One(value))
    })
}

// ---- the `filter_spec` target ---------------------------------------------------------------

/// The creation instant the fuzzer parses against (`$ago` resolves relative to it).
const NOW: &str = "2026-11-28T21:07:35Z";

/// `filter_spec`: the docs/api.md §5 parser and validator, then the ConnectWise, Autotask and Halo
/// compilers on whatever parses. The first byte selects the input form: even, the rest is a
/// JSON `filter_spec` (raw bytes: the parser's robustness); odd, the rest drives a generator of
/// valid-looking rule trees for one PSA (depth: the compilers and the residual semantics).
///
/// Invariants: no panic; a rejected spec names a member under `filter_spec`; the stored form of
/// an accepted spec parses back to the same tree; every compiler returns a plan for tickets and
/// a typed error for entity types without compile tables; a row matching the tree matches the
/// residual; and for Autotask and Halo, `native ∧ residual ≡ tree` on fixed rows.
pub fn filter_spec(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now: Timestamp = NOW.parse().expect("instant");
    if mode % 2 == 0 {
        let Ok(spec) = serde_json::from_slice::<Value>(rest) else {
            return;
        };
        check_spec(&spec, now, None);
        for psa in [Psa::ConnectWise, Psa::Autotask, Psa::Halo] {
            check_spec(&spec, now, Some(psa));
        }
    } else {
        let mut u = Unstructured::new(rest);
        let psa = [Psa::ConnectWise, Psa::Autotask, Psa::Halo][usize::from(mode / 2) % 3];
        let fields = match psa {
            Psa::ConnectWise => CONNECTWISE_FIELDS,
            Psa::Autotask => AUTOTASK_FIELDS,
            Psa::Halo => HALO_FIELDS,
        };
        let Ok(spec) = generated_spec(&mut u, fields) else {
            return;
        };
        check_spec(&spec, now, Some(psa));
    }
}

fn generated_spec(u: &mut Unstructured<'_>, fields: &[FieldGen]) -> arbitrary::Result<Value> {
    let mut spec = json!({ "conditions": generated_group(u, fields, 1)? });
    if u.ratio(1, 4)? {
        spec["limit"] = json!(u.int_in_range(0..=1_000_001u64)?);
    }
    Ok(spec)
}

fn generated_group(
    u: &mut Unstructured<'_>,
    fields: &[FieldGen],
    depth: usize,
) -> arbitrary::Result<Value> {
    let mut rules = Vec::new();
    for _ in 0..u.int_in_range(1..=4)? {
        if depth < 5 && u.ratio(1, 4)? {
            rules.push(generated_group(u, fields, depth + 1)?);
            continue;
        }
        let f = u.choose(fields)?;
        let op = u.arbitrary::<usize>()?;
        let picks = (0..u.int_in_range(1..=3)?)
            .map(|_| u.arbitrary::<usize>())
            .collect::<arbitrary::Result<Vec<_>>>()?;
        let mut r = rule(f, op, &picks);
        if u.ratio(1, 8)? {
            // Off the valid path: a value of any shape, to probe validation.
            r["value"] = arbitrary_value(u, 0)?;
        }
        rules.push(r);
    }
    // Mostly valid combinators; now and then a wrong one.
    let n = if u.ratio(1, 16)? { 4 } else { 2 };
    let combinator = *u.choose(&["and", "or", "AND", "xor"][..n])?;
    Ok(json!({ "combinator": combinator, "rules": rules }))
}

fn arbitrary_value(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=8)? {
        0 => Value::Null,
        1 => json!(u.arbitrary::<bool>()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => serde_json::Number::from_f64(u.arbitrary::<f64>()?).map_or(Value::Null, Value::Number),
        4 => json!(u.arbitrary::<String>()?),
        5 => json!({ "$ago": u.arbitrary::<String>()? }),
        6 => json!({ "$datetime": u.arbitrary::<String>()? }),
        _ if depth < 2 => Value::Array(
            (0..u.int_in_range(0..=3)?)
                .map(|_| arbitrary_value(u, depth + 1))
                .collect::<arbitrary::Result<_>>()?,
        ),
        _ => json!(u.arbitrary::<u64>()?),
    })
}

fn check_spec(spec: &Value, now: Timestamp, psa: Option<Psa>) {
    let cat = psa.and_then(|p| catalogue(p, EntityType::Ticket));
    let (parsed, stored) = match filter::parse(spec, now, cat) {
        Ok(ok) => ok,
        Err(e) => {
            assert!(
                e.field.starts_with("filter_spec"),
                "the error names {:?}, not a member of filter_spec",
                e.field
            );
            return;
        }
    };
    let (again, stored_again) = filter::parse(&stored, now, cat).unwrap_or_else(|e| {
        panic!("the stored form {stored} of an accepted spec is rejected: {e:?}")
    });
    assert_eq!(
        again, parsed,
        "the stored form {stored} parses to another tree"
    );
    assert_eq!(stored_again, stored, "storing the stored form changes it");
    let FilterSpec::Query { root, .. } = parsed else {
        return;
    };
    let ctx = EvalContext {
        complete_status_ids: vec![5, 8],
    };
    let cw = compile_connectwise(&root, EntityType::Ticket).expect("ConnectWise compiles tickets");
    let at = compile_autotask(&root, EntityType::Ticket, &ctx.complete_status_ids)
        .expect("Autotask compiles tickets");
    let halo = compile_halo(&root, EntityType::Ticket).expect("Halo compiles tickets");
    assert!(matches!(
        compile_connectwise(&root, EntityType::Task),
        Err(CompileError::Unsupported(_))
    ));
    assert!(matches!(
        compile_autotask(&root, EntityType::ProjectTicket, &[5]),
        Err(CompileError::Unsupported(_))
    ));
    assert!(matches!(
        compile_halo(&root, EntityType::Note),
        Err(CompileError::Unsupported(_))
    ));
    let implies_residual = |psa: Psa, residual: &Option<Group>, rows: &[Value]| {
        for row in rows {
            let cat = table(psa, EntityType::Ticket).expect("tickets");
            if matches(&root, row, cat, &ctx) {
                assert!(
                    residual.as_ref().is_none_or(|r| matches(r, row, cat, &ctx)),
                    "{}: row {} matches the tree but not the residual {residual:?}",
                    psa.as_str(),
                    row["id"]
                );
            }
        }
    };
    implies_residual(Psa::ConnectWise, &cw.residual, &cw_rows());
    implies_residual(Psa::Autotask, &at.residual, &autotask_rows());
    implies_residual(Psa::Halo, &halo.residual, &halo_rows());
    // The interpreters know the shapes compiled from catalogue fields only.
    match psa {
        Some(Psa::Autotask) => {
            assert!(
                at.native
                    .filter
                    .iter()
                    .filter(|c| c.get("udf").is_some())
                    .count()
                    <= 1
            );
            for row in autotask_rows() {
                let native = at.native.filter.iter().all(|c| autotask_native(c, &row));
                let residual = at
                    .residual
                    .as_ref()
                    .is_none_or(|r| matches(r, &row, tickets(Psa::Autotask), &ctx));
                assert_eq!(
                    native && residual,
                    matches(&root, &row, tickets(Psa::Autotask), &ctx),
                    "Autotask row {}: filter {:?} residual {:?}",
                    row["id"],
                    at.native.filter,
                    at.residual
                );
            }
        }
        Some(Psa::Halo) => {
            for row in halo_rows() {
                let native = halo_native(&halo.native.params, &row);
                let residual = halo
                    .residual
                    .as_ref()
                    .is_none_or(|r| matches(r, &row, tickets(Psa::Halo), &ctx));
                assert_eq!(
                    native && residual,
                    matches(&root, &row, tickets(Psa::Halo), &ctx),
                    "Halo row {}: params {:?} residual {:?}",
                    row["id"],
                    halo.native.params,
                    halo.residual
                );
            }
        }
        _ => {}
    }
}
