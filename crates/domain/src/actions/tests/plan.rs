//! Plans, templates rendered against a record, serialization and reverts, case by case.

use serde_json::json;

use super::*;

fn change(field: &str, before: Value, after: Value) -> FieldChange {
    FieldChange {
        field: field.into(),
        before,
        after,
    }
}

fn plan_of(fields: Value) -> Result<Plan, PlanError> {
    parsed(json!([{"type": "update_fields", "fields": fields}])).plan(&ticket(), &ctx())
}

#[test]
fn a_whole_placeholder_copies_the_value_and_text_interpolates() {
    let plan = plan_of(json!({
        "budgetHours": "{{priority/id}}",
        "summary": "[{{company.name}}] {{summary}} (#{{entity_id}}, P{{priority/id}}, closed {{closedFlag}}, {{budgetHours}}h)",
        "customerRef": "{{company/name}}",
        "status/name": "{{workflow_id}}",
        "contactName": "{{backfill_id}}"
    }))
    .unwrap();
    assert_eq!(
        plan.changes,
        [
            change("budgetHours", json!(1.5), json!(3)),
            change(
                "summary",
                json!("Printer down"),
                json!("[Acme] Printer down (#42, P3, closed false, 1.5h)")
            ),
            change("customerRef", Value::Null, json!("Acme")),
            change("status/name", json!("New"), json!("wf_7")),
            change("contactName", Value::Null, json!("bf_1")),
        ]
    );
    assert!(plan.notes.is_empty());
}

#[test]
fn a_placeholder_the_record_lacks_fails_the_entity() {
    let mut record = ticket();
    record["company"] = json!({"id": 250});
    let p = parsed(
        json!([{"type": "update_fields", "fields": {"summary": "{{summary}} for {{company.name}}"}}]),
    );
    let e = p.plan(&record, &ctx()).unwrap_err();
    assert_eq!(
        e,
        PlanError::Missing {
            at: "executor.actions[0].fields.summary".into(),
            path: "company/name".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "template reads company/name, which this record lacks (executor.actions[0].fields.summary)"
    );
    // Null is lacking too; so is a path through something that is not an object.
    record["company"] = json!({"name": null});
    assert!(matches!(
        p.plan(&record, &ctx()),
        Err(PlanError::Missing { .. })
    ));
    record["company"] = json!("Acme");
    assert!(matches!(
        p.plan(&record, &ctx()),
        Err(PlanError::Missing { .. })
    ));
    // In a note.
    let p = parsed(json!([{"type": "add_note", "text": "by {{contactName}}"}]));
    assert_eq!(
        p.plan(&ticket(), &ctx()).unwrap_err().to_string(),
        "template reads contactName, which this record lacks (executor.actions[0].text)"
    );
}

#[test]
fn a_template_value_must_fit_the_field() {
    assert_eq!(
        plan_of(json!({"summary": "{{tags}}"})).unwrap_err().to_string(),
        "template reads tags, which holds an object or a list, not one value (executor.actions[0].fields.summary)"
    );
    let e = plan_of(json!({"priority/id": "{{summary}}"})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "priority/id takes a number, and the template gave a string (executor.actions[0].fields.priority/id)"
    );
    // A datetime field takes a copied string only if it is a datetime.
    let p = parsed(json!([{"type": "update_fields", "fields": {"requiredDate": "{{summary}}"}}]));
    assert!(matches!(
        p.plan(&ticket(), &ctx()),
        Err(PlanError::WrongKind { .. })
    ));
    let mut record = ticket();
    record["summary"] = json!("2026-04-01T00:00:00Z");
    assert_eq!(
        p.plan(&record, &ctx()).unwrap().changes,
        [change(
            "requiredDate",
            Value::Null,
            json!("2026-04-01T00:00:00Z")
        )]
    );
    // A status from a number of the record.
    let p = parsed(json!([{"type": "set_status", "status": "{{priority/id}}"}]));
    assert_eq!(
        p.plan(&ticket(), &ctx()).unwrap().changes,
        [change("status/id", json!(16), json!(3))]
    );
    let p = parsed(json!([{"type": "set_status", "status": "{{summary}}"}]));
    assert_eq!(
        p.plan(&ticket(), &ctx()).unwrap_err().to_string(),
        "status/id takes a number, and the template gave a string (executor.actions[0].status)"
    );
}

#[test]
fn only_changing_fields_are_planned() {
    let plan = plan_of(json!({
        "priority/id": 3.0, "summary": "Printer down", "closedFlag": false,
        "budgetHours": 2, "contactName": null, "customerRef": null, "status/name": "new"
    }))
    .unwrap();
    assert_eq!(
        plan.changes,
        [
            change("budgetHours", json!(1.5), json!(2)),
            change("status/name", json!("New"), json!("new")),
        ],
        "3 is 3.0, absent is null, strings compare exactly"
    );
    // A nested field under a missing object: before is null, the write creates it.
    let p = parsed(json!([{"type": "update_fields", "fields": {"company/id": 9}}]));
    let plan = p.plan(&json!({"id": 1}), &ctx()).unwrap();
    assert_eq!(plan.changes, [change("company/id", Value::Null, json!(9))]);
    assert_eq!(
        apply_to(&json!({"id": 1}), &plan),
        json!({"id": 1, "company": {"id": 9}})
    );
    assert_eq!(
        apply_to(&json!({"company": "Acme"}), &plan),
        json!({"company": {"id": 9}})
    );
}

#[test]
fn a_rerun_changes_nothing_and_adds_no_note() {
    let p = parsed(json!([
        {"type": "update_fields", "fields": {"priority/id": 1, "summary": "[{{company/name}}] {{summary}}"}},
        {"type": "add_note", "text": "Escalated from P{{priority/id}} by {{workflow_id}}"},
        {"type": "set_status", "status": 20},
        {"type": "add_note", "text": "For the customer", "internal": false}
    ]));
    let record = ticket();
    let plan = p.plan(&record, &ctx()).unwrap();
    assert_eq!(
        plan.notes,
        [
            PlannedNote {
                text: "Escalated from P3 by wf_7".into(),
                internal: true
            },
            PlannedNote {
                text: "For the customer".into(),
                internal: false
            }
        ]
    );
    assert_eq!(plan.changes.len(), 3);
    let after = apply_to(&record, &plan);
    assert_eq!(
        after["priority"],
        json!({"id": 1, "name": "Priority 3 - Normal"})
    );
    assert_eq!(after["status"]["id"], json!(20));
    // The summary template now reads the changed summary: it changes again, by design of the
    // template (it prepends). A template that copies is idempotent.
    let p = parsed(json!([
        {"type": "update_fields", "fields": {"priority/id": 1, "customerRef": "{{company/name}}"}},
        {"type": "add_note", "text": "Escalated from P{{priority/id}}"},
    ]));
    let plan = p.plan(&record, &ctx()).unwrap();
    assert_eq!(plan.notes.len(), 1);
    let again = p.plan(&apply_to(&record, &plan), &ctx()).unwrap();
    assert!(again.is_empty(), "{again:?}");
    // A note the record cannot fill does not fail an entity with nothing to change.
    let p = parsed(json!([
        {"type": "update_fields", "fields": {"priority/id": 3}},
        {"type": "add_note", "text": "{{contactName}}"},
    ]));
    assert_eq!(p.plan(&record, &ctx()).unwrap(), Plan::default());
    // A workflow of notes only adds them every time.
    let p = parsed(json!([{"type": "add_note", "text": "Reviewed {{summary}}"}]));
    let plan = p.plan(&record, &ctx()).unwrap();
    assert_eq!(plan.notes.len(), 1);
    assert_eq!(p.plan(&apply_to(&record, &plan), &ctx()).unwrap(), plan);
    // A note whose placeholders render to nothing.
    let mut r = record.clone();
    r["summary"] = json!(" ");
    let p = parsed(json!([{"type": "add_note", "text": "{{summary}}"}]));
    assert_eq!(
        p.plan(&r, &ctx()).unwrap_err().to_string(),
        "the note's text is empty for this record (executor.actions[0].text)"
    );
}

#[test]
fn plans_serialize_as_the_field_update_audit() {
    let plan = plan_of(json!({"priority/id": 1, "contactName": "Ann"})).unwrap();
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        v,
        json!({"changes": [
            {"field": "priority/id", "previous_value": 3, "new_value": 1},
            {"field": "contactName", "previous_value": null, "new_value": "Ann"}
        ], "notes": []})
    );
    assert_eq!(serde_json::from_value::<Plan>(v).unwrap(), plan);
    let audit: Vec<FieldChange> = serde_json::from_value(
        json!([{"field": "summary", "previous_value": "a", "new_value": "b"}]),
    )
    .unwrap();
    assert_eq!(audit, [change("summary", json!("a"), json!("b"))]);
}

