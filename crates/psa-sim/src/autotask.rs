//! The Autotask personality (docs/psa.md §7.3): version and zone discovery, header auth, the rolling request threshold
//! and thread limit, `ThresholdInformation`, and for every entity (`Tickets`, `Companies`, … see
//! [`crate::records::at`]) `query` (GET and POST) with `nextPageUrl` paging, counts, single records and entity
//! information. One implementation serves them all, parameterised by the entity's rows and fields. Ticket updates
//! and notes are `crate::writes::at`'s, behind the same guard.
//!
//! Paths are case-insensitive: the outer middleware lower-cases every `/atservicesrest/…` path before routing, so
//! the routes here are spelled in lower case.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::at_filter::{parse_query_body, parse_query_text, AtEntity, QueryInput, TICKET};
use crate::config::{Limits, ThreadLimitMode};
use crate::data::{View, REGIONS, REGION_CAPTION};
use crate::http_util::{encode_component, json, request_base, set_header, Params};
use crate::records::{self, Kind, RowSet};
use crate::state::{lock, Counters, SimState};

/// The REST root advertised by zoneInformation (followed by `V1.0/`).
pub const REST_ROOT: &str = "/ATServicesRest/";

pub(crate) fn routes(state: Arc<SimState>) -> Router<Arc<SimState>> {
    type St = State<Arc<SimState>>;
    let mut api = Router::new()
        .route("/zoneinformation", get(zone_info))
        .route("/thresholdinformation", get(threshold_info));
    for (i, r) in records::resources(View::Autotask).iter().enumerate() {
        let root = format!("/{}", r.endpoint.to_ascii_lowercase());
        api = api
            .route(
                &format!("{root}/query"),
                get(move |st: St, h: HeaderMap, uri: Uri| query_get(st, h, uri, i))
                    .post(move |st: St, h: HeaderMap, body: Bytes| query_post(st, h, body, i)),
            )
            .route(
                &format!("{root}/query/count"),
                get(move |st: St, uri: Uri| count_get(st, uri, i))
                    .post(move |st: St, body: Bytes| count_post(st, body, i)),
            )
            .route(
                &format!("{root}/query/next"),
                get(move |st: St, h: HeaderMap, uri: Uri| next_get(st, h, uri, i)).post(
                    move |st: St, h: HeaderMap, uri: Uri, body: Bytes| {
                        next_post(st, h, uri, body, i)
                    },
                ),
            )
            .route(
                &format!("{root}/entityinformation"),
                get(move || entity_info(i)),
            )
            .route(
                &format!("{root}/entityinformation/fields"),
                get(move |st: St| fields_info(st, i)),
            )
            .route(
                &format!("{root}/entityinformation/userdefinedfields"),
                get(move || udf_info(i)),
            )
            .route(
                &format!("{root}/{{id}}"),
                get(move |st: St, id: Path<String>| get_one(st, id, i)),
            );
    }
    let api = crate::writes::at::routes(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state, guard));
    Router::new()
        .route("/atservicesrest/versioninformation", get(version_info))
        .nest("/atservicesrest/v1.0", api)
}

/// An Autotask error: `{"errors":["…"]}`.
#[derive(Debug)]
pub(crate) struct AtError {
    status: StatusCode,
    message: String,
}

