//! A tenant's PSA integration, written once for both backends (`$N` placeholders):
//! `integration_queries!` in a backend module defines these for its pools. Secrets are sealed
//! on the way in and opened on the way out (see `sealed_rows`). Removing an integration stays
//! per backend: which backfills it ends is a JSON question each dialect asks its own way.

macro_rules! integration_queries {
    ($db:ty) => {
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
    };
}
pub(crate) use integration_queries;
