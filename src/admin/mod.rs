//! The admin listener (`wsgate serve --admin ADDR`): `/metrics` for
//! Prometheus, `/health` and `/ready` for load balancers and
//! orchestrators. Never the API's port, so an API's clients cannot reach
//! it. Loopback by default; any other address requires a bearer token.

pub mod metrics;

use crate::gateway::Gateway;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// OpenMetrics, the format `prometheus-client` writes.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Prometheus's classic text format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where the served APIs are in their life.
enum Phase {
    /// Loading the app and checking its handlers: alive, not ready.
    Starting,
    Serving(Vec<Arc<Gateway>>),
    /// SIGTERM: not ready while open connections finish.
    Draining,
}

pub struct Admin {
    phase: Mutex<Phase>,
    /// `Authorization: Bearer <token>` every request must carry, if set.
    token: Option<String>,
    local_addr: SocketAddr,
    stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "--admin {0} is not a loopback address: anyone who can reach it could read metrics; give a token with --admin-token or WSGATE_ADMIN_TOKEN"
    )]
    TokenRequired(SocketAddr),
    #[error("cannot listen on {addr} for --admin: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

impl Admin {
    /// Listens on `addr` now (so `/health` answers while the app starts)
    /// and turns metrics on.
    pub async fn start(addr: SocketAddr, token: Option<String>) -> Result<Arc<Admin>, AdminError> {
        let token = token.filter(|t| !t.is_empty());
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(AdminError::TokenRequired(addr));
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| AdminError::Bind { addr, error })?;
        let local_addr = listener
            .local_addr()
            .map_err(|error| AdminError::Bind { addr, error })?;
        metrics::enable();
        let admin = Arc::new(Admin {
            phase: Mutex::new(Phase::Starting),
            token,
            local_addr,
            stop: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(Arc::clone(&admin), listener));
        Ok(admin)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The app is up: readiness follows its APIs from now on.
    pub fn serving(&self, gateways: Vec<Arc<Gateway>>) {
        *self.phase.lock().expect("lock poisoned") = Phase::Serving(gateways);
    }

    /// Readiness fails from now on.
    pub fn draining(&self) {
        *self.phase.lock().expect("lock poisoned") = Phase::Draining;
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// 200 when every API takes new connections; else 503 and why.
    fn readiness(&self) -> (StatusCode, &'static str) {
        match &*self.phase.lock().expect("lock poisoned") {
            Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
            Phase::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
            Phase::Serving(gateways) if gateways.iter().all(|g| g.accepting()) => {
                (StatusCode::OK, "ready")
            }
            Phase::Serving(_) => (StatusCode::SERVICE_UNAVAILABLE, "not accepting connections"),
        }
    }

    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        use subtle::ConstantTimeEq;
        given.as_bytes().ct_eq(token.as_bytes()).into()
    }

    fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if !self.authorized(&request) {
            let mut reply = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            reply.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return reply;
        }
        if !matches!(request.method(), &Method::GET | &Method::HEAD) {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match request.uri().path() {
            "/metrics" => {
                let body = metrics::get().map(|m| m.encode()).unwrap_or_default();
                // OpenMetrics for whoever asks for it (Prometheus does),
                // the classic text format for everyone else.
                let openmetrics = request
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("application/openmetrics-text"));
                let (body, content_type) = match openmetrics {
                    true => (body, OPENMETRICS_CONTENT_TYPE),
                    false => (metrics::to_prometheus_text(&body), PROMETHEUS_CONTENT_TYPE),
                };
                let mut reply = text(StatusCode::OK, body);
                reply.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(content_type),
                );
                reply
            }
            "/health" => text(StatusCode::OK, "alive\n"),
            "/ready" => {
                let (status, why) = self.readiness();
                text(status, format!("{why}\n"))
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: /metrics, /health and /ready are served here\n",
            ),
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    reply
}

async fn accept_loop(admin: Arc<Admin>, listener: TcpListener) {
    loop {
        let stream = tokio::select! {
            _ = admin.stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "admin listener: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let admin = Arc::clone(&admin);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let reply = admin.handle(request);
                async move { Ok::<_, std::convert::Infallible>(reply) }
            });
            // Scrapes are small; a slow or idle client is dropped.
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(60), connection).await;
        });
    }
}
