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

use crate::config::{BinaryMode, Config, HandlerSpec};
use crate::events::ApiInfo;
use crate::gateway::limits::Limits;
use crate::gateway::registry::{Connections, InMemoryRegistry, Registry};
use crate::gateway::router::{DEFAULT_EXPRESSION, RouteSelector};
use crate::gateway::{Gateway, Route, listener};
use crate::ids::api_id_for;
use crate::integrations::function::{self, FunctionIntegration, FunctionSpec};
use crate::integrations::http::HttpIntegration;
use crate::integrations::{Context, Integration};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for connections to close and their
/// `$disconnect` handlers to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("route selection expression: {0}")]
    Selector(String),
    #[error("route `{0}`: {1}")]
    Route(String, String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP integration client: {0}")]
    HttpClient(String),
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
    route_selection_expression: String,
    limits: Limits,
    binary: BinaryMode,
    routes: Vec<Route>,
    /// Shared by function handlers; told the outputs once bound.
    functions: Option<Arc<function::Environment>>,
}

/// Region handed to function handlers and used in ARNs.
const DEFAULT_REGION: &str = "us-east-1";

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
        environment: route.environment.clone(),
        link: route.link.clone(),
    }
}

impl WebSocketApi {
    pub fn new(name: impl Into<String>) -> WebSocketApi {
        WebSocketApi {
            name: name.into(),
            stage: "$default".into(),
            route_selection_expression: DEFAULT_EXPRESSION.into(),
            limits: Limits::default(),
            binary: BinaryMode::default(),
            routes: Vec::new(),
            functions: None,
        }
    }

    /// Builds the API a config file describes.
    pub fn from_config(config: &Config) -> Result<WebSocketApi, BuildError> {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| BuildError::HttpClient(e.to_string()))?;
        let mut api = WebSocketApi::new(&config.name)
            .stage(&config.stage)
            .route_selection_expression(&config.route_selection_expression)
            .limits(config.limits.clone())
            .binary(config.binary);
        for route in &config.routes {
            let integration: Arc<dyn Integration> = match &route.handler {
                HandlerSpec::Url(url) => {
                    let url = reqwest::Url::parse(url)
                        .map_err(|e| BuildError::Route(route.key.clone(), e.to_string()))?;
                    Arc::new(HttpIntegration::new(url, client.clone()))
                }
                HandlerSpec::Handler(_) | HandlerSpec::Command(_) => {
                    let environment = Arc::clone(api.functions.get_or_insert_with(|| {
                        Arc::new(function::Environment {
                            api_name: config.name.clone(),
                            stage: config.stage.clone(),
                            region: DEFAULT_REGION.into(),
                            outputs: RwLock::new(None),
                            credentials: function::SessionCredentials::generate(),
                        })
                    }));
                    let spec = function_spec(route);
                    let integration = FunctionIntegration::new(&spec, config.dir(), environment)
                        .map_err(|e| BuildError::Route(route.key.clone(), e))?;
                    api = api.route_with(
                        &route.key,
                        Arc::new(integration),
                        RouteOptions {
                            // The function enforces its own timeout; the
                            // gateway keeps API Gateway's 29 s.
                            timeout: None,
                            return_response: route.return_response,
                        },
                    );
                    continue;
                }
            };
            api = api.route_with(
                &route.key,
                integration,
                RouteOptions {
                    timeout: route.timeout,
                    return_response: route.return_response,
                },
            );
        }
        Ok(api)
    }

    pub fn stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = stage.into();
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
        self.routes.retain(|r| r.key != key);
        self.routes.push(Route {
            key,
            integration,
            timeout: options.timeout,
            return_response: options.return_response,
        });
        self
    }

    /// The routes and what handles each, for start-up output.
    pub fn describe_routes(&self) -> Vec<(String, String)> {
        self.routes
            .iter()
            .map(|r| (r.key.clone(), r.integration.describe()))
            .collect()
    }

    /// Runs every route's start-up check (a function's export exists, with
    /// the environment it will run with) as if served at `addr`.
    pub fn check(&self, addr: SocketAddr) -> Result<(), BuildError> {
        if let Some(functions) = &self.functions {
            *functions.outputs.write().expect("lock poisoned") =
                Some(outputs_for(addr, &self.stage));
        }
        for route in &self.routes {
            route
                .integration
                .check()
                .map_err(|e| BuildError::Route(route.key.clone(), e))?;
        }
        Ok(())
    }

    /// Listens on `addr` and serves.
    pub async fn bind(self, addr: SocketAddr) -> Result<Server, BuildError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| BuildError::Bind { addr, source })?;
        self.serve(listener)
    }

    /// Serves on a listener the caller opened.
    pub fn serve(self, listener: TcpListener) -> Result<Server, BuildError> {
        let selector =
            RouteSelector::parse(&self.route_selection_expression).map_err(BuildError::Selector)?;
        if let Some(empty) = self.routes.iter().find(|r| r.key.is_empty()) {
            return Err(BuildError::Route(
                empty.key.clone(),
                "a route key must not be empty".into(),
            ));
        }
        let local_addr = listener.local_addr().map_err(|source| BuildError::Bind {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        // Handlers are checked before the first connection is accepted.
        self.check(local_addr)?;
        let registry: Arc<dyn Registry> = Arc::new(InMemoryRegistry::default());
        let connections = Connections::new(Arc::clone(&registry), self.limits.max_message_size);
        let gateway = Arc::new(Gateway {
            api: ApiInfo {
                api_id: api_id_for(&self.name),
                stage: self.stage,
            },
            name: self.name,
            routes: self
                .routes
                .into_iter()
                .map(|r| (r.key.clone(), r))
                .collect::<HashMap<_, _>>(),
            selector,
            limits: self.limits,
            binary: self.binary,
            registry,
            context: Context {
                connections: connections.clone(),
            },
            connections,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let accept = tokio::spawn(listener::accept_loop(Arc::clone(&gateway), listener));
        Ok(Server {
            gateway,
            local_addr,
            accept,
        })
    }
}

/// The outputs SST gives for the component.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    pub url: String,
    pub management_endpoint: String,
}

/// The outputs of an API served at `addr` (an unspecified address is
/// reached on loopback).
fn outputs_for(mut addr: SocketAddr, stage: &str) -> Outputs {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Outputs {
        url: format!("ws://{addr}/{stage}"),
        management_endpoint: format!("http://{addr}/{stage}"),
    }
}

/// A running gateway.
pub struct Server {
    gateway: Arc<Gateway>,
    local_addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Server {
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
        outputs_for(self.local_addr, &self.gateway.api.stage)
    }

    pub fn api_id(&self) -> &str {
        &self.gateway.api.api_id
    }

    /// The `@connections` operations, in process.
    pub fn connections(&self) -> Connections {
        self.gateway.connections.clone()
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
    }
}
