//! HTTP tests of the API against a real SQLite file and a real TCP listener.

mod helpers;

mod agents;
mod backfills;
mod control;
mod edits;
mod entity_types;
mod entra;
mod errors;
mod executions;
mod idempotency;
mod isolation;
mod meta;
mod notifications;
mod openapi;
mod pagination;
mod preflight;
mod ratelimit;
mod security;
mod validation;
