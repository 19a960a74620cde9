//! `POST /public-api/backfills/verify`: count and classify a filter, create nothing.

#[allow(unused_imports)]
use super::*;

/// Preflight a filter.
///
/// Counts the entities the filter matches and classifies the result: OK, WARNING (more than
/// the soft limit, or the count is an upper bound), ERROR (invalid filter, PSA query failed or
/// no match). Creates nothing.
#[utoipa::path(post, path = "/public-api/backfills/verify", tag = "Backfills",
    operation_id = "verifyBackfill",
    request_body = VerifyBackfillRequest,
    responses((status = 200, description = "Success.", body = DataEnvelope<VerifyBackfillResponse>)))]
pub async fn verify(
    State(app): State<AppState>,
    Auth(p): Auth,
    body: ApiJson<VerifyBackfillRequest>,
) -> Result<Reply<VerifyBackfillResponse>, ApiError> {
    verify_filter(&app, &p, body.value).await
}

/// Preflights a filter (the API's verify and the dashboard's Preflight button).
pub(crate) async fn verify_filter(
    app: &AppState,
    p: &Principal,
    req: VerifyBackfillRequest,
) -> Result<Reply<VerifyBackfillResponse>, ApiError> {
    let error = |message: String, field: Option<String>| {
        Ok(Reply::new(VerifyBackfillResponse {
            matching_entities: None,
            success: false,
            message,
            level: VerifyLevel::Error,
            field,
        }))
    };
    let now = app.clock.now();
    let spec = match filter::parse(&req.filter_spec, now, None) {
        Ok((spec, _)) => spec,
        Err(e) => return error(format!("invalid filter: {}", e.message), Some(e.field)),
    };
    let (matched, exact) = match &spec {
        FilterSpec::EntityIds(ids) => (ids.len() as u64, true),
        FilterSpec::Query { .. } => {
            let integration = require_integration(app, p).await?;
            match psa_count(app, p, &integration, req.entity_type, &req.filter_spec, now).await {
                Ok((_, c)) => (c.count, c.exact),
                Err(PsaCheck::Invalid(e)) => {
                    return error(format!("invalid filter: {}", e.message), Some(e.field))
                }
                Err(PsaCheck::Psa(e)) => return error(format!("the PSA query failed: {e}"), None),
            }
        }
    };
    let soft = app.cfg.verify_soft_limit;
    if matched == 0 {
        return error("the filter matches no entity".into(), None);
    }
    // What a backfill would run over: the matches capped by the filter's `limit`.
    let count = spec.snapshot_size(matched) as i64;
    let cap = if count < matched as i64 {
        format!("; the filter's limit takes the first {count}")
    } else {
        String::new()
    };
    let (level, message, warnings) = if !exact {
        let m = format!(
            "at most {matched} entities match{cap}: the PSA cannot evaluate the whole filter, so the count is an upper bound"
        );
        (VerifyLevel::Warning, m.clone(), vec![m])
    } else if count > soft {
        let m = format!("{matched} entities match{cap}, more than the soft limit of {soft}");
        (VerifyLevel::Warning, m.clone(), vec![m])
    } else {
        (
            VerifyLevel::Ok,
            format!("{matched} entities match{cap}"),
            vec![],
        )
    };
    Ok(Reply::new(VerifyBackfillResponse {
        matching_entities: Some(count),
        success: true,
        message,
        level,
        field: None,
    })
    .warnings(warnings))
}