#[test]
fn a_revert_restores_only_untouched_records() {
    let record = ticket();
    let plan = plan_of(json!({"priority/id": 1, "contactName": "Ann", "summary": "x"})).unwrap();
    let written = apply_to(&record, &plan);
    let Revert::Restore(back) = revert(&plan.changes, &written) else {
        panic!("untouched since")
    };
    assert_eq!(
        back,
        [
            change("priority/id", json!(1), json!(3)),
            change("contactName", json!("Ann"), Value::Null),
            change("summary", json!("x"), json!("Printer down")),
        ]
    );
    assert_eq!(apply_changes(&written, &back), record);
    // Someone changed two of the fields since: nothing is written.
    let mut edited = written.clone();
    edited["summary"] = json!("y");
    edited["contactName"] = Value::Null;
    edited["budgetHours"] = json!(9);
    assert_eq!(
        revert(&plan.changes, &edited),
        Revert::ChangedSince {
            fields: vec!["contactName".into(), "summary".into()]
        }
    );
    // The same value in another number form is no change.
    let mut same = written.clone();
    same["priority"]["id"] = json!(1.0);
    assert!(matches!(revert(&plan.changes, &same), Revert::Restore(_)));
    assert_eq!(revert(&[], &record), Revert::Restore(vec![]));
}

#[test]
fn a_shadow_plan_is_still_valid_while_its_fields_hold_their_values() {
    let record = ticket();
    let plan = plan_of(json!({"priority/id": 1})).unwrap();
    assert!(plan_still_valid(&plan, &record));
    let mut other = record.clone();
    other["summary"] = json!("changed");
    assert!(
        plan_still_valid(&plan, &other),
        "a field the plan does not touch"
    );
    other["priority"] = json!({"id": 3.0});
    assert!(plan_still_valid(&plan, &other));
    other["priority"]["id"] = json!(2);
    assert!(!plan_still_valid(&plan, &other));
    assert!(!plan_still_valid(&plan, &json!({})));
}
