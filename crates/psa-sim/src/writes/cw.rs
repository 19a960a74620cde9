//! ConnectWise ticket writes, under the API root and its guard (auth, URL length, the
//! per-clientId bucket), as the `psa_actions` connector sends them:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `PATCH /service/tickets/{id}` | JSON Patch array: `replace`/`add` on a writable path, `test` on any path | 200 the updated row |
//! | `POST /service/tickets/{id}/notes` | `{"text", "internalAnalysisFlag"?, "detailDescriptionFlag"?, "resolutionFlag"?}` | 201 the note |
//! | `GET /service/tickets/{id}/notes` | | 200 the ticket's notes (API-written only) |
//! | `DELETE /service/tickets/{id}/notes/{noteId}` | | 204 |
//!
//! Paths may omit the leading `/` and ignore case, as ConnectWise's do. A reference may also be
//! replaced whole (`{"path": "/status", "value": {"id": 5}}`, `owner` also by `identifier` or
//! null). A failed `test` refuses the whole patch with 409 `Conflict`: the simulator's stand-in
//! for ConnectWise's optimistic concurrency on `_info/lastUpdated`. Unknown path, unsupported
//! op or wrong type: 400 `InvalidObject` naming the field; unknown ticket: 404.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch};
use axum::Router;
use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::fields::{closing, field, put, time, Dialect, Field, FieldKind as K, Resolved};
use super::{request_seq, TicketEdit, WriteError, WriteKind};
use crate::cw::CwError;
use crate::data::{cw_datetime, View};
use crate::http_util::json;
use crate::records::tickets::{ITEMS, SUB_TYPES, TYPES};
use crate::state::SimState;

const VIEW: View = View::ConnectWise;

static FIELDS: [Field; 17] = [
    field("summary", K::Text, false),
    field("board/id", K::Board, false),
    field("status/id", K::Status, false),
    field("priority/id", K::Priority, false),
    field("owner/id", K::Member, true),
    field("owner/identifier", K::MemberIdentifier, true),
    field("type/id", K::Named(&TYPES), false),
    field("subType/id", K::Named(&SUB_TYPES), true),
    field("item/id", K::Named(&ITEMS), true),
    field("requiredDate", K::DateTime, true),
    field("estimatedStartDate", K::DateTime, true),
    field("severity", K::Text, false),
    field("impact", K::Text, false),
    field("budgetHours", K::Number, true),
    field("approved", K::Bool, false),
    field("contactName", K::Text, true),
    field("contactEmailAddress", K::Text, true),
];

pub(crate) static DIALECT: Dialect = Dialect {
    fields: &FIELDS,
    token: "_info/lastUpdated",
    also_stamped: &[],
    datetime: cw_datetime,
    set,
    note_ticket: "ticketId",
};

fn set(row: &mut Value, f: &Field, r: Resolved, at: Timestamp) {
    // A named reference (`type/id`) is replaced whole: `{id, name}`, or null.
    let reference = f.name.strip_suffix("/id").unwrap_or(f.name);
    match r {
        Resolved::Value(Value::Null) if matches!(f.kind, K::Named(_)) => {
            row[reference] = Value::Null
        }
        Resolved::Value(v) => put(row, f.name, v),
        Resolved::Named(id, name) => row[reference] = json!({"id": id, "name": name}),
        Resolved::Status(s) => {
            let was_closed = row["closedFlag"].as_bool().unwrap_or(false);
            row["status"] = json!({"id": s.id, "name": s.name});
            row["closedFlag"] = json!(s.closed);
            if let Some(date) = closing(was_closed, &s, at) {
                row["closedDate"] = time(date, cw_datetime);
                row["dateResolved"] = time(date, cw_datetime);
            }
        }
        Resolved::Priority(p) => row["priority"] = json!({"id": p.id, "name": p.name}),
        Resolved::Board(b) => row["board"] = json!({"id": b.id, "name": b.name}),
        Resolved::Member(m) => {
            row["owner"] = m.map_or(
                Value::Null,
                |m| json!({"id": m.id, "identifier": m.identifier}),
            )
        }
    }
}

