//! What `psa_actions` executions changed (issue 20), through the trait against both backends:
//! the changes an execution records and replaces, the items' diffs, the totals, a skipped
//! settlement, and the apply and revert children with their rules.

use std::sync::Arc;

use neo_domain::backfill::{BackfillMode, BackfillRunState, EntityType, ItemStatus};
use neo_store::testing::{at, backend_tests, store_with_workflow, Backend, TestStore};
use neo_store::*;
use serde_json::{json, Value};

struct Env {
    t: TestStore,
    tenant: String,
    wf: i64,
}

impl Env {
    fn s(&self) -> &Arc<dyn Store> {
        &self.t.store
    }

    async fn backfill(&self, id: &str, ids: &[&str], mode: BackfillMode) -> Backfill {
        self.s()
            .create_backfill(NewBackfill {
                id: id.into(),
                tenant_id: self.tenant.clone(),
                state: BackfillRunState::Running,
                target_workflow_id: self.wf,
                entity_type: EntityType::Ticket,
                filter_spec: json!({ "entity_ids": ids }),
                daily_execution_windows: Default::default(),
                timezone: "UTC".into(),
                max_in_flight: 10,
                reprocess: true,
                total_estimated: None,
                credits_per_entity: 1,
                created_by: "key_1".into(),
                created_at: at(0),
                entity_ids: Some(ids.iter().map(|s| s.to_string()).collect()),
                name: None,
                mode,
                start_at: None,
                max_credits: None,
                trial_sample_size: None,
                max_in_flight_per_company: None,
                company_blackouts: None,
            })
            .await
            .unwrap()
    }

    /// Claims every item of `id` and settles each with `settle(entity)`, recording
    /// `changes(entity)` for its execution first, as the executor does.
    async fn run(
        &self,
        id: &str,
        now: i64,
        changes: impl Fn(&str) -> Vec<Change>,
        settle: impl Fn(&str) -> Settlement,
    ) {
        let c = self
            .s()
            .claim_items(id, "w1", 100, at(now), at(now + 30))
            .await
            .unwrap();
        let mut outcomes = Vec::new();
        for c in &c.claimed {
            let scope = ChangeScope {
                tenant_id: &self.tenant,
                execution_id: &c.execution_id,
                backfill_id: id,
                entity_id: &c.entity_id,
            };
            self.s()
                .record_psa_changes(&scope, &changes(&c.entity_id), at(now), true)
                .await
                .unwrap();
            outcomes.push(Outcome {
                backfill_id: id.into(),
                ord: c.ord,
                execution_id: c.execution_id.clone(),
                settlement: settle(&c.entity_id),
                attempt: Default::default(),
            });
        }
        self.s().settle(&outcomes, 5, at(now + 1)).await.unwrap();
    }

    async fn items(&self, id: &str) -> Vec<Item> {
        self.s()
            .list_items(&self.tenant, id, &ItemFilter::default(), None, 1000)
            .await
            .unwrap()
            .items
    }
}

async fn env(b: Backend) -> Option<Env> {
    let (t, tenant, wf) = store_with_workflow(
        b,
        "Re-prioritise",
        1,
        json!({"type": "psa_actions", "actions": []}),
    )
    .await?;
    Some(Env { t, tenant, wf })
}

fn field(f: &str, previous: Value, new: Value) -> Change {
    Change::Field {
        field: f.into(),
        previous,
        new,
    }
}

/// The changes of the run below: entity `c` already held the targets (nothing recorded).
fn planned(entity: &str) -> Vec<Change> {
    if entity == "c" {
        return Vec::new();
    }
    vec![
        field("priority/id", json!(3), json!(1)),
        field("summary", json!(format!("{entity} down")), json!("x")),
        Change::Note {
            note_id: None,
            text: format!("note on {entity}"),
            internal: true,
        },
    ]
}

async fn changes_are_recorded_replaced_and_read_back(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    e.backfill("bf_s", &["a", "b", "c"], BackfillMode::Shadow)
        .await;
    e.run("bf_s", 1, planned, |_| Settlement::Succeeded).await;
    let items = e.items("bf_s").await;
    let exec_a = items[0].execution_id.clone().unwrap();

    // One execution's changes, in order.
    let got = s
        .psa_changes(&e.tenant, ChangesOf::Execution(&exec_a))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|c| c.change.clone()).collect::<Vec<_>>(),
        planned("a")
    );
    assert!(got
        .iter()
        .all(|c| c.entity_id == "a" && c.backfill_id == "bf_s"));
    // Another tenant sees none of them.
    let other = s.ensure_tenant("other", at(0)).await.unwrap().id;
    assert!(s
        .psa_changes(&other, ChangesOf::Execution(&exec_a))
        .await
        .unwrap()
        .is_empty());

    // A page of items: each change under its item's execution, in item order.
    let page = s
        .psa_changes(
            &e.tenant,
            ChangesOf::Items {
                backfill_id: "bf_s",
                first: items[1].ord,
                last: items[2].ord,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 3, "b's three changes, none for c");
    assert!(page.iter().all(|c| c.entity_id == "b"));

    // Totals: per (field, previous, new), most entities first.
    let totals = s.psa_change_totals(&e.tenant, "bf_s", 10).await.unwrap();
    assert_eq!(totals[0].field, "priority/id");
    assert_eq!(
        (&totals[0].previous, &totals[0].new, totals[0].entities),
        (&json!(3), &json!(1), 2)
    );
    assert_eq!(totals.len(), 3, "priority once, two distinct summaries");

    // Planned again: the field changes are replaced, the notes stay; an empty replacement
    // (a refused write) forgets the fields.
    let scope = ChangeScope {
        tenant_id: &e.tenant,
        execution_id: &exec_a,
        backfill_id: "bf_s",
        entity_id: "a",
    };
    s.record_psa_changes(
        &scope,
        &[field("priority/id", json!(2), json!(1))],
        at(5),
        true,
    )
    .await
    .unwrap();
    let got: Vec<Change> = s
        .psa_changes(&e.tenant, ChangesOf::Execution(&exec_a))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.change)
        .collect();
    assert_eq!(
        got,
        vec![
            planned("a")[2].clone(),
            field("priority/id", json!(2), json!(1))
        ]
    );
    s.record_psa_changes(&scope, &[], at(6), true)
        .await
        .unwrap();
    let got = s
        .psa_changes(&e.tenant, ChangesOf::Execution(&exec_a))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(matches!(got[0].change, Change::Note { .. }));
}

