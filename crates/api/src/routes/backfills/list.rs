//! Reading backfills: the keyset-paginated list, one backfill, its items.

#[allow(unused_imports)]
use super::*;
use crate::paging;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListBackfillsParams {
    /// States, as a comma list: `state=RUNNING,PAUSED`.
    #[param(style = Form, explode = false, value_type = Option<Vec<BackfillRunState>>)]
    pub state: Option<String>,
    pub target_workflow_id: Option<i64>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    /// Opaque cursor from `meta.pagination.next_cursor`.
    pub cursor: Option<String>,
}

pub(super) const LIST_BACKFILLS: &str = "backfills";

/// List backfills, newest first.
///
/// Filter by state (a comma list) or target workflow; keyset-paginated with
/// `meta.pagination.next_cursor`, so a page at any depth costs the same.
#[utoipa::path(get, path = "/public-api/backfills", tag = "Backfills",
    operation_id = "listBackfills",
    params(ListBackfillsParams),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicBackfill>>)))]
pub async fn list(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListBackfillsParams>,
) -> Result<Reply<Vec<PublicBackfill>>, ApiError> {
    let limit = page_size(q.page_size)?;
    let filter = BackfillFilter {
        states: comma_list(q.state.as_deref(), "state", BackfillRunState::parse)?,
        target_workflow_id: q.target_workflow_id,
    };
    let before: Option<String> = paging::after(&app, LIST_BACKFILLS, q.cursor.as_deref())?;
    let page = app
        .store
        .list_backfills(p.tenant_id(), &filter, before.as_deref(), limit)
        .await?;
    let next = paging::next(&app, LIST_BACKFILLS, &page, |b| b.id.clone());
    let now = app.clock.now();
    Ok(Reply::new(
        page.items
            .into_iter()
            .map(|b| PublicBackfill::at(b, now))
            .collect(),
    )
    .page(page.has_more, next))
}

/// Get a backfill.
///
/// Its state, per-entity counters (exact: they move with the items in the same transaction) and,
/// while RUNNING outside every window, `next_window_start`.
#[utoipa::path(get, path = "/public-api/backfills/{backfill_id}", tag = "Backfills",
    operation_id = "getBackfill",
    params(("backfill_id" = String, Path)),
    responses((status = 200, description = "Success.", body = DataEnvelope<PublicBackfill>),
              (status = 404, description = "Not found.", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Reply<PublicBackfill>, ApiError> {
    let b = app
        .store
        .backfill(p.tenant_id(), &id)
        .await?
        .ok_or_else(ApiError::backfill_not_found)?;
    Ok(Reply::new(PublicBackfill::at(b, app.clock.now())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListItemsParams {
    /// Item statuses, as a comma list: `status=failed,skipped`.
    #[param(style = Form, explode = false, value_type = Option<Vec<neo_domain::backfill::ItemStatus>>)]
    pub status: Option<String>,
    /// Only this entity (its PSA id), e.g. `entity_id=590`: whether and how the backfill ran it.
    #[param(max_length = 64, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub entity_id: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    /// Opaque cursor from `meta.pagination.next_cursor`.
    pub cursor: Option<String>,
}

/// The snapshot's entities with their status, in snapshot order.
///
/// Each entity once, with its status (pending, in flight, succeeded, failed, skipped, cancelled),
/// attempts, last error and execution id. Filter by status (a comma list) or entity id;
/// keyset-paginated.
#[utoipa::path(get, path = "/public-api/backfills/{backfill_id}/items", tag = "Backfills",
    operation_id = "listBackfillItems",
    params(("backfill_id" = String, Path), ListItemsParams),
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<PublicBackfillItem>>)))]
pub async fn items(
    State(app): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListItemsParams>,
) -> Result<Reply<Vec<PublicBackfillItem>>, ApiError> {
    let limit = page_size(q.page_size)?;
    let filter = neo_store::ItemFilter {
        statuses: comma_list(q.status.as_deref(), "status", ItemStatus::parse)?,
        entity_id: match q.entity_id.filter(|e| !e.is_empty()) {
            Some(e) if !filter::is_entity_id(&e) => {
                return Err(ApiError::bad_request(
                    "entity_id is an entity id: at most 64 characters, no control character",
                )
                .with_field("entity_id"))
            }
            e => e,
        },
    };
    let list = format!("items:{id}");
    let after: Option<i64> = paging::after(&app, &list, q.cursor.as_deref())?;
    if app.store.backfill(p.tenant_id(), &id).await?.is_none() {
        return Err(ApiError::backfill_not_found());
    }
    let page = app
        .store
        .list_items(p.tenant_id(), &id, &filter, after, limit)
        .await?;
    let next = paging::next(&app, &list, &page, |i| i.ord);
    let items = with_diffs(&app, p.tenant_id(), &id, page.items).await?;
    Ok(Reply::new(items).page(page.has_more, next))
}
