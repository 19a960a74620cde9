//! The `psa_actions` executor as written by a tenant, checked against what the PSA lets the
//! entity type write before it is stored: a refused field is an answer to the create, not a
//! failure on every entity of a backfill.

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::template::Template;
use super::{is_field_path, ValueKind, WritableFields};
use crate::FieldError;

/// The executor's `type`.
pub const EXECUTOR_TYPE: &str = "psa_actions";
pub const MAX_ACTIONS: usize = 20;
pub const MAX_FIELDS_PER_ACTION: usize = 50;

/// A validated `psa_actions` executor: its actions, run in order on each entity.
#[derive(Debug, Clone, PartialEq)]
pub struct PsaActions {
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `{"type": "update_fields", "fields": {...}}`, the fields in the order written.
    UpdateFields { fields: Vec<FieldUpdate> },
    /// `{"type": "add_note", "text": ..., "internal": true}`.
    AddNote { text: Template, internal: bool },
    /// `{"type": "set_status", "status": ...}`: an update of the provider's status field.
    SetStatus { update: FieldUpdate },
}

/// One field to set.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldUpdate {
    /// The native path, in the provider's spelling.
    pub field: String,
    pub value: FieldValue,
    /// What the field takes, per the provider (a template's value is checked per record).
    pub kind: ValueKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A number, a boolean, or null (clears the field).
    Literal(Value),
    /// Every string value: text, possibly with placeholders.
    Template(Template),
}

fn err(field: impl Into<String>, msg: impl Into<String>) -> FieldError {
    FieldError::new(field, msg)
}

impl PsaActions {
    /// Validates a submitted executor (`{"type": "psa_actions", "actions": [...]}`) against
    /// what `fields` says the PSA and entity type allow. Errors name JSON paths from
    /// `executor` (see the module docs of [`crate::actions`]).
    pub fn parse(v: &Value, fields: &dyn WritableFields) -> Result<Self, FieldError> {
        let o = v
            .as_object()
            .ok_or_else(|| err("executor", "executor must be an object"))?;
        if o.get("type").and_then(Value::as_str) != Some(EXECUTOR_TYPE) {
            return Err(err(
                "executor.type",
                format!("executor.type must be \"{EXECUTOR_TYPE}\""),
            ));
        }
        if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "type" | "actions")) {
            return Err(err(
                format!("executor.{k}"),
                format!("{k} is not a setting of this executor"),
            ));
        }
        let path = "executor.actions";
        let list = o
            .get("actions")
            .and_then(Value::as_array)
            .ok_or_else(|| err(path, "actions must be an array of actions"))?;
        if list.is_empty() {
            return Err(err(path, "actions needs at least one action"));
        }
        if list.len() > MAX_ACTIONS {
            return Err(err(
                path,
                format!("a workflow has at most {MAX_ACTIONS} actions"),
            ));
        }
        let mut written = Vec::new();
        let actions = list
            .iter()
            .enumerate()
            .map(|(i, a)| action(a, i, fields, &mut written))
            .collect::<Result<_, _>>()?;
        Ok(Self { actions })
    }

    /// The stored form: what [`PsaActions::parse`] reads back as the same value (field names
    /// in the provider's spelling, `internal` explicit).
    pub fn to_stored(&self) -> Value {
        let actions: Vec<Value> = self
            .actions
            .iter()
            .map(|a| match a {
                Action::UpdateFields { fields } => {
                    let fields: Map<String, Value> = fields
                        .iter()
                        .map(|u| (u.field.clone(), u.value.to_json()))
                        .collect();
                    json!({"type": "update_fields", "fields": fields})
                }
                Action::AddNote { text, internal } => {
                    json!({"type": "add_note", "text": text.source(), "internal": internal})
                }
                Action::SetStatus { update } => {
                    json!({"type": "set_status", "status": update.value.to_json()})
                }
            })
            .collect();
        json!({"type": EXECUTOR_TYPE, "actions": actions})
    }

    /// Every field update with the index of its action, in the order a plan lists them.
    pub fn updates(&self) -> impl Iterator<Item = (usize, &FieldUpdate)> {
        self.actions.iter().enumerate().flat_map(|(i, a)| {
            let updates: &[FieldUpdate] = match a {
                Action::UpdateFields { fields } => fields,
                Action::SetStatus { update } => std::slice::from_ref(update),
                Action::AddNote { .. } => &[],
            };
            updates.iter().map(move |u| (i, u))
        })
    }

    /// Whether any action writes a field (else the workflow only adds notes).
    pub fn writes_fields(&self) -> bool {
        self.updates().next().is_some()
    }

    /// The record fields a plan needs, without repeats: those written (their value before)
    /// and those templates read. What a connector asks the PSA for when it reads the record.
    pub fn fields_read(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |p: &str| {
            if !out.iter().any(|o| o == p) {
                out.push(p.to_owned());
            }
        };
        for a in &self.actions {
            match a {
                Action::UpdateFields { fields } => fields.iter().for_each(|u| u.reads(&mut add)),
                Action::SetStatus { update } => update.reads(&mut add),
                Action::AddNote { text, .. } => text.record_reads().for_each(&mut add),
            }
        }
        out
    }
}

