//! Documentation-only schemas: the shapes of members the handlers keep as JSON and validate
//! with the domain (`neo_domain::executor::ExecutorSpec::validate`, `neo_domain::filter`), so
//! that the OpenAPI document types them for generated clients. Nothing here is constructed;
//! the bounds are the domain's, restated for the document (operators come from the domain's
//! own list), and `crates/api/tests/api/openapi.rs` checks that each executor's example passes
//! the domain's validation.

#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// How a workflow's executions run (`executor` of `POST /agents` and `PATCH /agents/{id}`),
/// told apart by `type`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(title = "Executor", discriminator(property_name = "type", mapping(
    ("webhook" = "#/components/schemas/WebhookExecutor"),
    ("simulated" = "#/components/schemas/SimulatedExecutor"),
    ("psa_actions" = "#/components/schemas/PsaActionsExecutor")
)))]
pub enum Executor {
    Webhook(WebhookExecutor),
    Simulated(SimulatedExecutor),
    PsaActions(PsaActionsExecutor),
}

/// POST a signed JSON body to `url` per execution (`Idempotency-Key`: the execution id;
/// `X-Neo-Signature`: HMAC-SHA256 over timestamp and body with `secret`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "webhook", "url": "https://automation.example.com/neo", "secret": "a-long-shared-secret"}))]
pub struct WebhookExecutor {
    #[schema(schema_with = webhook_type)]
    pub r#type: String,
    /// An `http(s)` URL; private, loopback and link-local targets are refused unless the
    /// service allows them (`--egress-allow-private`).
    #[schema(format = "uri")]
    pub url: String,
    /// The signing secret, 16 to 512 characters. Write-only: never returned.
    #[schema(min_length = 16, max_length = 512, write_only)]
    pub secret: String,
    /// How long one delivery may take, 100 to 300,000 ms (default 30,000).
    #[schema(minimum = 100, maximum = 300_000, required = false)]
    pub timeout_ms: u64,
}

/// In-process executions: which entities fail is a pure function of `seed` and the entity id.
/// A share `failure_rate` fails every time (permanent); a disjoint share `transient_rate` fails
/// only in the first execution that runs it (in this process) and succeeds when run again, e.g.
/// by rerun-failed.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "simulated", "latency_ms": 50, "failure_rate": 0.06, "transient_rate": 0.08, "seed": 1}))]
pub struct SimulatedExecutor {
    #[schema(schema_with = simulated_type)]
    pub r#type: String,
    /// Time each execution takes, 0 to 600,000 ms (default 0).
    #[schema(minimum = 0, maximum = 600_000, required = false)]
    pub latency_ms: u64,
    /// Share of entities that fail every time, 0.0 to 1.0 (default 0).
    #[schema(minimum = 0.0, maximum = 1.0, required = false)]
    pub failure_rate: f64,
    /// Share of entities that fail the first time only and succeed when run again, 0.0 to 1.0
    /// (default 0); `failure_rate + transient_rate` is at most 1.0.
    #[schema(minimum = 0.0, maximum = 1.0, required = false)]
    pub transient_rate: f64,
    /// Which entities fail (default 0).
    #[schema(minimum = 0, required = false)]
    pub seed: u64,
}

/// Changes to the record itself through the tenant's PSA integration (docs/psa-actions.md):
/// the actions run in order on each entity, every write audited, previewable by a shadow run
/// and undone by a revert. Checked at create against the fields the tenant's PSA lets the
/// workflow's entity type write (422 naming the value's JSON path).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "psa_actions", "actions": [
    {"type": "update_fields", "fields": {"priority/id": 1, "summary": "{{summary}} [escalated]"}},
    {"type": "add_note", "text": "Escalated by backfill {{backfill_id}}", "internal": true}]}))]
pub struct PsaActionsExecutor {
    #[schema(schema_with = psa_actions_type)]
    pub r#type: String,
    /// 1 to 20 actions, run in order on each entity.
    #[schema(min_items = 1, max_items = 20)]
    pub actions: Vec<PsaAction>,
}

/// One action of a `psa_actions` executor, told apart by `type`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(discriminator(property_name = "type", mapping(
    ("update_fields" = "#/components/schemas/UpdateFieldsAction"),
    ("add_note" = "#/components/schemas/AddNoteAction"),
    ("set_status" = "#/components/schemas/SetStatusAction")
)))]
pub enum PsaAction {
    UpdateFields(UpdateFieldsAction),
    AddNote(AddNoteAction),
    SetStatus(SetStatusAction),
}

