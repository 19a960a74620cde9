//! Backfills and what removing a workflow or an integration does to them: create (with its
//! snapshot and `Idempotency-Key`), lists, signals, rerun-failed, delete; workflow inserts and
//! master-key rotation, which seal secrets in their transaction.

#[allow(unused_imports)]
use super::*;

impl PgStore {
    pub(super) async fn do_create_backfill_idempotent(
        &self,
        b: NewBackfill,
        idem: Option<&NewIdempotency<'_>>,
    ) -> Result<Backfill> {
        let mut tx = self.tx().await?;
        if let Some(idem) = idem {
            claim_idempotency_key(&mut tx, &b.tenant_id, idem).await?;
        }
        let now = to_ms(b.created_at);
        let n_items = b.entity_ids.as_ref().map_or(0, |v| v.len() as i64);
        let started = (b.state == BackfillRunState::Running).then_some(now);
        sqlx::query("INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, daily_execution_windows, timezone, max_in_flight, reprocess, total_estimated, total_items, snapshot_complete, pending_count, credits_per_entity, started_at, created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, $13, $14, $15, $16, $16)")
            .bind(&b.id)
            .bind(&b.tenant_id)
            .bind(b.state.as_str())
            .bind(b.target_workflow_id)
            .bind(b.entity_type.as_str())
            .bind(to_json_text(&b.daily_execution_windows)?)
            .bind(&b.timezone)
            .bind(b.max_in_flight)
            .bind(b.reprocess)
            .bind(b.total_estimated)
            .bind(n_items)
            .bind(b.entity_ids.is_some())
            .bind(b.credits_per_entity)
            .bind(started)
            .bind(&b.created_by)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_to(e, StoreError::AlreadyActive))?;
        insert_filter(&mut tx, &b.id, &b.filter_spec).await?;
        if let Some(ids) = &b.entity_ids {
            let pairs: Vec<(String, Option<String>)> =
                ids.iter().map(|i| (i.clone(), None)).collect();
            insert_items_from(&mut tx, &b.id, &pairs, 0, now).await?;
        }
        let out = fetch_backfill(&mut tx, &b.tenant_id, &b.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if let Some(idem) = idem {
            save_idempotent_response(&mut tx, &b.tenant_id, idem, &out).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    pub(super) async fn do_list_backfills(
        &self,
        tenant_id: &str,
        f: &BackfillFilter,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Page<Backfill>> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(BACKFILL_SELECT);
        qb.push(" WHERE b.tenant_id = ").push_bind(tenant_id);
        if let Some(before) = before_id {
            qb.push(" AND b.id < ").push_bind(before);
        }
        if let Some(w) = f.target_workflow_id {
            qb.push(" AND b.target_workflow_id = ").push_bind(w);
        }
        if !f.states.is_empty() {
            let states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
            qb.push(" AND b.state = ANY(").push_bind(states).push(")");
        }
        qb.push(" ORDER BY b.id DESC LIMIT ")
            .push_bind(limit as i64 + 1);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let rows: Vec<Backfill> = rows.iter().map(map_backfill).collect::<Result<_>>()?;
        Ok(Page::from_overfetch(rows, limit))
    }

    pub(super) async fn do_list_items(
        &self,
        tenant_id: &str,
        backfill_id: &str,
        statuses: &[ItemStatus],
        after_ord: Option<i64>,
        limit: usize,
    ) -> Result<Page<Item>> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT i.* FROM backfill_items i JOIN backfills b ON b.id = i.backfill_id WHERE b.tenant_id = ",
        );
        qb.push_bind(tenant_id);
        qb.push(" AND i.backfill_id = ").push_bind(backfill_id);
        qb.push(" AND i.ord > ").push_bind(after_ord.unwrap_or(-1));
        if !statuses.is_empty() {
            let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            qb.push(" AND i.status = ANY(")
                .push_bind(statuses)
                .push(")");
        }
        qb.push(" ORDER BY i.ord LIMIT ")
            .push_bind(limit as i64 + 1);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let rows: Vec<Item> = rows.iter().map(map_item).collect::<Result<_>>()?;
        Ok(Page::from_overfetch(rows, limit))
    }

