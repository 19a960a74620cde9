//! Every (entity type, PSA) pair the support matrix marks `filters`, against psa-sim over real
//! HTTP: random filter trees, built from each pair's own compile table and from values its
//! simulated rows hold, are counted and enumerated by the connector, and the ids must equal
//! the reference evaluation (`compile::matches`) over the simulator's rows of that resource —
//! no duplicate, no gap, so the pushed-down query and the residual together are exactly the
//! tree. The trees are sampled across the pairs (a fixed number per pair, a fixed seed per
//! pair, so a failure names its tree and repeats).

mod common;

use std::collections::HashSet;

use common::connect;

use neo_domain::backfill::EntityType;
use neo_domain::filter::{self, FilterSpec, Group, ValueKind};
use neo_psa::client::{Cursor, PsaClient};
use neo_psa::compile::{self, eval, Catalogue};
use neo_psa::support::{self, Level};
use neo_psa::Psa;
use psa_sim::{SimConfig, SimHandle};
use serde_json::{json, Value};

/// Random trees per pair (plus one fixed tree).
const TREES_PER_PAIR: u64 = 8;

async fn sim() -> SimHandle {
    let sim = psa_sim::spawn(SimConfig {
        tickets: 600,
        ..Default::default()
    })
    .await
    .expect("simulator starts");
    let mut limits = sim.limits();
    limits.cw_rate_limit = None;
    limits.halo_rate_limit = None;
    sim.set_limits(limits);
    sim
}

/// A deterministic generator (SplitMix64): a failing seed repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Random rule groups over one pair's fields and aliases, with values its rows hold.
struct TreeGen<'a> {
    cat: &'static Catalogue,
    rows: &'a [Value],
    rng: Rng,
}

impl TreeGen<'_> {
    /// The non-null values of `path` in the rows.
    fn observed(&self, path: &str) -> Vec<&Value> {
        self.rows
            .iter()
            .filter_map(|r| eval::field(r, self.cat.psa(), path))
            .filter(|v| !v.is_null())
            .collect()
    }

    fn group(&mut self, depth: u32) -> Value {
        let n = 1 + self.rng.below(3);
        let rules: Vec<Value> = (0..n)
            .map(|_| {
                if depth < 2 && self.rng.chance(25) {
                    self.group(depth + 1)
                } else {
                    self.rule()
                }
            })
            .collect();
        let combinator = if self.rng.chance(35) { "or" } else { "and" };
        json!({"combinator": combinator, "rules": rules})
    }

    fn rule(&mut self) -> Value {
        let aliases: Vec<&str> = self.cat.aliases().collect();
        if self.rng.chance(35) {
            let alias = *self.rng.pick(&aliases);
            let (id, name) = self.cat.alias_paths(alias).expect("an alias of the table");
            let kind = match alias {
                "$id" => ValueKind::Number,
                "$created" | "$updated" => ValueKind::DateTime,
                "$closed" => ValueKind::Bool,
                // A reference: its id form or its name form.
                _ => match (id, name) {
                    (Some(_), Some(_)) if self.rng.chance(50) => ValueKind::String,
                    (Some(_), _) => ValueKind::Number,
                    _ => ValueKind::String,
                },
            };
            let path = match kind {
                ValueKind::String => name.or(id),
                _ => id.or(name),
            }
            .expect("a target path");
            let reference = !matches!(alias, "$id" | "$created" | "$updated" | "$closed");
            return self.comparison(alias, path, kind, reference);
        }
        let fields: Vec<(&str, ValueKind)> = self.cat.fields().collect();
        let (path, kind) = *self.rng.pick(&fields);
        self.comparison(path, path, kind, false)
    }

    /// A rule on `field` (as written in the filter) whose values come from `path`'s.
    fn comparison(&mut self, field: &str, path: &str, kind: ValueKind, reference: bool) -> Value {
        let observed: Vec<Value> = self.observed(path).into_iter().cloned().collect();
        let rule = |op: &str, value: Option<Value>| match value {
            Some(v) => json!({"field": field, "operator": op, "value": v}),
            None => json!({"field": field, "operator": op}),
        };
        if observed.is_empty() || self.rng.chance(8) {
            let op = if self.rng.chance(50) {
                "null"
            } else {
                "notNull"
            };
            return rule(op, None);
        }
        let one = |g: &mut Self| g.rng.pick(&observed).clone();
        let some = |g: &mut Self| -> Value {
            let n = 1 + g.rng.below(3);
            Value::Array((0..n).map(|_| g.rng.pick(&observed).clone()).collect())
        };
        match kind {
            ValueKind::Number => {
                let ops: &[&str] = if reference {
                    &["=", "!=", "in", "notIn"]
                } else {
                    &["=", "!=", "<", "<=", ">", ">=", "in", "notIn", "between"]
                };
                match *self.rng.pick(ops) {
                    op @ ("in" | "notIn") => rule(op, Some(some(self))),
                    "between" => {
                        let (a, b) = (one(self), one(self));
                        let (a, b) = if a.as_f64() <= b.as_f64() {
                            (a, b)
                        } else {
                            (b, a)
                        };
                        rule("between", Some(json!([a, b])))
                    }
                    op => rule(op, Some(one(self))),
                }
            }
            ValueKind::String => {
                let s = one(self).as_str().unwrap_or_default().to_owned();
                let ops: &[&str] = if reference {
                    &["=", "!=", "in", "notIn"]
                } else {
                    &[
                        "=",
                        "!=",
                        "contains",
                        "doesNotContain",
                        "beginsWith",
                        "endsWith",
                        "in",
                        "notIn",
                        "<",
                        ">=",
                    ]
                };
                match *self.rng.pick(ops) {
                    op @ ("in" | "notIn") => rule(op, Some(some(self))),
                    op @ ("contains" | "doesNotContain" | "beginsWith" | "endsWith") => {
                        let chars: Vec<char> = s.chars().collect();
                        let len = 1 + self.rng.below(chars.len().clamp(1, 4));
                        let start = match op {
                            "beginsWith" => 0,
                            "endsWith" => chars.len().saturating_sub(len),
                            _ => self.rng.below(chars.len().saturating_sub(len) + 1),
                        };
                        let part: String = chars.iter().skip(start).take(len).collect();
                        let part = if self.rng.chance(30) {
                            part.to_uppercase()
                        } else {
                            part
                        };
                        rule(
                            op,
                            Some(json!(if part.is_empty() { "a".into() } else { part })),
                        )
                    }
                    op => rule(op, Some(json!(s))),
                }
            }
            ValueKind::Bool => {
                let op = *self.rng.pick(&["=", "!="]);
                rule(op, Some(json!(self.rng.chance(50))))
            }
            ValueKind::DateTime => {
                let at = |g: &mut Self| -> Value {
                    let t = one(g)
                        .as_str()
                        .and_then(eval::parse_instant)
                        .expect("a datetime the rows hold");
                    // Exactly a row's instant, or a few hours either side of it.
                    let shift = if g.rng.chance(40) {
                        0
                    } else {
                        (g.rng.below(48 * 3600) as i64) - 24 * 3600
                    };
                    let t = t
                        .checked_add(jiff::SignedDuration::from_secs(shift))
                        .expect("in range");
                    json!({"$datetime": neo_domain::clock::rfc3339(t)})
                };
                match *self.rng.pick(&["<", "<=", ">", ">=", "between", "="]) {
                    "between" => {
                        let (a, b) = (at(self), at(self));
                        let (a, b) = if a["$datetime"].as_str() <= b["$datetime"].as_str() {
                            (a, b)
                        } else {
                            (b, a)
                        };
                        rule("between", Some(json!([a, b])))
                    }
                    op => rule(op, Some(at(self))),
                }
            }
            _ => rule("notNull", None),
        }
    }
}

