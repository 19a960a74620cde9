//! What a `psa_actions` workflow may write on each PSA, with the kind of value each field
//! takes, and the field its `set_status` sets. Tickets only so far. Every writable field is a
//! field of the ticket's compile table (a test holds them together), so what is written can
//! also be filtered on and read back.

use neo_domain::actions::WritableFields;
use neo_domain::backfill::EntityType;
use neo_domain::filter::FieldCatalogue;
use neo_domain::filter::ValueKind::{self, DateTime, Number, String as Text};

use crate::Psa;

/// The writable fields of one entity type on one PSA.
#[derive(Debug)]
pub struct Writable {
    pub psa: Psa,
    pub entity: EntityType,
    pub fields: &'static [(&'static str, ValueKind)],
    /// The field `set_status` writes.
    pub status: &'static str,
}

static CONNECTWISE_TICKET: Writable = Writable {
    psa: Psa::ConnectWise,
    entity: EntityType::Ticket,
    fields: &[
        ("summary", Text),
        ("board/id", Number),
        ("status/id", Number),
        ("priority/id", Number),
        ("owner/id", Number),
        ("type/id", Number),
        ("severity", Text),
        ("impact", Text),
        ("budgetHours", Number),
        ("requiredDate", DateTime),
    ],
    status: "status/id",
};

static AUTOTASK_TICKET: Writable = Writable {
    psa: Psa::Autotask,
    entity: EntityType::Ticket,
    fields: &[
        ("title", Text),
        ("status", Number),
        ("priority", Number),
        ("queueID", Number),
        ("assignedResourceID", Number),
        ("issueType", Number),
        ("subIssueType", Number),
        ("dueDateTime", DateTime),
    ],
    status: "status",
};

static HALO_TICKET: Writable = Writable {
    psa: Psa::Halo,
    entity: EntityType::Ticket,
    fields: &[
        ("summary", Text),
        ("status_id", Number),
        ("priority_id", Number),
        ("team", Text),
        ("agent_id", Number),
        ("category_1", Text),
    ],
    status: "status_id",
};

/// The writable fields of `entity` on `psa`; `None` where writes are not supported.
pub fn writable(psa: Psa, entity: EntityType) -> Option<&'static Writable> {
    let w = match psa {
        Psa::ConnectWise => &CONNECTWISE_TICKET,
        Psa::Autotask => &AUTOTASK_TICKET,
        Psa::Halo => &HALO_TICKET,
    };
    (w.entity == entity).then_some(w)
}

impl Writable {
    /// The kind of a writable field (Autotask names match case-insensitively).
    pub fn kind(&self, path: &str) -> Option<ValueKind> {
        self.fields
            .iter()
            .find(|(f, _)| self.same(f, path))
            .map(|(_, k)| *k)
    }

    fn same(&self, a: &str, b: &str) -> bool {
        if self.psa == Psa::Autotask {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    }

    /// The compile table of the entity: what a template may read.
    fn table(&self) -> &'static crate::compile::Catalogue {
        crate::compile::table(self.psa, self.entity).expect("a writable entity has a table")
    }
}

/// What the domain's `psa_actions` validation asks of a PSA: the writable fields, the readable
/// ones (the entity's compile table), the status field and notes.
impl WritableFields for Writable {
    fn writable(&self, path: &str) -> Option<ValueKind> {
        self.kind(path)
    }

    fn readable(&self, path: &str) -> bool {
        self.table().native_field(path).is_some()
    }

    fn status_field(&self) -> Option<&str> {
        Some(self.status)
    }

    fn takes_notes(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("{} entities on {}", self.entity, self.psa.as_str())
    }

    fn canonical(&self, path: &str) -> String {
        self.table()
            .fields()
            .map(|(f, _)| f)
            .find(|f| self.same(f, path))
            .unwrap_or(path)
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writable_field_is_a_field_of_the_compile_table() {
        for psa in Psa::ALL {
            let w = writable(psa, EntityType::Ticket).expect("tickets are writable");
            let table = crate::compile::tickets(psa);
            for (f, k) in w.fields {
                assert_eq!(table.native_field(f), Some(*k), "{} {f}", psa.as_str());
            }
            assert_eq!(w.kind(w.status), Some(Number), "{}", psa.as_str());
        }
        assert!(writable(Psa::ConnectWise, EntityType::Company).is_none());
    }
}

#[cfg(test)]
mod validation {
    use super::*;
    use neo_domain::actions::PsaActions;
    use serde_json::json;

    /// The domain's validation with this provider: Autotask spellings are stored as the record
    /// spells them, an unknown field is refused at its path.
    #[test]
    fn actions_validate_against_the_writable_fields() {
        let at = writable(Psa::Autotask, EntityType::Ticket).unwrap();
        let ok = PsaActions::parse(
            &json!({"type": "psa_actions", "actions": [
                {"type": "update_fields", "fields": {"PRIORITY": 2, "title": "{{title}} (checked)"}},
                {"type": "add_note", "text": "Backfill {{backfill_id}}"}]}),
            at,
        )
        .unwrap();
        assert!(
            ok.to_stored().to_string().contains("\"priority\""),
            "{}",
            ok.to_stored()
        );
        let cw = writable(Psa::ConnectWise, EntityType::Ticket).unwrap();
        let err = PsaActions::parse(
            &json!({"type": "psa_actions", "actions": [
                {"type": "update_fields", "fields": {"priority/idd": 2}}]}),
            cw,
        )
        .unwrap_err();
        assert_eq!(err.field, "executor.actions[0].fields.priority/idd");
        let err = PsaActions::parse(
            &json!({"type": "psa_actions", "actions": [
                {"type": "update_fields", "fields": {"priority/id": "high"}}]}),
            cw,
        )
        .unwrap_err();
        assert_eq!(err.field, "executor.actions[0].fields.priority/id");
        let err = PsaActions::parse(
            &json!({"type": "psa_actions", "actions": [
                {"type": "add_note", "text": "{{nosuch/field}}"}]}),
            cw,
        )
        .unwrap_err();
        assert_eq!(err.field, "executor.actions[0].text");
    }
}
