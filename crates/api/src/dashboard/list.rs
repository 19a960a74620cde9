//! The backfills list: filters, keyset pages, rows refreshed in place.

#[allow(unused_imports)]
use super::*;

use super::times;

/// A backfill as the list and the detail page show it.
pub(super) struct BackfillView {
    pub(super) id: String,
    /// `bf_01a2…29a9`: the full id is on hover and behind the copy button.
    pub(super) short_id: String,
    /// Its own name, else its workflow's ([`view::display_name`]).
    pub(super) title: String,
    pub(super) named: bool,
    pub(super) workflow: String,
    pub(super) workflow_id: i64,
    pub(super) state: &'static str,
    /// What the badge says: the state, or "waiting for window" while a RUNNING backfill's
    /// windows are shut.
    pub(super) state_label: &'static str,
    pub(super) state_class: &'static str,
    pub(super) progress: view::Progress,
    pub(super) done: i64,
    pub(super) total: i64,
    pub(super) created_by: String,
    /// `<time>` elements (HTML).
    pub(super) created_at: String,
    pub(super) started: String,
    pub(super) completed: String,
    /// The ETA in a few words ([`super::control::EtaView::short`]).
    pub(super) eta: String,
    /// "waiting for window — opens Thu 22:00 Europe/London (in 27 h)".
    pub(super) waiting: Option<String>,
    pub(super) next_window: Option<String>,
    pub(super) error: Option<String>,
    pub(super) parent: Option<String>,
    /// "Rerun of", "Apply of" or "Revert of" ([`super::changes::parent_label`]).
    pub(super) parent_label: &'static str,
    pub(super) max_in_flight: i64,
    pub(super) timezone: String,
    pub(super) windows_text: String,
    pub(super) windows_summary: String,
    pub(super) credits_per_entity: i64,
    pub(super) filter_json: String,
    pub(super) entity_type: String,
    pub(super) reprocess: bool,
    pub(super) editable: bool,
    /// Pause reason, trial, credits and ETA ([`super::control`]).
    pub(super) control: super::control::ControlView,
    pub(super) b: Backfill,
}

impl BackfillView {
    pub(super) fn new(b: Backfill, now: Timestamp) -> Self {
        let schedule = b.schedule().ok();
        let opens = match (&schedule, b.state) {
            (Some(s), BackfillRunState::Running | BackfillRunState::Paused) if !s.inside(now) => {
                s.next_window_start(now)
            }
            _ => None,
        };
        let next_window = opens.map(|t| {
            format!(
                "opens {} (in {})",
                times::opening(t, &b.timezone),
                view::human_duration(t.duration_since(now))
            )
        });
        let waiting = opens
            .filter(|_| b.state == BackfillRunState::Running)
            .map(|t| times::waiting_text(t, &b.timezone, now));
        let summary = view::windows_summary(&b.daily_execution_windows, &b.timezone, now)
            .unwrap_or_else(|e| e);
        let progress = view::progress(&b);
        let control = super::control::ControlView::new(&b, now, waiting.is_some());
        let tz = b.timezone.as_str();
        Self {
            title: view::display_name(&b),
            named: b.name.is_some(),
            workflow: view::workflow_name(&b),
            workflow_id: b.target_workflow_id,
            state: b.state.as_str(),
            state_label: if waiting.is_some() {
                "waiting for window"
            } else {
                b.state.as_str()
            },
            state_class: if waiting.is_some() {
                "waiting"
            } else {
                state_class(b.state)
            },
            done: b.succeeded_count + b.failed_count + b.skipped_count,
            total: progress.total,
            progress,
            created_by: b.created_by.clone(),
            created_at: times::when(b.created_at, tz).to_string(),
            started: b
                .started_at
                .map(|t| times::relative(t, now, tz))
                .unwrap_or_else(|| "not yet".into()),
            completed: b
                .completed_at
                .map(|t| times::when(t, tz).to_string())
                .unwrap_or_else(|| "—".into()),
            eta: control.eta.short.clone(),
            control,
            waiting,
            next_window,
            error: b.error.clone(),
            parent: b.parent_backfill_run_id.clone(),
            // An apply is told from a rerun by its parent's mode ([`Self::relation`]).
            parent_label: super::changes::parent_label(super::changes::child_relation(
                b.mode, None,
            )),
            max_in_flight: b.max_in_flight,
            timezone: b.timezone.clone(),
            windows_text: view::windows_text(&b.daily_execution_windows),
            windows_summary: summary,
            credits_per_entity: b.credits_per_entity,
            filter_json: serde_json::to_string_pretty(&b.filter_spec).unwrap_or_default(),
            entity_type: b.entity_type.to_string(),
            reprocess: b.reprocess,
            editable: neo_domain::backfill::check_editable(b.state).is_ok(),
            short_id: view::short_id(&b.id),
            id: b.id.clone(),
            b,
        }
    }
}

impl BackfillView {
    /// Names the link to the parent by how this backfill relates to it.
    pub(super) fn relation(&mut self, relation: &str) {
        self.parent_label = super::changes::parent_label(relation);
    }

