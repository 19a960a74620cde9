//! The orchestrator: a durable loop that drives every RUNNING backfill. Each tick it puts
//! expired leases back, starts a snapshot task for each backfill whose PSA snapshot is not
//! complete (pages are read off the tick, so a throttled PSA never delays dispatch), and —
//! inside a window, under `max_in_flight` —
//! claims pending items under a short lease (one transaction), runs their executions outside
//! any transaction, and settles the outcomes in batches (one transaction each). Signals are
//! read from the database on every claim, so pause and cancel take effect at once; a
//! [`tokio::sync::Notify`] wakes the loop on changes made in the same process, and a short poll
//! interval covers changes made by other processes.
//!
//! The map:
//! - [`config`]: what an operator tunes;
//! - `run`: the loop, the heartbeat and graceful shutdown; this file: the tick;
//! - `snapshot`: PSA pages off the tick ([`EntitySource`] is what the connectors implement);
//! - `dispatch`: drivers, fair claim rounds ([`fair`]), running executions ([`executor`]);
//! - [`settler`]: group settlement that no outcome can stall;
//! - [`pacing`]: each backfill's adaptive in-flight limit (AIMD), read by every claim;
//! - `control`: self-pauses (trial, budget, allowance) and the tenant's monthly allowance;
//! - `cancel`: what a backfill that ended leaves behind; [`outbound`]: best-effort calls off
//!   the loop;
//! - [`notify`]: the notification outbox delivered to tenants' endpoints, in its own task.

pub mod cancel;
pub mod config;
mod control;
mod dispatch;
pub mod executor;
pub mod fair;
pub mod notify;
pub mod outbound;
pub mod pacing;
mod run;
pub mod settler;
mod snapshot;

pub use config::OrchestratorConfig;
pub use neo_store::source::{EntitySource, NoPsaSource, SourceError, SourcePage};

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

use neo_domain::backfill::BackfillRunState;
use neo_domain::clock::Clock;
use neo_domain::egress::EgressPolicy;
use neo_egress::Egress;
use neo_store::{Outcome, Store};
use rand::SeedableRng;
use tokio::sync::{mpsc, Notify};

use crate::dispatch::Driver;
use crate::fair::Slots;
use crate::outbound::Outbound;

type Key = (String, i64);

/// Pending items of an ended backfill swept to `cancelled` per tick.
const SWEEP_BATCH: usize = 20_000;

struct Running {
    abort: tokio::task::AbortHandle,
    execution_id: String,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cfg: OrchestratorConfig,
    source: Arc<dyn EntitySource>,
    worker: String,
    http: Egress,
    running: Mutex<HashMap<Key, Running>>,
    /// Executions running in this process per tenant (the in-flight caps).
    slots: Arc<Slots>,
    /// Best-effort outbound calls (cancel webhooks), off the tick.
    outbound: Arc<Outbound>,
    /// Which tenant a claim round starts with (advances every round).
    rotation: AtomicUsize,
    /// Per tenant, the backfill its last claim was for (its backfills take turns).
    last_served: Mutex<HashMap<String, String>>,
    /// Dispatched executions whose outcome is not settled yet.
    outstanding: AtomicUsize,
    idle: Notify,
    kick: Notify,
    outcomes: mpsc::UnboundedSender<Outcome>,
    outcomes_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Outcome>>,
    rng: Mutex<rand::rngs::StdRng>,
    /// What the simulated executor remembers of transient failures.
    first_runs: executor::FirstRuns,
    stopping: AtomicBool,
    /// Backfills whose snapshot task runs in this process.
    enumerating: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// RUNNING backfills inside a window as of the last tick, with what dispatching them
    /// needs, so capacity freed by a settlement is refilled at once without a full tick.
    drivers: Mutex<HashMap<String, Arc<Driver>>>,
    /// Backfills with capacity freed (a settlement) or items added (a snapshot page) since the
    /// last refill.
    refill: Mutex<HashSet<String>>,
    /// The tenants' monthly credit allowances as last measured.
    allowances: control::Allowances,
    /// Each driven backfill's adaptive in-flight limit.
    pacing: Arc<pacing::Pacing>,
}

/// A handle on the orchestrator; cheap to clone.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

/// What one tick did (for tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub dispatched: usize,
    pub skipped: u64,
    pub requeued: u64,
    pub cancelled: usize,
    /// Pending items of ended backfills moved to `cancelled` ([`Store::sweep_pending`]).
    pub swept: u64,
}

