//! A loopback PSA simulator speaking the ConnectWise PSA, Autotask and HaloPSA REST wire formats (see
//! `docs/psa.md` §7), for integration tests and the demo.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = psa_sim::spawn(psa_sim::SimConfig::default()).await?;
//! // ConnectWise: {base}/v4_6_release/apis/3.0/service/tickets …   Autotask: {base}/ATServicesRest/V1.0/Tickets/query …
//! // Halo: {base}/api/authinfo, {base}/auth/token, {base}/api/tickets
//! sim.inject(psa_sim::Fault::status(429).retry_after("1").path_prefix("/v4_6_release"));
//! # Ok(()) }
//! ```
//!
//! Besides tickets, every resource a filter backfill can target is served with seeded, related records
//! (companies, contacts, configurations, projects, time entries, …): see [`SimHandle::resource_rows`].
//!
//! Tickets also take writes in each PSA's wire format (ConnectWise JSON Patch and notes, Autotask `PATCH /Tickets`
//! and ticket notes, Halo `POST /api/tickets` and actions; docs/psa.md §7.6): later reads see the written values,
//! a stale concurrency token is refused with 409, and every write is logged ([`SimHandle::writes`]). Tests play a
//! technician editing tickets meanwhile with [`SimHandle::technician_edit`].
//!
//! Layout: [`data`] (seeded data set and the three ticket views), `records` (every other resource: the records,
//! their views per PSA, the resource lists the dialects serve), `cw` + `cw_conditions` (ConnectWise), `autotask` +
//! `at_filter` (Autotask), `halo` (HaloPSA), `writes` (ticket writes and notes, laid over the data set), `admin`
//! (`/__sim/…`), `server` (listener, request log and fault middleware).

mod admin;
mod at_filter;
mod autotask;
mod config;
mod cw;
mod cw_conditions;
mod cw_schema;
pub mod data;
mod eval;
mod faults;
/// The fuzz targets' bodies (`fuzz/`), replayed by the test suite: only with the `fuzzing`
/// feature, never in a normal build.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod halo;
mod http_util;
mod records;
mod server;
mod state;
mod writes;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use autotask::REST_ROOT as AT_REST_ROOT;
pub use config::{EmptyLink, Limits, RateLimit, SimConfig, ThreadLimitMode};
pub use cw::{API_PREFIX as CW_API_PREFIX, API_VERSION as CW_API_VERSION, CODEBASE as CW_CODEBASE};
pub use cw_conditions::BAD_LITERAL_MESSAGE as CW_BAD_LITERAL_MESSAGE;
pub use data::{
    at_json, cw_json, halo_json, Board, Company, Dataset, Member, Priority, Status, Ticket,
};
pub use faults::{Fault, FaultState};
pub use state::{LoggedRequest, Stats};
pub use writes::{FieldChange, TechnicianEdit, WriteKind, WriteRecord};

use data::View;
use server::{ConnMeta, SimListener};
use state::{lock, SimState};

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Starts a simulator on `127.0.0.1:0`.
pub async fn spawn(cfg: SimConfig) -> anyhow::Result<SimHandle> {
    spawn_on(cfg, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await
}

/// Starts a simulator on `addr`.
pub async fn spawn_on(cfg: SimConfig, addr: SocketAddr) -> anyhow::Result<SimHandle> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let host = if local.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        local.ip()
    };
    let base_url = format!("http://{}", SocketAddr::new(host, local.port()));
    let state = Arc::new(SimState::new(cfg, base_url.clone()));
    let app = server::app(state.clone()).into_make_service_with_connect_info::<ConnMeta>();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(SimListener(listener), app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%base_url, "psa-sim listening");
    Ok(SimHandle {
        base_url,
        addr: local,
        state,
        shutdown: Some(tx),
        task: Some(task),
    })
}

impl SimHandle {
    /// The configuration the simulator was started with (credentials included).
    pub fn config(&self) -> &SimConfig {
        &self.state.cfg
    }

