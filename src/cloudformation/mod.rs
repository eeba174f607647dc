//! CloudFormation templates as the app definition: the third front door,
//! beside `wsgate.toml` and `sst.config.ts`. A template (`yaml`, short tags
//! and all) is expanded by SAM's own transform when it names it (`sam`),
//! its intrinsics evaluated as CloudFormation does (`intrinsics`, with what
//! each resource type's `Ref`/`Fn::GetAtt` gives in `attributes`), and its
//! WebSocket APIs, functions and tables become the same `config::Config`s
//! the other doors give (`build`), each property checked against what
//! wsgate runs (`properties`).

pub mod attributes;
pub mod build;
pub mod cdk;
pub mod intrinsics;
pub mod properties;
pub mod sam;
pub mod serverless;
pub mod yaml;

use crate::config::{AppIdentity, BinaryMode, Config, ConfigError, Problem, Retention, Source};
use crate::gateway::limits::Limits;
use crate::sst::definition::{DomainDefinition, TableDefinition};
use build::Refusal;
use intrinsics::{Pseudo, Resolver};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

/// The template files looked for in an app's folder, in SAM's order.
pub const TEMPLATE_FILES: &[&str] = &["template.yaml", "template.yml", "template.json"];

/// Larger than any template CloudFormation takes (1 MB from S3).
const MAX_TEMPLATE_BYTES: u64 = 16 * 1024 * 1024;

/// Whether a file name is a CloudFormation template's.
pub fn is_template_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json" | "template"))
}

/// How a template is loaded.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where the first WebSocket API is served; more take the next ports.
    pub listen: SocketAddr,
    /// Bind each API's listener now (serving) or only name it (checking).
    pub bind: bool,
    /// The region the tool deploys to (a Serverless service's
    /// `provider.region`, a CDK stack's environment); `None`:
    /// samconfig.toml's, else us-east-1. Handlers sign for it, so wsgate
    /// serves in it.
    pub region: Option<String>,
    /// `--stage`: which of an API's stages to serve.
    pub stage: Option<String>,
    /// `--parameter-overrides K=V`, over samconfig.toml's.
    pub parameter_overrides: BTreeMap<String, String>,
    /// `--stack-name`; else samconfig.toml's, else the folder's name.
    pub stack_name: Option<String>,
    /// Serve each API's stage at `/` too (`Config::root_paths`).
    pub root_paths: bool,
    /// Where the APIs are served already, in the template's order (a
    /// reload): their endpoints are these.
    pub serving_at: Vec<SocketAddr>,
}

