//! Function handlers: SST handler strings (Node.js/TypeScript, Python) and
//! any Lambda runtime program, all run as processes that speak the Lambda
//! Runtime API to wsgate, so every kind shares one invocation path.

mod bundle;
mod instance;
mod live;
mod pool;
pub mod resolve;
mod runtime_api;

#[cfg(fuzzing)]
pub use runtime_api::fuzz_request;

use super::{Context, Integration, IntegrationError, Response, parse_proxy_response};
use crate::admin::metrics;
use crate::auth::keyring::{ACCOUNT_ID, Keyring};
use crate::auth::policy::{Allow, MANAGE_CONNECTIONS, Policy, execute_api_arn};
use crate::config::{Effect, LinkedResource, Outputs, PermissionStatement};
use crate::events::Event;
use async_trait::async_trait;
use bytes::Bytes;
use instance::InstanceEnv;
use instance::Launch;
use pool::Pool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Invocations that may wait for a busy function without reserved
/// concurrency, per instance (100 for the default 10); past that they fail
/// at once. A function with reserved concurrency has no wait, as Lambda.
pub const WAITING_PER_INSTANCE: usize = 10;

/// What every function of one gateway shares.
pub struct Environment {
    /// `Resource.App`.
    pub app: crate::config::AppIdentity,
    pub api_name: String,
    pub api_id: String,
    pub stage: String,
    pub region: String,
    /// Set when the listener is bound (the outputs carry its port).
    pub outputs: RwLock<Option<Outputs>>,
    /// Issues each instance its own session credentials.
    pub keyring: Arc<Keyring>,
    /// Variables every function gets from the gateway (local services'
    /// endpoints, the local CA).
    pub extra: Vec<(String, String)>,
    /// Local services' AWS host names and their ports (`Hosting::hosts`).
    pub hosts: Vec<(String, u16)>,
    /// The user's own AWS credentials, given to every function instead of
    /// a session of its own (hybrid mode: data on AWS).
    pub aws_credentials: Option<crate::auth::keyring::Credentials>,
}

/// What the host gives every function besides its own settings.
#[derive(Debug, Clone, Default)]
pub struct Hosting {
    pub env: Vec<(String, String)>,
    /// AWS host names of local services (`dynamodb.<region>.amazonaws.com`)
    /// and the local port that serves each, for handlers.
    pub hosts: Vec<(String, u16)>,
    /// Hybrid mode: functions use these (the user's) AWS credentials.
    pub aws_credentials: Option<crate::auth::keyring::Credentials>,
}

impl Environment {
    /// What a function's credentials allow, as its role on AWS would: its
    /// IAM statements (SST's `permissions` and what its links include),
    /// and, linked to the API, managing its connections (as SST's link
    /// grants). Nothing else: a function with neither is refused.
    fn policy(&self, spec: &FunctionSpec) -> Policy {
        let mut policy = Policy::default();
        if spec.link.contains(&self.api_name) {
            policy.allow.push(Allow::new(
                MANAGE_CONNECTIONS,
                execute_api_arn(
                    &self.region,
                    ACCOUNT_ID,
                    &self.api_id,
                    "*",
                    "*/@connections/*",
                ),
            ));
        }
        for statement in &spec.permissions {
            let pairs = statement.actions.iter().flat_map(|action| {
                statement
                    .resources
                    .iter()
                    .map(move |resource| Allow::new(action, resource))
            });
            match statement.effect {
                Effect::Allow => policy.allow.extend(pairs),
                Effect::Deny => policy.deny.extend(pairs),
            }
        }
        policy
    }
}

