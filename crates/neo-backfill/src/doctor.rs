//! `doctor`: checks what a deployment depends on and says what is wrong, one line each.
//!
//! An operator runs it when something does not work, often on a machine that is itself
//! misconfigured, so every check is bounded in time (an unreachable database or PSA must not
//! hang the command) and every line says what to do in words, never in a stack of errors.
//! The lines never carry a secret: database URLs are redacted, key files are named by their
//! key id, and a PSA's answer body is never read into a line (the PSA connectors' errors are
//! fixed words and a status).
//!
//! It leaves the database as `serve` would find it. The master key is checked by opening the
//! store the way `serve` does (the store's own key check, not a copy of it), and only when
//! opening changes nothing `serve` would not change first thing: the schema must be this
//! release's (else opening would migrate it) and the database must hold a key check already
//! (else opening would make this key the database's key). What the `Store` trait does not
//! offer (the tenants with an integration, the applied migration, PostgreSQL's clock) is read
//! on a connection of doctor's own, which only reads.
//!
//! The PSA checks go through the one guarded egress client with the same rules as `serve`
//! (`--egress-allow-private`), so a PSA the service may not call is reported as refused, not
//! as reachable.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use neo_domain::clock::{to_ms, Clock};
use neo_egress::{Egress, EgressError, EgressPolicy};
use neo_psa::http::{HttpPolicy, PsaError};
use neo_store::{MasterKey, Sealer, Store, StoreError};
use serde_json::Value;
use sqlx::Connection;

use crate::args::{legacy_allow_private, redact_url, DbArgs, KeyArgs};

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// As for `serve`: let the PSA checks call private, loopback, link-local and CGNAT
    /// addresses and `localhost` (refused by default, as `serve` refuses them).
    #[arg(
        long,
        alias = "webhook-allow-private",
        env = "NEO_EGRESS_ALLOW_PRIVATE"
    )]
    pub egress_allow_private: bool,
}

/// How long connecting to the database may take before it counts as unreachable.
const DB_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one step against a reachable database may take (a migration list, an open).
const DB_STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one PSA request may take, and all of one tenant's requests.
const PSA_REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
const PSA_TENANT_TIMEOUT: Duration = Duration::from_secs(20);
/// Tenants whose PSA is checked at once.
const PSA_CONCURRENCY: usize = 16;
/// Clock skew between this machine and PostgreSQL worth a warning, and worth a failure.
const SKEW_WARN_MS: i64 = 2_000;
const SKEW_FAIL_MS: i64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// Prints the lines as they come and counts the failures.
#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    /// Prints `<status>  <what>: <detail>`.
    fn line(&mut self, status: Status, what: &str, detail: impl AsRef<str>) {
        let tag = match status {
            Status::Pass => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        if status == Status::Fail {
            self.failed += 1;
        }
        // One line per check, whatever the messages inside it hold.
        let detail = detail.as_ref().replace(['\n', '\r'], " ");
        println!("{tag:<6}{what}: {detail}");
    }
}

pub async fn doctor(a: DoctorArgs, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let mut report = Report::default();
    let url = a.db.database_url.clone();
    let Some(mut db) = check_database(&url, &mut report).await else {
        report.line(
            Status::Skip,
            "master key, PSA connections, clock",
            "not checked: each of them needs the database, which doctor could not read",
        );
        return finish(report);
    };
    let store = check_master_key(&a, &mut db, &mut report).await;
    check_psas(&a, &mut db, store, &mut report).await;
    check_clock(&mut db, clock.as_ref(), &mut report).await;
    finish(report)
}

fn finish(report: Report) -> anyhow::Result<()> {
    match report.failed {
        0 => Ok(()),
        1 => bail!("1 check failed: see the FAIL line above"),
        n => bail!("{n} checks failed: see the FAIL lines above"),
    }
}

// ---- 1. the database -----------------------------------------------------------------

