//! One facade over the connectors: connect from a tenant's integration, count a filter,
//! read a page of matching rows by ascending id from a [`Cursor`].
//!
//! Integration settings read here (`config` as stored, `secrets` write-only):
//! - `connectwise`: config `site_url`, `company_id`, `public_key`; secrets `private_key`, `client_id`.
//! - `autotask`: config `username`, optional `zone_url` (else discovered), optional
//!   `complete_status_ids` (a non-empty array of integers: the ticket statuses `$closed` counts as
//!   complete, default [`DEFAULT_COMPLETE_STATUS_IDS`]); secrets `secret`, `integration_code`.
//! - `halopsa`: config `url` (the instance root), `client_id`; secret `client_secret`.

use jiff::Timestamp;
use neo_domain::backfill::EntityType;
use neo_domain::filter::Group;
use serde_json::Value;

use crate::autotask::{AtClient, AtConfig};
use crate::compile::{self, Catalogue, CompileError};
use crate::connectwise::{CwClient, CwConfig};
use crate::halo::{HaloClient, HaloConfig, HaloCursor};
use crate::http::{HttpPolicy, PsaError};
use crate::Psa;

/// Autotask status ids that mean "complete" (`$closed`), unless the integration's
/// `complete_status_ids` says otherwise.
pub const DEFAULT_COMPLETE_STATUS_IDS: &[i64] = &[5];

/// Most entries of `complete_status_ids`.
pub const MAX_COMPLETE_STATUS_IDS: usize = 100;

#[derive(Debug, Clone)]
pub enum PsaClient {
    ConnectWise(CwClient),
    Autotask {
        client: AtClient,
        complete_status_ids: Vec<i64>,
    },
    Halo(HaloClient),
}

/// Where an enumeration stands, persisted as the backfill's snapshot checkpoint after every page.
/// ConnectWise and Autotask resume by keyset (`id > last_id`): `{"last_id": N}`. Halo has only
/// offset paging and also keeps the last page read: `{"last_id": N, "page_no": K}` (see
/// [`crate::halo`] for the step-back and its drift risk).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The largest id the PSA returned so far (0 before the first page).
    pub last_id: i64,
    /// Halo: the last non-empty `page_no` read (the next call reads it again first).
    pub page_no: Option<u32>,
}

impl Cursor {
    /// Reads a persisted checkpoint; a missing or malformed one starts from the beginning.
    pub fn from_checkpoint(v: Option<&Value>) -> Self {
        let Some(v) = v else {
            return Self::default();
        };
        Self {
            last_id: v.get("last_id").and_then(Value::as_i64).unwrap_or(0),
            page_no: v
                .get("page_no")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok()),
        }
    }

    /// The checkpoint to persist.
    pub fn to_checkpoint(&self) -> Value {
        match self.page_no {
            Some(p) => serde_json::json!({ "last_id": self.last_id, "page_no": p }),
            None => serde_json::json!({ "last_id": self.last_id }),
        }
    }
}

/// A count: exact when the whole filter ran in the PSA, else an upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub count: u64,
    pub exact: bool,
}

/// One page of an enumeration.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Rows of the page that match the whole filter (native query and residual).
    pub rows: Vec<Row>,
    /// Where the next page starts (past every row the PSA returned, matching or not); `None`
    /// when the PSA returned no new row (keep the previous checkpoint).
    pub next: Option<Cursor>,
    /// True when the PSA has no rows after this page.
    pub exhausted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: i64,
    /// The human-facing number (Autotask `ticketNumber`), if the PSA has one.
    pub number: Option<String>,
    /// What an operator knows it by ([`row_summary`]).
    pub summary: Option<String>,
    pub created: Option<Timestamp>,
    /// The company (the MSP's client) it belongs to: its `$company` id, where the entity has one.
    pub company: Option<String>,
}

fn compile_error(e: CompileError) -> PsaError {
    PsaError::Rejected(e.to_string())
}

fn str_field(v: &Value, k: &str) -> Result<String, PsaError> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| PsaError::Auth(format!("the integration has no {k}")))
}

/// Where `entity` is listed on `psa` and its compile table: the support matrix's endpoint,
/// where filters on it are supported (a top-level list with a table).
fn resource(psa: Psa, entity: EntityType) -> Result<(&'static str, &'static Catalogue), PsaError> {
    let p = crate::support::pair(psa, entity);
    match (p.endpoint, compile::table(psa, entity)) {
        (Some(e), Some(cat)) if p.level == crate::support::Level::Filters => Ok((e, cat)),
        _ => Err(PsaError::Rejected(format!(
            "filters on {} entities of {} are not supported",
            entity,
            psa.as_str()
        ))),
    }
}

