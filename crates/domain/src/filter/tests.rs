//! The filter parser's rules, case by case.

#[test]
fn a_snapshot_is_the_ids_or_the_matches_capped_by_the_limit() {
    let ids = FilterSpec::EntityIds(vec!["1".into(), "2".into()]);
    assert_eq!(ids.snapshot_size(1000), 2);
    let root = Group {
        combinator: Combinator::And,
        rules: vec![],
    };
    let capped = FilterSpec::Query {
        root: root.clone(),
        limit: Some(120),
    };
    assert_eq!(capped.snapshot_size(545), 120);
    assert_eq!(capped.snapshot_size(40), 40);
    let open = FilterSpec::Query { root, limit: None };
    assert_eq!(open.snapshot_size(545), 545);
}

#[test]
fn every_operator_name_parses_and_no_other() {
    let parsed: Vec<Operator> = Operator::NAMES
        .iter()
        .map(|n| Operator::parse(n).unwrap_or_else(|| panic!("{n} does not parse")))
        .collect();
    for (i, op) in parsed.iter().enumerate() {
        assert!(!parsed[i + 1..].contains(op), "two names for {op:?}");
    }
    assert!(Operator::parse("~").is_none());
}

use super::*;
use serde_json::json;

fn now() -> Timestamp {
    "2026-11-28T21:07:35Z".parse().unwrap()
}

fn field_of(v: Value) -> String {
    parse(&v, now(), None).unwrap_err().field
}

#[test]
fn parses_the_spec_example_and_resolves_ago() {
    let v = json!({"conditions": {"combinator": "and", "rules": [
       {"field": "$created", "operator": ">=", "value": {"$ago": "P30D"}},
       {"field": "$closed", "operator": "=", "value": false},
       {"combinator": "or", "rules": [
          {"field": "board/name", "operator": "in", "value": ["Help Desk", "Escalations"]},
          {"field": "$priority", "operator": "=", "value": 8}]},
       {"custom_field": "Region", "operator": "=", "value": "West"}]},
     "limit": 5000});
    let (spec, stored) = parse(&v, now(), None).unwrap();
    assert_eq!(
        stored["conditions"]["rules"][0]["value"],
        json!({"$datetime": "2026-10-29T21:07:35Z"})
    );
    assert_eq!(
        stored["conditions"]["rules"][2],
        v["conditions"]["rules"][2]
    );
    match spec {
        FilterSpec::Query { root, limit } => {
            assert_eq!(limit, Some(5000));
            assert_eq!(root.rules.len(), 4);
        }
        _ => panic!("query expected"),
    }
}

/// Found by the `filter_spec` fuzz target: the stored spec dropped the fraction of a
/// second, so a backfill enumerated with another bound than the one it was counted with.
#[test]
fn the_stored_spec_keeps_fractional_seconds() {
    let v = json!({"conditions": {"combinator": "and", "rules": [
       {"field": "dueDateTime", "operator": "<", "value": {"$datetime": "2026-04-01T00:00:00.5Z"}},
       {"field": "$created", "operator": "between", "value": [
           {"$datetime": "2026-04-01T02:00:00.000000001+02:00"}, {"$datetime": "2026-05-01T00:00:00Z"}]}]}});
    let (spec, stored) = parse(&v, now(), None).unwrap();
    assert_eq!(
        stored["conditions"]["rules"][0]["value"],
        json!({"$datetime": "2026-04-01T00:00:00.5Z"})
    );
    assert_eq!(
        stored["conditions"]["rules"][1]["value"],
        json!([{"$datetime": "2026-04-01T00:00:00.000000001Z"}, {"$datetime": "2026-05-01T00:00:00Z"}])
    );
    assert_eq!(parse(&stored, now(), None).unwrap(), (spec, stored));
}

#[test]
fn error_paths() {
    assert_eq!(field_of(json!([])), "filter_spec");
    assert_eq!(field_of(json!({})), "filter_spec");
    assert_eq!(field_of(json!({"x": 1})), "filter_spec.x");
    let rule = |r: Value| json!({"conditions": {"combinator": "and", "rules": [{"field": "$id", "operator": "=", "value": 1}, r]}});
    assert_eq!(
        field_of(rule(json!({"field": "$nope", "operator": "=", "value": 1}))),
        "filter_spec.conditions.rules[1].field"
    );
    assert_eq!(
        field_of(rule(json!({"field": "$id", "operator": "~", "value": 1}))),
        "filter_spec.conditions.rules[1].operator"
    );
    assert_eq!(
        field_of(rule(
            json!({"field": "$closed", "operator": "=", "value": "yes"})
        )),
        "filter_spec.conditions.rules[1].value"
    );
    assert_eq!(
        field_of(rule(
            json!({"field": "$created", "operator": ">", "value": {"$datetime": "yesterday"}})
        )),
        "filter_spec.conditions.rules[1].value"
    );
    assert_eq!(
        field_of(rule(
            json!({"field": "$status", "operator": "in", "value": vec!["a"; 501]})
        )),
        "filter_spec.conditions.rules[1].value"
    );
    assert_eq!(
        field_of(rule(
            json!({"field": "bad path!", "operator": "=", "value": 1})
        )),
        "filter_spec.conditions.rules[1].field"
    );
    assert_eq!(
        field_of(rule(json!({"combinator": "xor", "rules": []}))),
        "filter_spec.conditions.rules[1].combinator"
    );
    // depth 5
    let deep = json!({"conditions": {"combinator": "and", "rules": [
        {"combinator": "and", "rules": [{"combinator": "and", "rules": [
            {"combinator": "and", "rules": [{"combinator": "and", "rules": [
                {"field": "$id", "operator": "=", "value": 1}]}]}]}]}]}});
    assert_eq!(
        field_of(deep),
        "filter_spec.conditions.rules[0].rules[0].rules[0].rules[0]"
    );
    let many: Vec<Value> = (0..201)
        .map(|i| json!({"field": "$id", "operator": "=", "value": i}))
        .collect();
    assert_eq!(
        field_of(json!({"conditions": {"combinator": "or", "rules": many}})),
        "filter_spec.conditions.rules[200]"
    );
    assert_eq!(
        field_of(json!({"entity_ids": []})),
        "filter_spec.entity_ids"
    );
    assert_eq!(
        field_of(json!({"entity_ids": ["1", "1"]})),
        "filter_spec.entity_ids[1]"
    );
    assert_eq!(
        field_of(json!({"entity_ids": ["1", 2]})),
        "filter_spec.entity_ids[1]"
    );
}

#[test]
fn entity_ids() {
    let (spec, _) = parse(&json!({"entity_ids": ["1001", "1002"]}), now(), None).unwrap();
    assert_eq!(
        spec,
        FilterSpec::EntityIds(vec!["1001".into(), "1002".into()])
    );
}

struct Cat;
impl FieldCatalogue for Cat {
    fn native_field(&self, path: &str) -> Option<ValueKind> {
        (path == "board/name").then_some(ValueKind::String)
    }
}

#[test]
fn catalogue_checks_native_fields() {
    let v = json!({"conditions": {"combinator": "and", "rules": [{"field": "board/nam", "operator": "=", "value": "x"}]}});
    let e = parse(&v, now(), Some(&Cat)).unwrap_err();
    assert_eq!(e.field, "filter_spec.conditions.rules[0].field");
    let v = json!({"conditions": {"combinator": "and", "rules": [{"field": "board/name", "operator": "=", "value": 3}]}});
    let e = parse(&v, now(), Some(&Cat)).unwrap_err();
    assert_eq!(e.field, "filter_spec.conditions.rules[0].value");
}
