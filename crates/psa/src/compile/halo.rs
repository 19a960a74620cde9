//! HaloPSA: only a top-level AND of allowlisted query parameters of the ticket list (docs/psa.md
//! §3, §6.5). Halo silently ignores parameters it does not know, so nothing outside this table
//! is sent, and nothing at all to the other resources (their filters are wholly residual):
//!
//! | rule (after alias resolution) | parameter |
//! |---|---|
//! | `$closed = true` (`hasbeenclosed`) | `closed_only=true` |
//! | `$closed = false` | `open_only=true` |
//! | `$company = N` (`client_id`) | `client_id=N` |
//! | `$status = N` (`status_id`) | `status_id=N` |
//! | `$assignee = N` (`agent_id`) | `agent_id=N` |
//! | `$created >= t`, `<= t`, `between` (`dateoccurred`) | `datesearch=dateoccurred&startdate=t&enddate=t` |
//!
//! Each parameter is sent once; a second rule wanting it is residual. Ids must be positive
//! integers (Halo clients treat 0 as "unset"). `startdate`/`enddate` are taken as inclusive
//! (unverified against a tenant), so `>`/`<` push the bound as a superset and stay residual.
//! Array parameters (`status[]`, `priority[]`, `agent[]`, `team[]`) are not used: their
//! encoding is unverified (docs/psa.md lists `status[]`, the HaloAPI module sends `status=1,2`), and
//! an ignored parameter would silently return everything. Every other rule, any OR, and every
//! custom field is residual.

use neo_domain::backfill::EntityType;
use neo_domain::filter::{Group, Node, Operand, Operator, Scalar};

use super::lower::{lower_rule, Lowered};
use super::{
    check_supported, datetime_text, split, whole_seconds, CompileError, HaloQuery, Plan, Push,
};
use crate::Psa;

/// Compiles a tree to Halo query parameters (see the module doc).
pub fn compile_halo(root: &Group, entity: EntityType) -> Result<Plan<HaloQuery>, CompileError> {
    let cat = check_supported(Psa::Halo, entity)?;
    let mut q = HaloQuery::default();
    let (_, residual) = split(root, |node| match node {
        // The allowlist is the ticket list's; elsewhere everything is residual (module doc).
        _ if entity != EntityType::Ticket => Push::No,
        Node::Rule(r) => match lower_rule(r, cat, &[]) {
            Lowered::Cmp { path, op, value } => push(&mut q, &path, op, &value),
            _ => Push::No,
        },
        Node::Group(_) => Push::No,
    });
    Ok(Plan {
        native: q,
        residual,
    })
}

fn has(q: &HaloQuery, name: &str) -> bool {
    q.params.iter().any(|(k, _)| k == name)
}

fn set(q: &mut HaloQuery, name: &str, value: String) {
    q.params.push((name.to_owned(), value));
}

fn push(q: &mut HaloQuery, path: &str, op: Operator, value: &Operand) -> Push<()> {
    use Operator::*;
    let Some((value, exact)) = whole_seconds(op, value) else {
        return Push::No;
    };
    let (params, exact) = match (path, op, &value) {
        ("hasbeenclosed", Eq | Ne, Operand::One(Scalar::Bool(b))) => {
            let name = if *b == (op == Eq) {
                "closed_only"
            } else {
                "open_only"
            };
            (vec![(name, "true".to_owned())], exact)
        }
        ("client_id" | "status_id" | "agent_id", Eq, Operand::One(Scalar::Number(n))) => {
            match n.as_u64().filter(|n| *n > 0) {
                Some(n) => (vec![(path, n.to_string())], exact),
                None => return Push::No,
            }
        }
        ("dateoccurred", Ge | Gt, Operand::One(Scalar::DateTime(t))) => {
            (vec![("startdate", datetime_text(*t))], exact && op == Ge)
        }
        ("dateoccurred", Le | Lt, Operand::One(Scalar::DateTime(t))) => {
            (vec![("enddate", datetime_text(*t))], exact && op == Le)
        }
        ("dateoccurred", Between, Operand::Range(Scalar::DateTime(a), Scalar::DateTime(b))) => (
            vec![
                ("startdate", datetime_text(*a)),
                ("enddate", datetime_text(*b)),
            ],
            exact,
        ),
        _ => return Push::No,
    };
    if params.iter().any(|(name, _)| has(q, name)) {
        return Push::No;
    }
    if path == "dateoccurred" && !has(q, "datesearch") {
        set(q, "datesearch", "dateoccurred".to_owned());
    }
    for (name, v) in params {
        set(q, name, v);
    }
    Push::new((), exact)
}

