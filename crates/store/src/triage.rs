//! Failure triage in the store (issue 22): the failed items of a backfill as the domain's
//! triage reads them (`neo_domain::triage`: signatures, kinds, clusters), with the HTTP status
//! their execution got. Written once for both backends: `triage_queries!($db)` in a backend
//! module defines the statement.

macro_rules! triage_queries {
    ($db:ty) => {
        /// [`crate::Store::failures`].
        pub(crate) async fn select_failures(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            backfill_id: &str,
        ) -> Result<Vec<neo_domain::triage::Failure<Timestamp>>> {
            let rows: Vec<(String, Option<String>, Option<i64>, i64)> = sqlx::query_as(
                "SELECT i.entity_id, i.error, e.http_status, i.updated_at FROM backfills b \
                 JOIN backfill_items i ON i.backfill_id = b.id AND i.status = 'failed' \
                 LEFT JOIN executions e ON e.id = i.execution_id \
                 WHERE b.tenant_id = $1 AND b.id = $2 ORDER BY i.ord",
            )
            .bind(tenant_id)
            .bind(backfill_id)
            .fetch_all(r)
            .await?;
            Ok(rows
                .into_iter()
                .map(
                    |(entity_id, error, status, at)| neo_domain::triage::Failure {
                        entity_id,
                        error: error.unwrap_or_default(),
                        http_status: status.and_then(|s| u16::try_from(s).ok()),
                        at: neo_domain::clock::from_ms(at),
                    },
                )
                .collect())
        }
    };
}
pub(crate) use triage_queries;
