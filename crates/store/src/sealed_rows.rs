//! Secrets at rest, row side: which stored values are sealed, with which associated data, and
//! how rows are sealed, opened, migrated and re-wrapped (the cryptography is `crate::secrets`).

use serde_json::Value;

use crate::rows::*;
use crate::secrets::OpenError;
use crate::*;

/// The `server_settings` row that tells whether the configured master key is the database's
/// (doctor and restore look for it too).
pub const KEY_CHECK: &str = "master_key_check";
const KEY_CHECK_PLAIN: &str = "neo-backfill master key check v1";
const KEY_CHECK_CONTEXT: &str = "server_settings|master_key_check";

fn no_key(what: &str) -> StoreError {
    StoreError::Secret(format!(
        "no master key configured: cannot seal or open {what} (start with --master-key-file or NEO_MASTER_KEY_FILE)"
    ))
}

fn secret_context(tenant_id: &str, name: &str) -> (String, String) {
    (
        format!("integrations|{tenant_id}|secrets.{name}"),
        format!("integrations.secrets.{name} of tenant {tenant_id}"),
    )
}

fn executor_context(tenant_id: &str, id: i64) -> (String, String) {
    (
        format!("workflows|{tenant_id}|{id}|executor.secret"),
        format!("workflows.executor.secret of workflow {id} (tenant {tenant_id})"),
    )
}

fn endpoint_context(tenant_id: &str, id: &str) -> (String, String) {
    (
        format!("notification_endpoints|{tenant_id}|{id}|secret"),
        format!("notification_endpoints.secret of endpoint {id} (tenant {tenant_id})"),
    )
}

/// A notification endpoint's signing secret as stored: sealed for its tenant and id.
pub(crate) fn seal_endpoint_secret(
    sealer: Option<&Sealer>,
    tenant_id: &str,
    id: &str,
    secret: &str,
) -> Result<String> {
    let sealer = sealer.ok_or_else(|| no_key("notification endpoint secrets"))?;
    Ok(sealer.seal(secret, &endpoint_context(tenant_id, id).0))
}

/// A notification endpoint's stored secret, opened (for signing its events only).
pub(crate) fn open_endpoint_secret(
    sealer: Option<&Sealer>,
    tenant_id: &str,
    id: &str,
    stored: &str,
) -> Result<String> {
    let sealer = sealer.ok_or_else(|| no_key("notification endpoint secrets"))?;
    if !Sealer::is_sealed(stored) {
        return Ok(stored.to_owned());
    }
    let (context, place) = endpoint_context(tenant_id, id);
    let plain = sealer
        .open(stored, &context)
        .map_err(|e| unopenable(&place, e))?;
    Ok(plain.to_string())
}

fn unopenable(place: &str, e: OpenError) -> StoreError {
    StoreError::Secret(format!("cannot open {place}: {e}"))
}

/// A stored secret brought under `new`: sealed if plaintext, re-wrapped if sealed by `old`
/// (a rotation), else unchanged (`None`).
fn reseal_value(
    old: Option<&Sealer>,
    new: &Sealer,
    stored: &str,
    (context, place): &(String, String),
) -> Result<Option<String>> {
    if !Sealer::is_sealed(stored) {
        return Ok(Some(new.seal(stored, context)));
    }
    match old {
        Some(old) => old
            .rewrap(stored, context, new)
            .map(Some)
            .map_err(|e| unopenable(place, e)),
        // Sealed by another key: the key check is missing or was replaced; refuse to go on.
        None => match stored.split('.').nth(1) {
            Some(id) if id != new.key_id() => Err(unopenable(
                place,
                OpenError::OtherKey {
                    sealed_with: id.to_owned(),
                    configured: new.key_id().to_owned(),
                },
            )),
            _ => Ok(None),
        },
    }
}

