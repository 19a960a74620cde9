//! Autotask: the tree becomes the `filter` array of a query (docs/psa.md §2.4, §6.5).
//!
//! | rule | condition |
//! |---|---|
//! | `=` `!=` `<` `<=` `>` `>=` | `eq` `noteq` `lt` `lte` `gt` `gte` |
//! | `in` / `notIn` | `in` / `notIn` with the list (at most 500 values) |
//! | `between [a, b]` | `{"op":"and","items":[gte a, lte b]}` |
//! | `contains` / `beginsWith` / `endsWith` | the same operator |
//! | `doesNotContain` | residual (Autotask has no `notContains`) |
//! | `null` / `notNull` | `notExist` / `exist` (no value) |
//! | groups | `{"op":"and"\|"or","items":[…]}`; the top-level array is the implicit AND |
//!
//! Values are JSON numbers, strings and booleans; datetimes are `"YYYY-MM-DDTHH:MM:SSZ"`
//! strings. `$closed` tests `status` against the tenant's complete status ids (see
//! [`super::lower`]); a name given for a picklist alias (`$company`, `$status`, …) cannot be
//! pushed, since picklists are integers. The first custom field rule of the top-level AND that
//! pushes becomes the query's one `"udf": true` condition (`between` and `doesNotContain` on
//! a UDF do not push); the others are residual. String ordering pushes: Autotask compares
//! strings case-insensitively, as the evaluator does.

use neo_domain::backfill::EntityType;
use neo_domain::filter::{Field, Group, Node, Operand, Operator, Rule, Scalar, MAX_LIST_VALUES};
use serde_json::{json, Map, Value};

use super::lower::{lower_node, Lowered};
use super::{
    check_supported, datetime_text, split, whole_seconds, AtQuery, CompileError, Plan, Push,
};
use crate::Psa;

/// Compiles a tree to an Autotask `filter` (see the module doc). `complete_status_ids` are the
/// ticket statuses `$closed` means (docs/psa.md §6.4; the default tenant has `[5]`).
pub fn compile_autotask(
    root: &Group,
    entity: EntityType,
    complete_status_ids: &[i64],
) -> Result<Plan<AtQuery>, CompileError> {
    let cat = check_supported(Psa::Autotask, entity)?;
    let mut udf_pushed = false;
    let (filter, residual) = split(root, |node| match node {
        Node::Rule(Rule {
            field: Field::Custom(name),
            operator,
            value,
            ..
        }) => {
            if udf_pushed || !cat.custom_push {
                return Push::No;
            }
            let p = condition(name, *operator, value, true);
            udf_pushed = p.is_pushed();
            p
        }
        _ => lowered(&lower_node(node, cat, complete_status_ids)),
    });
    Ok(Plan {
        native: AtQuery { filter },
        residual,
    })
}

fn lowered(l: &Lowered) -> Push<Value> {
    let group = |op: &str, items: Vec<Value>| json!({"op": op, "items": items});
    match l {
        Lowered::Cmp { path, op, value } => condition(path, *op, value, false),
        Lowered::All(parts) => {
            Push::all(parts.iter().map(lowered).collect(), |xs| group("and", xs))
        }
        Lowered::Any(parts) => Push::any(parts.iter().map(lowered).collect(), |xs| group("or", xs)),
        Lowered::Custom { .. } | Lowered::Nothing => Push::No,
    }
}

fn literal(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Number(n) => Value::Number(n.clone()),
        Scalar::String(s) => Value::String(s.clone()),
        Scalar::DateTime(t) => Value::String(datetime_text(*t)),
    }
}

fn condition(field: &str, op: Operator, value: &Operand, udf: bool) -> Push<Value> {
    Push::from_option(condition_json(field, op, value, udf))
}

