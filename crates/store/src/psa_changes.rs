//! What `psa_actions` executions changed in the PSA (issue 20): the field-update audit of a
//! live run, the diff of a shadow run, and what a revert reads back. One row per field or
//! note, written once for both backends (`$N` placeholders): `psa_change_queries!($db)` in a
//! backend module defines the statements.
//!
//! The executor records a write *before* sending it and forgets it when the PSA refuses it,
//! so a crash between the two leaves the audit saying what may have been written, never a
//! write it does not know of (a revert then finds the record as written, or as it was).

use jiff::Timestamp;
use serde_json::Value;

/// One change to a PSA record.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A field set from `previous` to `new` (JSON values as the PSA spells them).
    Field {
        field: String,
        previous: Value,
        new: Value,
    },
    /// A note added (a shadow run records the text only: no note id).
    Note {
        note_id: Option<String>,
        text: String,
        internal: bool,
    },
    /// A note a revert removed.
    NoteRemoved { note_id: String },
}

impl Change {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Change::Field { .. } => "field",
            Change::Note { .. } => "note",
            Change::NoteRemoved { .. } => "note_removed",
        }
    }
}

/// A recorded change, with the execution and entity it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct PsaChange {
    pub execution_id: String,
    pub backfill_id: String,
    pub entity_id: String,
    /// Order within the execution.
    pub seq: i64,
    pub at: Timestamp,
    pub change: Change,
}

/// Whose changes are recorded: one execution of one backfill on one entity.
#[derive(Debug, Clone, Copy)]
pub struct ChangeScope<'a> {
    pub tenant_id: &'a str,
    pub execution_id: &'a str,
    pub backfill_id: &'a str,
    pub entity_id: &'a str,
}

/// Which changes to read.
#[derive(Debug, Clone, Copy)]
pub enum ChangesOf<'a> {
    /// One execution's, in order.
    Execution(&'a str),
    /// Those of one backfill on one entity (what a revert restores), in order.
    Entity {
        backfill_id: &'a str,
        entity_id: &'a str,
    },
    /// Those of the items of a backfill from ord `first` to `last` (a page of its items).
    Items {
        backfill_id: &'a str,
        first: i64,
        last: i64,
    },
}

/// How many entities one field change (`field`: `previous` → `new`) of a backfill touched.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeTotal {
    pub field: String,
    pub previous: Value,
    pub new: Value,
    pub entities: i64,
}

