//! Autotask writes: `PATCH /Tickets` with the id and the fields in the body, notes under
//! `/Tickets/{id}/Notes` (Autotask's API cannot delete them).

use serde_json::{json, Map, Value};

use super::{created_id, NoteRef};
use crate::autotask::AtClient;
use crate::http::{self, PsaError};

/// Longest note title Autotask takes.
const TITLE_CHARS: usize = 250;

impl AtClient {
    pub(crate) async fn read_ticket(&self, id: i64) -> Result<Value, PsaError> {
        let _permit = self.threads.acquire().await.expect("semaphore open");
        let url = format!("{}/Tickets/{id}", self.base);
        let what = "Autotask ticket";
        let r = http::read_record(&self.http, &self.policy, what, None, || {
            self.with_auth(self.http.get(&url))
        })
        .await?;
        let v = http::json(&self.policy, r, what).await?;
        match v.get("item") {
            Some(item @ Value::Object(_)) => Ok(item.clone()),
            _ => Err(PsaError::Rejected(format!(
                "{what}: the PSA has no ticket {id}"
            ))),
        }
    }

    pub(crate) async fn patch_ticket(
        &self,
        id: i64,
        changes: &[(String, Value)],
    ) -> Result<(), PsaError> {
        let _permit = self.threads.acquire().await.expect("semaphore open");
        let url = format!("{}/Tickets", self.base);
        let mut body = Map::new();
        body.insert("id".into(), id.into());
        for (f, v) in changes {
            body.insert(f.clone(), v.clone());
        }
        let body = Value::Object(body);
        let what = "Autotask ticket update";
        http::write(
            &self.http,
            &self.policy,
            what,
            http::Write {
                idempotent: true,
                server_errors_refuse: true,
                ..Default::default()
            },
            || self.with_auth(self.http.patch(&url)).json(&body),
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn add_note(
        &self,
        id: i64,
        text: &str,
        internal: bool,
    ) -> Result<NoteRef, PsaError> {
        let _permit = self.threads.acquire().await.expect("semaphore open");
        let url = format!("{}/Tickets/{id}/Notes", self.base);
        let title: String = text
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(TITLE_CHARS)
            .collect();
        // publish: 1 all Autotask users, 2 internal only (docs/psa.md §2).
        let body = json!({"title": title, "description": text, "noteType": 1,
                          "publish": if internal { 2 } else { 1 }});
        let what = "Autotask ticket note";
        let r = http::write(
            &self.http,
            &self.policy,
            what,
            http::Write {
                idempotent: false,
                server_errors_refuse: true,
                ..Default::default()
            },
            || self.with_auth(self.http.post(&url)).json(&body),
        )
        .await?;
        created_id(&http::json(&self.policy, r, what).await?, what)
    }
}
