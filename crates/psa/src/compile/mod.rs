//! The `filter_spec` compiler: a validated filter tree (`neo_domain::filter::Group`) becomes a
//! PSA-native query and a residual evaluated locally. The native query may match a superset of
//! the tree; `native ∧ residual` is exactly the tree, with the semantics of [`eval`] (the
//! reference evaluator; its module doc states them: SQL-like nulls, case-insensitive text,
//! datetimes as instants, inclusive `between`).
//!
//! How a tree is split (the same for every PSA):
//! - A top-level AND is flattened (nested ANDs join it) and split child by child: what the PSA
//!   expresses exactly goes native only; what it expresses as a *superset* goes native and
//!   stays in the residual; the rest is residual only. The residual is an AND of the original
//!   nodes, evaluated with [`eval::matches`] or [`Predicate`].
//! - Below the top level, an AND pushes the children it can (a superset when some are left
//!   out); an OR pushes only when every child pushes, otherwise the whole OR is residual.
//! - A root OR is one node: native when fully pushable, otherwise residual as a whole.
//! - Custom fields push only from the top-level AND, one per query (ConnectWise
//!   `customFieldConditions`, Autotask `udf:true`), on tickets; the others are residual. Halo
//!   pushes none, and on entities other than tickets nothing at all.
//! - Aliases resolve per PSA and entity in [`lower`] (docs/psa.md §6.4), from the compile tables
//!   ([`catalogue`]); the evaluator resolves them the same way.
//! - Datetimes go out with whole seconds. A bound with a fraction of a second is rounded
//!   outward (a superset; the rule stays residual); an equality or list with one is residual.
//!
//! Per PSA: [`connectwise`], [`autotask`], [`halo`]. Field catalogues for validation: [`catalogue`].

pub mod autotask;
pub mod catalogue;
pub mod connectwise;
pub mod eval;
pub mod halo;
pub(crate) mod lower;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod sim_equivalence;
#[cfg(test)]
mod test_support;

use jiff::Timestamp;
use neo_domain::backfill::EntityType;
use neo_domain::filter::{Combinator, Group, Node, Operand, Operator, Scalar};

use crate::Psa;

pub use autotask::compile_autotask;
pub use catalogue::{catalogue, table, tickets, Catalogue, HaloList};
pub use connectwise::compile_connectwise;
pub use eval::{matches, EvalContext, Predicate};
pub use halo::compile_halo;

/// A compiled filter: the native query, and what the PSA could not express (`None` = nothing
/// left: the native query is exact, so a native count is exact).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<Q> {
    pub native: Q,
    /// An AND of the nodes evaluated locally on fetched rows.
    pub residual: Option<Group>,
}

impl<Q> Plan<Q> {
    /// True when the PSA's count equals the number of matches.
    pub fn is_exact(&self) -> bool {
        self.residual.is_none()
    }
}

/// ConnectWise query parameters (each `None` when empty). Both filters are ANDed by the PSA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CwQuery {
    pub conditions: Option<String>,
    pub custom_field_conditions: Option<String>,
    /// The `fields` a page asks for ([`connectwise::projection`]): not a filter, so counts
    /// leave it out.
    pub fields: Option<String>,
}

/// The Autotask `filter` array (its members are ANDed), without the paging members.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AtQuery {
    pub filter: Vec<serde_json::Value>,
}

/// HaloPSA query parameters from the allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaloQuery {
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The entity type has no endpoint on this PSA.
    #[error("{0}")]
    Unsupported(String),
}

/// The compile table of `entity` on `psa`, or why there is none.
pub(crate) fn check_supported(
    psa: Psa,
    entity: EntityType,
) -> Result<&'static catalogue::Catalogue, CompileError> {
    catalogue::table(psa, entity).ok_or_else(|| {
        CompileError::Unsupported(format!(
            "filters on entity type {entity} are not supported for {}",
            psa.as_str()
        ))
    })
}

/// How much of a node a PSA query expresses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Push<T> {
    /// Exactly the node.
    Exact(T),
    /// A superset of the node: pushed, and the node stays in the residual.
    Superset(T),
    /// Nothing: the node is residual only.
    No,
}

impl<T> Push<T> {
    pub(crate) fn new(t: T, exact: bool) -> Self {
        if exact {
            Self::Exact(t)
        } else {
            Self::Superset(t)
        }
    }

    pub(crate) fn from_option(o: Option<(T, bool)>) -> Self {
        o.map_or(Self::No, |(t, exact)| Self::new(t, exact))
    }

    pub(crate) fn is_pushed(&self) -> bool {
        !matches!(self, Self::No)
    }

