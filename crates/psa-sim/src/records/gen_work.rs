//! The records of work done for the companies (projects and their tasks, time, notes, schedule
//! entries, product lines), generated after the companies, their people and their contracts,
//! which they refer to. Time entries, notes and schedule entries pick their tickets by index,
//! so that their number does not grow with the tickets'.

use rand::rngs::StdRng;
use rand::Rng;

use super::gen::{
    after, any, before, date, maybe, midnight, next_id, pick, pick_ref, quarters, Base, IdBase,
    Records, DAY,
};
use super::keys::Owned;
use super::model::*;
use super::names::*;
use crate::data::{ts, weighted, Ticket};

/// How many time entries, notes and schedule entries there are (when there are tickets).
const TIME_ENTRIES: usize = 600;
const NOTES: usize = 400;
const SCHEDULE: usize = 150;

pub(super) fn gen_projects(rng: &mut StdRng, r: &Records, base: &Base<'_>) -> Vec<Project> {
    let mut out = Vec::new();
    for c in &r.companies {
        let contacts = r.company_contacts(c.company.id);
        let sites = r.company_locations(c.company.id);
        let contracts = r.company_contracts(c.company.id);
        for k in 0..rng.gen_range(1..=3) {
            let s = weighted(rng, &[3, 4, 1, 3, 1]);
            let (status, closed) = PROJECT_STATUSES[s];
            let start = date(rng, 120);
            let end = ts(start.as_second() + rng.gen_range(14..120) * DAY);
            let budget = quarters(rng, 32, 800);
            let percent = match status {
                "Completed" => 100,
                "Open" => 0,
                _ => rng.gen_range(5..=95),
            };
            let worked = budget * percent as f64 / 100.0 * rng.gen_range(0.8..1.3);
            let created = before(rng, start, 30);
            let pid = Owned::Project.id(c.company.id, k + 1);
            let name = any(rng, &PROJECT_NAMES);
            out.push(Project {
                id: pid,
                company: c.company.clone(),
                number: format!("P{}.{:04}", created.strftime("%Y%m%d"), pid % 10_000),
                name: format!("{name} {}", start.strftime("%Y")),
                description: format!("{name} for {}.", c.company.name),
                status: Ref::new(s as u64 + 1, status),
                closed,
                contact: maybe(rng, 0.7, |rng| pick(rng, &contacts).as_ref()),
                site_id: maybe(rng, 0.6, |rng| pick(rng, &sites).id),
                board: pick(rng, base.boards).clone(),
                manager: maybe(rng, 0.85, |rng| pick(rng, base.members).clone()),
                kind: pick_ref(rng, &PROJECT_TYPES),
                priority: rng.gen_range(1..=5),
                department: any(rng, &[10, 11, 12]),
                contract_id: (!contracts.is_empty() && rng.gen_bool(0.5))
                    .then(|| pick(rng, &contracts).id),
                billing_method: any(rng, &BILLING_METHODS),
                start,
                end,
                actual_end: closed.then(|| after(rng, end, 20)),
                budget_hours: budget,
                actual_hours: (worked * 4.0).round() / 4.0,
                percent_complete: percent,
                created,
                updated: after(rng, start, 150),
            });
        }
    }
    out
}

