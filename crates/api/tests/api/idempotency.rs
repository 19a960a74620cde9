//! Idempotency keys on create and rerun-failed: a replay answers the first response, one key
//! makes one backfill under concurrency, a failed save creates nothing, old keys are purged.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn idempotency_key_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let body = json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1", "2"]}});
    let send = |b: serde_json::Value, k: &str| {
        app.send(
            app.client
                .post(app.url("/public-api/backfills"))
                .bearer_auth(&key)
                .header("idempotency-key", k)
                .json(&b),
        )
    };
    let first = send(body.clone(), "k-1").await;
    assert_eq!(first.status, 201);
    let again = send(body.clone(), "k-1").await;
    assert_eq!(
        again.status, 201,
        "not 409 backfill_already_active: the first response is replayed"
    );
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = send(
        json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["3"]}}),
        "k-1",
    )
    .await;
    other.assert_error(409, "idempotency_key_reused");
    // After 24 h the key is free again (and this body now conflicts with the active backfill).
    app.clock
        .advance(jiff::SignedDuration::from_hours(24) + jiff::SignedDuration::from_secs(1));
    send(body, "k-1")
        .await
        .assert_error(409, "backfill_already_active");
    let list = app.get(&key, "/public-api/backfills").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

/// Sends `n` creates at once with one `Idempotency-Key`, body `i` from `body(i)`.
async fn concurrent_creates(
    app: &TestApp,
    key: &str,
    n: usize,
    body: impl Fn(usize) -> serde_json::Value,
) -> Vec<Resp> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let req = app
            .client
            .post(app.url("/public-api/backfills"))
            .bearer_auth(key)
            .header("idempotency-key", "same-key")
            .json(&body(i));
        tasks.spawn(async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.json().await.unwrap();
            Resp {
                status,
                body,
                headers,
            }
        });
    }
    tasks.join_all().await
}

/// Issue 14: concurrent duplicates got 409 (a race between check and save). Now eight
/// identical creates with one key make one backfill, and all eight get the same 201 body, all
/// but the first marked `Idempotent-Replayed`.
#[tokio::test]
async fn concurrent_identical_creates_with_one_key_make_one_backfill() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let body = json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1", "2"]}});
    let rs = concurrent_creates(&app, &key, 8, |_| body.clone()).await;
    for r in &rs {
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.body, rs[0].body);
    }
    let replayed = rs
        .iter()
        .filter(|r| r.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 7);
    let list = app.get(&key, "/public-api/backfills").await;
    let listed = list.body["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{:?}", list.body);
    assert_eq!(listed[0]["id"], rs[0].body["data"]["backfill"]["id"]);
}

/// The same key with different bodies at once: one is created, the others are 409
/// `idempotency_key_reused` (not a replay of another body's response).
#[tokio::test]
async fn concurrent_creates_with_one_key_and_other_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wfs = [
        app.workflow(&key, "A").await,
        app.workflow(&key, "B").await,
        app.workflow(&key, "C").await,
        app.workflow(&key, "D").await,
    ];
    let rs = concurrent_creates(
        &app,
        &key,
        4,
        |i| json!({"target_workflow_id": wfs[i], "filter_spec": {"entity_ids": ["1"]}}),
    )
    .await;
    assert_eq!(rs.iter().filter(|r| r.status == 201).count(), 1, "{rs:?}");
    for r in rs.iter().filter(|r| r.status != 201) {
        r.assert_error(409, "idempotency_key_reused");
    }
    let list = app.get(&key, "/public-api/backfills").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

/// Rerun-failed takes its key in its own transaction too: four at once with one key make one
/// child, and all four answer it.
#[tokio::test]
async fn concurrent_reruns_with_one_key_make_one_child() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let src = app.backfill(&key, wf, &["1", "2"]).await;
    app.settle(&src, &[("1", "failed"), ("2", "succeeded")], "COMPLETED")
        .await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let req = app
            .client
            .post(app.url(&format!("/public-api/backfills/{src}/rerun-failed")))
            .bearer_auth(&key)
            .header("idempotency-key", "rerun-key");
        tasks.spawn(async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        });
    }
    let rs = tasks.join_all().await;
    for (status, body) in &rs {
        assert_eq!(*status, 201, "{body:?}");
        assert_eq!(body, &rs[0].1);
    }
    assert_eq!(rs[0].1["data"]["backfill"]["parent_backfill_run_id"], src);
    let list = app.get(&key, "/public-api/backfills").await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        2,
        "{:?}",
        list.body
    );
}

