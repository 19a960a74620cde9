//! A backfill's Failures section (issue 22, failure triage): its failed entities grouped by
//! cause, each cause with a "Rerun this cause" button.
//!
//! Its own module because it is its own view with its own action: the grouping is the domain's
//! ([`neo_domain::triage::clusters`] over [`neo_store::Store::failures`], exactly what
//! `GET /public-api/backfills/{id}/failures` returns), and the rerun is the API's own
//! [`api::rerun_failed_backfill`] with one error signature as its cause, so the page, the API
//! and the store agree on which entities a cause takes. Signatures and errors come from the
//! receiver's own words (hostile text): the template escapes them like any other value.

#[allow(unused_imports)]
use super::*;

use crate::models::RerunFailedRequest;
use neo_domain::triage::clusters;

use super::backfill::load_backfill;
use super::times;

/// One cause, as shown.
pub(super) struct ClusterRow {
    pub(super) signature: String,
    pub(super) kind: &'static str,
    pub(super) count: u64,
    pub(super) sample_error: String,
    /// Each with the items view of that entity (the page's own address, filtered).
    pub(super) sample_entities: Vec<(String, String)>,
    /// Entities of the cause beyond the samples.
    pub(super) more: u64,
    pub(super) first_seen: times::When,
    pub(super) last_seen: times::When,
}

/// The Failures section (empty while the backfill has no failure; it refreshes itself when
/// the state changes, so a backfill that ends with failures shows them without a reload).
#[derive(Template)]
#[template(path = "backfill_failures.html")]
pub(super) struct FailuresTpl {
    pub(super) id: String,
    pub(super) failed: i64,
    pub(super) clusters: Vec<ClusterRow>,
    /// The backfill is in a state a rerun is allowed from (the "Rerun failed" button's rule).
    pub(super) rerunnable: bool,
    pub(super) csrf: String,
}

/// The Failures section of `b`.
pub(super) async fn failures_tpl(
    app: &AppState,
    u: &DashUser,
    b: &Backfill,
) -> Result<FailuresTpl, Response> {
    let rows = if b.failed_count > 0 {
        let failed = app
            .store
            .failures(u.principal.tenant_id(), &b.id)
            .await
            .map_err(store_error)?;
        clusters(&failed)
            .into_iter()
            .map(|c| ClusterRow {
                kind: c.kind.as_str(),
                count: c.count,
                more: c.count.saturating_sub(c.sample_entities.len() as u64),
                sample_error: c.sample_error,
                sample_entities: c
                    .sample_entities
                    .into_iter()
                    .map(|e| {
                        let q = form_urlencoded::Serializer::new(String::new())
                            .append_pair("entity_id", &e)
                            .finish();
                        (format!("/backfills/{}?{q}#items", b.id), e)
                    })
                    .collect(),
                first_seen: times::when(c.first_seen, &b.timezone),
                last_seen: times::when(c.last_seen, &b.timezone),
                signature: c.signature,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(FailuresTpl {
        id: b.id.clone(),
        failed: b.failed_count,
        clusters: rows,
        rerunnable: check_rerunnable(b.state, b.failed_count).is_ok(),
        csrf: u.csrf.clone(),
    })
}

/// `GET /backfills/{id}/failures`: the section alone (htmx refreshes it in place).
pub(super) async fn backfill_failures(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
) -> Response {
    let b = match load_backfill(&app, &u, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match failures_tpl(&app, &u, &b).await {
        Ok(t) => page(StatusCode::OK, &t),
        Err(r) => r,
    }
}

/// `POST /backfills/{id}/rerun-cause` (`signature`): a rerun-failed child over the failures
/// with that error signature, through the API's own function; on success, the child's page.
/// A refusal (the source still active, no failure with that signature any more) is the API's
/// 409 and message, as for "Rerun failed".
pub(super) async fn rerun_cause(
    State(app): State<AppState>,
    u: DashUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    let signature = form.get("signature").unwrap_or("");
    let causes = match api::check_causes(RerunFailedRequest {
        error_signatures: vec![signature.to_owned()],
        failure_kinds: vec![],
    }) {
        Ok(c) => c,
        Err(_) => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "error",
                "Choose a cause from the Failures list to rerun.",
            )
        }
    };
    let created = api::rerun_failed_backfill(&app, &u.principal, &id, Some(&causes), None).await;
    super::changes::child_created(&headers, created, "rerun")
}
