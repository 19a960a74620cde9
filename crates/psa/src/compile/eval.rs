//! The reference evaluator: whether a PSA-native row (ConnectWise ticket JSON, docs/psa.md §1.10;
//! Autotask, §2.7; Halo, §3) matches a filter tree. Residuals are evaluated with it, and the
//! compilers push down only what the PSA evaluates the same way, so for every row
//! `native(row) ∧ residual(row) ≡ matches(root, row)`.
//!
//! Semantics (SQL-like; the compilers assume the PSAs behave so):
//! - **Fields.** Aliases resolve per PSA exactly as the compilers resolve them
//!   ([`super::lower`]). ConnectWise paths walk `/` into objects with exact keys, and a path
//!   whose first segment is not in the row is looked up under `_info` (`dateEntered`,
//!   `lastUpdated`). Autotask field names are flat and case-insensitive. Halo names are flat.
//! - **Custom fields.** ConnectWise `customFields[{caption, value}]`, Autotask
//!   `userDefinedFields[{name, value}]`, Halo `customfields[{name, value}]`; captions/names
//!   compare case-insensitively. A rule holds when *some* entry with that caption satisfies it
//!   (as ConnectWise's `caption="C" AND value …` does); `null` holds when no entry with that
//!   caption has a non-null value.
//! - **Null.** A missing field and JSON `null` are both null. Every comparison with a null
//!   value is false, including `!=`, `notIn` and `doesNotContain`; only `null` (true) and
//!   `notNull` (false) hold on it.
//! - **Types.** Numbers compare numerically (integers exactly); a string row value holding a
//!   JSON number compares as that number (Autotask UDF values are strings). Strings compare
//!   case-insensitively: both sides are lowercased (Unicode), then compared by code point, for
//!   equality and for order. Datetimes compare as instants: the row's string is parsed as RFC
//!   3339 (an offset-less datetime counts as UTC); an unparsable one is incomparable. Booleans
//!   compare with booleans. Values of different types are incomparable, and a comparison of
//!   incomparable values is false (like a null).
//! - **Text operators.** `contains`, `beginsWith`, `endsWith`, `doesNotContain` apply to
//!   string row values only, case-insensitively; on anything else they are false.
//! - **`between`** `[a, b]` is inclusive on both ends: `a <= v <= b`.
//! - **`in`** holds when the value equals one of the list; **`notIn`** when it is comparable
//!   to and different from every one.

use std::cmp::Ordering;

use jiff::Timestamp;
use neo_domain::filter::{Group, Operand, Operator, Scalar};
use serde_json::Value;

use super::catalogue::Catalogue;
use super::lower::{lower_group, Lowered};
use crate::Psa;

/// What evaluation needs besides the tree and the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalContext {
    /// Autotask: the ticket status ids that count as complete, for `$closed` (default `[5]`).
    pub complete_status_ids: Vec<i64>,
}

impl Default for EvalContext {
    fn default() -> Self {
        Self {
            complete_status_ids: vec![5],
        }
    }
}

/// A tree with its aliases resolved for one PSA, ready to test many rows.
#[derive(Debug, Clone)]
pub struct Predicate {
    psa: Psa,
    root: Lowered,
}

impl Predicate {
    /// The tree over rows of `cat`'s entity on its PSA.
    pub fn new(group: &Group, cat: &Catalogue, ctx: &EvalContext) -> Self {
        Self {
            psa: cat.psa,
            root: lower_group(group, cat, &ctx.complete_status_ids),
        }
    }

    pub fn matches(&self, row: &Value) -> bool {
        eval(&self.root, row, self.psa)
    }
}

/// Whether `row` (a PSA-native JSON object of `cat`'s entity) matches `group`. For many rows,
/// build a [`Predicate`] once.
pub fn matches(group: &Group, row: &Value, cat: &Catalogue, ctx: &EvalContext) -> bool {
    Predicate::new(group, cat, ctx).matches(row)
}

fn eval(l: &Lowered, row: &Value, psa: Psa) -> bool {
    match l {
        Lowered::Cmp { path, op, value } => test(field(row, psa, path), *op, value),
        Lowered::Custom { caption, op, value } => custom(row, psa, caption, *op, value),
        Lowered::All(parts) => parts.iter().all(|p| eval(p, row, psa)),
        Lowered::Any(parts) => parts.iter().any(|p| eval(p, row, psa)),
        Lowered::Nothing => false,
    }
}

