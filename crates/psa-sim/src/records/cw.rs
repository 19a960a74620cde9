//! The ConnectWise views (docs/psa.md §1.10): references are objects (`company: {id,
//! identifier, name}`), every record carries `_info: {dateEntered, lastUpdated}`, datetimes are
//! `YYYY-MM-DDTHH:MM:SSZ`. Each resource's conditions schema is built from its compile table's
//! fields ([`schema`]).

use std::sync::LazyLock;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::fields::cw as f;
use super::model::*;
use super::{Records, Resource};
use crate::cw_conditions::{Schema, TICKET_SCHEMA};
use crate::data::{cw_datetime, Board, Company, Member};

const fn resource(
    endpoint: &'static str,
    noun: &'static str,
    fields: super::Fields,
    render: super::Render,
) -> Resource {
    Resource {
        endpoint,
        noun,
        fields,
        render: Some(render),
        halo_key: None,
    }
}

/// Tickets first; schedule entries serve both scheduled entries and appointments.
pub(crate) static RESOURCES: &[Resource] = &[
    Resource {
        endpoint: "/service/tickets",
        noun: "Ticket",
        fields: f::TICKET,
        render: None,
        halo_key: None,
    },
    resource(
        "/project/tickets",
        "ProjectTicket",
        f::PROJECT_TICKET,
        project_tickets,
    ),
    resource("/project/projects", "Project", f::PROJECT, projects),
    resource("/company/companies", "Company", f::COMPANY, companies),
    resource("/company/contacts", "Contact", f::CONTACT, contacts),
    resource(
        "/company/configurations",
        "Configuration",
        f::CONFIGURATION,
        configurations,
    ),
    resource("/time/entries", "TimeEntry", f::TIME_ENTRY, time_entries),
    resource(
        "/sales/opportunities",
        "Opportunity",
        f::OPPORTUNITY,
        opportunities,
    ),
    resource("/finance/agreements", "Agreement", f::CONTRACT, agreements),
    resource("/system/members", "Member", f::RESOURCE, members),
    resource(
        "/schedule/entries",
        "ScheduleEntry",
        f::SCHEDULED_ENTRY,
        schedule_entries,
    ),
    resource("/time/workRoles", "WorkRole", f::ROLE, work_roles),
    resource("/procurement/products", "ProductItem", f::PRODUCT, products),
];

/// The conditions schema of resource number `index` of [`RESOURCES`].
pub(crate) fn schema(index: usize) -> &'static Schema {
    static SCHEMAS: LazyLock<Vec<Schema>> = LazyLock::new(|| {
        RESOURCES
            .iter()
            .map(|r| Schema::from_fields(r.fields))
            .collect()
    });
    if RESOURCES[index].is_tickets() {
        &TICKET_SCHEMA
    } else {
        &SCHEMAS[index]
    }
}

fn dt(t: Timestamp) -> Value {
    Value::String(cw_datetime(t))
}

fn opt_dt(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, dt)
}

fn info(created: Timestamp, updated: Timestamp) -> Value {
    json!({"dateEntered": dt(created), "lastUpdated": dt(updated)})
}

fn company(c: &Company) -> Value {
    json!({"id": c.id, "identifier": c.identifier, "name": c.name})
}

fn member(m: &Member) -> Value {
    json!({"id": m.id, "identifier": m.identifier, "name": m.name})
}

fn named(r: &Ref) -> Value {
    json!({"id": r.id, "name": r.name})
}

fn opt_named(r: &Option<Ref>) -> Value {
    r.as_ref().map_or(Value::Null, named)
}

fn board(b: &Board) -> Value {
    json!({"id": b.id, "name": b.name})
}

