//! Extractors whose rejections use the error envelope: JSON bodies (400 malformed, 413 too
//! large, 422 with the JSON path of a wrong member), path and query parameters (400).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Also keeps the raw bytes (for idempotency fingerprints).
pub struct ApiJson<T> {
    pub value: T,
    pub raw: Bytes,
}

fn is_json(ct: Option<&axum::http::HeaderValue>) -> bool {
    let Some(ct) = ct.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses a JSON body into `T`, naming the offending member on a type error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let parent = if path == "." { String::new() } else { path };
        // serde names a missing member only in its message (the path is its parent's); an
        // unknown member is already the last segment of the path.
        let named = inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next());
        let field = match (named, parent.is_empty()) {
            (Some(n), true) => n.to_owned(),
            (Some(n), false) => format!("{parent}.{n}"),
            (None, _) => parent,
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_error", inner)
            .with_field(&field)
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            if crate::server::is_body_timeout(&e) {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "the request body was not received in time",
                )
            } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than the server accepts",
                )
            } else {
                ApiError::bad_request(format!("could not read the body: {e}"))
            }
        })?;
        let value = parse_json(&raw)?;
        Ok(Self { value, raw })
    }
}

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad_request(format!("bad path parameter: {}", e.body_text())))
    }
}

/// Query parameters.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let field = e.path().to_string();
                ApiError::bad_request(format!("bad query parameter: {}", e.into_inner()))
                    .with_field(&field)
            })
    }
}

/// The query parameters each operation documents, path template → method → names, read
/// once from the OpenAPI document: the one list a request's query is checked against.
type Documented = std::collections::HashMap<
    String,
    std::collections::HashMap<String, std::collections::BTreeSet<String>>,
>;

fn documented_queries() -> &'static Documented {
    static QUERIES: std::sync::OnceLock<Documented> = std::sync::OnceLock::new();
    QUERIES.get_or_init(|| {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi::document_json())
            .expect("the OpenAPI document is JSON");
        let mut out = Documented::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let names = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect();
                out.entry(path.clone())
                    .or_default()
                    .insert(method.to_ascii_uppercase(), names);
            }
        }
        out
    })
}

/// Refuses a query parameter the operation does not document: 400 `bad_request` naming it in
/// `details.field` (a misspelt filter, `?statuss=failed`, would otherwise list everything).
/// A route layer, inside authentication, so the answer carries the rate-limit headers like
/// any other 400 of an authenticated operation.
pub async fn reject_unknown_query(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (Some(matched), Some(query)) = (
        req.extensions().get::<axum::extract::MatchedPath>(),
        req.uri().query(),
    ) else {
        return next.run(req).await;
    };
    let known = documented_queries()
        .get(matched.as_str())
        .and_then(|by_method| by_method.get(req.method().as_str()));
    if let Some(known) = known {
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            if !known.contains(name.as_ref()) {
                let takes = if known.is_empty() {
                    "no query parameter".to_owned()
                } else {
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                };
                return ApiError::bad_request(format!(
                    "unknown query parameter {name:?}; this operation takes {takes}"
                ))
                .with_field(&name)
                .into_response();
            }
        }
    }
    next.run(req).await
}
