//! ConnectWise: the tree becomes the `conditions` string and at most one
//! `customFieldConditions` (docs/psa.md §1.4, §1.5, §6.5).
//!
//! | rule | `conditions` |
//! |---|---|
//! | `=` `!=` `<` `<=` `>` `>=` | `f = v`, `f != v`, `f < v`, … |
//! | `in` / `notIn` | `f in (a,b)` / `f not in (a,b)` |
//! | `between [a, b]` | `(f >= a and f <= b)` |
//! | `contains` / `doesNotContain` | `f contains "x"` / `f not contains "x"` |
//! | `beginsWith` / `endsWith` | `f contains "x"`, a superset: the rule stays residual |
//! | `null` / `notNull` | `f = null` / `f != null` |
//! | groups | `(a and b)`, `(a or b)`: every group of two or more is parenthesised |
//!
//! Literals: strings in `"…"`, or `'…'` when the value contains `"` (a value with both is not
//! pushed); numbers bare (one in exponent form is not pushed); `true`/`false`; datetimes
//! `[YYYY-MM-DDTHH:MM:SSZ]`.
//!
//! Decisions:
//! - `beginsWith`/`endsWith` are not sent as `like` (reported silently ignored on a tenant):
//!   `contains` narrows the fetch, and the exact rule is evaluated locally.
//! - ConnectWise takes `*` as a wildcard in string literals, and its pattern operators know
//!   `%`, `_` and `[…]`. A string containing any of these may match more on the server, so a
//!   positive operator (`=`, `in`, `contains`) with it is pushed as a superset (and stays
//!   residual), and a negative one (`!=`, `notIn`, `doesNotContain`) is residual only.
//! - String ordering (`<`… and `between` on strings) is residual (docs/psa.md §6.3).
//! - `customFieldConditions` is `caption="C" AND <condition on value>` for the first custom
//!   field rule of the top-level AND that pushes. `null` on a custom field is residual: the
//!   server matches entries, and a ticket without an entry for the caption would be missed.

use neo_domain::backfill::EntityType;
use neo_domain::filter::{Alias, Field, Group, Node, Operand, Operator, Rule, Scalar};

use super::catalogue::Catalogue;
use super::lower::{lower_group, lower_node, Lowered};
use super::{
    check_supported, datetime_text, split, whole_seconds, CompileError, CwQuery, Plan, Push,
};
use crate::Psa;

/// Compiles a tree to ConnectWise query parameters (see the module doc).
pub fn compile_connectwise(
    root: &Group,
    entity: EntityType,
) -> Result<Plan<CwQuery>, CompileError> {
    let cat = check_supported(Psa::ConnectWise, entity)?;
    enum Part {
        Condition(String),
        Custom(String),
    }
    let mut custom_pushed = false;
    let (parts, residual) = split(root, |node| match node {
        Node::Rule(Rule {
            field: Field::Custom(caption),
            operator,
            value,
            ..
        }) => {
            if custom_pushed || !cat.custom_push {
                return Push::No;
            }
            let p = custom_condition(caption, *operator, value);
            custom_pushed = p.is_pushed();
            p.map(Part::Custom)
        }
        _ => lowered(&lower_node(node, cat, &[])).map(Part::Condition),
    });
    let mut conditions = Vec::new();
    let mut custom_field_conditions = None;
    for p in parts {
        match p {
            Part::Condition(c) => conditions.push(c),
            Part::Custom(c) => custom_field_conditions = Some(c),
        }
    }
    let conditions = match conditions.len() {
        0 => None,
        1 => conditions.pop(),
        _ => Some(group(conditions, "and")),
    };
    let fields = Some(projection(cat, residual.as_ref()));
    Ok(Plan {
        native: CwQuery {
            conditions,
            custom_field_conditions,
            fields,
        },
        residual,
    })
}

