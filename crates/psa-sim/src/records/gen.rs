//! Generates the records from the data set's companies, members, boards and tickets, with a
//! generator of its own (seeded from the data set's seed), so that adding records left the
//! tickets of every seed as they were, and the records cost the same for 100 tickets or a
//! million: only time entries, notes, schedule entries and product lines look tickets up, by
//! index.
//!
//! Each collection's ids ascend from a base of its own, so that an id names one record across
//! the simulator where that is convenient: what a company owns is numbered by [`Owned`] (a
//! ticket names it without the records), the rest from [`IdBase`].

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::gen_work::{
    gen_notes, gen_projects, gen_schedule, gen_tasks, gen_time_entries, place_products,
};
use super::keys::{self, Owned, TICKET_RANKS};
use super::model::*;
use super::names::*;
use crate::data::{
    ts, weighted, Board, Company, Member, Priority, Status, Ticket, SPAN_END, SPAN_START,
};

/// Every non-ticket record, each collection in ascending id order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Records {
    pub companies: Vec<CompanyInfo>,
    pub locations: Vec<Location>,
    pub contacts: Vec<Contact>,
    pub configurations: Vec<Configuration>,
    pub projects: Vec<Project>,
    pub tasks: Vec<Task>,
    pub opportunities: Vec<Opportunity>,
    pub contracts: Vec<Contract>,
    pub contract_services: Vec<ContractService>,
    pub time_entries: Vec<TimeEntry>,
    pub notes: Vec<Note>,
    pub schedule: Vec<Schedule>,
    pub resources: Vec<Resource>,
    pub roles: Vec<Role>,
    pub teams: Vec<Team>,
    pub products: Vec<Product>,
}

/// What the records are generated from.
pub(crate) struct Base<'a> {
    pub seed: u64,
    pub boards: &'a [Board],
    pub statuses: &'a [Status],
    pub priorities: &'a [Priority],
    pub companies: &'a [Company],
    pub members: &'a [Member],
    pub tickets: &'a [Ticket],
}

/// The first id of each collection (companies and members keep the data set's ids).
pub(super) struct IdBase;

impl IdBase {
    /// Roles and teams are numbered without gaps: a ticket names its owner's role.
    pub(super) const ROLE: u64 = 30;
    pub(super) const TEAM: u64 = 60;
    pub(super) const PRODUCT: u64 = 1_000;
    pub(super) const CONTRACT_SERVICE: u64 = 10_000;
    pub(super) const TASK: u64 = 20_000;
    pub(super) const SCHEDULE: u64 = 30_000;
    pub(super) const TIME_ENTRY: u64 = 40_000;
    pub(super) const NOTE: u64 = 50_000;
}

/// The reference instant of "expired" and "overdue": 2026-06-01T00:00:00Z.
pub(super) const NOW: i64 = 1_780_272_000;
pub(super) const DAY: i64 = 86_400;

/// The next id of a collection: ascending, with gaps.
pub(super) fn next_id(rng: &mut StdRng, id: &mut u64) -> u64 {
    *id += rng.gen_range(1..=3);
    *id
}

pub(super) fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// A copy of one of `items`.
pub(super) fn any<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    *pick(rng, items)
}

/// A 1-based picklist value of `names`.
pub(super) fn pick_ref(rng: &mut StdRng, names: &[&str]) -> Ref {
    let i = rng.gen_range(0..names.len());
    Ref::new(i as u64 + 1, names[i])
}

pub(super) fn maybe<T>(rng: &mut StdRng, p: f64, f: impl FnOnce(&mut StdRng) -> T) -> Option<T> {
    if rng.gen_bool(p) {
        Some(f(rng))
    } else {
        None
    }
}

/// An instant in the data set's span, before its last `margin_days` days.
pub(super) fn date(rng: &mut StdRng, margin_days: i64) -> Timestamp {
    ts(rng.gen_range(SPAN_START..SPAN_END - margin_days * DAY))
}

