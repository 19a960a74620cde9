//! `GET /public-api/entity-types`: the support matrix (`neo_psa::support`), served as it is
//! enforced, and the rule create and verify apply with it.

use axum::extract::State;
use axum::http::StatusCode;
use neo_domain::backfill::EntityType;
use neo_domain::filter::FilterSpec;
use neo_psa::support::{self, Level};
use neo_psa::Psa;
use serde::Serialize;
use utoipa::ToSchema;

use crate::envelope::{DataEnvelope, Reply};
use crate::error::ApiError;
use crate::{AppState, Auth};

/// How far a backfill over an entity type goes on a PSA.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SupportLevel {
    /// Filters (rule groups) compile to the PSA's query; explicit ids work too.
    Filters,
    /// Explicit `entity_ids` only: filters on it are not built for this PSA yet.
    IdsOnly,
    /// The PSA has no such entity.
    Absent,
    /// `none`: not a record.
    NotBackfillable,
}

impl From<Level> for SupportLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Filters => SupportLevel::Filters,
            Level::IdsOnly => SupportLevel::IdsOnly,
            Level::Absent => SupportLevel::Absent,
            Level::NotBackfillable => SupportLevel::NotBackfillable,
        }
    }
}

/// One PSA's cell for an entity type.
#[derive(Debug, Serialize, ToSchema)]
pub struct PsaSupport {
    /// `connectwise`, `autotask` or `halopsa`.
    #[schema(example = "connectwise")]
    pub psa: String,
    /// Where the PSA keeps it (a REST resource; `{parentId}` where it is listed per parent).
    pub endpoint: Option<String>,
    pub level: SupportLevel,
    /// What else to know (why it is absent, how the PSA names it).
    pub note: Option<String>,
}

/// An entity type and how each PSA supports it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"entity_type": "ticket", "backfillable": true, "psas": [
    {"psa": "connectwise", "endpoint": "/service/tickets", "level": "filters", "note": null},
    {"psa": "autotask", "endpoint": "Tickets", "level": "filters", "note": null},
    {"psa": "halopsa", "endpoint": "/tickets", "level": "filters", "note": null}]}))]
pub struct EntityTypeSupport {
    pub entity_type: EntityType,
    /// False only for `none`.
    pub backfillable: bool,
    pub psas: Vec<PsaSupport>,
}

/// The support matrix.
///
/// For each of the 22 entity types and each PSA: where the PSA keeps it and whether a filter
/// backfill can target it (`filters`), only an explicit `entity_ids` list (`ids_only`), or the
/// PSA has no such entity (`absent`). `none` is not backfillable. The same table decides what
/// create and verify accept.
#[utoipa::path(get, path = "/public-api/entity-types", tag = "Backfills", operation_id = "listEntityTypes",
    responses((status = 200, description = "Success.", body = DataEnvelope<Vec<EntityTypeSupport>>)))]
pub async fn list(
    State(_app): State<AppState>,
    Auth(_p): Auth,
) -> Result<Reply<Vec<EntityTypeSupport>>, ApiError> {
    // A list, like every list: one page holds all of it.
    Ok(Reply::new(matrix()).page(false, None))
}

/// The matrix as the API serves it.
pub fn matrix() -> Vec<EntityTypeSupport> {
    EntityType::ALL
        .iter()
        .map(|e| EntityTypeSupport {
            entity_type: *e,
            backfillable: e.is_backfillable(),
            psas: Psa::ALL
                .into_iter()
                .map(|p| {
                    let cell = support::pair(p, *e);
                    PsaSupport {
                        psa: p.as_str().to_owned(),
                        endpoint: cell.endpoint.map(str::to_owned),
                        level: cell.level.into(),
                        note: (!cell.note.is_empty()).then(|| cell.note.to_owned()),
                    }
                })
                .collect(),
        })
        .collect()
}

fn refused(message: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "entity_type_not_supported",
        message,
    )
    .with_field("entity_type")
}

/// What a backfill over `entity` with `spec` may do on the tenant's PSA (`psa`, when one is
/// connected): `none` never; a filter only where the matrix says `filters`; explicit ids for
/// every other type.
pub(crate) fn check_entity(
    entity: EntityType,
    spec: &FilterSpec,
    psa: Option<&str>,
) -> Result<(), ApiError> {
    if !entity.is_backfillable() {
        return Err(refused(
            "entity type none is not backfillable: it names no record to run a workflow over"
                .into(),
        ));
    }
    let (FilterSpec::Query { .. }, Some(psa)) = (spec, psa.and_then(Psa::parse)) else {
        return Ok(());
    };
    if support::filterable(psa, entity) {
        return Ok(());
    }
    let elsewhere: Vec<&str> = support::filterable_on(entity)
        .into_iter()
        .map(Psa::as_str)
        .collect();
    let cell = support::pair(psa, entity);
    let why = match cell.level {
        Level::Absent => format!("{} has no {entity} entity ({})", psa.as_str(), cell.note),
        _ if !cell.note.is_empty() => format!(
            "{} cannot list {entity} entities for a filter ({})",
            psa.as_str(),
            cell.note
        ),
        _ => format!("filters on {entity} are not supported on {}", psa.as_str()),
    };
    let other = if elsewhere.is_empty() {
        "no PSA supports filters on it yet".to_owned()
    } else {
        format!("filters on it work on {}", elsewhere.join(", "))
    };
    let ids = if cell.level == Level::Absent {
        String::new()
    } else {
        "; give entity_ids, which work for every entity type".to_owned()
    };
    Err(refused(format!("{why}: {other}{ids}")))
}
