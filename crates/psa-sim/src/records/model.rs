//! The neutral records behind the non-ticket resources. A record holds what every PSA view of
//! the object needs (denormalised: a contact carries its company's id, identifier and name), so
//! that a view is a pure function of one record and the three PSAs cannot disagree about it.

use jiff::Timestamp;

use crate::data::{Board, Company, Member, Priority, Status};

/// A reference to a picklist value or another record: `{id, name}` on ConnectWise, the id
/// elsewhere.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Ref {
    pub id: u64,
    pub name: String,
}

impl Ref {
    pub(crate) fn new(id: u64, name: &str) -> Ref {
        Ref {
            id,
            name: name.to_string(),
        }
    }
}

/// What a company has beyond the id, identifier and name tickets carry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CompanyInfo {
    pub company: Company,
    pub status: Ref,
    pub territory: Ref,
    pub market: Ref,
    /// Autotask `companyType` (1 customer, 2 lead, 3 prospect, 7 vendor).
    pub company_type: u64,
    pub classification: Option<u64>,
    /// HaloPSA's top level (the client's group).
    pub top_level: Ref,
    pub parent_id: Option<u64>,
    pub owner_id: Option<u64>,
    pub city: String,
    pub state: String,
    pub zip: String,
    pub phone: String,
    pub website: String,
    pub account_number: Option<String>,
    pub employees: Option<u64>,
    pub annual_revenue: Option<f64>,
    pub lead: bool,
    pub deleted: bool,
    pub active: bool,
    pub vip: bool,
    pub acquired: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub last_activity: Timestamp,
}

/// A company location (Autotask), site (ConnectWise, HaloPSA).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Location {
    pub id: u64,
    pub company: Company,
    pub name: String,
    pub address1: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub phone: String,
    pub active: bool,
    pub primary: bool,
}

/// A client's person (ConnectWise contact, Autotask contact, HaloPSA user).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Contact {
    pub id: u64,
    pub company: Company,
    pub first_name: String,
    pub last_name: String,
    pub title: Option<String>,
    pub email: String,
    pub phone: String,
    pub mobile: Option<String>,
    pub site: Option<Ref>,
    pub department: Option<Ref>,
    pub relationship: Option<Ref>,
    pub active: bool,
    pub primary: bool,
    pub important: bool,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub last_activity: Option<Timestamp>,
}

impl Contact {
    pub(crate) fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    pub(crate) fn as_ref(&self) -> Ref {
        Ref {
            id: self.id,
            name: self.full_name(),
        }
    }
}

/// A configuration (ConnectWise), configuration item (Autotask), asset (HaloPSA).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Configuration {
    pub id: u64,
    pub company: Company,
    pub name: String,
    pub kind: Ref,
    pub status: Ref,
    pub contact: Option<Ref>,
    pub site: Option<Ref>,
    pub serial: String,
    pub model: String,
    pub tag: Option<String>,
    pub os: Option<String>,
    pub ip: Option<String>,
    pub active: bool,
    pub purchased: Option<Timestamp>,
    pub installed: Option<Timestamp>,
    pub warranty_end: Option<Timestamp>,
    pub product_id: Option<u64>,
    pub supplier_id: Option<u64>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A project (a ticket of a project type in HaloPSA).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Project {
    pub id: u64,
    pub company: Company,
    pub number: String,
    pub name: String,
    pub description: String,
    pub status: Ref,
    pub closed: bool,
    pub contact: Option<Ref>,
    pub site_id: Option<u64>,
    pub board: Board,
    pub manager: Option<Member>,
    pub kind: Ref,
    pub priority: u64,
    pub department: u64,
    pub contract_id: Option<u64>,
    pub billing_method: &'static str,
    pub start: Timestamp,
    pub end: Timestamp,
    pub actual_end: Option<Timestamp>,
    pub budget_hours: f64,
    pub actual_hours: f64,
    pub percent_complete: u64,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A unit of project work: a ConnectWise project ticket, an Autotask task.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Task {
    pub id: u64,
    pub project: Ref,
    pub company: Company,
    pub number: String,
    pub phase: Ref,
    pub summary: String,
    pub description: Option<String>,
    pub board: Board,
    pub status: Status,
    pub priority: Priority,
    pub owner: Option<Member>,
    pub task_type: u64,
    pub department: u64,
    pub billing_code: Option<u64>,
    pub portal_visible: bool,
    pub budget_hours: f64,
    pub actual_hours: f64,
    pub required: Option<Timestamp>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub completed: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A sales opportunity (a ticket of an opportunity type in HaloPSA).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Opportunity {
    pub id: u64,
    pub company: Company,
    pub contact: Option<Ref>,
    pub name: String,
    pub status: Ref,
    pub stage: Ref,
    pub kind: Option<Ref>,
    pub rep: Member,
    pub source: Option<&'static str>,
    pub closed: bool,
    pub rating: Option<u64>,
    pub probability: u64,
    pub amount: f64,
    pub cost: f64,
    pub expected_close: Timestamp,
    pub closed_date: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// An agreement (ConnectWise), contract (Autotask), client contract (HaloPSA).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Contract {
    pub id: u64,
    pub company: Company,
    pub contact: Option<Ref>,
    pub number: String,
    pub name: String,
    pub kind: Ref,
    pub category: u64,
    /// ConnectWise `agreementStatus` / HaloPSA `contract_status`.
    pub status: &'static str,
    pub billing_cycle: Ref,
    pub billing_description: Option<String>,
    pub parent_id: Option<u64>,
    pub customer_po: Option<String>,
    pub amount: f64,
    pub estimated_revenue: f64,
    pub units: &'static str,
    pub sla_id: Option<u64>,
    pub opportunity_id: Option<u64>,
    pub default: bool,
    pub cancelled: bool,
    pub expired: bool,
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

impl Contract {
    /// Autotask `status`: 1 active, 0 inactive.
    pub(crate) fn at_status(&self) -> u64 {
        u64::from(self.status == "Active")
    }
}

/// One service line of a contract (Autotask `ContractServices`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ContractService {
    pub id: u64,
    pub contract_id: u64,
    pub service_id: u64,
    pub description: String,
    pub unit_price: f64,
    pub unit_cost: f64,
}

/// What a time entry is charged to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Charge {
    /// A service ticket: `(id, summary)`.
    Ticket(u64, String),
    /// Project work: the task (project ticket) and its project.
    Task { task_id: u64, project: Ref },
}

/// Time worked by a member.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TimeEntry {
    pub id: u64,
    pub company: Company,
    pub charge: Charge,
    pub member: Member,
    pub work_type: Ref,
    pub role: Ref,
    pub contract: Option<Ref>,
    pub billable: &'static str,
    pub entry_type: u64,
    pub billing_code: u64,
    pub notes: String,
    pub internal_notes: Option<String>,
    pub hours: f64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub created: Timestamp,
    pub updated: Timestamp,
}

