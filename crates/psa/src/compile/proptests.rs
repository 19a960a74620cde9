//! Property: for random trees over fixed rows, `native(row) ∧ residual(row) ≡ matches(root, row)`.
//!
//! The native side is evaluated by small interpreters of the Autotask `filter` JSON and of the
//! Halo parameters ([`crate::fuzzing`], shared with the `filter_spec` fuzz target), written from
//! docs/psa.md (§2.4, §3) with the comparison semantics of [`super::eval`]. ConnectWise is not covered: evaluating `conditions` needs a parser of the
//! string grammar, which the simulator (`psa-sim`) provides; its equivalence test belongs
//! there.

use neo_domain::backfill::EntityType;
use neo_domain::filter::{parse, FilterSpec, Group};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::eval::{matches, EvalContext};
use super::{catalogue, compile_autotask, compile_halo, tickets};
use crate::fuzzing::{
    autotask_native, autotask_rows, halo_native, halo_rows, rule, FieldGen, AUTOTASK_FIELDS,
    HALO_FIELDS,
};
use crate::Psa;

pub(super) fn tree_strategy(fields: &'static [FieldGen]) -> impl Strategy<Value = Value> {
    let leaf = (
        0..fields.len(),
        any::<usize>(),
        prop::collection::vec(any::<usize>(), 1..4),
    )
        .prop_map(move |(f, op, picks)| rule(&fields[f], op, &picks));
    let node = leaf.prop_recursive(3, 24, 4, |inner| {
        (any::<bool>(), prop::collection::vec(inner, 1..4)).prop_map(
            |(and, rules)| json!({"combinator": if and { "and" } else { "or" }, "rules": rules}),
        )
    });
    (any::<bool>(), prop::collection::vec(node, 1..5)).prop_map(
        |(and, rules)| json!({"combinator": if and { "and" } else { "or" }, "rules": rules}),
    )
}

pub(super) fn parse_tree(conditions: &Value, psa: Psa) -> Group {
    let now = "2026-11-28T21:07:35Z".parse().expect("instant");
    let cat = catalogue(psa, EntityType::Ticket);
    match parse(&json!({ "conditions": conditions }), now, cat) {
        Ok((FilterSpec::Query { root, .. }, _)) => root,
        other => panic!("generated an invalid tree {conditions}: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn autotask_native_and_residual_is_the_tree(conditions in tree_strategy(AUTOTASK_FIELDS)) {
        let root = parse_tree(&conditions, Psa::Autotask);
        let ctx = EvalContext { complete_status_ids: vec![5, 8] };
        let plan = compile_autotask(&root, EntityType::Ticket, &ctx.complete_status_ids).unwrap();
        let udfs = plan.native.filter.iter().filter(|c| c.get("udf").is_some()).count();
        prop_assert!(udfs <= 1);
        for row in autotask_rows() {
            let native = plan.native.filter.iter().all(|c| autotask_native(c, &row));
            let residual = plan.residual.as_ref().is_none_or(|r| matches(r, &row, tickets(Psa::Autotask), &ctx));
            prop_assert_eq!(
                native && residual,
                matches(&root, &row, tickets(Psa::Autotask), &ctx),
                "row {} filter {:?} residual {:?}", row["id"], plan.native.filter, plan.residual
            );
        }
    }

    #[test]
    fn halo_native_and_residual_is_the_tree(conditions in tree_strategy(HALO_FIELDS)) {
        let root = parse_tree(&conditions, Psa::Halo);
        let ctx = EvalContext::default();
        let plan = compile_halo(&root, EntityType::Ticket).unwrap();
        for row in halo_rows() {
            let native = halo_native(&plan.native.params, &row);
            let residual = plan.residual.as_ref().is_none_or(|r| matches(r, &row, tickets(Psa::Halo), &ctx));
            prop_assert_eq!(
                native && residual,
                matches(&root, &row, tickets(Psa::Halo), &ctx),
                "row {} params {:?} residual {:?}", row["id"], plan.native.params, plan.residual
            );
        }
    }
}
