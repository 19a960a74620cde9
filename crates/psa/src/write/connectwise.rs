//! ConnectWise writes: `PATCH /service/tickets/{id}` with a JSON Patch of `replace` operations
//! (paths as in the row, `/priority/id`), notes under `/service/tickets/{id}/notes`.

use serde_json::{json, Value};

use super::{created_id, NoteRef};
use crate::connectwise::CwClient;
use crate::http::{self, PsaError};

impl CwClient {
    pub(crate) async fn read_ticket(&self, id: i64) -> Result<Value, PsaError> {
        let url = format!("{}/service/tickets/{id}", self.base);
        let what = "ConnectWise ticket";
        let r = http::read_record(&self.http, &self.policy, what, None, || self.get(&url)).await?;
        http::json(&self.policy, r, what).await
    }

    pub(crate) async fn patch_ticket(
        &self,
        id: i64,
        changes: &[(String, Value)],
    ) -> Result<Value, PsaError> {
        let url = format!("{}/service/tickets/{id}", self.base);
        let ops: Vec<Value> = changes
            .iter()
            .map(|(f, v)| json!({"op": "replace", "path": format!("/{f}"), "value": v}))
            .collect();
        let body = Value::Array(ops);
        let what = "ConnectWise ticket update";
        let r = http::write(
            &self.http,
            &self.policy,
            what,
            http::Write {
                idempotent: true,
                ..Default::default()
            },
            || self.with_auth(self.http.patch(&url)).json(&body),
        )
        .await?;
        http::json(&self.policy, r, what).await
    }

    pub(crate) async fn add_note(
        &self,
        id: i64,
        text: &str,
        internal: bool,
    ) -> Result<NoteRef, PsaError> {
        let url = format!("{}/service/tickets/{id}/notes", self.base);
        let body = json!({"text": text, "internalAnalysisFlag": internal,
                          "detailDescriptionFlag": !internal});
        let what = "ConnectWise ticket note";
        let r = http::write(
            &self.http,
            &self.policy,
            what,
            http::Write {
                idempotent: false,
                ..Default::default()
            },
            || self.with_auth(self.http.post(&url)).json(&body),
        )
        .await?;
        created_id(&http::json(&self.policy, r, what).await?, what)
    }

    pub(crate) async fn delete_note(&self, id: i64, note: &NoteRef) -> Result<(), PsaError> {
        let url = format!("{}/service/tickets/{id}/notes/{}", self.base, note.id);
        let what = "ConnectWise ticket note removal";
        http::write(
            &self.http,
            &self.policy,
            what,
            http::Write {
                idempotent: true,
                ..Default::default()
            },
            || self.with_auth(self.http.delete(&url)),
        )
        .await?;
        Ok(())
    }
}
