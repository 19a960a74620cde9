//! A tenant's PSA integration, written once for both backends (`$N` placeholders):
//! `integration_queries!($db, $lock_b, $lock_i)` in a backend module defines these; PostgreSQL
//! passes `" FOR UPDATE OF b"` to lock the backfills a removal ends and `" FOR UPDATE"` to lock
//! the budget's row. Secrets are sealed on the way in
//! and opened on the way out (see `sealed_rows`).

macro_rules! integration_queries {
    ($db:ty, $lock_b:literal, $lock_i:literal) => {
        /// Connects (or reconnects) the tenant's PSA, its secrets sealed; returns it.
        pub(crate) async fn upsert_integration(
            w: &sqlx::Pool<$db>,
            sealer: Option<&Sealer>,
            tenant_id: &str,
            psa: &str,
            config: &Value,
            secrets: &Value,
            now: Timestamp,
        ) -> Result<Integration> {
            let secrets = seal_secrets(sealer, tenant_id, secrets)?;
            sqlx::query("INSERT INTO integrations (tenant_id, psa, config, secrets, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
                         ON CONFLICT (tenant_id) DO UPDATE SET psa = excluded.psa, config = excluded.config, secrets = excluded.secrets, updated_at = excluded.updated_at")
                .bind(tenant_id)
                .bind(psa)
                .bind(config.to_string())
                .bind(secrets.to_string())
                .bind(to_ms(now))
                .execute(w)
                .await?;
            select_integration(w, tenant_id)
                .await?
                .ok_or(StoreError::NotFound)
        }

        pub(crate) async fn select_integration(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
        ) -> Result<Option<Integration>> {
            let row = sqlx::query("SELECT * FROM integrations WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(r)
                .await?;
            row.as_ref().map(map_integration).transpose()
        }

        /// Takes up to `want` requests from the tenant's PSA budget at `now` (the bucket row
        /// locked, refilled and written back in one transaction: replicas take turns);
        /// `None` when the tenant has no integration.
        pub(crate) async fn take_budget(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            want: i64,
            now: Timestamp,
        ) -> Result<Option<neo_domain::budget::Grant>> {
            let row = sqlx::query(concat!("SELECT * FROM integrations WHERE tenant_id = $1", $lock_i))
                .bind(tenant_id)
                .fetch_optional(&mut **tx)
                .await?;
            let Some(i) = row.as_ref().map(map_integration).transpose()? else {
                return Ok(None);
            };
            let g = i.budget().take(i.bucket, to_ms(now), want);
            if g.bucket != i.bucket {
                sqlx::query("UPDATE integrations SET budget_millis = $1, budget_at = $2, budget_hour = $3, budget_used = $4 WHERE tenant_id = $5")
                    .bind(g.bucket.millis)
                    .bind(g.bucket.at_ms)
                    .bind(g.bucket.hour_ms)
                    .bind(g.bucket.used)
                    .bind(tenant_id)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(Some(g))
        }

        /// The tenant's PSA secrets, opened, for the connector only.
        pub(crate) async fn select_integration_secrets(
            r: &sqlx::Pool<$db>,
            sealer: Option<&Sealer>,
            tenant_id: &str,
        ) -> Result<Option<Value>> {
            let row = sqlx::query("SELECT secrets FROM integrations WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(r)
                .await?;
            row.as_ref()
                .map(|row| open_secrets(sealer, tenant_id, json_col(row, "secrets")?))
                .transpose()
        }

        /// Removes the tenant's integration in `tx`. Its active backfills that read the PSA
        /// end FAILED; those over an explicit id list do not need it and go on. `false` if
        /// there was none.
        pub(crate) async fn delete_integration_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            tenant_id: &str,
            now: Timestamp,
        ) -> Result<bool> {
            let n = sqlx::query("DELETE FROM integrations WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            // The filter is read here rather than asked of the database: the JSON functions
            // of the two dialects differ, and a tenant has few active backfills.
            let active: Vec<(String, String)> = sqlx::query_as(concat!(
                "SELECT b.id, f.filter_spec FROM backfills b JOIN backfill_filters f ON f.backfill_id = b.id \
                 WHERE b.tenant_id = $1 AND b.state IN ('DRAFT', 'RUNNING', 'PAUSED') ORDER BY b.id",
                $lock_b
            ))
            .bind(tenant_id)
            .fetch_all(&mut **tx)
            .await?;
            for (b, filter) in active {
                let ids = parse_json(&filter)?.get("entity_ids").cloned();
                if ids.is_none_or(|v| v.is_null()) {
                    let error = "the tenant's PSA integration was removed";
                    fail_backfill_tx(tx, &b, error, to_ms(now)).await?;
                }
            }
            Ok(true)
        }
    };
}
pub(crate) use integration_queries;
