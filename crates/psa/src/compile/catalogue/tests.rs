//! The compile tables' lookups and the validation they drive.

use neo_domain::backfill::EntityType;
use neo_domain::filter::ValueKind;

use super::*;

#[test]
fn lookups() {
    let cw = catalogue(Psa::ConnectWise, EntityType::Ticket).unwrap();
    assert_eq!(cw.native_field("board/name"), Some(ValueKind::String));
    assert_eq!(
        cw.native_field("_info/lastUpdated"),
        Some(ValueKind::DateTime)
    );
    assert_eq!(cw.native_field("Board/Name"), None);
    let at = catalogue(Psa::Autotask, EntityType::Ticket).unwrap();
    assert_eq!(at.native_field("queueID"), Some(ValueKind::Number));
    assert_eq!(at.native_field("QUEUEID"), Some(ValueKind::Number));
    assert_eq!(at.native_field("creatorType"), None);
    let halo = catalogue(Psa::Halo, EntityType::Ticket).unwrap();
    assert_eq!(halo.native_field("hasbeenclosed"), Some(ValueKind::Bool));
    let company = catalogue(Psa::ConnectWise, EntityType::Company).unwrap();
    assert_eq!(
        company.native_field("territory/name"),
        Some(ValueKind::String)
    );
    assert!(catalogue(Psa::ConnectWise, EntityType::Task).is_none());
    assert!(catalogue(Psa::Halo, EntityType::Note).is_none());
}

#[test]
fn validation_uses_the_catalogue() {
    use neo_domain::filter::parse;
    use serde_json::json;
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let spec = |field: &str, value: serde_json::Value| {
        json!({"conditions": {"combinator": "and", "rules": [
            {"field": field, "operator": "=", "value": value}]}})
    };
    let cw = catalogue(Psa::ConnectWise, EntityType::Ticket);
    assert!(parse(&spec("board/name", json!("Help Desk")), now, cw).is_ok());
    let err = parse(&spec("board/name", json!(3)), now, cw).unwrap_err();
    assert_eq!(err.field, "filter_spec.conditions.rules[0].value");
    let err = parse(&spec("board/nam", json!("x")), now, cw).unwrap_err();
    assert_eq!(err.field, "filter_spec.conditions.rules[0].field");
    let at = catalogue(Psa::Autotask, EntityType::Ticket);
    assert!(parse(
        &spec("createdate", json!({"$datetime": "2026-01-01T00:00:00Z"})),
        now,
        at
    )
    .is_ok());
    assert!(parse(&spec("createDate", json!("2026-01-01")), now, at).is_err());
}

/// Every alias, title and number of a table names one of its own fields (with the kind the
/// alias needs), and no field is listed twice: a table cannot point the compiler at a field
/// the PSA would refuse.
#[test]
fn every_table_is_self_consistent() {
    use neo_domain::filter::Alias;
    for psa in Psa::ALL {
        for entity in EntityType::ALL {
            let Some(t) = table(psa, *entity) else {
                continue;
            };
            let here = format!("{} {entity}", psa.as_str());
            assert_eq!((t.psa, t.entity), (psa, *entity), "{here}");
            let mut names: Vec<String> = t.fields().map(|(f, _)| f.to_lowercase()).collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n, "{here}: a field listed twice");
            assert!(t.native_field("id") == Some(ValueKind::Number), "{here}");
            for f in t.title.iter().chain(t.number.iter()) {
                assert_eq!(t.native_field(f), Some(ValueKind::String), "{here}: {f}");
            }
            for (alias, _) in ALIASES.into_iter().skip(1) {
                let Some(target) = t.target(alias) else {
                    continue;
                };
                let kinds: &[ValueKind] = match alias {
                    Alias::Created | Alias::Updated => &[ValueKind::DateTime],
                    Alias::Closed => &[ValueKind::Bool, ValueKind::Number],
                    _ => &[ValueKind::Number],
                };
                if let Some(id) = target.id {
                    let k = t.native_field(id);
                    assert!(
                        k.is_some_and(|k| kinds.contains(&k)),
                        "{here}: {alias:?} {id}"
                    );
                }
                if let Some(name) = target.name {
                    let k = t.native_field(name);
                    let ok = match alias {
                        Alias::Created | Alias::Updated | Alias::Closed => k.is_some(),
                        _ => k == Some(ValueKind::String),
                    };
                    assert!(ok, "{here}: {alias:?} {name}");
                }
            }
        }
    }
}

#[test]
fn an_alias_without_meaning_is_refused_by_name() {
    use neo_domain::filter::parse;
    use serde_json::json;
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let spec = json!({"conditions": {"combinator": "and", "rules": [
        {"field": "$closed", "operator": "=", "value": true}]}});
    let contacts = catalogue(Psa::ConnectWise, EntityType::Contact);
    let err = parse(&spec, now, contacts).unwrap_err();
    assert_eq!(err.field, "filter_spec.conditions.rules[0].field");
    assert_eq!(
        err.message,
        "$closed means nothing on contact entities of connectwise (their aliases: $id, $created, $updated, $company)"
    );
    let projects = catalogue(Psa::ConnectWise, EntityType::Project);
    assert!(parse(&spec, now, projects).is_ok());
}

/// One table as `docs/entity-types.md` lists it: the endpoint, the aliases with the paths they
/// stand for, and the fields with their kinds.
fn markdown(t: &Catalogue, endpoint: &str) -> String {
    let kind = |k: ValueKind| match k {
        ValueKind::Number => "number",
        ValueKind::String => "text",
        ValueKind::Bool => "boolean",
        ValueKind::DateTime => "datetime",
        _ => "any",
    };
    let aliases: Vec<String> = t
        .aliases()
        .map(|a| {
            let (id, name) = t.alias_paths(a).expect("an alias of the table");
            let paths: Vec<String> = match (id, name) {
                (Some(i), Some(n)) if i == n => vec![format!("`{i}`")],
                (i, n) => i.into_iter().chain(n).map(|p| format!("`{p}`")).collect(),
            };
            format!("`{a}` → {}", paths.join(" / "))
        })
        .collect();
    let fields: Vec<String> = t
        .fields()
        .map(|(f, k)| format!("`{f}` {}", kind(k)))
        .collect();
    format!(
        "#### {} `{}` (`{endpoint}`)\n\n- aliases: {}\n- fields: {}\n",
        t.psa.label(),
        t.entity,
        aliases.join(", "),
        fields.join(", ")
    )
}

/// `docs/entity-types.md` lists every compile table as it is: a table cannot gain or lose a
/// field or an alias without the documentation saying so.
#[test]
fn the_documented_fields_are_the_tables() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/entity-types.md")).unwrap();
    let mut want = String::new();
    for e in EntityType::ALL {
        for psa in Psa::ALL {
            let (Some(t), Some(endpoint)) =
                (table(psa, *e), crate::support::pair(psa, *e).endpoint)
            else {
                continue;
            };
            want.push_str(&markdown(t, endpoint));
            want.push('\n');
        }
    }
    assert!(
        doc.contains(want.trim_end()),
        "docs/entity-types.md must list the compile tables as:\n{want}"
    );
}
