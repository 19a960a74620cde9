//! Every view against its compile table's fields, the relations between the records, and the
//! generator's determinism.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::{find, resources, Kind};
use crate::data::{Dataset, View};
use crate::eval::{parse_datetime, value_at};

const VIEWS: [(View, &str); 3] = [
    (View::ConnectWise, "connectwise"),
    (View::Autotask, "autotask"),
    (View::Halo, "halo"),
];

/// Fields that hold one value by nature: `/service/tickets` lists service tickets only.
const CONSTANT: [(&str, &str, &str); 1] = [("connectwise", "/service/tickets", "recordType")];

fn data() -> &'static Dataset {
    static D: std::sync::OnceLock<Dataset> = std::sync::OnceLock::new();
    D.get_or_init(|| Dataset::generate(42, 800))
}

fn rows(psa: &str, endpoint: &str) -> Vec<Value> {
    data()
        .resource_rows(psa, endpoint)
        .unwrap_or_else(|| panic!("{psa} {endpoint} is served"))
}

fn ids(rows: &[Value], path: &[&str]) -> HashSet<u64> {
    rows.iter()
        .filter_map(|r| value_at(r, path).as_u64())
        .collect()
}

/// The row path of a field: ConnectWise's `dateEntered` is `_info/dateEntered`.
fn path_of(view: View, field: &str) -> Vec<&str> {
    match (view, field) {
        (View::ConnectWise, "dateEntered" | "lastUpdated") => vec!["_info", field],
        _ => field.split('/').collect(),
    }
}

/// Whether `v` is a datetime in the PSA's own spelling.
fn is_wire_datetime(view: View, v: &str) -> bool {
    let shape = match view {
        View::ConnectWise => v.len() == 20 && v.ends_with('Z'),
        View::Autotask => v.len() == 24 && v.ends_with(".000Z"),
        View::Halo => v.len() == 19,
    };
    shape && parse_datetime(v).is_some()
}

#[test]
fn every_field_of_every_resource_is_in_its_rows_with_its_kind() {
    let mut narrow = Vec::new();
    let seeds = std::env::var("SIM_SEEDS").unwrap_or_else(|_| "42 7 1234".into());
    for seed in seeds
        .split_whitespace()
        .map(|s| s.parse::<u64>().expect("a seed"))
    {
        let data = Dataset::generate(seed, 300);
        check_fields(&data, seed, &mut narrow);
    }
    assert!(narrow.is_empty(), "{}", narrow.join("\n"));
}

fn check_fields(data: &Dataset, seed: u64, narrow: &mut Vec<String>) {
    for (view, psa) in VIEWS {
        for r in resources(view) {
            let rows = data.resource_rows(psa, r.endpoint).expect("served");
            let here = format!("seed {seed}: {psa} {}", r.endpoint);
            assert!(rows.len() >= 5, "{here}: {} rows", rows.len());
            let ids: Vec<u64> = rows.iter().map(|r| r["id"].as_u64().expect("id")).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{here}: ids ascend");
            for &(field, kind) in r.fields {
                let path = path_of(view, field);
                let mut distinct = BTreeSet::new();
                for row in &rows {
                    let obj = if path.len() == 2 { &row[path[0]] } else { row };
                    let present = obj.is_null() || obj.get(path[path.len() - 1]).is_some();
                    assert!(present, "{here}: {field} missing in {row}");
                    let v = value_at(row, &path);
                    let ok = match (kind, v) {
                        (_, Value::Null) => true,
                        (Kind::Number, v) => v.is_number(),
                        (Kind::Text, v) => v.is_string(),
                        (Kind::Bool, v) => v.is_boolean(),
                        (Kind::DateTime, Value::String(s)) => is_wire_datetime(view, s),
                        (Kind::DateTime, _) => false,
                    };
                    assert!(ok, "{here}: {field} = {v} is not a {kind:?}");
                    distinct.insert(v.to_string());
                }
                // Filters on every field must be able to select a real subset.
                let constant = CONSTANT.contains(&(psa, r.endpoint, field));
                if !constant && (distinct.len() < 2 || distinct.iter().all(|v| v == "null")) {
                    narrow.push(format!("{here}: {field} takes only {distinct:?}"));
                }
            }
        }
    }
}

