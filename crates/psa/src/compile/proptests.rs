//! Property: for random trees over fixed rows, `native(row) ∧ residual(row) ≡ matches(root, row)`.
//!
//! The native side is evaluated here by small interpreters of the Autotask `filter` JSON and
//! of the Halo parameters, written from PSA.md (§2.4, §3) with the comparison semantics of
//! [`super::eval`]. ConnectWise is not covered: evaluating `conditions` needs a parser of the
//! string grammar, which the simulator (`psa-sim`) provides; its equivalence test belongs
//! there.

use neo_domain::backfill::EntityType;
use neo_domain::filter::{parse, FilterSpec, Group, Operand, Operator, Scalar};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use super::eval::{self, matches, EvalContext};
use super::{catalogue, compile_autotask, compile_halo};
use crate::Psa;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Number,
    DateTime,
    Bool,
    Text,
    /// An alias taking an id or a name.
    NameOrId,
    /// A custom field: anything.
    Any,
}

pub(super) struct FieldGen {
    /// `$alias`, a native field, or `custom:Caption`.
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) pool: fn() -> Vec<Value>,
}

pub(super) fn dt(s: &str) -> Value {
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

const AUTOTASK_FIELDS: &[FieldGen] = &[
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

const HALO_FIELDS: &[FieldGen] = &[
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

const OPERATORS: &[&str] = &[
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "notIn",
    "between",
    "contains",
    "doesNotContain",
    "beginsWith",
    "endsWith",
    "null",
    "notNull",
];

/// A valid rule for `f`, from raw choices: the operator (modulo the ones `f` takes) and value
/// picks into the field's pool.
fn rule(f: &FieldGen, op: usize, picks: &[Index]) -> Value {
    let pool = (f.pool)();
    let strings: Vec<Value> = pool.iter().filter(|v| v.is_string()).cloned().collect();
    let orderable: Vec<Value> = pool.iter().filter(|v| !v.is_boolean()).cloned().collect();
    let allowed: Vec<&str> = OPERATORS
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
    let pick = |from: &[Value], i: usize| picks[i % picks.len()].get(from).clone();
    let value = match op {
        "null" | "notNull" => Value::Null,
        "in" | "notIn" => Value::Array(picks.iter().map(|i| i.get(&pool).clone()).collect()),
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

pub(super) fn tree_strategy(fields: &'static [FieldGen]) -> impl Strategy<Value = Value> {
    let leaf = (
        0..fields.len(),
        any::<usize>(),
        prop::collection::vec(any::<Index>(), 1..4),
    )
        .prop_map(move |(f, op, picks)| rule(&fields[f], op, &picks));
    let node = leaf.prop_recursive(3, 24, 4, |inner| {
        (any::<bool>(), prop::collection::vec(inner, 1..4)).prop_map(
            |(and, rules)| json!({"combinator": if and { "and" } else { "or" }, "rules": rules}),
        )
    });
    (any::<bool>(), prop::collection::vec(node, 1..5)).prop_map(
        |(and, rules)| json!({"combinator": if and { "and" } else { "or" }, "rules": rules}),
    )
}

pub(super) fn parse_tree(conditions: &Value, psa: Psa) -> Group {
    let now = "2026-11-28T21:07:35Z".parse().expect("instant");
    let cat = catalogue(psa, EntityType::Ticket);
    match parse(&json!({ "conditions": conditions }), now, cat) {
        Ok((FilterSpec::Query { root, .. }, _)) => root,
        other => panic!("generated an invalid tree {conditions}: {other:?}"),
    }
}

fn autotask_rows() -> Vec<Value> {
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

fn halo_rows() -> Vec<Value> {
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
fn autotask_native(c: &Value, row: &Value) -> bool {
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
fn halo_native(params: &[(String, String)], row: &Value) -> bool {
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn autotask_native_and_residual_is_the_tree(conditions in tree_strategy(AUTOTASK_FIELDS)) {
        let root = parse_tree(&conditions, Psa::Autotask);
        let ctx = EvalContext { complete_status_ids: vec![5, 8] };
        let plan = compile_autotask(&root, EntityType::Ticket, &ctx.complete_status_ids).unwrap();
        let udfs = plan.native.filter.iter().filter(|c| c.get("udf").is_some()).count();
        prop_assert!(udfs <= 1);
        for row in autotask_rows() {
            let native = plan.native.filter.iter().all(|c| autotask_native(c, &row));
            let residual = plan.residual.as_ref().is_none_or(|r| matches(r, &row, Psa::Autotask, &ctx));
            prop_assert_eq!(
                native && residual,
                matches(&root, &row, Psa::Autotask, &ctx),
                "row {} filter {:?} residual {:?}", row["id"], plan.native.filter, plan.residual
            );
        }
    }

    #[test]
    fn halo_native_and_residual_is_the_tree(conditions in tree_strategy(HALO_FIELDS)) {
        let root = parse_tree(&conditions, Psa::Halo);
        let ctx = EvalContext::default();
        let plan = compile_halo(&root, EntityType::Ticket).unwrap();
        for row in halo_rows() {
            let native = halo_native(&plan.native.params, &row);
            let residual = plan.residual.as_ref().is_none_or(|r| matches(r, &row, Psa::Halo, &ctx));
            prop_assert_eq!(
                native && residual,
                matches(&root, &row, Psa::Halo, &ctx),
                "row {} params {:?} residual {:?}", row["id"], plan.native.params, plan.residual
            );
        }
    }
}
