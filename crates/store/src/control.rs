//! Operator control in the store (issue 21): the trial's held items and the self-pauses.
//! Written once for both backends (`$N` placeholders): `control_queries!($db)` in a backend
//! module defines the statements.
//!
//! A trial holds every item outside its sample (`backfill_items.held`) from the moment the
//! snapshot is complete, so the claim — which never takes a held item — needs no other
//! notion of a trial; the orchestrator does not drive a trial before its snapshot is
//! complete (the sample is spread over all of it). Continuing releases them.
//!
//! A self-pause is decided by the orchestrator and re-checked here under the backfill's row
//! lock, so a pause never lands on a backfill that changed meanwhile (something claimed, a
//! cap raised): RUNNING, nothing in flight, and the reason still true.

/// The most common errors a trial summary lists.
pub(crate) const TRIAL_TOP_ERRORS: i64 = 5;

/// Sample ords released per statement.
pub(crate) const RELEASE_CHUNK: usize = 500;

macro_rules! control_queries {
    ($db:ty) => {
        /// Holds every item of a trial backfill outside its sample (see the module doc);
        /// nothing for a backfill without a trial or whose trial is over.
        pub(crate) async fn hold_outside_sample(
            tx: &mut sqlx::Transaction<'_, $db>,
            backfill_id: &str,
        ) -> Result<()> {
            let (n, summary, total): (Option<i64>, Option<String>, i64) = sqlx::query_as(
                "SELECT trial_sample_size, trial_summary, total_items FROM backfills WHERE id = $1",
            )
            .bind(backfill_id)
            .fetch_one(&mut **tx)
            .await?;
            let Some(n) = n.filter(|_| summary.is_none()) else {
                return Ok(());
            };
            let sample = neo_domain::control::trial_positions(total.max(0) as u64, n.max(1) as u64);
            if sample.len() as i64 == total {
                return Ok(());
            }
            sqlx::query("UPDATE backfill_items SET held = TRUE WHERE backfill_id = $1")
                .bind(backfill_id)
                .execute(&mut **tx)
                .await?;
            for chunk in sample.chunks(crate::control::RELEASE_CHUNK) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE backfill_items SET held = FALSE WHERE backfill_id = ",
                );
                q.push_bind(backfill_id).push(" AND ord IN (");
                let mut list = q.separated(", ");
                for ord in chunk {
                    list.push_bind(*ord as i64);
                }
                q.push(")");
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Releases a trial's held items: the rest of the snapshot may run.
        pub(crate) async fn release_held(
            tx: &mut sqlx::Transaction<'_, $db>,
            backfill_id: &str,
        ) -> Result<()> {
            sqlx::query("UPDATE backfill_items SET held = FALSE WHERE backfill_id = $1 AND held")
                .bind(backfill_id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// [`crate::Store::pause_itself`] in `tx`.
        pub(crate) async fn pause_itself_tx(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            backfill_id: &str,
            reason: PauseReason,
            now: Timestamp,
        ) -> Result<bool> {
            let Some(b) = lock_backfill(tx, tenant_id, backfill_id).await? else {
                return Ok(false);
            };
            if b.state != BackfillRunState::Running || b.in_flight_count > 0 || b.pending_count == 0 {
                return Ok(false);
            }
            let mut summary = None;
            let holds = match reason {
                PauseReason::TrialComplete => {
                    // Only the sample can have been claimed, so it is done when as many
                    // items have settled as it holds.
                    let sample = b.trial_sample_size.unwrap_or(0).min(b.total_items);
                    let settled = b.total_items - b.pending_count - b.in_flight_count;
                    let done = b.in_trial() && b.snapshot_complete && settled >= sample;
                    if done {
                        summary = Some(trial_summary(tx, &b, sample).await?);
                    }
                    done
                }
                PauseReason::BudgetReached => b.budget_room() == Some(0),
                // The orchestrator measured the tenant's month; nothing here to re-check.
                PauseReason::AllowanceExhausted => true,
                PauseReason::Operator | PauseReason::CircuitBreaker => false,
            };
            if !holds {
                return Ok(false);
            }
            let now_ms = to_ms(now);
            let summary = summary.map(|s| to_json_text(&s)).transpose()?;
            sqlx::query(
                "UPDATE backfills SET state = 'PAUSED', pause_reason = $1, \
                 trial_summary = COALESCE($2, trial_summary), updated_at = $3 WHERE id = $4",
            )
            .bind(reason.as_str())
            .bind(summary)
            .bind(now_ms)
            .bind(backfill_id)
            .execute(&mut **tx)
            .await?;
            sqlx::query("INSERT INTO backfill_signals (backfill_id, signal, from_state, to_state, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(backfill_id)
                .bind(Signal::Pause.as_str())
                .bind(BackfillRunState::Running.as_str())
                .bind(BackfillRunState::Paused.as_str())
                .bind(format!("neo-backfill ({})", reason.as_str()))
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
            emit_event(tx, backfill_id, neo_domain::notify::EventType::BackfillPaused, None, now_ms).await?;
            Ok(true)
        }

        /// What a trial's settled sample did.
        async fn trial_summary(
            tx: &mut sqlx::Transaction<'_, $db>,
            b: &Backfill,
            sample: i64,
        ) -> Result<TrialSummary> {
            let top: Vec<(Option<String>, i64)> = sqlx::query_as(
                "SELECT error, COUNT(*) AS n FROM backfill_items WHERE backfill_id = $1 AND status = 'failed' \
                 GROUP BY error ORDER BY n DESC, error LIMIT $2",
            )
            .bind(&b.id)
            .bind(crate::control::TRIAL_TOP_ERRORS)
            .fetch_all(&mut **tx)
            .await?;
            Ok(TrialSummary {
                sample_size: sample,
                succeeded: b.succeeded_count,
                failed: b.failed_count,
                skipped: b.skipped_count,
                top_errors: top
                    .into_iter()
                    .map(|(error, count)| TrialError {
                        error: error.unwrap_or_default(),
                        count,
                    })
                    .collect(),
            })
        }
    };
}
pub(crate) use control_queries;
