//! Workflows, written once for both backends (`$N` placeholders): `workflow_queries!($db,
//! $lock)` in a backend module defines these; PostgreSQL passes `" FOR UPDATE"` to lock the
//! row an update reads. Executor secrets are opened on the way out (see `sealed_rows`).

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
    };
}
pub(crate) use workflow_queries;
