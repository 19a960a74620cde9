//! The config file: a flat TOML table whose keys are the flags' long names (`database_url` or
//! `database-url`), so that every flag a command has can live in the file and nothing needs
//! a second name.
//!
//! The file is read before the flags, and each of its keys sets the flag's `NEO_*`
//! environment variable unless the environment already has it. clap then does the rest, which
//! gives the precedence flag > environment > file > default with one parser and no second
//! copy of any default. A key no flag has is an error naming it: a typo must not be a silently
//! ignored setting on a server that runs for years.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{CommandFactory, Subcommand};

/// Read when neither `--config` nor `NEO_CONFIG` names a file, and only if it exists.
pub const DEFAULT_PATH: &str = "/etc/neo-backfill/config.toml";

/// Largest config file read (a config file is a few kilobytes).
const MAX_BYTES: u64 = 1 << 20;

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print every setting in effect and where it came from (flag defaults, the environment,
    /// the config file), as a config file; secrets in values are redacted.
    Show,
}

/// What the config file set.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    /// Environment variable → the file's value, for each key the file set (the environment
    /// had none of them).
    pub keys: BTreeMap<String, String>,
}

/// One setting a config key can hold: a flag that has an environment variable.
struct Setting {
    key: String,
    env: String,
    default: Option<String>,
    is_switch: bool,
    help: String,
}

/// Every flag of every command that has an environment variable, once per variable (one
/// variable has one meaning in every command that takes it).
fn settings() -> Vec<Setting> {
    fn walk(cmd: &clap::Command, out: &mut BTreeMap<String, Setting>) {
        for arg in cmd.get_arguments() {
            let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            let env = env.to_string_lossy().into_owned();
            if env == "NEO_CONFIG" || out.contains_key(&env) {
                continue;
            }
            let default = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>();
            let is_switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
            out.insert(
                env.clone(),
                Setting {
                    key: long.replace('-', "_"),
                    env,
                    default: (!default.is_empty() && !is_switch).then(|| default.join(",")),
                    is_switch,
                    help: arg
                        .get_help()
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                },
            );
        }
        // The demo brings its own database and simulator: its flags are not the deployment's.
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "demo") {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&crate::Cli::command(), &mut out);
    let mut v: Vec<Setting> = out.into_values().collect();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

/// The file `--config` (in `args`), `NEO_CONFIG` or the default names, if any.
fn path_from(args: impl IntoIterator<Item = OsString>) -> Option<PathBuf> {
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        if a == "--" {
            break;
        }
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(p) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(PathBuf::from(p));
        }
    }
    if let Some(p) = std::env::var_os("NEO_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    Path::new(DEFAULT_PATH)
        .exists()
        .then(|| PathBuf::from(DEFAULT_PATH))
}

/// Reads the config file named by `args` or the environment, and sets the environment
/// variable of each of its keys that the environment does not set yet.
pub fn load(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Loaded> {
    let Some(path) = path_from(args) else {
        return Ok(Loaded::default());
    };
    let values = parse(&path)?;
    let mut keys = BTreeMap::new();
    for (env, value) in values {
        if std::env::var_os(&env).is_none() {
            std::env::set_var(&env, &value);
            keys.insert(env, value);
        }
    }
    Ok(Loaded {
        path: Some(path),
        keys,
    })
}

/// The file's settings as environment variable → value; an error names the file and the key.
fn parse(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("config file {shown}"))?;
    if meta.len() > MAX_BYTES {
        bail!("config file {shown} is larger than {MAX_BYTES} bytes");
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("config file {shown}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("config file {shown}: {}", e.message()))?;
    let settings = settings();
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let text = match value {
            toml::Value::String(v) => v,
            toml::Value::Integer(v) => v.to_string(),
            toml::Value::Float(v) => v.to_string(),
            toml::Value::Boolean(v) => v.to_string(),
            toml::Value::Datetime(v) => v.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    toml::Value::String(v) => Ok(v),
                    toml::Value::Integer(v) => Ok(v.to_string()),
                    _ => Err(anyhow::anyhow!(
                        "config file {shown}: `{key}` may hold strings and numbers only"
                    )),
                })
                .collect::<anyhow::Result<Vec<_>>>()?
                .join(","),
            toml::Value::Table(_) => bail!(
                "config file {shown}: `{key}` is a table; the file is one flat table of the flags' long names"
            ),
        };
        let norm = key.replace('-', "_");
        let Some(s) = settings.iter().find(|s| s.key == norm) else {
            bail!(
                "config file {shown}: unknown key `{key}` (keys are the long names of the flags, as `neo-backfill config show` lists them)"
            );
        };
        out.insert(s.env.clone(), text);
    }
    Ok(out)
}

