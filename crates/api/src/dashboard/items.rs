//! A backfill's items table: filtered by status or entity id, pages of 25, 50 or 100 with
//! first / previous / next, every choice in the URL (a shared link opens the same view). The
//! backfill page's address carries the same query, so a reload keeps the filter and page.
//!
//! Keyset pages have no "previous" of their own: the URL keeps the cursors of the pages
//! before this one (`back`), newest last, so previous is one step back along the trail.

#[allow(unused_imports)]
use super::*;

use super::times;

/// Page sizes offered; the first is the default.
pub(super) const ITEM_PAGE_SIZES: [usize; 3] = [25, 50, 100];
/// Longest trail of earlier pages kept in the URL (further back: First page).
const MAX_TRAIL: usize = 20;

#[derive(Deserialize, Default, Clone)]
pub(super) struct ItemsQuery {
    pub(super) status: Option<String>,
    pub(super) entity_id: Option<String>,
    pub(super) page_size: Option<usize>,
    pub(super) cursor: Option<String>,
    /// Cursors of the earlier pages, comma-separated (a cursor holds no comma).
    pub(super) back: Option<String>,
    // The backfill page's own parameter, accepted on the same address.
    pub(super) flash: Option<String>,
}

impl ItemsQuery {
    fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("")
    }
    fn entity(&self) -> &str {
        self.entity_id.as_deref().map(str::trim).unwrap_or("")
    }
    fn size(&self) -> usize {
        self.page_size
            .filter(|n| ITEM_PAGE_SIZES.contains(n))
            .unwrap_or(ITEM_PAGE_SIZES[0])
    }
    fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.is_empty())
    }
    fn trail(&self) -> Vec<&str> {
        self.back
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|c| !c.is_empty())
            .collect()
    }
    /// The query string of this view at `cursor` with `back` as its trail.
    fn query(&self, cursor: Option<&str>, back: &[&str]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !self.status().is_empty() {
            q.append_pair("status", self.status());
        }
        if !self.entity().is_empty() {
            q.append_pair("entity_id", self.entity());
        }
        if self.size() != ITEM_PAGE_SIZES[0] {
            q.append_pair("page_size", &self.size().to_string());
        }
        if let Some(c) = cursor {
            q.append_pair("cursor", c);
        }
        if !back.is_empty() {
            q.append_pair("back", &back.join(","));
        }
        q.finish()
    }
}

pub(super) struct ItemRow {
    pub(super) entity_id: String,
    pub(super) entity_number: String,
    /// The ticket's summary from the snapshot, if the PSA gave one.
    pub(super) summary: String,
    /// The record in the PSA's web interface ([`neo_psa::links::record_url`]).
    pub(super) psa_link: Option<String>,
    pub(super) status: &'static str,
    pub(super) execution_id: Option<String>,
    pub(super) attempts: i64,
    pub(super) error: String,
    pub(super) updated: String,
    pub(super) next_attempt: Option<times::When>,
    /// A `psa_actions` item's fields and notes ([`super::changes::diff_lines`]).
    pub(super) diff: Vec<super::changes::DiffLine>,
}

