//! Executors (SPEC §4): how one execution runs. `webhook` POSTs a signed JSON body to the
//! workflow's URL; `simulated` runs in-process with a latency and a deterministic failure rate.

use std::net::SocketAddr;
use std::time::Duration;

use jiff::SignedDuration;
use neo_domain::clock::Clock;
use neo_domain::egress::{Denied, EgressPolicy};
use neo_store::Claimed;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecResult {
    Succeeded,
    /// Permanent failure: not retried.
    Failed(String),
    /// Timeouts, connection errors, 408, 429, 5xx: retried with backoff.
    Transient {
        error: String,
        retry_after: Option<SignedDuration>,
    },
    /// 202: the executor reports later through `POST /executions/{id}/complete`.
    Accepted,
}

/// A workflow's executor configuration, as stored on the workflow.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorConfig {
    Webhook {
        url: String,
        secret: String,
        timeout: Option<Duration>,
    },
    Simulated {
        latency: Duration,
        failure_rate: f64,
        seed: u64,
    },
}

impl ExecutorConfig {
    pub fn parse(v: &Value) -> Result<Self, String> {
        match v.get("type").and_then(Value::as_str) {
            Some("webhook") => Ok(Self::Webhook {
                url: v["url"]
                    .as_str()
                    .ok_or("webhook executor without url")?
                    .to_owned(),
                secret: v["secret"]
                    .as_str()
                    .ok_or("webhook executor without secret")?
                    .to_owned(),
                timeout: v
                    .get("timeout_ms")
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis),
            }),
            Some("simulated") => Ok(Self::Simulated {
                latency: Duration::from_millis(
                    v.get("latency_ms").and_then(Value::as_u64).unwrap_or(0),
                ),
                failure_rate: v.get("failure_rate").and_then(Value::as_f64).unwrap_or(0.0),
                seed: v.get("seed").and_then(Value::as_u64).unwrap_or(0),
            }),
            _ => Err("unknown executor type".into()),
        }
    }
}

/// Whether the simulated executor fails `entity_id`: a pure function of seed and entity.
pub fn simulated_fails(seed: u64, entity_id: &str, failure_rate: f64) -> bool {
    if failure_rate <= 0.0 {
        return false;
    }
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(entity_id.as_bytes());
    let d = h.finalize();
    let x = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
    (x as f64 / u64::MAX as f64) < failure_rate
}

/// The JSON body sent to a webhook executor.
pub fn webhook_body(c: &Claimed, workflow_name: &str, entity_type: &str) -> Value {
    json!({
        "event": "execution",
        "execution_id": c.execution_id,
        "attempt": c.attempt,
        "tenant_id": c.tenant_id,
        "backfill_id": c.backfill_id,
        "agent": {"id": c.workflow_id, "name": workflow_name},
        "entity": {"type": entity_type, "id": c.entity_id, "number": c.entity_number},
    })
}

/// Parses `Retry-After` (seconds or an HTTP date).
pub fn parse_retry_after(v: &str, now: jiff::Timestamp) -> Option<SignedDuration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<i64>() {
        return (s >= 0).then(|| SignedDuration::from_secs(s));
    }
    let t = jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S GMT", v)
        .ok()?
        .to_datetime()
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp();
    Some(t.duration_since(now).max(SignedDuration::ZERO))
}

/// The DNS resolver of the webhook client: it resolves names with the system resolver and
/// drops every address the [`EgressPolicy`] refuses, so a name that resolves (or is rebound)
/// to a private address is never connected to. Addresses written in the URL are not resolved;
/// [`check_target`] checks them before the call.
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
                    "the webhook host {host:?} resolves to a refused address: {e}"
                )))
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// The HTTP client of webhook calls: guarded DNS, and no redirects (a redirect would carry the
/// signed body to a target nobody validated; a 3xx answer fails the execution).
pub fn webhook_client(policy: EgressPolicy) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(GuardedResolver(policy))
        .build()
        .expect("http client")
}

/// Checks a webhook URL before a call: its scheme and, when the host is an address or a
/// `localhost` name, that address (names are checked by [`GuardedResolver`] as they resolve).
pub fn check_target(policy: EgressPolicy, url: &str) -> Result<(), String> {
    policy.check_url(url).map(|_| ()).map_err(|e| e.0)
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

/// One webhook call.
pub async fn call_webhook(
    http: &reqwest::Client,
    clock: &dyn Clock,
    url: &str,
    secret: &str,
    timeout: Duration,
    execution_id: &str,
    body: &Value,
) -> ExecResult {
    let bytes = serde_json::to_vec(body).expect("serializes");
    let ts = clock.now().as_second();
    let sig = neo_domain::signature::sign(secret.as_bytes(), ts, &bytes);
    let resp = http
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("idempotency-key", execution_id)
        .header("x-neo-timestamp", ts.to_string())
        .header("x-neo-signature", sig)
        .body(bytes)
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return ExecResult::Transient {
                error: format!(
                    "the executor did not answer within {} ms",
                    timeout.as_millis()
                ),
                retry_after: None,
            }
        }
        // A refused target does not become reachable by retrying.
        Err(e) if refusal(&e).is_some() => {
            return ExecResult::Failed(refusal(&e).unwrap_or_default());
        }
        Err(e) => {
            return ExecResult::Transient {
                error: format!("could not reach the executor: {}", e.without_url()),
                retry_after: None,
            }
        }
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, clock.now()));
    if status.as_u16() == 202 {
        return ExecResult::Accepted;
    }
    if status.is_success() {
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        return match body.get("status").and_then(Value::as_str) {
            Some("failed") => ExecResult::Failed(
                body.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("the executor reported failure")
                    .chars()
                    .take(2000)
                    .collect(),
            ),
            _ => ExecResult::Succeeded,
        };
    }
    let code = status.as_u16();
    if code == 408 || code == 429 || status.is_server_error() {
        ExecResult::Transient {
            error: format!("the executor answered HTTP {code}"),
            retry_after,
        }
    } else {
        ExecResult::Failed(format!("the executor answered HTTP {code}"))
    }
}