    /// Downgrades an exact push to a superset unless `exact`.
    pub(crate) fn weaken(self, exact: bool) -> Self {
        match self {
            Self::Exact(t) if !exact => Self::Superset(t),
            other => other,
        }
    }

    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Push<U> {
        match self {
            Self::Exact(t) => Push::Exact(f(t)),
            Self::Superset(t) => Push::Superset(f(t)),
            Self::No => Push::No,
        }
    }

    /// An AND: the pushable parts (a superset when some are left out), joined when there are
    /// several; `No` when none is pushable.
    pub(crate) fn all(parts: Vec<Push<T>>, join: impl FnOnce(Vec<T>) -> T) -> Self {
        let mut exact = true;
        let mut items = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Self::Exact(t) => items.push(t),
                Self::Superset(t) => {
                    exact = false;
                    items.push(t);
                }
                Self::No => exact = false,
            }
        }
        match items.len() {
            0 => Self::No,
            1 => Self::new(items.pop().expect("one item"), exact),
            _ => Self::new(join(items), exact),
        }
    }

    /// An OR: pushable only when every part is.
    pub(crate) fn any(parts: Vec<Push<T>>, join: impl FnOnce(Vec<T>) -> T) -> Self {
        let mut exact = true;
        let mut items = Vec::with_capacity(parts.len());
        for p in parts {
            match p {
                Self::Exact(t) => items.push(t),
                Self::Superset(t) => {
                    exact = false;
                    items.push(t);
                }
                Self::No => return Self::No,
            }
        }
        match items.len() {
            0 => Self::No,
            1 => Self::new(items.pop().expect("one item"), exact),
            _ => Self::new(join(items), exact),
        }
    }
}

/// The nodes of the top-level AND: nested ANDs (and single-child groups) are flattened; a
/// root OR is a single node.
fn top_level(root: &Group) -> Vec<Node> {
    if root.combinator == Combinator::Or && root.rules.len() > 1 {
        return vec![Node::Group(root.clone())];
    }
    let mut out = Vec::with_capacity(root.rules.len());
    for n in &root.rules {
        match n {
            Node::Group(g) if g.combinator == Combinator::And || g.rules.len() == 1 => {
                out.extend(top_level(g))
            }
            n => out.push(n.clone()),
        }
    }
    out
}

/// Splits the top-level AND of `root` with `push` (called once per top-level node, in order):
/// returns the pushed parts and the residual.
pub(crate) fn split<T>(
    root: &Group,
    mut push: impl FnMut(&Node) -> Push<T>,
) -> (Vec<T>, Option<Group>) {
    let mut native = Vec::new();
    let mut residual = Vec::new();
    for node in top_level(root) {
        match push(&node) {
            Push::Exact(t) => native.push(t),
            Push::Superset(t) => {
                native.push(t);
                residual.push(node);
            }
            Push::No => residual.push(node),
        }
    }
    let residual = (!residual.is_empty()).then_some(Group {
        combinator: Combinator::And,
        rules: residual,
    });
    (native, residual)
}

/// The operand with its datetimes in whole seconds, and whether that is exact: bounds with a
/// fraction are rounded outward (lower bounds down, upper bounds up), giving a superset;
/// equalities and lists with a fraction give `None` (not pushable).
pub(crate) fn whole_seconds(op: Operator, value: &Operand) -> Option<(Operand, bool)> {
    use Operator::*;
    fn fractional(s: &Scalar) -> bool {
        matches!(s, Scalar::DateTime(t) if t.subsec_nanosecond() != 0)
    }
    fn round(t: Timestamp, up: bool) -> Option<Scalar> {
        let (s, ns) = (t.as_second(), t.subsec_nanosecond());
        let s = match (ns.signum(), up) {
            (1, true) => s.checked_add(1)?,
            (-1, false) => s.checked_sub(1)?,
            _ => s,
        };
        Timestamp::from_second(s).ok().map(Scalar::DateTime)
    }
    match (op, value) {
        (Gt | Ge | Lt | Le, Operand::One(s @ Scalar::DateTime(t))) if fractional(s) => {
            Some((Operand::One(round(*t, matches!(op, Lt | Le))?), false))
        }
        (Between, Operand::Range(a, b)) if fractional(a) || fractional(b) => {
            let (Scalar::DateTime(ta), Scalar::DateTime(tb)) = (a, b) else {
                return None;
            };
            Some((Operand::Range(round(*ta, false)?, round(*tb, true)?), false))
        }
        (_, Operand::One(s)) if fractional(s) => None,
        (_, Operand::List(xs)) if xs.iter().any(fractional) => None,
        _ => Some((value.clone(), true)),
    }
}

/// A datetime as the PSAs take it: `YYYY-MM-DDTHH:MM:SSZ` (call after [`whole_seconds`]).
pub(crate) fn datetime_text(t: Timestamp) -> String {
    neo_domain::clock::rfc3339(t)
}
