//! Executors (docs/api.md §4): how one execution runs. `webhook` POSTs a signed JSON body to the
//! workflow's URL; `simulated` runs in-process with a latency and a deterministic failure rate.

use std::time::Duration;

use jiff::SignedDuration;
use neo_domain::clock::Clock;
use neo_domain::signature::{self, Direction};
use neo_egress::Egress;
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

pub use neo_domain::executor::ExecutorSpec;

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

/// Largest webhook answer read; a larger one fails the execution with a fixed error.
pub const MAX_WEBHOOK_ANSWER: usize = 64 * 1024;

/// The outcome of a 2xx answer other than 202: `{"status":"failed","error":…}` fails (the
/// `error` member is the executor's own report, stored sanitized); an empty body or any other
/// JSON document succeeds; a body that is not JSON is a bad answer.
fn outcome_of(body: &[u8]) -> ExecResult {
    if body.iter().all(u8::is_ascii_whitespace) {
        return ExecResult::Succeeded;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return ExecResult::Failed("the executor answered 2xx with a body that is not JSON".into());
    };
    match v.get("status").and_then(Value::as_str) {
        Some("failed") => ExecResult::Failed(
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("the executor reported failure")
                .to_owned(),
        ),
        _ => ExecResult::Succeeded,
    }
}

/// The signing headers of a message about `execution_id`.
fn signed_headers(
    req: reqwest::RequestBuilder,
    clock: &dyn Clock,
    secret: &str,
    direction: Direction,
    execution_id: &str,
    bytes: &[u8],
) -> reqwest::RequestBuilder {
    let ts = clock.now().as_second();
    let sig = signature::sign(secret.as_bytes(), ts, direction, execution_id, bytes);
    req.header("content-type", "application/json")
        .header("x-neo-event", direction.as_str())
        .header("x-neo-timestamp", ts.to_string())
        .header("x-neo-signature", sig)
}

/// One webhook call through the guarded egress client: no redirects, private targets refused
/// unless allowed, the answer read up to [`MAX_WEBHOOK_ANSWER`], errors in fixed words.
pub async fn call_webhook(
    http: &Egress,
    clock: &dyn Clock,
    url: &str,
    secret: &str,
    timeout: Duration,
    execution_id: &str,
    body: &Value,
) -> ExecResult {
    let bytes = serde_json::to_vec(body).expect("serializes");
    let req = signed_headers(
        http.post(url),
        clock,
        secret,
        Direction::Execution,
        execution_id,
        &bytes,
    )
    .header("idempotency-key", execution_id)
    .body(bytes);
    let resp = match http.send(req, timeout).await {
        Ok(r) => r,
        Err(e) if e.is_transient() => {
            return ExecResult::Transient {
                error: e.describe("the executor"),
                retry_after: None,
            }
        }
        // A refused target or a redirect does not get better by retrying.
        Err(e) => return ExecResult::Failed(e.describe("the executor")),
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| neo_egress::parse_retry_after(v, clock.now()));
    if status.as_u16() == 202 {
        return ExecResult::Accepted;
    }
    if status.is_success() {
        return match Egress::read_capped(resp, MAX_WEBHOOK_ANSWER, timeout).await {
            Ok(body) => outcome_of(&body),
            Err(e) if e.is_transient() => ExecResult::Transient {
                error: e.describe("the executor"),
                retry_after: None,
            },
            Err(e) => ExecResult::Failed(e.describe("the executor")),
        };
    }
    // Any other answer's body is never read: its status says enough.
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

/// Best-effort cancel of an execution a webhook executor accepted asynchronously. Runs in the
/// orchestrator's outbound pool, never inside its tick.
pub async fn cancel_webhook(
    http: &Egress,
    clock: &dyn Clock,
    url: &str,
    secret: &str,
    execution_id: &str,
    timeout: Duration,
) {
    let body = json!({"event": "cancel", "execution_id": execution_id});
    let bytes = serde_json::to_vec(&body).expect("serializes");
    let req = signed_headers(
        http.post(url),
        clock,
        secret,
        Direction::Cancel,
        execution_id,
        &bytes,
    )
    .header("idempotency-key", format!("{execution_id}:cancel"))
    .body(bytes);
    if let Err(e) = http.send(req, timeout).await {
        tracing::warn!(execution_id, error = %e.describe("the executor"), "cancel call failed");
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
    fn two_xx_answers() {
        assert_eq!(outcome_of(b""), ExecResult::Succeeded);
        assert_eq!(
            outcome_of(br#"{"status":"succeeded"}"#),
            ExecResult::Succeeded
        );
        assert_eq!(
            outcome_of(br#"{"status":"failed","error":"board is locked"}"#),
            ExecResult::Failed("board is locked".into())
        );
        assert_eq!(
            outcome_of(br#"{"status":"failed"}"#),
            ExecResult::Failed("the executor reported failure".into())
        );
        assert_eq!(
            outcome_of(b"\0garbage"),
            ExecResult::Failed("the executor answered 2xx with a body that is not JSON".into())
        );
    }
}
