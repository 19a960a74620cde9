//! The HaloPSA personality (docs/psa.md §7.4): `GET /api/authinfo`, OAuth2 client credentials at `POST /auth/token`
//! (tokens expire on the virtual clock), `GET /api/tickets` with `pageinate`/`page_size`/`page_no` paging, `order`,
//! and the allowlisted filter parameters, and a sliding request window answering 429 with `Retry-After`.
//!
//! Every other resource (`/api/client`, `/api/agent`, … see [`crate::records::halo`]) is served by the same list,
//! without filters (Halo ignores what it does not know, and the connector filters those locally): a paged
//! resource answers `{"record_count", "<key>": […]}` like tickets, the others (agents, appointments, teams, roles,
//! timesheet events) a bare array of every row whatever the paging parameters. `GET /api/{resource}/{id}` answers
//! the record itself. Ticket updates and actions (notes) are `crate::writes::halo`'s, inside the same window.
//!
//! `GET /api/tickets` parameters (names case-insensitive, like every Halo query parameter here):
//!
//! | parameter | effect |
//! |---|---|
//! | `pageinate=true`, `page_size` (default [`crate::Limits::halo_page_size_default`]), `page_no` (1-based) | one page; past the end an empty `tickets` |
//! | `order` (`id`, `dateoccurred`, `lastactiondate`, …; unknown = `id`), `orderdesc=true` | sort (ties by id) |
//! | `closed_only=true` / `open_only=true` | `hasbeenclosed` true / false |
//! | `client_id`, `status_id`, `agent_id` = N | equality (`0` = unset, ignored) |
//! | `datesearch=dateoccurred\|lastactiondate\|dateclosed`, `startdate`, `enddate` | inclusive range on that field |
//!
//! Every other parameter is silently ignored, as Halo does. The body is `{"page_no","page_size","record_count",
//! "tickets":[…]}` (`record_count`: all matching tickets). Without `pageinate=true` every match is returned.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::config::Limits;
use crate::data::{Ticket, View};
use crate::eval::{cmp_json, parse_datetime};
use crate::http_util::{json, request_base, set_header, Params};
use crate::records;
use crate::state::{lock, Counters, SimState};

pub(crate) fn routes(state: Arc<SimState>) -> Router<Arc<SimState>> {
    type St = State<Arc<SimState>>;
    let mut router = Router::new()
        .route("/api/authinfo", get(auth_info))
        .route("/auth/token", post(token));
    for (i, r) in records::resources(View::Halo).iter().enumerate() {
        router = router
            .route(
                &format!("/api{}", r.endpoint),
                get(move |st: St, h: HeaderMap, uri: Uri| list(st, h, uri, i)),
            )
            .route(
                &format!("/api{}/{{id}}", r.endpoint),
                get(move |st: St, h: HeaderMap, id: Path<String>| get_one(st, h, id, i)),
            );
    }
    crate::writes::halo::routes(router).layer(from_fn_with_state(state, window))
}

/// A Halo error body.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    json(status, &json!({ "message": message }))
}

/// An OAuth error body (`{"error","error_description"}`).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

/// The 429 body of the Halo window (as reported by integrators, docs/psa.md §3).
pub(crate) fn throttle_body(limits: &Limits) -> Value {
    let (requests, minutes) = limits
        .halo_rate_limit
        .map_or((0, 0), |l| (l.requests, l.per_ms / 60_000));
    json!({ "message": format!("Rate Limit Reached – {requests} Requests per rolling {minutes} minute window") })
}

/// The sliding window over every Halo request: at most `requests` in any `per_ms` of virtual time. Rejected
/// requests do not count.
async fn window(State(st): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let limits = st.limits();
    if let Some(limit) = limits.halo_rate_limit {
        let span = Duration::from_millis(limit.per_ms.max(1));
        let now = st.clock.now();
        let verdict = {
            let mut w = lock(&st.halo_window);
            while w.front().is_some_and(|t| now.saturating_sub(*t) >= span) {
                w.pop_front();
            }
            if w.len() as u64 >= u64::from(limit.requests) {
                let oldest = w.front().copied().unwrap_or(now);
                Err(span.saturating_sub(now.saturating_sub(oldest)))
            } else {
                w.push_back(now);
                Ok(())
            }
        };
        if let Err(wait) = verdict {
            Counters::bump(&st.counters.halo_throttled);
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut resp = json(StatusCode::TOO_MANY_REQUESTS, &throttle_body(&limits));
            set_header(&mut resp, "retry-after", &secs.to_string());
            return resp;
        }
    }
    next.run(req).await
}

/// `GET /api/authinfo`: unauthenticated discovery of the authorisation server.
async fn auth_info(State(st): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let base = request_base(&headers, &st);
    json(
        StatusCode::OK,
        &json!({ "auth_url": format!("{base}/auth"), "tenant_id": st.cfg.halo_tenant }),
    )
}

