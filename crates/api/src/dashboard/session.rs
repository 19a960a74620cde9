//! Dashboard sessions and CSRF protection.
//!
//! Signing in with an API key creates a server-side session: the browser gets a random
//! 256-bit session id in an `HttpOnly; SameSite=Strict` cookie and the server keeps, under the
//! SHA-256 of that id, the key's *id* (never the key itself), its tenant and the session's
//! CSRF token. Every request re-checks that the key is still usable (revocation and expiry take
//! effect at once) and counts against the tenant's rate limit, like an API request. Every form
//! carries the session's CSRF token in a hidden field, checked in constant time on each POST;
//! the sign-in form, which has no session yet, uses a double-submit token (a cookie and the
//! same value in the form).

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
use crate::AppState;

pub const SESSION_COOKIE: &str = "neo_session";
pub const LOGIN_COOKIE: &str = "neo_login_csrf";
/// A session lasts this long after sign-in.
pub const SESSION_TTL: SignedDuration = SignedDuration::from_hours(12);
/// Most sessions kept at once; expired ones are dropped first, then the oldest.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
struct Session {
    key_id: String,
    csrf: String,
    expires_at: Timestamp,
}

/// The server-side session table (per process: with several replicas, pin a user to one or
/// sign in again).
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
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
    /// Opens a session for `key_id`; returns the cookie value.
    pub fn create(&self, key_id: &str, now: Timestamp) -> String {
        let id = random_token();
        let mut map = self.map.lock().expect("sessions lock");
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires_at > now);
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires_at)
                    .map(|(k, _)| *k)
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            digest(&id),
            Session {
                key_id: key_id.to_owned(),
                csrf: random_token(),
                expires_at: now + SESSION_TTL,
            },
        );
        id
    }

    fn get(&self, id: &str, now: Timestamp) -> Option<Session> {
        let mut map = self.map.lock().expect("sessions lock");
        let k = digest(id);
        match map.get(&k) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.map.lock().expect("sessions lock").remove(&digest(id));
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

/// Whether the browser reached us over HTTPS (directly behind a TLS-terminating proxy).
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure behind HTTPS.
pub fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if is_https(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie value is ASCII")
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
        let d = app.limiter.check(&tenant.id, now);
        if !d.allowed {
            metrics::counter!("neo_rate_limited_total").increment(1);
            let mut r = super::error_response(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many requests for this tenant; try again in {} s.",
                    d.retry_after
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(d.retry_after));
            return Err(r);
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
        let id = s.create("key_1", t0);
        assert_eq!(s.get(&id, t0).unwrap().key_id, "key_1");
        assert!(s.get(&id, t0 + SESSION_TTL).is_none());
        assert!(s.get("other", t0).is_none());
        let id = s.create("key_1", t0);
        s.remove(&id);
        assert!(s.get(&id, t0).is_none());
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
        let c = set_cookie(&h, "n", "v", 10);
        assert_eq!(
            c.to_str().unwrap(),
            "n=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=10"
        );
    }
}