/// A function route's settings, from the config.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub route_key: String,
    /// `Handler("src/x.handler")` or a runtime `command`.
    pub handler: String,
    pub command: Option<Vec<String>>,
    pub timeout: Duration,
    pub memory_bytes: u64,
    pub concurrency: usize,
    /// `concurrency` was set (Lambda's reserved concurrency): past it an
    /// invocation is throttled at once, as Lambda throttles; unset, the
    /// default instances take turns with a bounded wait (see
    /// docs/compatibility.md).
    pub reserved: bool,
    pub environment: BTreeMap<String, String>,
    pub link: Vec<String>,
    /// Linked components known when the app was loaded (SST's links).
    pub resources: Vec<LinkedResource>,
    /// SST's `nodejs` build options.
    pub nodejs: Option<serde_json::Value>,
    /// The declared Lambda runtime (`nodejs22.x`); `None`: the default.
    pub runtime: Option<String>,
    /// The function role's IAM statements.
    pub permissions: Vec<PermissionStatement>,
    /// Its layers' content folders (`RouteConfig::layers`).
    pub layers: Vec<PathBuf>,
}

pub struct FunctionIntegration {
    description: String,
    /// For handler strings: the source file and export to check at start.
    export: Option<(PathBuf, String)>,
    pool: Arc<Pool>,
    /// The built handler file, shared with other routes naming it; it
    /// retires this pool's instances when the code changes.
    _bundle: Option<Arc<bundle::Bundle>>,
}

/// `$connect` → `MyApi-connect`: Lambda names allow no `$`.
pub fn function_name(api_name: &str, route_key: &str) -> String {
    let route: String = route_key
        .trim_start_matches('$')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{api_name}-{route}")
}

