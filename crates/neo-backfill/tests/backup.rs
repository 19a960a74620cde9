//! `backup`, `restore` and `export` with the real binary. The backup is taken while `serve`
//! runs a 50,000-item backfill, restored into a fresh directory, and the restored service
//! resumes the backfill to completion with exact counters, still signing its deliveries (the
//! master key came along: the receiver verifies `X-Neo-Signature`). Then what each command
//! refuses, with its words, and exports whose values are hostile (formula injection, commas,
//! quotes, line breaks), on SQLite and on PostgreSQL.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{serve, setup, Api, SharedDb, BIN};
use serde_json::{json, Value};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Connection;

/// The webhook secret `common::setup` gives its workflow.
const SETUP_SECRET: &str = "whsec_0123456789abcdef";

/// A webhook receiver that accepts only deliveries signed with [`SETUP_SECRET`], records each
/// entity it saw, and answers `{"status":"failed"}` with a given error for some entities.
#[derive(Default)]
struct Receiver {
    fail_with: HashMap<String, String>,
    seen: Mutex<HashSet<String>>,
    signed: AtomicUsize,
    refused: AtomicUsize,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let header = |n: &str| headers.get(n).and_then(|h| h.to_str().ok()).unwrap_or("");
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let execution_id = v["execution_id"].as_str().unwrap_or_default();
    let signed = neo_domain::signature::Signed {
        timestamp: header("x-neo-timestamp").parse().unwrap_or(0),
        direction: neo_domain::signature::Direction::Execution,
        execution_id,
        body: &body,
    };
    let now = jiff::Timestamp::now().as_second();
    let secret = SETUP_SECRET.as_bytes();
    if neo_domain::signature::verify(secret, signed, header("x-neo-signature"), now).is_err() {
        r.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
    }
    let entity = v["entity"]["id"].as_str().unwrap_or_default().to_owned();
    r.signed.fetch_add(1, Ordering::SeqCst);
    let answer = match r.fail_with.get(&entity) {
        Some(e) => json!({"status": "failed", "error": e}),
        None => json!({"status": "succeeded"}),
    };
    r.seen.lock().unwrap().insert(entity);
    (StatusCode::OK, axum::Json(answer))
}

async fn start_receiver(fail_with: HashMap<String, String>) -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver {
        fail_with,
        ..Default::default()
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (r, url)
}

