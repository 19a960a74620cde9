//! Autotask REST connector: zone discovery, header auth, `query/count`, and keyset paging by
//! `id gt last_id` (a fresh query per page, so a crash or pause resumes exactly), within the
//! three-thread limit (docs/psa.md §2, §6.6).

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::compile::AtQuery;
use crate::http::{self, HttpPolicy, PsaError};
use neo_egress::Egress;

pub const PAGE_SIZE: u32 = 500;
/// Where the zone of an integration that names none is discovered.
pub const DEFAULT_DISCOVERY: &str = "https://webservices.autotask.net";

#[derive(Debug, Clone)]
pub struct AtConfig {
    /// The zone's REST base (`https://webservices5.autotask.net/ATServicesRest/`); discovered
    /// from the username when absent.
    pub zone_url: Option<String>,
    pub username: String,
    pub secret: String,
    pub integration_code: String,
}

#[derive(Clone)]
pub struct AtClient {
    pub(crate) http: Egress,
    pub(crate) policy: HttpPolicy,
    /// `{zone}V1.0`
    pub(crate) base: String,
    pub(crate) cfg: AtConfig,
    /// At most three concurrent requests per entity endpoint and integration code.
    pub(crate) threads: Arc<Semaphore>,
}

impl std::fmt::Debug for AtClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AtClient {
    pub async fn connect(
        cfg: &AtConfig,
        http: Egress,
        policy: HttpPolicy,
    ) -> Result<Self, PsaError> {
        let zone = match &cfg.zone_url {
            Some(z) => z.clone(),
            None => Self::discover(&http, &policy, DEFAULT_DISCOVERY, &cfg.username).await?,
        };
        let zone = if zone.ends_with('/') {
            zone
        } else {
            format!("{zone}/")
        };
        Ok(Self {
            http,
            policy,
            base: format!("{zone}V1.0"),
            cfg: cfg.clone(),
            threads: Arc::new(Semaphore::new(3)),
        })
    }

    /// `GET {host}/atservicesrest/v1.0/zoneInformation?user=` → the zone's REST base URL.
    pub async fn discover(
        http: &Egress,
        policy: &HttpPolicy,
        host: &str,
        user: &str,
    ) -> Result<String, PsaError> {
        let url = format!(
            "{}/atservicesrest/v1.0/zoneInformation",
            host.trim_end_matches('/')
        );
        let r = http::read(http, policy, "Autotask zone information", || {
            http.get(&url).query(&[("user", user)])
        })
        .await
        .map_err(|e| match e {
            PsaError::Unavailable(m) => {
                PsaError::Auth(format!("Autotask does not know the user: {m}"))
            }
            e => e,
        })?;
        let v = http::json(policy, r, "Autotask zone information").await?;
        v.get("url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                PsaError::Protocol("Autotask zone information: an answer without url".into())
            })
    }

    /// `r` with the credentials every request carries.
    pub(crate) fn with_auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        r.header("username", &self.cfg.username)
            .header("secret", &self.cfg.secret)
            .header("apiintegrationcode", &self.cfg.integration_code)
    }

    fn post(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        self.with_auth(self.http.post(url)).json(body)
    }

    fn filter(q: &AtQuery, after_id: Option<i64>) -> Vec<Value> {
        let mut f = q.filter.clone();
        match after_id {
            Some(a) => f.push(json!({"op": "gt", "field": "id", "value": a})),
            // Autotask needs at least one condition.
            None if f.is_empty() => f.push(json!({"op": "gte", "field": "id", "value": 0})),
            None => {}
        }
        f
    }

    pub async fn count(&self, entity: &str, q: &AtQuery) -> Result<u64, PsaError> {
        let _permit = self.threads.acquire().await.expect("semaphore open");
        let url = format!("{}/{entity}/query/count", self.base);
        let body = json!({"filter": Self::filter(q, None)});
        let v = http::json(
            &self.policy,
            http::read(&self.http, &self.policy, "Autotask count", || {
                self.post(&url, &body)
            })
            .await?,
            "Autotask count",
        )
        .await?;
        v.get("queryCount").and_then(Value::as_u64).ok_or_else(|| {
            PsaError::Protocol("Autotask count: an answer without queryCount".into())
        })
    }

    /// The rows with `id > after_id` in ascending id order, at most `page_size` (≤ 500).
    pub async fn page_after(
        &self,
        entity: &str,
        q: &AtQuery,
        after_id: i64,
        page_size: u32,
    ) -> Result<Vec<Value>, PsaError> {
        let _permit = self.threads.acquire().await.expect("semaphore open");
        let url = format!("{}/{entity}/query", self.base);
        let body = json!({"filter": Self::filter(q, Some(after_id)), "MaxRecords": page_size.min(PAGE_SIZE)});
        let v = http::json(
            &self.policy,
            http::read(&self.http, &self.policy, "Autotask page", || {
                self.post(&url, &body)
            })
            .await?,
            "Autotask page",
        )
        .await?;
        let mut rows = match v.get("items") {
            Some(Value::Array(a)) => a.clone(),
            _ => {
                return Err(PsaError::Protocol(
                    "Autotask page: an answer without items".into(),
                ))
            }
        };
        rows.sort_by_key(|r| r.get("id").and_then(Value::as_i64).unwrap_or(i64::MAX));
        Ok(rows)
    }
}