/// Best-effort cancel of an execution a webhook executor accepted asynchronously.
pub async fn cancel_webhook(
    http: &reqwest::Client,
    clock: &dyn Clock,
    url: &str,
    secret: &str,
    execution_id: &str,
) {
    let body = json!({"event": "cancel", "execution_id": execution_id});
    let bytes = serde_json::to_vec(&body).expect("serializes");
    let ts = clock.now().as_second();
    let sig = neo_domain::signature::sign(secret.as_bytes(), ts, &bytes);
    let r = http
        .post(url)
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .header("idempotency-key", format!("{execution_id}:cancel"))
        .header("x-neo-event", "cancel")
        .header("x-neo-timestamp", ts.to_string())
        .header("x-neo-signature", sig)
        .body(bytes)
        .send()
        .await;
    if let Err(e) = r {
        tracing::warn!(execution_id, error = %e.without_url(), "cancel call failed");
    }
}

/// Capped exponential backoff with full jitter: a delay drawn from
/// `[0, min(cap, base · 2^(attempt-1))]`, and never shorter than the executor's `Retry-After`.
pub fn backoff(
    attempt: i64,
    base: SignedDuration,
    cap: SignedDuration,
    retry_after: Option<SignedDuration>,
    unit: f64,
) -> SignedDuration {
    let exp = (attempt - 1).clamp(0, 30) as u32;
    let ceiling = base
        .checked_mul(1i32.checked_shl(exp).unwrap_or(i32::MAX))
        .unwrap_or(cap)
        .min(cap);
    let jittered = SignedDuration::from_secs_f64(ceiling.as_secs_f64() * unit.clamp(0.0, 1.0));
    match retry_after {
        Some(r) => jittered.max(r.min(SignedDuration::from_hours(1))),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_failures_are_deterministic_and_near_the_rate() {
        let n = (0..10_000)
            .filter(|i| simulated_fails(7, &i.to_string(), 0.3))
            .count();
        assert!((2_700..3_300).contains(&n), "{n}");
        for i in 0..100 {
            let id = i.to_string();
            assert_eq!(simulated_fails(7, &id, 0.3), simulated_fails(7, &id, 0.3));
        }
        assert!(!simulated_fails(7, "1", 0.0));
        assert!(simulated_fails(7, "1", 1.0));
    }

    #[test]
    fn backoff_is_capped_jittered_and_honours_retry_after() {
        let s = SignedDuration::from_secs;
        assert_eq!(backoff(1, s(1), s(60), None, 1.0), s(1));
        assert_eq!(backoff(3, s(1), s(60), None, 1.0), s(4));
        assert_eq!(backoff(10, s(1), s(60), None, 1.0), s(60));
        assert_eq!(backoff(3, s(1), s(60), None, 0.0), s(0));
        assert_eq!(backoff(3, s(1), s(60), None, 0.5), s(2));
        assert_eq!(backoff(1, s(1), s(60), Some(s(2)), 0.5), s(2));
        assert_eq!(backoff(40, s(1), s(60), None, 1.0), s(60));
    }

    /// A name that resolves to loopback is refused by the resolver itself (what DNS
    /// rebinding would exploit), the call fails at once (not transient), and nothing is sent.
    #[tokio::test]
    async fn the_guarded_resolver_refuses_names_that_resolve_to_private_addresses() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                h.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(json!({"status": "succeeded"})) }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        // `localhost` is the one name every machine resolves to loopback; the URL check would
        // refuse it by name, so the client is called directly to exercise the resolver.
        let url = format!("http://localhost:{port}/hook");
        let clock = neo_domain::clock::SystemClock;
        let call = |policy| {
            let url = url.clone();
            async move {
                call_webhook(
                    &webhook_client(policy),
                    &clock,
                    &url,
                    "whsec_0123456789abcdef",
                    Duration::from_secs(10),
                    "ex_1",
                    &json!({}),
                )
                .await
            }
        };
        match call(EgressPolicy::new(false)).await {
            ExecResult::Failed(e) => {
                assert!(
                    e.contains("\"localhost\" resolves to a refused address")
                        && e.contains("loopback"),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        assert_eq!(call(EgressPolicy::new(true)).await, ExecResult::Succeeded);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_after_forms() {
        let now: jiff::Timestamp = "2026-11-28T21:07:35Z".parse().unwrap();
        assert_eq!(
            parse_retry_after("2", now),
            Some(SignedDuration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 21:07:45 GMT", now),
            Some(SignedDuration::from_secs(10))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