/// A plain read-only connection of doctor's own (see the module documentation).
enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Pg(sqlx::PgConnection),
}

/// Runs the same statement text on either backend (`$N` placeholders work on both).
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Pg($c) => $body,
        }
    };
}

/// What the later checks need of the database.
struct Db {
    conn: Conn,
    url: String,
    /// The schema is exactly this release's (no migration pending, none from a newer release).
    current: bool,
}

impl Conn {
    async fn open(url: &str) -> Result<Self, sqlx::Error> {
        if url.starts_with("sqlite:") {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .create_if_missing(false)
                .read_only(true);
            Ok(Conn::Sqlite(
                sqlx::SqliteConnection::connect_with(&opts).await?,
            ))
        } else {
            // A statement stuck behind a lock (a migration running) must not hang doctor.
            let opts = sqlx::postgres::PgConnectOptions::from_str(url)?
                .application_name("neo-backfill doctor")
                .options([("statement_timeout", "10s")]);
            Ok(Conn::Pg(sqlx::PgConnection::connect_with(&opts).await?))
        }
    }

    /// The newest migration applied; `None` before any (no migrations table yet).
    async fn applied_version(&mut self) -> Option<i64> {
        const SQL: &str = "SELECT max(version) FROM _sqlx_migrations WHERE success";
        on_conn!(self, |c| sqlx::query_scalar::<_, Option<i64>>(SQL)
            .fetch_one(&mut *c)
            .await
            .ok()
            .flatten())
    }

    /// Whether the database holds the store's master key check (the `server_settings` row the
    /// store writes the first time a key opens it): then its secrets belong to one key.
    async fn has_key_check(&mut self) -> Result<bool, sqlx::Error> {
        const SQL: &str = "SELECT count(*) FROM server_settings WHERE name = $1";
        let n: i64 = on_conn!(self, |c| sqlx::query_scalar(SQL)
            .bind(neo_store::KEY_CHECK)
            .fetch_one(&mut *c)
            .await)?;
        Ok(n > 0)
    }

    /// `(id, name)` of each tenant that has a PSA integration, by name.
    async fn tenants_with_integration(&mut self) -> Result<Vec<(String, String)>, sqlx::Error> {
        const SQL: &str = "SELECT t.id, t.name FROM integrations i \
                           JOIN tenants t ON t.id = i.tenant_id ORDER BY t.name";
        on_conn!(self, |c| sqlx::query_as(SQL).fetch_all(&mut *c).await)
    }
}

/// A database error in words, with the URL's password (if any) taken out.
fn db_error(e: &dyn std::fmt::Display, url: &str) -> String {
    let mut m = e.to_string().replace(url, &redact_url(url));
    if let Some(password) = url_password(url) {
        m = m.replace(password, "***");
    }
    m
}

fn url_password(url: &str) -> Option<&str> {
    let (start, at) = (url.find("://")? + 3, url.rfind('@')?);
    let (_, password) = url.get(start..at)?.split_once(':')?;
    // A one- or two-character password would also match unrelated text.
    (password.len() > 2).then_some(password)
}

