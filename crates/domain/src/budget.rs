//! The request budget of a tenant's PSA (issue 23). The PSA's allowance is shared by everything
//! the MSP runs against it — live automations, technicians' integrations, our backfills — and by
//! every replica of this service: Autotask allows 10,000 requests per rolling hour per database,
//! HaloPSA 300 per rolling 5 minutes, ConnectWise throttles above about 1,000 per minute. So
//! backfills draw from one bucket per integration, kept in the database and taken from by every
//! replica, and only from their share of the allowance (`backfill_share`, 50% unless set): the
//! rest is left for live traffic. When the bucket is empty a request waits for it to refill; it
//! never fails for it.
//!
//! The bucket holds at most [`Budget::burst`] requests and refills so that a burst plus a
//! minute of refill stays within a minute's share, whatever the moment the minute starts (a
//! request's token may also be taken up to [`HELD_FOR`] before it is sent): a PSA counting
//! per rolling minute or hour never sees more than the share. The price is that a saturated
//! backfill sends about 95% of its share, never 100%.
//!
//! Pure: the store keeps a [`Bucket`] per integration and asks [`Budget::take`] what to grant.

use crate::FieldError;

/// Backfills' share of the allowance unless the integration sets one, in percent.
pub const DEFAULT_BACKFILL_SHARE: i64 = 50;
/// The most a token taken in a batch may wait, unused, before it is sent or dropped.
pub const HELD_FOR_MS: i64 = 1_000;
/// [`HELD_FOR_MS`] as a duration.
pub const HELD_FOR: std::time::Duration = std::time::Duration::from_millis(HELD_FOR_MS as u64);
/// The smallest and largest `requests_per_hour` accepted.
pub const MIN_REQUESTS_PER_HOUR: i64 = 60;
pub const MAX_REQUESTS_PER_HOUR: i64 = 10_000_000;

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// The documented allowance of each PSA, per hour, when the integration sets none: Autotask's
/// 10,000 per rolling hour per database; HaloPSA's 300 per rolling 5 minutes (3,600 an hour);
/// ConnectWise's "likely rate limited" above 1,000 per minute (60,000 an hour).
pub fn default_requests_per_hour(psa: &str) -> i64 {
    match psa {
        "autotask" => 10_000,
        "halopsa" => 3_600,
        _ => 60_000,
    }
}

/// The rule for `requests_per_hour`.
pub fn check_requests_per_hour(n: i64) -> Result<i64, FieldError> {
    if (MIN_REQUESTS_PER_HOUR..=MAX_REQUESTS_PER_HOUR).contains(&n) {
        Ok(n)
    } else {
        Err(FieldError::new(
            "requests_per_hour",
            format!(
                "requests_per_hour must be between {MIN_REQUESTS_PER_HOUR} and {MAX_REQUESTS_PER_HOUR}, or null for the PSA's default"
            ),
        ))
    }
}

/// The rule for `backfill_share`: a percentage from 1 to 100.
pub fn check_backfill_share(p: i64) -> Result<i64, FieldError> {
    if (1..=100).contains(&p) {
        Ok(p)
    } else {
        Err(FieldError::new(
            "backfill_share",
            "backfill_share must be a percentage from 1 to 100, or null for 50",
        ))
    }
}

/// An integration's budget: its allowance and the part backfills may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The PSA's allowance per hour (all traffic).
    pub requests_per_hour: i64,
    /// Backfills' part of it, in percent.
    pub backfill_share: i64,
}

/// A bucket as stored: tokens in thousandths as of `at_ms`, and the requests granted since
/// `hour_ms` (the start of the hour they were granted in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    pub millis: i64,
    pub at_ms: i64,
    pub hour_ms: i64,
    pub used: i64,
}

/// What [`Budget::take`] granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The bucket to store.
    pub bucket: Bucket,
    /// Requests that may be sent now.
    pub granted: i64,
    /// With nothing granted: how long until one token is there.
    pub wait_ms: i64,
}

impl Budget {
    /// The integration's budget: its settings, else the PSA's defaults.
    pub fn of(psa: &str, requests_per_hour: Option<i64>, backfill_share: Option<i64>) -> Self {
        Self {
            requests_per_hour: requests_per_hour.unwrap_or_else(|| default_requests_per_hour(psa)),
            backfill_share: backfill_share.unwrap_or(DEFAULT_BACKFILL_SHARE),
        }
    }

    /// Backfills' requests per hour (their share of the allowance), at least one.
    pub fn backfill_per_hour(&self) -> i64 {
        (self.requests_per_hour * self.backfill_share / 100).max(1)
    }

    /// Backfills' requests per minute, in thousandths.
    fn per_minute_millis(&self) -> i64 {
        self.backfill_per_hour() * 1_000 / 60
    }

    /// The most the bucket holds, in thousandths: a thirtieth of a minute's share (two
    /// seconds' worth), at least one request.
    pub fn burst(&self) -> i64 {
        (self.per_minute_millis() / 30).max(1_000)
    }

    /// Refill per second, in thousandths: what is left of a minute's share after a burst,
    /// spread over a minute plus [`HELD_FOR_MS`].
    fn refill_per_second(&self) -> i64 {
        let left = (self.per_minute_millis() - self.burst()).max(self.per_minute_millis() / 2);
        (left * 1_000 / (MINUTE_MS + HELD_FOR_MS)).max(1)
    }