impl TimeEntry {
    pub(crate) fn ticket_id(&self) -> u64 {
        match &self.charge {
            Charge::Ticket(id, _) => *id,
            Charge::Task { task_id, .. } => *task_id,
        }
    }

    pub(crate) fn non_billable(&self) -> bool {
        self.billable != "Billable"
    }
}

/// A note on a ticket (Autotask `TicketNotes`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Note {
    pub id: u64,
    pub ticket_id: u64,
    pub title: String,
    pub description: String,
    pub note_type: u64,
    pub publish: u64,
    pub creator_id: Option<u64>,
    pub created: Timestamp,
    pub last_activity: Timestamp,
}

/// Scheduled work: a ConnectWise schedule entry, an Autotask service call and appointment, a
/// HaloPSA appointment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Schedule {
    pub id: u64,
    pub subject: String,
    pub description: Option<String>,
    /// The ticket or project the work is for (both are tickets in HaloPSA).
    pub object_id: Option<u64>,
    pub company: Company,
    pub location_id: Option<u64>,
    pub member: Member,
    /// ConnectWise type: `(id, identifier)`, e.g. `(1, "S")` for a service ticket.
    pub kind: (u64, &'static str),
    pub status: Ref,
    pub done: bool,
    pub start: Timestamp,
    pub end: Timestamp,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A member (ConnectWise), resource (Autotask), agent (HaloPSA), with what tickets do not carry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Resource {
    pub member: Member,
    pub first_name: String,
    pub last_name: String,
    pub title: String,
    pub email: String,
    pub license_class: &'static str,
    pub license_type: u64,
    pub resource_type: &'static str,
    pub active: bool,
    pub location: Ref,
    pub department: Ref,
    pub role: Ref,
    pub team: String,
    pub hire_date: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

impl Resource {
    pub(crate) fn initials(&self) -> String {
        self.first_name
            .chars()
            .take(1)
            .chain(self.last_name.chars().take(1))
            .collect()
    }
}

/// A work role (ConnectWise), role (Autotask, HaloPSA).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Role {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub hourly_rate: f64,
    pub active: bool,
    pub system: bool,
    pub agent: bool,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// A HaloPSA team.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Team {
    pub id: u64,
    pub name: String,
    pub department_id: u64,
    pub active: bool,
}

/// Where a ConnectWise product line is placed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Placement {
    Ticket(u64),
    Project(u64),
    Opportunity(u64),
    Agreement(u64),
}

/// A catalogue product (Autotask product, HaloPSA item), placed once as a ConnectWise product
/// line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Product {
    pub id: u64,
    pub catalog_id: u64,
    pub name: String,
    pub description: String,
    pub sku: String,
    pub manufacturer: &'static str,
    pub category: u64,
    pub price: f64,
    pub cost: f64,
    pub active: bool,
    pub serialized: bool,
    pub supplier_id: Option<u64>,
    pub quantity: u64,
    pub billable: &'static str,
    pub placement: Placement,
    pub company: Option<Company>,
    pub created: Timestamp,
    pub updated: Timestamp,
}
