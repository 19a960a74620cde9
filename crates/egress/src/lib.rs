//! The one HTTP client for every call whose destination a tenant controls: PSA connectors
//! (ConnectWise, Autotask zone discovery and REST, Halo authinfo, token and REST), webhook
//! executions and their cancel calls.
//!
//! A tenant writes these URLs, and the answers come from servers the tenant (or an attacker
//! posing as one) runs, so every byte that comes back is hostile. One client, built once per
//! process, applies the same rules everywhere:
//! - **where it may connect**: the URL's scheme and literal host are checked against the
//!   [`EgressPolicy`] before the call, and every address a name resolves to is checked again by
//!   [`GuardedResolver`] at connect time (private, loopback, link-local incl.
//!   169.254.169.254, CGNAT, ULA, mapped and odd-spelled addresses), so DNS rebinding does not
//!   get around the check. `--egress-allow-private` opens private targets for labs and the demo;
//! - **no redirects**: a 3xx is an [`EgressError::Redirect`] naming the status, never followed
//!   (a redirect would carry credentials or a signed body to a target nobody checked, and
//!   would turn the service into a proxy for internal endpoints);
//! - **bounded answers**: bodies are read in chunks up to a cap ([`Egress::read_capped`]);
//!   beyond it the call fails with [`EgressError::TooLarge`] and the rest is never read;
//! - **fixed errors**: an [`EgressError`] says what went wrong in words of our own (never the
//!   upstream body, never the URL's path, query or user info), so callers can store and show
//!   it as it is.

use std::net::SocketAddr;
use std::time::Duration;

pub use neo_domain::egress::{Denied, EgressPolicy};

/// Why an outbound call failed, in fixed words: safe to store, show and log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The target is not allowed (a private address, a `localhost` name, a bad scheme).
    #[error("{0}")]
    Refused(String),
    /// The server answered a redirect; redirects are never followed.
    #[error("answered HTTP {0}, a redirect (redirects are not followed)")]
    Redirect(u16),
    /// The answer was larger than the cap.
    #[error("answered more than {} (the limit); the rest was not read", human_bytes(*limit))]
    TooLarge { limit: usize },
    /// No complete answer within the timeout.
    #[error("did not answer within {0} ms")]
    Timeout(u128),
    /// No connection could be made (refused, unreachable, TLS failure, DNS).
    #[error("could not be reached")]
    Connect,
    /// The connection broke while the request or the answer was in transit.
    #[error("broke the connection")]
    Broken,
}

impl EgressError {
    /// Whether retrying later may succeed (timeouts and connection failures).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Connect | Self::Broken)
    }

    /// A sentence about `subject` ("the PSA", "the executor"): `the PSA answered HTTP 302, a
    /// redirect (redirects are not followed)`, `the executor's target is refused: …`.
    pub fn describe(&self, subject: &str) -> String {
        match self {
            Self::Refused(m) => format!("{subject}'s target is refused: {m}"),
            e => format!("{subject} {e}"),
        }
    }
}

/// The DNS resolver of the egress client: it resolves names with the system resolver and
/// drops every address the [`EgressPolicy`] refuses, so a name that resolves (or is rebound)
/// to a private address is never connected to. Addresses written in the URL are not resolved;
/// [`Egress::send`] checks them before the call.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver(pub EgressPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut denied = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| match policy.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        denied.get_or_insert(e);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), denied) {
                (true, Some(e)) => Err(Box::new(Denied(format!(
                    "the host {host:?} resolves to a refused address: {e}"
                )))
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// The guarded client. Cheap to clone (one connection pool per process).
#[derive(Debug, Clone)]
pub struct Egress {
    http: reqwest::Client,
    policy: EgressPolicy,
}

impl Egress {
    pub fn new(policy: EgressPolicy) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(GuardedResolver(policy))
            .build()
            .expect("http client");
        Self { http, policy }
    }

    pub fn policy(&self) -> EgressPolicy {
        self.policy
    }

    /// A GET request to build on; send it with [`Egress::send`].
    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.get(url)
    }

    /// A POST request to build on; send it with [`Egress::send`].
    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.post(url)
    }

    /// A PATCH request to build on; send it with [`Egress::send`].
    pub fn patch(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.patch(url)
    }

    /// A DELETE request to build on; send it with [`Egress::send`].
    pub fn delete(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.delete(url)
    }

    /// Sends a request built on this client within `timeout` (the whole exchange, the body
    /// included). The target is checked first; a 3xx answer is an error. Any other status is
    /// returned for the caller to judge; read its body with [`Egress::read_capped`].
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<reqwest::Response, EgressError> {
        let req = req
            .timeout(timeout)
            .build()
            .map_err(|_| EgressError::Refused("the request could not be built".into()))?;
        self.policy
            .check_url(req.url().as_str())
            .map_err(|e| EgressError::Refused(e.0))?;
        let resp = self
            .http
            .execute(req)
            .await
            .map_err(|e| classify(&e, timeout))?;
        if resp.status().is_redirection() {
            return Err(EgressError::Redirect(resp.status().as_u16()));
        }
        Ok(resp)
    }

    /// Reads a body of at most `limit` bytes. A `Content-Length` above the limit fails before
    /// anything is read; otherwise chunks are read until the limit is passed.
    pub async fn read_capped(
        mut resp: reqwest::Response,
        limit: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, EgressError> {
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(EgressError::TooLarge { limit });
        }
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(EgressError::TooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(classify(&e, timeout)),
            }
        }
    }
}

/// The refusal behind a failed call, if the guard refused the target.
fn refusal(e: &reqwest::Error) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(d) = err.downcast_ref::<Denied>() {
            return Some(d.0.clone());
        }
        cur = err.source();
    }
    None
}

fn classify(e: &reqwest::Error, timeout: Duration) -> EgressError {
    if let Some(r) = refusal(e) {
        EgressError::Refused(r)
    } else if e.is_timeout() {
        EgressError::Timeout(timeout.as_millis())
    } else if e.is_connect() {
        EgressError::Connect
    } else {
        EgressError::Broken
    }
}

/// A `Retry-After` value (delta seconds, or an HTTP date) as a wait from `now`; `None` when it
/// is neither. A date in the past is no wait. The one parser of the header, for PSA reads and
/// webhook answers alike.
pub fn parse_retry_after(v: &str, now: jiff::Timestamp) -> Option<jiff::SignedDuration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<i64>() {
        return (s >= 0).then(|| jiff::SignedDuration::from_secs(s));
    }
    let t = jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S GMT", v)
        .ok()?
        .to_datetime()
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp();
    Some(t.duration_since(now).max(jiff::SignedDuration::ZERO))
}

/// Formats a byte count for messages: `64 KiB`, `16 MiB`, else bytes.
pub fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests;