async fn check_database(url: &str, report: &mut Report) -> Option<Db> {
    let shown = redact_url(url);
    let what = "database";
    let sqlite = url.starts_with("sqlite:");
    if !sqlite && !url.starts_with("postgres:") && !url.starts_with("postgresql:") {
        report.line(Status::Fail, what, format!("{shown} is not a database URL this release reads: set --database-url (or NEO_DATABASE_URL) to sqlite://PATH or postgres://…"));
        return None;
    }
    if sqlite {
        if url.contains(":memory:") || url.contains("mode=memory") {
            report.line(Status::Fail, what, format!("{shown} is an in-memory database, which lives only inside the process that opened it: give doctor the --database-url that serve uses"));
            return None;
        }
        let file = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .map(|o| o.get_filename().to_path_buf())
            .ok();
        if let Some(file) = file.filter(|f| !f.exists()) {
            report.line(Status::Fail, what, format!("there is no database file at {}: check --database-url (or NEO_DATABASE_URL); serve creates the file on its first start", file.display()));
            return None;
        }
    }
    let mut conn = match tokio::time::timeout(DB_CONNECT_TIMEOUT, Conn::open(url)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let todo = if sqlite {
                "check that the file is a neo-backfill database and that this user may read it"
            } else {
                "check that PostgreSQL is running and reachable from this machine, and the host, port, user, password and database name of --database-url (or NEO_DATABASE_URL)"
            };
            report.line(
                Status::Fail,
                what,
                format!("cannot connect to {shown}: {}; {todo}", db_error(&e, url)),
            );
            return None;
        }
        Err(_) => {
            report.line(Status::Fail, what, format!("cannot connect to {shown}: no answer within {} s; check that PostgreSQL is running and that no firewall drops the connection", DB_CONNECT_TIMEOUT.as_secs()));
            return None;
        }
    };
    let applied = conn.applied_version().await;
    let pending = tokio::time::timeout(DB_STEP_TIMEOUT, neo_store::pending_migrations(url)).await;
    let (status, detail, current) = match pending {
        Ok(Ok(p)) if p.is_empty() => (
            Status::Pass,
            format!(
                "{shown} is reachable; its schema is this release's (migration {})",
                applied.unwrap_or(0)
            ),
            true,
        ),
        Ok(Ok(p)) => {
            let (first, last) = (p[0].0, p[p.len() - 1].0);
            let at = match applied {
                Some(v) => format!("its schema is at migration {v}"),
                None => "it has no schema yet".into(),
            };
            let n = p.len();
            (
                Status::Warn,
                format!("{shown} is reachable, but {at} and this release has {n} more ({first:04} to {last:04}): serve and worker apply them when they start, or run `neo-backfill migrate` (back the database up first)"),
                false,
            )
        }
        // A database from a newer release: the store's own refusal says what to do.
        Ok(Err(e)) if e.downcast_ref::<sqlx::Error>().is_none() => (
            Status::Fail,
            format!("{shown} is reachable, but {}", db_error(&e, url)),
            false,
        ),
        Ok(Err(e)) => (
            Status::Fail,
            format!("{shown} is reachable, but its schema could not be read: {}", db_error(&e, url)),
            false,
        ),
        Err(_) => (
            Status::Fail,
            format!("{shown} is reachable, but listing its migrations took over {} s: the database is overloaded or locked", DB_STEP_TIMEOUT.as_secs()),
            false,
        ),
    };
    report.line(status, what, detail);
    Some(Db {
        conn,
        url: url.to_owned(),
        current,
    })
}

// ---- 2. the master key -----------------------------------------------------------------