impl FieldUpdate {
    fn reads(&self, add: &mut impl FnMut(&str)) {
        add(&self.field);
        if let FieldValue::Template(t) = &self.value {
            t.record_reads().for_each(add);
        }
    }
}

impl FieldValue {
    /// The value as stored: the literal, or the template's text.
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::Literal(v) => v.clone(),
            FieldValue::Template(t) => Value::String(t.source().to_owned()),
        }
    }
}

fn action(
    v: &Value,
    i: usize,
    fields: &dyn WritableFields,
    written: &mut Vec<(String, usize)>,
) -> Result<Action, FieldError> {
    let path = format!("executor.actions[{i}]");
    let o = v
        .as_object()
        .ok_or_else(|| err(&path, "an action must be an object"))?;
    let (kind, members): (&str, &[&str]) = match o.get("type").and_then(Value::as_str) {
        Some("update_fields") => ("update_fields", &["type", "fields"]),
        Some("add_note") => ("add_note", &["type", "text", "internal"]),
        Some("set_status") => ("set_status", &["type", "status"]),
        _ => {
            return Err(err(
                format!("{path}.type"),
                "unknown action type (update_fields, add_note or set_status)",
            ))
        }
    };
    if let Some(k) = o.keys().find(|k| !members.contains(&k.as_str())) {
        return Err(err(
            format!("{path}.{k}"),
            format!(
                "{k} is not a member of this action ({})",
                members.join(", ")
            ),
        ));
    }
    match kind {
        "update_fields" => {
            let fpath = format!("{path}.fields");
            let map = o
                .get("fields")
                .and_then(Value::as_object)
                .filter(|m| (1..=MAX_FIELDS_PER_ACTION).contains(&m.len()))
                .ok_or_else(|| {
                    err(
                        &fpath,
                        format!("fields must be an object of 1 to {MAX_FIELDS_PER_ACTION} fields to set"),
                    )
                })?;
            let mut updates = Vec::with_capacity(map.len());
            for (name, value) in map {
                let upath = format!("{fpath}.{name}");
                let u = update(name, value, &upath, fields)?;
                claim(&u.field, i, &upath, written)?;
                updates.push(u);
            }
            Ok(Action::UpdateFields { fields: updates })
        }
        "add_note" => {
            if !fields.takes_notes() {
                return Err(err(
                    format!("{path}.type"),
                    format!("{} take no notes", fields.describe()),
                ));
            }
            let tpath = format!("{path}.text");
            let text = o
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| err(&tpath, "text must be a string"))?;
            if text.trim().is_empty() {
                return Err(err(&tpath, "a note's text must not be empty"));
            }
            let text = Template::parse(text, fields).map_err(|m| err(&tpath, m))?;
            let internal = match o.get("internal") {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(err(
                        format!("{path}.internal"),
                        "internal must be true or false",
                    ))
                }
            };
            Ok(Action::AddNote { text, internal })
        }
        _ => {
            let Some(status) = fields.status_field() else {
                return Err(err(
                    format!("{path}.type"),
                    format!("{} have no status", fields.describe()),
                ));
            };
            let spath = format!("{path}.status");
            match o.get("status") {
                None => return Err(err(&spath, "set_status needs a status")),
                Some(Value::Null) => return Err(err(&spath, "a status cannot be cleared")),
                Some(_) => {}
            }
            let u = update(status, &o["status"], &spath, fields)?;
            claim(&u.field, i, &spath, written)?;
            Ok(Action::SetStatus { update: u })
        }
    }
}