    /// Grants up to `want` requests from `b` at `now_ms`, refilling it first. A clock behind
    /// the bucket's (another replica's) refills nothing and moves nothing back.
    pub fn take(&self, b: Bucket, now_ms: i64, want: i64) -> Grant {
        let rate = i128::from(self.refill_per_second());
        let burst = i128::from(self.burst());
        let elapsed = i128::from((now_ms - b.at_ms).max(0));
        let refill = elapsed * rate / 1_000;
        let full = i128::from(b.millis.max(0)) + refill;
        // The time a partial refill has not yet turned into a whole thousandth is carried, not
        // lost: frequent takers would otherwise refill slower than the rate.
        let (millis, at_ms) = if full >= burst {
            (burst as i64, now_ms.max(b.at_ms))
        } else {
            let spent = (refill * 1_000 + rate - 1) / rate;
            (full as i64, b.at_ms + spent as i64)
        };
        let hour_ms = now_ms - now_ms.rem_euclid(HOUR_MS);
        let used = if hour_ms > b.hour_ms { 0 } else { b.used };
        let granted = (millis / 1_000).min(want.max(0));
        let millis = millis - granted * 1_000;
        let wait_ms = if granted == 0 {
            let needed = (i128::from(1_000 - millis) * 1_000 + rate - 1) / rate;
            (needed as i64 - (now_ms - at_ms).max(0)).max(1)
        } else {
            0
        };
        Grant {
            bucket: Bucket {
                millis,
                at_ms,
                hour_ms: hour_ms.max(b.hour_ms),
                used: used + granted,
            },
            granted,
            wait_ms,
        }
    }

    /// Requests granted this hour, as `bucket` says at `now_ms`.
    pub fn used_this_hour(b: &Bucket, now_ms: i64) -> i64 {
        if now_ms - now_ms.rem_euclid(HOUR_MS) > b.hour_ms {
            0
        } else {
            b.used
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_come_from_each_psa() {
        assert_eq!(
            Budget::of("autotask", None, None).backfill_per_hour(),
            5_000
        );
        assert_eq!(Budget::of("halopsa", None, None).backfill_per_hour(), 1_800);
        assert_eq!(
            Budget::of("connectwise", None, Some(10)).backfill_per_hour(),
            6_000
        );
        assert!(check_requests_per_hour(59).is_err());
        assert!(check_backfill_share(0).is_err());
        assert!(check_backfill_share(101).is_err());
        assert_eq!(check_backfill_share(100), Ok(100));
    }

    #[test]
    fn an_empty_bucket_says_how_long_to_wait() {
        let b = Budget::of("connectwise", Some(36_000), Some(50));
        let g = b.take(Bucket::default(), 1_000_000, 100);
        assert_eq!(g.granted, 10, "a fresh bucket holds its burst");
        let g2 = b.take(g.bucket, 1_000_000, 1);
        assert_eq!(g2.granted, 0);
        assert!((200..=220).contains(&g2.wait_ms), "{}", g2.wait_ms);
        let g3 = b.take(g2.bucket, 1_000_000 + g2.wait_ms, 1);
        assert_eq!(g3.granted, 1);
        assert_eq!(g3.bucket.used, 11);
    }

    #[test]
    fn the_hour_count_starts_again_each_hour() {
        let b = Budget::of("autotask", None, None);
        let g = b.take(Bucket::default(), HOUR_MS - 10, 5);
        assert_eq!(Budget::used_this_hour(&g.bucket, HOUR_MS - 1), g.granted);
        assert_eq!(Budget::used_this_hour(&g.bucket, HOUR_MS), 0);
        let g2 = b.take(g.bucket, HOUR_MS + 60_000, 1);
        assert_eq!(g2.bucket.used, 1);
    }

    proptest! {
        /// However requests arrive (replicas taking batches at any moments, tokens used up to
        /// HELD_FOR after they were taken), no sliding minute sees more than the minute's share,
        /// and a steady taker gets at least 90% of it.
        #[test]
        fn no_minute_exceeds_the_share(
            per_hour in 600i64..200_000,
            share in 1i64..=100,
            gaps in proptest::collection::vec(0i64..400, 200..1200),
            wants in proptest::collection::vec(1i64..20, 1200),
            held in proptest::collection::vec(0i64..=HELD_FOR_MS, 1200),
        ) {
            let budget = Budget { requests_per_hour: per_hour, backfill_share: share };
            let per_minute = budget.backfill_per_hour() as f64 / 60.0;
            // A fresh bucket: it starts full.
            let mut b = Bucket::default();
            let mut now = 1_000_000i64;
            let mut sent: Vec<i64> = Vec::new();
            for (i, gap) in gaps.iter().enumerate() {
                now += gap;
                let g = budget.take(b, now, wants[i]);
                b = g.bucket;
                sent.extend(std::iter::repeat_n(now + held[i], g.granted as usize));
            }
            sent.sort_unstable();
            let mut lo = 0;
            for hi in 0..sent.len() {
                while sent[hi] - sent[lo] >= MINUTE_MS {
                    lo += 1;
                }
                prop_assert!((hi - lo + 1) as f64 <= per_minute.max(1.0) + 1e-9,
                    "{} requests within a minute, share {per_minute}", hi - lo + 1);
            }
        }

        /// From 30 a minute up (below, a whole request is a large part of a minute's share).
        #[test]
        fn a_steady_taker_gets_most_of_the_share(per_hour in 18_000i64..200_000, share in 10i64..=100) {
            let budget = Budget { requests_per_hour: per_hour, backfill_share: share };
            let mut b = Bucket::default();
            let mut got = 0;
            for s in 0..600 {
                let g = budget.take(b, 1_000_000 + s * 100, 1_000);
                b = g.bucket;
                got += g.granted;
            }
            // A minute's share, burst included (the first minute).
            let per_minute = budget.backfill_per_hour() as f64 / 60.0;
            prop_assert!(got as f64 >= 0.9 * per_minute, "{got} of {per_minute}");
        }
    }
}
