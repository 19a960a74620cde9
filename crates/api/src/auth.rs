//! Credentials: API keys (`neo_sk_<env>_<secret>`, stored as SHA-256 hashes, compared in
//! constant time) and Microsoft Entra ID access tokens (RS256 only, issuer and audience pinned,
//! JWKS cached and refetched on an unknown `kid` at most every 5 minutes).

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use neo_domain::clock::Clock;
use neo_store::{ApiKey, NewApiKey, Store, Tenant};
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

use crate::error::ApiError;

pub const KEY_PREFIX: &str = "neo_sk_";
const SECRET_LEN: usize = 40;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Tenant,
    pub kind: PrincipalKind,
}

#[derive(Debug, Clone)]
pub enum PrincipalKind {
    ApiKey { key_id: String },
    Entra { user: String, admin: bool },
}

impl Principal {
    /// What `created_by` records: the key id or the user.
    pub fn actor(&self) -> String {
        match &self.kind {
            PrincipalKind::ApiKey { key_id } => key_id.clone(),
            PrincipalKind::Entra { user, .. } => user.clone(),
        }
    }
    pub fn tenant_id(&self) -> &str {
        &self.tenant.id
    }
}

pub fn hash_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A freshly minted key: the row to store and the plaintext, shown once.
pub struct MintedKey {
    pub row: NewApiKey,
    pub plaintext: String,
}

pub fn mint_key(
    tenant_id: &str,
    env: &str,
    created_by: &str,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> MintedKey {
    let mut rng = rand::rngs::OsRng;
    let secret: String = (0..SECRET_LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    let plaintext = format!("{KEY_PREFIX}{env}_{secret}");
    MintedKey {
        row: NewApiKey {
            id: format!("key_{}", &uuid::Uuid::new_v4().simple().to_string()[..20]),
            tenant_id: tenant_id.to_owned(),
            env: env.to_owned(),
            key_hash: hash_key(&plaintext),
            hint: secret[SECRET_LEN - 4..].to_owned(),
            created_by: created_by.to_owned(),
            created_at: now,
            expires_at,
        },
        plaintext,
    }
}

/// The token of an `Authorization` header value: `Bearer <token>` (or `bearer`), surrounding
/// blanks trimmed; `None` when the value is not visible ASCII, has another scheme or an empty
/// token.
pub fn bearer_token(value: &axum::http::HeaderValue) -> Option<&str> {
    let v = value.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The environments an API key can be minted for: the `<env>` of `neo_sk_<env>_<secret>`.
pub const KEY_ENVS: [&str; 2] = ["live", "test"];

/// The parts of an API key `neo_sk_<env>_<secret>`; `Display` formats it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyParts<'a> {
    /// `live` or `test`.
    pub env: &'a str,
    /// 40 ASCII alphanumerics.
    pub secret: &'a str,
}

impl std::fmt::Display for KeyParts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{KEY_PREFIX}{}_{}", self.env, self.secret)
    }
}

/// Splits a token of the shape `neo_sk_<env>_<secret>`; `None` for any other shape.
pub fn parse_key(token: &str) -> Option<KeyParts<'_>> {
    let (env, secret) = token.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    (KEY_ENVS.contains(&env)
        && secret.len() == SECRET_LEN
        && secret.bytes().all(|b| b.is_ascii_alphanumeric()))
    .then_some(KeyParts { env, secret })
}

pub async fn verify_api_key(
    store: &dyn Store,
    token: &str,
    now: Timestamp,
) -> Result<(ApiKey, Tenant), ApiError> {
    let invalid = || ApiError::unauthorized("invalid API key");
    if parse_key(token).is_none() {
        return Err(invalid());
    }
    let hash = hash_key(token);
    let (key, stored_hash) = store.api_key_by_hash(&hash).await?.ok_or_else(invalid)?;
    if !bool::from(stored_hash.as_slice().ct_eq(&hash[..])) {
        return Err(invalid());
    }
    if key.revoked_at.is_some() {
        return Err(ApiError::unauthorized("this API key has been revoked"));
    }
    if !key.is_usable(now) {
        return Err(ApiError::unauthorized("this API key has expired"));
    }
    let tenant = store.tenant(&key.tenant_id).await?.ok_or_else(invalid)?;
    Ok((key, tenant))
}

/// How stale a key's `last_used_at` may be: it is written at most this often per key, not on
/// every request (a write per request cost more than serving a read).
pub const LAST_USED_RESOLUTION: SignedDuration = SignedDuration::from_secs(60);

/// Records that `key` was used at `now`, unless its recorded last use is less than
/// [`LAST_USED_RESOLUTION`] old. Best effort and informational: the write runs off the request
/// path, so no request waits for the database's writer (busy or full).
pub fn note_key_use(store: &Arc<dyn Store>, key: &ApiKey, now: Timestamp) {
    let recent = key
        .last_used_at
        .is_some_and(|t| now.duration_since(t) < LAST_USED_RESOLUTION);
    if !recent {
        let (store, id) = (store.clone(), key.id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(&id, now).await {
                tracing::debug!(error = %e, "recording the key's last use failed");
            }
        });
    }
}

