//! The library entry point: describe a WebSocket API (in code or from
//! `wsgate.toml`) and serve it.
//!
//! ```no_run
//! use wsgate::{Response, WebSocketApi, handler_fn};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = WebSocketApi::new("MyApi")
//!     .route("$default", handler_fn(|event, ctx| async move {
//!         let id = event.request_context.connection_id.unwrap_or_default();
//!         ctx.connections.post(&id, event.body.unwrap_or_default()).await?;
//!         Ok(Response::ok())
//!     }))
//!     .bind("127.0.0.1:0".parse()?)
//!     .await?;
//! println!("{}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use crate::access_log::format::Format;
use crate::access_log::writer::{self, Clock, log_dir, system_clock};
use crate::admin::metrics;
use crate::auth::Authenticator;
use crate::auth::authorizer::Authorizer;
use crate::auth::keyring::{Credentials, Keyring};
use crate::auth::policy::Policy;
use crate::cluster::{ClusterRegistry, ClusterSettings};
use crate::config::{
    BinaryMode, Config, DEFAULT_REGION, HandlerSpec, Outputs, Retention, RouteAuth, RouteConfig,
};
use crate::domain::{Domain, DomainSettings};
use crate::events::ApiInfo;
use crate::gateway::limits::Limits;
use crate::gateway::registry::{Connections, InMemoryRegistry, Registry};
use crate::gateway::router::{DEFAULT_EXPRESSION, RouteSelector};
use crate::gateway::throttle::TokenBucket;
use crate::gateway::{ConnectAuth, Gateway, Route, Routing, listener};
use crate::ids::api_id_for;
use crate::integrations::function::{self, FunctionIntegration, FunctionSpec};
use crate::integrations::http::{HttpIntegration, HttpPool};
use crate::integrations::{Context, Integration};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Start-up checks (function instances starting) run at once.
const CHECKS_AT_ONCE: usize = 4;

/// How long shutdown waits for connections to close and their
/// `$disconnect` handlers to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("route selection expression: {0}")]
    Selector(String),
    /// `at`: "wsgate.toml:7: " when the route's line is known.
    #[error("{at}route `{key}`: {why}")]
    Route {
        at: String,
        key: String,
        why: String,
    },
    /// The cause is part of the message (not a `source`), so that a
    /// printed error chain names it once.
    #[error("cannot listen on {addr}: {error}{hint}", hint = bind_hint(error))]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("domain: {0}")]
    Domain(String),
    #[error("cannot keep the access log in {path}: {1}", path = .0.display())]
    AccessLog(PathBuf, std::io::Error),
    #[error("cluster: {0}")]
    Cluster(String),
}

fn bind_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another process is listening there); choose another address with --listen ADDR (or `listen` in wsgate.toml)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE); choose another with --listen ADDR (or `listen` in wsgate.toml)"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            " (no interface of this machine has that address); choose another with --listen ADDR (or `listen` in wsgate.toml)"
        }
        _ => "",
    }
}

/// The HTTP client integrations share, sized to the open-file limit.
fn integration_client() -> HttpPool {
    let open_files = crate::resources::open_files_limit();
    HttpPool::new(crate::resources::integration_connections(open_files))
}

/// What every function handler gets from the host; with the local CA,
/// its trust, so handlers reach the API over https as on AWS.
fn function_env(
    config: &Config,
    hosting: &function::Hosting,
) -> Result<Vec<(String, String)>, BuildError> {
    let mut env = hosting.env.clone();
    if config.local_tls {
        // Covering the names the server's certificate will carry, so the
        // CA the handlers trust is the one that signs it.
        let api_id = config
            .api_id
            .clone()
            .unwrap_or_else(|| api_id_for(&config.name));
        let names = crate::local_ca::served_names(config.listen, &api_id, &config.region);
        let ca =
            crate::local_ca::LocalCa::open_covering(&crate::local_ca::dir(config.dir()), &names)
                .map_err(BuildError::Domain)?;
        env.extend(ca.trust_env());
    }
    Ok(env)
}

