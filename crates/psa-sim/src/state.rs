//! Shared server state: data set, writes, virtual clock, request log, faults, throttle counters.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::config::{Limits, RateLimit, SimConfig};
use crate::data::Dataset;
use crate::faults::{Fault, FaultSet};
use crate::writes::Writes;

/// Locks a mutex, recovering from poisoning (a panicking test thread must not wedge the simulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One recorded (non-admin) request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Sequence number, increasing over the simulator's life (not reset by clearing the log).
    pub seq: u64,
    pub method: String,
    /// The path as sent (before the Autotask path-case normalisation).
    pub path: String,
    /// The raw (still URL-encoded) query string, if any.
    pub query: Option<String>,
    /// Header names lower-cased; repeated headers joined with `, `.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body as UTF-8 (lossy).
    pub body: String,
    /// The response status; `None` while in flight or when the connection was dropped.
    pub status: Option<u16>,
    /// Id of the fault applied to this request, if any.
    pub fault: Option<u64>,
    /// When it arrived: milliseconds since the Unix epoch on the host's clock (not the
    /// simulator's virtual clock), so rates per real minute can be read from the log.
    #[serde(default)]
    pub received_ms: u64,
}

impl LoggedRequest {
    /// The decoded value of query parameter `name` (case-insensitive name), if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// The request-log sequence number of the request being served (a request extension set by the outer
/// middleware), so the write log can point at the logged request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestSeq(pub u64);

/// Counters reported by `GET /__sim/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Non-admin requests received.
    pub requests: u64,
    pub connectwise_requests: u64,
    pub autotask_requests: u64,
    pub halo_requests: u64,
    /// Requests a fault was applied to.
    pub faults_fired: u64,
    /// ConnectWise 429s from the per-clientId bucket.
    pub cw_throttled: u64,
    /// Autotask 429s from the request threshold or the thread limit.
    pub at_throttled: u64,
    /// Halo 429s from the sliding window.
    pub halo_throttled: u64,
    /// Autotask requests in the current threshold window.
    pub at_current_timeframe_requests: u64,
    /// Tickets in the data set.
    pub tickets: usize,
    /// Virtual milliseconds since start.
    pub clock_ms: u64,
}

/// Virtual time: real elapsed time times `speed`, plus manual advances.
#[derive(Debug)]
pub(crate) struct Clock {
    origin: Instant,
    speed: f64,
    offset: Mutex<Duration>,
}

impl Clock {
    fn new(speed: f64) -> Clock {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        Clock {
            origin: Instant::now(),
            speed,
            offset: Mutex::new(Duration::ZERO),
        }
    }

    /// Virtual time since start.
    pub(crate) fn now(&self) -> Duration {
        self.origin.elapsed().mul_f64(self.speed) + *lock(&self.offset)
    }

    pub(crate) fn advance(&self, by: Duration) {
        *lock(&self.offset) += by;
    }

    /// The real duration of a virtual one.
    pub(crate) fn real(&self, virtual_duration: Duration) -> Duration {
        virtual_duration.div_f64(self.speed)
    }
}

/// A token bucket on the virtual clock.
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Duration,
}

impl Bucket {
    /// Takes a token, or returns how long until one is available.
    pub(crate) fn take(&mut self, limit: RateLimit, now: Duration) -> Result<(), Duration> {
        let capacity = f64::from(limit.requests.max(1));
        let per_ms = limit.per_ms.max(1) as f64;
        let rate_per_ms = capacity / per_ms;
        let elapsed_ms = now.saturating_sub(self.last).as_secs_f64() * 1000.0;
        self.tokens = (self.tokens + elapsed_ms * rate_per_ms).min(capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate_per_ms / 1000.0,
            ))
        }
    }

    pub(crate) fn full(limit: RateLimit, now: Duration) -> Bucket {
        Bucket {
            tokens: f64::from(limit.requests.max(1)),
            last: now,
        }
    }
}

/// The request log with its capacity.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    next_seq: u64,
    pub(crate) entries: VecDeque<LoggedRequest>,
}

impl RequestLog {
    pub(crate) fn push(&mut self, mut entry: LoggedRequest, cap: usize) -> u64 {
        self.next_seq += 1;
        entry.seq = self.next_seq;
        self.entries.push_back(entry);
        while self.entries.len() > cap.max(1) {
            self.entries.pop_front();
        }
        self.next_seq
    }

