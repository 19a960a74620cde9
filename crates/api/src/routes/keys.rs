//! `/public-api/api-keys`: API-key management, for an Entra ID admin of the tenant only.

use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{mint_key, Principal, PrincipalKind};
use crate::envelope::{DataEnvelope, Reply};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiPath};
use crate::models::{CreatedApiKey, PublicApiKey};
use crate::{AppState, Auth};

/// How long a rotated key keeps working.
pub const ROTATION_GRACE: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// The one rule of who may manage API keys (the API's routes here and the dashboard's
/// `/api-keys` page): an Entra ID user with the admin role. An API key, and so a dashboard
/// session (always signed in with a key), never may.
pub fn require_admin(p: &Principal) -> Result<(), ApiError> {
    match &p.kind {
        PrincipalKind::Entra { admin: true, .. } => Ok(()),
        _ => Err(ApiError::forbidden(
            "API keys are managed with the CLI (neo-backfill keys …) or by an Entra ID admin \
             through /public-api/api-keys",
        )),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// `live` (default) or `test`.
    #[serde(default)]
    pub env: Option<String>,
    /// RFC 3339; default never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// List the tenant's API keys (never their secrets).
///
/// Each key's environment, last four characters, creator, expiry, revocation, rotation and last
/// use. For a dashboard admin (Entra ID token with the admin role); an API key answers 403.
#[utoipa::path(get, path = "/public-api/api-keys", tag = "API keys", operation_id = "listApiKeys",
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicApiKey>>),
              (status = 403, description = "Forbidden — authenticated but not allowed.", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<AppState>,
    Auth(p): Auth,
) -> Result<Reply<Vec<PublicApiKey>>, ApiError> {
    require_admin(&p)?;
    let keys = app.store.list_api_keys(p.tenant_id()).await?;
    Ok(Reply::new(keys.into_iter().map(Into::into).collect()).page(false, None))
}

/// Create an API key; the secret is in this response only.
///
/// The secret is stored as a hash and cannot be shown again. `env` is `live` (default) or `test`;
/// `expires_at` optional. For a dashboard admin.
#[utoipa::path(post, path = "/public-api/api-keys", tag = "API keys", operation_id = "createApiKey",
    request_body = CreateApiKeyRequest,
    responses((status = 201, description = "Success.", body = DataEnvelope<CreatedApiKey>),
              (status = 403, description = "Forbidden — authenticated but not allowed.", body = ErrorEnvelope)))]
pub async fn create(
    State(app): State<AppState>,
    Auth(p): Auth,
    body: ApiJson<CreateApiKeyRequest>,
) -> Result<Reply<CreatedApiKey>, ApiError> {
    require_admin(&p)?;
    let now = app.clock.now();
    let env = body.value.env.unwrap_or_else(|| "live".into());
    if !crate::auth::KEY_ENVS.contains(&env.as_str()) {
        return Err(ApiError::field("env", "env must be live or test"));
    }
    let expires_at = match body.value.expires_at {
        None => None,
        Some(s) => {
            let t: Timestamp = s.parse().map_err(|_| {
                ApiError::field("expires_at", "expires_at must be an RFC 3339 instant")
            })?;
            if t <= now {
                return Err(ApiError::field(
                    "expires_at",
                    "expires_at must be in the future",
                ));
            }
            Some(t)
        }
    };
    let minted = mint_key(p.tenant_id(), &env, &p.actor(), expires_at, now);
    let key = app.store.insert_api_key(minted.row).await?;
    Ok(Reply::created(CreatedApiKey {
        key: key.into(),
        secret: minted.plaintext,
    }))
}

async fn own_key(app: &AppState, p: &Principal, id: &str) -> Result<neo_store::ApiKey, ApiError> {
    match app.store.api_key(id).await? {
        Some(k) if k.tenant_id == p.tenant.id => Ok(k),
        _ => Err(ApiError::not_found("API key")),
    }
}

/// Revoke an API key, effective immediately.
///
/// The next request with it answers 401. For a dashboard admin.
#[utoipa::path(delete, path = "/public-api/api-keys/{key_id}", tag = "API keys", operation_id = "revokeApiKey",
    params(("key_id" = String, Path)),
    responses((status = 204, description = "Revoked."),
              (status = 403, description = "Forbidden — authenticated but not allowed.", body = ErrorEnvelope)))]
pub async fn revoke(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&p)?;
    own_key(&app, &p, &id).await?;
    app.store.revoke_api_key(&id, app.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate an API key: a new key is created and the old one keeps working for 24 h.
///
/// The answer holds the new key's secret (shown once); the old key's `rotated_to` names the new
/// one. 409 `api_key_not_active` for a revoked or expired key. For a dashboard admin.
#[utoipa::path(post, path = "/public-api/api-keys/{key_id}/rotate", tag = "API keys", operation_id = "rotateApiKey",
    params(("key_id" = String, Path)),
    responses((status = 201, description = "Success.", body = DataEnvelope<CreatedApiKey>),
              (status = 403, description = "Forbidden — authenticated but not allowed.", body = ErrorEnvelope),
              (status = 409, description = "Conflict — the key is revoked or expired.", body = ErrorEnvelope)))]
pub async fn rotate(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<CreatedApiKey>, ApiError> {
    require_admin(&p)?;
    let old = own_key(&app, &p, &id).await?;
    let now = app.clock.now();
    let key = rotate_key(&app.store, &old, &p.actor(), now).await?;
    Ok(Reply::created(key))
}

/// Rotation shared by the HTTP API and the CLI.
pub async fn rotate_key(
    store: &std::sync::Arc<dyn neo_store::Store>,
    old: &neo_store::ApiKey,
    actor: &str,
    now: Timestamp,
) -> Result<CreatedApiKey, ApiError> {
    if !old.is_usable(now) {
        return Err(ApiError::conflict(
            "api_key_not_active",
            "a revoked or expired key cannot be rotated",
        ));
    }
    // Rotation never extends a key's lifetime: the new key ends when the old one would have
    // (never stays never), and the old one at the earlier of that and the grace period's end
    // (the store's `rotate_api_key`).
    let minted = mint_key(&old.tenant_id, &old.env, actor, old.expires_at, now);
    let key = store
        .rotate_api_key(&old.id, now + ROTATION_GRACE, minted.row)
        .await?;
    Ok(CreatedApiKey {
        key: key.into(),
        secret: minted.plaintext,
    })
}
