//! Small HTTP helpers: case-insensitive query parameters, absolute base URLs, JSON responses.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::state::SimState;

/// Decoded query parameters in their original order; lookups ignore the name's case.
#[derive(Clone, Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> Params {
        Params(
            query
                .map(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// The first value of `name` (case-insensitive).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query string with each `(name, value)` replaced (in place) or appended.
    pub(crate) fn encode_with(&self, overrides: &[(&str, String)]) -> String {
        let mut pairs: Vec<(String, String)> = self.0.clone();
        for (name, value) in overrides {
            match pairs.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                Some(p) => p.1 = value.clone(),
                None => pairs.push((name.to_string(), value.clone())),
            }
        }
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            ser.append_pair(k, v);
        }
        ser.finish()
    }
}

/// Percent-encodes one query-parameter value.
pub(crate) fn encode_component(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `http://{Host}` of the request (so absolute URLs work for whatever name the client used), else the bound address.
pub(crate) fn request_base(headers: &HeaderMap, st: &SimState) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| st.base_url.clone(), |h| format!("http://{h}"))
}

/// A JSON response with `status`.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// Sets a header when the value is a valid header value (all values built here are).
pub(crate) fn set_header(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_roundtrip() {
        let p = Params::parse(Some("conditions=id%20%3E%205&PageSize=10&page=2"));
        assert_eq!(p.get("conditions"), Some("id > 5"));
        assert_eq!(p.get("pagesize"), Some("10"));
        let q = p.encode_with(&[("page", "3".into()), ("pageId", "7".into())]);
        assert_eq!(q, "conditions=id+%3E+5&PageSize=10&page=3&pageId=7");
    }
}
