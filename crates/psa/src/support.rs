//! The support matrix: for each of the 22 entity types and each PSA, where the PSA keeps it
//! and how far a backfill over it goes. One table, read by the connectors (which resource to
//! query), by the API (what a filter backfill may target, and the matrix it serves at
//! `GET /public-api/entity-types`) and by `docs/entity-types.md`, which a test compares with
//! it, so that what is claimed and what runs cannot drift apart.
//!
//! An explicit `entity_ids` list works for every type but `none`: it asks the PSA nothing. A
//! filter needs the type's field catalogue and query compiler on that PSA ([`Level::Filters`]).

use neo_domain::backfill::EntityType;

use crate::Psa;

/// How far a backfill over one entity type goes on one PSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Filters compile to the PSA's query (with a residual where it cannot say everything);
    /// the connector counts, enumerates and verifies them.
    Filters,
    /// The PSA has the entity, but lists it only per parent record (or not at all), so a
    /// filter cannot enumerate it: give `entity_ids`.
    IdsOnly,
    /// The PSA has no such entity (the note says what comes closest).
    Absent,
    /// `none`: not a record, nothing to run over.
    NotBackfillable,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Filters => "filters",
            Level::IdsOnly => "ids_only",
            Level::Absent => "absent",
            Level::NotBackfillable => "not_backfillable",
        }
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub psa: Psa,
    pub entity: EntityType,
    /// Where the PSA keeps it (a REST resource), when it does.
    pub endpoint: Option<&'static str>,
    pub level: Level,
    /// What else a user should know (why it is absent, what is missing).
    pub note: &'static str,
}

use EntityType as E;
use Level::{Absent, Filters, IdsOnly, NotBackfillable};

/// `(entity, [ConnectWise, Autotask, HaloPSA])`, each `(endpoint, level, note)`.
type Row = (EntityType, [(Option<&'static str>, Level, &'static str); 3]);

const NO_FILTERS: &str = "";
const NONE_NOTE: &str = "not a record: nothing to run a workflow over";

