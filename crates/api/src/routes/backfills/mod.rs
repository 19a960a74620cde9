//! `/public-api/backfills` (docs/api.md §3).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use neo_domain::backfill::BackfillMode;
use neo_domain::backfill::{check_backfill_target, TargetRefusal};
use neo_domain::backfill::{
    BackfillRunState, EntityType, ItemStatus, Signal, SignalOutcome, SignalRefusal,
};
use neo_domain::cost::BackfillCostEstimate;
use neo_domain::executor::ExecutorSpec;
use neo_domain::filter::{self, FilterSpec};
use neo_domain::windows::{validate_timezone, WorkflowDailyExecutionWindows};
use neo_store::{
    Backfill, BackfillFilter, ChildKind, DeleteBackfillError, NewBackfill, NewChild, RerunError,
    SignalError, StoreError,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::entity_types::check_entity;
use super::{comma_list, page_size};
use crate::auth::Principal;
use crate::envelope::{DataEnvelope, Reply};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::models::*;
use crate::{AppState, Auth};

pub use neo_domain::backfill::{
    check_max_in_flight, check_name, DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT, MIN_IN_FLIGHT,
};

/// The answer to a target workflow [`check_backfill_target`] refuses, for create and
/// rerun-failed alike.
pub(crate) fn target_refused(r: TargetRefusal, workflow: &str) -> ApiError {
    match r {
        TargetRefusal::Disabled => ApiError::conflict(
            "workflow_not_enabled",
            format!("{workflow} is disabled; enable it first"),
        ),
        TargetRefusal::Conversational => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_for_conversational",
            "a CONVERSATIONAL workflow cannot be backfilled",
        )
        .with_field("target_workflow_id"),
    }
}

fn new_backfill_id() -> String {
    format!("bf_{}", uuid::Uuid::now_v7().simple())
}

/// The 201 of a create or rerun-failed.
fn created(
    b: Backfill,
    cost: BackfillCostEstimate,
    now: jiff::Timestamp,
    credits_left: i64,
) -> Reply<CreateBackfillResponse> {
    let warnings = credit_warnings(&cost, credits_left);
    Reply::created(CreateBackfillResponse {
        backfill: PublicBackfill::at(b, now),
        cost_estimate: cost,
    })
    .warnings(warnings)
}

/// A response as an idempotency record replays it.
fn rendered<T: serde::Serialize>(ok: Reply<T>) -> (u16, serde_json::Value) {
    (ok.status_code().as_u16(), ok.body())
}

/// Why a PSA filter could not be counted.
enum PsaCheck {
    /// Invalid for this PSA (an unknown native field, a wrong value type).
    Invalid(neo_domain::FieldError),
    Psa(neo_psa::http::PsaError),
}

/// Most rows a count reads to turn the PSA's upper bound into an exact number
/// ([`neo_psa::client::PsaClient::count_exactly`]): ten HaloPSA pages, one ConnectWise page.
const EXACT_COUNT_MAX_READ: u64 = 1_000;

/// Validates a PSA filter against the PSA's field catalogue and counts it with the connector
/// (exactly, when the PSA's bound is small enough to read).
async fn psa_count(
    app: &AppState,
    p: &Principal,
    integration: &neo_store::Integration,
    entity: EntityType,
    filter_spec: &serde_json::Value,
    now: jiff::Timestamp,
) -> Result<(serde_json::Value, neo_psa::client::Count), PsaCheck> {
    let psa = neo_psa::Psa::parse(&integration.psa).ok_or_else(|| {
        PsaCheck::Psa(neo_psa::http::PsaError::Rejected(format!(
            "unknown PSA {}",
            integration.psa
        )))
    })?;
    let catalogue = neo_psa::compile::catalogue(psa, entity);
    let (spec, stored) = filter::parse(filter_spec, now, catalogue).map_err(PsaCheck::Invalid)?;
    let FilterSpec::Query { root, .. } = spec else {
        unreachable!("called for rule-group filters only")
    };
    let client = psa_client(app, p, integration)
        .await
        .map_err(PsaCheck::Psa)?;
    let count = client
        .count_exactly(entity, &root, EXACT_COUNT_MAX_READ)
        .await
        .map_err(PsaCheck::Psa)?;
    Ok((stored, count))
}

/// A client of the tenant's PSA (the guarded egress client and the PSA policy of the app).
async fn psa_client(
    app: &AppState,
    p: &Principal,
    integration: &neo_store::Integration,
) -> Result<neo_psa::client::PsaClient, neo_psa::http::PsaError> {
    let secrets = app
        .store
        .integration_secrets(p.tenant_id())
        .await
        .map_err(|e| neo_psa::http::PsaError::Unavailable(format!("database: {e}")))?
        .unwrap_or_default();
    neo_psa::client::PsaClient::connect(
        &integration.psa,
        &integration.config,
        &secrets,
        app.psa_http.clone(),
        app.cfg.psa_policy.clone(),
    )
    .await
}

fn psa_error(e: neo_psa::http::PsaError) -> ApiError {
    use neo_psa::http::PsaError as E;
    match e {
        E::Rejected(m) => {
            ApiError::field("filter_spec", format!("the PSA refused the filter: {m}"))
        }
        E::Unavailable(m) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "psa_unavailable",
            format!("the PSA is unavailable: {m}"),
        ),
        E::Auth(m) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "psa_unavailable",
            format!("the PSA refused the integration's credentials: {m}"),
        ),
        E::Protocol(m) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "psa_unavailable",
            format!("unexpected answer from the PSA: {m}"),
        ),
        // Counts and reads never write; a 409 to a read is the PSA's refusal.
        E::Conflict(m) | E::Moved(m) => {
            ApiError::field("filter_spec", format!("the PSA refused the filter: {m}"))
        }
    }
}

fn already_active(e: StoreError) -> ApiError {
    match e {
        StoreError::AlreadyActive => ApiError::conflict(
            "backfill_already_active",
            "another backfill of this workflow is active (DRAFT, RUNNING or PAUSED)",
        ),
        e => e.into(),
    }
}

async fn require_integration(
    app: &AppState,
    p: &Principal,
) -> Result<neo_store::Integration, ApiError> {
    app.store.integration(p.tenant_id()).await?.ok_or_else(|| {
        ApiError::conflict(
            "integration_not_configured",
            "this filter queries the PSA, and the tenant has no PSA integration; connect one at /public-api/integrations or give entity_ids",
        )
    })
}

/// What is left of the tenant's monthly credits.
pub(crate) async fn credits_left(app: &AppState, p: &Principal) -> Result<i64, ApiError> {
    let (from, to) = crate::routes::meta::month_bounds(app.clock.now(), None)?;
    let used = app.store.credits_used(p.tenant_id(), from.1, to).await?;
    Ok(p.tenant.monthly_credit_allowance - used)
}

/// Warns when the estimate exceeds what is left of the tenant's monthly credits.
pub(crate) fn credit_warnings(cost: &BackfillCostEstimate, remaining: i64) -> Vec<String> {
    if cost.total_credits_estimated > remaining {
        vec![format!(
            "the estimate of {} credits exceeds the {} credits left this month",
            cost.total_credits_estimated,
            remaining.max(0)
        )]
    } else {
        vec![]
    }
}

mod changes;
mod create;
mod delete;
mod edit;
mod failures;
mod idempotency;
mod list;
mod rerun;
mod signals;
mod verify;

pub use changes::*;
pub use create::*;
pub use delete::*;
pub use edit::*;
pub use failures::*;
pub use idempotency::*;
pub use list::*;
pub use rerun::*;
pub use signals::*;
pub use verify::*;
