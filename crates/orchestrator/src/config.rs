//! What an operator tunes: leases, polling, retries, the circuit breaker, callbacks,
//! timeouts, batching, the SSRF switch and the fair-dispatch caps (`serve`/`worker` flags).

use std::time::Duration;

use jiff::SignedDuration;

#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// How long a claim holds an item before another worker may take it back.
    pub lease: SignedDuration,
    /// How often the loop looks at the database when nothing woke it.
    pub poll_interval: Duration,
    /// Attempts per item before a transient failure becomes a failure.
    pub max_attempts: i64,
    pub backoff_base: SignedDuration,
    pub backoff_cap: SignedDuration,
    /// Consecutive failed executions after which a backfill pauses itself.
    pub breaker_threshold: i64,
    /// How long an asynchronous (202) webhook execution may take to report completion.
    pub callback_deadline: SignedDuration,
    /// Default webhook timeout (a workflow's `timeout_ms` overrides it).
    pub webhook_timeout: Duration,
    /// How long a graceful shutdown waits for in-flight executions.
    pub shutdown_grace: Duration,
    /// Most items one claim takes (a backfill's room under `max_in_flight` bounds it too).
    /// A claim holds its backfill's row for its one statement, so claims of one backfill
    /// follow each other; larger ones spend less of that time per item. Measured on
    /// PostgreSQL with room for them (`max_in_flight` 1,000–2,000): 100 → ~20,000 items/s,
    /// 250 → ~34,500, 500 → ~36,500, 1,000 → 26,000–37,700 (it then waits for room).
    pub claim_batch: usize,
    /// How long the settler waits for more outcomes of outstanding executions before it
    /// settles what it has (group settlement: fewer, larger transactions).
    pub settle_window: Duration,
    /// Seed of the retry jitter (random when `None`).
    pub jitter_seed: Option<u64>,
    /// Whether webhooks may reach private, loopback and link-local addresses (SSRF guard,
    /// `--egress-allow-private`). Off by default.
    pub egress_allow_private: bool,
    /// Most executions one tenant may have running in this process (fair dispatch).
    pub tenant_max_in_flight: usize,
    /// Most executions this process runs at once, all tenants together.
    pub process_max_in_flight: usize,
    /// Timeout of a cancel call to a webhook executor.
    pub cancel_timeout: Duration,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            lease: SignedDuration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            max_attempts: 5,
            backoff_base: SignedDuration::from_secs(1),
            backoff_cap: SignedDuration::from_secs(60),
            breaker_threshold: 25,
            callback_deadline: SignedDuration::from_hours(1),
            webhook_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            claim_batch: 500,
            settle_window: Duration::from_millis(2),
            jitter_seed: None,
            egress_allow_private: false,
            tenant_max_in_flight: 500,
            process_max_in_flight: 5_000,
            cancel_timeout: Duration::from_secs(10),
        }
    }
}

impl OrchestratorConfig {
    /// The retry rule these settings give (`neo_domain::retry`).
    pub fn retry_policy(&self) -> neo_domain::retry::RetryPolicy {
        neo_domain::retry::RetryPolicy {
            max_attempts: self.max_attempts,
            base: self.backoff_base,
            cap: self.backoff_cap,
        }
    }
}