/// A route (or authorizer) that cannot be built, at its line of the
/// app's file when known (SST routes have none).
fn route_error(config: &Config, route: &RouteConfig, why: impl std::fmt::Display) -> BuildError {
    let at = match route.line {
        0 => String::new(),
        line => format!("{}:{line}: ", config.file.display()),
    };
    BuildError::Route {
        at,
        key: route.key.to_string(),
        why: why.to_string(),
    }
}

/// Per-route settings besides the integration.
#[derive(Debug, Clone, Default)]
pub struct RouteOptions {
    pub timeout: Option<Duration>,
    pub return_response: bool,
}

/// A WebSocket API definition, as SST's `ApiGatewayWebSocket` describes one.
pub struct WebSocketApi {
    name: String,
    stage: String,
    root_paths: bool,
    route_selection_expression: String,
    limits: Limits,
    binary: BinaryMode,
    /// In the order they were added; a key added again replaces its route.
    routes: indexmap::IndexMap<String, Route>,
    /// Shared by function handlers; told the outputs once bound.
    functions: Option<Arc<function::Environment>>,
    region: String,
    /// `None`: derived from the name, stable across restarts.
    api_id: Option<String>,
    keyring: Arc<Keyring>,
    /// False until a key is added; serving then generates one.
    has_credentials: bool,
    insecure_dev: bool,
    connect_auth: Option<ConnectAuth>,
    access_log: Option<AccessLogSettings>,
    domain: Option<DomainSettings>,
    local_tls: Option<LocalTls>,
    /// Functions invoked through the local Lambda API, by name.
    invokable: Vec<(String, Arc<dyn Integration>)>,
    /// Run as one node of a cluster on NATS.
    cluster: Option<ClusterSettings>,
}

/// TLS for the API's own host with the app's local CA.
#[derive(Debug, Clone)]
pub struct LocalTls {
    /// The CA's folder (`.wsgate/ca/`).
    pub ca_dir: PathBuf,
    /// `url` and `managementEndpoint` are `wss://` and `https://` (SST
    /// apps, as SST gives them); otherwise `ws://` and `http://`.
    pub secure_outputs: bool,
}

/// Where and how an API keeps its access log.
#[derive(Clone)]
pub struct AccessLogSettings {
    /// The folder of the daily files.
    pub dir: PathBuf,
    pub retention: Retention,
    pub format: Format,
    pub clock: Clock,
}

/// SST's defaults for a function's `timeout` and `memory`, and Lambda-like
/// concurrency per function.
fn function_spec(route: &crate::config::RouteConfig) -> FunctionSpec {
    let (handler, command) = match &route.handler {
        HandlerSpec::Handler(h) => (h.clone(), None),
        HandlerSpec::Command(c) => (c.join(" "), Some(c.clone())),
        HandlerSpec::Url(u) => (u.clone(), None),
    };
    FunctionSpec {
        route_key: route.key.clone(),
        handler,
        command,
        timeout: route.timeout.unwrap_or(Duration::from_secs(20)),
        memory_bytes: route.memory.unwrap_or(1024 * 1024 * 1024),
        concurrency: route.concurrency.unwrap_or(10),
        reserved: route.concurrency.is_some(),
        environment: route.environment.clone(),
        link: route.link.clone(),
        resources: route.resources.clone(),
        nodejs: route.nodejs.clone(),
        runtime: route.runtime.clone(),
        permissions: route.permissions.clone(),
        layers: route.layers.clone(),
    }
}

impl WebSocketApi {
    pub fn new(name: impl Into<String>) -> WebSocketApi {
        WebSocketApi {
            name: name.into(),
            stage: "$default".into(),
            root_paths: false,
            route_selection_expression: DEFAULT_EXPRESSION.into(),
            limits: Limits::default(),
            binary: BinaryMode::default(),
            routes: indexmap::IndexMap::new(),
            functions: None,
            region: DEFAULT_REGION.into(),
            api_id: None,
            keyring: Arc::new(Keyring::default()),
            has_credentials: false,
            insecure_dev: false,
            connect_auth: None,
            access_log: None,
            domain: None,
            local_tls: None,
            invokable: Vec::new(),
            cluster: None,
        }
    }

    /// Builds the API a config file describes.
    pub fn from_config(config: &Config) -> Result<WebSocketApi, BuildError> {
        WebSocketApi::from_config_with(config, &function::Hosting::default())
    }

