//! The ConnectWise PSA personality (docs/psa.md §7.2): company info, auth, throttling, and for every resource
//! (`/service/tickets`, `/company/companies`, … see [`crate::records::cw`]) conditions, counts, `POST …/search`,
//! navigable and forward-only paging and single records. One implementation serves them all, parameterised by the
//! resource's rows and conditions schema. Ticket writes and notes are `crate::writes::cw`'s, behind the same guard.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::config::EmptyLink;
use crate::cw_conditions::{
    parse, ConditionError, Expr, FieldType, Schema, BAD_LITERAL_MESSAGE, CUSTOM_FIELD_SCHEMA,
    NO_CHILD_SCHEMA,
};
use crate::data::View;
use crate::eval::{cmp_json, value_at};
use crate::http_util::{json, request_base, set_header, Params};
use crate::records::{self, Resource, RowSet};
use crate::state::{lock, Bucket, Counters, SimState};

/// The codebase `companyinfo` advertises.
pub const CODEBASE: &str = "v4_6_release/";
/// The API root every ConnectWise route lives under.
pub const API_PREFIX: &str = "/v4_6_release/apis/3.0";
/// The `api-current-version` header value.
pub const API_VERSION: &str = "2025.1";

pub(crate) fn routes(state: Arc<SimState>) -> Router<Arc<SimState>> {
    type St = State<Arc<SimState>>;
    let mut api = Router::new();
    for (i, r) in records::resources(View::ConnectWise).iter().enumerate() {
        let path = r.endpoint;
        api = api
            .route(
                path,
                get(move |st: St, h: HeaderMap, uri: OriginalUri| list(st, h, uri, i)),
            )
            .route(
                &format!("{path}/count"),
                get(move |st: St, uri: Uri| count(st, uri, i)),
            )
            .route(
                &format!("{path}/search"),
                post(move |st: St, h: HeaderMap, uri: OriginalUri, body: Bytes| {
                    search(st, h, uri, body, i)
                }),
            )
            .route(
                &format!("{path}/{{id}}"),
                get(move |st: St, id: Path<String>, uri: Uri| get_one(st, id, uri, i)),
            );
    }
    let api = crate::writes::cw::routes(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state, guard));
    Router::new()
        .route("/login/companyinfo/{company}", get(company_info))
        .nest(API_PREFIX, api)
}

/// The 429 body of the ConnectWise rate limiter (docs/psa.md §1.9).
pub(crate) fn throttle_body(secs: u64) -> Value {
    json!({
        "error": "ConnectWiseAPI",
        "message": format!("Too many requests. Please try again in {secs} seconds."),
    })
}

/// A ConnectWise error: `{"code","message","errors"}`.
#[derive(Debug)]
pub(crate) struct CwError {
    status: StatusCode,
    code: &'static str,
    message: String,
    errors: Value,
}

impl CwError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> CwError {
        CwError {
            status,
            code,
            message: message.into(),
            errors: Value::Null,
        }
    }

    /// The same error with an `errors` array.
    pub(crate) fn with_errors(mut self, errors: Value) -> CwError {
        self.errors = errors;
        self
    }

    fn bad_request(message: impl Into<String>) -> CwError {
        CwError::new(StatusCode::BAD_REQUEST, "InvalidObject", message)
    }

    fn condition(param: &str, err: ConditionError) -> CwError {
        let (message, detail, field) = match err {
            ConditionError::BadLiteral(lit) => (
                BAD_LITERAL_MESSAGE.to_string(),
                format!("Invalid value {lit} in {param}."),
                param.to_string(),
            ),
            ConditionError::UnknownField(f) => (
                format!("ApiFindCondition object is invalid: unknown field '{f}' in {param}."),
                format!("The field '{f}' is not a valid field for {param}."),
                f,
            ),
            ConditionError::Syntax(d) => (
                format!("ApiFindCondition object is invalid: {d} in {param}."),
                d,
                param.to_string(),
            ),
        };
        CwError {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidObject",
            message,
            errors: json!([{
                "code": "InvalidField",
                "message": detail,
                "resource": "ApiFindCondition",
                "field": field,
            }]),
        }
    }
}

