//! `Idempotency-Key`s: taken and saved inside the create or rerun transaction they belong to,
//! read back for a replay, purged when expired.

/// The idempotency-key statements, one text for both backends (`$N` placeholders, which
/// SQLite accepts too): `idempotency_queries!(sqlx::Sqlite)` in a backend module defines them
/// for its transactions and pools.
macro_rules! idempotency_queries {
    ($db:ty) => {
/// Takes the `Idempotency-Key` of `idem` in this transaction: its expired row is deleted, and a
/// live one (another request won) is [`StoreError::IdempotencyKeyTaken`]. The row is written
/// now and completed by [`save_idempotent_response`] before the commit, so no other
/// transaction ever sees it half-written.
pub(crate) async fn claim_idempotency_key(
    tx: &mut sqlx::Transaction<'_, $db>,
    tenant_id: &str,
    idem: &NewIdempotency<'_>,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND created_at < $3",
    )
    .bind(tenant_id)
    .bind(idem.key)
    .bind(to_ms(idem.not_before))
    .execute(&mut **tx)
    .await?;
    let n = sqlx::query("INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status, response, created_at) VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (tenant_id, key) DO NOTHING")
        .bind(tenant_id)
        .bind(idem.key)
        .bind(idem.fingerprint)
        .bind(to_ms(idem.created_at))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::IdempotencyKeyTaken);
    }
    Ok(())
}

/// Writes the response `idem` renders for `b` into the row [`claim_idempotency_key`] took.
pub(crate) async fn save_idempotent_response(
    tx: &mut sqlx::Transaction<'_, $db>,
    tenant_id: &str,
    idem: &NewIdempotency<'_>,
    b: &Backfill,
) -> Result<()> {
    let (status, response) = (idem.render)(b);
    sqlx::query(
        "UPDATE idempotency_keys SET status = $1, response = $2 WHERE tenant_id = $3 AND key = $4",
    )
    .bind(i64::from(status))
    .bind(response.to_string())
    .bind(tenant_id)
    .bind(idem.key)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
pub(crate) use idempotency_queries;
