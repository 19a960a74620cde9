//! The operator CLI of the real binary: `keys create/list/revoke/rotate`, `serve` (JSON logs on
//! stdout, one access line per request, the key never logged), `NEO_*` environment variables,
//! `openapi` and `migrate`. Every test works on its own SQLite file in a temporary directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_neo-backfill");
/// How long the server may take to log its address, and an access line to show up.
const DEADLINE: Duration = Duration::from_secs(60);

/// A command of the binary run in `dir`, without any `NEO_*` variable of the test's own
/// environment (so only what a test sets counts).
fn neo(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("NEO_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("neo.db").display())
}

#[track_caller]
fn run_ok(cmd: &mut Command) -> String {
    let out: Output = cmd.output().expect("run neo-backfill");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert!(
        out.status.success(),
        "{cmd:?} exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn last_line(stdout: &str) -> String {
    stdout.lines().last().unwrap_or_default().to_owned()
}

/// `neo_sk_<env>_<40 alphanumerics>`.
#[track_caller]
fn assert_key_shape(key: &str, env: &str) {
    let secret = key
        .strip_prefix(&format!("neo_sk_{env}_"))
        .unwrap_or_else(|| panic!("{key:?} does not start with neo_sk_{env}_"));
    assert_eq!(secret.len(), 40, "secret of {key:?}");
    assert!(
        secret.bytes().all(|b| b.is_ascii_alphanumeric()),
        "secret of {key:?} is not alphanumeric"
    );
}

/// The id printed by `keys create` / `keys rotate` (`key id: <id>`).
#[track_caller]
fn key_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("key id: "))
        .unwrap_or_else(|| panic!("no `key id:` line in\n{stdout}"))
        .trim()
        .to_owned()
}

/// `keys create` for `tenant` on `db`; returns (key id, plaintext key).
fn create_key(dir: &Path, tenant: &str) -> (String, String) {
    let out = run_ok(neo(dir).args([
        "keys",
        "create",
        "--tenant",
        tenant,
        "--database-url",
        &db_url(dir),
    ]));
    let key = last_line(&out);
    assert_key_shape(&key, "live");
    (key_id(&out), key)
}

/// Lines of one output stream of the child, in order.
type Lines = Arc<Mutex<Vec<String>>>;

fn pump(
    stream: impl std::io::Read + Send + 'static,
    sink: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> Lines {
    let lines: Lines = Arc::default();
    let all = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            all.lock().unwrap().push(line.clone());
            if let Some(tx) = &sink {
                let _ = tx.send(line);
            }
        }
    });
    lines
}

/// A running `serve` child. Dropping it (also while a failed test unwinds) kills it.
struct Server {
    child: Child,
    base: String,
    client: reqwest::Client,
    /// Stdout lines not looked at yet.
    rx: UnboundedReceiver<String>,
    /// Every stdout / stderr line so far.
    stdout: Lines,
    stderr: Lines,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reply to one request.
struct Reply {
    status: u16,
    request_id: String,
    body: Value,
}

impl Server {
    /// Starts `serve` with `args` and `envs` in `dir` and waits for its `listening` line.
    async fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut cmd = neo(dir);
        cmd.arg("serve")
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn neo-backfill serve");
        let (tx, rx) = unbounded_channel();
        let stdout = pump(child.stdout.take().unwrap(), Some(tx));
        let stderr = pump(child.stderr.take().unwrap(), None);
        let mut server = Server {
            child,
            base: String::new(),
            client: reqwest::Client::new(),
            rx,
            stdout,
            stderr,
        };
        let listening = server
            .next_json(|v| v["fields"]["message"] == "listening")
            .await;
        let addr = listening["fields"]["addr"]
            .as_str()
            .unwrap_or_else(|| panic!("no fields.addr in {listening}"));
        let port = addr
            .parse::<std::net::SocketAddr>()
            .unwrap_or_else(|e| panic!("fields.addr {addr:?}: {e}"))
            .port();
        assert_ne!(port, 0, "the log names the bound port, not 0");
        server.base = format!("http://{addr}/public-api");
        server
    }