macro_rules! psa_change_queries {
    ($db:ty) => {
        const PSA_CHANGE_COLUMNS: &str = "c.execution_id, c.backfill_id, c.entity_id, c.seq, c.at, c.kind, c.field, c.previous_value, c.new_value, c.note_id, c.internal";

        /// Records `changes` of `scope` after the ones it has; with `replace_fields`, its field
        /// changes recorded so far are dropped first (a write planned again, or refused).
        pub(crate) async fn insert_psa_changes(
            tx: &mut sqlx::Transaction<'_, $db>,
            scope: &ChangeScope<'_>,
            changes: &[Change],
            at: Timestamp,
            replace_fields: bool,
        ) -> Result<()> {
            if replace_fields {
                sqlx::query("DELETE FROM psa_changes WHERE execution_id = $1 AND tenant_id = $2 AND kind = 'field'")
                    .bind(scope.execution_id)
                    .bind(scope.tenant_id)
                    .execute(&mut **tx)
                    .await?;
            }
            let next: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM psa_changes WHERE execution_id = $1",
            )
            .bind(scope.execution_id)
            .fetch_one(&mut **tx)
            .await?;
            for (i, c) in changes.iter().enumerate() {
                let (field, previous, new, note_id, internal) = match c {
                    Change::Field {
                        field,
                        previous,
                        new,
                    } => (
                        Some(field.as_str()),
                        Some(to_json_text(previous)?),
                        Some(to_json_text(new)?),
                        None,
                        None,
                    ),
                    Change::Note {
                        note_id,
                        text,
                        internal,
                    } => (
                        None,
                        None,
                        Some(to_json_text(text)?),
                        note_id.as_deref(),
                        Some(*internal),
                    ),
                    Change::NoteRemoved { note_id } => {
                        (None, None, None, Some(note_id.as_str()), None)
                    }
                };
                sqlx::query("INSERT INTO psa_changes (execution_id, seq, tenant_id, backfill_id, entity_id, kind, field, previous_value, new_value, note_id, internal, at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                    .bind(scope.execution_id)
                    .bind(next + i as i64)
                    .bind(scope.tenant_id)
                    .bind(scope.backfill_id)
                    .bind(scope.entity_id)
                    .bind(c.kind())
                    .bind(field)
                    .bind(previous)
                    .bind(new)
                    .bind(note_id)
                    .bind(internal)
                    .bind(to_ms(at))
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(())
        }

        pub(crate) async fn select_psa_changes(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            of: ChangesOf<'_>,
        ) -> Result<Vec<PsaChange>> {
            type Row = (
                String,
                String,
                String,
                i64,
                i64,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<bool>,
            );
            let rows: Vec<Row> = match of {
                ChangesOf::Execution(id) => {
                    sqlx::query_as(&format!("SELECT {PSA_CHANGE_COLUMNS} FROM psa_changes c WHERE c.tenant_id = $1 AND c.execution_id = $2 ORDER BY c.seq"))
                        .bind(tenant_id)
                        .bind(id)
                        .fetch_all(r)
                        .await?
                }
                ChangesOf::Entity {
                    backfill_id,
                    entity_id,
                } => {
                    sqlx::query_as(&format!("SELECT {PSA_CHANGE_COLUMNS} FROM psa_changes c WHERE c.tenant_id = $1 AND c.backfill_id = $2 AND c.entity_id = $3 ORDER BY c.at, c.execution_id, c.seq"))
                        .bind(tenant_id)
                        .bind(backfill_id)
                        .bind(entity_id)
                        .fetch_all(r)
                        .await?
                }
                ChangesOf::Items {
                    backfill_id,
                    first,
                    last,
                } => {
                    sqlx::query_as(&format!("SELECT {PSA_CHANGE_COLUMNS} FROM backfill_items i JOIN psa_changes c ON c.execution_id = i.execution_id \
                                             WHERE i.backfill_id = $1 AND i.ord >= $2 AND i.ord <= $3 AND c.tenant_id = $4 ORDER BY i.ord, c.seq"))
                        .bind(backfill_id)
                        .bind(first)
                        .bind(last)
                        .bind(tenant_id)
                        .fetch_all(r)
                        .await?
                }
            };
            rows.into_iter()
                .map(
                    |(execution_id, backfill_id, entity_id, seq, at, kind, field, previous, new, note_id, internal)| {
                        let json = |v: Option<String>| v.as_deref().map(parse_json).transpose();
                        let change = match kind.as_str() {
                            "field" => Change::Field {
                                field: field.unwrap_or_default(),
                                previous: json(previous)?.unwrap_or(Value::Null),
                                new: json(new)?.unwrap_or(Value::Null),
                            },
                            "note" => Change::Note {
                                note_id,
                                text: json(new)?
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default(),
                                internal: internal.unwrap_or(true),
                            },
                            "note_removed" => Change::NoteRemoved {
                                note_id: note_id.unwrap_or_default(),
                            },
                            k => return Err(StoreError::Corrupt(format!("unknown change kind {k}"))),
                        };
                        Ok(PsaChange {
                            execution_id,
                            backfill_id,
                            entity_id,
                            seq,
                            at: neo_domain::clock::from_ms(at),
                            change,
                        })
                    },
                )
                .collect()
        }

        /// The field changes of a backfill grouped by (field, previous, new), most entities
        /// first, at most `limit` groups.
        pub(crate) async fn select_change_totals(
            r: &sqlx::Pool<$db>,
            tenant_id: &str,
            backfill_id: &str,
            limit: usize,
        ) -> Result<Vec<ChangeTotal>> {
            let rows: Vec<(Option<String>, Option<String>, Option<String>, i64)> = sqlx::query_as(
                "SELECT field, previous_value, new_value, COUNT(DISTINCT entity_id) AS n FROM psa_changes \
                 WHERE tenant_id = $1 AND backfill_id = $2 AND kind = 'field' \
                 GROUP BY field, previous_value, new_value ORDER BY n DESC, field, previous_value, new_value LIMIT $3",
            )
            .bind(tenant_id)
            .bind(backfill_id)
            .bind(limit as i64)
            .fetch_all(r)
            .await?;
            rows.into_iter()
                .map(|(field, previous, new, n)| {
                    let json = |v: Option<String>| -> Result<Value> {
                        Ok(v.as_deref().map(parse_json).transpose()?.unwrap_or(Value::Null))
                    };
                    Ok(ChangeTotal {
                        field: field.unwrap_or_default(),
                        previous: json(previous)?,
                        new: json(new)?,
                        entities: n,
                    })
                })
                .collect()
        }
    };
}
pub(crate) use psa_change_queries;