/// An instant up to `days` days after `t` (at most the end of the span).
pub(super) fn after(rng: &mut StdRng, t: Timestamp, days: i64) -> Timestamp {
    ts((t.as_second() + rng.gen_range(0..days.max(1) * DAY)).min(SPAN_END))
}

pub(super) fn money(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    (rng.gen_range(lo..hi) * 100.0).round() / 100.0
}

/// Between `lo` and `hi` quarter hours, in hours.
pub(super) fn quarters(rng: &mut StdRng, lo: u32, hi: u32) -> f64 {
    f64::from(rng.gen_range(lo..=hi)) / 4.0
}

/// An instant up to `days` days before `t` (at least the start of the span).
pub(super) fn before(rng: &mut StdRng, t: Timestamp, days: i64) -> Timestamp {
    ts((t.as_second() - rng.gen_range(0..days.max(1) * DAY)).max(SPAN_START))
}

/// Midnight UTC of the day of `t`.
pub(super) fn midnight(t: Timestamp) -> Timestamp {
    ts(t.as_second() - t.as_second().rem_euclid(DAY))
}

impl Records {
    pub(crate) fn generate(base: &Base<'_>) -> Records {
        let mut rng = StdRng::seed_from_u64(base.seed ^ 0x7265_636f_7264_7321);
        let rng = &mut rng;
        let mut r = Records {
            roles: gen_roles(rng),
            teams: gen_teams(),
            ..Records::default()
        };
        r.resources = gen_resources(rng, base.members, &r.roles, &r.teams);
        r.companies = gen_company_infos(rng, base.companies, base.members);
        r.locations = gen_locations(rng, &r.companies);
        r.contacts = gen_contacts(rng, &r.companies, &r.locations);
        r.products = gen_products(rng);
        r.configurations = gen_configurations(rng, &r);
        r.opportunities = gen_opportunities(rng, &r, base.members);
        r.contracts = gen_contracts(rng, &r);
        r.contract_services = gen_contract_services(rng, &r.contracts);
        r.projects = gen_projects(rng, &r, base);
        r.tasks = gen_tasks(rng, &r.projects, base);
        r.time_entries = gen_time_entries(rng, &r, base);
        r.notes = gen_notes(rng, base);
        r.schedule = gen_schedule(rng, &r, base);
        place_products(rng, &mut r, base.tickets);
        r
    }

    pub(super) fn company_locations(&self, company: u64) -> Vec<&Location> {
        self.locations
            .iter()
            .filter(|l| l.company.id == company)
            .collect()
    }

    pub(super) fn company_contacts(&self, company: u64) -> Vec<&Contact> {
        self.contacts
            .iter()
            .filter(|c| c.company.id == company)
            .collect()
    }

    pub(super) fn company_contracts(&self, company: u64) -> Vec<&Contract> {
        self.contracts
            .iter()
            .filter(|c| c.company.id == company)
            .collect()
    }
}

fn gen_roles(rng: &mut StdRng) -> Vec<Role> {
    ROLES
        .iter()
        .enumerate()
        .map(|(i, &(name, rate, system))| {
            let created = date(rng, 300);
            Role {
                id: IdBase::ROLE + i as u64 + 1,
                name: name.to_string(),
                description: format!("{name} work"),
                hourly_rate: rate,
                active: system || (i % 4 != 1 && rng.gen_bool(0.8)),
                system,
                agent: !system && name != "Account Manager",
                created,
                updated: after(rng, created, 200),
            }
        })
        .collect()
}

fn gen_teams() -> Vec<Team> {
    TEAM_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| Team {
            id: IdBase::TEAM + i as u64 + 1,
            name: name.to_string(),
            department_id: [1, 1, 2, 1, 3, 2][i],
            active: i != 3,
        })
        .collect()
}