    pub(super) async fn do_signal_backfill(
        &self,
        tenant_id: &str,
        id: &str,
        signal: Signal,
        actor: &str,
        now: Timestamp,
    ) -> Result<(Backfill, SignalOutcome), SignalError> {
        let mut tx = self.tx().await?;
        let b = lock_backfill(&mut tx, tenant_id, id)
            .await?
            .ok_or(SignalError::NotFound)?;
        let outcome = apply_signal(b.state, signal).map_err(SignalError::Refused)?;
        let now_ms = to_ms(now);
        let to = match outcome {
            SignalOutcome::Transition(to) => to,
            SignalOutcome::NoOp => b.state,
        };
        if let SignalOutcome::Transition(to) = outcome {
            // Resume clears a pause reason (e.g. the circuit breaker's) and its streak.
            sqlx::query(
                "UPDATE backfills SET state = $1, updated_at = $2, \
                 started_at = CASE WHEN $3 THEN COALESCE(started_at, $2) ELSE started_at END, \
                 completed_at = CASE WHEN $4 THEN $2 ELSE completed_at END, \
                 error = CASE WHEN $5 THEN NULL ELSE error END, \
                 consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures END \
                 WHERE id = $6",
            )
            .bind(to.as_str())
            .bind(now_ms)
            .bind(to == BackfillRunState::Running)
            .bind(to == BackfillRunState::Cancelled)
            .bind(signal == Signal::Resume)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
            if to == BackfillRunState::Cancelled {
                cancel_pending(&mut tx, id, now_ms).await?;
            }
        }
        sqlx::query("INSERT INTO backfill_signals (backfill_id, signal, from_state, to_state, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(signal.as_str())
            .bind(b.state.as_str())
            .bind(to.as_str())
            .bind(actor)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let out = fetch_backfill(&mut tx, tenant_id, id)
            .await?
            .ok_or(SignalError::NotFound)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok((out, outcome))
    }

    pub(super) async fn do_rerun_failed_idempotent(
        &self,
        tenant_id: &str,
        source_id: &str,
        new_id: &str,
        created_by: &str,
        now: Timestamp,
        idem: Option<&NewIdempotency<'_>>,
    ) -> Result<Backfill, RerunError> {
        let mut tx = self.tx().await?;
        if let Some(idem) = idem {
            claim_idempotency_key(&mut tx, tenant_id, idem).await?;
        }
        let src = lock_backfill(&mut tx, tenant_id, source_id)
            .await?
            .ok_or(RerunError::NotFound)?;
        check_rerunnable(&src)?;
        let wf = sqlx::query("SELECT * FROM workflows WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(src.target_workflow_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let wf = check_rerun_workflow(wf.as_ref().map(map_workflow).transpose()?)?;
        let failed: Vec<(String, Option<String>)> = sqlx::query_as("SELECT entity_id, entity_number FROM backfill_items WHERE backfill_id = $1 AND status = 'failed' ORDER BY ord")
            .bind(source_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let filter = rerun_filter(&failed);
        let now_ms = to_ms(now);
        let n = failed.len() as i64;
        sqlx::query("INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, daily_execution_windows, timezone, max_in_flight, reprocess, total_estimated, total_items, snapshot_complete, pending_count, credits_per_entity, started_at, created_by, created_at, updated_at, parent_backfill_run_id) \
                     VALUES ($1, $2, 'RUNNING', $3, $4, $5, $6, $7, TRUE, $8, $8, TRUE, $8, $9, $10, $11, $10, $10, $12)")
            .bind(new_id)
            .bind(tenant_id)
            .bind(src.target_workflow_id)
            .bind(src.entity_type.as_str())
            .bind(to_json_text(&src.daily_execution_windows)?)
            .bind(&src.timezone)
            .bind(src.max_in_flight)
            .bind(n)
            .bind(wf.credit_tier)
            .bind(now_ms)
            .bind(created_by)
            .bind(source_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    RerunError::AlreadyActive
                } else {
                    StoreError::from(e).into()
                }
            })?;
        insert_filter(&mut tx, new_id, &filter).await?;
        insert_items_from(&mut tx, new_id, &failed, 0, now_ms).await?;
        let out = fetch_backfill(&mut tx, tenant_id, new_id)
            .await?
            .ok_or(RerunError::NotFound)?;
        if let Some(idem) = idem {
            save_idempotent_response(&mut tx, tenant_id, idem, &out).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(out)
    }

    pub(super) async fn do_delete_backfill(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<(), DeleteBackfillError> {
        let mut tx = self.tx().await?;
        let b = lock_backfill(&mut tx, tenant_id, id)
            .await?
            .ok_or(DeleteBackfillError::NotFound)?;
        if b.state != BackfillRunState::Draft {
            return Err(DeleteBackfillError::NotDraft(b.state));
        }
        sqlx::query("DELETE FROM backfills WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    pub(super) async fn do_delete_workflow(
        &self,
        tenant_id: &str,
        id: i64,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query("DELETE FROM workflows WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let active: Vec<String> = sqlx::query_scalar("SELECT id FROM backfills WHERE tenant_id = $1 AND target_workflow_id = $2 AND state IN ('DRAFT', 'RUNNING', 'PAUSED') ORDER BY id FOR UPDATE")
            .bind(tenant_id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        for b in active {
            fail_backfill_tx(&mut tx, &b, "the target workflow was deleted", to_ms(now)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn do_delete_integration(
        &self,
        tenant_id: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query("DELETE FROM integrations WHERE tenant_id = $1")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        // Backfills over an explicit id list do not need the PSA; the others cannot go on.
        // (A JSON null counts as absent, as with SQLite's json_extract.)
        let active: Vec<String> = sqlx::query_scalar("SELECT b.id FROM backfills b JOIN backfill_filters f ON f.backfill_id = b.id WHERE b.tenant_id = $1 AND b.state IN ('DRAFT', 'RUNNING', 'PAUSED') \
                                                     AND COALESCE(jsonb_typeof(f.filter_spec::jsonb -> 'entity_ids'), 'null') = 'null' ORDER BY b.id FOR UPDATE OF b")
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await?;
        for b in active {
            fail_backfill_tx(
                &mut tx,
                &b,
                "the tenant's PSA integration was removed",
                to_ms(now),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn do_insert_workflow(
        &self,
        tenant_id: &str,
        w: NewWorkflow,
        now: Timestamp,
    ) -> Result<Workflow> {
        let sealer = self.sealer.as_deref();
        check_can_seal(sealer, &w.executor)?;
        // The secret is sealed for the row's id, known after the insert: the row is inserted
        // without it, then sealed, in one transaction (plaintext never reaches the database).
        let secret = executor_secret(&w.executor).is_some();
        let unsealed = if secret {
            with_executor_secret(&w.executor, Value::Null)
        } else {
            w.executor.clone()
        };
        let mut tx = self.tx().await?;
        let r = sqlx::query("INSERT INTO workflows (tenant_id, name, description, autonomy_type, entity_type, state, credit_tier, executor, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING *")
            .bind(tenant_id)
            .bind(&w.name)
            .bind(&w.description)
            .bind(w.autonomy_type.as_str())
            .bind(w.entity_type.as_str())
            .bind(w.state.as_str())
            .bind(w.credit_tier)
            .bind(unsealed.to_string())
            .bind(to_ms(now))
            .fetch_one(&mut *tx)
            .await?;
        let mut out = map_workflow(&r)?;
        if secret {
            sqlx::query("UPDATE workflows SET executor = $1 WHERE id = $2")
                .bind(seal_executor(sealer, tenant_id, out.id, &w.executor)?.to_string())
                .bind(out.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        out.executor = w.executor;
        Ok(out)
    }

    pub(super) async fn do_rotate_master_key(&self, new: &Sealer) -> Result<SecretsReport> {
        let old = self.sealer.as_deref().ok_or_else(|| {
            StoreError::Secret("no master key configured: rotation needs the current key".into())
        })?;
        let mut tx = self.tx().await?;
        if let Some(v) = lock_key_check(&mut tx).await? {
            verify_key_check(old, &v)?;
        }
        let report = reseal_all(&mut tx, Some(old), new).await?;
        put_key_check(&mut tx, new).await?;
        tx.commit().await?;
        Ok(report)
    }
}
