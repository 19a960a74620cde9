//! Autotask compile tables (docs/psa.md §2.7; docs/entity-types.md). Field names are flat
//! and case-insensitive; references are ids (`companyID`), picklists integers, and rows carry
//! no labels, so the name forms of `$company`, `$status` and the rest match nothing (docs/psa.md
//! §6.4). Each entity names its own dates (`createDate`, `createDateTime`, …).

use neo_domain::backfill::EntityType as E;
use neo_domain::filter::ValueKind::{Bool, DateTime, Number, String as Text};

use super::{Aliases, Catalogue, Fields, Target};
use crate::Psa;

pub(super) static TABLES: &[&Catalogue] = &[
    &TICKET,
    &TASK,
    &SERVICE_CALL,
    &SCHEDULED_ENTRY,
    &TIME_ENTRY,
    &PROJECT,
    &COMPANY,
    &CONTACT,
    &RESOURCE,
    &CONTRACT,
    &OPPORTUNITY,
    &CONFIGURATION,
    &NOTE,
    &ROLE,
    &APPOINTMENT,
    &CONTRACT_SERVICE,
    &COMPANY_LOCATION,
    &PRODUCT,
];

const fn table(
    entity: E,
    fields: Fields,
    aliases: Aliases,
    title: &'static [&'static str],
) -> Catalogue {
    Catalogue::new(Psa::Autotask, entity, fields, aliases, title)
}

const fn id(p: &'static str) -> Target {
    Target::by_kind(Some(p), None)
}

const fn dated(created: &'static str, updated: &'static str) -> Aliases {
    Aliases {
        created: Target::same(created),
        updated: Target::same(updated),
        ..Aliases::NONE
    }
}

