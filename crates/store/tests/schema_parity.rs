//! The PostgreSQL schema stays equal to the SQLite one: both are migrated fresh and their
//! catalogs compared (tables, columns, nullability, primary and unique keys, explicit indexes
//! with their columns, uniqueness and partiality). On drift the test fails with one line per
//! difference.

use std::collections::{BTreeMap, BTreeSet};

use neo_store::testing::{fresh_store, Backend};
use sqlx::{Connection, PgConnection, SqliteConnection};

/// Indexes the hot paths rely on (dispatch, keyset lists, the one-active rule).
const HOT_PATH_INDEXES: &[&str] = &[
    "backfills_one_active",
    "backfills_tenant_id",
    "backfills_tenant_workflow",
    "backfills_state",
    "backfills_dispatchable",
    "backfill_items_status",
    "backfill_items_lease",
    "backfill_items_pending",
    "backfill_signals_backfill",
    "executions_tenant",
    "executions_agent_entity",
    "executions_backfill",
    "credit_ledger_tenant",
    "api_keys_tenant",
    "workflows_tenant",
];

#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    /// table → column → NOT NULL
    columns: BTreeMap<String, BTreeMap<String, bool>>,
    /// (table, columns) of primary keys and unique constraints
    keys: BTreeSet<(String, Vec<String>)>,
    /// explicit index name → (table, columns, unique, partial)
    indexes: BTreeMap<String, (String, Vec<String>, bool, bool)>,
}

fn ignored(table: &str) -> bool {
    table.starts_with("_sqlx") || table.starts_with("sqlite_")
}

async fn sqlite_schema(url: &str) -> Schema {
    let mut c = SqliteConnection::connect(url).await.unwrap();
    let mut s = Schema::default();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut c)
            .await
            .unwrap();
    for t in tables.into_iter().filter(|t| !ignored(t)) {
        let cols: Vec<(String, bool, i64)> =
            sqlx::query_as("SELECT name, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid")
                .bind(&t)
                .fetch_all(&mut c)
                .await
                .unwrap();
        // A primary key column is NOT NULL in PostgreSQL; SQLite reports notnull = 0 for a
        // non-INTEGER one (a historical quirk), so the key counts as NOT NULL here.
        let mut pk: Vec<(i64, String)> = cols
            .iter()
            .filter(|c| c.2 > 0)
            .map(|c| (c.2, c.0.clone()))
            .collect();
        pk.sort();
        if !pk.is_empty() {
            s.keys
                .insert((t.clone(), pk.into_iter().map(|(_, n)| n).collect()));
        }
        s.columns.insert(
            t.clone(),
            cols.into_iter()
                .map(|(n, nn, pk)| (n, nn || pk > 0))
                .collect(),
        );
        let idx: Vec<(String, bool, String, bool)> =
            sqlx::query_as("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?)")
                .bind(&t)
                .fetch_all(&mut c)
                .await
                .unwrap();
        for (name, unique, origin, partial) in idx {
            let icols: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind(&name)
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            match origin.as_str() {
                "c" => {
                    s.indexes.insert(name, (t.clone(), icols, unique, partial));
                }
                "u" => {
                    s.keys.insert((t.clone(), icols));
                }
                _ => {} // "pk": already from the table info
            }
        }
    }
    s
}

async fn pg_schema(url: &str) -> Schema {
    let mut c = PgConnection::connect(url).await.unwrap();
    let mut s = Schema::default();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for t in tables.into_iter().filter(|t| !ignored(t)) {
        let cols: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, is_nullable::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(&t)
        .fetch_all(&mut c)
        .await
        .unwrap();
        s.columns.insert(
            t.clone(),
            cols.into_iter()
                .map(|(n, nullable)| (n, nullable == "NO"))
                .collect(),
        );
        let keys: Vec<Vec<String>> = sqlx::query_scalar(
            "SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_constraint con \
             JOIN pg_class t ON t.oid = con.conrelid \
             JOIN pg_namespace ns ON ns.oid = t.relnamespace \
             CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             WHERE ns.nspname = current_schema() AND t.relname = $1 AND con.contype IN ('p', 'u') \
             GROUP BY con.oid",
        )
        .bind(&t)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for k in keys {
            s.keys.insert((t.clone(), k));
        }
        let idx: Vec<(String, bool, bool, Vec<String>)> = sqlx::query_as(
            "SELECT i.relname::text, ix.indisunique, ix.indpred IS NOT NULL, \
                    array_agg(a.attname::text ORDER BY k.n) \
             FROM pg_index ix \
             JOIN pg_class i ON i.oid = ix.indexrelid \
             JOIN pg_class t ON t.oid = ix.indrelid \
             JOIN pg_namespace ns ON ns.oid = t.relnamespace \
             CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             WHERE ns.nspname = current_schema() AND t.relname = $1 \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid) \
             GROUP BY i.relname, ix.indisunique, ix.indpred IS NOT NULL",
        )
        .bind(&t)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for (name, unique, partial, cols) in idx {
            s.indexes.insert(name, (t.clone(), cols, unique, partial));
        }
    }
    let _ = c.close().await;
    s
}

