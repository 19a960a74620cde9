//! The Autotask query (docs/psa.md §2.4): parsing and validation of a query body (`filter`, `MaxRecords`,
//! `IncludeFields`) against one entity's fields ([`AtEntity`]), and evaluation of its filter over the Autotask JSON
//! rows.
//!
//! All 13 operators (`eq noteq gt gte lt lte beginsWith endsWith contains exist notExist in notIn`) and nested
//! `and`/`or` groups with `items`. Field names, operator names and object keys are case-insensitive. Values are
//! typed by the field (strict booleans, ISO-8601 datetimes). `udf:true` conditions look into `userDefinedFields[]`,
//! one user-defined field per query. A comparison against a null column is false (`exist`/`notExist` excepted).

use std::borrow::Cow;
use std::cmp::Ordering;

use axum::body::Bytes;
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::config::Limits;
use crate::eval::{cmp_ci, parse_datetime, scalar_text};
use crate::records::{Fields, Kind};

/// What a filter on one entity may name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AtEntity {
    /// The singular entity name of error messages (`Ticket`, `Company`).
    pub name: &'static str,
    /// Queryable fields (canonical spelling, type).
    pub fields: Fields,
    /// Fields that exist but cannot be queried (docs/psa.md §2.4).
    pub non_queryable: &'static [&'static str],
    /// The names of the entity's user-defined fields.
    pub udfs: &'static [&'static str],
}

