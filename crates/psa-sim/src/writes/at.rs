//! Autotask ticket writes, under `…/V1.0` and its guard (auth headers, thread limit, request
//! threshold), case-insensitive paths, as the `psa_actions` connector sends them:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `PATCH /Tickets` | `{"id": N, "<field>": value, …}`, flat fields as in rows | 200 `{"itemId": N}` |
//! | `POST /Tickets/{id}/Notes` | `{"title"?, "description", "noteType", "publish"}` | 200 `{"itemId": N}` |
//! | `GET /Tickets/{id}/Notes` | | 200 `{"items", "pageDetails"}` |
//! | `DELETE /Tickets/{id}/Notes[/{noteId}]` | | 405: the API cannot delete ticket notes |
//!
//! A written note is a `TicketNotes` record like the generated ones (its id continues theirs),
//! so the `TicketNotes` query, count and get see it too. A body carrying `lastActivityDate`
//! different from the row's is refused with 409 (the simulator's stand-in for a concurrency
//! check; real Autotask has none). Field names ignore case; an unknown or read-only field, or a
//! wrong type, is a 500 `{"errors": [...]}` as Autotask answers validation errors; an unknown
//! ticket 404.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Extensions, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, patch};
use axum::Router;
use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::fields::{closing, field, time, Dialect, Field, FieldKind as K, Resolved};
use super::{request_seq, TicketEdit, WriteError, WriteKind};
use crate::autotask::AtError;
use crate::data::{at_datetime, View};
use crate::http_util::json;
use crate::state::SimState;

const VIEW: View = View::Autotask;

/// The token a client echoes to have its update checked.
const TOKEN: &str = "lastActivityDate";

static FIELDS: [Field; 16] = [
    field("title", K::Text, false),
    field("description", K::Text, true),
    field("status", K::Status, false),
    field("priority", K::Priority, false),
    field("queueID", K::Board, true),
    field("assignedResourceID", K::Member, true),
    field("issueType", K::Integer, true),
    field("subIssueType", K::Integer, true),
    field("ticketType", K::Integer, false),
    field("ticketCategory", K::Integer, false),
    field("source", K::Integer, true),
    field("contactID", K::Integer, true),
    field("dueDateTime", K::DateTime, true),
    field("estimatedHours", K::Number, true),
    field("hoursToBeScheduled", K::Number, true),
    field("isVisibleToComanaged", K::Bool, false),
];

pub(crate) static DIALECT: Dialect = Dialect {
    fields: &FIELDS,
    token: TOKEN,
    also_stamped: &["lastTrackedModificationDateTime"],
    datetime: at_datetime,
    set,
    note_ticket: "ticketID",
};

fn set(row: &mut Value, f: &Field, r: Resolved, at: Timestamp) {
    match r {
        Resolved::Value(v) => row[f.name] = v,
        Resolved::Status(s) => {
            let was_closed = !row["completedDate"].is_null();
            row["status"] = json!(s.id);
            if let Some(date) = closing(was_closed, &s, at) {
                row["completedDate"] = time(date, at_datetime);
                row["resolvedDateTime"] = time(date, at_datetime);
            }
        }
        Resolved::Priority(p) => row["priority"] = json!(p.id),
        Resolved::Board(b) => row["queueID"] = json!(b.id),
        Resolved::Named(id, _) => row[f.name] = json!(id),
        Resolved::Member(m) => row["assignedResourceID"] = json!(m.map(|m| m.id)),
    }
}

/// Adds the write routes to the `…/v1.0` router (lower-case paths, before its fallback and guard).
pub(crate) fn routes(api: Router<Arc<SimState>>) -> Router<Arc<SimState>> {
    api.route("/tickets", patch(update))
        .route(
            "/tickets/{id}/notes",
            get(list_notes).post(add_note).delete(no_delete),
        )
        .route("/tickets/{id}/notes/{note_id}", delete(no_delete))
}

fn error(e: WriteError) -> AtError {
    let status = StatusCode::from_u16(e.status(VIEW)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    AtError::new(status, e.message())
}

fn body_object(body: &[u8], entity: &str) -> Result<Map<String, Value>, WriteError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(WriteError::invalid(
            "body",
            format!("The request body must be a {entity} object."),
        )),
        Err(e) => Err(WriteError::invalid(
            "body",
            format!("The request body is not valid JSON: {e}."),
        )),
    }
}

fn parse_update(body: &[u8]) -> Result<TicketEdit, WriteError> {
    let obj = body_object(body, "Ticket")?;
    let id = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("id"))
        .and_then(|(_, v)| v.as_u64())
        .ok_or_else(|| WriteError::invalid("id", "The id of the Ticket to update is required."))?;
    let mut edit = TicketEdit {
        id,
        ..TicketEdit::default()
    };
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("id") {
            continue;
        }
        if k.eq_ignore_ascii_case(TOKEN) {
            edit.tests.push((TOKEN.to_string(), v));
            continue;
        }
        let f = DIALECT.field(&k).ok_or_else(|| {
            WriteError::invalid(
                k.as_str(),
                format!("Unable to update field '{k}' of entity Ticket: it does not exist or is read-only."),
            )
        })?;
        edit.edits.push((f, v));
    }
    Ok(edit)
}

