//! Simulator configuration: credentials, data-set size and the tunable limits.

use serde::{Deserialize, Serialize};

/// Everything [`crate::spawn`] needs. [`SimConfig::default`] gives a 10,000-ticket data set and fixed credentials.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of the data generator and of the fault RNG.
    pub seed: u64,
    /// Number of tickets to generate.
    pub tickets: usize,
    /// Data sets of up to this many tickets keep their wire views rendered (fast counts and
    /// navigable pages); larger ones render a row each time a request reads it, so memory stays
    /// near the tickets themselves (about 0.5 KB each instead of several). Default 200,000.
    pub render_once_max_tickets: usize,
    /// ConnectWise company id (`/login/companyinfo/{company}` and the `{company}+` of Basic auth).
    pub cw_company: String,
    pub cw_public_key: String,
    pub cw_private_key: String,
    /// The required value of the `clientId` header.
    pub cw_client_id: String,
    /// Autotask API user (also the `user` of zoneInformation), compared case-insensitively.
    pub at_username: String,
    pub at_secret: String,
    pub at_integration_code: String,
    /// HaloPSA OAuth client (`client_credentials` at `POST /auth/token`).
    pub halo_client_id: String,
    pub halo_client_secret: String,
    /// The `tenant_id` `GET /api/authinfo` advertises.
    pub halo_tenant: String,
    /// Virtual-clock speed: virtual time runs this many times faster than real time. Throttle windows, bucket
    /// refills and the Autotask latency tiers follow the virtual clock. `Retry-After` values are virtual seconds.
    pub clock_speed: f64,
    /// Rate limits, page sizes and quirk switches; changeable at run time via `POST /__sim/limits`.
    pub limits: Limits,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            tickets: 10_000,
            render_once_max_tickets: 200_000,
            cw_company: "acme".into(),
            cw_public_key: "sim-public-key".into(),
            cw_private_key: "sim-private-key".into(),
            cw_client_id: "00000000-0000-4000-8000-00000000c11d".into(),
            at_username: "api-user@sim.example".into(),
            at_secret: "sim-secret".into(),
            at_integration_code: "SIMINTEGRATIONCODE".into(),
            halo_client_id: "sim-halo-client".into(),
            halo_client_secret: "sim-halo-secret".into(),
            halo_tenant: "sim".into(),
            clock_speed: 1.0,
            limits: Limits::default(),
        }
    }
}

/// `requests` per `per_ms` milliseconds of virtual time: a token bucket with a burst of `requests` (ConnectWise), or a
/// sliding window holding at most `requests` in any `per_ms` (Halo).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    pub requests: u32,
    pub per_ms: u64,
}

/// What the forward-only terminal (empty) page carries in `Link`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyLink {
    /// No `Link` header at all.
    #[default]
    Absent,
    /// A `Link` header with an empty value.
    Empty,
}

/// What happens to an Autotask request beyond the per-(integration code, entity) thread limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadLimitMode {
    /// Wait for a slot.
    #[default]
    Wait,
    /// Answer 429 with a "Thread Count" error.
    Reject,
}

/// Tunable limits. Every field has a default, so `POST /__sim/limits` may send any subset (it is merged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// ConnectWise token bucket per `clientId`; `null` disables it. Default 1,000 per minute.
    pub cw_rate_limit: Option<RateLimit>,
    /// ConnectWise default `pageSize` (25).
    pub cw_page_size_default: usize,
    /// ConnectWise maximum `pageSize`; larger values are silently capped (1,000).
    pub cw_page_size_max: usize,
    /// Longest ConnectWise request target (path plus query) accepted; longer gets 414. `null` = unlimited.
    pub cw_max_url_len: Option<usize>,
    /// Status for a missing `clientId` header (401 or 400).
    pub cw_missing_client_id_status: u16,
    /// Forward-only paging with `orderBy` answers 400 (otherwise `orderBy` is ignored).
    pub cw_forward_only_rejects_order_by: bool,
    /// The `Link` header on the forward-only terminal page.
    pub cw_forward_only_empty_link: EmptyLink,
    /// Autotask requests per window per database (10,000).
    pub at_threshold: u64,
    /// The Autotask threshold window in minutes (60).
    pub at_threshold_minutes: u64,
    /// Add latency at ≥50% (0.5 s) and ≥75% (1 s) of the threshold (virtual seconds).
    pub at_latency: bool,
    /// Concurrent requests per (ApiIntegrationCode, entity); `null` = unlimited. Default 3.
    pub at_thread_limit: Option<usize>,
    pub at_thread_limit_mode: ThreadLimitMode,
    /// Most `or` items per query (500).
    pub at_max_or_conditions: usize,
    /// Maximum (and default) `MaxRecords` (500).
    pub at_max_records: usize,
    /// Halo sliding window over every Halo request (authinfo, token, tickets); `null` disables it. Default 300 per
    /// 5 minutes.
    pub halo_rate_limit: Option<RateLimit>,
    /// Lifetime of a Halo access token in virtual seconds (`expires_in`, 3,600).
    pub halo_token_ttl_secs: u64,
    /// Halo `page_size` when `pageinate=true` without one (50).
    pub halo_page_size_default: usize,
    /// Entries kept in the request log (oldest dropped first).
    pub request_log_cap: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cw_rate_limit: Some(RateLimit {
                requests: 1000,
                per_ms: 60_000,
            }),
            cw_page_size_default: 25,
            cw_page_size_max: 1000,
            cw_max_url_len: None,
            cw_missing_client_id_status: 401,
            cw_forward_only_rejects_order_by: true,
            cw_forward_only_empty_link: EmptyLink::Absent,
            at_threshold: 10_000,
            at_threshold_minutes: 60,
            at_latency: true,
            at_thread_limit: Some(3),
            at_thread_limit_mode: ThreadLimitMode::Wait,
            at_max_or_conditions: 500,
            at_max_records: 500,
            halo_rate_limit: Some(RateLimit {
                requests: 300,
                per_ms: 300_000,
            }),
            halo_token_ttl_secs: 3600,
            halo_page_size_default: 50,
            request_log_cap: 100_000,
        }
    }
}