fn gen_resources(
    rng: &mut StdRng,
    members: &[Member],
    roles: &[Role],
    teams: &[Team],
) -> Vec<Resource> {
    members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (first, last) = m.name.split_once(' ').unwrap_or((&m.name, ""));
            let created = date(rng, 200);
            let role = pick(rng, roles);
            Resource {
                member: m.clone(),
                first_name: first.to_string(),
                last_name: last.to_string(),
                title: pick(rng, &TITLES).to_string(),
                email: format!("{}@msp.example", m.identifier),
                license_class: if i % 4 == 1 {
                    "A"
                } else {
                    any(rng, &["F", "F", "F", "C"])
                },
                license_type: any(rng, &[1, 1, 2, 3, 7]),
                resource_type: if i % 5 == 2 {
                    "Contractor"
                } else {
                    any(rng, &["Employee", "Employee", "Contractor"])
                },
                active: i % 6 != 4 && rng.gen_bool(0.9),
                location: match i % 3 {
                    0 => Ref::new(1, LOCATIONS[0]),
                    1 => Ref::new(2, LOCATIONS[1]),
                    _ => pick_ref(rng, &LOCATIONS),
                },
                department: match i {
                    0..=2 => Ref::new(i as u64 + 1, MSP_DEPARTMENTS[i]),
                    _ => pick_ref(rng, &MSP_DEPARTMENTS),
                },
                role: Ref::new(role.id, &role.name),
                team: pick(rng, teams).name.clone(),
                hire_date: maybe(rng, 0.8, |rng| date(rng, 400)),
                created,
                updated: after(rng, created, 120),
            }
        })
        .collect()
}

fn gen_company_infos(
    rng: &mut StdRng,
    companies: &[Company],
    members: &[Member],
) -> Vec<CompanyInfo> {
    companies
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (city, state, zip, area) = any(rng, &CITIES);
            let s = weighted(rng, &[10, 2, 1, 1]);
            let status = Ref::new(s as u64 + 1, COMPANY_STATUSES[s]);
            let lead = i % 7 == 3 || rng.gen_bool(0.1);
            let company_type = if lead { 2 } else { any(rng, &[1, 1, 1, 3, 7]) };
            let created = date(rng, 120);
            let updated = after(rng, created, 300);
            CompanyInfo {
                status: status.clone(),
                territory: pick_ref(rng, &TERRITORIES),
                market: pick_ref(rng, &MARKETS),
                company_type,
                classification: maybe(rng, 0.7, |rng| rng.gen_range(1..=4)),
                top_level: pick_ref(rng, &TOP_LEVELS),
                parent_id: (i % 6 == 2 || (i > 0 && rng.gen_bool(0.1)))
                    .then(|| companies[rng.gen_range(0..i)].id),
                owner_id: maybe(rng, 0.75, |rng| pick(rng, members).id),
                city: city.to_string(),
                state: state.to_string(),
                zip: format!("{zip}{:02}", rng.gen_range(1..99)),
                phone: format!("({area}) 555-{:04}", rng.gen_range(100..9999)),
                website: format!("https://www.{}.example", c.identifier.to_lowercase()),
                account_number: maybe(rng, 0.8, |rng| {
                    format!("ACCT-{:05}", rng.gen_range(1..99_999))
                }),
                employees: maybe(rng, 0.85, |rng| rng.gen_range(3..500)),
                annual_revenue: maybe(rng, 0.6, |rng| money(rng, 2e5, 5e7).round()),
                lead,
                deleted: i % 12 == 5,
                active: status.id == 1,
                vip: i % 5 == 1 || rng.gen_bool(0.15),
                acquired: maybe(rng, 0.7, |rng| date(rng, 60)),
                created,
                updated,
                last_activity: after(rng, updated, 60),
                company: c.clone(),
            }
        })
        .collect()
}