fn project_tickets(r: &Records) -> Vec<Value> {
    r.tasks
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "summary": t.summary,
                "recordType": "ProjectTicket",
                "project": named(&t.project),
                "phase": named(&t.phase),
                "board": board(&t.board),
                "status": {"id": t.status.id, "name": t.status.name},
                "priority": {"id": t.priority.id, "name": t.priority.name},
                "company": company(&t.company),
                "owner": t.owner.as_ref().map(|m| json!({"id": m.id, "identifier": m.identifier})),
                "closedFlag": t.status.closed,
                "budgetHours": t.budget_hours,
                "actualHours": t.actual_hours,
                "requiredDate": opt_dt(t.required),
                "_info": info(t.created, t.updated),
            })
        })
        .collect()
}

fn projects(r: &Records) -> Vec<Value> {
    r.projects
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "status": named(&p.status),
                "company": company(&p.company),
                "contact": opt_named(&p.contact),
                "board": board(&p.board),
                "manager": p.manager.as_ref().map(member),
                "type": named(&p.kind),
                "billingMethod": p.billing_method,
                "closedFlag": p.closed,
                "estimatedStart": dt(p.start),
                "estimatedEnd": dt(p.end),
                "actualEnd": opt_dt(p.actual_end),
                "budgetHours": p.budget_hours,
                "actualHours": p.actual_hours,
                "percentComplete": p.percent_complete,
                "description": p.description,
                "_info": info(p.created, p.updated),
            })
        })
        .collect()
}

fn companies(r: &Records) -> Vec<Value> {
    r.companies
        .iter()
        .map(|c| {
            json!({
                "id": c.company.id,
                "identifier": c.company.identifier,
                "name": c.company.name,
                "status": named(&c.status),
                "territory": named(&c.territory),
                "market": named(&c.market),
                "city": c.city,
                "state": c.state,
                "zip": c.zip,
                "phoneNumber": c.phone,
                "website": c.website,
                "accountNumber": c.account_number,
                "numberOfEmployees": c.employees,
                "annualRevenue": c.annual_revenue,
                "leadFlag": c.lead,
                "deletedFlag": c.deleted,
                "dateAcquired": opt_dt(c.acquired),
                "_info": info(c.created, c.updated),
            })
        })
        .collect()
}

fn contacts(r: &Records) -> Vec<Value> {
    r.contacts
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "firstName": c.first_name,
                "lastName": c.last_name,
                "title": c.title,
                "company": company(&c.company),
                "site": opt_named(&c.site),
                "department": opt_named(&c.department),
                "relationship": opt_named(&c.relationship),
                "inactiveFlag": !c.active,
                "defaultFlag": c.primary,
                "_info": info(c.created, c.updated),
            })
        })
        .collect()
}

fn configurations(r: &Records) -> Vec<Value> {
    r.configurations
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "type": named(&c.kind),
                "status": named(&c.status),
                "company": company(&c.company),
                "contact": opt_named(&c.contact),
                "site": opt_named(&c.site),
                "serialNumber": c.serial,
                "modelNumber": c.model,
                "tagNumber": c.tag,
                "osType": c.os,
                "ipAddress": c.ip,
                "activeFlag": c.active,
                "purchaseDate": opt_dt(c.purchased),
                "installationDate": opt_dt(c.installed),
                "warrantyExpirationDate": opt_dt(c.warranty_end),
                "_info": info(c.created, c.updated),
            })
        })
        .collect()
}

fn time_entries(r: &Records) -> Vec<Value> {
    r.time_entries
        .iter()
        .map(|t| {
            let (charge_type, ticket, project) = match &t.charge {
                Charge::Ticket(id, summary) => (
                    "ServiceTicket",
                    json!({"id": id, "summary": summary}),
                    Value::Null,
                ),
                Charge::Task { task_id, project } => {
                    ("ProjectTicket", json!({"id": task_id}), named(project))
                }
            };
            json!({
                "id": t.id,
                "company": company(&t.company),
                "chargeToId": t.ticket_id(),
                "chargeToType": charge_type,
                "member": member(&t.member),
                "workType": named(&t.work_type),
                "workRole": named(&t.role),
                "agreement": opt_named(&t.contract),
                "ticket": ticket,
                "project": project,
                "billableOption": t.billable,
                "notes": t.notes,
                "actualHours": t.hours,
                "timeStart": dt(t.start),
                "timeEnd": dt(t.end),
                "_info": info(t.created, t.updated),
            })
        })
        .collect()
}

