//! ConnectWise compile tables (docs/psa.md §1.4, §1.10; docs/entity-types.md). Paths walk
//! `/` into reference objects; `dateEntered`/`lastUpdated` are condition names for
//! `_info/dateEntered`/`_info/lastUpdated`, which every resource carries.

use neo_domain::backfill::EntityType as E;
use neo_domain::filter::ValueKind::{Bool, DateTime, Number, String as Text};

use super::{Aliases, Catalogue, Fields, Target};
use crate::Psa;

pub(super) static TABLES: &[&Catalogue] = &[
    &TICKET,
    &PROJECT_TICKET,
    &PROJECT,
    &COMPANY,
    &CONTACT,
    &CONFIGURATION,
    &TIME_ENTRY,
    &OPPORTUNITY,
    &CONTRACT,
    &RESOURCE,
    &SCHEDULED_ENTRY,
    &APPOINTMENT,
    &ROLE,
    &PRODUCT,
];

const fn table(
    entity: E,
    fields: Fields,
    aliases: Aliases,
    title: &'static [&'static str],
) -> Catalogue {
    Catalogue::new(Psa::ConnectWise, entity, fields, aliases, title)
}

const CREATED: Target = Target::same("dateEntered");
const UPDATED: Target = Target::same("lastUpdated");
const COMPANY_REF: Target = Target::by_kind(Some("company/id"), Some("company/name"));
const STATUS_REF: Target = Target::by_kind(Some("status/id"), Some("status/name"));
/// Every resource's `_info` dates.
const DATED: Aliases = Aliases {
    created: CREATED,
    updated: UPDATED,
    ..Aliases::NONE
};