/// The ticket entity: its compile table's fields, two that cannot be queried, and the Region UDF.
pub(crate) const TICKET: AtEntity = AtEntity {
    name: "Ticket",
    fields: crate::records::fields::at::TICKET,
    non_queryable: &["creatorType", "lastActivityPersonType"],
    udfs: &[crate::data::REGION_CAPTION],
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AtOp {
    Eq,
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    BeginsWith,
    EndsWith,
    Contains,
    Exist,
    NotExist,
    In,
    NotIn,
}

impl AtOp {
    fn parse(s: &str) -> Option<AtOp> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => AtOp::Eq,
            "noteq" => AtOp::NotEq,
            "gt" => AtOp::Gt,
            "gte" => AtOp::Gte,
            "lt" => AtOp::Lt,
            "lte" => AtOp::Lte,
            "beginswith" => AtOp::BeginsWith,
            "endswith" => AtOp::EndsWith,
            "contains" => AtOp::Contains,
            "exist" => AtOp::Exist,
            "notexist" => AtOp::NotExist,
            "in" => AtOp::In,
            "notin" => AtOp::NotIn,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Scalar {
    Num(f64),
    Text(String),
    Time(Timestamp),
    Bool(bool),
}

#[derive(Clone, Debug)]
enum Target {
    Field(&'static str),
    Udf(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Cond {
    op: AtOp,
    target: Target,
    values: Vec<Scalar>,
}

/// A parsed filter tree. The top-level array is an implicit AND.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Cond(Cond),
}

impl AtEntity {
    /// Resolves a field name (any case) to its canonical spelling and type.
    pub(crate) fn resolve(&self, name: &str) -> Option<(&'static str, Kind)> {
        self.fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(name))
            .copied()
    }
}

/// Looks up `key` in a JSON object ignoring case.
pub(crate) fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

struct Ctx<'e> {
    entity: &'e AtEntity,
    /// Distinct user-defined field names queried (lower-cased).
    udfs: Vec<String>,
    /// The first UDF name that the entity does not have.
    unknown_udf: Option<String>,
    or_items: usize,
}

/// Parses the `filter` array of a query on `entity`. Errors are the text of Autotask's
/// `{"errors":[…]}`.
pub(crate) fn parse_filter(
    filter: &Value,
    max_or: usize,
    entity: &AtEntity,
) -> Result<Node, String> {
    let items = filter
        .as_array()
        .ok_or_else(|| "The filter must be an array of conditions.".to_string())?;
    if items.is_empty() {
        return Err("A query requires at least one filter condition.".into());
    }
    let mut ctx = Ctx {
        entity,
        udfs: Vec::new(),
        unknown_udf: None,
        or_items: 0,
    };
    let nodes = items
        .iter()
        .map(|n| parse_node(n, &mut ctx, 0))
        .collect::<Result<Vec<_>, _>>()?;
    if ctx.udfs.len() > 1 {
        return Err("You can only query by one user-defined field at a time.".into());
    }
    if let Some(name) = ctx.unknown_udf {
        return Err(format!(
            "'{name}' is not a user-defined field of the {} entity.",
            entity.name
        ));
    }
    if ctx.or_items > max_or {
        return Err(format!(
            "Queries are limited to {max_or} or fewer 'OR' conditions (this query has {}).",
            ctx.or_items
        ));
    }
    Ok(Node::And(nodes))
}

fn parse_node(node: &Value, ctx: &mut Ctx<'_>, depth: usize) -> Result<Node, String> {
    if depth > 32 {
        return Err("The filter is nested too deeply.".into());
    }
    let obj = node
        .as_object()
        .ok_or_else(|| format!("Each filter item must be an object, not {node}."))?;
    let op_text = get_ci(obj, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Filter item {node} has no 'op'."))?;
    if op_text.eq_ignore_ascii_case("and") || op_text.eq_ignore_ascii_case("or") {
        let items = get_ci(obj, "items")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("The '{op_text}' group needs a non-empty 'items' array."))?;
        let children = items
            .iter()
            .map(|n| parse_node(n, ctx, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if op_text.eq_ignore_ascii_case("or") {
            ctx.or_items += children.len();
            Node::Or(children)
        } else {
            Node::And(children)
        });
    }
    let op = AtOp::parse(op_text)
        .ok_or_else(|| format!("'{op_text}' is not a valid filter operator."))?;
    let field = get_ci(obj, "field")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Filter item {node} has no 'field'."))?;
    let udf = match get_ci(obj, "udf") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("'udf' must be true or false, not {other}.")),
    };
    let (target, ty) = if udf {
        let key = field.to_lowercase();
        if !ctx.udfs.contains(&key) {
            ctx.udfs.push(key);
        }
        let name = match ctx
            .entity
            .udfs
            .iter()
            .find(|u| u.eq_ignore_ascii_case(field))
        {
            Some(name) => name.to_string(),
            None => {
                ctx.unknown_udf.get_or_insert_with(|| field.to_string());
                field.to_string()
            }
        };
        (Target::Udf(name), Kind::Text)
    } else {
        let entity = ctx.entity;
        if entity
            .non_queryable
            .iter()
            .any(|f| f.eq_ignore_ascii_case(field))
        {
            return Err(format!("The field '{field}' cannot be queried."));
        }
        let (canonical, ty) = entity.resolve(field).ok_or_else(|| {
            format!(
                "Unable to find the field '{field}' in the {} entity.",
                entity.name
            )
        })?;
        (Target::Field(canonical), ty)
    };

    match op {
        AtOp::Gt | AtOp::Gte | AtOp::Lt | AtOp::Lte if ty == Kind::Bool => {
            return Err(format!(
                "The operator '{op_text}' cannot be used with the boolean field '{field}'."
            ));
        }
        AtOp::BeginsWith | AtOp::EndsWith | AtOp::Contains if ty != Kind::Text => {
            return Err(format!(
                "The operator '{op_text}' can only be used with string fields, not '{field}'."
            ));
        }
        _ => {}
    }

    let value = get_ci(obj, "value");
    let values = match op {
        AtOp::Exist | AtOp::NotExist => Vec::new(),
        AtOp::In | AtOp::NotIn => {
            let list = value
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| {
                    format!("The operator '{op_text}' needs a non-empty array value for '{field}'.")
                })?;
            list.iter()
                .map(|v| typed(v, ty, field))
                .collect::<Result<Vec<_>, _>>()?
        }
        _ => {
            let v = value
                .ok_or_else(|| format!("The operator '{op_text}' needs a value for '{field}'."))?;
            vec![typed(v, ty, field)?]
        }
    };
    Ok(Node::Cond(Cond { op, target, values }))
}

