//! `sst.config.ts` as the app definition: the evaluator (`evaluate`, with
//! `runtimes/sst/`) runs the config in Node.js with SST's globals and
//! wsgate's components, and its JSON (`definition`) becomes the same
//! `config::Config` a `wsgate.toml` gives, one per API. Secrets are kept
//! by `secrets`.

pub mod definition;
pub mod evaluate;
pub mod secrets;

use crate::access_log::format::Format;
use crate::config::{
    self, AppIdentity, AuthorizerConfig, BinaryMode, Config, HandlerSpec, LinkedResource,
    Retention, RouteAuth, RouteConfig, Source,
};
use crate::gateway::limits::Limits;
use crate::gateway::throttle::ThrottleSettings;
use definition::{ApiDefinition, Definition, FunctionDefinition, TableDefinition};
use evaluate::{EvaluateError, Evaluation, ListenAnswer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config file SST apps have.
pub const CONFIG_FILE: &str = "sst.config.ts";

/// How long the config may take to evaluate.
pub const EVALUATE_TIMEOUT: Duration = Duration::from_secs(60);

/// How an SST app is loaded.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `--stage`; `None`: SST's personal stage.
    pub stage: Option<String>,
    /// `$dev`.
    pub dev: bool,
    /// Where the first API is served; more APIs take the next ports.
    pub listen: SocketAddr,
    /// Bind each API's listener now (serving) or only name it (checking).
    pub bind: bool,
    /// APIs are served with TLS beside plain ws/http (`wss://` outputs).
    pub tls: bool,
    pub region: String,
    pub timeout: Duration,
}

