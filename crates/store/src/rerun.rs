//! Child backfills (rerun-failed, and issue 20's apply and revert): which source backfills can
//! have one, which of their items it takes, the target workflow rule (all checked inside the
//! child's transaction), and the child's filter.

use neo_domain::backfill::BackfillMode;
use serde_json::Value;

use crate::*;

/// The source-backfill checks of a child of `kind` (the domain's rules).
pub(crate) fn check_child(src: &Backfill, kind: ChildKind) -> Result<(), RerunError> {
    use neo_domain::backfill::{check_appliable, check_revertable};
    let refused = |r: neo_domain::backfill::ChildRefusal| RerunError::NotRerunnable(r.0);
    match kind {
        ChildKind::RerunFailed => check_rerunnable(src),
        ChildKind::Apply => check_appliable(&src.id, src.mode, src.state).map_err(refused),
        ChildKind::Revert { .. } => check_revertable(&src.id, src.mode, src.state).map_err(refused),
    }
}

/// Which of the source's items a child of `kind` takes, as a condition on `backfill_items i`:
/// the failed ones, the whole snapshot (apply), those with audited changes (revert).
pub(crate) fn child_items(kind: ChildKind) -> &'static str {
    match kind {
        ChildKind::RerunFailed => "i.status = 'failed'",
        ChildKind::Apply => "TRUE",
        ChildKind::Revert { .. } => {
            "EXISTS (SELECT 1 FROM psa_changes c WHERE c.execution_id = i.execution_id AND c.kind IN ('field', 'note'))"
        }
    }
}

/// A child needs entities: an apply of an empty shadow run, a revert of a run that wrote
/// nothing, or a rerun of causes none of the failures has, is refused rather than created
/// empty.
pub(crate) fn check_child_items(
    src: &Backfill,
    kind: ChildKind,
    n: usize,
) -> Result<(), RerunError> {
    match kind {
        ChildKind::RerunFailed if n == 0 => Err(RerunError::NotRerunnable(format!(
            "no failed entity of backfill {} has the causes given (see GET /public-api/backfills/{}/failures)",
            src.id, src.id
        ))),
        ChildKind::Apply if n == 0 => Err(RerunError::NotRerunnable(format!(
            "backfill {} has no entities to apply",
            src.id
        ))),
        ChildKind::Revert { .. } if n == 0 => Err(RerunError::NotRerunnable(format!(
            "backfill {} changed nothing in the PSA: there is nothing to revert",
            src.id
        ))),
        _ => Ok(()),
    }
}

/// The mode of a child: a rerun keeps its source's, an apply writes, a revert restores.
pub(crate) fn child_mode(src: &Backfill, kind: ChildKind) -> (BackfillMode, bool) {
    match kind {
        ChildKind::RerunFailed => (src.mode, src.remove_notes),
        ChildKind::Apply => (BackfillMode::Live, false),
        ChildKind::Revert { remove_notes } => (BackfillMode::Revert, remove_notes),
    }
}

/// The source-backfill checks of rerun-failed.
fn check_rerunnable(src: &Backfill) -> Result<(), RerunError> {
    use neo_domain::backfill::RerunRefusal;
    neo_domain::backfill::check_rerunnable(src.state, src.failed_count).map_err(|r| {
        RerunError::NotRerunnable(match r {
            RerunRefusal::NotTerminal(state) => format!(
                "backfill {} is {state}; only a COMPLETED, CANCELLED or FAILED backfill can be rerun",
                src.id
            ),
            RerunRefusal::NoFailures => format!("backfill {} has no failed entities", src.id),
        })
    })
}

/// The target workflow checks of rerun-failed.
pub(crate) fn check_rerun_workflow(wf: Option<Workflow>) -> Result<Workflow, RerunError> {
    let wf = wf.ok_or(RerunError::WorkflowNotFound)?;
    neo_domain::backfill::check_backfill_target(wf.state, wf.autonomy_type)
        .map_err(RerunError::Target)?;
    Ok(wf)
}

/// The `filter_spec` of a rerun child: the failed entities as an explicit list.
pub(crate) fn rerun_filter(failed: &[SnapshotEntry]) -> Value {
    serde_json::json!({ "entity_ids": failed.iter().map(|e| &e.id).collect::<Vec<_>>() })
}

/// What a rerun-failed child is made from.
pub(crate) struct Rerun<'a> {
    pub tenant_id: &'a str,
    pub source_id: &'a str,
    pub new_id: &'a str,
    pub created_by: &'a str,
    pub now: jiff::Timestamp,
    pub kind: ChildKind,
    /// Of a rerun-failed: only these causes (never empty).
    pub causes: Option<&'a neo_domain::triage::Causes>,
}
