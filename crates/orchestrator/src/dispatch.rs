//! Dispatch: what a RUNNING backfill inside its window needs ([`Driver`]), fair claim rounds
//! under the per-tenant and per-process caps, and running each claimed execution outside any
//! transaction, its outcome sent to the settler.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use neo_domain::backfill::{BackfillMode, EntityType};
use neo_domain::fairness::Blackouts;
use neo_domain::pacing::Feedback;
use neo_domain::windows::Schedule;
use neo_store::source::{ActionJob, ActionOutcome};
use neo_store::{AttemptReport, Backfill, Claimed, Outcome, Settlement, Workflow};
use rand::Rng;

use crate::executor::{self, Answer, ExecResult, ExecutorSpec};
use crate::fair::{self, Slot};
use crate::*;
use neo_domain::retry::AfterTransient;

/// What dispatching one RUNNING backfill needs, resolved by a tick.
pub(crate) struct Driver {
    pub backfill_id: String,
    pub tenant_id: String,
    pub entity_type: EntityType,
    pub mode: BackfillMode,
    pub remove_notes: bool,
    pub parent_backfill_id: Option<String>,
    pub wf: Arc<Workflow>,
    pub exec: ExecutorSpec,
    pub schedule: Schedule,
    /// What one succeeded execution costs (the tenant's allowance counts it).
    pub credits_per_entity: i64,
    /// Its `max_in_flight`: the ceiling of its adaptive limit.
    pub max_in_flight: i64,
    /// Its company blackouts: the companies they hold are named to each claim.
    pub blackouts: Option<Blackouts>,
}

impl Orchestrator {
    /// Resolves what dispatching a RUNNING backfill needs, when it is inside a window.
    pub(crate) async fn drive(&self, b: &Backfill) -> anyhow::Result<Option<Arc<Driver>>> {
        let i = &self.inner;
        let now = i.clock.now();
        if !b.snapshot_complete {
            self.spawn_snapshot(b);
        }
        let schedule = match b.schedule() {
            Ok(s) => s,
            Err(e) => {
                i.drivers.lock().expect("poisoned").remove(&b.id);
                i.store
                    .fail_backfill(&b.id, &format!("invalid schedule: {}", e.message), now)
                    .await?;
                return Ok(None);
            }
        };
        let blackouts = match b.blackouts() {
            Ok(bo) => bo,
            Err(e) => {
                i.drivers.lock().expect("poisoned").remove(&b.id);
                i.store
                    .fail_backfill(
                        &b.id,
                        &format!("invalid company blackouts: {}", e.message),
                        now,
                    )
                    .await?;
                return Ok(None);
            }
        };
        // A trial's sample is spread over the whole snapshot: nothing runs before it is
        // complete (the store then holds every item outside the sample).
        let trial_waits = b.in_trial() && !b.snapshot_complete;
        if trial_waits || !schedule.inside(now) || i.stopping.load(Ordering::SeqCst) {
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
        let exec = match ExecutorSpec::from_stored(&wf.executor) {
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
            entity_type: b.entity_type,
            mode: b.mode,
            remove_notes: b.remove_notes,
            parent_backfill_id: b.parent_backfill_run_id.clone(),
            wf: Arc::new(wf),
            exec,
            schedule,
            credits_per_entity: b.credits_per_entity,
            max_in_flight: b.max_in_flight,
            blackouts,
        });
        i.drivers
            .lock()
            .expect("poisoned")
            .insert(b.id.clone(), driver.clone());
        Ok(Some(driver))
    }