impl IntoResponse for CwError {
    fn into_response(self) -> Response {
        let mut resp = json(
            self.status,
            &json!({"code": self.code, "message": self.message, "errors": self.errors}),
        );
        set_header(&mut resp, "api-current-version", API_VERSION);
        resp
    }
}

async fn not_found(OriginalUri(uri): OriginalUri) -> CwError {
    CwError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("The resource {} was not found.", uri.path()),
    )
}

async fn method_not_allowed() -> CwError {
    CwError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The requested resource does not support this HTTP method.",
    )
}

/// `GET /login/companyinfo/{company}`: unauthenticated codebase discovery; `null` for an unknown company.
async fn company_info(State(st): State<Arc<SimState>>, Path(company): Path<String>) -> Response {
    if !company.eq_ignore_ascii_case(&st.cfg.cw_company) {
        return json(StatusCode::OK, &Value::Null);
    }
    json(
        StatusCode::OK,
        &json!({
            "CompanyName": format!("{} (simulated)", st.cfg.cw_company),
            "Codebase": CODEBASE,
            "VersionCode": "v2025.1",
            "VersionNumber": "v4.6.20251",
            "CompanyID": st.cfg.cw_company,
            "IsCloud": "False",
        }),
    )
}

/// Auth, URL length, and the per-clientId token bucket; stamps `api-current-version` on every answer.
async fn guard(State(st): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let limits = st.limits();
    if let Some(max) = limits.cw_max_url_len {
        let uri = req
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| req.uri().clone(), |o| o.0.clone());
        let len = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
        if len > max {
            return CwError::new(
                StatusCode::URI_TOO_LONG,
                "RequestUriTooLong",
                format!("The request URL is {len} characters long; the limit is {max}. Use POST …/search."),
            )
            .into_response();
        }
    }
    if let Err(e) = check_auth(&st, req.headers()) {
        return e.into_response();
    }
    let client_id = req
        .headers()
        .get("clientid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(limit) = limits.cw_rate_limit {
        let now = st.clock.now();
        let verdict = lock(&st.cw_buckets)
            .entry(client_id)
            .or_insert_with(|| Bucket::full(limit, now))
            .take(limit, now);
        if let Err(wait) = verdict {
            Counters::bump(&st.counters.cw_throttled);
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut resp = json(StatusCode::TOO_MANY_REQUESTS, &throttle_body(secs));
            set_header(&mut resp, "retry-after", &secs.to_string());
            set_header(&mut resp, "api-current-version", API_VERSION);
            return resp;
        }
    }
    let mut resp = next.run(req).await;
    set_header(&mut resp, "api-current-version", API_VERSION);
    resp
}

fn check_auth(st: &SimState, headers: &HeaderMap) -> Result<(), CwError> {
    let unauthorized = |m: &str| CwError::new(StatusCode::UNAUTHORIZED, "Unauthorized", m);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            unauthorized(
                "Authorization has been denied for this request: no credentials were sent.",
            )
        })?;
    let bad = || {
        unauthorized("Authorization has been denied for this request: the credentials are invalid.")
    };
    let encoded = auth
        .strip_prefix("Basic ")
        .or_else(|| auth.strip_prefix("basic "))
        .ok_or_else(bad)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (user, private) = decoded.split_once(':').ok_or_else(bad)?;
    let (company, public) = user.split_once('+').ok_or_else(bad)?;
    let cfg = &st.cfg;
    if !company.eq_ignore_ascii_case(&cfg.cw_company)
        || public != cfg.cw_public_key
        || private != cfg.cw_private_key
    {
        return Err(bad());
    }
    match headers.get("clientid").and_then(|v| v.to_str().ok()) {
        None => {
            let status = StatusCode::from_u16(st.limits().cw_missing_client_id_status)
                .unwrap_or(StatusCode::UNAUTHORIZED);
            let code = if status == StatusCode::UNAUTHORIZED {
                "Unauthorized"
            } else {
                "InvalidObject"
            };
            Err(CwError::new(
                status,
                code,
                "A clientId header is required. Register an integration at developer.connectwise.com.",
            ))
        }
        Some(id) if id.trim() != cfg.cw_client_id => {
            Err(unauthorized("The clientId is not valid."))
        }
        Some(_) => Ok(()),
    }
}