/// `POST /auth/token[?tenant=]`, form `grant_type=client_credentials&client_id&client_secret&scope=all`.
async fn token(State(st): State<Arc<SimState>>, uri: Uri, body: Bytes) -> Response {
    let form = Params::parse(std::str::from_utf8(&body).ok());
    if let Some(tenant) = Params::parse(uri.query()).get("tenant") {
        if tenant != st.cfg.halo_tenant {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "unknown tenant");
        }
    }
    if form.get("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is supported",
        );
    }
    if form.get("client_id") != Some(st.cfg.halo_client_id.as_str())
        || form.get("client_secret") != Some(st.cfg.halo_client_secret.as_str())
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the client id or secret is wrong",
        );
    }
    if form
        .get("scope")
        .is_some_and(|s| !s.split_whitespace().any(|s| s == "all"))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the scope must be all",
        );
    }
    let ttl = st.limits().halo_token_ttl_secs;
    let access_token = format!("sim-halo-{:032x}", rand::random::<u128>());
    let expiry = st.clock.now() + Duration::from_secs(ttl);
    lock(&st.halo_tokens).insert(access_token.clone(), expiry);
    json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": "all",
        }),
    )
}

/// Whether the request carries an issued, unexpired bearer token.
pub(crate) fn authorised(st: &SimState, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    let now = st.clock.now();
    lock(&st.halo_tokens)
        .get(token.trim())
        .is_some_and(|exp| now < *exp)
}

/// The filters of a ticket list request (see the module doc).
#[derive(Debug, Default)]
struct Filters {
    closed: Option<bool>,
    none: bool,
    client_id: Option<u64>,
    status_id: Option<u64>,
    agent_id: Option<u64>,
    range: Option<(DateField, Option<Timestamp>, Option<Timestamp>)>,
}

#[derive(Debug, Clone, Copy)]
enum DateField {
    Occurred,
    LastAction,
    Closed,
}

fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A 400's message.
type BadRequest = String;

fn id_param(params: &Params, name: &str) -> Result<Option<u64>, BadRequest> {
    match params.get(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(format!("{name} must be an integer, not {v:?}")),
        },
    }
}

fn date_param(params: &Params, name: &str) -> Result<Option<Timestamp>, BadRequest> {
    match params.get(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse_datetime(v)
            .map(Some)
            .ok_or_else(|| format!("{name} is not a date: {v:?}")),
    }
}

impl Filters {
    fn parse(params: &Params) -> Result<Filters, BadRequest> {
        let (closed_only, open_only) = (
            truthy(params.get("closed_only")),
            truthy(params.get("open_only")),
        );
        let range = match params
            .get("datesearch")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("dateoccurred") => Some(DateField::Occurred),
            Some("lastactiondate") => Some(DateField::LastAction),
            Some("dateclosed") => Some(DateField::Closed),
            _ => None,
        };
        let range = match range {
            Some(f) => {
                let (start, end) = (
                    date_param(params, "startdate")?,
                    date_param(params, "enddate")?,
                );
                (start.is_some() || end.is_some()).then_some((f, start, end))
            }
            None => None,
        };
        Ok(Filters {
            closed: match (closed_only, open_only) {
                (true, false) => Some(true),
                (false, true) => Some(false),
                _ => None,
            },
            none: closed_only && open_only,
            client_id: id_param(params, "client_id")?,
            status_id: id_param(params, "status_id")?,
            agent_id: id_param(params, "agent_id")?,
            range,
        })
    }

    /// As [`Filters::matches`], on a written row (whose values may differ from its [`Ticket`]'s).
    fn matches_row(&self, row: &Value) -> bool {
        let id = |k: &str| row[k].as_u64();
        let time = |k: &str| row[k].as_str().and_then(parse_datetime);
        let closed = row["hasbeenclosed"].as_bool().unwrap_or(false);
        if self.none
            || self.closed.is_some_and(|c| c != closed)
            || self.client_id.is_some_and(|c| Some(c) != id("client_id"))
            || self.status_id.is_some_and(|s| Some(s) != id("status_id"))
            || self.agent_id.is_some_and(|a| Some(a) != id("agent_id"))
        {
            return false;
        }
        self.range.is_none_or(|(field, start, end)| {
            let v = time(match field {
                DateField::Occurred => "dateoccurred",
                DateField::LastAction => "lastactiondate",
                DateField::Closed => "dateclosed",
            });
            v.is_some_and(|v| start.is_none_or(|s| v >= s) && end.is_none_or(|e| v <= e))
        })
    }

    fn matches(&self, t: &Ticket) -> bool {
        if self.none {
            return false;
        }
        if self.closed.is_some_and(|c| c != t.closed_flag())
            || self.client_id.is_some_and(|c| c != t.company.id)
            || self.status_id.is_some_and(|s| s != t.status.id)
            || self
                .agent_id
                .is_some_and(|a| t.owner.as_ref().is_none_or(|o| o.id != a))
        {
            return false;
        }
        match self.range {
            None => true,
            Some((field, start, end)) => {
                let v = match field {
                    DateField::Occurred => Some(t.date_entered),
                    DateField::LastAction => Some(t.last_updated),
                    DateField::Closed => t.closed_date,
                };
                v.is_some_and(|v| start.is_none_or(|s| v >= s) && end.is_none_or(|e| v <= e))
            }
        }
    }
}

