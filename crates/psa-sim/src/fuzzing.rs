//! Body of the `cw_conditions` fuzz target (`fuzz/fuzz_targets/`), replayed on the committed corpus
//! by the normal test suite (`crates/neo-backfill/tests/fuzz_corpus.rs`), so the two cannot drift.

use std::sync::OnceLock;

use serde_json::Value;

use crate::cw_conditions::{parse, Schema, CUSTOM_FIELD_SCHEMA, TICKET_SCHEMA};
use crate::data::{cw_json, Dataset};

/// ConnectWise ticket rows of a small seeded data set.
fn rows() -> &'static [Value] {
    static ROWS: OnceLock<Vec<Value>> = OnceLock::new();
    ROWS.get_or_init(|| {
        Dataset::generate(7, 40)
            .tickets
            .iter()
            .map(cw_json)
            .collect()
    })
}

/// `cw_conditions`: the simulator's ConnectWise `conditions` (and `customFieldConditions`)
/// parser and evaluator, on any UTF-8 input. Invariants: no panic; a parsed condition evaluates
/// on every row; parenthesising it, or combining it with itself by `and` / `or`, selects the
/// same rows.
pub fn cw_conditions(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    check(input, &TICKET_SCHEMA, false);
    check(input, &CUSTOM_FIELD_SCHEMA, true);
}

fn check(input: &str, schema: &Schema, custom: bool) {
    let select = |s: &str| {
        let expr = parse(s, schema).ok()??;
        Some(
            rows()
                .iter()
                .map(|r| {
                    if custom {
                        expr.matches_any_item(r, "customFields")
                    } else {
                        expr.matches(r)
                    }
                })
                .collect::<Vec<bool>>(),
        )
    };
    let Some(want) = select(input) else {
        return;
    };
    for form in [
        format!("({input})"),
        format!("({input}) and ({input})"),
        format!("({input}) or ({input})"),
    ] {
        // Deeper nesting may hit the parser's depth limit: only what parses is compared.
        if let Some(got) = select(&form) {
            assert_eq!(got, want, "{form:?} selects other rows than {input:?}");
        }
    }
}