impl FunctionIntegration {
    /// Resolves and checks the handler now (start-up), starts nothing yet:
    /// instances start on the first invocation, as Lambda's cold starts.
    pub fn new(
        spec: &FunctionSpec,
        config_dir: &Path,
        env: Arc<Environment>,
    ) -> Result<FunctionIntegration, String> {
        let config_dir = &std::fs::canonicalize(if config_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            config_dir
        })
        .map_err(|e| format!("cannot find {}: {e}", config_dir.display()))?;
        let state_dir = config_dir.join(".wsgate");
        let name = function_name(&env.api_name, &spec.route_key);
        let mut export = None;
        let mut built = None;
        let (program, args, description, runtime_env) = match &spec.command {
            Some(command) => {
                let program = resolve_program(config_dir, &command[0]);
                (
                    program,
                    command[1..].to_vec(),
                    format!("command {}", command.join(" ")),
                    Vec::new(),
                )
            }
            None => {
                resolve::write_bootstraps(&state_dir)?;
                let build = resolve::BuildOptions {
                    nodejs: spec.nodejs.clone(),
                    runtime: spec.runtime.clone(),
                    node_paths: resolve::layer_node_paths(&spec.layers),
                };
                let bundle = bundle::bundle(config_dir, &state_dir, &spec.handler, &build)?;
                let resolved = bundle.resolved.clone();
                let (program, args) = resolve::program(config_dir, &state_dir, resolved.runtime);
                export = Some((resolved.source.clone(), resolved.export.clone()));
                built = Some(bundle);
                // The runtime the function declares, else SST's default
                // for its language (function.ts: `nodejs20.x`; Python's
                // `python3.11`).
                let kind = spec.runtime.clone().unwrap_or_else(|| {
                    match resolved.runtime {
                        resolve::Runtime::Node => "nodejs20.x",
                        resolve::Runtime::Python => "python3.11",
                    }
                    .to_string()
                });
                let mut runtime_env = vec![
                    (
                        "WSGATE_HANDLER_FILE".to_string(),
                        resolved.entry.display().to_string(),
                    ),
                    ("WSGATE_HANDLER_EXPORT".to_string(), resolved.export.clone()),
                    (
                        "AWS_EXECUTION_ENV".to_string(),
                        format!("AWS_Lambda_{kind}"),
                    ),
                    ("_HANDLER".to_string(), spec.handler.clone()),
                ];
                if resolved.runtime == resolve::Runtime::Python {
                    // Lambda's Python runtime writes print() at once
                    // (stdout is a pipe here, block-buffered otherwise).
                    runtime_env.push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
                    // SST's PYTHONPATH: the project's root, and `src/` in it.
                    let mut paths = vec![config_dir.to_path_buf()];
                    if config_dir.join("src").is_dir() {
                        paths.push(config_dir.join("src"));
                    }
                    // Layers, where Lambda's Python runtime looks in /opt.
                    paths.extend(resolve::layer_python_paths(&spec.layers));
                    if let Ok(joined) = std::env::join_paths(paths) {
                        runtime_env.push((
                            "PYTHONPATH".to_string(),
                            joined.to_string_lossy().into_owned(),
                        ));
                    }
                    // boto3, as Lambda's Python runtimes provide it; a
                    // handler that needs none still runs without it.
                    match crate::services::runtime_sdk::python_path() {
                        Ok(Some(path)) => runtime_env.push((
                            "WSGATE_PROVIDED_PATH".to_string(),
                            path.display().to_string(),
                        )),
                        Ok(None) => {}
                        Err(why) => tracing::warn!("{why}"),
                    }
                }
                (
                    program,
                    args,
                    format!(
                        "function {} ({kind}, {})",
                        spec.handler,
                        resolved.source.display()
                    ),
                    runtime_env,
                )
            }
        };
        let mut static_env = runtime_env;
        static_env.push(("LAMBDA_TASK_ROOT".into(), config_dir.display().to_string()));
        static_env.extend(spec.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        let launch = Launch {
            label: spec.route_key.clone(),
            program,
            args,
            cwd: config_dir.to_path_buf(),
            env: static_env,
            memory_limit_bytes: spec.memory_bytes,
            startup_output: Arc::default(),
        };
        let arn = format!("arn:aws:lambda:{}:{ACCOUNT_ID}:function:{name}", env.region);
        let (timeout, concurrency) = (spec.timeout, spec.concurrency);
        let waiting = if spec.reserved {
            0
        } else {
            concurrency * WAITING_PER_INSTANCE
        };
        let spec = spec.clone();
        let lambda_env = move || lambda_environment(&env, &spec, &name);
        let pool = Arc::new(Pool::new(
            launch,
            arn,
            timeout,
            concurrency,
            waiting,
            Box::new(lambda_env),
        ));
        if let Some(m) = metrics::get() {
            let weak = Arc::downgrade(&pool);
            m.on_scrape(move |m| weak.upgrade().map(|p| p.refresh_metrics(m)).is_some());
        }
        if let Some(bundle) = &built {
            bundle.serve(&pool);
        }
        Ok(FunctionIntegration {
            description,
            export,
            pool,
            _bundle: built,
        })
    }
}

/// A command's program: relative paths are relative to the config's folder.
fn resolve_program(config_dir: &Path, program: &str) -> PathBuf {
    if program.contains('/') && !Path::new(program).is_absolute() {
        config_dir.join(program)
    } else {
        PathBuf::from(program)
    }
}