/// An integration's secrets as stored: each member's value sealed for its tenant and name
/// (the names stay readable: the API lists them).
pub(crate) fn seal_secrets(
    sealer: Option<&Sealer>,
    tenant_id: &str,
    secrets: &Value,
) -> Result<Value> {
    let Some(members) = secrets.as_object().filter(|m| !m.is_empty()) else {
        return Ok(secrets.clone());
    };
    let sealer = sealer.ok_or_else(|| no_key("integration secrets"))?;
    let mut out = serde_json::Map::new();
    for (name, v) in members {
        let Some(s) = v.as_str() else {
            return Err(StoreError::Conflict(format!(
                "integration secret {name:?} must be a string"
            )));
        };
        out.insert(
            name.clone(),
            Value::String(sealer.seal(s, &secret_context(tenant_id, name).0)),
        );
    }
    Ok(Value::Object(out))
}

/// An integration's secrets as the PSA connector needs them: every member opened.
pub(crate) fn open_secrets(
    sealer: Option<&Sealer>,
    tenant_id: &str,
    stored: Value,
) -> Result<Value> {
    let Value::Object(members) = stored else {
        return Ok(stored);
    };
    if members.is_empty() {
        return Ok(Value::Object(members));
    }
    let sealer = sealer.ok_or_else(|| no_key("integration secrets"))?;
    let mut out = serde_json::Map::new();
    for (name, v) in members {
        let v = match v {
            Value::String(s) if Sealer::is_sealed(&s) => {
                let (context, place) = secret_context(tenant_id, &name);
                let plain = sealer
                    .open(&s, &context)
                    .map_err(|e| unopenable(&place, e))?;
                Value::String(plain.to_string())
            }
            other => other,
        };
        out.insert(name, v);
    }
    Ok(Value::Object(out))
}

/// The executor's `secret` (a webhook's signing secret), if it has one.
pub(crate) fn executor_secret(executor: &Value) -> Option<&str> {
    executor.get("secret")?.as_str()
}

/// The executor with its `secret` replaced by `secret`.
pub(crate) fn with_executor_secret(executor: &Value, secret: Value) -> Value {
    let mut e = executor.clone();
    if let Some(o) = e.as_object_mut() {
        o.insert("secret".into(), secret);
    }
    e
}

/// A workflow's executor as stored: `secret` sealed for its tenant and workflow id.
pub(crate) fn seal_executor(
    sealer: Option<&Sealer>,
    tenant_id: &str,
    id: i64,
    executor: &Value,
) -> Result<Value> {
    let Some(secret) = executor_secret(executor) else {
        return Ok(executor.clone());
    };
    let sealer = sealer.ok_or_else(|| no_key("webhook secrets"))?;
    let sealed = sealer.seal(secret, &executor_context(tenant_id, id).0);
    Ok(with_executor_secret(executor, Value::String(sealed)))
}

/// Fails as writing would without a master key: before a write that seals after its insert.
pub(crate) fn check_can_seal(sealer: Option<&Sealer>, executor: &Value) -> Result<()> {
    match (sealer, executor_secret(executor)) {
        (None, Some(_)) => Err(no_key("webhook secrets")),
        _ => Ok(()),
    }
}

/// Opens the executor secret of a workflow read from the database, in place.
pub(crate) fn open_workflow(sealer: Option<&Sealer>, w: &mut Workflow) -> Result<()> {
    let Some(stored) = executor_secret(&w.executor) else {
        return Ok(());
    };
    let sealer = sealer.ok_or_else(|| no_key("webhook secrets"))?;
    if !Sealer::is_sealed(stored) {
        return Ok(());
    }
    let (context, place) = executor_context(&w.tenant_id, w.id);
    let plain = sealer
        .open(stored, &context)
        .map_err(|e| unopenable(&place, e))?;
    w.executor = with_executor_secret(&w.executor, Value::String(plain.to_string()));
    Ok(())
}

