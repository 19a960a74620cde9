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

/// Data written at the first schema, on both backends: a tenant, three workflows, and a
/// backfill in each state with items whose statuses its counters count.
const SEED_V1: &str = r#"
INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'acme', 0);
INSERT INTO workflows (tenant_id, name, autonomy_type, entity_type, state, credit_tier, executor, created_at, updated_at) VALUES
    ('t1', 'w1', 'CHAINED_ACTIONS', 'ticket', 'ENABLED', 1, '{"type": "simulated"}', 0, 0),
    ('t1', 'w2', 'CHAINED_ACTIONS', 'ticket', 'ENABLED', 1, '{"type": "simulated"}', 0, 0),
    ('t1', 'w3', 'CHAINED_ACTIONS', 'ticket', 'ENABLED', 1, '{"type": "simulated"}', 0, 0);
INSERT INTO backfills (id, tenant_id, state, target_workflow_id, entity_type, filter_spec, daily_execution_windows,
                       timezone, max_in_flight, reprocess, total_items, snapshot_complete, pending_count,
                       in_flight_count, succeeded_count, failed_count, skipped_count, cancelled_count,
                       credits_per_entity, created_by, created_at, updated_at, started_at, completed_at, error) VALUES
    ('bf_1_draft', 't1', 'DRAFT', 1, 'ticket', '{"entity_ids": ["1", "2"]}', '{}', 'UTC', 10, false, 2, true,
     2, 0, 0, 0, 0, 0, 1, 'key_1', 0, 0, NULL, NULL, NULL),
    ('bf_2_running', 't1', 'RUNNING', 2, 'ticket', '{"entity_ids": ["1", "2", "3", "4"]}',
     '{"monday": [{"run_start_time": "22:00", "run_end_time": "06:00"}]}', 'Australia/Sydney', 10, false, 4, true,
     2, 0, 1, 1, 0, 0, 1, 'key_1', 0, 0, 0, NULL, NULL),
    ('bf_3_paused', 't1', 'PAUSED', 3, 'ticket', '{"entity_ids": ["1", "2"]}', '{}', 'UTC', 10, false, 2, true,
     1, 0, 1, 0, 0, 0, 1, 'key_1', 0, 0, 0, NULL, NULL),
    ('bf_4_completed', 't1', 'COMPLETED', 1, 'ticket', '{"entity_ids": ["1", "2"]}', '{}', 'UTC', 10, false, 2, true,
     0, 0, 1, 0, 1, 0, 1, 'key_1', 0, 0, 0, 1000, NULL),
    ('bf_5_failed', 't1', 'FAILED', 2, 'ticket', '{"entity_ids": ["1", "2"]}', '{}', 'UTC', 10, false, 2, true,
     0, 0, 0, 1, 0, 1, 1, 'key_1', 0, 0, 0, 1000, 'the target workflow was deleted'),
    ('bf_6_cancelled', 't1', 'CANCELLED', 3, 'ticket', '{"entity_ids": ["1", "2"]}', '{}', 'UTC', 10, false, 2, true,
     0, 0, 0, 0, 0, 2, 1, 'key_1', 0, 0, 0, 1000, NULL);
INSERT INTO backfill_items (backfill_id, ord, entity_id, status, attempts, error, updated_at) VALUES
    ('bf_1_draft', 0, '1', 'pending', 0, NULL, 0), ('bf_1_draft', 1, '2', 'pending', 0, NULL, 0),
    ('bf_2_running', 0, '1', 'succeeded', 1, NULL, 0), ('bf_2_running', 1, '2', 'failed', 3, 'HTTP 500', 0),
    ('bf_2_running', 2, '3', 'pending', 0, NULL, 0), ('bf_2_running', 3, '4', 'pending', 0, NULL, 0),
    ('bf_3_paused', 0, '1', 'succeeded', 1, NULL, 0), ('bf_3_paused', 1, '2', 'pending', 0, NULL, 0),
    ('bf_4_completed', 0, '1', 'succeeded', 1, NULL, 0), ('bf_4_completed', 1, '2', 'skipped', 0, NULL, 0),
    ('bf_5_failed', 0, '1', 'failed', 3, 'HTTP 500', 0), ('bf_5_failed', 1, '2', 'cancelled', 0, NULL, 0),
    ('bf_6_cancelled', 0, '1', 'cancelled', 0, NULL, 0), ('bf_6_cancelled', 1, '2', 'cancelled', 0, NULL, 0);
