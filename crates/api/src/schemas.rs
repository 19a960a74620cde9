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
    ("simulated" = "#/components/schemas/SimulatedExecutor")
)))]
pub enum Executor {
    Webhook(WebhookExecutor),
    Simulated(SimulatedExecutor),
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

/// A workflow's executor as read back: as written, without the webhook `secret`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(title = "ExecutorView", discriminator(property_name = "type", mapping(
    ("webhook" = "#/components/schemas/WebhookExecutorView"),
    ("simulated" = "#/components/schemas/SimulatedExecutor")
)))]
pub enum ExecutorView {
    Webhook(WebhookExecutorView),
    Simulated(SimulatedExecutor),
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