static MATRIX: [Row; 22] = [
    (
        E::Ticket,
        [
            (Some("/service/tickets"), Filters, NO_FILTERS),
            (Some("Tickets"), Filters, NO_FILTERS),
            (Some("/tickets"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::ProjectTicket,
        [
            (Some("/project/tickets"), Filters, NO_FILTERS),
            (None, Absent, "project work is Tasks (task) in Autotask"),
            (
                Some("/projects"),
                IdsOnly,
                "HaloPSA projects are tickets of a project type: use project for them",
            ),
        ],
    ),
    (
        E::Task,
        [
            (
                Some("/project/tickets/{parentId}/tasks"),
                IdsOnly,
                "tasks are listed per project ticket",
            ),
            (Some("Tasks"), Filters, NO_FILTERS),
            (
                Some("/actions"),
                IdsOnly,
                "HaloPSA keeps a ticket's work as actions",
            ),
        ],
    ),
    (
        E::ScheduledEntry,
        [
            (Some("/schedule/entries"), Filters, NO_FILTERS),
            (
                Some("ServiceCalls"),
                Filters,
                "scheduled work is a service call in Autotask",
            ),
            (Some("/appointment"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::TimeEntry,
        [
            (Some("/time/entries"), Filters, NO_FILTERS),
            (Some("TimeEntries"), Filters, NO_FILTERS),
            (Some("/timesheetevent"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Project,
        [
            (Some("/project/projects"), Filters, NO_FILTERS),
            (Some("Projects"), Filters, NO_FILTERS),
            (Some("/projects"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Company,
        [
            (Some("/company/companies"), Filters, NO_FILTERS),
            (Some("Companies"), Filters, NO_FILTERS),
            (Some("/client"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Contact,
        [
            (Some("/company/contacts"), Filters, NO_FILTERS),
            (Some("Contacts"), Filters, NO_FILTERS),
            (Some("/users"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Resource,
        [
            (Some("/system/members"), Filters, NO_FILTERS),
            (Some("Resources"), Filters, NO_FILTERS),
            (Some("/agent"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Contract,
        [
            (Some("/finance/agreements"), Filters, NO_FILTERS),
            (Some("Contracts"), Filters, NO_FILTERS),
            (Some("/clientcontract"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Opportunity,
        [
            (Some("/sales/opportunities"), Filters, NO_FILTERS),
            (Some("Opportunities"), Filters, NO_FILTERS),
            (Some("/opportunities"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::None,
        [
            (None, NotBackfillable, NONE_NOTE),
            (None, NotBackfillable, NONE_NOTE),
            (None, NotBackfillable, NONE_NOTE),
        ],
    ),
    (
        E::Configuration,
        [
            (Some("/company/configurations"), Filters, NO_FILTERS),
            (Some("ConfigurationItems"), Filters, NO_FILTERS),
            (Some("/asset"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Note,
        [
            (
                Some("/service/tickets/{parentId}/notes"),
                IdsOnly,
                "notes are listed per ticket",
            ),
            (Some("TicketNotes"), Filters, NO_FILTERS),
            (Some("/actions"), IdsOnly, "a note is an action in HaloPSA"),
        ],
    ),
    (
        E::Team,
        [
            (
                Some("/service/boards/{parentId}/teams"),
                IdsOnly,
                "teams are listed per board",
            ),
            (
                None,
                Absent,
                "Autotask has departments and queues, no teams",
            ),
            (Some("/team"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Role,
        [
            (Some("/time/workRoles"), Filters, NO_FILTERS),
            (Some("Roles"), Filters, NO_FILTERS),
            (Some("/roles"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::AuditTrail,
        [
            (
                Some("/system/audittrail"),
                IdsOnly,
                "the audit trail is read per record (a type and an id), not listed",
            ),
            (None, Absent, "the REST API exposes no audit trail"),
            (
                Some("/audit"),
                IdsOnly,
                "the audit is read per record, not listed",
            ),
        ],
    ),
    (
        E::Appointment,
        [
            (
                Some("/schedule/entries"),
                Filters,
                "an appointment is a schedule entry in ConnectWise",
            ),
            (Some("Appointments"), Filters, NO_FILTERS),
            (Some("/appointment"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Servicecall,
        [
            (
                None,
                Absent,
                "ConnectWise has schedule entries (scheduled_entry), no service calls",
            ),
            (Some("ServiceCalls"), Filters, NO_FILTERS),
            (
                None,
                Absent,
                "HaloPSA has appointments (appointment), no service calls",
            ),
        ],
    ),
    (
        E::ContractService,
        [
            (
                Some("/finance/agreements/{parentId}/additions"),
                IdsOnly,
                "agreement additions, listed per agreement",
            ),
            (Some("ContractServices"), Filters, NO_FILTERS),
            (
                None,
                Absent,
                "HaloPSA contracts have no service lines of their own",
            ),
        ],
    ),
    (
        E::CompanyLocation,
        [
            (
                Some("/company/companies/{parentId}/sites"),
                IdsOnly,
                "sites are listed per company",
            ),
            (Some("CompanyLocations"), Filters, NO_FILTERS),
            (Some("/site"), Filters, NO_FILTERS),
        ],
    ),
    (
        E::Product,
        [
            (Some("/procurement/products"), Filters, NO_FILTERS),
            (Some("Products"), Filters, NO_FILTERS),
            (Some("/item"), Filters, NO_FILTERS),
        ],
    ),
];

fn column(psa: Psa) -> usize {
    match psa {
        Psa::ConnectWise => 0,
        Psa::Autotask => 1,
        Psa::Halo => 2,
    }
}

/// The matrix's cell for `entity` on `psa`.
pub fn pair(psa: Psa, entity: EntityType) -> Pair {
    let (_, cells) = MATRIX
        .iter()
        .find(|(e, _)| *e == entity)
        .expect("every entity type has a row");
    let (endpoint, level, note) = cells[column(psa)];
    Pair {
        psa,
        entity,
        endpoint,
        level,
        note,
    }
}

/// Whether a filter (a rule group) may target `entity` on `psa`.
pub fn filterable(psa: Psa, entity: EntityType) -> bool {
    pair(psa, entity).level == Level::Filters
}

/// The PSAs on which a filter may target `entity`.
pub fn filterable_on(entity: EntityType) -> Vec<Psa> {
    Psa::ALL
        .into_iter()
        .filter(|p| filterable(*p, entity))
        .collect()
}

/// Every cell, entity by entity in the API's order, each in PSA order.
pub fn matrix() -> impl Iterator<Item = Pair> {
    EntityType::ALL
        .iter()
        .flat_map(|e| Psa::ALL.into_iter().map(move |p| pair(p, *e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entity_type_has_one_row_and_the_connectors_read_it() {
        for e in EntityType::ALL {
            assert_eq!(MATRIX.iter().filter(|(x, _)| x == e).count(), 1, "{e}");
        }
        for p in matrix() {
            // An absent or unbackfillable cell names no endpoint and says why.
            match p.level {
                Level::Absent | Level::NotBackfillable => {
                    assert!(p.endpoint.is_none() && !p.note.is_empty(), "{p:?}")
                }
                Level::Filters | Level::IdsOnly => assert!(p.endpoint.is_some(), "{p:?}"),
            }
            // Filters are claimed exactly where a compile table exists, and the connectors
            // can list the endpoint (no parent id in it).
            assert_eq!(
                p.level == Level::Filters,
                crate::compile::catalogue(p.psa, p.entity).is_some(),
                "{p:?}"
            );
            if p.level == Level::Filters {
                assert!(!p.endpoint.unwrap_or("{").contains('{'), "{p:?}");
            }
        }
        assert_eq!(filterable_on(EntityType::Ticket), Psa::ALL);
        assert!(filterable_on(EntityType::None).is_empty());
    }
}
