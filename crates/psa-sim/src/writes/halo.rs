//! HaloPSA ticket writes, under `/api` with a bearer token and inside the sliding window, as the
//! `psa_actions` connector sends them:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /api/tickets` | `[{"id": N, "<field>": value, …}, …]` (an object alone is one) | 201 the updated rows |
//! | `POST /api/actions` | `[{"ticket_id", "note", "hiddenfromuser"?, "outcome"?}, …]` | 201 the created actions |
//! | `GET /api/actions?ticket_id=N` | | 200 `{"record_count", "actions"}` |
//! | `DELETE /api/actions/{id}[?ticket_id=N]` | | 200, empty body |
//!
//! Halo posts are batches; the simulator applies one all or nothing (the first refusal answers
//! for the batch). An object carrying `last_update` different from the row's is refused with
//! 409 (the simulator's stand-in for a concurrency check; real Halo has none). Posting a ticket
//! without `id` would create one, which the simulator does not: 400. Unknown field or wrong
//! type: 400; unknown ticket or action: 404; errors are `{"message"}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::fields::{closing, field, time, Dialect, Field, FieldKind as K, Resolved};
use super::{request_seq, TicketEdit, WriteError, WriteKind};
use crate::data::{halo_datetime, View};
use crate::halo::{authorised, error as halo_error, unauthorised};
use crate::http_util::{json, Params};
use crate::state::SimState;

const VIEW: View = View::Halo;

/// The token a client echoes to have its update checked.
const TOKEN: &str = "last_update";

static FIELDS: [Field; 17] = [
    field("summary", K::Text, false),
    field("details", K::Text, true),
    field("status_id", K::Status, false),
    field("priority_id", K::Priority, false),
    field("team", K::BoardName, true),
    field("agent_id", K::Member, true),
    field("category_1", K::Text, true),
    field("category_2", K::Text, true),
    field("category_3", K::Text, true),
    field("category_4", K::Text, true),
    field("tickettype_id", K::Integer, false),
    field("impact", K::Integer, false),
    field("urgency", K::Integer, false),
    field("onhold", K::Bool, false),
    field("fixbydate", K::DateTime, true),
    field("respondbydate", K::DateTime, true),
    field("startdate", K::DateTime, true),
];

pub(crate) static DIALECT: Dialect = Dialect {
    fields: &FIELDS,
    token: TOKEN,
    also_stamped: &[],
    datetime: halo_datetime,
    set,
    note_ticket: "ticket_id",
};

fn set(row: &mut Value, f: &Field, r: Resolved, at: Timestamp) {
    match r {
        Resolved::Value(v) => row[f.name] = v,
        Resolved::Status(s) => {
            let was_closed = row["hasbeenclosed"].as_bool().unwrap_or(false);
            row["status_id"] = json!(s.id);
            row["hasbeenclosed"] = json!(s.closed);
            if let Some(date) = closing(was_closed, &s, at) {
                row["dateclosed"] = time(date, halo_datetime);
            }
        }
        Resolved::Priority(p) => row["priority_id"] = json!(p.id),
        Resolved::Board(b) => row["team"] = json!(b.name),
        Resolved::Named(id, _) => row[f.name] = json!(id),
        Resolved::Member(m) => row["agent_id"] = json!(m.map(|m| m.id)),
    }
}

/// Adds the write routes to the Halo router (inside its window layer): `POST /api/tickets`
/// joins the ticket list's `GET`.
pub(crate) fn routes(router: Router<Arc<SimState>>) -> Router<Arc<SimState>> {
    router
        .route("/api/tickets", post(update))
        .route("/api/actions", get(list_actions).post(add_actions))
        .route("/api/actions/{id}", delete(delete_action))
}

fn error(e: WriteError) -> Response {
    let status = StatusCode::from_u16(e.status(VIEW)).unwrap_or(StatusCode::BAD_REQUEST);
    halo_error(status, e.message())
}

/// The objects of a batch body (an object alone is a batch of one).
fn objects(body: &[u8]) -> Result<Vec<Map<String, Value>>, WriteError> {
    let items = match serde_json::from_slice(body) {
        Ok(Value::Array(items)) => items,
        Ok(Value::Object(m)) => vec![Value::Object(m)],
        Ok(_) => {
            return Err(WriteError::invalid(
                "body",
                "The request body must be an array of objects.",
            ))
        }
        Err(e) => {
            return Err(WriteError::invalid(
                "body",
                format!("The request body is not valid JSON: {e}."),
            ))
        }
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::Object(m) => Ok(m),
            other => Err(WriteError::invalid(
                "body",
                format!("{other} is not an object."),
            )),
        })
        .collect()
}

fn parse_edit(obj: Map<String, Value>) -> Result<TicketEdit, WriteError> {
    let id = obj
        .get("id")
        .and_then(Value::as_u64)
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            WriteError::invalid(
                "id",
                "Every ticket needs its id: the simulator does not create tickets.",
            )
        })?;
    let mut edit = TicketEdit {
        id,
        ..TicketEdit::default()
    };
    for (k, v) in obj {
        if k == "id" {
            continue;
        }
        if k.eq_ignore_ascii_case(TOKEN) {
            edit.tests.push((TOKEN.to_string(), v));
            continue;
        }
        let f = DIALECT.field(&k).ok_or_else(|| {
            WriteError::invalid(
                k.as_str(),
                format!("{k} is not a writable field of a ticket."),
            )
        })?;
        edit.edits.push((f, v));
    }
    Ok(edit)
}