fn gen_locations(rng: &mut StdRng, companies: &[CompanyInfo]) -> Vec<Location> {
    let mut out = Vec::new();
    for (i, c) in companies.iter().enumerate() {
        // The first company has every location, one of them closed.
        let n = if i == 0 { 3 } else { rng.gen_range(1..=3) };
        for k in 0..n {
            out.push(Location {
                id: Owned::Location.id(c.company.id, k as u64 + 1),
                company: c.company.clone(),
                name: keys::location_name(k as u64 + 1).to_string(),
                address1: format!("{} {}", rng.gen_range(10..9999), pick(rng, &STREETS)),
                city: c.city.clone(),
                state: c.state.clone(),
                postal_code: c.zip.clone(),
                phone: format!("{}{}", &c.phone[..10], rng.gen_range(1000..9999)),
                active: k == 0 || (i > 0 && rng.gen_bool(0.8)) || k == 1,
                primary: k == 0,
            });
        }
    }
    out
}

fn gen_contacts(
    rng: &mut StdRng,
    companies: &[CompanyInfo],
    locations: &[Location],
) -> Vec<Contact> {
    let mut out = Vec::new();
    for c in companies {
        let sites: Vec<&Location> = locations
            .iter()
            .filter(|l| l.company.id == c.company.id)
            .collect();
        for k in 0..rng.gen_range(TICKET_RANKS.contacts..=6) {
            let (first, last, email) = keys::contact(&c.company, k + 1);
            let created = date(rng, 90);
            let updated = after(rng, created, 200);
            out.push(Contact {
                id: Owned::Contact.id(c.company.id, k + 1),
                email,
                first_name: first.to_string(),
                last_name: last.to_string(),
                company: c.company.clone(),
                title: maybe(rng, 0.8, |rng| pick(rng, &CONTACT_TITLES).to_string()),
                phone: format!("{}{}", &c.phone[..10], rng.gen_range(1000..9999)),
                mobile: maybe(rng, 0.6, |rng| {
                    format!(
                        "(555) 01{:02}-{:04}",
                        rng.gen_range(0..99),
                        rng.gen_range(0..9999)
                    )
                }),
                site: maybe(rng, 0.85, |rng| {
                    let l = pick(rng, &sites);
                    Ref::new(l.id, &l.name)
                }),
                department: maybe(rng, 0.7, |rng| pick_ref(rng, &DEPARTMENTS)),
                relationship: maybe(rng, 0.6, |rng| pick_ref(rng, &RELATIONSHIPS)),
                active: rng.gen_bool(0.88),
                primary: k == 0,
                important: rng.gen_bool(0.25),
                created,
                updated,
                last_activity: maybe(rng, 0.7, |rng| after(rng, updated, 60)),
            });
        }
    }
    out
}

fn gen_products(rng: &mut StdRng) -> Vec<Product> {
    let mut id = IdBase::PRODUCT;
    (0..40u64)
        .map(|k| {
            let (kind, category) = PRODUCT_KINDS[k as usize % PRODUCT_KINDS.len()];
            let manufacturer = any(rng, &MANUFACTURERS);
            let price = match category {
                1 => money(rng, 80.0, 2500.0),
                2 | 3 => money(rng, 5.0, 40.0),
                _ => money(rng, 95.0, 300.0),
            };
            let created = date(rng, 200);
            Product {
                id: next_id(rng, &mut id),
                catalog_id: 500 + k,
                name: format!("{manufacturer} {kind}"),
                description: format!(
                    "{manufacturer} {kind} ({})",
                    ["standard", "pro", "premium"][k as usize % 3]
                ),
                sku: format!(
                    "{}-{:05}",
                    &manufacturer[..2].to_uppercase(),
                    rng.gen_range(1..99_999)
                ),
                manufacturer,
                category,
                cost: ((price * rng.gen_range(0.45..0.8)) * 100.0).round() / 100.0,
                price,
                active: k % 8 != 6 && rng.gen_bool(0.9),
                serialized: category == 1 && rng.gen_bool(0.8),
                supplier_id: maybe(rng, 0.75, |rng| rng.gen_range(1..=4)),
                quantity: rng.gen_range(1..=10),
                billable: any(rng, &BILLABLE[..3]),
                placement: Placement::Ticket(0),
                company: None,
                created,
                updated: after(rng, created, 150),
            }
        })
        .collect()
}

