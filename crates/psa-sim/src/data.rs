//! The seeded, deterministic data set and its three wire views.
//!
//! One [`Ticket`] struct backs every personality: [`cw_json`] renders the ConnectWise shape (docs/psa.md §1.10),
//! [`at_json`] the Autotask shape (docs/psa.md §2.7) and [`halo_json`] the HaloPSA shape (docs/psa.md §3), each with
//! every field of the PSA's ticket compile table (those a [`Ticket`] does not hold are derived from it, see
//! `records::tickets`). The same `(seed, count)` always yields the same data. The records of every other resource
//! are generated here too, after the tickets (see `records`).

use std::borrow::Cow;

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::records::{tickets, Base, Records, Tables};

/// The caption (ConnectWise) / name (Autotask) of the one custom field on tickets.
pub const REGION_CAPTION: &str = "Region";
/// The ConnectWise custom field id of [`REGION_CAPTION`].
pub const REGION_FIELD_ID: u64 = 1;
/// The values the Region custom field takes (or it is null).
pub const REGIONS: [&str; 4] = ["West", "East", "North", "South"];

/// First `dateEntered`: 2025-01-01T00:00:00Z.
pub(crate) const SPAN_START: i64 = 1_735_689_600;
/// End (exclusive) of the `dateEntered` span, and the cap of `lastUpdated`: 2026-11-01T00:00:00Z.
pub(crate) const SPAN_END: i64 = 1_793_491_200;

/// A service board (ConnectWise) / queue (Autotask `queueID`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Board {
    pub id: u64,
    pub name: String,
}

/// A ticket status. The id is used by both personalities (Autotask `status` is this integer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: u64,
    pub name: String,
    /// ConnectWise `closedFlag` for tickets in this status.
    pub closed: bool,
}

/// A ticket priority. The id is used by both personalities (Autotask `priority` is this integer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priority {
    pub id: u64,
    pub name: String,
}

/// A client company.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub id: u64,
    pub identifier: String,
    pub name: String,
}

/// A member (ConnectWise) / resource (Autotask).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub identifier: String,
    pub name: String,
}

/// One service ticket, the single source of both wire views.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: u64,
    /// Autotask `ticketNumber`, e.g. `T20250314.0007`.
    pub ticket_number: String,
    pub summary: String,
    pub board: Board,
    pub status: Status,
    pub priority: Priority,
    pub company: Company,
    pub owner: Option<Member>,
    pub date_entered: Timestamp,
    pub last_updated: Timestamp,
    /// Set exactly when `status.closed`.
    pub closed_date: Option<Timestamp>,
    /// The Region custom field / UDF.
    pub region: Option<String>,
    /// Autotask `serviceLevelAgreementHasBeenMet` (the one boolean field of the Autotask view).
    pub sla_met: bool,
}

impl Ticket {
    /// ConnectWise `closedFlag`.
    pub fn closed_flag(&self) -> bool {
        self.status.closed
    }
}

/// The whole seeded data set.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub seed: u64,
    pub boards: Vec<Board>,
    pub statuses: Vec<Status>,
    pub priorities: Vec<Priority>,
    pub companies: Vec<Company>,
    pub members: Vec<Member>,
    /// Ordered by ascending id.
    pub tickets: Vec<Ticket>,
    /// The three wire views, parallel to `tickets`, when kept rendered.
    rendered: Option<Rendered>,
    /// The rows of every other resource in each view (see [`crate::records`]).
    pub(crate) tables: Tables,
}

/// The wire views of every ticket, rendered once.
#[derive(Clone, Debug)]
struct Rendered {
    cw: Vec<Value>,
    at: Vec<Value>,
    halo: Vec<Value>,
}

/// One of the three wire views of a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    ConnectWise,
    Autotask,
    Halo,
}

impl View {
    /// The view of a PSA name: `connectwise`, `autotask`, `halo` or `halopsa` (any case).
    pub(crate) fn from_psa(psa: &str) -> Option<View> {
        match psa.to_ascii_lowercase().as_str() {
            "connectwise" => Some(View::ConnectWise),
            "autotask" => Some(View::Autotask),
            "halo" | "halopsa" => Some(View::Halo),
            _ => None,
        }
    }

