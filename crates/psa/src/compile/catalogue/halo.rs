//! HaloPSA compile tables (docs/psa.md §3; docs/entity-types.md). Names are flat. Only
//! tickets push anything to HaloPSA (its allowlist, [`crate::compile::halo`]); on every other
//! resource the whole filter is evaluated locally over the pages read, because Halo silently
//! ignores a parameter it does not know and an ignored one would read as "everything".
//!
//! Projects and opportunities are tickets in HaloPSA (their lists are named `tickets`), so they
//! share the ticket's dates and flags. List names are the HaloAPI module's `ResourceType`s;
//! agents, appointments, teams, roles and timesheet events are not paged (a bare array).

use neo_domain::backfill::EntityType as E;
use neo_domain::filter::ValueKind::{Bool, DateTime, Number, String as Text};

use super::{Aliases, Catalogue, Fields, HaloList, Target};
use crate::Psa;

pub(super) static TABLES: &[&Catalogue] = &[
    &TICKET,
    &SCHEDULED_ENTRY,
    &TIME_ENTRY,
    &PROJECT,
    &COMPANY,
    &CONTACT,
    &RESOURCE,
    &CONTRACT,
    &OPPORTUNITY,
    &CONFIGURATION,
    &TEAM,
    &ROLE,
    &APPOINTMENT,
    &COMPANY_LOCATION,
    &PRODUCT,
];

const fn table(
    entity: E,
    fields: Fields,
    aliases: Aliases,
    title: &'static [&'static str],
    halo_list: HaloList,
) -> Catalogue {
    Catalogue {
        halo_list,
        ..Catalogue::new(Psa::Halo, entity, fields, aliases, title)
    }
}

const CLIENT: Target = Target::by_kind(Some("client_id"), Some("client_name"));

/// A ticket's aliases (tickets, projects, opportunities).
const TICKETISH: Aliases = Aliases {
    created: Target::same("dateoccurred"),
    updated: Target::same("lastactiondate"),
    closed: Target::same("hasbeenclosed"),
    company: CLIENT,
    status: Target::by_kind(Some("status_id"), None),
    priority: Target::by_kind(Some("priority_id"), None),
    queue: Target::by_kind(None, Some("team")),
    assignee: Target::by_kind(Some("agent_id"), None),
};

