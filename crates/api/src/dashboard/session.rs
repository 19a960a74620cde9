//! Dashboard sessions and CSRF protection.
//!
//! Signing in with an API key creates a server-side session: the browser gets a random
//! 256-bit session id in an `HttpOnly; SameSite=Strict` cookie and the server keeps, under the
//! SHA-256 of that id, the key's *id* (never the key itself), its tenant and the session's
//! CSRF token. Every request re-checks that the key is still usable (revocation and expiry take
//! effect at once) and counts against the tenant's rate limit, like an API request. Every form
//! carries the session's CSRF token in a hidden field, checked in constant time on each POST;
//! the sign-in form, which has no session yet, uses a double-submit token (a cookie and the
//! same value in the form). Sign-in attempts are limited per client address
//! ([`SIGN_IN_ATTEMPTS`] per [`SIGN_IN_WINDOW`]), and sessions are capped per tenant
//! ([`MAX_SESSIONS_PER_TENANT`]: over it, the tenant's own oldest session ends, never another
//! tenant's).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::{Principal, PrincipalKind};
use crate::server::ClientInfo;
use crate::AppState;

pub const SESSION_COOKIE: &str = "neo_session";
pub const LOGIN_COOKIE: &str = "neo_login_csrf";
/// A session lasts this long after sign-in.
pub const SESSION_TTL: SignedDuration = SignedDuration::from_hours(12);
/// Most sessions a tenant keeps at once; over it, its expired ones are dropped, then its oldest.
pub const MAX_SESSIONS_PER_TENANT: usize = 1_000;
/// Sign-in attempts (POST `/login`) a client address may make per [`SIGN_IN_WINDOW`].
pub const SIGN_IN_ATTEMPTS: u32 = 10;
pub const SIGN_IN_WINDOW: SignedDuration = SignedDuration::from_secs(60);

#[derive(Debug, Clone)]
struct Session {
    key_id: String,
    tenant_id: String,
    csrf: String,
    expires_at: Timestamp,
}

/// The server-side session table (per process: with several replicas, pin a user to one or
/// sign in again), per tenant.
#[derive(Debug)]
pub struct Sessions {
    per_tenant_cap: usize,
    inner: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// Tenant id → its sessions by the SHA-256 of their id.
    tenants: HashMap<String, HashMap<[u8; 32], Session>>,
    /// Session digest → tenant id.
    index: HashMap<[u8; 32], String>,
}

impl Table {
    fn remove(&mut self, k: &[u8; 32]) {
        if let Some(t) = self.index.remove(k) {
            if let Some(m) = self.tenants.get_mut(&t) {
                m.remove(k);
                if m.is_empty() {
                    self.tenants.remove(&t);
                }
            }
        }
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::with_cap(MAX_SESSIONS_PER_TENANT)
    }
}