#[test]
fn nullable_fields_are_sometimes_null_and_mostly_not() {
    for (psa, endpoint, field) in [
        ("connectwise", "/company/configurations", "tagNumber"),
        ("connectwise", "/project/projects", "actualEnd"),
        ("connectwise", "/company/contacts", "title"),
        ("autotask", "Tasks", "completedDateTime"),
        ("autotask", "Companies", "ownerResourceID"),
        ("halo", "/users", "jobtitle"),
    ] {
        let rows = rows(psa, endpoint);
        let nulls = rows.iter().filter(|r| r[field].is_null()).count();
        assert!(
            nulls > 0 && nulls < rows.len(),
            "{psa} {endpoint} {field}: {nulls} nulls of {}",
            rows.len()
        );
    }
}

#[test]
fn records_refer_to_records_that_exist() {
    let companies = ids(&rows("connectwise", "/company/companies"), &["id"]);
    let ticket_companies: HashSet<u64> = data().tickets.iter().map(|t| t.company.id).collect();
    assert!(ticket_companies.is_subset(&companies), "ticket companies");
    for endpoint in [
        "/company/contacts",
        "/company/configurations",
        "/project/projects",
        "/project/tickets",
        "/sales/opportunities",
        "/finance/agreements",
        "/time/entries",
    ] {
        let refs = ids(&rows("connectwise", endpoint), &["company", "id"]);
        assert!(refs.is_subset(&companies), "{endpoint}: company");
    }
    let locations = ids(&rows("autotask", "CompanyLocations"), &["id"]);
    for (endpoint, field) in [
        ("Contacts", "companyLocationID"),
        ("ServiceCalls", "companyLocationID"),
    ] {
        let refs = ids(&rows("autotask", endpoint), &[field]);
        assert!(refs.is_subset(&locations), "{endpoint}: location");
    }
    let company_of_location: std::collections::HashMap<u64, u64> = rows("halo", "/site")
        .iter()
        .map(|s| (s["id"].as_u64().unwrap(), s["client_id"].as_u64().unwrap()))
        .collect();
    for user in rows("halo", "/users") {
        if let Some(site) = user["site_id"].as_u64() {
            assert_eq!(
                company_of_location[&site],
                user["client_id"].as_u64().unwrap()
            );
        }
    }
    // Project work belongs to a project of the same company.
    let projects: std::collections::HashMap<u64, u64> = rows("connectwise", "/project/projects")
        .iter()
        .map(|p| {
            (
                p["id"].as_u64().unwrap(),
                p["company"]["id"].as_u64().unwrap(),
            )
        })
        .collect();
    for t in rows("connectwise", "/project/tickets") {
        let project = t["project"]["id"].as_u64().expect("a project");
        assert_eq!(projects.get(&project), t["company"]["id"].as_u64().as_ref());
    }
    let at_projects = ids(&rows("autotask", "Projects"), &["id"]);
    assert!(ids(&rows("autotask", "Tasks"), &["projectID"]).is_subset(&at_projects));
    // Time and notes are on tickets (or tasks), by members.
    let tickets: HashSet<u64> = data().tickets.iter().map(|t| t.id).collect();
    let tasks = ids(&rows("autotask", "Tasks"), &["id"]);
    let members = ids(&rows("autotask", "Resources"), &["id"]);
    let entries = rows("autotask", "TimeEntries");
    assert!(ids(&entries, &["ticketID"]).is_subset(&tickets));
    assert!(ids(&entries, &["taskID"]).is_subset(&tasks));
    assert!(ids(&entries, &["resourceID"]).is_subset(&members));
    assert!(entries
        .iter()
        .all(|e| e["ticketID"].is_null() != e["taskID"].is_null()));
    assert!(ids(&rows("autotask", "TicketNotes"), &["ticketID"]).is_subset(&tickets));
    let contracts = ids(&rows("autotask", "Contracts"), &["id"]);
    assert!(ids(&rows("autotask", "ContractServices"), &["contractID"]).is_subset(&contracts));
    for t in rows("connectwise", "/time/entries") {
        if t["chargeToType"] == "ServiceTicket" {
            let id = t["ticket"]["id"].as_u64().unwrap();
            let ticket = data().ticket(id).expect("the ticket exists");
            assert_eq!(t["company"]["id"].as_u64(), Some(ticket.company.id));
        }
    }
}

