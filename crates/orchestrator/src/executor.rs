//! Executors (docs/api.md §4): how one execution runs. `webhook` POSTs a signed JSON body to the
//! workflow's URL; `simulated` runs in-process with a latency and deterministic failures
//! (permanent ones, and transient ones that succeed when run again: [`run_simulated`]);
//! `psa_actions` changes the tenant's own PSA record through the connectors
//! ([`neo_store::source::EntitySource::act`]).

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
    /// Not processed, for this reason (a revert that finds the record edited since).
    Skipped(String),
    /// Timeouts, connection errors, 408, 429, 5xx: retried with backoff.
    Transient {
        error: String,
        retry_after: Option<SignedDuration>,
    },
    /// 202: the executor reports later through `POST /executions/{id}/complete`.
    Accepted,
}

pub use neo_domain::executor::ExecutorSpec;

/// One attempt's result and the HTTP status the executor answered (webhooks that answered).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub result: ExecResult,
    pub http_status: Option<u16>,
}

impl From<ExecResult> for Answer {
    fn from(result: ExecResult) -> Self {
        Answer {
            result,
            http_status: None,
        }
    }
}

/// Where `entity_id` falls in `[0, 1]` for `seed`: a pure function of the two.
fn simulated_unit(seed: u64, entity_id: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(entity_id.as_bytes());
    let d = h.finalize();
    let x = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
    x as f64 / u64::MAX as f64
}

/// Whether the simulated executor fails `entity_id` permanently: a pure function of seed and
/// entity.
pub fn simulated_fails(seed: u64, entity_id: &str, failure_rate: f64) -> bool {
    failure_rate > 0.0 && simulated_unit(seed, entity_id) < failure_rate
}

/// What the simulated executor does with an entity: a pure function of seed and entity id.
/// The entity's point in `[0, 1]` below `failure_rate` fails permanently, the next
/// `transient_rate` fails transiently, the rest succeeds, so the two shares never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatedKind {
    Succeeds,
    /// Fails every time it runs.
    Permanent,
    /// Fails in the first execution that runs it, succeeds in any later one.
    Transient,
}

/// The [`SimulatedKind`] of `entity_id`.
pub fn simulated_kind(
    seed: u64,
    entity_id: &str,
    failure_rate: f64,
    transient_rate: f64,
) -> SimulatedKind {
    if simulated_fails(seed, entity_id, failure_rate) {
        SimulatedKind::Permanent
    } else if transient_rate > 0.0
        && simulated_unit(seed, entity_id) < failure_rate.max(0.0) + transient_rate
    {
        SimulatedKind::Transient
    } else {
        SimulatedKind::Succeeds
    }
}

/// The error of a permanent simulated failure.
pub const SIMULATED_PERMANENT: &str = "simulated: this record fails every time (permanent failure)";
/// The error of a transient simulated failure.
pub const SIMULATED_LOCKED: &str =
    "simulated: the record was locked by another user (succeeds when run again)";

/// A transient entity's first execution, per (tenant, seed, entity), owned by the
/// orchestrator that ran it: a process that never ran the first execution (another replica, a
/// restart) takes the next one it runs for the first. Bounded: past [`FIRST_RUNS_MAX`]
/// entries it forgets them all (those entities then fail once more).
#[derive(Default)]
pub struct FirstRuns(std::sync::Mutex<FirstRunMap>);
/// (tenant id, seed, entity id) → the id of the first execution that ran it.
type FirstRunMap = std::collections::HashMap<(String, u64, String), String>;
const FIRST_RUNS_MAX: usize = 1_000_000;

impl FirstRuns {
    /// Whether `c` is the first execution to run its entity (recording it if none was).
    fn is_first(&self, seed: u64, c: &Claimed) -> bool {
        let mut runs = self.0.lock().expect("poisoned");
        if runs.len() >= FIRST_RUNS_MAX {
            runs.clear();
        }
        let first = runs
            .entry((c.tenant_id.clone(), seed, c.entity_id.clone()))
            .or_insert_with(|| c.execution_id.clone());
        *first == c.execution_id
    }
}

