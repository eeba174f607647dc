//! An app from any front door, served: finds the config (`wsgate.toml`,
//! `sst.config.ts` or a CloudFormation template), loads it into API
//! configs, starts the local services its components need, and serves
//! every API.

use crate::cloudformation;
use crate::config::{self, Config};
use crate::integrations::function::Hosting;
use crate::services::dynamodb::DynamoDb;
use crate::services::hybrid;
use crate::services::lambda::LambdaApi;
use crate::sst::definition::{Definition, TableDefinition};
use crate::sst::{self, SstApp};
use crate::{Server, WebSocketApi};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which front door an app comes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFile {
    Toml(PathBuf),
    Sst(PathBuf),
    /// A CloudFormation or SAM template.
    CloudFormation(PathBuf),
    /// A CDK app's `cdk.json`.
    Cdk(PathBuf),
    /// A Serverless Framework service's `serverless.yml`.
    Serverless(PathBuf),
}

impl ConfigFile {
    pub fn path(&self) -> &Path {
        match self {
            ConfigFile::Toml(p)
            | ConfigFile::Sst(p)
            | ConfigFile::CloudFormation(p)
            | ConfigFile::Cdk(p)
            | ConfigFile::Serverless(p) => p,
        }
    }

    /// The app's folder: handler paths and `.wsgate/` are relative to it.
    pub fn dir(&self) -> &Path {
        self.path().parent().unwrap_or(Path::new("."))
    }
}

/// The config an explicit `--config` names, or the one in `dir`:
/// `wsgate.toml` first, then `sst.config.ts`.
pub fn find_config(explicit: Option<&Path>, dir: &Path) -> Result<ConfigFile, String> {
    let classify = |path: PathBuf| {
        let is_sst = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".ts") || n.ends_with(".js") || n.ends_with(".mts"));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if cloudformation::serverless::SERVERLESS_FILES.contains(&name) {
            ConfigFile::Serverless(path)
        } else if is_sst {
            ConfigFile::Sst(path)
        } else if name == cloudformation::cdk::CDK_JSON {
            ConfigFile::Cdk(path)
        } else if cloudformation::is_template_file(&path) {
            ConfigFile::CloudFormation(path)
        } else {
            ConfigFile::Toml(path)
        }
    };
    if let Some(path) = explicit {
        if !path.exists() {
            return Err(format!(
                "cannot read config {}: no such file",
                path.display()
            ));
        }
        return Ok(classify(path.to_path_buf()));
    }
    let toml = dir.join("wsgate.toml");
    let sst = dir.join(sst::CONFIG_FILE);
    let template = cloudformation::TEMPLATE_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file());
    let cdk = dir.join(cloudformation::cdk::CDK_JSON);
    if toml.is_file() {
        Ok(ConfigFile::Toml(toml))
    } else if sst.is_file() {
        Ok(ConfigFile::Sst(sst))
    } else if cdk.is_file() {
        Ok(ConfigFile::Cdk(cdk))
    } else if let Some(serverless) = cloudformation::serverless::SERVERLESS_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
    {
        Ok(ConfigFile::Serverless(serverless))
    } else if let Some(template) = template {
        Ok(ConfigFile::CloudFormation(template))
    } else {
        Err(format!(
            "no wsgate.toml, sst.config.ts, cdk.json, serverless.yml or template.yaml in {}: run wsgate in the app's folder, or give --config <file>",
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }
            .display()
        ))
    }
}

/// A template (from a file, `cdk synth` or `serverless package`) as the
/// app's APIs; `config_file` is the file the app is defined in.
async fn load_stack(
    template: &Path,
    config_file: &Path,
    stack_name: Option<String>,
    region: Option<String>,
    options: &Options,
    root_paths: bool,
) -> Result<cloudformation::Stack, AppError> {
    let load = cloudformation::LoadOptions {
        listen: options.listen.unwrap_or_else(default_listen),
        bind: options.serving,
        region,
        stage: options.stage.clone(),
        parameter_overrides: options.parameter_overrides.clone(),
        stack_name: options.stack_name.clone(),
        root_paths,
        serving_at: options.serving_at.clone(),
    };
    cloudformation::load(template, config_file, stack_name, &load)
        .await
        .map_err(|e| match e {
            cloudformation::LoadError::Template(e) => AppError::Config(e),
            cloudformation::LoadError::Other(e) => AppError::Other(e),
        })
}