/// A parsed query on one resource (filters, order, projection).
struct Query {
    conditions: Option<Expr>,
    custom: Option<Expr>,
    child: Option<Expr>,
    order_by: Vec<(Vec<&'static str>, bool)>,
    fields: Option<Vec<Vec<&'static str>>>,
}

/// The raw strings a query is made of (from the query string, or the `/search` body).
#[derive(Default)]
struct RawQuery {
    conditions: Option<String>,
    custom: Option<String>,
    child: Option<String>,
    order_by: Option<String>,
}

impl RawQuery {
    fn from_params(p: &Params) -> RawQuery {
        RawQuery {
            conditions: p.get("conditions").map(str::to_string),
            custom: p.get("customFieldConditions").map(str::to_string),
            child: p.get("childConditions").map(str::to_string),
            order_by: p.get("orderBy").map(str::to_string),
        }
    }

    fn compile(&self, fields: Option<&str>, resource: usize) -> Result<Query, CwError> {
        let schema = records::cw::schema(resource);
        let custom_fields = records::resources(View::ConnectWise)[resource].is_tickets();
        let cond = |param: &str, src: &Option<String>, schema| {
            src.as_deref()
                .map(|s| parse(s, schema).map_err(|e| CwError::condition(param, e)))
                .transpose()
                .map(Option::flatten)
        };
        Ok(Query {
            conditions: cond("conditions", &self.conditions, schema)?,
            custom: cond("customFieldConditions", &self.custom, &CUSTOM_FIELD_SCHEMA)?,
            child: cond("childConditions", &self.child, &NO_CHILD_SCHEMA)?,
            order_by: parse_order_by(self.order_by.as_deref().unwrap_or(""), schema)?,
            fields: fields.map(|f| parse_fields(f, schema, custom_fields)),
        })
    }
}

fn parse_order_by(
    src: &str,
    schema: &'static Schema,
) -> Result<Vec<(Vec<&'static str>, bool)>, CwError> {
    let mut out = Vec::new();
    for part in src.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let field = words.next().unwrap_or_default();
        let desc = match words.next() {
            None => false,
            Some(d) if d.eq_ignore_ascii_case("asc") => false,
            Some(d) if d.eq_ignore_ascii_case("desc") => true,
            Some(d) => {
                return Err(CwError::bad_request(format!(
                    "orderBy direction '{d}' must be asc or desc."
                )))
            }
        };
        if let Some(extra) = words.next() {
            return Err(CwError::bad_request(format!(
                "Unexpected '{extra}' in orderBy."
            )));
        }
        match schema.resolve(field) {
            Some((canonical, ty)) if ty != FieldType::Object => {
                out.push((canonical.split('/').collect(), desc))
            }
            _ => {
                return Err(CwError::bad_request(format!(
                    "orderBy field '{field}' is not a valid field."
                )))
            }
        }
    }
    Ok(out)
}

