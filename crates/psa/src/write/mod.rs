//! Writing PSA records: the connector side of the `psa_actions` executor (issue 20). A write
//! is read → compare → write: the caller hands back the record as it read it, the connector
//! reads it again right before writing, and refuses with [`PsaError::Moved`] when its
//! concurrency token moved (ConnectWise `_info/lastUpdated`, Autotask `lastActivityDate`,
//! HaloPSA `last_update`). None of the three documents a conditional update the connector
//! could rely on, so the check is the client's, and the window between the check and the write
//! is one round trip; a technician's edit is never overwritten by a write planned before it.
//!
//! Updates send absolute values, so sending one again is harmless and it is retried like a
//! read; a note is not retried after a 5xx or a dropped connection (it might have been added).
//! Refusals are never echoed: errors name the call and the status only.
//!
//! Map: [`fields`] (what may be written, per PSA), [`connectwise`] (JSON Patch), [`autotask`]
//! (`PATCH` by entity), [`halo`] (`POST` with the id). Tickets only so far.

mod autotask;
mod connectwise;
pub mod fields;
mod halo;

use neo_domain::backfill::EntityType;
use serde_json::Value;

use crate::client::PsaClient;
use crate::compile::eval;
use crate::http::PsaError;
use crate::Psa;

/// A note added to a record: its id in the PSA (to remove it on a revert, where the PSA can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteRef {
    pub id: String,
}

/// The path of a record's concurrency token on `psa`.
pub fn token_path(psa: Psa) -> &'static str {
    match psa {
        Psa::ConnectWise => "_info/lastUpdated",
        Psa::Autotask => "lastActivityDate",
        Psa::Halo => "last_update",
    }
}

/// Whether the PSA's API can delete a note an API user added (Autotask's cannot): a revert's
/// `remove_notes` is refused up front where it cannot be done.
pub fn can_delete_notes(psa: Psa) -> bool {
    psa != Psa::Autotask
}

fn token(psa: Psa, record: &Value) -> Option<&Value> {
    eval::field(record, psa, token_path(psa))
}

fn tickets_only(psa: Psa, entity: EntityType) -> Result<(), PsaError> {
    if entity == EntityType::Ticket {
        Ok(())
    } else {
        Err(PsaError::Rejected(format!(
            "writes to {entity} entities of {} are not supported yet",
            psa.as_str()
        )))
    }
}

impl PsaClient {
    /// Record `id` as the PSA returns it by id.
    pub async fn read_record(&self, entity: EntityType, id: i64) -> Result<Value, PsaError> {
        tickets_only(self.psa(), entity)?;
        match self {
            Self::ConnectWise(c) => c.read_ticket(id).await,
            Self::Autotask { client, .. } => client.read_ticket(id).await,
            Self::Halo(c) => c.read_ticket(id).await,
        }
    }

    /// Sets `changes` (field path → new value) on record `id`, provided it is still as `read`
    /// (its concurrency token, see the module doc); returns the record after the write.
    pub async fn update_record(
        &self,
        entity: EntityType,
        id: i64,
        read: &Value,
        changes: &[(String, Value)],
    ) -> Result<Value, PsaError> {
        let psa = self.psa();
        let now = self.read_record(entity, id).await?;
        let (before, current) = (token(psa, read), token(psa, &now));
        if before.is_none() || before != current {
            return Err(PsaError::Moved(format!(
                "{} ticket {id}: {} was {} when read and is {} now",
                psa.as_str(),
                token_path(psa),
                before.map_or("absent".into(), Value::to_string),
                current.map_or("absent".into(), Value::to_string),
            )));
        }
        if changes.is_empty() {
            return Ok(now);
        }
        match self {
            Self::ConnectWise(c) => c.patch_ticket(id, changes).await,
            Self::Autotask { client, .. } => {
                client.patch_ticket(id, changes).await?;
                client.read_ticket(id).await
            }
            Self::Halo(c) => c.post_ticket(id, changes).await,
        }
    }

    /// Adds a note to record `id` (`internal`: hidden from the client's contacts).
    pub async fn add_note(
        &self,
        entity: EntityType,
        id: i64,
        text: &str,
        internal: bool,
    ) -> Result<NoteRef, PsaError> {
        tickets_only(self.psa(), entity)?;
        match self {
            Self::ConnectWise(c) => c.add_note(id, text, internal).await,
            Self::Autotask { client, .. } => client.add_note(id, text, internal).await,
            Self::Halo(c) => c.add_note(id, text, internal).await,
        }
    }

    /// Removes a note this service added (Autotask's API cannot: refused).
    pub async fn delete_note(
        &self,
        entity: EntityType,
        id: i64,
        note: &NoteRef,
    ) -> Result<(), PsaError> {
        tickets_only(self.psa(), entity)?;
        match self {
            Self::ConnectWise(c) => c.delete_note(id, note).await,
            Self::Autotask { .. } => Err(PsaError::Rejected(
                "Autotask's API cannot delete ticket notes: remove it in Autotask".into(),
            )),
            Self::Halo(c) => c.delete_note(id, note).await,
        }
    }
}

/// The id member of a created object, as a string (`id` or Autotask's `itemId`).
fn created_id(v: &Value, what: &str) -> Result<NoteRef, PsaError> {
    let v = match v {
        Value::Array(a) => a.first().unwrap_or(&Value::Null),
        v => v,
    };
    v.get("id")
        .or_else(|| v.get("itemId"))
        .and_then(Value::as_i64)
        .map(|id| NoteRef { id: id.to_string() })
        .ok_or_else(|| PsaError::Protocol(format!("{what}: an answer without the new id")))
}