    /// Reads stdout until a JSON line satisfies `pred`, within [`DEADLINE`].
    async fn next_json(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(line)) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if pred(&v) {
                            return v;
                        }
                    }
                }
                Ok(None) => panic!(
                    "the server's stdout closed before the expected line\nstdout:\n{}\nstderr:\n{}",
                    self.stdout.lock().unwrap().join("\n"),
                    self.stderr.lock().unwrap().join("\n")
                ),
                Err(_) => panic!(
                    "no expected line within {DEADLINE:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout.lock().unwrap().join("\n"),
                    self.stderr.lock().unwrap().join("\n")
                ),
            }
        }
    }

    /// GET `path` with `Authorization: Bearer <key>`; checks that `x-request-id` and
    /// `meta.request_id` agree and that exactly one access line carries that id.
    async fn get(&mut self, key: &str, path: &str) -> Reply {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        let header = r
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on GET {path}"))
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = r.json().await.expect("JSON body");
        assert_eq!(
            body["meta"]["request_id"].as_str(),
            Some(header.as_str()),
            "meta.request_id vs x-request-id of GET {path}: {body}"
        );
        let access = self
            .next_json(|v| v["target"] == "neo_access" && v["fields"]["request_id"] == header)
            .await;
        assert_eq!(
            access["fields"]["path"],
            format!("/public-api{path}"),
            "{access}"
        );
        assert_eq!(access["fields"]["status"], status, "{access}");
        assert_eq!(access["fields"]["method"], "GET", "{access}");
        Reply {
            status,
            request_id: header,
            body,
        }
    }

    /// Checks the access log once every request of `replies` was answered (each access line
    /// is written before its response, so all of them are in the pipe by now): one access
    /// line per request and none else, and no `secret` anywhere in the output.
    fn assert_log(&self, replies: &[&Reply], secrets: &[&str]) {
        let stdout = self.stdout.lock().unwrap();
        let access: Vec<Value> = stdout
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "neo_access")
            .collect();
        for r in replies {
            let n = access
                .iter()
                .filter(|v| v["fields"]["request_id"] == r.request_id.as_str())
                .count();
            assert_eq!(
                n,
                1,
                "access lines of request {}:\n{}",
                r.request_id,
                stdout.join("\n")
            );
        }
        assert_eq!(
            access.len(),
            replies.len(),
            "one access line per request:\n{}",
            stdout.join("\n")
        );
        for line in stdout.iter().chain(self.stderr.lock().unwrap().iter()) {
            assert!(
                serde_json::from_str::<Value>(line).is_ok(),
                "not a JSON line: {line}"
            );
            for s in secrets {
                assert!(!line.contains(s), "a key is in the log: {line}");
            }
        }
    }
}

#[track_caller]
fn assert_unauthorized(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "unauthorized", "{}", r.body);
    assert!(r.body["error"]["message"].is_string(), "{}", r.body);
    assert!(r.body.get("data").is_none(), "{}", r.body);
    let rid = r.body["meta"]["request_id"]
        .as_str()
        .expect("meta.request_id");
    assert_eq!(rid.len(), 36, "request_id {rid:?} is a UUID");
}

#[test]
fn keys_create_prints_the_key_last_and_list_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(dir.path());

    let live =
        run_ok(neo(dir.path()).args(["keys", "create", "--tenant", "acme", "--database-url", &db]));
    let live_key = last_line(&live);
    assert_key_shape(&live_key, "live");
    let live_id = key_id(&live);

    let test = run_ok(neo(dir.path()).args([
        "keys",
        "create",
        "--tenant",
        "acme",
        "--env",
        "test",
        "--database-url",
        &db,
    ]));
    let test_key = last_line(&test);
    assert_key_shape(&test_key, "test");
    let test_id = key_id(&test);
    assert_ne!(live_id, test_id);

    let list =
        run_ok(neo(dir.path()).args(["keys", "list", "--tenant", "acme", "--database-url", &db]));
    for (id, key, env) in [(&live_id, &live_key, "live"), (&test_id, &test_key, "test")] {
        let row = list
            .lines()
            .find(|l| l.starts_with(id.as_str()))
            .unwrap_or_else(|| panic!("key {id} is not listed:\n{list}"));
        assert!(row.split_whitespace().any(|w| w == env), "{row}");
        let secret = &key[key.len() - 40..];
        assert!(
            !list.contains(key.as_str()) && !list.contains(secret),
            "list shows a secret:\n{list}"
        );
    }
    // An unknown tenant is an error, not an empty list.
    let out = neo(dir.path())
        .args(["keys", "list", "--tenant", "nobody", "--database-url", &db])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn serve_logs_json_and_one_access_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = create_key(dir.path(), "acme");
    let db = db_url(dir.path());
    let mut server = Server::start(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--database-url", &db],
        &[],
    )
    .await;

    let ok = server.get(&key, "/tenant").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["data"]["name"], "acme", "{}", ok.body);

    let wrong = format!("neo_sk_live_{}", "W".repeat(40));
    let denied = server.get(&wrong, "/tenant").await;
    assert_unauthorized(&denied);
    let garbage = server.get("not-a-key", "/tenant").await;
    assert_unauthorized(&garbage);

    let again = server.get(&key, "/tenant").await;
    assert_eq!(again.status, 200, "{}", again.body);
    let ids = [
        &ok.request_id,
        &denied.request_id,
        &garbage.request_id,
        &again.request_id,
    ];
    for (i, a) in ids.iter().enumerate() {
        assert!(!ids[i + 1..].contains(a), "request ids are unique: {ids:?}");
    }
    server.assert_log(
        &[&ok, &denied, &garbage, &again],
        &[&key, &wrong, &key[key.len() - 40..]],
    );
}