/// Runs the binary with the words of `line` as its arguments (no test path has a space) to
/// completion, without blocking the runtime's threads.
async fn cli(line: &str) -> Output {
    assert!(!line.contains("  "), "{line}");
    tokio::process::Command::new(BIN)
        .args(line.split(' '))
        .env("NEO_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .env_remove("NEO_MASTER_KEY_FILE")
        .output()
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `line`, asserts that it succeeded; returns its stdout.
async fn ok(line: &str) -> String {
    let o = cli(line).await;
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{line}: {:?}; {out}; {err}", o.status);
    out
}

/// Runs `line`, asserts that it failed saying `needle` (any case); returns its stderr.
async fn refused(line: &str, needle: &str) -> String {
    let o = cli(line).await;
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(!o.status.success(), "{line} succeeded: {out}");
    let said = err.to_lowercase().contains(&needle.to_lowercase());
    assert!(said, "{line}: expected {needle:?} in: {err}");
    err
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The names of the files in directory `d`.
fn names(d: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(d).unwrap();
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn url_of(p: &Path) -> String {
    format!("sqlite://{}", p.display())
}

fn with_suffix(p: &Path, s: &str) -> PathBuf {
    PathBuf::from(format!("{}{s}", p.display()))
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Per status (and `total`): backfill `id`'s counter and how many of its items are in that
/// status, read from a database file directly (nothing running on it).
async fn counters_and_items(db: &Path, id: &str) -> Vec<(String, i64, i64)> {
    let opts = SqliteConnectOptions::new().filename(db).read_only(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let mut out = Vec::new();
    for s in "pending in_flight succeeded failed skipped cancelled total".split(' ') {
        let (counter, only) = match s {
            "total" => ("total_items".to_owned(), String::new()),
            s => (format!("{s}_count"), format!("AND status = '{s}'")),
        };
        let sql = format!(
            "SELECT {counter}, (SELECT COUNT(*) FROM backfill_items WHERE backfill_id = b.id \
             {only}) FROM backfills b WHERE id = ?"
        );
        let (counter, items) = sqlx::query_as(&sql)
            .bind(id)
            .fetch_one(&mut c)
            .await
            .unwrap();
        out.push((s.to_owned(), counter, items));
    }
    c.close().await.unwrap();
    out
}

/// Asserts that every counter equals its items; returns the succeeded ones.
fn exact(rows: &[(String, i64, i64)], file: &str) -> i64 {
    for (status, counter, items) in rows {
        assert_eq!(counter, items, "{status}: counter vs items in the {file}");
    }
    assert_eq!(rows[6].1, 50_000, "total items in the {file}");
    rows[2].1
}

/// The backfill's state and counters (its 50,000-id filter left out of failure messages).
fn brief(b: &Value) -> Value {
    let keys = "state pause_reason error total_items pending_count in_flight_count \
                succeeded_count failed_count skipped_count cancelled_count";
    let keys = keys.split_whitespace();
    keys.map(|k| (k.to_owned(), b[k].clone())).collect()
}

/// Polls backfill `id` until `f` holds (every 200 ms: its large filter makes each read
/// costly), failing after `limit` with its counters.
async fn wait_for(
    api: &Api,
    base: &str,
    id: &str,
    limit: Duration,
    f: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let b = api.get(base, &format!("/backfills/{id}")).await["data"].clone();
        if f(&b) {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {}",
            brief(&b)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_and_resumes() {
    const N: i64 = 50_000;
    let (run_dir, backup_dir, fresh_dir) = (tmp(), tmp(), tmp());
    let db_file = run_dir.path().join("neo.db");
    let db = url_of(&db_file);
    let (recv, url) = start_receiver(HashMap::new()).await;
    let first = serve(&db, &[]);
    let started = Instant::now();
    // 50,000 credits: more than a tenant's default monthly allowance.
    ok(&format!("keys create --tenant acme --database-url {db}")).await;
    ok(&format!(
        "tenants set-allowance --tenant acme --credits 1000000 --database-url {db}"
    ))
    .await;
    let (api, id) = setup(&db, &first, &url, N as usize, 100).await;
    let succeeded = |b: &Value| b["succeeded_count"].as_i64().unwrap_or(0);

    // Real progress first, far from the end.
    let before = wait_for(&api, &first.base, &id, secs(90), |b| succeeded(b) >= 3_000).await;
    let backup = backup_dir.path().join("backup.db");
    let at_start = succeeded(&before);
    let t = Instant::now();
    let said = ok(&format!(
        "backup --to {} --database-url {db}",
        backup.display()
    ))
    .await;
    let backup_took = t.elapsed();
    let at_end = succeeded(&wait_for(&api, &first.base, &id, secs(0), |_| true).await);
    assert!(at_end < N, "the backfill ended before the backup did");
    assert!(
        said.contains("backed up") && said.contains("50000 items"),
        "{said}"
    );
    let key_copy = with_suffix(&backup, ".master-key");
    assert!(
        said.contains(&format!("to {}", key_copy.display())) && said.contains("SECRET"),
        "says where the key went and that it is a secret: {said}"
    );
    let db_key = with_suffix(&db_file, ".master-key");
    assert_eq!(read(&key_copy), read(&db_key), "the key in use was copied");
    #[cfg(unix)]
    assert_eq!(mode(&key_copy), 0o600);
    let leftovers = names(backup_dir.path());
    assert_eq!(
        leftovers.len(),
        2,
        "the backup and its key only: {leftovers:?}"
    );
    // The backup did not stop the service: it keeps completing items.
    let after = wait_for(&api, &first.base, &id, secs(30), |b| {
        succeeded(b) >= at_end + 1_000
    })
    .await;
    drop(first); // SIGKILL: the original deployment is gone.

    // The copy is one commit: counters equal the items' statuses in the file itself.
    let in_backup = exact(&counters_and_items(&backup, &id).await, "backup");
    assert!(
        (at_start..=at_end).contains(&in_backup),
        "the backup holds {in_backup} succeeded (not between {at_start} and {at_end})"
    );
    let size = std::fs::metadata(&backup).unwrap().len();
    eprintln!(
        "backup: {size} bytes in {backup_took:?}; succeeded at its start {at_start}, in it \
         {in_backup}, at its end {at_end}, {} a little later",
        succeeded(&after)
    );

    // Restore into a fresh deployment.
    let restored_file = fresh_dir.path().join("neo.db");
    let restored = url_of(&restored_file);
    let said = ok(&format!(
        "restore --from {} --database-url {restored}",
        backup.display()
    ))
    .await;
    assert!(
        said.contains("restored") && said.contains("master key"),
        "{said}"
    );
    let restored_key = with_suffix(&restored_file, ".master-key");
    assert_eq!(
        read(&restored_key),
        read(&key_copy),
        "the key is where serve looks"
    );
    let restored_rows = counters_and_items(&restored_file, &id).await;
    assert_eq!(exact(&restored_rows, "restored file"), in_backup);

    let signed_before = recv.signed.load(Ordering::SeqCst);
    let t = Instant::now();
    let second = serve(&restored, &[]);
    // Right after the start: hold dispatch, let the dead process's leases lapse, and compare
    // every counter with the items.
    api.post(&second.base, &format!("/backfills/{id}/pause"), json!({}))
        .await;
    wait_for(&api, &second.base, &id, secs(30), |b| {
        b["state"] == "PAUSED" && b["in_flight_count"] == 0
    })
    .await;
    let paused = api.assert_counters_exact(&second.base, &id).await;
    assert!(succeeded(&paused) < N, "{}", brief(&paused));
    api.post(&second.base, &format!("/backfills/{id}/resume"), json!({}))
        .await;
    let done = wait_for(&api, &second.base, &id, secs(120), |b| {
        matches!(
            b["state"].as_str(),
            Some("COMPLETED" | "FAILED" | "CANCELLED")
        )
    })
    .await;
    let resumed_in = t.elapsed();
    assert_eq!(done["state"], "COMPLETED", "{}", brief(&done));
    let done = brief(&api.assert_counters_exact(&second.base, &id).await);
    assert_eq!(done["succeeded_count"].as_i64(), Some(N), "{done}");
    assert_eq!(done["failed_count"], 0, "{done}");
    assert_eq!(done["total_items"].as_i64(), Some(N), "{done}");

    // Every entity reached the receiver, before or after the restore, and every delivery of
    // the restored service was signed with the workflow's secret: its master key came along.
    assert_eq!(recv.seen.lock().unwrap().len(), N as usize);
    assert_eq!(
        recv.refused.load(Ordering::SeqCst),
        0,
        "unsigned deliveries"
    );
    let signed_after = recv.signed.load(Ordering::SeqCst) - signed_before;
    assert!(
        signed_after as i64 >= N - in_backup,
        "{signed_after} signed"
    );
    eprintln!(
        "restored service: {signed_after} signed deliveries, resumed to COMPLETED in \
         {resumed_in:?}; whole test {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_refuses_to_overwrite_and_to_copy_what_is_not_there() {
    let dir = tmp();
    let at = |n: &str| dir.path().join(n);
    let db = url_of(&at("neo.db"));
    ok(&format!("migrate --database-url {db}")).await;

    std::fs::write(at("existing.db"), "keep me").unwrap();
    refused(
        &format!(
            "backup --to {} --database-url {db}",
            at("existing.db").display()
        ),
        "existing.db exists: backup never overwrites a file",
    )
    .await;
    assert_eq!(read(&at("existing.db")), b"keep me");

    // A key copy already there is not overwritten either, and no backup is left behind.
    std::fs::write(at("fresh.db.master-key"), "old key").unwrap();
    let line = format!(
        "backup --to {} --database-url {db}",
        at("fresh.db").display()
    );
    refused(&line, "fresh.db.master-key exists").await;
    assert!(!at("fresh.db").exists());

    // No database: nothing is created. In memory: no file to copy.
    let other = at("other.db").display().to_string();
    let missing = url_of(&at("missing.db"));
    let line = format!("backup --to {other} --database-url {missing}");
    refused(&line, "there is no database file").await;
    assert!(!at("missing.db").exists() && !at("other.db").exists());
    let line = format!("backup --to {other} --database-url sqlite::memory:");
    refused(&line, "in-memory database").await;

    // The happy path leaves the backup and its key, nothing else (no -wal, no temporary).
    let said = ok(&format!(
        "backup --to {} --database-url {db}",
        at("b.db").display()
    ))
    .await;
    assert!(
        said.contains("schema migration") && said.contains("0 backfills"),
        "{said}"
    );
    let left: HashSet<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("b.db") || n.starts_with(".b.db"))
        .collect();
    assert_eq!(
        left,
        HashSet::from(["b.db".into(), "b.db.master-key".into()])
    );
}

/// Runs `sql` on the SQLite file `path` (created if need be).
async fn sql(path: &Path, sql: &str) {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    sqlx::query(sql).execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_files_that_are_not_a_neo_backup_of_this_release() {
    let dir = tmp();
    let at = |n: &str| dir.path().join(n);
    let db = url_of(&at("neo.db"));
    ok(&format!("migrate --database-url {db}")).await;
    let backup = at("b.db");
    ok(&format!(
        "backup --to {} --database-url {db}",
        backup.display()
    ))
    .await;
    std::fs::create_dir(at("target")).unwrap();
    let target = url_of(&at("target").join("neo.db"));
    let restore = |from: &str| {
        format!(
            "restore --from {} --database-url {target}",
            at(from).display()
        )
    };

    std::fs::write(at("junk.db"), vec![0x5a; 8192]).unwrap();
    let not_sqlite = "junk.db cannot be restored: the file is not a readable SQLite database";
    refused(&restore("junk.db"), not_sqlite).await;

    sql(
        &at("foreign.db"),
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY)",
    )
    .await;
    let not_neo = "a SQLite database but not a neo-backfill one";
    refused(&restore("foreign.db"), not_neo).await;

    // A backup from a newer release: the words of the migration refusal.
    std::fs::copy(&backup, at("newer.db")).unwrap();
    sql(
        &at("newer.db"),
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, \
         execution_time) VALUES (9999, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)",
    )
    .await;
    let e = refused(
        &restore("newer.db"),
        "upgraded by a newer release of neo-backfill",
    )
    .await;
    assert!(e.contains("schema migration 9999"), "{e}");

    refused(&restore("nothing.db"), "there is no backup file").await;
    // None of them left anything in the target's directory.
    assert!(names(&at("target")).is_empty());

    // PostgreSQL: pointers to its own tools, and no password in the words.
    let pg = "postgres://neo:hunter2@127.0.0.1:5432/neo";
    let b = backup.display();
    for (line, tool) in [
        (format!("backup --to {b}.pg --database-url {pg}"), "pg_dump"),
        (
            format!("restore --from {b} --database-url {pg}"),
            "pg_restore",
        ),
    ] {
        let e = refused(&line, tool).await;
        assert!(e.contains("master key") && !e.contains("hunter2"), "{e}");
    }
}

/// The tenants' names in the SQLite file `path`.
async fn tenants(path: &Path) -> Vec<String> {
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let names = sqlx::query_scalar("SELECT name FROM tenants ORDER BY name")
        .fetch_all(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_running_or_existing_target_and_keeps_what_it_replaces() {
    let dir = tmp();
    let at = |n: &str| dir.path().join(n);
    let source = url_of(&at("source.db"));
    // Opened with its key (generated beside it), so the backup comes with a key file.
    ok(&format!("migrate --database-url {source}")).await;
    ok(&format!(
        "keys create --tenant from-backup --database-url {source}"
    ))
    .await;
    let backup = at("b.db");
    ok(&format!(
        "backup --to {} --database-url {source}",
        backup.display()
    ))
    .await;

    // A deployment with its own database and key, running.
    std::fs::create_dir(at("live")).unwrap();
    let target = at("live").join("neo.db");
    let (target_url, target_key) = (url_of(&target), with_suffix(&target, ".master-key"));
    let mut server = serve(&target_url, &[]);
    // Written while serve holds the file open: it stays in the -wal until a checkpoint.
    ok(&format!(
        "keys create --tenant only-live --database-url {target_url}"
    ))
    .await;

    let restore = format!(
        "restore --from {} --database-url {target_url}",
        backup.display()
    );
    refused(
        &restore,
        "exists: restore replaces a database only with --force",
    )
    .await;
    // Running: refused even with --force, and nothing is touched (not the key either, which
    // --force would replace: the backup's is another).
    let key_before = read(&target_key);
    let t = Instant::now();
    refused(&format!("{restore} --force"), "stop serve and worker first").await;
    eprintln!("the running target was refused in {:?}", t.elapsed());
    let running = server.child.as_mut().unwrap().try_wait().unwrap().is_none();
    assert!(running, "serve still runs");
    let left = names(&at("live"));
    let untouched = left
        .iter()
        .all(|n| !n.contains("before-restore") && !n.ends_with(".tmp"));
    assert!(untouched, "nothing moved or left: {left:?}");
    assert_eq!(read(&target_key), key_before);
    drop(server); // SIGKILL: the tenant "only-live" is still in the -wal.

    // A different key in place (and no database): refused without --force.
    std::fs::create_dir(at("moved")).unwrap();
    let fresh = at("moved").join("neo.db");
    std::fs::copy(&target_key, with_suffix(&fresh, ".master-key")).unwrap();
    let line = format!(
        "restore --from {} --database-url {}",
        backup.display(),
        url_of(&fresh)
    );
    refused(&line, "restore replaces a key file only with --force").await;
    assert!(!fresh.exists());

    // With --force: the old database and key are kept aside, whole.
    let said = ok(&format!("{restore} --force")).await;
    assert!(said.contains("kept the previous file as"), "{said}");
    let after = names(&at("live"));
    let aside = |prefix: &str| after.iter().find(|n| n.starts_with(prefix)).cloned();
    let aside_db = aside("neo.db.before-restore-").expect("the old database kept aside");
    assert!(
        aside("neo.db.master-key.before-restore-").is_some(),
        "{after:?}"
    );
    let stale = |n: &String| n.ends_with("-wal") || n.ends_with("-shm") || n.ends_with(".tmp");
    assert!(!after.iter().any(stale), "{after:?}");
    assert_eq!(
        tenants(&at("live").join(aside_db)).await,
        ["only-live"],
        "what sat in the old -wal is in the file kept aside"
    );
    assert_eq!(tenants(&target).await, ["from-backup"]);
    assert_eq!(
        read(&target_key),
        read(&with_suffix(&backup, ".master-key"))
    );
    #[cfg(unix)]
    assert_eq!(mode(&target_key), 0o600);
    // And serve opens the restored database with the restored key.
    drop(serve(&target_url, &[]));
}

/// A small RFC 4180 reader (quoted fields, doubled quotes, CRLF records).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "ends a record"
    );
    rows
}

const HEADER: &str = "entity_id,entity_number,status,attempts,error,execution_id,updated_at,\
                      next_attempt_at,summary";

/// A completed backfill over `ids` on the service at `base`, its workflow signing with
/// [`SETUP_SECRET`] and posting to `url`; returns the API and the backfill id.
async fn completed_backfill(db: &str, base: &str, url: &str, ids: &[&str]) -> (Api, String) {
    let api = Api {
        http: reqwest::Client::new(),
        key: common::create_key(db),
    };
    let executor = json!({"type": "webhook", "url": url, "secret": SETUP_SECRET});
    let wf = api
        .post(
            base,
            "/agents",
            json!({"name": "Export", "executor": executor}),
        )
        .await["data"]["id"]
        .clone();
    let body = json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}});
    let b = api.post(base, "/backfills", body).await;
    let id = b["data"]["backfill"]["id"].as_str().unwrap().to_owned();
    let done = wait_for(&api, base, &id, secs(60), |b| {
        matches!(
            b["state"].as_str(),
            Some("COMPLETED" | "FAILED" | "CANCELLED")
        )
    })
    .await;
    assert_eq!(done["state"], "COMPLETED", "{done}");
    (api, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_every_item_and_quotes_hostile_values() {
    let hostile_error = "=cmd|' /C calc'!A0, \"quoted\"\nsecond line";
    let ids = [
        "T1",
        "=1+2",
        "-5,3",
        "@SUM(A1)",
        "say \"hi\"",
        "+33 1 23",
        "T7",
    ];
    let fail_with = HashMap::from([("=1+2".to_owned(), hostile_error.to_owned())]);
    let dir = tmp();
    let db = url_of(&dir.path().join("neo.db"));
    let (_recv, url) = start_receiver(fail_with).await;
    let server = serve(&db, &[]);
    let (api, id) = completed_backfill(&db, &server.base, &url, &ids).await;
    let items = api.items(&server.base, &id).await;
    assert_eq!(items.len(), ids.len());
    let failed = items.iter().find(|i| i["entity_id"] == "=1+2").unwrap();
    assert_eq!(failed["status"], "failed", "{failed}");
    let stored_error = failed["error"].as_str().unwrap().to_owned();
    assert!(
        stored_error.contains("\"quoted\"\nsecond"),
        "{stored_error}"
    );

    // CSV on stdout: a header, one record per item in snapshot order, each value as stored,
    // behind a `'` when a spreadsheet would read it as a formula.
    let export = format!("export --backfill {id} --database-url {db}");
    let o = cli(&export).await;
    let (csv, err) = (text(&o.stdout), text(&o.stderr));
    assert!(
        o.status.success() && err.contains("exported 7 items"),
        "{err}"
    );
    let rows = parse_csv(&csv);
    assert_eq!(rows[0].join(","), HEADER);
    assert_eq!(rows.len(), ids.len() + 1, "{csv}");
    let guard = |v: &str| match v.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{v}"),
        _ => v.to_owned(),
    };
    for (row, item) in rows[1..].iter().zip(&items) {
        let value = |k: &str| item[k].as_str().unwrap_or_default().to_owned();
        assert_eq!(row[0], guard(&value("entity_id")));
        assert_eq!(row[2], value("status"));
        assert_eq!(row[3], item["attempts"].to_string());
        assert_eq!(row[4], guard(&value("error")));
        assert_eq!(row[5], value("execution_id"));
        assert_eq!(row[6], value("updated_at"));
    }
    let hostile_row = rows.iter().find(|r| r[0] == "'=1+2").unwrap();
    assert_eq!(hostile_row[4], format!("'{stored_error}"));
    // The raw text: quoted, quotes doubled, the line break inside the quotes.
    for raw in [
        "\"'-5,3\"".to_owned(),
        "\"say \"\"hi\"\"\"".to_owned(),
        "'@SUM(A1),".to_owned(),
        "'+33 1 23,".to_owned(),
        format!("\"'{}\"", stored_error.replace('"', "\"\"")),
    ] {
        assert!(csv.contains(&raw), "{raw} in {csv}");
    }

    // JSON lines: the values exactly as stored.
    let jsonl = ok(&format!("{export} --format jsonl")).await;
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), ids.len());
    for (line, item) in lines.iter().zip(&items) {
        for k in [
            "entity_id",
            "status",
            "attempts",
            "error",
            "execution_id",
            "updated_at",
        ] {
            assert_eq!(line[k], item[k], "{k}: {line} vs {item}");
        }
    }

    // To a file: the same bytes; an existing file is not overwritten.
    let file = dir.path().join("items.csv");
    ok(&format!("{export} --out {}", file.display())).await;
    assert_eq!(read(&file), csv.as_bytes());
    refused(
        &format!("{export} --out {}", file.display()),
        "items.csv exists",
    )
    .await;

    // Unknown backfill; missing database (not created).
    let line = format!("export --backfill bf_nope --database-url {db}");
    refused(&line, "there is no backfill \"bf_nope\"").await;
    let missing = dir.path().join("missing.db");
    let line = format!("export --backfill {id} --database-url {}", url_of(&missing));
    refused(&line, "there is no database file").await;
    assert!(!missing.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_reads_postgres_too() {
    let Some(pg) = SharedDb::create() else { return };
    let (_recv, url) = start_receiver(HashMap::new()).await;
    let server = serve(&pg.url, &[]);
    let (api, id) = setup(&pg.url, &server, &url, 30, 10).await;
    wait_for(&api, &server.base, &id, secs(60), |b| {
        b["state"] == "COMPLETED"
    })
    .await;
    let items = api.items(&server.base, &id).await;

    let export = format!("export --backfill {id} --database-url {}", pg.url);
    let jsonl = ok(&format!("{export} --format jsonl")).await;
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    for (line, item) in lines.iter().zip(&items) {
        assert_eq!(line["entity_id"], item["entity_id"]);
        assert_eq!(line["status"], "succeeded");
        assert_eq!(line["execution_id"], item["execution_id"]);
    }
    let rows = parse_csv(&ok(&export).await);
    assert_eq!((rows.len(), rows[1][0].as_str()), (31, "T00000"));
    let line = format!("export --backfill bf_nope --database-url {}", pg.url);
    refused(&line, "there is no backfill \"bf_nope\"").await;
    // Backup and restore point at PostgreSQL's own tools.
    let line = format!("backup --to /nonexistent/x.db --database-url {}", pg.url);
    refused(&line, "pg_dump").await;
    let line = format!("restore --from /nonexistent/x.db --database-url {}", pg.url);
    refused(&line, "pg_restore").await;
}
