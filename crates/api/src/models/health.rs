//! The liveness and readiness answer: one shape for both probes, so a prober reads one body.

use serde::Serialize;
use utoipa::ToSchema;

use super::string_enum;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "database": "ok", "version": "0.1.0"}))]
pub struct Health {
    /// `ok`: the process answers.
    #[schema(schema_with = ok_only)]
    pub status: String,
    /// `ok`: the database answered; `unavailable`: it did not within 5 s; `migrating`: it is
    /// being migrated at startup. Readiness answers only `ok` (else a 503 error).
    #[schema(schema_with = database_states)]
    pub database: String,
    pub version: String,
}

impl Health {
    pub fn new(database: &str) -> Self {
        Self {
            status: "ok".into(),
            database: database.into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

fn ok_only() -> utoipa::openapi::Object {
    string_enum(["ok"], "Always `ok`: the process answers.")
}

fn database_states() -> utoipa::openapi::Object {
    string_enum(
        ["ok", "unavailable", "migrating"],
        "Whether the database answered: `ok`, `unavailable` (not within 5 s) or `migrating` (startup).",
    )
}