pub(super) fn gen_tasks(rng: &mut StdRng, projects: &[Project], base: &Base<'_>) -> Vec<Task> {
    let mut id = IdBase::TASK;
    let mut out = Vec::new();
    let statuses = base.statuses;
    for p in projects {
        let n = rng.gen_range(2..=6);
        for k in 0..n {
            let phase = k * PHASES.len() / n;
            let status = if p.closed {
                &statuses[statuses.len() - 1 - usize::from(rng.gen_bool(0.5))]
            } else {
                &statuses[weighted(rng, &[3, 3, 1, 3, 1]).min(statuses.len() - 1)]
            };
            let budget = quarters(rng, 4, 160);
            let worked = if status.closed {
                budget * rng.gen_range(0.7..1.3)
            } else {
                budget * rng.gen_range(0.0..1.0)
            };
            let created = after(rng, p.created, 10);
            let start = maybe(rng, 0.8, |rng| after(rng, p.start, 30));
            let summary = any(rng, &TASK_SUMMARIES);
            out.push(Task {
                id: next_id(rng, &mut id),
                project: Ref::new(p.id, &p.name),
                company: p.company.clone(),
                number: format!("T{}.{:02}", &p.number[1..], k + 1),
                phase: Ref::new(p.id * 10 + phase as u64 + 1, PHASES[phase]),
                summary: summary.to_string(),
                description: maybe(rng, 0.6, |_| format!("{summary} for {}.", p.name)),
                board: p.board.clone(),
                status: status.clone(),
                priority: pick(rng, base.priorities).clone(),
                owner: maybe(rng, 0.8, |rng| pick(rng, base.members).clone()),
                task_type: any(rng, &[1, 2]),
                department: p.department,
                billing_code: maybe(rng, 0.7, |rng| any(rng, &BILLING_CODES)),
                portal_visible: rng.gen_bool(0.4),
                budget_hours: budget,
                actual_hours: (worked * 4.0).round() / 4.0,
                required: maybe(rng, 0.6, |rng| after(rng, p.start, 90)),
                end: start.map(|s| after(rng, s, 14)),
                start,
                completed: status.closed.then(|| after(rng, created, 60)),
                created,
                updated: after(rng, created, 90),
            });
        }
    }
    out
}

pub(super) fn gen_time_entries(rng: &mut StdRng, r: &Records, base: &Base<'_>) -> Vec<TimeEntry> {
    let mut id = IdBase::TIME_ENTRY;
    let tickets = base.tickets;
    let mut out = Vec::with_capacity(TIME_ENTRIES);
    if tickets.is_empty() && r.tasks.is_empty() {
        return out;
    }
    for _ in 0..TIME_ENTRIES {
        let on_ticket = !tickets.is_empty() && (r.tasks.is_empty() || rng.gen_bool(0.85));
        let (charge, company, anchor) = if on_ticket {
            let t: &Ticket = pick(rng, tickets);
            let charge = Charge::Ticket(t.id, t.summary.clone());
            (charge, t.company.clone(), t.date_entered)
        } else {
            let task = pick(rng, &r.tasks);
            let charge = Charge::Task {
                task_id: task.id,
                project: task.project.clone(),
            };
            (charge, task.company.clone(), task.created)
        };
        let contracts = r.company_contracts(company.id);
        let role = pick(rng, &r.roles);
        let hours = quarters(rng, 1, 16);
        let start = after(rng, anchor, 5);
        let end = ts(start.as_second() + (hours * 3600.0) as i64);
        let created = ts(end.as_second() + rng.gen_range(0..7200));
        let billable = BILLABLE[weighted(rng, &[6, 2, 1, 1])];
        out.push(TimeEntry {
            id: next_id(rng, &mut id),
            member: pick(rng, base.members).clone(),
            work_type: pick_ref(rng, &WORK_TYPES),
            role: Ref::new(role.id, &role.name),
            contract: (!contracts.is_empty() && rng.gen_bool(0.5)).then(|| {
                let c = pick(rng, &contracts);
                Ref::new(c.id, &c.name)
            }),
            billable,
            entry_type: if on_ticket { 2 } else { 6 },
            billing_code: any(rng, &BILLING_CODES),
            notes: pick(rng, &TIME_NOTES).to_string(),
            internal_notes: maybe(rng, 0.3, |rng| {
                format!("Follow up in {} days.", rng.gen_range(1..10))
            }),
            hours,
            start,
            end,
            created,
            updated: after(rng, created, 7),
            company,
            charge,
        });
    }
    out
}

