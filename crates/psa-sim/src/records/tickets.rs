//! What a ticket's compile tables name beyond the fields a [`Ticket`] holds (contact, type,
//! SLA, response dates…). They are derived from the ticket itself, by a generator seeded with
//! its id, when a view renders it: the [`Ticket`] struct, its memory (a million of them, when
//! rendered per read) and the values of every existing field stay as they were, and
//! [`crate::cw_json`] and the others remain pure functions of the ticket.
//!
//! The references are records the other resources serve: the contact, site, agreement,
//! configuration, project and opportunity of the ticket's company (their ids and names are
//! functions of the company, [`super::keys`]), the owner's role, and time entries' billing
//! codes. A parent ticket is an id a little below the ticket's own, which (tickets' ids having
//! gaps) may name no ticket, as a merged or deleted parent does.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::gen::IdBase;
use super::keys::{self, Mix, Owned, TICKET_RANKS};
use crate::data::{at_datetime, cw_datetime, halo_datetime, ts, Ticket};

/// Picks from the ticket's own generator.
trait Picks {
    fn percent(&mut self, p: u64) -> bool;
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T;
    /// `(id, name)` of a 1-based picklist.
    fn named(&mut self, names: &[&'static str]) -> (u64, &'static str);
}

impl Picks for Mix {
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn named(&mut self, names: &[&'static str]) -> (u64, &'static str) {
        let i = self.below(names.len() as u64);
        (i + 1, names[i as usize])
    }
}

pub(crate) const TYPES: [&str; 4] = ["Incident", "Service Request", "Problem", "Change"];
pub(crate) const SUB_TYPES: [&str; 4] = ["Hardware", "Software", "Network", "Account"];
pub(crate) const ITEMS: [&str; 5] = ["Laptop", "Printer", "Email", "VPN", "Server"];
const TEAMS: [&str; 4] = ["Tier 1", "Tier 2", "Network Team", "Security Team"];
const SOURCES: [&str; 4] = ["Email", "Phone", "Portal", "Monitoring"];
/// `(name, hours to respond, hours to resolve)`.
const SLAS: [(&str, i64, i64); 3] = [
    ("Standard SLA", 4, 24),
    ("Premium SLA", 1, 8),
    ("Basic SLA", 8, 72),
];
const LOCATIONS: [&str; 2] = ["Head Office", "Remote"];
const DEPARTMENTS: [&str; 3] = ["Service Desk", "Projects", "Sales"];
const LEVELS: [&str; 3] = ["Low", "Medium", "High"];
/// How many roles there are ([`super::names::ROLES`]).
const ROLES: u64 = super::names::ROLES.len() as u64;
const ENTERED_BY: [&str; 4] = ["portal", "email-connector", "template", "api"];

/// The derived fields of one ticket, in neutral form.
struct Extra {
    contact: Option<(u64, String, String)>,
    kind: (u64, &'static str),
    sub_type: Option<(u64, &'static str)>,
    item: Option<(u64, &'static str)>,
    team: Option<(u64, &'static str)>,
    source: (u64, &'static str),
    sla: Option<(u64, &'static str)>,
    location: (u64, &'static str),
    department: (u64, &'static str),
    site: Option<(u64, &'static str)>,
    agreement: Option<(u64, String)>,
    configuration: Option<u64>,
    project: Option<u64>,
    opportunity: Option<u64>,
    billing_code: Option<u64>,
    role: Option<u64>,
    creator: Option<u64>,
    entered_by: String,
    updated_by: String,
    closed_by: Option<String>,
    responded: Option<Timestamp>,
    required: Option<Timestamp>,
    estimated_start: Option<Timestamp>,
    respond_by: Option<Timestamp>,
    fix_by: Option<Timestamp>,
    resolution_plan_due: Option<Timestamp>,
    parent: Option<u64>,
    has_child: bool,
    severity: u64,
    impact: u64,
    urgency: u64,
    category: u64,
    budget_hours: Option<f64>,
    actual_hours: f64,
    to_schedule: Option<f64>,
    approved: bool,
    comanaged: bool,
    on_hold: bool,
    description: String,
}

fn hours_after(t: Timestamp, hours: i64) -> Timestamp {
    ts(t.as_second() + hours * 3600)
}

fn extra(t: &Ticket) -> Extra {
    let mut m = Mix(t.id.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ t.company.id);
    let company = t.company.id;
    let entered = t.date_entered;
    let sla = m.percent(85).then(|| m.below(SLAS.len() as u64) as usize);
    let (respond_h, fix_h) = sla.map_or((24, 120), |i| (SLAS[i].1, SLAS[i].2));
    let owner = t.owner.as_ref();
    Extra {
        contact: m.percent(85).then(|| {
            let rank = 1 + m.below(TICKET_RANKS.contacts);
            let (first, last, email) = keys::contact(&t.company, rank);
            (
                Owned::Contact.id(company, rank),
                format!("{first} {last}"),
                email,
            )
        }),
        kind: m.named(&TYPES),
        sub_type: m.percent(80).then(|| m.named(&SUB_TYPES)),
        item: m.percent(60).then(|| m.named(&ITEMS)),
        team: m.percent(90).then(|| m.named(&TEAMS)),
        source: m.named(&SOURCES),
        sla: sla.map(|i| (i as u64 + 1, SLAS[i].0)),
        location: m.named(&LOCATIONS),
        department: m.named(&DEPARTMENTS),
        // The main office, the first contract, project and opportunity: every company has one.
        site: m
            .percent(80)
            .then(|| (Owned::Location.id(company, 1), keys::location_name(1))),
        agreement: m.percent(50).then(|| {
            let name = keys::contract_name(&t.company, 1);
            (Owned::Contract.id(company, 1), name)
        }),
        configuration: m
            .percent(40)
            .then(|| Owned::Configuration.id(company, 1 + m.below(TICKET_RANKS.configurations))),
        project: m.percent(5).then(|| Owned::Project.id(company, 1)),
        opportunity: m.percent(5).then(|| Owned::Opportunity.id(company, 1)),
        billing_code: m.percent(70).then(|| 1001 + m.below(4)),
        role: owner.map(|_| IdBase::ROLE + 1 + m.below(ROLES)),
        creator: owner.filter(|_| m.percent(70)).map(|o| o.id),
        entered_by: match owner {
            Some(o) if m.percent(40) => o.identifier.clone(),
            _ => m.pick(&ENTERED_BY).to_string(),
        },
        updated_by: owner.map_or_else(|| "api".to_string(), |o| o.identifier.clone()),
        closed_by: t
            .closed_date
            .map(|_| owner.map_or_else(|| "helpdesk".to_string(), |o| o.identifier.clone())),
        responded: m.percent(80).then(|| {
            ts((entered.as_second() + 300 + m.below(8 * 3600) as i64)
                .min(t.last_updated.as_second()))
        }),
        required: m
            .percent(50)
            .then(|| hours_after(entered, 24 * (1 + m.below(14) as i64))),
        estimated_start: m
            .percent(30)
            .then(|| hours_after(entered, m.below(72) as i64)),
        respond_by: sla.map(|_| hours_after(entered, respond_h)),
        fix_by: Some(hours_after(entered, fix_h)),
        resolution_plan_due: m.percent(40).then(|| hours_after(entered, fix_h / 2)),
        parent: (m.percent(5) && t.id > 10).then(|| t.id - 1 - m.below(10)),
        has_child: m.percent(5),
        severity: m.below(3),
        impact: m.below(3),
        urgency: m.below(3),
        category: 1 + m.below(3),
        budget_hours: m.percent(60).then(|| (1 + m.below(32)) as f64 / 4.0),
        actual_hours: m.below(80) as f64 / 4.0,
        to_schedule: m.percent(30).then(|| (1 + m.below(16)) as f64 / 4.0),
        approved: m.percent(90),
        comanaged: m.percent(20),
        on_hold: t.closed_date.is_none() && m.percent(15),
        description: format!(
            "{}\n\nReported via {}.",
            t.summary,
            SOURCES[m.below(4) as usize]
        ),
    }
}

fn insert(row: &mut Value, fields: Vec<(&str, Value)>) {
    if let Value::Object(map) = row {
        for (k, v) in fields {
            map.insert(k.to_string(), v);
        }
    }
}

fn named<N: serde::Serialize>(r: Option<(u64, N)>) -> Value {
    r.map_or(Value::Null, |(id, name)| json!({"id": id, "name": name}))
}

fn time(t: Option<Timestamp>, f: fn(Timestamp) -> String) -> Value {
    t.map_or(Value::Null, |t| Value::String(f(t)))
}

/// Adds the derived ConnectWise fields to `row` (a [`crate::cw_json`] row).
pub(crate) fn extend_cw(row: &mut Value, t: &Ticket) {
    let x = extra(t);
    if let Some(Value::Object(info)) = row.get_mut("_info") {
        info.insert("enteredBy".into(), json!(x.entered_by));
        info.insert("updatedBy".into(), json!(x.updated_by));
    }
    if let Some(parent) = x.parent {
        insert(row, vec![("parentTicketId", json!(parent))]);
    }
    let contact = x.contact.as_ref();
    insert(
        row,
        vec![
            ("contact", named(contact.map(|c| (c.0, &c.1)))),
            ("contactName", json!(contact.map(|c| &c.1))),
            ("contactEmailAddress", json!(contact.map(|c| &c.2))),
            ("type", named(Some(x.kind))),
            ("subType", named(x.sub_type)),
            ("item", named(x.item)),
            ("team", named(x.team)),
            ("source", named(Some(x.source))),
            ("sla", named(x.sla)),
            ("location", named(Some(x.location))),
            ("department", named(Some(x.department))),
            ("site", named(x.site)),
            ("siteName", json!(x.site.map(|s| s.1))),
            ("agreement", named(x.agreement.clone())),
            ("closedBy", json!(x.closed_by)),
            ("dateResolved", time(t.closed_date, cw_datetime)),
            ("dateResponded", time(x.responded, cw_datetime)),
            ("requiredDate", time(x.required, cw_datetime)),
            ("estimatedStartDate", time(x.estimated_start, cw_datetime)),
            ("hasChildTicket", json!(x.has_child)),
            ("severity", json!(LEVELS[x.severity as usize])),
            ("impact", json!(LEVELS[x.impact as usize])),
            ("budgetHours", json!(x.budget_hours)),
            ("actualHours", json!(x.actual_hours)),
            ("approved", json!(x.approved)),
        ],
    );
}

/// Adds the derived Autotask fields to `row` (a [`crate::at_json`] row).
pub(crate) fn extend_at(row: &mut Value, t: &Ticket) {
    let x = extra(t);
    insert(
        row,
        vec![
            ("description", json!(x.description)),
            ("companyLocationID", json!(x.site.map(|s| s.0))),
            ("contactID", json!(x.contact.as_ref().map(|c| c.0))),
            ("assignedResourceRoleID", json!(x.role)),
            ("creatorResourceID", json!(x.creator)),
            (
                "completedByResourceID",
                json!(t.closed_date.and(t.owner.as_ref().map(|o| o.id))),
            ),
            ("issueType", json!(x.sub_type.map(|s| s.0))),
            ("subIssueType", json!(x.item.map(|i| i.0))),
            ("ticketType", json!(x.kind.0)),
            ("ticketCategory", json!(x.category)),
            ("source", json!(x.source.0)),
            ("contractID", json!(x.agreement.as_ref().map(|a| a.0))),
            ("projectID", json!(x.project)),
            ("problemTicketId", json!(x.parent)),
            ("serviceLevelAgreementID", json!(x.sla.map(|s| s.0))),
            ("billingCodeID", json!(x.billing_code)),
            ("configurationItemID", json!(x.configuration)),
            ("opportunityID", json!(x.opportunity)),
            ("estimatedHours", json!(x.budget_hours)),
            ("hoursToBeScheduled", json!(x.to_schedule)),
            ("isVisibleToComanaged", json!(x.comanaged)),
            (
                "lastTrackedModificationDateTime",
                json!(at_datetime(t.last_updated)),
            ),
            ("dueDateTime", time(x.required, at_datetime)),
            ("firstResponseDateTime", time(x.responded, at_datetime)),
            ("resolvedDateTime", time(t.closed_date, at_datetime)),
            (
                "resolutionPlanDueDateTime",
                time(x.resolution_plan_due, at_datetime),
            ),
            ("resolvedDueDateTime", time(x.fix_by, at_datetime)),
        ],
    );
}

/// Adds the derived HaloPSA fields to `row` (a [`crate::halo_json`] row), and varies the ones
/// it held constant (`tickettype_id`, `onhold`, `parent_id`).
pub(crate) fn extend_halo(row: &mut Value, t: &Ticket) {
    let x = extra(t);
    let categories: [Option<&str>; 4] = [
        Some(TYPES[x.kind.0 as usize - 1]),
        x.sub_type.map(|s| s.1),
        x.item.map(|i| i.1),
        x.team.map(|s| s.1),
    ];
    let mut fields = vec![
        ("tickettype_id", json!(x.kind.0)),
        ("onhold", json!(x.on_hold)),
        ("parent_id", json!(x.parent)),
        ("sla_id", json!(x.sla.map(|s| s.0))),
        ("site_id", json!(x.site.map(|s| s.0))),
        ("user_id", json!(x.contact.as_ref().map(|c| c.0))),
        ("respondbydate", time(x.respond_by, halo_datetime)),
        ("fixbydate", time(x.fix_by, halo_datetime)),
        ("startdate", time(x.estimated_start, halo_datetime)),
        ("impact", json!(x.impact + 1)),
        ("urgency", json!(x.urgency + 1)),
    ];
    for (key, value) in ["category_1", "category_2", "category_3", "category_4"]
        .into_iter()
        .zip(categories)
    {
        fields.push((key, json!(value)));
    }
    insert(row, fields);
}
