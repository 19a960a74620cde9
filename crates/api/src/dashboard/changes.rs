//! Safe bulk changes on the backfill page (issue 20). A `psa_actions` backfill changes records
//! in the tenant's own PSA, so before anyone applies or reverts one the page has to say which
//! kind of run it is (a shadow run wrote nothing; a revert undoes its parent), show what it
//! changed or would change, and offer Apply and Revert only where the domain's rules
//! ([`check_appliable`], [`check_revertable`]) allow them. Both go through the API's own
//! [`api::child_backfill`], so the dashboard cannot create a child the API would refuse.

#[allow(unused_imports)]
use super::*;

use neo_domain::backfill::{check_appliable, check_revertable, BackfillMode};
use neo_store::ChildKind;

/// Largest field-change groups the backfill page lists (the API's `/changes` gives up to 200).
pub(super) const TOTALS_SHOWN: usize = 20;
/// Longest value shown in a table cell; the whole value is on hover.
const VALUE_CHARS: usize = 80;
/// Longest note text shown with an item.
const NOTE_CHARS: usize = 160;

/// Whether the page of `b` shows the parts below: every shadow run and revert, and a live
/// run of a `psa_actions` workflow.
pub(super) async fn is_psa(app: &AppState, tenant: &str, b: &Backfill) -> Result<bool, Response> {
    if b.mode != BackfillMode::Live {
        return Ok(true);
    }
    let wf = app
        .store
        .workflow(tenant, b.target_workflow_id)
        .await
        .map_err(store_error)?;
    Ok(wf.is_some_and(|w| neo_domain::executor::ExecutorSpec::is_psa_actions(&w.executor)))
}

/// How a child backfill relates to its parent, in words ("rerun", "apply", "revert"): an
/// apply is the live child of a shadow run, a revert has its own mode, anything else is a rerun
/// of the failed entities.
pub(super) fn child_relation(child: BackfillMode, parent: Option<BackfillMode>) -> &'static str {
    match (child, parent) {
        (BackfillMode::Revert, _) => "revert",
        (BackfillMode::Live, Some(BackfillMode::Shadow)) => "apply",
        _ => "rerun",
    }
}

/// How `b` relates to its parent (see [`child_relation`]); "rerun" without a parent.
pub(super) async fn parent_relation(
    app: &AppState,
    tenant: &str,
    b: &Backfill,
) -> Result<&'static str, Response> {
    let parent = match (&b.parent_backfill_run_id, b.mode) {
        (None, _) => return Ok("rerun"),
        // Only a live child's relation depends on its parent's mode.
        (Some(p), BackfillMode::Live) => app
            .store
            .backfill(tenant, p)
            .await
            .map_err(store_error)?
            .map(|p| p.mode),
        (Some(_), _) => None,
    };
    Ok(child_relation(b.mode, parent))
}

/// "Rerun of", "Apply of", "Revert of": the label of the parent link.
pub(super) fn parent_label(relation: &str) -> &'static str {
    match relation {
        "apply" => "Apply of",
        "revert" => "Revert of",
        _ => "Rerun of",
    }
}

/// What kind of run a backfill is, as the banner on its page says it.
pub(super) struct ModeBanner {
    pub(super) mode: &'static str,
    pub(super) class: &'static str,
    pub(super) title: &'static str,
    pub(super) text: String,
}

pub(super) fn mode_banner(b: &Backfill) -> ModeBanner {
    match b.mode {
        BackfillMode::Shadow => ModeBanner {
            mode: "shadow",
            class: "warn",
            title: "Shadow run — nothing was written.",
            text: "Each entity was read and the changes it would get are listed below; the PSA \
                   was not changed. Apply runs the workflow live over the same entities, reading \
                   each one again first, so an entity edited since is planned anew."
                .into(),
        },
        BackfillMode::Live => ModeBanner {
            mode: "live",
            class: "ok",
            title: "Live run — writes to the PSA.",
            text: "Every change below was written to the PSA, with the value it replaced. Revert \
                   restores those values on the entities nobody has edited since, and skips the \
                   others."
                .into(),
        },
        BackfillMode::Revert => ModeBanner {
            mode: "revert",
            class: "warn",
            title: "Revert — restores what its parent wrote.",
            text: format!(
                "Each entity gets back the values it had before its parent wrote; an entity \
                 edited in the PSA since is skipped and left as it is (its reason starts \
                 with changed_since). {}",
                if b.remove_notes {
                    "The notes its parent added are removed."
                } else {
                    "The notes its parent added stay in the PSA."
                }
            ),
        },
    }
}

/// A PSA value for a table cell: text as it is, null as "none", anything else as JSON, cut
/// to [`VALUE_CHARS`] (`full` is the whole value, for the hover text).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Shown {
    pub(super) text: String,
    pub(super) full: String,
}

