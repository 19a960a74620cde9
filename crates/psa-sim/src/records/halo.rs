//! The HaloPSA views (docs/psa.md §3): flat rows, `client_id`/`client_name` for the company,
//! datetimes `YYYY-MM-DDTHH:MM:SS` (UTC). Projects and opportunities are tickets of their own
//! types in HaloPSA, so they carry a ticket's names (`summary`, `dateoccurred`, …) and list
//! under `tickets`; agents, appointments, teams, roles and timesheet events do not page.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::fields::halo as f;
use super::model::*;
use super::{Records, Resource};
use crate::data::halo_datetime;

const fn resource(
    endpoint: &'static str,
    halo_key: Option<&'static str>,
    noun: &'static str,
    fields: super::Fields,
    render: super::Render,
) -> Resource {
    Resource {
        endpoint,
        noun,
        fields,
        render: Some(render),
        halo_key,
    }
}

/// Tickets first; appointments serve both appointments and scheduled entries.
pub(crate) static RESOURCES: &[Resource] = &[
    Resource {
        endpoint: "/tickets",
        noun: "Ticket",
        fields: f::TICKET,
        render: None,
        halo_key: Some("tickets"),
    },
    resource(
        "/projects",
        Some("tickets"),
        "Project",
        f::PROJECT,
        projects,
    ),
    resource(
        "/opportunities",
        Some("tickets"),
        "Opportunity",
        f::OPPORTUNITY,
        opportunities,
    ),
    resource("/client", Some("clients"), "Client", f::COMPANY, clients),
    resource("/users", Some("users"), "User", f::CONTACT, users),
    resource("/asset", Some("assets"), "Asset", f::CONFIGURATION, assets),
    resource("/agent", None, "Agent", f::RESOURCE, agents),
    resource(
        "/clientcontract",
        Some("contracts"),
        "Contract",
        f::CONTRACT,
        contracts,
    ),
    resource(
        "/timesheetevent",
        None,
        "TimesheetEvent",
        f::TIME_ENTRY,
        timesheet_events,
    ),
    resource(
        "/appointment",
        None,
        "Appointment",
        f::APPOINTMENT,
        appointments,
    ),
    resource("/team", None, "Team", f::TEAM, teams),
    resource("/roles", None, "Role", f::ROLE, roles),
    resource("/site", Some("sites"), "Site", f::COMPANY_LOCATION, sites),
    resource("/item", Some("items"), "Item", f::PRODUCT, items),
];

/// `tickettype_id` of projects (plus the project type) and opportunities (plus theirs).
const PROJECT_TYPE_BASE: u64 = 20;
const OPPORTUNITY_TYPE_BASE: u64 = 30;

fn dt(t: Timestamp) -> Value {
    Value::String(halo_datetime(t))
}

fn opt_dt(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, dt)
}

fn projects(r: &Records) -> Vec<Value> {
    r.projects
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "summary": p.name,
                "details": p.description,
                "status_id": p.status.id,
                "tickettype_id": PROJECT_TYPE_BASE + p.kind.id,
                "priority_id": p.priority,
                "client_id": p.company.id,
                "client_name": p.company.name,
                "site_id": p.site_id,
                "agent_id": p.manager.as_ref().map(|m| m.id),
                "team": p.board.name,
                "dateoccurred": dt(p.created),
                "lastactiondate": dt(p.updated),
                "startdate": dt(p.start),
                "targetdate": dt(p.end),
                "dateclosed": opt_dt(p.actual_end),
                "hasbeenclosed": p.closed,
                "projecttimepercentage": p.percent_complete,
            })
        })
        .collect()
}

fn opportunities(r: &Records) -> Vec<Value> {
    r.opportunities
        .iter()
        .map(|o| {
            let team = r
                .resources
                .iter()
                .find(|m| m.member.id == o.rep.id)
                .map(|m| m.team.clone());
            json!({
                "id": o.id,
                "summary": o.name,
                "status_id": o.status.id,
                "tickettype_id": OPPORTUNITY_TYPE_BASE + o.kind.as_ref().map_or(0, |k| k.id),
                "client_id": o.company.id,
                "client_name": o.company.name,
                "agent_id": o.rep.id,
                "team": team,
                "opportunityvalue": o.amount,
                "dateoccurred": dt(o.created),
                "lastactiondate": dt(o.updated),
                "dateclosed": opt_dt(o.closed_date),
                "hasbeenclosed": o.closed,
            })
        })
        .collect()
}

