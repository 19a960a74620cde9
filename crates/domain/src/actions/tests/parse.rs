//! Every refusal of a `psa_actions` executor, with its path and words, and the stored form.

use serde_json::{json, Value};

use super::*;

fn refused_by(v: &Value, fields: &dyn WritableFields) -> (String, String) {
    let e = PsaActions::parse(v, fields).expect_err("refused");
    (e.field, e.message)
}

#[track_caller]
fn refused(v: Value, field: &str, message: &str) {
    assert_eq!(
        refused_by(&v, &TICKETS),
        (field.to_owned(), message.to_owned()),
        "{v}"
    );
}

fn update(fields: Value) -> Value {
    exec(json!([{"type": "update_fields", "fields": fields}]))
}

#[test]
fn the_executor_and_its_list() {
    refused(json!([1]), "executor", "executor must be an object");
    refused(
        json!({"type": "webhook", "actions": []}),
        "executor.type",
        "executor.type must be \"psa_actions\"",
    );
    refused(
        json!({"type": "psa_actions", "actions": [{"type": "add_note", "text": "x"}], "colour": 1}),
        "executor.colour",
        "colour is not a setting of this executor",
    );
    refused(
        exec(json!({"type": "add_note"})),
        "executor.actions",
        "actions must be an array of actions",
    );
    refused(
        json!({"type": "psa_actions"}),
        "executor.actions",
        "actions must be an array of actions",
    );
    refused(
        exec(json!([])),
        "executor.actions",
        "actions needs at least one action",
    );
    let note = json!({"type": "add_note", "text": "x"});
    let max = exec(Value::Array(vec![note.clone(); MAX_ACTIONS]));
    assert_eq!(PsaActions::parse(&max, &TICKETS).unwrap().actions.len(), 20);
    refused(
        exec(Value::Array(vec![note; MAX_ACTIONS + 1])),
        "executor.actions",
        "a workflow has at most 20 actions",
    );
}

#[test]
fn actions_and_their_members() {
    refused(
        exec(json!([{"type": "add_note", "text": "x"}, 5])),
        "executor.actions[1]",
        "an action must be an object",
    );
    refused(
        exec(json!([{"type": "delete_ticket"}])),
        "executor.actions[0].type",
        "unknown action type (update_fields, add_note or set_status)",
    );
    refused(
        exec(json!([{"fields": {"summary": "x"}}])),
        "executor.actions[0].type",
        "unknown action type (update_fields, add_note or set_status)",
    );
    refused(
        exec(json!([{"type": "add_note", "text": "x", "colour": "red"}])),
        "executor.actions[0].colour",
        "colour is not a member of this action (type, text, internal)",
    );
    refused(
        exec(json!([{"type": "set_status", "status": 5, "fields": {}}])),
        "executor.actions[0].fields",
        "fields is not a member of this action (type, status)",
    );
    for fields in [json!({}), json!([]), json!("summary")] {
        refused(
            update(fields),
            "executor.actions[0].fields",
            "fields must be an object of 1 to 50 fields to set",
        );
    }
    refused(
        exec(json!([{"type": "update_fields"}])),
        "executor.actions[0].fields",
        "fields must be an object of 1 to 50 fields to set",
    );
}

#[test]
fn fields_the_provider_does_not_let_write() {
    refused(
        exec(json!([
            {"type": "add_note", "text": "x"},
            {"type": "update_fields", "fields": {"summary": "ok", "priority_x": 3}}
        ])),
        "executor.actions[1].fields.priority_x",
        "unknown field priority_x for tickets on connectwise",
    );
    refused(
        update(json!({"id": 7})),
        "executor.actions[0].fields.id",
        "id is read-only for tickets on connectwise",
    );
    refused(
        update(json!({"company.name": "x"})),
        "executor.actions[0].fields.company.name",
        "\"company.name\" is not a field path (segments of letters, digits and _ joined by /)",
    );
    refused(
        update(json!({"": "x"})),
        "executor.actions[0].fields.",
        "\"\" is not a field path (segments of letters, digits and _ joined by /)",
    );
}