/// The value of a native field path in a row (`None` when missing).
pub fn field<'r>(row: &'r Value, psa: Psa, path: &str) -> Option<&'r Value> {
    match psa {
        Psa::ConnectWise => {
            let walk = |start: &'r Value| {
                path.split('/')
                    .try_fold(start, |v, seg| v.as_object()?.get(seg))
            };
            let first = path.split('/').next().unwrap_or(path);
            match row.get(first) {
                Some(_) => walk(row),
                None => walk(row.get("_info")?),
            }
        }
        Psa::Autotask => {
            let obj = row.as_object()?;
            obj.get(path).or_else(|| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(path))
                    .map(|(_, v)| v)
            })
        }
        Psa::Halo => row.get(path),
    }
}

/// The values of the custom field entries named `caption` in a row.
pub(crate) fn custom_values<'r>(
    row: &'r Value,
    psa: Psa,
    caption: &str,
) -> impl Iterator<Item = Option<&'r Value>> + 'r {
    let (list, key) = match psa {
        Psa::ConnectWise => ("customFields", "caption"),
        Psa::Autotask => ("userDefinedFields", "name"),
        Psa::Halo => ("customfields", "name"),
    };
    let caption = fold(caption);
    row.get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |e| {
            e.get(key)
                .and_then(Value::as_str)
                .is_some_and(|c| fold(c) == caption)
        })
        .map(|e| e.get("value"))
}

fn custom(row: &Value, psa: Psa, caption: &str, op: Operator, value: &Operand) -> bool {
    match op {
        Operator::Null => !custom(row, psa, caption, Operator::NotNull, value),
        _ => custom_values(row, psa, caption).any(|v| test(v, op, value)),
    }
}

/// Whether a row value satisfies `op value` (see the module doc).
pub(crate) fn test(v: Option<&Value>, op: Operator, value: &Operand) -> bool {
    use Operator::*;
    let v = v.filter(|v| !v.is_null());
    let Some(v) = v else {
        return op == Null;
    };
    let ord = |s: &Scalar| compare(v, s);
    match (op, value) {
        (Null, _) => false,
        (NotNull, _) => true,
        (Eq, Operand::One(s)) => ord(s) == Some(Ordering::Equal),
        (Ne, Operand::One(s)) => matches!(ord(s), Some(o) if o.is_ne()),
        (Lt, Operand::One(s)) => matches!(ord(s), Some(o) if o.is_lt()),
        (Le, Operand::One(s)) => matches!(ord(s), Some(o) if o.is_le()),
        (Gt, Operand::One(s)) => matches!(ord(s), Some(o) if o.is_gt()),
        (Ge, Operand::One(s)) => matches!(ord(s), Some(o) if o.is_ge()),
        (In, Operand::List(xs)) => xs.iter().any(|s| ord(s) == Some(Ordering::Equal)),
        (NotIn, Operand::List(xs)) => xs.iter().all(|s| matches!(ord(s), Some(o) if o.is_ne())),
        (Between, Operand::Range(a, b)) => {
            matches!(ord(a), Some(o) if o.is_ge()) && matches!(ord(b), Some(o) if o.is_le())
        }
        (Contains | DoesNotContain | BeginsWith | EndsWith, Operand::One(Scalar::String(s))) => {
            let Value::String(text) = v else {
                return false;
            };
            let (text, s) = (fold(text), fold(s));
            match op {
                Contains => text.contains(&s),
                DoesNotContain => !text.contains(&s),
                BeginsWith => text.starts_with(&s),
                _ => text.ends_with(&s),
            }
        }
        // Shapes validation does not produce.
        _ => false,
    }
}