/// [`open_workflow`] over a page or list.
pub(crate) fn open_workflows(sealer: Option<&Sealer>, ws: &mut [Workflow]) -> Result<()> {
    ws.iter_mut().try_for_each(|w| open_workflow(sealer, w))
}

/// An integration's stored `secrets` text brought under `new` (see [`reseal_value`]); `None`
/// when nothing changes. Returns the number of members changed too.
pub(crate) fn reseal_secrets_text(
    old: Option<&Sealer>,
    new: &Sealer,
    tenant_id: &str,
    text: &str,
) -> Result<Option<(String, u64)>> {
    let Value::Object(mut members) = parse_json(text)? else {
        return Ok(None);
    };
    let mut changed = 0;
    for (name, v) in members.iter_mut() {
        if let Value::String(s) = v {
            if let Some(n) = reseal_value(old, new, s, &secret_context(tenant_id, name))? {
                *s = n;
                changed += 1;
            }
        }
    }
    Ok((changed > 0).then(|| (Value::Object(members).to_string(), changed)))
}

/// A notification endpoint's stored secret brought under `new`; `None` when nothing changes.
pub(crate) fn reseal_endpoint_secret(
    old: Option<&Sealer>,
    new: &Sealer,
    tenant_id: &str,
    id: &str,
    stored: &str,
) -> Result<Option<String>> {
    reseal_value(old, new, stored, &endpoint_context(tenant_id, id))
}

/// A workflow's stored `executor` text brought under `new`; `None` when nothing changes.
pub(crate) fn reseal_executor_text(
    old: Option<&Sealer>,
    new: &Sealer,
    tenant_id: &str,
    id: i64,
    text: &str,
) -> Result<Option<String>> {
    let executor = parse_json(text)?;
    let Some(stored) = executor_secret(&executor) else {
        return Ok(None);
    };
    Ok(
        reseal_value(old, new, stored, &executor_context(tenant_id, id))?
            .map(|n| with_executor_secret(&executor, Value::String(n)).to_string()),
    )
}

/// The key check sealed with `sealer`, as `server_settings` stores it.
pub(crate) fn key_check_value(sealer: &Sealer) -> Vec<u8> {
    sealer.seal(KEY_CHECK_PLAIN, KEY_CHECK_CONTEXT).into_bytes()
}

/// Whether `sealer` is the database's master key, by its stored key check.
pub(crate) fn verify_key_check(sealer: &Sealer, stored: &[u8]) -> Result<()> {
    let stored = String::from_utf8_lossy(stored);
    let db_key = stored
        .strip_prefix(crate::secrets::SEALED_PREFIX)
        .and_then(|s| s.split('.').next())
        .unwrap_or("unknown");
    match sealer.open(&stored, KEY_CHECK_CONTEXT) {
        Ok(v) if v.as_str() == KEY_CHECK_PLAIN => Ok(()),
        Ok(_) | Err(OpenError::Malformed(_)) | Err(OpenError::Tampered(_)) => {
            Err(StoreError::Secret(format!(
                "the database's master key check does not open with the configured master key {}: the key does not match or the check was tampered with",
                sealer.key_id()
            )))
        }
        Err(OpenError::OtherKey { .. }) => Err(StoreError::Secret(format!(
            "wrong master key: the database's secrets are sealed with master key {db_key}, but the configured master key is {}; start with the key file of key {db_key} (see `neo-backfill secrets rotate-master-key` to change keys)",
            sealer.key_id()
        ))),
    }
}

