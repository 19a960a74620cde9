//! Secrets at rest, on both backends: what the database holds (every column of every table)
//! never contains a secret in plaintext, a sealed value moved to another row or member does
//! not open, plaintext left by older versions is sealed when a key opens the store, and a
//! master key rotation leaves only the new key able to open the database.

use std::sync::Arc;

use jiff::Timestamp;
use neo_domain::backfill::{AutonomyType, EntityType, WorkflowState};
use neo_store::testing::{backend_tests, fresh_store, test_sealer, Backend, TestStore};
use neo_store::*;
use serde_json::{json, Value};
use sqlx::{Connection, Row};

fn now() -> Timestamp {
    "2026-03-02T10:00:00Z".parse().unwrap()
}

fn webhook(secret: &str) -> Value {
    json!({"type": "webhook", "url": "https://hooks.example.test/x", "secret": secret, "timeout_ms": 5000})
}

fn new_workflow(name: &str, executor: Value) -> NewWorkflow {
    NewWorkflow {
        name: name.into(),
        description: None,
        autonomy_type: AutonomyType::ChainedActions,
        entity_type: EntityType::Ticket,
        state: WorkflowState::Enabled,
        credit_tier: 1,
        executor,
    }
}

fn other_sealer(b: u8) -> Arc<Sealer> {
    Arc::new(Sealer::new(MasterKey::from_bytes([b; 32])))
}

/// Runs SQL statements on the test database, outside the store.
async fn raw(t: &TestStore, sql: &str) {
    match t.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&t.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
    }
}

/// Every column of every table (the migration bookkeeping included), as text; binary columns
/// as hex. One line per row.
async fn dump(t: &TestStore) -> String {
    let mut out = String::new();
    match t.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            assert!(tables.len() > 5, "{tables:?}");
            for table in tables {
                let cols: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>("name"))
                    .collect();
                let expr = cols
                    .iter()
                    .map(|c| format!("quote(\"{c}\")"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT '{table}|' || {expr} FROM \"{table}\""))
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                for r in rows {
                    out.push_str(&r);
                    out.push('\n');
                }
            }
            c.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&t.url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            assert!(tables.len() > 5, "{tables:?}");
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT '{table}|' || t::text FROM \"{table}\" t"))
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                for r in rows {
                    out.push_str(&r);
                    out.push('\n');
                }
            }
            c.close().await.unwrap();
        }
    }
    out
}

/// Asserts that no secret appears in the database, neither as text nor as hex bytes; with
/// `files`, for SQLite, not anywhere in its files either (free pages and the WAL included).
async fn assert_nowhere(t: &TestStore, secrets: &[&str], files: bool) {
    let d = dump(t).await;
    let lower = d.to_lowercase();
    for s in secrets {
        assert!(!d.contains(s), "{s} is stored in plaintext:\n{d}");
        assert!(
            !lower.contains(&hex_of(s)),
            "{s} is stored as plaintext bytes:\n{d}"
        );
    }
    if files && t.backend == Backend::Sqlite {
        let file = t.url.strip_prefix("sqlite://").unwrap();
        for f in [file.to_owned(), format!("{file}-wal")] {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            for s in secrets {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{s} is in the bytes of {f}"
                );
            }
        }
    }
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn secret_err<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(StoreError::Secret(m)) => m,
        other => panic!("expected StoreError::Secret, got {other:?}"),
    }
}

