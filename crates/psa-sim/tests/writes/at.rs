//! Autotask: `PATCH /Tickets` with the id in the body, notes under `/Tickets/{id}/Notes`.

use psa_sim::{SimHandle, WriteKind};
use reqwest::Method;
use serde_json::{json, Value};

use super::common::*;
use super::{send, small, ticket_where};

async fn query(sim: &SimHandle, entity: &str, filter: Value) -> Vec<u64> {
    let (status, page) =
        send(at(sim, Method::POST, &format!("/{entity}/query")).json(&json!({ "filter": filter })))
            .await;
    assert_eq!(status, 200, "{page}");
    ids(&page["items"])
}

async fn count(sim: &SimHandle, filter: Value) -> u64 {
    let (_, body) =
        send(at(sim, Method::POST, "/Tickets/query/count").json(&json!({ "filter": filter })))
            .await;
    body["queryCount"].as_u64().expect("count")
}

async fn item(sim: &SimHandle, id: u64) -> Value {
    send(at(sim, Method::GET, &format!("/Tickets/{id}")))
        .await
        .1["item"]
        .clone()
}

#[tokio::test]
async fn a_patch_changes_the_row_and_filters_see_it() {
    let sim = sim_with(small()).await;
    let t = ticket_where(&sim, |t| t.priority.id != 1 && !t.status.closed);
    let read = item(&sim, t.id).await;
    let body = json!({
        "id": t.id, "Priority": 1, "title": "Written by the executor", "status": 5,
        "lastActivityDate": read["lastActivityDate"], "dueDateTime": "2027-01-02T03:04:05Z",
    });
    // Paths ignore case.
    let (status, answer) = send(at(&sim, Method::PATCH, "/tickets").json(&body)).await;
    assert_eq!((status, answer), (200, json!({ "itemId": t.id })));
    let row = item(&sim, t.id).await;
    assert_eq!((&row["priority"], &row["status"]), (&json!(1), &json!(5)));
    assert_eq!(row["dueDateTime"], "2027-01-02T03:04:05.000Z");
    assert!(
        row["lastActivityDate"].as_str() > read["lastActivityDate"].as_str(),
        "{row}"
    );
    assert_eq!(
        row["lastTrackedModificationDateTime"],
        row["lastActivityDate"]
    );
    assert_eq!(row["completedDate"], row["lastActivityDate"]);
    assert_eq!(sim.ticket_row("autotask", t.id), Some(row.clone()));

    let filter = json!([
        {"op": "eq", "field": "title", "value": "Written by the executor"},
        {"op": "eq", "field": "priority", "value": 1},
    ]);
    assert_eq!(query(&sim, "Tickets", filter.clone()).await, vec![t.id]);
    assert_eq!(count(&sim, filter).await, 1);
    let old = json!([{"op": "eq", "field": "id", "value": t.id}, {"op": "eq", "field": "priority", "value": t.priority.id}]);
    assert_eq!(count(&sim, old).await, 0);
    assert_eq!(
        sim.ticket_row("connectwise", t.id),
        Some(SimHandle::cw_json(&t))
    );

    let w = sim.writes().pop().expect("logged");
    assert_eq!(
        (w.psa.as_str(), w.ticket_id, w.kind, w.status),
        ("autotask", t.id, WriteKind::Update, 200)
    );
    let priority = w
        .fields
        .iter()
        .find(|f| f.field == "priority")
        .expect("priority");
    assert_eq!(
        (&priority.before, &priority.after),
        (&json!(t.priority.id), &json!(1))
    );
}

