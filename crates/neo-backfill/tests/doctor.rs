//! `neo-backfill doctor` against real deployments: a SQLite one served by `serve` with tenants
//! connected to a running PSA simulator, a PostgreSQL one, and broken ones (a wrong master
//! key, a PSA that does not answer, a database that is not there). Each assertion is what an
//! operator reads: one line per check, a FAIL in words, and no secret anywhere.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{create_key_for, serve, Api, Server, BIN};
use serde_json::json;

/// Credentials the deployment's PSAs are connected with: none may appear in doctor's output.
const SECRETS: &[&str] = &[
    "cw-private-doctor-5Qz81",
    "cw-client-doctor-8Kp27",
    "at-secret-doctor-3Wn44",
    "at-code-doctor-9Lm06",
    "halo-secret-doctor-2Rt93",
    "umbrella-private-doctor-7Zx15",
];

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    /// The one line of the check `what` (`"database"`, `"master key"`, `"PSA of tenant \"acme\""`).
    fn line(&self, what: &str) -> &str {
        let prefix = format!("{what}:");
        let lines: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| l.get(6..).is_some_and(|rest| rest.starts_with(&prefix)))
            .collect();
        assert_eq!(lines.len(), 1, "one line for {what}:\n{}", self.stdout);
        lines[0]
    }

    fn fails(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect()
    }

    /// Every line is a verdict: a status, then the check, then its detail (no continuation).
    fn assert_one_line_per_check(&self) {
        for l in self.stdout.lines() {
            let tag = &l[..l.len().min(6)];
            assert!(
                ["ok    ", "warn  ", "FAIL  ", "skip  "].contains(&tag) && l[6..].contains(": "),
                "not a verdict line: {l:?}\n{}",
                self.stdout
            );
        }
    }

    fn assert_no_secret(&self, secrets: &[&str]) {
        for s in secrets {
            assert!(
                !self.stdout.contains(s) && !self.stderr.contains(s),
                "{s} appears in the output:\n{}\n{}",
                self.stdout,
                self.stderr
            );
        }
    }
}

/// Runs `doctor` with `args` and `env` (and none of the caller's `NEO_*` egress switches).
async fn doctor(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.arg("doctor")
        .args(args)
        .env_remove("NEO_EGRESS_ALLOW_PRIVATE")
        .env_remove("NEO_WEBHOOK_ALLOW_PRIVATE")
        .env_remove("NEO_MASTER_KEY_FILE")
        .env("NEO_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    // Blocking: the simulator answers on this runtime's other thread meanwhile.
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run doctor"))
        .await
        .unwrap();
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        took: start.elapsed(),
    };
    eprintln!("doctor {args:?} ({:?}):\n{}", run.took, run.stdout);
    run.assert_one_line_per_check();
    run
}

const ALLOW_PRIVATE: (&str, &str) = ("NEO_EGRESS_ALLOW_PRIVATE", "true");

/// A SQLite deployment served by `serve`, whose tenants `acme` (ConnectWise), `globex`
/// (Autotask) and `initech` (HaloPSA) are connected to one running simulator.
struct Deployment {
    dir: tempfile::TempDir,
    db: String,
    sim: psa_sim::SimHandle,
    server: Server,
}