/// The row writes of sealing, one statement text for both backends (`$N` placeholders):
/// `sealing_writes!(sqlx::Sqlite, "")` in a backend module defines `put_key_check` and
/// `reseal_all` for its transactions; PostgreSQL passes `" FOR UPDATE"` to lock the rows it
/// re-seals (replicas may start at once).
macro_rules! sealing_writes {
    ($db:ty, $lock:literal) => {
        /// Stores the key check of `sealer` (see [`key_check_value`]).
        pub(crate) async fn put_key_check(
            tx: &mut sqlx::Transaction<'_, $db>,
            sealer: &Sealer,
        ) -> Result<()> {
            sqlx::query("INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
                .bind(KEY_CHECK)
                .bind(key_check_value(sealer))
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Every secret brought under `new` (see [`reseal_value`]).
        pub(crate) async fn reseal_all(
            tx: &mut sqlx::Transaction<'_, $db>,
            old: Option<&Sealer>,
            new: &Sealer,
        ) -> Result<SecretsReport> {
            let mut report = SecretsReport::default();
            let rows: Vec<(String, String)> = sqlx::query_as(concat!(
                "SELECT tenant_id, secrets FROM integrations ORDER BY tenant_id",
                $lock
            ))
            .fetch_all(&mut **tx)
            .await?;
            for (tenant_id, text) in rows {
                if let Some((text, n)) = reseal_secrets_text(old, new, &tenant_id, &text)? {
                    sqlx::query("UPDATE integrations SET secrets = $1 WHERE tenant_id = $2")
                        .bind(text)
                        .bind(&tenant_id)
                        .execute(&mut **tx)
                        .await?;
                    report.integrations += 1;
                    report.integration_secrets += n;
                }
            }
            let rows: Vec<(i64, String, String)> = sqlx::query_as(concat!(
                "SELECT id, tenant_id, executor FROM workflows WHERE executor LIKE '%secret%' ORDER BY id",
                $lock
            ))
            .fetch_all(&mut **tx)
            .await?;
            for (id, tenant_id, text) in rows {
                if let Some(text) = reseal_executor_text(old, new, &tenant_id, id, &text)? {
                    sqlx::query("UPDATE workflows SET executor = $1 WHERE id = $2")
                        .bind(text)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    report.workflows += 1;
                }
            }
            let rows: Vec<(String, String, String)> = sqlx::query_as(concat!(
                "SELECT id, tenant_id, secret FROM notification_endpoints ORDER BY id",
                $lock
            ))
            .fetch_all(&mut **tx)
            .await?;
            for (id, tenant_id, stored) in rows {
                if let Some(text) = reseal_endpoint_secret(old, new, &tenant_id, &id, &stored)? {
                    sqlx::query("UPDATE notification_endpoints SET secret = $1 WHERE id = $2")
                        .bind(text)
                        .bind(&id)
                        .execute(&mut **tx)
                        .await?;
                    report.notification_endpoints += 1;
                }
            }
            Ok(report)
        }

        /// At open: checks `sealer` against the database's key check (writing it if absent)
        /// and seals every secret stored in plaintext. The backend's `lock_key_check` makes
        /// replicas that start together take turns.
        pub(crate) async fn seal_at_open(
            tx: &mut sqlx::Transaction<'_, $db>,
            sealer: &Sealer,
        ) -> Result<SecretsReport> {
            match lock_key_check(tx).await? {
                Some(v) => verify_key_check(sealer, &v)?,
                None => put_key_check(tx, sealer).await?,
            }
            reseal_all(tx, None, sealer).await
        }

        /// A master-key rotation: every secret re-sealed from `old` to `new`, and the key
        /// check replaced, in `tx`.
        pub(crate) async fn rotate_master_key_tx(
            tx: &mut sqlx::Transaction<'_, $db>,
            old: Option<&Sealer>,
            new: &Sealer,
        ) -> Result<SecretsReport> {
            let old = old.ok_or_else(|| {
                StoreError::Secret("no master key configured: rotation needs the current key".into())
            })?;
            if let Some(v) = lock_key_check(tx).await? {
                verify_key_check(old, &v)?;
            }
            let report = reseal_all(tx, Some(old), new).await?;
            put_key_check(tx, new).await?;
            Ok(report)
        }
    };
}
pub(crate) use sealing_writes;