#[test]
fn literal_values_of_the_wrong_kind() {
    for (field, value, message) in [
        ("priority/id", json!("high"), "priority/id takes a number"),
        ("priority/id", json!(true), "priority/id takes a number"),
        ("closedFlag", json!(1), "closedFlag takes true or false"),
        (
            "closedFlag",
            json!("true"),
            "closedFlag takes true or false",
        ),
        ("summary", json!(5), "summary takes a string"),
        (
            "requiredDate",
            json!("tomorrow"),
            "requiredDate takes an RFC 3339 datetime with an offset (2026-04-01T00:00:00Z)",
        ),
        (
            "requiredDate",
            json!("2026-04-01T00:00:00"),
            "requiredDate takes an RFC 3339 datetime with an offset (2026-04-01T00:00:00Z)",
        ),
        (
            "company",
            json!(false),
            "company takes a name (string) or an id (number)",
        ),
        (
            "summary",
            json!(["a"]),
            "a field takes one value: a string (a template), a number, true, false or null",
        ),
        (
            "customerRef",
            json!({"$datetime": "2026-04-01T00:00:00Z"}),
            "a field takes one value: a string (a template), a number, true, false or null",
        ),
        (
            "priority/id",
            json!("P{{priority/id}}"),
            "priority/id takes a number, and a template with text gives a string",
        ),
        (
            "closedFlag",
            json!("{{closedFlag}} "),
            "closedFlag takes true or false, and a template with text gives a string",
        ),
    ] {
        refused(
            update(json!({ field: value })),
            &format!("executor.actions[0].fields.{field}"),
            message,
        );
    }
    // Accepted: each kind's values, null (clears), and whole placeholders (checked per record).
    parsed(json!([{"type": "update_fields", "fields": {
        "priority/id": 2.5, "closedFlag": true, "summary": "x", "contactName": null,
        "requiredDate": "2026-04-01T09:00:00+02:00", "company": "Acme",
        "customerRef": false, "budgetHours": "{{summary}}", "status/name": "{{requiredDate}} due"
    }}]));
}

#[test]
fn templates() {
    let at = "executor.actions[0].fields.summary";
    refused(
        update(json!({"summary": "{{summary}} for {{nope}}"})),
        at,
        "template reads unknown field nope for tickets on connectwise",
    );
    refused(
        update(json!({"summary": "a {{summary"})),
        at,
        "unmatched {{ at character 2: every {{ needs a closing }} (there is no escaping)",
    );
    refused(
        update(json!({"summary": "é {{summary}} {{ {{x}}"})),
        at,
        "{{ {{x}} does not name a field (segments of letters, digits and _ joined by . or /)",
    );
    refused(
        update(json!({"summary": "{{ }}"})),
        at,
        "empty placeholder {{}}: name a field, e.g. {{summary}}",
    );
    refused(
        update(json!({"summary": "{{company name}}"})),
        at,
        "{{company name}} does not name a field (segments of letters, digits and _ joined by . or /)",
    );
    refused(
        update(json!({"summary": "{{company..name}}"})),
        at,
        "{{company..name}} does not name a field (segments of letters, digits and _ joined by . or /)",
    );
    let long = "x".repeat(MAX_TEMPLATE_CHARS);
    parsed(json!([{"type": "update_fields", "fields": {"summary": long}}]));
    refused(
        update(json!({ "summary": format!("{long}y") })),
        at,
        "a template has at most 4000 characters",
    );
    // Characters, not bytes.
    parsed(json!([{"type": "add_note", "text": "é".repeat(MAX_TEMPLATE_CHARS)}]));
    refused(
        exec(json!([{"type": "add_note", "text": "é".repeat(MAX_TEMPLATE_CHARS + 1)}])),
        "executor.actions[0].text",
        "a template has at most 4000 characters",
    );
    // A lone `}}` is text; context names, both path spellings and padding are placeholders.
    let p = parsed(json!([{"type": "add_note",
        "text": "}} {{ company.name }} {{company/name}} {{entity_id}} {{backfill_id}} {{workflow_id}}"}]));
    let Action::AddNote { text, internal } = &p.actions[0] else {
        panic!()
    };
    assert!(internal, "internal by default");
    assert_eq!(
        text.parts()
            .iter()
            .filter_map(|p| match p {
                Part::Read(s) => Some(s.clone()),
                Part::Text(_) => None,
            })
            .collect::<Vec<_>>(),
        [
            Source::Record("company/name".into()),
            Source::Record("company/name".into()),
            Source::EntityId,
            Source::BackfillId,
            Source::WorkflowId
        ]
    );
}

#[test]
fn notes() {
    let at = "executor.actions[0].text";
    refused(
        exec(json!([{"type": "add_note", "text": " \n "}])),
        at,
        "a note's text must not be empty",
    );
    refused(
        exec(json!([{"type": "add_note"}])),
        at,
        "text must be a string",
    );
    refused(
        exec(json!([{"type": "add_note", "text": 5}])),
        at,
        "text must be a string",
    );
    refused(
        exec(json!([{"type": "add_note", "text": "{{tags}"}])),
        at,
        "unmatched {{ at character 0: every {{ needs a closing }} (there is no escaping)",
    );
    refused(
        exec(json!([{"type": "add_note", "text": "x", "internal": "yes"}])),
        "executor.actions[0].internal",
        "internal must be true or false",
    );
    assert_eq!(
        refused_by(
            &exec(json!([{"type": "add_note", "text": "x"}])),
            &CONFIGURATIONS
        ),
        (
            "executor.actions[0].type".into(),
            "configurations on connectwise take no notes".into()
        )
    );
}

