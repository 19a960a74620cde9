//! Backfills, written once for both backends (`$N` placeholders, first used in ascending
//! order, which is how SQLite numbers them): `backfill_queries!($db, $lock_b)` in a backend
//! module defines these for its transactions and pools. PostgreSQL passes `" FOR UPDATE OF b"`
//! so that a signal, a rerun or a delete holds the backfill row until it commits; SQLite
//! passes `""` (its one writer already serialises them). Items are inserted by the backend's
//! own `insert_items_from` (a multi-row `VALUES` in SQLite, `UNNEST` in PostgreSQL).

macro_rules! backfill_queries {
    ($db:ty, $lock_b:literal) => {
        /// A backfill of a tenant through `e` (a pool or a transaction), its row held until
        /// the end of the transaction when `lock`.
        async fn read_backfill<'e, E: sqlx::Executor<'e, Database = $db>>(
            e: E,
            tenant_id: &str,
            id: &str,
            lock: bool,
        ) -> Result<Option<Backfill>> {
            let lock = if lock { $lock_b } else { "" };
            let row = sqlx::query(&format!(
                "{BACKFILL_SELECT} WHERE b.tenant_id = $1 AND b.id = $2{lock}"
            ))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(e)
            .await?;
            row.as_ref().map(map_backfill).transpose()
        }

        /// A backfill of a tenant, read in `tx`.
        pub(crate) async fn fetch_backfill(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            id: &str,
        ) -> Result<Option<Backfill>> {
            read_backfill(&mut **tx, tenant_id, id, false).await
        }

        /// [`fetch_backfill`], the row held until the end of `tx`.
        pub(crate) async fn lock_backfill(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            id: &str,
        ) -> Result<Option<Backfill>> {
            read_backfill(&mut **tx, tenant_id, id, true).await
        }

        pub(crate) async fn select_backfill(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            id: &str,
        ) -> Result<Option<Backfill>> {
            read_backfill(r, tenant_id, id, false).await
        }

        /// A page of a tenant's backfills, newest first.
        pub(crate) async fn select_backfills(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            f: &BackfillFilter,
            before_id: Option<&str>,
            limit: usize,
        ) -> Result<Page<Backfill>> {
            let mut qb: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(BACKFILL_SELECT);
            qb.push(" WHERE b.tenant_id = ").push_bind(tenant_id);
            if let Some(before) = before_id {
                qb.push(" AND b.id < ").push_bind(before);
            }
            if let Some(w) = f.target_workflow_id {
                qb.push(" AND b.target_workflow_id = ").push_bind(w);
            }
            if !f.states.is_empty() {
                qb.push(" AND b.state IN (");
                let mut sep = qb.separated(", ");
                for s in &f.states {
                    sep.push_bind(s.as_str());
                }
                qb.push(")");
            }
            qb.push(" ORDER BY b.id DESC LIMIT ")
                .push_bind(limit as i64 + 1);
            let rows = qb.build().fetch_all(r).await?;
            let rows: Vec<Backfill> = rows.iter().map(map_backfill).collect::<Result<_>>()?;
            Ok(Page::from_overfetch(rows, limit))
        }

        /// A page of a backfill's items by `ord`, filtered ([`ItemFilter`]). An entity is
        /// found by walking the backfill's items in key order (no index on `entity_id`: one
        /// would add an entry to every item update of dispatch, for an operator's search).
        pub(crate) async fn select_items(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            backfill_id: &str,
            filter: &ItemFilter,
            after_ord: Option<i64>,
            limit: usize,
        ) -> Result<Page<Item>> {
            let mut qb: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                "SELECT i.*, d.summary FROM backfill_items i JOIN backfills b ON b.id = i.backfill_id \
                 LEFT JOIN backfill_item_details d ON d.backfill_id = i.backfill_id AND d.ord = i.ord \
                 WHERE b.tenant_id = ",
            );
            qb.push_bind(tenant_id);
            qb.push(" AND i.backfill_id = ").push_bind(backfill_id);
            qb.push(" AND i.ord > ").push_bind(after_ord.unwrap_or(-1));
            if let Some(entity) = &filter.entity_id {
                qb.push(" AND i.entity_id = ").push_bind(entity.clone());
            }
            if !filter.statuses.is_empty() {
                qb.push(" AND i.status IN (");
                let mut sep = qb.separated(", ");
                for s in &filter.statuses {
                    sep.push_bind(s.as_str());
                }
                qb.push(")");
            }
            qb.push(" ORDER BY i.ord LIMIT ").push_bind(limit as i64 + 1);
            let rows = qb.build().fetch_all(r).await?;
            let rows: Vec<Item> = rows.iter().map(map_item).collect::<Result<_>>()?;
            Ok(Page::from_overfetch(rows, limit))
        }

        /// Creates a backfill with its filter and, for an explicit id list, its items; the
        /// `Idempotency-Key` is taken first and saved with the answer.
        pub(crate) async fn insert_backfill(
            tx: &mut sqlx::Transaction<'_, $db>,
            b: &NewBackfill,
            idem: Option<&NewIdempotency<'_>>,
        ) -> Result<Backfill> {
            if let Some(idem) = idem {
                claim_idempotency_key(tx, &b.tenant_id, idem).await?;
            }
            let now = to_ms(b.created_at);
            let n_items = b.entity_ids.as_ref().map_or(0, |v| v.len() as i64);
            let started = (b.state == BackfillRunState::Running).then_some(now);
            sqlx::query("INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, daily_execution_windows, timezone, max_in_flight, reprocess, total_estimated, total_items, snapshot_complete, pending_count, credits_per_entity, started_at, created_by, created_at, updated_at, name, mode, start_at, max_credits, trial_sample_size, max_in_flight_per_company, company_blackouts) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, $13, $14, $15, $16, $16, $17, $18, $19, $20, $21, $22, $23)")
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
                .bind(&b.name)
                .bind(b.mode.as_str())
                .bind(b.start_at.map(to_ms))
                .bind(b.max_credits)
                .bind(b.trial_sample_size)
                .bind(b.max_in_flight_per_company)
                .bind(b.company_blackouts.as_ref().map(to_json_text).transpose()?)
                .execute(&mut **tx)
                .await
                .map_err(|e| unique_to(e, StoreError::AlreadyActive))?;
            insert_filter(tx, &b.id, &b.filter_spec).await?;
            if let Some(ids) = &b.entity_ids {
                let entries: Vec<SnapshotEntry> = ids.iter().map(SnapshotEntry::id).collect();
                insert_items_from(tx, &b.id, &entries, 0, now).await?;
                hold_outside_sample(tx, &b.id).await?;
            }
            if b.state == BackfillRunState::Running {
                emit_event(tx, &b.id, neo_domain::notify::EventType::BackfillStarted, None, now).await?;
            }
            let out = fetch_backfill(tx, &b.tenant_id, &b.id)
                .await?
                .ok_or(StoreError::NotFound)?;
            if let Some(idem) = idem {
                save_idempotent_response(tx, &b.tenant_id, idem, &out).await?;
            }
            Ok(out)
        }

        /// The summaries of snapshot entries placed from `first_ord` on, beside their items:
        /// the items a claim and a settlement rewrite stay as narrow as they were, and only a
        /// page of the items list reads them. Written with the same multi-row `VALUES` on both
        /// backends.
        pub(crate) async fn insert_summaries(
            tx: &mut sqlx::Transaction<'_, $db>,
            backfill_id: &str,
            items: &[SnapshotEntry],
            first_ord: i64,
        ) -> Result<()> {
            let with: Vec<(i64, &str)> = items
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.summary.as_deref().map(|s| (first_ord + i as i64, s)))
                .collect();
            // Three parameters a row, under SQLite's 32,766.
            for chunk in with.chunks(5000) {
                let mut qb: sqlx::QueryBuilder<$db> = sqlx::QueryBuilder::new(
                    "INSERT INTO backfill_item_details (backfill_id, ord, summary) ",
                );
                qb.push_values(chunk, |mut b, (ord, summary)| {
                    b.push_bind(backfill_id).push_bind(*ord).push_bind(*summary);
                });
                qb.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// A backfill's `filter_spec`, kept out of its row (SQLite rewrites a whole row on
        /// every update, and the counters change on every claim and settlement).
        pub(crate) async fn insert_filter(
            tx: &mut sqlx::Transaction<'_, $db>,
            backfill_id: &str,
            filter_spec: &Value,
        ) -> Result<()> {
            sqlx::query("INSERT INTO backfill_filters (backfill_id, filter_spec) VALUES ($1, $2)")
                .bind(backfill_id)
                .bind(filter_spec.to_string())
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Applies `signal` as [`apply_signal`] decides, records it, and answers the backfill
        /// as it is after.
        pub(crate) async fn signal_backfill_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            id: &str,
            signal: Signal,
            actor: &str,
            now: Timestamp,
        ) -> Result<(Backfill, SignalOutcome), SignalError> {
            let b = lock_backfill(tx, tenant_id, id)
                .await?
                .ok_or(SignalError::NotFound)?;
            let outcome = apply_signal(b.state, signal).map_err(SignalError::Refused)?;
            let now_ms = to_ms(now);
            let to = match outcome {
                SignalOutcome::Transition(to) => to,
                SignalOutcome::NoOp => b.state,
            };
            if let SignalOutcome::Transition(to) = outcome {
                // Resume clears a pause reason (e.g. the circuit breaker's) and its streak; a
                // pause signal's reason is the operator's.
                sqlx::query(
                    "UPDATE backfills SET state = $1, updated_at = $2, \
                     started_at = CASE WHEN $3 THEN COALESCE(started_at, $2) ELSE started_at END, \
                     completed_at = CASE WHEN $4 THEN $2 ELSE completed_at END, \
                     error = CASE WHEN $5 THEN NULL ELSE error END, \
                     consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures END, \
                     pause_reason = $6 \
                     WHERE id = $7",
                )
                .bind(to.as_str())
                .bind(now_ms)
                .bind(to == BackfillRunState::Running)
                .bind(to == BackfillRunState::Cancelled)
                .bind(signal == Signal::Resume)
                .bind((to == BackfillRunState::Paused).then_some(PauseReason::Operator.as_str()))
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from)?;
                if to == BackfillRunState::Cancelled {
                    cancel_pending(tx, id, CANCEL_INLINE, now_ms).await?;
                }
                if signal == Signal::Resume && b.trial_summary.is_some() {
                    // Continuing after a trial: the rest of the snapshot may run.
                    release_held(tx, id).await?;
                }
                emit_event(tx, id, neo_domain::notify::EventType::of_signal(signal), None, now_ms).await?;
            }
            sqlx::query("INSERT INTO backfill_signals (backfill_id, signal, from_state, to_state, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id)
                .bind(signal.as_str())
                .bind(b.state.as_str())
                .bind(to.as_str())
                .bind(actor)
                .bind(now_ms)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from)?;
            let out = fetch_backfill(tx, tenant_id, id)
                .await?
                .ok_or(SignalError::NotFound)?;
            Ok((out, outcome))
        }

        /// Applies an edit as [`crate::Store::edit_backfill`] describes.
        pub(crate) async fn edit_backfill_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            id: &str,
            edit: &BackfillEdit,
            actor: &str,
            now: Timestamp,
        ) -> Result<Backfill, EditError> {
            let b = lock_backfill(tx, tenant_id, id)
                .await?
                .ok_or(EditError::NotFound)?;
            check_editable(b.state).map_err(EditError::Refused)?;
            let windows_json = |w: &WorkflowDailyExecutionWindows| to_json_text(w);
            // (setting, before, after) of each edit that changes something.
            let mut changes: Vec<(&str, Option<String>, Option<String>)> = Vec::new();
            if let Some(name) = &edit.name {
                if *name != b.name {
                    changes.push(("name", b.name.clone(), name.clone()));
                }
            }
            if let Some(n) = edit.max_in_flight.filter(|n| *n != b.max_in_flight) {
                changes.push(("max_in_flight", Some(b.max_in_flight.to_string()), Some(n.to_string())));
            }
            if let Some(w) = edit.daily_execution_windows.as_ref().filter(|w| **w != b.daily_execution_windows) {
                changes.push(("daily_execution_windows", Some(windows_json(&b.daily_execution_windows)?), Some(windows_json(w)?)));
            }
            if let Some(tz) = edit.timezone.as_ref().filter(|tz| **tz != b.timezone) {
                changes.push(("timezone", Some(b.timezone.clone()), Some(tz.clone())));
            }
            if let Some(c) = edit.max_credits.filter(|c| *c != b.max_credits) {
                let shown = |c: Option<i64>| Some(c.map_or("none".to_owned(), |c| c.to_string()));
                changes.push(("max_credits", shown(b.max_credits), shown(c)));
            }
            if let Some(c) = edit.max_in_flight_per_company.filter(|c| *c != b.max_in_flight_per_company) {
                let shown = |c: Option<i64>| Some(c.map_or("none".to_owned(), |c| c.to_string()));
                changes.push(("max_in_flight_per_company", shown(b.max_in_flight_per_company), shown(c)));
            }
            let blackouts_json = |c: &Option<neo_domain::fairness::CompanyBlackouts>| {
                c.as_ref().map(to_json_text).transpose()
            };
            if let Some(c) = edit.company_blackouts.as_ref().filter(|c| **c != b.company_blackouts) {
                changes.push(("company_blackouts", blackouts_json(&b.company_blackouts)?, blackouts_json(c)?));
            }
            if changes.is_empty() {
                return Ok(b);
            }
            let now_ms = to_ms(now);
            let name = edit.name.clone().unwrap_or(b.name.clone());
            let windows = match &edit.daily_execution_windows {
                Some(w) => windows_json(w)?,
                None => windows_json(&b.daily_execution_windows)?,
            };
            sqlx::query(
                "UPDATE backfills SET name = $1, max_in_flight = $2, daily_execution_windows = $3, \
                 timezone = $4, max_credits = $5, updated_at = $6, max_in_flight_per_company = $8, company_blackouts = $9 WHERE id = $7",
            )
            .bind(&name)
            .bind(edit.max_in_flight.unwrap_or(b.max_in_flight))
            .bind(windows)
            .bind(edit.timezone.as_deref().unwrap_or(&b.timezone))
            .bind(edit.max_credits.unwrap_or(b.max_credits))
            .bind(now_ms)
            .bind(id)
            .bind(edit.max_in_flight_per_company.unwrap_or(b.max_in_flight_per_company))
            .bind(blackouts_json(edit.company_blackouts.as_ref().unwrap_or(&b.company_blackouts))?)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from)?;
            for (field, from, to) in changes {
                sqlx::query("INSERT INTO backfill_edits (backfill_id, field, from_value, to_value, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(id)
                    .bind(field)
                    .bind(from)
                    .bind(to)
                    .bind(actor)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await
                    .map_err(StoreError::from)?;
            }
            fetch_backfill(tx, tenant_id, id)
                .await?
                .ok_or(EditError::NotFound)
        }

        /// A backfill's signals and edits, newest first.
        pub(crate) async fn select_history(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            id: &str,
            limit: usize,
        ) -> Result<Vec<BackfillEvent>> {
            let rows: Vec<(i64, String, String, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT h.created_at, h.actor, h.what, h.from_value, h.to_value FROM ( \
                   SELECT s.created_at, s.actor, s.signal AS what, s.from_state AS from_value, s.to_state AS to_value, s.id AS seq, 0 AS kind \
                   FROM backfill_signals s WHERE s.backfill_id = $1 \
                   UNION ALL \
                   SELECT e.created_at, e.actor, e.field, e.from_value, e.to_value, e.id, 1 \
                   FROM backfill_edits e WHERE e.backfill_id = $1) h \
                 WHERE EXISTS (SELECT 1 FROM backfills b WHERE b.id = $1 AND b.tenant_id = $2) \
                 ORDER BY h.created_at DESC, h.kind DESC, h.seq DESC LIMIT $3",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(limit as i64)
            .fetch_all(r)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(at, actor, what, from, to)| BackfillEvent {
                    at: neo_domain::clock::from_ms(at),
                    actor,
                    what,
                    from,
                    to,
                })
                .collect())
        }

        /// A child of `source_id` (rerun-failed, apply, revert: [`ChildKind`]): its rules
        /// (`check_child`, `check_rerun_workflow`) checked on rows read in this transaction.
        pub(crate) async fn insert_rerun(
            tx: &mut sqlx::Transaction<'_, $db>,
            r: &Rerun<'_>,
            idem: Option<&NewIdempotency<'_>>,
        ) -> Result<Backfill, RerunError> {
            if let Some(idem) = idem {
                claim_idempotency_key(tx, r.tenant_id, idem).await?;
            }
            let src = lock_backfill(tx, r.tenant_id, r.source_id)
                .await?
                .ok_or(RerunError::NotFound)?;
            check_child(&src, r.kind)?;
            let wf = sqlx::query("SELECT * FROM workflows WHERE tenant_id = $1 AND id = $2")
                .bind(r.tenant_id)
                .bind(src.target_workflow_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(StoreError::from)?;
            let wf = check_rerun_workflow(wf.as_ref().map(map_workflow).transpose()?)?;
            // The child keeps what the parent's snapshot knew of each entity.
            // With each failure's error and HTTP status: a rerun of chosen causes takes the
            // failures the domain's triage says have them.
            #[allow(clippy::type_complexity)]
            let entities: Vec<(String, Option<String>, Option<String>, Option<String>, Option<i64>, Option<String>)> =
                sqlx::query_as(&format!(
                    "SELECT i.entity_id, i.entity_number, d.summary, i.error, \
                     (SELECT e.http_status FROM executions e WHERE e.id = i.execution_id), i.company FROM backfill_items i \
                     LEFT JOIN backfill_item_details d ON d.backfill_id = i.backfill_id AND d.ord = i.ord \
                     WHERE i.backfill_id = $1 AND {} ORDER BY i.ord",
                    child_items(r.kind)
                ))
                .bind(r.source_id)
                .fetch_all(&mut **tx)
                .await
                .map_err(StoreError::from)?;
            let entities: Vec<SnapshotEntry> = entities
                .into_iter()
                .filter(|(_, _, _, error, status, _)| {
                    r.causes.is_none_or(|c| {
                        let status = status.and_then(|s| u16::try_from(s).ok());
                        c.matches(error.as_deref().unwrap_or(""), status)
                    })
                })
                .map(|(id, number, summary, _, _, company)| SnapshotEntry {
                    id,
                    number,
                    summary,
                    company,
                })
                .collect();
            check_child_items(&src, r.kind, entities.len())?;
            let filter = rerun_filter(&entities);
            let now_ms = to_ms(r.now);
            let n = entities.len() as i64;
            let (mode, remove_notes) = child_mode(&src, r.kind);
            sqlx::query("INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, daily_execution_windows, timezone, max_in_flight, reprocess, total_estimated, total_items, snapshot_complete, pending_count, credits_per_entity, started_at, created_by, created_at, updated_at, parent_backfill_run_id, mode, remove_notes, rerun_causes, max_in_flight_per_company, company_blackouts) \
                         VALUES ($1, $2, 'RUNNING', $3, $4, $5, $6, $7, TRUE, $8, $8, TRUE, $8, $9, $10, $11, $10, $10, $12, $13, $14, $15, $16, $17)")
                .bind(r.new_id)
                .bind(r.tenant_id)
                .bind(src.target_workflow_id)
                .bind(src.entity_type.as_str())
                .bind(to_json_text(&src.daily_execution_windows)?)
                .bind(&src.timezone)
                .bind(src.max_in_flight)
                .bind(n)
                .bind(wf.credit_tier)
                .bind(now_ms)
                .bind(r.created_by)
                .bind(r.source_id)
                .bind(mode.as_str())
                .bind(remove_notes)
                .bind(r.causes.map(to_json_text).transpose()?)
                .bind(src.max_in_flight_per_company)
                .bind(src.company_blackouts.as_ref().map(to_json_text).transpose()?)
                .execute(&mut **tx)
                .await
                .map_err(|e| match unique_to(e, StoreError::AlreadyActive) {
                    StoreError::AlreadyActive => RerunError::AlreadyActive,
                    e => e.into(),
                })?;
            insert_filter(tx, r.new_id, &filter).await?;
            insert_items_from(tx, r.new_id, &entities, 0, now_ms).await?;
            insert_summaries(tx, r.new_id, &entities, 0).await?;
            emit_event(tx, r.new_id, neo_domain::notify::EventType::BackfillStarted, None, now_ms).await?;
            let out = fetch_backfill(tx, r.tenant_id, r.new_id)
                .await?
                .ok_or(RerunError::NotFound)?;
            if let Some(idem) = idem {
                save_idempotent_response(tx, r.tenant_id, idem, &out).await?;
            }
            Ok(out)
        }

        /// Deletes a DRAFT backfill (its items and filter go with it).
        pub(crate) async fn delete_draft(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            id: &str,
        ) -> Result<(), DeleteBackfillError> {
            let b = lock_backfill(tx, tenant_id, id)
                .await?
                .ok_or(DeleteBackfillError::NotFound)?;
            if b.state != BackfillRunState::Draft {
                return Err(DeleteBackfillError::NotDraft(b.state));
            }
            sqlx::query("DELETE FROM backfills WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from)?;
            Ok(())
        }

        /// Moves up to `limit` pending items of a backfill (in `ord` order) to `cancelled`
        /// and fixes the counters; how many moved. The caller holds the backfill's row, and
        /// the backfill has ended, so no claim takes these items meanwhile.
        pub(crate) async fn cancel_pending(
            tx: &mut sqlx::Transaction<'_, $db>,
            id: &str,
            limit: usize,
            now: i64,
        ) -> Result<u64> {
            let n = sqlx::query("UPDATE backfill_items SET status = 'cancelled', updated_at = $1 \
                                 WHERE backfill_id = $2 AND status = 'pending' AND ord <= \
                                 (SELECT MAX(ord) FROM (SELECT ord FROM backfill_items WHERE backfill_id = $2 AND status = 'pending' ORDER BY ord LIMIT $3) AS first)")
                .bind(now)
                .bind(id)
                .bind(limit as i64)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if n > 0 {
                sqlx::query("UPDATE backfills SET pending_count = pending_count - $1, cancelled_count = cancelled_count + $1 WHERE id = $2")
                    .bind(n as i64)
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(n)
        }

        /// [`cancel_pending`] for a backfill that has ended (CANCELLED or FAILED), its row
        /// locked first; 0 for any other.
        pub(crate) async fn sweep_pending_tx(
            tx: &mut sqlx::Transaction<'_, $db>,
            id: &str,
            limit: usize,
            now: i64,
        ) -> Result<u64> {
            let states = lock_backfills(tx, &[id.to_owned()]).await?;
            match states.get(id).map(String::as_str) {
                Some("CANCELLED" | "FAILED") => cancel_pending(tx, id, limit, now).await,
                _ => Ok(0),
            }
        }

        /// Ends an active backfill FAILED with `error`: pending items are cancelled.
        pub(crate) async fn fail_backfill_tx(
            tx: &mut sqlx::Transaction<'_, $db>,
            id: &str,
            error: &str,
            now: i64,
        ) -> Result<()> {
            // Only an active one: a backfill cancelled or completed meanwhile keeps its end.
            let ended = sqlx::query("UPDATE backfills SET state = 'FAILED', error = $1, completed_at = $2, updated_at = $2 \
                                     WHERE id = $3 AND state IN ('DRAFT', 'RUNNING', 'PAUSED')")
                .bind(error)
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if ended == 0 {
                return Ok(());
            }
            cancel_pending(tx, id, CANCEL_INLINE, now).await?;
            emit_event(tx, id, neo_domain::notify::EventType::BackfillFailed, None, now).await?;
            Ok(())
        }

        /// Each item's rank among its company's items of the backfill, counting those appended
        /// before (0 for an item of no known company): claims order by it, a round-robin
        /// across companies. One keyed upsert per company on the page.
        pub(crate) async fn company_ranks(
            tx: &mut sqlx::Transaction<'_, $db>,
            backfill_id: &str,
            items: &[SnapshotEntry],
        ) -> Result<Vec<i64>> {
            let mut next: std::collections::BTreeMap<&str, i64> = Default::default();
            for c in items.iter().filter_map(|e| e.company.as_deref()) {
                *next.entry(c).or_default() += 1;
            }
            for (company, n) in next.iter_mut() {
                let total: i64 = sqlx::query_scalar(
                    "INSERT INTO backfill_companies (backfill_id, company, items) VALUES ($1, $2, $3) \
                     ON CONFLICT (backfill_id, company) DO UPDATE SET items = backfill_companies.items + excluded.items \
                     RETURNING items",
                )
                .bind(backfill_id)
                .bind(*company)
                .bind(*n)
                .fetch_one(&mut **tx)
                .await?;
                *n = total - *n;
            }
            Ok(items
                .iter()
                .map(|e| match e.company.as_deref().and_then(|c| next.get_mut(c)) {
                    Some(rank) => {
                        *rank += 1;
                        *rank - 1
                    }
                    None => 0,
                })
                .collect())
        }

        /// Appends a snapshot page when the backfill's checkpoint is still `read_from` (a
        /// replica that lost the race appends nothing); `false` when it was not.
        #[allow(clippy::too_many_arguments)]
        pub(crate) async fn append_snapshot_page(
            tx: &mut sqlx::Transaction<'_, $db>,
            backfill_id: &str,
            items: &[SnapshotEntry],
            read_from: Option<&Value>,
            checkpoint: Option<&Value>,
            complete: bool,
            now: Timestamp,
        ) -> Result<bool> {
            let now_ms = to_ms(now);
            let (start, done, current): (i64, bool, Option<String>) = sqlx::query_as(concat!(
                "SELECT b.total_items, b.snapshot_complete, b.snapshot_checkpoint FROM backfills b WHERE b.id = $1",
                $lock_b
            ))
            .bind(backfill_id)
            .fetch_one(&mut **tx)
            .await?;
            let current: Option<Value> = current.and_then(|c| serde_json::from_str(&c).ok());
            if done || current.as_ref() != read_from {
                return Ok(false);
            }
            let items = storable_entities(items);
            insert_items_from(tx, backfill_id, &items, start, now_ms).await?;
            insert_summaries(tx, backfill_id, &items, start).await?;
            let n = items.len() as i64;
            sqlx::query("UPDATE backfills SET total_items = total_items + $1, pending_count = pending_count + $1, snapshot_complete = $2, \
                         snapshot_checkpoint = COALESCE($3, snapshot_checkpoint), \
                         total_estimated = CASE WHEN $2 THEN total_items + $1 ELSE total_estimated END, updated_at = $4 WHERE id = $5")
                .bind(n)
                .bind(complete)
                .bind(checkpoint.map(|c| c.to_string()))
                .bind(now_ms)
                .bind(backfill_id)
                .execute(&mut **tx)
                .await?;
            if complete {
                hold_outside_sample(tx, backfill_id).await?;
            }
            Ok(true)
        }
    };
}
pub(crate) use backfill_queries;
