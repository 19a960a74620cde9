//! Writes to tickets through each PSA's API (the `psa_actions` executor's target), the notes it
//! adds, a log of both, and the technician who edits tickets in the PSA meanwhile.
//!
//! Why an overlay: the data set is generated once, shared behind an `Arc` and often
//! pre-rendered, and may hold a million tickets; a write must not copy it. The rows written
//! since are kept here instead, and every read path lays them over the data set
//! ([`SimState::snapshot`], `RowSet::with_writes`), so lists, counts, conditions and filters,
//! gets and `resource_rows` all see the written values. With nothing written a read pays one
//! branch per row.
//!
//! Why per view: a real tenant runs one PSA, so a write through the ConnectWise API need not
//! show in the Autotask view. Keeping the three views apart also keeps each written row exactly
//! what its PSA renders, without translating a write into the other two vocabularies.
//!
//! Why a concurrency check: the executor must not overwrite a technician's change it has not
//! seen. Each PSA has an optimistic token of its own (ConnectWise `_info/lastUpdated` under a
//! JSON Patch `test`, Autotask `lastActivityDate`, Halo `last_update`): a write carrying a
//! stale one is refused with 409 and changes nothing. Real Autotask and Halo have no such
//! check; the simulator's stands in for the re-read a careful client does. Every accepted
//! change moves the token to the simulator's clock, [`now`], in whole seconds and strictly
//! later than before. Notes never touch the ticket row, so adding one does not stale a token
//! the client holds.
//!
//! Map: this file (the store, read snapshots, the all-or-nothing update, the logs), [`notes`],
//! [`fields`] (writable fields and value checks), [`cw`], [`at`], [`halo`] (each PSA's routes,
//! bodies, errors and row consequences).

pub(crate) mod at;
pub(crate) mod cw;
mod fields;
pub(crate) mod halo;
mod notes;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::http::Extensions;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::{cw_datetime, ts, Dataset, View, SPAN_END};
use crate::records::{self, RowSet};
use crate::state::{lock, RequestSeq, SimState};
use fields::{get_ci, same, Dialect, Field};
pub(crate) use notes::{add_note, delete_note, notes};

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    Update,
    Note,
    DeleteNote,
}

/// One field of a write: its value before and after. For a refused write, `after` is the value
/// asked for and nothing changed. A note is one change of field `note` (null before, the note
/// after; the reverse for a deletion).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// One write request that reached the simulator's write logic (past auth, throttling and
/// faults, which the request log records), accepted or refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// Position in the write log, increasing over the simulator's life.
    pub seq: u64,
    /// The request's [`crate::LoggedRequest::seq`].
    pub request_seq: Option<u64>,
    /// `connectwise`, `autotask` or `halo`.
    pub psa: String,
    /// 0 when the request named no valid ticket id.
    pub ticket_id: u64,
    pub kind: WriteKind,
    pub note_id: Option<u64>,
    /// The fields as the client named them (derived fields such as a status's name are not listed).
    pub fields: Vec<FieldChange>,
    /// The HTTP status answered.
    pub status: u16,
    /// The error message of a refused write.
    pub error: Option<String>,
    /// The simulator's time ([`now`]), `YYYY-MM-DDTHH:MM:SSZ`.
    pub at: String,
}

/// A change made as a person in the PSA would ([`crate::SimHandle::technician_edit`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TechnicianEdit {
    pub psa: String,
    pub ticket_id: u64,
    pub field: String,
    pub before: Value,
    pub after: Value,
    /// The row's concurrency token after the edit.
    pub token: Value,
    pub at: String,
}

/// Why a write is refused; each PSA answers it in its own shape ([`WriteError::status`]).
#[derive(Debug, Clone)]
pub(crate) enum WriteError {
    NotFound(String),
    Invalid { field: String, message: String },
    Conflict { field: String, message: String },
    NotAllowed(String),
}

