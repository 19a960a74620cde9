//! ConnectWise: JSON Patch on `/service/tickets/{id}`, notes under it.

use psa_sim::{SimHandle, WriteKind};
use reqwest::Method;
use serde_json::{json, Value};

use super::common::*;
use super::{send, small, ticket_where};

fn token(row: &Value) -> Value {
    row["_info"]["lastUpdated"].clone()
}

#[tokio::test]
async fn a_patch_changes_the_row_and_conditions_see_it() {
    let sim = sim_with(small()).await;
    let t = ticket_where(&sim, |t| t.priority.id != 1 && !t.status.closed);
    let path = format!("/service/tickets/{}", t.id);
    let (_, read) = send(cw(&sim, Method::GET, &path)).await;
    let patch = json!([
        {"op": "test", "path": "/_info/lastUpdated", "value": token(&read)},
        {"op": "replace", "path": "/priority/id", "value": 1},
        {"op": "replace", "path": "/summary", "value": "Written by the executor"},
        {"op": "add", "path": "status/id", "value": 5},
        {"op": "replace", "path": "/type", "value": {"id": 3}},
    ]);
    let (status, row) = send(cw(&sim, Method::PATCH, &path).json(&patch)).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(
        row["priority"],
        json!({"id": 1, "name": "Priority 1 - Critical"})
    );
    assert_eq!(row["status"], json!({"id": 5, "name": "Completed"}));
    assert_eq!(row["closedFlag"], true);
    assert_eq!(row["closedDate"], token(&row));
    assert_eq!(row["type"], json!({"id": 3, "name": "Problem"}));
    assert!(token(&row).as_str() > token(&read).as_str(), "{row}");
    assert_eq!(row["company"], read["company"], "the rest is unchanged");

    // Every read path sees it: get, list with conditions, count, forward-only, search.
    assert_eq!(send(cw(&sim, Method::GET, &path)).await.1, row);
    assert_eq!(sim.ticket_row("connectwise", t.id), Some(row.clone()));
    let cond = "summary = \"Written by the executor\" and priority/id = 1 and closedFlag = true";
    let (_, list) =
        send(cw(&sim, Method::GET, "/service/tickets").query(&[("conditions", cond)])).await;
    assert_eq!(ids(&list), vec![t.id]);
    assert_eq!(cw_count(&sim, cond, None).await, 1);
    assert_eq!(cw_all_ids(&sim, cond, None).await, vec![t.id]);
    let old = format!("id = {} and priority/id = {}", t.id, t.priority.id);
    assert_eq!(cw_count(&sim, &old, None).await, 0);
    let search = json!({"conditions": cond});
    let (_, found) = send(cw(&sim, Method::POST, "/service/tickets/search").json(&search)).await;
    assert_eq!(ids(&found), vec![t.id]);
    let rows = sim
        .resource_rows("connectwise", "/service/tickets")
        .expect("rows");
    assert!(rows.contains(&row));

    // Only the ConnectWise view: a tenant is one PSA.
    assert_eq!(
        sim.ticket_row("autotask", t.id),
        Some(SimHandle::at_json(&t))
    );

    // The write log: one update, the fields as named, before and after.
    let log = sim.writes();
    assert_eq!(log.len(), 1);
    let w = &log[0];
    assert_eq!(
        (w.psa.as_str(), w.ticket_id, w.kind, w.status),
        ("connectwise", t.id, WriteKind::Update, 200)
    );
    assert_eq!(w.fields[0].field, "priority/id");
    assert_eq!(
        (&w.fields[0].before, &w.fields[0].after),
        (&json!(t.priority.id), &json!(1))
    );
    assert_eq!(w.fields[1].before, json!(t.summary));
    let request = sim
        .requests()
        .await
        .into_iter()
        .find(|r| Some(r.seq) == w.request_seq);
    assert_eq!(request.map(|r| r.method), Some("PATCH".to_string()));

    // Reopening clears the closing date; whole references by object, owner by identifier.
    let member = sim.dataset().members[0].clone();
    let patch = json!([
        {"op": "replace", "path": "/status", "value": {"id": 1}},
        {"op": "replace", "path": "/owner", "value": {"identifier": member.identifier}},
    ]);
    let (status, row) = send(cw(&sim, Method::PATCH, &path).json(&patch)).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(
        (&row["closedFlag"], &row["closedDate"]),
        (&json!(false), &Value::Null)
    );
    assert_eq!(
        row["owner"],
        json!({"id": member.id, "identifier": member.identifier})
    );
    let patch = json!([{"op": "replace", "path": "/owner/id", "value": null}]);
    let (_, row) = send(cw(&sim, Method::PATCH, &path).json(&patch)).await;
    assert_eq!(row["owner"], Value::Null);
}

#[tokio::test]
async fn a_stale_test_is_refused_with_409_and_changes_nothing() {
    let sim = sim_with(small()).await;
    let t = sim.tickets()[10].clone();
    let path = format!("/service/tickets/{}", t.id);
    let (_, read) = send(cw(&sim, Method::GET, &path)).await;

    // A technician edits the ticket after the client read it.
    let edited = sim.technician_edit("connectwise", t.id, "/summary", json!("Edited by a person"));
    assert_ne!(token(&edited), token(&read));
    let patch = json!([
        {"op": "test", "path": "/_info/lastUpdated", "value": token(&read)},
        {"op": "replace", "path": "/summary", "value": "Overwritten"},
    ]);
    let (status, body) = send(cw(&sim, Method::PATCH, &path).json(&patch)).await;
    assert_eq!((status, &body["code"]), (409, &json!("Conflict")), "{body}");
    assert_eq!(body["errors"][0]["field"], "_info/lastUpdated");
    assert_eq!(sim.ticket_row("connectwise", t.id), Some(edited.clone()));
    let w = sim.writes().pop().expect("logged");
    assert_eq!(
        (w.status, w.fields[0].after.clone()),
        (409, json!("Overwritten"))
    );
    assert!(w
        .error
        .is_some_and(|e| e.contains("modified since it was read")));
    let edits = sim.technician_edits();
    assert_eq!(edits.len(), 1);
    assert_eq!(
        (edits[0].field.as_str(), &edits[0].token),
        ("summary", &token(&edited))
    );

    // With the current token it goes through.
    let patch = json!([
        {"op": "test", "path": "/_info/lastUpdated", "value": token(&edited)},
        {"op": "replace", "path": "/summary", "value": "Overwritten"},
    ]);
    assert_eq!(
        send(cw(&sim, Method::PATCH, &path).json(&patch)).await.0,
        200
    );
}