/// `/tickets`.
static TICKET: Catalogue = table(
    E::Ticket,
    &[
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
    TICKETISH,
    &["summary"],
    HaloList::Paged("tickets"),
);

/// `/projects`: tickets of a project type.
static PROJECT: Catalogue = table(
    E::Project,
    &[
        ("id", Number),
        ("summary", Text),
        ("details", Text),
        ("status_id", Number),
        ("tickettype_id", Number),
        ("priority_id", Number),
        ("client_id", Number),
        ("client_name", Text),
        ("site_id", Number),
        ("agent_id", Number),
        ("team", Text),
        ("dateoccurred", DateTime),
        ("lastactiondate", DateTime),
        ("startdate", DateTime),
        ("targetdate", DateTime),
        ("dateclosed", DateTime),
        ("hasbeenclosed", Bool),
        ("projecttimepercentage", Number),
    ],
    TICKETISH,
    &["summary"],
    HaloList::Paged("tickets"),
);

/// `/opportunities`: tickets of an opportunity type.
static OPPORTUNITY: Catalogue = table(
    E::Opportunity,
    &[
        ("id", Number),
        ("summary", Text),
        ("status_id", Number),
        ("tickettype_id", Number),
        ("client_id", Number),
        ("client_name", Text),
        ("agent_id", Number),
        ("team", Text),
        ("opportunityvalue", Number),
        ("dateoccurred", DateTime),
        ("lastactiondate", DateTime),
        ("dateclosed", DateTime),
        ("hasbeenclosed", Bool),
    ],
    Aliases {
        priority: Target::NONE,
        ..TICKETISH
    },
    &["summary"],
    HaloList::Paged("tickets"),
);

/// `/client`. `$company` is the client itself.
static COMPANY: Catalogue = table(
    E::Company,
    &[
        ("id", Number),
        ("name", Text),
        ("toplevel_id", Number),
        ("toplevel_name", Text),
        ("accountsid", Text),
        ("website", Text),
        ("phonenumber", Text),
        ("inactive", Bool),
        ("is_vip", Bool),
    ],
    Aliases {
        company: Target::by_kind(Some("id"), Some("name")),
        ..Aliases::NONE
    },
    &["name"],
    HaloList::Paged("clients"),
);

/// `/users`: the clients' people.
static CONTACT: Catalogue = table(
    E::Contact,
    &[
        ("id", Number),
        ("name", Text),
        ("firstname", Text),
        ("surname", Text),
        ("emailaddress", Text),
        ("phonenumber", Text),
        ("jobtitle", Text),
        ("client_id", Number),
        ("client_name", Text),
        ("site_id", Number),
        ("site_name", Text),
        ("inactive", Bool),
        ("isimportantcontact", Bool),
    ],
    Aliases {
        company: CLIENT,
        ..Aliases::NONE
    },
    &["name"],
    HaloList::Paged("users"),
);

/// `/asset`.
static CONFIGURATION: Catalogue = table(
    E::Configuration,
    &[
        ("id", Number),
        ("inventory_number", Text),
        ("key_field", Text),
        ("client_id", Number),
        ("client_name", Text),
        ("site_id", Number),
        ("site_name", Text),
        ("assettype_id", Number),
        ("assettype_name", Text),
        ("status_id", Number),
        ("supplier_id", Number),
        ("inactive", Bool),
        ("warranty_end", DateTime),
    ],
    Aliases {
        company: CLIENT,
        status: Target::by_kind(Some("status_id"), None),
        ..Aliases::NONE
    },
    &["inventory_number", "key_field"],
    HaloList::Paged("assets"),
);

/// `/agent`: the MSP's people.
static RESOURCE: Catalogue = table(
    E::Resource,
    &[
        ("id", Number),
        ("name", Text),
        ("email", Text),
        ("initials", Text),
        ("team", Text),
        ("isdisabled", Bool),
    ],
    Aliases {
        queue: Target::by_kind(None, Some("team")),
        ..Aliases::NONE
    },
    &["name"],
    HaloList::Bare,
);

/// `/clientcontract`.
static CONTRACT: Catalogue = table(
    E::Contract,
    &[
        ("id", Number),
        ("ref", Text),
        ("client_id", Number),
        ("client_name", Text),
        ("billing_description", Text),
        ("contract_status", Text),
        ("expired", Bool),
        ("start_date", DateTime),
        ("end_date", DateTime),
    ],
    Aliases {
        company: CLIENT,
        status: Target::by_kind(None, Some("contract_status")),
        ..Aliases::NONE
    },
    &["ref"],
    HaloList::Paged("contracts"),
);

/// `/timesheetevent`: time logged by an agent, on a ticket.
static TIME_ENTRY: Catalogue = table(
    E::TimeEntry,
    &[
        ("id", Number),
        ("subject", Text),
        ("note", Text),
        ("agent_id", Number),
        ("ticket_id", Number),
        ("client_id", Number),
        ("client_name", Text),
        ("event_type", Number),
        ("timetaken", Number),
        ("start_date", DateTime),
        ("end_date", DateTime),
    ],
    Aliases {
        company: CLIENT,
        assignee: Target::by_kind(Some("agent_id"), None),
        ..Aliases::NONE
    },
    &["subject"],
    HaloList::Bare,
);

const APPOINTMENT_FIELDS: Fields = &[
    ("id", Number),
    ("subject", Text),
    ("agent_id", Number),
    ("client_id", Number),
    ("client_name", Text),
    ("ticket_id", Number),
    ("appointment_type", Number),
    ("complete_status", Number),
    ("start_date", DateTime),
    ("end_date", DateTime),
];

const APPOINTMENT_ALIASES: Aliases = Aliases {
    company: CLIENT,
    status: Target::by_kind(Some("complete_status"), None),
    assignee: Target::by_kind(Some("agent_id"), None),
    ..Aliases::NONE
};

/// `/appointment`.
static APPOINTMENT: Catalogue = table(
    E::Appointment,
    APPOINTMENT_FIELDS,
    APPOINTMENT_ALIASES,
    &["subject"],
    HaloList::Bare,
);

/// Scheduled work is an appointment in HaloPSA: the same resource and table.
static SCHEDULED_ENTRY: Catalogue = table(
    E::ScheduledEntry,
    APPOINTMENT_FIELDS,
    APPOINTMENT_ALIASES,
    &["subject"],
    HaloList::Bare,
);

/// `/team`.
static TEAM: Catalogue = table(
    E::Team,
    &[
        ("id", Number),
        ("name", Text),
        ("department_id", Number),
        ("inactive", Bool),
    ],
    Aliases::NONE,
    &["name"],
    HaloList::Bare,
);

/// `/roles`.
static ROLE: Catalogue = table(
    E::Role,
    &[("id", Number), ("name", Text), ("isagent", Bool)],
    Aliases::NONE,
    &["name"],
    HaloList::Bare,
);

/// `/site`.
static COMPANY_LOCATION: Catalogue = table(
    E::CompanyLocation,
    &[
        ("id", Number),
        ("name", Text),
        ("client_id", Number),
        ("client_name", Text),
        ("phonenumber", Text),
        ("inactive", Bool),
    ],
    Aliases {
        company: CLIENT,
        ..Aliases::NONE
    },
    &["name"],
    HaloList::Paged("sites"),
);

/// `/item`.
static PRODUCT: Catalogue = table(
    E::Product,
    &[
        ("id", Number),
        ("name", Text),
        ("description", Text),
        ("baseprice", Number),
        ("costprice", Number),
        ("supplier_id", Number),
        ("inactive", Bool),
    ],
    Aliases::NONE,
    &["name"],
    HaloList::Paged("items"),
);