impl WriteError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> WriteError {
        WriteError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            WriteError::NotFound(m) | WriteError::NotAllowed(m) => m,
            WriteError::Invalid { message, .. } | WriteError::Conflict { message, .. } => message,
        }
    }

    /// Autotask answers validation errors with 500, the others with 400.
    pub(crate) fn status(&self, view: View) -> u16 {
        match (self, view) {
            (WriteError::NotFound(_), _) => 404,
            (WriteError::NotAllowed(_), _) => 405,
            (WriteError::Conflict { .. }, _) => 409,
            (WriteError::Invalid { .. }, View::Autotask) => 500,
            (WriteError::Invalid { .. }, _) => 400,
        }
    }
}

fn no_ticket(id: u64) -> WriteError {
    WriteError::NotFound(format!("Ticket record with id {id} was not found."))
}

/// One ticket's update: preconditions (a path as the client named it, the value it read) and
/// the fields to write.
#[derive(Debug, Default)]
pub(crate) struct TicketEdit {
    pub id: u64,
    pub tests: Vec<(String, Value)>,
    pub edits: Vec<(&'static Field, Value)>,
}

/// The writes of one view.
#[derive(Debug, Default)]
struct ViewStore {
    /// The current row of every written ticket.
    rows: Arc<BTreeMap<u64, Value>>,
    /// Every note added, ascending ids.
    notes: Arc<Vec<Value>>,
    /// The next note id; 0 until the first note.
    next_note: u64,
}

#[derive(Debug, Default)]
struct Store {
    views: [ViewStore; 3],
    log: VecDeque<WriteRecord>,
    next_seq: u64,
    technician: Vec<TechnicianEdit>,
}

impl Store {
    fn view(&mut self, view: View) -> &mut ViewStore {
        &mut self.views[view as usize]
    }

    /// The current row of ticket `id` (written or generated).
    fn row(&self, view: View, data: &Dataset, id: u64) -> Option<Value> {
        if let Some(row) = self.views[view as usize].rows.get(&id) {
            return Some(row.clone());
        }
        data.index_of(id).map(|i| data.row(view, i).into_owned())
    }

    fn log(&mut self, mut record: WriteRecord, cap: usize) {
        self.next_seq += 1;
        record.seq = self.next_seq;
        self.log.push_back(record);
        while self.log.len() > cap.max(1) {
            self.log.pop_front();
        }
    }
}

/// The write store of a simulator.
#[derive(Debug, Default)]
pub(crate) struct Writes(Mutex<Store>);

impl Writes {
    pub(crate) fn clear(&self) {
        *lock(&self.0) = Store::default();
    }

    pub(crate) fn log(&self) -> Vec<WriteRecord> {
        lock(&self.0).log.iter().cloned().collect()
    }

    pub(crate) fn clear_log(&self) {
        lock(&self.0).log.clear();
    }

    pub(crate) fn technician_edits(&self) -> Vec<TechnicianEdit> {
        lock(&self.0).technician.clone()
    }
}

/// The simulator's wall clock: 2026-11-01T00:00:00Z (the end of the generated dates) plus the
/// virtual time since start, in whole seconds.
pub(crate) fn now(st: &SimState) -> Timestamp {
    let secs = i64::try_from(st.clock.now().as_secs()).unwrap_or(i64::MAX / 2);
    ts(SPAN_END.saturating_add(secs))
}

/// The request-log sequence number of the request being served.
pub(crate) fn request_seq(ext: &Extensions) -> Option<u64> {
    ext.get::<RequestSeq>().map(|s| s.0)
}

/// The Autotask `TicketNotes` entity, which the notes written through the API extend.
fn at_notes_index() -> Option<usize> {
    records::find(View::Autotask, "TicketNotes")
}

/// What a read sees: the data set and the writes of one view, taken together.
pub(crate) struct Snapshot {
    pub data: Arc<Dataset>,
    view: View,
    rows: Option<Arc<BTreeMap<u64, Value>>>,
    notes: Option<Arc<Vec<Value>>>,
}

impl SimState {
    pub(crate) fn snapshot(&self, view: View) -> Snapshot {
        let data = self.data();
        let store = lock(&self.writes.0);
        let v = &store.views[view as usize];
        Snapshot {
            data,
            view,
            rows: (!v.rows.is_empty()).then(|| v.rows.clone()),
            notes: (view == View::Autotask && !v.notes.is_empty()).then(|| v.notes.clone()),
        }
    }
}

impl Snapshot {
    /// The rows of resource number `index` of the view, writes included.
    pub(crate) fn rows(&self, index: usize) -> RowSet<'_> {
        let appended = match &self.notes {
            Some(n) if Some(index) == at_notes_index() => n.as_slice(),
            _ => &[],
        };
        self.data
            .rows(self.view, index)
            .with_writes(self.rows.as_deref(), appended)
    }