/// An SST app, loaded.
pub struct SstApp {
    pub definition: Definition,
    /// One config per API, with its listener when bound.
    pub apis: Vec<(Config, Option<TcpListener>)>,
    pub tables: Vec<TableDefinition>,
    pub stage: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SstError {
    #[error("{file}{}: {message}", location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default())]
    Config {
        file: PathBuf,
        location: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

/// SST's personal stage: `.sst/stage` in the app if SST wrote one, else
/// the user's name.
pub fn default_stage(app_dir: &Path) -> String {
    if let Ok(stage) = std::fs::read_to_string(app_dir.join(".sst").join("stage"))
        && !stage.trim().is_empty()
    {
        return stage.trim().to_string();
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_name)
        .unwrap_or_else(|| "dev".into());
    let stage: String = user
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if stage.trim_matches('-').is_empty() {
        "dev".into()
    } else {
        stage
    }
}

/// The name of the user wsgate runs as, from the password database.
fn user_name() -> Option<String> {
    // SAFETY: getpwuid returns a pointer into static storage (or null);
    // the name is copied out at once.
    unsafe {
        let entry = libc::getpwuid(libc::geteuid());
        if entry.is_null() || (*entry).pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*entry).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// Evaluates the app's config and builds its APIs' configs.
pub async fn load(config_file: &Path, options: &LoadOptions) -> Result<SstApp, SstError> {
    let config_file = std::fs::canonicalize(config_file)
        .map_err(|e| SstError::Other(format!("cannot read {}: {e}", config_file.display())))?;
    let app_dir = config_file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let stage = options
        .stage
        .clone()
        .unwrap_or_else(|| default_stage(&app_dir));
    if !config::validate::is_valid_stage(&stage) || stage == "$default" {
        return Err(SstError::Other(format!(
            "\"{stage}\" is not a stage name: use letters, digits, - and _"
        )));
    }
    let esbuild = crate::toolchain::esbuild(&app_dir).map_err(SstError::Other)?;
    let secrets = secrets::for_stage(&app_dir, &stage).map_err(SstError::Other)?;
    let evaluation = Evaluation {
        config_file: &config_file,
        stage: &stage,
        dev: options.dev,
        region: &options.region,
        esbuild_js: &esbuild.js_api(),
        secrets: &secrets,
        timeout: options.timeout,
    };
    let mut listeners: Vec<(String, SocketAddr, Option<TcpListener>)> = Vec::new();
    let listen = |api: &str| -> Result<ListenAnswer, String> {
        let mut addr = crate::listen::nth(options.listen, listeners.len());
        let listener = if options.bind {
            let (bound, listener) = crate::listen::bind(addr)?;
            addr = bound;
            Some(listener)
        } else {
            None
        };
        listeners.push((api.to_string(), addr, listener));
        Ok(ListenAnswer {
            host: crate::listen::reachable(addr).to_string(),
            port: addr.port(),
            tls: options.tls,
        })
    };
    let definition =
        evaluate::evaluate(&evaluation, listen)
            .await
            .map_err(|error| match error {
                EvaluateError::Config {
                    message,
                    location,
                    secret: _,
                } => SstError::Config {
                    file: config_file.clone(),
                    location,
                    message,
                },
                EvaluateError::Run(message) => SstError::Other(message),
            })?;
    if definition.apis.is_empty() {
        return Err(SstError::Config {
            file: config_file.clone(),
            location: None,
            message: "the app defines no sst.aws.ApiGatewayWebSocket: there is nothing for wsgate to serve".into(),
        });
    }
    // The local CA covers every name the app's APIs are served by before
    // it issues for any, so it is not made anew halfway through.
    let mut names = Vec::new();
    for api in &definition.apis {
        let api_id = api
            .api_id
            .clone()
            .unwrap_or_else(|| crate::ids::api_id_for(&api.name));
        names.extend(crate::local_ca::served_names(
            None,
            &api_id,
            &options.region,
        ));
        names.extend(api.domain.as_ref().map(|d| d.name.clone()));
    }
    crate::local_ca::LocalCa::open_covering(&crate::local_ca::dir(&app_dir), &names).map_err(
        |message| SstError::Config {
            file: config_file.clone(),
            location: None,
            message,
        },
    )?;
    let mut apis = Vec::new();
    for (index, api) in definition.apis.iter().enumerate() {
        let (addr, listener) = match listeners.iter().position(|(name, _, _)| *name == api.name) {
            Some(i) => {
                let (_, addr, listener) = listeners.remove(i);
                (addr, listener)
            }
            None => (options.listen, None),
        };
        let in_config = |message| SstError::Config {
            file: config_file.clone(),
            location: None,
            message,
        };
        let mut config =
            api_config(&config_file, &definition, api, addr, &options.region).map_err(in_config)?;
        // The functions routes link run once, with the first API.
        if index == 0 {
            config.invokable = invokable(&definition).map_err(|message| SstError::Config {
                file: config_file.clone(),
                location: None,
                message,
            })?;
        }
        apis.push((config, listener));
    }
    Ok(SstApp {
        tables: definition.tables.clone(),
        definition,
        apis,
        stage,
    })
}

/// One API of the app as the config wsgate serves.
fn api_config(
    file: &Path,
    definition: &Definition,
    api: &ApiDefinition,
    listen: SocketAddr,
    region: &str,
) -> Result<Config, String> {
    let name = &api.name;
    // SST takes any component name (platform/src/components/component.ts
    // checks none); wsgate names a folder after the API (its access log).
    config::validate::check_component_name(name)?;
    let mut limits = Limits::default();
    if api.throttling_burst_limit.is_some() || api.throttling_rate_limit.is_some() {
        let rate = api
            .throttling_rate_limit
            .or(api.throttling_burst_limit)
            .unwrap_or(0.0);
        let burst = api.throttling_burst_limit.unwrap_or(rate.ceil());
        limits.throttle = Some(ThrottleSettings {
            burst_limit: burst.clamp(0.0, f64::from(u32::MAX)) as u32,
            rate_limit: rate.max(0.0),
        });
    }
    let access_log_format = match &api.access_log_format {
        Some(format) => Format::for_stage(format)
            .map_err(|e| format!("{name}: transform.stage accessLogSettings.format: {e}"))?,
        None => Format::default(),
    };
    let access_log_retention = match api.access_log_retention_days {
        Some(days) if days <= 0.0 => Retention::Forever,
        Some(days) => Retention::Days(days as u32),
        None => Retention::Days(30),
    };
    let stage = api.stage.clone().unwrap_or_else(|| "$default".into());
    if !config::validate::is_valid_stage(&stage) {
        return Err(format!("{name}: \"{stage}\" is not a stage name"));
    }
    let functions: BTreeMap<&str, &FunctionDefinition> = definition
        .functions
        .iter()
        .map(|f| (f.name.as_str(), f))
        .collect();
    let function = |fn_name: &str| {
        functions
            .get(fn_name)
            .copied()
            .ok_or_else(|| format!("{name}: function {fn_name} is missing from the definition"))
    };
    let mut routes = Vec::new();
    for route in &api.routes {
        config::validate::check_route_key(&route.key)
            .map_err(|e| format!("{name}.route(\"{}\"): {e}", route.key.escape_debug()))?;
        let mut config = route_config(definition, &route.key, function(&route.function)?)
            .map_err(|e| format!("{name}.route(\"{}\"): {e}", route.key))?;
        config.auth = match &route.auth {
            None => None,
            Some(auth) if auth.iam == Some(true) => Some(RouteAuth::Iam),
            Some(auth) => auth.lambda.clone().map(RouteAuth::Lambda),
        };
        if config.auth.is_some() && route.key != "$connect" {
            return Err(format!(
                "{name}.route(\"{}\"): API Gateway authorizes only at $connect; `auth` belongs on the $connect route",
                route.key
            ));
        }
        routes.push(config);
    }
    let mut authorizers = Vec::new();
    for authorizer in &api.authorizers {
        let handler = route_config(
            definition,
            &authorizer.name,
            function(&authorizer.function)?,
        )
        .map_err(|e| format!("{name}.addAuthorizer(\"{}\"): {e}", authorizer.name))?;
        let identity_sources = authorizer
            .identity_sources
            .iter()
            .map(|source| {
                config::parse_identity_source(source).ok_or_else(|| {
                    format!("{name}.addAuthorizer(\"{}\"): \"{source}\" is not route.request.header.<name> or route.request.querystring.<name>", authorizer.name)
                })
            })
            .collect::<Result<_, _>>()?;
        authorizers.push(AuthorizerConfig {
            name: authorizer.name.clone(),
            handler,
            identity_sources,
        });
    }
    for route in &routes {
        if let Some(RouteAuth::Lambda(authorizer)) = &route.auth
            && !authorizers.iter().any(|a| a.name == *authorizer)
        {
            return Err(format!(
                "{name}.route(\"{}\"): auth.lambda names no authorizer of this API (\"{authorizer}\"); use the id of one addAuthorizer() returned",
                route.key
            ));
        }
    }
    Ok(Config {
        cluster: None,
        file: file.to_path_buf(),
        source: Source::Sst,
        root_paths: false,
        app: AppIdentity {
            name: definition.app.name.clone(),
            stage: definition.app.stage.clone(),
        },
        name: name.clone(),
        stage,
        route_selection_expression: api
            .route_selection_expression
            .clone()
            .unwrap_or_else(|| crate::gateway::router::DEFAULT_EXPRESSION.into()),
        api_id: api.api_id.clone(),
        listen: Some(listen),
        binary: BinaryMode::Reject,
        access_log_retention,
        access_log_format,
        limits,
        routes,
        domain: api
            .domain
            .as_ref()
            .map(|d| domain_settings(file, d))
            .transpose()?,
        local_tls: true,
        region: region.to_string(),
        credentials: Vec::new(),
        authorizers,
        invokable: Vec::new(),
    })
}

/// SST's `domain` (a name, a base path): served with a certificate the
/// local CA issues for it, as wsgate cannot use an ACM certificate.
pub(crate) fn domain_settings(
    file: &Path,
    domain: &definition::DomainDefinition,
) -> Result<crate::domain::DomainSettings, String> {
    let app_dir = file.parent().unwrap_or(Path::new("."));
    let ca = crate::local_ca::LocalCa::open_covering(
        &crate::local_ca::dir(app_dir),
        std::slice::from_ref(&domain.name),
    )?;
    let label: String = domain
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let issued = ca.issue(
        &format!("domain-{label}"),
        std::slice::from_ref(&domain.name),
    )?;
    Ok(crate::domain::DomainSettings {
        name: domain.name.clone(),
        path: domain
            .path
            .as_ref()
            .map(|p| p.trim_matches('/').to_string())
            .filter(|p| !p.is_empty()),
        certificate: crate::domain::CertificateSource::Files {
            cert: issued.cert,
            key: issued.key,
        },
    })
}

/// The `sst.aws.Function`s some function links: invoked through the local
/// Lambda API, by their name on Lambda.
fn invokable(definition: &Definition) -> Result<Vec<RouteConfig>, String> {
    let linked: std::collections::BTreeSet<&str> = definition
        .functions
        .iter()
        .flat_map(|f| f.links.iter().map(String::as_str))
        .collect();
    definition
        .functions
        .iter()
        .filter(|f| linked.contains(f.name.as_str()))
        .map(|f| {
            route_config(definition, &f.physical_name, f)
                .map_err(|e| format!("function {}: {e}", f.name))
        })
        .collect()
}

/// A function of the app as a route's handler; what is refused of it
/// names the line that made it.
fn route_config(
    definition: &Definition,
    key: &str,
    function: &FunctionDefinition,
) -> Result<RouteConfig, String> {
    function_route(definition, key, function).map_err(|why| match &function.location {
        Some(location) => format!("{location}: {why}"),
        None => why,
    })
}

fn function_route(
    definition: &Definition,
    key: &str,
    function: &FunctionDefinition,
) -> Result<RouteConfig, String> {
    if let Some(runtime) = &function.runtime
        && !(runtime.starts_with("nodejs") || runtime.starts_with("python"))
    {
        return Err(format!(
            "not supported by wsgate: the {runtime} runtime (function {}); Node.js and Python handlers run",
            function.name
        ));
    }
    if !config::validate::is_handler_string(&function.handler) {
        return Err(format!(
            "\"{}\" is not a handler string: expected \"<file path>.<export>\"",
            function.handler
        ));
    }
    config::check_handler_path(&function.handler)?;
    let timeout = match &function.timeout {
        Value::String(text) => config::parse_duration(text)?,
        Value::Number(n) => Duration::from_secs_f64(n.as_f64().unwrap_or(20.0).clamp(0.05, 900.0)),
        other => return Err(format!("timeout {other} is not a duration")),
    };
    let memory = match &function.memory {
        Value::String(text) => config::parse_size(text)?,
        Value::Number(n) => (n.as_f64().unwrap_or(1024.0).clamp(1.0, 1e7) * 1024.0 * 1024.0) as u64,
        other => return Err(format!("memory {other} is not a size")),
    };
    let environment = function
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), evaluate::describe(v)))
        .collect();
    let resources = function
        .links
        .iter()
        .filter_map(|name| definition.links.get(name))
        .map(|link| {
            if link.stand_in {
                tracing::warn!(
                    "{} links {} ({}), which wsgate does not run: Resource.{} has placeholder values",
                    function.name,
                    link.name,
                    link.properties.get("type").and_then(serde_json::Value::as_str).unwrap_or("a stand-in"),
                    link.name
                );
            }
            LinkedResource {
                name: link.name.clone(),
                properties: Value::Object(link.properties.clone()),
            }
        })
        .collect();
    Ok(RouteConfig {
        key: key.to_string(),
        line: 0,
        handler: HandlerSpec::Handler(function.handler.clone()),
        timeout: Some(timeout),
        memory: Some(memory),
        environment,
        link: function.links.clone(),
        auth: None,
        return_response: false,
        concurrency: function.concurrency.map(|c| c.max(1.0) as usize),
        resources,
        nodejs: function.nodejs.clone(),
        runtime: function.runtime.clone(),
        permissions: function.permissions.clone(),
        layers: Vec::new(),
    })
}
