//! The rule builder's words for the tenant's PSA, rendered into the wizard page. The builder
//! runs in the browser, but what a filter may name on an entity is the compile tables' to say
//! ([`neo_psa::compile::catalogue`]) and what cannot be filtered at all is the support
//! matrix's ([`neo_psa::support`]); the page carries both as JSON so that the script offers
//! exactly the fields the API's validation accepts, and no second list can drift from them.
//!
//! The JSON sits in a `<script type="application/json">` block: a data block is never
//! executed, so the dashboard's Content-Security-Policy (no inline script) allows it. Without
//! an integration there is no PSA to ask: the vocabulary is empty and the builder keeps its
//! PSA-neutral ticket aliases.

use neo_domain::backfill::EntityType;
use neo_domain::filter::ValueKind;
use neo_psa::support::{self, Level};
use neo_psa::Psa;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the rule builder may offer on the tenant's PSA.
#[derive(Debug, Serialize)]
pub(super) struct Vocabulary {
    /// `connectwise`, `autotask` or `halopsa`; `None` without an integration.
    pub(super) psa: Option<&'static str>,
    /// "ConnectWise": how the page names the PSA.
    pub(super) psa_label: Option<&'static str>,
    /// Every entity type (but `none`), by its wire name.
    pub(super) entities: BTreeMap<&'static str, EntityWords>,
}

/// One entity type on the tenant's PSA.
#[derive(Debug, Serialize)]
pub(super) struct EntityWords {
    /// Whether a rule group may target it (the matrix says `filters`).
    pub(super) filters: bool,
    /// Why not, in the matrix's words (empty where filters work).
    pub(super) note: &'static str,
    /// The aliases that mean something on it, `$id` first.
    pub(super) aliases: Vec<&'static str>,
    /// Its native fields: `[path, kind]`, in the table's order.
    pub(super) fields: Vec<(&'static str, &'static str)>,
}

/// How the page's script names a value kind (it picks the value's hint and parsing by it).
fn kind(k: ValueKind) -> &'static str {
    match k {
        ValueKind::Bool => "bool",
        ValueKind::Number => "number",
        ValueKind::String => "string",
        ValueKind::DateTime => "datetime",
        ValueKind::NameOrId => "name_or_id",
        ValueKind::Any => "any",
    }
}

impl Vocabulary {
    /// The vocabulary of `psa` (the tenant integration's `psa`, if any and known).
    pub(super) fn of(psa: Option<Psa>) -> Self {
        let Some(psa) = psa else {
            return Vocabulary {
                psa: None,
                psa_label: None,
                entities: BTreeMap::new(),
            };
        };
        let entities = EntityType::ALL
            .iter()
            .filter(|e| e.is_backfillable())
            .map(|e| {
                let table = neo_psa::compile::table(psa, *e);
                let words = EntityWords {
                    filters: table.is_some(),
                    note: support::pair(psa, *e).note,
                    aliases: table.map(|t| t.aliases().collect()).unwrap_or_default(),
                    fields: table
                        .map(|t| t.fields().map(|(p, k)| (p, kind(k))).collect())
                        .unwrap_or_default(),
                };
                (e.as_str(), words)
            })
            .collect();
        Vocabulary {
            psa: Some(psa.as_str()),
            psa_label: Some(psa.label()),
            entities,
        }
    }

    /// The JSON for the page's data block, safe inside `<script>`: `<`, `>` and `&` are
    /// written as `\u` escapes, so no `</script>` can end the block early.
    pub(super) fn json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| "{}".into())
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }
}

/// What step 1 says beside a workflow whose entity type takes no filter on `psa` ("ids only
/// on ConnectWise: tasks are listed per project ticket"); `None` where filters work.
pub(super) fn ids_only_mark(psa: Psa, entity: EntityType) -> Option<String> {
    let cell = support::pair(psa, entity);
    let label = psa.label();
    match cell.level {
        Level::Filters => None,
        Level::NotBackfillable => Some(format!("not backfillable: {}", cell.note)),
        Level::IdsOnly | Level::Absent if cell.note.is_empty() => {
            Some(format!("ids only on {label}"))
        }
        Level::IdsOnly | Level::Absent => Some(format!("ids only on {label}: {}", cell.note)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_is_the_compile_tables_and_the_matrix() {
        let v = Vocabulary::of(Some(Psa::ConnectWise));
        let company = &v.entities["company"];
        assert!(company.filters);
        assert!(company.aliases.contains(&"$company"));
        assert!(company.fields.contains(&("territory/name", "string")));
        let contact = &v.entities["contact"];
        assert!(!contact.aliases.contains(&"$closed"));
        assert_eq!(contact.aliases[0], "$id");
        let task = &v.entities["task"];
        assert!(!task.filters && task.fields.is_empty() && !task.note.is_empty());
        assert!(!v.entities.contains_key("none"));
        for (e, w) in &v.entities {
            let e = EntityType::parse(e).unwrap();
            assert_eq!(w.filters, support::filterable(Psa::ConnectWise, e), "{e}");
        }
        assert!(Vocabulary::of(None).entities.is_empty());
    }

    /// The page's script starts a rule group with `$closed = false` where `$closed` applies,
    /// else `$updated >= P30D`, else `$id notNull`: valid on every entity of every PSA.
    #[test]
    fn the_builders_default_rule_is_valid_on_every_filterable_entity() {
        let now = "2026-04-01T00:00:00Z".parse().unwrap();
        for psa in Psa::ALL {
            for (e, w) in Vocabulary::of(Some(psa)).entities {
                if !w.filters {
                    continue;
                }
                let rule = if w.aliases.contains(&"$closed") {
                    serde_json::json!({"field": "$closed", "operator": "=", "value": false})
                } else if w.aliases.contains(&"$updated") {
                    serde_json::json!({"field": "$updated", "operator": ">=", "value": {"$ago": "P30D"}})
                } else {
                    serde_json::json!({"field": "$id", "operator": "notNull"})
                };
                let spec =
                    serde_json::json!({"conditions": {"combinator": "and", "rules": [rule]}});
                let entity = EntityType::parse(e).unwrap();
                let catalogue = neo_psa::compile::catalogue(psa, entity);
                if let Err(err) = neo_domain::filter::parse(&spec, now, catalogue) {
                    panic!("{} {e}: {spec} is refused: {err:?}", psa.as_str());
                }
            }
        }
    }

    #[test]
    fn the_json_cannot_end_its_script_block() {
        let v = Vocabulary::of(Some(Psa::Halo));
        let j = v.json();
        assert!(!j.contains('<') && !j.contains('>'));
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["psa_label"], "HaloPSA");
    }

    #[test]
    fn step_one_says_why_a_type_takes_ids_only() {
        assert_eq!(
            ids_only_mark(Psa::ConnectWise, EntityType::Task).as_deref(),
            Some("ids only on ConnectWise: tasks are listed per project ticket")
        );
        assert_eq!(ids_only_mark(Psa::ConnectWise, EntityType::Company), None);
    }
}