impl AtError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> AtError {
        AtError {
            status,
            message: message.into(),
        }
    }

    /// Autotask answers validation errors with 500.
    fn invalid(message: impl Into<String>) -> AtError {
        AtError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<String> for AtError {
    fn from(message: String) -> AtError {
        AtError::invalid(message)
    }
}

impl IntoResponse for AtError {
    fn into_response(self) -> Response {
        json(self.status, &json!({ "errors": [self.message] }))
    }
}

async fn not_found(OriginalUri(uri): OriginalUri) -> AtError {
    AtError::new(
        StatusCode::NOT_FOUND,
        format!(
            "No HTTP resource was found that matches the request URI '{}'.",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method) -> AtError {
    AtError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("The requested resource does not support http method '{method}'."),
    )
}

/// `GET /atservicesrest/versioninformation`.
async fn version_info() -> Response {
    json(StatusCode::OK, &json!({"apiVersions": ["1.0"]}))
}

/// `GET …/v1.0/zoneInformation?user=`: unauthenticated; 500 for a blank or unknown user.
async fn zone_info(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AtError> {
    let params = Params::parse(uri.query());
    let user = params.get("user").unwrap_or_default().trim();
    if user.is_empty() || !user.eq_ignore_ascii_case(&st.cfg.at_username) {
        return Err(AtError::invalid(format!(
            "Zone information could not be determined for user '{user}'."
        )));
    }
    let base = request_base(&headers, &st);
    Ok(json(
        StatusCode::OK,
        &json!({
            "zoneName": "Sim",
            "url": format!("{base}{REST_ROOT}"),
            "webUrl": format!("{base}/"),
            "ci": 0,
        }),
    ))
}

/// Header auth, the per-(integration code, entity) thread limit, and the rolling request threshold (with latency
/// tiers). zoneInformation is exempt from all three; ThresholdInformation from the threshold.
async fn guard(State(st): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path == "/zoneinformation" {
        return next.run(req).await;
    }
    let (user, secret, code) = {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        (
            header("username"),
            header("secret"),
            header("apiintegrationcode"),
        )
    };
    let cfg = &st.cfg;
    if user.is_empty() || secret.is_empty() || code.is_empty() {
        return AtError::new(
            StatusCode::UNAUTHORIZED,
            "The UserName, Secret and ApiIntegrationCode headers are required.",
        )
        .into_response();
    }
    if !user.eq_ignore_ascii_case(&cfg.at_username)
        || secret != cfg.at_secret
        || code != cfg.at_integration_code
    {
        return AtError::new(
            StatusCode::UNAUTHORIZED,
            "Authentication failed: the UserName, Secret or ApiIntegrationCode is invalid.",
        )
        .into_response();
    }

    let limits = st.limits();
    // The thread slot is taken first: added latency occupies it, as on the real service.
    let _permit = match limits.at_thread_limit {
        None => None,
        Some(n) => {
            let entity = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let sem = lock(&st.at_threads)
                .entry((code.clone(), entity.clone()))
                .or_insert_with(|| Arc::new(Semaphore::new(n.max(1))))
                .clone();
            match limits.at_thread_limit_mode {
                ThreadLimitMode::Wait => sem.acquire_owned().await.ok(),
                ThreadLimitMode::Reject => match sem.try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        Counters::bump(&st.counters.at_throttled);
                        let mut resp = AtError::new(
                            StatusCode::TOO_MANY_REQUESTS,
                            format!(
                                "Thread Count threshold exceeded: at most {n} concurrent requests per integration \
                                 code on '{entity}'."
                            ),
                        )
                        .into_response();
                        set_header(&mut resp, "retry-after", "1");
                        return resp;
                    }
                },
            }
        }
    };
    if path != "/thresholdinformation" {
        match take_threshold_slot(&st, &limits) {
            Ok(used) => {
                if limits.at_latency {
                    let share = used as f64 / limits.at_threshold.max(1) as f64;
                    let delay = if share >= 0.75 {
                        Duration::from_secs(1)
                    } else if share >= 0.5 {
                        Duration::from_millis(500)
                    } else {
                        Duration::ZERO
                    };
                    if !delay.is_zero() {
                        tokio::time::sleep(st.clock.real(delay)).await;
                    }
                }
            }
            Err(wait) => {
                Counters::bump(&st.counters.at_throttled);
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                let mut resp = AtError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "The external request threshold of {} requests per {} minutes has been exceeded. Try again \
                         in {secs} seconds.",
                        limits.at_threshold, limits.at_threshold_minutes
                    ),
                )
                .into_response();
                set_header(&mut resp, "retry-after", &secs.to_string());
                return resp;
            }
        }
    }

    next.run(req).await
}

