//! The admin listener (`wsgate serve --admin ADDR`): `/metrics` for
//! Prometheus, `/health` and `/ready` for load balancers and
//! orchestrators, and the web console at `/`. Never the API's port, so
//! an API's clients cannot reach it. Loopback by default; any other
//! address requires a token.

pub mod console;
pub mod metrics;

use console::{Body, ServedApi, text};
use http::{Method, Request, Response, StatusCode, header};
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
    Serving(Arc<Vec<ServedApi>>),
    /// SIGTERM: not ready while open connections finish.
    Draining,
}

pub struct Admin {
    phase: Mutex<Phase>,
    /// `Authorization: Bearer <token>` every request must carry, if set.
    token: Option<String>,
    local_addr: SocketAddr,
    /// Whether the web console is served (and records).
    console: bool,
    stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "--admin {0} is not a loopback address: anyone who can reach it could read metrics and use the console; give a token with --admin-token or WSGATE_ADMIN_TOKEN"
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
    /// and turns metrics on, and the console's recording with `console`.
    pub async fn start(
        addr: SocketAddr,
        token: Option<String>,
        console: bool,
    ) -> Result<Arc<Admin>, AdminError> {
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
        if console {
            console::enable();
        }
        let admin = Arc::new(Admin {
            phase: Mutex::new(Phase::Starting),
            token,
            local_addr,
            console,
            stop: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(Arc::clone(&admin), listener));
        Ok(admin)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn console(&self) -> bool {
        self.console
    }

    /// The app is up: readiness follows its APIs from now on, and the
    /// console shows them.
    pub fn serving(&self, apis: Vec<ServedApi>) {
        let apis = Arc::new(apis);
        *self.phase.lock().expect("lock poisoned") = Phase::Serving(Arc::clone(&apis));
        tokio::spawn(count_seconds(apis, self.stop.clone()));
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
            Phase::Serving(apis) if apis.iter().all(|a| a.gateway.accepting()) => {
                (StatusCode::OK, "ready")
            }
            Phase::Serving(_) => (StatusCode::SERVICE_UNAVAILABLE, "not accepting connections"),
        }
    }

    /// Whether the request carries the token, if one is set: as a bearer
    /// token, or as the cookie a browser got for it (`/?token=`).
    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix(TOKEN_COOKIE_PREFIX));
        [bearer, cookie].into_iter().flatten().any(|given| {
            use subtle::ConstantTimeEq;
            given.as_bytes().ct_eq(token.as_bytes()).into()
        })
    }

    /// A browser opening the console with `?token=`: the cookie that
    /// carries it from now on, and the page again without it in the
    /// address bar.
    fn token_in_query(&self, request: &Request<Incoming>) -> Option<Response<Body>> {
        let token = self.token.as_ref()?;
        let given = form_urlencoded::parse(request.uri().query()?.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())?;
        use subtle::ConstantTimeEq;
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return None;
        }
        let mut reply = text(StatusCode::SEE_OTHER, "");
        let headers = reply.headers_mut();
        headers.insert(header::LOCATION, header::HeaderValue::from_static("/"));
        let cookie = format!("{TOKEN_COOKIE_PREFIX}{token}; Path=/; HttpOnly; SameSite=Strict");
        headers.insert(
            header::SET_COOKIE,
            header::HeaderValue::from_str(&cookie).ok()?,
        );
        Some(reply)
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        if let Some(reply) = self.token_in_query(&request) {
            return reply;
        }
        if !self.authorized(&request) {
            let mut reply = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            reply.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return reply;
        }
        if self.token.is_none() && !crate::auth::loopback_host(request.headers()) {
            // Without a token the listener is on loopback, and only this
            // machine may use it: a page whose name was rebound to
            // 127.0.0.1 may read neither the console nor /metrics (the
            // API's name, routes and functions), /health or /ready.
            return text(
                StatusCode::FORBIDDEN,
                "the admin listener answers requests for a loopback host only (127.0.0.1, [::1], localhost) unless --admin-token is set\n",
            );
        }
        if self.console && console::serves(request.uri().path()) {
            let apis = match &*self.phase.lock().expect("lock poisoned") {
                Phase::Serving(apis) => Arc::clone(apis),
                _ => Arc::new(Vec::new()),
            };
            return console::handle(&apis, request).await;
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
                "not found: the console (/), /metrics, /health and /ready are served here\n",
            ),
        }
    }
}

/// The cookie `?token=` sets, as it starts in a `Cookie` header.
const TOKEN_COOKIE_PREFIX: &str = "wsgate_admin_token=";

/// Closes each second of the console's charts with the connections open.
async fn count_seconds(apis: Arc<Vec<ServedApi>>, stop: CancellationToken) {
    let Some(recorder) = console::get() else {
        return;
    };
    let mut every_second = tokio::time::interval(std::time::Duration::from_secs(1));
    every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every_second.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every_second.tick() => {
                recorder.tick(apis.iter().map(|a| a.gateway.registry.count()).sum());
            }
        }
    }
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
            // Set once the connection carries the console's event stream,
            // which lives as long as its page.
            let streaming = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stop = admin.stop.clone();
            let marks = Arc::clone(&streaming);
            let service = hyper::service::service_fn(move |request| {
                let admin = Arc::clone(&admin);
                let marks = Arc::clone(&marks);
                async move {
                    let reply = admin.handle(request).await;
                    if reply.headers().get(header::CONTENT_TYPE)
                        == Some(&header::HeaderValue::from_static("text/event-stream"))
                    {
                        marks.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok::<_, std::convert::Infallible>(reply)
                }
            });
            // Scrapes are small; a slow or idle client is dropped.
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let cut = tokio::time::timeout(std::time::Duration::from_secs(60), connection.as_mut())
                .await
                .is_err();
            if cut && streaming.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::select! {
                    _ = connection => {}
                    _ = stop.cancelled() => {}
                }
            }
        });
    }
}
