//! The OpenAPI 3.1 document, generated from the handlers' annotations. Every operation gets the
//! standard error responses (error envelope) and, unless it opts out, bearer security;
//! `links` and `refine` then work on the JSON where the derive cannot say what clients need.

mod links;
mod refine;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Doc, RefOr, ResponseBuilder};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::envelope::{Pagination, SuccessMeta};
use crate::error::ErrorEnvelope;
use crate::models::{CreateBackfillResponse, PublicBackfill};
use crate::routes::{
    agents, backfills, entity_types, executions, integrations, keys, meta, notifications,
};
use crate::AppState;
use neo_domain::backfill::{AutonomyType, BackfillRunState, EntityType};
use neo_domain::cost::BackfillCostEstimate;
use neo_domain::windows::{WorkflowDailyExecutionWindows, WorkflowTimeWindow};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Neo Public API",
        version = "1.0.0",
        description = "Neo's public contract for backfills, agents, executions and integrations, as implemented by neo-backfill. Every response is wrapped in a `{data, meta}` envelope; errors use `{error: {code, message, details?}, meta: {request_id}}`. Authenticate with a `Bearer neo_sk_<env>_<secret>` API key (service account) or a Microsoft Entra ID JWT (dashboard user)."
    ),
    tags(
        (name = "Meta", description = "Service metadata — liveness, readiness, OpenAPI."),
        (name = "Backfills", description = "Run a workflow over entities that already exist in the PSA."),
        (name = "Agents", description = "Agents and workflows."),
        (name = "Executions", description = "Agent/workflow execution history, retry/cancel."),
        (name = "Integrations", description = "PSA integration connection management."),
        (name = "Tenant", description = "The authenticated tenant."),
        (name = "Billing", description = "Customer-facing credit usage."),
        (name = "API keys", description = "Tenant API-key management (dashboard JWT only)."),
        (name = "Notifications", description = "[ours] Signed events about backfills, sent to the tenant's endpoints."),
    ),
    components(schemas(
        PublicBackfill, CreateBackfillResponse, BackfillCostEstimate, WorkflowDailyExecutionWindows,
        WorkflowTimeWindow, EntityType, BackfillRunState, AutonomyType, SuccessMeta, Pagination,
        ErrorEnvelope, crate::schemas::RuleOrGroup, crate::schemas::Rule
    ))
)]
struct ApiDoc;

/// Routes behind authentication.
pub fn authed_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(backfills::create, backfills::list))
        .routes(routes!(backfills::verify))
        .routes(routes!(entity_types::list))
        .routes(routes!(backfills::get, backfills::edit, backfills::delete))
        .routes(routes!(backfills::items))
        .routes(routes!(backfills::start))
        .routes(routes!(backfills::pause))
        .routes(routes!(backfills::resume))
        .routes(routes!(backfills::cancel))
        .routes(routes!(backfills::rerun_failed))
        .routes(routes!(backfills::apply))
        .routes(routes!(backfills::revert))
        .routes(routes!(backfills::changes))
        .routes(routes!(backfills::failures))
        .routes(routes!(agents::create, agents::list))
        .routes(routes!(agents::get, agents::patch, agents::delete))
        .routes(routes!(agents::enable))
        .routes(routes!(agents::disable))
        .routes(routes!(executions::list))
        .routes(routes!(executions::get))
        .routes(routes!(executions::retry))
        .routes(routes!(executions::cancel))
        .routes(routes!(executions::field_update_audit))
        .routes(routes!(integrations::list))
        .routes(routes!(integrations::put, integrations::delete))
        .routes(routes!(meta::tenant))
        .routes(routes!(meta::credits))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(keys::rotate))
        .routes(routes!(notifications::list, notifications::create))
        .routes(routes!(
            notifications::get,
            notifications::update,
            notifications::delete
        ))
        .routes(routes!(notifications::test))
        .routes(routes!(notifications::deliveries))
}

/// Routes without a bearer credential.
pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(meta::health))
        .routes(routes!(meta::ready))
        .routes(routes!(meta::openapi))
        .routes(routes!(executions::complete))
}

