//! The app definition the evaluator hands back: what an SST app's config
//! describes, every Output resolved.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    pub app: AppInfo,
    pub apis: Vec<ApiDefinition>,
    pub functions: Vec<FunctionDefinition>,
    pub tables: Vec<TableDefinition>,
    /// Every linked component's link, by component name.
    pub links: BTreeMap<String, LinkDefinition>,
    pub secrets: Vec<SecretDefinition>,
    pub stand_ins: Vec<StandIn>,
    pub notices: Vec<String>,
    /// What `run()` returned.
    pub outputs: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub name: String,
    pub stage: String,
    pub home: Option<String>,
    pub providers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiDefinition {
    pub name: String,
    /// The API's id: `nodes.api.id`, in its `executionArn` and the ARNs
    /// permissions name.
    pub api_id: Option<String>,
    pub route_selection_expression: Option<String>,
    pub stage: Option<String>,
    pub access_log_format: Option<String>,
    pub access_log_retention_days: Option<f64>,
    pub throttling_burst_limit: Option<f64>,
    pub throttling_rate_limit: Option<f64>,
    pub domain: Option<DomainDefinition>,
    pub routes: Vec<RouteDefinition>,
    pub authorizers: Vec<AuthorizerDefinition>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DomainDefinition {
    pub name: String,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RouteDefinition {
    pub key: String,
    /// The name of the function in `functions`.
    pub function: String,
    pub auth: Option<AuthDefinition>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthDefinition {
    pub iam: Option<bool>,
    pub lambda: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerDefinition {
    pub name: String,
    pub function: String,
    pub identity_sources: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDefinition {
    /// The component's name (`new sst.aws.Function(name, ...)`).
    pub name: String,
    /// Where the app made it (`infra/api.ts:12:5`), when known.
    #[serde(default)]
    pub location: Option<String>,
    /// Its name on Lambda, what `Resource.<name>.name` gives.
    pub physical_name: String,
    /// A route or authorizer runs it; otherwise a route's function links
    /// it and invokes it through the Lambda API.
    pub routed: bool,
    pub handler: String,
    /// The declared runtime; `None`: SST's default (`nodejs20.x`, or
    /// Python for a `.py` handler).
    pub runtime: Option<String>,
    /// The role's statements: `permissions`, then what links include.
    #[serde(default)]
    pub permissions: Vec<crate::config::PermissionStatement>,
    /// SST's duration (`"20 seconds"`) or a number of seconds.
    pub timeout: Value,
    /// SST's size (`"1024 MB"`) or a number of MB.
    pub memory: Value,
    pub environment: BTreeMap<String, Value>,
    /// Names of the linked components (keys of `links`).
    pub links: Vec<String>,
    pub concurrency: Option<f64>,
    pub bundle: Option<String>,
    pub nodejs: Option<Value>,
    pub python: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableDefinition {
    pub name: String,
    pub table_name: String,
    pub fields: BTreeMap<String, String>,
    pub primary_index: IndexDefinition,
    pub global_indexes: BTreeMap<String, IndexDefinition>,
    pub local_indexes: BTreeMap<String, IndexDefinition>,
    pub ttl: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexDefinition {
    pub hash_key: Option<String>,
    pub range_key: Option<String>,
    /// `"all"` (the default), `"keys-only"`, or the attributes to include.
    pub projection: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkDefinition {
    pub name: String,
    /// What `Resource.<name>` holds, `type` included.
    pub properties: serde_json::Map<String, Value>,
    pub include: Vec<Value>,
    /// A component wsgate does not run: its properties are placeholders.
    pub stand_in: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretDefinition {
    pub name: String,
    pub set: bool,
    pub placeholder: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StandIn {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}