#[derive(Template)]
#[template(path = "items.html")]
pub(super) struct ItemsTpl {
    pub(super) id: String,
    pub(super) self_url: String,
    pub(super) rows: Vec<ItemRow>,
    pub(super) statuses: Vec<(&'static str, bool)>,
    pub(super) status: String,
    pub(super) entity_id: String,
    pub(super) sizes: Vec<(usize, bool)>,
    /// Query strings (`?…`, or empty for the plain first page) of the other pages.
    pub(super) next_url: Option<String>,
    pub(super) prev_url: Option<String>,
    pub(super) first_url: Option<String>,
    /// The backfill page's address for this view (pushed to the history on a change).
    pub(super) page_url: String,
    /// The backfill changes PSA records: the table has a Changes column.
    pub(super) show_diff: bool,
}

/// Item paging is its own list for cursors (a cursor of one backfill's items does not open
/// another's).
fn list_name(id: &str) -> String {
    format!("items:{id}")
}

pub(super) async fn items(
    app: &AppState,
    u: &DashUser,
    b: &Backfill,
    q: &ItemsQuery,
) -> Result<ItemsTpl, Response> {
    let id = b.id.as_str();
    let status = q.status().to_owned();
    let statuses = crate::routes::comma_list(Some(&status), "status", ItemStatus::parse)
        .map_err(|e| api_error(&e))?;
    let entity = q.entity().to_owned();
    if !entity.is_empty() && !neo_domain::filter::is_entity_id(&entity) {
        return Err(api_error(
            &ApiError::bad_request(format!("{entity:?} is not an entity id"))
                .with_field("entity_id"),
        ));
    }
    let list = list_name(id);
    let after: Option<i64> =
        crate::paging::after(app, &list, q.cursor()).map_err(|e| api_error(&e))?;
    let page = app
        .store
        .list_items(
            u.principal.tenant_id(),
            id,
            &neo_store::ItemFilter {
                statuses,
                entity_id: (!entity.is_empty()).then(|| entity.clone()),
            },
            after,
            q.size(),
        )
        .await
        .map_err(store_error)?;
    let now = app.clock.now();
    // Links are derived from the integration's settings, read only when a row can have one
    // (the table refreshes all through a run).
    let integration = if page.items.is_empty() || !neo_psa::links::links_to(b.entity_type) {
        None
    } else {
        app.store
            .integration(u.principal.tenant_id())
            .await
            .map_err(store_error)?
    };
    let link = |id: &str| {
        integration
            .as_ref()
            .and_then(|i| neo_psa::links::record_url(&i.psa, &i.config, b.entity_type, id))
    };
    // Links carry the query alone; the template makes the page's and the fragment's URLs.
    let url = |query: String| {
        if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        }
    };
    let trail = q.trail();
    let next_url = crate::paging::next(app, &list, &page, |i| i.ord).map(|c| {
        let mut back = trail.clone();
        back.push(q.cursor().unwrap_or("-"));
        let keep = back.len().saturating_sub(MAX_TRAIL);
        url(q.query(Some(&c), &back[keep..]))
    });
    let prev_url = q.cursor().map(|_| match trail.split_last() {
        // "-" stands for the first page in the trail.
        Some((last, rest)) => url(q.query(Some(*last).filter(|c| *c != "-"), rest)),
        None => url(q.query(None, &[])),
    });
    let here = q.query(q.cursor(), &trail);
    let tenant = u.principal.tenant_id();
    let show_diff = super::changes::is_psa(app, tenant, b).await?;
    let mut diffs = if show_diff {
        super::changes::item_diffs(app, tenant, b, &page.items).await?
    } else {
        Vec::new()
    }
    .into_iter();
    Ok(ItemsTpl {
        show_diff,
        id: id.to_owned(),
        self_url: format!("/backfills/{id}/items{}", url(here.clone())),
        page_url: format!("/backfills/{id}{}", url(here)),
        rows: page
            .items
            .into_iter()
            .map(|i| ItemRow {
                psa_link: link(&i.entity_id),
                entity_id: i.entity_id,
                entity_number: i.entity_number.unwrap_or_default(),
                summary: i.summary.unwrap_or_default(),
                status: i.status.as_str(),
                execution_id: i.execution_id,
                attempts: i.attempts,
                error: i.error.unwrap_or_default(),
                updated: times::relative(i.updated_at, now, &b.timezone),
                next_attempt: i.next_attempt_at.map(|t| times::when(t, &b.timezone)),
                diff: diffs.next().unwrap_or_default(),
            })
            .collect(),
        statuses: ItemStatus::ALL
            .iter()
            .map(|s| (s.as_str(), s.as_str() == status))
            .collect(),
        sizes: ITEM_PAGE_SIZES
            .iter()
            .map(|n| (*n, *n == q.size()))
            .collect(),
        first_url: q.cursor().map(|_| url(q.query(None, &[]))),
        status,
        entity_id: entity,
        next_url,
        prev_url,
    })
}

pub(super) async fn backfill_items(
    State(app): State<AppState>,
    u: DashUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> Response {
    let b = match load_backfill(&app, &u, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match items(&app, &u, &b, &q).await {
        Ok(i) => {
            let mut r = page(StatusCode::OK, &i);
            // The view becomes the page's address (a reload or a shared link opens it).
            if is_htmx(&headers) {
                if let Ok(v) = HeaderValue::from_str(&i.page_url) {
                    r.headers_mut().insert("hx-replace-url", v);
                }
            }
            r
        }
        Err(r) => r,
    }
}