/// `POST /api/tickets`.
async fn update(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    ext: Extensions,
    body: Bytes,
) -> Response {
    if !authorised(&st, &headers) {
        return unauthorised();
    }
    let seq = request_seq(&ext);
    // A refusal is logged against the ticket of the object refused, when it names one.
    let parsed = objects(&body).map_err(|e| (0, e)).and_then(|objs| {
        let parse = |obj: Map<String, Value>| {
            let id = obj.get("id").and_then(Value::as_u64).unwrap_or(0);
            parse_edit(obj).map_err(|e| (id, e))
        };
        objs.into_iter()
            .map(parse)
            .collect::<Result<Vec<TicketEdit>, _>>()
    });
    let batch = match parsed {
        Ok(b) => b,
        Err((ticket, e)) => {
            super::refuse(&st, VIEW, seq, ticket, WriteKind::Update, &e, None);
            return error(e);
        }
    };
    match super::update(&st, VIEW, seq, &batch, 201) {
        Ok(rows) => json(StatusCode::CREATED, &Value::Array(rows)),
        Err(e) => error(e),
    }
}

/// An action to add: `(ticket_id, fields)`.
fn parse_action(obj: Map<String, Value>) -> Result<(u64, Map<String, Value>), WriteError> {
    let mut action = Map::new();
    action.insert("hiddenfromuser".into(), json!(false));
    action.insert("outcome".into(), json!("Note"));
    let mut ticket = None;
    for (k, v) in obj {
        let ok = match k.as_str() {
            "ticket_id" => {
                ticket = v.as_u64();
                ticket.is_some()
            }
            "note" | "outcome" => v.is_string(),
            "hiddenfromuser" => v.is_boolean(),
            _ => {
                return Err(WriteError::invalid(
                    k.as_str(),
                    format!("{k} is not a field of an action."),
                ))
            }
        };
        if !ok {
            return Err(WriteError::invalid(
                k.as_str(),
                format!("{k} has an invalid value: {v}."),
            ));
        }
        if k != "ticket_id" {
            action.insert(k, v);
        }
    }
    let ticket =
        ticket.ok_or_else(|| WriteError::invalid("ticket_id", "ticket_id is required."))?;
    if !action.contains_key("note") {
        return Err(WriteError::invalid("note", "note is required."));
    }
    Ok((ticket, action))
}

/// `POST /api/actions`: all validated (and every ticket found) before any is added.
async fn add_actions(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    ext: Extensions,
    body: Bytes,
) -> Response {
    if !authorised(&st, &headers) {
        return unauthorised();
    }
    let seq = request_seq(&ext);
    let parsed: Result<Vec<_>, WriteError> =
        objects(&body).and_then(|objs| objs.into_iter().map(parse_action).collect());
    let data = st.data();
    let missing = |actions: &[(u64, Map<String, Value>)]| {
        let (t, _) = actions.iter().find(|(t, _)| data.index_of(*t).is_none())?;
        Some((*t, WriteError::NotFound(format!("Ticket {t} not found."))))
    };
    let refused = match &parsed {
        Ok(actions) => missing(actions),
        Err(e) => Some((0, e.clone())),
    };
    if let Some((ticket, e)) = refused {
        super::refuse(&st, VIEW, seq, ticket, WriteKind::Note, &e, None);
        return error(e);
    }
    let actions = parsed.unwrap_or_default();
    let mut created = Vec::with_capacity(actions.len());
    for (ticket, mut action) in actions {
        let build = |id: u64, at: Timestamp| {
            action.insert("id".into(), json!(id));
            action.insert("ticket_id".into(), json!(ticket));
            action.insert("datetime".into(), json!(halo_datetime(at)));
            action.insert("who".into(), json!("API"));
            Value::Object(action)
        };
        match super::add_note(&st, VIEW, seq, ticket, build, 201) {
            Ok(a) => created.push(a),
            Err(e) => return error(e),
        }
    }
    json(StatusCode::CREATED, &Value::Array(created))
}

fn ticket_param(uri: &Uri) -> Result<Option<u64>, WriteError> {
    match Params::parse(uri.query()).get("ticket_id").map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            WriteError::invalid(
                "ticket_id",
                format!("ticket_id must be an integer, not {v:?}"),
            )
        }),
    }
}

/// `GET /api/actions?ticket_id=N`.
async fn list_actions(State(st): State<Arc<SimState>>, headers: HeaderMap, uri: Uri) -> Response {
    if !authorised(&st, &headers) {
        return unauthorised();
    }
    let actions = ticket_param(&uri)
        .and_then(|t| t.ok_or_else(|| WriteError::invalid("ticket_id", "ticket_id is required.")))
        .and_then(|t| super::notes(&st, VIEW, t));
    match actions {
        Ok(actions) => json(
            StatusCode::OK,
            &json!({ "record_count": actions.len(), "actions": actions }),
        ),
        Err(e) => error(e),
    }
}

/// `DELETE /api/actions/{id}[?ticket_id=N]`.
async fn delete_action(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
    ext: Extensions,
) -> Response {
    if !authorised(&st, &headers) {
        return unauthorised();
    }
    let seq = request_seq(&ext);
    let target = ticket_param(&uri).and_then(|t| {
        let action = id.trim().parse::<u64>();
        let bad = |_| WriteError::invalid("id", format!("The id {id:?} is not an integer."));
        Ok((t, action.map_err(bad)?))
    });
    let (ticket, action) = match target {
        Ok(t) => t,
        Err(e) => {
            super::refuse(&st, VIEW, seq, 0, WriteKind::DeleteNote, &e, None);
            return error(e);
        }
    };
    match super::delete_note(&st, VIEW, seq, ticket, action, 200) {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => error(e),
    }
}