/// Converts a filter value to the field's type, as Autotask validates it.
fn typed(v: &Value, ty: Kind, field: &str) -> Result<Scalar, String> {
    let invalid = || format!("The value {v} is not valid for the field '{field}'.");
    match (ty, v) {
        (_, Value::Null) => Err(format!(
            "A null value is not valid for '{field}'; use the exist or notExist operator."
        )),
        (Kind::Bool, Value::Bool(b)) => Ok(Scalar::Bool(*b)),
        (Kind::Bool, _) => Err(format!(
            "The value {v} is not valid for the boolean field '{field}'; use true or false."
        )),
        (Kind::Number, Value::Number(n)) => n.as_f64().map(Scalar::Num).ok_or_else(invalid),
        (Kind::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Scalar::Num)
            .map_err(|_| invalid()),
        (Kind::DateTime, Value::String(s)) => {
            parse_datetime(s).map(Scalar::Time).ok_or_else(invalid)
        }
        (Kind::Text, v) => scalar_text(v).map(Scalar::Text).ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

impl Node {
    /// Whether the Autotask row satisfies the filter.
    pub(crate) fn matches(&self, row: &Value) -> bool {
        match self {
            Node::And(items) => items.iter().all(|n| n.matches(row)),
            Node::Or(items) => items.iter().any(|n| n.matches(row)),
            Node::Cond(c) => c.matches(row),
        }
    }
}

impl Cond {
    fn column<'a>(&self, row: &'a Value) -> &'a Value {
        match &self.target {
            Target::Field(f) => row.get(*f).unwrap_or(&Value::Null),
            Target::Udf(name) => row
                .get("userDefinedFields")
                .and_then(Value::as_array)
                .and_then(|udfs| {
                    udfs.iter().find(|u| {
                        u.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                    })
                })
                .and_then(|u| u.get("value"))
                .unwrap_or(&Value::Null),
        }
    }

    fn matches(&self, row: &Value) -> bool {
        let v = self.column(row);
        let present = !(v.is_null() || v.as_str().is_some_and(str::is_empty));
        match self.op {
            AtOp::Exist => return present,
            AtOp::NotExist => return !present,
            _ if v.is_null() => return false,
            _ => {}
        }
        let first = self.values.first();
        let ord = |s: &Scalar| compare(v, s);
        match self.op {
            AtOp::Eq => first.and_then(ord) == Some(Ordering::Equal),
            AtOp::NotEq => first.and_then(ord).is_some_and(Ordering::is_ne),
            AtOp::Gt => first.and_then(ord) == Some(Ordering::Greater),
            AtOp::Gte => first.and_then(ord).is_some_and(Ordering::is_ge),
            AtOp::Lt => first.and_then(ord) == Some(Ordering::Less),
            AtOp::Lte => first.and_then(ord).is_some_and(Ordering::is_le),
            AtOp::In => self.values.iter().any(|s| ord(s) == Some(Ordering::Equal)),
            AtOp::NotIn => !self.values.iter().any(|s| ord(s) == Some(Ordering::Equal)),
            AtOp::BeginsWith | AtOp::EndsWith | AtOp::Contains => {
                let (Some(text), Some(Scalar::Text(needle))) = (scalar_text(v), first) else {
                    return false;
                };
                let (text, needle) = (text.to_lowercase(), needle.to_lowercase());
                match self.op {
                    AtOp::BeginsWith => text.starts_with(&needle),
                    AtOp::EndsWith => text.ends_with(&needle),
                    _ => text.contains(&needle),
                }
            }
            AtOp::Exist | AtOp::NotExist => false,
        }
    }
}

