//! `neo-backfill demo`, the README's first command, run headless: it prints the dashboard, a
//! working API key and an `export` line, shows progress until the backfill over the simulated
//! ConnectWise completes with failures of both kinds, and then every command it prints works as
//! printed: rerun-failed recovers exactly the transient failures (the permanent ones fail again,
//! and the child is not paused), the slow backfill pauses and resumes. The README's API tour
//! runs as written after the export line, and the service keeps serving until SIGTERM.
//!
//! Its safe-bulk-changes scenario is checked against the service and the simulator's own write
//! log: the shadow run's printed totals are the API's, nothing reached the PSA before the
//! apply, and the revert skipped exactly the ticket the technician edited.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use neo_orchestrator::executor::{simulated_kind, SimulatedKind};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_neo-backfill");

/// The demo process, killed when the test ends early (a failed assertion) so that it does not
/// outlive the test.
struct KillOnDrop(std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // After a clean exit this finds no process and does nothing.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    until_within(rx, what, Duration::from_secs(90), f)
}

/// [`until`], waiting at most `patience` in all.
fn until_within(
    rx: &mpsc::Receiver<String>,
    what: &str,
    patience: Duration,
    f: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + patience;
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

/// The variables of the last `export A=1 B=2` line among `lines`.
fn export_line(lines: &[String]) -> HashMap<String, String> {
    let line = lines
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix("export "))
        .unwrap_or_else(|| panic!("no export line in {lines:#?}"));
    line.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{line}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The printed commands among `lines`, in order.
fn commands(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("curl "))
        .map(str::to_owned)
        .collect()
}

