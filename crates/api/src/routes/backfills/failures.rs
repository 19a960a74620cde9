//! `GET /public-api/backfills/{id}/failures` (issue 22): a backfill's failed entities grouped
//! by cause — the domain's triage (`neo_domain::triage`: masked error signatures and failure
//! kinds) over the failed items the store reads. Rerun one cause with rerun-failed's body.

#[allow(unused_imports)]
use super::*;

use neo_domain::clock::rfc3339;
use neo_domain::triage::{clusters, FailureKind};
use serde::Serialize;
use utoipa::ToSchema;

/// Failed entities that share a cause.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"signature": "the executor answered HTTP 422: ticket <n> is locked", "kind": "http_4xx", "count": 1200,
    "sample_error": "the executor answered HTTP 422: ticket 48213 is locked", "sample_entities": ["48213", "48214", "48290", "48301", "48377"],
    "first_seen": "2026-11-30T22:00:05Z", "last_seen": "2026-12-01T05:59:41Z"}))]
pub struct FailureCluster {
    /// The error with its ids, numbers, UUIDs, e-mail addresses, quoted values and timestamps
    /// masked (`<n>`, `<id>`, `<uuid>`, `<email>`, `"…"`, `<time>`); the status after `HTTP`
    /// is kept.
    pub signature: String,
    pub kind: FailureKind,
    /// Failed entities with this cause.
    pub count: u64,
    /// One of their errors as it was.
    pub sample_error: String,
    /// Up to five of them, in snapshot order.
    pub sample_entities: Vec<String>,
    #[schema(format = DateTime)]
    pub first_seen: String,
    #[schema(format = DateTime)]
    pub last_seen: String,
}

/// List a backfill's failures by cause.
///
/// The failed entities grouped by error signature (the error with its specifics masked) and
/// failure kind (`timeout`, `throttled`, `http_4xx`, `http_5xx`, `connection`,
/// `executor_error`, `psa_rejected`, `psa_unavailable`, `other`), most frequent first. Rerun
/// one cause with `POST /public-api/backfills/{id}/rerun-failed` and
/// `{"error_signatures": [signature]}` or `{"failure_kinds": [kind]}`.
#[utoipa::path(get, path = "/public-api/backfills/{backfill_id}/failures", tag = "Backfills",
    operation_id = "listBackfillFailures",
    params(("backfill_id" = String, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<FailureCluster>>)))]
pub async fn failures(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<Vec<FailureCluster>>, ApiError> {
    if app.store.backfill(p.tenant_id(), &id).await?.is_none() {
        return Err(ApiError::backfill_not_found());
    }
    let failed = app.store.failures(p.tenant_id(), &id).await?;
    Ok(Reply::new(
        clusters(&failed)
            .into_iter()
            .map(|c| FailureCluster {
                signature: c.signature,
                kind: c.kind,
                count: c.count,
                sample_error: c.sample_error,
                sample_entities: c.sample_entities,
                first_seen: rfc3339(c.first_seen),
                last_seen: rfc3339(c.last_seen),
            })
            .collect(),
    )
    .page(false, None))
}