/// Adds the write routes to the API router (before its fallback and guard).
pub(crate) fn routes(api: Router<Arc<SimState>>) -> Router<Arc<SimState>> {
    api.route("/service/tickets/{id}", patch(patch_ticket))
        .route(
            "/service/tickets/{id}/notes",
            get(list_notes).post(add_note),
        )
        .route("/service/tickets/{id}/notes/{note_id}", delete(delete_note))
}

/// A [`WriteError`] in ConnectWise's shape, about a record of `resource`.
fn error(e: WriteError, resource: &str) -> CwError {
    let status = StatusCode::from_u16(e.status(VIEW)).unwrap_or(StatusCode::BAD_REQUEST);
    match e {
        WriteError::NotFound(m) => CwError::new(status, "NotFound", m),
        WriteError::NotAllowed(m) => CwError::new(status, "MethodNotAllowed", m),
        WriteError::Invalid { field, message } => CwError::new(
            status,
            "InvalidObject",
            format!("{resource} object is invalid."),
        )
        .with_errors(json!([{
            "code": "InvalidField", "message": message, "resource": resource, "field": field,
        }])),
        WriteError::Conflict { field, message } => {
            CwError::new(status, "Conflict", message.clone()).with_errors(json!([{
                "code": "Conflict", "message": message, "resource": resource, "field": field,
            }]))
        }
    }
}

fn parse_id(raw: &str, what: &str) -> Result<u64, WriteError> {
    raw.trim().parse().map_err(|_| {
        WriteError::invalid(
            "id",
            format!("The {what} id '{raw}' is not a valid integer."),
        )
    })
}

/// A writable field for `path`, the whole-reference forms (`/status` ← `{"id": 5}`) included.
fn target(path: &str, value: &Value) -> Option<(&'static Field, Value)> {
    if let Some(f) = DIALECT.field(path) {
        return Some((f, value.clone()));
    }
    let name = path.trim_start_matches('/').to_ascii_lowercase();
    let reference = matches!(
        name.as_str(),
        "board" | "status" | "priority" | "owner" | "type" | "subtype" | "item"
    );
    match value {
        Value::Object(m) if reference => {
            let key = m
                .keys()
                .find(|k| k.eq_ignore_ascii_case("id"))
                .or_else(|| {
                    let by_identifier = name == "owner";
                    m.keys()
                        .find(|k| by_identifier && k.eq_ignore_ascii_case("identifier"))
                })?;
            let f = DIALECT.field(&format!("{name}/{key}"))?;
            Some((f, m[key].clone()))
        }
        Value::Null if name == "owner" => Some((DIALECT.field("owner/id")?, Value::Null)),
        _ => None,
    }
}

fn parse_patch(body: &[u8], id: u64) -> Result<TicketEdit, WriteError> {
    let ops: Value = serde_json::from_slice(body).map_err(|e| {
        WriteError::invalid("body", format!("The request body is not valid JSON: {e}."))
    })?;
    let Value::Array(ops) = ops else {
        return Err(WriteError::invalid(
            "body",
            "The request body must be a JSON Patch array of operations.",
        ));
    };
    let mut edit = TicketEdit {
        id,
        ..TicketEdit::default()
    };
    for op in &ops {
        let text = |k: &str| op.get(k).and_then(Value::as_str);
        let (Some(name), Some(path)) = (text("op"), text("path")) else {
            return Err(WriteError::invalid(
                "op",
                "Each operation needs an op and a path.",
            ));
        };
        let field = path.trim_start_matches('/');
        let kind = name.to_ascii_lowercase();
        if !matches!(kind.as_str(), "test" | "replace" | "add") {
            return Err(WriteError::invalid(
                "op",
                format!("The operation '{name}' is not supported: use replace, add or test."),
            ));
        }
        let Some(value) = op.get("value") else {
            return Err(WriteError::invalid(
                field,
                format!("The {name} of {path} needs a value."),
            ));
        };
        if kind == "test" {
            edit.tests.push((field.to_string(), value.clone()));
            continue;
        }
        let t = target(path, value).ok_or_else(|| {
            WriteError::invalid(field, format!("{field} is not a writable field of Ticket."))
        })?;
        edit.edits.push(t);
    }
    Ok(edit)
}

