//! ConnectWise PSA (Manage) REST connector: codebase discovery, Basic auth with `clientId`,
//! `/count`, and forward-only keyset paging by ascending id (docs/psa.md §1, §6.6).

use base64::Engine;
use serde_json::Value;

use crate::compile::CwQuery;
use crate::http::{self, HttpPolicy, PsaError};
use neo_egress::Egress;

/// Above this many characters of encoded query, use `POST …/search` instead of GET.
const MAX_QUERY_CHARS: usize = 1700;
pub const PAGE_SIZE: u32 = 1000;

#[derive(Debug, Clone)]
pub struct CwConfig {
    /// `https://api-na.myconnectwise.net` (scheme and host).
    pub site_url: String,
    pub company_id: String,
    pub public_key: String,
    pub private_key: String,
    pub client_id: String,
}

#[derive(Clone)]
pub struct CwClient {
    pub(crate) http: Egress,
    pub(crate) policy: HttpPolicy,
    /// `{site}/{codebase}apis/3.0`
    pub(crate) base: String,
    pub(crate) auth: String,
    pub(crate) client_id: String,
}

impl std::fmt::Debug for CwClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CwClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl CwClient {
    /// Discovers the codebase (`GET /login/companyinfo/{company}`) and builds the client.
    pub async fn connect(
        cfg: &CwConfig,
        http: Egress,
        policy: HttpPolicy,
    ) -> Result<Self, PsaError> {
        let site = cfg.site_url.trim_end_matches('/').to_owned();
        let url = format!("{site}/login/companyinfo/{}", cfg.company_id);
        let info = http::json(
            &policy,
            http::read(&http, &policy, "ConnectWise company info", || {
                http.get(&url)
            })
            .await?,
            "ConnectWise company info",
        )
        .await?;
        let codebase = info
            .get("Codebase")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                PsaError::Auth(format!(
                    "ConnectWise does not know the company {:?}",
                    cfg.company_id
                ))
            })?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}+{}:{}",
            cfg.company_id, cfg.public_key, cfg.private_key
        ));
        Ok(Self {
            http,
            policy,
            base: format!("{site}/{}apis/3.0", codebase.trim_start_matches('/')),
            auth: format!("Basic {token}"),
            client_id: cfg.client_id.clone(),
        })
    }

    /// `r` with the credentials and the API version every request carries.
    pub(crate) fn with_auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        r.header("authorization", &self.auth)
            .header("clientid", &self.client_id)
            .header(
                "accept",
                "application/vnd.connectwise.com+json; version=2025.1",
            )
    }

    pub(crate) fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.with_auth(self.http.get(url))
    }

    fn params(q: &CwQuery) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(c) = &q.conditions {
            p.push(("conditions", c.clone()));
        }
        if let Some(c) = &q.custom_field_conditions {
            p.push(("customFieldConditions", c.clone()));
        }
        p
    }

    /// `GET /{resource}/count` with the query.
    pub async fn count(&self, resource: &str, q: &CwQuery) -> Result<u64, PsaError> {
        let url = format!("{}{resource}/count", self.base);
        let params = Self::params(q);
        let r = http::read(&self.http, &self.policy, "ConnectWise count", || {
            self.get(&url).query(&params)
        })
        .await?;
        let v = http::json(&self.policy, r, "ConnectWise count").await?;
        v.get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| PsaError::Protocol("ConnectWise count: an answer without count".into()))
    }

    /// The rows with `id > after_id` in ascending id order, at most `page_size`.
    pub async fn page_after(
        &self,
        resource: &str,
        q: &CwQuery,
        after_id: i64,
        page_size: u32,
    ) -> Result<Vec<Value>, PsaError> {
        let mut params = Self::params(q);
        if let Some(f) = &q.fields {
            params.push(("fields", f.clone()));
        }
        let encoded: usize = params.iter().map(|(_, v)| v.len() * 3).sum();
        let r = if encoded <= MAX_QUERY_CHARS {
            let url = format!("{}{resource}", self.base);
            http::read(&self.http, &self.policy, "ConnectWise page", || {
                self.get(&url)
                    .header("pagination-type", "forward-only")
                    .query(&params)
                    .query(&[
                        ("pageSize", page_size.to_string()),
                        ("pageId", after_id.to_string()),
                    ])
            })
            .await?
        } else {
            // Long filters: POST /search with the keyset bound in the conditions.
            let url = format!("{}{resource}/search", self.base);
            let conditions = match &q.conditions {
                Some(c) => format!("({c}) and id > {after_id}"),
                None => format!("id > {after_id}"),
            };
            let body = serde_json::json!({
                "conditions": conditions,
                "customFieldConditions": q.custom_field_conditions.clone().unwrap_or_default(),
                "orderBy": "id asc",
            });
            http::read(&self.http, &self.policy, "ConnectWise search", || {
                self.with_auth(self.http.post(&url))
                    .query(&[
                        ("page", "1".to_string()),
                        ("pageSize", page_size.to_string()),
                    ])
                    .query(&[("fields", q.fields.as_deref())])
                    .json(&body)
            })
            .await?
        };
        match http::json(&self.policy, r, "ConnectWise page").await? {
            Value::Array(rows) => Ok(rows),
            _ => Err(PsaError::Protocol(
                "ConnectWise page: an answer that is not an array".into(),
            )),
        }
    }
}
