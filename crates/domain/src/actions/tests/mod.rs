//! The `psa_actions` core, against a provider standing in for the PSA connectors' tables.

mod parse;
mod plan;
mod props;

use serde_json::{json, Value};

use super::*;

/// ConnectWise tickets (or, without notes and status, configurations), as far as the tests go.
pub(super) struct Cw {
    pub notes: bool,
    pub status: bool,
}

pub(super) const TICKETS: Cw = Cw {
    notes: true,
    status: true,
};
pub(super) const CONFIGURATIONS: Cw = Cw {
    notes: false,
    status: false,
};

impl WritableFields for Cw {
    fn writable(&self, path: &str) -> Option<ValueKind> {
        Some(match path {
            "summary" | "status/name" | "contactName" => ValueKind::String,
            "priority/id" | "status/id" | "budgetHours" | "company/id" => ValueKind::Number,
            "closedFlag" => ValueKind::Bool,
            "requiredDate" => ValueKind::DateTime,
            "company" => ValueKind::NameOrId,
            "customerRef" => ValueKind::Any,
            _ => return None,
        })
    }
    fn readable(&self, path: &str) -> bool {
        self.writable(path).is_some()
            || matches!(path, "id" | "company/name" | "_info/updatedBy" | "tags")
    }
    fn status_field(&self) -> Option<&str> {
        self.status.then_some("status/id")
    }
    fn takes_notes(&self) -> bool {
        self.notes
    }
    fn describe(&self) -> String {
        if self.notes {
            "tickets on connectwise".into()
        } else {
            "configurations on connectwise".into()
        }
    }
}

/// Autotask tickets: field names are case-insensitive, the record spells them one way.
pub(super) struct At;

impl At {
    const FIELDS: [(&'static str, ValueKind); 3] = [
        ("priority", ValueKind::Number),
        ("queueID", ValueKind::Number),
        ("title", ValueKind::String),
    ];
    fn find(path: &str) -> Option<(&'static str, ValueKind)> {
        Self::FIELDS
            .into_iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(path))
    }
}

impl WritableFields for At {
    fn writable(&self, path: &str) -> Option<ValueKind> {
        Self::find(path).map(|(_, k)| k)
    }
    fn readable(&self, path: &str) -> bool {
        Self::find(path).is_some()
    }
    fn status_field(&self) -> Option<&str> {
        None
    }
    fn takes_notes(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        "tickets on autotask".into()
    }
    fn canonical(&self, path: &str) -> String {
        Self::find(path).map_or(path, |(f, _)| f).to_owned()
    }
}

/// An executor of these actions.
pub(super) fn exec(actions: Value) -> Value {
    json!({"type": "psa_actions", "actions": actions})
}

pub(super) fn parsed(actions: Value) -> PsaActions {
    PsaActions::parse(&exec(actions), &TICKETS).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn ctx() -> Context {
    Context {
        backfill_id: "bf_1".into(),
        entity_id: "42".into(),
        workflow_id: "wf_7".into(),
    }
}

/// A ticket as ConnectWise returns one.
pub(super) fn ticket() -> Value {
    json!({
        "id": 42,
        "summary": "Printer down",
        "priority": {"id": 3, "name": "Priority 3 - Normal"},
        "status": {"id": 16, "name": "New"},
        "company": {"id": 250, "name": "Acme"},
        "budgetHours": 1.5,
        "closedFlag": false,
        "contactName": null,
        "tags": ["a", "b"]
    })
}