/// A fresh random token (256 bits, base64url without padding).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// Constant-time comparison of two tokens.
pub fn tokens_match(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// A table keeping at most `per_tenant_cap` sessions per tenant.
    pub fn with_cap(per_tenant_cap: usize) -> Self {
        Self {
            per_tenant_cap: per_tenant_cap.max(1),
            inner: Mutex::default(),
        }
    }

    /// Opens a session for `key_id` of `tenant_id`; returns the cookie value. At the tenant's
    /// cap its expired sessions are dropped, then its oldest; other tenants' are not touched.
    pub fn create(&self, key_id: &str, tenant_id: &str, now: Timestamp) -> String {
        let id = random_token();
        let k = digest(&id);
        let mut table = self.inner.lock().expect("sessions lock");
        let Table { tenants, index } = &mut *table;
        let mine = tenants.entry(tenant_id.to_owned()).or_default();
        if mine.len() >= self.per_tenant_cap {
            mine.retain(|k, s| {
                let live = s.expires_at > now;
                if !live {
                    index.remove(k);
                }
                live
            });
            if mine.len() >= self.per_tenant_cap {
                if let Some(oldest) = mine
                    .iter()
                    .min_by_key(|(_, s)| s.expires_at)
                    .map(|(k, _)| *k)
                {
                    mine.remove(&oldest);
                    index.remove(&oldest);
                }
            }
        }
        mine.insert(
            k,
            Session {
                key_id: key_id.to_owned(),
                tenant_id: tenant_id.to_owned(),
                csrf: random_token(),
                expires_at: now + SESSION_TTL,
            },
        );
        index.insert(k, tenant_id.to_owned());
        id
    }

    fn get(&self, id: &str, now: Timestamp) -> Option<Session> {
        let mut table = self.inner.lock().expect("sessions lock");
        let k = digest(id);
        let s = table
            .index
            .get(&k)
            .and_then(|t| table.tenants.get(t))
            .and_then(|m| m.get(&k))
            .cloned()?;
        if s.expires_at > now {
            Some(s)
        } else {
            table.remove(&k);
            None
        }
    }

    pub fn remove(&self, id: &str) {
        self.inner
            .lock()
            .expect("sessions lock")
            .remove(&digest(id));
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when the client came over
/// HTTPS (known only behind a trusted proxy: [`ClientInfo`]).
pub fn set_cookie(client: ClientInfo, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if client.https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie value is ASCII")
}

/// A 429 page "Too many requests {what}; try again in N s." with `Retry-After`.
pub fn too_many_requests(what: &str, retry_after: u64) -> Response {
    metrics::counter!("neo_rate_limited_total").increment(1);
    let mut r = super::error_response(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("Too many requests {what}; try again in {retry_after} s."),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

/// Whether the request was sent by htmx (it then expects a fragment or an `HX-Redirect`).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// Sends the browser to `to`: `HX-Redirect` for htmx, else 303 See Other.
pub fn redirect(headers: &HeaderMap, to: &str) -> Response {
    if is_htmx(headers) {
        let mut r = StatusCode::OK.into_response();
        if let Ok(v) = HeaderValue::from_str(to) {
            r.headers_mut().insert("hx-redirect", v);
        }
        r
    } else {
        Redirect::to(to).into_response()
    }
}

/// The signed-in user of a dashboard request: the same [`Principal`] an API request with the
/// key would have, and the session's CSRF token.
pub struct DashUser {
    pub principal: Principal,
    pub csrf: String,
    pub session_id: String,
}

impl DashUser {
    /// The key id (the `created_by` of what this user creates).
    pub fn key_id(&self) -> &str {
        match &self.principal.kind {
            PrincipalKind::ApiKey { key_id } => key_id,
            PrincipalKind::Entra { user, .. } => user,
        }
    }

    /// Checks the CSRF token of a form.
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), Response> {
        if submitted.is_some_and(|t| tokens_match(t, &self.csrf)) {
            Ok(())
        } else {
            Err(super::error_response(
                StatusCode::FORBIDDEN,
                "The form's security token is missing or stale. Reload the page and try again.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for DashUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let to_login = || redirect(&parts.headers, "/login");
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(to_login());
        };
        let now = app.clock.now();
        let Some(s) = app.sessions.get(&id, now) else {
            return Err(to_login());
        };
        // The key may have been revoked or may have expired since sign-in.
        let key = match app.store.api_key(&s.key_id).await {
            Ok(Some(k)) if k.is_usable(now) => k,
            Ok(_) => {
                app.sessions.remove(&id);
                return Err(to_login());
            }
            Err(e) => return Err(crate::error::ApiError::from(e).into_response()),
        };
        let tenant = match app.store.tenant(&key.tenant_id).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(crate::error::ApiError::from(e).into_response()),
        };
        if tenant.id != s.tenant_id {
            app.sessions.remove(&id);
            return Err(to_login());
        }
        let d = app.limiter.check(&tenant.id, now);
        if !d.allowed {
            return Err(too_many_requests("for this tenant", d.retry_after));
        }
        Ok(DashUser {
            principal: Principal {
                tenant,
                kind: PrincipalKind::ApiKey { key_id: key.id },
            },
            csrf: s.csrf,
            session_id: id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_hold_no_key() {
        let s = Sessions::default();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let id = s.create("key_1", "ten_a", t0);
        assert_eq!(s.get(&id, t0).unwrap().key_id, "key_1");
        assert!(s.get(&id, t0 + SESSION_TTL).is_none());
        assert!(s.get("other", t0).is_none());
        let id = s.create("key_1", "ten_a", t0);
        s.remove(&id);
        assert!(s.get(&id, t0).is_none());
        let t = s.inner.lock().unwrap();
        assert!(t.index.is_empty() && t.tenants.is_empty(), "{t:?}");
    }

    /// Issue 14: the cap was global, so one tenant signing in often enough ended every other
    /// tenant's sessions. Over its own cap a tenant loses its own oldest session only.
    #[test]
    fn one_tenant_over_its_cap_evicts_only_its_own_oldest_sessions() {
        let s = Sessions::with_cap(3);
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at = |m: i64| t0 + SignedDuration::from_mins(m);
        let b = s.create("key_b", "ten_b", at(0));
        let a: Vec<String> = (1..=10)
            .map(|m| s.create("key_a", "ten_a", at(m)))
            .collect();
        // Tenant B's session survives tenant A's ten sign-ins.
        assert_eq!(s.get(&b, at(11)).unwrap().tenant_id, "ten_b");
        // Tenant A keeps its three newest.
        let live: Vec<bool> = a.iter().map(|id| s.get(id, at(11)).is_some()).collect();
        assert_eq!(
            live,
            [false, false, false, false, false, false, false, true, true, true]
        );
        // Expired sessions are dropped before a live one is evicted.
        let later = at(8) + SESSION_TTL; // a[7] (created at 8 min) has just expired
        let fresh = s.create("key_a", "ten_a", later);
        assert!(s.get(&a[8], later).is_some() && s.get(&a[9], later).is_some());
        assert!(s.get(&fresh, later).is_some());
        assert_eq!(s.inner.lock().unwrap().tenants["ten_a"].len(), 3);
    }

    #[test]
    fn cookies_and_tokens() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; neo_session=xyz"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("", ""));
        let plain = ClientInfo {
            addr: None,
            https: false,
        };
        let c = set_cookie(plain, "n", "v", 10);
        assert_eq!(
            c.to_str().unwrap(),
            "n=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=10"
        );
        let c = set_cookie(
            ClientInfo {
                https: true,
                ..plain
            },
            "n",
            "v",
            10,
        );
        assert!(c.to_str().unwrap().ends_with("; Secure"));
    }
}
