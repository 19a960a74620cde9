//! The `psa_actions` executor (issue 20): one execution changes one record of the tenant's own
//! PSA, through the connectors' read → compare → write ([`crate::write`]).
//!
//! - **live**: read, plan ([`PsaActions::plan`]), record the changes, write, add the notes. A
//!   record that moved between the read and the write ([`PsaError::Moved`]: nothing was sent)
//!   is read and planned again, a few times; a technician's edit is never overwritten by a
//!   plan made before it. A write the PSA itself refuses (a 409 conflict, a 400) fails the
//!   entity and is never sent again.
//! - **shadow**: read, plan, record the plan; nothing is written.
//! - **revert**: read, and restore what the parent backfill wrote while every field it wrote
//!   still holds the written value ([`actions::revert`]); otherwise skip with `changed_since`.
//!
//! Changes are recorded *before* the write and forgotten when the PSA refuses it, so the audit
//! never misses a write. The same execution may run again after a crash or a lost answer: a
//! live run then finds its fields at their targets and plans nothing, and a revert finds the
//! record as its own earlier attempt wrote it ([`actions::holds_written`]); neither writes
//! twice.

use jiff::Timestamp;
use neo_domain::actions::{self, Context, FieldChange, Plan, PsaActions, Revert};
use neo_domain::backfill::BackfillMode;
use neo_store::psa_changes::{Change, ChangeScope, ChangesOf};
use neo_store::source::{ActionJob, ActionOutcome};
use serde_json::Value;

use crate::client::PsaClient;
use crate::http::PsaError;
use crate::source::PsaSource;
use crate::write::fields;

/// Writes refused as conflicts in a row (the record keeps changing) before the entity fails.
pub const MAX_CONFLICTS: usize = 3;

/// Runs one execution; errors of the PSA become the outcome (transient ones are retried by the
/// orchestrator, which plans again).
pub(crate) async fn act(src: &PsaSource, job: &ActionJob<'_>) -> ActionOutcome {
    match run(src, job).await {
        Ok(outcome) => outcome,
        Err(Error::Psa(e)) => {
            if matches!(e, PsaError::Auth(_) | PsaError::Unavailable(_)) {
                src.drop_client(job.tenant_id);
            }
            if e.is_transient() {
                ActionOutcome::Transient(e.to_string())
            } else {
                ActionOutcome::Failed(e.to_string())
            }
        }
        Err(Error::Store(e)) => ActionOutcome::Transient(format!("database: {e}")),
    }
}

enum Error {
    Psa(PsaError),
    Store(neo_store::StoreError),
}

impl From<PsaError> for Error {
    fn from(e: PsaError) -> Self {
        Error::Psa(e)
    }
}

impl From<neo_store::StoreError> for Error {
    fn from(e: neo_store::StoreError) -> Self {
        Error::Store(e)
    }
}

/// What one execution works with.
struct Run<'a> {
    src: &'a PsaSource,
    job: &'a ActionJob<'a>,
    client: PsaClient,
    id: i64,
    scope: ChangeScope<'a>,
}

async fn run(src: &PsaSource, job: &ActionJob<'_>) -> Result<ActionOutcome, Error> {
    let client = src.client(job.tenant_id).await?;
    let Some(writable) = fields::writable(client.psa(), job.entity_type) else {
        return Ok(ActionOutcome::Failed(format!(
            "{} cannot write {} entities",
            client.psa().label(),
            job.entity_type
        )));
    };
    let Ok(id) = job.entity_id.parse::<i64>() else {
        return Ok(ActionOutcome::Failed(format!(
            "entity id {} is not a record id of the PSA",
            job.entity_id
        )));
    };
    let r = Run {
        src,
        job,
        client,
        id,
        scope: ChangeScope {
            tenant_id: job.tenant_id,
            execution_id: job.execution_id,
            backfill_id: job.backfill_id,
            entity_id: job.entity_id,
        },
    };
    if job.mode == BackfillMode::Revert {
        return r.revert().await;
    }
    let actions = match PsaActions::parse(job.executor, writable) {
        Ok(a) => a,
        Err(e) => {
            return Ok(ActionOutcome::Failed(format!(
                "the workflow's actions do not fit the tenant's PSA as it is now: {}",
                e.message
            )))
        }
    };
    let ctx = Context {
        backfill_id: job.backfill_id.to_owned(),
        entity_id: job.entity_id.to_owned(),
        workflow_id: job.workflow_id.to_string(),
    };
    match job.mode {
        BackfillMode::Shadow => r.shadow(&actions, &ctx).await,
        _ => r.live(&actions, &ctx).await,
    }
}