    pub(crate) fn update(&mut self, seq: u64, f: impl FnOnce(&mut LoggedRequest)) {
        if let Some(e) = self.entries.iter_mut().rev().find(|e| e.seq == seq) {
            f(e);
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub connectwise: AtomicU64,
    pub autotask: AtomicU64,
    pub halo: AtomicU64,
    pub faults_fired: AtomicU64,
    pub cw_throttled: AtomicU64,
    pub at_throttled: AtomicU64,
    pub halo_throttled: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        for c in [
            &self.requests,
            &self.connectwise,
            &self.autotask,
            &self.halo,
            &self.faults_fired,
            &self.cw_throttled,
            &self.at_throttled,
            &self.halo_throttled,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Everything the handlers share.
pub(crate) struct SimState {
    pub cfg: SimConfig,
    /// `http://127.0.0.1:PORT`, used when a request has no `Host` header.
    pub base_url: String,
    data: RwLock<Arc<Dataset>>,
    /// The writes laid over the data set, the notes, the write log and the technician's edits.
    pub writes: Writes,
    limits: RwLock<Limits>,
    pub clock: Clock,
    pub log: Mutex<RequestLog>,
    pub faults: Mutex<(FaultSet, StdRng)>,
    pub cw_buckets: Mutex<HashMap<String, Bucket>>,
    /// Virtual times of the Autotask requests in the current threshold window.
    pub at_window: Mutex<VecDeque<Duration>>,
    pub at_threads: Mutex<HashMap<(String, String), Arc<Semaphore>>>,
    /// Virtual times of the Halo requests in the current sliding window.
    pub halo_window: Mutex<VecDeque<Duration>>,
    /// Issued Halo access tokens and their (virtual) expiry.
    pub halo_tokens: Mutex<HashMap<String, Duration>>,
    pub counters: Counters,
}

impl SimState {
    pub(crate) fn new(cfg: SimConfig, base_url: String) -> SimState {
        let data = Dataset::generate_with(
            cfg.seed,
            cfg.tickets,
            cfg.tickets <= cfg.render_once_max_tickets,
        );
        SimState {
            base_url,
            data: RwLock::new(Arc::new(data)),
            writes: Writes::default(),
            limits: RwLock::new(cfg.limits.clone()),
            clock: Clock::new(cfg.clock_speed),
            log: Mutex::new(RequestLog::default()),
            faults: Mutex::new((FaultSet::default(), StdRng::seed_from_u64(cfg.seed))),
            cw_buckets: Mutex::new(HashMap::new()),
            at_window: Mutex::new(VecDeque::new()),
            at_threads: Mutex::new(HashMap::new()),
            halo_window: Mutex::new(VecDeque::new()),
            halo_tokens: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            cfg,
        }
    }

    pub(crate) fn data(&self) -> Arc<Dataset> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the limits and forgets the throttle state that depends on them.
    pub(crate) fn set_limits(&self, limits: Limits) {
        *self.limits.write().unwrap_or_else(|e| e.into_inner()) = limits;
        lock(&self.cw_buckets).clear();
        lock(&self.at_threads).clear();
        lock(&self.halo_window).clear();
    }

    pub(crate) fn inject(&self, fault: Fault) -> u64 {
        lock(&self.faults).0.add(fault)
    }

    /// Back to the initial state (writes, notes and their logs included); with `seed`/`tickets`, the data set is
    /// regenerated; with `company_tickets`, with that many tickets per company
    /// ([`Dataset::generate_by_company`]).
    pub(crate) fn reset(
        &self,
        seed: Option<u64>,
        tickets: Option<usize>,
        company_tickets: Option<&[usize]>,
    ) {
        self.writes.clear();
        if seed.is_some() || tickets.is_some() || company_tickets.is_some() {
            let seed = seed.unwrap_or(self.cfg.seed);
            let data = match company_tickets {
                Some(counts) => Dataset::generate_by_company(
                    seed,
                    counts,
                    counts.iter().sum::<usize>() <= self.cfg.render_once_max_tickets,
                ),
                None => {
                    let tickets = tickets.unwrap_or(self.cfg.tickets);
                    Dataset::generate_with(
                        seed,
                        tickets,
                        tickets <= self.cfg.render_once_max_tickets,
                    )
                }
            };
            *self.data.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(data);
        }
        self.set_limits(self.cfg.limits.clone());
        lock(&self.log).entries.clear();
        {
            let mut faults = lock(&self.faults);
            faults.0.clear();
            faults.1 = StdRng::seed_from_u64(seed.unwrap_or(self.cfg.seed));
        }
        lock(&self.at_window).clear();
        lock(&self.halo_tokens).clear();
        self.counters.reset();
    }

    /// Drops Autotask window entries older than the window and returns the remaining count.
    pub(crate) fn at_window_count(&self) -> u64 {
        let window = Duration::from_secs(self.limits().at_threshold_minutes.saturating_mul(60));
        let now = self.clock.now();
        let mut w = lock(&self.at_window);
        while w.front().is_some_and(|t| now.saturating_sub(*t) >= window) {
            w.pop_front();
        }
        w.len() as u64
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            requests: c.requests.load(Ordering::Relaxed),
            connectwise_requests: c.connectwise.load(Ordering::Relaxed),
            autotask_requests: c.autotask.load(Ordering::Relaxed),
            halo_requests: c.halo.load(Ordering::Relaxed),
            faults_fired: c.faults_fired.load(Ordering::Relaxed),
            cw_throttled: c.cw_throttled.load(Ordering::Relaxed),
            at_throttled: c.at_throttled.load(Ordering::Relaxed),
            halo_throttled: c.halo_throttled.load(Ordering::Relaxed),
            at_current_timeframe_requests: self.at_window_count(),
            tickets: self.data().tickets.len(),
            clock_ms: u64::try_from(self.clock.now().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills() {
        let limit = RateLimit {
            requests: 2,
            per_ms: 1000,
        };
        let mut b = Bucket::full(limit, Duration::ZERO);
        assert!(b.take(limit, Duration::ZERO).is_ok());
        assert!(b.take(limit, Duration::ZERO).is_ok());
        let wait = b.take(limit, Duration::ZERO).err();
        assert!(
            wait.is_some_and(|w| w > Duration::from_millis(400) && w <= Duration::from_millis(500))
        );
        assert!(b.take(limit, Duration::from_millis(500)).is_ok());
    }
}