"#;

/// A deployment at every earlier schema version (its data written at the first and carried by
/// the migrations it had) opened by this release: every backfill keeps its state, settings and
/// counters (equal to its items' statuses), and the running one dispatches to completion.
async fn every_earlier_schema_upgrades_with_its_backfills(backend: Backend) {
    use neo_domain::backfill::BackfillRunState as S;
    use neo_store::testing::{
        assert_counters_exact, at, migration_count, outcomes, upgraded_store_seeded_at,
    };
    use neo_store::Settlement;
    let last = migration_count(backend);
    for upto in 1..last {
        let Some(t) = upgraded_store_seeded_at(backend, 1, upto, SEED_V1).await else {
            return;
        };
        let s = t.store.as_ref();
        let states = [
            ("bf_1_draft", S::Draft),
            ("bf_2_running", S::Running),
            ("bf_3_paused", S::Paused),
            ("bf_4_completed", S::Completed),
            ("bf_5_failed", S::Failed),
            ("bf_6_cancelled", S::Cancelled),
        ];
        for (id, state) in states {
            let b = assert_counters_exact(s, "t1", id).await;
            assert_eq!(b.state, state, "{id} from schema {upto}");
            assert_eq!(b.max_in_flight, 10, "{id} from schema {upto}");
        }
        let running = s.backfill("t1", "bf_2_running").await.unwrap().unwrap();
        assert_eq!(
            running.filter_spec,
            json!({"entity_ids": ["1", "2", "3", "4"]}),
            "from schema {upto}"
        );
        assert_eq!(running.timezone, "Australia/Sydney");
        assert!(!running.daily_execution_windows.monday.is_empty());
        let failed = s.backfill("t1", "bf_5_failed").await.unwrap().unwrap();
        assert_eq!(
            failed.error.as_deref(),
            Some("the target workflow was deleted")
        );
        // The running backfill dispatches its two pending items and completes.
        let claimed = s
            .claim_items("bf_2_running", "w1", 10, at(10), at(60))
            .await
            .unwrap()
            .claimed;
        assert_eq!(claimed.len(), 2, "from schema {upto}");
        let outcomes = outcomes(&claimed, |_| Settlement::Succeeded);
        s.settle(&outcomes, 1_000, at(11)).await.unwrap();
        let done = assert_counters_exact(s, "t1", "bf_2_running").await;
        assert_eq!(done.state, S::Completed, "from schema {upto}");
        assert_eq!(done.succeeded_count, 3);
    }
}

/// A database a newer release has migrated further is refused at open, in words, and left as
/// it was.
async fn a_database_from_a_newer_release_is_refused(backend: Backend) {
    use sqlx::Connection;
    let Some(t) = neo_store::testing::fresh_store(backend).await else {
        return;
    };
    assert_eq!(
        neo_store::pending_migrations(&t.url).await.unwrap(),
        vec![],
        "a migrated database has nothing pending"
    );
    let future =
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                  VALUES ($1, $2, TRUE, $3, 0)";
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
            sqlx::query(future)
                .bind(99_990_001_i64)
                .bind("from the future")
                .bind(vec![0u8])
                .execute(&mut c)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&t.url).await.unwrap();
            sqlx::query(future)
                .bind(99_990_001_i64)
                .bind("from the future")
                .bind(vec![0u8])
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    let Err(e) = neo_store::connect(&t.url).await else {
        panic!("a database from a newer release was opened")
    };
    let e = format!("{e:#}");
    let known = neo_store::testing::migration_count(backend);
    assert!(
        e.contains(&format!("this database was upgraded by a newer release of neo-backfill (it has schema migration 99990001; this release knows migrations up to {known})")),
        "{e}"
    );
    assert!(
        e.contains("restore the backup taken before the upgrade"),
        "{e}"
    );
    // `migrate --dry-run` says the same.
    let dry = neo_store::pending_migrations(&t.url).await.unwrap_err();
    assert_eq!(format!("{dry:#}"), e);
}

neo_store::testing::backend_tests!(
    every_earlier_schema_upgrades_with_its_backfills,
    a_database_from_a_newer_release_is_refused,
);