fn field_changes(changes: &[FieldChange]) -> Vec<Change> {
    changes
        .iter()
        .map(|c| Change::Field {
            field: c.field.clone(),
            previous: c.before.clone(),
            new: c.after.clone(),
        })
        .collect()
}

fn pairs(changes: &[FieldChange]) -> Vec<(String, Value)> {
    changes
        .iter()
        .map(|c| (c.field.clone(), c.after.clone()))
        .collect()
}

impl Run<'_> {
    fn store(&self) -> &dyn neo_store::Store {
        self.src.store()
    }

    async fn read(&self) -> Result<Value, PsaError> {
        self.client.read_record(self.job.entity_type, self.id).await
    }

    async fn record(&self, changes: &[Change], replace_fields: bool) -> Result<(), Error> {
        self.store()
            .record_psa_changes(&self.scope, changes, Timestamp::now(), replace_fields)
            .await?;
        Ok(())
    }

    /// What this execution recorded in an earlier attempt.
    async fn own(&self) -> Result<Vec<Change>, Error> {
        Ok(self
            .store()
            .psa_changes(
                self.job.tenant_id,
                ChangesOf::Execution(self.job.execution_id),
            )
            .await?
            .into_iter()
            .map(|c| c.change)
            .collect())
    }

    async fn shadow(&self, actions: &PsaActions, ctx: &Context) -> Result<ActionOutcome, Error> {
        let record = self.read().await?;
        let plan = match actions.plan(&record, ctx) {
            Ok(p) => p,
            Err(e) => return Ok(ActionOutcome::Failed(e.to_string())),
        };
        // The plan is recorded in one transaction: an execution that runs again (a crash
        // before it settled) keeps what its first attempt recorded.
        if !self.own().await?.is_empty() {
            return Ok(ActionOutcome::Succeeded);
        }
        let mut changes = field_changes(&plan.changes);
        changes.extend(plan.notes.iter().map(|n| Change::Note {
            note_id: None,
            text: n.text.clone(),
            internal: n.internal,
        }));
        self.record(&changes, false).await?;
        Ok(ActionOutcome::Succeeded)
    }

    async fn live(&self, actions: &PsaActions, ctx: &Context) -> Result<ActionOutcome, Error> {
        for _ in 0..MAX_CONFLICTS {
            let record = self.read().await?;
            let plan = match actions.plan(&record, ctx) {
                Ok(p) => p,
                Err(e) => return Ok(ActionOutcome::Failed(e.to_string())),
            };
            if plan.changes.is_empty() {
                // Nothing to write (already at the targets, possibly by this execution's own
                // earlier attempt): only a workflow of notes alone has notes left to add.
                return self.add_notes(&plan).await;
            }
            self.record(&field_changes(&plan.changes), true).await?;
            match self
                .client
                .update_record(
                    self.job.entity_type,
                    self.id,
                    &record,
                    &pairs(&plan.changes),
                )
                .await
            {
                Ok(_) => return self.add_notes(&plan).await,
                Err(PsaError::Moved(_)) => continue,
                // Possibly written: the recorded changes stay, and the retry plans again.
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => {
                    self.record(&[], true).await?;
                    return Err(e.into());
                }
            }
        }
        self.record(&[], true).await?;
        Ok(ActionOutcome::Failed(format!(
            "the record changed in the PSA while it was being written ({MAX_CONFLICTS} times in a row); run the entity again"
        )))
    }

    /// Adds the plan's notes this execution has not added yet.
    async fn add_notes(&self, plan: &Plan) -> Result<ActionOutcome, Error> {
        if plan.notes.is_empty() {
            return Ok(ActionOutcome::Succeeded);
        }
        let added = self
            .own()
            .await?
            .iter()
            .filter(|c| matches!(c, Change::Note { .. }))
            .count();
        for note in plan.notes.iter().skip(added) {
            let r = self
                .client
                .add_note(self.job.entity_type, self.id, &note.text, note.internal)
                .await?;
            self.record(
                &[Change::Note {
                    note_id: Some(r.id),
                    text: note.text.clone(),
                    internal: note.internal,
                }],
                false,
            )
            .await?;
        }
        Ok(ActionOutcome::Succeeded)
    }

    async fn revert(&self) -> Result<ActionOutcome, Error> {
        let Some(parent) = self.job.parent_backfill_id else {
            return Ok(ActionOutcome::Failed(
                "a revert needs the backfill it reverts".into(),
            ));
        };
        let written = self
            .store()
            .psa_changes(
                self.job.tenant_id,
                ChangesOf::Entity {
                    backfill_id: parent,
                    entity_id: self.job.entity_id,
                },
            )
            .await?;
        let audit: Vec<FieldChange> = written
            .iter()
            .filter_map(|c| match &c.change {
                Change::Field {
                    field,
                    previous,
                    new,
                } => Some(FieldChange {
                    field: field.clone(),
                    before: previous.clone(),
                    after: new.clone(),
                }),
                _ => None,
            })
            .collect();
        let mut restored = false;
        for _ in 0..MAX_CONFLICTS {
            let record = self.read().await?;
            let own: Vec<FieldChange> = self
                .own()
                .await?
                .into_iter()
                .filter_map(|c| match c {
                    Change::Field {
                        field,
                        previous,
                        new,
                    } => Some(FieldChange {
                        field,
                        before: previous,
                        after: new,
                    }),
                    _ => None,
                })
                .collect();
            // An earlier attempt of this revert already restored the record.
            if !own.is_empty() && actions::holds_written(&own, &record) {
                restored = true;
                break;
            }
            let restore = match actions::revert(&audit, &record) {
                Revert::ChangedSince { fields } => {
                    return Ok(ActionOutcome::Skipped(format!(
                        "changed_since: {} changed in the PSA after backfill {parent} wrote it; left as it is",
                        fields.join(", ")
                    )))
                }
                Revert::Restore(changes) => changes,
            };
            if restore.is_empty() {
                restored = true;
                break;
            }
            self.record(&field_changes(&restore), true).await?;
            match self
                .client
                .update_record(self.job.entity_type, self.id, &record, &pairs(&restore))
                .await
            {
                Ok(_) => {
                    restored = true;
                    break;
                }
                Err(PsaError::Moved(_)) => {
                    self.record(&[], true).await?;
                    continue;
                }
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => {
                    self.record(&[], true).await?;
                    return Err(e.into());
                }
            }
        }
        if !restored {
            return Ok(ActionOutcome::Failed(format!(
                "the record changed in the PSA while it was being restored ({MAX_CONFLICTS} times in a row); run the entity again"
            )));
        }
        if self.job.remove_notes {
            let removed: Vec<String> = self
                .own()
                .await?
                .into_iter()
                .filter_map(|c| match c {
                    Change::NoteRemoved { note_id } => Some(note_id),
                    _ => None,
                })
                .collect();
            for c in &written {
                let Change::Note {
                    note_id: Some(note_id),
                    ..
                } = &c.change
                else {
                    continue;
                };
                if removed.contains(note_id) {
                    continue;
                }
                let note = crate::write::NoteRef {
                    id: note_id.clone(),
                };
                self.client
                    .delete_note(self.job.entity_type, self.id, &note)
                    .await?;
                self.record(
                    &[Change::NoteRemoved {
                        note_id: note_id.clone(),
                    }],
                    false,
                )
                .await?;
            }
        }
        Ok(ActionOutcome::Succeeded)
    }
}
