//! Helpers shared by the compile tests.

use neo_domain::filter::{parse, FilterSpec, Group};
use serde_json::{json, Value};

/// The validated tree of a `conditions` rule group (no catalogue: native paths are only
/// checked for syntax).
pub(crate) fn tree(conditions: Value) -> Group {
    let now = "2026-11-28T21:07:35Z".parse().expect("instant");
    match parse(&json!({ "conditions": conditions }), now, None) {
        Ok((FilterSpec::Query { root, .. }, _)) => root,
        other => panic!("not a valid rule group: {other:?}"),
    }
}

/// A top-level AND of `rules`.
pub(crate) fn and(rules: Value) -> Group {
    tree(json!({"combinator": "and", "rules": rules}))
}