/// The environment Lambda and SST give a function, computed when an
/// instance starts (the API's outputs are known by then).
fn lambda_environment(env: &Environment, spec: &FunctionSpec, name: &str) -> InstanceEnv {
    let lease = match &env.aws_credentials {
        Some(_) => None,
        None => Some(env.keyring.issue_session(name, env.policy(spec))),
    };
    let credentials = env
        .aws_credentials
        .as_ref()
        .or(lease.as_ref().map(|l| &l.credentials))
        .expect("a lease or the user's credentials");
    let memory_mb = (spec.memory_bytes / (1024 * 1024)).to_string();
    let mut vars: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!(
                "{}/[$LATEST]{}",
                chrono::Utc::now().format("%Y/%m/%d"),
                crate::ids::new_id()
            ),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
        ("AWS_REGION", env.region.clone()),
        ("AWS_DEFAULT_REGION", env.region.clone()),
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            credentials.secret_access_key.clone(),
        ),
        ("TZ", ":UTC".to_string()),
        (
            "SST_RESOURCE_App",
            serde_json::json!({ "name": env.app.name, "stage": env.app.stage }).to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(token) = &credentials.session_token {
        vars.push(("AWS_SESSION_TOKEN".into(), token.clone()));
    }
    vars.extend(env.extra.iter().cloned());
    for resource in &spec.resources {
        vars.push((
            format!("SST_RESOURCE_{}", resource.name),
            resource.properties.to_string(),
        ));
    }
    for linked in &spec.link {
        let known = spec.resources.iter().any(|r| r.name == *linked);
        if *linked == env.api_name
            && !known
            && let Some(outputs) = env.outputs.read().expect("lock poisoned").as_ref()
        {
            vars.push((
                format!("SST_RESOURCE_{linked}"),
                serde_json::json!({
                    "type": "sst.aws.ApiGatewayWebSocket",
                    "url": outputs.url,
                    "managementEndpoint": outputs.management_endpoint,
                })
                .to_string(),
            ));
        }
    }
    if let Some(outputs) = env.outputs.read().expect("lock poisoned").as_ref() {
        vars.push((
            "WSGATE_HOSTS".into(),
            served_hosts(env, outputs).to_string(),
        ));
    }
    InstanceEnv { vars, lease }
}

/// The host names this API answers to on AWS, each with the local port
/// that serves it: `<apiId>.execute-api.<region>.amazonaws.com` (what
/// handlers build from `requestContext.apiId`) and the custom domain; and
/// the local services' regional names (`dynamodb.<region>.amazonaws.com`). The
/// bootstraps send a handler's connections to these names (on 443, 80 or
/// no port) to that port, keeping the name for TLS and `Host`, so the
/// URLs a handler writes for AWS reach wsgate.
fn served_hosts(env: &Environment, outputs: &Outputs) -> serde_json::Value {
    let Ok(management) = url::Url::parse(&outputs.management_endpoint) else {
        return serde_json::json!({});
    };
    let Some(port) = management.port_or_known_default() else {
        return serde_json::json!({});
    };
    let mut hosts = serde_json::Map::new();
    for (name, port) in &env.hosts {
        hosts.insert(name.clone(), (*port).into());
    }
    hosts.insert(
        crate::ids::execute_api_host(&env.api_id, &env.region),
        port.into(),
    );
    if let Some(domain) = url::Url::parse(&outputs.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .filter(|host| Some(host.as_str()) != management.host_str())
    {
        hosts.insert(domain, port.into());
    }
    serde_json::Value::Object(hosts)
}

#[async_trait]
impl Integration for FunctionIntegration {
    async fn invoke(
        &self,
        event: &Event,
        _context: &Context,
    ) -> Result<Response, IntegrationError> {
        let reply = self
            .invoke_json(Bytes::from(event.to_json()), event.request_id())
            .await?;
        parse_proxy_response(&reply)
    }

    async fn invoke_json(
        &self,
        payload: Bytes,
        request_id: &str,
    ) -> Result<Bytes, IntegrationError> {
        self.pool
            .invoke(payload, request_id.to_string())
            .await
            .map_err(|failure| match failure {
                pool::InvokeFailure::Handler {
                    error_type,
                    message,
                } => IntegrationError::Handler {
                    error_type,
                    message,
                },
                other => IntegrationError::Failed(other.to_string()),
            })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn kind(&self) -> &'static str {
        "function"
    }

    fn instances(&self) -> Option<crate::integrations::InstanceCounts> {
        Some(self.pool.instance_counts())
    }

    fn concurrency(&self) -> Option<usize> {
        Some(self.pool.concurrency())
    }

    async fn check(&self) -> Result<(), String> {
        self.pool.warm().await.map_err(|why| match &self.export {
            Some((source, export)) => {
                format!("{}: cannot load export `{export}`: {why}", source.display())
            }
            None => format!("cannot start: {why}"),
        })
    }
}
