//! Notes on tickets: ConnectWise service notes, Autotask ticket notes, Halo actions, kept per
//! view in the PSA's own shape (each dialect builds the note). They never touch the ticket row:
//! a note must not stale the concurrency token a client holds for its next update. Autotask's
//! extend the generated `TicketNotes` (their ids continue them, and the entity's query and get
//! serve them, see [`super::Snapshot::rows`]); the other two PSAs' notes exist only once written.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value;

use super::fields::Dialect;
use super::{at_notes_index, no_ticket, now, record, FieldChange, WriteError, WriteKind};
use crate::data::View;
use crate::state::{lock, SimState};

/// Adds a note built by `build(note id, instant)` to ticket `ticket_id`, and logs it.
pub(crate) fn add_note(
    st: &SimState,
    view: View,
    seq: Option<u64>,
    ticket_id: u64,
    build: impl FnOnce(u64, Timestamp) -> Value,
    ok: u16,
) -> Result<Value, WriteError> {
    let data = st.data();
    let now = now(st);
    let cap = st.limits().request_log_cap;
    let mut store = lock(&st.writes.0);
    if data.index_of(ticket_id).is_none() {
        let err = no_ticket(ticket_id);
        let error = Some(err.message().to_string());
        let r = record(
            view,
            seq,
            ticket_id,
            WriteKind::Note,
            None,
            Vec::new(),
            404,
            &error,
            now,
        );
        store.log(r, cap);
        return Err(err);
    }
    let v = store.view(view);
    if v.next_note == 0 {
        // Autotask's notes extend the generated TicketNotes, so their ids continue them.
        v.next_note = match (view, at_notes_index()) {
            (View::Autotask, Some(i)) => {
                let rows = data.rows(view, i);
                rows.len().checked_sub(1).map_or(0, |last| rows.id(last)) + 1
            }
            _ => 1,
        };
    }
    let id = v.next_note;
    v.next_note += 1;
    let note = build(id, now);
    Arc::make_mut(&mut v.notes).push(note.clone());
    let change = FieldChange {
        field: "note".into(),
        before: Value::Null,
        after: note.clone(),
    };
    let r = record(
        view,
        seq,
        ticket_id,
        WriteKind::Note,
        Some(id),
        vec![change],
        ok,
        &None,
        now,
    );
    store.log(r, cap);
    Ok(note)
}

/// The notes of ticket `ticket_id`, ascending ids: for Autotask the generated `TicketNotes`
/// too, as its list would answer them.
pub(crate) fn notes(st: &SimState, view: View, ticket_id: u64) -> Result<Vec<Value>, WriteError> {
    let key = Dialect::of(view).note_ticket;
    let of_ticket = |n: &Value| n[key].as_u64() == Some(ticket_id);
    let snap = st.snapshot(view);
    if snap.data.index_of(ticket_id).is_none() {
        return Err(no_ticket(ticket_id));
    }
    if let (View::Autotask, Some(i)) = (view, at_notes_index()) {
        let rows = snap.rows(i);
        return Ok(rows
            .rows_from(0)
            .map(|(_, r)| r)
            .filter(|r| of_ticket(r))
            .map(|r| r.into_owned())
            .collect());
    }
    let store = lock(&st.writes.0);
    let all = &store.views[view as usize].notes;
    Ok(all.iter().filter(|n| of_ticket(n)).cloned().collect())
}

/// Deletes note `note_id` (of ticket `ticket_id` when given), and logs it.
pub(crate) fn delete_note(
    st: &SimState,
    view: View,
    seq: Option<u64>,
    ticket_id: Option<u64>,
    note_id: u64,
    ok: u16,
) -> Result<Value, WriteError> {
    let key = Dialect::of(view).note_ticket;
    let data = st.data();
    let now = now(st);
    let cap = st.limits().request_log_cap;
    let mut store = lock(&st.writes.0);
    let notes = &store.views[view as usize].notes;
    let found = notes.iter().position(|n| {
        n["id"].as_u64() == Some(note_id) && ticket_id.is_none_or(|t| n[key].as_u64() == Some(t))
    });
    let owner = found.and_then(|i| notes[i][key].as_u64());
    let outcome = match (ticket_id, found) {
        (Some(t), _) if data.index_of(t).is_none() => Err(no_ticket(t)),
        (_, None) => Err(WriteError::NotFound(format!(
            "Note {note_id} was not found."
        ))),
        (_, Some(i)) => Ok(Arc::make_mut(&mut store.view(view).notes).remove(i)),
    };
    let (status, error, fields) = match &outcome {
        Ok(note) => {
            let change = FieldChange {
                field: "note".into(),
                before: note.clone(),
                after: Value::Null,
            };
            (ok, None, vec![change])
        }
        Err(e) => (e.status(view), Some(e.message().to_string()), Vec::new()),
    };
    let ticket = ticket_id.or(owner).unwrap_or(0);
    let kind = WriteKind::DeleteNote;
    let r = record(
        view,
        seq,
        ticket,
        kind,
        Some(note_id),
        fields,
        status,
        &error,
        now,
    );
    store.log(r, cap);
    outcome
}