/// The error responses operations share, by status: `(status, description)`. Each
/// operation gets the ones it can answer ([`can_answer`]); an operation's own annotation
/// documents the rest (403 of the admin-only key routes, 502/503 `psa_unavailable` of create,
/// 401 of the signed completion).
const STANDARD_ERRORS: &[(&str, &str)] = &[
    ("400", "Bad request — malformed input."),
    ("401", "Unauthenticated — missing or invalid credentials."),
    ("404", "Not found."),
    (
        "409",
        "Conflict — the resource is in a state that blocks this operation.",
    ),
    ("422", "Request validation failed."),
    ("429", "Rate limited — see Retry-After."),
    ("500", "Internal server error."),
    (
        "503",
        "Database unavailable — busy, full or unreachable for now; retry after Retry-After.",
    ),
    (
        "408",
        "The body was not received within the body read timeout.",
    ),
    ("413", "Payload too large."),
    ("415", "Unsupported media type — send application/json."),
];

/// What an operation takes, for [`can_answer`].
struct Takes {
    secured: bool,
    read_only: bool,
    body: bool,
    path: bool,
}

/// Whether an operation can answer `status`: 400, 500 and 503 any operation (a query
/// parameter it does not take, a fault, the database); 404 those with an id in the path; 401 and 429 those behind a credential; 409 those that change something (a read
/// never conflicts); 422, 408, 413 and 415 those with a body (query and path parameters that
/// do not parse are a 400).
fn can_answer(status: &str, t: &Takes) -> bool {
    match status {
        "404" => t.path,
        "401" | "429" => t.secured,
        "409" => !t.read_only,
        "422" | "408" | "413" | "415" => t.body,
        _ => true,
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name(
                    "ErrorEnvelope",
                )))
                .build(),
        )
        .build()
        .into()
}

/// The document of the whole API.
pub fn document() -> Doc {
    let (_, authed) = authed_routes().split_for_parts();
    let (_, public) = public_routes().split_for_parts();
    let mut doc = ApiDoc::openapi();
    doc.merge(authed);
    doc.merge(public);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearerAuth",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("`Authorization: Bearer <token>` where `<token>` is either a `neo_sk_<env>_<secret>` API key (service account) or a Microsoft Entra ID access token (dashboard user)."))
                .build(),
        ),
    );
    let bearer = utoipa::openapi::security::SecurityRequirement::new::<&str, [&str; 0], &str>(
        "bearerAuth",
        [],
    );
    // Every operation says its own security too (public ones `[]`); the top level states the
    // default for tools that read only it.
    doc.security = Some(vec![bearer.clone()]);
    for item in doc.paths.paths.values_mut() {
        for (op, read_only) in [
            (&mut item.get, true),
            (&mut item.put, false),
            (&mut item.post, false),
            (&mut item.delete, false),
            (&mut item.patch, false),
        ] {
            let Some(op) = op else { continue };
            let secured = op.security.is_none();
            if secured {
                op.security = Some(vec![bearer.clone()]);
            } else {
                op.security = Some(vec![]);
            }
            use utoipa::openapi::path::ParameterIn;
            let takes = |place: fn(&ParameterIn) -> bool| {
                op.parameters
                    .iter()
                    .flatten()
                    .any(|p| place(&p.parameter_in))
            };
            let t = Takes {
                secured,
                read_only,
                body: op.request_body.is_some(),
                path: takes(|p| matches!(p, ParameterIn::Path)),
            };
            for (code, desc) in STANDARD_ERRORS {
                if can_answer(code, &t) {
                    op.responses
                        .responses
                        .entry((*code).to_owned())
                        .or_insert_with(|| error_response(desc));
                }
            }
        }
    }
    doc
}

/// The document as pretty JSON (what `GET /public-api/openapi.json` and `neo-backfill openapi` print).
pub fn document_json() -> String {
    let mut doc = serde_json::to_value(document()).expect("the OpenAPI document serializes");
    links::add_links(&mut doc);
    refine::reference_resources(&mut doc);
    refine::filter_spec(&mut doc);
    refine::instants(&mut doc);
    refine::optional_bodies(&mut doc);
    refine::open_objects(&mut doc);
    refine::servers(&mut doc);
    refine::headers(&mut doc);
    refine::error_codes(&mut doc);
    refine::shared_responses(&mut doc, STANDARD_ERRORS);
    serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes")
}
