//! HaloPSA writes: `POST /api/tickets` with an array holding the id and the fields (Halo's
//! update), notes as actions (`POST /api/actions`, removed with `DELETE /api/actions/{id}`).

use serde_json::{json, Map, Value};

use super::{created_id, NoteRef};
use crate::halo::HaloClient;
use crate::http::{self, PsaError};

impl HaloClient {
    /// Sends the request `make` builds with a bearer token ([`HaloClient::with_token`]): a
    /// read of one record (`write` `None`) or a write (`Some(idempotent)`).
    async fn authed(
        &self,
        what: &str,
        write: Option<bool>,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, PsaError> {
        let wait = Some(self.policy.halo_throttle_wait);
        let make = &make;
        self.with_token(|token| async move {
            match write {
                None => {
                    http::read_record(&self.http, &self.policy, what, wait, || make(&token)).await
                }
                Some(idempotent) => {
                    let w = http::Write {
                        idempotent,
                        throttle_fallback: wait,
                        server_errors_refuse: false,
                    };
                    http::write(&self.http, &self.policy, what, w, || make(&token)).await
                }
            }
        })
        .await
    }

    pub(crate) async fn read_ticket(&self, id: i64) -> Result<Value, PsaError> {
        let url = format!("{}/tickets/{id}", self.api);
        let what = "Halo ticket";
        let r = self
            .authed(what, None, |t| self.http.get(&url).bearer_auth(t))
            .await?;
        http::json(&self.policy, r, what).await
    }

    pub(crate) async fn post_ticket(
        &self,
        id: i64,
        changes: &[(String, Value)],
    ) -> Result<Value, PsaError> {
        let url = format!("{}/tickets", self.api);
        let mut row = Map::new();
        row.insert("id".into(), id.into());
        for (f, v) in changes {
            row.insert(f.clone(), v.clone());
        }
        let body = json!([row]);
        let what = "Halo ticket update";
        let r = self
            .authed(what, Some(true), |t| {
                self.http.post(&url).bearer_auth(t).json(&body)
            })
            .await?;
        match http::json(&self.policy, r, what).await? {
            Value::Array(mut rows) if !rows.is_empty() => Ok(rows.swap_remove(0)),
            row @ Value::Object(_) => Ok(row),
            _ => Err(PsaError::Protocol(format!(
                "{what}: an answer without the ticket"
            ))),
        }
    }

    pub(crate) async fn add_note(
        &self,
        id: i64,
        text: &str,
        internal: bool,
    ) -> Result<NoteRef, PsaError> {
        let url = format!("{}/actions", self.api);
        let body = json!([{"ticket_id": id, "note": text, "hiddenfromuser": internal,
                           "outcome": "Note"}]);
        let what = "Halo ticket note";
        let r = self
            .authed(what, Some(false), |t| {
                self.http.post(&url).bearer_auth(t).json(&body)
            })
            .await?;
        created_id(&http::json(&self.policy, r, what).await?, what)
    }

    pub(crate) async fn delete_note(&self, id: i64, note: &NoteRef) -> Result<(), PsaError> {
        let url = format!("{}/actions/{}", self.api, note.id);
        let what = "Halo ticket note removal";
        self.authed(what, Some(true), |t| {
            self.http
                .delete(&url)
                .bearer_auth(t)
                .query(&[("ticket_id", id.to_string())])
        })
        .await?;
        Ok(())
    }
}