/// The `fields` of a page: what the connector reads of a row — its id, the fields that name it
/// and its creation date (a snapshot entry) — and every field the residual tests, so that
/// ConnectWise sends those rather than whole records (a ticket is kilobytes; a page is a
/// thousand of them). `dateEntered`/`lastUpdated` are asked for as `_info/…`, where rows
/// hold them; a custom-field rule asks for `customFields`.
pub fn projection(cat: &Catalogue, residual: Option<&Group>) -> String {
    fn walk(l: &Lowered, out: &mut Vec<String>) {
        match l {
            Lowered::Cmp { path, .. } => out.push(path.clone()),
            Lowered::Custom { .. } => out.push("customFields".into()),
            Lowered::All(parts) | Lowered::Any(parts) => parts.iter().for_each(|p| walk(p, out)),
            Lowered::Nothing => {}
        }
    }
    let mut paths: Vec<String> = vec!["id".into()];
    paths.extend(
        cat.title
            .iter()
            .chain(cat.number.iter())
            .map(|p| p.to_string()),
    );
    if let Some(created) = cat.target(Alias::Created).and_then(|t| t.id) {
        paths.push(created.into());
    }
    // The company each item belongs to: claims go round-robin across companies (issue 23).
    if let Some(company) = cat.target(Alias::Company).and_then(|t| t.id) {
        paths.push(company.into());
    }
    if let Some(r) = residual {
        walk(&lower_group(r, cat, &[]), &mut paths);
    }
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    for p in paths {
        let p = match p.as_str() {
            "dateEntered" | "lastUpdated" => format!("_info/{p}"),
            _ => p,
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out.join(",")
}

fn group(items: Vec<String>, combinator: &str) -> String {
    format!("({})", items.join(&format!(" {combinator} ")))
}

fn lowered(l: &Lowered) -> Push<String> {
    match l {
        Lowered::Cmp { path, op, value } => condition(path, *op, value),
        Lowered::All(parts) => {
            Push::all(parts.iter().map(lowered).collect(), |xs| group(xs, "and"))
        }
        Lowered::Any(parts) => Push::any(parts.iter().map(lowered).collect(), |xs| group(xs, "or")),
        Lowered::Custom { .. } | Lowered::Nothing => Push::No,
    }
}

fn custom_condition(caption: &str, op: Operator, value: &Operand) -> Push<String> {
    if op == Operator::Null {
        return Push::No;
    }
    let Some(caption) = literal(&Scalar::String(caption.to_owned())) else {
        return Push::No;
    };
    // A caption with wildcards matches more entries: still a superset.
    condition("value", op, value)
        .map(|c| format!("caption={} AND {c}", caption.text))
        .weaken(caption.exact)
}

/// A ConnectWise literal; `exact` is false when a string holds wildcard characters.
struct Literal {
    text: String,
    exact: bool,
}

fn literal(s: &Scalar) -> Option<Literal> {
    let exact = |text: String| Literal { text, exact: true };
    match s {
        Scalar::Bool(b) => Some(exact(b.to_string())),
        Scalar::Number(n) => {
            let text = n.to_string();
            let digits = text.strip_prefix('-').unwrap_or(&text);
            let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
            let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (all_digits(int) && all_digits(frac)).then(|| exact(text))
        }
        Scalar::String(v) => {
            let quote = match (v.contains('"'), v.contains('\'')) {
                (false, _) => '"',
                (true, false) => '\'',
                (true, true) => return None,
            };
            Some(Literal {
                text: format!("{quote}{v}{quote}"),
                exact: !v.contains(['*', '%', '_', '[']),
            })
        }
        Scalar::DateTime(t) => Some(exact(format!("[{}]", datetime_text(*t)))),
    }
}

/// Whether a condition with this literal stays exact (`Some(false)`: a superset), or `None`
/// when wildcards would make the server match fewer rows than the rule.
fn wildcard_effect(op: Operator, lit: &Literal) -> Option<bool> {
    match (lit.exact, op) {
        (true, _) => Some(true),
        (false, Operator::Ne | Operator::NotIn | Operator::DoesNotContain) => None,
        (false, _) => Some(false),
    }
}

fn condition(path: &str, op: Operator, value: &Operand) -> Push<String> {
    Push::from_option(condition_text(path, op, value))
}

fn condition_text(path: &str, op: Operator, value: &Operand) -> Option<(String, bool)> {
    use Operator::*;
    let is_text = |s: &Scalar| matches!(s, Scalar::String(_));
    let (value, mut exact) = whole_seconds(op, value)?;
    let text = match (op, &value) {
        (Null, _) => format!("{path} = null"),
        (NotNull, _) => format!("{path} != null"),
        (Eq | Ne | Lt | Le | Gt | Ge, Operand::One(s)) => {
            if is_text(s) && !matches!(op, Eq | Ne) {
                return None;
            }
            let lit = literal(s)?;
            exact &= wildcard_effect(op, &lit)?;
            let symbol = match op {
                Eq => "=",
                Ne => "!=",
                Lt => "<",
                Le => "<=",
                Gt => ">",
                _ => ">=",
            };
            format!("{path} {symbol} {}", lit.text)
        }
        (In | NotIn, Operand::List(xs)) => {
            let mut texts = Vec::with_capacity(xs.len());
            for s in xs {
                let lit = literal(s)?;
                exact &= wildcard_effect(op, &lit)?;
                texts.push(lit.text);
            }
            let not = if op == NotIn { "not " } else { "" };
            format!("{path} {not}in ({})", texts.join(","))
        }
        (Between, Operand::Range(a, b)) => {
            if is_text(a) {
                return None;
            }
            let (a, b) = (literal(a)?, literal(b)?);
            format!("({path} >= {} and {path} <= {})", a.text, b.text)
        }
        (Contains | DoesNotContain | BeginsWith | EndsWith, Operand::One(s)) => {
            let lit = literal(s)?;
            exact &= wildcard_effect(op, &lit)? && matches!(op, Contains | DoesNotContain);
            let not = if op == DoesNotContain { "not " } else { "" };
            format!("{path} {not}contains {}", lit.text)
        }
        _ => return None,
    };
    Some((text, exact))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::compile::test_support::{and, tree};

    fn cw(g: &Group) -> Plan<CwQuery> {
        compile_connectwise(g, EntityType::Ticket).unwrap()
    }

    /// The residual made of these top-level children of `g`.
    fn residual_of(g: &Group, idx: &[usize]) -> Option<Group> {
        Some(Group {
            combinator: neo_domain::filter::Combinator::And,
            rules: idx.iter().map(|i| g.rules[*i].clone()).collect(),
        })
    }

    /// The conditions of one rule, and whether it was exact.
    fn one(rule: Value) -> (Option<String>, bool) {
        let plan = cw(&and(json!([rule])));
        (plan.native.conditions, plan.residual.is_none())
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
                {"field": "board/name", "operator": "in", "value": ["Help Desk", "Escalations"]},
                {"field": "$priority", "operator": "=", "value": 8}]},
            {"custom_field": "Region", "operator": "=", "value": "West"}]));
        let plan = cw(&g);
        assert_eq!(
            plan.native.conditions.as_deref(),
            Some("(dateEntered >= [2026-04-01T00:00:00Z] and closedFlag = false and (board/name in (\"Help Desk\",\"Escalations\") or priority/id = 8))")
        );
        assert_eq!(
            plan.native.custom_field_conditions.as_deref(),
            Some("caption=\"Region\" AND value = \"West\"")
        );
        assert_eq!(plan.residual, None);
        assert!(plan.is_exact());
    }

    #[test]
    fn operators_and_literals() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"field": "$id", "operator": "=", "value": 69}),
                "id = 69",
            ),
            (
                json!({"field": "$id", "operator": "!=", "value": -3}),
                "id != -3",
            ),
            (
                json!({"field": "budgetHours", "operator": ">", "value": 1.5}),
                "budgetHours > 1.5",
            ),
            (
                json!({"field": "$id", "operator": "<", "value": 10}),
                "id < 10",
            ),
            (
                json!({"field": "$id", "operator": "<=", "value": 10}),
                "id <= 10",
            ),
            (
                json!({"field": "$updated", "operator": ">", "value": dt("2026-01-02T03:04:05+01:00")}),
                "lastUpdated > [2026-01-02T02:04:05Z]",
            ),
            (
                json!({"field": "$closed", "operator": "!=", "value": true}),
                "closedFlag != true",
            ),
            (
                json!({"field": "$id", "operator": "in", "value": [1, 2, 3]}),
                "id in (1,2,3)",
            ),
            (
                json!({"field": "$status", "operator": "notIn", "value": ["Closed", "Resolved"]}),
                "status/name not in (\"Closed\",\"Resolved\")",
            ),
            (
                json!({"field": "$id", "operator": "between", "value": [10, 20]}),
                "(id >= 10 and id <= 20)",
            ),
            (
                json!({"field": "$created", "operator": "between",
                    "value": [dt("2026-01-01T00:00:00Z"), dt("2026-02-01T00:00:00Z")]}),
                "(dateEntered >= [2026-01-01T00:00:00Z] and dateEntered <= [2026-02-01T00:00:00Z])",
            ),
            (
                json!({"field": "summary", "operator": "contains", "value": "printer"}),
                "summary contains \"printer\"",
            ),
            (
                json!({"field": "summary", "operator": "doesNotContain", "value": "test"}),
                "summary not contains \"test\"",
            ),
            (
                json!({"field": "parentTicketId", "operator": "null"}),
                "parentTicketId = null",
            ),
            (
                json!({"field": "closedDate", "operator": "notNull"}),
                "closedDate != null",
            ),
            (
                json!({"field": "summary", "operator": "=", "value": "He said \"hi\""}),
                "summary = 'He said \"hi\"'",
            ),
            (
                json!({"field": "summary", "operator": "!=", "value": "it's"}),
                "summary != \"it's\"",
            ),
            (
                json!({"field": "$company", "operator": "=", "value": 24}),
                "company/id = 24",
            ),
            (
                json!({"field": "$company", "operator": "=", "value": "Acme"}),
                "company/name = \"Acme\"",
            ),
            (
                json!({"field": "$queue", "operator": "=", "value": 3}),
                "board/id = 3",
            ),
            (
                json!({"field": "$assignee", "operator": "=", "value": "jdoe"}),
                "owner/identifier = \"jdoe\"",
            ),
            (
                json!({"field": "$assignee", "operator": "null"}),
                "owner/id = null",
            ),
            (
                json!({"field": "$company", "operator": "in", "value": [24, "Acme"]}),
                "(company/id in (24) or company/name in (\"Acme\"))",
            ),
            (
                json!({"field": "$company", "operator": "notIn", "value": [24, "Acme"]}),
                "(company/id not in (24) and company/name not in (\"Acme\"))",
            ),
        ];
        for (rule, want) in cases {
            assert_eq!(one(rule.clone()), (Some(want.to_owned()), true), "{rule}");
        }
    }

    #[test]
    fn supersets_and_residuals() {
        // (rule, pushed conditions or None): these all stay residual.
        let cases: Vec<(Value, Option<&str>)> = vec![
            (json!({"field": "summary", "operator": "beginsWith", "value": "Printer"}),
             Some("summary contains \"Printer\"")),
            (json!({"field": "summary", "operator": "endsWith", "value": "down"}),
             Some("summary contains \"down\"")),
            // Wildcard characters: positive operators push a superset ...
            (json!({"field": "summary", "operator": "=", "value": "50%"}), Some("summary = \"50%\"")),
            (json!({"field": "summary", "operator": "in", "value": ["a", "b*"]}), Some("summary in (\"a\",\"b*\")")),
            (json!({"field": "summary", "operator": "contains", "value": "a_b"}), Some("summary contains \"a_b\"")),
            // ... negative ones are residual only.
            (json!({"field": "summary", "operator": "!=", "value": "a_b"}), None),
            (json!({"field": "summary", "operator": "notIn", "value": ["[x]"]}), None),
            (json!({"field": "summary", "operator": "doesNotContain", "value": "*"}), None),
            // Both quote characters.
            (json!({"field": "summary", "operator": "=", "value": "a\"b'c"}), None),
            // String ordering.
            (json!({"field": "summary", "operator": ">", "value": "m"}), None),
            (json!({"field": "summary", "operator": "between", "value": ["a", "m"]}), None),
            // Exponent notation.
            (json!({"field": "$id", "operator": "=", "value": 1e300}), None),
            // Fractions of a second: bounds round outward, equality is residual.
            (json!({"field": "$created", "operator": ">=", "value": dt("2026-04-01T00:00:00.5Z")}),
             Some("dateEntered >= [2026-04-01T00:00:00Z]")),
            (json!({"field": "$created", "operator": "<", "value": dt("2026-04-01T00:00:00.5Z")}),
             Some("dateEntered < [2026-04-01T00:00:01Z]")),
            (json!({"field": "$created", "operator": "between",
                    "value": [dt("2026-04-01T00:00:00.5Z"), dt("2026-04-02T00:00:00.5Z")]}),
             Some("(dateEntered >= [2026-04-01T00:00:00Z] and dateEntered <= [2026-04-02T00:00:01Z])")),
            (json!({"field": "$created", "operator": "=", "value": dt("2026-04-01T00:00:00.5Z")}), None),
        ];
        for (rule, want) in cases {
            assert_eq!(
                one(rule.clone()),
                (want.map(str::to_owned), false),
                "{rule}"
            );
        }
    }

    #[test]
    fn top_level_split() {
        let g = and(json!([
            {"field": "$closed", "operator": "=", "value": false},
            {"field": "summary", "operator": "beginsWith", "value": "VPN"},
            {"combinator": "or", "rules": [
                {"field": "summary", "operator": "!=", "value": "x_y"},
                {"field": "$id", "operator": "=", "value": 5}]},
            {"combinator": "and", "rules": [
                {"field": "$id", "operator": ">", "value": 100},
                {"field": "severity", "operator": "=", "value": "High"}]}]));
        let plan = cw(&g);
        assert_eq!(
            plan.native.conditions.as_deref(),
            Some("(closedFlag = false and summary contains \"VPN\" and id > 100 and severity = \"High\")")
        );
        assert_eq!(plan.native.custom_field_conditions, None);
        // The beginsWith (a superset) and the OR with an unpushable child.
        assert_eq!(plan.residual, residual_of(&g, &[1, 2]));
    }

    #[test]
    fn groups() {
        // A fully pushable root OR, nested three deep.
        let g = tree(json!({"combinator": "or", "rules": [
            {"combinator": "and", "rules": [
                {"field": "$id", "operator": ">=", "value": 1},
                {"combinator": "or", "rules": [
                    {"field": "$status", "operator": "=", "value": "New"},
                    {"field": "$status", "operator": "=", "value": 2}]}]},
            {"field": "$priority", "operator": "in", "value": [1, 2]}]}));
        let plan = cw(&g);
        assert_eq!(
            plan.native.conditions.as_deref(),
            Some(
                "((id >= 1 and (status/name = \"New\" or status/id = 2)) or priority/id in (1,2))"
            )
        );
        assert_eq!(plan.residual, None);

        // An OR whose AND branch is partly pushable: a superset, and the whole OR is residual.
        let g = tree(json!({"combinator": "or", "rules": [
            {"combinator": "and", "rules": [
                {"field": "$id", "operator": "=", "value": 1},
                {"field": "summary", "operator": "!=", "value": "a_b"}]},
            {"field": "$id", "operator": "=", "value": 2}]}));
        let plan = cw(&g);
        assert_eq!(
            plan.native.conditions.as_deref(),
            Some("(id = 1 or id = 2)")
        );
        assert_eq!(
            plan.residual,
            Some(Group {
                combinator: neo_domain::filter::Combinator::And,
                rules: vec![Node::Group(g.clone())]
            })
        );

        // A root OR with an unpushable branch: nothing native.
        let g = tree(json!({"combinator": "or", "rules": [
            {"field": "$id", "operator": "=", "value": 1},
            {"custom_field": "Region", "operator": "=", "value": "West"}]}));
        let plan = cw(&g);
        assert_eq!(
            (plan.native.conditions, plan.native.custom_field_conditions),
            (None, None)
        );
        // The page asks for what the connector reads and what the residual tests.
        assert_eq!(
            plan.native.fields.as_deref(),
            Some("id,summary,_info/dateEntered,company/id,customFields")
        );
        assert_eq!(plan.residual.unwrap().rules, vec![Node::Group(g)]);
    }

    #[test]
    fn custom_fields() {
        let g = and(json!([
            {"custom_field": "Region", "operator": "null"},
            {"custom_field": "Tier", "operator": "in", "value": ["Gold", "Platinum"]},
            {"custom_field": "Region", "operator": "=", "value": "West"},
            {"field": "$id", "operator": ">", "value": 5}]));
        let plan = cw(&g);
        assert_eq!(plan.native.conditions.as_deref(), Some("id > 5"));
        assert_eq!(
            plan.native.custom_field_conditions.as_deref(),
            Some("caption=\"Tier\" AND value in (\"Gold\",\"Platinum\")")
        );
        assert_eq!(plan.residual, residual_of(&g, &[0, 2]));

        let cases: Vec<(Value, &str)> = vec![
            (json!({"custom_field": "Story Points", "operator": ">=", "value": 5}),
             "caption=\"Story Points\" AND value >= 5"),
            (json!({"custom_field": "VIP?", "operator": "=", "value": true}),
             "caption=\"VIP?\" AND value = true"),
            (json!({"custom_field": "Outage ID", "operator": "notNull"}),
             "caption=\"Outage ID\" AND value != null"),
            (json!({"custom_field": "Go-live", "operator": "between",
                    "value": [dt("2026-01-01T00:00:00Z"), dt("2026-12-31T00:00:00Z")]}),
             "caption=\"Go-live\" AND (value >= [2026-01-01T00:00:00Z] and value <= [2026-12-31T00:00:00Z])"),
            (json!({"custom_field": "Say \"hi\"", "operator": "!=", "value": "x"}),
             "caption='Say \"hi\"' AND value != \"x\""),
        ];
        for (rule, want) in cases {
            let plan = cw(&and(json!([rule.clone()])));
            assert_eq!(
                plan.native.custom_field_conditions.as_deref(),
                Some(want),
                "{rule}"
            );
            assert_eq!(plan.native.conditions, None);
            assert!(plan.is_exact(), "{rule}");
        }

        // A caption with a wildcard character: a superset.
        let g = and(json!([{"custom_field": "Region_1", "operator": "=", "value": "West"}]));
        let plan = cw(&g);
        assert_eq!(
            plan.native.custom_field_conditions.as_deref(),
            Some("caption=\"Region_1\" AND value = \"West\"")
        );
        assert_eq!(plan.residual, residual_of(&g, &[0]));
    }

    #[test]
    fn unsupported_entity() {
        let g = and(json!([{"field": "$id", "operator": "=", "value": 1}]));
        assert_eq!(
            compile_connectwise(&g, EntityType::Task),
            Err(CompileError::Unsupported(
                "filters on entity type task are not supported for connectwise".into()
            ))
        );
    }
}