/// A template, loaded.
pub struct Stack {
    pub name: String,
    pub apis: Vec<(Config, Option<TcpListener>)>,
    pub tables: Vec<TableDefinition>,
    /// `<type> <logical id>` of the resources not run locally.
    pub stand_ins: Vec<String>,
    /// The template's `Outputs`, evaluated.
    pub outputs: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Template(#[from] ConfigError),
    #[error("{0}")]
    Other(String),
}

/// Reads a template and builds its WebSocket APIs' configs. `config_file`
/// is the file the app is defined in (the template itself, `cdk.json`,
/// `serverless.yml`): handler paths and `.wsgate` are in its folder.
/// `stack_name` is the name the tool that made the template gives it.
pub async fn load(
    file: &Path,
    config_file: &Path,
    stack_name: Option<String>,
    options: &LoadOptions,
) -> Result<Stack, LoadError> {
    let canonical = |path: &Path| {
        std::fs::canonicalize(path)
            .map_err(|e| LoadError::Other(format!("cannot read {}: {e}", path.display())))
    };
    let file = canonical(file)?;
    let config_file = canonical(config_file)?;
    let template_dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let dir = config_file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let refuse = |line: Option<usize>, key: Option<String>, message: String| {
        LoadError::Template(ConfigError {
            file: file.clone(),
            problems: vec![Problem { line, key, message }],
        })
    };
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    if size > MAX_TEMPLATE_BYTES {
        return Err(refuse(
            None,
            None,
            format!("the template is {size} bytes; CloudFormation takes at most 1 MB"),
        ));
    }
    let text = std::fs::read_to_string(&file)
        .map_err(|e| LoadError::Other(format!("cannot read {}: {e}", file.display())))?;
    let document = yaml::parse(&text).map_err(|e| refuse(Some(e.line), None, e.message))?;
    if !document.root.get("Resources").is_some_and(Value::is_object) {
        return Err(refuse(
            None,
            None,
            "this is not a CloudFormation template: it has no Resources".into(),
        ));
    }
    let samconfig = SamConfig::read(&dir);
    let mut overrides = samconfig.parameter_overrides.clone();
    overrides.extend(options.parameter_overrides.clone());
    let stack_name = stack_name
        .or_else(|| options.stack_name.clone())
        .or(samconfig.stack_name)
        .unwrap_or_else(|| folder_stack_name(&dir));
    let region = options
        .region
        .clone()
        .or(samconfig.region)
        .unwrap_or_else(|| crate::config::DEFAULT_REGION.to_string());
    let pseudo = Pseudo {
        region: region.clone(),
        account_id: crate::auth::keyring::ACCOUNT_ID.into(),
        stack_name: stack_name.clone(),
    };
    let state_dir = dir.join(".wsgate");

    // SAM: AWS's own transform expands it first.
    let transforms = sam::transforms(&document.root);
    if let Some(path) = for_each(&document.root) {
        return Err(refuse(
            document.line(&path),
            path.split('/').nth(1).map(String::from),
            "not supported by wsgate: Fn::ForEach (AWS::LanguageExtensions' loops)".into(),
        ));
    }
    let root = if transforms.iter().any(|t| t == sam::SAM_TRANSFORM) {
        let mut parameters = overrides.clone();
        parameters.insert("AWS::Region".into(), pseudo.region.clone());
        parameters.insert("AWS::AccountId".into(), pseudo.account_id.clone());
        parameters.insert("AWS::StackName".into(), pseudo.stack_name.clone());
        parameters.insert("AWS::Partition".into(), pseudo.partition().into());
        sam::expand(
            document.root.clone(),
            &state_dir,
            &parameters,
            &pseudo.region,
        )
        .await
        .map_err(|errors| {
            LoadError::Template(ConfigError {
                file: file.clone(),
                problems: errors
                    .into_iter()
                    .map(|e| Problem {
                        line: e
                            .logical_id
                            .as_deref()
                            .and_then(|id| resource_line(&document, id)),
                        key: e.logical_id,
                        message: e.message,
                    })
                    .collect(),
            })
        })?
    } else {
        if let Some(other) = transforms.iter().find(|t| *t != sam::LANGUAGE_EXTENSIONS) {
            return Err(refuse(
                document.line("Transform"),
                None,
                format!(
                    "not supported by wsgate: the Transform {other} (a macro that runs in AWS)"
                ),
            ));
        }
        document.root.clone()
    };

    let refusal = |refusal: Refusal| {
        let line = refusal
            .logical_id
            .as_deref()
            .and_then(|id| match &refusal.property {
                Some(property) => document
                    .line(&format!("Resources/{id}/Properties/{property}"))
                    .or_else(|| resource_line(&document, id)),
                None => resource_line(&document, id),
            });
        refuse(line, refusal.logical_id, refusal.message)
    };
    let parameter_error = |(name, message): (String, String)| {
        refuse(
            document.line(&format!("Parameters/{name}")),
            Some(name),
            message,
        )
    };

    // The WebSocket APIs first: their listeners give their endpoints.
    let names_only = Resolver::new(&root, pseudo.clone(), &overrides, BTreeMap::new())
        .map_err(parameter_error)?;
    let (websocket, others) = build::websocket_apis(&names_only).map_err(refusal)?;
    if websocket.is_empty() {
        let message = if others.is_empty() {
            "the template defines no WebSocket API (AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET, or AWS::Serverless::WebSocketApi): there is nothing for wsgate to serve".to_string()
        } else {
            format!(
                "the template defines only REST or HTTP APIs ({}): wsgate serves WebSocket APIs",
                others.join(", ")
            )
        };
        return Err(refuse(None, None, message));
    }
    let mut listeners = Vec::new();
    let mut endpoints = BTreeMap::new();
    for (index, id) in websocket.iter().enumerate() {
        let mut addr = match options.serving_at.get(index) {
            Some(running) => *running,
            None => crate::listen::nth(options.listen, index),
        };
        let listener = if options.bind {
            let (bound, listener) = crate::listen::bind(addr).map_err(LoadError::Other)?;
            addr = bound;
            Some(listener)
        } else {
            None
        };
        endpoints.insert(
            id.clone(),
            format!("wss://{}", crate::listen::reachable(addr)),
        );
        listeners.push((addr, listener));
    }
    let resolver = Resolver::new(&root, pseudo, &overrides, endpoints).map_err(parameter_error)?;
    let folders = build::Folders {
        template: &template_dir,
        app: &dir,
        state: &state_dir,
        sam: transforms.iter().any(|t| t == sam::SAM_TRANSFORM),
    };
    let plan =
        build::plan(&resolver, folders, options.stage.as_deref(), &websocket).map_err(refusal)?;

    // The local CA covers every name served before it issues for any.
    let mut names = Vec::new();
    for api in &plan.apis {
        names.extend(crate::local_ca::served_names(None, &api.api_id, &region));
        names.extend(api.domain.as_ref().map(|(name, _)| name.clone()));
    }
    crate::local_ca::LocalCa::open_covering(&crate::local_ca::dir(&dir), &names)
        .map_err(|message| refuse(None, None, message))?;

    let mut apis = Vec::new();
    let mut invokable = Some(plan.invokable);
    for (api, (addr, listener)) in plan.apis.into_iter().zip(listeners) {
        let limits = Limits {
            throttle: api.throttle,
            ..Limits::default()
        };
        let domain = match &api.domain {
            Some((name, path)) => Some(
                crate::sst::domain_settings(
                    &config_file,
                    &DomainDefinition {
                        name: name.clone(),
                        path: path.clone(),
                    },
                )
                .map_err(|message| {
                    refuse(
                        resource_line(&document, &api.logical_id),
                        Some(api.logical_id.clone()),
                        message,
                    )
                })?,
            ),
            None => None,
        };
        let config = Config {
            file: config_file.clone(),
            source: Source::CloudFormation,
            root_paths: options.root_paths,
            app: AppIdentity {
                name: stack_name.clone(),
                stage: api.stage.clone(),
            },
            name: api.name,
            stage: api.stage,
            route_selection_expression: api.route_selection_expression,
            api_id: Some(api.api_id),
            listen: Some(addr),
            binary: BinaryMode::Reject,
            // CloudFormation keeps access logs in the log group the stage
            // names, for as long as that group says; wsgate keeps its own.
            access_log_retention: Retention::Forever,
            access_log_format: api.access_log_format.unwrap_or_default(),
            limits,
            routes: api.routes,
            domain,
            local_tls: true,
            region: region.clone(),
            credentials: Vec::new(),
            authorizers: api.authorizers,
            // The functions no route runs are invokable through the first
            // API's local Lambda API.
            invokable: invokable.take().unwrap_or_default(),
            cluster: None,
        };
        apis.push((config, listener));
    }
    Ok(Stack {
        name: stack_name,
        outputs: build::outputs(&resolver, &root),
        apis,
        tables: plan.tables,
        stand_ins: plan.stand_ins,
    })
}

/// Runs a tool that writes a template (`cdk synth`, `serverless
/// package`) in a process group of its own, so that everything it starts
/// (the CDK app, its compiler) ends with it when it overruns `timeout` or
/// wsgate stops waiting; `what` names it in errors.
pub async fn run_tool(
    mut command: tokio::process::Command,
    what: &str,
    timeout: std::time::Duration,
) -> Result<std::process::Output, String> {
    command
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let group = child.id().map(|pid| pid as libc::pid_t);
    // Ends the group unless the tool finished (then it is disarmed).
    struct Group(Option<libc::pid_t>);
    impl Drop for Group {
        fn drop(&mut self) {
            if let Some(pid) = self.0 {
                // SAFETY: signals a process group this function created.
                unsafe {
                    libc::killpg(pid, libc::SIGKILL);
                }
            }
        }
    }
    let mut guard = Group(group);
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("{what} took longer than {}s", timeout.as_secs()))?
        .map_err(|e| format!("{what}: {e}"))?;
    guard.0 = None;
    Ok(output)
}

