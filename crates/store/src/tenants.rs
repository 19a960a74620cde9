//! Tenants and API keys: one statement text for both backends (`$N` placeholders, which
//! SQLite accepts too). `tenant_queries!(sqlx::Sqlite)` in a backend module defines these
//! functions for its pools and transactions; the backend's `Store` methods only choose the
//! pool (SQLite reads from its reader pool, writes through its single writer).

/// `SELECT` of one tenant by a unique column.
pub(crate) const TENANT_BY_ID: &str = "SELECT * FROM tenants WHERE id = $1";
pub(crate) const TENANT_BY_NAME: &str = "SELECT * FROM tenants WHERE name = $1";
pub(crate) const TENANT_BY_ENTRA_TID: &str = "SELECT * FROM tenants WHERE entra_tenant_id = $1";

macro_rules! tenant_queries {
    ($db:ty) => {
        /// Creates the tenant `name` unless it exists; returns it.
        pub(crate) async fn upsert_tenant(
            w: &sqlx::Pool<$db>,
            name: &str,
            now: Timestamp,
        ) -> Result<Tenant> {
            let id = format!("tn_{}", uuid::Uuid::now_v7().simple());
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                .bind(&id)
                .bind(name)
                .bind(to_ms(now))
                .execute(w)
                .await?;
            let r = sqlx::query(crate::tenants::TENANT_BY_NAME)
                .bind(name)
                .fetch_one(w)
                .await?;
            map_tenant(&r)
        }

        /// One tenant by `sql` (a `TENANT_BY_*` statement).
        pub(crate) async fn select_tenant(
            r: &sqlx::Pool<$db>,
            sql: &'static str,
            v: &str,
        ) -> Result<Option<Tenant>> {
            let row = sqlx::query(sql).bind(v).fetch_optional(r).await?;
            row.as_ref().map(map_tenant).transpose()
        }

        pub(crate) async fn update_tenant_entra_tid(
            w: &sqlx::Pool<$db>,
            tenant_id: &str,
            tid: Option<&str>,
        ) -> Result<()> {
            sqlx::query("UPDATE tenants SET entra_tenant_id = $1 WHERE id = $2")
                .bind(tid)
                .bind(tenant_id)
                .execute(w)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(
                            "that Entra tenant id is linked to another tenant".into(),
                        )
                    } else {
                        e.into()
                    }
                })?;
            Ok(())
        }

        pub(crate) async fn update_tenant_allowance(
            w: &sqlx::Pool<$db>,
            tenant_id: &str,
            credits: i64,
        ) -> Result<bool> {
            Ok(sqlx::query("UPDATE tenants SET monthly_credit_allowance = $1 WHERE id = $2")
                .bind(credits)
                .bind(tenant_id)
                .execute(w)
                .await?
                .rows_affected()
                == 1)
        }

        /// Inserts a key (with `execute`, not `RETURNING`: a row taken before the statement
        /// ends would hide a failed SQLite write).
        pub(crate) async fn insert_key<'e, E: sqlx::Executor<'e, Database = $db>>(
            ex: E,
            k: &NewApiKey,
        ) -> Result<()> {
            sqlx::query("INSERT INTO api_keys (id, tenant_id, env, key_hash, hint, created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&k.id)
                .bind(&k.tenant_id)
                .bind(&k.env)
                .bind(&k.key_hash[..])
                .bind(&k.hint)
                .bind(to_ms(k.created_at))
                .bind(&k.created_by)
                .bind(k.expires_at.map(to_ms))
                .execute(ex)
                .await?;
            Ok(())
        }

        pub(crate) async fn select_key<'e, E: sqlx::Executor<'e, Database = $db>>(
            ex: E,
            id: &str,
        ) -> Result<Option<ApiKey>> {
            let r = sqlx::query("SELECT * FROM api_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(ex)
                .await?;
            r.as_ref().map(map_key).transpose()
        }

        pub(crate) async fn select_key_by_hash(
            r: &sqlx::Pool<$db>,
            hash: &[u8; 32],
        ) -> Result<Option<(ApiKey, Vec<u8>)>> {
            let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1")
                .bind(&hash[..])
                .fetch_optional(r)
                .await?;
            row.as_ref().map(map_key_with_hash).transpose()
        }

        pub(crate) async fn select_keys(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
        ) -> Result<Vec<ApiKey>> {
            let rows =
                sqlx::query("SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id")
                    .bind(tenant_id)
                    .fetch_all(r)
                    .await?;
            rows.iter().map(map_key).collect()
        }

        pub(crate) async fn update_key_revoked(
            w: &sqlx::Pool<$db>,
            id: &str,
            now: Timestamp,
        ) -> Result<bool> {
            let n = sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(to_ms(now))
            .bind(id)
            .execute(w)
            .await?
            .rows_affected();
            Ok(n == 1)
        }

        /// Points `old_id` at its replacement and makes it expire at `old_expires_at` if that
        /// is sooner than its own expiry.
        pub(crate) async fn update_key_rotated<'e, E: sqlx::Executor<'e, Database = $db>>(
            ex: E,
            old_id: &str,
            old_expires_at: Timestamp,
            new_id: &str,
        ) -> Result<()> {
            sqlx::query("UPDATE api_keys SET rotated_to = $1, expires_at = CASE WHEN expires_at IS NULL OR expires_at > $2 THEN $2 ELSE expires_at END WHERE id = $3")
                .bind(new_id)
                .bind(to_ms(old_expires_at))
                .bind(old_id)
                .execute(ex)
                .await?;
            Ok(())
        }

        pub(crate) async fn update_key_used(
            w: &sqlx::Pool<$db>,
            id: &str,
            now: Timestamp,
        ) -> Result<()> {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(to_ms(now))
                .bind(id)
                .execute(w)
                .await?;
            Ok(())
        }
    };
}
pub(crate) use tenant_queries;
