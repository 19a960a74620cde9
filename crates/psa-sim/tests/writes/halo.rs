//! HaloPSA: `POST /api/tickets` with the ids in the body, actions as notes.

use psa_sim::{SimHandle, WriteKind};
use reqwest::Method;
use serde_json::{json, Value};

use super::common::*;
use super::{halo, halo_token, send, small, ticket_where};

async fn list(sim: &SimHandle, token: &str, query: &[(&str, &str)]) -> Vec<u64> {
    let (status, body) = send(halo(sim, Method::GET, "/tickets", token).query(query)).await;
    assert_eq!(status, 200, "{body}");
    ids(&body["tickets"])
}

#[tokio::test]
async fn a_post_changes_the_rows_and_filters_see_it() {
    let sim = sim_with(small()).await;
    let token = halo_token(&sim).await;
    let open = ticket_where(&sim, |t| !t.status.closed);
    let closed = ticket_where(&sim, |t| t.status.id == 5);
    let board = sim.dataset().boards[1].clone();
    let body = json!([
        {"id": open.id, "status_id": 5, "summary": "Closed by the executor", "team": board.name,
         "last_update": SimHandle::halo_json(&open)["last_update"]},
        {"id": closed.id, "status_id": 1, "category_1": "Reopened"},
    ]);
    let (status, rows) = send(halo(&sim, Method::POST, "/tickets", &token).json(&body)).await;
    assert_eq!(status, 201, "{rows}");
    let (a, b) = (&rows[0], &rows[1]);
    assert_eq!(
        (&a["status_id"], &a["hasbeenclosed"], &a["team"]),
        (&json!(5), &json!(true), &json!(board.name))
    );
    assert_eq!(a["dateclosed"], a["last_update"]);
    assert!(a["last_update"].as_str() > SimHandle::halo_json(&open)["last_update"].as_str());
    assert_eq!(
        (&b["hasbeenclosed"], &b["dateclosed"]),
        (&json!(false), &Value::Null)
    );
    assert_eq!(b["category_1"], "Reopened");
    let (_, got) = send(halo(
        &sim,
        Method::GET,
        &format!("/tickets/{}", open.id),
        &token,
    ))
    .await;
    assert_eq!(&got, a);

    let closed_5 = list(&sim, &token, &[("status_id", "5"), ("closed_only", "true")]).await;
    assert!(closed_5.contains(&open.id) && !closed_5.contains(&closed.id));
    assert!(
        list(&sim, &token, &[("open_only", "true"), ("status_id", "1")])
            .await
            .contains(&closed.id)
    );
    let rows = sim.resource_rows("halopsa", "/tickets").expect("rows");
    assert!(rows.contains(a) && rows.contains(b));
    assert_eq!(
        sim.ticket_row("connectwise", open.id),
        Some(SimHandle::cw_json(&open))
    );
    let log = sim.writes();
    assert_eq!(
        log.iter()
            .map(|w| (w.ticket_id, w.status))
            .collect::<Vec<_>>(),
        [(open.id, 201), (closed.id, 201)]
    );
    assert_eq!(log[1].fields[0].before, json!(5));
}

#[tokio::test]
async fn a_stale_last_update_refuses_the_whole_batch_with_409() {
    let sim = sim_with(small()).await;
    let token = halo_token(&sim).await;
    let (t, u) = (sim.tickets()[14].clone(), sim.tickets()[15].clone());
    let read = SimHandle::halo_json(&u)["last_update"].clone();
    let edited = sim.technician_edit("halo", u.id, "agent_id", json!(null));
    assert_ne!(edited["last_update"], read);
    let body = json!([{"id": t.id, "summary": "first"}, {"id": u.id, "summary": "second", "last_update": read}]);
    let (status, err) = send(halo(&sim, Method::POST, "/tickets", &token).json(&body)).await;
    assert_eq!(status, 409, "{err}");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("last_update")),
        "{err}"
    );
    assert_eq!(
        sim.ticket_row("halo", t.id),
        Some(SimHandle::halo_json(&t)),
        "all or nothing"
    );
    assert_eq!(sim.ticket_row("halo", u.id), Some(edited.clone()));
    assert!(sim.writes().iter().all(|w| w.status == 409));
    let body = json!([{"id": u.id, "summary": "second", "last_update": edited["last_update"]}]);
    assert_eq!(
        send(halo(&sim, Method::POST, "/tickets", &token).json(&body))
            .await
            .0,
        201
    );
}

