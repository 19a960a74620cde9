//! The field lists of the compile tables (`crates/psa/src/compile/catalogue/`), one per
//! (PSA, resource) the simulator serves, tickets included, in the tables' order and spelling. They
//! are copied rather than shared because psa-sim must not depend on neo-psa (the connectors are
//! tested against it); `records::tests` holds every view to its list, so a field added here
//! without a value in the rows fails there.
//!
//! ConnectWise lists name `dateEntered` and `lastUpdated` beside `_info/…`: the conditions
//! accept both spellings of the one `_info` value.

/// Autotask entities.
pub(crate) mod at;
/// ConnectWise (`/v4_6_release/apis/3.0/…`).
pub(crate) mod cw;
/// HaloPSA (`/api/…`).
pub(crate) mod halo;