async fn secrets_never_rest_in_plaintext(b: Backend) {
    let Some(t) = fresh_store(b).await else {
        return;
    };
    let s = &t.store;
    let tenant = s.ensure_tenant("acme", now()).await.unwrap().id;
    let creds = json!({"private_key": "PK-plain-1234567890", "client_id": "CID-plain-0987654321"});
    let i = s
        .put_integration(
            &tenant,
            "connectwise",
            json!({"site_url": "https://cw.example.test", "company_id": "acme"}),
            creds.clone(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(i.secret_names, vec!["client_id", "private_key"]);
    assert_eq!(
        s.integration(&tenant).await.unwrap().unwrap().secret_names,
        vec!["client_id", "private_key"]
    );
    assert_eq!(s.integration_secrets(&tenant).await.unwrap(), Some(creds));

    let w1 = s
        .insert_workflow(
            &tenant,
            new_workflow("a", webhook("whsec-plain-insert-111")),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(w1.executor, webhook("whsec-plain-insert-111"));
    let w2 = s
        .insert_workflow(
            &tenant,
            new_workflow("b", json!({"type": "simulated"})),
            now(),
        )
        .await
        .unwrap();
    // An executor that gains a secret by update, and one whose other fields change.
    let patch = WorkflowPatch {
        executor: Some(webhook("whsec-plain-update-222")),
        ..Default::default()
    };
    let u2 = s
        .update_workflow(&tenant, w2.id, patch, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u2.executor, webhook("whsec-plain-update-222"));
    let rename = WorkflowPatch {
        name: Some("a2".into()),
        ..Default::default()
    };
    let u1 = s
        .update_workflow(&tenant, w1.id, rename, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (u1.name.as_str(), &u1.executor),
        ("a2", &webhook("whsec-plain-insert-111"))
    );

    let got = s.workflow(&tenant, w1.id).await.unwrap().unwrap();
    assert_eq!(got.executor, webhook("whsec-plain-insert-111"));
    let page = s.list_workflows(&tenant, None, 10).await.unwrap();
    let execs: Vec<&Value> = page.items.iter().map(|w| &w.executor).collect();
    assert_eq!(
        execs,
        vec![
            &webhook("whsec-plain-insert-111"),
            &webhook("whsec-plain-update-222")
        ]
    );
    // Another process with the same key reads the same values.
    let again = t.reopen().await;
    assert_eq!(
        again
            .workflow(&tenant, w2.id)
            .await
            .unwrap()
            .unwrap()
            .executor,
        webhook("whsec-plain-update-222")
    );

    assert_nowhere(
        &t,
        &[
            "PK-plain-1234567890",
            "CID-plain-0987654321",
            "whsec-plain-insert-111",
            "whsec-plain-update-222",
        ],
        true,
    )
    .await;
    let d = dump(&t).await;
    assert!(d.contains("nbs1."), "sealed values are stored:\n{d}");
    assert!(d.contains("private_key") && d.contains("hooks.example.test"));

    // Without a key the store refuses secrets, both ways, and says why.
    let keyless = t.reopen_with(None).await.unwrap();
    let m = secret_err(keyless.integration_secrets(&tenant).await);
    assert!(m.contains("no master key configured"), "{m}");
    let m = secret_err(keyless.workflow(&tenant, w1.id).await);
    assert!(m.contains("no master key configured"), "{m}");
    let m = secret_err(
        keyless
            .put_integration(
                &tenant,
                "halo",
                json!({}),
                json!({"client_secret": "x"}),
                now(),
            )
            .await,
    );
    assert!(m.contains("no master key configured"), "{m}");
    let m = secret_err(
        keyless
            .insert_workflow(&tenant, new_workflow("c", webhook("whsec-x")), now())
            .await,
    );
    assert!(m.contains("no master key configured"), "{m}");
    // What holds no secret still works without a key.
    assert_eq!(
        keyless
            .integration(&tenant)
            .await
            .unwrap()
            .unwrap()
            .secret_names,
        vec!["client_id", "private_key"]
    );
}

async fn a_sealed_value_moved_to_another_place_does_not_open(b: Backend) {
    let Some(t) = fresh_store(b).await else {
        return;
    };
    let s = &t.store;
    let a = s.ensure_tenant("a", now()).await.unwrap().id;
    let bt = s.ensure_tenant("b", now()).await.unwrap().id;
    for (tenant, key) in [(&a, "key-of-a"), (&bt, "key-of-b")] {
        s.put_integration(
            tenant,
            "connectwise",
            json!({}),
            json!({"private_key": key, "client_id": "cid"}),
            now(),
        )
        .await
        .unwrap();
    }
    let w1 = s
        .insert_workflow(&a, new_workflow("w1", webhook("secret-one")), now())
        .await
        .unwrap()
        .id;
    let w2 = s
        .insert_workflow(&a, new_workflow("w2", webhook("secret-two")), now())
        .await
        .unwrap()
        .id;

    // Tenant a's credentials copied into tenant b's row.
    raw(
        &t,
        &format!(
            "UPDATE integrations SET secrets = (SELECT secrets FROM integrations WHERE tenant_id = '{a}') WHERE tenant_id = '{bt}'"
        ),
    )
    .await;
    let m = secret_err(s.integration_secrets(&bt).await);
    assert!(
        m.contains("integrations.secrets.") && m.contains(&bt) && m.contains("tampered"),
        "{m}"
    );
    assert_eq!(
        s.integration_secrets(&a).await.unwrap(),
        Some(json!({"private_key": "key-of-a", "client_id": "cid"}))
    );

    // One member's value moved to another member of the same row.
    let secrets: String = match t.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
            sqlx::query_scalar("SELECT secrets FROM integrations WHERE tenant_id = ?")
                .bind(&a)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&t.url).await.unwrap();
            sqlx::query_scalar("SELECT secrets FROM integrations WHERE tenant_id = $1")
                .bind(&a)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    };
    let v: Value = serde_json::from_str(&secrets).unwrap();
    let swapped = json!({"private_key": v["client_id"], "client_id": v["private_key"]});
    raw(
        &t,
        &format!("UPDATE integrations SET secrets = '{swapped}' WHERE tenant_id = '{a}'"),
    )
    .await;
    let m = secret_err(s.integration_secrets(&a).await);
    assert!(m.contains("tampered"), "{m}");

    // A webhook secret copied to another workflow.
    raw(
        &t,
        &format!(
            "UPDATE workflows SET executor = (SELECT executor FROM workflows WHERE id = {w1}) WHERE id = {w2}"
        ),
    )
    .await;
    let m = secret_err(s.workflow(&a, w2).await);
    assert!(
        m.contains(&format!("workflow {w2}")) && m.contains("tampered"),
        "{m}"
    );
    secret_err(s.list_workflows(&a, None, 10).await);
    assert_eq!(
        s.workflow(&a, w1).await.unwrap().unwrap().executor,
        webhook("secret-one")
    );

    // A value that is not a sealed value at all.
    raw(
        &t,
        &format!(
            "UPDATE workflows SET executor = '{}' WHERE id = {w1}",
            webhook("nbs1.garbage")
        ),
    )
    .await;
    let m = secret_err(s.workflow(&a, w1).await);
    assert!(m.contains("not a sealed value"), "{m}");
}

async fn plaintext_is_sealed_when_a_key_opens_the_store(b: Backend) {
    let Some(t) = fresh_store(b).await else {
        return;
    };
    let s = &t.store;
    let tenant = s.ensure_tenant("legacy", now()).await.unwrap().id;
    // Rows as a version without sealing wrote them.
    raw(
        &t,
        &format!(
            "INSERT INTO integrations (tenant_id, psa, config, secrets, created_at, updated_at) \
             VALUES ('{tenant}', 'autotask', '{{}}', '{{\"secret\":\"legacy-at-secret\",\"username\":\"legacy-user\"}}', 1, 1); \
             INSERT INTO workflows (tenant_id, name, autonomy_type, entity_type, state, credit_tier, executor, created_at, updated_at) \
             VALUES ('{tenant}', 'old hook', 'CHAINED_ACTIONS', 'ticket', 'ENABLED', 1, '{}', 1, 1); \
             INSERT INTO workflows (tenant_id, name, autonomy_type, entity_type, state, credit_tier, executor, created_at, updated_at) \
             VALUES ('{tenant}', 'sim', 'CHAINED_ACTIONS', 'ticket', 'ENABLED', 1, '{{\"type\":\"simulated\"}}', 1, 1);",
            webhook("legacy-whsec")
        ),
    )
    .await;
    let secrets = ["legacy-at-secret", "legacy-user", "legacy-whsec"];
    assert!(dump(&t).await.contains("legacy-whsec"));

    let s2 = t.reopen().await;
    // (The plaintext written above may linger in SQLite's free pages: only columns count.)
    assert_nowhere(&t, &secrets[..], false).await;
    assert_eq!(
        s2.integration_secrets(&tenant).await.unwrap(),
        Some(json!({"secret": "legacy-at-secret", "username": "legacy-user"}))
    );
    let ws = s2.list_workflows(&tenant, None, 10).await.unwrap().items;
    assert_eq!(ws[0].executor, webhook("legacy-whsec"));
    assert_eq!(ws[1].executor, json!({"type": "simulated"}));
    // Opening again changes nothing more.
    let before = dump(&t).await;
    t.reopen().await;
    assert_eq!(dump(&t).await, before);
}

async fn rotation_leaves_only_the_new_key_able_to_open(b: Backend) {
    let Some(t) = fresh_store(b).await else {
        return;
    };
    let s = &t.store;
    let mut workflows = Vec::new();
    for n in ["one", "two"] {
        let tenant = s.ensure_tenant(n, now()).await.unwrap().id;
        s.put_integration(
            &tenant,
            "halo",
            json!({}),
            json!({"client_id": format!("{n}-id"), "client_secret": format!("{n}-secret")}),
            now(),
        )
        .await
        .unwrap();
        let w = s
            .insert_workflow(
                &tenant,
                new_workflow(n, webhook(&format!("{n}-whsec"))),
                now(),
            )
            .await
            .unwrap();
        s.insert_workflow(
            &tenant,
            new_workflow("sim", json!({"type": "simulated"})),
            now(),
        )
        .await
        .unwrap();
        workflows.push((tenant, w.id));
    }
    let new = other_sealer(9);
    let report = s.rotate_master_key(&new).await.unwrap();
    assert_eq!(
        report,
        SecretsReport {
            integrations: 2,
            integration_secrets: 4,
            workflows: 2,
            notification_endpoints: 0,
        }
    );
    assert_nowhere(
        &t,
        &["one-secret", "two-secret", "one-whsec", "two-whsec"],
        true,
    )
    .await;

    let rotated = t.reopen_with(Some(new.clone())).await.unwrap();
    for (i, (tenant, w)) in workflows.iter().enumerate() {
        let n = ["one", "two"][i];
        assert_eq!(
            rotated.integration_secrets(tenant).await.unwrap(),
            Some(json!({"client_id": format!("{n}-id"), "client_secret": format!("{n}-secret")}))
        );
        assert_eq!(
            rotated
                .workflow(tenant, *w)
                .await
                .unwrap()
                .unwrap()
                .executor,
            webhook(&format!("{n}-whsec"))
        );
    }
    // The old key, or any other, is refused at open, naming both keys.
    let old_id = test_sealer().key_id().to_owned();
    for wrong in [test_sealer(), other_sealer(3)] {
        let e = format!(
            "{:#}",
            t.reopen_with(Some(wrong.clone())).await.unwrap_err()
        );
        assert!(
            e.contains("wrong master key")
                && e.contains(new.key_id())
                && e.contains(wrong.key_id()),
            "{e}"
        );
    }
    // Without the key check, the sealed values themselves refuse another key.
    raw(
        &t,
        "DELETE FROM server_settings WHERE name = 'master_key_check'",
    )
    .await;
    let e = format!(
        "{:#}",
        t.reopen_with(Some(test_sealer())).await.unwrap_err()
    );
    assert!(
        e.contains("the master key does not match") && e.contains(new.key_id()),
        "{e}"
    );
    assert!(
        t.reopen_with(Some(new.clone())).await.is_ok(),
        "the check is written again"
    );
    // The old store object still holds the old key: its reads now fail cleanly.
    let m = secret_err(s.integration_secrets(&workflows[0].0).await);
    assert!(m.contains(&old_id) && m.contains(new.key_id()), "{m}");
    // Rotating again from the old key is refused, and changes nothing.
    let m = secret_err(s.rotate_master_key(&other_sealer(4)).await);
    assert!(m.contains("wrong master key"), "{m}");
    assert!(t.reopen_with(Some(new)).await.is_ok());
}

backend_tests!(
    secrets_never_rest_in_plaintext,
    a_sealed_value_moved_to_another_place_does_not_open,
    plaintext_is_sealed_when_a_key_opens_the_store,
    rotation_leaves_only_the_new_key_able_to_open,
);