pub(super) fn shown(v: &Value) -> Shown {
    let full = match v {
        Value::Null => "none".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Shown {
        text: cut(&full, VALUE_CHARS),
        full,
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// One line of an item's diff.
pub(super) struct DiffLine {
    /// `field`, `note` or `note-removed`.
    pub(super) kind: &'static str,
    pub(super) field: String,
    pub(super) before: Shown,
    pub(super) after: Shown,
    pub(super) text: String,
}

/// An item's diff as the items table lists it: its fields, then its notes. `mode` words the
/// notes (a shadow run's would be added).
pub(super) fn diff_lines(
    d: &crate::routes::backfills::ItemDiff,
    mode: BackfillMode,
) -> Vec<DiffLine> {
    let line = |kind, text: String| DiffLine {
        kind,
        field: String::new(),
        before: shown(&Value::Null),
        after: shown(&Value::Null),
        text,
    };
    let mut out: Vec<DiffLine> = d
        .changes
        .iter()
        .map(|c| DiffLine {
            kind: "field",
            field: c.field.clone(),
            before: shown(&c.previous_value),
            after: shown(&c.new_value),
            text: String::new(),
        })
        .collect();
    for n in &d.notes {
        let what = match (mode, n.internal) {
            (BackfillMode::Shadow, true) => "would add an internal note",
            (BackfillMode::Shadow, false) => "would add a note",
            (_, true) => "internal note",
            (_, false) => "note",
        };
        let id = n
            .note_id
            .as_deref()
            .map(|i| format!(" (id {i})"))
            .unwrap_or_default();
        out.push(line(
            "note",
            format!("{what}{id}: {}", cut(&n.text, NOTE_CHARS)),
        ));
    }
    for id in &d.notes_removed {
        out.push(line("note-removed", format!("note {id} removed")));
    }
    out
}

/// One field-change group of the totals.
pub(super) struct TotalRow {
    pub(super) field: String,
    pub(super) before: Shown,
    pub(super) after: Shown,
    pub(super) entities: i64,
}

/// The changes card: the field changes totalled. Refreshed with the items.
#[derive(Template)]
#[template(path = "backfill_changes.html")]
pub(super) struct ChangesTpl {
    pub(super) id: String,
    pub(super) heading: &'static str,
    pub(super) totals: Vec<TotalRow>,
    /// More groups than [`TOTALS_SHOWN`] exist.
    pub(super) more: bool,
    pub(super) shown_max: usize,
}

/// The changes card of `b`, a `psa_actions` backfill.
pub(super) async fn changes_card(
    app: &AppState,
    tenant: &str,
    b: &Backfill,
) -> Result<ChangesTpl, Response> {
    let mut totals = app
        .store
        .psa_change_totals(tenant, &b.id, TOTALS_SHOWN + 1)
        .await
        .map_err(store_error)?;
    let more = totals.len() > TOTALS_SHOWN;
    totals.truncate(TOTALS_SHOWN);
    Ok(ChangesTpl {
        id: b.id.clone(),
        heading: match b.mode {
            BackfillMode::Shadow => "Changes it would make",
            BackfillMode::Live => "Changes written",
            BackfillMode::Revert => "Values restored",
        },
        totals: totals
            .into_iter()
            .map(|t| TotalRow {
                before: shown(&t.previous),
                after: shown(&t.new),
                field: t.field,
                entities: t.entities,
            })
            .collect(),
        more,
        shown_max: TOTALS_SHOWN,
    })
}

/// `GET /backfills/{id}/changes`: the card, for htmx to refresh.
pub(super) async fn backfill_changes(
    State(app): State<AppState>,
    u: DashUser,
    Path(id): Path<String>,
) -> Response {
    let b = match load_backfill(&app, &u, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match changes_card(&app, u.principal.tenant_id(), &b).await {
        Ok(c) => page(StatusCode::OK, &c),
        Err(r) => r,
    }
}

/// The Apply and Revert buttons `b` gets, by the domain's rules. A revert needs a run that
/// may have written, so it is offered on `psa_actions` backfills only; `deletes_notes` says
/// whether it can offer to remove the notes too.
pub(super) fn child_buttons(b: &Backfill, psa: bool, deletes_notes: bool) -> Vec<ActionButton> {
    let mut out = Vec::new();
    if check_appliable(&b.id, b.mode, b.state).is_ok() {
        out.push(ActionButton {
            action: "apply",
            label: "Apply",
            confirm: "Apply this shadow run? A live backfill over the same entities writes the changes to the PSA.",
            class: "primary",
            option: None,
        });
    }
    if psa && check_revertable(&b.id, b.mode, b.state).is_ok() {
        out.push(ActionButton {
            action: "revert",
            label: "Revert",
            confirm: "Revert this backfill? A new backfill restores the values it wrote; entities edited since are skipped.",
            class: "danger",
            option: deletes_notes.then_some(ActionOption {
                name: "remove_notes",
                label: "also remove the notes it added",
            }),
        });
    }
    out
}

/// `POST /backfills/{id}/apply` and `/revert`: the API's own child creation, then the child's
/// page.
pub(super) async fn create_child(
    app: &AppState,
    u: &DashUser,
    headers: &HeaderMap,
    id: &str,
    action: &str,
    form: &FormData,
) -> Response {
    let kind = match action {
        "apply" => ChildKind::Apply,
        _ => ChildKind::Revert {
            remove_notes: form.get("remove_notes").is_some(),
        },
    };
    child_created(
        headers,
        api::child_backfill(app, &u.principal, id, kind, None, None).await,
        action,
    )
}

/// Where a child backfill's creation leads: its page with the `flash` of its kind (`rerun`,
/// `apply`, `revert`), or the API's refusal.
pub(super) fn child_created(
    headers: &HeaderMap,
    created: Result<crate::envelope::Reply<crate::models::CreateBackfillResponse>, ApiError>,
    flash: &str,
) -> Response {
    match created {
        Ok(ok) => {
            let (created, _) = ok.into_parts();
            redirect(
                headers,
                &format!("/backfills/{}?flash={flash}", created.backfill.id),
            )
        }
        Err(e) => api_error(&e),
    }
}

/// The flash message of a new apply or revert child.
pub(super) fn child_flash(b: &Backfill, action: &str) -> Option<String> {
    let parent = b.parent_backfill_run_id.as_deref().unwrap_or("its parent");
    match action {
        "apply" => Some(format!(
            "Apply created: a live run over the {} entities of shadow run {parent}; each is read again before it is written.",
            b.total_items
        )),
        "revert" => Some(format!(
            "Revert created over the {} entities {parent} changed{}.",
            b.total_items,
            if b.remove_notes {
                ", removing the notes it added"
            } else {
                ""
            }
        )),
        _ => None,
    }
}

/// The diffs of a page of items, in its order (`None` where an item has none).
pub(super) async fn item_diffs(
    app: &AppState,
    tenant: &str,
    b: &Backfill,
    items: &[neo_store::Item],
) -> Result<Vec<Vec<DiffLine>>, Response> {
    let with = api::with_diffs(app, tenant, &b.id, items.to_vec())
        .await
        .map_err(|e| api_error(&e))?;
    Ok(with
        .iter()
        .map(|i| {
            i.diff
                .as_ref()
                .map(|d| diff_lines(d, b.mode))
                .unwrap_or_default()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_as_text_and_long_ones_are_cut() {
        assert_eq!(shown(&json!("High")).text, "High");
        assert_eq!(shown(&json!(3)).text, "3");
        assert_eq!(shown(&Value::Null).text, "none");
        let long = "x".repeat(200);
        let s = shown(&json!(long));
        assert_eq!(s.text.chars().count(), VALUE_CHARS);
        assert!(s.text.ends_with('…'));
        assert_eq!(s.full, long);
    }

    #[test]
    fn children_are_named_by_their_modes() {
        use BackfillMode as M;
        assert_eq!(child_relation(M::Live, Some(M::Shadow)), "apply");
        assert_eq!(child_relation(M::Revert, Some(M::Live)), "revert");
        assert_eq!(child_relation(M::Live, Some(M::Live)), "rerun");
        assert_eq!(child_relation(M::Shadow, Some(M::Shadow)), "rerun");
        assert_eq!(parent_label("apply"), "Apply of");
    }

    #[test]
    fn an_items_diff_lists_fields_then_notes() {
        let d: crate::routes::backfills::ItemDiff = crate::routes::backfills::ItemDiff {
            changes: vec![crate::routes::backfills::PublicFieldChange {
                field: "priority/id".into(),
                previous_value: json!(3),
                new_value: json!(2),
            }],
            notes: vec![crate::routes::backfills::PublicNote {
                text: "Escalated".into(),
                internal: true,
                note_id: None,
            }],
            notes_removed: vec!["77".into()],
        };
        let shadow = diff_lines(&d, BackfillMode::Shadow);
        assert_eq!(shadow.len(), 3);
        assert_eq!(shadow[0].field, "priority/id");
        assert_eq!(
            (
                shadow[0].before.text.as_str(),
                shadow[0].after.text.as_str()
            ),
            ("3", "2")
        );
        assert_eq!(shadow[1].text, "would add an internal note: Escalated");
        assert_eq!(shadow[2].text, "note 77 removed");
        assert_eq!(
            diff_lines(&d, BackfillMode::Live)[1].text,
            "internal note: Escalated"
        );
    }
}