fn condition_json(field: &str, op: Operator, value: &Operand, udf: bool) -> Option<(Value, bool)> {
    use Operator::*;
    let (value, exact) = whole_seconds(op, value)?;
    let cond = |op: &str, value: Option<Value>| {
        let mut m = Map::new();
        m.insert("op".into(), op.into());
        m.insert("field".into(), field.into());
        if let Some(v) = value {
            m.insert("value".into(), v);
        }
        if udf {
            m.insert("udf".into(), true.into());
        }
        Value::Object(m)
    };
    let json = match (op, &value) {
        (Null, _) => cond("notExist", None),
        (NotNull, _) => cond("exist", None),
        (In | NotIn, Operand::List(xs)) if xs.len() <= MAX_LIST_VALUES => {
            let name = if op == In { "in" } else { "notIn" };
            cond(name, Some(xs.iter().map(literal).collect()))
        }
        (Between, Operand::Range(a, b)) if !udf => json!({"op": "and", "items": [
            cond("gte", Some(literal(a))),
            cond("lte", Some(literal(b))),
        ]}),
        (_, Operand::One(s)) => {
            let name = match op {
                Eq => "eq",
                Ne => "noteq",
                Lt => "lt",
                Le => "lte",
                Gt => "gt",
                Ge => "gte",
                Contains => "contains",
                BeginsWith => "beginsWith",
                EndsWith => "endsWith",
                _ => return None,
            };
            cond(name, Some(literal(s)))
        }
        _ => return None,
    };
    Some((json, exact))
}

#[cfg(test)]
mod tests {
    use neo_domain::filter::Combinator;
    use serde_json::{json, Value};

    use super::*;
    use crate::compile::test_support::{and, tree};

    fn at(g: &Group) -> Plan<AtQuery> {
        compile_autotask(g, EntityType::Ticket, &[5]).unwrap()
    }

    fn residual_of(g: &Group, idx: &[usize]) -> Option<Group> {
        Some(Group {
            combinator: Combinator::And,
            rules: idx.iter().map(|i| g.rules[*i].clone()).collect(),
        })
    }

    /// The filter of one rule with complete statuses `[5, 8]`, and whether it was exact.
    fn one(rule: Value) -> (Value, bool) {
        let plan = compile_autotask(&and(json!([rule])), EntityType::Ticket, &[5, 8]).unwrap();
        (Value::Array(plan.native.filter), plan.residual.is_none())
    }

    fn dt(s: &str) -> Value {
        json!({ "$datetime": s })
    }

    #[test]
    fn spec_example() {
        let g = and(json!([
            {"field": "$created", "operator": ">=", "value": dt("2026-04-01T00:00:00Z")},
            {"field": "$closed", "operator": "=", "value": false},
            {"combinator": "or", "rules": [
                {"field": "queueID", "operator": "in", "value": [29682833, 29682834]},
                {"field": "$priority", "operator": "=", "value": 8}]},
            {"custom_field": "Region", "operator": "=", "value": "West"}]));
        let plan = at(&g);
        assert_eq!(
            Value::Array(plan.native.filter),
            json!([
                {"op": "gte", "field": "createDate", "value": "2026-04-01T00:00:00Z"},
                {"op": "notIn", "field": "status", "value": [5]},
                {"op": "or", "items": [
                    {"op": "in", "field": "queueID", "value": [29682833, 29682834]},
                    {"op": "eq", "field": "priority", "value": 8}]},
                {"op": "eq", "field": "Region", "value": "West", "udf": true}
            ])
        );
        assert_eq!(plan.residual, None);
    }

