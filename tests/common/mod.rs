//! Helpers for integration tests: real servers on port 0, real sockets.
#![allow(dead_code)]

pub mod frames;
pub mod nats;
pub mod serve;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(10);

/// An API built from config text, as `wsgate serve` would build it.
pub fn api_from_toml(text: &str) -> wsgate::WebSocketApi {
    let config = wsgate::config::parse(std::path::Path::new("wsgate.toml"), text).unwrap();
    wsgate::WebSocketApi::from_config(&config).unwrap()
}

/// Serves the app whose `wsgate.toml` is in `dir` (its handler paths
/// relative to it), as `wsgate serve` would, on a free port.
pub async fn serve_folder(dir: &std::path::Path) -> wsgate::Server {
    let config = wsgate::config::load(&dir.join("wsgate.toml")).unwrap();
    wsgate::WebSocketApi::from_config(&config)
        .unwrap()
        .bind(any_port())
        .await
        .unwrap()
}

pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub async fn connect(url: &str) -> Client {
    let (client, response) = tokio::time::timeout(WAIT, connect_async(url))
        .await
        .expect("connect timed out")
        .expect("connect failed");
    assert_eq!(response.status(), 101);
    client
}

/// Connects with extra request headers; returns the handshake error status
/// when the server refuses.
pub async fn try_connect(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(Client, http::Response<Option<Vec<u8>>>), u16> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    match tokio::time::timeout(WAIT, connect_async(request))
        .await
        .expect("connect timed out")
    {
        Ok(ok) => Ok(ok),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("unexpected connect error: {other}"),
    }
}

