//! Upgrades keep data: a database written by an older release (its schema made by only the
//! migrations it had), then opened by this one, which applies the rest.

use neo_store::testing::{upgraded_store, Backend};
use serde_json::json;

/// A tenant, a workflow and a DRAFT backfill over an explicit id list, in the schema before
/// `filter_spec` moved out of the backfill row (SQLite 0005, PostgreSQL 0004).
const SEED: &str = r#"
INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'acme', 0);
INSERT INTO workflows (tenant_id, name, autonomy_type, entity_type, state, credit_tier, executor, created_at, updated_at)
    VALUES ('t1', 'triage', 'CHAINED_ACTIONS', 'ticket', 'ENABLED', 1, '{"type": "simulated"}', 0, 0);
INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, filter_spec, daily_execution_windows,
                       timezone, max_in_flight, reprocess, total_items, snapshot_complete, credits_per_entity,
                       created_by, created_at, updated_at)
    VALUES ('bf_1', 't1', 'DRAFT', 1, 'ticket', '{"entity_ids": ["7", "8"]}', '{}', 'UTC', 10, false, 0, true, 1,
            'key_1', 0, 0);
"#;

async fn filter_spec_survives_leaving_the_backfill_row(backend: Backend, upto: usize) {
    let Some(t) = upgraded_store(backend, upto, SEED).await else {
        return;
    };
    let b = t.store.backfill("t1", "bf_1").await.unwrap().expect("kept");
    assert_eq!(b.filter_spec, json!({"entity_ids": ["7", "8"]}));
    assert_eq!(b.target_workflow_name.as_deref(), Some("triage"));
}

#[tokio::test]
async fn sqlite_filter_spec_survives_leaving_the_backfill_row() {
    filter_spec_survives_leaving_the_backfill_row(Backend::Sqlite, 4).await
}

#[tokio::test]
async fn postgres_filter_spec_survives_leaving_the_backfill_row() {
    filter_spec_survives_leaving_the_backfill_row(Backend::Postgres, 3).await
}