/// Sets fields of the record: the PSA's own field paths (`/` between the segments of a nested
/// object, e.g. `priority/id`) to a number, a boolean, null, or text where `{{field}}`,
/// `{{backfill_id}}`, `{{entity_id}}` and `{{workflow_id}}` are replaced per record.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFieldsAction {
    #[schema(schema_with = update_fields_type)]
    pub r#type: String,
    /// 1 to 50 fields.
    #[schema(value_type = Object, additional_properties)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Adds a note to the record; `text` is a template (at most 4,000 characters).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNoteAction {
    #[schema(schema_with = add_note_type)]
    pub r#type: String,
    #[schema(min_length = 1, max_length = 4000)]
    pub text: String,
    /// Hidden from the client's contacts (default true).
    #[schema(required = false)]
    pub internal: bool,
}

/// Sets the record's status field (ConnectWise `status/id`, Autotask `status`, HaloPSA
/// `status_id`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStatusAction {
    #[schema(schema_with = set_status_type)]
    pub r#type: String,
    /// The status, as the PSA takes it (its id), or a template.
    pub status: serde_json::Value,
}

fn psa_actions_type() -> utoipa::openapi::Object {
    crate::models::string_enum(["psa_actions"], "`psa_actions`.")
}

fn update_fields_type() -> utoipa::openapi::Object {
    crate::models::string_enum(["update_fields"], "`update_fields`.")
}

fn add_note_type() -> utoipa::openapi::Object {
    crate::models::string_enum(["add_note"], "`add_note`.")
}

fn set_status_type() -> utoipa::openapi::Object {
    crate::models::string_enum(["set_status"], "`set_status`.")
}

/// A workflow's executor as read back: as written, without the webhook `secret`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(title = "ExecutorView", discriminator(property_name = "type", mapping(
    ("webhook" = "#/components/schemas/WebhookExecutorView"),
    ("simulated" = "#/components/schemas/SimulatedExecutor"),
    ("psa_actions" = "#/components/schemas/PsaActionsExecutor")
)))]
pub enum ExecutorView {
    Webhook(WebhookExecutorView),
    Simulated(SimulatedExecutor),
    PsaActions(PsaActionsExecutor),
}

/// A webhook executor as read back: `secret_set` instead of the secret.
#[derive(Serialize, ToSchema)]
pub struct WebhookExecutorView {
    #[schema(schema_with = webhook_type)]
    pub r#type: String,
    #[schema(format = "uri")]
    pub url: String,
    /// A secret is configured (it is never returned).
    pub secret_set: bool,
    #[schema(minimum = 100, maximum = 300_000, required = false)]
    pub timeout_ms: u64,
}

fn webhook_type() -> utoipa::openapi::Object {
    crate::models::string_enum(["webhook"], "`webhook`.")
}

fn simulated_type() -> utoipa::openapi::Object {
    crate::models::string_enum(["simulated"], "`simulated`.")
}

/// A react-querybuilder rule group over the PSA's entities (docs/api.md §5): `rules` combined
/// with `and` or `or` (any case), groups nested at most 4 deep, at most 200 rules in all.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"combinator": "and", "rules": [
    {"field": "$created", "operator": ">=", "value": {"$ago": "P30D"}},
    {"field": "$closed", "operator": "=", "value": false}]}))]
pub struct RuleGroup {
    #[schema(pattern = "^([aA][nN][dD]|[oO][rR])$")]
    pub combinator: String,
    #[schema(no_recursion)]
    pub rules: Vec<RuleOrGroup>,
    /// react-querybuilder's own id; ignored.
    #[schema(required = false)]
    pub id: String,
}

/// A rule or a nested group (a group has `combinator` and `rules`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RuleOrGroup {
    Rule(Rule),
    #[schema(no_recursion)]
    Group(RuleGroup),
}

/// One condition: a standard `field` (`$created`, `$priority`, …, or the PSA's own path such as
/// `board/name`) or a `custom_field` caption, an operator and its operand (a scalar, a list
/// for `in`/`notIn`, two for `between`, none for `null`/`notNull`; instants as
/// `{"$datetime": "<RFC 3339>"}` or `{"$ago": "<ISO 8601 duration>"}`).
#[derive(Serialize, ToSchema)]
pub struct Rule {
    #[schema(required = false)]
    pub field: String,
    #[schema(required = false)]
    pub custom_field: String,
    #[schema(schema_with = operators)]
    pub operator: String,
    #[schema(required = false)]
    pub value: serde_json::Value,
    /// react-querybuilder's own members; ignored.
    #[schema(required = false)]
    pub id: String,
    #[schema(required = false)]
    #[serde(rename = "valueSource")]
    pub value_source: String,
}

fn operators() -> utoipa::openapi::Object {
    crate::models::string_enum(
        neo_domain::filter::Operator::NAMES,
        "How `value` is compared.",
    )
}
