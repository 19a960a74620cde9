//! The orchestrator: a durable loop that drives every RUNNING backfill. Each tick it puts
//! expired leases back, starts a snapshot task for each backfill whose PSA snapshot is not
//! complete (pages are read off the tick, so a throttled PSA never delays dispatch), and —
//! inside a window, under `max_in_flight` —
//! claims pending items under a short lease (one transaction), runs their executions outside
//! any transaction, and settles the outcomes in batches (one transaction each). Signals are
//! read from the database on every claim, so pause and cancel take effect at once; a
//! [`tokio::sync::Notify`] wakes the loop on changes made in the same process, and a short poll
//! interval covers changes made by other processes.

pub mod executor;
pub mod fair;
pub mod outbound;
pub mod settler;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use neo_domain::backfill::BackfillRunState;
use neo_domain::clock::Clock;
use neo_domain::egress::EgressPolicy;
use neo_domain::windows::Schedule;
use neo_egress::Egress;
use neo_store::{Backfill, Claimed, Outcome, Settlement, Store, Workflow, CALLBACK_OWNER};
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch, Notify};

use crate::executor::{ExecResult, ExecutorConfig};
use crate::fair::{Slot, Slots};
use crate::outbound::Outbound;

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
    /// Items claimed per round trip.
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
            claim_batch: 100,
            settle_window: Duration::from_millis(2),
            jitter_seed: None,
            egress_allow_private: false,
            tenant_max_in_flight: 500,
            process_max_in_flight: 5_000,
            cancel_timeout: Duration::from_secs(10),
        }
    }
}

/// The next part of a snapshot: `(entity id, entity number)` in order, where enumeration
/// resumes after them, and whether the snapshot is complete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourcePage {
    pub items: Vec<(String, Option<String>)>,
    pub checkpoint: Option<serde_json::Value>,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// Try again on a later tick (the PSA throttles or is briefly unavailable): slow down,
    /// never fail entities.
    Retry(String),
    /// Enumeration cannot succeed (bad credentials, a query the PSA refuses, retries
    /// exhausted): the backfill ends FAILED with this error.
    Fatal(String),
}

/// Where the entities of a backfill whose snapshot is not complete come from (the PSA
/// connectors). A backfill over an explicit id list is snapshotted at create and never asks.
#[async_trait::async_trait]
pub trait EntitySource: Send + Sync + 'static {
    /// The next page of the snapshot, resuming from `backfill.snapshot_checkpoint`.
    async fn next_page(&self, backfill: &Backfill) -> Result<SourcePage, SourceError>;
}

/// A source for processes without PSA access: it fails the backfill with a clear error.
pub struct NoPsaSource;

#[async_trait::async_trait]
impl EntitySource for NoPsaSource {
    async fn next_page(&self, _: &Backfill) -> Result<SourcePage, SourceError> {
        Err(SourceError::Fatal(
            "PSA enumeration is not available in this process".into(),
        ))
    }
}

type Key = (String, i64);

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
    stopping: AtomicBool,
    /// Backfills whose snapshot task runs in this process.
    enumerating: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// RUNNING backfills inside a window as of the last tick, with what dispatching them
    /// needs, so capacity freed by a settlement is refilled at once without a full tick.
    drivers: Mutex<HashMap<String, Arc<Driver>>>,
    /// Backfills with capacity freed (a settlement) or items added (a snapshot page) since the
    /// last refill.
    refill: Mutex<HashSet<String>>,
}