fn gen_configurations(rng: &mut StdRng, r: &Records) -> Vec<Configuration> {
    let mut out = Vec::new();
    for c in &r.companies {
        let sites = r.company_locations(c.company.id);
        let contacts = r.company_contacts(c.company.id);
        let prefix: String = c
            .company
            .identifier
            .chars()
            .take(4)
            .collect::<String>()
            .to_uppercase();
        for k in 0..rng.gen_range(TICKET_RANKS.configurations..=8) {
            let t = weighted(rng, &[6, 5, 2, 1, 1, 2]);
            let (type_name, code, models, systems) = CONFIG_TYPES[t];
            let status = pick_ref(rng, &CONFIG_STATUSES);
            let purchased = maybe(rng, 0.8, |rng| date(rng, 100));
            let created = date(rng, 60);
            let hardware = r
                .products
                .iter()
                .filter(|p| p.category == 1)
                .collect::<Vec<_>>();
            out.push(Configuration {
                id: Owned::Configuration.id(c.company.id, k + 1),
                company: c.company.clone(),
                name: format!("{prefix}-{code}{:02}", k + 1),
                kind: Ref::new(t as u64 + 1, type_name),
                active: status.id <= 3 && status.id != 2,
                status,
                contact: maybe(rng, 0.6, |rng| pick(rng, &contacts).as_ref()),
                site: maybe(rng, 0.8, |rng| {
                    let l = pick(rng, &sites);
                    Ref::new(l.id, &l.name)
                }),
                serial: format!("SN{:010}", rng.gen_range(0..9_999_999_999u64)),
                model: pick(rng, &models).to_string(),
                tag: maybe(rng, 0.7, |rng| {
                    format!("TAG-{:05}", rng.gen_range(1..99_999))
                }),
                os: (!systems.is_empty()).then(|| pick(rng, systems).to_string()),
                ip: maybe(rng, 0.6, |rng| {
                    format!(
                        "10.{}.{}.{}",
                        rng.gen_range(0..255),
                        rng.gen_range(0..255),
                        rng.gen_range(2..254)
                    )
                }),
                installed: purchased.map(|p| after(rng, p, 30)),
                warranty_end: purchased
                    .map(|p| ts(p.as_second() + rng.gen_range(1..=3) * 365 * DAY)),
                purchased,
                product_id: maybe(rng, 0.5, |rng| pick(rng, &hardware).id),
                supplier_id: maybe(rng, 0.6, |rng| rng.gen_range(1..=4)),
                created,
                updated: after(rng, created, 90),
            });
        }
    }
    out
}

fn gen_opportunities(rng: &mut StdRng, r: &Records, members: &[Member]) -> Vec<Opportunity> {
    let mut out = Vec::new();
    for c in &r.companies {
        let contacts = r.company_contacts(c.company.id);
        for k in 0..rng.gen_range(1..=3) {
            let s = weighted(rng, &[4, 3, 2, 1]);
            let status = Ref::new(s as u64 + 1, OPPORTUNITY_STATUSES[s]);
            let closed = status.id != 1;
            let stage = if closed { 5 } else { rng.gen_range(1..=4) };
            let created = date(rng, 120);
            let amount = money(rng, 500.0, 50_000.0).round();
            out.push(Opportunity {
                id: Owned::Opportunity.id(c.company.id, k + 1),
                company: c.company.clone(),
                contact: maybe(rng, 0.75, |rng| pick(rng, &contacts).as_ref()),
                name: format!("{} - {}", pick(rng, &OPPORTUNITY_NAMES), c.company.name),
                stage: Ref::new(stage, STAGES[stage as usize - 1]),
                kind: maybe(rng, 0.8, |rng| pick_ref(rng, &OPPORTUNITY_TYPES)),
                rep: pick(rng, members).clone(),
                source: maybe(rng, 0.7, |rng| any(rng, &SOURCES)),
                rating: maybe(rng, 0.6, |rng| rng.gen_range(1..=5)),
                probability: match status.id {
                    2 => 100,
                    1 => rng.gen_range(1..=9) * 10,
                    _ => 0,
                },
                cost: (amount * rng.gen_range(0.5..0.75)).round(),
                amount,
                expected_close: after(rng, created, 120),
                closed_date: closed.then(|| after(rng, created, 90)),
                updated: after(rng, created, 100),
                created,
                closed,
                status,
            });
        }
    }
    out
}