#[tokio::test]
async fn a_stale_last_activity_date_is_409_and_changes_nothing() {
    let sim = sim_with(small()).await;
    let t = sim.tickets()[12].clone();
    let read = item(&sim, t.id).await;
    let edited = sim.technician_edit("autotask", t.id, "title", json!("Edited by a person"));
    let body =
        json!({"id": t.id, "title": "Overwritten", "lastActivityDate": read["lastActivityDate"]});
    let (status, err) = send(at(&sim, Method::PATCH, "/Tickets").json(&body)).await;
    assert_eq!(status, 409, "{err}");
    assert!(
        err["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("modified since it was read")),
        "{err}"
    );
    assert_eq!(item(&sim, t.id).await, edited);
    let body =
        json!({"id": t.id, "title": "Overwritten", "lastActivityDate": edited["lastActivityDate"]});
    assert_eq!(
        send(at(&sim, Method::PATCH, "/Tickets").json(&body))
            .await
            .0,
        200
    );
    let statuses: Vec<u16> = sim.writes().iter().map(|w| w.status).collect();
    assert_eq!(statuses, [409, 200]);
}

#[tokio::test]
async fn validation_errors_are_500_unknown_tickets_404() {
    let sim = sim_with(small()).await;
    let t = sim.tickets()[22].clone();
    for body in [
        json!({"id": t.id, "noSuchField": 1}),
        json!({"id": t.id, "ticketNumber": "T1"}),
        json!({"id": t.id, "priority": "high"}),
        json!({"id": t.id, "queueID": 999_999}),
        json!({"id": t.id, "assignedResourceID": -3}),
        json!({"title": "no id"}),
        json!([1, 2]),
    ] {
        let (status, err) = send(at(&sim, Method::PATCH, "/Tickets").json(&body)).await;
        assert_eq!(status, 500, "{body}: {err}");
        assert!(err["errors"][0].is_string(), "{err}");
    }
    assert_eq!(
        sim.ticket_row("autotask", t.id),
        Some(SimHandle::at_json(&t))
    );
    let (status, err) =
        send(at(&sim, Method::PATCH, "/Tickets").json(&json!({"id": 999_999, "title": "x"}))).await;
    assert_eq!((status, err["errors"].is_array()), (404, true));
    assert_eq!(sim.writes().len(), 8);
    // Unassigning is a null (or 0).
    let body = json!({"id": t.id, "assignedResourceID": 0});
    assert_eq!(
        send(at(&sim, Method::PATCH, "/Tickets").json(&body))
            .await
            .0,
        200
    );
    assert_eq!(item(&sim, t.id).await["assignedResourceID"], Value::Null);
}

#[tokio::test]
async fn notes_are_added_and_listed_but_not_deleted() {
    let sim = sim_with(small()).await;
    let t = sim.tickets()[40].clone();
    let notes = format!("/Tickets/{}/Notes", t.id);
    let seeded = sim.notes("autotask", t.id);
    let body = json!({"title": "Backfill", "description": "Checked by the backfill", "noteType": 1, "publish": 1});
    let (status, answer) = send(at(&sim, Method::POST, &notes).json(&body)).await;
    assert_eq!(status, 200, "{answer}");
    let note_id = answer["itemId"].as_u64().expect("itemId");
    assert_eq!(
        sim.ticket_row("autotask", t.id),
        Some(SimHandle::at_json(&t)),
        "notes leave the row alone"
    );

    let (_, list) = send(at(&sim, Method::GET, &notes.to_lowercase())).await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), seeded.len() + 1);
    let note = items.last().expect("the new note");
    assert_eq!(
        (&note["id"], &note["ticketID"]),
        (&json!(note_id), &json!(t.id))
    );
    assert_eq!(note["description"], "Checked by the backfill");
    assert_eq!(&sim.notes("autotask", t.id)[seeded.len()], note);
    // The TicketNotes entity has it too: query, get.
    let filter = json!([{"op": "eq", "field": "ticketID", "value": t.id}]);
    assert!(query(&sim, "TicketNotes", filter).await.contains(&note_id));
    let (_, got) = send(at(&sim, Method::GET, &format!("/TicketNotes/{note_id}"))).await;
    assert_eq!(&got["item"], note);

    for path in [format!("{notes}/{note_id}"), notes.clone()] {
        let (status, err) = send(at(&sim, Method::DELETE, &path)).await;
        assert_eq!(status, 405, "{err}");
        assert!(err["errors"][0].is_string());
    }
    assert_eq!(sim.notes("autotask", t.id).len(), seeded.len() + 1);
    for bad in [
        json!({"title": "no description", "noteType": 1, "publish": 1}),
        json!({"description": "x", "noteType": 1, "publish": 1, "colour": 2}),
    ] {
        assert_eq!(send(at(&sim, Method::POST, &notes).json(&bad)).await.0, 500);
    }
    assert_eq!(
        send(at(&sim, Method::POST, "/Tickets/999999/Notes").json(&body))
            .await
            .0,
        404
    );
    let kinds: Vec<(WriteKind, u16, Option<u64>)> = sim
        .writes()
        .iter()
        .map(|w| (w.kind, w.status, w.note_id))
        .collect();
    assert_eq!(
        kinds,
        [
            (WriteKind::Note, 200, Some(note_id)),
            (WriteKind::DeleteNote, 405, Some(note_id)),
            (WriteKind::DeleteNote, 405, None),
            (WriteKind::Note, 500, None),
            (WriteKind::Note, 500, None),
            (WriteKind::Note, 404, None),
        ]
    );
}