/// The path of the first `Fn::ForEach::<name>` key in the template's
/// sections, if any.
fn for_each(root: &Value) -> Option<String> {
    ["Resources", "Outputs", "Conditions"]
        .iter()
        .find_map(|section| {
            root.get(section)?
                .as_object()?
                .keys()
                .find(|key| key.starts_with("Fn::ForEach::"))
                .map(|key| format!("{section}/{key}"))
        })
}

/// The line of a resource, or of the SAM resource that made it (SAM names
/// what it generates after its own logical id: `ApiConnectRoute`).
fn resource_line(document: &yaml::Document, id: &str) -> Option<usize> {
    if let Some(line) = document.resource_line(id) {
        return Some(line);
    }
    document
        .root
        .get("Resources")
        .and_then(Value::as_object)?
        .keys()
        .filter(|original| id.starts_with(original.as_str()))
        .max_by_key(|original| original.len())
        .and_then(|original| document.resource_line(original))
}

/// A stack name from the folder's name: CloudFormation's stack names are
/// letters, digits and `-`, starting with a letter.
fn folder_stack_name(dir: &Path) -> String {
    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or("stack");
    let name: String = folder
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-');
    if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.chars().take(128).collect()
    } else {
        format!("stack-{name}").chars().take(128).collect()
    }
}

