//! The admin API under `/__sim/` (never logged, never faulted).
//!
//! | route | effect |
//! |---|---|
//! | `POST /__sim/reset` | back to the initial state; optional body `{"seed":N,"tickets":N}` regenerates the data; `{"company_tickets":[N,..]}` (at most 20) regenerates it with `N` tickets for each company in turn (by ascending id), none for the others ([`crate::Dataset::generate_by_company`]) |
//! | `POST /__sim/faults` | install a [`Fault`]; answers `{"id":N}` |
//! | `GET /__sim/faults` | installed faults with their counters |
//! | `DELETE /__sim/faults` | remove all faults |
//! | `GET /__sim/requests` | the request log, oldest first |
//! | `DELETE /__sim/requests` | clear the log |
//! | `GET /__sim/stats` | [`crate::Stats`] |
//! | `GET /__sim/limits`, `POST`/`PUT /__sim/limits` | read / merge-update [`crate::Limits`] |
//! | `POST /__sim/clock` | `{"advance_ms":N}` moves the virtual clock forward |
//! | `GET /__sim/dataset` | boards, statuses, priorities, companies, members and the ticket id range |
//! | `GET /__sim/writes` | the write log ([`crate::WriteRecord`]s), oldest first |
//! | `DELETE /__sim/writes` | clear the write log (the writes stay; `reset` undoes them) |
//! | `POST /__sim/technician` | `{"psa","ticket_id","field","value"}`: a technician's edit; answers the row (404 unknown ticket, 400 otherwise) |
//! | `GET /__sim/technician` | the technician's edits |

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::Limits;
use crate::data::{View, MIN_COMPANIES};
use crate::faults::Fault;
use crate::http_util::json;
use crate::state::{lock, SimState};
use crate::writes::WriteError;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/reset", post(reset))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/requests", get(list_requests).delete(clear_requests))
        .route("/stats", get(stats))
        .route("/limits", get(get_limits).post(set_limits).put(set_limits))
        .route("/clock", post(clock))
        .route("/dataset", get(dataset))
        .route("/writes", get(list_writes).delete(clear_writes))
        .route("/technician", get(technician_edits).post(technician))
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &json!({ "error": message.to_string() }),
    )
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    seed: Option<u64>,
    tickets: Option<usize>,
    /// Tickets per company, in ascending company id order; the total is their sum (`tickets`,
    /// if given too, must equal it).
    company_tickets: Option<Vec<usize>>,
}

async fn reset(State(st): State<Arc<SimState>>, body: Bytes) -> Response {
    match parse_body::<ResetBody>(&body) {
        Ok(ResetBody {
            seed,
            tickets,
            company_tickets: Some(counts),
        }) => {
            let total: usize = counts.iter().sum();
            if counts.len() > MIN_COMPANIES {
                return bad_request(format!(
                    "company_tickets: at most {MIN_COMPANIES} counts (the fewest companies a data set has)"
                ));
            }
            if tickets.is_some_and(|t| t != total) {
                return bad_request(format!(
                    "tickets must equal the sum of company_tickets ({total})"
                ));
            }
            st.reset(seed, Some(total), Some(&counts));
            json(
                StatusCode::OK,
                &json!({"reset": true, "tickets": st.data().tickets.len()}),
            )
        }
        Ok(b) => {
            st.reset(b.seed, b.tickets, None);
            json(
                StatusCode::OK,
                &json!({"reset": true, "tickets": st.data().tickets.len()}),
            )
        }
        Err(e) => bad_request(e),
    }
}

async fn add_fault(State(st): State<Arc<SimState>>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    if let Err(e) = fault.validate() {
        return bad_request(e);
    }
    let id = st.inject(fault);
    json(StatusCode::CREATED, &json!({ "id": id }))
}

async fn list_faults(State(st): State<Arc<SimState>>) -> Response {
    let faults = lock(&st.faults).0.active.clone();
    json(
        StatusCode::OK,
        &serde_json::to_value(faults).unwrap_or(Value::Null),
    )
}

async fn clear_faults(State(st): State<Arc<SimState>>) -> StatusCode {
    lock(&st.faults).0.clear();
    StatusCode::NO_CONTENT
}