/// `fields=id,summary,board/name,_info`: unknown names are ignored, as ConnectWise does
/// (`customFields` is known where the resource has custom fields: tickets).
fn parse_fields(src: &str, schema: &'static Schema, custom_fields: bool) -> Vec<Vec<&'static str>> {
    src.split(',')
        .map(str::trim)
        .filter_map(|f| {
            if custom_fields && f.eq_ignore_ascii_case("customFields") {
                Some(vec!["customFields"])
            } else if f.eq_ignore_ascii_case("_info") {
                Some(vec!["_info"])
            } else {
                schema.resolve(f).map(|(c, _)| c.split('/').collect())
            }
        })
        .collect()
}

impl Query {
    fn matches(&self, row: &Value) -> bool {
        self.conditions.as_ref().is_none_or(|e| e.matches(row))
            && self
                .custom
                .as_ref()
                .is_none_or(|e| e.matches_any_item(row, "customFields"))
            && self.child.as_ref().is_none_or(|e| e.matches(row))
    }

    /// Indices of matching rows, in id order. A query on the id alone is evaluated on
    /// `{"id"}` rows, so it does not render every row when rows are rendered per read.
    fn matching(&self, rows: &RowSet<'_>) -> Vec<usize> {
        let id_only = self.custom.is_none()
            && self.child.is_none()
            && self.conditions.as_ref().is_none_or(Expr::reads_only_id);
        if id_only {
            return (0..rows.len())
                .filter(|&i| self.matches(&json!({"id": rows.id(i)})))
                .collect();
        }
        rows.rows_from(0)
            .filter(|(_, row)| self.matches(row))
            .map(|(i, _)| i)
            .collect()
    }

    fn project(&self, row: Cow<'_, Value>) -> Value {
        let Some(fields) = &self.fields else {
            return row.into_owned();
        };
        let mut out = Map::new();
        for path in fields {
            let v = value_at(&row, path);
            let mut cur = &mut out;
            for (i, seg) in path.iter().enumerate() {
                if i + 1 == path.len() {
                    cur.insert(seg.to_string(), v.clone());
                } else {
                    let entry = cur
                        .entry(seg.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !entry.is_object() {
                        *entry = Value::Object(Map::new());
                    }
                    match entry {
                        Value::Object(m) => cur = m,
                        _ => break,
                    }
                }
            }
        }
        Value::Object(out)
    }
}

fn parse_number(params: &Params, name: &str) -> Result<Option<i64>, CwError> {
    params
        .get(name)
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| CwError::bad_request(format!("{name} must be an integer, not '{v}'.")))
        })
        .transpose()
}

fn is_forward_only(headers: &HeaderMap) -> bool {
    headers
        .get("pagination-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("forward-only"))
}

/// `GET /service/tickets` (and every other resource's list).
async fn list(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    resource: usize,
) -> Result<Response, CwError> {
    let params = Params::parse(uri.query());
    let query = RawQuery::from_params(&params).compile(params.get("fields"), resource)?;
    page(&st, &headers, &uri, &params, &query, resource)
}

/// `POST /service/tickets/search`: the filter in the body (`FilterValues`), paging in the query string.
async fn search(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
    resource: usize,
) -> Result<Response, CwError> {
    let params = Params::parse(uri.query());
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            CwError::bad_request(format!("The request body is not valid JSON: {e}."))
        })?
    };
    let Value::Object(obj) = body else {
        return Err(CwError::bad_request(
            "The request body must be a FilterValues object.",
        ));
    };
    let mut raw = RawQuery::default();
    for (k, v) in obj {
        let text = match v {
            Value::Null => None,
            Value::String(s) => Some(s),
            _ => {
                return Err(CwError::bad_request(format!(
                    "FilterValues.{k} must be a string."
                )))
            }
        };
        match k.to_ascii_lowercase().as_str() {
            "conditions" => raw.conditions = text,
            "customfieldconditions" => raw.custom = text,
            "childconditions" => raw.child = text,
            "orderby" => raw.order_by = text,
            _ => {}
        }
    }
    let query = raw.compile(params.get("fields"), resource)?;
    page(&st, &headers, &uri, &params, &query, resource)
}

