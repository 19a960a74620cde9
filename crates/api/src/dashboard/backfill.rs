//! One backfill: live progress, the actions its state allows, items, the rerun chain, the
//! throughput chart; actions go through the API's own signal and rerun code.

#[allow(unused_imports)]
use super::*;

pub(super) struct ActionButton {
    pub(super) action: &'static str,
    pub(super) label: &'static str,
    pub(super) confirm: &'static str,
    pub(super) class: &'static str,
}

pub(super) fn actions(b: &Backfill) -> Vec<ActionButton> {
    let mut out = Vec::new();
    let mut add = |action, label, confirm, class| {
        out.push(ActionButton {
            action,
            label,
            confirm,
            class,
        })
    };
    // The state machine and the rerun rule decide; this only labels them.
    for signal in signals_that_apply(b.state) {
        match signal {
            Signal::Start => add("start", "Start", "Start this backfill now?", "primary"),
            Signal::Pause => add(
                "pause",
                "Pause",
                "Pause this backfill? In-flight executions finish; nothing new is dispatched.",
                "",
            ),
            Signal::Resume => add("resume", "Resume", "Resume this backfill?", "primary"),
            Signal::Cancel => add(
                "cancel",
                "Cancel",
                "Cancel this backfill? Pending entities will not run. This cannot be undone.",
                "danger",
            ),
        }
    }
    if check_rerunnable(b.state, b.failed_count).is_ok() {
        add(
            "rerun-failed",
            "Rerun failed",
            "Create a new backfill over the failed entities?",
            "primary",
        );
    }
    out
}

#[derive(Template)]
#[template(path = "backfill_live.html")]
pub(super) struct LiveTpl {
    pub(super) v: BackfillView,
    pub(super) poll: Option<&'static str>,
    pub(super) chart: view::Chart,
    pub(super) chart_w: f64,
    pub(super) chart_h: f64,
}

pub(super) struct ChainEntry {
    pub(super) id: String,
    pub(super) state: &'static str,
    pub(super) state_class: &'static str,
    pub(super) relation: &'static str,
    pub(super) current: bool,
    pub(super) failed: i64,
    pub(super) total: i64,
}

#[derive(Template)]
#[template(path = "backfill.html")]
pub(super) struct BackfillTpl {
    pub(super) layout: Layout,
    pub(super) id: String,
    pub(super) flash: Option<String>,
    pub(super) live_html: String,
    pub(super) actions_html: String,
    pub(super) items_html: String,
    pub(super) chain: Vec<ChainEntry>,
    pub(super) v: BackfillView,
}

pub(super) async fn load_backfill(
    app: &AppState,
    u: &DashUser,
    id: &str,
) -> Result<Backfill, Response> {
    app.store
        .backfill(u.principal.tenant_id(), id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| api_error(&ApiError::backfill_not_found()))
}

