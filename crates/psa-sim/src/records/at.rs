//! The Autotask views (docs/psa.md §2.7): flat rows, references and picklists as integer ids,
//! datetimes `YYYY-MM-DDTHH:MM:SS.000Z`. A query's `filter` is checked against the entity's
//! own fields ([`crate::at_filter::AtEntity`]).

use jiff::Timestamp;
use serde_json::{json, Value};

use super::fields::at as f;
use super::gen::midnight;
use super::model::*;
use super::{Records, Resource};
use crate::data::at_datetime;

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

/// Tickets first; service calls serve both scheduled entries and service calls.
pub(crate) static RESOURCES: &[Resource] = &[
    Resource {
        endpoint: "Tickets",
        noun: "Ticket",
        fields: f::TICKET,
        render: None,
        halo_key: None,
    },
    resource("Tasks", "Task", f::TASK, tasks),
    resource(
        "ServiceCalls",
        "ServiceCall",
        f::SERVICE_CALL,
        service_calls,
    ),
    resource("TimeEntries", "TimeEntry", f::TIME_ENTRY, time_entries),
    resource("Projects", "Project", f::PROJECT, projects),
    resource("Companies", "Company", f::COMPANY, companies),
    resource("Contacts", "Contact", f::CONTACT, contacts),
    resource("Resources", "Resource", f::RESOURCE, resources),
    resource("Contracts", "Contract", f::CONTRACT, contracts),
    resource(
        "Opportunities",
        "Opportunity",
        f::OPPORTUNITY,
        opportunities,
    ),
    resource(
        "ConfigurationItems",
        "ConfigurationItem",
        f::CONFIGURATION,
        configuration_items,
    ),
    resource("TicketNotes", "TicketNote", f::NOTE, ticket_notes),
    resource("Roles", "Role", f::ROLE, roles),
    resource("Appointments", "Appointment", f::APPOINTMENT, appointments),
    resource(
        "ContractServices",
        "ContractService",
        f::CONTRACT_SERVICE,
        contract_services,
    ),
    resource(
        "CompanyLocations",
        "CompanyLocation",
        f::COMPANY_LOCATION,
        company_locations,
    ),
    resource("Products", "Product", f::PRODUCT, products),
];

fn dt(t: Timestamp) -> Value {
    Value::String(at_datetime(t))
}

fn opt_dt(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, dt)
}

fn id_of(r: &Option<Ref>) -> Option<u64> {
    r.as_ref().map(|r| r.id)
}

fn tasks(r: &Records) -> Vec<Value> {
    r.tasks
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "title": t.summary,
                "taskNumber": t.number,
                "description": t.description,
                "projectID": t.project.id,
                "phaseID": t.phase.id,
                "status": t.status.id,
                "priorityLabel": t.priority.id,
                "taskType": t.task_type,
                "departmentID": t.department,
                "assignedResourceID": t.owner.as_ref().map(|m| m.id),
                "billingCodeID": t.billing_code,
                "isVisibleInClientPortal": t.portal_visible,
                "estimatedHours": t.budget_hours,
                "remainingHours": (t.budget_hours - t.actual_hours).max(0.0),
                "startDateTime": opt_dt(t.start),
                "endDateTime": opt_dt(t.end),
                "completedDateTime": opt_dt(t.completed),
                "createDateTime": dt(t.created),
                "lastActivityDateTime": dt(t.updated),
            })
        })
        .collect()
}

fn service_calls(r: &Records) -> Vec<Value> {
    r.schedule
        .iter()
        .map(|s| {
            let hours = (s.end.as_second() - s.start.as_second()) as f64 / 3600.0;
            json!({
                "id": s.id,
                "description": s.description.as_deref().unwrap_or(&s.subject),
                "companyID": s.company.id,
                "companyLocationID": s.location_id,
                "status": s.status.id,
                "duration": hours,
                "isComplete": u64::from(s.done),
                "startDateTime": dt(s.start),
                "endDateTime": dt(s.end),
                "createDateTime": dt(s.created),
                "lastModifiedDateTime": dt(s.updated),
            })
        })
        .collect()
}

fn time_entries(r: &Records) -> Vec<Value> {
    r.time_entries
        .iter()
        .map(|t| {
            let (ticket, task) = match &t.charge {
                Charge::Ticket(id, _) => (Some(*id), None),
                Charge::Task { task_id, .. } => (None, Some(*task_id)),
            };
            json!({
                "id": t.id,
                "resourceID": t.member.id,
                "ticketID": ticket,
                "taskID": task,
                "contractID": id_of(&t.contract),
                "roleID": t.role.id,
                "billingCodeID": t.billing_code,
                "timeEntryType": t.entry_type,
                "summaryNotes": t.notes,
                "internalNotes": t.internal_notes,
                "hoursWorked": t.hours,
                "hoursToBill": if t.non_billable() { 0.0 } else { t.hours },
                "isNonBillable": t.non_billable(),
                "dateWorked": dt(midnight(t.start)),
                "startDateTime": dt(t.start),
                "endDateTime": dt(t.end),
                "createDateTime": dt(t.created),
                "lastModifiedDateTime": dt(t.updated),
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
                "projectName": p.name,
                "projectNumber": p.number,
                "description": p.description,
                "companyID": p.company.id,
                "contractID": p.contract_id,
                "department": p.department,
                "status": p.status.id,
                "projectType": p.kind.id,
                "projectLeadResourceID": p.manager.as_ref().map(|m| m.id),
                "completedPercentage": p.percent_complete,
                "estimatedTime": p.budget_hours,
                "actualHours": p.actual_hours,
                "startDateTime": dt(p.start),
                "endDateTime": dt(p.end),
                "completedDateTime": opt_dt(p.actual_end),
                "createDateTime": dt(p.created),
                "lastActivityDateTime": dt(p.updated),
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
                "companyName": c.company.name,
                "companyNumber": c.account_number,
                "companyType": c.company_type,
                "classification": c.classification,
                "marketSegmentID": c.market.id,
                "territoryID": c.territory.id,
                "parentCompanyID": c.parent_id,
                "ownerResourceID": c.owner_id,
                "isActive": c.active,
                "phone": c.phone,
                "city": c.city,
                "state": c.state,
                "postalCode": c.zip,
                "webAddress": c.website,
                "createDate": dt(c.created),
                "lastActivityDate": dt(c.last_activity),
                "lastTrackedModifiedDateTime": dt(c.updated),
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
                "emailAddress": c.email,
                "phone": c.phone,
                "mobilePhone": c.mobile,
                "companyID": c.company.id,
                "companyLocationID": id_of(&c.site),
                "isActive": u64::from(c.active),
                "createDate": dt(c.created),
                "lastActivityDate": opt_dt(c.last_activity),
                "lastModifiedDate": dt(c.updated),
            })
        })
        .collect()
}