    /// The current row of ticket `id` (tickets are every view's first resource).
    pub(crate) fn ticket(&self, id: u64) -> Option<Value> {
        debug_assert!(records::resources(self.view)[0].is_tickets());
        let rows = self.rows(0);
        rows.index_of(id).map(|i| rows.row(i).into_owned())
    }

    /// As [`Dataset::resource_rows`], writes included.
    pub(crate) fn resource_rows(&self, endpoint: &str) -> Option<Vec<Value>> {
        let rows = self.rows(records::find(self.view, endpoint)?);
        Some(rows.rows_from(0).map(|(_, r)| r.into_owned()).collect())
    }
}

/// Applies one edit to a copy of `row`: all checks first (a refused write changes nothing), then
/// the fields, then the token. Returns the new row and each edited field's new value.
fn apply(
    d: &Dialect,
    data: &Dataset,
    mut row: Value,
    e: &TicketEdit,
    now: Timestamp,
) -> Result<(Value, Vec<Value>), WriteError> {
    let resolved = e
        .edits
        .iter()
        .map(|(f, v)| {
            d.resolve(data, f, v)
                .map_err(|m| WriteError::invalid(f.name, m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (path, expected) in &e.tests {
        let Some(actual) = get_ci(&row, path) else {
            let message = format!("{path} is not a field of the ticket.");
            return Err(WriteError::invalid(path.as_str(), message));
        };
        if !same(actual, expected) {
            return Err(WriteError::Conflict {
                field: path.clone(),
                message: format!(
                    "The ticket was modified since it was read: {path} is {actual}, not {expected}."
                ),
            });
        }
    }
    if e.edits.is_empty() {
        return Ok((row, Vec::new()));
    }
    // Strictly later than the current token, in whole seconds.
    let previous = get_ci(&row, d.token)
        .and_then(Value::as_str)
        .and_then(crate::eval::parse_datetime);
    let at = match previous {
        Some(p) if p.as_second() >= now.as_second() => ts(p.as_second() + 1),
        _ => now,
    };
    for ((f, _), r) in e.edits.iter().zip(resolved) {
        (d.set)(&mut row, f, r, at);
    }
    for path in std::iter::once(&d.token).chain(d.also_stamped) {
        fields::put(&mut row, path, Value::String((d.datetime)(at)));
    }
    let after = e
        .edits
        .iter()
        .map(|(f, _)| get_ci(&row, f.name).cloned().unwrap_or(Value::Null))
        .collect();
    Ok((row, after))
}

/// Applies a batch of ticket edits all or nothing, logs one record per ticket with the status
/// answered (`ok`, or the error's), and returns the updated rows.
pub(crate) fn update(
    st: &SimState,
    view: View,
    seq: Option<u64>,
    batch: &[TicketEdit],
    ok: u16,
) -> Result<Vec<Value>, WriteError> {
    let d = Dialect::of(view);
    let data = st.data();
    let now = now(st);
    let cap = st.limits().request_log_cap;
    let mut store = lock(&st.writes.0);
    let mut changes: Vec<Vec<FieldChange>> = batch
        .iter()
        .map(|e| {
            let current = store.row(view, &data, e.id);
            let before = |f: &Field| current.as_ref().and_then(|r| get_ci(r, f.name)).cloned();
            let change = |(f, v): &(&Field, Value)| FieldChange {
                field: f.name.to_string(),
                before: before(f).unwrap_or(Value::Null),
                after: v.clone(),
            };
            e.edits.iter().map(change).collect()
        })
        .collect();
    let mut staged: Vec<(u64, Value)> = Vec::with_capacity(batch.len());
    let mut outcome = Ok(());
    for (e, fields) in batch.iter().zip(&mut changes) {
        let current = match staged.iter().rev().find(|(id, _)| *id == e.id) {
            Some((_, row)) => Some(row.clone()),
            None => store.row(view, &data, e.id),
        };
        let Some(row) = current else {
            outcome = Err(no_ticket(e.id));
            break;
        };
        match apply(d, &data, row, e, now) {
            Ok((row, after)) => {
                for (change, value) in fields.iter_mut().zip(after) {
                    change.after = value;
                }
                staged.push((e.id, row));
            }
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
    }
    if outcome.is_ok() {
        let rows = Arc::make_mut(&mut store.view(view).rows);
        for (id, row) in &staged {
            rows.insert(*id, row.clone());
        }
    }
    let (status, error) = match &outcome {
        Ok(()) => (ok, None),
        Err(e) => (e.status(view), Some(e.message().to_string())),
    };
    for (e, fields) in batch.iter().zip(changes) {
        let record = record(
            view,
            seq,
            e.id,
            WriteKind::Update,
            None,
            fields,
            status,
            &error,
            now,
        );
        store.log(record, cap);
    }
    outcome.map(|()| staged.into_iter().map(|(_, row)| row).collect())
}

#[allow(clippy::too_many_arguments)]
fn record(
    view: View,
    seq: Option<u64>,
    ticket_id: u64,
    kind: WriteKind,
    note_id: Option<u64>,
    fields: Vec<FieldChange>,
    status: u16,
    error: &Option<String>,
    at: Timestamp,
) -> WriteRecord {
    WriteRecord {
        seq: 0,
        request_seq: seq,
        psa: view.psa().to_string(),
        ticket_id,
        kind,
        note_id,
        fields,
        status,
        error: error.clone(),
        at: cw_datetime(at),
    }
}

/// Logs a write refused before it reached the store (a malformed body, an unknown field).
pub(crate) fn refuse(
    st: &SimState,
    view: View,
    seq: Option<u64>,
    ticket_id: u64,
    kind: WriteKind,
    err: &WriteError,
    note_id: Option<u64>,
) {
    let at = now(st);
    let error = Some(err.message().to_string());
    let record = record(
        view,
        seq,
        ticket_id,
        kind,
        note_id,
        Vec::new(),
        err.status(view),
        &error,
        at,
    );
    lock(&st.writes.0).log(record, st.limits().request_log_cap);
}

/// Sets one field as a person in the PSA would: checked as a client write, the token moved, not
/// in the write log but in the technician's list.
pub(crate) fn technician(
    st: &SimState,
    view: View,
    id: u64,
    field: &str,
    value: Value,
) -> Result<Value, WriteError> {
    let d = Dialect::of(view);
    let f = d.field(field).ok_or_else(|| {
        WriteError::invalid(field, format!("{field} is not a writable ticket field."))
    })?;
    let data = st.data();
    let now = now(st);
    let mut store = lock(&st.writes.0);
    let row = store.row(view, &data, id).ok_or_else(|| no_ticket(id))?;
    let before = get_ci(&row, f.name).cloned().unwrap_or(Value::Null);
    let edit = TicketEdit {
        id,
        tests: Vec::new(),
        edits: vec![(f, value)],
    };
    let (row, mut after) = apply(d, &data, row, &edit, now)?;
    Arc::make_mut(&mut store.view(view).rows).insert(id, row.clone());
    store.technician.push(TechnicianEdit {
        psa: view.psa().to_string(),
        ticket_id: id,
        field: f.name.to_string(),
        before,
        after: after.pop().unwrap_or(Value::Null),
        token: get_ci(&row, d.token).cloned().unwrap_or(Value::Null),
        at: cw_datetime(now),
    });
    Ok(row)
}