/// Runs `statements` on the test database (SQLite or PostgreSQL).
async fn exec_sql(app: &TestApp, sqlite: &[&str], postgres: &[&str]) {
    match app.db.backend {
        neo_store::testing::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
            for q in sqlite {
                sqlx::query(q).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        neo_store::testing::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            for q in postgres {
                sqlx::query(q).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

/// Issue 14: the response used to be saved after the create had committed, so a failed save
/// left a backfill whose key was lost (the retry could not replay it). Now they share one
/// transaction: when saving the response fails, nothing is created, and the retry creates
/// the backfill once and is then replayed.
#[tokio::test]
async fn a_failed_save_of_the_response_creates_nothing_and_the_retry_works() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let wf = app.workflow(&key, "Triage").await;
    let body = json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ["1", "2"]}});
    let send = || {
        app.send(
            app.client
                .post(app.url("/public-api/backfills"))
                .bearer_auth(&key)
                .header("idempotency-key", "k-save")
                .json(&body),
        )
    };
    // Writing a response (status 201) into idempotency_keys fails.
    exec_sql(
        &app,
        &[
            "CREATE TRIGGER save_fails_i BEFORE INSERT ON idempotency_keys WHEN NEW.status = 201 BEGIN SELECT RAISE(ABORT, 'save failed'); END",
            "CREATE TRIGGER save_fails_u BEFORE UPDATE ON idempotency_keys WHEN NEW.status = 201 BEGIN SELECT RAISE(ABORT, 'save failed'); END",
        ],
        &[
            "CREATE FUNCTION save_fails() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.status = 201 THEN RAISE EXCEPTION 'save failed'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER save_fails BEFORE INSERT OR UPDATE ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION save_fails()",
        ],
    )
    .await;
    let failed = send().await;
    assert_eq!(failed.status, 500, "{:?}", failed.body);
    let list = app.get(&key, "/public-api/backfills").await;
    assert_eq!(list.body["data"], json!([]), "created without its key");

    exec_sql(
        &app,
        &["DROP TRIGGER save_fails_i", "DROP TRIGGER save_fails_u"],
        &["DROP TRIGGER save_fails ON idempotency_keys"],
    )
    .await;
    let first = send().await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = send().await;
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    let list = app.get(&key, "/public-api/backfills").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

/// Keys older than 24 h are deleted by the periodic purge (`serve` runs it hourly); younger
/// ones stay and still replay.
#[tokio::test]
async fn idempotency_keys_older_than_a_day_are_purged() {
    let app = TestApp::spawn().await;
    let key = app.key("acme").await;
    let tenant = app.store.tenant_by_name("acme").await.unwrap().unwrap().id;
    let wf = app.workflow(&key, "Triage").await;
    let create = |k: &'static str, ids: serde_json::Value| {
        app.send(
            app.client
                .post(app.url("/public-api/backfills"))
                .bearer_auth(&key)
                .header("idempotency-key", k)
                .json(&json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}, "draft": true})),
        )
    };
    assert_eq!(create("old", json!(["1"])).await.status, 201);
    let first = app.get(&key, "/public-api/backfills").await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete(&key, &format!("/public-api/backfills/{first}"))
            .await
            .status,
        204
    );
    app.clock.advance(jiff::SignedDuration::from_hours(12));
    assert_eq!(create("young", json!(["2"])).await.status, 201);
    app.clock
        .advance(jiff::SignedDuration::from_hours(12) + jiff::SignedDuration::from_secs(1));

    let state = neo_api::AppState::new(
        app.store.clone(),
        std::sync::Arc::new(app.clock.clone()),
        neo_api::ApiConfig::default(),
    )
    .await
    .unwrap();
    let purged = neo_api::routes::backfills::purge_idempotency_keys(&state)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let ever: jiff::Timestamp = "2000-01-01T00:00:00Z".parse().unwrap();
    let stored = |k: &'static str| {
        let (store, tenant) = (app.store.clone(), tenant.clone());
        async move { store.idempotent_response(&tenant, k, ever).await.unwrap() }
    };
    assert!(stored("old").await.is_none());
    assert!(stored("young").await.is_some());
    let r = create("young", json!(["2"])).await;
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
}
