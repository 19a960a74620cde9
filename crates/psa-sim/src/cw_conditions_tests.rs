//! The `conditions` language against the server's documented and observed behaviour.

use super::*;
use serde_json::json;

fn row() -> Value {
    json!({
        "id": 42, "summary": "Printer offline at Main Office", "recordType": "ServiceTicket",
        "board": {"id": 3, "name": "Help Desk"}, "status": {"id": 1, "name": "New"},
        "priority": {"id": 2, "name": "Priority 2 - High"},
        "company": {"id": 101, "identifier": "AcmeCorp", "name": "Acme Corp"},
        "owner": null, "closedFlag": false, "closedDate": null, "parentTicketId": null,
        "customFields": [{"id": 1, "caption": "Region", "type": "Text", "value": "West"}],
        "_info": {"dateEntered": "2025-03-01T10:00:00Z", "lastUpdated": "2025-03-02T10:00:00Z"}
    })
}

fn check(cond: &str) -> bool {
    parse(cond, &TICKET_SCHEMA)
        .unwrap_or_else(|e| panic!("{cond}: {e:?}"))
        .is_some_and(|e| e.matches(&row()))
}

#[test]
fn comparisons() {
    assert!(check("id = 42"));
    assert!(check("ID>=42 AND id<43"));
    assert!(check("board/name = \"help desk\""));
    assert!(check("Board/Name='Help Desk'"));
    assert!(check("closedFlag = False"));
    assert!(check("owner/id = null"));
    assert!(check("owner = null"));
    assert!(!check("owner/id != 5"));
    assert!(check("company/identifier != null"));
    assert!(check("dateEntered > [2025-01-01T00:00:00Z]"));
    assert!(check("_info/lastUpdated <= [2025-03-02T10:00:00.000000]"));
    assert!(check("lastUpdated = [2025-03-02T10:00:00Z]"));
    assert!(check("summary contains \"OFFLINE\""));
    assert!(check("summary not contains 'Low Priority'"));
    assert!(check("summary like \"Printer*\""));
    assert!(check("summary like '%office'"));
    assert!(!check("summary not like '%office'"));
    assert!(check("summary like 'P[r]inter%'"));
    assert!(check("status/name in (\"New\", 'Open')"));
    assert!(check("board/id not in (1, 2)"));
    assert!(check("priority/id in (2)"));
}

#[test]
fn precedence_and_grouping() {
    // AND binds tighter: false AND false OR true → true.
    assert!(check("id = 1 and id = 2 or id = 42"));
    assert!(!check("id = 1 and (id = 2 or id = 42)"));
    assert!(check(
        "(id = 1 or board/id = 3) and (status/id = 1 or status/id = 2)"
    ));
    assert!(check("((id = 42))"));
}

#[test]
fn errors() {
    assert!(matches!(
        parse("summary = abc", &TICKET_SCHEMA),
        Err(ConditionError::BadLiteral(_))
    ));
    assert!(matches!(
        parse("summary = \"abc", &TICKET_SCHEMA),
        Err(ConditionError::BadLiteral(_))
    ));
    assert!(matches!(
        parse("dateEntered > [yesterday]", &TICKET_SCHEMA),
        Err(ConditionError::BadLiteral(_))
    ));
    assert!(matches!(
        parse("id = 1.", &TICKET_SCHEMA),
        Err(ConditionError::BadLiteral(_))
    ));
    assert!(
        matches!(parse("nosuch = 1", &TICKET_SCHEMA), Err(ConditionError::UnknownField(f)) if f == "nosuch")
    );
    assert!(matches!(
        parse("id 1", &TICKET_SCHEMA),
        Err(ConditionError::Syntax(_))
    ));
    assert!(matches!(
        parse("(id = 1", &TICKET_SCHEMA),
        Err(ConditionError::Syntax(_))
    ));
    assert!(matches!(
        parse("id = 1)", &TICKET_SCHEMA),
        Err(ConditionError::Syntax(_))
    ));
    assert!(matches!(
        parse("id = 1 and", &TICKET_SCHEMA),
        Err(ConditionError::Syntax(_))
    ));
    let deep = format!("{}id = 1{}", "(".repeat(500), ")".repeat(500));
    assert!(matches!(
        parse(&deep, &TICKET_SCHEMA),
        Err(ConditionError::Syntax(_))
    ));
    assert!(matches!(parse("   ", &TICKET_SCHEMA), Ok(None)));
}

#[test]
fn custom_fields() {
    let e = parse(
        "caption=\"Region\" AND value = \"west\"",
        &CUSTOM_FIELD_SCHEMA,
    )
    .ok()
    .flatten();
    assert!(e.is_some_and(|e| e.matches_any_item(&row(), "customFields")));
    let e = parse(
        "caption='Region' and value in ('North','South')",
        &CUSTOM_FIELD_SCHEMA,
    )
    .ok()
    .flatten();
    assert!(e.is_some_and(|e| !e.matches_any_item(&row(), "customFields")));
}

#[test]
fn like_patterns() {
    let p = Pattern::compile("a*b%c");
    assert!(p.matches("AxxBc"));
    assert!(p.matches("abc"));
    assert!(!p.matches("abcd"));
    assert!(Pattern::compile("[[]x]").matches("[x]"));
    assert!(Pattern::compile("*").matches(""));
    assert!(!Pattern::compile("a").matches(""));
}
