//! HTTP tests of the API against a real SQLite file and a real TCP listener.

mod helpers;

mod backfills;
mod errors;
mod isolation;
mod pagination;
mod ratelimit;
mod validation;
