//! The Debian package, installed on this machine with `dpkg -i` as an operator would: the binary
//! on PATH, the service user and state directory the maintainer scripts make, the systemd
//! unit's hardening, and the installed config file driving a real `serve` (run as the service
//! user, without systemd), which takes a backfill through the API. Removing and purging the
//! package must leave the data.
//!
//! It changes the machine (a package, a user, `/etc/neo-backfill`, `/var/lib/neo-backfill`), so
//! it needs root, and `scripts/test` runs it alone, after the other tests: while it runs, the
//! installed `/etc/neo-backfill/config.toml` is every other `neo-backfill`'s default config
//! file. Whatever happens, it purges the package and deletes what it made.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const CONFIG: &str = "/etc/neo-backfill/config.toml";
const STATE: &str = "/var/lib/neo-backfill";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "neo-backfill"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// The installed binary, run as the service user with nothing of this process's environment
/// but PATH (so the config file, not the test's variables, sets things).
fn as_service_user(args: &[&str]) -> Command {
    // setpriv execs the binary itself (runuser would stand between it and SIGTERM).
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=neo-backfill",
        "--regid=neo-backfill",
        "--init-groups",
        "/usr/bin/neo-backfill",
    ])
    .args(args)
    .env_clear()
    .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    .current_dir("/");
    cmd
}

/// A child process killed when the test ends, however it ends (else it would keep the service
/// user busy and `userdel` would fail).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Purges the package and deletes its user and data, also when the test fails half-way.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "neo-backfill"])
            .output();
        let _ = std::fs::remove_dir_all(STATE);
        let _ = std::fs::remove_dir_all("/etc/neo-backfill");
        let _ = Command::new("userdel").arg("neo-backfill").output();
        let _ = Command::new("groupdel").arg("neo-backfill").output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_package_installs_runs_from_its_config_and_uninstalls_keeping_the_data() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "this test installs a Debian package: run it as root (scripts/test does on CI)"
    );
    assert!(
        !installed(),
        "neo-backfill is already installed on this machine; this test would replace it"
    );
    assert!(
        !Path::new(STATE).exists(),
        "{STATE} exists and no package owns it: move it away first (this test deletes it)"
    );
    let _cleanup = Cleanup;

    // Build the package from the binary under test (gzip -1: it is a debug build).
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("neo-backfill.deb");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/package-deb");
    run(Command::new(&script)
        .args(["--binary", common::BIN, "--fast", "--out"])
        .arg(&deb));
    run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(installed());

    // What the package put in place.
    let version = run(Command::new("neo-backfill").arg("--version"));
    assert!(
        version.starts_with(&format!("neo-backfill {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let unit = std::fs::read_to_string("/lib/systemd/system/neo-backfill.service").unwrap();
    for line in [
        "User=neo-backfill",
        "StateDirectory=neo-backfill",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "ExecStart=/usr/bin/neo-backfill serve --config /etc/neo-backfill/config.toml",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let passwd = run(Command::new("getent").args(["passwd", "neo-backfill"]));
    assert!(passwd.contains("/usr/sbin/nologin"), "{passwd}");
    let state = std::fs::metadata(STATE).expect("the state directory");
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&state) & 0o777, 0o700);

    // The installed config is what `config show` reports, and drives `serve`.
    let shown = String::from_utf8(
        as_service_user(&["config", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        shown.contains(&format!("# config file: {CONFIG}")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "database_url = \"sqlite://{STATE}/neo-backfill.db\"  # config file"
        )),
        "{shown}"
    );
    let key = as_service_user(&["keys", "create", "--tenant", "acme"])
        .output()
        .unwrap();
    assert!(key.status.success(), "{key:?}");
    let key = String::from_utf8(key.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();

    // The flag beats the file's `listen` (port 8080 may be taken here); loopback receivers
    // need the private-address switch, set in the environment.
    let mut serve = as_service_user(&["serve", "--listen", "127.0.0.1:0"]);
    serve
        .env("NEO_EGRESS_ALLOW_PRIVATE", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = Killed(serve.spawn().expect("start the installed serve"));
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["fields"]["message"] == "listening" {
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap().to_owned());
                }
            }
            lines.push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the installed serve did not log its address");
    let base = format!("http://{addr}/public-api");

    let (log, hook) = common::receiver(0).await;
    let api = common::Api {
        http: reqwest::Client::new(),
        key,
    };
    let wf = api
        .post(&base, "/agents", json!({"name": "Hook", "executor": {"type": "webhook", "url": hook, "secret": "whsec_0123456789abcdef"}}))
        .await["data"]["id"]
        .as_i64()
        .expect("a workflow");
    let ids: Vec<String> = (0..20).map(|i| format!("T{i:03}")).collect();
    let created = api
        .post(
            &base,
            "/backfills",
            json!({"target_workflow_id": wf, "filter_spec": {"entity_ids": ids}}),
        )
        .await;
    let id = created["data"]["backfill"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let done = api
        .wait_backfill(&base, &id, Duration::from_secs(60), |b| {
            b["state"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["succeeded_count"], 20, "{done}");
    assert_eq!(
        log.total.load(std::sync::atomic::Ordering::SeqCst),
        20,
        "every entity reached the workflow once"
    );

    // Stop it as systemd would (SIGTERM): it drains and exits 0.
    let pid = child.0.id().to_string();
    run(Command::new("kill").args(["-TERM", &pid]));
    let status = child.0.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");

    // Remove, then purge: the binary and the config go, the database and its key stay.
    let db = format!("{STATE}/neo-backfill.db");
    run(Command::new("dpkg").args(["-r", "neo-backfill"]));
    assert!(!Path::new("/usr/bin/neo-backfill").exists());
    assert!(Path::new(&db).exists(), "remove deleted the database");
    assert!(Path::new(CONFIG).exists(), "remove keeps the conffile");
    run(Command::new("dpkg").args(["--purge", "neo-backfill"]));
    assert!(!Path::new(CONFIG).exists(), "purge removes the config file");
    assert!(Path::new(&db).exists(), "purge deleted the database");
    assert!(Path::new(&format!("{db}.master-key")).exists());

    // The kept data is whole: this build reads the backfill back from it.
    let items = run(Command::new(common::BIN)
        .args([
            "export",
            "--backfill",
            &id,
            "--format",
            "jsonl",
            "--database-url",
        ])
        .arg(format!("sqlite://{db}"))
        .env("NEO_CONFIG", "/dev/null"));
    assert_eq!(items.lines().count(), 20, "{items}");
}