#[tokio::test]
async fn invalid_posts_are_400_unknown_tickets_404_and_auth_is_required() {
    let sim = sim_with(small()).await;
    let token = halo_token(&sim).await;
    let t = sim.tickets()[24].clone();
    for body in [
        json!([{"id": t.id, "noSuchField": 1}]),
        json!([{"id": t.id, "lastactiondate": "2020-01-01"}]),
        json!([{"id": t.id, "priority_id": "high"}]),
        json!([{"id": t.id, "team": "No Such Team"}]),
        json!([{"summary": "a new ticket"}]),
        json!("nope"),
    ] {
        let (status, err) = send(halo(&sim, Method::POST, "/tickets", &token).json(&body)).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert!(err["message"].is_string(), "{err}");
    }
    let body = json!([{"id": 999_999, "summary": "x"}]);
    assert_eq!(
        send(halo(&sim, Method::POST, "/tickets", &token).json(&body))
            .await
            .0,
        404
    );
    assert_eq!(sim.ticket_row("halo", t.id), Some(SimHandle::halo_json(&t)));
    assert_eq!(sim.writes().len(), 7);
    let body = json!([{"id": t.id, "summary": "x"}]);
    assert_eq!(
        send(halo(&sim, Method::POST, "/tickets", "bad-token").json(&body))
            .await
            .0,
        401
    );
    assert_eq!(sim.writes().len(), 7);
}

#[tokio::test]
async fn actions_are_added_listed_and_deleted() {
    let sim = sim_with(small()).await;
    let token = halo_token(&sim).await;
    let t = sim.tickets()[44].clone();
    let body = json!([{"ticket_id": t.id, "note": "Checked by the backfill", "hiddenfromuser": true, "outcome": "Note"}]);
    let (status, created) = send(halo(&sim, Method::POST, "/actions", &token).json(&body)).await;
    assert_eq!(status, 201, "{created}");
    let action = created[0].clone();
    assert_eq!(
        (&action["ticket_id"], &action["hiddenfromuser"]),
        (&json!(t.id), &json!(true))
    );
    let id = action["id"].as_u64().expect("id");
    assert_eq!(sim.ticket_row("halo", t.id), Some(SimHandle::halo_json(&t)));
    let query = [("ticket_id", t.id.to_string())];
    let (_, listed) = send(halo(&sim, Method::GET, "/actions", &token).query(&query)).await;
    assert_eq!(
        listed,
        json!({"record_count": 1, "actions": [action.clone()]})
    );
    assert_eq!(sim.notes("halo", t.id), vec![action]);

    let one = format!("/actions/{id}");
    assert_eq!(
        send(halo(&sim, Method::DELETE, &one, &token).query(&query))
            .await
            .0,
        200
    );
    assert_eq!(
        send(halo(&sim, Method::DELETE, &one, &token).query(&query))
            .await
            .0,
        404
    );
    let (_, listed) = send(halo(&sim, Method::GET, "/actions", &token).query(&query)).await;
    assert_eq!(listed["record_count"], 0);

    assert_eq!(
        send(halo(&sim, Method::GET, "/actions", &token)).await.0,
        400
    );
    let bad = json!([{"ticket_id": t.id}]);
    assert_eq!(
        send(halo(&sim, Method::POST, "/actions", &token).json(&bad))
            .await
            .0,
        400
    );
    let missing = json!([{"ticket_id": 999_999, "note": "x"}]);
    assert_eq!(
        send(halo(&sim, Method::POST, "/actions", &token).json(&missing))
            .await
            .0,
        404
    );
    let kinds: Vec<(WriteKind, u16)> = sim.writes().iter().map(|w| (w.kind, w.status)).collect();
    assert_eq!(
        kinds,
        [
            (WriteKind::Note, 201),
            (WriteKind::DeleteNote, 200),
            (WriteKind::DeleteNote, 404),
            (WriteKind::Note, 400),
            (WriteKind::Note, 404),
        ]
    );
}