    /// The PSA's name in the write log (`connectwise`, `autotask`, `halo`).
    pub(crate) fn psa(self) -> &'static str {
        match self {
            View::ConnectWise => "connectwise",
            View::Autotask => "autotask",
            View::Halo => "halo",
        }
    }

    fn render(self, t: &Ticket) -> Value {
        match self {
            View::ConnectWise => cw_json(t),
            View::Autotask => at_json(t),
            View::Halo => halo_json(t),
        }
    }
}

/// The fewest companies a data set has (any seed generates 20 to 40).
pub const MIN_COMPANIES: usize = 20;

impl Dataset {
    /// Generates the data set for `seed` with `tickets` tickets, its wire views rendered once.
    /// Deterministic.
    pub fn generate(seed: u64, tickets: usize) -> Dataset {
        Dataset::generate_with(seed, tickets, true)
    }

    /// As [`Dataset::generate`]; with `keep_rendered` false, a row's wire view is rendered each
    /// time a request reads it instead of once: memory holds only the tickets (a rendered row
    /// takes several KB, so a million tickets rendered would take gigabytes), while a count or
    /// a navigable page renders every row it filters. The answers are the same either way.
    pub fn generate_with(seed: u64, tickets: usize, keep_rendered: bool) -> Dataset {
        Dataset::build(seed, tickets, None, keep_rendered)
    }

    /// As [`Dataset::generate_with`], with a chosen number of tickets per company instead of
    /// the skewed weights: `company_tickets[i]` tickets belong to the `i`-th company (by
    /// ascending id), the other companies have none, and there are
    /// `company_tickets.iter().sum()` tickets in all, their companies shuffled over the ids
    /// (so each company's tickets spread over the whole id range, as on a real PSA). Every
    /// seed generates at least [`MIN_COMPANIES`] companies; a count beyond the companies
    /// generated goes to company `i % companies` (a count is never dropped). Deterministic.
    pub fn generate_by_company(
        seed: u64,
        company_tickets: &[usize],
        keep_rendered: bool,
    ) -> Dataset {
        Dataset::build(
            seed,
            company_tickets.iter().sum(),
            Some(company_tickets),
            keep_rendered,
        )
    }

    fn build(
        seed: u64,
        tickets: usize,
        company_tickets: Option<&[usize]>,
        keep_rendered: bool,
    ) -> Dataset {
        let mut rng = StdRng::seed_from_u64(seed);
        let boards = gen_boards(&mut rng);
        let statuses = statuses();
        let priorities = priorities();
        let companies = gen_companies(&mut rng);
        let members = gen_members(&mut rng);
        let tickets = gen_tickets(
            &mut rng,
            tickets,
            &boards,
            &statuses,
            &priorities,
            Owners {
                companies: &companies,
                counts: company_tickets,
            },
            &members,
        );
        let records = Records::generate(&Base {
            seed,
            boards: &boards,
            statuses: &statuses,
            priorities: &priorities,
            companies: &companies,
            members: &members,
            tickets: &tickets,
        });
        let tables = Tables::render(&records);
        let rendered = keep_rendered.then(|| Rendered {
            cw: tickets.iter().map(cw_json).collect(),
            at: tickets.iter().map(at_json).collect(),
            halo: tickets.iter().map(halo_json).collect(),
        });
        Dataset {
            seed,
            boards,
            statuses,
            priorities,
            companies,
            members,
            tickets,
            rendered,
            tables,
        }
    }