    #[test]
    fn operators_and_literals() {
        let cases: Vec<(Value, Value)> = vec![
            (
                json!({"field": "$id", "operator": "=", "value": 1}),
                json!({"op": "eq", "field": "id", "value": 1}),
            ),
            (
                json!({"field": "$status", "operator": "!=", "value": 5}),
                json!({"op": "noteq", "field": "status", "value": 5}),
            ),
            (
                json!({"field": "$id", "operator": ">", "value": 10}),
                json!({"op": "gt", "field": "id", "value": 10}),
            ),
            (
                json!({"field": "$updated", "operator": ">=", "value": dt("2026-01-02T03:04:05+01:00")}),
                json!({"op": "gte", "field": "lastActivityDate", "value": "2026-01-02T02:04:05Z"}),
            ),
            (
                json!({"field": "dueDateTime", "operator": "<", "value": dt("2026-01-01T00:00:00Z")}),
                json!({"op": "lt", "field": "dueDateTime", "value": "2026-01-01T00:00:00Z"}),
            ),
            (
                json!({"field": "estimatedHours", "operator": "<=", "value": 2.5}),
                json!({"op": "lte", "field": "estimatedHours", "value": 2.5}),
            ),
            (
                json!({"field": "$updated", "operator": "between",
                    "value": [dt("2026-01-01T00:00:00Z"), dt("2026-02-01T00:00:00Z")]}),
                json!({"op": "and", "items": [
                 {"op": "gte", "field": "lastActivityDate", "value": "2026-01-01T00:00:00Z"},
                 {"op": "lte", "field": "lastActivityDate", "value": "2026-02-01T00:00:00Z"}]}),
            ),
            (
                json!({"field": "$queue", "operator": "in", "value": [1, 2]}),
                json!({"op": "in", "field": "queueID", "value": [1, 2]}),
            ),
            (
                json!({"field": "$assignee", "operator": "notIn", "value": [10]}),
                json!({"op": "notIn", "field": "assignedResourceID", "value": [10]}),
            ),
            (
                json!({"field": "title", "operator": "contains", "value": "VPN"}),
                json!({"op": "contains", "field": "title", "value": "VPN"}),
            ),
            (
                json!({"field": "title", "operator": "beginsWith", "value": "Re: \"x\""}),
                json!({"op": "beginsWith", "field": "title", "value": "Re: \"x\""}),
            ),
            (
                json!({"field": "ticketNumber", "operator": "endsWith", "value": ".005"}),
                json!({"op": "endsWith", "field": "ticketNumber", "value": ".005"}),
            ),
            (
                json!({"field": "title", "operator": ">", "value": "m"}),
                json!({"op": "gt", "field": "title", "value": "m"}),
            ),
            (
                json!({"field": "completedDate", "operator": "null"}),
                json!({"op": "notExist", "field": "completedDate"}),
            ),
            (
                json!({"field": "completedDate", "operator": "notNull"}),
                json!({"op": "exist", "field": "completedDate"}),
            ),
            (
                json!({"field": "isVisibleToComanaged", "operator": "=", "value": true}),
                json!({"op": "eq", "field": "isVisibleToComanaged", "value": true}),
            ),
            // $closed against the complete statuses [5, 8].
            (
                json!({"field": "$closed", "operator": "=", "value": true}),
                json!({"op": "in", "field": "status", "value": [5, 8]}),
            ),
            (
                json!({"field": "$closed", "operator": "!=", "value": true}),
                json!({"op": "notIn", "field": "status", "value": [5, 8]}),
            ),
            (
                json!({"field": "$closed", "operator": "in", "value": [true, false]}),
                json!({"op": "exist", "field": "status"}),
            ),
            (
                json!({"field": "$closed", "operator": "null"}),
                json!({"op": "notExist", "field": "status"}),
            ),
            // A name in a picklist list matches nothing: the ids alone are exact.
            (
                json!({"field": "$company", "operator": "in", "value": [174, "Acme"]}),
                json!({"op": "in", "field": "companyID", "value": [174]}),
            ),
        ];
        for (rule, want) in cases {
            assert_eq!(one(rule.clone()), (json!([want]), true), "{rule}");
        }
    }

    #[test]
    fn residuals() {
        // (rule, pushed filter): these all stay residual.
        let cases: Vec<(Value, Value)> = vec![
            (
                json!({"field": "title", "operator": "doesNotContain", "value": "x"}),
                json!([]),
            ),
            (
                json!({"field": "$company", "operator": "=", "value": "Acme"}),
                json!([]),
            ),
            (
                json!({"field": "$status", "operator": "notIn", "value": [5, "New"]}),
                json!([]),
            ),
            (
                json!({"field": "$closed", "operator": "notIn", "value": [true, false]}),
                json!([]),
            ),
            (
                json!({"field": "$created", "operator": "=", "value": dt("2026-04-01T00:00:00.25Z")}),
                json!([]),
            ),
            (
                json!({"field": "$created", "operator": ">", "value": dt("2026-04-01T00:00:00.25Z")}),
                json!([{"op": "gt", "field": "createDate", "value": "2026-04-01T00:00:00Z"}]),
            ),
            (
                json!({"field": "$created", "operator": "<=", "value": dt("2026-04-01T00:00:00.25Z")}),
                json!([{"op": "lte", "field": "createDate", "value": "2026-04-01T00:00:01Z"}]),
            ),
        ];
        for (rule, want) in cases {
            assert_eq!(one(rule.clone()), (want, false), "{rule}");
        }
    }