async fn list_requests(State(st): State<Arc<SimState>>) -> Response {
    let entries: Vec<_> = lock(&st.log).entries.iter().cloned().collect();
    json(
        StatusCode::OK,
        &serde_json::to_value(entries).unwrap_or(Value::Null),
    )
}

async fn clear_requests(State(st): State<Arc<SimState>>) -> StatusCode {
    lock(&st.log).entries.clear();
    StatusCode::NO_CONTENT
}

async fn stats(State(st): State<Arc<SimState>>) -> Response {
    json(
        StatusCode::OK,
        &serde_json::to_value(st.stats()).unwrap_or(Value::Null),
    )
}

async fn get_limits(State(st): State<Arc<SimState>>) -> Response {
    json(
        StatusCode::OK,
        &serde_json::to_value(st.limits()).unwrap_or(Value::Null),
    )
}

/// Merges the posted keys into the current limits (unknown keys are rejected).
async fn set_limits(State(st): State<Arc<SimState>>, body: Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Value::Object(m),
        Ok(_) => return bad_request("the body must be a JSON object of limits"),
        Err(e) => return bad_request(e),
    };
    match merge_limits(&st.limits(), &patch) {
        Ok(limits) => {
            st.set_limits(limits.clone());
            json(
                StatusCode::OK,
                &serde_json::to_value(limits).unwrap_or(Value::Null),
            )
        }
        Err(e) => bad_request(e),
    }
}

pub(crate) fn merge_limits(current: &Limits, patch: &Value) -> Result<Limits, String> {
    let mut merged = serde_json::to_value(current).map_err(|e| e.to_string())?;
    let (Value::Object(target), Value::Object(changes)) = (&mut merged, patch) else {
        return Err("the limits patch must be a JSON object".into());
    };
    for (k, v) in changes {
        if !target.contains_key(k) {
            return Err(format!("unknown limit '{k}'"));
        }
        target.insert(k.clone(), v.clone());
    }
    serde_json::from_value(merged).map_err(|e| e.to_string())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_ms: Option<u64>,
}

async fn clock(State(st): State<Arc<SimState>>, body: Bytes) -> Response {
    match parse_body::<ClockBody>(&body) {
        Ok(b) => {
            st.clock
                .advance(Duration::from_millis(b.advance_ms.unwrap_or(0)));
            json(StatusCode::OK, &json!({ "clock_ms": st.stats().clock_ms }))
        }
        Err(e) => bad_request(e),
    }
}

async fn dataset(State(st): State<Arc<SimState>>) -> Response {
    let d = st.data();
    json(
        StatusCode::OK,
        &json!({
            "seed": d.seed,
            "tickets": d.tickets.len(),
            "first_id": d.tickets.first().map(|t| t.id),
            "last_id": d.tickets.last().map(|t| t.id),
            "boards": d.boards,
            "statuses": d.statuses,
            "priorities": d.priorities,
            "companies": d.companies,
            "members": d.members,
        }),
    )
}

async fn list_writes(State(st): State<Arc<SimState>>) -> Response {
    json(
        StatusCode::OK,
        &serde_json::to_value(st.writes.log()).unwrap_or(Value::Null),
    )
}

async fn clear_writes(State(st): State<Arc<SimState>>) -> StatusCode {
    st.writes.clear_log();
    StatusCode::NO_CONTENT
}

async fn technician_edits(State(st): State<Arc<SimState>>) -> Response {
    json(
        StatusCode::OK,
        &serde_json::to_value(st.writes.technician_edits()).unwrap_or(Value::Null),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TechnicianBody {
    psa: String,
    ticket_id: u64,
    field: String,
    value: Value,
}

async fn technician(State(st): State<Arc<SimState>>, body: Bytes) -> Response {
    let b: TechnicianBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    let Some(view) = View::from_psa(&b.psa) else {
        return bad_request(format!("unknown psa '{}'", b.psa));
    };
    match crate::writes::technician(&st, view, b.ticket_id, &b.field, b.value) {
        Ok(row) => json(StatusCode::OK, &row),
        Err(e @ WriteError::NotFound(_)) => {
            json(StatusCode::NOT_FOUND, &json!({ "error": e.message() }))
        }
        Err(e) => bad_request(e.message()),
    }
}