#[test]
fn one_record_is_the_same_object_in_every_view() {
    let same_ids = |a: (&str, &str), b: (&str, &str)| {
        let (x, y) = (rows(a.0, a.1), rows(b.0, b.1));
        assert_eq!(ids(&x, &["id"]), ids(&y, &["id"]), "{a:?} vs {b:?}");
    };
    same_ids(
        ("connectwise", "/company/companies"),
        ("autotask", "Companies"),
    );
    same_ids(("connectwise", "/company/companies"), ("halo", "/client"));
    same_ids(("connectwise", "/project/tickets"), ("autotask", "Tasks"));
    same_ids(
        ("connectwise", "/schedule/entries"),
        ("autotask", "ServiceCalls"),
    );
    same_ids(("autotask", "Appointments"), ("halo", "/appointment"));
    same_ids(("connectwise", "/system/members"), ("halo", "/agent"));
    let cw = rows("connectwise", "/company/companies");
    let halo = rows("halo", "/client");
    for (a, b) in cw.iter().zip(&halo) {
        assert_eq!(a["name"], b["name"]);
    }
    let companies = &data().companies;
    assert_eq!(cw.len(), companies.len());
    assert!(cw
        .iter()
        .zip(companies)
        .all(|(r, c)| r["identifier"] == c.identifier.as_str()));
}

#[test]
fn sizes_follow_the_companies_not_the_tickets() {
    let n = data().companies.len();
    let count = |psa, endpoint| rows(psa, endpoint).len();
    assert!((3 * n..=6 * n).contains(&count("connectwise", "/company/contacts")));
    assert!((n..=3 * n).contains(&count("autotask", "CompanyLocations")));
    assert!((4 * n..=8 * n).contains(&count("halo", "/asset")));
    assert!((n..=3 * n).contains(&count("connectwise", "/project/projects")));
    assert_eq!(count("autotask", "Roles"), 8);
    assert_eq!(count("halo", "/team"), 6);
    assert_eq!(count("halo", "/item"), 40);
    assert_eq!(count("connectwise", "/schedule/entries"), 150);
    // The same seed gives the same records whatever the number of tickets, but for what
    // points at tickets.
    let small = Dataset::generate(42, 50);
    for (psa, endpoint) in [
        ("connectwise", "/company/contacts"),
        ("autotask", "Contracts"),
        ("halo", "/projects"),
    ] {
        assert_eq!(
            small.resource_rows(psa, endpoint),
            Some(rows(psa, endpoint))
        );
    }
    let other = Dataset::generate(43, 800);
    assert_ne!(
        other.resource_rows("connectwise", "/company/contacts"),
        Some(rows("connectwise", "/company/contacts"))
    );
    let none = Dataset::generate(42, 0);
    assert_eq!(
        none.resource_rows("autotask", "TicketNotes"),
        Some(Vec::new())
    );
    assert!(!none
        .resource_rows("autotask", "TimeEntries")
        .unwrap()
        .is_empty());
}