/// Runs `script` with `bash -e -o pipefail` and the variables of an export line, as a user who
/// pasted it would; panics with its output unless it succeeds. Its stdout.
fn sh(env: &HashMap<String, String>, script: &str) -> String {
    let out = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", script])
        .envs(env)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script}\nfailed: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/public-api{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// Every item of backfill `id` with `status`.
    async fn items(&self, id: &str, status: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .get(&format!(
                    "/backfills/{id}/items?status={status}&page_size=200{cursor}"
                ))
                .await;
            all.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["meta"]["pagination"]["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return all,
            }
        }
    }

    /// Backfill `id` once it is no longer RUNNING.
    async fn settled(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let b = self.get(&format!("/backfills/{id}")).await["data"].clone();
            if b["state"] != "RUNNING" || Instant::now() > deadline {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn entity_ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["entity_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The shell block after `<!-- tour -->` in README.md.
fn readme_tour() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let after = readme
        .split_once("<!-- tour -->")
        .expect("README.md marks its API tour with <!-- tour -->")
        .1;
    let block = after
        .split_once("```sh\n")
        .expect("a ```sh block after <!-- tour -->")
        .1;
    block
        .split_once("\n```")
        .expect("the block's end")
        .0
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tells_its_story_and_every_printed_command_works() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["demo", "--listen", "127.0.0.1:0"])
            .env(
                "NEO_DEMO_DATABASE_URL",
                format!("sqlite://{}", tmp.path().join("demo.db").display()),
            )
            .env("NEO_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());

    // The dashboard first, the key, then an export line and a command that uses it.
    let head = until(&out, "curl commands", |l| l.trim().starts_with("curl"));
    let dashboard = field(&head, "Dashboard:");
    assert!(
        head.iter().position(|l| l.contains("Dashboard:"))
            < head.iter().position(|l| l.contains("API key:")),
        "{head:#?}"
    );
    let key = field(&head, "API key:").to_owned();
    assert!(key.starts_with("neo_"), "{key}");
    let env = export_line(&head);
    let neo = env["NEO"].clone();
    assert!(neo.starts_with("http://127.0.0.1:"), "{env:?}");
    assert!(!neo.ends_with(":8080"), "--listen 127.0.0.1:0 picks a port");
    assert!(dashboard.starts_with(&format!("{neo}/ ")), "{dashboard}");
    assert!(
        dashboard.contains("sign in with the API key"),
        "{dashboard}"
    );
    assert_eq!(env["NEO_KEY"], key);
    let id = env["ID"].clone();
    assert!(id.starts_with("bf_"), "{env:?}");
    // The printed command, run as printed.
    let first = commands(&head);
    assert_eq!(first.len(), 1, "{head:#?}");
    assert!(first[0].contains("$NEO_KEY") && first[0].contains("$ID"));
    let b = json(&sh(&env, &first[0]));
    assert_eq!(b["data"]["id"], id.as_str(), "{b}");
    let wf = b["data"]["target_workflow_id"]
        .as_i64()
        .expect("a workflow");
    let http = reqwest::Client::new();
    let unauthorized = http
        .get(format!("{neo}/public-api/backfills/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let page = http.get(format!("{neo}/")).send().await.unwrap();
    assert!(page.status().is_success(), "the dashboard: {page:?}");

    // Progress lines on stderr advance until the backfill completes.
    let progress = until(&err, "final progress line", |l| l.ends_with("COMPLETED"));
    let done: Vec<i64> = progress
        .iter()
        .filter_map(|l| l.split_once("] ")?.1.split('/').next()?.parse().ok())
        .collect();
    assert!(done.len() >= 2, "{progress:#?}");
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    assert!(done.first() < done.last(), "no progress: {done:?}");

    // The other entity types and the safe-bulk-changes scenario (three runs of 200 tickets)
    // come before the next steps.
    let tail = until_within(&out, "the next steps", Duration::from_secs(240), |l| {
        l.contains("Serving until Ctrl-C")
    });
    assert!(tail.iter().any(|l| l.contains("is COMPLETED")), "{tail:#?}");
    let api = Api {
        http: http.clone(),
        base: neo.clone(),
        key: key.clone(),
    };
    // Beyond tickets: a company backfill and a configuration backfill ran to the end, over
    // exactly what their filters match (the preflight's count), named by their own fields.
    let beyond: Vec<&String> = tail
        .iter()
        .filter(|l| l.contains("ran \"Demo company") || l.contains("ran \"Demo warranty"))
        .collect();
    assert_eq!(beyond.len(), 2, "{tail:#?}");
    for (line, entity, filter) in [
        (
            beyond[0],
            "company",
            json(
                r#"{"conditions": {"combinator": "and", "rules": [
            {"field": "deletedFlag", "operator": "=", "value": false}]}}"#,
            ),
        ),
        (
            beyond[1],
            "configuration",
            json(
                r#"{"conditions": {"combinator": "and", "rules": [
            {"field": "activeFlag", "operator": "=", "value": true},
            {"field": "warrantyExpirationDate", "operator": "<",
             "value": {"$datetime": "2027-07-01T00:00:00Z"}}]}}"#,
            ),
        ),
    ] {
        let bid = line
            .split_whitespace()
            .nth(1)
            .expect("Backfill <id> ran …")
            .to_owned();
        let b = api.get(&format!("/backfills/{bid}")).await["data"].clone();
        assert_eq!(b["state"], "COMPLETED", "{line}: {b}");
        let verified = http
            .post(format!("{neo}/public-api/backfills/verify"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"entity_type": entity, "filter_spec": filter}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let n = verified["data"]["matching_entities"].as_i64().unwrap();
        assert!(n >= 5, "{entity}: {verified}");
        assert_eq!(b["total_items"].as_i64(), Some(n), "{line}: {b}");
        assert_eq!(b["succeeded_count"].as_i64(), Some(n), "{line}: {b}");
        assert!(
            line.ends_with(&format!("COMPLETED, {n} succeeded.")),
            "{line}"
        );
        let items = api.items(&bid, "succeeded").await;
        assert!(
            items
                .iter()
                .all(|i| i["summary"].as_str().is_some_and(|s| !s.is_empty())),
            "{entity} items carry their names: {items:?}"
        );
    }
    let parent = api.get(&format!("/backfills/{id}")).await["data"].clone();
    assert_eq!(parent["state"], "COMPLETED");
    let (ok, failed) = (
        parent["succeeded_count"].as_i64().unwrap(),
        parent["failed_count"].as_i64().unwrap(),
    );
    assert_eq!(ok + failed, 300, "{parent}");

    // Which of the parent's failures are transient, by the workflow's own executor settings.
    let exec = api.get(&format!("/agents/{wf}")).await["data"]["executor"].clone();
    let rate = |k: &str| exec[k].as_f64().unwrap_or(0.0);
    let (fr, tr, seed) = (
        rate("failure_rate"),
        rate("transient_rate"),
        exec["seed"].as_u64().unwrap_or(0),
    );
    assert!(fr > 0.0 && tr > 0.0, "the demo uses both rates: {exec}");
    let parent_failed = entity_ids(&api.items(&id, "failed").await);
    assert_eq!(parent_failed.len() as i64, failed);
    let kind = |e: &String| simulated_kind(seed, e, fr, tr);
    let transient: BTreeSet<String> = parent_failed
        .iter()
        .filter(|e| kind(e) == SimulatedKind::Transient)
        .cloned()
        .collect();
    let permanent: BTreeSet<String> = parent_failed
        .iter()
        .filter(|e| kind(e) == SimulatedKind::Permanent)
        .cloned()
        .collect();
    assert_eq!(
        transient.len() + permanent.len(),
        parent_failed.len(),
        "every failure is one of the two kinds"
    );
    assert!(!transient.is_empty() && !permanent.is_empty(), "{parent}");
    let summary = format!(
        "{} failed on a record locked by another user (they succeed when run again), {} fail every time.",
        transient.len(),
        permanent.len()
    );
    assert!(
        tail.iter().any(|l| l.trim() == summary),
        "{summary}\n{tail:#?}"
    );
    assert!(
        permanent.len() < 25 && !tail.iter().any(|l| l.contains("circuit breaker")),
        "the demo's rerun stays under the circuit breaker (25 in a row): {tail:#?}"
    );

    // The next steps, run as printed after the (new) export line.
    let env = export_line(&tail);
    assert_eq!(
        (&env["NEO"], &env["NEO_KEY"], &env["ID"]),
        (&neo, &key, &id)
    );
    let slow = env["SLOW"].clone();
    let steps = commands(&tail);
    assert_eq!(steps.len(), 5, "{tail:#?}");
    assert!(steps
        .iter()
        .all(|c| c.contains("$NEO/") && !c.contains(&key)));
    let outputs: Vec<Value> = steps.iter().map(|c| json(&sh(&env, c))).collect();
    // 1. The failed items, each with its error.
    assert!(steps[0].contains("items?status=failed"), "{}", steps[0]);
    assert_eq!(
        entity_ids(outputs[0]["data"].as_array().unwrap()),
        parent_failed
    );
    // 2. Rerun the failed ones: the child recovers exactly the transient failures.
    assert!(steps[1].contains("rerun-failed"), "{}", steps[1]);
    let rerun = outputs[1]["data"]["backfill"]["id"]
        .as_str()
        .expect("the child backfill")
        .to_owned();
    let child_bf = api.settled(&rerun).await;
    assert_eq!(
        child_bf["state"], "COMPLETED",
        "not paused by the circuit breaker: {child_bf}"
    );
    assert_eq!(
        child_bf["succeeded_count"].as_i64(),
        Some(transient.len() as i64),
        "{child_bf}"
    );
    assert_eq!(
        child_bf["failed_count"].as_i64(),
        Some(permanent.len() as i64),
        "{child_bf}"
    );
    assert_eq!(entity_ids(&api.items(&rerun, "failed").await), permanent);
    assert_eq!(entity_ids(&api.items(&rerun, "succeeded").await), transient);
    // 3. Pause and resume the slow backfill, which is still running.
    assert!(steps[2].ends_with("$SLOW/pause") && steps[3].ends_with("$SLOW/resume"));
    assert_eq!(outputs[2]["data"]["backfill_id"], slow.as_str());
    assert_eq!(outputs[3]["data"]["signal"], "resume", "{}", outputs[3]);
    let s = api.get(&format!("/backfills/{slow}")).await["data"].clone();
    assert_eq!(s["state"], "RUNNING", "{s}");
    // 4. The shadow run's totals, as printed in the scenario.
    let shadow = env["SHADOW"].clone();
    assert!(steps[4].ends_with("$SHADOW/changes"), "{}", steps[4]);
    let sim = field(&head, "PSA:")
        .strip_prefix("simulated ConnectWise at ")
        .and_then(|r| r.split_whitespace().next())
        .expect("the simulator's address")
        .to_owned();
    safe_bulk_changes(&api, &tail, &shadow, &outputs[4], &sim).await;
    let progress = drain(&err);
    for id in bulk_ids(&tail) {
        let last = progress
            .iter()
            .rev()
            .find(|l| l.starts_with(&id))
            .unwrap_or_else(|| panic!("no progress line of {id}: {progress:#?}"));
        assert!(last.ends_with("COMPLETED"), "{last}");
    }

    // The README's API tour, as written, after the export line.
    let tour = readme_tour();
    assert!(
        Command::new("jq").arg("--version").output().is_ok(),
        "the README's API tour needs jq (apt-get install jq)"
    );
    assert!(tour.contains("$NEO/") && tour.contains("$ID") && !tour.contains("8080"));
    sh(&env, &tour);
    // Its rerun answered the same child again (the same Idempotency-Key); it made one agent,
    // and one backfill of it, now cancelled.
    let list = api.get("/backfills?page_size=200").await;
    let all = list["data"].as_array().unwrap();
    assert_eq!(
        all.len(),
        9,
        "parent, child, companies, configurations, shadow, apply, revert, slow and the tour's: {list}"
    );
    assert_eq!(
        all.iter().filter(|b| b["state"] == "CANCELLED").count(),
        1,
        "{list}"
    );

    // Still serving; SIGTERM stops it cleanly.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Every line the channel holds now, without waiting.
fn drain(rx: &mpsc::Receiver<String>) -> Vec<String> {
    rx.try_iter().collect()
}

/// The text after `prefix` on the line that starts with it (trimmed), and that line's words.
fn line_after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .map(|l| l.trim())
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in {lines:#?}"))
}

/// The ids of the shadow run, its apply and the revert, as the demo printed them.
fn bulk_ids(tail: &[String]) -> [String; 3] {
    let word = |prefix: &str| {
        line_after(tail, prefix)
            .split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches(':')
            .to_owned()
    };
    [
        word("Shadow run "),
        word("Applied as "),
        word("Reverted as "),
    ]
}

/// The safe-bulk-changes scenario: every printed count is the API's, and the simulator's
/// write log holds the apply's writes and the revert's, nothing of the shadow run.
async fn safe_bulk_changes(api: &Api, tail: &[String], shadow: &str, changes: &Value, sim: &str) {
    let [shadow_id, apply, revert] = bulk_ids(tail);
    assert_eq!(
        shadow_id, shadow,
        "the export line's SHADOW is the shadow run"
    );
    let b = api.get(&format!("/backfills/{shadow}")).await["data"].clone();
    assert_eq!(
        (b["mode"].as_str(), b["state"].as_str()),
        (Some("shadow"), Some("COMPLETED")),
        "{b}"
    );
    let n = b["total_items"].as_i64().unwrap();
    assert_eq!(n, 200, "{b}");
    assert_eq!(
        line_after(tail, &format!("Shadow run {shadow} ")),
        format!(
            "over {n} tickets: COMPLETED, {n} succeeded, 0 failed; nothing written (the simulator's write log has 0 new writes)."
        )
    );
    // The printed totals, group for group: the API's.
    let totals = changes["data"].as_array().expect("the totals");
    let printed: Vec<String> = tail
        .iter()
        .skip_while(|l| !l.contains("It would change"))
        .skip(1)
        .take_while(|l| !l.trim().starts_with("and add"))
        .map(|l| l.trim().to_owned())
        .collect();
    let expected: Vec<String> = totals
        .iter()
        .take(20)
        .map(|t| {
            format!(
                "{}: {} tickets, {} → {}",
                t["field"].as_str().unwrap(),
                t["entities"],
                t["previous_value"],
                t["new_value"]
            )
        })
        .collect();
    assert_eq!(printed, expected);
    assert_eq!(printed[0], format!("priority/id: {n} tickets, 3 → 2"));
    assert_eq!(
        line_after(tail, "and add an internal note to "),
        format!("{n} tickets.")
    );

    // The apply: a live child of the shadow run; the revert: its child.
    let a = api.get(&format!("/backfills/{apply}")).await["data"].clone();
    assert_eq!(a["parent_backfill_run_id"], shadow, "{a}");
    assert_eq!(a["mode"], "live");
    assert_eq!(a["succeeded_count"].as_i64(), Some(n), "{a}");
    let r = api.get(&format!("/backfills/{revert}")).await["data"].clone();
    assert_eq!(r["parent_backfill_run_id"], apply.as_str(), "{r}");
    assert_eq!(
        (r["mode"].as_str(), r["remove_notes"].as_bool()),
        (Some("revert"), Some(true))
    );
    let edited = line_after(tail, "Meanwhile a technician set ticket ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let skipped = api.items(&revert, "skipped").await;
    assert_eq!(entity_ids(&skipped), BTreeSet::from([edited.clone()]));
    let reason = skipped[0]["error"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "changed_since: priority/id changed in the PSA after backfill {apply}"
        )),
        "{reason}"
    );
    assert_eq!(
        (
            r["succeeded_count"].as_i64(),
            r["skipped_count"].as_i64(),
            r["failed_count"].as_i64()
        ),
        (Some(n - 1), Some(1), Some(0)),
        "{r}"
    );
    assert_eq!(
        line_after(tail, &format!("Reverted as {revert} ")),
        format!(
            "(notes removed too): COMPLETED, {} succeeded, 0 failed, 1 skipped.",
            n - 1
        )
    );
    assert_eq!(
        line_after(tail, &format!("skipped ticket {edited}: ")),
        reason
    );
    assert_eq!(
        line_after(tail, &format!("{} of {n} tickets are back", n - 1)),
        format!(" at priority/id 3; ticket {edited} keeps the technician's priority.")
    );

    // The simulator's write log: the apply's updates and notes, the revert's updates and note
    // removals, nothing more (a shadow run that wrote would add to it).
    let writes: Vec<Value> = reqwest::get(format!("{sim}/__sim/writes"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let count = |kind: &str| {
        writes
            .iter()
            .filter(|w| {
                w["kind"] == kind
                    && w["status"]
                        .as_u64()
                        .is_some_and(|s| (200..300).contains(&s))
            })
            .count() as i64
    };
    assert_eq!(
        (count("update"), count("note"), count("delete_note")),
        (2 * n - 1, n, n - 1),
        "apply: {n} updates and notes; revert: {} updates and note removals",
        n - 1
    );
    assert_eq!(
        writes.len() as i64,
        4 * n - 2,
        "no other write reached the PSA"
    );
    assert_eq!(
        line_after(tail, &format!("Applied as {apply}: ")),
        format!("COMPLETED, {n} succeeded, 0 failed; the simulator logged {n} ticket updates and {n} notes.")
    );
}
