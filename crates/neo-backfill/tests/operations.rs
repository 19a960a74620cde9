//! What an operator runs the service with: the config file and its precedence (flag >
//! environment > file > default), the readiness probe while the database is migrated, and
//! `/metrics` on its own address. The real binary each time.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary with none of the test's own `NEO_*` variables and no default config file.
fn neo(dir: &Path) -> Command {
    let mut cmd = Command::new(common::BIN);
    cmd.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("NEO_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run neo-backfill");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `serve` spawned with `cmd`; each JSON log line's message and fields, as they come.
struct Serving {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl Serving {
    fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v["fields"].clone());
                }
            }
        });
        Self { child, lines }
    }

    /// The `addr` of the first log line whose message is `message`.
    fn addr_of(&self, message: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("serve did not log {message:?}"));
            if v["message"] == message {
                return v["addr"].as_str().expect("an addr").to_owned();
            }
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_config_file_sets_what_flags_and_the_environment_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file.db");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"sqlite://{}\"\nrate-limit = 7\nlease_secs = 9\n",
            from_file.display()
        ),
    )
    .unwrap();

    // `config show`: each value with where it came from; the environment beats the file.
    let (ok, shown, err) = output(
        neo(dir.path())
            .args(["config", "show", "--config"])
            .arg(&config)
            .env("NEO_LEASE_SECS", "5"),
    );
    assert!(ok, "{err}");
    for line in [
        "rate_limit = 7  # config file, NEO_RATE_LIMIT",
        "lease_secs = 5  # environment, NEO_LEASE_SECS",
        "max_attempts = 5  # default, NEO_MAX_ATTEMPTS",
    ] {
        assert!(shown.lines().any(|l| l == line), "no {line:?} in\n{shown}");
    }

    // A flag beats the file: `migrate --database-url` creates its own file, not the file's.
    let flagged = dir.path().join("flag.db");
    let (ok, _, err) = output(
        neo(dir.path())
            .args(["migrate", "--config"])
            .arg(&config)
            .arg("--database-url")
            .arg(format!("sqlite://{}", flagged.display())),
    );
    assert!(ok, "{err}");
    assert!(flagged.exists() && !from_file.exists());

    // `serve` with the file alone: its database and its rate limit (the tenant read says it).
    let serving = Serving::spawn(
        neo(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config),
    );
    let base = format!("http://{}/public-api", serving.addr_of("listening"));
    assert!(from_file.exists(), "serve did not use the file's database");
    let key = common::create_key(&format!("sqlite://{}", from_file.display()));
    let api = common::Api {
        http: reqwest::Client::new(),
        key,
    };
    let tenant = api.get(&base, "/tenant").await;
    assert_eq!(tenant["data"]["rate_limit"]["limit"], 7, "{tenant}");

    // NEO_CONFIG names the file too; an unknown key stops every command with its name.
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_adress = \"x\"\n").unwrap();
    let (ok, _, err) = output(
        neo(dir.path())
            .args(["migrate", "--dry-run"])
            .env("NEO_CONFIG", &config),
    );
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "config file {}: unknown key `listen_adress`",
            config.display()
        )),
        "{err}"
    );
    let (ok, _, err) = output(
        neo(dir.path())
            .args(["config", "show", "--config"])
            .arg(dir.path().join("missing.toml")),
    );
    assert!(!ok && err.contains("missing.toml"), "{err}");
}

#[tokio::test]
async fn readiness_is_503_while_the_database_migrates_and_liveness_stays_200() {
    let Some(db) = common::SharedDb::create() else {
        return;
    };
    // Hold the lock the migration takes, as a replica migrating at the same moment would.
    use sqlx::Connection;
    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(7366173150317)")
        .execute(&mut holder)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::spawn(
        neo(dir.path())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db.url,
            ])
            .env("NEO_MASTER_KEY_FILE", common::pg_master_key_file()),
    );
    let base = format!(
        "http://{}/public-api",
        serving.addr_of("starting: opening and migrating the database")
    );
    let http = reqwest::Client::new();
    let ready = http.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.headers()["retry-after"], "5");
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready", "{body}");
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["data"]["database"], "migrating", "{body}");
    let api = http.get(format!("{base}/backfills")).send().await.unwrap();
    assert_eq!(
        api.status(),
        503,
        "the API is not served before it is ready"
    );

    // Let the migration through: the same address becomes ready.
    sqlx::query("SELECT pg_advisory_unlock(7366173150317)")
        .execute(&mut holder)
        .await
        .unwrap();
    serving.addr_of("listening");
    let ready = http.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["data"]["database"], "ok", "{body}");
}

#[tokio::test]
async fn metrics_can_have_their_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("neo.db").display());
    let serving = Serving::spawn(neo(dir.path()).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--database-url",
        &url,
    ]));
    let metrics = serving.addr_of("metrics listening");
    let api = serving.addr_of("listening");
    let http = reqwest::Client::new();
    http.get(format!("http://{api}/public-api/health"))
        .send()
        .await
        .unwrap();
    let on_api = http
        .get(format!("http://{api}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        on_api.status(),
        404,
        "the API's address no longer has /metrics"
    );
    let text = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("neo_http_requests_total"), "{text}");
    let other = http
        .get(format!("http://{metrics}/public-api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics address serves nothing else"
    );
}