/// What dispatching one RUNNING backfill needs, resolved by a tick.
struct Driver {
    backfill_id: String,
    tenant_id: String,
    entity_type: String,
    wf: Arc<Workflow>,
    exec: ExecutorConfig,
    schedule: Schedule,
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
                stopping: AtomicBool::new(false),
                enumerating: Mutex::new(HashMap::new()),
                drivers: Mutex::new(HashMap::new()),
                refill: Mutex::new(HashSet::new()),
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
                }
                _ => {} // PAUSED: in-flight executions finish; nothing new starts.
            }
        }
        // One aggregate series, not one per backfill (series would pile up forever).
        metrics::gauge!("neo_backfills_window_open").set(open_windows as f64);
        let stats = self
            .claim_round(driven.iter().map(|(_, d)| d.clone()).collect())
            .await?;
        for (b, _) in &driven {
            let (dispatched, skipped) = stats.get(&b.id).copied().unwrap_or((0, 0));
            report.dispatched += dispatched;
            report.skipped += skipped;
            // Settles complete a backfill as they land; a backfill whose last items were all
            // skipped (or that had nothing left when this tick read it) completes here.
            if dispatched == 0 && (skipped > 0 || (b.pending_count == 0 && b.in_flight_count == 0))
            {
                i.store.complete_if_settled(&b.id, i.clock.now()).await?;
            }
        }
        Ok(report)
    }

    /// Starts the snapshot task of `b` unless one runs in this process already.
    fn spawn_snapshot(&self, b: &Backfill) {
        let i = &self.inner;
        let mut tasks = i.enumerating.lock().expect("poisoned");
        if i.stopping.load(Ordering::SeqCst) || tasks.contains_key(&b.id) {
            return;
        }
        let me = self.clone();
        let bf = b.clone();
        let task = tokio::spawn(async move {
            let id = bf.id.clone();
            if let Err(e) = me.snapshot(bf).await {
                tracing::error!(backfill = %id, error = %e, "snapshot task failed");
            }
            me.inner.enumerating.lock().expect("poisoned").remove(&id);
            me.inner.idle.notify_waiters();
        });
        tasks.insert(b.id.clone(), task.abort_handle());
    }

    /// Reads snapshot pages back to back while the backfill is RUNNING, appending each page
    /// with its checkpoint in one transaction (a crash resumes after the last appended page;
    /// a page another process appended first is not appended twice). Stops on pause, cancel,
    /// shutdown, completion, or a deferred page (the next tick starts it again).
    async fn snapshot(&self, mut b: Backfill) -> anyhow::Result<()> {
        let i = &self.inner;
        loop {
            if i.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            match i.source.next_page(&b).await {
                Ok(p) => {
                    let appended = i
                        .store
                        .append_items(
                            &b.id,
                            &p.items,
                            b.snapshot_checkpoint.as_ref(),
                            p.checkpoint.as_ref(),
                            p.complete,
                            i.clock.now(),
                        )
                        .await?;
                    if appended && !p.items.is_empty() {
                        i.refill.lock().expect("poisoned").insert(b.id.clone());
                        i.kick.notify_one();
                    }
                }
                Err(SourceError::Retry(e)) => {
                    tracing::warn!(backfill = %b.id, error = %e, "snapshot page deferred");
                    return Ok(());
                }
                Err(SourceError::Fatal(e)) => {
                    tracing::warn!(backfill = %b.id, error = %e, "snapshot failed");
                    i.store.fail_backfill(&b.id, &e, i.clock.now()).await?;
                    return Ok(());
                }
            }
            match i.store.backfill(&b.tenant_id, &b.id).await? {
                Some(next)
                    if next.state == BackfillRunState::Running && !next.snapshot_complete =>
                {
                    b = next
                }
                _ => return Ok(()),
            }
        }
    }

    /// Resolves what dispatching a RUNNING backfill needs, when it is inside a window.
    async fn drive(&self, b: &Backfill) -> anyhow::Result<Option<Arc<Driver>>> {
        let i = &self.inner;
        let now = i.clock.now();
        if !b.snapshot_complete {
            self.spawn_snapshot(b);
        }
        let schedule = match Schedule::new(&b.daily_execution_windows, &b.timezone) {
            Ok(s) => s,
            Err(e) => {
                i.drivers.lock().expect("poisoned").remove(&b.id);
                i.store
                    .fail_backfill(&b.id, &format!("invalid schedule: {}", e.message), now)
                    .await?;
                return Ok(None);
            }
        };
        if !schedule.inside(now) || i.stopping.load(Ordering::SeqCst) {
            i.drivers.lock().expect("poisoned").remove(&b.id);
            return Ok(None);
        }
        let Some(wf) = i.store.workflow(&b.tenant_id, b.target_workflow_id).await? else {
            i.drivers.lock().expect("poisoned").remove(&b.id);
            i.store
                .fail_backfill(&b.id, "the target workflow was deleted", now)
                .await?;
            return Ok(None);
        };
        let exec = match ExecutorConfig::parse(&wf.executor) {
            Ok(e) => e,
            Err(e) => {
                i.drivers.lock().expect("poisoned").remove(&b.id);
                i.store
                    .fail_backfill(
                        &b.id,
                        &format!("the workflow's executor is invalid: {e}"),
                        now,
                    )
                    .await?;
                return Ok(None);
            }
        };
        let driver = Arc::new(Driver {
            backfill_id: b.id.clone(),
            tenant_id: b.tenant_id.clone(),
            entity_type: b.entity_type.as_str().to_owned(),
            wf: Arc::new(wf),
            exec,
            schedule,
        });
        i.drivers
            .lock()
            .expect("poisoned")
            .insert(b.id.clone(), driver.clone());
        Ok(Some(driver))
    }

    /// One fair claim round over `drivers` ([`fair::plan_round`]): every tenant with work
    /// gets one claim, for the backfill whose turn it is, unless the tenant has
    /// `tenant_max_in_flight` running or the process `process_max_in_flight`. Backfills that
    /// want more (a full batch, another backfill's turn) go back in the refill set for the
    /// next round, which follows at once; backfills held back by a cap wait for a settlement.
    /// Returns `(dispatched, skipped)` per backfill claimed for.
    async fn claim_round(
        &self,
        drivers: Vec<Arc<Driver>>,
    ) -> anyhow::Result<HashMap<String, (usize, u64)>> {
        let i = &self.inner;
        let mut stats: HashMap<String, (usize, u64)> = HashMap::new();
        if drivers.is_empty() {
            return Ok(stats);
        }
        let rotation = i.rotation.fetch_add(1, Ordering::Relaxed);
        let (turns, waiting) = {
            let last = i.last_served.lock().expect("poisoned");
            fair::plan_round(
                drivers
                    .into_iter()
                    .map(|d| (d.tenant_id.clone(), d.backfill_id.clone(), d))
                    .collect(),
                &last,
                rotation,
            )
        };
        let mut again: Vec<String> = waiting.into_iter().map(|(_, id, _)| id).collect();
        let mut capped: Vec<String> = Vec::new();
        let mut turns = turns.into_iter();
        for (tenant, id, d) in turns.by_ref() {
            if i.stopping.load(Ordering::SeqCst) {
                break;
            }
            let now = i.clock.now();
            if !d.schedule.inside(now) {
                continue;
            }
            let (mine, all) = i.slots.running(&tenant);
            let process_room = i.cfg.process_max_in_flight.saturating_sub(all);
            let tenant_room = i.cfg.tenant_max_in_flight.saturating_sub(mine);
            if process_room == 0 {
                capped.push(id);
                break;
            }
            if tenant_room == 0 {
                capped.push(id);
                continue;
            }
            let limit = i.cfg.claim_batch.min(process_room).min(tenant_room);
            let res = i
                .store
                .claim_items(&id, &i.worker, limit, now, now + i.cfg.lease)
                .await?;
            i.last_served
                .lock()
                .expect("poisoned")
                .insert(tenant.clone(), id.clone());
            let got = res.claimed.len() + res.skipped as usize;
            let entry = stats.entry(id.clone()).or_default();
            entry.0 += res.claimed.len();
            entry.1 += res.skipped;
            for c in res.claimed {
                let slot = i.slots.take(&tenant);
                self.spawn_dispatch(c, &d, slot);
            }
            // A short batch without skips means the backfill has no room left (skipped items
            // take none) or nothing pending: another claim would come back empty.
            if got > 0 && (got == limit || res.skipped > 0) {
                again.push(id);
            }
        }
        // Turns not taken (the process reached its cap) wait for a settlement too.
        capped.extend(turns.map(|(_, id, _)| id));
        let kick = !again.is_empty();
        {
            let mut refill = i.refill.lock().expect("poisoned");
            refill.extend(again);
            refill.extend(capped);
        }
        if kick {
            i.kick.notify_one();
        }
        Ok(stats)
    }

    /// Claims for the backfills whose capacity a settlement freed (or that a snapshot page
    /// fed) since the last refill, using what the last tick resolved: no sweep, no re-read of
    /// the backfill list or the workflow. Signals still apply: every claim re-reads the state.
    async fn refill(&self) -> anyhow::Result<usize> {
        let i = &self.inner;
        let ids: Vec<String> = i.refill.lock().expect("poisoned").drain().collect();
        let drivers: Vec<Arc<Driver>> = {
            let all = i.drivers.lock().expect("poisoned");
            ids.iter().filter_map(|id| all.get(id).cloned()).collect()
        };
        let stats = self.claim_round(drivers).await?;
        Ok(stats.values().map(|(d, _)| d).sum())
    }

    fn spawn_dispatch(&self, c: Claimed, d: &Driver, slot: Slot) {
        let (wf, exec, entity_type) = (d.wf.clone(), d.exec.clone(), d.entity_type.clone());
        let inner = self.inner.clone();
        inner.outstanding.fetch_add(1, Ordering::SeqCst);
        let key = (c.backfill_id.clone(), c.ord);
        metrics::counter!("neo_executions_dispatched_total").increment(1);
        metrics::gauge!("neo_items_in_flight").increment(1.0);
        let mut running = inner.running.lock().expect("poisoned");
        let task_inner = inner.clone();
        let task_key = key.clone();
        let exec_id = c.execution_id.clone();
        let handle = tokio::spawn(async move {
            let i = task_inner;
            let started = Instant::now();
            let result = run_execution(&i, &c, &wf, &exec, &entity_type).await;
            // The execution is over: its tenant's slot is free for the next claim.
            drop(slot);
            metrics::histogram!("neo_dispatch_latency_seconds")
                .record(started.elapsed().as_secs_f64());
            let now = i.clock.now();
            let settlement = match result {
                ExecResult::Succeeded => {
                    metrics::counter!("neo_executions_succeeded_total").increment(1);
                    Settlement::Succeeded
                }
                ExecResult::Failed(e) => {
                    metrics::counter!("neo_executions_failed_total").increment(1);
                    Settlement::Failed(e)
                }
                ExecResult::Accepted => Settlement::AwaitCallback {
                    deadline: now + i.cfg.callback_deadline,
                },
                ExecResult::Transient { error, retry_after } => {
                    if c.attempt >= i.cfg.max_attempts {
                        metrics::counter!("neo_executions_failed_total").increment(1);
                        Settlement::Failed(format!(
                            "{error} (gave up after {} attempts)",
                            c.attempt
                        ))
                    } else {
                        metrics::counter!("neo_executions_retried_total").increment(1);
                        let unit: f64 = i.rng.lock().expect("poisoned").gen();
                        let delay = executor::backoff(
                            c.attempt,
                            i.cfg.backoff_base,
                            i.cfg.backoff_cap,
                            retry_after,
                            unit,
                        );
                        Settlement::Retry {
                            error,
                            at: now + delay,
                        }
                    }
                }
            };
            i.running.lock().expect("poisoned").remove(&task_key);
            let _ = i.outcomes.send(Outcome {
                backfill_id: c.backfill_id,
                ord: c.ord,
                execution_id: c.execution_id,
                settlement,
            });
        });
        running.insert(
            key,
            Running {
                abort: handle.abort_handle(),
                execution_id: exec_id,
            },
        );
    }

    /// Cancels what is outstanding for a backfill that ended: aborts this worker's running
    /// executions and sends a cancel call for asynchronous webhook executions.
    async fn cancel_outstanding(&self, b: &Backfill) -> anyhow::Result<usize> {
        let i = &self.inner;
        let mut n = 0;
        let mine: Vec<(Key, Running)> = {
            let mut running = i.running.lock().expect("poisoned");
            let keys: Vec<Key> = running.keys().filter(|k| k.0 == b.id).cloned().collect();
            keys.into_iter()
                .filter_map(|k| running.remove(&k).map(|r| (k, r)))
                .collect()
        };
        for ((bid, ord), r) in mine {
            r.abort.abort();
            n += 1;
            let _ = i.outcomes.send(Outcome {
                backfill_id: bid,
                ord,
                execution_id: r.execution_id,
                settlement: Settlement::Cancelled(format!("the backfill is {}", b.state)),
            });
        }
        let waiting: Vec<(i64, String)> = i
            .store
            .in_flight_items(&b.id)
            .await?
            .into_iter()
            .filter(|(_, _, owner)| owner.as_deref() == Some(CALLBACK_OWNER))
            .map(|(o, e, _)| (o, e))
            .collect();
        if !waiting.is_empty() {
            let wf = i.store.workflow(&b.tenant_id, b.target_workflow_id).await?;
            let hook = wf.and_then(|w| match ExecutorConfig::parse(&w.executor) {
                Ok(ExecutorConfig::Webhook { url, secret, .. }) => Some((url, secret)),
                _ => None,
            });
            let mut outcomes = Vec::new();
            for (ord, exec) in waiting {
                // The cancel call is best effort and runs in the outbound pool: the tick only
                // reads and writes the database.
                if let Some((url, secret)) = hook.clone() {
                    let (http, clock, timeout) =
                        (i.http.clone(), i.clock.clone(), i.cfg.cancel_timeout);
                    let exec = exec.clone();
                    i.outbound.submit(&b.tenant_id, async move {
                        executor::cancel_webhook(
                            &http,
                            clock.as_ref(),
                            &url,
                            &secret,
                            &exec,
                            timeout,
                        )
                        .await;
                    });
                }
                outcomes.push(Outcome {
                    backfill_id: b.id.clone(),
                    ord,
                    execution_id: exec,
                    settlement: Settlement::Cancelled(format!("the backfill is {}", b.state)),
                });
            }
            n += outcomes.len();
            i.store
                .settle(&outcomes, i.cfg.breaker_threshold, i.clock.now())
                .await?;
        }
        Ok(n)
    }

    /// Waits until every dispatched execution has finished and its outcome is settled, and
    /// every snapshot task of this process has stopped.
    pub async fn drain(&self) -> anyhow::Result<()> {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            self.settle_pending().await?;
            if self.inner.outstanding.load(Ordering::SeqCst) == 0
                && self.inner.enumerating.lock().expect("poisoned").is_empty()
            {
                return Ok(());
            }
            tokio::select! {
                _ = &mut idle => {}
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }

    /// Runs until `shutdown` turns true: ticks when woken (`wake`, a settled batch) or every
    /// poll interval, settles outcomes as they arrive, heartbeats leases. On shutdown it stops
    /// claiming, waits up to the grace period for in-flight executions, and releases the
    /// leases of what is left.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let i = self.inner.clone();
        tracing::info!(worker = %i.worker, "orchestrator started");
        let settler = self.spawn_settler();
        let heartbeat = {
            let i = i.clone();
            tokio::spawn(async move {
                let every = Duration::from_millis((i.cfg.lease.as_millis() / 3).max(50) as u64);
                loop {
                    tokio::time::sleep(every).await;
                    let until = i.clock.now() + i.cfg.lease;
                    if let Err(e) = i.store.heartbeat(&i.worker, until).await {
                        tracing::warn!(error = %e, "heartbeat failed");
                    }
                }
            })
        };
        // A full tick when woken by this process (a signal, a create) and every poll
        // interval; a refill when a settlement freed capacity or a snapshot page landed.
        let mut next_tick = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if tokio::time::Instant::now() >= next_tick {
                if let Err(e) = self.tick().await {
                    tracing::error!(error = %e, hint = db_hint(&e), "orchestrator tick failed");
                }
                next_tick = tokio::time::Instant::now() + i.cfg.poll_interval;
            } else if let Err(e) = self.refill().await {
                tracing::error!(error = %e, hint = db_hint(&e), "orchestrator refill failed");
            }
            tokio::select! {
                _ = wake.notified() => next_tick = tokio::time::Instant::now(),
                _ = i.kick.notified() => {}
                _ = tokio::time::sleep_until(next_tick) => {}
                _ = shutdown.changed() => {}
            }
        }
        // Graceful shutdown.
        i.stopping.store(true, Ordering::SeqCst);
        tracing::info!(
            in_flight = i.outstanding.load(Ordering::SeqCst),
            "orchestrator stopping"
        );
        let _ = tokio::time::timeout(i.cfg.shutdown_grace, async {
            while i.outstanding.load(Ordering::SeqCst) > 0 {
                let idle = i.idle.notified();
                if i.outstanding.load(Ordering::SeqCst) == 0 {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), idle).await;
            }
        })
        .await;
        let left: Vec<Running> = i
            .running
            .lock()
            .expect("poisoned")
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in &left {
            r.abort.abort();
        }
        // A snapshot page in progress is not appended; the next process resumes from the
        // last appended page's checkpoint.
        for (_, t) in i.enumerating.lock().expect("poisoned").drain() {
            t.abort();
        }
        heartbeat.abort();
        settler.abort();
        let _ = self.settle_pending().await;
        match i.store.release_leases(&i.worker, i.clock.now()).await {
            Ok(n) => tracing::info!(released = n, "orchestrator stopped"),
            Err(e) => {
                tracing::error!(error = %e, "releasing leases failed; they expire on their own")
            }
        }
    }
}

/// What a failed database call means for an operator (busy, full, unreachable), for the logs.
pub(crate) fn db_hint(e: &anyhow::Error) -> &'static str {
    e.downcast_ref::<neo_store::StoreError>()
        .and_then(|s| s.unavailable())
        .map_or("", |u| u.message())
}

async fn run_execution(
    i: &Inner,
    c: &Claimed,
    wf: &Workflow,
    exec: &ExecutorConfig,
    entity_type: &str,
) -> ExecResult {
    match exec {
        ExecutorConfig::Simulated {
            latency,
            failure_rate,
            seed,
        } => {
            if !latency.is_zero() {
                tokio::time::sleep(*latency).await;
            }
            if executor::simulated_fails(*seed, &c.entity_id, *failure_rate) {
                ExecResult::Failed("simulated failure".into())
            } else {
                ExecResult::Succeeded
            }
        }
        ExecutorConfig::Webhook {
            url,
            secret,
            timeout,
        } => {
            let body = executor::webhook_body(c, &wf.name, entity_type);
            executor::call_webhook(
                &i.http,
                i.clock.as_ref(),
                url,
                secret,
                timeout.unwrap_or(i.cfg.webhook_timeout),
                &c.execution_id,
                &body,
            )
            .await
        }
    }
}