/// Checks the key against the database's secrets; the store opened with it when it opens them,
/// else why the PSA checks cannot run.
async fn check_master_key(
    a: &DoctorArgs,
    db: &mut Db,
    report: &mut Report,
) -> Result<Arc<dyn Store>, String> {
    let what = "master key";
    let url = &db.url.clone();
    let explicit = a.key.master_key_file.is_some();
    let Some(path) = a.key.file(&a.db) else {
        report.line(Status::Fail, what, "no --master-key-file (or NEO_MASTER_KEY_FILE): PostgreSQL keeps no key beside the database, so give doctor the key file that serve and worker use");
        return Err("no master key to open the integrations' credentials with".into());
    };
    let has_check = db.conn.has_key_check().await.unwrap_or(false);
    if !explicit && !path.exists() {
        if has_check {
            report.line(Status::Fail, what, format!("there is no key file at {} (the default beside the database), but the database's secrets are sealed with a master key: restore that key file from backup, or pass --master-key-file with the file that holds it", path.display()));
        } else {
            report.line(Status::Warn, what, format!("there is no key file at {} yet: serve generates it on its first start; back it up with the database", path.display()));
        }
        return Err("the master key file is missing".into());
    }
    let key = match MasterKey::load(&path) {
        Ok(k) => k,
        Err(e) => {
            report.line(
                Status::Fail,
                what,
                format!("{e}: pass --master-key-file with the file that serve and worker use"),
            );
            return Err("the master key file does not load".into());
        }
    };
    let id = key.id().to_owned();
    let from = path.display();
    if !db.current {
        report.line(Status::Skip, what, format!("key {id} loads from {from}; not checked against the database, whose schema is not this release's (opening it would migrate it)"));
        return Err("the master key was not checked".into());
    }
    if !has_check {
        report.line(Status::Pass, what, format!("key {id} loads from {from}; the database holds no sealed secret yet (the first serve with this key seals them with it)"));
        return Err("the database holds no sealed secret yet".into());
    }
    let sealer = Arc::new(Sealer::new(key));
    match tokio::time::timeout(DB_STEP_TIMEOUT, neo_store::connect_with(url, Some(sealer))).await {
        Ok(Ok(store)) => {
            report.line(
                Status::Pass,
                what,
                format!("key {id} from {from} opens this database's secrets"),
            );
            Ok(store)
        }
        Ok(Err(e)) => {
            let detail = match e.downcast_ref::<StoreError>() {
                Some(StoreError::Secret(m)) => format!(
                    "key {id} from {from} does not open this database's secrets: {m}. If no file holds the database's key any more, restore that file from backup"
                ),
                _ => format!(
                    "could not open the database with key {id} from {from}: {}",
                    db_error(&e, url)
                ),
            };
            report.line(Status::Fail, what, detail);
            Err("the master key does not open the integrations' credentials".into())
        }
        Err(_) => {
            report.line(Status::Fail, what, format!(
                    "opening the database with key {id} took over {} s: the database is overloaded or locked",
                    DB_STEP_TIMEOUT.as_secs()
                ));
            Err("the database did not open in time".into())
        }
    }
}

// ---- 3. each tenant's PSA --------------------------------------------------------------

async fn check_psas(
    a: &DoctorArgs,
    db: &mut Db,
    store: Result<Arc<dyn Store>, String>,
    report: &mut Report,
) {
    let what = "PSA connections";
    let tenants = match db.conn.tenants_with_integration().await {
        Ok(t) => t,
        Err(_) if !db.current => {
            report.line(
                Status::Skip,
                what,
                "not checked: the database's schema is not this release's",
            );
            return;
        }
        Err(e) => {
            report.line(
                Status::Fail,
                what,
                format!(
                    "the tenants' integrations could not be read: {}",
                    db_error(&e, &db.url)
                ),
            );
            return;
        }
    };
    if tenants.is_empty() {
        report.line(Status::Pass, what, "no tenant has a PSA integration");
        return;
    }
    let store = match store {
        Ok(s) => s,
        Err(why) => {
            report.line(
                Status::Skip,
                what,
                format!(
                    "{} tenant(s) have an integration, not checked: {why}",
                    tenants.len()
                ),
            );
            return;
        }
    };
    let egress = Egress::new(EgressPolicy::new(
        a.egress_allow_private || legacy_allow_private(),
    ));
    let policy = HttpPolicy {
        max_retries: 0,
        timeout: PSA_REQUEST_TIMEOUT,
        max_throttle_wait: Duration::from_secs(10),
        halo_throttle_wait: Duration::from_secs(5),
        ..Default::default()
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(PSA_CONCURRENCY));
    let mut checks = tokio::task::JoinSet::new();
    for (n, (id, name)) in tenants.into_iter().enumerate() {
        let (store, egress, policy, permits) = (
            store.clone(),
            egress.clone(),
            policy.clone(),
            permits.clone(),
        );
        checks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let (status, detail) = check_psa(store.as_ref(), &id, egress, policy).await;
            (n, format!("PSA of tenant {name:?}"), status, detail)
        });
    }
    let mut lines = Vec::new();
    while let Some(done) = checks.join_next().await {
        if let Ok(l) = done {
            lines.push(l);
        }
    }
    lines.sort_by_key(|l| l.0);
    for (_, what, status, detail) in lines {
        report.line(status, &what, detail);
    }
}