fn clients(r: &Records) -> Vec<Value> {
    r.companies
        .iter()
        .map(|c| {
            json!({
                "id": c.company.id,
                "name": c.company.name,
                "toplevel_id": c.top_level.id,
                "toplevel_name": c.top_level.name,
                "accountsid": c.account_number,
                "website": c.website,
                "phonenumber": c.phone,
                "inactive": !c.active,
                "is_vip": c.vip,
            })
        })
        .collect()
}

fn users(r: &Records) -> Vec<Value> {
    r.contacts
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.full_name(),
                "firstname": c.first_name,
                "surname": c.last_name,
                "emailaddress": c.email,
                "phonenumber": c.phone,
                "jobtitle": c.title,
                "client_id": c.company.id,
                "client_name": c.company.name,
                "site_id": c.site.as_ref().map(|s| s.id),
                "site_name": c.site.as_ref().map(|s| s.name.clone()),
                "inactive": !c.active,
                "isimportantcontact": c.important,
            })
        })
        .collect()
}

fn assets(r: &Records) -> Vec<Value> {
    r.configurations
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "inventory_number": c.tag,
                "key_field": c.name,
                "client_id": c.company.id,
                "client_name": c.company.name,
                "site_id": c.site.as_ref().map(|s| s.id),
                "site_name": c.site.as_ref().map(|s| s.name.clone()),
                "assettype_id": c.kind.id,
                "assettype_name": c.kind.name,
                "status_id": c.status.id,
                "supplier_id": c.supplier_id,
                "inactive": !c.active,
                "warranty_end": opt_dt(c.warranty_end),
            })
        })
        .collect()
}

fn agents(r: &Records) -> Vec<Value> {
    r.resources
        .iter()
        .map(|m| {
            json!({
                "id": m.member.id,
                "name": m.member.name,
                "email": m.email,
                "initials": m.initials(),
                "team": m.team,
                "isdisabled": !m.active,
            })
        })
        .collect()
}

fn contracts(r: &Records) -> Vec<Value> {
    r.contracts
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "ref": c.number,
                "client_id": c.company.id,
                "client_name": c.company.name,
                "billing_description": c.billing_description,
                "contract_status": c.status,
                "expired": c.expired,
                "start_date": dt(c.start),
                "end_date": opt_dt(c.end),
            })
        })
        .collect()
}

fn timesheet_events(r: &Records) -> Vec<Value> {
    r.time_entries
        .iter()
        .map(|t| {
            // A project is a ticket in HaloPSA: project work is logged on it.
            let ticket = match &t.charge {
                Charge::Ticket(id, _) => *id,
                Charge::Task { project, .. } => project.id,
            };
            json!({
                "id": t.id,
                "subject": t.work_type.name,
                "note": t.notes,
                "agent_id": t.member.id,
                "ticket_id": ticket,
                "client_id": t.company.id,
                "client_name": t.company.name,
                "event_type": t.work_type.id,
                "timetaken": t.hours,
                "start_date": dt(t.start),
                "end_date": dt(t.end),
            })
        })
        .collect()
}

fn appointments(r: &Records) -> Vec<Value> {
    r.schedule
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "subject": s.subject,
                "agent_id": s.member.id,
                "client_id": s.company.id,
                "client_name": s.company.name,
                "ticket_id": s.object_id,
                "appointment_type": s.kind.0,
                "complete_status": u64::from(s.done),
                "start_date": dt(s.start),
                "end_date": dt(s.end),
            })
        })
        .collect()
}

fn teams(r: &Records) -> Vec<Value> {
    r.teams
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "name": t.name,
                "department_id": t.department_id,
                "inactive": !t.active,
            })
        })
        .collect()
}

fn roles(r: &Records) -> Vec<Value> {
    r.roles
        .iter()
        .map(|w| json!({"id": w.id, "name": w.name, "isagent": w.agent}))
        .collect()
}

fn sites(r: &Records) -> Vec<Value> {
    r.locations
        .iter()
        .map(|l| {
            json!({
                "id": l.id,
                "name": l.name,
                "client_id": l.company.id,
                "client_name": l.company.name,
                "phonenumber": l.phone,
                "inactive": !l.active,
            })
        })
        .collect()
}

fn items(r: &Records) -> Vec<Value> {
    r.products
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "description": p.description,
                "baseprice": p.price,
                "costprice": p.cost,
                "supplier_id": p.supplier_id,
                "inactive": !p.active,
            })
        })
        .collect()
}