/// The finish instants of the backfill's settled executions (newest 2,000).
pub(super) async fn finished_executions(
    app: &AppState,
    tenant: &str,
    id: &str,
) -> Result<Vec<(Timestamp, bool)>, Response> {
    let filter = ExecutionFilter {
        backfill_id: Some(id.to_owned()),
        statuses: vec![ExecutionStatus::Succeeded, ExecutionStatus::Failed],
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..10 {
        let page = app
            .store
            .list_executions(tenant, &filter, before.as_deref(), 200)
            .await
            .map_err(store_error)?;
        before = page.items.last().map(|e| e.id.clone());
        out.extend(page.items.into_iter().map(|e| {
            (
                e.finished_at.unwrap_or(e.updated_at),
                e.status == ExecutionStatus::Succeeded,
            )
        }));
        if !page.has_more {
            break;
        }
    }
    Ok(out)
}

pub(super) async fn live(app: &AppState, u: &DashUser, b: Backfill) -> Result<LiveTpl, Response> {
    let now = app.clock.now();
    let finished = finished_executions(app, u.principal.tenant_id(), &b.id).await?;
    let end = match b.completed_at {
        Some(c) if b.state.is_terminal() => c,
        _ => now,
    };
    Ok(LiveTpl {
        poll: b.state.is_active().then_some(POLL),
        chart: view::throughput(&finished, end),
        chart_w: view::CHART_W,
        chart_h: view::CHART_H,
        v: BackfillView::new(b, now),
    })
}

/// The buttons that apply to the backfill's state. Not polled: refreshed after an action and
/// when the live part sees the state change (`state-changed`, fired by dashboard.js).
#[derive(Template)]
#[template(path = "backfill_actions.html")]
pub(super) struct ActionsTpl {
    pub(super) id: String,
    pub(super) state: &'static str,
    pub(super) failed: i64,
    pub(super) csrf: String,
    pub(super) actions: Vec<ActionButton>,
}

pub(super) fn actions_tpl(u: &DashUser, b: &Backfill) -> ActionsTpl {
    ActionsTpl {
        id: b.id.clone(),
        state: b.state.as_str(),
        failed: b.failed_count,
        csrf: u.csrf.clone(),
        actions: actions(b),
    }
}

pub(super) async fn backfill_actions(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
) -> Response {
    match load_backfill(&app, &u, &id).await {
        Ok(b) => page(StatusCode::OK, &actions_tpl(&u, &b)),
        Err(r) => r,
    }
}

/// The rerun chain: ancestors (parents up to the root), this backfill, and its reruns.
pub(super) async fn chain(
    app: &AppState,
    u: &DashUser,
    b: &Backfill,
) -> Result<Vec<ChainEntry>, Response> {
    let tenant = u.principal.tenant_id();
    let entry = |x: &Backfill, relation, current| ChainEntry {
        id: x.id.clone(),
        state: x.state.as_str(),
        state_class: state_class(x.state),
        relation,
        current,
        failed: x.failed_count,
        total: view::total(x),
    };
    let mut up = Vec::new();
    let mut parent = b.parent_backfill_run_id.clone();
    while let Some(pid) = parent.take() {
        if up.len() >= 20 {
            break;
        }
        if let Some(p) = app
            .store
            .backfill(tenant, &pid)
            .await
            .map_err(store_error)?
        {
            parent = p.parent_backfill_run_id.clone();
            up.push(p);
        }
    }
    let mut out: Vec<ChainEntry> = up
        .iter()
        .rev()
        .enumerate()
        .map(|(i, p)| {
            entry(
                p,
                if i + 1 == up.len() {
                    "parent"
                } else {
                    "ancestor"
                },
                false,
            )
        })
        .collect();
    out.push(entry(b, "this backfill", true));
    // Reruns share the target workflow: walk its backfills for children, grandchildren…
    let siblings = app
        .store
        .list_backfills(
            tenant,
            &BackfillFilter {
                states: vec![],
                target_workflow_id: Some(b.target_workflow_id),
            },
            None,
            200,
        )
        .await
        .map_err(store_error)?
        .items;
    let mut frontier = vec![b.id.clone()];
    let mut depth = 0;
    while !frontier.is_empty() && depth < 20 {
        let mut next = Vec::new();
        // Oldest first.
        for c in siblings.iter().rev() {
            if c.parent_backfill_run_id
                .as_ref()
                .is_some_and(|p| frontier.contains(p))
            {
                out.push(entry(
                    c,
                    if depth == 0 {
                        "rerun"
                    } else {
                        "rerun of a rerun"
                    },
                    false,
                ));
                next.push(c.id.clone());
            }
        }
        frontier = next;
        depth += 1;
    }
    Ok(out)
}

#[derive(Deserialize)]
pub(super) struct BackfillQuery {
    pub(super) flash: Option<String>,
}

pub(super) async fn backfill_page(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
    Query(q): Query<BackfillQuery>,
) -> Response {
    let b = match load_backfill(&app, &u, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let flash = match q.flash.as_deref() {
        Some("created") => {
            let cost = BackfillCostEstimate::new(b.credits_per_entity, view::total(&b));
            Some(format!(
                "Backfill created over {} entities; cost estimate {} credits ({} per entity).",
                cost.total_entities, cost.total_credits_estimated, cost.credits_per_entity
            ))
        }
        Some("rerun") => Some(format!(
            "Rerun created over the {} failed entities of {}.",
            b.total_items,
            b.parent_backfill_run_id.as_deref().unwrap_or("its parent")
        )),
        _ => None,
    };
    let chain = match chain(&app, &u, &b).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let items = match items(&app, &u, &id, &ItemsQuery::default()).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let live = match live(&app, &u, b.clone()).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let now = app.clock.now();
    page(
        StatusCode::OK,
        &BackfillTpl {
            layout: Layout::new(&u, format!("Backfill {id}"), "backfills"),
            id,
            flash,
            live_html: render(&live),
            actions_html: render(&actions_tpl(&u, &b)),
            items_html: render(&items),
            chain,
            v: BackfillView::new(b, now),
        },
    )
}

pub(super) async fn backfill_live(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
) -> Response {
    let b = match load_backfill(&app, &u, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match live(&app, &u, b).await {
        Ok(l) => page(StatusCode::OK, &l),
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
pub(super) struct ItemsQuery {
    pub(super) status: Option<String>,
    pub(super) cursor: Option<String>,
}

pub(super) struct ItemRow {
    pub(super) entity_id: String,
    pub(super) entity_number: String,
    pub(super) status: &'static str,
    pub(super) execution_id: Option<String>,
    pub(super) attempts: i64,
    pub(super) error: String,
    pub(super) updated: String,
    pub(super) next_attempt: Option<String>,
}

#[derive(Template)]
#[template(path = "items.html")]
pub(super) struct ItemsTpl {
    pub(super) id: String,
    pub(super) self_url: String,
    pub(super) rows: Vec<ItemRow>,
    pub(super) statuses: Vec<(&'static str, bool)>,
    pub(super) status: String,
    pub(super) next_url: Option<String>,
    pub(super) first_url: Option<String>,
}

pub(super) async fn items(
    app: &AppState,
    u: &DashUser,
    id: &str,
    q: &ItemsQuery,
) -> Result<ItemsTpl, Response> {
    let status = q.status.clone().unwrap_or_default();
    let statuses = crate::routes::comma_list(Some(&status), "status", ItemStatus::parse)
        .map_err(|e| api_error(&e))?;
    let list = format!("items:{id}");
    let after: Option<i64> =
        crate::paging::after(app, &list, q.cursor.as_deref().filter(|c| !c.is_empty()))
            .map_err(|e| api_error(&e))?;
    let page = app
        .store
        .list_items(
            u.principal.tenant_id(),
            id,
            &neo_store::ItemFilter {
                statuses,
                ..Default::default()
            },
            after,
            PAGE_SIZE,
        )
        .await
        .map_err(store_error)?;
    let now = app.clock.now();
    let next_url = crate::paging::next(app, &list, &page, |i| i.ord).map(|c| {
        format!(
            "/backfills/{id}/items?status={}&cursor={}",
            url_encode(&status),
            url_encode(&c)
        )
    });
    Ok(ItemsTpl {
        id: id.to_owned(),
        self_url: format!(
            "/backfills/{id}/items?status={}&cursor={}",
            url_encode(&status),
            url_encode(q.cursor.as_deref().unwrap_or(""))
        ),
        rows: page
            .items
            .into_iter()
            .map(|i| ItemRow {
                entity_id: i.entity_id,
                entity_number: i.entity_number.unwrap_or_default(),
                status: i.status.as_str(),
                execution_id: i.execution_id,
                attempts: i.attempts,
                error: i.error.unwrap_or_default(),
                updated: view::relative(i.updated_at, now),
                next_attempt: i.next_attempt_at.map(view::short_time),
            })
            .collect(),
        statuses: ItemStatus::ALL
            .iter()
            .map(|s| (s.as_str(), s.as_str() == status))
            .collect(),
        first_url: q
            .cursor
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|_| format!("/backfills/{id}/items?status={}", url_encode(&status))),
        status,
        next_url,
    })
}

pub(super) async fn backfill_items(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> Response {
    if let Err(r) = load_backfill(&app, &u, &id).await {
        return r;
    }
    match items(&app, &u, &id, &q).await {
        Ok(i) => page(StatusCode::OK, &i),
        Err(r) => r,
    }
}

/// Pause, resume, cancel, start and rerun-failed: the API's own functions.
pub(super) async fn action(
    State(app): State<AppState>,
    u: DashUser,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = u.check_csrf(form.get("csrf")) {
        return r;
    }
    let sig = match action.as_str() {
        "start" => Signal::Start,
        "pause" => Signal::Pause,
        "resume" => Signal::Resume,
        "cancel" => Signal::Cancel,
        "rerun-failed" => {
            return match api::rerun_failed_backfill(&app, &u.principal, &id, None).await {
                Ok(ok) => {
                    let (created, _) = ok.into_parts();
                    redirect(
                        &headers,
                        &format!("/backfills/{}?flash=rerun", created.backfill.id),
                    )
                }
                Err(e) => api_error(&e),
            };
        }
        _ => return error_response(StatusCode::NOT_FOUND, "No such action."),
    };
    let result = api::signal(&app, &u.principal, &id, sig).await;
    let mut r = match result {
        Ok(ok) => {
            let (s, _) = ok.into_parts();
            let text = format!("{}: {}.", capitalize(&s.signal), s.message);
            if is_htmx(&headers) {
                message(StatusCode::OK, "ok", &text)
            } else {
                redirect(&headers, &format!("/backfills/{id}"))
            }
        }
        Err(e) => api_error(&e),
    };
    // The live part of the page refreshes at once.
    r.headers_mut()
        .insert("hx-trigger", HeaderValue::from_static("refresh-live"));
    r
}

pub(super) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}