/// The URL the connector calls first: the host the line names, and what the egress rules see.
fn psa_url(psa: &str, config: &Value) -> Option<String> {
    let member = match psa {
        "connectwise" => "site_url",
        "autotask" => "zone_url",
        "halopsa" => "url",
        _ => return None,
    };
    let set = config
        .get(member)
        .and_then(Value::as_str)
        .map(str::to_owned);
    set.or_else(|| (psa == "autotask").then(|| neo_psa::autotask::DEFAULT_DISCOVERY.to_owned()))
}

/// `host[:port]` of a URL: never its user info, path or query.
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            })
        })
        .unwrap_or_else(|| "a URL that does not parse".into())
}

/// One cheap authenticated request (a ticket count with no filter, what a backfill's count
/// does) through the PSA connector and the guarded client.
async fn check_psa(
    store: &dyn Store,
    tenant_id: &str,
    egress: Egress,
    policy: HttpPolicy,
) -> (Status, String) {
    let integration = match store.integration(tenant_id).await {
        Ok(Some(i)) => i,
        Ok(None) => return (Status::Skip, "the integration was removed meanwhile".into()),
        Err(e) => {
            return (
                Status::Fail,
                format!("the integration could not be read: {e}"),
            )
        }
    };
    let psa = integration.psa.as_str();
    let label = neo_psa::Psa::parse(psa).map_or(psa, |p| p.label());
    let Some(url) = psa_url(psa, &integration.config) else {
        return (
            Status::Fail,
            format!("{label}: the integration has no URL; connect the PSA again (PUT /public-api/integrations/{psa})"),
        );
    };
    let at = format!("{label} at {}", host_of(&url));
    if let Err(denied) = egress.policy().check_url(&url) {
        return refused(&at, &denied.0);
    }
    let secrets = match store.integration_secrets(tenant_id).await {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            return (
                Status::Fail,
                format!("{at}: the integration's credentials do not open: {e}"),
            )
        }
    };
    let root = neo_domain::filter::Group {
        combinator: neo_domain::filter::Combinator::And,
        rules: Vec::new(),
    };
    let probe = async {
        let client =
            neo_psa::client::PsaClient::connect(psa, &integration.config, &secrets, egress, policy)
                .await?;
        let ticket = neo_domain::backfill::EntityType::Ticket;
        client.count(ticket, &root).await.map(drop)
    };
    let Ok(counted) = tokio::time::timeout(PSA_TENANT_TIMEOUT, probe).await else {
        let secs = PSA_TENANT_TIMEOUT.as_secs();
        return (
            Status::Fail,
            format!("{at} is unreachable: its requests did not finish within {secs} s; check that the PSA is up and reachable from this machine"),
        );
    };
    match counted {
        Ok(()) => (
            Status::Pass,
            format!("{at} answered an authenticated request (a ticket count)"),
        ),
        Err(e) => (Status::Fail, psa_failure(&at, psa, &e)),
    }
}

fn refused(at: &str, why: &str) -> (Status, String) {
    let fix = if why.contains("--egress-allow-private") {
        " (NEO_EGRESS_ALLOW_PRIVATE=true), if the PSA is on a private network on purpose; give doctor the same switch"
    } else {
        "; correct the integration's URL"
    };
    (
        Status::Fail,
        format!("{at} is refused by the egress rules, as serve refuses it: {why}{fix}"),
    )
}