fn compare(v: &Value, s: &Scalar) -> Option<Ordering> {
    match (v, s) {
        (Value::Number(n), Scalar::Num(x)) => n.as_f64()?.partial_cmp(x),
        (Value::String(t), Scalar::Time(x)) => parse_datetime(t).map(|t| t.cmp(x)),
        (Value::Bool(b), Scalar::Bool(x)) => Some(b.cmp(x)),
        (v, Scalar::Text(x)) => scalar_text(v).map(|t| cmp_ci(&t, x)),
        _ => None,
    }
}

/// A validated query (`{"filter", "MaxRecords", "IncludeFields"}`): filter, projection and page size.
pub(crate) struct QueryInput {
    /// The conditions.
    pub filter: Node,
    /// `IncludeFields`, `id` first.
    include: Option<Vec<&'static str>>,
    /// The page size.
    pub max_records: usize,
}

/// A query sent as the `search` parameter.
pub(crate) fn parse_query_text(
    text: &str,
    limits: &Limits,
    entity: &AtEntity,
) -> Result<QueryInput, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("The query is not valid JSON: {e}."))?;
    parse_query(&value, limits, entity)
}

/// A query sent as the request body.
pub(crate) fn parse_query_body(
    body: &Bytes,
    limits: &Limits,
    entity: &AtEntity,
) -> Result<QueryInput, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("The request body must contain a query.".to_string());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("The query is not valid JSON: {e}."))?;
    parse_query(&value, limits, entity)
}

fn parse_query(value: &Value, limits: &Limits, entity: &AtEntity) -> Result<QueryInput, String> {
    let obj = value
        .as_object()
        .ok_or_else(|| "The query must be a JSON object with a 'filter' array.".to_string())?;
    let filter = get_ci(obj, "filter")
        .ok_or_else(|| "A query requires at least one filter condition.".to_string())?;
    let filter = parse_filter(filter, limits.at_max_or_conditions, entity)?;
    let max = limits.at_max_records.max(1);
    let max_records = match get_ci(obj, "MaxRecords") {
        None | Some(Value::Null) => max,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=max as u64).contains(&n) => n as usize,
            _ => return Err(format!("MaxRecords must be between 1 and {max}, not {v}.")),
        },
    };
    let include = match get_ci(obj, "IncludeFields") {
        None | Some(Value::Null) => None,
        Some(Value::Array(names)) if names.is_empty() => None,
        Some(Value::Array(names)) => {
            let mut fields = vec!["id"];
            for n in names {
                let name = n
                    .as_str()
                    .ok_or_else(|| format!("IncludeFields entries must be strings, not {n}."))?;
                let canonical =
                    if !entity.udfs.is_empty() && name.eq_ignore_ascii_case("userDefinedFields") {
                        "userDefinedFields"
                    } else {
                        entity.resolve(name).map(|(c, _)| c).ok_or_else(|| {
                            format!(
                                "Unable to find the field '{name}' in the {} entity.",
                                entity.name
                            )
                        })?
                    };
                if !fields.contains(&canonical) {
                    fields.push(canonical);
                }
            }
            Some(fields)
        }
        Some(other) => return Err(format!("IncludeFields must be an array, not {other}.")),
    };
    Ok(QueryInput {
        filter,
        include,
        max_records,
    })
}

