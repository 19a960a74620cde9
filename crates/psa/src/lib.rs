//! PSA connectors and the `filter_spec` compiler (docs/api.md §5, docs/psa.md §6).
//!
//! `compile` turns a validated filter tree into a PSA's native query plus a *residual*: the
//! part of the tree the PSA cannot express, evaluated locally on fetched rows. The connectors
//! (`connectwise`, `autotask`, `halo`, behind [`client::PsaClient`]) count and enumerate by
//! ascending id; [`source::PsaSource`] feeds the orchestrator one page at a time from a persisted
//! checkpoint ([`client::Cursor`]); [`lookup`] tells which ids of an explicit list the PSA lacks;
//! [`support`] is the matrix of which entity types each PSA has and how far each goes.

pub mod autotask;
pub mod budget;
pub mod client;
pub mod compile;
pub mod connectwise;
mod executor;
/// The fuzz targets' bodies (`fuzz/`), replayed by the test suite: only with the `fuzzing`
/// feature, never in a normal build.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod halo;
pub mod http;
pub mod links;
pub mod lookup;
pub mod source;
pub mod support;
pub mod write;

use serde::{Deserialize, Serialize};

/// The PSA systems neo-backfill connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Psa {
    #[serde(rename = "connectwise")]
    ConnectWise,
    #[serde(rename = "autotask")]
    Autotask,
    #[serde(rename = "halopsa")]
    Halo,
}

impl Psa {
    pub const ALL: [Psa; 3] = [Psa::ConnectWise, Psa::Autotask, Psa::Halo];
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "connectwise" => Some(Self::ConnectWise),
            "autotask" => Some(Self::Autotask),
            "halopsa" => Some(Self::Halo),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectWise => "connectwise",
            Self::Autotask => "autotask",
            Self::Halo => "halopsa",
        }
    }

    /// The PSA's name as its vendor writes it, for people (the dashboard, the docs).
    pub fn label(self) -> &'static str {
        match self {
            Self::ConnectWise => "ConnectWise",
            Self::Autotask => "Autotask",
            Self::Halo => "HaloPSA",
        }
    }
}