// ---- Entra ID ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct EntraConfig {
    /// Accepted `iss` values, e.g. `https://login.microsoftonline.com/{tid}/v2.0`.
    pub issuers: Vec<String>,
    /// Accepted `aud` values (the API's application id URI or client id).
    pub audiences: Vec<String>,
    pub jwks_url: String,
    /// The app role that grants API-key management.
    pub admin_role: String,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EntraClaims {
    tid: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    #[serde(default)]
    roles: Vec<String>,
    preferred_username: Option<String>,
    upn: Option<String>,
    oid: Option<String>,
    sub: Option<String>,
}

struct JwksCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Timestamp>,
}

pub struct EntraVerifier {
    cfg: EntraConfig,
    http: reqwest::Client,
    cache: Mutex<JwksCache>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EntraVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraVerifier")
            .field("cfg", &self.cfg)
            .finish()
    }
}

/// How long a fetched JWKS suppresses refetching on an unknown `kid`.
pub const JWKS_REFETCH_INTERVAL: SignedDuration = SignedDuration::from_secs(300);
const CLOCK_SKEW: i64 = 60;

pub struct VerifiedUser {
    pub tid: String,
    pub user: String,
    pub admin: bool,
}

impl EntraVerifier {
    pub fn new(cfg: EntraConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            cfg,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("http client"),
            cache: Mutex::new(JwksCache {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            clock,
        }
    }

    async fn refresh(&self, cache: &mut JwksCache) -> Result<(), ApiError> {
        cache.fetched_at = Some(self.clock.now());
        let jwks: Jwks = async {
            self.http
                .get(&self.cfg.jwks_url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "JWKS fetch failed");
            ApiError::unauthorized("the token's signing keys could not be fetched")
        })?;
        cache.keys = jwks
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA")
            .filter_map(|k| {
                let key =
                    DecodingKey::from_rsa_components(k.n.as_deref()?, k.e.as_deref()?).ok()?;
                Some((k.kid?, key))
            })
            .collect();
        Ok(())
    }

    async fn key_for(&self, kid: &str) -> Result<DecodingKey, ApiError> {
        let mut cache = self.cache.lock().await;
        if let Some(k) = cache.keys.get(kid) {
            return Ok(k.clone());
        }
        let now = self.clock.now();
        let stale = cache
            .fetched_at
            .is_none_or(|t| now.duration_since(t) >= JWKS_REFETCH_INTERVAL);
        if stale {
            self.refresh(&mut cache).await?;
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("the token is signed with an unknown key"))
    }

    pub async fn verify(&self, token: &str) -> Result<VerifiedUser, ApiError> {
        let bad = |m: &str| ApiError::unauthorized(m.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("invalid bearer token"))?;
        if header.alg != Algorithm::RS256 {
            return Err(bad("only RS256 tokens are accepted"));
        }
        let kid = header.kid.ok_or_else(|| bad("the token has no kid"))?;
        let key = self.key_for(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&self.cfg.audiences);
        v.set_issuer(&self.cfg.issuers);
        // Expiry is checked below against the injected clock.
        v.validate_exp = false;
        v.required_spec_claims = ["aud", "iss"].iter().map(|s| s.to_string()).collect();
        let data = jsonwebtoken::decode::<EntraClaims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            match e.kind() {
                InvalidAudience => bad("the token is for another audience"),
                InvalidIssuer => bad("the token is from an untrusted issuer"),
                InvalidSignature => bad("the token's signature is invalid"),
                _ => bad("invalid bearer token"),
            }
        })?;
        let c = data.claims;
        let now = self.clock.now().as_second();
        let exp = c.exp.ok_or_else(|| bad("the token has no exp"))?;
        if now >= exp + CLOCK_SKEW {
            return Err(bad("the token has expired"));
        }
        if c.nbf.is_some_and(|nbf| now + CLOCK_SKEW < nbf) {
            return Err(bad("the token is not valid yet"));
        }
        let tid = c.tid.ok_or_else(|| bad("the token has no tid claim"))?;
        let user = c
            .preferred_username
            .or(c.upn)
            .or(c.oid)
            .or(c.sub)
            .unwrap_or_else(|| "entra-user".to_owned());
        Ok(VerifiedUser {
            tid,
            admin: c.roles.iter().any(|r| r == &self.cfg.admin_role),
            user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_documented_shape() {
        let now = Timestamp::UNIX_EPOCH;
        let k = mint_key("tn_1", "live", "cli", None, now);
        assert!(k.plaintext.starts_with("neo_sk_live_"));
        assert_eq!(parse_key(&k.plaintext).unwrap().to_string(), k.plaintext);
        assert_eq!(k.row.key_hash, hash_key(&k.plaintext));
        assert!(k.plaintext.ends_with(&k.row.hint));
        assert_eq!(parse_key("neo_sk_prod_abc"), None);
        assert_eq!(parse_key("Bearer x"), None);
    }
}