/// One simulated execution (its latency already slept): permanent entities fail with
/// [`SIMULATED_PERMANENT`]; a transient entity fails with [`SIMULATED_LOCKED`] in the first
/// execution that runs it (every re-dispatch of that execution, e.g. after a crash, fails the
/// same way) and succeeds in any other execution (a rerun-failed child, a new backfill). The
/// failure is reported as permanent (`Failed`, as a webhook answering
/// `{"status": "failed"}` would), so the backfill ends with the entity failed and does not
/// retry it within itself.
pub fn run_simulated(
    first_runs: &FirstRuns,
    seed: u64,
    failure_rate: f64,
    transient_rate: f64,
    c: &Claimed,
) -> ExecResult {
    match simulated_kind(seed, &c.entity_id, failure_rate, transient_rate) {
        SimulatedKind::Succeeds => ExecResult::Succeeded,
        SimulatedKind::Permanent => ExecResult::Failed(SIMULATED_PERMANENT.into()),
        SimulatedKind::Transient if first_runs.is_first(seed, c) => {
            ExecResult::Failed(SIMULATED_LOCKED.into())
        }
        SimulatedKind::Transient => ExecResult::Succeeded,
    }
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
            receiver_error(&v).unwrap_or_else(|| "the executor reported failure".to_owned()),
        ),
        _ => ExecResult::Succeeded,
    }
}

/// Longest excerpt of a receiver's own error message kept with an attempt, in characters.
pub const MAX_RECEIVER_ERROR: usize = 500;

/// The receiver's own words about a failure: the structured `error` member of its JSON answer
/// (a string, or an object's `message`), else a top-level `message`; made storable by
/// [`neo_domain::text::sanitize`] and cut to [`MAX_RECEIVER_ERROR`] characters. Nothing else of the
/// body is ever kept, so an answer cannot smuggle its raw bytes into the dashboard.
pub fn receiver_error(v: &Value) -> Option<String> {
    let text = match v.get("error") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Object(o)) => o.get("message").and_then(Value::as_str),
        _ => None,
    }
    .or_else(|| v.get("message").and_then(Value::as_str))?;
    // The one rule for outside text (control characters out), then this excerpt's own length.
    let clean = neo_domain::text::sanitize(text);
    let clean = clean.trim();
    if clean.is_empty() {
        return None;
    }
    Some(match clean.char_indices().nth(MAX_RECEIVER_ERROR) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean.to_owned(),
    })
}

/// Largest error answer read for its message; a longer one is judged by its status alone.
const MAX_ERROR_ANSWER: usize = 16 * 1024;

/// `the executor answered HTTP 422: board Help Desk is locked`, or without the message when
/// the answer holds no readable `error`.
async fn refusal(resp: reqwest::Response, code: u16, timeout: Duration) -> String {
    let said = Egress::read_capped(resp, MAX_ERROR_ANSWER, timeout)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| receiver_error(&v));
    match said {
        Some(m) => format!("the executor answered HTTP {code}: {m}"),
        None => format!("the executor answered HTTP {code}"),
    }
}