/// A PSA connector's error as one verdict: the connectors' errors are fixed words (the
/// egress client's, and the HTTP status), which is what is told apart here.
fn psa_failure(at: &str, psa: &str, e: &PsaError) -> String {
    let subject = "the PSA";
    let message = match e {
        PsaError::Auth(m)
        | PsaError::Rejected(m)
        | PsaError::Unavailable(m)
        | PsaError::Protocol(m)
        | PsaError::Conflict(m)
        | PsaError::Moved(m) => m.as_str(),
    };
    let timeout = EgressError::Timeout(0).describe(subject);
    let timed_out = timeout.trim_end_matches(" 0 ms");
    let connect = EgressError::Connect.describe(subject);
    let broken = EgressError::Broken.describe(subject);
    let refusal = EgressError::Refused(String::new()).describe(subject);
    let fix_credentials = format!("enter the integration's credentials again (the dashboard's settings, or PUT /public-api/integrations/{psa})");
    if message.contains(&connect) {
        format!("{at} is unreachable: {message} (connection refused, unknown host or TLS failure); check that the PSA is up, that the integration's URL is right and that this machine may reach it")
    } else if message.contains(timed_out) || message.contains(&broken) {
        format!("{at} is unreachable: {message}; check that the PSA is up and reachable from this machine")
    } else if let Some(i) = message.find(&refusal) {
        refused(at, &message[i + refusal.len()..]).1
    } else {
        match e {
            PsaError::Auth(_) => {
                format!("{at} rejected the integration's credentials ({message}); {fix_credentials}")
            }
            PsaError::Unavailable(_) => format!(
                "{at} is unavailable ({message}); try again later, or ask the PSA's administrator"
            ),
            PsaError::Protocol(_) => format!(
                "{at} answered something that is not its API ({message}); check the integration's URL"
            ),
            _ => format!("{at} refused the request ({message}); check the integration's URL and the API user's permissions"),
        }
    }
}

// ---- 4. the clock ----------------------------------------------------------------------

async fn check_clock(db: &mut Db, clock: &dyn Clock, report: &mut Report) {
    let what = "clock";
    let Conn::Pg(c) = &mut db.conn else {
        report.line(
            Status::Pass,
            what,
            "SQLite shares this machine's clock (leases and execution windows read one clock)",
        );
        return;
    };
    const SQL: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";
    let before = to_ms(clock.now());
    let server = tokio::time::timeout(
        DB_STEP_TIMEOUT,
        sqlx::query_scalar::<_, i64>(SQL).fetch_one(&mut *c),
    )
    .await;
    let after = to_ms(clock.now());
    let server = match server {
        Ok(Ok(ms)) => ms,
        Ok(Err(e)) => {
            report.line(
                Status::Fail,
                what,
                format!(
                    "PostgreSQL's clock could not be read: {}",
                    db_error(&e, &db.url)
                ),
            );
            return;
        }
        Err(_) => {
            let secs = DB_STEP_TIMEOUT.as_secs();
            report.line(
                Status::Fail,
                what,
                format!("PostgreSQL did not tell its time within {secs} s"),
            );
            return;
        }
    };
    // The server read its clock somewhere within the round trip: compare with the middle.
    let skew = server - (before + after) / 2;
    let uncertainty = (after - before) / 2;
    let ahead = if skew >= 0 { "ahead of" } else { "behind" };
    let secs = skew.abs() as f64 / 1000.0;
    let (status, detail) = if skew.abs() <= SKEW_WARN_MS {
        (
            Status::Pass,
            format!("PostgreSQL's clock is within {} s of this machine's ({skew:+} ms, measured to ±{uncertainty} ms)", SKEW_WARN_MS / 1000),
        )
    } else {
        (
            if skew.abs() > SKEW_FAIL_MS { Status::Fail } else { Status::Warn },
            format!("PostgreSQL's clock is {secs:.1} s {ahead} this machine's: leases and execution windows compare the two, so synchronise both machines' clocks (NTP: chrony or systemd-timesyncd)"),
        )
    };
    report.line(status, what, detail);
}
