//! How a workflow's executions run: one typed configuration, validated once when a workflow is
//! written (the API's create and PATCH) and read back from storage as the same type by the
//! orchestrator and the dashboard. The stored form is the submitted JSON object
//! (`{"type": "webhook", …}`, `{"type": "simulated", …}`), or for `psa_actions` the
//! normalised form of [`crate::actions::PsaActions::to_stored`].

use std::time::Duration;

use serde_json::Value;

use crate::actions::{PsaActions, WritableFields, EXECUTOR_TYPE};
use crate::backfill::BackfillMode;
use crate::egress::EgressPolicy;
use crate::validation::FieldError;

/// A workflow's executor.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorSpec {
    /// POST a signed JSON body to `url`.
    Webhook {
        url: String,
        secret: String,
        timeout: Option<Duration>,
    },
    /// In-process, for demos, tests and benchmarks: which entities fail is a pure function of
    /// `seed` and the entity id. A share `failure_rate` of the entities fails every time it
    /// runs (permanent); a disjoint share `transient_rate` fails the first time only (a record
    /// locked by another user: it succeeds when run again, e.g. by rerun-failed).
    Simulated {
        latency: Duration,
        failure_rate: f64,
        transient_rate: f64,
        seed: u64,
    },
    /// Changes to the tenant's own PSA record ([`crate::actions`]), stored in the form
    /// [`PsaActions::to_stored`] writes. It is checked against what the PSA lets the entity
    /// type write when the workflow is written, and parsed again with the PSA's field table
    /// when it runs (the tenant may have connected another PSA since).
    PsaActions(Value),
}

/// Checks a URL a tenant gives for the service to call (a webhook, a PSA): `http(s)`, no
/// whitespace, and a target `egress` allows; the error names `field`.
pub fn check_target_url(field: &str, url: &str, egress: EgressPolicy) -> Result<(), FieldError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() > 8
        && !url.contains(char::is_whitespace);
    if !ok {
        return Err(FieldError::new(
            field,
            format!("{field} must be an http(s) URL"),
        ));
    }
    egress
        .check_url(url)
        .map(|_| ())
        .map_err(|e| FieldError::new(field, format!("{field}: {}", e.0)))
}

/// A signing secret we send messages with (a webhook's, a notification endpoint's): 16 to
/// 512 bytes, so that it is neither guessable nor a place to park a payload.
pub fn check_secret(field: &str, secret: &str) -> Result<(), FieldError> {
    if secret.len() < 16 || secret.len() > 512 {
        return Err(FieldError::new(
            field,
            "the signing secret must be 16 to 512 characters",
        ));
    }
    Ok(())
}