impl PsaClient {
    /// Connects with a tenant's integration (`config` and write-only `secrets` as stored).
    pub async fn connect(
        psa: &str,
        config: &Value,
        secrets: &Value,
        http: neo_egress::Egress,
        policy: HttpPolicy,
    ) -> Result<Self, PsaError> {
        match Psa::parse(psa) {
            Some(Psa::ConnectWise) => {
                let cfg = CwConfig {
                    site_url: str_field(config, "site_url")?,
                    company_id: str_field(config, "company_id")?,
                    public_key: str_field(config, "public_key")?,
                    private_key: str_field(secrets, "private_key")?,
                    client_id: str_field(secrets, "client_id")?,
                };
                Ok(Self::ConnectWise(
                    CwClient::connect(&cfg, http, policy).await?,
                ))
            }
            Some(Psa::Autotask) => {
                let cfg = AtConfig {
                    zone_url: config
                        .get("zone_url")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    username: str_field(config, "username")?,
                    secret: str_field(secrets, "secret")?,
                    integration_code: str_field(secrets, "integration_code")?,
                };
                let complete_status_ids = complete_status_ids(config)?;
                Ok(Self::Autotask {
                    client: AtClient::connect(&cfg, http, policy).await?,
                    complete_status_ids,
                })
            }
            Some(Psa::Halo) => {
                let cfg = HaloConfig {
                    url: str_field(config, "url")?,
                    client_id: str_field(config, "client_id")?,
                    client_secret: str_field(secrets, "client_secret")?,
                };
                Ok(Self::Halo(HaloClient::connect(&cfg, http, policy).await?))
            }
            None => Err(PsaError::Rejected(format!("unknown PSA {psa:?}"))),
        }
    }

    pub fn psa(&self) -> Psa {
        match self {
            Self::ConnectWise(_) => Psa::ConnectWise,
            Self::Autotask { .. } => Psa::Autotask,
            Self::Halo(_) => Psa::Halo,
        }
    }

    pub async fn count(&self, entity: EntityType, root: &Group) -> Result<Count, PsaError> {
        let (res, cat) = resource(self.psa(), entity)?;
        match self {
            Self::ConnectWise(c) => {
                let plan = compile::compile_connectwise(root, entity).map_err(compile_error)?;
                Ok(Count {
                    count: c.count(res, &plan.native).await?,
                    exact: plan.is_exact(),
                })
            }
            Self::Autotask {
                client,
                complete_status_ids,
            } => {
                let plan = compile::compile_autotask(root, entity, complete_status_ids)
                    .map_err(compile_error)?;
                Ok(Count {
                    count: client.count(res, &plan.native).await?,
                    exact: plan.is_exact(),
                })
            }
            Self::Halo(c) => {
                let plan = compile::compile_halo(root, entity).map_err(compile_error)?;
                Ok(Count {
                    count: c.count(res, cat.halo_list(), &plan.native).await?,
                    exact: plan.is_exact(),
                })
            }
        }
    }

    /// The number of matches, exact where it is cheap: when the PSA's own count is only an
    /// upper bound (a residual is left to evaluate locally) and that bound is at most
    /// `max_read` rows, the rows are read page by page and the matches counted. A preflight
    /// over a few hundred companies then says how many a backfill will run over, not how many
    /// the PSA holds; a bound past `max_read` stays a bound (reading it would cost as much as
    /// the snapshot itself).
    pub async fn count_exactly(
        &self,
        entity: EntityType,
        root: &Group,
        max_read: u64,
    ) -> Result<Count, PsaError> {
        let bound = self.count(entity, root).await?;
        if bound.exact || bound.count > max_read {
            return Ok(bound);
        }
        let mut after = Cursor::from_checkpoint(None);
        let mut count = 0u64;
        loop {
            let page = self.page(entity, root, &after).await?;
            count += page.rows.len() as u64;
            match page.next {
                Some(next) if !page.exhausted => after = next,
                _ => break,
            }
        }
        Ok(Count { count, exact: true })
    }

    /// Rows after the cursor that match the filter, one PSA page at a time (Halo: up to
    /// [`crate::halo::FORWARD_PAGES`] pages after re-reading the page that held `last_id`).
    pub async fn page(
        &self,
        entity: EntityType,
        root: &Group,
        after: &Cursor,
    ) -> Result<Page, PsaError> {
        let (res, cat) = resource(self.psa(), entity)?;
        let (raw, next, exhausted, residual) = match self {
            Self::ConnectWise(c) => {
                let plan = compile::compile_connectwise(root, entity).map_err(compile_error)?;
                let size = crate::connectwise::PAGE_SIZE;
                let raw = c.page_after(res, &plan.native, after.last_id, size).await?;
                let next = keyset(&raw, after.last_id)?;
                let exhausted = (raw.len() as u32) < size;
                (raw, next, exhausted, plan.residual)
            }
            Self::Autotask {
                client,
                complete_status_ids,
            } => {
                let plan = compile::compile_autotask(root, entity, complete_status_ids)
                    .map_err(compile_error)?;
                let size = crate::autotask::PAGE_SIZE;
                let raw = client
                    .page_after(res, &plan.native, after.last_id, size)
                    .await?;
                let next = keyset(&raw, after.last_id)?;
                let exhausted = (raw.len() as u32) < size;
                (raw, next, exhausted, plan.residual)
            }
            Self::Halo(c) => {
                let plan = compile::compile_halo(root, entity).map_err(compile_error)?;
                let from = HaloCursor {
                    last_id: after.last_id,
                    page_no: after.page_no.unwrap_or(0),
                };
                let p = c
                    .page_from(
                        res,
                        cat.halo_list(),
                        &plan.native,
                        from,
                        crate::halo::PAGE_SIZE,
                    )
                    .await?;
                let next = (p.next != from).then_some(Cursor {
                    last_id: p.next.last_id,
                    page_no: Some(p.next.page_no),
                });
                (p.rows, next, p.exhausted, plan.residual)
            }
        };
        let ctx = self.eval_context();
        let residual = residual
            .as_ref()
            .map(|g| compile::Predicate::new(g, cat, &ctx));
        let mut rows = Vec::with_capacity(raw.len());
        for r in &raw {
            if residual.as_ref().is_none_or(|p| p.matches(r)) {
                rows.push(Row {
                    id: r.get("id").and_then(Value::as_i64).unwrap_or_default(),
                    number: row_number(cat, r),
                    summary: row_summary(cat, r),
                    created: row_created(cat, r),
                    company: row_company(cat, r),
                });
            }
        }
        Ok(Page {
            rows,
            next,
            exhausted,
        })
    }