fn gen_contracts(rng: &mut StdRng, r: &Records) -> Vec<Contract> {
    let mut out: Vec<Contract> = Vec::new();
    for (ci, c) in r.companies.iter().enumerate() {
        let contacts = r.company_contacts(c.company.id);
        let won: Vec<u64> = r
            .opportunities
            .iter()
            .filter(|o| o.company.id == c.company.id && o.status.id == 2)
            .map(|o| o.id)
            .collect();
        let first = out.len();
        // The first company has a contract under another.
        let n = if ci == 0 { 2 } else { rng.gen_range(1..=2) };
        for k in 0..n {
            let t = keys::contract_type(c.company.id, k + 1);
            let kind = Ref::new(t as u64 + 1, CONTRACT_TYPES[t]);
            let status = CONTRACT_STATUSES[weighted(rng, &[5, 2, 2, 1])];
            let start = date(rng, 200);
            let no_end = rng.gen_bool(0.25);
            let end = (!no_end).then(|| ts(start.as_second() + rng.gen_range(1..=2) * 365 * DAY));
            let amount = money(rng, 0.0, 5_000.0).round();
            let cid = Owned::Contract.id(c.company.id, k + 1);
            out.push(Contract {
                id: cid,
                company: c.company.clone(),
                contact: maybe(rng, 0.6, |rng| pick(rng, &contacts).as_ref()),
                number: format!("C{}-{:04}", start.strftime("%Y"), cid % 10_000),
                name: keys::contract_name(&c.company, k + 1),
                category: rng.gen_range(1..=3),
                status,
                billing_cycle: pick_ref(rng, &BILLING_CYCLES),
                billing_description: maybe(rng, 0.7, |_| {
                    format!("{} billing for {}", kind.name, c.company.name)
                }),
                parent_id: (k > 0 && (ci == 0 || rng.gen_bool(0.5))).then(|| out[first].id),
                customer_po: maybe(rng, 0.5, |rng| {
                    format!("PO-{:05}", rng.gen_range(1..99_999))
                }),
                estimated_revenue: (amount * 12.0 * rng.gen_range(0.8..1.2)).round(),
                amount,
                units: any(rng, &UNITS),
                sla_id: maybe(rng, 0.6, |rng| rng.gen_range(1..=3)),
                opportunity_id: (!won.is_empty() && rng.gen_bool(0.6)).then(|| any(rng, &won)),
                default: k == 0 && rng.gen_bool(0.6),
                cancelled: status == "Cancelled",
                expired: status == "Expired" || end.is_some_and(|e| e.as_second() < NOW),
                kind,
                start,
                end,
                created: before(rng, start, 30),
                updated: after(rng, start, 200),
            });
        }
    }
    out
}

fn gen_contract_services(rng: &mut StdRng, contracts: &[Contract]) -> Vec<ContractService> {
    let mut id = IdBase::CONTRACT_SERVICE;
    let mut out = Vec::new();
    for c in contracts {
        for _ in 0..rng.gen_range(1..=3) {
            let service = pick_ref(rng, &SERVICES);
            let unit_price = money(rng, 15.0, 250.0);
            out.push(ContractService {
                id: next_id(rng, &mut id),
                contract_id: c.id,
                description: format!("{} ({})", service.name, c.billing_cycle.name.to_lowercase()),
                service_id: service.id,
                unit_cost: (unit_price * rng.gen_range(0.3..0.7) * 100.0).round() / 100.0,
                unit_price,
            });
        }
    }
    out
}
