//! Per-tenant sliding-window rate limit (SPEC §2): every request of a tenant, whatever key or
//! session it uses, counts in one window of `window` length. The log is kept in this process:
//! with several replicas each one enforces the limit on the requests it serves.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: SignedDuration,
    log: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

/// The outcome of one request against the limit, with what the `X-RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix epoch seconds at which the oldest counted request leaves the window.
    pub reset: i64,
    /// Whole seconds until a request would be allowed (0 when allowed).
    pub retry_after: u64,
}

impl RateLimiter {
    pub fn new(limit: u32, window: SignedDuration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            log: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }
    pub fn window(&self) -> SignedDuration {
        self.window
    }

    pub fn check(&self, tenant: &str, now: Timestamp) -> Decision {
        let mut log = self.log.lock().expect("rate limiter poisoned");
        let q = log.entry(tenant.to_owned()).or_default();
        let cutoff = now - self.window;
        while q.front().is_some_and(|t| *t <= cutoff) {
            q.pop_front();
        }
        let allowed = (q.len() as u32) < self.limit;
        if allowed {
            q.push_back(now);
        }
        let oldest = q.front().copied().unwrap_or(now);
        let frees_at = oldest + self.window;
        let wait = frees_at.duration_since(now);
        let reset = frees_at.as_second() + i64::from(frees_at.subsec_nanosecond() > 0);
        Decision {
            allowed,
            limit: self.limit,
            remaining: self.limit.saturating_sub(q.len() as u32),
            reset,
            retry_after: if allowed {
                0
            } else {
                (wait.as_millis().max(0) as u64).div_ceil(1000).max(1)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window() {
        let rl = RateLimiter::new(3, SignedDuration::from_secs(60));
        let t0: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        let at = |s: i64| t0 + SignedDuration::from_secs(s);
        assert_eq!(rl.check("a", at(0)).remaining, 2);
        assert!(rl.check("a", at(10)).allowed);
        let d = rl.check("a", at(20));
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let d = rl.check("a", at(30));
        assert!(!d.allowed);
        assert_eq!(d.retry_after, 30);
        assert_eq!(d.reset, at(60).as_second());
        // another tenant is not affected
        assert!(rl.check("b", at(30)).allowed);
        // the first request leaves the window at t=60
        assert!(!rl.check("a", at(59)).allowed);
        assert!(rl.check("a", at(60)).allowed);
    }
}
