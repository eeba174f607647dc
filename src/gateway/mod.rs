//! The data plane: accept sockets, upgrade them, run connections, route
//! messages to integrations.

pub mod connection;
pub mod handshake;
pub mod limits;
pub mod listener;
pub mod observe;
pub mod paths;
pub mod registry;
pub mod router;
pub mod throttle;

use crate::access_log::{self, AccessLog};
use crate::admin::metrics;
use crate::auth::Authenticator;
use crate::auth::authorizer::Authorizer;
use crate::auth::keyring::ACCOUNT_ID;
use crate::auth::policy::execute_api_arn;
use crate::config::BinaryMode;
use crate::events::{ApiInfo, Event};
use crate::integrations::{Context, Integration, IntegrationError, Response};
use arc_swap::ArcSwap;
use limits::Limits;
use registry::{Connections, Registry};
use router::RouteSelector;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How many `$disconnect` handlers run at once while shutdown closes every
/// connection: enough to finish 100,000 quick ones in seconds, few enough
/// not to flood a backend; a function's own `concurrency` if lower, so no
/// invocation is refused for want of an instance.
pub const SHUTDOWN_DISCONNECTS_AT_ONCE: usize = 128;

/// One route: its integration and how the gateway treats its replies.
#[derive(Clone)]
pub struct Route {
    /// Shared with every event routed here.
    pub key: Arc<str>,
    pub integration: Arc<dyn Integration>,
    /// `None`: the API's integration timeout (29 s, as API Gateway).
    pub timeout: Option<Duration>,
    /// Two-way route: a non-empty reply body is sent back to the client.
    pub return_response: bool,
}

/// Why an invocation gave no usable reply; each maps to one message the
/// client sees.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    Failed(#[from] IntegrationError),
    #[error("integration timed out after {0:?}")]
    TimedOut(Duration),
}

/// Everything the data plane shares: one per served API, behind an `Arc`.
pub struct Gateway {
    pub name: String,
    pub api: ApiInfo,
    /// The stage is served at `/` too (serverless-offline's paths).
    pub root_paths: bool,
    /// Routes, authorizer and throttling: replaced whole by a reload.
    pub routing: ArcSwap<Routing>,
    pub limits: Limits,
    pub binary: BinaryMode,
    pub registry: Arc<dyn Registry>,
    pub connections: Connections,
    pub context: Context,
    /// Cancelled when the gateway shuts down.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for their `$disconnect`.
    pub tasks: TaskTracker,
    /// Verifies SigV4 signatures (management API, IAM `$connect`).
    pub auth: Authenticator,
    pub access_log: Option<AccessLog>,
    /// The custom domain, served with TLS on the same port.
    pub domain: Option<Arc<crate::domain::Domain>>,
    /// TLS on the port: the custom domain's and/or the API host's own.
    pub tls: Option<Arc<crate::domain::TlsServing>>,
    /// Bytes of management request bodies read but not yet verified.
    pub unverified_bodies: tokio::sync::Semaphore,
    /// Set when the server is about to stop: readiness fails and new
    /// connections are refused while the open ones keep working.
    pub draining: std::sync::atomic::AtomicBool,
    /// The API's name as a metric label.
    pub metric_api: metrics::Name,
}

/// What a config reload may change, swapped as one: a message sees the old
/// routing or the new one, never half of each. A message already being
/// handled keeps the version it started with (and its integration).
pub struct Routing {
    pub routes: HashMap<String, Route>,
    pub selector: RouteSelector,
    pub connect_auth: Option<ConnectAuth>,
    /// Stage throttling (`None`: unthrottled).
    pub throttle: Option<Arc<throttle::TokenBucket>>,
    /// The route keys as metric labels.
    pub metric_routes: metrics::RouteNames,
    /// `$disconnect` invocations that may run at once during shutdown.
    pub shutdown_disconnects: tokio::sync::Semaphore,
}

impl Routing {
    pub fn new(
        routes: HashMap<String, Route>,
        selector: RouteSelector,
        connect_auth: Option<ConnectAuth>,
        throttle: Option<Arc<throttle::TokenBucket>>,
    ) -> Routing {
        let disconnects = routes
            .get("$disconnect")
            .and_then(|r| r.integration.concurrency())
            .unwrap_or(SHUTDOWN_DISCONNECTS_AT_ONCE)
            .clamp(1, SHUTDOWN_DISCONNECTS_AT_ONCE);
        Routing {
            metric_routes: metrics::RouteNames::new(routes.keys()),
            routes,
            selector,
            connect_auth,
            throttle,
            shutdown_disconnects: tokio::sync::Semaphore::new(disconnects),
        }
    }

    pub fn route(&self, key: &str) -> Option<&Route> {
        self.routes.get(key)
    }

    /// The route a message goes to: the selected key if a route has it,
    /// else `$default`; `None` when neither exists.
    pub fn select_route(&self, body: Option<&str>) -> Option<&Route> {
        body.and_then(|b| self.selector.evaluate(b))
            .and_then(|key| self.routes.get(&key))
            .or_else(|| self.routes.get("$default"))
    }
}

/// How `$connect` is authorized, as the route's `auth`.
#[derive(Clone)]
pub enum ConnectAuth {
    /// The upgrade request is SigV4-signed (headers or presigned URL).
    Iam,
    Lambda(Arc<Authorizer>),
}

impl Gateway {
    /// What a request path on the API's own host addresses: the stage's
    /// paths, and with `root_paths` the same at `/`.
    pub fn classify_path(&self, path: &str) -> paths::Target {
        match paths::classify(path, &self.api.stage) {
            paths::Target::Forbidden if self.root_paths => paths::classify(path, "$default"),
            target => target,
        }
    }

