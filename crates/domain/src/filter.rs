//! `filter_spec` (docs/api.md §5): parsing and validation into a typed tree that the PSA connectors
//! compile. Parsing resolves relative `{"$ago": ...}` values against the creation instant, so
//! the stored spec is frozen.

use jiff::{Span, Timestamp};
use serde_json::{Map, Value};

use crate::FieldError;

pub const MAX_DEPTH: usize = 4;
pub const MAX_RULES: usize = 200;
pub const MAX_LIST_VALUES: usize = 500;
pub const MAX_ENTITY_IDS: usize = 100_000;
pub const MAX_LIMIT: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq)]
pub enum FilterSpec {
    /// An explicit list of entity ids: no PSA query.
    EntityIds(Vec<String>),
    /// A rule tree evaluated by the tenant's PSA, with an optional cap on matches.
    Query { root: Group, limit: Option<u64> },
}

/// Whether `s` can be an entity id: 1 to 64 bytes, no control character. The rule of an
/// explicit `entity_ids` list, and of the `entity_id` a search names.
pub fn is_entity_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && !s.chars().any(char::is_control)
}

impl FilterSpec {
    /// How many entities a backfill of this filter runs over when the PSA matches `matched`:
    /// an id list's length, or the matches capped by the query's `limit` (the snapshot stops
    /// there). The one rule behind the create's `total_estimated` and cost estimate and the
    /// preflight's count.
    pub fn snapshot_size(&self, matched: u64) -> u64 {
        match self {
            FilterSpec::EntityIds(ids) => ids.len() as u64,
            FilterSpec::Query { limit, .. } => limit.map_or(matched, |l| matched.min(l)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combinator {
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub combinator: Combinator,
    pub rules: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Group(Group),
    Rule(Rule),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub field: Field,
    pub operator: Operator,
    pub value: Operand,
    /// JSON path of this rule in the request, for error messages of later stages.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alias {
    Id,
    Created,
    Updated,
    Closed,
    Company,
    Status,
    Priority,
    Queue,
    Assignee,
}

impl Alias {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "$id" => Self::Id,
            "$created" => Self::Created,
            "$updated" => Self::Updated,
            "$closed" => Self::Closed,
            "$company" => Self::Company,
            "$status" => Self::Status,
            "$priority" => Self::Priority,
            "$queue" => Self::Queue,
            "$assignee" => Self::Assignee,
            _ => return None,
        })
    }
    fn kind(self) -> ValueKind {
        match self {
            Self::Id => ValueKind::Number,
            Self::Created | Self::Updated => ValueKind::DateTime,
            Self::Closed => ValueKind::Bool,
            Self::Company | Self::Status | Self::Priority | Self::Queue | Self::Assignee => {
                ValueKind::NameOrId
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Alias(Alias),
    /// A native field path of the PSA, e.g. `board/name`.
    Native(String),
    /// A custom (user-defined) field, by caption.
    Custom(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Between,
    Contains,
    DoesNotContain,
    BeginsWith,
    EndsWith,
    Null,
    NotNull,
}

impl Operator {
    /// Every operator as written in a rule (what [`Operator::parse`] takes).
    pub const NAMES: [&'static str; 15] = [
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

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "=" => Self::Eq,
            "!=" => Self::Ne,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            "in" => Self::In,
            "notIn" => Self::NotIn,
            "between" => Self::Between,
            "contains" => Self::Contains,
            "doesNotContain" => Self::DoesNotContain,
            "beginsWith" => Self::BeginsWith,
            "endsWith" => Self::EndsWith,
            "null" => Self::Null,
            "notNull" => Self::NotNull,
            _ => return None,
        })
    }
}

/// A scalar value of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    DateTime(Timestamp),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    None,
    One(Scalar),
    List(Vec<Scalar>),
    Range(Scalar, Scalar),
}

/// What values a field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    Number,
    String,
    DateTime,
    /// A reference by name (string) or id (number).
    NameOrId,
    /// Anything scalar (native fields without a catalogue entry type).
    Any,
}

/// The native fields a PSA knows for an entity type. The PSA connectors provide one per PSA;
/// without a catalogue only the path syntax of native fields is checked.
pub trait FieldCatalogue {
    /// `None` if the field is unknown.
    fn native_field(&self, path: &str) -> Option<ValueKind>;