pub(crate) fn unauthorised() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Authorization has been denied for this request.",
    )
}

/// A positive integer parameter, or `default` when absent.
fn positive(params: &Params, name: &str, default: usize) -> Result<usize, BadRequest> {
    match params.get(name).map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("{name} must be a positive integer, not {v:?}")),
        },
    }
}

/// `GET /api/tickets` and every other resource's list (see the module doc).
async fn list(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    uri: Uri,
    resource: usize,
) -> Response {
    if !authorised(&st, &headers) {
        return unauthorised();
    }
    let r = &records::resources(View::Halo)[resource];
    let params = Params::parse(uri.query());
    let snap = st.snapshot(View::Halo);
    let (data, rows) = (&snap.data, snap.rows(resource));
    let mut picked: Vec<usize> = if r.is_tickets() {
        let filters = match Filters::parse(&params) {
            Ok(f) => f,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        // A written row is filtered on its values; the others on their ticket (no rendering).
        (0..data.tickets.len())
            .filter(|&i| match rows.written(i) {
                Some(row) => filters.matches_row(row),
                None => filters.matches(&data.tickets[i]),
            })
            .collect()
    } else {
        (0..rows.len()).collect()
    };
    let order = params
        .get("order")
        .map(str::to_ascii_lowercase)
        .filter(|o| o != "id" && rows.len() > 0 && rows.row(0).get(o.as_str()).is_some());
    if let Some(field) = &order {
        // The sort key of each row, taken once (a row may be rendered per read).
        let mut keyed: Vec<(Value, usize)> = picked
            .iter()
            .map(|&i| (rows.row(i)[field.as_str()].clone(), i))
            .collect();
        keyed.sort_by(|(x, a), (y, b)| cmp_json(x, y).then(rows.id(*a).cmp(&rows.id(*b))));
        picked = keyed.into_iter().map(|(_, i)| i).collect();
    }
    if truthy(params.get("orderdesc")) {
        picked.reverse();
    }
    let render =
        |page: &[usize]| Value::Array(page.iter().map(|i| rows.row(*i).into_owned()).collect());
    let Some(key) = r.halo_key else {
        return json(StatusCode::OK, &render(&picked));
    };
    let total = picked.len();
    let mut body = serde_json::Map::new();
    let page: &[usize] = if truthy(params.get("pageinate")) {
        let size = match positive(
            &params,
            "page_size",
            st.limits().halo_page_size_default.max(1),
        ) {
            Ok(n) => n,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        let page_no = match positive(&params, "page_no", 1) {
            Ok(n) => n,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        body.insert("page_no".into(), json!(page_no));
        body.insert("page_size".into(), json!(size));
        let start = (page_no - 1).saturating_mul(size).min(total);
        &picked[start..start.saturating_add(size).min(total)]
    } else {
        &picked
    };
    body.insert("record_count".into(), json!(total));
    body.insert(key.into(), render(page));
    json(StatusCode::OK, &Value::Object(body))
}

/// `GET /api/{resource}/{id}`: the record itself; 404 for an unknown id.
async fn get_one(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    resource: usize,
) -> Response {
    if !authorised(&st, &headers) {
        return unauthorised();
    }
    let Ok(id) = id.trim().parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("The id {id:?} is not an integer."),
        );
    };
    let snap = st.snapshot(View::Halo);
    let rows = snap.rows(resource);
    match rows.index_of(id) {
        Some(i) => json(StatusCode::OK, &rows.row(i)),
        None => error(
            StatusCode::NOT_FOUND,
            &format!(
                "{} {id} not found.",
                records::resources(View::Halo)[resource].noun
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_ignore_unknown_and_unset() {
        let p = Params::parse(Some("tickettype_id=3&client_id=0&open_only=true"));
        let f = Filters::parse(&p).expect("valid");
        assert_eq!(f.closed, Some(false));
        assert_eq!(f.client_id, None);
        let p = Params::parse(Some("status_id=x"));
        assert!(Filters::parse(&p).is_err());
    }
}