    /// The ARN API Gateway gives `rest` (a route key, or a management
    /// method and path) on this API and stage.
    pub fn arn(&self, rest: &str) -> String {
        execute_api_arn(
            &self.auth.region,
            ACCOUNT_ID,
            &self.api.api_id,
            &self.api.stage,
            rest,
        )
    }

    /// Takes one request from the stage's throttle; false when over it.
    /// In a cluster each node keeps an equal share of it.
    pub fn admit(&self) -> bool {
        let admitted = self
            .routing
            .load()
            .throttle
            .as_ref()
            .is_none_or(|t| t.try_acquire_share(self.registry.live_nodes()));
        if let (false, Some(m)) = (admitted, metrics::get()) {
            m.throttled.get_or_create(&self.api_labels()).inc();
        }
        admitted
    }

    pub fn api_labels(&self) -> metrics::ApiLabels {
        metrics::ApiLabels {
            api: std::sync::Arc::clone(&self.metric_api),
        }
    }

    /// Whether new connections are taken: not while draining, nor on a
    /// cluster node without its slot.
    pub fn accepting(&self) -> bool {
        !self.draining.load(std::sync::atomic::Ordering::Relaxed) && self.registry.accepting()
    }

    /// The routing in force now, held for as long as the caller needs it.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing.load_full()
    }

    /// Runs a route's integration under its timeout; also returns how the
    /// call went, for the access log.
    pub async fn invoke(
        &self,
        route: &Route,
        event: &Event,
    ) -> (Result<Response, InvokeError>, access_log::Integration) {
        let timeout = route.timeout.unwrap_or(self.limits.integration_timeout);
        let started = std::time::Instant::now();
        let result =
            match tokio::time::timeout(timeout, route.integration.invoke(event, &self.context))
                .await
            {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(e)) => Err(InvokeError::Failed(e)),
                Err(_) => Err(InvokeError::TimedOut(timeout)),
            };
        let latency = started.elapsed();
        let latency_ms = latency.as_millis() as u64;
        match &result {
            Ok(response) => tracing::debug!(
                route = %route.key,
                request_id = %event.request_id(),
                status = response.status_code,
                latency_ms,
                "integration replied"
            ),
            Err(error) => tracing::warn!(
                route = %route.key,
                request_id = %event.request_id(),
                connection_id = %event.request_context.connection_id,
                %error,
                "integration failed"
            ),
        }
        let integration = access_log::Integration {
            latency_ms,
            status: match &result {
                Ok(_) => 200,
                Err(InvokeError::Failed(_)) => 500,
                Err(InvokeError::TimedOut(_)) => 504,
            },
            reply_status: result.as_ref().ok().map(|r| r.status_code),
            trace: observe::get().map(|_| {
                Box::new(access_log::Trace {
                    event: event.clone(),
                    reply: traced_reply(&result),
                    latency_us: latency.as_micros() as u64,
                })
            }),
        };
        (result, integration)
    }

    /// Writes one access log line, if the API keeps an access log, counts
    /// the event, if metrics are on, and shows it in the console, if that
    /// is on (the record is only built for one of them).
    pub fn log<'a>(&self, record: impl FnOnce() -> access_log::Record<'a>) {
        let metrics = metrics::get();
        let observer = observe::get();
        if self.access_log.is_none() && metrics.is_none() && observer.is_none() {
            return;
        }
        let mut record = record();
        if let Some(m) = metrics {
            self.count(m, &record);
        }
        let line = self.access_log.as_ref().map(|log| log.render(&record));
        if let Some(observer) = observer {
            let trace = record.integration.as_mut().and_then(|i| i.trace.take());
            observer.event(&self.metric_api, &record, trace, line.clone());
        }
        if let (Some(log), Some(line)) = (&self.access_log, line) {
            log.send(line);
        }
    }

    fn count(&self, m: &metrics::Metrics, record: &access_log::Record<'_>) {
        let route = self.routing.load().metric_routes.get(record.route_key);
        if let Some(integration) = &record.integration {
            m.integration_latency
                .get_or_create(&metrics::RouteLabels {
                    api: std::sync::Arc::clone(&self.metric_api),
                    route: std::sync::Arc::clone(&route),
                })
                .observe(integration.latency_ms as f64 / 1000.0);
        }
        m.events
            .get_or_create(&metrics::EventLabels {
                api: std::sync::Arc::clone(&self.metric_api),
                route,
                event_type: record.event_type,
                status: record.status,
            })
            .inc();
    }

    /// What a scrape reads from this API: open connections, and access
    /// log lines dropped since the last scrape.
    pub fn refresh_metrics(&self, m: &metrics::Metrics) {
        let labels = self.api_labels();
        m.connections_open
            .get_or_create(&labels)
            .set(self.registry.count() as i64);
        if let Some(log) = &self.access_log {
            let counter = m.access_log_dropped.get_or_create(&labels);
            counter.inc_by(log.dropped().saturating_sub(counter.get()));
        }
    }
}

/// A handler's reply as the console keeps it.
fn traced_reply(result: &Result<Response, InvokeError>) -> access_log::TracedReply {
    match result {
        Ok(response) => access_log::TracedReply::Answered {
            status_code: response.status_code,
            headers: response.headers.clone(),
            body: response.body.clone(),
            is_base64_encoded: response.is_base64_encoded,
        },
        Err(error) => access_log::TracedReply::Failed(error.to_string()),
    }
}

/// The message API Gateway sends a client when its message could not be
/// handled, with API Gateway's exact spacing.
pub fn error_message(message: &str, connection_id: &str, request_id: &str) -> String {
    format!(
        r#"{{"message": "{message}", "connectionId":"{connection_id}", "requestId":"{request_id}"}}"#
    )
}