    /// Whether `alias` means something on this entity type; the error says why not.
    fn alias(&self, _alias: Alias) -> Result<(), String> {
        Ok(())
    }
}

fn err(field: impl Into<String>, msg: impl Into<String>) -> FieldError {
    FieldError::new(field, msg)
}

/// Parses and validates a `filter_spec`, returning the typed tree and the spec as it is stored
/// (relative `$ago` values replaced by absolute `$datetime`s).
pub fn parse(
    spec: &Value,
    now: Timestamp,
    catalogue: Option<&dyn FieldCatalogue>,
) -> Result<(FilterSpec, Value), FieldError> {
    let root = "filter_spec";
    let obj = spec
        .as_object()
        .ok_or_else(|| err(root, "filter_spec must be an object"))?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "conditions" | "entity_ids" | "limit") {
            return Err(err(
                format!("{root}.{k}"),
                "unknown member (expected conditions, limit or entity_ids)",
            ));
        }
    }
    match (obj.get("conditions"), obj.get("entity_ids")) {
        (Some(_), Some(_)) => Err(err(
            format!("{root}.entity_ids"),
            "give either conditions or entity_ids, not both",
        )),
        (None, None) => Err(err(
            root,
            "filter_spec needs conditions (a rule group) or entity_ids",
        )),
        (None, Some(ids)) => {
            if obj.contains_key("limit") {
                return Err(err(
                    format!("{root}.limit"),
                    "limit applies to conditions, not to entity_ids",
                ));
            }
            let ids = parse_entity_ids(ids, &format!("{root}.entity_ids"))?;
            Ok((FilterSpec::EntityIds(ids), spec.clone()))
        }
        (Some(c), None) => {
            let limit = match obj.get("limit") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            err(
                                format!("{root}.limit"),
                                format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                            )
                        })?,
                ),
            };
            let mut p = Parser {
                now,
                catalogue,
                rules: 0,
            };
            let mut stored = c.clone();
            let group = p.group(c, &mut stored, &format!("{root}.conditions"), 1)?;
            let mut out = spec.clone();
            out["conditions"] = stored;
            Ok((FilterSpec::Query { root: group, limit }, out))
        }
    }
}

