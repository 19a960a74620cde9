//! Native field catalogues: the fields a filter may name per PSA and entity type, with the
//! values they take (passed to `neo_domain::filter::parse`). Names match exactly on
//! ConnectWise and Halo, case-insensitively on Autotask (as its API does).

use neo_domain::backfill::EntityType;
use neo_domain::filter::{FieldCatalogue, ValueKind};

use crate::Psa;

/// A fixed list of fields.
#[derive(Debug)]
pub struct Catalogue {
    fields: &'static [(&'static str, ValueKind)],
    case_insensitive: bool,
}

impl Catalogue {
    /// The fields and their kinds, in catalogue order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, ValueKind)> + '_ {
        self.fields.iter().copied()
    }
}

impl FieldCatalogue for Catalogue {
    fn native_field(&self, path: &str) -> Option<ValueKind> {
        self.fields
            .iter()
            .find(|(name, _)| {
                if self.case_insensitive {
                    name.eq_ignore_ascii_case(path)
                } else {
                    *name == path
                }
            })
            .map(|(_, kind)| *kind)
    }
}

/// The catalogue of an entity type on a PSA; `None` where there is no compile table.
pub fn catalogue(psa: Psa, entity: EntityType) -> Option<&'static dyn FieldCatalogue> {
    let c: &'static Catalogue = match (psa, entity) {
        (Psa::ConnectWise, EntityType::Ticket) => &CONNECTWISE_TICKET,
        (Psa::Autotask, EntityType::Ticket) => &AUTOTASK_TICKET,
        (Psa::Halo, EntityType::Ticket) => &HALO_TICKET,
        _ => return None,
    };
    Some(c)
}

use ValueKind::{Bool, DateTime, Number, String as Text};

/// `/service/tickets` (docs/psa.md §1.4, §1.10). `dateEntered`/`lastUpdated` are condition names
/// for `_info/dateEntered`/`_info/lastUpdated`.
static CONNECTWISE_TICKET: Catalogue = Catalogue {
    case_insensitive: false,
    fields: &[
        ("id", Number),
        ("summary", Text),
        ("recordType", Text),
        ("board/id", Number),
        ("board/name", Text),
        ("status/id", Number),
        ("status/name", Text),
        ("priority/id", Number),
        ("priority/name", Text),
        ("company/id", Number),
        ("company/identifier", Text),
        ("company/name", Text),
        ("contact/id", Number),
        ("contact/name", Text),
        ("owner/id", Number),
        ("owner/identifier", Text),
        ("type/id", Number),
        ("type/name", Text),
        ("subType/id", Number),
        ("subType/name", Text),
        ("item/id", Number),
        ("item/name", Text),
        ("team/id", Number),
        ("team/name", Text),
        ("source/id", Number),
        ("source/name", Text),
        ("sla/id", Number),
        ("sla/name", Text),
        ("location/id", Number),
        ("location/name", Text),
        ("department/id", Number),
        ("department/name", Text),
        ("site/id", Number),
        ("site/name", Text),
        ("agreement/id", Number),
        ("agreement/name", Text),
        ("closedFlag", Bool),
        ("closedDate", DateTime),
        ("closedBy", Text),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
        ("_info/updatedBy", Text),
        ("_info/enteredBy", Text),
        ("dateResolved", DateTime),
        ("dateResponded", DateTime),
        ("requiredDate", DateTime),
        ("estimatedStartDate", DateTime),
        ("parentTicketId", Number),
        ("hasChildTicket", Bool),
        ("severity", Text),
        ("impact", Text),
        ("budgetHours", Number),
        ("actualHours", Number),
        ("approved", Bool),
        ("contactEmailAddress", Text),
        ("contactName", Text),
        ("siteName", Text),
    ],
};

