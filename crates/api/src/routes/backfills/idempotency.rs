//! `Idempotency-Key` for create and rerun-failed: the answer is saved in the transaction of
//! what the request creates; a replay returns it.

#[allow(unused_imports)]
use super::*;

/// How long an `Idempotency-Key` replays its first response.
pub const IDEMPOTENCY_TTL: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// The `Idempotency-Key` of a request and the fingerprint of its route and body.
pub(crate) struct IdempotencyKey {
    key: String,
    fingerprint: Vec<u8>,
}

impl IdempotencyKey {
    /// The record written with what the request creates, at `now`.
    pub(super) fn record<'a>(
        &'a self,
        now: jiff::Timestamp,
        render: &'a (dyn Fn(&Backfill) -> (u16, serde_json::Value) + Send + Sync),
    ) -> neo_store::NewIdempotency<'a> {
        neo_store::NewIdempotency {
            key: &self.key,
            fingerprint: &self.fingerprint,
            created_at: now,
            not_before: now - IDEMPOTENCY_TTL,
            render,
        }
    }
}

/// Deletes the idempotency keys past [`IDEMPOTENCY_TTL`] (a periodic task of `serve`).
pub async fn purge_idempotency_keys(app: &AppState) -> Result<u64, ApiError> {
    Ok(app
        .store
        .purge_idempotency_keys(app.clock.now() - IDEMPOTENCY_TTL)
        .await?)
}

/// Runs [`purge_idempotency_keys`] now and then every `every`, until the task is aborted.
pub async fn purge_idempotency_keys_periodically(app: AppState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match purge_idempotency_keys(&app).await {
            Ok(n) => tracing::debug!(deleted = n, "idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
    }
}

/// Replays the first response of an `Idempotency-Key` within 24 h; refuses the key for
/// another body. The response is saved in the transaction of what the request creates, so
/// concurrent requests with one key create one thing: the losers replay the winner's response.
pub(super) async fn idempotent<T, F, Fut>(
    app: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    route: &str,
    raw: &[u8],
    run: F,
) -> Result<Response, ApiError>
where
    T: serde::Serialize,
    F: FnOnce(Option<IdempotencyKey>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply<T>, ApiError>>,
{
    let Some(key) = headers.get("idempotency-key") else {
        return run(None).await.map(IntoResponse::into_response);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .with_field("Idempotency-Key")
        })?
        .to_owned();
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(raw);
    let fingerprint = h.finalize().to_vec();
    if let Some(r) = replay(app, p, &key, &fingerprint, true).await? {
        return Ok(r);
    }
    let idem = IdempotencyKey {
        key: key.clone(),
        fingerprint: fingerprint.clone(),
    };
    match run(Some(idem)).await {
        // The body saved with the backfill, so that every answer for the key is the same.
        Ok(ok) => Ok(replay(app, p, &key, &fingerprint, false)
            .await?
            .unwrap_or_else(|| ok.into_response())),
        // Another request with the key committed first: answer what it answered.
        Err(e) if e.code == crate::error::IDEMPOTENCY_KEY_IN_USE => {
            replay(app, p, &key, &fingerprint, true).await?.ok_or(e)
        }
        Err(e) => Err(e),
    }
}

/// The saved response of `key` (409 `idempotency_key_reused` for another request), if any,
/// marked `Idempotent-Replayed: true` if `replayed`.
pub(super) async fn replay(
    app: &AppState,
    p: &Principal,
    key: &str,
    fingerprint: &[u8],
    replayed: bool,
) -> Result<Option<Response>, ApiError> {
    let not_before = app.clock.now() - IDEMPOTENCY_TTL;
    let Some(prev) = app
        .store
        .idempotent_response(p.tenant_id(), key, not_before)
        .await?
    else {
        return Ok(None);
    };
    if prev.fingerprint != fingerprint {
        return Err(ApiError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used with another request in the last 24 h",
        ));
    }
    let mut resp = (
        StatusCode::from_u16(prev.status).unwrap_or(StatusCode::OK),
        axum::Json(prev.response),
    )
        .into_response();
    if replayed {
        resp.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(Some(resp))
}