/// How an app is loaded and served.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--listen`, over the config's `listen`.
    pub listen: Option<SocketAddr>,
    /// `--stage`: an SST app's stage, or which stage of a template's API.
    pub stage: Option<String>,
    /// `--parameter-overrides` (templates).
    pub parameter_overrides: std::collections::BTreeMap<String, String>,
    /// `--stack-name` (templates).
    pub stack_name: Option<String>,
    /// Where the APIs are served already (a reload reads the app again).
    pub serving_at: Vec<SocketAddr>,
    /// Serving (bind listeners, `$dev` is true) or only checking.
    pub serving: bool,
    pub insecure_dev: bool,
    /// Clear local services' data (the tables) before starting.
    pub reset: bool,
    /// Hybrid: no local DynamoDB; functions use the app's tables on AWS
    /// with the user's own credentials (`--aws`, or `WSGATE_AWS=1`).
    pub aws: bool,
    /// `--cluster`: NATS URLs, over `[cluster] nats`.
    pub cluster: Option<String>,
    /// `--node`: this node's name in the cluster, over `[cluster] node`.
    pub node: Option<String>,
    /// Only reading the app (`wsgate logs`): secrets from the environment
    /// may be unset.
    pub without_secrets: bool,
}

/// The default address: what `wsgate serve` listens on unless told.
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// A loaded app: one config per API, ready to serve.
pub struct App {
    pub file: ConfigFile,
    pub apis: Vec<(Config, Option<std::net::TcpListener>)>,
    /// SST apps: everything the config described.
    pub definition: Option<Definition>,
    pub stage: Option<String>,
    /// The tables the local DynamoDB serves.
    pub tables: Vec<TableDefinition>,
    /// What an SST app or a template adds to its APIs, for the start-up
    /// lines and the outputs file.
    pub about: Option<About>,
}