fn resources(r: &Records) -> Vec<Value> {
    r.resources
        .iter()
        .map(|m| {
            json!({
                "id": m.member.id,
                "firstName": m.first_name,
                "lastName": m.last_name,
                "userName": m.member.identifier,
                "email": m.email,
                "title": m.title,
                "resourceType": m.resource_type,
                "licenseType": m.license_type,
                "locationID": m.location.id,
                "defaultServiceDeskRoleID": m.role.id,
                "isActive": m.active,
                "hireDate": opt_dt(m.hire_date),
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
                "contractName": c.name,
                "contractNumber": c.number,
                "companyID": c.company.id,
                "contactID": id_of(&c.contact),
                "contractType": c.kind.id,
                "contractCategory": c.category,
                "status": c.at_status(),
                "serviceLevelAgreementID": c.sla_id,
                "opportunityID": c.opportunity_id,
                "estimatedRevenue": c.estimated_revenue,
                "isDefaultContract": c.default,
                "startDate": dt(c.start),
                "endDate": opt_dt(c.end),
                "lastModifiedDateTime": dt(c.updated),
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
                "title": o.name,
                "companyID": o.company.id,
                "contactID": id_of(&o.contact),
                "ownerResourceID": o.rep.id,
                "status": o.status.id,
                "stage": o.stage.id,
                "rating": o.rating,
                "probability": o.probability,
                "amount": o.amount,
                "cost": o.cost,
                "projectedCloseDate": dt(o.expected_close),
                "closedDate": opt_dt(o.closed_date),
                "createDate": dt(o.created),
                "lastActivity": dt(o.updated),
            })
        })
        .collect()
}

fn configuration_items(r: &Records) -> Vec<Value> {
    r.configurations
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "referenceTitle": c.name,
                "referenceNumber": c.tag,
                "serialNumber": c.serial,
                "companyID": c.company.id,
                "companyLocationID": id_of(&c.site),
                "contactID": id_of(&c.contact),
                "configurationItemType": c.kind.id,
                "productID": c.product_id,
                "isActive": c.active,
                "installDate": opt_dt(c.installed),
                "warrantyExpirationDate": opt_dt(c.warranty_end),
                "createDate": dt(c.created),
                "lastModifiedTime": dt(c.updated),
            })
        })
        .collect()
}

fn ticket_notes(r: &Records) -> Vec<Value> {
    r.notes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "ticketID": n.ticket_id,
                "title": n.title,
                "description": n.description,
                "noteType": n.note_type,
                "publish": n.publish,
                "creatorResourceID": n.creator_id,
                "createDateTime": dt(n.created),
                "lastActivityDate": dt(n.last_activity),
            })
        })
        .collect()
}

fn roles(r: &Records) -> Vec<Value> {
    r.roles
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "name": w.name,
                "description": w.description,
                "hourlyRate": w.hourly_rate,
                "isActive": w.active,
                "isSystemRole": w.system,
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
                "title": s.subject,
                "description": s.description,
                "resourceID": s.member.id,
                "startDateTime": dt(s.start),
                "endDateTime": dt(s.end),
                "createDateTime": dt(s.created),
                "updateDateTime": dt(s.updated),
            })
        })
        .collect()
}

fn contract_services(r: &Records) -> Vec<Value> {
    r.contract_services
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "contractID": s.contract_id,
                "serviceID": s.service_id,
                "invoiceDescription": s.description,
                "unitPrice": s.unit_price,
                "unitCost": s.unit_cost,
            })
        })
        .collect()
}

fn company_locations(r: &Records) -> Vec<Value> {
    r.locations
        .iter()
        .map(|l| {
            json!({
                "id": l.id,
                "name": l.name,
                "companyID": l.company.id,
                "address1": l.address1,
                "city": l.city,
                "state": l.state,
                "postalCode": l.postal_code,
                "phone": l.phone,
                "isActive": l.active,
                "isPrimary": l.primary,
            })
        })
        .collect()
}

fn products(r: &Records) -> Vec<Value> {
    r.products
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "description": p.description,
                "sku": p.sku,
                "manufacturerName": p.manufacturer,
                "productCategory": p.category,
                "unitPrice": p.price,
                "unitCost": p.cost,
                "isActive": p.active,
                "isSerialized": p.serialized,
            })
        })
        .collect()
}
