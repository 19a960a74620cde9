//! Find an entity across backfills: every execution of it in the tenant, newest first, with
//! its backfill, outcome and error. Executions are what a backfill did to an entity; an entity
//! still pending in a backfill has none yet and is found on that backfill's page.

#[allow(unused_imports)]
use super::*;

use std::collections::HashMap;

use super::times;

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    pub(super) entity_id: Option<String>,
}

pub(super) struct Hit {
    pub(super) execution_id: String,
    pub(super) backfill_id: Option<String>,
    pub(super) backfill: String,
    pub(super) workflow: String,
    pub(super) status: &'static str,
    pub(super) attempts: i64,
    pub(super) error: String,
    pub(super) when: String,
}

#[derive(Template)]
#[template(path = "search.html")]
pub(super) struct SearchTpl {
    pub(super) layout: Layout,
    pub(super) entity_id: String,
    pub(super) hits: Vec<Hit>,
    pub(super) more: bool,
}

/// Most executions listed.
const MAX_HITS: usize = 50;

pub(super) async fn search_page(
    State(app): State<AppState>,
    u: DashUser,
    Query(q): Query<SearchQuery>,
) -> Response {
    let entity = q
        .entity_id
        .as_deref()
        .map(str::trim)
        .unwrap_or("")
        .to_owned();
    let tenant = u.principal.tenant_id();
    let mut hits = Vec::new();
    let mut more = false;
    if !entity.is_empty() {
        if !neo_domain::filter::is_entity_id(&entity) {
            return message(
                StatusCode::BAD_REQUEST,
                "error",
                &format!("{entity:?} is not an entity id."),
            );
        }
        let filter = ExecutionFilter {
            entity_id: Some(entity.clone()),
            ..Default::default()
        };
        let page = match app
            .store
            .list_executions(tenant, &filter, None, MAX_HITS)
            .await
        {
            Ok(p) => p,
            Err(e) => return store_error(e),
        };
        more = page.has_more;
        let now = app.clock.now();
        let mut names: HashMap<String, (String, String)> = HashMap::new();
        for e in page.items {
            let (backfill, tz) = match &e.backfill_id {
                Some(b) => {
                    if !names.contains_key(b) {
                        let found = match app.store.backfill(tenant, b).await {
                            Ok(x) => x,
                            Err(e) => return store_error(e),
                        };
                        let label = found.as_ref().map_or_else(
                            || view::short_id(b),
                            |x| format!("{} ({})", view::display_name(x), view::short_id(b)),
                        );
                        let tz = found.map_or_else(|| "UTC".to_owned(), |x| x.timezone);
                        names.insert(b.clone(), (label, tz));
                    }
                    names[b].clone()
                }
                None => ("outside a backfill".to_owned(), "UTC".to_owned()),
            };
            hits.push(Hit {
                execution_id: e.id,
                backfill_id: e.backfill_id,
                backfill,
                workflow: e.agent_name.unwrap_or_else(|| format!("#{}", e.agent_id)),
                status: e.status.as_str(),
                attempts: e.attempts,
                error: e.error.unwrap_or_default(),
                when: times::relative(e.updated_at, now, &tz),
            });
        }
    }
    page(
        StatusCode::OK,
        &SearchTpl {
            layout: Layout::new(&u, "Find an entity", "backfills"),
            entity_id: entity,
            hits,
            more,
        },
    )
}