/// The signing headers of a message about `execution_id` (for an event: the event's id).
pub(crate) fn signed_headers(
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
/// unless allowed, the answer read up to [`MAX_WEBHOOK_ANSWER`], errors in fixed words plus
/// the receiver's own message when it gives one.
pub async fn call_webhook(
    http: &Egress,
    clock: &dyn Clock,
    url: &str,
    secret: &str,
    timeout: Duration,
    execution_id: &str,
    body: &Value,
) -> Answer {
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
            .into()
        }
        // A refused target or a redirect does not get better by retrying.
        Err(e) => return ExecResult::Failed(e.describe("the executor")).into(),
    };
    let status = resp.status();
    let code = status.as_u16();
    let answered = |result| Answer {
        result,
        http_status: Some(code),
    };
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| neo_egress::parse_retry_after(v, clock.now()));
    if code == 202 {
        return answered(ExecResult::Accepted);
    }
    if status.is_success() {
        return answered(
            match Egress::read_capped(resp, MAX_WEBHOOK_ANSWER, timeout).await {
                Ok(body) => outcome_of(&body),
                Err(e) if e.is_transient() => ExecResult::Transient {
                    error: e.describe("the executor"),
                    retry_after: None,
                },
                Err(e) => ExecResult::Failed(e.describe("the executor")),
            },
        );
    }
    // Of any other answer only the receiver's structured `error` is kept (see
    // `receiver_error`); the status decides whether to retry.
    let error = refusal(resp, code, timeout).await;
    answered(if code == 408 || code == 429 || status.is_server_error() {
        ExecResult::Transient { error, retry_after }
    } else {
        ExecResult::Failed(error)
    })
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
    fn simulated_kinds_are_disjoint_pure_and_near_their_rates() {
        let kinds: Vec<SimulatedKind> = (0..10_000)
            .map(|i| simulated_kind(7, &i.to_string(), 0.06, 0.08))
            .collect();
        let count = |k| kinds.iter().filter(|x| **x == k).count();
        assert!((500..700).contains(&count(SimulatedKind::Permanent)));
        assert!((700..900).contains(&count(SimulatedKind::Transient)));
        for (i, k) in kinds.iter().enumerate() {
            let id = i.to_string();
            // Pure, and the permanent share is exactly `simulated_fails`'s (adding a transient
            // share changes no permanent failure).
            assert_eq!(*k, simulated_kind(7, &id, 0.06, 0.08));
            assert_eq!(
                *k == SimulatedKind::Permanent,
                simulated_fails(7, &id, 0.06)
            );
        }
        assert!((0..100)
            .all(|i| simulated_kind(7, &i.to_string(), 0.0, 0.0) == SimulatedKind::Succeeds));
        assert!((0..100)
            .all(|i| simulated_kind(7, &i.to_string(), 0.0, 1.0) == SimulatedKind::Transient));
        assert!((0..100)
            .all(|i| simulated_kind(7, &i.to_string(), 1.0, 0.5) == SimulatedKind::Permanent));
    }

    #[test]
    fn a_transient_entity_fails_its_first_execution_only() {
        let claimed = |tenant: &str, entity: &str, execution: &str| Claimed {
            backfill_id: "bf_1".into(),
            tenant_id: tenant.into(),
            workflow_id: 1,
            ord: 0,
            entity_id: entity.into(),
            entity_number: None,
            execution_id: execution.into(),
            attempt: 1,
        };
        let (fr, tr) = (0.3, 0.3);
        let of = |k| {
            (0..1_000)
                .map(|i| i.to_string())
                .find(|id| simulated_kind(11, id, fr, tr) == k)
                .expect("an entity of each kind")
        };
        let (transient, permanent, fine) = (
            of(SimulatedKind::Transient),
            of(SimulatedKind::Permanent),
            of(SimulatedKind::Succeeds),
        );
        let first_runs = FirstRuns::default();
        let t = "tn_a";
        let run = |entity: &str, execution: &str| {
            run_simulated(&first_runs, 11, fr, tr, &claimed(t, entity, execution))
        };
        let locked = ExecResult::Failed(SIMULATED_LOCKED.into());
        assert_eq!(run(&transient, "ex_parent"), locked);
        // The same execution dispatched again (a crash, an expired lease) fails the same way.
        assert_eq!(run(&transient, "ex_parent"), locked);
        // Any later execution (the rerun-failed child) succeeds.
        assert_eq!(run(&transient, "ex_child"), ExecResult::Succeeded);
        assert_eq!(run(&transient, "ex_grandchild"), ExecResult::Succeeded);
        // Another tenant's first run of the same entity and seed fails.
        assert_eq!(
            run_simulated(
                &first_runs,
                11,
                fr,
                tr,
                &claimed("tn_b", &transient, "ex_x")
            ),
            locked
        );
        // Permanent failures fail every time; the rest always succeeds.
        for ex in ["ex_parent", "ex_child"] {
            assert_eq!(
                run(&permanent, ex),
                ExecResult::Failed(SIMULATED_PERMANENT.into())
            );
            assert_eq!(run(&fine, ex), ExecResult::Succeeded);
        }
    }

    #[test]
    fn receiver_errors_are_the_structured_member_only_bounded() {
        let e = |v: Value| receiver_error(&v);
        assert_eq!(
            e(json!({"error": "board Help Desk is locked"})).as_deref(),
            Some("board Help Desk is locked")
        );
        assert_eq!(
            e(json!({"error": {"message": "no such board", "code": 7}})).as_deref(),
            Some("no such board")
        );
        assert_eq!(
            e(json!({"message": "quota\u{0} exceeded\n"})).as_deref(),
            Some("quota exceeded")
        );
        assert_eq!(e(json!({"detail": "not the contract"})), None);
        assert_eq!(e(json!({"error": "  "})), None);
        assert_eq!(e(json!({"error": 42})), None);
        let long = e(json!({"error": "é".repeat(2000)})).unwrap();
        assert_eq!(long.chars().count(), MAX_RECEIVER_ERROR + 1);
        assert!(long.ends_with('…'));
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