/// `/service/tickets`.
static TICKET: Catalogue = Catalogue {
    custom_push: true,
    ..table(
        E::Ticket,
        &[
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
        Aliases {
            closed: Target::same("closedFlag"),
            company: COMPANY_REF,
            status: STATUS_REF,
            priority: Target::by_kind(Some("priority/id"), Some("priority/name")),
            queue: Target::by_kind(Some("board/id"), Some("board/name")),
            assignee: Target::by_kind(Some("owner/id"), Some("owner/identifier")),
            ..DATED
        },
        &["summary"],
    )
};

/// `/project/tickets`: service tickets' shape, placed in a project and phase.
static PROJECT_TICKET: Catalogue = table(
    E::ProjectTicket,
    &[
        ("id", Number),
        ("summary", Text),
        ("project/id", Number),
        ("project/name", Text),
        ("phase/id", Number),
        ("phase/name", Text),
        ("board/id", Number),
        ("board/name", Text),
        ("status/id", Number),
        ("status/name", Text),
        ("priority/id", Number),
        ("priority/name", Text),
        ("company/id", Number),
        ("company/identifier", Text),
        ("company/name", Text),
        ("owner/id", Number),
        ("owner/identifier", Text),
        ("closedFlag", Bool),
        ("budgetHours", Number),
        ("actualHours", Number),
        ("requiredDate", DateTime),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    Aliases {
        closed: Target::same("closedFlag"),
        company: COMPANY_REF,
        status: STATUS_REF,
        priority: Target::by_kind(Some("priority/id"), Some("priority/name")),
        queue: Target::by_kind(Some("board/id"), Some("board/name")),
        assignee: Target::by_kind(Some("owner/id"), Some("owner/identifier")),
        ..DATED
    },
    &["summary"],
);

/// `/project/projects`.
static PROJECT: Catalogue = table(
    E::Project,
    &[
        ("id", Number),
        ("name", Text),
        ("status/id", Number),
        ("status/name", Text),
        ("company/id", Number),
        ("company/identifier", Text),
        ("company/name", Text),
        ("contact/id", Number),
        ("contact/name", Text),
        ("board/id", Number),
        ("board/name", Text),
        ("manager/id", Number),
        ("manager/identifier", Text),
        ("type/id", Number),
        ("type/name", Text),
        ("billingMethod", Text),
        ("closedFlag", Bool),
        ("estimatedStart", DateTime),
        ("estimatedEnd", DateTime),
        ("actualEnd", DateTime),
        ("budgetHours", Number),
        ("actualHours", Number),
        ("percentComplete", Number),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    Aliases {
        closed: Target::same("closedFlag"),
        company: COMPANY_REF,
        status: STATUS_REF,
        queue: Target::by_kind(Some("board/id"), Some("board/name")),
        assignee: Target::by_kind(Some("manager/id"), Some("manager/identifier")),
        ..DATED
    },
    &["name"],
);

/// `/company/companies`. `$company` is the company itself.
static COMPANY: Catalogue = table(
    E::Company,
    &[
        ("id", Number),
        ("identifier", Text),
        ("name", Text),
        ("status/id", Number),
        ("status/name", Text),
        ("territory/id", Number),
        ("territory/name", Text),
        ("market/id", Number),
        ("market/name", Text),
        ("city", Text),
        ("state", Text),
        ("zip", Text),
        ("phoneNumber", Text),
        ("website", Text),
        ("accountNumber", Text),
        ("numberOfEmployees", Number),
        ("annualRevenue", Number),
        ("leadFlag", Bool),
        ("deletedFlag", Bool),
        ("dateAcquired", DateTime),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    Aliases {
        company: Target::by_kind(Some("id"), Some("name")),
        status: STATUS_REF,
        ..DATED
    },
    &["name"],
);

/// `/company/contacts`.
static CONTACT: Catalogue = table(
    E::Contact,
    &[
        ("id", Number),
        ("firstName", Text),
        ("lastName", Text),
        ("title", Text),
        ("company/id", Number),
        ("company/identifier", Text),
        ("company/name", Text),
        ("site/id", Number),
        ("site/name", Text),
        ("department/id", Number),
        ("department/name", Text),
        ("relationship/id", Number),
        ("relationship/name", Text),
        ("inactiveFlag", Bool),
        ("defaultFlag", Bool),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    Aliases {
        company: COMPANY_REF,
        ..DATED
    },
    &["firstName", "lastName"],
);

/// `/company/configurations`.
static CONFIGURATION: Catalogue = table(
    E::Configuration,
    &[
        ("id", Number),
        ("name", Text),
        ("type/id", Number),
        ("type/name", Text),
        ("status/id", Number),
        ("status/name", Text),
        ("company/id", Number),
        ("company/identifier", Text),
        ("company/name", Text),
        ("contact/id", Number),
        ("contact/name", Text),
        ("site/id", Number),
        ("site/name", Text),
        ("serialNumber", Text),
        ("modelNumber", Text),
        ("tagNumber", Text),
        ("osType", Text),
        ("ipAddress", Text),
        ("activeFlag", Bool),
        ("purchaseDate", DateTime),
        ("installationDate", DateTime),
        ("warrantyExpirationDate", DateTime),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    Aliases {
        company: COMPANY_REF,
        status: STATUS_REF,
        ..DATED
    },
    &["name"],
);

/// `/time/entries`. `$assignee` is the member who worked.
static TIME_ENTRY: Catalogue = table(
    E::TimeEntry,
    &[
        ("id", Number),
        ("company/id", Number),
        ("company/identifier", Text),
        ("company/name", Text),
        ("chargeToId", Number),
        ("chargeToType", Text),
        ("member/id", Number),
        ("member/identifier", Text),
        ("member/name", Text),
        ("workType/id", Number),
        ("workType/name", Text),
        ("workRole/id", Number),
        ("workRole/name", Text),
        ("agreement/id", Number),
        ("agreement/name", Text),
        ("ticket/id", Number),
        ("project/id", Number),
        ("billableOption", Text),
        ("notes", Text),
        ("actualHours", Number),
        ("timeStart", DateTime),
        ("timeEnd", DateTime),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    Aliases {
        company: COMPANY_REF,
        assignee: Target::by_kind(Some("member/id"), Some("member/identifier")),
        ..DATED
    },
    &["notes"],
);

/// `/sales/opportunities`.
static OPPORTUNITY: Catalogue = table(
    E::Opportunity,
    &[
        ("id", Number),
        ("name", Text),
        ("company/id", Number),
        ("company/identifier", Text),
        ("company/name", Text),
        ("contact/id", Number),
        ("contact/name", Text),
        ("status/id", Number),
        ("status/name", Text),
        ("stage/id", Number),
        ("stage/name", Text),
        ("type/id", Number),
        ("type/name", Text),
        ("primarySalesRep/id", Number),
        ("primarySalesRep/identifier", Text),
        ("source", Text),
        ("closedFlag", Bool),
        ("expectedCloseDate", DateTime),
        ("closedDate", DateTime),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    Aliases {
        closed: Target::same("closedFlag"),
        company: COMPANY_REF,
        status: STATUS_REF,
        assignee: Target::by_kind(
            Some("primarySalesRep/id"),
            Some("primarySalesRep/identifier"),
        ),
        ..DATED
    },
    &["name"],
);

/// `/finance/agreements`. The status is text (`agreementStatus`), so `$status` takes names.
static CONTRACT: Catalogue = table(
    E::Contract,
    &[
        ("id", Number),
        ("name", Text),
        ("type/id", Number),
        ("type/name", Text),
        ("company/id", Number),
        ("company/identifier", Text),
        ("company/name", Text),
        ("contact/id", Number),
        ("contact/name", Text),
        ("agreementStatus", Text),
        ("billingCycle/id", Number),
        ("billingCycle/name", Text),
        ("parentAgreementId", Number),
        ("customerPO", Text),
        ("billAmount", Number),
        ("applicationUnits", Text),
        ("noEndingDateFlag", Bool),
        ("cancelledFlag", Bool),
        ("startDate", DateTime),
        ("endDate", DateTime),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    Aliases {
        company: COMPANY_REF,
        status: Target::by_kind(None, Some("agreementStatus")),
        ..DATED
    },
    &["name"],
);

/// `/system/members`. Members belong to the MSP, so no `$company`.
static RESOURCE: Catalogue = table(
    E::Resource,
    &[
        ("id", Number),
        ("identifier", Text),
        ("firstName", Text),
        ("lastName", Text),
        ("title", Text),
        ("officeEmail", Text),
        ("licenseClass", Text),
        ("inactiveFlag", Bool),
        ("defaultLocation/id", Number),
        ("defaultLocation/name", Text),
        ("defaultDepartment/id", Number),
        ("defaultDepartment/name", Text),
        ("workRole/id", Number),
        ("workRole/name", Text),
        ("hireDate", DateTime),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    DATED,
    &["firstName", "lastName"],
);

const SCHEDULE_FIELDS: Fields = &[
    ("id", Number),
    ("name", Text),
    ("objectId", Number),
    ("type/id", Number),
    ("type/identifier", Text),
    ("member/id", Number),
    ("member/identifier", Text),
    ("member/name", Text),
    ("status/id", Number),
    ("status/name", Text),
    ("doneFlag", Bool),
    ("dateStart", DateTime),
    ("dateEnd", DateTime),
    ("dateEntered", DateTime),
    ("lastUpdated", DateTime),
    ("_info/dateEntered", DateTime),
    ("_info/lastUpdated", DateTime),
];

const SCHEDULE_ALIASES: Aliases = Aliases {
    status: STATUS_REF,
    closed: Target::same("doneFlag"),
    assignee: Target::by_kind(Some("member/id"), Some("member/identifier")),
    ..DATED
};

/// `/schedule/entries`; an entry's record (`objectId`) is a ticket, activity or project.
static SCHEDULED_ENTRY: Catalogue = table(
    E::ScheduledEntry,
    SCHEDULE_FIELDS,
    SCHEDULE_ALIASES,
    &["name"],
);

/// An appointment is a schedule entry: the same resource and table.
static APPOINTMENT: Catalogue = table(E::Appointment, SCHEDULE_FIELDS, SCHEDULE_ALIASES, &["name"]);

/// `/time/workRoles`.
static ROLE: Catalogue = table(
    E::Role,
    &[
        ("id", Number),
        ("name", Text),
        ("hourlyRate", Number),
        ("inactiveFlag", Bool),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    DATED,
    &["name"],
);

/// `/procurement/products`: catalog items placed on tickets, projects, opportunities or
/// agreements.
static PRODUCT: Catalogue = table(
    E::Product,
    &[
        ("id", Number),
        ("description", Text),
        ("catalogItem/id", Number),
        ("catalogItem/identifier", Text),
        ("quantity", Number),
        ("price", Number),
        ("cost", Number),
        ("billableOption", Text),
        ("ticket/id", Number),
        ("project/id", Number),
        ("opportunity/id", Number),
        ("agreement/id", Number),
        ("company/id", Number),
        ("company/name", Text),
        ("dateEntered", DateTime),
        ("lastUpdated", DateTime),
        ("_info/dateEntered", DateTime),
        ("_info/lastUpdated", DateTime),
    ],
    Aliases {
        company: COMPANY_REF,
        ..DATED
    },
    &["description"],
);