    /// As `from_config`, with what the host gives every function handler
    /// besides its own settings (local services' endpoints; the user's AWS
    /// credentials in hybrid mode, which then also sign management calls).
    pub fn from_config_with(
        config: &Config,
        hosting: &function::Hosting,
    ) -> Result<WebSocketApi, BuildError> {
        let client = integration_client();
        let function_env = function_env(config, hosting)?;
        let local_tls = config.local_tls.then(|| LocalTls {
            ca_dir: crate::local_ca::dir(config.dir()),
            // API Gateway's URLs are wss:// and https://, as SST's and a
            // template's outputs say; wsgate.toml's are its own.
            secure_outputs: config.source != crate::config::Source::Toml,
        });
        let aws_credentials = hosting.aws_credentials.clone();
        let mut api = WebSocketApi::new(&config.name)
            .cluster_option(config.cluster.clone())
            .local_tls(local_tls)
            .stage(&config.stage)
            .root_paths(config.root_paths)
            .region(&config.region)
            .api_id(config.api_id.clone())
            .route_selection_expression(&config.route_selection_expression)
            .limits(config.limits.clone())
            .binary(config.binary)
            .domain(config.domain.clone())
            .access_log(AccessLogSettings {
                dir: log_dir(config.dir(), &config.name, &config.stage),
                retention: config.access_log_retention,
                format: config.access_log_format.clone(),
                clock: system_clock(),
            });
        // Hybrid mode: the user's key, which the functions sign with, may
        // manage connections.
        if let Some(key) = &aws_credentials {
            api.keyring.insert_key(
                &key.access_key_id,
                &key.secret_access_key,
                key.session_token.as_deref(),
                "aws-user",
                Policy {
                    allow: vec![
                        crate::auth::policy::Allow::new(
                            crate::auth::policy::MANAGE_CONNECTIONS,
                            "*",
                        ),
                        crate::auth::policy::Allow::new(
                            crate::services::lambda::INVOKE_FUNCTION,
                            "*",
                        ),
                    ],
                    deny: Vec::new(),
                },
            );
        }
        for key in &config.credentials {
            api = api.credential(
                &key.access_key_id,
                &key.secret_access_key,
                &key.user,
                Policy {
                    allow: key.allow.clone(),
                    deny: Vec::new(),
                },
            );
        }
        api.add_handlers(config, hosting, &client, &function_env)
    }

    /// A config's routes and `$connect` authorizer, built with `keyring`
    /// (a running server's, on reload: the keys it accepts and the sessions
    /// its functions hold are one set).
    pub(crate) fn handlers_from_config(
        config: &Config,
        hosting: &function::Hosting,
        keyring: Arc<Keyring>,
    ) -> Result<WebSocketApi, BuildError> {
        let client = integration_client();
        let function_env = function_env(config, hosting)?;
        let mut api = WebSocketApi::new(&config.name)
            .stage(&config.stage)
            .region(&config.region)
            .api_id(config.api_id.clone())
            .route_selection_expression(&config.route_selection_expression)
            .limits(config.limits.clone());
        api.keyring = keyring;
        api.add_handlers(config, hosting, &client, &function_env)
    }

    /// Tells this API's function handlers the running server's outputs
    /// (a reload's handlers are checked before they serve).
    pub(crate) fn set_outputs(&self, outputs: Outputs) {
        if let Some(functions) = &self.functions {
            *functions.outputs.write().expect("lock poisoned") = Some(outputs);
        }
    }

    /// The routes, by key, and the `$connect` authorization.
    pub(crate) fn into_handlers(self) -> (HashMap<String, Route>, Option<ConnectAuth>) {
        (self.routes.into_iter().collect(), self.connect_auth)
    }