impl QueryInput {
    /// The row with `IncludeFields` only (every field without them).
    pub(crate) fn project(&self, row: Cow<'_, Value>) -> Value {
        let (Some(fields), Value::Object(obj)) = (&self.include, row.as_ref()) else {
            return row.into_owned();
        };
        let out: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| fields.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> Value {
        json!({
            "id": 100, "ticketNumber": "T20250101.0001", "title": "Printer offline at Main Office",
            "status": 1, "priority": 3, "queueID": 3, "companyID": 101, "assignedResourceID": null,
            "createDate": "2025-01-01T10:00:00.000Z", "lastActivityDate": "2025-01-02T10:00:00.000Z",
            "completedDate": null, "serviceLevelAgreementHasBeenMet": true,
            "userDefinedFields": [{"name": "Region", "value": "West"}]
        })
    }

    fn check(filter: Value) -> bool {
        match parse_filter(&filter, 500, &TICKET) {
            Ok(n) => n.matches(&row()),
            Err(e) => panic!("{filter}: {e}"),
        }
    }

    fn err(filter: Value) -> String {
        parse_filter(&filter, 500, &TICKET)
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn operators() {
        assert!(check(json!([{"op":"eq","field":"ID","value":100}])));
        assert!(check(json!([{"op":"noteq","field":"status","value":5}])));
        assert!(check(
            json!([{"op":"gt","field":"createDate","value":"2025-01-01T00:00:00Z"}])
        ));
        assert!(check(json!([{"op":"gte","field":"priority","value":"3"}])));
        assert!(check(
            json!([{"op":"lt","field":"lastActivityDate","value":"2025-01-03"}])
        ));
        assert!(check(json!([{"op":"lte","field":"id","value":100}])));
        assert!(check(
            json!([{"op":"beginsWith","field":"title","value":"printer"}])
        ));
        assert!(check(
            json!([{"op":"endsWith","field":"title","value":"OFFICE"}])
        ));
        assert!(check(
            json!([{"op":"contains","field":"title","value":"offline"}])
        ));
        assert!(check(json!([{"op":"exist","field":"title"}])));
        assert!(check(
            json!([{"op":"notExist","field":"assignedResourceID"}])
        ));
        assert!(check(json!([{"op":"in","field":"queueID","value":[1,3]}])));
        assert!(check(
            json!([{"op":"notIn","field":"status","value":[5,13]}])
        ));
        assert!(!check(
            json!([{"op":"noteq","field":"assignedResourceID","value":5}])
        ));
        assert!(check(
            json!([{"op":"eq","field":"serviceLevelAgreementHasBeenMet","value":true}])
        ));
        assert!(check(
            json!([{"op":"eq","field":"Region","udf":true,"value":"west"}])
        ));
    }

    #[test]
    fn groups() {
        assert!(check(json!([
            {"op":"or","items":[{"op":"eq","field":"id","value":1},{"op":"and","items":[
                {"op":"eq","field":"status","value":1},{"op":"eq","field":"priority","value":3}]}]}
        ])));
        assert!(!check(json!([
            {"op":"eq","field":"id","value":100},
            {"op":"or","items":[{"op":"eq","field":"status","value":5},{"op":"eq","field":"priority","value":1}]}
        ])));
    }

    #[test]
    fn validation() {
        assert!(err(json!([])).contains("at least one"));
        assert!(err(json!([{"op":"like","field":"id","value":1}]))
            .contains("not a valid filter operator"));
        assert!(err(json!([{"op":"eq","field":"nosuch","value":1}])).contains("Unable to find"));
        assert!(
            err(json!([{"op":"eq","field":"creatorType","value":1}])).contains("cannot be queried")
        );
        assert!(
            err(json!([{"op":"eq","field":"serviceLevelAgreementHasBeenMet","value":"true"}]))
                .contains("true or false")
        );
        assert!(
            err(json!([{"op":"eq","field":"createDate","value":"soon"}])).contains("not valid")
        );
        assert!(err(json!([{"op":"in","field":"id","value":[]}])).contains("non-empty"));
        assert!(err(json!([{"op":"contains","field":"id","value":"1"}])).contains("string fields"));
        assert!(
            err(json!([{"op":"eq","field":"Tier","udf":true,"value":"x"}]))
                .contains("not a user-defined")
        );
        assert!(err(json!([
            {"op":"eq","field":"Region","udf":true,"value":"West"},
            {"op":"eq","field":"Tier","udf":true,"value":"Gold"}
        ]))
        .contains("one user-defined field"));
        let many: Vec<Value> = (0..501)
            .map(|i| json!({"op":"eq","field":"id","value":i}))
            .collect();
        assert!(err(json!([{"op":"or","items":many}])).contains("500 or fewer 'OR' conditions"));
    }
}
