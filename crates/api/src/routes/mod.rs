pub mod agents;
pub mod backfills;
pub mod entity_types;
pub mod executions;
pub mod integrations;
pub mod keys;
pub mod meta;
pub mod notifications;

use serde::Deserialize;

use crate::error::ApiError;

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// Validates `page_size` (1–200, default 50).
/// Checks a URL a tenant gives for the service to call (a webhook, a PSA): the domain's rule
/// ([`neo_domain::executor::check_target_url`]) as a 422 naming `field`.
pub fn check_target_url(
    field: &str,
    url: &str,
    egress: neo_domain::egress::EgressPolicy,
) -> Result<(), ApiError> {
    neo_domain::executor::check_target_url(field, url, egress).map_err(ApiError::validation)
}

pub fn page_size(p: Option<u32>) -> Result<usize, ApiError> {
    match p {
        None => Ok(DEFAULT_PAGE_SIZE as usize),
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n as usize),
        Some(_) => Err(ApiError::bad_request(format!(
            "page_size must be from 1 to {MAX_PAGE_SIZE}"
        ))
        .with_field("page_size")),
    }
}

/// Parses a comma list of enum values (`status=failed,skipped`).
pub fn comma_list<T>(
    raw: Option<&str>,
    field: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<T>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(|s| {
            parse(s.trim()).ok_or_else(|| {
                ApiError::bad_request(format!("{s:?} is not a valid {field} value"))
                    .with_field(field)
            })
        })
        .collect()
}

/// Plain pagination parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    /// Opaque cursor from `meta.pagination.next_cursor`.
    pub cursor: Option<String>,
}