    /// The config's functions, routes and `$connect` authorizer.
    fn add_handlers(
        self,
        config: &Config,
        hosting: &function::Hosting,
        client: &HttpPool,
        function_env: &[(String, String)],
    ) -> Result<WebSocketApi, BuildError> {
        let mut api = self;
        for function in &config.invokable {
            let (integration, _) =
                api.integration_for(function, config, client, function_env, hosting)?;
            api.invokable.push((function.key.clone(), integration));
        }
        for route in &config.routes {
            let (integration, timeout) =
                api.integration_for(route, config, client, function_env, hosting)?;
            api = api.route_with(
                &route.key,
                integration,
                RouteOptions {
                    timeout,
                    return_response: route.return_response,
                },
            );
            match &route.auth {
                None => {}
                Some(RouteAuth::Iam) => api.connect_auth = Some(ConnectAuth::Iam),
                Some(RouteAuth::Lambda(name)) => {
                    let authorizer = config
                        .authorizers
                        .iter()
                        .find(|a| a.name == *name)
                        .ok_or_else(|| {
                            route_error(config, route, format!("no authorizer {name}"))
                        })?;
                    let (integration, timeout) = api.integration_for(
                        &authorizer.handler,
                        config,
                        client,
                        function_env,
                        hosting,
                    )?;
                    api.connect_auth = Some(ConnectAuth::Lambda(Arc::new(Authorizer {
                        name: name.clone(),
                        integration,
                        identity_sources: authorizer.identity_sources.clone(),
                        timeout: timeout.unwrap_or(config.limits.integration_timeout),
                    })));
                }
            }
        }
        Ok(api)
    }

    /// The integration a route (or authorizer) config names, and the
    /// timeout the gateway applies to it (`None`: functions enforce their
    /// own, the gateway keeps API Gateway's 29 s).
    fn integration_for(
        &mut self,
        route: &RouteConfig,
        config: &Config,
        client: &HttpPool,
        function_env: &[(String, String)],
        hosting: &function::Hosting,
    ) -> Result<(Arc<dyn Integration>, Option<Duration>), BuildError> {
        match &route.handler {
            HandlerSpec::Url(url) => {
                let url = reqwest::Url::parse(url).map_err(|e| route_error(config, route, e))?;
                let integration =
                    HttpIntegration::new(url, client).map_err(|e| route_error(config, route, e))?;
                Ok((Arc::new(integration), route.timeout))
            }
            HandlerSpec::Handler(_) | HandlerSpec::Command(_) => {
                let api_id = self.effective_api_id();
                let keyring = Arc::clone(&self.keyring);
                let environment = Arc::clone(self.functions.get_or_insert_with(|| {
                    Arc::new(function::Environment {
                        app: config.app.clone(),
                        api_name: config.name.clone(),
                        api_id,
                        stage: config.stage.clone(),
                        region: config.region.clone(),
                        outputs: RwLock::new(None),
                        keyring,
                        extra: function_env.to_vec(),
                        hosts: hosting.hosts.clone(),
                        aws_credentials: hosting.aws_credentials.clone(),
                    })
                }));
                let spec = function_spec(route);
                let integration = FunctionIntegration::new(&spec, config.dir(), environment)
                    .map_err(|e| route_error(config, route, e))?;
                Ok((Arc::new(integration), None))
            }
        }
    }

    /// The API id events and ARNs carry (`None`: derived from the name).
    pub fn api_id(mut self, api_id: Option<String>) -> Self {
        self.api_id = api_id;
        self
    }

    fn effective_api_id(&self) -> String {
        self.api_id
            .clone()
            .unwrap_or_else(|| api_id_for(&self.name))
    }

    /// The region signatures are scoped to (default `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Accepts SigV4 signatures made with this key, allowed `policy`.
    pub fn credential(
        mut self,
        access_key_id: &str,
        secret_access_key: &str,
        user: &str,
        policy: Policy,
    ) -> Self {
        self.keyring
            .insert_user(access_key_id, secret_access_key, user, policy);
        self.has_credentials = true;
        self
    }

    /// Accepts unsigned management calls (signed ones are still verified).
    /// For local development only.
    pub fn insecure_dev(mut self, insecure: bool) -> Self {
        self.insecure_dev = insecure;
        self
    }

    /// Serves the API's own host over TLS too, with the local CA's
    /// certificate (on the same port as plain ws/http).
    pub fn local_tls(mut self, local_tls: Option<LocalTls>) -> Self {
        self.local_tls = local_tls;
        self
    }

    /// Serves a custom domain with TLS (on the same port) and its base path.
    pub fn domain(mut self, domain: Option<DomainSettings>) -> Self {
        self.domain = domain;
        self
    }