/// What `sam deploy` reads from samconfig.toml's
/// `[default.deploy.parameters]`: the stack name and parameter overrides.
#[derive(Debug, Default)]
struct SamConfig {
    stack_name: Option<String>,
    region: Option<String>,
    parameter_overrides: BTreeMap<String, String>,
}

impl SamConfig {
    fn read(dir: &Path) -> SamConfig {
        let Ok(text) = std::fs::read_to_string(dir.join("samconfig.toml")) else {
            return SamConfig::default();
        };
        let Ok(table) = text.parse::<toml::Table>() else {
            tracing::warn!(
                "samconfig.toml is not TOML; its stack name and parameters are not used"
            );
            return SamConfig::default();
        };
        let section = |name: &str| {
            table
                .get("default")
                .and_then(|d| d.get(name))
                .and_then(|d| d.get("parameters"))
        };
        let value = |key: &str| {
            section("deploy")
                .and_then(|p| p.get(key))
                .or_else(|| section("global").and_then(|p| p.get(key)))
        };
        let stack_name = value("stack_name")
            .and_then(|v| v.as_str())
            .map(String::from);
        let region = value("region").and_then(|v| v.as_str()).map(String::from);
        let overrides = match value("parameter_overrides") {
            Some(toml::Value::String(text)) => parse_overrides(&shell_words(text)),
            Some(toml::Value::Array(items)) => parse_overrides(
                &items
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect::<Vec<_>>(),
            ),
            _ => Ok(BTreeMap::new()),
        };
        SamConfig {
            stack_name,
            region,
            parameter_overrides: overrides.unwrap_or_default(),
        }
    }
}

/// `K=V` pairs as `sam deploy --parameter-overrides` takes them (also
/// `ParameterKey=K,ParameterValue=V`).
pub fn parse_overrides(items: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut overrides = BTreeMap::new();
    for item in items {
        if let Some(rest) = item.strip_prefix("ParameterKey=") {
            let (key, value) = rest
                .split_once(",ParameterValue=")
                .ok_or_else(|| format!("\"{item}\" is not ParameterKey=K,ParameterValue=V"))?;
            overrides.insert(key.to_string(), value.to_string());
            continue;
        }
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("\"{item}\" is not K=V"))?;
        if key.is_empty() {
            return Err(format!("\"{item}\" has no parameter name"));
        }
        overrides.insert(key.to_string(), value.to_string());
    }
    Ok(overrides)
}

/// A samconfig `parameter_overrides` string split as a shell would split
/// it (`A=1 B="two words"`).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests;