fn update(
    name: &str,
    value: &Value,
    path: &str,
    fields: &dyn WritableFields,
) -> Result<FieldUpdate, FieldError> {
    if !is_field_path(name) {
        return Err(err(
            path,
            format!("{name:?} is not a field path (segments of letters, digits and _ joined by /)"),
        ));
    }
    let Some(kind) = fields.writable(name) else {
        let why = if fields.readable(name) {
            format!("{name} is read-only for {}", fields.describe())
        } else {
            format!("unknown field {name} for {}", fields.describe())
        };
        return Err(err(path, why));
    };
    let field = fields.canonical(name);
    let value = match value {
        Value::String(s) => {
            let t = Template::parse(s, fields).map_err(|m| err(path, m))?;
            if !t.has_placeholders() && !accepts(kind, value) {
                return Err(err(path, format!("{field} takes {}", wanted(kind))));
            }
            if t.has_placeholders() && t.whole_placeholder().is_none() && !takes_text(kind) {
                return Err(err(
                    path,
                    format!(
                        "{field} takes {}, and a template with text gives a string",
                        wanted(kind)
                    ),
                ));
            }
            FieldValue::Template(t)
        }
        Value::Null => FieldValue::Literal(Value::Null),
        Value::Bool(_) | Value::Number(_) => {
            if !accepts(kind, value) {
                return Err(err(path, format!("{field} takes {}", wanted(kind))));
            }
            FieldValue::Literal(value.clone())
        }
        Value::Array(_) | Value::Object(_) => {
            return Err(err(
                path,
                "a field takes one value: a string (a template), a number, true, false or null",
            ))
        }
    };
    Ok(FieldUpdate { field, value, kind })
}

/// Records that action `i` sets `field`, refusing a field set before or one nested in (or
/// containing) a field set before: which write wins would depend on the PSA.
fn claim(
    field: &str,
    i: usize,
    path: &str,
    written: &mut Vec<(String, usize)>,
) -> Result<(), FieldError> {
    let nested = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|r| r.starts_with('/'));
    if let Some((f, j)) = written
        .iter()
        .find(|(f, _)| f == field || nested(f, field) || nested(field, f))
    {
        let what = if f == field {
            format!("{field} is already set by actions[{j}]")
        } else {
            format!("{field} overlaps {f}, set by actions[{j}]")
        };
        return Err(err(path, format!("{what}; set each field once")));
    }
    written.push((field.to_owned(), i));
    Ok(())
}

/// Whether a value (never null) fits a field of `kind`.
pub(crate) fn accepts(kind: ValueKind, v: &Value) -> bool {
    matches!(
        (kind, v),
        (
            ValueKind::Any,
            Value::Bool(_) | Value::Number(_) | Value::String(_)
        ) | (ValueKind::Bool, Value::Bool(_))
            | (ValueKind::Number, Value::Number(_))
            | (ValueKind::String, Value::String(_))
            | (ValueKind::NameOrId, Value::String(_) | Value::Number(_))
    ) || matches!((kind, v), (ValueKind::DateTime, Value::String(s)) if s.parse::<Timestamp>().is_ok())
}

fn takes_text(kind: ValueKind) -> bool {
    !matches!(kind, ValueKind::Bool | ValueKind::Number)
}

pub(crate) fn wanted(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Bool => "true or false",
        ValueKind::Number => "a number",
        ValueKind::String => "a string",
        ValueKind::DateTime => "an RFC 3339 datetime with an offset (2026-04-01T00:00:00Z)",
        ValueKind::NameOrId => "a name (string) or an id (number)",
        ValueKind::Any => "a string, a number, true or false",
    }
}