    #[test]
    fn groups_and_split() {
        let g = and(json!([
            {"field": "$closed", "operator": "=", "value": true},
            {"combinator": "or", "rules": [
                {"field": "title", "operator": "doesNotContain", "value": "x"},
                {"field": "$id", "operator": "=", "value": 5}]},
            {"combinator": "or", "rules": [
                {"combinator": "and", "rules": [
                    {"field": "$priority", "operator": "=", "value": 1},
                    {"field": "title", "operator": "doesNotContain", "value": "test"}]},
                {"combinator": "and", "rules": [
                    {"field": "$priority", "operator": "=", "value": 2},
                    {"field": "$queue", "operator": "=", "value": 7}]}]},
            {"combinator": "and", "rules": [
                {"field": "$id", "operator": ">", "value": 100},
                {"field": "title", "operator": "doesNotContain", "value": "y"}]}]));
        let plan = at(&g);
        assert_eq!(
            Value::Array(plan.native.filter),
            json!([
                {"op": "in", "field": "status", "value": [5]},
                {"op": "or", "items": [
                    {"op": "eq", "field": "priority", "value": 1},
                    {"op": "and", "items": [
                        {"op": "eq", "field": "priority", "value": 2},
                        {"op": "eq", "field": "queueID", "value": 7}]}]},
                {"op": "gt", "field": "id", "value": 100}
            ])
        );
        // Flattened top level: [closed, or1, or2 (a superset), id > 100, doesNotContain y].
        let flat = [
            g.rules[1].clone(),
            g.rules[2].clone(),
            match &g.rules[3] {
                Node::Group(inner) => inner.rules[1].clone(),
                _ => unreachable!(),
            },
        ];
        assert_eq!(plan.residual.unwrap().rules, flat);

        // A fully pushable root OR.
        let g = tree(json!({"combinator": "or", "rules": [
            {"field": "$id", "operator": "=", "value": 1},
            {"field": "$id", "operator": "=", "value": 2}]}));
        assert_eq!(
            at(&g).native.filter,
            vec![json!({"op": "or", "items": [
                {"op": "eq", "field": "id", "value": 1},
                {"op": "eq", "field": "id", "value": 2}]})]
        );
    }

    #[test]
    fn one_udf_per_query() {
        let g = and(json!([
            {"custom_field": "Seats", "operator": "between", "value": [1, 5]},
            {"custom_field": "Region", "operator": "doesNotContain", "value": "st"},
            {"custom_field": "Tier", "operator": "null"},
            {"custom_field": "Region", "operator": "=", "value": "West"},
            {"combinator": "or", "rules": [
                {"custom_field": "Tier", "operator": "=", "value": "Gold"},
                {"field": "$id", "operator": "=", "value": 1}]}]));
        let plan = at(&g);
        assert_eq!(
            plan.native.filter,
            vec![json!({"op": "notExist", "field": "Tier", "udf": true})]
        );
        assert_eq!(plan.residual, residual_of(&g, &[0, 1, 3, 4]));
    }

    #[test]
    fn closed_without_complete_statuses() {
        let g = and(json!([{"field": "$closed", "operator": "=", "value": false}]));
        let plan = compile_autotask(&g, EntityType::Ticket, &[]).unwrap();
        assert_eq!(
            plan.native.filter,
            vec![json!({"op": "exist", "field": "status"})]
        );
        assert!(plan.is_exact());
        let g = and(json!([{"field": "$closed", "operator": "=", "value": true}]));
        let plan = compile_autotask(&g, EntityType::Ticket, &[]).unwrap();
        assert!(plan.native.filter.is_empty());
        assert_eq!(plan.residual, residual_of(&g, &[0]));
    }

    #[test]
    fn unsupported_entity() {
        let g = and(json!([{"field": "$id", "operator": "=", "value": 1}]));
        assert!(matches!(
            compile_autotask(&g, EntityType::ProjectTicket, &[5]),
            Err(CompileError::Unsupported(_))
        ));
    }
}
