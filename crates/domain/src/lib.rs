//! Pure types of neo-backfill. Nothing in this crate does I/O: every time decision takes an
//! instant from a [`clock::Clock`] passed in by the caller.

pub mod actions;
pub mod backfill;
pub mod budget;
pub mod clock;
pub mod control;
pub mod cost;
pub mod cursor;
pub mod egress;
pub mod eta;
pub mod executor;
pub mod fairness;
pub mod filter;
/// The fuzz targets' bodies (`fuzz/`), replayed by the test suite: only with the `fuzzing`
/// feature, never in a normal build.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod id_list;
pub mod notify;
pub mod pacing;
pub mod retry;
pub mod signature;
pub mod text;
pub mod triage;
pub mod validation;
pub mod windows;

pub use validation::FieldError;