/// Case folding for text comparisons.
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// How a row value orders against a rule's scalar; `None` when incomparable.
fn compare(v: &Value, s: &Scalar) -> Option<Ordering> {
    match (v, s) {
        (Value::Number(a), Scalar::Number(b)) => compare_numbers(a, b),
        (Value::String(a), Scalar::Number(b)) => {
            compare_numbers(&serde_json::from_str(a.trim()).ok()?, b)
        }
        (Value::String(a), Scalar::String(b)) => Some(fold(a).cmp(&fold(b))),
        (Value::String(a), Scalar::DateTime(b)) => Some(parse_instant(a)?.cmp(b)),
        (Value::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    fn int(n: &serde_json::Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// A row's datetime: RFC 3339, or an offset-less datetime taken as UTC.
pub fn parse_instant(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok().or_else(|| {
        let dt = s.parse::<jiff::civil::DateTime>().ok()?;
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::compile::test_support::tree;
    use crate::compile::tickets;

    fn cw_row() -> Value {
        json!({
          "id": 69, "summary": "Printer on FIRE", "recordType": "ServiceTicket",
          "board":   {"id": 1, "name": "Service A"},
          "status":  {"id": 1, "name": "New"},
          "priority":{"id": 8, "name": "Priority 3 - Normal"},
          "company": {"id": 24, "identifier": "ABC", "name": "Acme Corp"},
          "owner": {"id": 5, "identifier": "User1"},
          "closedFlag": false, "closedDate": null, "parentTicketId": null,
          "requiredDate": "2017-03-03T00:00:00Z", "severity": "Medium", "impact": "Medium",
          "customFields": [
            {"id": 1, "caption": "Story Points", "type": "Number", "value": 5},
            {"id": 2, "caption": "Region", "type": "Text", "value": "West"},
            {"id": 3, "caption": "Empty", "type": "Text", "value": null}
          ],
          "_info": {"dateEntered": "2005-05-27T17:30:19Z", "lastUpdated": "2016-03-08T21:59:20Z"}
        })
    }

    fn at_row() -> Value {
        json!({"id": 100, "ticketNumber": "T20120604.0002.005", "title": "VPN down", "status": 10,
          "priority": 3, "queueID": 29682833, "companyID": 174, "assignedResourceID": 10,
          "issueType": 10, "createDate": "2019-08-18T01:00:00.000Z",
          "lastActivityDate": "2019-09-23T11:00:00.000Z", "completedDate": null,
          "dueDateTime": "2012-09-07T01:00:00.000Z",
          "userDefinedFields": [{"name": "Region", "value": "West"}, {"name": "Seats", "value": "12"}]})
    }

    fn rule(field: &str, op: &str, value: Value) -> Value {
        if let Some(c) = field.strip_prefix("custom:") {
            json!({"custom_field": c, "operator": op, "value": value})
        } else {
            json!({"field": field, "operator": op, "value": value})
        }
    }

    fn check(psa: Psa, row: &Value, ctx: &EvalContext, cases: &[(&str, &str, Value, bool)]) {
        for (field, op, value, want) in cases {
            let g = tree(json!({"combinator": "and", "rules": [rule(field, op, value.clone())]}));
            assert_eq!(
                matches(&g, row, tickets(psa), ctx),
                *want,
                "{psa:?}: {field} {op} {value}"
            );
        }
    }

    #[test]
    fn connectwise_rows() {
        let dt = |s: &str| json!({"$datetime": s});
        check(
            Psa::ConnectWise,
            &cw_row(),
            &EvalContext::default(),
            &[
                ("$id", "=", json!(69), true),
                ("$id", "between", json!([69, 70]), true),
                ("$id", "between", json!([60, 68]), false),
                ("$created", ">=", dt("2005-05-27T17:30:19Z"), true),
                ("$created", ">", dt("2005-05-27T17:30:19Z"), false),
                ("$created", "<", dt("2005-05-27T19:30:19+02:00"), false),
                ("_info/lastUpdated", "<", dt("2017-01-01T00:00:00Z"), true),
                ("lastUpdated", "<", dt("2017-01-01T00:00:00Z"), true),
                ("requiredDate", "=", dt("2017-03-03T00:00:00Z"), true),
                ("$closed", "=", json!(false), true),
                ("$closed", "!=", json!(true), true),
                ("$company", "=", json!(24), true),
                ("$company", "=", json!("ACME corp"), true),
                ("$company", "in", json!([1, "acme corp"]), true),
                ("$company", "notIn", json!([1, "Other"]), true),
                ("$company", "notIn", json!([24, "Other"]), false),
                ("$company", "beginsWith", json!("acme"), true),
                ("$assignee", "=", json!("user1"), true),
                ("$queue", "=", json!("Service A"), true),
                ("$status", "in", json!([1, 2]), true),
                ("$priority", "=", json!(8), true),
                ("summary", "contains", json!("fire"), true),
                ("summary", "doesNotContain", json!("fire"), false),
                ("summary", "endsWith", json!("FIRE"), true),
                ("summary", ">", json!("printer"), true),
                // SQL nulls: only `null` holds on a null or missing value.
                ("closedDate", "null", Value::Null, true),
                ("closedDate", "notNull", Value::Null, false),
                ("parentTicketId", "!=", json!(3), false),
                ("parentTicketId", "notIn", json!([3]), false),
                ("contact/name", "doesNotContain", json!("x"), false),
                ("contact/name", "null", Value::Null, true),
                ("noSuchField", "!=", json!("x"), false),
                // A type mismatch is incomparable.
                ("board/id", "=", json!("1"), false),
                ("board", "=", json!(1), false),
                ("custom:region", "=", json!("west"), true),
                ("custom:Region", "!=", json!("West"), false),
                ("custom:Story Points", ">=", json!(5), true),
                ("custom:Story Points", "contains", json!("5"), false),
                ("custom:Empty", "null", Value::Null, true),
                ("custom:Empty", "!=", json!("x"), false),
                ("custom:Missing", "null", Value::Null, true),
                ("custom:Missing", "notNull", Value::Null, false),
            ],
        );
    }

    #[test]
    fn autotask_rows() {
        let dt = |s: &str| json!({"$datetime": s});
        let ctx = EvalContext {
            complete_status_ids: vec![5, 10],
        };
        check(
            Psa::Autotask,
            &at_row(),
            &ctx,
            &[
                ("$id", "=", json!(100), true),
                ("$created", "=", dt("2019-08-18T01:00:00Z"), true),
                (
                    "$updated",
                    "between",
                    json!([dt("2019-09-01T00:00:00Z"), dt("2019-09-23T11:00:00Z")]),
                    true,
                ),
                ("$closed", "=", json!(true), true),
                ("$closed", "in", json!([false]), false),
                ("$closed", "notIn", json!([false]), true),
                ("$closed", "notNull", Value::Null, true),
                ("$company", "=", json!(174), true),
                // Picklists are integers: a name matches nothing.
                ("$company", "=", json!("Acme"), false),
                ("$company", "notIn", json!(["Acme"]), false),
                ("$company", "in", json!([174, "Acme"]), true),
                ("$queue", "=", json!(29682833), true),
                ("$assignee", "!=", json!(10), false),
                ("$priority", "<", json!(4), true),
                ("TITLE", "beginsWith", json!("vpn"), true),
                ("completedDate", "null", Value::Null, true),
                ("completedDate", "<", dt("2030-01-01T00:00:00Z"), false),
                ("custom:region", "in", json!(["East", "WEST"]), true),
                ("custom:Seats", ">", json!(9), true),
                ("custom:Seats", "=", json!("12"), true),
            ],
        );
        let default = EvalContext::default();
        check(
            Psa::Autotask,
            &at_row(),
            &default,
            &[
                ("$closed", "=", json!(false), true),
                ("$closed", "=", json!(true), false),
            ],
        );
        let none = EvalContext {
            complete_status_ids: vec![],
        };
        check(
            Psa::Autotask,
            &at_row(),
            &none,
            &[
                ("$closed", "=", json!(false), true),
                ("$closed", "=", json!(true), false),
            ],
        );
    }

    #[test]
    fn halo_rows() {
        let row = json!({"id": 7, "summary": "Laptop", "client_id": 3, "client_name": "Acme",
            "status_id": 2, "team": "Service Desk", "agent_id": 4, "hasbeenclosed": false,
            "dateoccurred": "2026-04-02T10:00:00", "customfields": [{"name": "Region", "value": "West"}]});
        let dt = |s: &str| json!({"$datetime": s});
        check(
            Psa::Halo,
            &row,
            &EvalContext::default(),
            &[
                ("$company", "=", json!("acme"), true),
                ("$company", "=", json!(3), true),
                ("$queue", "=", json!("service desk"), true),
                ("$queue", "=", json!(1), false),
                ("$status", "=", json!("New"), false),
                ("$closed", "=", json!(false), true),
                ("$created", ">=", dt("2026-04-02T10:00:00Z"), true),
                ("$created", ">", dt("2026-04-02T10:00:00Z"), false),
                ("custom:Region", "=", json!("West"), true),
            ],
        );
    }

    #[test]
    fn groups() {
        let g = tree(json!({"combinator": "or", "rules": [
            {"field": "$id", "operator": "=", "value": 1},
            {"combinator": "and", "rules": [
                {"field": "$priority", "operator": "=", "value": 8},
                {"field": "$closed", "operator": "=", "value": false}]}]}));
        assert!(matches(
            &g,
            &cw_row(),
            tickets(Psa::ConnectWise),
            &EvalContext::default()
        ));
        let p = Predicate::new(&g, tickets(Psa::ConnectWise), &EvalContext::default());
        let mut closed = cw_row();
        closed["closedFlag"] = json!(true);
        assert!(!p.matches(&closed));
    }

    #[test]
    fn instants() {
        assert_eq!(
            parse_instant("2019-08-18T01:00:00.000Z"),
            Some("2019-08-18T01:00:00Z".parse().unwrap())
        );
        assert_eq!(
            parse_instant("2019-08-18T01:00:00"),
            Some("2019-08-18T01:00:00Z".parse().unwrap())
        );
        assert_eq!(parse_instant("yesterday"), None);
    }
}