    /// Runs as one node of a cluster on NATS: `@connections` calls work
    /// for every node's connections, on any node.
    pub fn cluster(mut self, settings: ClusterSettings) -> Self {
        self.cluster = Some(settings);
        self
    }

    fn cluster_option(mut self, settings: Option<ClusterSettings>) -> Self {
        self.cluster = settings;
        self
    }

    /// Keeps an access log (from a config: `.wsgate/logs/<name>/<stage>/`).
    pub fn access_log(mut self, settings: AccessLogSettings) -> Self {
        self.access_log = Some(settings);
        self
    }

    /// How `$connect` is authorized: IAM (SigV4) or a Lambda authorizer.
    pub fn connect_auth(mut self, auth: ConnectAuth) -> Self {
        self.connect_auth = Some(auth);
        self
    }

    pub fn stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = stage.into();
        self
    }

    /// Serves the stage at `/` too (serverless-offline's paths).
    pub fn root_paths(mut self, yes: bool) -> Self {
        self.root_paths = yes;
        self
    }

    pub fn route_selection_expression(mut self, expression: impl Into<String>) -> Self {
        self.route_selection_expression = expression.into();
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn binary(mut self, binary: BinaryMode) -> Self {
        self.binary = binary;
        self
    }

    pub fn route(self, key: impl Into<String>, integration: Arc<dyn Integration>) -> Self {
        self.route_with(key, integration, RouteOptions::default())
    }

    pub fn route_with(
        mut self,
        key: impl Into<String>,
        integration: Arc<dyn Integration>,
        options: RouteOptions,
    ) -> Self {
        let key = key.into();
        self.routes.insert(
            key.clone(),
            Route {
                key: key.into(),
                integration,
                timeout: options.timeout,
                return_response: options.return_response,
            },
        );
        self
    }

    /// The routes and what handles each, for start-up output.
    pub fn describe_routes(&self) -> Vec<(String, String)> {
        self.routes
            .values()
            .map(|r| (r.key.to_string(), r.integration.describe()))
            .collect()
    }

    /// Runs every route's start-up check (a function's export exists, with
    /// the environment it will run with) as if served at `addr`.
    pub async fn check(&self, addr: SocketAddr) -> Result<(), BuildError> {
        let domain = self.load_domain()?;
        if let Some(functions) = &self.functions {
            *functions.outputs.write().expect("lock poisoned") = Some(outputs_for(
                addr,
                &self.stage,
                domain.as_deref(),
                self.secure_outputs(),
            ));
        }
        // Several at once: each is mostly a runtime starting up.
        use futures_util::StreamExt;
        let mut checks = futures_util::stream::iter(self.routes.values())
            .map(|route| async move {
                route
                    .integration
                    .check()
                    .await
                    .map_err(|why| BuildError::Route {
                        at: String::new(),
                        key: route.key.to_string(),
                        why,
                    })
            })
            .buffer_unordered(CHECKS_AT_ONCE);
        while let Some(result) = checks.next().await {
            result?;
        }
        Ok(())
    }

    fn secure_outputs(&self) -> bool {
        self.local_tls.as_ref().is_some_and(|t| t.secure_outputs)
    }

    /// TLS for the port, if any: the domain's certificate and/or the
    /// local one, issued now for the names the API is reached by.
    fn tls_serving(
        &self,
        domain: Option<&Domain>,
        addr: SocketAddr,
    ) -> Result<Option<Arc<crate::domain::TlsServing>>, BuildError> {
        let local = match &self.local_tls {
            None => None,
            Some(local) => {
                let names = crate::local_ca::served_names(
                    Some(addr),
                    &self.effective_api_id(),
                    &self.region,
                );
                let ca = crate::local_ca::LocalCa::open_covering(&local.ca_dir, &names)
                    .map_err(BuildError::Domain)?;
                Some(ca.issue("server", &names).map_err(BuildError::Domain)?)
            }
        };
        if local.is_none() && domain.is_none() {
            return Ok(None);
        }
        crate::domain::TlsServing::new(
            domain,
            local
                .as_ref()
                .map(|issued| (issued.cert.as_path(), issued.key.as_path())),
        )
        .map(|tls| Some(Arc::new(tls)))
        .map_err(BuildError::Domain)
    }

    /// The custom domain with its certificate loaded and checked.
    fn load_domain(&self) -> Result<Option<Arc<Domain>>, BuildError> {
        self.domain
            .clone()
            .map(|settings| Domain::new(settings).map(Arc::new))
            .transpose()
            .map_err(BuildError::Domain)
    }

    /// Listens on `addr` and serves.
    pub async fn bind(self, addr: SocketAddr) -> Result<Server, BuildError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| BuildError::Bind { addr, error })?;
        self.serve(listener).await
    }

    /// Serves on a listener the caller opened.
    pub async fn serve(self, listener: TcpListener) -> Result<Server, BuildError> {
        let selector =
            RouteSelector::parse(&self.route_selection_expression).map_err(BuildError::Selector)?;
        if let Some(empty) = self.routes.values().find(|r| r.key.is_empty()) {
            return Err(BuildError::Route {
                at: String::new(),
                key: empty.key.to_string(),
                why: "a route key must not be empty".into(),
            });
        }
        let local_addr = listener.local_addr().map_err(|error| BuildError::Bind {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            error,
        })?;
        // Handlers are checked before the first connection is accepted.
        self.check(local_addr).await?;
        let domain = self.load_domain()?;
        let tls = self.tls_serving(domain.as_deref(), local_addr)?;
        let secure_outputs = self.secure_outputs();
        let api_id = self.effective_api_id();
        let cluster = match &self.cluster {
            None => None,
            Some(settings) => Some(
                ClusterRegistry::join(settings, &api_id, &self.stage, self.limits.max_message_size)
                    .await
                    .map_err(BuildError::Cluster)?,
            ),
        };
        // With no key configured, one is generated for this run (in a
        // cluster, by its first node, for every node).
        let generated_credentials = match (&cluster, self.has_credentials) {
            (_, true) => None,
            (None, false) => Some(self.keyring.generate_user("wsgate")),
            (Some(cluster), false) => Some(
                cluster
                    .shared_key(&self.keyring)
                    .await
                    .map_err(BuildError::Cluster)?,
            ),
        };
        let mut auth = Authenticator::new(&self.region, Arc::clone(&self.keyring));
        auth.insecure_dev = self.insecure_dev;
        let access_log = match self.access_log {
            None => None,
            Some(mut settings) => Some({
                // Each node keeps its own, in a folder named after it.
                if let Some(cluster) = &cluster {
                    settings.dir = settings.dir.join(cluster.node());
                }
                let log = writer::start(
                    settings.dir.clone(),
                    settings.retention,
                    settings.format,
                    settings.clock,
                )
                .map_err(|e| BuildError::AccessLog(settings.dir, e))?;
                match &cluster {
                    Some(cluster) => log.with_copies(cluster.publish_access_log()),
                    None => log,
                }
            }),
        };
        let registry: Arc<dyn Registry> = match &cluster {
            Some(cluster) => Arc::clone(cluster) as Arc<dyn Registry>,
            None => Arc::new(InMemoryRegistry::default()),
        };
        let connections = Connections::new(Arc::clone(&registry), self.limits.max_message_size);
        let metric_api = Arc::new(self.name.clone());
        let routing = Routing::new(
            self.routes.into_iter().collect::<HashMap<_, _>>(),
            selector,
            self.connect_auth,
            self.limits.throttle.map(|t| Arc::new(TokenBucket::new(t))),
        );
        let gateway = Arc::new(Gateway {
            api: ApiInfo {
                api_id: api_id.into(),
                stage: self.stage.into(),
            },
            name: self.name,
            root_paths: self.root_paths,
            routing: arc_swap::ArcSwap::from_pointee(routing),
            limits: self.limits.clone(),
            binary: self.binary,
            registry,
            context: Context {
                connections: connections.clone(),
            },
            connections,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            auth,
            access_log,
            domain: domain.clone(),
            tls,
            unverified_bodies: tokio::sync::Semaphore::new(
                crate::management::UNVERIFIED_BODY_BYTES.max(4 * self.limits.max_message_size),
            ),
            draining: std::sync::atomic::AtomicBool::new(false),
            metric_api,
        });
        if let Some(m) = metrics::get() {
            let weak = Arc::downgrade(&gateway);
            m.on_scrape(move |m| {
                weak.upgrade()
                    .map(|gateway| gateway.refresh_metrics(m))
                    .is_some()
            });
        }
        if let Some(domain) = domain {
            tokio::spawn(domain.watch(gateway.shutdown.clone()));
        }
        let accept = tokio::spawn(listener::accept_loop(Arc::clone(&gateway), listener));
        Ok(Server {
            gateway,
            local_addr,
            accept,
            generated_credentials,
            secure_outputs,
            invokable: self.invokable,
            cluster,
        })
    }
}