async fn deployment() -> Deployment {
    let sim = psa_sim::spawn(psa_sim::SimConfig {
        tickets: 50,
        cw_private_key: SECRETS[0].into(),
        cw_client_id: SECRETS[1].into(),
        at_secret: SECRETS[2].into(),
        at_integration_code: SECRETS[3].into(),
        halo_client_secret: SECRETS[4].into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("neo.db").display());
    let server = serve(&db, &[]);
    for (tenant, psa) in [
        ("acme", "connectwise"),
        ("globex", "autotask"),
        ("initech", "halopsa"),
    ] {
        let api = tenant_api(&db, tenant);
        common::connect_psa(&api, &server.base, &sim, psa, common::unpaced()).await;
    }
    Deployment {
        dir,
        db,
        sim,
        server,
    }
}

fn tenant_api(db: &str, tenant: &str) -> Api {
    Api {
        http: reqwest::Client::new(),
        key: create_key_for(db, tenant),
    }
}

fn sim_host(sim: &psa_sim::SimHandle) -> String {
    sim.base_url.trim_start_matches("http://").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_sqlite_deployment_is_all_ok_and_the_egress_rules_are_serves() {
    let d = deployment().await;
    let run = doctor(&["--database-url", &d.db], &[ALLOW_PRIVATE]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for l in run.stdout.lines() {
        assert!(l.starts_with("ok "), "not ok: {l}");
    }
    assert!(run.line("database").contains("schema is this release's"));
    assert!(run
        .line("master key")
        .contains("opens this database's secrets"));
    let host = sim_host(&d.sim);
    for (tenant, label) in [
        ("acme", "ConnectWise"),
        ("globex", "Autotask"),
        ("initech", "HaloPSA"),
    ] {
        let l = run.line(&format!("PSA of tenant \"{tenant}\""));
        assert!(
            l.contains(&format!("{label} at {host}")) && l.contains("answered"),
            "{l}"
        );
    }
    assert!(run
        .line("clock")
        .contains("SQLite shares this machine's clock"));
    run.assert_no_secret(SECRETS);

    // Without `--egress-allow-private` the simulator on loopback is refused, as serve would
    // refuse it: one FAIL per tenant, saying which switch opens it.
    let run = doctor(&["--database-url", &d.db], &[]).await;
    assert_ne!(run.code, Some(0));
    assert_eq!(run.fails().len(), 3, "{}", run.stdout);
    let l = run.line("PSA of tenant \"acme\"");
    assert!(
        l.starts_with("FAIL")
            && l.contains("refused by the egress rules")
            && l.contains("NEO_EGRESS_ALLOW_PRIVATE=true"),
        "{l}"
    );
    run.assert_no_secret(SECRETS);
    drop(d.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_is_one_fail_naming_both_keys_and_no_secret() {
    let d = deployment().await;
    let wrong = d.dir.path().join("other.key");
    let out = Command::new(BIN)
        .args(["secrets", "generate-key", "--out"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(out.status.success());
    let key_of = |p: &std::path::Path| {
        let hex = std::fs::read_to_string(p).unwrap().trim().to_owned();
        let id = neo_store::MasterKey::from_hex(&hex)
            .unwrap()
            .id()
            .to_owned();
        (hex, id)
    };
    let (db_hex, db_id) = key_of(&d.dir.path().join("neo.db.master-key"));
    let (wrong_hex, wrong_id) = key_of(&wrong);

    let run = doctor(
        &[
            "--database-url",
            &d.db,
            "--master-key-file",
            wrong.to_str().unwrap(),
        ],
        &[ALLOW_PRIVATE],
    )
    .await;
    assert_ne!(run.code, Some(0));
    assert_eq!(run.fails().len(), 1, "{}", run.stdout);
    let l = run.line("master key");
    assert!(l.starts_with("FAIL"), "{l}");
    assert!(
        l.contains(&wrong_id) && l.contains(&db_id),
        "names both keys: {l}"
    );
    assert!(
        l.contains("does not open this database's secrets")
            && l.contains("restore that file from backup"),
        "{l}"
    );
    // The PSA checks need the secrets the key did not open: skipped, saying so.
    let psa = run.line("PSA connections");
    assert!(
        psa.starts_with("skip") && psa.contains("master key"),
        "{psa}"
    );
    assert!(run.line("database").starts_with("ok"));
    run.assert_no_secret(&[db_hex.as_str(), wrong_hex.as_str()]);
    run.assert_no_secret(SECRETS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_psa_is_one_fail_naming_the_tenant_and_host() {
    let d = deployment().await;
    // A fourth tenant whose ConnectWise is a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = closed.local_addr().unwrap().to_string();
    drop(closed);
    let api = tenant_api(&d.db, "umbrella");
    api.put(
        &d.server.base,
        "/integrations/connectwise",
        json!({"site_url": format!("http://{host}"), "company_id": "umbrella",
               "public_key": "umbrella-public", "private_key": SECRETS[5],
               "client_id": "umbrella-client"}),
    )
    .await;

    let run = doctor(&["--database-url", &d.db], &[ALLOW_PRIVATE]).await;
    assert_ne!(run.code, Some(0));
    assert_eq!(run.fails().len(), 1, "{}", run.stdout);
    let l = run.line("PSA of tenant \"umbrella\"");
    assert!(l.starts_with("FAIL"), "{l}");
    assert!(
        l.contains(&format!("ConnectWise at {host} is unreachable"))
            && l.contains("connection refused"),
        "{l}"
    );
    // The other tenants' PSAs still answer.
    assert!(run.line("PSA of tenant \"acme\"").starts_with("ok"));
    assert!(run.took < Duration::from_secs(30), "took {:?}", run.took);
    run.assert_no_secret(SECRETS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_are_told_apart_from_an_unreachable_psa() {
    let d = deployment().await;
    let api = tenant_api(&d.db, "acme");
    let (mut config, _) = d.sim.integration("connectwise");
    let c = config.as_object_mut().unwrap();
    c.insert("private_key".into(), json!("stale-private-doctor-4Hd70"));
    c.insert("client_id".into(), json!(SECRETS[1]));
    api.put(&d.server.base, "/integrations/connectwise", config)
        .await;

    let run = doctor(&["--database-url", &d.db], &[ALLOW_PRIVATE]).await;
    assert_ne!(run.code, Some(0));
    assert_eq!(run.fails().len(), 1, "{}", run.stdout);
    let l = run.line("PSA of tenant \"acme\"");
    assert!(
        l.starts_with("FAIL")
            && l.contains(&format!(
                "ConnectWise at {} rejected the integration's credentials",
                sim_host(&d.sim)
            ))
            && l.contains("401")
            && l.contains("enter the integration's credentials again"),
        "{l}"
    );
    run.assert_no_secret(SECRETS);
    run.assert_no_secret(&["stale-private-doctor-4Hd70"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psa_that_never_answers_fails_within_the_time_limit() {
    let d = deployment().await;
    // Accepts connections (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = silent.local_addr().unwrap().to_string();
    let api = tenant_api(&d.db, "hooli");
    api.put(
        &d.server.base,
        "/integrations/halopsa",
        json!({"url": format!("http://{host}"), "client_id": "hooli", "client_secret": SECRETS[4]}),
    )
    .await;

    let run = doctor(&["--database-url", &d.db], &[ALLOW_PRIVATE]).await;
    assert_ne!(run.code, Some(0));
    assert_eq!(run.fails().len(), 1, "{}", run.stdout);
    let l = run.line("PSA of tenant \"hooli\"");
    assert!(
        l.starts_with("FAIL")
            && l.contains(&format!("HaloPSA at {host} is unreachable"))
            && l.contains("did not answer within"),
        "{l}"
    );
    assert!(run.took < Duration::from_secs(25), "took {:?}", run.took);
    run.assert_no_secret(SECRETS);
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_fast_in_one_line_with_the_password_redacted() {
    let password = "hunter2-doctor-secret";
    for url in [
        "postgres://postgres@127.0.0.1:1/x".to_owned(),
        format!("postgres://postgres:{password}@127.0.0.1:1/x"),
    ] {
        let run = doctor(&["--database-url", &url], &[]).await;
        assert_ne!(run.code, Some(0));
        assert!(run.took < Duration::from_secs(15), "took {:?}", run.took);
        assert_eq!(run.fails().len(), 1, "{}", run.stdout);
        let l = run.line("database");
        assert!(
            l.starts_with("FAIL  database: cannot connect to postgres://")
                && l.contains("127.0.0.1:1/x")
                && l.contains("Connection refused")
                && l.contains("check that PostgreSQL is running"),
            "{l}"
        );
        let skipped = run.line("master key, PSA connections, clock");
        assert!(
            skipped.starts_with("skip") && skipped.contains("needs the database"),
            "{skipped}"
        );
        run.assert_no_secret(&[password]);
        if url.contains(password) {
            assert!(l.contains("postgres://***@127.0.0.1:1/x"), "{l}");
        }
    }
    // A server that accepts the connection and never answers: bounded too.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("postgres://postgres@{}/x", silent.local_addr().unwrap());
    let run = doctor(&["--database-url", &url], &[]).await;
    assert_ne!(run.code, Some(0));
    assert!(run.took < Duration::from_secs(15), "took {:?}", run.took);
    let l = run.line("database");
    assert!(
        l.starts_with("FAIL") && l.contains("no answer within 5 s"),
        "{l}"
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_deployment_compares_the_servers_clock() {
    let Some(pg) = common::SharedDb::create() else {
        return;
    };
    let key = common::pg_master_key_file();
    let out = Command::new(BIN)
        .args([
            "migrate",
            "--database-url",
            &pg.url,
            "--master-key-file",
            &key,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = doctor(
        &["--database-url", &pg.url],
        &[("NEO_MASTER_KEY_FILE", key.as_str())],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.line("database").starts_with("ok"));
    assert!(run.line("master key").starts_with("ok"));
    let clock = run.line("clock");
    assert!(
        clock.starts_with("ok")
            && clock.contains("PostgreSQL's clock is within 2 s of this machine's"),
        "{clock}"
    );
}