/// `Tickets` (docs/psa.md §2.7). `creatorType` and `lastActivityPersonType` cannot be queried, so
/// they are absent.
static AUTOTASK_TICKET: Catalogue = Catalogue {
    case_insensitive: true,
    fields: &[
        ("id", Number),
        ("ticketNumber", Text),
        ("title", Text),
        ("description", Text),
        ("status", Number),
        ("priority", Number),
        ("queueID", Number),
        ("companyID", Number),
        ("companyLocationID", Number),
        ("contactID", Number),
        ("assignedResourceID", Number),
        ("assignedResourceRoleID", Number),
        ("creatorResourceID", Number),
        ("completedByResourceID", Number),
        ("issueType", Number),
        ("subIssueType", Number),
        ("ticketType", Number),
        ("ticketCategory", Number),
        ("source", Number),
        ("contractID", Number),
        ("projectID", Number),
        ("problemTicketId", Number),
        ("serviceLevelAgreementID", Number),
        ("billingCodeID", Number),
        ("configurationItemID", Number),
        ("opportunityID", Number),
        ("estimatedHours", Number),
        ("hoursToBeScheduled", Number),
        ("isVisibleToComanaged", Bool),
        ("serviceLevelAgreementHasBeenMet", Bool),
        ("createDate", DateTime),
        ("lastActivityDate", DateTime),
        ("lastTrackedModificationDateTime", DateTime),
        ("completedDate", DateTime),
        ("dueDateTime", DateTime),
        ("firstResponseDateTime", DateTime),
        ("resolvedDateTime", DateTime),
        ("resolutionPlanDueDateTime", DateTime),
        ("resolvedDueDateTime", DateTime),
    ],
};

/// `/api/tickets` (docs/psa.md §3).
static HALO_TICKET: Catalogue = Catalogue {
    case_insensitive: false,
    fields: &[
        ("id", Number),
        ("summary", Text),
        ("details", Text),
        ("status_id", Number),
        ("tickettype_id", Number),
        ("priority_id", Number),
        ("sla_id", Number),
        ("client_id", Number),
        ("client_name", Text),
        ("site_id", Number),
        ("user_id", Number),
        ("agent_id", Number),
        ("team", Text),
        ("category_1", Text),
        ("category_2", Text),
        ("category_3", Text),
        ("category_4", Text),
        ("dateoccurred", DateTime),
        ("lastactiondate", DateTime),
        ("dateclosed", DateTime),
        ("hasbeenclosed", Bool),
        ("respondbydate", DateTime),
        ("fixbydate", DateTime),
        ("startdate", DateTime),
        ("parent_id", Number),
        ("onhold", Bool),
        ("impact", Number),
        ("urgency", Number),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let cw = catalogue(Psa::ConnectWise, EntityType::Ticket).unwrap();
        assert_eq!(cw.native_field("board/name"), Some(ValueKind::String));
        assert_eq!(
            cw.native_field("_info/lastUpdated"),
            Some(ValueKind::DateTime)
        );
        assert_eq!(cw.native_field("Board/Name"), None);
        let at = catalogue(Psa::Autotask, EntityType::Ticket).unwrap();
        assert_eq!(at.native_field("queueID"), Some(ValueKind::Number));
        assert_eq!(at.native_field("QUEUEID"), Some(ValueKind::Number));
        assert_eq!(at.native_field("creatorType"), None);
        let halo = catalogue(Psa::Halo, EntityType::Ticket).unwrap();
        assert_eq!(halo.native_field("hasbeenclosed"), Some(ValueKind::Bool));
        assert!(catalogue(Psa::ConnectWise, EntityType::Company).is_none());
    }

    #[test]
    fn validation_uses_the_catalogue() {
        use neo_domain::filter::parse;
        use serde_json::json;
        let now = "2026-01-01T00:00:00Z".parse().unwrap();
        let spec = |field: &str, value: serde_json::Value| {
            json!({"conditions": {"combinator": "and", "rules": [
                {"field": field, "operator": "=", "value": value}]}})
        };
        let cw = catalogue(Psa::ConnectWise, EntityType::Ticket);
        assert!(parse(&spec("board/name", json!("Help Desk")), now, cw).is_ok());
        let err = parse(&spec("board/name", json!(3)), now, cw).unwrap_err();
        assert_eq!(err.field, "filter_spec.conditions.rules[0].value");
        let err = parse(&spec("board/nam", json!("x")), now, cw).unwrap_err();
        assert_eq!(err.field, "filter_spec.conditions.rules[0].field");
        let at = catalogue(Psa::Autotask, EntityType::Ticket);
        assert!(parse(
            &spec("createdate", json!({"$datetime": "2026-01-01T00:00:00Z"})),
            now,
            at
        )
        .is_ok());
        assert!(parse(&spec("createDate", json!("2026-01-01")), now, at).is_err());
    }
}