/// The outputs of an API served at `addr` (an unspecified address is
/// reached on loopback); with a custom domain, `url` is the domain's, as
/// SST gives it, and `managementEndpoint` stays on the API's own host.
fn outputs_for(addr: SocketAddr, stage: &str, domain: Option<&Domain>, secure: bool) -> Outputs {
    let addr = crate::listen::reachable(addr);
    Outputs {
        url: domain.map_or_else(
            || format!("{}://{addr}/{stage}", if secure { "wss" } else { "ws" }),
            |d| d.url(addr.port()),
        ),
        management_endpoint: format!("{}://{addr}/{stage}", if secure { "https" } else { "http" }),
    }
}

/// A running gateway.
pub struct Server {
    gateway: Arc<Gateway>,
    local_addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
    generated_credentials: Option<Credentials>,
    secure_outputs: bool,
    invokable: Vec<(String, Arc<dyn Integration>)>,
    cluster: Option<Arc<ClusterRegistry>>,
}

impl Server {
    /// This node's cluster membership, when it is one.
    pub fn cluster(&self) -> Option<&Arc<ClusterRegistry>> {
        self.cluster.as_ref()
    }

    /// The functions this API runs for the local Lambda API, by name.
    pub fn invokable(&self) -> &[(String, Arc<dyn Integration>)] {
        &self.invokable
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where clients connect: `ws://HOST/<stage>`.
    pub fn url(&self) -> String {
        self.outputs().url
    }

    /// Where backends push: `http://HOST/<stage>` (no trailing slash).
    pub fn management_endpoint(&self) -> String {
        self.outputs().management_endpoint
    }

    pub fn outputs(&self) -> Outputs {
        outputs_for(
            self.local_addr,
            &self.gateway.api.stage,
            self.gateway.domain.as_deref(),
            self.secure_outputs,
        )
    }

    pub fn api_id(&self) -> &str {
        &self.gateway.api.api_id
    }

    /// The data plane, for the admin listener's readiness.
    pub fn gateway(&self) -> Arc<Gateway> {
        Arc::clone(&self.gateway)
    }

    /// Connections open on this server.
    pub fn connection_count(&self) -> usize {
        self.gateway.registry.count()
    }

    /// The routes and what handles each, by key.
    pub fn describe_routes(&self) -> Vec<(String, String)> {
        let mut routes: Vec<(String, String)> = self
            .gateway
            .routing()
            .routes
            .values()
            .map(|r| (r.key.to_string(), r.integration.describe()))
            .collect();
        routes.sort();
        routes
    }

    /// The key generated for this run when none was configured.
    pub fn generated_credentials(&self) -> Option<&Credentials> {
        self.generated_credentials.as_ref()
    }

    /// The region signatures must be scoped to.
    /// The keys this API accepts (and issues to its functions).
    pub fn keyring(&self) -> Arc<Keyring> {
        Arc::clone(&self.gateway.auth.keyring)
    }

    pub fn region(&self) -> &str {
        &self.gateway.auth.region
    }

    /// The `@connections` operations, in process.
    pub fn connections(&self) -> Connections {
        self.gateway.connections.clone()
    }

    /// Readiness fails and new upgrades get 503 from now on; open
    /// connections keep working.
    pub fn drain(&self) {
        self.gateway
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stops accepting, closes every connection with 1001, runs their
    /// `$disconnect` handlers and waits for them (at most 35 s).
    pub async fn shutdown(self) {
        self.gateway.shutdown.cancel();
        let _ = self.accept.await;
        self.gateway.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.gateway.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; some $disconnect handlers did not finish");
        }
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
    }
}
