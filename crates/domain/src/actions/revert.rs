//! Undoing an audited write. A revert runs long after the write, on records people keep
//! working on; writing the old values back over their later edits would be a second bulk
//! change nobody reviewed. So a record is restored only while every field the write touched
//! still holds what was written, and is otherwise skipped and reported, all or nothing: a
//! half-restored record matches neither state anyone saw.

use serde_json::Value;

use super::plan::{FieldChange, Plan};
use super::{current_value, same_value};

/// What reverting one record's audited write does.
#[derive(Debug, Clone, PartialEq)]
pub enum Revert {
    /// Write these changes (each field from the audited `after` back to its `before`).
    Restore(Vec<FieldChange>),
    /// Skip the record: these audited fields (in audit order) no longer hold the written value.
    ChangedSince { fields: Vec<String> },
}

/// The revert of `audit` (the changes a run wrote to one record) given the record as it is now.
pub fn revert(audit: &[FieldChange], record_now: &Value) -> Revert {
    let moved: Vec<String> = audit
        .iter()
        .filter(|c| !holds(record_now, c))
        .map(|c| c.field.clone())
        .collect();
    if !moved.is_empty() {
        return Revert::ChangedSince { fields: moved };
    }
    Revert::Restore(
        audit
            .iter()
            .map(|c| FieldChange {
                field: c.field.clone(),
                before: c.after.clone(),
                after: c.before.clone(),
            })
            .collect(),
    )
}

/// Whether every audited field of `audit` still holds the value written (its `after`): how a
/// write that was sent but never settled (a crash, a timeout) is recognised when its
/// execution runs again, so it is not sent twice nor mistaken for someone else's edit.
pub fn holds_written(audit: &[FieldChange], record_now: &Value) -> bool {
    audit.iter().all(|c| holds(record_now, c))
}

fn holds(record_now: &Value, c: &FieldChange) -> bool {
    same_value(&current_value(record_now, &c.field), &c.after)
}

/// Whether every field `plan` changes still holds the value the plan found (its `before`) in
/// `record_now`: a shadow plan still describes the record. For reporting only: a live run
/// does not write an earlier plan but plans again on the record it reads
/// ([`super::PsaActions::plan`]), which also covers what this cannot see (a field a template
/// reads, or one the plan left alone because it was already at its target).
pub fn plan_still_valid(plan: &Plan, record_now: &Value) -> bool {
    plan.changes
        .iter()
        .all(|c| same_value(&current_value(record_now, &c.field), &c.before))
}