fn parse_entity_ids(v: &Value, path: &str) -> Result<Vec<String>, FieldError> {
    let arr = v
        .as_array()
        .ok_or_else(|| err(path, "entity_ids must be an array of strings"))?;
    if arr.is_empty() || arr.len() > MAX_ENTITY_IDS {
        return Err(err(
            path,
            format!("entity_ids needs 1 to {MAX_ENTITY_IDS} ids"),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(arr.len());
    let mut out = Vec::with_capacity(arr.len());
    for (i, id) in arr.iter().enumerate() {
        let s = id.as_str().filter(|s| is_entity_id(s)).ok_or_else(|| {
            err(
                format!("{path}[{i}]"),
                "each entity id is a non-empty string of at most 64 characters",
            )
        })?;
        if !seen.insert(s) {
            return Err(err(
                format!("{path}[{i}]"),
                format!("duplicate entity id {s:?}"),
            ));
        }
        out.push(s.to_owned());
    }
    Ok(out)
}

struct Parser<'a> {
    now: Timestamp,
    catalogue: Option<&'a dyn FieldCatalogue>,
    rules: usize,
}

impl Parser<'_> {
    fn group(
        &mut self,
        v: &Value,
        stored: &mut Value,
        path: &str,
        depth: usize,
    ) -> Result<Group, FieldError> {
        if depth > MAX_DEPTH {
            return Err(err(path, format!("groups nest at most {MAX_DEPTH} deep")));
        }
        let obj = v
            .as_object()
            .ok_or_else(|| err(path, "a rule group must be an object"))?;
        for k in obj.keys() {
            match k.as_str() {
                "combinator" | "rules" | "id" => {}
                "not" => {
                    return Err(err(
                        format!("{path}.not"),
                        "negated groups are not supported",
                    ))
                }
                _ => return Err(err(format!("{path}.{k}"), "unknown member of a rule group")),
            }
        }
        let combinator = match obj.get("combinator").and_then(Value::as_str) {
            Some(c) if c.eq_ignore_ascii_case("and") => Combinator::And,
            Some(c) if c.eq_ignore_ascii_case("or") => Combinator::Or,
            _ => {
                return Err(err(
                    format!("{path}.combinator"),
                    "combinator must be \"and\" or \"or\"",
                ))
            }
        };
        let rules = obj
            .get("rules")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| err(format!("{path}.rules"), "rules must be a non-empty array"))?;
        let mut nodes = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let rpath = format!("{path}.rules[{i}]");
            let slot = &mut stored["rules"][i];
            let is_group = r.get("combinator").is_some() || r.get("rules").is_some();
            if is_group {
                nodes.push(Node::Group(self.group(r, slot, &rpath, depth + 1)?));
            } else {
                nodes.push(Node::Rule(self.rule(r, slot, &rpath)?));
            }
        }
        Ok(Group {
            combinator,
            rules: nodes,
        })
    }

    fn rule(&mut self, v: &Value, stored: &mut Value, path: &str) -> Result<Rule, FieldError> {
        self.rules += 1;
        if self.rules > MAX_RULES {
            return Err(err(path, format!("a filter has at most {MAX_RULES} rules")));
        }
        let obj = v
            .as_object()
            .ok_or_else(|| err(path, "a rule must be an object"))?;
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "field" | "custom_field" | "operator" | "value" | "id" | "valueSource"
            ) {
                return Err(err(format!("{path}.{k}"), "unknown member of a rule"));
            }
        }
        let (field, kind) = match (obj.get("field"), obj.get("custom_field")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    format!("{path}.custom_field"),
                    "give either field or custom_field",
                ))
            }
            (Some(f), None) => {
                let fpath = format!("{path}.field");
                let f = f
                    .as_str()
                    .ok_or_else(|| err(&fpath, "field must be a string"))?;
                if f.starts_with('$') {
                    let a = Alias::parse(f).ok_or_else(|| {
                        err(&fpath, format!("unknown alias {f:?} (known: $id, $created, $updated, $closed, $company, $status, $priority, $queue, $assignee)"))
                    })?;
                    if let Some(c) = self.catalogue {
                        c.alias(a).map_err(|m| err(&fpath, m))?;
                    }
                    (Field::Alias(a), a.kind())
                } else {
                    if !valid_native_path(f) {
                        return Err(err(&fpath, format!("{f:?} is not a field path")));
                    }
                    let kind = match self.catalogue {
                        Some(c) => c.native_field(f).ok_or_else(|| {
                            err(
                                &fpath,
                                format!("unknown field {f:?} for this PSA and entity type"),
                            )
                        })?,
                        None => ValueKind::Any,
                    };
                    (Field::Native(f.to_owned()), kind)
                }
            }
            (None, Some(c)) => {
                let fpath = format!("{path}.custom_field");
                let c = c
                    .as_str()
                    .filter(|c| !c.trim().is_empty() && c.len() <= 200)
                    .ok_or_else(|| err(&fpath, "custom_field must be a non-empty caption"))?;
                (Field::Custom(c.to_owned()), ValueKind::Any)
            }
            (None, None) => return Err(err(format!("{path}.field"), "a rule needs a field")),
        };
        let opath = format!("{path}.operator");
        let operator = obj
            .get("operator")
            .and_then(Value::as_str)
            .and_then(Operator::parse)
            .ok_or_else(|| {
                err(&opath, "unknown operator (=, !=, <, <=, >, >=, in, notIn, between, contains, doesNotContain, beginsWith, endsWith, null, notNull)")
            })?;
        let vpath = format!("{path}.value");
        let raw = obj.get("value").unwrap_or(&Value::Null);
        let value = self.operand(operator, kind, raw, &vpath, &opath)?;
        // Store resolved relative datetimes.
        if let Some(s) = stored.get_mut("value") {
            *s = resolved_json(raw, &value);
        }
        Ok(Rule {
            field,
            operator,
            value,
            path: path.to_owned(),
        })
    }

    fn operand(
        &self,
        op: Operator,
        kind: ValueKind,
        raw: &Value,
        vpath: &str,
        opath: &str,
    ) -> Result<Operand, FieldError> {
        use Operator::*;
        match op {
            Null | NotNull => Ok(Operand::None),
            In | NotIn => {
                let arr = raw
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| err(vpath, "in/notIn take a non-empty array"))?;
                if arr.len() > MAX_LIST_VALUES {
                    return Err(err(
                        vpath,
                        format!("a list has at most {MAX_LIST_VALUES} values"),
                    ));
                }
                let mut out = Vec::with_capacity(arr.len());
                for (i, v) in arr.iter().enumerate() {
                    out.push(self.scalar(v, kind, &format!("{vpath}[{i}]"))?);
                }
                Ok(Operand::List(out))
            }
            Between => {
                let arr = raw
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or_else(|| err(vpath, "between takes an array of two values"))?;
                let a = self.scalar(&arr[0], kind, &format!("{vpath}[0]"))?;
                let b = self.scalar(&arr[1], kind, &format!("{vpath}[1]"))?;
                if !orderable(&a) || std::mem::discriminant(&a) != std::mem::discriminant(&b) {
                    return Err(err(
                        vpath,
                        "between takes two numbers, strings or datetimes of one kind",
                    ));
                }
                Ok(Operand::Range(a, b))
            }
            Contains | DoesNotContain | BeginsWith | EndsWith => {
                if matches!(
                    kind,
                    ValueKind::Bool | ValueKind::Number | ValueKind::DateTime
                ) {
                    return Err(err(opath, "text operators apply to text fields only"));
                }
                match raw {
                    Value::String(s) if !s.is_empty() => {
                        Ok(Operand::One(Scalar::String(s.clone())))
                    }
                    _ => Err(err(vpath, "text operators take a non-empty string")),
                }
            }
            Lt | Le | Gt | Ge => {
                if kind == ValueKind::Bool {
                    return Err(err(opath, "a boolean field has no order"));
                }
                let s = self.scalar(raw, kind, vpath)?;
                if !orderable(&s) {
                    return Err(err(vpath, "comparisons take a number, string or datetime"));
                }
                Ok(Operand::One(s))
            }
            Eq | Ne => Ok(Operand::One(self.scalar(raw, kind, vpath)?)),
        }
    }

    fn scalar(&self, v: &Value, kind: ValueKind, path: &str) -> Result<Scalar, FieldError> {
        let s = match v {
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::Number(n.clone()),
            Value::String(s) => Scalar::String(s.clone()),
            Value::Object(o) => Scalar::DateTime(self.datetime(o, path)?),
            Value::Null => {
                return Err(err(path, "use the null/notNull operators to test for null"))
            }
            Value::Array(_) => {
                return Err(err(path, "a list is only valid with in, notIn or between"))
            }
        };
        let ok = matches!(
            (kind, &s),
            (ValueKind::Any, _)
                | (ValueKind::Bool, Scalar::Bool(_))
                | (ValueKind::Number, Scalar::Number(_))
                | (ValueKind::String, Scalar::String(_))
                | (ValueKind::DateTime, Scalar::DateTime(_))
                | (ValueKind::NameOrId, Scalar::String(_) | Scalar::Number(_))
        );
        if !ok {
            let want = match kind {
                ValueKind::Bool => "a boolean",
                ValueKind::Number => "a number",
                ValueKind::String => "a string",
                ValueKind::DateTime => "{\"$datetime\": ...} or {\"$ago\": ...}",
                ValueKind::NameOrId => "a name (string) or an id (number)",
                ValueKind::Any => unreachable!(),
            };
            return Err(err(path, format!("this field takes {want}")));
        }
        Ok(s)
    }

    fn datetime(&self, o: &Map<String, Value>, path: &str) -> Result<Timestamp, FieldError> {
        match (o.len(), o.get("$datetime"), o.get("$ago")) {
            (1, Some(Value::String(s)), None) => s.parse::<Timestamp>().map_err(|_| {
                err(path, format!("{s:?} is not an RFC 3339 datetime with an offset"))
            }),
            (1, None, Some(Value::String(s))) => {
                let span: Span = s.parse().map_err(|_| {
                    err(path, format!("{s:?} is not an ISO 8601 duration such as P30D"))
                })?;
                if span.is_negative() || span.is_zero() {
                    return Err(err(path, "$ago takes a positive duration"));
                }
                // Whole seconds: the stored spec shows `YYYY-MM-DDTHH:MM:SSZ`, and a PSA compiles it exactly.
                let now = jiff::Timestamp::from_second(self.now.as_second()).unwrap_or(self.now);
                now.to_zoned(jiff::tz::TimeZone::UTC)
                    .checked_sub(span)
                    .map(|z| z.timestamp())
                    .map_err(|_| err(path, "$ago reaches before the supported range"))
            }
            _ => Err(err(
                path,
                "an object value is {\"$datetime\": \"RFC 3339\"} or {\"$ago\": \"ISO 8601 duration\"}",
            )),
        }
    }
}

