//! The diff of one entity: which fields a run changes, from what, to what. A shadow run stores
//! it, a live run writes it, the field-update audit keeps it, a revert reads it back; so it is
//! computed in one place, from the record alone.
//!
//! Every template reads the record as it was read, never as earlier actions of the same run
//! leave it: the order of the actions cannot change what a template says.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::config::{accepts, wanted, Action, FieldUpdate, FieldValue, PsaActions};
use super::template::RenderError;
use super::{current_value, same_value, Context};

/// What a run does to one record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    /// The fields whose value changes, in the order of the actions.
    pub changes: Vec<FieldChange>,
    /// The notes to add, in order.
    pub notes: Vec<PlannedNote>,
}

/// One field's change, named as Neo's field-update audit names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    /// The native path, `/` between segments (`priority/id`).
    pub field: String,
    /// The value before the change; null when the record had none.
    #[serde(rename = "previous_value")]
    pub before: Value,
    #[serde(rename = "new_value")]
    pub after: Value,
}

/// A note to add, its placeholders rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlannedNote {
    pub text: String,
    pub internal: bool,
}

/// Why no plan could be made for a record: the entity fails (and can be rerun once the
/// record is fixed). `at` is the JSON path of the value in the executor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("template reads {path}, which this record lacks ({at})")]
    Missing { at: String, path: String },
    #[error("template reads {path}, which holds an object or a list, not one value ({at})")]
    NotScalar { at: String, path: String },
    #[error("{field} takes {want}, and the template gave {got} ({at})")]
    WrongKind {
        at: String,
        field: String,
        want: &'static str,
        got: &'static str,
    },
    #[error("the note's text is empty for this record ({at})")]
    EmptyNote { at: String },
}

impl Plan {
    /// Whether the run does nothing to this record.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.notes.is_empty()
    }
}

impl PsaActions {
    /// The plan for `record` (a JSON object as the PSA returns it): only the fields whose value
    /// changes ([`super::same_value`]), each with its current value (null when absent), and
    /// the notes.
    ///
    /// When the workflow writes fields and none changes, no note is added either: the notes
    /// of a bulk change explain the change, and a re-run must not repeat them on every record.
    /// Notes are then not rendered, so a placeholder they lack does not fail the entity. A
    /// workflow of notes only adds them on every run.
    ///
    /// This is also the rule for applying a shadow run: a live run plans again on the record
    /// it reads, rather than writing the shadow's stale diff.
    pub fn plan(&self, record: &Value, ctx: &Context) -> Result<Plan, PlanError> {
        let mut plan = Plan::default();
        for (i, a) in self.actions.iter().enumerate() {
            match a {
                Action::UpdateFields { fields } => {
                    for u in fields {
                        let at = || format!("executor.actions[{i}].fields.{}", u.field);
                        change(&mut plan, u, record, ctx, at)?;
                    }
                }
                Action::SetStatus { update } => {
                    change(&mut plan, update, record, ctx, || {
                        format!("executor.actions[{i}].status")
                    })?;
                }
                Action::AddNote { .. } => {}
            }
        }
        if self.writes_fields() && plan.changes.is_empty() {
            return Ok(plan);
        }
        for (i, a) in self.actions.iter().enumerate() {
            if let Action::AddNote { text, internal } = a {
                let at = || format!("executor.actions[{i}].text");
                let text = text
                    .render_text(record, ctx)
                    .map_err(|e| render_error(e, at()))?;
                if text.trim().is_empty() {
                    return Err(PlanError::EmptyNote { at: at() });
                }
                plan.notes.push(PlannedNote {
                    text,
                    internal: *internal,
                });
            }
        }
        Ok(plan)
    }
}

fn change(
    plan: &mut Plan,
    u: &FieldUpdate,
    record: &Value,
    ctx: &Context,
    at: impl Fn() -> String,
) -> Result<(), PlanError> {
    let after = match &u.value {
        FieldValue::Literal(v) => v.clone(),
        FieldValue::Template(t) => {
            let v = t.render(record, ctx).map_err(|e| render_error(e, at()))?;
            if !accepts(u.kind, &v) {
                return Err(PlanError::WrongKind {
                    at: at(),
                    field: u.field.clone(),
                    want: wanted(u.kind),
                    got: type_name(&v),
                });
            }
            v
        }
    };
    let before = current_value(record, &u.field);
    if !same_value(&before, &after) {
        plan.changes.push(FieldChange {
            field: u.field.clone(),
            before,
            after,
        });
    }
    Ok(())
}

fn render_error(e: RenderError, at: String) -> PlanError {
    match e {
        RenderError::Missing(path) => PlanError::Missing { at, path },
        RenderError::NotScalar(path) => PlanError::NotScalar { at, path },
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `record` with the plan's field changes made (notes are not part of a record): what the PSA
/// holds after a live run writes the plan. The reference of tests and of the PSA simulator.
pub fn apply_to(record: &Value, plan: &Plan) -> Value {
    apply_changes(record, &plan.changes)
}

/// `record` with each change's `after` set at its path, objects created along the way (a
/// missing or non-object step becomes an object).
pub fn apply_changes(record: &Value, changes: &[FieldChange]) -> Value {
    let mut out = record.clone();
    for c in changes {
        let mut at = &mut out;
        for seg in c.field.split('/') {
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            at = at
                .as_object_mut()
                .expect("made an object above")
                .entry(seg)
                .or_insert(Value::Null);
        }
        *at = c.after.clone();
    }
    out
}