/// `PATCH /service/tickets/{id}`.
async fn patch_ticket(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, CwError> {
    let seq = request_seq(&ext);
    let edit = parse_id(&id, "Ticket").and_then(|id| parse_patch(&body, id));
    let edit = edit.map_err(|e| {
        let ticket = id.trim().parse().unwrap_or(0);
        super::refuse(&st, VIEW, seq, ticket, WriteKind::Update, &e, None);
        error(e, "Ticket")
    })?;
    let mut rows = super::update(&st, VIEW, seq, std::slice::from_ref(&edit), 200)
        .map_err(|e| error(e, "Ticket"))?;
    Ok(json(StatusCode::OK, &rows.pop().unwrap_or(Value::Null)))
}

fn parse_note(body: &[u8], ticket: u64) -> Result<Map<String, Value>, WriteError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        WriteError::invalid("body", format!("The request body is not valid JSON: {e}."))
    })?;
    let Value::Object(obj) = v else {
        return Err(WriteError::invalid(
            "body",
            "The request body must be a ServiceNote object.",
        ));
    };
    let mut note = Map::new();
    for flag in [
        "detailDescriptionFlag",
        "internalAnalysisFlag",
        "resolutionFlag",
    ] {
        note.insert(flag.into(), json!(false));
    }
    for (k, v) in obj {
        let key = [
            "text",
            "detailDescriptionFlag",
            "internalAnalysisFlag",
            "resolutionFlag",
            "ticketId",
        ]
        .into_iter()
        .find(|n| n.eq_ignore_ascii_case(&k))
        .ok_or_else(|| {
            WriteError::invalid(k.as_str(), format!("{k} is not a field of ServiceNote."))
        })?;
        let ok = match key {
            "text" => v.is_string(),
            "ticketId" => v.is_null() || v.as_u64() == Some(ticket),
            _ => v.is_boolean(),
        };
        if !ok {
            return Err(WriteError::invalid(
                key,
                format!("{key} has an invalid value: {v}."),
            ));
        }
        note.insert(key.into(), v);
    }
    let text = note.get("text").and_then(Value::as_str);
    if text.is_none_or(|t| t.trim().is_empty()) {
        return Err(WriteError::invalid("text", "text is required."));
    }
    Ok(note)
}

/// `POST /service/tickets/{id}/notes`.
async fn add_note(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, CwError> {
    let seq = request_seq(&ext);
    let parsed = parse_id(&id, "Ticket").and_then(|id| Ok((id, parse_note(&body, id)?)));
    let (ticket, mut note) = parsed.map_err(|e| {
        let ticket = id.trim().parse().unwrap_or(0);
        super::refuse(&st, VIEW, seq, ticket, WriteKind::Note, &e, None);
        error(e, "ServiceNote")
    })?;
    let build = |note_id: u64, at: Timestamp| {
        note.insert("id".into(), json!(note_id));
        note.insert("ticketId".into(), json!(ticket));
        note.insert("dateCreated".into(), json!(cw_datetime(at)));
        note.insert("createdBy".into(), json!("api"));
        Value::Object(note)
    };
    let note =
        super::add_note(&st, VIEW, seq, ticket, build, 201).map_err(|e| error(e, "Ticket"))?;
    Ok(json(StatusCode::CREATED, &note))
}

/// `GET /service/tickets/{id}/notes`.
async fn list_notes(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
) -> Result<Response, CwError> {
    let id = parse_id(&id, "Ticket").map_err(|e| error(e, "Ticket"))?;
    let notes = super::notes(&st, VIEW, id).map_err(|e| error(e, "Ticket"))?;
    Ok(json(StatusCode::OK, &Value::Array(notes)))
}

/// `DELETE /service/tickets/{id}/notes/{noteId}`.
async fn delete_note(
    State(st): State<Arc<SimState>>,
    Path((id, note_id)): Path<(String, String)>,
    ext: Extensions,
) -> Result<Response, CwError> {
    let seq = request_seq(&ext);
    let ids = parse_id(&id, "Ticket").and_then(|t| Ok((t, parse_id(&note_id, "ServiceNote")?)));
    let (ticket, note) = ids.map_err(|e| {
        let ticket = id.trim().parse().unwrap_or(0);
        super::refuse(&st, VIEW, seq, ticket, WriteKind::DeleteNote, &e, None);
        error(e, "ServiceNote")
    })?;
    super::delete_note(&st, VIEW, seq, Some(ticket), note, 204)
        .map_err(|e| error(e, "ServiceNote"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
