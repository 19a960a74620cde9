//! Child processes of the workloads: the release `neo-backfill` (its `keys create` and `serve`)
//! and any other process that must not outlive the benchmark.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// The master key file of the database at `url`, shared by the benchmark and its child
/// processes: `NEO_MASTER_KEY_FILE` when set; `None` for SQLite (its key is generated beside
/// the database file); for PostgreSQL, a key generated for this run.
pub(crate) fn master_key_file(url: &str) -> anyhow::Result<Option<PathBuf>> {
    if let Some(f) = std::env::var_os("NEO_MASTER_KEY_FILE") {
        return Ok(Some(f.into()));
    }
    if url.starts_with("sqlite:") {
        return Ok(None);
    }
    let path = std::env::temp_dir().join(format!("neo-bench-{}.master-key", std::process::id()));
    if !path.exists() {
        neo_store::MasterKey::generate()
            .write_new(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Some(path))
}

/// `cmd` with the master key file of `url`, if it needs one.
pub(crate) fn with_master_key(cmd: &mut Command, url: &str) -> anyhow::Result<()> {
    if let Some(f) = master_key_file(url)? {
        cmd.env("NEO_MASTER_KEY_FILE", f);
    }
    Ok(())
}

/// A child process killed (and reaped) when dropped.
pub(crate) struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `neo-backfill keys create --tenant bench`: the new key (this also creates and migrates the
/// database and the tenant `bench`), the tenant's monthly allowance raised out of the way.
pub(crate) fn create_key(bin: &str, database_url: &str) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(["keys", "create", "--tenant", "bench", "--database-url"])
        .arg(database_url)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {bin} keys create"))?;
    anyhow::ensure!(out.status.success(), "keys create failed");
    // The monthly allowance (10,000 credits by default) would pause a large run.
    let set = Command::new(bin)
        .args([
            "tenants",
            "set-allowance",
            "--tenant",
            "bench",
            "--credits",
            "1000000000000",
        ])
        .args(["--database-url", database_url])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("running {bin} tenants set-allowance"))?;
    anyhow::ensure!(set.success(), "tenants set-allowance failed");
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .last()
        .context("keys create printed nothing")?
        .trim()
        .to_owned())
}

/// `neo-backfill serve` on a free loopback port, without a rate limit.
pub(crate) struct Serve {
    pub child: KillOnDrop,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Serve {
    /// Starts the service and waits (up to 60 s) until `/public-api/health` answers 200.
    pub async fn start(bin: &str, database_url: &str) -> anyhow::Result<Serve> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            .env("NEO_RATE_LIMIT", "100000000")
            // The simulated PSA and the webhook receivers are on loopback.
            .env("NEO_EGRESS_ALLOW_PRIVATE", "true")
            .env("NEO_LOG", "warn");
        with_master_key(&mut cmd, database_url)?;
        let child = KillOnDrop(
            cmd.spawn()
                .with_context(|| format!("starting {bin} serve"))?,
        );
        let http = reqwest::Client::new();
        let health = format!("{base}/public-api/health");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match http.get(&health).send().await {
                Ok(r) if r.status().is_success() => break,
                _ if Instant::now() > deadline => anyhow::bail!("{bin} serve never answered"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(Serve { child, base })
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
}