    /// `shadow` or `revert` for those runs (a tag beside the title); empty for a live one.
    pub(super) fn mode_tag(&self) -> &'static str {
        match self.b.mode {
            neo_domain::backfill::BackfillMode::Live => "",
            m => m.as_str(),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    pub(super) state: Option<String>,
    pub(super) cursor: Option<String>,
}

pub(super) const STATE_FILTERS: [(&str, &str); 8] = [
    ("", "All"),
    ("DRAFT,RUNNING,PAUSED", "Active"),
    ("RUNNING", "Running"),
    ("PAUSED", "Paused"),
    ("COMPLETED", "Completed"),
    ("CANCELLED", "Cancelled"),
    ("FAILED", "Failed"),
    ("DRAFT", "Draft"),
];

#[derive(Template)]
#[template(path = "backfill_rows.html")]
pub(super) struct RowsTpl {
    pub(super) rows: Vec<BackfillView>,
    pub(super) poll_url: String,
    pub(super) poll: &'static str,
    pub(super) next_url: Option<String>,
    pub(super) first_url: Option<String>,
}

#[derive(Template)]
#[template(path = "backfills.html")]
pub(super) struct BackfillsTpl {
    pub(super) layout: Layout,
    pub(super) filters: Vec<(&'static str, &'static str, bool)>,
    pub(super) rows_html: String,
    pub(super) credits: String,
}

pub(super) fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) async fn rows(app: &AppState, u: &DashUser, q: &ListQuery) -> Result<RowsTpl, Response> {
    let state = q.state.clone().unwrap_or_default();
    let filter = BackfillFilter {
        states: crate::routes::comma_list(Some(&state), "state", BackfillRunState::parse)
            .map_err(|e| api_error(&e))?,
        target_workflow_id: None,
    };
    let before: Option<String> = crate::paging::after(
        app,
        "backfills",
        q.cursor.as_deref().filter(|c| !c.is_empty()),
    )
    .map_err(|e| api_error(&e))?;
    let page = app
        .store
        .list_backfills(
            u.principal.tenant_id(),
            &filter,
            before.as_deref(),
            PAGE_SIZE,
        )
        .await
        .map_err(store_error)?;
    let now = app.clock.now();
    let next_url = crate::paging::next(app, "backfills", &page, |b| b.id.clone()).map(|c| {
        format!(
            "/backfills?state={}&cursor={}",
            url_encode(&state),
            url_encode(&c)
        )
    });
    let cursor = q.cursor.clone().unwrap_or_default();
    let names = super::backfill::actor_names(app, u.principal.tenant_id()).await;
    // The modes of the parents of live children (an apply's parent is a shadow run), from
    // this page where it holds them.
    let mut modes: std::collections::HashMap<String, neo_domain::backfill::BackfillMode> =
        page.items.iter().map(|b| (b.id.clone(), b.mode)).collect();
    for b in &page.items {
        if let (Some(p), neo_domain::backfill::BackfillMode::Live) =
            (&b.parent_backfill_run_id, b.mode)
        {
            if !modes.contains_key(p) {
                if let Some(parent) = app
                    .store
                    .backfill(u.principal.tenant_id(), p)
                    .await
                    .map_err(store_error)?
                {
                    modes.insert(parent.id, parent.mode);
                }
            }
        }
    }
    Ok(RowsTpl {
        rows: page
            .items
            .into_iter()
            .map(|b| {
                let parent_mode = b
                    .parent_backfill_run_id
                    .as_ref()
                    .and_then(|p| modes.get(p).copied());
                let relation = super::changes::child_relation(b.mode, parent_mode);
                let mut v = BackfillView::new(b, now);
                v.relation(relation);
                v.created_by = super::backfill::actor_name(&names, &v.created_by);
                v
            })
            .collect(),
        poll_url: format!(
            "/backfills/rows?state={}&cursor={}",
            url_encode(&state),
            url_encode(&cursor)
        ),
        poll: POLL,
        next_url,
        first_url: (!cursor.is_empty()).then(|| format!("/backfills?state={}", url_encode(&state))),
    })
}

pub(super) async fn backfills_page(
    State(app): State<AppState>,
    u: DashUser,
    Query(q): Query<ListQuery>,
) -> Response {
    let rows = match rows(&app, &u, &q).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let state = q.state.clone().unwrap_or_default();
    let now = app.clock.now();
    let credits = match crate::routes::meta::month_bounds(now, None) {
        Ok(((_, from), to)) => {
            match app
                .store
                .credits_used(u.principal.tenant_id(), from, to)
                .await
            {
                Ok(used) => format!(
                    "{used} of {} credits used this month",
                    u.principal.tenant.monthly_credit_allowance
                ),
                Err(_) => String::new(),
            }
        }
        Err(_) => String::new(),
    };
    page(
        StatusCode::OK,
        &BackfillsTpl {
            layout: Layout::new(&u, "Backfills", "backfills"),
            filters: STATE_FILTERS
                .iter()
                .map(|(v, l)| (*v, *l, *v == state))
                .collect(),
            rows_html: render(&rows),
            credits,
        },
    )
}

pub(super) async fn backfill_rows(
    State(app): State<AppState>,
    u: DashUser,
    Query(q): Query<ListQuery>,
) -> Response {
    match rows(&app, &u, &q).await {
        Ok(r) => page(StatusCode::OK, &r),
        Err(r) => r,
    }
}