#[tokio::test]
async fn revoke_takes_effect_on_the_running_server_and_rotate_keeps_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(dir.path());
    let (revoked_id, revoked) = create_key(dir.path(), "acme");
    let (old_id, old) = create_key(dir.path(), "acme");
    let mut server = Server::start(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--database-url", &db],
        &[],
    )
    .await;
    let mut replies = Vec::new();

    let before = server.get(&revoked, "/tenant").await;
    assert_eq!(before.status, 200, "{}", before.body);
    replies.push(before);
    let out = run_ok(neo(dir.path()).args(["keys", "revoke", &revoked_id, "--database-url", &db]));
    assert!(out.contains(&revoked_id), "{out}");
    let after = server.get(&revoked, "/tenant").await;
    assert_unauthorized(&after);
    replies.push(after);

    // Rotation: a new key, printed last; the old one keeps working (24 h grace).
    let out = run_ok(neo(dir.path()).args(["keys", "rotate", &old_id, "--database-url", &db]));
    let new = last_line(&out);
    assert_key_shape(&new, "live");
    assert_ne!(new, old);
    let new_id = key_id(&out);
    assert_ne!(new_id, old_id);
    for k in [&new, &old] {
        let r = server.get(k, "/tenant").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["data"]["name"], "acme", "{}", r.body);
        replies.push(r);
    }
    let list =
        run_ok(neo(dir.path()).args(["keys", "list", "--tenant", "acme", "--database-url", &db]));
    for id in [&revoked_id, &old_id, &new_id] {
        assert!(
            list.lines().any(|l| l.starts_with(id.as_str())),
            "{id} in\n{list}"
        );
    }
    let refs: Vec<&Reply> = replies.iter().collect();
    server.assert_log(&refs, &[&revoked, &old, &new]);
}

#[tokio::test]
async fn flags_come_from_neo_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(dir.path());

    let out = run_ok(
        neo(dir.path())
            .args(["keys", "create", "--tenant", "x"])
            .env("NEO_DATABASE_URL", &db),
    );
    let key = last_line(&out);
    assert_key_shape(&key, "live");
    assert!(
        dir.path().join("neo.db").exists(),
        "NEO_DATABASE_URL names the database"
    );
    // Also the tenant and the key environment.
    let out = run_ok(
        neo(dir.path())
            .args(["keys", "create"])
            .env("NEO_DATABASE_URL", &db)
            .env("NEO_TENANT", "x")
            .env("NEO_KEY_ENV", "test"),
    );
    let test_key = last_line(&out);
    assert_key_shape(&test_key, "test");
    let list = run_ok(
        neo(dir.path())
            .args(["keys", "list"])
            .env("NEO_DATABASE_URL", &db)
            .env("NEO_TENANT", "x"),
    );
    assert!(list.lines().any(|l| l.starts_with(&key_id(&out))), "{list}");

    let mut server = Server::start(
        dir.path(),
        &[],
        &[("NEO_LISTEN", "127.0.0.1:0"), ("NEO_DATABASE_URL", &db)],
    )
    .await;
    for k in [&key, &test_key] {
        let r = server.get(k, "/tenant").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["data"]["name"], "x", "{}", r.body);
    }
    // Nothing fell back to the default `./neo-backfill.db`.
    assert!(!dir.path().join("neo-backfill.db").exists());
}

#[test]
fn openapi_prints_the_document_and_migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let doc: Value =
        serde_json::from_str(&run_ok(neo(dir.path()).arg("openapi"))).expect("JSON document");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Neo Public API");
    assert!(
        doc["paths"]["/public-api/backfills/{backfill_id}/rerun-failed"]["post"].is_object(),
        "rerun-failed is documented"
    );

    let file = dir.path().join("sub").join("fresh.db");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    assert!(!file.exists());
    let url = format!("sqlite://{}", file.display());
    // A dry run lists every migration and creates nothing.
    let dry = run_ok(neo(dir.path()).args(["migrate", "--dry-run", "--database-url", &url]));
    assert!(dry.contains("would apply 19 migration(s)"), "{dry}");
    assert!(dry.contains("  0001 init"), "{dry}");
    assert!(dry.contains("  0019 psa pacing"), "{dry}");
    assert!(!file.exists(), "a dry run created the database");
    let out = run_ok(neo(dir.path()).args([
        "migrate",
        "--database-url",
        &format!("sqlite://{}", file.display()),
    ]));
    assert!(file.exists(), "migrate created {}: {out}", file.display());
    // Migrating again is a no-op that succeeds.
    run_ok(neo(dir.path()).args([
        "migrate",
        "--database-url",
        &format!("sqlite://{}", file.display()),
    ]));
    let dry = run_ok(neo(dir.path()).args(["migrate", "--dry-run", "--database-url", &url]));
    assert!(dry.contains("is up to date"), "{dry}");
}