fn orderable(s: &Scalar) -> bool {
    !matches!(s, Scalar::Bool(_))
}

fn scalar_json(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => Value::Bool(*b),
        Scalar::Number(n) => Value::Number(n.clone()),
        Scalar::String(s) => Value::String(s.clone()),
        // RFC 3339 with the fraction of a second when there is one: the stored spec is the
        // filter that was validated and counted, to the nanosecond.
        Scalar::DateTime(t) => serde_json::json!({ "$datetime": t.to_string() }),
    }
}

/// The stored form of a value: the raw JSON, except that datetimes are absolute.
fn resolved_json(raw: &Value, op: &Operand) -> Value {
    match op {
        Operand::None => raw.clone(),
        Operand::One(s) => scalar_json(s),
        Operand::List(l) => Value::Array(l.iter().map(scalar_json).collect()),
        Operand::Range(a, b) => Value::Array(vec![scalar_json(a), scalar_json(b)]),
    }
}

/// Whether `p` is a native field path: `/`-separated segments of ASCII letters, digits and
/// `_`, none starting with a digit, at most 200 characters. The rule of a filter's fields and of
/// the fields a `psa_actions` workflow writes or reads.
pub(crate) fn valid_native_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 200
        && p.split('/').all(|seg| {
            let mut c = seg.chars();
            matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
                && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        })
}

#[cfg(test)]
mod tests;