    /// `{base}/v4_6_release/apis/3.0`.
    pub fn cw_api_url(&self) -> String {
        format!("{}{}", self.base_url, cw::API_PREFIX)
    }

    /// `{base}/ATServicesRest/V1.0` (what zoneInformation's `url` plus `V1.0` gives).
    pub fn at_api_url(&self) -> String {
        format!("{}{}V1.0", self.base_url, autotask::REST_ROOT)
    }

    /// A tenant integration pointing at this simulator, as `PUT /public-api/integrations`
    /// takes it: `(config, secrets)` for `psa` (`connectwise`, `autotask` or `halopsa`).
    pub fn integration(&self, psa: &str) -> (serde_json::Value, serde_json::Value) {
        use serde_json::json;
        let c = &self.state.cfg;
        match psa {
            "autotask" => (
                json!({"zone_url": format!("{}{}", self.base_url, autotask::REST_ROOT), "username": c.at_username}),
                json!({"secret": c.at_secret, "integration_code": c.at_integration_code}),
            ),
            "halopsa" => (
                json!({"url": self.base_url, "client_id": c.halo_client_id}),
                json!({"client_secret": c.halo_client_secret}),
            ),
            _ => (
                json!({"site_url": self.base_url, "company_id": c.cw_company, "public_key": c.cw_public_key}),
                json!({"private_key": c.cw_private_key, "client_id": c.cw_client_id}),
            ),
        }
    }

