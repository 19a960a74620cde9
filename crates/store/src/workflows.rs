//! Workflows, written once for both backends (`$N` placeholders): `workflow_queries!($db,
//! $lock)` in a backend module defines these; PostgreSQL passes `" FOR UPDATE"` to lock the
//! rows an update or a delete reads. Executor secrets are sealed on the way in and opened on
//! the way out (see `sealed_rows`).

macro_rules! workflow_queries {
    ($db:ty, $lock:literal) => {
        /// One workflow of a tenant, its executor secret opened.
        pub(crate) async fn select_workflow(
            r: &sqlx::Pool<$db>,
            sealer: Option<&Sealer>,
            tenant_id: &str,
            id: i64,
        ) -> Result<Option<Workflow>> {
            let row = sqlx::query("SELECT * FROM workflows WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(r)
                .await?;
            let mut w = row.as_ref().map(map_workflow).transpose()?;
            if let Some(w) = &mut w {
                open_workflow(sealer, w)?;
            }
            Ok(w)
        }

        /// A page of a tenant's workflows by ascending id.
        pub(crate) async fn select_workflows(
            r: &sqlx::Pool<$db>,
            sealer: Option<&Sealer>,
            tenant_id: &str,
            after_id: Option<i64>,
            limit: usize,
        ) -> Result<Page<Workflow>> {
            let rows = sqlx::query(
                "SELECT * FROM workflows WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(tenant_id)
            .bind(after_id.unwrap_or(i64::MIN))
            .bind(limit as i64 + 1)
            .fetch_all(r)
            .await?;
            let mut rows: Vec<Workflow> = rows.iter().map(map_workflow).collect::<Result<_>>()?;
            open_workflows(sealer, &mut rows)?;
            Ok(Page::from_overfetch(rows, limit))
        }

        /// Applies `p` to a workflow in `tx` (the caller commits); `None` if it does not exist.
        pub(crate) async fn patch_workflow_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            sealer: Option<&Sealer>,
            tenant_id: &str,
            id: i64,
            p: WorkflowPatch,
            now: Timestamp,
        ) -> Result<Option<Workflow>> {
            let Some(r) = sqlx::query(concat!(
                "SELECT * FROM workflows WHERE tenant_id = $1 AND id = $2",
                $lock
            ))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            else {
                return Ok(None);
            };
            let mut w = map_workflow(&r)?;
            open_workflow(sealer, &mut w)?;
            patch_workflow(&mut w, p, now);
            let executor = seal_executor(sealer, tenant_id, id, &w.executor)?;
            sqlx::query("UPDATE workflows SET name = $1, description = $2, autonomy_type = $3, entity_type = $4, state = $5, credit_tier = $6, executor = $7, updated_at = $8 WHERE id = $9")
                .bind(&w.name)
                .bind(&w.description)
                .bind(w.autonomy_type.as_str())
                .bind(w.entity_type.as_str())
                .bind(w.state.as_str())
                .bind(w.credit_tier)
                .bind(executor.to_string())
                .bind(to_ms(now))
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(Some(w))
        }

        /// Inserts a workflow in `tx`. Its executor secret is sealed for the row's id, known
        /// only after the insert: the row is inserted without it, then sealed, in the same
        /// transaction (plaintext never reaches the database).
        pub(crate) async fn insert_workflow_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            sealer: Option<&Sealer>,
            tenant_id: &str,
            w: NewWorkflow,
            now: Timestamp,
        ) -> Result<Workflow> {
            check_can_seal(sealer, &w.executor)?;
            let secret = executor_secret(&w.executor).is_some();
            let unsealed = if secret {
                with_executor_secret(&w.executor, Value::Null)
            } else {
                w.executor.clone()
            };
            // `fetch_all`, not `fetch_one`: the statement runs to its end, so a failed write
            // (disk full) is an error, not a row.
            let ids: Vec<i64> = sqlx::query_scalar("INSERT INTO workflows (tenant_id, name, description, autonomy_type, entity_type, state, credit_tier, executor, created_at, updated_at) \
                                                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id")
                .bind(tenant_id)
                .bind(&w.name)
                .bind(&w.description)
                .bind(w.autonomy_type.as_str())
                .bind(w.entity_type.as_str())
                .bind(w.state.as_str())
                .bind(w.credit_tier)
                .bind(unsealed.to_string())
                .bind(to_ms(now))
                .fetch_all(&mut **tx)
                .await?;
            let id = *ids.first().ok_or(StoreError::NotFound)?;
            if secret {
                sqlx::query("UPDATE workflows SET executor = $1 WHERE id = $2")
                    .bind(seal_executor(sealer, tenant_id, id, &w.executor)?.to_string())
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            let r = sqlx::query("SELECT * FROM workflows WHERE id = $1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
            let mut out = map_workflow(&r)?;
            out.executor = w.executor;
            Ok(out)
        }

        /// Deletes a workflow in `tx`; its active backfills end FAILED. `false` if it did not
        /// exist.
        pub(crate) async fn delete_workflow_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            id: i64,
            now: Timestamp,
        ) -> Result<bool> {
            let n = sqlx::query("DELETE FROM workflows WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            let active: Vec<String> = sqlx::query_scalar(concat!(
                "SELECT id FROM backfills WHERE tenant_id = $1 AND target_workflow_id = $2 \
                 AND state IN ('DRAFT', 'RUNNING', 'PAUSED') ORDER BY id",
                $lock
            ))
            .bind(tenant_id)
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
            for b in active {
                fail_backfill_tx(tx, &b, "the target workflow was deleted", to_ms(now)).await?;
            }
            Ok(true)
        }
    };
}
pub(crate) use workflow_queries;