/// The validated tree of `conditions`, with the pair's catalogue (so every generated rule is
/// one the API would accept).
fn parse(conditions: &Value, cat: &'static Catalogue) -> Group {
    let now = "2026-11-28T21:07:35Z".parse().expect("instant");
    let spec = json!({ "conditions": conditions });
    match filter::parse(&spec, now, Some(cat)) {
        Ok((FilterSpec::Query { root, .. }, _)) => root,
        other => panic!("the generator built a tree the API refuses: {conditions}: {other:?}"),
    }
}

/// Every matching id through the connector, page by page through the checkpoint.
async fn enumerate(client: &PsaClient, entity: EntityType, root: &Group) -> Vec<i64> {
    let mut checkpoint: Option<Value> = None;
    let mut out = Vec::new();
    for _ in 0..1000 {
        let after = Cursor::from_checkpoint(checkpoint.as_ref());
        let page = client.page(entity, root, &after).await.expect("a page");
        out.extend(page.rows.iter().map(|r| r.id));
        if let Some(next) = page.next {
            checkpoint = Some(next.to_checkpoint());
        }
        if page.exhausted {
            return out;
        }
    }
    panic!("the enumeration did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filterable_pair_enumerates_exactly_the_reference() {
    let sim = sim().await;
    let mut pairs = 0;
    let mut selective = 0;
    for psa in Psa::ALL {
        let client = connect(&sim, psa).await;
        let ctx = client.eval_context();
        for entity in EntityType::ALL {
            let pair = support::pair(psa, *entity);
            if pair.level != Level::Filters {
                continue;
            }
            pairs += 1;
            let endpoint = pair.endpoint.expect("a filters pair has an endpoint");
            let cat = compile::table(psa, *entity).expect("a filters pair has a table");
            let rows = sim
                .resource_rows(psa.as_str(), endpoint)
                .unwrap_or_else(|| panic!("psa-sim serves {} {endpoint}", psa.as_str()));
            assert!(
                rows.len() >= 5,
                "{} {entity}: the simulator has {} rows",
                psa.as_str(),
                rows.len()
            );
            let mut gen = TreeGen {
                cat,
                rows: &rows,
                rng: Rng(0x5EED ^ (pairs as u64) << 8),
            };
            let mut trees = vec![json!({"combinator": "and", "rules": [
                {"field": "$id", "operator": "notNull"}]})];
            trees.extend((0..TREES_PER_PAIR).map(|_| gen.group(1)));
            for conditions in trees {
                let root = parse(&conditions, cat);
                let want: Vec<i64> = rows
                    .iter()
                    .filter(|r| compile::matches(&root, r, cat, &ctx))
                    .map(|r| r["id"].as_i64().expect("a numeric id"))
                    .collect();
                if !want.is_empty() && want.len() < rows.len() {
                    selective += 1;
                }
                let got = enumerate(&client, *entity, &root).await;
                let here = format!("{} {entity} {conditions}", psa.as_str());
                assert_eq!(
                    got.iter().copied().collect::<HashSet<_>>().len(),
                    got.len(),
                    "{here}: an id twice"
                );
                assert_eq!(got, want, "{here}: the connector vs the reference");
                let count = client.count(*entity, &root).await.expect("a count");
                if count.exact {
                    assert_eq!(count.count, want.len() as u64, "{here}: exact count");
                } else {
                    assert!(count.count >= want.len() as u64, "{here}: count {count:?}");
                }
            }
        }
    }
    assert_eq!(pairs, 47, "the filterable pairs of the support matrix");
    // The trees must select real subsets, not only everything or nothing.
    assert!(
        selective >= pairs * TREES_PER_PAIR as usize / 3,
        "{selective} selective trees"
    );
}