/// The next text message, failing the test after `WAIT`.
pub async fn next_text(client: &mut Client) -> String {
    loop {
        match tokio::time::timeout(WAIT, client.next())
            .await
            .expect("no message in time")
        {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Asserts nothing arrives for a while.
pub async fn assert_silent(client: &mut Client, how_long: Duration) {
    if let Ok(message) = tokio::time::timeout(how_long, client.next()).await {
        panic!("expected silence, got {message:?}");
    }
}

/// Waits for the close frame and returns its code and reason.
pub async fn next_close(client: &mut Client) -> (u16, String) {
    loop {
        match tokio::time::timeout(WAIT, client.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

pub async fn send_text(client: &mut Client, text: &str) {
    client.send(Message::text(text)).await.expect("send failed");
}

/// A two-way route: its handler's body goes back to the client.
pub fn two_way() -> wsgate::RouteOptions {
    wsgate::RouteOptions {
        return_response: true,
        ..Default::default()
    }
}

/// `api` with a two-way `whoami` route that tells a client its
/// connection id.
pub fn with_whoami(api: wsgate::WebSocketApi) -> wsgate::WebSocketApi {
    api.route_with(
        "whoami",
        wsgate::handler_fn(|event, _| async move {
            Ok(wsgate::Response::ok()
                .with_body(event.request_context.connection_id.unwrap_or_default()))
        }),
        two_way(),
    )
}

/// What the test backend answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(body: Value) -> Reply {
        Reply {
            status: 200,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Reply {
        Reply::json(serde_json::json!({ "statusCode": 200 }))
    }
}

type ReplyFn = dyn Fn(&str, &Value) -> Reply + Send + Sync;

/// An HTTP integration backend on a real socket: records every event it
/// receives (path and JSON) and answers with `reply`.
pub struct Backend {
    pub addr: SocketAddr,
    events: mpsc::UnboundedReceiver<(String, Value)>,
    pub seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Backend {
    pub async fn start(reply: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static) -> Backend {
        Backend::start_on(any_port(), reply).await
    }

    /// As `start`, listening on `addr`.
    pub async fn start_on(
        addr: SocketAddr,
        reply: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static,
    ) -> Backend {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reply: Arc<ReplyFn> = Arc::new(reply);
        let seen_by_server = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let reply = Arc::clone(&reply);
                let tx = tx.clone();
                let seen = Arc::clone(&seen_by_server);
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: http::Request<hyper::body::Incoming>| {
                            let reply = Arc::clone(&reply);
                            let tx = tx.clone();
                            let seen = Arc::clone(&seen);
                            async move {
                                let path = request.uri().path().to_string();
                                let body = request.into_body().collect().await.unwrap().to_bytes();
                                let event: Value =
                                    serde_json::from_slice(&body).expect("gateway sent JSON");
                                let answer = reply(&path, &event);
                                seen.lock().unwrap().push((path.clone(), event.clone()));
                                let _ = tx.send((path, event));
                                tokio::time::sleep(answer.delay).await;
                                Ok::<_, Infallible>(
                                    http::Response::builder()
                                        .status(answer.status)
                                        .header("content-type", "application/json")
                                        .body(Full::new(Bytes::from(answer.body)))
                                        .unwrap(),
                                )
                            }
                        });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Backend { addr, events, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The next event the backend received.
    pub async fn next_event(&mut self) -> (String, Value) {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("backend got no event in time")
            .expect("backend stopped")
    }

    /// The next event for `route_key`, skipping others.
    pub async fn event_for(&mut self, route_key: &str) -> Value {
        loop {
            let (_, event) = self.next_event().await;
            if event["requestContext"]["routeKey"] == route_key {
                return event;
            }
        }
    }
}

/// A management API call signed with the server's generated key by
/// `aws-sigv4` (the AWS SDK for Rust's signer); returns status, headers
/// and body.
pub async fn management(
    server: &wsgate::Server,
    method: &str,
    url: &str,
    body: impl Into<Bytes>,
) -> (u16, http::HeaderMap, String) {
    let key = server.generated_credentials().expect("a generated key");
    management_as(Some((key, server.region())), method, url, body).await
}

/// A management API call, signed with `key` in `region`, or unsigned.
pub async fn management_as(
    key: Option<(&wsgate::Credentials, &str)>,
    method: &str,
    url: &str,
    body: impl Into<Bytes>,
) -> (u16, http::HeaderMap, String) {
    let body: Bytes = body.into();
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .unwrap();
    if let Some((key, region)) = key {
        sign(
            &mut request,
            key,
            region,
            "execute-api",
            &body,
            std::time::SystemTime::now(),
        );
    }
    send(request, body).await
}

/// Signs `request` in place as an AWS SDK would (headers, payload hash).
pub fn sign(
    request: &mut http::Request<()>,
    key: &wsgate::Credentials,
    region: &str,
    service: &str,
    body: &[u8],
    time: std::time::SystemTime,
) {
    let settings = aws_sigv4::http_request::SigningSettings::default();
    sign_with(request, key, (region, service), body, time, settings);
}

/// A presigned URL for `url` (GET, `host` signed), as a browser would be
/// handed; `ws://` URLs are signed as their `http://` form.
pub fn presign(
    url: &str,
    key: &wsgate::Credentials,
    region: &str,
    expires: Duration,
    time: std::time::SystemTime,
) -> String {
    use aws_sigv4::http_request::{SignatureLocation, SigningSettings};
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let mut request = http::Request::builder()
        .method("GET")
        .uri(url.replacen("ws://", "http://", 1))
        .body(())
        .unwrap();
    sign_with(
        &mut request,
        key,
        (region, "execute-api"),
        b"",
        time,
        settings,
    );
    request.uri().to_string().replacen("http://", "ws://", 1)
}

/// `aws-sigv4`, the AWS SDK for Rust's signer, applied to `request`.
fn sign_with(
    request: &mut http::Request<()>,
    key: &wsgate::Credentials,
    (region, service): (&str, &str),
    body: &[u8],
    time: std::time::SystemTime,
    settings: aws_sigv4::http_request::SigningSettings,
) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
    use aws_sigv4::sign::v4;
    let identity = aws_credential_types::Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        key.session_token.clone(),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(request);
}

/// Sends a built request with `body`; a redirect is answered, not
/// followed, so a test sees it.
pub async fn send(request: http::Request<()>, body: Bytes) -> (u16, http::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut builder = client.request(request.method().clone(), request.uri().to_string());
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    let response = builder
        .body(body)
        .send()
        .await
        .expect("management call failed");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    (status, headers, body)
}

/// Runs a peer program (a real SDK or client) with `args` and AWS
/// credentials in `env`; fails the test with its output unless it passes.
pub async fn run_peer(
    program: &std::path::Path,
    args: &[&str],
    region: &str,
    env: &[(&str, &str)],
) -> String {
    assert!(
        program.exists() || !program.is_absolute(),
        "{} is missing: run scripts/setup",
        program.display()
    );
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_REGION", region)
        .env("AWS_DEFAULT_REGION", region)
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("peer did not finish in 90 s")
        .expect("peer could not start");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{stdout}\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Copies an app's folder, leaving out what a run makes or installs
/// (`.wsgate`, `.sst`, `node_modules`).
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if [".wsgate", ".sst", "node_modules"]
            .iter()
            .any(|skip| name == *skip)
        {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// An SST config whose `run()` imports `infra/api.ts`, for tests that give
/// that file.
pub const SST_APP: &str = "export default $config({ app() { return { name: \"bad\", home: \"aws\" }; }, async run() { await import(\"./infra/api\"); } });\n";

/// `wsgate validate` on an SST app whose files are given (which must
/// fail); its stderr.
pub fn validate_failure(files: &[(&str, &str)], env: &[(&str, &str)]) -> String {
    validate_failure_with(files, env, &["--stage", "bad"])
}

/// `wsgate validate <args>` in a folder holding these files (which must
/// fail); its stderr.
pub fn validate_failure_with(
    files: &[(&str, &str)],
    env: &[(&str, &str)],
    args: &[&str],
) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .arg("validate")
        .args(args)
        .current_dir(dir.path())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}
