//! The connectors' writes against psa-sim over real HTTP, per PSA: an update lands and reads
//! back, a record a technician edited after it was read is refused as a conflict (and keeps the
//! technician's value), notes are added and removed where the PSA can, and a refused write is
//! not retried.

mod common;

use common::connect;
use neo_domain::backfill::EntityType;
use neo_psa::http::PsaError;
use neo_psa::write::token_path;
use neo_psa::Psa;
use psa_sim::{SimConfig, SimHandle};
use serde_json::{json, Value};

async fn sim() -> SimHandle {
    psa_sim::spawn(SimConfig {
        tickets: 50,
        ..Default::default()
    })
    .await
    .expect("simulator starts")
}

/// (priority field, title field) of a ticket on `psa`.
fn fields(psa: Psa) -> (&'static str, &'static str) {
    match psa {
        Psa::ConnectWise => ("priority/id", "summary"),
        Psa::Autotask => ("priority", "title"),
        Psa::Halo => ("priority_id", "summary"),
    }
}

fn at<'a>(row: &'a Value, psa: Psa, path: &str) -> &'a Value {
    neo_psa::compile::eval::field(row, psa, path).unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_land_conflicts_are_refused_and_notes_come_and_go() {
    let sim = sim().await;
    let priorities: Vec<u64> = sim.dataset().priorities.iter().map(|p| p.id).collect();
    for psa in Psa::ALL {
        let client = connect(&sim, psa).await;
        let (priority, title) = fields(psa);
        let id = sim.tickets()[7].id as i64;
        let read = client.read_record(EntityType::Ticket, id).await.unwrap();
        assert_eq!(read["id"], json!(id), "{}", psa.as_str());
        let current = at(&read, psa, priority).as_u64().unwrap();
        let target = *priorities.iter().find(|p| **p != current).unwrap();
        let changes = vec![
            (priority.to_owned(), json!(target)),
            (title.to_owned(), json!("Re-prioritised by a backfill")),
        ];
        let after = client
            .update_record(EntityType::Ticket, id, &read, &changes)
            .await
            .unwrap();
        let here = psa.as_str();
        assert_eq!(at(&after, psa, priority), &json!(target), "{here}: {after}");
        assert_eq!(
            at(&after, psa, title),
            "Re-prioritised by a backfill",
            "{here}"
        );
        // The simulator's own view agrees, and its write log has the one update.
        let row = sim.ticket_row(psa.as_str(), id as u64).unwrap();
        assert_eq!(at(&row, psa, priority), &json!(target), "{here}");
        assert_ne!(
            at(&row, psa, token_path(psa)),
            at(&read, psa, token_path(psa)),
            "{here}: the write moved the concurrency token"
        );

        // A technician edits it; a write planned on the earlier read is refused.
        sim.technician_edit(psa.as_str(), id as u64, title, json!("Edited by a person"));
        let stale = client
            .update_record(EntityType::Ticket, id, &after, &changes[..1])
            .await;
        assert!(
            matches!(stale, Err(PsaError::Moved(_))),
            "{here}: {stale:?}"
        );
        let row = sim.ticket_row(psa.as_str(), id as u64).unwrap();
        assert_eq!(at(&row, psa, title), "Edited by a person", "{here}");

        // A field the PSA refuses: Rejected, sent once.
        let fresh = client.read_record(EntityType::Ticket, id).await.unwrap();
        let before = sim.writes().len();
        let bad = client
            .update_record(
                EntityType::Ticket,
                id,
                &fresh,
                &[("noSuchField".to_owned(), json!(1))],
            )
            .await;
        assert!(matches!(bad, Err(PsaError::Rejected(_))), "{here}: {bad:?}");
        assert_eq!(sim.writes().len(), before + 1, "{here}: not retried");

        // Notes.
        let note = client
            .add_note(EntityType::Ticket, id, "Checked by the backfill", true)
            .await
            .unwrap();
        let notes = sim.notes(psa.as_str(), id as u64);
        assert!(
            notes
                .iter()
                .any(|n| n.to_string().contains("Checked by the backfill")),
            "{here}: {notes:?}"
        );
        let removed = client.delete_note(EntityType::Ticket, id, &note).await;
        match psa {
            Psa::Autotask => assert!(matches!(removed, Err(PsaError::Rejected(_)))),
            _ => {
                removed.unwrap();
                assert!(
                    !sim.notes(psa.as_str(), id as u64)
                        .iter()
                        .any(|n| n.to_string().contains("Checked by the backfill")),
                    "{here}: the note is gone"
                );
            }
        }
        // Other entity types are not written yet.
        assert!(client.read_record(EntityType::Company, 1).await.is_err());
    }
}