/// An SST app's or a stack's name, what of it is not run locally, and its
/// outputs.
#[derive(Debug, Clone)]
pub struct About {
    /// `SST app chat (stage dev)`, `CloudFormation stack chat`.
    pub title: String,
    pub stand_ins: Vec<String>,
    pub notices: Vec<String>,
    /// SST's `run()` return value; a template's `Outputs`.
    pub outputs: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Sst(#[from] sst::SstError),
    #[error(transparent)]
    Build(#[from] crate::BuildError),
    #[error("{0}")]
    Other(String),
}

impl App {
    pub async fn load(file: ConfigFile, options: &Options) -> Result<App, AppError> {
        let mut app = App::load_definition(file, options).await?;
        if options.cluster.is_some() || options.node.is_some() {
            for (config, _) in &mut app.apis {
                apply_cluster_options(config, options)?;
            }
        }
        Ok(app)
    }

    async fn load_definition(file: ConfigFile, options: &Options) -> Result<App, AppError> {
        // Whatever writes there next (secrets, the CA's key, credentials)
        // finds the folder already ignored by git.
        crate::state_dir::create(file.dir()).map_err(AppError::Other)?;
        match &file {
            ConfigFile::Toml(path) => {
                let config = if options.without_secrets {
                    config::load_without_secrets(path)?
                } else {
                    config::load(path)?
                };
                Ok(App {
                    apis: vec![(config, None)],
                    file,
                    definition: None,
                    stage: None,
                    tables: Vec::new(),
                    about: None,
                })
            }
            ConfigFile::Sst(path) => {
                let load = sst::LoadOptions {
                    stage: options.stage.clone(),
                    dev: true,
                    listen: options.listen.unwrap_or_else(default_listen),
                    bind: options.serving,
                    tls: true,
                    region: config::DEFAULT_REGION.into(),
                    timeout: std::env::var("WSGATE_SST_TIMEOUT")
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .map_or(sst::EVALUATE_TIMEOUT, std::time::Duration::from_secs),
                };
                let SstApp {
                    definition,
                    apis,
                    stage,
                    ..
                } = sst::load(path, &load).await?;
                let about = About {
                    title: format!("SST app {} (stage {stage})", definition.app.name),
                    stand_ins: definition
                        .stand_ins
                        .iter()
                        .map(|s| format!("{} {}", s.kind, s.name))
                        .collect(),
                    notices: definition.notices.clone(),
                    outputs: definition.outputs.clone(),
                };
                Ok(App {
                    apis,
                    file,
                    tables: definition.tables.clone(),
                    definition: Some(definition),
                    stage: Some(stage),
                    about: Some(about),
                })
            }
            ConfigFile::CloudFormation(path) => {
                let stack = load_stack(path, path, None, None, options, false).await?;
                Ok(App::of_stack(file, "CloudFormation stack", stack))
            }
            ConfigFile::Cdk(path) => {
                let app_dir = file.dir();
                cloudformation::cdk::synth(app_dir)
                    .await
                    .map_err(AppError::Other)?;
                let synthesized =
                    cloudformation::cdk::stack(app_dir, options.stack_name.as_deref())
                        .map_err(AppError::Other)?;
                let stack = load_stack(
                    &synthesized.template,
                    path,
                    Some(synthesized.name),
                    synthesized.region,
                    options,
                    false,
                )
                .await?;
                Ok(App::of_stack(file, "CDK stack", stack))
            }
            ConfigFile::Serverless(path) => {
                let packaged =
                    cloudformation::serverless::package(file.dir(), options.stage.as_deref())
                        .await
                        .map_err(AppError::Other)?;
                // A drop-in for serverless-offline: its WebSocket port
                // unless --listen says otherwise.
                let options = Options {
                    listen: options.listen.or(Some(SocketAddr::from((
                        [127, 0, 0, 1],
                        packaged.websocket_port,
                    )))),
                    stage: None,
                    ..options.clone()
                };
                let stack = load_stack(
                    &packaged.template,
                    path,
                    Some(packaged.stack_name),
                    packaged.region,
                    &options,
                    true,
                )
                .await?;
                Ok(App::of_stack(file, "Serverless service", stack))
            }
        }
    }

    fn of_stack(file: ConfigFile, kind: &str, stack: cloudformation::Stack) -> App {
        let about = About {
            title: format!("{kind} {}", stack.name),
            stand_ins: stack.stand_ins,
            notices: Vec::new(),
            outputs: serde_json::Value::Object(stack.outputs),
        };
        App {
            apis: stack.apis,
            file,
            definition: None,
            stage: None,
            tables: stack.tables,
            about: Some(about),
        }
    }

    /// Starts the local services the app's components need; returns them
    /// and what every function is given to reach them. In hybrid mode
    /// nothing starts: functions get the user's credentials and the
    /// tables' names on AWS.
    async fn start_services(
        &mut self,
        data_dir: &Path,
        reset: bool,
        aws: bool,
    ) -> Result<(Services, Hosting), AppError> {
        let mut services = Services::default();
        let mut hosting = Hosting::default();
        if self
            .apis
            .iter()
            .any(|(config, _)| !config.invokable.is_empty())
        {
            let lambda = LambdaApi::start().await.map_err(AppError::Other)?;
            hosting
                .env
                .push(("AWS_ENDPOINT_URL_LAMBDA".into(), lambda.endpoint.clone()));
            services.lambda = Some(lambda);
        }
        if aws {
            let aws = hybrid::Aws::from_env().map_err(AppError::Other)?;
            hosting.env = aws.passthrough_env();
            if let Some(definition) = &self.definition
                && !definition.tables.is_empty()
            {
                let names = aws
                    .table_names(
                        &definition.app.name,
                        &self.stage.clone().unwrap_or_default(),
                        &definition.tables,
                    )
                    .await
                    .map_err(AppError::Other)?;
                for (config, _) in &mut self.apis {
                    hybrid::rename_tables(config, &names);
                }
            }
            for (config, _) in &mut self.apis {
                config.region = aws.region.clone();
            }
            hosting.aws_credentials = Some(aws.credentials);
            return Ok((services, hosting));
        }
        let tables = self.tables.clone();
        if !tables.is_empty() {
            let started = std::time::Instant::now();
            let dynamodb = DynamoDb::start(data_dir, reset)
                .await
                .map_err(AppError::Other)?;
            dynamodb
                .ensure_tables(&tables)
                .await
                .map_err(AppError::Other)?;
            tracing::info!(
                endpoint = %dynamodb.endpoint,
                tables = tables.len(),
                ms = started.elapsed().as_millis() as u64,
                "local DynamoDB ready"
            );
            hosting.env.push((
                "AWS_ENDPOINT_URL_DYNAMODB".into(),
                dynamodb.endpoint.clone(),
            ));
            services.dynamodb = Some(dynamodb);
        }
        let mut backends = Vec::new();
        let region = self
            .apis
            .first()
            .map_or(config::DEFAULT_REGION, |(config, _)| config.region.as_str());
        let host = |service| crate::services::regional::host(service, region);
        let address = |endpoint: &str| {
            endpoint
                .trim_start_matches("http://")
                .parse::<SocketAddr>()
                .ok()
        };
        if let Some(guard) = services
            .dynamodb
            .as_ref()
            .and_then(|d| address(&d.endpoint))
        {
            backends.push((host("dynamodb"), guard));
        }
        if let Some(lambda) = services.lambda.as_ref().and_then(|l| address(&l.endpoint)) {
            backends.push((host("lambda"), lambda));
        }
        if !backends.is_empty() {
            let regional = crate::services::regional::RegionalEndpoints::start(
                &crate::local_ca::dir(self.file.dir()),
                backends,
            )
            .await
            .map_err(AppError::Other)?;
            hosting.hosts = regional.hosts();
            services.regional = Some(regional);
        }
        Ok((services, hosting))
    }

    /// Builds every API and runs its start-up checks (each function
    /// started once), without serving.
    pub async fn check(&mut self, options: &Options) -> Result<(), AppError> {
        // A check's tables are its own, thrown away after.
        let scratch = scratch_dir()?;
        let started = self.start_services(&scratch, true, options.aws).await;
        let result = match started {
            Ok((services, hosting)) => {
                let result = self.check_apis(options, &hosting).await;
                services.stop().await;
                result
            }
            Err(error) => Err(error),
        };
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    async fn check_apis(&self, options: &Options, hosting: &Hosting) -> Result<(), AppError> {
        for (config, _) in &self.apis {
            let api = WebSocketApi::from_config_with(config, hosting)?;
            let addr = options
                .listen
                .or(config.listen)
                .unwrap_or_else(default_listen);
            api.check(addr).await?;
        }
        Ok(())
    }

    /// Serves every API.
    pub async fn serve(mut self, options: &Options) -> Result<Running, AppError> {
        let data_dir = crate::services::dynamodb::data_dir(self.file.dir());
        let (services, hosting) = self
            .start_services(&data_dir, options.reset, options.aws)
            .await?;
        let mut servers = Vec::new();
        for (config, listener) in self.apis {
            let api = WebSocketApi::from_config_with(&config, &hosting)?
                .insecure_dev(options.insecure_dev);
            let server = match listener {
                Some(listener) => {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|e| AppError::Other(format!("cannot serve: {e}")))?;
                    api.serve(listener).await?
                }
                None => {
                    let addr = options
                        .listen
                        .or(config.listen)
                        .unwrap_or_else(default_listen);
                    api.bind(addr).await?
                }
            };
            if let Some(dynamodb) = &services.dynamodb {
                dynamodb.trust(server.keyring(), server.region());
            }
            if let Some(lambda) = &services.lambda {
                lambda.trust(server.keyring(), server.region());
                for (name, integration) in server.invokable() {
                    lambda.add(name, Arc::clone(integration));
                }
            }
            servers.push((config, server));
        }
        Ok(Running {
            servers,
            about: self.about,
            services,
            file: self.file,
            hosting,
        })
    }
}

/// `--cluster` and `--node` over the config's `[cluster]`.
fn apply_cluster_options(config: &mut Config, options: &Options) -> Result<(), AppError> {
    let mut cluster = config.cluster.clone().unwrap_or_default();
    if let Some(nats) = &options.cluster {
        config::check_nats_urls(nats).map_err(|e| AppError::Other(format!("--cluster: {e}")))?;
        cluster.nats = nats.clone();
    }
    if cluster.nats.is_empty() {
        return Err(AppError::Other(
            "--node names a cluster node: give NATS too, with --cluster nats://HOST:PORT or [cluster] nats".into(),
        ));
    }
    if let Some(node) = &options.node {
        config::check_node_name(node).map_err(|e| AppError::Other(format!("--node: {e}")))?;
        cluster.node = Some(node.clone());
    }
    cluster.replicas = cluster.replicas.max(1);
    config.cluster = Some(cluster);
    Ok(())
}

/// Applies a new config to a running API, keeping what only a restart
/// may change (and saying so).
async fn apply_reload(old: &mut Config, server: &mut Server, mut new: Config, hosting: &Hosting) {
    let need_restart = crate::reload::keep_fixed_settings(old, &mut new);
    if !need_restart.is_empty() {
        tracing::warn!(
            settings = %need_restart.join(", "),
            "reload: these changed and apply at the next start"
        );
    }
    match server.reload(old, &new, hosting).await {
        Ok(applied) => {
            if applied.is_empty() {
                tracing::info!("reload: nothing to apply");
            } else {
                tracing::info!(
                    added = ?applied.added,
                    changed = ?applied.changed,
                    removed = ?applied.removed,
                    settings = ?applied.settings,
                    "reload: applied; open connections stay"
                );
            }
            *old = new;
        }
        Err(error) => tracing::error!("reload: {error}; the running config stays"),
    }
}

/// How far apart two reads of a changed config must agree.
const SETTLED_READS_APART: std::time::Duration = std::time::Duration::from_millis(150);
/// How long a change that may let more in must stay unchanged.
const AUTH_SETTLES_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// The file's text once two reads `apart` agree (at most 20 tries), or
/// `None` if it keeps changing or cannot be read.
async fn settled_text(path: &Path, apart: std::time::Duration) -> Option<String> {
    let mut last = tokio::fs::read_to_string(path).await.ok()?;
    for _ in 0..20 {
        tokio::time::sleep(apart).await;
        let now = tokio::fs::read_to_string(path).await.ok()?;
        if now == last {
            return Some(now);
        }
        last = now;
    }
    None
}

/// The served app.
pub struct Running {
    pub servers: Vec<(Config, Server)>,
    pub about: Option<About>,
    pub services: Services,
    /// Where the app came from, and what its functions were given: a
    /// reload reads the one and builds with the other.
    pub file: ConfigFile,
    hosting: Hosting,
}

impl Running {
    /// Re-reads the app's definition and applies what changed (SIGHUP, or
    /// the file was saved): `wsgate.toml`, or a template (a CDK app is
    /// synthesized anew). A definition with problems is reported with its
    /// file:line and ignored: the running one stays in force.
    pub async fn reload(&mut self, options: &Options) {
        match self.file.clone() {
            ConfigFile::Toml(path) => self.reload_toml(&path, options).await,
            ConfigFile::Sst(_) => tracing::warn!(
                "reload: changes to sst.config.ts apply at the next start (edits to handler code apply at once)"
            ),
            ConfigFile::CloudFormation(_) | ConfigFile::Cdk(_) | ConfigFile::Serverless(_) => {
                self.reload_stack(options).await
            }
        }
    }

    async fn reload_toml(&mut self, path: &Path, options: &Options) {
        // A file being written is read until it stops changing, so a
        // prefix that happens to be valid is not applied.
        let Some(text) = settled_text(path, SETTLED_READS_APART).await else {
            tracing::warn!(
                "reload: {} keeps changing; the running config stays",
                path.display()
            );
            return;
        };
        let mut new = match config::parse(path, &text) {
            Ok(new) => new,
            Err(error) => {
                tracing::error!("reload: {error}; the running config stays");
                return;
            }
        };
        if (options.cluster.is_some() || options.node.is_some())
            && let Err(error) = apply_cluster_options(&mut new, options)
        {
            tracing::error!("reload: {error}; the running config stays");
            return;
        }
        let Some((old, server)) = self.servers.first_mut() else {
            return;
        };
        // Hybrid mode's region is the AWS one, not the file's.
        if options.aws {
            new.region.clone_from(&old.region);
        }
        // Letting more in must be the file's settled state, not a moment
        // of an edit that a later write reverts.
        if crate::reload::may_weaken_auth(old, &new)
            && settled_text(path, AUTH_SETTLES_AFTER).await.as_deref() != Some(text.as_str())
        {
            tracing::warn!(
                "reload: {} changed again while a change to its auth settled; the running config stays",
                path.display()
            );
            return;
        }
        apply_reload(old, server, new, &self.hosting).await;
    }

    /// A template's APIs, loaded anew (not bound: they keep their ports)
    /// and applied to the running ones by name.
    async fn reload_stack(&mut self, options: &Options) {
        let reading = Options {
            serving: false,
            serving_at: self
                .servers
                .iter()
                .map(|(_, server)| server.local_addr())
                .collect(),
            ..options.clone()
        };
        let app = match App::load(self.file.clone(), &reading).await {
            Ok(app) => app,
            Err(error) => {
                tracing::error!("reload: {error}; the running config stays");
                return;
            }
        };
        for (mut new, _) in app.apis {
            let Some((old, server)) = self.servers.iter_mut().find(|(c, _)| c.name == new.name)
            else {
                tracing::warn!(api = %new.name, "reload: a new API is served from the next start");
                continue;
            };
            new.listen = old.listen;
            if options.aws {
                new.region.clone_from(&old.region);
            }
            apply_reload(old, server, new, &self.hosting).await;
        }
    }

    /// Before shutting down: readiness fails and new connections get 503
    /// while the open ones keep working for `wait` (`--drain-timeout`),
    /// so a load balancer stops sending clients before they are closed.
    /// It ends early when every connection has closed, or when
    /// `interrupted` (a second signal) completes.
    pub async fn drain(&self, wait: std::time::Duration, interrupted: impl Future<Output = ()>) {
        for (_, server) in &self.servers {
            server.drain();
        }
        let open = || {
            self.servers
                .iter()
                .map(|(_, s)| s.connection_count())
                .sum::<usize>()
        };
        if wait.is_zero() || open() == 0 {
            return;
        }
        tracing::info!(
            seconds = wait.as_secs_f64(),
            connections = open(),
            "draining: not ready, new connections get 503, open ones keep working; signal again to close them now"
        );
        let all_closed = async {
            while open() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = all_closed => tracing::info!("draining: every connection has closed"),
            _ = interrupted => tracing::info!("second signal: closing connections now"),
        }
    }

    /// Closes every connection (1001), runs their `$disconnect`, then
    /// stops the local services.
    pub async fn shutdown(self) {
        for (_, server) in self.servers {
            server.shutdown().await;
        }
        self.services.stop().await;
    }
}

/// The local services an app runs on.
#[derive(Default)]
pub struct Services {
    pub dynamodb: Option<DynamoDb>,
    pub lambda: Option<LambdaApi>,
    /// The services' AWS host names, for handlers.
    pub regional: Option<crate::services::regional::RegionalEndpoints>,
}

impl Services {
    pub async fn stop(self) {
        if let Some(regional) = &self.regional {
            regional.stop();
        }
        if let Some(lambda) = &self.lambda {
            lambda.stop();
        }
        if let Some(dynamodb) = self.dynamodb {
            dynamodb.stop().await;
        }
    }
}

/// A scratch folder for a check's services.
fn scratch_dir() -> Result<PathBuf, AppError> {
    let dir = std::env::temp_dir().join(format!(
        "wsgate-check-{}-{}",
        std::process::id(),
        crate::ids::new_id().replace(['/', '+', '='], "")
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| AppError::Other(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}