#[test]
fn lookups_by_endpoint() {
    assert_eq!(
        find(View::Autotask, "companies"),
        find(View::Autotask, "Companies")
    );
    assert!(find(View::ConnectWise, "/company/Companies").is_none());
    assert!(data().resource_rows("halopsa", "/agent").is_some());
    assert!(data().resource_rows("halo", "/actions").is_none());
    assert!(data().resource_rows("kaseya", "/tickets").is_none());
    let tickets = data()
        .resource_rows("connectwise", "/service/tickets")
        .unwrap();
    assert_eq!(tickets.len(), data().tickets.len());
    assert_eq!(tickets[0], crate::data::cw_json(&data().tickets[0]));
}

#[test]
fn tickets_refer_to_their_companys_records() {
    let by_id = |psa: &str, endpoint: &str| -> std::collections::HashMap<u64, Value> {
        rows(psa, endpoint)
            .into_iter()
            .map(|r| (r["id"].as_u64().expect("id"), r))
            .collect()
    };
    let contacts = by_id("connectwise", "/company/contacts");
    let agreements = by_id("connectwise", "/finance/agreements");
    let locations = by_id("autotask", "CompanyLocations");
    let (mut named, mut sited) = (0, 0);
    for t in rows("connectwise", "/service/tickets") {
        let company = &t["company"]["id"];
        if let Some(id) = t["contact"]["id"].as_u64() {
            let c = &contacts[&id];
            assert_eq!(&c["company"]["id"], company);
            let name = format!(
                "{} {}",
                c["firstName"].as_str().unwrap(),
                c["lastName"].as_str().unwrap()
            );
            assert_eq!(t["contact"]["name"], name.as_str());
            assert_eq!(t["contactName"], name.as_str());
            named += 1;
        }
        if let Some(id) = t["site"]["id"].as_u64() {
            assert_eq!(&locations[&id]["companyID"], company);
            assert_eq!(t["site"]["name"], locations[&id]["name"]);
            sited += 1;
        }
        if let Some(id) = t["agreement"]["id"].as_u64() {
            assert_eq!(t["agreement"]["name"], agreements[&id]["name"]);
            assert_eq!(&agreements[&id]["company"]["id"], company);
        }
    }
    assert!(named > 0 && sited > 0);
    let configurations = by_id("autotask", "ConfigurationItems");
    let projects = by_id("autotask", "Projects");
    let opportunities = by_id("autotask", "Opportunities");
    let roles = by_id("autotask", "Roles");
    for t in rows("autotask", "Tickets") {
        let company = &t["companyID"];
        for (field, records) in [
            ("configurationItemID", &configurations),
            ("projectID", &projects),
            ("opportunityID", &opportunities),
        ] {
            if let Some(id) = t[field].as_u64() {
                assert_eq!(&records[&id]["companyID"], company, "{field}");
            }
        }
        if let Some(role) = t["assignedResourceRoleID"].as_u64() {
            assert!(roles.contains_key(&role));
        }
    }
    let users = by_id("halo", "/users");
    for t in rows("halo", "/tickets") {
        if let Some(user) = t["user_id"].as_u64() {
            assert_eq!(users[&user]["client_id"], t["client_id"]);
        }
    }
}

#[test]
fn resources_number_their_records_apart() {
    let mut seen: std::collections::HashMap<u64, &str> = std::collections::HashMap::new();
    for r in resources(View::ConnectWise)
        .iter()
        .filter(|r| !r.is_tickets())
    {
        for row in rows("connectwise", r.endpoint) {
            let id = row["id"].as_u64().expect("id");
            if let Some(other) = seen.insert(id, r.endpoint) {
                // Members and companies keep the ids tickets have always given them.
                let pair = [other, r.endpoint];
                assert!(
                    pair.contains(&"/company/companies") && pair.contains(&"/system/members"),
                    "{id} is in {other} and {}",
                    r.endpoint
                );
            }
        }
    }
}