#[tokio::test]
async fn invalid_patches_are_400_unknown_tickets_404() {
    let sim = sim_with(small()).await;
    let t = sim.tickets()[20].clone();
    let path = format!("/service/tickets/{}", t.id);
    let op = |path: &str, value: Value| json!([{"op": "replace", "path": path, "value": value}]);
    for (body, field) in [
        (op("/noSuchField", json!(1)), "noSuchField"),
        (op("/priority/id", json!("high")), "priority/id"),
        (op("/priority/id", json!(99)), "priority/id"),
        (op("/summary", Value::Null), "summary"),
        (
            op("/_info/lastUpdated", json!("2020-01-01T00:00:00Z")),
            "_info/lastUpdated",
        ),
        (op("/requiredDate", json!("soon")), "requiredDate"),
        (json!([{"op": "remove", "path": "/summary"}]), "op"),
        (json!([{"op": "test", "path": "/nope", "value": 1}]), "nope"),
        (json!({"summary": "not a patch"}), "body"),
    ] {
        let (status, err) = send(cw(&sim, Method::PATCH, &path).json(&body)).await;
        assert_eq!(
            (status, &err["code"]),
            (400, &json!("InvalidObject")),
            "{body}: {err}"
        );
        assert_eq!(err["errors"][0]["field"], field, "{body}: {err}");
    }
    assert_eq!(
        sim.ticket_row("connectwise", t.id),
        Some(SimHandle::cw_json(&t))
    );
    let (status, err) =
        send(cw(&sim, Method::PATCH, "/service/tickets/999999").json(&op("/summary", json!("x"))))
            .await;
    assert_eq!((status, &err["code"]), (404, &json!("NotFound")));
    assert!(sim.writes().iter().all(|w| w.status >= 400));
    assert_eq!(sim.writes().len(), 10);

    // Without credentials the guard answers, before the write logic.
    let resp = client()
        .patch(format!("{}{path}", sim.cw_api_url()))
        .json(&op("/summary", json!("x")))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    assert_eq!(sim.writes().len(), 10);
}

#[tokio::test]
async fn notes_are_added_listed_and_deleted_without_moving_the_token() {
    let sim = sim_with(small()).await;
    let t = sim.tickets()[30].clone();
    let notes = format!("/service/tickets/{}/notes", t.id);
    let body = json!({"text": "Checked by the backfill", "internalAnalysisFlag": true, "detailDescriptionFlag": false});
    let (status, note) = send(cw(&sim, Method::POST, &notes).json(&body)).await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(
        (&note["ticketId"], &note["text"]),
        (&json!(t.id), &json!("Checked by the backfill"))
    );
    assert_eq!(note["internalAnalysisFlag"], true);
    assert!(note["id"].as_u64().is_some() && note["dateCreated"].is_string());
    assert_eq!(
        sim.ticket_row("connectwise", t.id),
        Some(SimHandle::cw_json(&t)),
        "notes leave the row alone"
    );
    let (status, list) = send(cw(&sim, Method::GET, &notes)).await;
    assert_eq!((status, list.clone()), (200, json!([note.clone()])));
    assert_eq!(sim.notes("connectwise", t.id), vec![note.clone()]);
    let other = sim.tickets()[31].id;
    assert!(sim.notes("connectwise", other).is_empty());

    let one = format!("{notes}/{}", note["id"]);
    let resp = cw(&sim, Method::DELETE, &one).send().await.expect("send");
    assert_eq!(resp.status(), 204);
    assert_eq!(send(cw(&sim, Method::DELETE, &one)).await.0, 404);
    assert_eq!(send(cw(&sim, Method::GET, &notes)).await.1, json!([]));

    assert_eq!(
        send(cw(&sim, Method::POST, &notes).json(&json!({"internalAnalysisFlag": true})))
            .await
            .0,
        400
    );
    assert_eq!(
        send(cw(&sim, Method::POST, &notes).json(&json!({"text": "x", "colour": 1})))
            .await
            .0,
        400
    );
    let missing = "/service/tickets/999999/notes";
    assert_eq!(
        send(cw(&sim, Method::POST, missing).json(&body)).await.0,
        404
    );
    assert_eq!(send(cw(&sim, Method::GET, missing)).await.0, 404);
    let kinds: Vec<(WriteKind, u16)> = sim.writes().iter().map(|w| (w.kind, w.status)).collect();
    assert_eq!(
        kinds,
        [
            (WriteKind::Note, 201),
            (WriteKind::DeleteNote, 204),
            (WriteKind::DeleteNote, 404),
            (WriteKind::Note, 400),
            (WriteKind::Note, 400),
            (WriteKind::Note, 404),
        ]
    );
    let w = &sim.writes()[1];
    assert_eq!(
        (&w.fields[0].before, &w.fields[0].after, w.note_id),
        (&note, &Value::Null, note["id"].as_u64())
    );
}