    /// One fair claim round over `drivers` ([`fair::plan_round`]): every tenant with work
    /// gets one claim, for all its backfills inside their windows, its room
    /// (`tenant_max_in_flight` and `process_max_in_flight` minus what runs, at most
    /// `claim_batch`) shared among them ([`fair::shares`]). Backfills that want more (a full
    /// share, or none this round) go back in the refill set for the next round, which follows
    /// at once; backfills held back by a cap wait for a settlement. Returns `(dispatched,
    /// skipped)` per backfill claimed for.
    pub(crate) async fn claim_round(
        &self,
        drivers: Vec<Arc<Driver>>,
    ) -> anyhow::Result<HashMap<String, (usize, u64)>> {
        let i = &self.inner;
        let mut stats: HashMap<String, (usize, u64)> = HashMap::new();
        if drivers.is_empty() {
            return Ok(stats);
        }
        let rotation = i.rotation.fetch_add(1, Ordering::Relaxed);
        let round = {
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
        let mut again: Vec<String> = Vec::new();
        let mut capped: Vec<String> = Vec::new();
        let mut round = round.into_iter();
        for (tenant, backfills) in round.by_ref() {
            if i.stopping.load(Ordering::SeqCst) {
                capped.extend(backfills.into_iter().map(|(id, _)| id));
                break;
            }
            let now = i.clock.now();
            let open: Vec<Arc<Driver>> = backfills
                .into_iter()
                .filter(|(_, d)| d.schedule.inside(now))
                .map(|(_, d)| d)
                .collect();
            if open.is_empty() {
                continue;
            }
            let (mine, all) = i.slots.running(&tenant);
            let process_room = i.cfg.process_max_in_flight.saturating_sub(all);
            let tenant_room = i.cfg.tenant_max_in_flight.saturating_sub(mine);
            if process_room == 0 {
                capped.extend(open.iter().map(|d| d.backfill_id.clone()));
                break;
            }
            if tenant_room == 0 {
                capped.extend(open.iter().map(|d| d.backfill_id.clone()));
                continue;
            }
            let limit = i.cfg.claim_batch.min(process_room).min(tenant_room);
            let shares = fair::shares(limit, open.len());
            let (served, unserved): (Vec<_>, Vec<_>) =
                open.into_iter().zip(shares).partition(|(_, n)| *n > 0);
            // Those with no share this round (a room smaller than the number of backfills)
            // go first in the next; when all had one, the next round starts one further on,
            // so the remainder goes round.
            let mark = if unserved.is_empty() {
                served.first()
            } else {
                served.last()
            };
            if let Some((d, _)) = mark {
                i.last_served
                    .lock()
                    .expect("poisoned")
                    .insert(tenant.clone(), d.backfill_id.clone());
            }
            again.extend(unserved.into_iter().map(|(d, _)| d.backfill_id.clone()));
            // The tenant's monthly allowance, shared by its backfills in this round: each
            // share is reserved before the claim, what was not taken given back after.
            let served: Vec<(Arc<Driver>, usize)> = served
                .into_iter()
                .map(|(d, n)| {
                    // Under the backfill's adaptive limit (what this process runs of it).
                    let n = n.min(i.pacing.room(&d.backfill_id, d.max_in_flight));
                    let n = match i.allowances.room(&tenant, d.credits_per_entity) {
                        Some(room) => n.min(room),
                        None => n,
                    };
                    i.allowances
                        .claimed(&tenant, n as i64, d.credits_per_entity);
                    (d, n)
                })
                .collect();
            let wants: Vec<(&str, usize)> = served
                .iter()
                .map(|(d, n)| (d.backfill_id.as_str(), *n))
                .collect();
            let held: Vec<(&str, String)> = served
                .iter()
                .filter_map(|(d, _)| Some((d.backfill_id.as_str(), d.blackouts.as_ref()?)))
                .flat_map(|(id, bo)| bo.held_at(now).into_iter().map(move |c| (id, c)))
                .collect();
            let held: Vec<(&str, &str)> = held.iter().map(|(b, c)| (*b, c.as_str())).collect();
            let results = i
                .store
                .claim_many(&wants, &held, &i.worker, now, now + i.cfg.lease)
                .await?;
            for ((d, share), res) in served.iter().zip(results) {
                let got = res.claimed.len() + res.skipped as usize;
                i.allowances.claimed(
                    &tenant,
                    res.claimed.len() as i64 - *share as i64,
                    d.credits_per_entity,
                );
                let entry = stats.entry(d.backfill_id.clone()).or_default();
                entry.0 += res.claimed.len();
                entry.1 += res.skipped;
                for c in res.claimed {
                    let slot = i.slots.take(&tenant);
                    self.spawn_dispatch(c, d, slot);
                }
                // A short claim without skips means the backfill has no room left (skipped
                // items take none) or nothing pending: another claim would come back empty.
                if got > 0 && (got == *share || res.skipped > 0) {
                    again.push(d.backfill_id.clone());
                }
            }
        }
        // Tenants not reached (the process reached its cap) wait for a settlement too.
        capped.extend(round.flat_map(|(_, bs)| bs.into_iter().map(|(id, _)| id)));
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
    pub(crate) async fn refill(&self) -> anyhow::Result<usize> {
        let i = &self.inner;
        let ids: Vec<String> = i.refill.lock().expect("poisoned").drain().collect();
        let drivers: Vec<Arc<Driver>> = {
            let all = i.drivers.lock().expect("poisoned");
            ids.iter().filter_map(|id| all.get(id).cloned()).collect()
        };
        let stats = self.claim_round(drivers).await?;
        Ok(stats.values().map(|(d, _)| d).sum())
    }

    fn spawn_dispatch(&self, c: Claimed, d: &Arc<Driver>, slot: Slot) {
        let d = d.clone();
        let inner = self.inner.clone();
        inner.outstanding.fetch_add(1, Ordering::SeqCst);
        let key = (c.backfill_id.clone(), c.ord);
        metrics::counter!("neo_executions_dispatched_total").increment(1);
        metrics::gauge!("neo_items_in_flight").increment(1.0);
        // The trace of this dispatch, exported only with `--otlp-endpoint` (otherwise disabled
        // at its call site: this is the hot path). Ids and kinds only: never the executor's
        // URL, secret, headers, body, PSA credentials or error text.
        let span = tracing::info_span!(
            "execution.dispatch",
            backfill.id = c.backfill_id.as_str(),
            tenant.id = c.tenant_id.as_str(),
            execution.id = c.execution_id.as_str(),
            entity.id = c.entity_id.as_str(),
            executor.type = executor_type(&d.exec),
            attempt = c.attempt,
            outcome = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let mut running = inner.running.lock().expect("poisoned");
        let task_inner = inner.clone();
        let task_key = key.clone();
        let exec_id = c.execution_id.clone();
        let place = inner.pacing.start(&c.backfill_id);
        let task_span = span.clone();
        let task = async move {
            let i = task_inner;
            let started = Instant::now();
            let started_at = i.clock.now();
            let Answer {
                result,
                http_status,
            } = run_execution(&i, &c, &d).await;
            // The execution is over: its tenant's slot is free for the next claim.
            drop(slot);
            let latency = started.elapsed();
            metrics::histogram!("neo_dispatch_latency_seconds").record(latency.as_secs_f64());
            let now = i.clock.now();
            let error = match &result {
                ExecResult::Failed(e) | ExecResult::Transient { error: e, .. } => Some(e.as_str()),
                _ => None,
            };
            place.finished(Feedback::of(error, http_status, latency), started_at, now);
            let settlement = match result {
                ExecResult::Succeeded => {
                    metrics::counter!("neo_executions_succeeded_total").increment(1);
                    Settlement::Succeeded
                }
                ExecResult::Failed(e) => {
                    metrics::counter!("neo_executions_failed_total").increment(1);
                    Settlement::Failed(e)
                }
                ExecResult::Skipped(reason) => Settlement::Skipped(reason),
                ExecResult::Accepted => Settlement::AwaitCallback {
                    deadline: now + i.cfg.callback_deadline,
                },
                ExecResult::Transient { error, retry_after } => {
                    let unit = || i.rng.lock().expect("poisoned").gen::<f64>();
                    match i
                        .cfg
                        .retry_policy()
                        .after_transient(c.attempt, retry_after, unit)
                    {
                        AfterTransient::GiveUp { attempts } => {
                            metrics::counter!("neo_executions_failed_total").increment(1);
                            Settlement::Failed(format!(
                                "{error} (gave up after {attempts} attempts)"
                            ))
                        }
                        AfterTransient::Retry { delay } => {
                            metrics::counter!("neo_executions_retried_total").increment(1);
                            Settlement::Retry {
                                error,
                                at: now + delay,
                            }
                        }
                    }
                }
            };
            if !task_span.is_disabled() {
                task_span.record("outcome", outcome_name(&settlement));
                if let Some(s) = http_status {
                    task_span.record("http.response.status_code", s);
                }
                if matches!(settlement, Settlement::Failed(_)) {
                    task_span.record("otel.status_code", "error");
                }
            }
            i.running.lock().expect("poisoned").remove(&task_key);
            let _ = i.outcomes.send(Outcome {
                backfill_id: c.backfill_id,
                ord: c.ord,
                execution_id: c.execution_id,
                settlement,
                attempt: AttemptReport {
                    started_at: Some(started_at),
                    http_status,
                },
            });
        };
        let handle = tokio::spawn(tracing::Instrument::instrument(task, span));
        running.insert(
            key,
            Running {
                abort: handle.abort_handle(),
                execution_id: exec_id,
            },
        );
    }
}

/// The `executor.type` of a dispatch span: the executor's `type` in the workflow.
fn executor_type(e: &ExecutorSpec) -> &'static str {
    match e {
        ExecutorSpec::Webhook { .. } => "webhook",
        ExecutorSpec::Simulated { .. } => "simulated",
        ExecutorSpec::PsaActions(_) => "psa_actions",
    }
}

/// The `outcome` of a dispatch span.
fn outcome_name(s: &Settlement) -> &'static str {
    match s {
        Settlement::Succeeded => "succeeded",
        Settlement::Failed(_) => "failed",
        Settlement::Skipped(_) => "skipped",
        Settlement::Cancelled(_) => "cancelled",
        Settlement::Retry { .. } => "retry",
        Settlement::AwaitCallback { .. } => "awaiting_callback",
    }
}

async fn run_execution(i: &Inner, c: &Claimed, d: &Driver) -> Answer {
    match &d.exec {
        ExecutorSpec::Simulated {
            latency,
            failure_rate,
            transient_rate,
            seed,
        } => {
            if !latency.is_zero() {
                tokio::time::sleep(*latency).await;
            }
            executor::run_simulated(&i.first_runs, *seed, *failure_rate, *transient_rate, c).into()
        }
        ExecutorSpec::Webhook {
            url,
            secret,
            timeout,
        } => {
            let body = executor::webhook_body(c, &d.wf.name, d.entity_type.as_str());
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
        ExecutorSpec::PsaActions(stored) => {
            let job = ActionJob {
                tenant_id: &c.tenant_id,
                backfill_id: &c.backfill_id,
                parent_backfill_id: d.parent_backfill_id.as_deref(),
                mode: d.mode,
                remove_notes: d.remove_notes,
                entity_type: d.entity_type,
                entity_id: &c.entity_id,
                execution_id: &c.execution_id,
                workflow_id: c.workflow_id,
                executor: stored,
            };
            match i.source.act(&job).await {
                ActionOutcome::Succeeded => ExecResult::Succeeded,
                ActionOutcome::Skipped(reason) => ExecResult::Skipped(reason),
                ActionOutcome::Failed(e) => ExecResult::Failed(e),
                ActionOutcome::Transient(error) => ExecResult::Transient {
                    error,
                    retry_after: None,
                },
            }
            .into()
        }
    }
}
