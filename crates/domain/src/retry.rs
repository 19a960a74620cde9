//! The retry decision for an execution that failed transiently (a timeout, a refused
//! connection, 408, 429, 5xx): retry after a capped exponential backoff with full jitter, never
//! sooner than the executor's `Retry-After`, until the attempts run out; then it fails.

use jiff::SignedDuration;

/// How transient failures are retried (`--max-attempts`, `--backoff-base-ms`,
/// `--backoff-cap-ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: i64,
    pub base: SignedDuration,
    pub cap: SignedDuration,
}

/// What happens after a transient failure of attempt `attempt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterTransient {
    /// Try again after `delay`.
    Retry { delay: SignedDuration },
    /// The attempts are used up: the item fails.
    GiveUp { attempts: i64 },
}

impl RetryPolicy {
    /// The decision after attempt `attempt` failed transiently; `unit` draws the jitter in
    /// `[0, 1]` (only when there is a retry to jitter).
    pub fn after_transient(
        &self,
        attempt: i64,
        retry_after: Option<SignedDuration>,
        unit: impl FnOnce() -> f64,
    ) -> AfterTransient {
        if attempt >= self.max_attempts {
            AfterTransient::GiveUp { attempts: attempt }
        } else {
            AfterTransient::Retry {
                delay: backoff(attempt, self.base, self.cap, retry_after, unit()),
            }
        }
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

    #[test]
    fn retries_until_the_attempts_run_out() {
        let s = SignedDuration::from_secs;
        let p = RetryPolicy {
            max_attempts: 3,
            base: s(1),
            cap: s(60),
        };
        assert_eq!(
            p.after_transient(1, None, || 1.0),
            AfterTransient::Retry { delay: s(1) }
        );
        assert_eq!(
            p.after_transient(2, Some(s(30)), || 0.0),
            AfterTransient::Retry { delay: s(30) }
        );
        assert_eq!(
            p.after_transient(3, None, || unreachable!("no draw when giving up")),
            AfterTransient::GiveUp { attempts: 3 }
        );
    }
}