    /// The `view` of ticket number `i` (borrowed when kept rendered).
    pub(crate) fn row(&self, view: View, i: usize) -> Cow<'_, Value> {
        match &self.rendered {
            Some(r) => Cow::Borrowed(match view {
                View::ConnectWise => &r.cw[i],
                View::Autotask => &r.at[i],
                View::Halo => &r.halo[i],
            }),
            None => Cow::Owned(view.render(&self.tickets[i])),
        }
    }

    /// The index of the first ticket whose id is above `id`.
    pub(crate) fn first_after(&self, id: i64) -> usize {
        self.tickets
            .partition_point(|t| i64::try_from(t.id).unwrap_or(i64::MAX) <= id)
    }

    /// The index of the ticket with `id`.
    pub(crate) fn index_of(&self, id: u64) -> Option<usize> {
        self.tickets.binary_search_by_key(&id, |t| t.id).ok()
    }

    /// The ticket with `id`.
    pub fn ticket(&self, id: u64) -> Option<&Ticket> {
        self.index_of(id).map(|i| &self.tickets[i])
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (ConnectWise).
pub fn cw_datetime(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` (Autotask).
pub fn at_datetime(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}

/// The ticket as ConnectWise returns it (docs/psa.md §1.10), with every field of its compile table.
pub fn cw_json(t: &Ticket) -> Value {
    let mut row = json!({
        "id": t.id,
        "summary": t.summary,
        "recordType": "ServiceTicket",
        "board": {"id": t.board.id, "name": t.board.name},
        "status": {"id": t.status.id, "name": t.status.name},
        "priority": {"id": t.priority.id, "name": t.priority.name},
        "company": {"id": t.company.id, "identifier": t.company.identifier, "name": t.company.name},
        "owner": t.owner.as_ref().map(|m| json!({"id": m.id, "identifier": m.identifier})),
        "closedFlag": t.closed_flag(),
        "closedDate": t.closed_date.map(cw_datetime),
        "parentTicketId": null,
        "customFields": [{
            "id": REGION_FIELD_ID,
            "caption": REGION_CAPTION,
            "type": "Text",
            "entryMethod": "List",
            "numberOfDecimals": 0,
            "value": t.region,
        }],
        "_info": {
            "dateEntered": cw_datetime(t.date_entered),
            "lastUpdated": cw_datetime(t.last_updated),
        },
    });
    tickets::extend_cw(&mut row, t);
    row
}

/// The ticket as Autotask returns it (docs/psa.md §2.7), with every field of its compile table.
pub fn at_json(t: &Ticket) -> Value {
    let mut row = json!({
        "id": t.id,
        "ticketNumber": t.ticket_number,
        "title": t.summary,
        "status": t.status.id,
        "priority": t.priority.id,
        "queueID": t.board.id,
        "companyID": t.company.id,
        "assignedResourceID": t.owner.as_ref().map(|m| m.id),
        "createDate": at_datetime(t.date_entered),
        "lastActivityDate": at_datetime(t.last_updated),
        "completedDate": t.closed_date.map(at_datetime),
        "serviceLevelAgreementHasBeenMet": t.sla_met,
        "userDefinedFields": [{"name": REGION_CAPTION, "value": t.region}],
    });
    tickets::extend_at(&mut row, t);
    row
}

/// `YYYY-MM-DDTHH:MM:SS` (Halo: UTC without an offset).
pub fn halo_datetime(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The ticket as HaloPSA returns it from `GET /api/tickets` (docs/psa.md §3). The field names are the ones the
/// `neo-psa` compiler's Halo catalogue and aliases use: `$created` is `dateoccurred`, `$updated` `lastactiondate`,
/// `$closed` `hasbeenclosed`, `$company` `client_id`/`client_name`, `$status` `status_id`, `$priority`
/// `priority_id`, `$queue` `team` (the board name), `$assignee` `agent_id` (null when unassigned). `last_update`
/// is the row's last-modified instant (the token of the simulator's concurrency check on writes).
pub fn halo_json(t: &Ticket) -> Value {
    let mut row = json!({
        "id": t.id,
        "summary": t.summary,
        "details": format!("{}\n\nLogged by the PSA simulator.", t.summary),
        "tickettype_id": 1,
        "status_id": t.status.id,
        "priority_id": t.priority.id,
        "client_id": t.company.id,
        "client_name": t.company.name,
        "agent_id": t.owner.as_ref().map(|m| m.id),
        "team": t.board.name,
        "dateoccurred": halo_datetime(t.date_entered),
        "lastactiondate": halo_datetime(t.last_updated),
        "last_update": halo_datetime(t.last_updated),
        "dateclosed": t.closed_date.map(halo_datetime),
        "hasbeenclosed": t.closed_flag(),
        "onhold": false,
        "parent_id": null,
        "customfields": [{"name": REGION_CAPTION, "value": t.region}],
    });
    tickets::extend_halo(&mut row, t);
    row
}

const BOARD_NAMES: [&str; 8] = [
    "Help Desk",
    "Escalations",
    "Projects",
    "Alerts",
    "Onboarding",
    "Network Operations",
    "Security",
    "Billing",
];

/// The fixed status set: (id, name, closed). Ids follow Autotask's defaults where they exist (1 New, 5 Complete).
const STATUSES: [(u64, &str, bool); 5] = [
    (1, "New", false),
    (8, "In Progress", false),
    (7, "Waiting Customer", false),
    (5, "Completed", true),
    (13, "Closed", true),
];

const PRIORITIES: [&str; 5] = [
    "Priority 1 - Critical",
    "Priority 2 - High",
    "Priority 3 - Normal",
    "Priority 4 - Low",
    "Priority 5 - Planning",
];

const COMPANY_STEMS: [&str; 40] = [
    "Acme",
    "Northwind",
    "Contoso",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Oceanic",
    "Pied Piper",
    "Dunder",
    "Gringotts",
    "Monarch",
    "Sirius",
    "Blue Sun",
    "Aperture",
    "Black Mesa",
    "Massive Dynamic",
    "Prestige",
    "Virtucon",
    "Bluth",
    "Krusty",
    "Duff",
    "Nakatomi",
    "Weyland",
    "Zorg",
    "Ollivander",
    "Gekko",
    "Sterling",
    "Pawnee",
    "Rekall",
    "Veridian",
    "Yoyodyne",
    "Omni",
];
const COMPANY_SUFFIXES: [&str; 10] = [
    "Corp",
    "Industries",
    "Ltd",
    "LLC",
    "Holdings",
    "Group",
    "Partners",
    "Dental",
    "Legal",
    "Logistics",
];
pub(crate) const FIRST_NAMES: [&str; 20] = [
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
    "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Yolanda",
];
pub(crate) const LAST_NAMES: [&str; 12] = [
    "Smith", "Jones", "Garcia", "Nguyen", "Patel", "Kim", "Brown", "Lee", "Martin", "Clark",
    "Lopez", "Young",
];
const SERVERS: [&str; 5] = ["DC01", "FS01", "SQL02", "EXCH01", "WEB03"];
const APPS: [&str; 5] = ["Outlook", "Teams", "QuickBooks", "Chrome", "Excel"];
const SITES: [&str; 4] = ["Main Office", "Warehouse", "Branch 2", "Remote"];
const SUMMARIES: [&str; 16] = [
    "Printer offline at {site}",
    "Cannot connect to VPN",
    "Password reset for {user}",
    "{app} crashes on startup",
    "New hire onboarding: {user}",
    "Backup job failed on {server}",
    "Disk space low on {server}",
    "Firewall alert: blocked traffic from {site}",
    "User's laptop won't boot",
    "Email not syncing on mobile",
    "Install {app} for {user}",
    "Wi-Fi dropping at {site}",
    "Quote request: 5 new \"Pro\" laptops",
    "Low Priority: update {app}",
    "Server {server} unreachable",
    "Monthly patching - {site}",
];

fn statuses() -> Vec<Status> {
    STATUSES
        .iter()
        .map(|&(id, name, closed)| Status {
            id,
            name: name.to_string(),
            closed,
        })
        .collect()
}

fn priorities() -> Vec<Priority> {
    PRIORITIES
        .iter()
        .enumerate()
        .map(|(i, name)| Priority {
            id: i as u64 + 1,
            name: name.to_string(),
        })
        .collect()
}

fn gen_boards(rng: &mut StdRng) -> Vec<Board> {
    let n = rng.gen_range(5..=8);
    let mut id = 0;
    BOARD_NAMES[..n]
        .iter()
        .map(|name| {
            id += rng.gen_range(1..=3);
            Board {
                id,
                name: name.to_string(),
            }
        })
        .collect()
}

fn gen_companies(rng: &mut StdRng) -> Vec<Company> {
    let n = rng.gen_range(MIN_COMPANIES..=40);
    let mut stems = COMPANY_STEMS.to_vec();
    stems.shuffle(rng);
    let mut id = 100;
    let mut out: Vec<Company> = stems[..n]
        .iter()
        .map(|stem| {
            id += rng.gen_range(1..=9);
            let suffix = COMPANY_SUFFIXES[rng.gen_range(0..COMPANY_SUFFIXES.len())];
            let name = format!("{stem} {suffix}");
            let identifier: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            Company {
                id,
                identifier,
                name,
            }
        })
        .collect();
    out.sort_by_key(|c| c.id);
    out
}

fn gen_members(rng: &mut StdRng) -> Vec<Member> {
    let n = rng.gen_range(8..=15);
    let mut id = 150;
    let mut out: Vec<Member> = Vec::with_capacity(n);
    while out.len() < n {
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
        let base = format!("{}{}", &first[..1], last).to_lowercase();
        let mut identifier = base.clone();
        let mut k = 2;
        while out.iter().any(|m| m.identifier == identifier) {
            identifier = format!("{base}{k}");
            k += 1;
        }
        id += rng.gen_range(1..=4);
        out.push(Member {
            id,
            identifier,
            name: format!("{first} {last}"),
        });
    }
    out
}

/// Picks an index with the given relative weights.
pub(crate) fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

fn summary(rng: &mut StdRng) -> String {
    let template = SUMMARIES[rng.gen_range(0..SUMMARIES.len())];
    let user = format!(
        "{} {}",
        FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())],
        LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())]
    );
    template
        .replace("{site}", SITES[rng.gen_range(0..SITES.len())])
        .replace("{server}", SERVERS[rng.gen_range(0..SERVERS.len())])
        .replace("{app}", APPS[rng.gen_range(0..APPS.len())])
        .replace("{user}", &user)
}

pub(crate) fn ts(second: i64) -> Timestamp {
    // All seconds used here lie well inside jiff's range.
    Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Whose the tickets are: the companies, and each one's chosen number of tickets (by index),
/// or `None` for the skewed weights.
struct Owners<'a> {
    companies: &'a [Company],
    counts: Option<&'a [usize]>,
}

fn gen_tickets(
    rng: &mut StdRng,
    n: usize,
    boards: &[Board],
    statuses: &[Status],
    priorities: &[Priority],
    owners: Owners<'_>,
    members: &[Member],
) -> Vec<Ticket> {
    let companies = owners.companies;
    // Entry times ascend with ids, as they do on a real PSA.
    let mut entered: Vec<i64> = (0..n)
        .map(|_| rng.gen_range(SPAN_START..SPAN_END))
        .collect();
    entered.sort_unstable();

    // Skewed weights so that filters have uneven selectivity.
    let board_weights: Vec<u32> = (0..boards.len())
        .map(|i| 8u32.saturating_sub(i as u32))
        .collect();
    let company_weights: Vec<u32> = (0..companies.len()).map(|i| 1 + (i as u32 % 5)).collect();
    let priority_weights = [1, 3, 8, 4, 2];
    let recent_cutoff = SPAN_END - 60 * 86_400;
    // Chosen counts: each ticket's company index, shuffled (drawn after the entry times, so
    // the weighted path's draws are unchanged).
    let assigned: Option<Vec<usize>> = owners.counts.map(|counts| {
        let mut a: Vec<usize> = counts
            .iter()
            .enumerate()
            .flat_map(|(c, &k)| std::iter::repeat_n(c % companies.len().max(1), k))
            .collect();
        a.shuffle(rng);
        a
    });

    let mut id = 0u64;
    let mut day_seq: (String, u32) = (String::new(), 0);
    let mut out = Vec::with_capacity(n);
    for (k, &entered_s) in entered.iter().enumerate() {
        id += rng.gen_range(1..=5);
        let date_entered = ts(entered_s);
        let age_bias = if entered_s < recent_cutoff { 80 } else { 30 };
        let closed = rng.gen_range(0..100) < age_bias;
        let status = if closed {
            if rng.gen_bool(0.6) {
                &statuses[3]
            } else {
                &statuses[4]
            }
        } else {
            &statuses[weighted(rng, &[4, 3, 2])]
        };
        let updated_after = match rng.gen_range(0..10) {
            0 => 0,
            1..=6 => rng.gen_range(60..3 * 86_400),
            _ => rng.gen_range(3 * 86_400..45 * 86_400),
        };
        let updated_s = (entered_s + updated_after).min(SPAN_END);
        let last_updated = ts(updated_s);
        let closed_date = status.closed.then_some(last_updated);
        let owner = if rng.gen_range(0..100) < 12 {
            None
        } else {
            Some(members[rng.gen_range(0..members.len())].clone())
        };
        let region = if rng.gen_range(0..100) < 25 {
            None
        } else {
            Some(REGIONS[rng.gen_range(0..REGIONS.len())].to_string())
        };
        let day = date_entered.strftime("%Y%m%d").to_string();
        if day_seq.0 == day {
            day_seq.1 += 1;
        } else {
            day_seq = (day.clone(), 1);
        }
        out.push(Ticket {
            id,
            ticket_number: format!("T{day}.{:04}", day_seq.1),
            summary: summary(rng),
            board: boards[weighted(rng, &board_weights)].clone(),
            status: status.clone(),
            priority: priorities[weighted(rng, &priority_weights)].clone(),
            company: match &assigned {
                Some(a) => companies[a[k]].clone(),
                None => companies[weighted(rng, &company_weights)].clone(),
            },
            owner,
            date_entered,
            last_updated,
            closed_date,
            region,
            sla_met: rng.gen_bool(0.8),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_well_formed() {
        let a = Dataset::generate(7, 500);
        let b = Dataset::generate(7, 500);
        assert_eq!(a.tickets, b.tickets);
        assert_ne!(a.tickets, Dataset::generate(8, 500).tickets);
        assert!((5..=8).contains(&a.boards.len()));
        assert!((20..=40).contains(&a.companies.len()));
        let mut prev = 0;
        for t in &a.tickets {
            assert!(t.id > prev && t.id - prev <= 5);
            prev = t.id;
            assert!(t.last_updated >= t.date_entered);
            assert_eq!(t.closed_date.is_some(), t.closed_flag());
        }
        let cw = cw_json(&a.tickets[0]);
        assert!(cw["_info"]["dateEntered"]
            .as_str()
            .is_some_and(|s| s.len() == 20));
        let at = at_json(&a.tickets[0]);
        assert!(at["createDate"]
            .as_str()
            .is_some_and(|s| s.ends_with(".000Z")));
        let halo = halo_json(&a.tickets[0]);
        assert!(halo["dateoccurred"].as_str().is_some_and(|s| s.len() == 19));
    }

    /// Each company's count of tickets per `company_tickets`, spread over the ids;
    /// deterministic; the weighted data sets unchanged; and the reset's bridge.
    #[test]
    fn chosen_ticket_counts_per_company() {
        let counts = [300, 5, 0, 7];
        let d = Dataset::generate_by_company(42, &counts, false);
        assert_eq!(d.tickets.len(), 312);
        for (i, c) in d.companies.iter().enumerate() {
            let have = d.tickets.iter().filter(|t| t.company.id == c.id).count();
            assert_eq!(have, counts.get(i).copied().unwrap_or(0), "company {i}");
        }
        // Spread, not in runs: company 0's tickets are not all first.
        let small = d.companies[1].id;
        let last_small = d.tickets.iter().rposition(|t| t.company.id == small);
        assert!(last_small.is_some_and(|p| p > 150), "{last_small:?}");
        assert_eq!(
            d.tickets,
            Dataset::generate_by_company(42, &counts, true).tickets
        );
        // Everything but the companies is drawn as before: the same entry times.
        let weighted = Dataset::generate(42, 312);
        assert!(d
            .tickets
            .iter()
            .zip(&weighted.tickets)
            .all(|(a, b)| a.date_entered == b.date_entered));
        assert_eq!(Dataset::generate(42, 312).tickets, weighted.tickets);
        // More counts than companies: the extra ones wrap around, none is lost.
        let many = vec![1; d.companies.len() + 2];
        let w = Dataset::generate_by_company(42, &many, false);
        assert_eq!(w.tickets.len(), many.len());
        let first = w.companies[0].id;
        assert_eq!(
            w.tickets.iter().filter(|t| t.company.id == first).count(),
            2
        );
    }
}