    /// What the residual is evaluated with (Autotask: the integration's complete statuses).
    pub fn eval_context(&self) -> compile::EvalContext {
        match self {
            Self::ConnectWise(_) | Self::Halo(_) => compile::EvalContext::default(),
            Self::Autotask {
                complete_status_ids,
                ..
            } => compile::EvalContext {
                complete_status_ids: complete_status_ids.clone(),
            },
        }
    }
}

/// Checks a keyset page (ids ascending, all `> after_id`) and returns where the next one starts.
fn keyset(raw: &[Value], after_id: i64) -> Result<Option<Cursor>, PsaError> {
    let mut last_id = None;
    for r in raw {
        let id = r
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PsaError::Protocol("a row without a numeric id".into()))?;
        if id <= after_id || last_id.is_some_and(|l| id <= l) {
            return Err(PsaError::Protocol(format!(
                "ids out of order: {id} after {}",
                last_id.unwrap_or(after_id)
            )));
        }
        last_id = Some(id);
    }
    Ok(last_id.map(|last_id| Cursor {
        last_id,
        page_no: None,
    }))
}

/// The Autotask `complete_status_ids` of an integration config: absent or null gives the default;
/// anything but a non-empty array of integers is refused.
fn complete_status_ids(config: &Value) -> Result<Vec<i64>, PsaError> {
    let bad = || {
        PsaError::Rejected(format!(
            "complete_status_ids must be a non-empty array of at most {MAX_COMPLETE_STATUS_IDS} integers"
        ))
    };
    match config.get("complete_status_ids") {
        None | Some(Value::Null) => Ok(DEFAULT_COMPLETE_STATUS_IDS.to_vec()),
        Some(Value::Array(xs)) if !xs.is_empty() && xs.len() <= MAX_COMPLETE_STATUS_IDS => {
            let mut ids = xs
                .iter()
                .map(|x| x.as_i64().ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort_unstable();
            ids.dedup();
            Ok(ids)
        }
        Some(_) => Err(bad()),
    }
}
/// The number a record is shown with beside its id (Autotask `ticketNumber`).
fn row_number(cat: &Catalogue, r: &Value) -> Option<String> {
    let f = cat.number?;
    compile::eval::field(r, cat.psa(), f)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Longest summary kept with a snapshot entry, in characters: enough to recognise a ticket in
/// a table, short enough that a million of them stay small.
pub const MAX_SUMMARY_CHARS: usize = 120;

/// A row's summary: its table's title fields (a ticket's `summary`, Autotask `title`, a
/// company's name, a contact's first and last names) joined with a space, trimmed and cut at
/// [`MAX_SUMMARY_CHARS`] with an ellipsis; the store removes control characters.
fn row_summary(cat: &Catalogue, r: &Value) -> Option<String> {
    let parts: Vec<&str> = cat
        .title
        .iter()
        .filter_map(|f| compile::eval::field(r, cat.psa(), f).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        return None;
    }
    let s = parts.join(" ");
    Some(match s.char_indices().nth(MAX_SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", s[..cut].trim_end()),
        None => s,
    })
}

/// The id of the company a row belongs to (its `$company` field), where the entity has one.
fn row_company(cat: &Catalogue, r: &Value) -> Option<String> {
    let path = cat.target(neo_domain::filter::Alias::Company)?.id?;
    match compile::eval::field(r, cat.psa(), path)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s)
            if !s.is_empty() && s.len() <= neo_domain::fairness::MAX_COMPANY_ID_LEN =>
        {
            Some(s.clone())
        }
        _ => None,
    }
}

/// When a row was created (its `$created` field), where the entity has one.
fn row_created(cat: &Catalogue, r: &Value) -> Option<Timestamp> {
    let path = cat.target(neo_domain::filter::Alias::Created)?.id?;
    compile::eval::field(r, cat.psa(), path)
        .and_then(Value::as_str)
        .and_then(compile::eval::parse_instant)
}