fn diff(sq: &Schema, pg: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    let nn = |b: bool| if b { "NOT NULL" } else { "NULL" };
    let tables: BTreeSet<&String> = sq.columns.keys().chain(pg.columns.keys()).collect();
    for t in tables {
        let (Some(a), Some(b)) = (sq.columns.get(t), pg.columns.get(t)) else {
            let only = if sq.columns.contains_key(t) {
                "SQLite"
            } else {
                "PostgreSQL"
            };
            out.push(format!("table {t}: only in {only}"));
            continue;
        };
        let cols: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for c in cols {
            match (a.get(c), b.get(c)) {
                (Some(x), Some(y)) if x != y => out.push(format!(
                    "{t}.{c}: {} in SQLite, {} in PostgreSQL",
                    nn(*x),
                    nn(*y)
                )),
                (Some(_), None) => out.push(format!("{t}.{c}: only in SQLite")),
                (None, Some(_)) => out.push(format!("{t}.{c}: only in PostgreSQL")),
                _ => {}
            }
        }
    }
    for k in sq.keys.symmetric_difference(&pg.keys) {
        let only = if sq.keys.contains(k) {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        out.push(format!(
            "primary/unique key {}({}): only in {only}",
            k.0,
            k.1.join(", ")
        ));
    }
    let names: BTreeSet<&String> = sq.indexes.keys().chain(pg.indexes.keys()).collect();
    for n in names {
        match (sq.indexes.get(n), pg.indexes.get(n)) {
            (Some(a), Some(b)) if a != b => out.push(format!(
                "index {n}: (table, columns, unique, partial) {a:?} in SQLite, {b:?} in PostgreSQL"
            )),
            (Some(_), None) => out.push(format!("index {n}: only in SQLite")),
            (None, Some(_)) => out.push(format!("index {n}: only in PostgreSQL")),
            _ => {}
        }
    }
    for n in HOT_PATH_INDEXES {
        for (name, s) in [("SQLite", sq), ("PostgreSQL", pg)] {
            if !s.indexes.contains_key(*n) {
                out.push(format!("hot-path index {n}: missing in {name}"));
            }
        }
    }
    out
}

#[tokio::test]
async fn postgres_schema_matches_sqlite() {
    let Some(pg) = fresh_store(Backend::Postgres).await else {
        return;
    };
    let sq = fresh_store(Backend::Sqlite).await.unwrap();
    let a = sqlite_schema(&sq.url).await;
    let b = pg_schema(&pg.url).await;
    for s in [&a, &b] {
        assert!(s.columns.len() >= 10, "read the catalog: {s:?}");
        assert!(
            s.indexes.len() >= HOT_PATH_INDEXES.len(),
            "read the indexes: {s:?}"
        );
        assert!(
            s.keys
                .contains(&("api_keys".into(), vec!["key_hash".into()])),
            "read the unique keys: {s:?}"
        );
    }
    let d = diff(&a, &b);
    assert!(
        d.is_empty(),
        "the PostgreSQL schema drifted from the SQLite one:\n  {}",
        d.join("\n  ")
    );
}

/// The comparison itself reports drift (so that the test above cannot pass vacuously).
#[test]
fn drift_is_reported() {
    let mut a = Schema::default();
    a.columns.insert(
        "t".into(),
        [("id".to_string(), true), ("x".to_string(), false)].into(),
    );
    a.indexes
        .insert("t_x".into(), ("t".into(), vec!["x".into()], false, false));
    let mut b = Schema::default();
    b.columns
        .insert("t".into(), [("id".to_string(), false)].into());
    b.keys.insert(("t".into(), vec!["id".into()]));
    let d = diff(&a, &b);
    assert!(d.contains(&"t.id: NOT NULL in SQLite, NULL in PostgreSQL".to_string()));
    assert!(d.contains(&"t.x: only in SQLite".to_string()));
    assert!(d.contains(&"primary/unique key t(id): only in PostgreSQL".to_string()));
    assert!(d.contains(&"index t_x: only in SQLite".to_string()));
    assert!(d.contains(&"hot-path index backfills_one_active: missing in PostgreSQL".to_string()));
}
