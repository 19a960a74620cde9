//! The [`crate::Store`] trait, implemented once for both backends: `impl_store!(SqliteStore)`
//! in a backend module. Each method opens the transaction or picks the pool, and calls the
//! statements written once (the `*_queries!` of `tenants`, `workflows`, `integrations`,
//! `backfills`, `executions`, `idempotency`, `sealed_rows`) or the backend's own.
//!
//! What a backend provides, and all it provides (river's rule: the driver stores, it does not
//! decide):
//! * `reader()` and `writer()` (SQLite reads on a pool of readers beside its one writer, and
//!   reads its own writes on the writer) and `tx()`;
//! * row locks: `lock_backfills`, `lock_key_check`, and the lock suffixes it passes to the
//!   macros (`" FOR UPDATE"` in PostgreSQL, nothing in SQLite);
//! * the batch statements where the dialects part: `insert_items_from`, `settle_batch`,
//!   `write_executions`, `complete_in_tx`, and the methods `do_claim_many`, `do_heartbeat`,
//!   `do_reap_expired_leases`, `do_release_leases`.

macro_rules! impl_store {
    ($store:ty) => {
        impl $store {
            /// At open: the key check, and every plaintext secret sealed, in one transaction
            /// (replicas starting together take turns: `lock_key_check`).
            async fn ensure_sealed(&self, sealer: &Sealer) -> Result<()> {
                let mut tx = self.tx().await?;
                let report = seal_at_open(&mut tx, sealer).await?;
                tx.commit().await?;
                if !report.is_empty() {
                    tracing::info!(?report, "sealed the secrets stored in plaintext");
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(self.reader()).await?;
                Ok(())
            }

            async fn server_secret(&self) -> Result<Vec<u8>> {
                Ok(sqlx::query_scalar(
                    "SELECT value FROM server_settings WHERE name = 'cursor_secret'",
                )
                .fetch_one(self.writer())
                .await?)
            }

            async fn ensure_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant> {
                upsert_tenant(self.writer(), name, now).await
            }

            async fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
                select_tenant(self.reader(), TENANT_BY_ID, id).await
            }

            async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
                select_tenant(self.reader(), TENANT_BY_NAME, name).await
            }

            async fn tenant_by_entra_tid(&self, tid: &str) -> Result<Option<Tenant>> {
                select_tenant(self.reader(), TENANT_BY_ENTRA_TID, tid).await
            }

            async fn set_tenant_entra_tid(&self, tenant_id: &str, tid: Option<&str>) -> Result<()> {
                update_tenant_entra_tid(self.writer(), tenant_id, tid).await
            }

            async fn set_monthly_allowance(&self, tenant_id: &str, credits: i64) -> Result<bool> {
                update_tenant_allowance(self.writer(), tenant_id, credits).await
            }

            async fn insert_api_key(&self, k: NewApiKey) -> Result<ApiKey> {
                insert_key(self.writer(), &k).await?;
                self.api_key(&k.id).await?.ok_or(StoreError::NotFound)
            }

            async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKey, Vec<u8>)>> {
                select_key_by_hash(self.reader(), hash).await
            }

            async fn api_key(&self, id: &str) -> Result<Option<ApiKey>> {
                // The writer: a key read right after its insert or rotation.
                select_key(self.writer(), id).await
            }

            async fn list_api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>> {
                select_keys(self.reader(), tenant_id).await
            }

            async fn revoke_api_key(&self, id: &str, now: Timestamp) -> Result<bool> {
                update_key_revoked(self.writer(), id, now).await
            }

            async fn rotate_api_key(
                &self,
                old_id: &str,
                old_expires_at: Timestamp,
                k: NewApiKey,
            ) -> Result<ApiKey> {
                let mut tx = self.tx().await?;
                insert_key(&mut *tx, &k).await?;
                update_key_rotated(&mut *tx, old_id, old_expires_at, &k.id).await?;
                tx.commit().await?;
                self.api_key(&k.id).await?.ok_or(StoreError::NotFound)
            }

            async fn touch_api_key(&self, id: &str, now: Timestamp) -> Result<()> {
                update_key_used(self.writer(), id, now).await
            }

            async fn insert_workflow(
                &self,
                tenant_id: &str,
                w: NewWorkflow,
                now: Timestamp,
            ) -> Result<Workflow> {
                let mut tx = self.tx().await?;
                let out =
                    insert_workflow_row(&mut tx, self.sealer.as_deref(), tenant_id, w, now).await?;
                tx.commit().await?;
                Ok(out)
            }

            async fn workflow(&self, tenant_id: &str, id: i64) -> Result<Option<Workflow>> {
                select_workflow(self.writer(), self.sealer.as_deref(), tenant_id, id).await
            }

            async fn list_workflows(
                &self,
                tenant_id: &str,
                after_id: Option<i64>,
                limit: usize,
            ) -> Result<Page<Workflow>> {
                let sealer = self.sealer.as_deref();
                select_workflows(self.reader(), sealer, tenant_id, after_id, limit).await
            }

            async fn update_workflow(
                &self,
                tenant_id: &str,
                id: i64,
                p: WorkflowPatch,
                now: Timestamp,
            ) -> Result<Option<Workflow>> {
                let mut tx = self.tx().await?;
                let sealer = self.sealer.as_deref();
                let w = patch_workflow_row(&mut tx, sealer, tenant_id, id, p, now).await?;
                if w.is_some() {
                    tx.commit().await?;
                }
                Ok(w)
            }

            async fn delete_workflow(
                &self,
                tenant_id: &str,
                id: i64,
                now: Timestamp,
            ) -> Result<bool> {
                let mut tx = self.tx().await?;
                let deleted = delete_workflow_row(&mut tx, tenant_id, id, now).await?;
                if deleted {
                    tx.commit().await?;
                }
                Ok(deleted)
            }

            async fn put_integration(
                &self,
                tenant_id: &str,
                psa: &str,
                config: Value,
                secrets: Value,
                now: Timestamp,
            ) -> Result<Integration> {
                let sealer = self.sealer.as_deref();
                upsert_integration(
                    self.writer(),
                    sealer,
                    tenant_id,
                    psa,
                    &config,
                    &secrets,
                    now,
                )
                .await
            }

            async fn take_psa_budget(
                &self,
                tenant_id: &str,
                want: i64,
                now: Timestamp,
            ) -> Result<Option<neo_domain::budget::Grant>> {
                let mut tx = self.tx().await?;
                let g = take_budget(&mut tx, tenant_id, want, now).await?;
                tx.commit().await?;
                Ok(g)
            }

            async fn integration(&self, tenant_id: &str) -> Result<Option<Integration>> {
                select_integration(self.writer(), tenant_id).await
            }

            async fn integration_secrets(&self, tenant_id: &str) -> Result<Option<Value>> {
                select_integration_secrets(self.writer(), self.sealer.as_deref(), tenant_id).await
            }

            async fn rotate_master_key(&self, new: &Sealer) -> Result<SecretsReport> {
                let mut tx = self.tx().await?;
                let report = rotate_master_key_tx(&mut tx, self.sealer.as_deref(), new).await?;
                tx.commit().await?;
                Ok(report)
            }

            async fn delete_integration(&self, tenant_id: &str, now: Timestamp) -> Result<bool> {
                let mut tx = self.tx().await?;
                let deleted = delete_integration_row(&mut tx, tenant_id, now).await?;
                if deleted {
                    tx.commit().await?;
                }
                Ok(deleted)
            }

            async fn create_backfill_idempotent(
                &self,
                b: NewBackfill,
                idem: Option<&NewIdempotency<'_>>,
            ) -> Result<Backfill> {
                let mut tx = self.tx().await?;
                let out = insert_backfill(&mut tx, &b, idem).await;
                let out = finish_tx(tx, out).await?;
                self.items_added(b.entity_ids.as_ref().map_or(0, Vec::len))
                    .await;
                Ok(out)
            }

            async fn backfill(&self, tenant_id: &str, id: &str) -> Result<Option<Backfill>> {
                select_backfill(self.reader(), tenant_id, id).await
            }

            async fn list_backfills(
                &self,
                tenant_id: &str,
                f: &BackfillFilter,
                before_id: Option<&str>,
                limit: usize,
            ) -> Result<Page<Backfill>> {
                select_backfills(self.reader(), tenant_id, f, before_id, limit).await
            }

            async fn list_items(
                &self,
                tenant_id: &str,
                backfill_id: &str,
                filter: &ItemFilter,
                after_ord: Option<i64>,
                limit: usize,
            ) -> Result<Page<Item>> {
                select_items(
                    self.reader(),
                    tenant_id,
                    backfill_id,
                    filter,
                    after_ord,
                    limit,
                )
                .await
            }

            async fn signal_backfill(
                &self,
                tenant_id: &str,
                id: &str,
                signal: Signal,
                actor: &str,
                now: Timestamp,
            ) -> Result<(Backfill, SignalOutcome), SignalError> {
                let mut tx = self.tx().await?;
                let out = signal_backfill_row(&mut tx, tenant_id, id, signal, actor, now).await;
                finish_tx(tx, out).await
            }

            async fn edit_backfill(
                &self,
                tenant_id: &str,
                id: &str,
                edit: &BackfillEdit,
                actor: &str,
                now: Timestamp,
            ) -> Result<Backfill, EditError> {
                let mut tx = self.tx().await?;
                let out = edit_backfill_row(&mut tx, tenant_id, id, edit, actor, now).await;
                finish_tx(tx, out).await
            }

            async fn backfill_history(
                &self,
                tenant_id: &str,
                id: &str,
                limit: usize,
            ) -> Result<Vec<BackfillEvent>> {
                select_history(self.reader(), tenant_id, id, limit).await
            }

            async fn create_child(
                &self,
                tenant_id: &str,
                c: &NewChild<'_>,
                idem: Option<&NewIdempotency<'_>>,
            ) -> Result<Backfill, RerunError> {
                let rerun = Rerun {
                    tenant_id,
                    source_id: c.source_id,
                    new_id: c.new_id,
                    created_by: c.created_by,
                    now: c.now,
                    kind: c.kind,
                    causes: c.causes.filter(|c| !c.is_empty()),
                };
                let mut tx = self.tx().await?;
                let out = insert_rerun(&mut tx, &rerun, idem).await;
                let out = finish_tx(tx, out).await?;
                self.items_added(usize::try_from(out.total_items).unwrap_or(0))
                    .await;
                Ok(out)
            }

            async fn delete_backfill(
                &self,
                tenant_id: &str,
                id: &str,
            ) -> Result<(), DeleteBackfillError> {
                let mut tx = self.tx().await?;
                let out = delete_draft(&mut tx, tenant_id, id).await;
                finish_tx(tx, out).await
            }

            async fn insert_execution(&self, e: NewExecution) -> Result<Execution> {
                insert_execution_row(self.writer(), &e).await?;
                self.execution(&e.tenant_id, &e.id)
                    .await?
                    .ok_or(StoreError::NotFound)
            }

            async fn execution(&self, tenant_id: &str, id: &str) -> Result<Option<Execution>> {
                select_execution(self.writer(), Some(tenant_id), id).await
            }

            async fn execution_by_id(&self, id: &str) -> Result<Option<Execution>> {
                select_execution(self.writer(), None, id).await
            }

            async fn execution_attempts(
                &self,
                tenant_id: &str,
                execution_id: &str,
            ) -> Result<Vec<ExecutionAttempt>> {
                select_attempts(self.reader(), tenant_id, execution_id).await
            }

            async fn list_executions(
                &self,
                tenant_id: &str,
                f: &ExecutionFilter,
                before_id: Option<&str>,
                limit: usize,
            ) -> Result<Page<Execution>> {
                select_executions(self.reader(), tenant_id, f, before_id, limit).await
            }

            async fn finish_execution(
                &self,
                tenant_id: &str,
                id: &str,
                status: ExecutionStatus,
                error: Option<&str>,
                now: Timestamp,
            ) -> Result<Option<bool>> {
                let error = error.map(sanitize);
                let mut tx = self.tx().await?;
                let done =
                    finish_execution_tx(&mut tx, tenant_id, id, status, error.as_deref(), now)
                        .await?;
                if done == Some(true) {
                    tx.commit().await?;
                }
                Ok(done)
            }

            async fn dispatchable_backfills(&self) -> Result<Vec<Backfill>> {
                let rows = sqlx::query(&format!(
                    "{DISPATCH_SELECT} WHERE (b.state = 'RUNNING' OR b.in_flight_count > 0 \
                     OR (b.pending_count > 0 AND b.state IN ('CANCELLED', 'FAILED'))) \
                     AND b.state IN ('RUNNING', 'PAUSED', 'CANCELLED', 'FAILED') ORDER BY b.id"
                ))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(map_backfill).collect()
            }

            async fn sweep_pending(
                &self,
                backfill_id: &str,
                limit: usize,
                now: Timestamp,
            ) -> Result<u64> {
                let mut tx = self.tx().await?;
                let n = sweep_pending_tx(&mut tx, backfill_id, limit, to_ms(now)).await?;
                tx.commit().await?;
                Ok(n)
            }

            async fn claim_many(
                &self,
                wants: &[(&str, usize)],
                held: &[(&str, &str)],
                worker: &str,
                now: Timestamp,
                lease_until: Timestamp,
            ) -> Result<Vec<ClaimResult>> {
                if wants.is_empty() {
                    return Ok(Vec::new());
                }
                self.do_claim_many(wants, held, worker, now, lease_until)
                    .await
            }

            async fn settle(
                &self,
                outcomes: &[Outcome],
                breaker_threshold: i64,
                now: Timestamp,
            ) -> Result<()> {
                if outcomes.is_empty() {
                    return Ok(());
                }
                let outcomes = storable_outcomes(outcomes);
                self.do_settle(&outcomes, breaker_threshold, to_ms(now))
                    .await
            }

            async fn heartbeat(&self, worker: &str, lease_until: Timestamp) -> Result<u64> {
                self.do_heartbeat(worker, lease_until).await
            }

            async fn reap_expired_leases(&self, now: Timestamp) -> Result<ReapReport> {
                self.do_reap_expired_leases(now).await
            }

            async fn release_leases(&self, worker: &str, now: Timestamp) -> Result<u64> {
                self.do_release_leases(worker, now).await
            }

            async fn complete_if_settled(&self, backfill_id: &str, now: Timestamp) -> Result<bool> {
                let mut tx = self.tx().await?;
                let n = complete_in_tx(&mut tx, &[backfill_id.to_owned()], to_ms(now)).await?;
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn in_flight_items(
                &self,
                backfill_id: &str,
            ) -> Result<Vec<(i64, String, Option<String>)>> {
                let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT ord, execution_id, lease_owner FROM backfill_items \
                     WHERE backfill_id = $1 AND status = 'in_flight' ORDER BY ord",
                )
                .bind(backfill_id)
                .fetch_all(self.reader())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(o, e, w)| (o, e.unwrap_or_default(), w))
                    .collect())
            }

            async fn append_items(
                &self,
                backfill_id: &str,
                items: &[SnapshotEntry],
                read_from: Option<&Value>,
                checkpoint: Option<&Value>,
                complete: bool,
                now: Timestamp,
            ) -> Result<bool> {
                let mut tx = self.tx().await?;
                let appended = append_snapshot_page(
                    &mut tx,
                    backfill_id,
                    items,
                    read_from,
                    checkpoint,
                    complete,
                    now,
                )
                .await?;
                if appended {
                    tx.commit().await?;
                    self.items_added(items.len()).await;
                } else {
                    // Another process appended this page: release the backfill row now (see
                    // `finish_tx`), not when this connection is next used.
                    tx.rollback().await?;
                }
                Ok(appended)
            }

            async fn set_effective_max_in_flight(
                &self,
                limits: &[(String, Option<i64>)],
            ) -> Result<()> {
                let mut tx = self.tx().await?;
                for (id, limit) in limits {
                    sqlx::query("UPDATE backfills SET effective_max_in_flight = $1 WHERE id = $2")
                        .bind(*limit)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn fail_backfill(
                &self,
                backfill_id: &str,
                error: &str,
                now: Timestamp,
            ) -> Result<()> {
                let error = sanitize(error);
                let mut tx = self.tx().await?;
                fail_backfill_tx(&mut tx, backfill_id, &error, to_ms(now)).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn pause_itself(
                &self,
                tenant_id: &str,
                backfill_id: &str,
                reason: PauseReason,
                now: Timestamp,
            ) -> Result<bool> {
                let mut tx = self.tx().await?;
                let paused = pause_itself_tx(&mut tx, tenant_id, backfill_id, reason, now).await?;
                tx.commit().await?;
                Ok(paused)
            }

            async fn failures(
                &self,
                tenant_id: &str,
                backfill_id: &str,
            ) -> Result<Vec<neo_domain::triage::Failure<Timestamp>>> {
                select_failures(self.reader(), tenant_id, backfill_id).await
            }

            async fn credits_used(
                &self,
                tenant_id: &str,
                from: Timestamp,
                to: Timestamp,
            ) -> Result<i64> {
                // The CAST: PostgreSQL's SUM over BIGINT is NUMERIC.
                Ok(sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(credits), 0) AS BIGINT) FROM credit_ledger \
                     WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3",
                )
                .bind(tenant_id)
                .bind(to_ms(from))
                .bind(to_ms(to))
                .fetch_one(self.reader())
                .await?)
            }

            async fn idempotent_response(
                &self,
                tenant_id: &str,
                key: &str,
                not_before: Timestamp,
            ) -> Result<Option<IdempotentResponse>> {
                select_idempotent(self.writer(), tenant_id, key, not_before).await
            }

            async fn record_psa_changes(
                &self,
                scope: &ChangeScope<'_>,
                changes: &[Change],
                at: Timestamp,
                replace_fields: bool,
            ) -> Result<()> {
                let mut tx = self.tx().await?;
                insert_psa_changes(&mut tx, scope, changes, at, replace_fields).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn psa_changes(
                &self,
                tenant_id: &str,
                of: ChangesOf<'_>,
            ) -> Result<Vec<PsaChange>> {
                select_psa_changes(self.writer(), tenant_id, of).await
            }

            async fn psa_change_totals(
                &self,
                tenant_id: &str,
                backfill_id: &str,
                limit: usize,
            ) -> Result<Vec<ChangeTotal>> {
                select_change_totals(self.reader(), tenant_id, backfill_id, limit).await
            }

            async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
                delete_idempotency_keys(self.writer(), before).await
            }

            async fn insert_notification_endpoint(
                &self,
                e: NewNotificationEndpoint,
                now: Timestamp,
            ) -> Result<NotificationEndpoint> {
                let mut tx = self.tx().await?;
                let out = insert_endpoint_row(&mut tx, self.sealer.as_deref(), &e, now).await;
                finish_tx(tx, out).await
            }

            async fn notification_endpoint(
                &self,
                tenant_id: &str,
                id: &str,
            ) -> Result<Option<NotificationEndpoint>> {
                select_endpoint(self.writer(), tenant_id, id).await
            }

            async fn list_notification_endpoints(
                &self,
                tenant_id: &str,
            ) -> Result<Vec<NotificationEndpoint>> {
                select_endpoints(self.writer(), tenant_id).await
            }

            async fn update_notification_endpoint(
                &self,
                tenant_id: &str,
                id: &str,
                patch: &NotificationEndpointPatch,
                now: Timestamp,
            ) -> Result<Option<NotificationEndpoint>> {
                let mut tx = self.tx().await?;
                let sealer = self.sealer.as_deref();
                let out = patch_endpoint_row(&mut tx, sealer, tenant_id, id, patch, now).await;
                finish_tx(tx, out).await
            }

            async fn delete_notification_endpoint(
                &self,
                tenant_id: &str,
                id: &str,
            ) -> Result<bool> {
                Ok(sqlx::query(
                    "DELETE FROM notification_endpoints WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant_id)
                .bind(id)
                .execute(self.writer())
                .await?
                .rows_affected()
                    > 0)
            }

            async fn send_test_event(
                &self,
                tenant_id: &str,
                endpoint_id: &str,
                now: Timestamp,
            ) -> Result<Option<String>> {
                let mut tx = self.tx().await?;
                let out = insert_test_event(&mut tx, tenant_id, endpoint_id, now).await;
                finish_tx(tx, out).await
            }

            async fn notification_deliveries(
                &self,
                tenant_id: &str,
                endpoint_id: &str,
                limit: usize,
            ) -> Result<Vec<DeliveryRecord>> {
                select_deliveries(self.writer(), tenant_id, endpoint_id, limit).await
            }

            async fn take_due_deliveries(
                &self,
                now: Timestamp,
                lease_until: Timestamp,
                limit: usize,
                busy: &[String],
            ) -> Result<Vec<DueDelivery>> {
                let mut tx = self.tx().await?;
                let sealer = self.sealer.as_deref();
                let out = take_due_deliveries(&mut tx, sealer, now, lease_until, limit, busy).await;
                finish_tx(tx, out).await
            }

            async fn finish_delivery(
                &self,
                event_id: &str,
                endpoint_id: &str,
                outcome: &DeliveryOutcome,
                now: Timestamp,
            ) -> Result<()> {
                let mut tx = self.tx().await?;
                let out = finish_delivery_row(&mut tx, event_id, endpoint_id, outcome, now).await;
                finish_tx(tx, out).await
            }

            async fn prune_notifications(&self, before: Timestamp) -> Result<u64> {
                let mut tx = self.tx().await?;
                let out = prune_notification_rows(&mut tx, before).await;
                finish_tx(tx, out).await
            }
        }
    };
}
pub(crate) use impl_store;

/// Commits `tx` when `out` is a success; otherwise rolls it back and waits for that, so a
/// refused request (a signal on an ended backfill, a rerun that is not allowed, a second active
/// backfill) has released its row locks before its caller's next statement. A dropped
/// transaction rolls back too, but later, when its connection is next used: meanwhile a
/// claim's `SKIP LOCKED` passes over the backfill row it still holds, and claims nothing.
pub(crate) async fn finish_tx<DB: sqlx::Database, T, E: From<crate::StoreError>>(
    tx: sqlx::Transaction<'_, DB>,
    out: std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    match out {
        Ok(v) => {
            tx.commit()
                .await
                .map_err(|e| E::from(crate::StoreError::from(e)))?;
            Ok(v)
        }
        Err(e) => {
            // The error the caller answers with matters more than a failed rollback (whose
            // connection the pool then discards).
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}