#[cfg(test)]
mod tests {
    use neo_domain::filter::Combinator;
    use serde_json::{json, Value};

    use super::*;
    use crate::compile::test_support::{and, tree};

    fn halo(g: &Group) -> Plan<HaloQuery> {
        compile_halo(g, EntityType::Ticket).unwrap()
    }

    fn params(p: &Plan<HaloQuery>) -> Vec<(&str, &str)> {
        p.native
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn residual_of(g: &Group, idx: &[usize]) -> Option<Group> {
        Some(Group {
            combinator: Combinator::And,
            rules: idx.iter().map(|i| g.rules[*i].clone()).collect(),
        })
    }

    fn dt(s: &str) -> Value {
        json!({ "$datetime": s })
    }

    #[test]
    fn allowlisted_parameters() {
        let g = and(json!([
            {"field": "$closed", "operator": "=", "value": false},
            {"field": "$company", "operator": "=", "value": 12},
            {"field": "$created", "operator": "between",
             "value": [dt("2026-04-01T00:00:00Z"), dt("2026-04-30T23:59:59Z")]},
            {"field": "$status", "operator": "=", "value": 2},
            {"field": "agent_id", "operator": "=", "value": 4}]));
        let plan = halo(&g);
        assert_eq!(
            params(&plan),
            [
                ("open_only", "true"),
                ("client_id", "12"),
                ("datesearch", "dateoccurred"),
                ("startdate", "2026-04-01T00:00:00Z"),
                ("enddate", "2026-04-30T23:59:59Z"),
                ("status_id", "2"),
                ("agent_id", "4"),
            ]
        );
        assert_eq!(plan.residual, None);
    }

    #[test]
    fn residuals() {
        let g = and(json!([
            {"field": "$closed", "operator": "!=", "value": false},
            {"field": "$created", "operator": ">", "value": dt("2026-04-01T00:00:00Z")},
            {"field": "$created", "operator": "<=", "value": dt("2026-05-01T00:00:00Z")},
            {"field": "$created", "operator": ">=", "value": dt("2026-03-01T00:00:00Z")},
            {"field": "$company", "operator": "=", "value": "Acme"},
            {"field": "$company", "operator": "=", "value": 12},
            {"field": "$company", "operator": "=", "value": 13},
            {"field": "$status", "operator": "in", "value": [1, 2]},
            {"field": "$status", "operator": "!=", "value": 9},
            {"field": "$updated", "operator": ">=", "value": dt("2026-03-01T00:00:00Z")},
            {"field": "$priority", "operator": "=", "value": 0},
            {"field": "summary", "operator": "contains", "value": "printer"},
            {"custom_field": "Region", "operator": "=", "value": "West"},
            {"combinator": "or", "rules": [
                {"field": "$id", "operator": "=", "value": 1},
                {"field": "$id", "operator": "=", "value": 2}]}]));
        let plan = halo(&g);
        assert_eq!(
            params(&plan),
            [
                ("closed_only", "true"),
                ("datesearch", "dateoccurred"),
                ("startdate", "2026-04-01T00:00:00Z"),
                ("enddate", "2026-05-01T00:00:00Z"),
                ("client_id", "12"),
            ]
        );
        // `>` is a superset; the second lower bound, the second client and the rest are residual.
        assert_eq!(
            plan.residual,
            residual_of(&g, &[1, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13])
        );
    }

    #[test]
    fn root_or_is_residual() {
        let g = tree(json!({"combinator": "or", "rules": [
            {"field": "$company", "operator": "=", "value": 1},
            {"field": "$company", "operator": "=", "value": 2}]}));
        let plan = halo(&g);
        assert_eq!(plan.native, HaloQuery::default());
        assert_eq!(plan.residual.unwrap().rules, vec![Node::Group(g)]);
    }

    #[test]
    fn fractional_bounds_round_outward() {
        let g = and(json!([
            {"field": "$created", "operator": "between",
             "value": [dt("2026-04-01T00:00:00.5Z"), dt("2026-04-02T00:00:00.5Z")]}]));
        let plan = halo(&g);
        assert_eq!(
            params(&plan),
            [
                ("datesearch", "dateoccurred"),
                ("startdate", "2026-04-01T00:00:00Z"),
                ("enddate", "2026-04-02T00:00:01Z"),
            ]
        );
        assert_eq!(plan.residual, residual_of(&g, &[0]));
    }
}