/// Records a request in the rolling window; returns the window's count including it, or the (virtual) wait until
/// a slot frees up.
fn take_threshold_slot(st: &SimState, limits: &Limits) -> Result<u64, Duration> {
    let window = Duration::from_secs(limits.at_threshold_minutes.saturating_mul(60));
    let now = st.clock.now();
    let mut w = lock(&st.at_window);
    while w.front().is_some_and(|t| now.saturating_sub(*t) >= window) {
        w.pop_front();
    }
    if w.len() as u64 >= limits.at_threshold {
        let oldest = w.front().copied().unwrap_or(now);
        return Err(window.saturating_sub(now.saturating_sub(oldest)));
    }
    w.push_back(now);
    Ok(w.len() as u64)
}

/// `GET …/V1.0/ThresholdInformation`.
async fn threshold_info(State(st): State<Arc<SimState>>) -> Response {
    let limits = st.limits();
    json(
        StatusCode::OK,
        &json!({
            "externalRequestThreshold": limits.at_threshold,
            "requestThresholdTimeframe": limits.at_threshold_minutes,
            "currentTimeframeRequestCount": st.at_window_count(),
        }),
    )
}

/// What a filter on entity number `index` of [`records::at::RESOURCES`] may name.
fn entity(index: usize) -> AtEntity {
    let r = &records::resources(View::Autotask)[index];
    if r.is_tickets() {
        return TICKET;
    }
    AtEntity {
        name: r.noun,
        fields: r.fields,
        non_queryable: &[],
        udfs: &[],
    }
}

/// The `paging` cursor of `nextPageUrl`/`prevPageUrl`: `nextIds[0]` is the id the page starts after;
/// `previousIds` are the start-after ids of the earlier pages.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Paging {
    #[serde(rename = "pageSize", default)]
    page_size: usize,
    #[serde(rename = "previousIds", default)]
    previous_ids: Vec<u64>,
    #[serde(rename = "nextIds", default)]
    next_ids: Vec<u64>,
}

/// Where a page starts and how the follow-up URLs are built.
struct PageRequest<'a> {
    page_size: usize,
    after: u64,
    previous: Vec<u64>,
    /// The original `search` JSON of a GET-started query, repeated on its page URLs.
    search: Option<&'a str>,
}

fn page(
    st: &SimState,
    headers: &HeaderMap,
    input: &QueryInput,
    req: &PageRequest<'_>,
    resource: usize,
) -> Response {
    let snap = st.snapshot(View::Autotask);
    let rows: RowSet<'_> = snap.rows(resource);
    let start = rows.first_after(i64::try_from(req.after).unwrap_or(i64::MAX));
    let mut matching = rows
        .rows_from(start)
        .filter(|(_, r)| input.filter.matches(r));
    let picked: Vec<(usize, Cow<'_, Value>)> = matching.by_ref().take(req.page_size).collect();
    let more = matching.next().is_some();

    let base = format!(
        "{}{REST_ROOT}V1.0/{}/query/next",
        request_base(headers, st),
        records::resources(View::Autotask)[resource].endpoint
    );
    let url = |p: &Paging| {
        let paging = serde_json::to_string(p).unwrap_or_default();
        let mut u = format!("{base}?paging={}", encode_component(&paging));
        if let Some(search) = req.search {
            u.push_str("&search=");
            u.push_str(&encode_component(search));
        }
        u
    };
    let next = match picked.last().map(|(i, _)| rows.id(*i)) {
        Some(last) if more => {
            let mut previous = req.previous.clone();
            previous.push(req.after);
            Value::String(url(&Paging {
                page_size: req.page_size,
                previous_ids: previous,
                next_ids: vec![last],
            }))
        }
        _ => Value::Null,
    };
    let prev = match req.previous.split_last() {
        Some((after, earlier)) => Value::String(url(&Paging {
            page_size: req.page_size,
            previous_ids: earlier.to_vec(),
            next_ids: vec![*after],
        })),
        None => Value::Null,
    };
    let items: Vec<Value> = picked.into_iter().map(|(_, r)| input.project(r)).collect();
    json(
        StatusCode::OK,
        &json!({
            "items": items,
            "pageDetails": {
                "count": items.len(),
                "requestCount": req.page_size,
                "prevPageUrl": prev,
                "nextPageUrl": next,
            },
        }),
    )
}

fn required_search(params: &Params) -> Result<&str, AtError> {
    params
        .get("search")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| AtError::invalid("The search parameter is required."))
}

