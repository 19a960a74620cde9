//! Executions, written once for both backends (`$N` placeholders): `execution_queries!($db,
//! $lock)` in a backend module defines these; PostgreSQL passes `" FOR UPDATE"` to lock the
//! execution a completion finishes. Settling goes through the backend's own `settle_batch`.

macro_rules! execution_queries {
    ($db:ty, $lock:literal) => {
        pub(crate) async fn insert_execution_row(
            w: &sqlx::Pool<$db>,
            e: &NewExecution,
        ) -> Result<()> {
            let now = to_ms(e.created_at);
            sqlx::query("INSERT INTO executions (id, tenant_id, agent_id, agent_name, backfill_id, entity_id, entity_number, status, retry_of, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                .bind(&e.id)
                .bind(&e.tenant_id)
                .bind(e.agent_id)
                .bind(&e.agent_name)
                .bind(&e.backfill_id)
                .bind(&e.entity_id)
                .bind(&e.entity_number)
                .bind(e.status.as_str())
                .bind(&e.retry_of)
                .bind(now)
                .bind(now)
                .execute(w)
                .await?;
            Ok(())
        }

        /// One execution by id, of `tenant_id` when given (a signed completion has no tenant).
        pub(crate) async fn select_execution(
            r: &sqlx::Pool<$db>,
            tenant_id: Option<&str>,
            id: &str,
        ) -> Result<Option<Execution>> {
            let row = match tenant_id {
                Some(t) => {
                    sqlx::query("SELECT * FROM executions WHERE tenant_id = $1 AND id = $2")
                        .bind(t)
                        .bind(id)
                        .fetch_optional(r)
                        .await?
                }
                None => {
                    sqlx::query("SELECT * FROM executions WHERE id = $1")
                        .bind(id)
                        .fetch_optional(r)
                        .await?
                }
            };
            row.as_ref().map(map_execution).transpose()
        }

        /// The earlier attempts of a tenant's execution, oldest first (the newest 100).
        pub(crate) async fn select_attempts(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            execution_id: &str,
        ) -> Result<Vec<ExecutionAttempt>> {
            let rows = sqlx::query(
                "SELECT a.* FROM execution_attempts a JOIN executions e ON e.id = a.execution_id \
                 WHERE e.tenant_id = $1 AND a.execution_id = $2 ORDER BY a.attempt DESC LIMIT 100",
            )
            .bind(tenant_id)
            .bind(execution_id)
            .fetch_all(r)
            .await?;
            let mut out = rows.iter().map(map_attempt).collect::<Result<Vec<_>>>()?;
            out.reverse();
            Ok(out)
        }

        /// A page of a tenant's executions, newest first.
        pub(crate) async fn select_executions(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            f: &ExecutionFilter,
            before_id: Option<&str>,
            limit: usize,
        ) -> Result<Page<Execution>> {
            let mut qb: sqlx::QueryBuilder<$db> =
                sqlx::QueryBuilder::new("SELECT * FROM executions WHERE tenant_id = ");
            qb.push_bind(tenant_id);
            if let Some(b) = before_id {
                qb.push(" AND id < ").push_bind(b);
            }
            if let Some(a) = f.agent_id {
                qb.push(" AND agent_id = ").push_bind(a);
            }
            if let Some(e) = &f.entity_id {
                qb.push(" AND entity_id = ").push_bind(e);
            }
            if let Some(e) = &f.entity_number {
                qb.push(" AND entity_number = ").push_bind(e);
            }
            if let Some(b) = &f.backfill_id {
                qb.push(" AND backfill_id = ").push_bind(b);
            }
            if !f.statuses.is_empty() {
                qb.push(" AND status IN (");
                let mut sep = qb.separated(", ");
                for s in &f.statuses {
                    sep.push_bind(s.as_str());
                }
                qb.push(")");
            }
            qb.push(" ORDER BY id DESC LIMIT ")
                .push_bind(limit as i64 + 1);
            let rows = qb.build().fetch_all(r).await?;
            let rows: Vec<Execution> = rows.iter().map(map_execution).collect::<Result<_>>()?;
            Ok(Page::from_overfetch(rows, limit))
        }

        /// A completion reported for an execution (a callback, or the API): settled through
        /// the orchestrator's own path when it belongs to an item in flight or pending
        /// (counters, breaker, completion). `None` if there is no such execution,
        /// `Some(false)` if it had already finished.
        pub(crate) async fn finish_execution_tx(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            id: &str,
            status: ExecutionStatus,
            error: Option<&str>,
            now: Timestamp,
        ) -> Result<Option<bool>> {
            // Lock order: item, execution, backfill (PostgreSQL's, see its settlement). The
            // execution names its backfill; its item is found and locked, then the execution
            // is read again under its lock (a settlement may have finished it meanwhile).
            let backfill_id: Option<Option<String>> = sqlx::query_scalar(
                "SELECT backfill_id FROM executions WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
            let Some(backfill_id) = backfill_id else {
                return Ok(None);
            };
            let item: Option<(String, i64)> = match &backfill_id {
                Some(bid) => sqlx::query_as(concat!(
                    "SELECT backfill_id, ord FROM backfill_items WHERE backfill_id = $1 AND execution_id = $2 AND status IN ('pending', 'in_flight')",
                    $lock
                ))
                .bind(bid)
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?,
                None => None,
            };
            let Some(r) = sqlx::query(concat!(
                "SELECT * FROM executions WHERE tenant_id = $1 AND id = $2",
                $lock
            ))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            else {
                return Ok(None);
            };
            let e = map_execution(&r)?;
            if e.status.is_final() {
                return Ok(Some(false));
            }
            let settlement = settlement_of(status, error);
            let now_ms = to_ms(now);
            match item {
                Some((backfill_id, ord)) => {
                    let o = Outcome {
                        backfill_id,
                        ord,
                        execution_id: id.to_owned(),
                        settlement,
                        attempt: AttemptReport::default(),
                    };
                    let (_, touched) = settle_batch(tx, &[o], i64::MAX, now_ms).await?;
                    complete_in_tx(tx, &touched, now_ms).await?;
                }
                None => {
                    let (changes, credit) = lone_execution_writes(id, &settlement);
                    write_executions(tx, &changes, &[], &credit, now_ms).await?;
                }
            }
            Ok(Some(true))
        }
    };
}
pub(crate) use execution_queries;