    /// The `Authorization` header value for the configured ConnectWise credentials.
    pub fn cw_authorization(&self) -> String {
        use base64::Engine;
        let cfg = &self.state.cfg;
        let raw = format!(
            "{}+{}:{}",
            cfg.cw_company, cfg.cw_public_key, cfg.cw_private_key
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The seeded tickets, ordered by id, as generated: writes show in [`SimHandle::ticket_row`], not here.
    pub fn tickets(&self) -> Vec<Ticket> {
        self.state.data().tickets.clone()
    }

    /// The whole data set (boards, statuses, priorities, companies, members, tickets, and the
    /// rows of every other resource).
    pub fn dataset(&self) -> Arc<Dataset> {
        self.state.data()
    }

    /// The wire rows of one resource in ascending id order, exactly as its list endpoint
    /// renders them, writes included (see [`Dataset::resource_rows`]): `psa` is `connectwise`,
    /// `autotask` or `halo` (or `halopsa`); `endpoint` a ConnectWise path under the API root
    /// (`/company/companies`), an Autotask entity (`Companies`, any case) or a HaloPSA path
    /// under `/api` (`/client`), tickets included. `None` for an unknown PSA or endpoint.
    pub fn resource_rows(&self, psa: &str, endpoint: &str) -> Option<Vec<serde_json::Value>> {
        self.state
            .snapshot(View::from_psa(psa)?)
            .resource_rows(endpoint)
    }

    /// Ticket `id` in `psa`'s view (`connectwise`, `autotask`, `halo` or `halopsa`) as its GET
    /// renders it now, writes and technician edits included.
    pub fn ticket_row(&self, psa: &str, id: u64) -> Option<serde_json::Value> {
        self.state.snapshot(View::from_psa(psa)?).ticket(id)
    }

    /// The notes of ticket `ticket_id` in `psa`'s view, as its notes list answers them
    /// (Autotask: the generated `TicketNotes` too). Empty for an unknown PSA or ticket.
    pub fn notes(&self, psa: &str, ticket_id: u64) -> Vec<serde_json::Value> {
        View::from_psa(psa)
            .and_then(|view| writes::notes(&self.state, view, ticket_id).ok())
            .unwrap_or_default()
    }

    /// The write log (as `GET /__sim/writes`), oldest first: every write request that reached
    /// the write logic, accepted or refused.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.state.writes.log()
    }

    /// Empties the write log (the writes themselves stay; [`SimHandle::reset`] undoes them).
    pub fn clear_writes(&self) {
        self.state.writes.clear_log();
    }

    /// Changes ticket `ticket_id` as a person in the PSA would: `field` is a writable field in
    /// `psa`'s own names (`status/id`, `status`, `status_id`, …, as a client writes it), the
    /// value is checked as a client's, and the row's concurrency token moves on, so a client
    /// holding the old one is refused with 409. Listed by [`SimHandle::technician_edits`], not in
    /// the write log. Returns the updated row.
    ///
    /// # Panics
    /// On an unknown PSA, ticket or field, or an invalid value; see [`SimHandle::try_technician_edit`].
    pub fn technician_edit(
        &self,
        psa: &str,
        ticket_id: u64,
        field: &str,
        value: serde_json::Value,
    ) -> serde_json::Value {
        match self.try_technician_edit(psa, ticket_id, field, value) {
            Ok(row) => row,
            Err(e) => panic!("invalid technician edit: {e}"),
        }
    }

    /// As [`SimHandle::technician_edit`], with the error.
    pub fn try_technician_edit(
        &self,
        psa: &str,
        ticket_id: u64,
        field: &str,
        value: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let view = View::from_psa(psa).ok_or_else(|| format!("unknown PSA '{psa}'"))?;
        writes::technician(&self.state, view, ticket_id, field, value)
            .map_err(|e| e.message().to_string())
    }

    /// The technician's edits, oldest first.
    pub fn technician_edits(&self) -> Vec<TechnicianEdit> {
        self.state.writes.technician_edits()
    }

    /// The simulator's wall clock, which written tokens and notes take: 2026-11-01T00:00:00Z
    /// (the end of the generated dates) plus the virtual time since start, in whole seconds.
    pub fn now(&self) -> jiff::Timestamp {
        writes::now(&self.state)
    }

    /// The ticket as ConnectWise returns it.
    pub fn cw_json(t: &Ticket) -> serde_json::Value {
        data::cw_json(t)
    }

    /// The ticket as Autotask returns it.
    pub fn at_json(t: &Ticket) -> serde_json::Value {
        data::at_json(t)
    }

    /// The ticket as HaloPSA returns it.
    pub fn halo_json(t: &Ticket) -> serde_json::Value {
        data::halo_json(t)
    }

    /// `{base}/api` (Halo's resource root; `{base}` is what an integration's `url` holds).
    pub fn halo_api_url(&self) -> String {
        format!("{}/api", self.base_url)
    }

    /// The request log (admin requests excluded), oldest first.
    pub async fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state.log).entries.iter().cloned().collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        lock(&self.state.log).entries.clear();
    }

    /// Installs a fault (as `POST /__sim/faults` does) and returns its id.
    ///
    /// # Panics
    /// When the fault is contradictory (see [`Fault::validate`]); use [`SimHandle::try_inject`] to get the error.
    pub fn inject(&self, fault: Fault) -> u64 {
        match self.try_inject(fault) {
            Ok(id) => id,
            Err(e) => panic!("invalid fault: {e}"),
        }
    }

    /// Installs a fault after validating it.
    pub fn try_inject(&self, fault: Fault) -> Result<u64, String> {
        fault.validate()?;
        Ok(self.state.inject(fault))
    }

    /// The installed faults with their counters.
    pub fn faults(&self) -> Vec<FaultState> {
        lock(&self.state.faults).0.active.clone()
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.state.faults).0.clear();
    }

    /// The current limits.
    pub fn limits(&self) -> Limits {
        self.state.limits()
    }

    /// Replaces the limits (and resets the throttle buckets and thread slots).
    pub fn set_limits(&self, limits: Limits) {
        self.state.set_limits(limits);
    }

    /// Moves the virtual clock forward.
    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// Counters, as `GET /__sim/stats` reports them.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Back to the initial state: logs, faults, limits, throttle counters, and the writes, notes
    /// and technician edits. The data set is kept.
    pub fn reset(&self) {
        self.state.reset(None, None, None);
    }

    /// Stops the server and waits for it (in-flight connections get a graceful close).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
