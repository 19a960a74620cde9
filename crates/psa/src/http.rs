//! Reads against a PSA with the retry and throttling policy every connector shares: 429 waits
//! for `Retry-After` (slowing down, never failing, within a total budget); 5xx, timeouts and
//! connection errors are retried with capped exponential backoff (reads only); 401 and other
//! 4xx are not retried. Every call goes through the guarded [`Egress`] client (no redirects,
//! private targets refused unless allowed, answers capped at `max_response_bytes`).

use std::time::Duration;

use neo_egress::{Egress, EgressError};

use crate::budget::RequestGate;

#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Retries of a 5xx, timeout or connection error.
    pub max_retries: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Total time one read may spend waiting on 429s before the page is deferred.
    pub max_throttle_wait: Duration,
    pub timeout: Duration,
    /// Halo: the wait after a 429 without `Retry-After`. Halo's window is 300 requests per rolling 5 minutes, so
    /// the short backoff used elsewhere would only burn requests (docs/psa.md §3, §6.6).
    pub halo_throttle_wait: Duration,
    /// Largest PSA answer read (a page, a count, a token); beyond it the read fails.
    pub max_response_bytes: usize,
    /// What every attempt waits on before it is sent: the tenant's request budget for a
    /// backfill's requests ([`crate::budget`]); none for an operator's own (a count at create).
    pub gate: Option<Gate>,
}