/// `Tickets`. `creatorType` and `lastActivityPersonType` cannot be queried, so they are
/// absent. `$closed` is `status` in the integration's complete statuses (docs/psa.md §6.4).
static TICKET: Catalogue = Catalogue {
    number: Some("ticketNumber"),
    custom_push: true,
    ..table(
        E::Ticket,
        &[
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
        Aliases {
            closed: Target::same("status"),
            company: id("companyID"),
            status: id("status"),
            priority: id("priority"),
            queue: id("queueID"),
            assignee: id("assignedResourceID"),
            ..dated("createDate", "lastActivityDate")
        },
        &["title"],
    )
};

/// `Tasks`: project work, in a project and phase.
static TASK: Catalogue = table(
    E::Task,
    &[
        ("id", Number),
        ("title", Text),
        ("taskNumber", Text),
        ("description", Text),
        ("projectID", Number),
        ("phaseID", Number),
        ("status", Number),
        ("priorityLabel", Number),
        ("taskType", Number),
        ("departmentID", Number),
        ("assignedResourceID", Number),
        ("billingCodeID", Number),
        ("isVisibleInClientPortal", Bool),
        ("estimatedHours", Number),
        ("remainingHours", Number),
        ("startDateTime", DateTime),
        ("endDateTime", DateTime),
        ("completedDateTime", DateTime),
        ("createDateTime", DateTime),
        ("lastActivityDateTime", DateTime),
    ],
    Aliases {
        status: id("status"),
        priority: id("priorityLabel"),
        assignee: id("assignedResourceID"),
        ..dated("createDateTime", "lastActivityDateTime")
    },
    &["title"],
);

const SERVICE_CALL_FIELDS: Fields = &[
    ("id", Number),
    ("description", Text),
    ("companyID", Number),
    ("companyLocationID", Number),
    ("status", Number),
    ("duration", Number),
    ("isComplete", Number),
    ("startDateTime", DateTime),
    ("endDateTime", DateTime),
    ("createDateTime", DateTime),
    ("lastModifiedDateTime", DateTime),
];

const SERVICE_CALL_ALIASES: Aliases = Aliases {
    company: id("companyID"),
    status: id("status"),
    ..dated("createDateTime", "lastModifiedDateTime")
};

/// `ServiceCalls`.
static SERVICE_CALL: Catalogue = table(
    E::Servicecall,
    SERVICE_CALL_FIELDS,
    SERVICE_CALL_ALIASES,
    &["description"],
);

/// Scheduled work is a service call in Autotask: the same resource and table.
static SCHEDULED_ENTRY: Catalogue = table(
    E::ScheduledEntry,
    SERVICE_CALL_FIELDS,
    SERVICE_CALL_ALIASES,
    &["description"],
);

/// `TimeEntries`. `$assignee` is the resource who worked.
static TIME_ENTRY: Catalogue = table(
    E::TimeEntry,
    &[
        ("id", Number),
        ("resourceID", Number),
        ("ticketID", Number),
        ("taskID", Number),
        ("contractID", Number),
        ("roleID", Number),
        ("billingCodeID", Number),
        ("timeEntryType", Number),
        ("summaryNotes", Text),
        ("internalNotes", Text),
        ("hoursWorked", Number),
        ("hoursToBill", Number),
        ("isNonBillable", Bool),
        ("dateWorked", DateTime),
        ("startDateTime", DateTime),
        ("endDateTime", DateTime),
        ("createDateTime", DateTime),
        ("lastModifiedDateTime", DateTime),
    ],
    Aliases {
        assignee: id("resourceID"),
        ..dated("createDateTime", "lastModifiedDateTime")
    },
    &["summaryNotes"],
);

/// `Projects`.
static PROJECT: Catalogue = table(
    E::Project,
    &[
        ("id", Number),
        ("projectName", Text),
        ("projectNumber", Text),
        ("description", Text),
        ("companyID", Number),
        ("contractID", Number),
        ("department", Number),
        ("status", Number),
        ("projectType", Number),
        ("projectLeadResourceID", Number),
        ("completedPercentage", Number),
        ("estimatedTime", Number),
        ("actualHours", Number),
        ("startDateTime", DateTime),
        ("endDateTime", DateTime),
        ("completedDateTime", DateTime),
        ("createDateTime", DateTime),
        ("lastActivityDateTime", DateTime),
    ],
    Aliases {
        company: id("companyID"),
        status: id("status"),
        assignee: id("projectLeadResourceID"),
        ..dated("createDateTime", "lastActivityDateTime")
    },
    &["projectName"],
);

/// `Companies`. `$company` is the company itself.
static COMPANY: Catalogue = table(
    E::Company,
    &[
        ("id", Number),
        ("companyName", Text),
        ("companyNumber", Text),
        ("companyType", Number),
        ("classification", Number),
        ("marketSegmentID", Number),
        ("territoryID", Number),
        ("parentCompanyID", Number),
        ("ownerResourceID", Number),
        ("isActive", Bool),
        ("phone", Text),
        ("city", Text),
        ("state", Text),
        ("postalCode", Text),
        ("webAddress", Text),
        ("createDate", DateTime),
        ("lastActivityDate", DateTime),
        ("lastTrackedModifiedDateTime", DateTime),
    ],
    Aliases {
        company: id("id"),
        assignee: id("ownerResourceID"),
        ..dated("createDate", "lastTrackedModifiedDateTime")
    },
    &["companyName"],
);

/// `Contacts`. `isActive` is an integer (1 active, 0 inactive) on contacts.
static CONTACT: Catalogue = table(
    E::Contact,
    &[
        ("id", Number),
        ("firstName", Text),
        ("lastName", Text),
        ("title", Text),
        ("emailAddress", Text),
        ("phone", Text),
        ("mobilePhone", Text),
        ("companyID", Number),
        ("companyLocationID", Number),
        ("isActive", Number),
        ("createDate", DateTime),
        ("lastActivityDate", DateTime),
        ("lastModifiedDate", DateTime),
    ],
    Aliases {
        company: id("companyID"),
        ..dated("createDate", "lastModifiedDate")
    },
    &["firstName", "lastName"],
);

/// `Resources`: the MSP's people, so no `$company`.
static RESOURCE: Catalogue = table(
    E::Resource,
    &[
        ("id", Number),
        ("firstName", Text),
        ("lastName", Text),
        ("userName", Text),
        ("email", Text),
        ("title", Text),
        ("resourceType", Text),
        ("licenseType", Number),
        ("locationID", Number),
        ("defaultServiceDeskRoleID", Number),
        ("isActive", Bool),
        ("hireDate", DateTime),
    ],
    Aliases::NONE,
    &["firstName", "lastName"],
);

/// `Contracts`.
static CONTRACT: Catalogue = table(
    E::Contract,
    &[
        ("id", Number),
        ("contractName", Text),
        ("contractNumber", Text),
        ("companyID", Number),
        ("contactID", Number),
        ("contractType", Number),
        ("contractCategory", Number),
        ("status", Number),
        ("serviceLevelAgreementID", Number),
        ("opportunityID", Number),
        ("estimatedRevenue", Number),
        ("isDefaultContract", Bool),
        ("startDate", DateTime),
        ("endDate", DateTime),
        ("lastModifiedDateTime", DateTime),
    ],
    Aliases {
        company: id("companyID"),
        status: id("status"),
        updated: Target::same("lastModifiedDateTime"),
        ..Aliases::NONE
    },
    &["contractName"],
);

/// `Opportunities`.
static OPPORTUNITY: Catalogue = table(
    E::Opportunity,
    &[
        ("id", Number),
        ("title", Text),
        ("companyID", Number),
        ("contactID", Number),
        ("ownerResourceID", Number),
        ("status", Number),
        ("stage", Number),
        ("rating", Number),
        ("probability", Number),
        ("amount", Number),
        ("cost", Number),
        ("projectedCloseDate", DateTime),
        ("closedDate", DateTime),
        ("createDate", DateTime),
        ("lastActivity", DateTime),
    ],
    Aliases {
        company: id("companyID"),
        status: id("status"),
        assignee: id("ownerResourceID"),
        ..dated("createDate", "lastActivity")
    },
    &["title"],
);

/// `ConfigurationItems`.
static CONFIGURATION: Catalogue = table(
    E::Configuration,
    &[
        ("id", Number),
        ("referenceTitle", Text),
        ("referenceNumber", Text),
        ("serialNumber", Text),
        ("companyID", Number),
        ("companyLocationID", Number),
        ("contactID", Number),
        ("configurationItemType", Number),
        ("productID", Number),
        ("isActive", Bool),
        ("installDate", DateTime),
        ("warrantyExpirationDate", DateTime),
        ("createDate", DateTime),
        ("lastModifiedTime", DateTime),
    ],
    Aliases {
        company: id("companyID"),
        ..dated("createDate", "lastModifiedTime")
    },
    &["referenceTitle"],
);

/// `TicketNotes`.
static NOTE: Catalogue = table(
    E::Note,
    &[
        ("id", Number),
        ("ticketID", Number),
        ("title", Text),
        ("description", Text),
        ("noteType", Number),
        ("publish", Number),
        ("creatorResourceID", Number),
        ("createDateTime", DateTime),
        ("lastActivityDate", DateTime),
    ],
    Aliases {
        assignee: id("creatorResourceID"),
        ..dated("createDateTime", "lastActivityDate")
    },
    &["title"],
);

/// `Roles`.
static ROLE: Catalogue = table(
    E::Role,
    &[
        ("id", Number),
        ("name", Text),
        ("description", Text),
        ("hourlyRate", Number),
        ("isActive", Bool),
        ("isSystemRole", Bool),
    ],
    Aliases::NONE,
    &["name"],
);

/// `Appointments`: a resource's calendar entries.
static APPOINTMENT: Catalogue = table(
    E::Appointment,
    &[
        ("id", Number),
        ("title", Text),
        ("description", Text),
        ("resourceID", Number),
        ("startDateTime", DateTime),
        ("endDateTime", DateTime),
        ("createDateTime", DateTime),
        ("updateDateTime", DateTime),
    ],
    Aliases {
        assignee: id("resourceID"),
        ..dated("createDateTime", "updateDateTime")
    },
    &["title"],
);

/// `ContractServices`: a contract's service lines.
static CONTRACT_SERVICE: Catalogue = table(
    E::ContractService,
    &[
        ("id", Number),
        ("contractID", Number),
        ("serviceID", Number),
        ("invoiceDescription", Text),
        ("unitPrice", Number),
        ("unitCost", Number),
    ],
    Aliases::NONE,
    &["invoiceDescription"],
);

/// `CompanyLocations`.
static COMPANY_LOCATION: Catalogue = table(
    E::CompanyLocation,
    &[
        ("id", Number),
        ("name", Text),
        ("companyID", Number),
        ("address1", Text),
        ("city", Text),
        ("state", Text),
        ("postalCode", Text),
        ("phone", Text),
        ("isActive", Bool),
        ("isPrimary", Bool),
    ],
    Aliases {
        company: id("companyID"),
        ..Aliases::NONE
    },
    &["name"],
);

/// `Products`.
static PRODUCT: Catalogue = table(
    E::Product,
    &[
        ("id", Number),
        ("name", Text),
        ("description", Text),
        ("sku", Text),
        ("manufacturerName", Text),
        ("productCategory", Number),
        ("unitPrice", Number),
        ("unitCost", Number),
        ("isActive", Bool),
        ("isSerialized", Bool),
    ],
    Aliases::NONE,
    &["name"],
);
