//! HaloPSA connector (docs/psa.md §3, §6.6): authorisation-server discovery (`GET {url}/api/authinfo`), OAuth2 client
//! credentials (`POST {auth_url}/token[?tenant=]`, refreshed before it expires and once more on a 401), counts
//! (`record_count` of a `page_size=1` query) and offset paging (`pageinate=true&page_size=100&order=id&page_no=K`)
//! with the compiler's allowlisted parameters only.
//!
//! Halo has no keyset paging, so [`HaloClient::page_from`] enumerates by `page_no` over ascending ids and resumes
//! from a cursor `(last_id, page_no)` (persisted as the checkpoint `{"last_id","page_no"}`): the last page read
//! is read again (one page back) before the pages after it, and every id `<= last_id` is dropped. Rows are then neither repeated nor skipped when, between two
//! reads, fewer than a page of rows at or below `last_id` stop matching (deleted, closed under `open_only`, …),
//! or any number start matching. **Residual drift risk:** if a page or more of such rows disappears between two
//! reads, the offsets move past rows not yet read and those rows are skipped; a row with an id below `last_id`
//! that starts matching is not picked up (it is behind the cursor, as with keyset paging).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use crate::compile::{HaloList, HaloQuery};
use crate::http::{self, HttpPolicy, PsaError};
use neo_egress::Egress;

/// Rows per page (`page_size`).
pub const PAGE_SIZE: u32 = 100;
/// Pages read after the step-back page in one [`HaloClient::page_from`] call.
pub const FORWARD_PAGES: u32 = 4;

#[derive(Debug, Clone)]
pub struct HaloConfig {
    /// The instance root, `https://acme.halopsa.com` (resources under `{url}/api`).
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
}

/// Where a Halo enumeration stands: `last_id` is the largest id returned so far, and `page_no` the last
/// non-empty page read (0 before the first page); every row after `last_id` lies on `page_no` or later unless
/// rows before it disappeared since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HaloCursor {
    pub last_id: i64,
    pub page_no: u32,
}

/// What [`HaloClient::page_from`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct HaloPage {
    /// Rows with `id > last_id`, ascending.
    pub rows: Vec<Value>,
    /// The cursor after these rows (unchanged when there were none).
    pub next: HaloCursor,
    /// True when the last page read was the final one.
    pub exhausted: bool,
}

struct Token {
    value: String,
    /// Refresh from this instant on.
    refresh_at: Instant,
}

#[derive(Clone)]
pub struct HaloClient {
    pub(crate) http: Egress,
    pub(crate) policy: HttpPolicy,
    /// `{url}/api`
    pub(crate) api: String,
    /// `{auth_url}/token[?tenant=…]`
    token_url: String,
    cfg: HaloConfig,
    token: Arc<Mutex<Option<Token>>>,
}

