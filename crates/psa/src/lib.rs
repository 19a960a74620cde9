//! PSA connectors and the `filter_spec` compiler (SPEC §5, PSA.md §6).
//!
//! `compile` turns a validated filter tree into a PSA's native query plus a *residual*: the
//! part of the tree the PSA cannot express, evaluated locally on fetched rows. Connectors
//! count and enumerate by ascending id with a resumable checkpoint.

pub mod compile;

use serde::{Deserialize, Serialize};

/// The PSA systems neo-backfill connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Psa {
    #[serde(rename = "connectwise")]
    ConnectWise,
    #[serde(rename = "autotask")]
    Autotask,
    #[serde(rename = "halopsa")]
    Halo,
}

impl Psa {
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
}
