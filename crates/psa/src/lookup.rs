//! Which ids of an explicit `entity_ids` list the PSA does not have (the preflight of an id
//! list, `POST /public-api/backfills/verify`).
//!
//! The ids are asked as `$id in (…)` rule groups of at most [`CHUNK`] ids, read page by page
//! with [`PsaClient::page`]: the lookup goes through the same compiler, guarded egress client,
//! retries, throttling and keyset paging as an enumeration, and adds no request shape of its
//! own. A PSA whose query language cannot express an id list is not asked (HaloPSA: no id
//! parameter, so the rule would run locally over every ticket): [`missing_ids`] answers `None`
//! and the caller says the ids were not checked. An id that is not a whole number as the PSA
//! writes it (`"not-a-ticket"`, `"007"`) cannot be a PSA id and is missing without asking.

use std::collections::HashSet;

use neo_domain::backfill::EntityType;
use neo_domain::filter::{self, FilterSpec, Group, MAX_LIST_VALUES};
use serde_json::json;

use crate::client::{Cursor, PsaClient};
use crate::compile;
use crate::http::PsaError;

/// Ids per `$id in (…)` query: the longest list a rule takes (Autotask's `in` limit as well).
pub const CHUNK: usize = MAX_LIST_VALUES;

/// The ids of `ids` the PSA has no `entity` for, in the order given; `None` when this PSA
/// cannot look ids up in its query language (nothing was asked).
pub async fn missing_ids(
    client: &PsaClient,
    entity: EntityType,
    ids: &[String],
) -> Result<Option<Vec<String>>, PsaError> {
    // Ids are looked up by the entity's query, which exists where its filters do.
    if !crate::support::filterable(client.psa(), entity) {
        return Ok(None);
    }
    let numeric: Vec<i64> = ids.iter().filter_map(|s| psa_id(s)).collect();
    let mut found = HashSet::new();
    for chunk in numeric.chunks(CHUNK) {
        let root = id_group(chunk);
        if !is_native(client, entity, &root)? {
            return Ok(None);
        }
        let mut after = Cursor::default();
        // Each page moves the keyset forward, so a chunk ends within chunk.len() + 1 pages.
        for _ in 0..=chunk.len() {
            let page = client.page(entity, &root, &after).await?;
            found.extend(page.rows.iter().map(|r| r.id));
            match page.next {
                Some(next) if !page.exhausted => after = next,
                _ => break,
            }
        }
    }
    Ok(Some(
        ids.iter()
            .filter(|s| psa_id(s).is_none_or(|n| !found.contains(&n)))
            .cloned()
            .collect(),
    ))
}

/// `s` as a PSA id: a whole number written as the PSA writes it (no sign, no leading zero).
fn psa_id(s: &str) -> Option<i64> {
    let n: i64 = s.parse().ok()?;
    (n > 0 && n.to_string() == s).then_some(n)
}

/// `$id in (ids)` as a validated rule group.
fn id_group(ids: &[i64]) -> Group {
    let spec = json!({"conditions": {"combinator": "and", "rules": [
        {"field": "$id", "operator": "in", "value": ids}]}});
    match filter::parse(&spec, jiff::Timestamp::UNIX_EPOCH, None) {
        Ok((FilterSpec::Query { root, .. }, _)) => root,
        other => unreachable!("an id list of at most {CHUNK} ids is a valid rule: {other:?}"),
    }
}

/// Whether the PSA's own query answers `root` exactly (no rule left to evaluate locally).
fn is_native(client: &PsaClient, entity: EntityType, root: &Group) -> Result<bool, PsaError> {
    let exact = match client {
        PsaClient::ConnectWise(_) => {
            compile::compile_connectwise(root, entity).map(|p| p.is_exact())
        }
        PsaClient::Autotask {
            complete_status_ids,
            ..
        } => compile::compile_autotask(root, entity, complete_status_ids).map(|p| p.is_exact()),
        PsaClient::Halo(_) => compile::compile_halo(root, entity).map(|p| p.is_exact()),
    };
    exact.map_err(|e| PsaError::Rejected(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::http::HttpPolicy;
    use crate::Psa;

    async fn client(sim: &psa_sim::SimHandle, psa: Psa) -> PsaClient {
        let (config, secrets) = sim.integration(psa.as_str());
        let policy = HttpPolicy {
            timeout: Duration::from_secs(10),
            ..Default::default()
        };
        let egress = neo_egress::Egress::new(neo_egress::EgressPolicy::new(true));
        PsaClient::connect(psa.as_str(), &config, &secrets, egress, policy)
            .await
            .expect("connects")
    }

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| (*s).to_owned()).collect()
    }
    #[test]
    fn only_whole_numbers_as_written_are_psa_ids() {
        assert_eq!(psa_id("1001"), Some(1001));
        for not in ["007", "-1", "0", "+5", "1e3", "not-a-ticket", " 1", ""] {
            assert_eq!(psa_id(not), None, "{not:?}");
        }
    }

    #[tokio::test]
    async fn connectwise_and_autotask_name_the_ids_they_lack() {
        let sim = psa_sim::spawn(psa_sim::SimConfig {
            tickets: 1200,
            ..Default::default()
        })
        .await
        .unwrap();
        // Ticket ids have gaps: ask for some that exist, some between them, and some that cannot.
        let have: Vec<String> = sim.tickets().iter().map(|t| t.id.to_string()).collect();
        let gap = (1..)
            .find(|i| !have.contains(&i.to_string()))
            .unwrap()
            .to_string();
        let (first, last) = (have[0].clone(), have[have.len() - 1].clone());
        for psa in [Psa::ConnectWise, Psa::Autotask] {
            let c = client(&sim, psa).await;
            let asked = vec![
                first.clone(),
                "999999999".into(),
                last.clone(),
                "not-a-ticket".into(),
                format!("0{first}"),
                gap.clone(),
            ];
            let missing = missing_ids(&c, EntityType::Ticket, &asked).await.unwrap();
            let want = vec![
                "999999999".to_owned(),
                "not-a-ticket".into(),
                format!("0{first}"),
                gap.clone(),
            ];
            assert_eq!(missing, Some(want), "{psa:?}");
            // More ids than one query takes: every chunk is asked.
            let mut many = have.clone();
            many.extend((1..=100).map(|i| format!("9{i:08}")));
            let missing = missing_ids(&c, EntityType::Ticket, &many).await.unwrap();
            let want: Vec<String> = (1..=100).map(|i| format!("9{i:08}")).collect();
            assert_eq!(missing, Some(want), "{psa:?}");
        }
    }

    #[tokio::test]
    async fn halo_is_not_asked() {
        let sim = psa_sim::spawn(psa_sim::SimConfig {
            tickets: 10,
            ..Default::default()
        })
        .await
        .unwrap();
        let c = client(&sim, Psa::Halo).await;
        let missing = missing_ids(&c, EntityType::Ticket, &strings(&["1", "99"]))
            .await
            .unwrap();
        assert_eq!(missing, None);
    }
}
