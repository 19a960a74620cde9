//! Per-tenant sliding-window rate limit (docs/api.md §2): every request of a tenant, whatever key or
//! session it uses, counts in one window of `window` length. The log is kept in this process:
//! with several replicas each one enforces the limit on the requests it serves. The same
//! limiter counts the dashboard's sign-in attempts per client address; idle keys are dropped
//! as the map grows, so many addresses cannot grow it without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: SignedDuration,
    log: Mutex<Log>,
}

#[derive(Debug)]
struct Log {
    map: HashMap<String, VecDeque<Timestamp>>,
    /// Size at which keys without a request in the window are dropped.
    prune_at: usize,
}

const MIN_PRUNE_AT: usize = 1024;

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
            log: Mutex::new(Log {
                map: HashMap::new(),
                prune_at: MIN_PRUNE_AT,
            }),
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
        let cutoff = now - self.window;
        if log.map.len() >= log.prune_at {
            log.map.retain(|_, q| q.back().is_some_and(|t| *t > cutoff));
            log.prune_at = (log.map.len() * 2).max(MIN_PRUNE_AT);
        }
        let q = log.map.entry(tenant.to_owned()).or_default();
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

    #[test]
    fn idle_keys_are_dropped_as_the_map_grows() {
        let rl = RateLimiter::new(1, SignedDuration::from_secs(60));
        let t0: Timestamp = "2026-11-28T00:00:00Z".parse().unwrap();
        // One new address a second for an hour: only the last minute's stay.
        for i in 0..3600 {
            assert!(
                rl.check(
                    &format!("10.0.{}.{}", i / 256, i % 256),
                    t0 + SignedDuration::from_secs(i)
                )
                .allowed
            );
        }
        assert!(rl.log.lock().unwrap().map.len() <= MIN_PRUNE_AT);
        // A limited key within its window is kept.
        assert!(
            !rl.check("10.0.14.15", t0 + SignedDuration::from_secs(3600))
                .allowed
        );
    }
}