impl std::fmt::Debug for HaloClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaloClient")
            .field("api", &self.api)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl HaloClient {
    /// Discovers the authorisation server and fetches a token (so bad credentials fail here).
    pub async fn connect(
        cfg: &HaloConfig,
        http: Egress,
        policy: HttpPolicy,
    ) -> Result<Self, PsaError> {
        let base = cfg.url.trim_end_matches('/').to_owned();
        let api = format!("{base}/api");
        let info_url = format!("{api}/authinfo");
        let fallback = Some(policy.halo_throttle_wait);
        let info = match http::read_with(&http, &policy, "Halo authinfo", fallback, || {
            http.get(&info_url)
        })
        .await
        {
            Ok(r) => http::json(&policy, r, "Halo authinfo").await?,
            // Older instances have no authinfo: the token endpoint is then `{url}/auth/token`.
            Err(PsaError::Rejected(_)) => Value::Null,
            Err(e) => return Err(e),
        };
        let auth_url = info
            .get("auth_url")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map_or_else(
                || format!("{base}/auth"),
                |s| s.trim_end_matches('/').to_owned(),
            );
        let mut token_url = format!("{auth_url}/token");
        if let Some(tenant) = info
            .get("tenant_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("tenant", tenant)
                .finish();
            token_url = format!("{token_url}?{q}");
        }
        let client = Self {
            http,
            policy,
            api,
            token_url,
            cfg: cfg.clone(),
            token: Arc::new(Mutex::new(None)),
        };
        client.bearer(false).await?;
        Ok(client)
    }

    /// The current access token, fetching a new one when there is none, it is due for refresh, or `force`.
    pub(crate) async fn bearer(&self, force: bool) -> Result<String, PsaError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref() {
            if !force && Instant::now() < t.refresh_at {
                return Ok(t.value.clone());
            }
        }
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.cfg.client_id)
            .append_pair("client_secret", &self.cfg.client_secret)
            .append_pair("scope", "all")
            .finish();
        let r = http::read_with(
            &self.http,
            &self.policy,
            "Halo token",
            Some(self.policy.halo_throttle_wait),
            || {
                self.http
                    .post(&self.token_url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
            },
        )
        .await
        .map_err(|e| match e {
            // OAuth servers answer a bad client with 400 or 401.
            PsaError::Rejected(m) => PsaError::Auth(m),
            e => e,
        })?;
        let v = http::json(&self.policy, r, "Halo token").await?;
        let value = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| PsaError::Protocol("Halo token: an answer without access_token".into()))?
            .to_owned();
        let ttl = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        // Refresh a minute early (half-way for short-lived tokens).
        let early = Duration::from_secs(ttl.min(120) / 2);
        let refresh_at = Instant::now() + Duration::from_secs(ttl).saturating_sub(early);
        *slot = Some(Token {
            value: value.clone(),
            refresh_at,
        });
        Ok(value)
    }

    /// Sends what `send` builds with the current token; a 401 refreshes the token and sends
    /// once more. Every Halo call goes through here.
    pub(crate) async fn with_token<F, Fut>(&self, send: F) -> Result<reqwest::Response, PsaError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<reqwest::Response, PsaError>>,
    {
        let mut refreshed = false;
        loop {
            let token = self.bearer(refreshed).await?;
            match send(token).await {
                Err(PsaError::Auth(_)) if !refreshed => refreshed = true,
                r => return r,
            }
        }
    }

    /// `GET {api}{resource}` with the query.
    async fn get(
        &self,
        resource: &str,
        params: &[(String, String)],
        what: &str,
    ) -> Result<Value, PsaError> {
        let url = &format!("{}{resource}", self.api);
        let wait = Some(self.policy.halo_throttle_wait);
        let r = self
            .with_token(|token| async move {
                http::read_with(&self.http, &self.policy, what, wait, || {
                    self.http.get(url).bearer_auth(&token).query(params)
                })
                .await
            })
            .await?;
        http::json(&self.policy, r, what).await
    }

    fn params(q: &HaloQuery, page_size: u32, page_no: u32) -> Vec<(String, String)> {
        let mut p = q.params.clone();
        p.extend([
            ("pageinate".to_owned(), "true".to_owned()),
            ("page_size".to_owned(), page_size.to_string()),
            ("page_no".to_owned(), page_no.to_string()),
            ("order".to_owned(), "id".to_owned()),
        ]);
        p
    }

    /// One page: its rows and `record_count`. A resource that does not page answers every row
    /// at once, as a bare array: they are sorted by id here (one answer holds them all).
    async fn read_page(
        &self,
        resource: &str,
        list: HaloList,
        q: &HaloQuery,
        page_size: u32,
        page_no: u32,
    ) -> Result<(Vec<Value>, u64), PsaError> {
        let v = self
            .get(resource, &Self::params(q, page_size, page_no), "Halo page")
            .await?;
        let key = match list {
            HaloList::Paged(key) => key,
            HaloList::Bare => {
                let Value::Array(mut rows) = v else {
                    return Err(PsaError::Protocol(
                        "Halo list: an answer that is not an array".into(),
                    ));
                };
                rows.sort_by_key(|r| r.get("id").and_then(Value::as_i64));
                let n = rows.len() as u64;
                return Ok((rows, n));
            }
        };
        let count = v
            .get("record_count")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                PsaError::Protocol("Halo page: an answer without record_count".into())
            })?;
        match v.get(key) {
            Some(Value::Array(rows)) => Ok((rows.clone(), count)),
            Some(Value::Null) | None if count == 0 => Ok((Vec::new(), 0)),
            _ => Err(PsaError::Protocol(format!(
                "Halo page: an answer without {key}"
            ))),
        }
    }

    /// `record_count` of a `page_size=1` query.
    pub async fn count(
        &self,
        resource: &str,
        list: HaloList,
        q: &HaloQuery,
    ) -> Result<u64, PsaError> {
        Ok(self.read_page(resource, list, q, 1, 1).await?.1)
    }

    /// The rows after `after` (see the module doc): page `after.page_no` again, then up to
    /// [`FORWARD_PAGES`] more, keeping ids `> last_id`. Ids must ascend within each page. Costs up to
    /// `FORWARD_PAGES + 1` requests for `FORWARD_PAGES` pages of new rows.
    pub async fn page_from(
        &self,
        resource: &str,
        list: HaloList,
        q: &HaloQuery,
        after: HaloCursor,
        page_size: u32,
    ) -> Result<HaloPage, PsaError> {
        let page_size = page_size.max(1);
        let mut next = after;
        let mut rows = Vec::new();
        let first = after.page_no.max(1);
        let last = after.page_no + FORWARD_PAGES;
        let mut exhausted = false;
        for page_no in first..=last {
            let (page, total) = self
                .read_page(resource, list, q, page_size, page_no)
                .await?;
            let mut prev: Option<i64> = None;
            for r in page.iter() {
                let id = r
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| PsaError::Protocol("a row without a numeric id".into()))?;
                if prev.is_some_and(|p| id <= p) {
                    return Err(PsaError::Protocol(format!(
                        "ids out of order on page {page_no}: {id} after {}",
                        prev.unwrap_or_default()
                    )));
                }
                prev = Some(id);
                if id > next.last_id {
                    next.last_id = id;
                    rows.push(r.clone());
                }
            }
            // Past this page even when it held no new id (rows at or below `last_id` that started
            // matching push it later), so the cursor always moves.
            if !page.is_empty() {
                next.page_no = page_no;
            }
            if list == HaloList::Bare
                || (page.len() as u32) < page_size
                || u64::from(page_no) * u64::from(page_size) >= total
            {
                exhausted = true;
                break;
            }
        }
        Ok(HaloPage {
            rows,
            next,
            exhausted,
        })
    }
}
