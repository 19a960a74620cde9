//! Alias resolution (docs/psa.md §6.4): a rule becomes a predicate over the PSA's native field
//! paths. The compilers and the evaluator both go through here, so an alias means the same
//! thing in a pushed-down query and in a residual. What each alias means on each entity is
//! data in the compile tables ([`super::catalogue`]); for tickets:
//!
//! | alias | ConnectWise | Autotask | Halo |
//! |---|---|---|---|
//! | `$id` | `id` | `id` | `id` |
//! | `$created` | `dateEntered` | `createDate` | `dateoccurred` |
//! | `$updated` | `lastUpdated` | `lastActivityDate` | `lastactiondate` |
//! | `$closed` | `closedFlag` | `status` in / not in the complete status ids | `hasbeenclosed` |
//! | `$company` | `company/id`, `company/name` | `companyID`, — | `client_id`, `client_name` |
//! | `$status` | `status/id`, `status/name` | `status`, — | `status_id`, — |
//! | `$priority` | `priority/id`, `priority/name` | `priority`, — | `priority_id`, — |
//! | `$queue` | `board/id`, `board/name` | `queueID`, — | —, `team` |
//! | `$assignee` | `owner/id`, `owner/identifier` | `assignedResourceID`, — | `agent_id`, — |
//!
//! For the reference aliases the first path takes numbers (ids) and the second strings
//! (names); `null`/`notNull` use the id path (the name path when there is none). A list mixing both splits into an OR (`in`) or an
//! AND (`notIn`) of the two. "—": no native field holds that form (Autotask picklists are
//! integers, and rows carry no labels), so such a rule matches no row and is never pushed.
//! An alias with no meaning on an entity is refused at validation; lowered anyway, it matches
//! no row.
//!
//! `$closed` on Autotask tickets: with `C` the complete status ids, `= true` is `status in C`,
//! `= false` is `status notIn C`, `in [true, false]` is `status` not null, `null` is `status`
//! null (SQL semantics throughout: a null status is neither closed nor open).

use neo_domain::filter::{Alias, Combinator, Field, Group, Node, Operand, Operator, Rule, Scalar};

use super::catalogue::{Catalogue, Target};
use neo_domain::backfill::EntityType;

use crate::Psa;

/// A predicate over native field paths.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lowered {
    /// `path op value` on a native field (a `/`-separated path on ConnectWise).
    Cmp {
        path: String,
        op: Operator,
        value: Operand,
    },
    /// A custom field (ConnectWise caption, Autotask UDF name, Halo custom field name).
    Custom {
        caption: String,
        op: Operator,
        value: Operand,
    },
    All(Vec<Lowered>),
    Any(Vec<Lowered>),
    /// Matches no row (a form of an alias no native field holds).
    Nothing,
}

/// A group as one predicate.
pub(crate) fn lower_group(g: &Group, cat: &Catalogue, complete_status_ids: &[i64]) -> Lowered {
    let parts = g
        .rules
        .iter()
        .map(|n| lower_node(n, cat, complete_status_ids))
        .collect();
    match g.combinator {
        Combinator::And => all(parts),
        Combinator::Or => any(parts),
    }
}

pub(crate) fn lower_node(n: &Node, cat: &Catalogue, complete_status_ids: &[i64]) -> Lowered {
    match n {
        Node::Group(g) => lower_group(g, cat, complete_status_ids),
        Node::Rule(r) => lower_rule(r, cat, complete_status_ids),
    }
}

pub(crate) fn lower_rule(r: &Rule, cat: &Catalogue, complete_status_ids: &[i64]) -> Lowered {
    match &r.field {
        Field::Native(path) => cmp(path, r.operator, r.value.clone()),
        Field::Custom(caption) => Lowered::Custom {
            caption: caption.clone(),
            op: r.operator,
            value: r.value.clone(),
        },
        Field::Alias(Alias::Closed)
            if cat.psa == Psa::Autotask && cat.entity == EntityType::Ticket =>
        {
            autotask_closed(r.operator, &r.value, complete_status_ids)
        }
        Field::Alias(a) => match cat.target(*a) {
            Some(t) => resolve(t, r.operator, &r.value),
            None => Lowered::Nothing,
        },
    }
}

fn cmp(path: &str, op: Operator, value: Operand) -> Lowered {
    Lowered::Cmp {
        path: path.to_owned(),
        op,
        value,
    }
}

/// An AND, simplified: a `Nothing` part makes it `Nothing`.
fn all(parts: Vec<Lowered>) -> Lowered {
    if parts.contains(&Lowered::Nothing) {
        Lowered::Nothing
    } else {
        Lowered::All(parts)
    }
}

/// An OR, simplified: `Nothing` parts drop out; none left is `Nothing`.
fn any(parts: Vec<Lowered>) -> Lowered {
    let parts: Vec<_> = parts
        .into_iter()
        .filter(|p| *p != Lowered::Nothing)
        .collect();
    if parts.is_empty() {
        Lowered::Nothing
    } else {
        Lowered::Any(parts)
    }
}

fn resolve(t: Target, op: Operator, value: &Operand) -> Lowered {
    let at = |path: Option<&str>, v: Operand| path.map_or(Lowered::Nothing, |p| cmp(p, op, v));
    let path_for = |s: &Scalar| match s {
        Scalar::String(_) => t.name,
        _ => t.id,
    };
    match value {
        Operand::None => at(t.id.or(t.name), Operand::None),
        Operand::One(s) | Operand::Range(s, _) => at(path_for(s), value.clone()),
        Operand::List(_) if t.id == t.name => at(t.id, value.clone()),
        Operand::List(xs) => {
            let (names, ids): (Vec<Scalar>, Vec<Scalar>) = xs
                .iter()
                .cloned()
                .partition(|s| matches!(s, Scalar::String(_)));
            let mut parts: Vec<Lowered> = [(t.id, ids), (t.name, names)]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(p, v)| at(p, Operand::List(v)))
                .collect();
            match (parts.len(), op) {
                (1, _) => parts.pop().expect("one part"),
                (_, Operator::NotIn) => all(parts),
                _ => any(parts),
            }
        }
    }
}

fn autotask_closed(op: Operator, value: &Operand, complete: &[i64]) -> Lowered {
    use Operator::*;
    let status = |op, value| cmp("status", op, value);
    let bools = |xs: &[Scalar]| {
        let has = |b| xs.contains(&Scalar::Bool(b));
        (has(true), has(false))
    };
    // (closed wanted, open wanted)
    let (closed, open) = match (op, value) {
        (Null | NotNull, _) => return status(op, Operand::None),
        (Eq, Operand::One(Scalar::Bool(b))) => (*b, !*b),
        (Ne, Operand::One(Scalar::Bool(b))) => (!*b, *b),
        (In, Operand::List(xs)) => bools(xs),
        (NotIn, Operand::List(xs)) => {
            let (c, o) = bools(xs);
            (!c, !o)
        }
        // Validation admits no other operator on a boolean alias.
        _ => return Lowered::Nothing,
    };
    let ids = || {
        Operand::List(
            complete
                .iter()
                .map(|i| Scalar::Number((*i).into()))
                .collect(),
        )
    };
    match (closed, open, complete.is_empty()) {
        (true, true, _) | (false, true, true) => status(NotNull, Operand::None),
        (true, false, false) => status(In, ids()),
        (false, true, false) => status(NotIn, ids()),
        _ => Lowered::Nothing,
    }
}