pub fn run(cmd: ConfigCommand, file: &Loaded) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Show => {
            print!("{}", show(file));
            Ok(())
        }
    }
}

/// Every setting in effect, as a config file with each value's source in a comment.
fn show(file: &Loaded) -> String {
    let mut out = String::new();
    match &file.path {
        Some(p) => out.push_str(&format!("# config file: {}\n", p.display())),
        None => out.push_str(&format!(
            "# config file: none (--config, NEO_CONFIG, or {DEFAULT_PATH})\n"
        )),
    }
    for s in settings() {
        let (value, source) = if let Some(v) = file.keys.get(&s.env) {
            (Some(v.clone()), "config file")
        } else if let Some(v) = std::env::var_os(&s.env) {
            (Some(v.to_string_lossy().into_owned()), "environment")
        } else if let Some(d) = &s.default {
            (Some(d.clone()), "default")
        } else if s.is_switch {
            (Some("false".to_owned()), "default")
        } else {
            (None, "unset")
        };
        if !s.help.is_empty() {
            out.push_str(&format!("# {}\n", s.help));
        }
        match value {
            Some(v) => out.push_str(&format!(
                "{} = {}  # {source}, {}\n",
                s.key,
                toml_value(&redact(&s.key, &v), s.is_switch),
                s.env
            )),
            None => out.push_str(&format!("# {} =  # unset, {}\n", s.key, s.env)),
        }
    }
    out
}

/// A value as it is shown: credentials in URLs and values of secret-named keys hidden.
fn redact(key: &str, value: &str) -> String {
    if ["secret", "password", "token"]
        .iter()
        .any(|w| key.contains(w))
    {
        return "***".to_owned();
    }
    crate::args::redact_url(value)
}

fn toml_value(v: &str, is_switch: bool) -> String {
    let switch = is_switch && matches!(v, "true" | "false");
    if switch || v.parse::<i64>().is_ok() {
        v.to_owned()
    } else {
        toml::Value::String(v.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn keys_are_the_flags_long_names_with_either_separator() {
        let (_d, p) = write(
            "database_url = \"sqlite:///x.db\"\nlease-secs = 7\negress_allow_private = true\nentra_issuers = [\"a\", \"b\"]\n",
        );
        let v = parse(&p).unwrap();
        assert_eq!(v["NEO_DATABASE_URL"], "sqlite:///x.db");
        assert_eq!(v["NEO_LEASE_SECS"], "7");
        assert_eq!(v["NEO_EGRESS_ALLOW_PRIVATE"], "true");
        assert_eq!(v["NEO_ENTRA_ISSUERS"], "a,b");
    }

    #[test]
    fn an_unknown_key_or_a_table_is_an_error_naming_it() {
        let (_d, p) = write("listen = \"127.0.0.1:1\"\nlisten_adress = \"x\"\n");
        let e = parse(&p).unwrap_err().to_string();
        assert!(e.contains("unknown key `listen_adress`"), "{e}");
        let (_d, p) = write("[serve]\nlisten = \"x\"\n");
        let e = parse(&p).unwrap_err().to_string();
        assert!(e.contains("`serve` is a table"), "{e}");
        let (_d, p) = write("listen = \n");
        let e = parse(&p).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("config file {}:", p.display())),
            "{e}"
        );
    }

    #[test]
    fn the_config_flag_is_found_before_clap_reads_the_rest() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            path_from(args(&["neo", "serve", "--config", "/a.toml"])),
            Some(PathBuf::from("/a.toml"))
        );
        assert_eq!(
            path_from(args(&["neo", "--config=/b.toml", "serve"])),
            Some(PathBuf::from("/b.toml"))
        );
    }

    #[test]
    fn secrets_are_redacted_when_shown() {
        assert_eq!(
            redact("database_url", "postgres://neo:hunter2@db:5432/neo"),
            "postgres://***@db:5432/neo"
        );
        assert_eq!(redact("client_secret", "abc"), "***");
        assert_eq!(toml_value("8080", false), "8080");
        assert_eq!(toml_value("true", true), "true");
        // Whatever quoting TOML picks, the file reads back the same value.
        let quoted = toml_value("a\"b", false);
        let back: toml::Table = format!("k = {quoted}").parse().unwrap();
        assert_eq!(back["k"].as_str(), Some("a\"b"));
    }
}
