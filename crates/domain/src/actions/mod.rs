//! The pure core of the `psa_actions` executor (issue 20, "safe bulk changes"): a workflow's
//! ordered list of changes to the tenant's own PSA record, and the diff each entity gets.
//!
//! A bulk change is only safe if a run can be previewed, repeated and undone, so everything is
//! a function of the record as read:
//!
//! - [`PsaActions::plan`] turns the configuration and the record into a [`Plan`]: the fields
//!   whose value actually changes, with their value before. A shadow run records it, a live run
//!   writes it, the field-update audit stores it; one function, so the preview is what is
//!   written. A field already at its target is no change, so a re-run changes nothing.
//! - A live run never writes a diff computed earlier (by a shadow run, or before a retry):
//!   it plans again on the record it has just read. [`plan_still_valid`] only reports whether
//!   the fields an earlier plan touched have moved since.
//! - [`revert`] undoes an audited write only where nobody has touched the field since;
//!   otherwise it skips the record ([`Revert::ChangedSince`]) instead of overwriting someone
//!   else's change.
//!
//! Templates fail loudly: a placeholder naming a field the provider does not know is refused
//! when the workflow is written, and one the record lacks (or holds null) fails that entity.
//! Rendering it empty would write "Company: " into thousands of records, and a failed entity
//! can be rerun once the data is fixed. For the same reason there is no escaping of `{{`:
//! an unmatched `{{` is refused rather than guessed at.
//!
//! Errors of [`PsaActions::parse`] name JSON paths the way [`crate::filter`] does: members
//! joined by `.`, array elements as `[i]`, starting at `executor`. A field of `update_fields`
//! is one member however many `/` it has: `executor.actions[1].fields.priority/id` (field
//! names never contain `.`, so the path stays unambiguous).

mod config;
mod plan;
mod revert;
mod template;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use crate::filter::ValueKind;
pub use config::{
    Action, FieldUpdate, FieldValue, PsaActions, EXECUTOR_TYPE, MAX_ACTIONS, MAX_FIELDS_PER_ACTION,
};
pub use plan::{apply_changes, apply_to, FieldChange, Plan, PlanError, PlannedNote};
pub use revert::{holds_written, plan_still_valid, revert, Revert};
pub use template::{Part, Source, Template, MAX_TEMPLATE_CHARS};

/// What the PSA lets a workflow write and read for one entity type: the PSA connectors
/// provide one per (PSA, entity type). Paths are the PSA's native ones, `/` between the
/// segments of a nested object (`priority/id`).
pub trait WritableFields {
    /// The kind of a writable field, `None` if it cannot be written.
    fn writable(&self, path: &str) -> Option<ValueKind>;
    /// Whether a template may read `path` from the record.
    fn readable(&self, path: &str) -> bool;
    /// The field `set_status` writes (e.g. `status/id`), if the entity has a status.
    fn status_field(&self) -> Option<&str>;
    /// Whether the entity takes notes.
    fn takes_notes(&self) -> bool;
    /// "tickets on connectwise": how messages name the target.
    fn describe(&self) -> String;
    /// The spelling of a known path in the record as the PSA returns it. Where field names
    /// are case-insensitive (Autotask's `QUEUEID` is `queueID`) the configuration is stored
    /// with this spelling, so a plan reads the record's own member and two spellings of one
    /// field count as the same field. The default keeps the path as written.
    fn canonical(&self, path: &str) -> String {
        path.to_owned()
    }
}

/// The values of a run a template may read besides the record: `{{backfill_id}}`,
/// `{{entity_id}}` and `{{workflow_id}}`. These names win over record fields of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    pub backfill_id: String,
    pub entity_id: String,
    pub workflow_id: String,
}

/// The value at a `/`-separated `path` of `record`; `None` when a segment is missing or the
/// path walks through something that is not an object (there is no array indexing).
pub fn value_at<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/')
        .try_fold(record, |v, seg| v.as_object()?.get(seg))
}

/// The value a plan compares and records as a field's current value: null when absent.
pub fn current_value(record: &Value, path: &str) -> Value {
    value_at(record, path).cloned().unwrap_or(Value::Null)
}

/// Whether two field values are the same for a plan: equal as JSON, except that numbers
/// compare by value (`3` is `3.0`). Strings compare exactly, so a PSA that echoes a written
/// datetime in another format shows it as a change again (written once more, reverted never).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| same_value(a, b)))
        }
        _ => a == b,
    }
}

pub(crate) use crate::filter::valid_native_path as is_field_path;
