//! `POST /public-api/backfills/verify`: count and classify a filter, create nothing.

#[allow(unused_imports)]
use super::*;

/// Preflight a filter.
///
/// Counts the entities the filter matches and classifies the result: OK, WARNING (more than
/// the soft limit, the count is an upper bound, or some ids of an `entity_ids` list are not in
/// the PSA), ERROR (invalid filter, PSA query failed, no match, or none of the ids is in the
/// PSA). An `entity_ids` list is checked against the tenant's PSA when one is connected (the
/// message names up to 10 missing ids; `matching_entities` counts the ids found); without an
/// integration, or with a PSA that cannot look ids up (HaloPSA), the message says the ids were
/// not checked. Creates nothing.
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
    check_entity(req.entity_type, &spec, None)?;
    let (matched, exact) = match &spec {
        FilterSpec::EntityIds(ids) => return verify_ids(app, p, req.entity_type, ids).await,
        FilterSpec::Query { .. } => {
            let integration = require_integration(app, p).await?;
            check_entity(req.entity_type, &spec, Some(&integration.psa))?;
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

/// Most ids of one list the preflight asks the PSA about (at most 20 queries of
/// [`neo_psa::lookup::CHUNK`]); the message says when a longer list was checked only in part.
pub const MAX_CHECKED_IDS: usize = 10_000;

/// Most missing ids a message names.
const NAMED_IDS: usize = 10;

/// The preflight of an explicit id list: the ids the PSA has, when one is connected and can
/// look them up (see [`verify`]).
async fn verify_ids(
    app: &AppState,
    p: &Principal,
    entity: EntityType,
    ids: &[String],
) -> Result<Reply<VerifyBackfillResponse>, ApiError> {
    let given = ids.len();
    let checked = &ids[..given.min(MAX_CHECKED_IDS)];
    // Err((why the ids were not checked, whether a lookup was tried and failed)).
    let lookup = match app.store.integration(p.tenant_id()).await? {
        None => Err(("the tenant has no PSA integration".to_owned(), false)),
        Some(integration) => match psa_client(app, p, &integration).await {
            Ok(client) => match neo_psa::lookup::missing_ids(&client, entity, checked).await {
                Ok(Some(missing)) => Ok(missing),
                Ok(None) => Err((
                    format!("{} cannot look up a list of ids", integration.psa),
                    false,
                )),
                Err(e) => Err((format!("the PSA lookup failed: {e}"), true)),
            },
            Err(e) => Err((format!("the PSA lookup failed: {e}"), true)),
        },
    };
    let reply = |level, message: String, matching: Option<usize>, warnings: Vec<String>| {
        Ok(Reply::new(VerifyBackfillResponse {
            matching_entities: matching.map(|n| n as i64),
            success: level != VerifyLevel::Error,
            field: (level == VerifyLevel::Error).then(|| "filter_spec.entity_ids".to_owned()),
            message,
            level,
        })
        .warnings(warnings))
    };
    let soft = app.cfg.verify_soft_limit;
    let over_soft = |n: usize| {
        if n as i64 > soft {
            format!("; {n} is more than the soft limit of {soft}")
        } else {
            String::new()
        }
    };
    // Every given id counts: OK, or WARNING (in `meta.warnings` too) over the soft limit or
    // when `warn`.
    let counted = |message: String, warn: bool| {
        if warn || given as i64 > soft {
            reply(
                VerifyLevel::Warning,
                message.clone(),
                Some(given),
                vec![message],
            )
        } else {
            reply(VerifyLevel::Ok, message, Some(given), vec![])
        }
    };
    let missing = match lookup {
        Err((why, failed)) => {
            // Not checked: the count of ids, as given.
            let message = format!(
                "{given} entities match (the ids were not checked: {why}){}",
                over_soft(given)
            );
            return counted(message, failed);
        }
        Ok(missing) => missing,
    };
    let part = if checked.len() < given {
        format!(" (only the first {} ids were checked)", checked.len())
    } else {
        String::new()
    };
    let found = given - missing.len();
    if missing.is_empty() {
        let message = format!(
            "{given} entities match: every id is in the PSA{part}{}",
            over_soft(given)
        );
        return counted(message, false);
    }
    let mut named = missing
        .iter()
        .take(NAMED_IDS)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if missing.len() > NAMED_IDS {
        named.push_str(&format!(" and {} more", missing.len() - NAMED_IDS));
    }
    let not_found = format!(
        "{} of {given} entity ids {} not found in the PSA: {named}{part}",
        missing.len(),
        if missing.len() == 1 { "was" } else { "were" },
    );
    if found == 0 {
        reply(VerifyLevel::Error, not_found, None, vec![])
    } else {
        let message = format!("{found} entities match; {not_found}{}", over_soft(found));
        reply(
            VerifyLevel::Warning,
            message.clone(),
            Some(found),
            vec![message],
        )
    }
}
