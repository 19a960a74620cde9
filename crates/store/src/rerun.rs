//! Rerun-failed: which source backfills can be rerun, the target workflow rule (checked
//! inside the rerun transaction), and the child's filter.

use serde_json::Value;

use crate::*;

/// The source-backfill checks of rerun-failed.
pub(crate) fn check_rerunnable(src: &Backfill) -> Result<(), RerunError> {
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
}
