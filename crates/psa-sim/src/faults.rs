//! Fault injection: which requests a fault hits, and what it does to them.

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};

/// A fault rule, as posted to `POST /__sim/faults` or passed to [`crate::SimHandle::inject`].
///
/// Matching: `method` (any when `null`, case-insensitive) and `path_prefix` (any when `null`; compared
/// case-insensitively against the request path as sent). Every matching request counts, from installation on.
///
/// Trigger (at most one of): `nth` — the nth matching request and the following ones until `times` is used up;
/// `every` — every Nth matching request; `probability` — each matching request with this probability (seeded RNG);
/// none — the next matching request(s).
///
/// Effect: sleep `delay_ms`, then either close the connection without a response (`drop`), answer `status` (with
/// `Retry-After: retry_after` and `body`, or the personality's usual error body), or — delay only — pass through.
///
/// `times` is how many requests the fault applies to (default 1; 0 = unlimited).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub nth: Option<u64>,
    #[serde(default)]
    pub every: Option<u64>,
    #[serde(default)]
    pub probability: Option<f64>,
    #[serde(default)]
    pub times: Option<u64>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub retry_after: Option<String>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub drop: bool,
    /// A literal response body (e.g. malformed JSON); defaults to the personality's error shape.
    #[serde(default)]
    pub body: Option<String>,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "retry_after must be a string or a number, not {other}"
        ))),
    }
}

impl Fault {
    /// A fault answering `status` on the next matching request.
    pub fn status(status: u16) -> Fault {
        Fault {
            status: Some(status),
            ..Fault::default()
        }
    }

    /// A fault closing the connection without a response on the next matching request.
    pub fn drop_connection() -> Fault {
        Fault {
            drop: true,
            ..Fault::default()
        }
    }

    /// A fault delaying the next matching request by `ms` milliseconds (then serving it normally).
    pub fn delay(ms: u64) -> Fault {
        Fault {
            delay_ms: Some(ms),
            ..Fault::default()
        }
    }

    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_string());
        self
    }

    pub fn path_prefix(mut self, prefix: &str) -> Fault {
        self.path_prefix = Some(prefix.to_string());
        self
    }

    pub fn nth(mut self, n: u64) -> Fault {
        self.nth = Some(n);
        self
    }

    pub fn every(mut self, n: u64) -> Fault {
        self.every = Some(n);
        self
    }

    pub fn probability(mut self, p: f64) -> Fault {
        self.probability = Some(p);
        self
    }

    pub fn times(mut self, k: u64) -> Fault {
        self.times = Some(k);
        self
    }

    pub fn retry_after(mut self, value: &str) -> Fault {
        self.retry_after = Some(value.to_string());
        self
    }

    pub fn with_delay_ms(mut self, ms: u64) -> Fault {
        self.delay_ms = Some(ms);
        self
    }

    pub fn body(mut self, body: &str) -> Fault {
        self.body = Some(body.to_string());
        self
    }

    /// Checks the rule for contradictions; the error text is returned to the admin caller.
    pub fn validate(&self) -> Result<(), String> {
        let triggers = [
            self.nth.is_some(),
            self.every.is_some(),
            self.probability.is_some(),
        ];
        if triggers.iter().filter(|t| **t).count() > 1 {
            return Err("use at most one of nth, every, probability".into());
        }
        if self.nth == Some(0) || self.every == Some(0) {
            return Err("nth and every start at 1".into());
        }
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err("probability must be within 0..=1".into());
            }
        }
        if let Some(s) = self.status {
            if !(100..=599).contains(&s) {
                return Err("status must be an HTTP status code".into());
            }
        }
        if self.status.is_none() && !self.drop && self.delay_ms.is_none() {
            return Err("a fault needs status, drop or delay_ms".into());
        }
        if self.status.is_some() && self.drop {
            return Err("use either status or drop".into());
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path_prefix.as_deref().is_none_or(|p| {
                path.len() >= p.len()
                    && path.is_char_boundary(p.len())
                    && path[..p.len()].eq_ignore_ascii_case(p)
            })
    }
}

/// An installed fault with its counters.
#[derive(Clone, Debug, Serialize)]
pub struct FaultState {
    pub id: u64,
    pub fault: Fault,
    /// Matching requests seen since installation.
    pub seen: u64,
    /// Requests the fault was applied to.
    pub fired: u64,
}

/// The installed faults, in installation order.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    next_id: u64,
    pub(crate) active: Vec<FaultState>,
}

impl FaultSet {
    pub(crate) fn add(&mut self, fault: Fault) -> u64 {
        self.next_id += 1;
        self.active.push(FaultState {
            id: self.next_id,
            fault,
            seen: 0,
            fired: 0,
        });
        self.next_id
    }

    pub(crate) fn clear(&mut self) {
        self.active.clear();
    }

    /// Counts the request against every matching fault and returns the first one that fires, with its id.
    pub(crate) fn check(
        &mut self,
        method: &str,
        path: &str,
        rng: &mut StdRng,
    ) -> Option<(u64, Fault)> {
        let mut hit: Option<(u64, Fault)> = None;
        for st in self.active.iter_mut() {
            if !st.fault.matches(method, path) {
                continue;
            }
            st.seen += 1;
            if hit.is_some() {
                continue;
            }
            let f = &st.fault;
            let fires = if let Some(n) = f.nth {
                st.seen >= n
            } else if let Some(n) = f.every {
                st.seen % n == 0
            } else if let Some(p) = f.probability {
                rng.gen_bool(p)
            } else {
                true
            };
            if fires {
                st.fired += 1;
                hit = Some((st.id, f.clone()));
            }
        }
        self.active.retain(|st| {
            let times = st.fault.times.unwrap_or(1);
            times == 0 || st.fired < times
        });
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn nth_times_every() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut set = FaultSet::default();
        set.add(Fault::status(500).path_prefix("/a").nth(3).times(2));
        let fired: Vec<bool> = (0..6)
            .map(|_| set.check("GET", "/a/b", &mut rng).is_some())
            .collect();
        assert_eq!(fired, [false, false, true, true, false, false]);
        assert!(set.active.is_empty());

        set.add(Fault::status(503).every(2).times(0));
        let fired: Vec<bool> = (0..6)
            .map(|_| set.check("POST", "/x", &mut rng).is_some())
            .collect();
        assert_eq!(fired, [false, true, false, true, false, true]);
    }

    #[test]
    fn matching_and_validation() {
        let f = Fault::status(429)
            .method("get")
            .path_prefix("/V4_6_release");
        assert!(f.matches("GET", "/v4_6_release/apis"));
        assert!(!f.matches("POST", "/v4_6_release/apis"));
        assert!(!f.matches("GET", "/v4"));
        assert!(Fault::default().validate().is_err());
        assert!(Fault::status(429).nth(1).every(2).validate().is_err());
        assert!(Fault::drop_connection().validate().is_ok());
        let parsed: Fault =
            serde_json::from_str(r#"{"status":429,"retry_after":1}"#).unwrap_or_default();
        assert_eq!(parsed.retry_after.as_deref(), Some("1"));
    }
}