fn opportunities(r: &Records) -> Vec<Value> {
    r.opportunities
        .iter()
        .map(|o| {
            json!({
                "id": o.id,
                "name": o.name,
                "company": company(&o.company),
                "contact": opt_named(&o.contact),
                "status": named(&o.status),
                "stage": named(&o.stage),
                "type": opt_named(&o.kind),
                "primarySalesRep": member(&o.rep),
                "source": o.source,
                "closedFlag": o.closed,
                "expectedCloseDate": dt(o.expected_close),
                "closedDate": opt_dt(o.closed_date),
                "_info": info(o.created, o.updated),
            })
        })
        .collect()
}

fn agreements(r: &Records) -> Vec<Value> {
    r.contracts
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "type": named(&c.kind),
                "company": company(&c.company),
                "contact": opt_named(&c.contact),
                "agreementStatus": c.status,
                "billingCycle": named(&c.billing_cycle),
                "parentAgreementId": c.parent_id,
                "customerPO": c.customer_po,
                "billAmount": c.amount,
                "applicationUnits": c.units,
                "noEndingDateFlag": c.end.is_none(),
                "cancelledFlag": c.cancelled,
                "startDate": dt(c.start),
                "endDate": opt_dt(c.end),
                "_info": info(c.created, c.updated),
            })
        })
        .collect()
}

fn members(r: &Records) -> Vec<Value> {
    r.resources
        .iter()
        .map(|m| {
            json!({
                "id": m.member.id,
                "identifier": m.member.identifier,
                "firstName": m.first_name,
                "lastName": m.last_name,
                "title": m.title,
                "officeEmail": m.email,
                "licenseClass": m.license_class,
                "inactiveFlag": !m.active,
                "defaultLocation": named(&m.location),
                "defaultDepartment": named(&m.department),
                "workRole": named(&m.role),
                "hireDate": opt_dt(m.hire_date),
                "_info": info(m.created, m.updated),
            })
        })
        .collect()
}

fn schedule_entries(r: &Records) -> Vec<Value> {
    r.schedule
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "name": s.subject,
                "objectId": s.object_id,
                "type": {"id": s.kind.0, "identifier": s.kind.1},
                "member": member(&s.member),
                "status": named(&s.status),
                "doneFlag": s.done,
                "dateStart": dt(s.start),
                "dateEnd": dt(s.end),
                "_info": info(s.created, s.updated),
            })
        })
        .collect()
}

fn work_roles(r: &Records) -> Vec<Value> {
    r.roles
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "name": w.name,
                "hourlyRate": w.hourly_rate,
                "inactiveFlag": !w.active,
                "_info": info(w.created, w.updated),
            })
        })
        .collect()
}

fn products(r: &Records) -> Vec<Value> {
    r.products
        .iter()
        .map(|p| {
            let (slot, id) = match p.placement {
                Placement::Ticket(id) => (0, id),
                Placement::Project(id) => (1, id),
                Placement::Opportunity(id) => (2, id),
                Placement::Agreement(id) => (3, id),
            };
            let mut on = [Value::Null, Value::Null, Value::Null, Value::Null];
            on[slot] = json!({ "id": id });
            let [ticket, project, opportunity, agreement] = on;
            json!({
                "id": p.id,
                "description": p.description,
                "catalogItem": {"id": p.catalog_id, "identifier": p.sku},
                "quantity": p.quantity,
                "price": p.price,
                "cost": p.cost,
                "billableOption": p.billable,
                "ticket": ticket,
                "project": project,
                "opportunity": opportunity,
                "agreement": agreement,
                "company": p.company.as_ref().map(company),
                "_info": info(p.created, p.updated),
            })
        })
        .collect()
}
