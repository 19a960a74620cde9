//! Fault injection on the SQLite path with the real binary: a second process holding the
//! database's write lock past the busy timeout, and a disk that fills up mid-run. After each:
//! the API answered clearly (a read is served, a write succeeds after the wait or is a 503
//! `database_unavailable` in the error envelope, never a 500), nothing is corrupted
//! (`PRAGMA integrity_check`), no item is lost and every counter equals the items' statuses.
//!
//! The other fault scenarios live next to what they exercise: PSA storms during enumeration in
//! `crates/psa/tests/enumeration.rs`, the webhook executor down for a window and the circuit
//! breaker in `crates/orchestrator/tests/orchestrator.rs`, `kill -9` in `crash.rs`, a
//! PostgreSQL restart in `postgres.rs`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{receiver, serve, serve_with, setup, Api, Log};
use serde_json::{json, Value};

/// `PRAGMA integrity_check` of the file, from another process.
fn integrity_check(path: &Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A second process that takes the database's write lock (`BEGIN IMMEDIATE`) and holds it
/// for `hold`; returns once it holds it.
fn hold_write_lock(path: &Path, hold: Duration) -> Child {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep(float(sys.argv[2]))\n\
             c.execute('ROLLBACK')\n",
        ])
        .arg(path)
        .arg(hold.as_secs_f64().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

/// Every entity delivered, each redelivery with the same `Idempotency-Key`; returns the
/// number of redeliveries.
fn check_deliveries(log: &Log, n: usize) -> usize {
    let deliveries = log.deliveries.lock().unwrap().clone();
    assert_eq!(deliveries.len(), n, "every item executed");
    deliveries
        .iter()
        .map(|(entity, keys)| {
            assert!(
                keys.iter().all(|k| k == &keys[0]),
                "{entity} was delivered with different keys: {keys:?}"
            );
            keys.len() - 1
        })
        .sum()
}

/// Waits for the backfill to complete with all `n` items succeeded, checks its counters against
/// its items and every delivery's key; returns the number of redeliveries.
async fn completes_exactly(api: &Api, base: &str, id: &str, log: &Log, n: usize) -> usize {
    let done = api
        .wait_backfill(base, id, Duration::from_secs(120), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(
        (
            done["succeeded_count"].as_i64(),
            done["failed_count"].as_i64()
        ),
        (Some(n as i64), Some(0))
    );
    api.assert_counters_exact(base, id).await;
    check_deliveries(log, n)
}

async fn wait_deliveries(log: &Log, n: usize) {
    let start = Instant::now();
    while log.total.load(Ordering::SeqCst) < n {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// POSTs a new workflow; returns the status, the `Retry-After` header and the body.
async fn create_workflow(
    api: &Api,
    base: &str,
    name: &str,
    description: &str,
) -> (u16, Option<String>, Value) {
    let r = api
        .http
        .post(format!("{base}/agents"))
        .bearer_auth(&api.key)
        .json(&json!({"name": name, "description": description, "executor": {"type": "simulated"}}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, r.json().await.unwrap())
}

/// A 503 in the error envelope: `database_unavailable`, a readable message containing
/// `says`, a request id and `Retry-After`.
fn assert_database_unavailable(
    (status, retry_after, body): &(u16, Option<String>, Value),
    says: &str,
) {
    assert_eq!(*status, 503, "{body}");
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
    assert!(
        !message.contains("sqlx") && !message.contains("code:"),
        "{message}"
    );
    assert!(body["meta"]["request_id"].is_string(), "{body}");
    assert!(retry_after.is_some(), "503 without Retry-After");
}

/// A second process takes the write lock of the service's SQLite file and holds it past the
/// 10 s busy timeout, twice, while a backfill runs and API requests arrive. Reads are served
/// during the lock; a write either waits and succeeds or is a 503 `database_unavailable`
/// (and then was not applied); the orchestrator retries what it could not commit, and the
/// backfill completes with counters exact and no item lost or run under two keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_holding_the_sqlite_lock_delays_the_service_but_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("neo.db");
    let db = format!("sqlite://{}", path.display());
    let (log, url) = receiver(5).await;
    let server = serve(&db, &[]);
    let (api, id) = setup(&db, &server, &url, 1_500, 10).await;
    wait_deliveries(&log, 200).await;

    let mut created = 0;
    let mut answers = Vec::new();
    for (round, hold) in [(1, 12), (2, 22)] {
        let mut holder = hold_write_lock(&path, Duration::from_secs(hold));
        let locked = Instant::now();
        // A read does not wait for the writer.
        let b = api.get(&server.base, &format!("/backfills/{id}")).await;
        assert_eq!(b["data"]["state"], "RUNNING", "{b}");
        assert!(
            locked.elapsed() < Duration::from_secs(5),
            "a read waited for the lock"
        );
        // A write waits for the lock, then either succeeds or says the database is busy.
        let answer = create_workflow(&api, &server.base, &format!("Busy {round}"), "").await;
        match answer.0 {
            201 => created += 1,
            _ => assert_database_unavailable(&answer, "the database is busy"),
        }
        answers.push(format!(
            "hold {hold} s: HTTP {} after {:?}",
            answer.0,
            locked.elapsed()
        ));
        assert!(tokio::task::spawn_blocking(move || holder.wait().unwrap())
            .await
            .unwrap()
            .success());
    }
    eprintln!("writes during the lock: {answers:?}");

    let duplicates = completes_exactly(&api, &server.base, &id, &log, 1_500).await;
    eprintln!("redelivered after expired leases: {duplicates}");
    // A write that was refused was not applied: only the ones that answered 201 exist.
    let agents = api.get(&server.base, "/agents?page_size=200").await;
    let busy = agents["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"].as_str().unwrap().starts_with("Busy "))
        .count();
    assert_eq!(busy, created);
    assert!(
        server.log_lines("panicked").is_empty(),
        "{:?}",
        server.log_lines("panicked")
    );
    drop(server);
    assert_eq!(integrity_check(&path), "ok");
}

/// Limits the files the child writes to `bytes` (`RLIMIT_FSIZE`) with `SIGXFSZ` ignored, so
/// a write past the limit fails with `EFBIG` instead of killing the process: a full disk.
fn limit_file_size(cmd: &mut Command, bytes: u64) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The disk fills up mid-run (every file the service writes is limited to 2 MiB, so its
/// SQLite write-ahead log cannot grow): the service keeps running and says so in its log, reads
/// are still served, a write that does not fit is a 503 `database_unavailable` that names the
/// cause (and is not applied), nothing is corrupted, and once space is back (a restart without the limit) the backfill completes
/// with counters exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_corrupts_nothing_and_the_run_completes_once_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("neo.db");
    let db = format!("sqlite://{}", path.display());
    let (log, url) = receiver(5).await;
    let mut full = serve_with(&db, &[], |cmd| limit_file_size(cmd, 2 << 20));
    let (api, id) = setup(&db, &full, &url, 3_000, 20).await;

    // The service hits the limit and says why, in its log.
    let start = Instant::now();
    let line = loop {
        if let Some(l) = full.log_lines("disk full").first() {
            break l.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no write failed; delivered {}; log: {:?}",
            log.total.load(Ordering::SeqCst),
            full.log_lines("\"level\":\"")
                .iter()
                .filter(|l| !l.contains("\"INFO\""))
                .take(20)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let entry: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["level"], "ERROR", "{line}");
    eprintln!("the log says: {line}");
    // It keeps serving: reads answer, writes are refused clearly, nothing panicked.
    let b = api.get(&full.base, &format!("/backfills/{id}")).await["data"].clone();
    assert_eq!(b["state"], "RUNNING", "{b}");
    assert!(b["succeeded_count"].as_i64().unwrap() < 3_000, "{b}");
    // A write that does not fit is refused; a small one may still fit in what is left.
    let big = "x".repeat(5 << 19);
    let answer = create_workflow(&api, &full.base, "While full", &big).await;
    assert_database_unavailable(&answer, "disk full");
    let small = create_workflow(&api, &full.base, "Small while full", "").await;
    if small.0 != 201 {
        assert_database_unavailable(&small, "disk full");
    }
    eprintln!("a small write while full: HTTP {}", small.0);
    assert!(
        full.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "serve exited"
    );
    assert!(full.log_lines("panicked").is_empty());
    // The failed commit did not wedge the writer connection: the next attempt gets a fresh one.
    let start = Instant::now();
    while full
        .log_lines("replacing the SQLite writer connection")
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no retry after the failed commit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(full.log_lines("non-zero transaction depth").is_empty());
    let delivered = log.total.load(Ordering::SeqCst);
    drop(full); // the operator stops it to free space
    assert_eq!(integrity_check(&path), "ok");

    // Space is back: restart without the limit.
    let server = serve(&db, &[]);
    let duplicates = completes_exactly(&api, &server.base, &id, &log, 3_000).await;
    eprintln!("delivered {delivered} before the disk filled; redelivered {duplicates} after");
    let agents = api.get(&server.base, "/agents").await;
    assert!(
        agents["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["name"] != "While full"),
        "the refused write was not applied"
    );
    drop(server);
    assert_eq!(integrity_check(&path), "ok");
}