/// One page of a resource, navigable or forward-only.
fn page(
    st: &SimState,
    headers: &HeaderMap,
    uri: &Uri,
    params: &Params,
    query: &Query,
    resource: usize,
) -> Result<Response, CwError> {
    let limits = st.limits();
    let snap = st.snapshot(View::ConnectWise);
    let rows = snap.rows(resource);
    let page_size = match parse_number(params, "pageSize")? {
        Some(n) if n >= 1 => (n as usize).min(limits.cw_page_size_max.max(1)),
        _ => limits.cw_page_size_default.max(1),
    };
    let self_url = format!("{}{}", request_base(headers, st), uri.path());

    if is_forward_only(headers) {
        if !query.order_by.is_empty() && limits.cw_forward_only_rejects_order_by {
            return Err(CwError::bad_request(
                "orderBy cannot be used with forward-only pagination; results are ordered by id.",
            ));
        }
        let page_id = parse_number(params, "pageId")?.unwrap_or(0);
        let picked: Vec<(usize, Cow<'_, Value>)> = rows
            .rows_from(rows.first_after(page_id))
            .filter(|(_, r)| query.matches(r))
            .take(page_size)
            .collect();
        let last_id = picked.last().map(|(i, _)| rows.id(*i));
        let items: Vec<Value> = picked.into_iter().map(|(_, r)| query.project(r)).collect();
        let mut resp = json(StatusCode::OK, &Value::Array(items));
        match last_id {
            Some(last) => {
                let next = params.encode_with(&[
                    ("pageSize", page_size.to_string()),
                    ("pageId", last.to_string()),
                ]);
                set_header(
                    &mut resp,
                    "link",
                    &format!("<{self_url}?{next}>; rel=\"next\""),
                );
            }
            None if limits.cw_forward_only_empty_link == EmptyLink::Empty => {
                set_header(&mut resp, "link", "");
            }
            None => {}
        }
        return Ok(resp);
    }

    let mut matching = query.matching(&rows);
    if !query.order_by.is_empty() {
        // The sort keys of each row, taken once (a row may be rendered per read).
        let mut keyed: Vec<(Vec<Value>, usize)> = matching
            .iter()
            .map(|&i| {
                let row = rows.row(i);
                let keys = query.order_by.iter();
                (keys.map(|(p, _)| value_at(&row, p).clone()).collect(), i)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            for ((x, y), (_, desc)) in a.iter().zip(b).zip(&query.order_by) {
                let ord = cmp_json(x, y);
                let ord = if *desc { ord.reverse() } else { ord };
                if ord.is_ne() {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
        matching = keyed.into_iter().map(|(_, i)| i).collect();
    }
    let page_no = parse_number(params, "page")?
        .filter(|p| *p >= 1)
        .unwrap_or(1) as usize;
    let last_page = matching.len().div_ceil(page_size).max(1);
    let items: Vec<Value> = matching
        .iter()
        .skip((page_no - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|i| query.project(rows.row(*i)))
        .collect();
    let link = |n: usize, rel: &str| {
        let q = params.encode_with(&[("pageSize", page_size.to_string()), ("page", n.to_string())]);
        format!("<{self_url}?{q}>; rel=\"{rel}\"")
    };
    let mut links = vec![link(1, "first")];
    if page_no > 1 {
        links.push(link((page_no - 1).min(last_page), "prev"));
    }
    if page_no < last_page {
        links.push(link(page_no + 1, "next"));
    }
    links.push(link(last_page, "last"));
    let mut resp = json(StatusCode::OK, &Value::Array(items));
    set_header(&mut resp, "link", &links.join(", "));
    Ok(resp)
}

/// `GET /service/tickets/count` → `{"count":N}`.
async fn count(
    State(st): State<Arc<SimState>>,
    uri: Uri,
    resource: usize,
) -> Result<Response, CwError> {
    let params = Params::parse(uri.query());
    let query = RawQuery::from_params(&params).compile(None, resource)?;
    let count = query
        .matching(&st.snapshot(View::ConnectWise).rows(resource))
        .len();
    Ok(json(StatusCode::OK, &json!({ "count": count })))
}

/// `GET /service/tickets/{id}`.
async fn get_one(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    uri: Uri,
    resource: usize,
) -> Result<Response, CwError> {
    let r: &Resource = &records::resources(View::ConnectWise)[resource];
    let id: u64 = id.trim().parse().map_err(|_| {
        CwError::bad_request(format!("The {} id '{id}' is not a valid integer.", r.noun))
    })?;
    let params = Params::parse(uri.query());
    let query = RawQuery::default().compile(params.get("fields"), resource)?;
    let snap = st.snapshot(View::ConnectWise);
    let rows = snap.rows(resource);
    let idx = rows.index_of(id).ok_or_else(|| {
        CwError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} record with id {id} was not found.", r.noun),
        )
    })?;
    Ok(json(StatusCode::OK, &query.project(rows.row(idx))))
}