fn parse_paging(params: &Params) -> Result<Paging, AtError> {
    let text = params
        .get("paging")
        .ok_or_else(|| AtError::invalid("The paging parameter is required."))?;
    let paging: Paging = serde_json::from_str(text)
        .map_err(|e| AtError::invalid(format!("The paging parameter is not valid: {e}.")))?;
    if paging.next_ids.is_empty() || paging.page_size == 0 {
        return Err(AtError::invalid(
            "The paging parameter is not valid: no nextIds or pageSize.",
        ));
    }
    Ok(paging)
}

/// `GET …/Tickets/query?search=<json>` (and every other entity's).
async fn query_get(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    uri: Uri,
    resource: usize,
) -> Result<Response, AtError> {
    let params = Params::parse(uri.query());
    let search = required_search(&params)?;
    let input = parse_query_text(search, &st.limits(), &entity(resource))?;
    let req = PageRequest {
        page_size: input.max_records,
        after: 0,
        previous: Vec::new(),
        search: Some(search),
    };
    Ok(page(&st, &headers, &input, &req, resource))
}

/// `POST …/Tickets/query` with the query as the body.
async fn query_post(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
    resource: usize,
) -> Result<Response, AtError> {
    let input = parse_query_body(&body, &st.limits(), &entity(resource))?;
    let req = PageRequest {
        page_size: input.max_records,
        after: 0,
        previous: Vec::new(),
        search: None,
    };
    Ok(page(&st, &headers, &input, &req, resource))
}

/// `GET …/Tickets/query/next?paging=…&search=…`; a POST-started cursor (no `search`) must be re-POSTed: 405.
async fn next_get(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    uri: Uri,
    resource: usize,
) -> Result<Response, AtError> {
    let params = Params::parse(uri.query());
    let Some(search) = params.get("search").filter(|s| !s.trim().is_empty()) else {
        return Err(AtError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "The requested resource does not support http method 'GET'.",
        ));
    };
    let paging = parse_paging(&params)?;
    let input = parse_query_text(search, &st.limits(), &entity(resource))?;
    let req = PageRequest {
        page_size: paging.page_size.min(st.limits().at_max_records.max(1)),
        after: paging.next_ids[0],
        previous: paging.previous_ids,
        search: Some(search),
    };
    Ok(page(&st, &headers, &input, &req, resource))
}

/// `POST …/Tickets/query/next?paging=…` with the original query as the body.
async fn next_post(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
    resource: usize,
) -> Result<Response, AtError> {
    let params = Params::parse(uri.query());
    let paging = parse_paging(&params)?;
    let input = parse_query_body(&body, &st.limits(), &entity(resource))?;
    let req = PageRequest {
        page_size: paging.page_size.min(st.limits().at_max_records.max(1)),
        after: paging.next_ids[0],
        previous: paging.previous_ids,
        search: None,
    };
    Ok(page(&st, &headers, &input, &req, resource))
}

fn count(st: &SimState, input: &QueryInput, resource: usize) -> Response {
    let n = st
        .snapshot(View::Autotask)
        .rows(resource)
        .rows_from(0)
        .filter(|(_, r)| input.filter.matches(r))
        .count();
    json(StatusCode::OK, &json!({ "queryCount": n }))
}

/// `GET …/Tickets/query/count?search=<json>` → `{"queryCount":N}`.
async fn count_get(
    State(st): State<Arc<SimState>>,
    uri: Uri,
    resource: usize,
) -> Result<Response, AtError> {
    let params = Params::parse(uri.query());
    let input = parse_query_text(required_search(&params)?, &st.limits(), &entity(resource))?;
    Ok(count(&st, &input, resource))
}

