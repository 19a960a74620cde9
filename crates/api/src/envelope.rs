//! The success envelope `{data, meta: {request_id, timings_ms, pagination?, warnings?}}`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::context;

/// Keyset pagination state of a list response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pagination {
    pub has_more: bool,
    #[schema(value_type = Option<String>, required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SuccessMeta {
    #[schema(required = false, value_type = Pagination)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    #[schema(value_type = String, format = "uuid")]
    pub request_id: uuid::Uuid,
    pub timings_ms: BTreeMap<String, f64>,
    /// Non-fatal warnings about the created/updated resource (e.g. an
    /// unhealthy PSA callback).
    #[schema(required = false)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `{data: T, meta: SuccessMeta}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataEnvelope<T> {
    pub data: T,
    pub meta: SuccessMeta,
}

/// A successful response: status, data and meta.
#[derive(Debug)]
pub struct Reply<T> {
    status: StatusCode,
    data: T,
    pagination: Option<Pagination>,
    warnings: Vec<String>,
}

impl<T: Serialize> Reply<T> {
    pub fn new(data: T) -> Self {
        Self {
            status: StatusCode::OK,
            data,
            pagination: None,
            warnings: Vec::new(),
        }
    }
    pub fn created(data: T) -> Self {
        Self::new(data).status(StatusCode::CREATED)
    }
    pub fn status(mut self, s: StatusCode) -> Self {
        self.status = s;
        self
    }
    pub fn page(mut self, has_more: bool, next_cursor: Option<String>) -> Self {
        self.pagination = Some(Pagination {
            has_more,
            next_cursor,
        });
        self
    }
    pub fn warnings(mut self, w: Vec<String>) -> Self {
        self.warnings = w;
        self
    }
    pub fn status_code(&self) -> StatusCode {
        self.status
    }
    /// The data and warnings, for callers that render them another way (the dashboard).
    pub fn into_parts(self) -> (T, Vec<String>) {
        (self.data, self.warnings)
    }

    /// The envelope this response renders.
    fn envelope(&self) -> DataEnvelope<&T> {
        let mut timings = BTreeMap::new();
        timings.insert(
            "handler".to_owned(),
            (context::elapsed_ms() * 1000.0).round() / 1000.0,
        );
        DataEnvelope {
            data: &self.data,
            meta: SuccessMeta {
                pagination: self.pagination.clone(),
                request_id: context::request_id(),
                timings_ms: timings,
                warnings: self.warnings.clone(),
            },
        }
    }

    /// The JSON body this response renders, as a value (to store or inspect it).
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(self.envelope()).expect("responses serialize")
    }
}

impl<T: Serialize> IntoResponse for Reply<T> {
    /// Serialized straight to bytes: a list page of 50 backfills went through a
    /// `serde_json::Value` first, which cost as much again in allocations.
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.envelope())).into_response()
    }
}