/// `PATCH /Tickets`.
async fn update(
    State(st): State<Arc<SimState>>,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, AtError> {
    let seq = request_seq(&ext);
    let edit = parse_update(&body).map_err(|e| {
        let id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| b["id"].as_u64());
        super::refuse(&st, VIEW, seq, id.unwrap_or(0), WriteKind::Update, &e, None);
        error(e)
    })?;
    super::update(&st, VIEW, seq, std::slice::from_ref(&edit), 200).map_err(error)?;
    Ok(json(StatusCode::OK, &json!({ "itemId": edit.id })))
}

fn parse_id(raw: &str) -> Result<u64, WriteError> {
    raw.trim()
        .parse()
        .map_err(|_| WriteError::invalid("id", format!("The id '{raw}' is not a valid integer.")))
}

fn parse_note(body: &[u8], ticket: u64) -> Result<Map<String, Value>, WriteError> {
    const KEYS: [&str; 6] = [
        "id",
        "ticketID",
        "title",
        "description",
        "noteType",
        "publish",
    ];
    let mut note = Map::new();
    note.insert("title".into(), Value::Null);
    for (k, v) in body_object(body, "TicketNote")? {
        let key = KEYS
            .into_iter()
            .find(|n| n.eq_ignore_ascii_case(&k))
            .ok_or_else(|| {
                WriteError::invalid(
                    k.as_str(),
                    format!("Unable to find field '{k}' on entity TicketNote."),
                )
            })?;
        let ok = match key {
            "id" => v.is_null() || v.as_u64() == Some(0),
            "ticketID" => v.is_null() || v.as_u64() == Some(ticket),
            "title" => v.is_null() || v.is_string(),
            "description" => v.is_string(),
            _ => v.is_u64(),
        };
        if !ok {
            return Err(WriteError::invalid(
                key,
                format!("Invalid value {v} for field '{key}' of TicketNote."),
            ));
        }
        if key != "id" && key != "ticketID" {
            note.insert(key.into(), v);
        }
    }
    for required in ["description", "noteType", "publish"] {
        if !note.contains_key(required) {
            return Err(WriteError::invalid(
                required,
                format!("The field '{required}' of TicketNote is required."),
            ));
        }
    }
    Ok(note)
}

/// `POST /Tickets/{id}/Notes`.
async fn add_note(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, AtError> {
    let seq = request_seq(&ext);
    let parsed = parse_id(&id).and_then(|t| Ok((t, parse_note(&body, t)?)));
    let (ticket, fields) = parsed.map_err(|e| {
        let ticket = id.trim().parse().unwrap_or(0);
        super::refuse(&st, VIEW, seq, ticket, WriteKind::Note, &e, None);
        error(e)
    })?;
    // The shape of the generated TicketNotes.
    let build = |note_id: u64, at: Timestamp| {
        json!({
            "id": note_id,
            "ticketID": ticket,
            "title": fields["title"],
            "description": fields["description"],
            "noteType": fields["noteType"],
            "publish": fields["publish"],
            "creatorResourceID": null,
            "createDateTime": at_datetime(at),
            "lastActivityDate": at_datetime(at),
        })
    };
    let note = super::add_note(&st, VIEW, seq, ticket, build, 200).map_err(error)?;
    Ok(json(StatusCode::OK, &json!({ "itemId": note["id"] })))
}

/// `GET /Tickets/{id}/Notes`: every note of the ticket in one page.
async fn list_notes(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
) -> Result<Response, AtError> {
    let id = parse_id(&id).map_err(error)?;
    let items = super::notes(&st, VIEW, id).map_err(error)?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "items": items,
            "pageDetails": {
                "count": items.len(),
                "requestCount": st.limits().at_max_records,
                "prevPageUrl": null,
                "nextPageUrl": null,
            },
        }),
    ))
}

/// `DELETE /Tickets/{id}/Notes[/{noteId}]`: Autotask's API cannot delete ticket notes.
async fn no_delete(
    State(st): State<Arc<SimState>>,
    Path(ids): Path<Vec<(String, String)>>,
    ext: Extensions,
) -> AtError {
    let id = |name: &str| {
        ids.iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
    };
    let e = WriteError::NotAllowed(
        "The TicketNotes entity does not support delete: ticket notes cannot be deleted through the API."
            .into(),
    );
    let seq = request_seq(&ext);
    let ticket = id("id").unwrap_or(0);
    super::refuse(
        &st,
        VIEW,
        seq,
        ticket,
        WriteKind::DeleteNote,
        &e,
        id("note_id"),
    );
    error(e)
}
