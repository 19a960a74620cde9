//! Executions, written once for both backends (`$N` placeholders): `execution_queries!` in a
//! backend module defines these for its pools; the backend's `Store` methods choose the pool.

macro_rules! execution_queries {
    ($db:ty) => {
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

        /// The saved answer of an `Idempotency-Key` younger than `not_before`.
        pub(crate) async fn select_idempotent(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            key: &str,
            not_before: Timestamp,
        ) -> Result<Option<IdempotentResponse>> {
            let row = sqlx::query(
                "SELECT * FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND created_at >= $3",
            )
            .bind(tenant_id)
            .bind(key)
            .bind(to_ms(not_before))
            .fetch_optional(r)
            .await?;
            row.as_ref().map(map_idempotent).transpose()
        }

        pub(crate) async fn delete_idempotency_keys(
            w: &sqlx::Pool<$db>,
            before: Timestamp,
        ) -> Result<u64> {
            let n = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(to_ms(before))
                .execute(w)
                .await?
                .rows_affected();
            Ok(n)
        }
    };
}
pub(crate) use execution_queries;