impl ExecutorSpec {
    /// Validates a submitted executor: every bound, no unknown member, (for a webhook) a
    /// target `egress` allows, and (for `psa_actions`) fields that `writable` — what the
    /// tenant's PSA lets the workflow's entity type write, `None` when it writes nothing —
    /// knows. Errors name the member as `executor.<name>`.
    pub fn validate(
        v: &Value,
        egress: EgressPolicy,
        writable: Option<&dyn WritableFields>,
    ) -> Result<Self, FieldError> {
        let f = |m: &str| format!("executor.{m}");
        let o = v
            .as_object()
            .ok_or_else(|| FieldError::new("executor", "executor must be an object"))?;
        let allowed: &[&str] = match o.get("type").and_then(Value::as_str) {
            Some(EXECUTOR_TYPE) => {
                let Some(writable) = writable else {
                    return Err(FieldError::new(
                        f("type"),
                        "psa_actions writes to the tenant's PSA: connect a PSA integration first, and use an entity type it can write (tickets)",
                    ));
                };
                let actions = PsaActions::parse(v, writable)?;
                return Ok(Self::PsaActions(actions.to_stored()));
            }
            Some("webhook") => {
                let url = o.get("url").and_then(Value::as_str).unwrap_or("");
                check_target_url(&f("url"), url, egress)?;
                check_secret(
                    &f("secret"),
                    o.get("secret").and_then(Value::as_str).unwrap_or(""),
                )?;
                if let Some(t) = o.get("timeout_ms") {
                    if !t.as_u64().is_some_and(|t| (100..=300_000).contains(&t)) {
                        return Err(FieldError::new(
                            f("timeout_ms"),
                            "timeout_ms must be from 100 to 300000",
                        ));
                    }
                }
                &["type", "url", "secret", "timeout_ms"]
            }
            Some("simulated") => {
                if let Some(l) = o.get("latency_ms") {
                    if l.as_u64().is_none_or(|l| l > 600_000) {
                        return Err(FieldError::new(
                            f("latency_ms"),
                            "latency_ms must be from 0 to 600000",
                        ));
                    }
                }
                let mut rates = 0.0;
                for name in ["failure_rate", "transient_rate"] {
                    if let Some(r) = o.get(name) {
                        let Some(r) = r.as_f64().filter(|r| (0.0..=1.0).contains(r)) else {
                            return Err(FieldError::new(
                                f(name),
                                format!("{name} must be a number from 0.0 to 1.0"),
                            ));
                        };
                        rates += r;
                    }
                }
                // A small tolerance: 0.7 + 0.3 is 1.0000000000000002 in binary.
                if rates > 1.0 + 1e-9 {
                    return Err(FieldError::new(
                        f("transient_rate"),
                        "failure_rate + transient_rate must be at most 1.0 (the two shares of the entities are disjoint)",
                    ));
                }
                if let Some(s) = o.get("seed") {
                    if s.as_u64().is_none() {
                        return Err(FieldError::new(
                            f("seed"),
                            "seed must be a non-negative integer",
                        ));
                    }
                }
                &[
                    "type",
                    "latency_ms",
                    "failure_rate",
                    "transient_rate",
                    "seed",
                ]
            }
            _ => {
                return Err(FieldError::new(
                    f("type"),
                    "executor.type must be \"webhook\", \"simulated\" or \"psa_actions\"",
                ))
            }
        };
        if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(FieldError::new(
                f(k),
                format!("{k} is not a setting of this executor"),
            ));
        }
        Self::from_stored(v).map_err(|m| FieldError::new("executor", m))
    }

    /// Whether `v` (a submitted or stored executor) is a `psa_actions` one: it writes to the
    /// tenant's PSA, so it is checked against the PSA's fields and offers shadow runs.
    pub fn is_psa_actions(v: &Value) -> bool {
        v.get("type").and_then(Value::as_str) == Some(EXECUTOR_TYPE)
    }

    /// The rule for a new backfill's `mode`: `shadow` only for `psa_actions` (no other
    /// executor can tell what it would do without doing it); `revert` only as the child of a
    /// run that wrote (`POST /backfills/{id}/revert`).
    pub fn check_mode(&self, mode: BackfillMode) -> Result<(), FieldError> {
        match (mode, self) {
            (BackfillMode::Live, _) | (BackfillMode::Shadow, Self::PsaActions(_)) => Ok(()),
            (BackfillMode::Shadow, _) => Err(FieldError::new(
                "mode",
                "a shadow run needs a workflow whose executor is psa_actions",
            )),
            (BackfillMode::Revert, _) => Err(FieldError::new(
                "mode",
                "mode must be live or shadow (a revert is created with POST /backfills/{id}/revert)",
            )),
        }
    }

    /// Whether a backfill runs entities the workflow already succeeded on. `psa_actions` always
    /// does: its plan is empty on a record already at its targets, so running again changes
    /// nothing, and its shadow runs and reverts succeed on entities they did not change.
    pub fn reprocess(&self, requested: bool) -> bool {
        requested || matches!(self, Self::PsaActions(_))
    }

    /// Reads an executor as stored (validated when it was written): its type and members,
    /// with the defaults of the members left out.
    pub fn from_stored(v: &Value) -> Result<Self, String> {
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
                transient_rate: v
                    .get("transient_rate")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0),
                seed: v.get("seed").and_then(Value::as_u64).unwrap_or(0),
            }),
            Some(EXECUTOR_TYPE) => Ok(Self::PsaActions(v.clone())),
            _ => Err("unknown executor type".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validated_once_read_back_as_the_same_type() {
        let allow = EgressPolicy::new(false);
        let v = json!({"type": "webhook", "url": "https://hooks.example.com/neo", "secret": "whsec_0123456789abcdef", "timeout_ms": 5000});
        let spec = ExecutorSpec::validate(&v, allow, None).unwrap();
        assert_eq!(spec, ExecutorSpec::from_stored(&v).unwrap());
        assert_eq!(
            ExecutorSpec::from_stored(&json!({"type": "simulated"})).unwrap(),
            ExecutorSpec::Simulated {
                latency: Duration::ZERO,
                failure_rate: 0.0,
                transient_rate: 0.0,
                seed: 0
            }
        );
        let v = json!({"type": "simulated", "latency_ms": 5, "failure_rate": 0.7, "transient_rate": 0.3, "seed": 3});
        assert_eq!(
            ExecutorSpec::validate(&v, allow, None).unwrap(),
            ExecutorSpec::Simulated {
                latency: Duration::from_millis(5),
                failure_rate: 0.7,
                transient_rate: 0.3,
                seed: 3
            }
        );
        for (bad, field) in [
            (
                json!({"type": "webhook", "url": "https://x.example.com", "secret": "short"}),
                "executor.secret",
            ),
            (
                json!({"type": "webhook", "url": "http://127.0.0.1/", "secret": "whsec_0123456789abcdef"}),
                "executor.url",
            ),
            (
                json!({"type": "simulated", "failure_rate": 2.0}),
                "executor.failure_rate",
            ),
            (
                json!({"type": "simulated", "failure_rate": "0.1"}),
                "executor.failure_rate",
            ),
            (
                json!({"type": "simulated", "transient_rate": -0.1}),
                "executor.transient_rate",
            ),
            (
                json!({"type": "simulated", "transient_rate": 1.5}),
                "executor.transient_rate",
            ),
            (
                json!({"type": "simulated", "transient_rate": true}),
                "executor.transient_rate",
            ),
            (
                json!({"type": "simulated", "failure_rate": 0.6, "transient_rate": 0.5}),
                "executor.transient_rate",
            ),
            (
                json!({"type": "simulated", "colour": "red"}),
                "executor.colour",
            ),
            (json!({"type": "ftp"}), "executor.type"),
            (json!([1]), "executor"),
        ] {
            assert_eq!(
                ExecutorSpec::validate(&bad, allow, None).unwrap_err().field,
                field,
                "{bad}"
            );
        }
    }
}
