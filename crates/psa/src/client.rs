//! One facade over the connectors: connect from a tenant's integration, count a filter,
//! read a page of matching rows by ascending id.

use jiff::Timestamp;
use neo_domain::backfill::EntityType;
use neo_domain::filter::Group;
use serde_json::Value;

use crate::autotask::{AtClient, AtConfig};
use crate::compile::{self, CompileError};
use crate::connectwise::{CwClient, CwConfig};
use crate::http::{HttpPolicy, PsaError};
use crate::Psa;

/// Autotask status ids that mean "complete" (`$closed`), unless the integration says otherwise.
pub const DEFAULT_COMPLETE_STATUS_IDS: &[i64] = &[5];

#[derive(Debug, Clone)]
pub enum PsaClient {
    ConnectWise(CwClient),
    Autotask {
        client: AtClient,
        complete_status_ids: Vec<i64>,
    },
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
    /// The largest id the PSA returned (matching or not): where the next page starts.
    pub last_id: Option<i64>,
    /// True when the PSA has no rows after this page.
    pub exhausted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: i64,
    /// The human-facing number (Autotask `ticketNumber`), if the PSA has one.
    pub number: Option<String>,
    pub created: Option<Timestamp>,
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

/// The ConnectWise resource or Autotask entity of an entity type.
fn resource(psa: Psa, entity: EntityType) -> Result<&'static str, PsaError> {
    match (psa, entity) {
        (Psa::ConnectWise, EntityType::Ticket) => Ok("/service/tickets"),
        (Psa::ConnectWise, EntityType::ProjectTicket) => Ok("/project/tickets"),
        (Psa::Autotask, EntityType::Ticket) => Ok("Tickets"),
        _ => Err(PsaError::Rejected(format!(
            "{} entities of {} are not supported yet",
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
        http: reqwest::Client,
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
                Ok(Self::Autotask {
                    client: AtClient::connect(&cfg, http, policy).await?,
                    complete_status_ids: DEFAULT_COMPLETE_STATUS_IDS.to_vec(),
                })
            }
            _ => Err(PsaError::Rejected(format!(
                "the {psa} connector is not available yet"
            ))),
        }
    }

    pub fn psa(&self) -> Psa {
        match self {
            Self::ConnectWise(_) => Psa::ConnectWise,
            Self::Autotask { .. } => Psa::Autotask,
        }
    }

    pub async fn count(&self, entity: EntityType, root: &Group) -> Result<Count, PsaError> {
        let res = resource(self.psa(), entity)?;
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
        }
    }

    /// Rows with `id > after_id` that match the filter, one PSA page at a time.
    pub async fn page(
        &self,
        entity: EntityType,
        root: &Group,
        after_id: i64,
    ) -> Result<Page, PsaError> {
        let res = resource(self.psa(), entity)?;
        let (raw, page_size, residual) = match self {
            Self::ConnectWise(c) => {
                let plan = compile::compile_connectwise(root, entity).map_err(compile_error)?;
                let size = crate::connectwise::PAGE_SIZE;
                (
                    c.page_after(res, &plan.native, after_id, size).await?,
                    size,
                    plan.residual,
                )
            }
            Self::Autotask {
                client,
                complete_status_ids,
            } => {
                let plan = compile::compile_autotask(root, entity, complete_status_ids)
                    .map_err(compile_error)?;
                let size = crate::autotask::PAGE_SIZE;
                (
                    client.page_after(res, &plan.native, after_id, size).await?,
                    size,
                    plan.residual,
                )
            }
        };
        let psa = self.psa();
        let ctx = self.eval_context();
        let residual = residual
            .as_ref()
            .map(|g| compile::Predicate::new(g, psa, &ctx));
        let mut last_id = None;
        let mut rows = Vec::with_capacity(raw.len());
        for r in &raw {
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
            if residual.as_ref().is_none_or(|p| p.matches(r)) {
                rows.push(Row {
                    id,
                    number: row_number(psa, r),
                    created: row_created(psa, r),
                });
            }
        }
        Ok(Page {
            rows,
            last_id,
            exhausted: (raw.len() as u32) < page_size,
        })
    }

    fn eval_context(&self) -> compile::EvalContext {
        match self {
            Self::ConnectWise(_) => compile::EvalContext::default(),
            Self::Autotask {
                complete_status_ids,
                ..
            } => compile::EvalContext {
                complete_status_ids: complete_status_ids.clone(),
            },
        }
    }
}

fn row_number(psa: Psa, r: &Value) -> Option<String> {
    match psa {
        Psa::Autotask => r
            .get("ticketNumber")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

fn row_created(psa: Psa, r: &Value) -> Option<Timestamp> {
    let s = match psa {
        Psa::ConnectWise => r
            .pointer("/_info/dateEntered")
            .or_else(|| r.get("dateEntered")),
        Psa::Autotask => r.get("createDate"),
        Psa::Halo => r.get("dateoccurred"),
    };
    s.and_then(Value::as_str).and_then(|s| s.parse().ok())
}