/// A [`RequestGate`] in a policy.
#[derive(Clone)]
pub struct Gate(pub std::sync::Arc<dyn RequestGate>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_throttle_wait: Duration::from_secs(15 * 60),
            timeout: Duration::from_secs(30),
            halo_throttle_wait: Duration::from_secs(60),
            max_response_bytes: 16 << 20,
            gate: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PsaError {
    /// Credentials refused.
    #[error("the PSA refused the credentials: {0}")]
    Auth(String),
    /// The PSA refused the request (a query it cannot run, an unknown field): not retried.
    #[error("the PSA refused the request: {0}")]
    Rejected(String),
    /// Throttled, 5xx, timeouts or connection errors after every retry: try again later.
    #[error("the PSA is unavailable: {0}")]
    Unavailable(String),
    /// The PSA answered something this connector does not understand.
    #[error("unexpected answer from the PSA: {0}")]
    Protocol(String),
    /// The PSA refused a write as a conflict (HTTP 409): not retried, the entity fails.
    #[error("the PSA refused the write as a conflict: {0}")]
    Conflict(String),
    /// Nothing was sent: re-read right before writing, the record's concurrency token had
    /// moved since the read the write was planned on. The caller reads again and plans again.
    #[error("the record changed in the PSA since it was read: {0}")]
    Moved(String),
}

impl PsaError {
    pub fn is_transient(&self) -> bool {
        matches!(self, PsaError::Unavailable(_))
    }
}

fn retry_after(r: &reqwest::Response) -> Option<Duration> {
    let v = r.headers().get("retry-after")?.to_str().ok()?;
    let d = neo_egress::parse_retry_after(v, jiff::Timestamp::now())?;
    Some(Duration::from_millis(d.as_millis().max(0) as u64))
}

/// Sends the request `make` builds through the guarded egress client, retrying per `policy`.
/// Returns a 2xx response.
pub async fn read(
    egress: &Egress,
    policy: &HttpPolicy,
    what: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, PsaError> {
    read_with(egress, policy, what, None, make).await
}

/// [`read`], waiting `throttle_fallback` (instead of the backoff) after a 429 without `Retry-After`. A 429 with
/// `Retry-After` always waits at least what it says.
///
/// Errors name the PSA call (`what`), the status and a fixed classification; the body of a
/// refusal is never read into them (a hostile PSA URL could point at an internal endpoint whose
/// answer would otherwise come back in an API response).
pub async fn read_with(
    egress: &Egress,
    policy: &HttpPolicy,
    what: &str,
    throttle_fallback: Option<Duration>,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, PsaError> {
    let how = How {
        throttle_fallback,
        retry_failures: true,
        one_record: false,
        server_errors_refuse: false,
    };
    send(egress, policy, what, how, make).await
}

/// Reads one record by id: a 404 means the record does not exist (not a wrong URL).
pub async fn read_record(
    egress: &Egress,
    policy: &HttpPolicy,
    what: &str,
    throttle_fallback: Option<Duration>,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, PsaError> {
    let how = How {
        throttle_fallback,
        retry_failures: true,
        one_record: true,
        server_errors_refuse: false,
    };
    send(egress, policy, what, how, make).await
}

/// Sends a write. A 429 is waited out and sent again (the PSA did not process it). A 5xx, a
/// timeout or a dropped connection is retried only when `idempotent`: the PSA may have
/// processed the request before failing, and sending a note twice would add it twice (a
/// conditional update is safe to send again: a replay of a write that took effect is refused as
/// a conflict, and the caller then reads the record, finds the change made and plans nothing).
/// A 409 is [`PsaError::Conflict`]; any other refusal is [`PsaError::Rejected`], never retried.
pub async fn write(
    egress: &Egress,
    policy: &HttpPolicy,
    what: &str,
    w: Write,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, PsaError> {
    let how = How {
        throttle_fallback: w.throttle_fallback,
        retry_failures: w.idempotent && !w.server_errors_refuse,
        one_record: true,
        server_errors_refuse: w.server_errors_refuse,
    };
    send(egress, policy, what, how, make).await
}

/// How a write is sent ([`write`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Write {
    /// Sending it twice does what sending it once does (an update of absolute values).
    pub idempotent: bool,
    /// The wait after a 429 without `Retry-After` (else the backoff).
    pub throttle_fallback: Option<Duration>,
    /// The PSA answers a refused write with a 5xx (Autotask answers validation errors with
    /// HTTP 500 and an `errors` list): a 5xx is a refusal, not retried.
    pub server_errors_refuse: bool,
}

/// How [`send`] treats answers.
struct How {
    /// The wait after a 429 without `Retry-After` (else the backoff).
    throttle_fallback: Option<Duration>,
    /// Whether 5xx, timeouts and dropped connections are sent again.
    retry_failures: bool,
    /// The request names one record: a 404 says it does not exist.
    one_record: bool,
    /// A 5xx is a refusal ([`Write::server_errors_refuse`]).
    server_errors_refuse: bool,
}

async fn send(
    egress: &Egress,
    policy: &HttpPolicy,
    what: &str,
    how: How,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, PsaError> {
    let throttle_fallback = how.throttle_fallback;
    let max_retries = if how.retry_failures {
        policy.max_retries
    } else {
        0
    };
    let mut retries = 0u32;
    let mut throttled = Duration::ZERO;
    loop {
        let backoff = policy
            .base_backoff
            .saturating_mul(1u32 << retries.min(16))
            .min(policy.max_backoff);
        if let Some(Gate(g)) = &policy.gate {
            g.admit().await;
        }
        match egress.send(make(), policy.timeout).await {
            Err(e) if !e.is_transient() => {
                return Err(PsaError::Rejected(format!(
                    "{what}: {}",
                    e.describe("the PSA")
                )));
            }
            Err(e) => {
                if retries >= max_retries {
                    return Err(PsaError::Unavailable(format!(
                        "{what}: {}",
                        e.describe("the PSA")
                    )));
                }
                tracing::warn!(what, error = %e, retries, "PSA request failed; retrying");
            }
            Ok(r) if r.status().as_u16() == 429 => {
                let wait = retry_after(&r)
                    .or(throttle_fallback)
                    .unwrap_or(backoff)
                    .max(Duration::from_millis(50));
                throttled += wait;
                if throttled > policy.max_throttle_wait {
                    return Err(PsaError::Unavailable(format!(
                        "{what}: throttled for {} s",
                        throttled.as_secs()
                    )));
                }
                metrics_throttled();
                tracing::info!(
                    what,
                    wait_ms = wait.as_millis() as u64,
                    "PSA throttled; waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            Ok(r) if r.status().is_server_error() && how.server_errors_refuse => {
                return Err(PsaError::Rejected(format!(
                    "{what}: the PSA answered HTTP {} (write refused)",
                    r.status().as_u16()
                )));
            }
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 408 => {
                if retries >= max_retries {
                    return Err(PsaError::Unavailable(format!(
                        "{what}: the PSA answered HTTP {}",
                        r.status().as_u16()
                    )));
                }
                tracing::warn!(
                    what,
                    status = r.status().as_u16(),
                    retries,
                    "PSA server error; retrying"
                );
            }
            Ok(r) if r.status().as_u16() == 401 || r.status().as_u16() == 403 => {
                return Err(PsaError::Auth(format!(
                    "{what}: the PSA answered HTTP {} (credentials refused)",
                    r.status().as_u16()
                )));
            }
            Ok(r) if r.status().as_u16() == 409 => {
                return Err(PsaError::Conflict(format!(
                    "{what}: the PSA answered HTTP 409"
                )));
            }
            Ok(r) if r.status().as_u16() == 404 && how.one_record => {
                return Err(PsaError::Rejected(format!(
                    "{what}: the PSA has no such record (HTTP 404)"
                )));
            }
            Ok(r) if r.status().as_u16() == 404 => {
                return Err(PsaError::Rejected(format!(
                    "{what}: the PSA answered HTTP 404 (not found: check the integration's URL)"
                )));
            }
            Ok(r) if !r.status().is_success() => {
                return Err(PsaError::Rejected(format!(
                    "{what}: the PSA answered HTTP {} (request refused)",
                    r.status().as_u16()
                )));
            }
            Ok(r) => return Ok(r),
        }
        retries += 1;
        tokio::time::sleep(backoff).await;
    }
}

fn metrics_throttled() {
    // Kept as a function so every connector counts throttling the same way.
    tracing::debug!("throttled");
}

/// Reads a JSON body of at most `policy.max_response_bytes`.
pub async fn json(
    policy: &HttpPolicy,
    r: reqwest::Response,
    what: &str,
) -> Result<serde_json::Value, PsaError> {
    let body = Egress::read_capped(r, policy.max_response_bytes, policy.timeout)
        .await
        .map_err(|e| match e {
            EgressError::TooLarge { .. } => {
                PsaError::Protocol(format!("{what}: {}", e.describe("the PSA")))
            }
            e => PsaError::Unavailable(format!("{what}: {}", e.describe("the PSA"))),
        })?;
    serde_json::from_slice(&body)
        .map_err(|_| PsaError::Protocol(format!("{what}: the PSA's answer is not valid JSON")))
}