#[test]
fn statuses() {
    let at = "executor.actions[0].status";
    refused(
        exec(json!([{"type": "set_status"}])),
        at,
        "set_status needs a status",
    );
    refused(
        exec(json!([{"type": "set_status", "status": null}])),
        at,
        "a status cannot be cleared",
    );
    refused(
        exec(json!([{"type": "set_status", "status": "Closed"}])),
        at,
        "status/id takes a number",
    );
    assert_eq!(
        refused_by(
            &exec(json!([{"type": "set_status", "status": 5}])),
            &CONFIGURATIONS
        ),
        (
            "executor.actions[0].type".into(),
            "configurations on connectwise have no status".into()
        )
    );
    let p = parsed(json!([{"type": "set_status", "status": 5}]));
    assert_eq!(
        p.actions,
        [Action::SetStatus {
            update: FieldUpdate {
                field: "status/id".into(),
                value: FieldValue::Literal(json!(5)),
                kind: ValueKind::Number
            }
        }]
    );
}

#[test]
fn a_field_is_set_once() {
    refused(
        exec(json!([
            {"type": "update_fields", "fields": {"priority/id": 1}},
            {"type": "add_note", "text": "x"},
            {"type": "update_fields", "fields": {"summary": "x", "priority/id": 2}}
        ])),
        "executor.actions[2].fields.priority/id",
        "priority/id is already set by actions[0]; set each field once",
    );
    refused(
        exec(json!([
            {"type": "update_fields", "fields": {"status/id": 1}},
            {"type": "set_status", "status": 2}
        ])),
        "executor.actions[1].status",
        "status/id is already set by actions[0]; set each field once",
    );
    refused(
        exec(json!([
            {"type": "update_fields", "fields": {"company": "Acme"}},
            {"type": "update_fields", "fields": {"company/id": 250}}
        ])),
        "executor.actions[1].fields.company/id",
        "company/id overlaps company, set by actions[0]; set each field once",
    );
    refused(
        exec(json!([{"type": "update_fields", "fields": {"company/id": 250, "company": "Acme"}}])),
        "executor.actions[0].fields.company",
        "company overlaps company/id, set by actions[0]; set each field once",
    );
    // Siblings and prefixes of a name are different fields.
    parsed(json!([
        {"type": "update_fields", "fields": {"status/name": "x", "company/id": 1}},
        {"type": "set_status", "status": 2},
        {"type": "update_fields", "fields": {"contactName": "x", "customerRef": 1}}
    ]));
}

#[test]
fn case_insensitive_names_are_stored_as_the_record_spells_them() {
    let v = exec(
        json!([{"type": "update_fields", "fields": {"QUEUEID": 5, "Title": "{{TITLE}} ({{queueid}})"}}]),
    );
    let p = PsaActions::parse(&v, &At).unwrap();
    assert_eq!(
        p.to_stored(),
        exec(
            json!([{"type": "update_fields", "fields": {"queueID": 5, "title": "{{TITLE}} ({{queueid}})"}}])
        )
    );
    assert_eq!(p.fields_read(), ["queueID", "title"]);
    let plan = p
        .plan(&json!({"queueID": 5, "title": "Down"}), &ctx())
        .unwrap();
    assert_eq!(
        plan.changes,
        [FieldChange {
            field: "title".into(),
            before: json!("Down"),
            after: json!("Down (5)")
        }]
    );
    assert_eq!(
        refused_by(
            &exec(json!([{"type": "update_fields", "fields": {"priority": 1, "PRIORITY": 2}}])),
            &At
        ),
        (
            "executor.actions[0].fields.PRIORITY".into(),
            "priority is already set by actions[0]; set each field once".into()
        )
    );
}

#[test]
fn the_stored_form_reads_back_as_the_same_actions() {
    let submitted = exec(json!([
        {"type": "update_fields", "fields": {"priority/id": "{{budgetHours}}", "summary": "[{{company.name}}] {{summary}}", "contactName": null}},
        {"type": "add_note", "text": "Moved by backfill {{backfill_id}}"},
        {"type": "add_note", "text": "public", "internal": false},
        {"type": "set_status", "status": 7}
    ]));
    let p = PsaActions::parse(&submitted, &TICKETS).unwrap();
    let stored = p.to_stored();
    assert_eq!(PsaActions::parse(&stored, &TICKETS).unwrap(), p);
    let mut expected = submitted.clone();
    expected["actions"][1]["internal"] = json!(true);
    assert_eq!(
        stored, expected,
        "the submitted form, defaults made explicit"
    );
    assert_eq!(
        p.fields_read(),
        [
            "priority/id",
            "budgetHours",
            "summary",
            "company/name",
            "contactName",
            "status/id"
        ]
    );
    assert!(p.writes_fields());
    assert!(!parsed(json!([{"type": "add_note", "text": "x"}])).writes_fields());
}