pub(super) fn gen_notes(rng: &mut StdRng, base: &Base<'_>) -> Vec<Note> {
    let mut id = IdBase::NOTE;
    if base.tickets.is_empty() {
        return Vec::new();
    }
    (0..NOTES)
        .map(|_| {
            let t = pick(rng, base.tickets);
            let title = any(rng, &NOTE_TITLES);
            let created = after(rng, t.date_entered, 10);
            Note {
                id: next_id(rng, &mut id),
                ticket_id: t.id,
                title: title.to_string(),
                description: format!("{title}: {}.", t.summary),
                note_type: any(rng, &[1, 2, 3]),
                publish: any(rng, &[1, 1, 2]),
                creator_id: maybe(rng, 0.85, |rng| pick(rng, base.members).id),
                created,
                last_activity: after(rng, created, 20),
            }
        })
        .collect()
}

pub(super) fn gen_schedule(rng: &mut StdRng, r: &Records, base: &Base<'_>) -> Vec<Schedule> {
    let mut id = IdBase::SCHEDULE;
    (0..SCHEDULE)
        .map(|_| {
            let kind = if base.tickets.is_empty() {
                1 + rng.gen_range(0..2)
            } else {
                weighted(rng, &[7, 2, 1])
            };
            let (identifier, prefix) = SCHEDULE_TYPES[kind];
            let (object_id, company, subject) = if kind == 0 {
                let t = pick(rng, base.tickets);
                (Some(t.id), t.company.clone(), t.summary.clone())
            } else {
                let c = &pick(rng, &r.companies).company;
                let project = r.projects.iter().find(|p| p.company.id == c.id);
                let object = if kind == 2 {
                    project.map(|p| p.id)
                } else {
                    None
                };
                (object, c.clone(), pick(rng, &SCHEDULE_TOPICS).to_string())
            };
            let sites = r.company_locations(company.id);
            let s = weighted(rng, &[2, 5, 4, 1]);
            let day = midnight(date(rng, 10));
            let start = ts(day.as_second() + rng.gen_range(8..17) * 3600);
            let end = ts(start.as_second() + (quarters(rng, 2, 16) * 3600.0) as i64);
            let created = before(rng, start, 14);
            Schedule {
                id: next_id(rng, &mut id),
                subject: format!("{prefix}: {subject}"),
                description: maybe(rng, 0.6, |_| format!("{prefix} with {}.", company.name)),
                object_id,
                location_id: maybe(rng, 0.6, |rng| pick(rng, &sites).id),
                company,
                member: pick(rng, base.members).clone(),
                kind: (kind as u64 + 1, identifier),
                status: Ref::new(s as u64 + 1, SCHEDULE_STATUSES[s]),
                done: SCHEDULE_STATUSES[s] == "Done",
                start,
                end,
                created,
                updated: after(rng, created, 20),
            }
        })
        .collect()
}

/// Places each catalogue product once on a ticket, project, opportunity or agreement.
pub(super) fn place_products(rng: &mut StdRng, r: &mut Records, tickets: &[Ticket]) {
    for i in 0..r.products.len() {
        let (placement, company) = match rng.gen_range(0..4) {
            0 if !tickets.is_empty() => {
                let t = pick(rng, tickets);
                (Placement::Ticket(t.id), t.company.clone())
            }
            1 if !r.projects.is_empty() => {
                let p = pick(rng, &r.projects);
                (Placement::Project(p.id), p.company.clone())
            }
            2 if !r.opportunities.is_empty() => {
                let o = pick(rng, &r.opportunities);
                (Placement::Opportunity(o.id), o.company.clone())
            }
            _ if !r.contracts.is_empty() => {
                let c = pick(rng, &r.contracts);
                (Placement::Agreement(c.id), c.company.clone())
            }
            _ => continue,
        };
        let p = &mut r.products[i];
        p.placement = placement;
        p.company = Some(company);
    }
}