async fn apply_and_revert_children_follow_their_rules(b: Backend) {
    let Some(e) = env(b).await else { return };
    let s = e.s();
    let child = |source: &str, new: &str, kind: ChildKind| {
        let (s, tenant) = (s.clone(), e.tenant.clone());
        let (source, new) = (source.to_owned(), new.to_owned());
        async move {
            let c = NewChild {
                source_id: &source,
                new_id: &new,
                kind,
                created_by: "key_2",
                now: at(10),
                causes: None,
            };
            s.create_child(&tenant, &c, None).await
        }
    };
    e.backfill("bf_s", &["a", "b", "c"], BackfillMode::Shadow)
        .await;
    // Not while it runs, and a shadow run is not reverted.
    assert!(matches!(
        child("bf_s", "bf_x", ChildKind::Apply).await,
        Err(RerunError::NotRerunnable(m)) if m.contains("RUNNING")
    ));
    e.run("bf_s", 1, planned, |_| Settlement::Succeeded).await;
    assert!(matches!(
        child("bf_s", "bf_x", ChildKind::Revert { remove_notes: false }).await,
        Err(RerunError::NotRerunnable(m)) if m.contains("shadow")
    ));

    // Apply: live, over the whole snapshot, with what it knew of each entity.
    let apply = child("bf_s", "bf_a", ChildKind::Apply).await.unwrap();
    assert_eq!(
        (
            apply.mode,
            apply.parent_backfill_run_id.as_deref(),
            apply.total_items,
            apply.reprocess
        ),
        (BackfillMode::Live, Some("bf_s"), 3, true)
    );
    assert!(matches!(
        child("bf_a", "bf_x", ChildKind::Apply).await,
        Err(RerunError::NotRerunnable(m)) if m.contains("only a shadow run")
    ));
    // The apply writes a and b; b is then skipped by nothing, c changes nothing.
    e.run("bf_a", 20, planned, |_| Settlement::Succeeded).await;
    assert_eq!(
        s.backfill(&e.tenant, "bf_a").await.unwrap().unwrap().state,
        BackfillRunState::Completed
    );

    // Revert: over the entities the apply changed, in snapshot order, keeping remove_notes.
    let revert = child("bf_a", "bf_r", ChildKind::Revert { remove_notes: true })
        .await
        .unwrap();
    assert_eq!(
        (
            revert.mode,
            revert.remove_notes,
            revert.parent_backfill_run_id.as_deref()
        ),
        (BackfillMode::Revert, true, Some("bf_a"))
    );
    let entities: Vec<String> = e
        .items("bf_r")
        .await
        .into_iter()
        .map(|i| i.entity_id)
        .collect();
    assert_eq!(entities, ["a", "b"]);
    // What the revert reads back: the apply's changes on one entity.
    let written = s
        .psa_changes(
            &e.tenant,
            ChangesOf::Entity {
                backfill_id: "bf_a",
                entity_id: "b",
            },
        )
        .await
        .unwrap();
    assert_eq!(
        written.into_iter().map(|c| c.change).collect::<Vec<_>>(),
        planned("b")
    );

    // A skipped settlement: final, counted, with its reason, and no credit.
    e.run(
        "bf_r",
        30,
        |_| Vec::new(),
        |entity| {
            if entity == "b" {
                Settlement::Skipped("changed_since: summary".into())
            } else {
                Settlement::Succeeded
            }
        },
    )
    .await;
    let r = s.backfill(&e.tenant, "bf_r").await.unwrap().unwrap();
    assert_eq!(
        (r.state, r.succeeded_count, r.skipped_count),
        (BackfillRunState::Completed, 1, 1)
    );
    let skipped = e.items("bf_r").await.into_iter().nth(1).unwrap();
    assert_eq!(skipped.status, ItemStatus::Skipped);
    assert_eq!(skipped.error.as_deref(), Some("changed_since: summary"));
    let exec = s
        .execution(&e.tenant, skipped.execution_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exec.status.as_str(), "skipped");

    // A revert is not reverted, and a run that changed nothing has nothing to revert.
    assert!(matches!(
        child("bf_r", "bf_x", ChildKind::Revert { remove_notes: false }).await,
        Err(RerunError::NotRerunnable(m)) if m.contains("revert run")
    ));
    e.backfill("bf_n", &["z"], BackfillMode::Live).await;
    e.run("bf_n", 40, |_| Vec::new(), |_| Settlement::Succeeded)
        .await;
    assert!(matches!(
        child("bf_n", "bf_x", ChildKind::Revert { remove_notes: false }).await,
        Err(RerunError::NotRerunnable(m)) if m.contains("nothing to revert")
    ));
}

backend_tests!(
    changes_are_recorded_replaced_and_read_back,
    apply_and_revert_children_follow_their_rules,
);