/// `POST …/Tickets/query/count` → `{"queryCount":N}`.
async fn count_post(
    State(st): State<Arc<SimState>>,
    body: Bytes,
    resource: usize,
) -> Result<Response, AtError> {
    let input = parse_query_body(&body, &st.limits(), &entity(resource))?;
    Ok(count(&st, &input, resource))
}

/// `GET …/Tickets/{id}` → `{"item":{…}}`, or `{"item":null}` for an unknown id.
async fn get_one(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    resource: usize,
) -> Result<Response, AtError> {
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| AtError::invalid(format!("The id '{id}' is not a valid integer.")))?;
    let snap = st.snapshot(View::Autotask);
    let rows = snap.rows(resource);
    let item = rows
        .index_of(id)
        .map_or(Value::Null, |i| rows.row(i).into_owned());
    Ok(json(StatusCode::OK, &json!({ "item": item })))
}

/// `GET …/Tickets/entityInformation`.
async fn entity_info(resource: usize) -> Response {
    let e = entity(resource);
    json(
        StatusCode::OK,
        &json!({"info": {
            "name": e.name, "canCreate": e.name == "TicketNote", "canDelete": false, "canQuery": true,
            "canUpdate": e.name == TICKET.name,
            "hasUserDefinedFields": !e.udfs.is_empty(), "supportsWebhookCallouts": false,
        }}),
    )
}

fn picklist(values: impl Iterator<Item = (u64, String)>) -> Value {
    Value::Array(
        values
            .enumerate()
            .map(|(i, (value, label))| {
                json!({
                    "value": value.to_string(), "label": label, "isDefaultValue": i == 0,
                    "sortOrder": i + 1, "isActive": true, "isSystem": true,
                })
            })
            .collect(),
    )
}

/// `GET …/Tickets/entityInformation/fields`: field types, and for tickets the integer picklists with labels.
async fn fields_info(State(st): State<Arc<SimState>>, resource: usize) -> Response {
    let data = st.data();
    let e = entity(resource);
    let tickets = e.name == TICKET.name;
    let fields: Vec<Value> = e
        .fields
        .iter()
        .map(|(name, ty)| {
            let picklist_values = match *name {
                "status" if tickets => {
                    picklist(data.statuses.iter().map(|s| (s.id, s.name.clone())))
                }
                "priority" if tickets => {
                    picklist(data.priorities.iter().map(|p| (p.id, p.name.clone())))
                }
                "queueID" if tickets => {
                    picklist(data.boards.iter().map(|b| (b.id, b.name.clone())))
                }
                _ => Value::Null,
            };
            let data_type = match ty {
                // References are longs; picklists integers.
                Kind::Number
                    if picklist_values.is_null() && (*name == "id" || name.ends_with("ID")) =>
                {
                    "long"
                }
                Kind::Number => "integer",
                Kind::Text => "string",
                Kind::DateTime => "datetime",
                Kind::Bool => "boolean",
            };
            json!({
                "name": name, "dataType": data_type, "isPickList": !picklist_values.is_null(),
                "isQueryable": true, "isReadOnly": *name == "id", "picklistValues": picklist_values,
            })
        })
        .collect();
    json(StatusCode::OK, &json!({ "fields": fields }))
}

/// `GET …/Tickets/entityInformation/userDefinedFields`: on tickets one text UDF (its values are
/// West/East/North/South or null); other entities have none.
async fn udf_info(resource: usize) -> Response {
    if entity(resource).udfs.is_empty() {
        return json(StatusCode::OK, &json!({ "fields": [] }));
    }
    json(
        StatusCode::OK,
        &json!({"fields": [{
            "name": REGION_CAPTION, "label": REGION_CAPTION, "dataType": "string", "isPickList": false,
            "isQueryable": true, "picklistValues": null, "sampleValues": REGIONS,
        }]}),
    )
}
