//! `neo-backfill demo`, the README's first command, run headless: it prints a working API key
//! and curl commands, shows progress, the backfill over the simulated ConnectWise advances to
//! COMPLETED with some failures, and the service keeps serving until SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_neo-backfill");

/// Lines of a child's stream, read on a thread.
fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one satisfies `f`, returning every line read.
fn until(rx: &mpsc::Receiver<String>, what: &str, f: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {what}; output so far: {seen:#?}"));
        let done = f(&l);
        seen.push(l);
        if done {
            return seen;
        }
    }
}

fn field<'a>(lines: &'a [String], label: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} line in {lines:#?}"))
        .trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_a_working_key_and_the_backfill_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env(
            "NEO_DEMO_DATABASE_URL",
            format!("sqlite://{}", tmp.path().join("demo.db").display()),
        )
        .env("NEO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());

    let head = until(&out, "curl commands", |l| l.trim().starts_with("curl"));
    let api = field(&head, "API:").to_owned();
    let key = field(&head, "API key:").to_owned();
    assert!(key.starts_with("neo_"), "{key}");
    // The first printed curl command, run as printed (its URL and key).
    let curl = head.last().unwrap();
    let url = curl.split_whitespace().last().unwrap();
    assert!(curl.contains(&format!("Bearer {key}")), "{curl}");
    let http = reqwest::Client::new();
    let r = http.get(url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert!(b["data"]["target_workflow_id"].as_i64().is_some(), "{b}");
    let unauthorized = http.get(url).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);

    // Progress lines on stderr advance until the backfill completes.
    let progress = until(&err, "final progress line", |l| l.ends_with("COMPLETED"));
    let done: Vec<i64> = progress
        .iter()
        .filter_map(|l| l.split_once("] ")?.1.split('/').next()?.parse().ok())
        .collect();
    assert!(done.len() >= 2, "{progress:#?}");
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    assert!(done.first() < done.last(), "no progress: {done:?}");

    let tail = until(&out, "the completion summary", |l| {
        l.starts_with("Serving until Ctrl-C")
    });
    assert!(tail.iter().any(|l| l.contains("is COMPLETED")), "{tail:#?}");
    let b: Value = http
        .get(url)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b = &b["data"];
    assert_eq!(b["state"], "COMPLETED");
    let (ok, failed) = (
        b["succeeded_count"].as_i64().unwrap(),
        b["failed_count"].as_i64().unwrap(),
    );
    assert_eq!(ok + failed, 300, "{b}");
    assert!(
        failed > 0 && failed < 100,
        "the simulated executor fails ~10%: {b}"
    );

    // Still serving; SIGTERM stops it cleanly.
    let list: Value = http
        .get(format!("{api}/backfills"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
