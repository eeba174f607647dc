//! The app definition both front doors produce (`wsgate.toml` and
//! `sst.config.ts`): everything downstream of loading sees only these
//! types.

use super::units::Retention;
use crate::gateway::limits::Limits;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

/// Every problem found in one config file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if let Some(key) = &p.key {
                write!(f, ": `{key}`")?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

/// What a binary WebSocket frame does: API Gateway closes the connection
/// with 1003 unless the API passes binary payloads through as base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinaryMode {
    #[default]
    Reject,
    Base64,
}

/// Who runs a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerSpec {
    /// HTTP integration: the event is POSTed to this URL.
    Url(String),
    /// SST handler string such as `src/connect.handler`.
    Handler(String),
    /// Any Lambda runtime program.
    Command(Vec<String>),
}

/// Route authorization as SST's `auth` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAuth {
    Iam,
    Lambda(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub key: String,
    pub line: usize,
    pub handler: HandlerSpec,
    pub timeout: Option<Duration>,
    pub memory: Option<u64>,
    pub environment: BTreeMap<String, String>,
    pub link: Vec<String>,
    pub auth: Option<RouteAuth>,
    pub return_response: bool,
    /// Function handlers: instances that may run at once.
    pub concurrency: Option<usize>,
    /// Linked components whose `Resource` values are known when the app
    /// is loaded (an SST app's links); the API itself is added when its
    /// outputs are known.
    pub resources: Vec<LinkedResource>,
    /// SST's `nodejs` function options (install, banner, format, loader,
    /// esbuild), for the handler's build.
    pub nodejs: Option<serde_json::Value>,
    /// The Lambda runtime a function handler declares (`nodejs22.x`,
    /// `python3.12`); `None`: the default for its language.
    pub runtime: Option<String>,
    /// The IAM statements of the function's role (SST's `permissions`, and
    /// those its links include); wsgate enforces the execute-api ones.
    pub permissions: Vec<PermissionStatement>,
    /// Lambda layers: folders holding each layer's content, as Lambda
    /// extracts it to `/opt` (`nodejs/node_modules`, `python/`).
    pub layers: Vec<std::path::PathBuf>,
}

/// One statement of a function's IAM policy, as SST's `permissions` item
/// (`{ actions, resources, effect? }`) and `sst.aws.permission` give it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PermissionStatement {
    #[serde(default)]
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// IAM's statement effect; `allow` unless said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum Effect {
    #[default]
    #[serde(alias = "allow", alias = "ALLOW")]
    Allow,
    #[serde(alias = "deny", alias = "DENY")]
    Deny,
}

/// A linked component as a function sees it: `SST_RESOURCE_<name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedResource {
    pub name: String,
    /// `Resource.<name>`, `type` included.
    pub properties: serde_json::Value,
}

/// The outputs SST gives for the component.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    pub url: String,
    pub management_endpoint: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file the app was defined in (`wsgate.toml` or `sst.config.ts`).
    pub file: PathBuf,
    /// Where the app definition came from.
    pub source: Source,
    /// The app this API belongs to, as `Resource.App` gives it: for an SST
    /// app its `app()` name and stage; for `wsgate.toml` the API's own.
    pub app: AppIdentity,
    pub name: String,
    pub stage: String,
    pub route_selection_expression: String,
    /// `[transform.api] api_id`; `None`: derived from the name.
    pub api_id: Option<String>,
    pub listen: Option<SocketAddr>,
    pub binary: BinaryMode,
    pub access_log_retention: Retention,
    pub access_log_format: crate::access_log::format::Format,
    pub limits: Limits,
    pub routes: Vec<RouteConfig>,
    /// The custom domain, served with TLS.
    pub domain: Option<crate::domain::DomainSettings>,
    /// TLS on the API's port for its own host, with the local CA's
    /// certificate (`tls = "local"`, the default; `"off"`).
    pub local_tls: bool,
    /// The region SigV4 signatures are scoped to and ARNs name.
    pub region: String,
    pub credentials: Vec<CredentialConfig>,
    pub authorizers: Vec<AuthorizerConfig>,
    /// Functions invoked through the local Lambda API (an SST app's
    /// `sst.aws.Function`s that routes link), by their name on Lambda.
    pub invokable: Vec<RouteConfig>,
    /// `[cluster]`: run as one node of a cluster on NATS.
    pub cluster: Option<ClusterSettings>,
    /// The stage is also served at `/` (and `/@connections/<id>`), as
    /// serverless-offline serves it: a Serverless service's clients keep
    /// their URLs.
    pub root_paths: bool,
}

/// `[cluster]` (or `--cluster`): how this node reaches NATS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterSettings {
    /// `nats://host:port`; several, comma-separated, for a NATS cluster.
    pub nats: String,
    /// A NATS credentials file (`.creds`).
    pub credentials: Option<PathBuf>,
    /// A NATS token (from `token_env`).
    pub token: Option<String>,
    /// TLS to NATS: the CA to trust, and a client certificate and key.
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Replicas of the slots bucket (3 on a 3-server NATS cluster).
    pub replicas: usize,
    /// This node's name in logs and its access-log folder (default:
    /// host name and process id).
    pub node: Option<String>,
}

/// `Resource.App`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppIdentity {
    pub name: String,
    pub stage: String,
}

/// Which front door the app came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    #[default]
    Toml,
    Sst,
    CloudFormation,
}

/// One `[[credentials]]` key pair and what it may do.
#[derive(Debug, Clone)]
pub struct CredentialConfig {
    pub line: usize,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The IAM user name ARNs and events show.
    pub user: String,
    pub allow: Vec<crate::auth::policy::Allow>,
}

/// Where a Lambda REQUEST authorizer's identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    Header(String),
    QueryString(String),
}

/// One `[authorizers.<Name>]`: a handler (as a route's) and its identity
/// sources.
#[derive(Debug, Clone)]
pub struct AuthorizerConfig {
    pub name: String,
    pub handler: RouteConfig,
    pub identity_sources: Vec<IdentitySource>,
}

impl Config {
    /// The folder handler paths are resolved against, as SST does.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }
}
