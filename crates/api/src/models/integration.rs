//! The tenant's PSA integration as the API shows it: its settings, which secrets are set (never
//! their values), and its request budget with what backfills used of it this hour.

use neo_domain::clock::rfc3339;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::string_enum;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"psa": "connectwise", "config": {"site_url": "https://na.myconnectwise.net", "company_id": "msp"}, "secrets_set": ["private_key", "public_key"], "created_at": "2026-11-01T08:05:00Z", "updated_at": "2026-11-01T08:05:00Z", "budget": {"requests_per_hour": 60000, "backfill_share": 50, "backfill_requests_per_hour": 30000, "backfill_requests_this_hour": 3120}}))]
pub struct PublicIntegration {
    #[schema(schema_with = psa_names)]
    pub psa: String,
    /// Non-secret settings (the members of `PUT /integrations/{psa}`'s `config` for that PSA).
    #[schema(value_type = Object)]
    pub config: Value,
    /// Which secrets are set; their values are write-only.
    pub secrets_set: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Its request budget, shared by every replica.
    pub budget: PublicPsaBudget,
}

/// A PSA's request budget: its allowance per hour (`requests_per_hour` in the config, else the
/// PSA's documented limit), the part backfills may use (`backfill_share`, else 50%), and what
/// backfills took this hour.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"requests_per_hour": 10000, "backfill_share": 50, "backfill_requests_per_hour": 5000, "backfill_requests_this_hour": 3120}))]
pub struct PublicPsaBudget {
    pub requests_per_hour: i64,
    /// Percent of `requests_per_hour` backfills may use; the rest is left for live traffic.
    pub backfill_share: i64,
    /// Backfills' requests per hour at most.
    pub backfill_requests_per_hour: i64,
    /// Requests backfills sent since the start of this hour (UTC).
    pub backfill_requests_this_hour: i64,
}

impl PublicIntegration {
    pub fn new(i: neo_store::Integration, now: jiff::Timestamp) -> Self {
        let budget = i.budget();
        Self {
            budget: PublicPsaBudget {
                requests_per_hour: budget.requests_per_hour,
                backfill_share: budget.backfill_share,
                backfill_requests_per_hour: budget.backfill_per_hour(),
                backfill_requests_this_hour: neo_domain::budget::Budget::used_this_hour(
                    &i.bucket,
                    neo_domain::clock::to_ms(now),
                ),
            },
            psa: i.psa,
            config: i.config,
            secrets_set: i.secret_names,
            created_at: rfc3339(i.created_at),
            updated_at: rfc3339(i.updated_at),
        }
    }
}

fn psa_names() -> utoipa::openapi::Object {
    string_enum(
        neo_psa::Psa::ALL.iter().map(|p| p.as_str()),
        "The PSA connected.",
    )
}