impl Orchestrator {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cfg: OrchestratorConfig) -> Self {
        Self::with_source(store, clock, cfg, Arc::new(NoPsaSource))
    }

    pub fn with_source(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cfg: OrchestratorConfig,
        source: Arc<dyn EntitySource>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let rng = match cfg.jitter_seed {
            Some(s) => rand::rngs::StdRng::seed_from_u64(s),
            None => rand::rngs::StdRng::from_entropy(),
        };
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let worker = format!(
            "{host}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let http = Egress::new(EgressPolicy::new(cfg.egress_allow_private));
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                cfg,
                source,
                worker,
                http,
                running: Mutex::new(HashMap::new()),
                slots: Arc::default(),
                outbound: Arc::default(),
                rotation: AtomicUsize::new(0),
                last_served: Mutex::new(HashMap::new()),
                outstanding: AtomicUsize::new(0),
                idle: Notify::new(),
                kick: Notify::new(),
                outcomes: tx,
                outcomes_rx: tokio::sync::Mutex::new(rx),
                rng: Mutex::new(rng),
                first_runs: executor::FirstRuns::default(),
                stopping: AtomicBool::new(false),
                enumerating: Mutex::new(HashMap::new()),
                drivers: Mutex::new(HashMap::new()),
                refill: Mutex::new(HashSet::new()),
                allowances: Default::default(),
                pacing: Arc::default(),
            }),
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.inner.worker
    }

    /// One pass over every backfill that needs the orchestrator. Dispatches run in the
    /// background; [`Orchestrator::drain`] waits for them.
    pub async fn tick(&self) -> anyhow::Result<TickReport> {
        let i = &self.inner;
        let now = i.clock.now();
        let mut report = TickReport::default();
        let reap = i.store.reap_expired_leases(now).await?;
        if reap.requeued + reap.timed_out > 0 {
            metrics::counter!("neo_leases_expired_total").increment(reap.requeued + reap.timed_out);
            tracing::info!(
                requeued = reap.requeued,
                timed_out = reap.timed_out,
                "expired leases"
            );
        }
        report.requeued = reap.requeued;
        let backfills = i.store.dispatchable_backfills().await?;
        i.drivers.lock().expect("poisoned").retain(|id, _| {
            backfills
                .iter()
                .any(|b| &b.id == id && b.state == BackfillRunState::Running)
        });
        let mut driven = Vec::new();
        let mut open_windows = 0u64;
        for b in backfills {
            match b.state {
                BackfillRunState::Running => {
                    if let Some(d) = self.drive(&b).await? {
                        open_windows += 1;
                        driven.push((b, d));
                    }
                }
                BackfillRunState::Cancelled | BackfillRunState::Failed => {
                    report.cancelled += self.cancel_outstanding(&b).await?;
                    if b.pending_count > 0 {
                        // What the cancel left pending, one bounded batch per tick, so a
                        // million-item sweep never holds up another backfill's claims.
                        let swept = i.store.sweep_pending(&b.id, SWEEP_BATCH, now).await?;
                        report.swept += swept;
                    }
                }
                _ => {} // PAUSED: in-flight executions finish; nothing new starts.
            }
        }
        // One aggregate series, not one per backfill (series would pile up forever).
        metrics::gauge!("neo_backfills_window_open").set(open_windows as f64);
        self.measure_allowances(driven.iter().map(|(b, _)| b))
            .await?;
        let stats = self
            .claim_round(driven.iter().map(|(_, d)| d.clone()).collect())
            .await?;
        let shown = i.pacing.to_show(
            |id| driven.iter().any(|(b, _)| b.id == id),
            std::time::Instant::now(),
        );
        if !shown.is_empty() {
            i.store.set_effective_max_in_flight(&shown).await?;
        }
        for (b, _) in &driven {
            let (dispatched, skipped) = stats.get(&b.id).copied().unwrap_or((0, 0));
            report.dispatched += dispatched;
            report.skipped += skipped;
            // Settles complete a backfill as they land; a backfill whose last items were all
            // skipped (or that had nothing left when this tick read it) completes here.
            if dispatched == 0 && (skipped > 0 || (b.pending_count == 0 && b.in_flight_count == 0))
            {
                i.store.complete_if_settled(&b.id, i.clock.now()).await?;
            } else if dispatched == 0 && skipped == 0 && b.in_flight_count == 0 {
                // Nothing could start: a trial's sample done, a cap or the allowance reached?
                self.pause_if_stuck(b).await?;
            }
        }
        Ok(report)
    }
}

/// What a failed database call means for an operator (busy, full, unreachable), for the logs.
pub(crate) fn db_hint(e: &anyhow::Error) -> &'static str {
    e.downcast_ref::<neo_store::StoreError>()
        .and_then(|s| s.unavailable())
        .map_or("", |u| u.message())
}
