//! The `filter_spec` compiler: a validated filter tree (`neo_domain::filter::Group`) becomes a
//! PSA-native query and a residual evaluated locally. The native query may match a superset of
//! the tree; `native ∧ residual` is exactly the tree.
//!
//! PLACEHOLDER: the compile tables, the reference evaluator and the field catalogues are being
//! written in `connectwise.rs`, `autotask.rs`, `halo.rs`, `eval.rs` and `catalogue.rs`.

use neo_domain::filter::Group;

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

/// ConnectWise query parameters (each `None` when empty). All three are ANDed by the PSA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CwQuery {
    pub conditions: Option<String>,
    pub custom_field_conditions: Option<String>,
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
