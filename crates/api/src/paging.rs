//! Keyset paging, the same for every list of the API and the dashboard: a page starts after
//! the position a signed cursor names (a cursor of another list, or tampered with, is 400
//! `invalid_cursor`), and the next cursor is the position of the page's last row.

use neo_store::Page;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;
use crate::AppState;

/// The position `cursor` names in `list`; `None` without a cursor.
pub fn after<K: DeserializeOwned>(
    app: &AppState,
    list: &str,
    cursor: Option<&str>,
) -> Result<Option<K>, ApiError> {
    match cursor {
        Some(c) => app
            .cursors
            .decode(list, c)
            .map(Some)
            .map_err(|_| ApiError::invalid_cursor()),
        None => Ok(None),
    }
}

/// The cursor of the page after `page` in `list`, if there is one: `key` of its last row.
pub fn next<T, K: Serialize>(
    app: &AppState,
    list: &str,
    page: &Page<T>,
    key: impl Fn(&T) -> K,
) -> Option<String> {
    if !page.has_more {
        return None;
    }
    page.items.last().map(|t| app.cursors.encode(list, &key(t)))
}
