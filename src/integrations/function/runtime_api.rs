//! wsgate's implementation of the AWS Lambda Runtime API, one server per
//! function instance, so the official runtime clients (Rust
//! `lambda_runtime`, Python `awslambdaric`, Node `aws-lambda-ric`) and
//! wsgate's own bootstraps work unmodified.

use crate::process::peer;
use crate::process::tree::ProcessTree;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

const PREFIX: &str = "/2018-06-01/runtime";
/// Lambda's response payload limit (synchronous invocations).
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// One event handed to an instance.
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: i64,
    pub reply: oneshot::Sender<Answer>,
}

/// When an event was handed out, and when the runtime's `/next` that
/// took it arrived (before the event was queued, if it was waiting).
#[derive(Debug, Clone, Copy)]
struct Handed {
    asked: Instant,
    at: Instant,
}

#[cfg(fuzzing)]
impl Handed {
    fn now() -> Handed {
        let now = Instant::now();
        Handed {
            asked: now,
            at: now,
        }
    }
}

/// What the runtime reported, and when the event was asked for, handed
/// out and the report read (the function stage metrics).
#[derive(Debug)]
pub struct Answer {
    pub outcome: Outcome,
    pub asked: Instant,
    pub handed_out: Instant,
    pub answered: Instant,
}

/// What the runtime reported for an invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Bytes),
    Error { error_type: String, message: String },
}

struct State {
    function_arn: String,
    /// The same, as the header every event carries.
    function_arn_header: HeaderValue,
    /// The instance's processes: only they may connect.
    tree: OnceLock<Arc<ProcessTree>>,
    tree_known: Notify,
    /// Set when the runtime first asks for an invocation.
    polled: watch::Sender<bool>,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    /// Invocations handed out, and when.
    /// Handed-out invocations by request id: who waits for the answer,
    /// and when the event was asked for and handed out.
    in_flight: Mutex<HashMap<String, (oneshot::Sender<Answer>, Handed)>>,
    init_error: Mutex<Option<String>>,
}

/// A running Runtime API server for one instance; stops when dropped.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RuntimeApi {
    /// Starts a server on a free loopback port that hands out the
    /// invocations sent on the returned channel.
    pub async fn start(
        function_arn: String,
    ) -> std::io::Result<(RuntimeApi, mpsc::Sender<Invocation>)> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1);
        let state = Arc::new(State {
            function_arn_header: header_value(&function_arn),
            function_arn,
            tree: OnceLock::new(),
            tree_known: Notify::new(),
            polled: watch::Sender::new(false),
            queue: tokio::sync::Mutex::new(rx),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
        });
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, Arc::clone(&state), stop.clone()));
        Ok((RuntimeApi { addr, state, stop }, tx))
    }

    /// From now on only processes of `tree` may use this Runtime API.
    pub fn admit_only(&self, tree: Arc<ProcessTree>) {
        let _ = self.state.tree.set(tree);
        self.state.tree_known.notify_waiters();
    }

    /// Completes once the runtime has asked for its first invocation.
    pub async fn polled(&self) {
        let mut polled = self.state.polled.subscribe();
        let _ = polled.wait_for(|p| *p).await;
    }

    /// Whether the runtime has asked for an invocation yet (its init is
    /// over), as it changes.
    pub fn polled_watch(&self) -> watch::Receiver<bool> {
        self.state.polled.subscribe()
    }

    /// The error the runtime reported from `/init/error`, if any.
    pub fn init_error(&self) -> Option<String> {
        self.state.init_error.lock().expect("lock poisoned").clone()
    }
}

async fn serve(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(refusal) = check_peer(&state, &stream, peer).await {
                tracing::warn!(function = %state.function_arn, %peer, %refusal, "Runtime API connection refused");
                refuse(stream).await;
                return;
            }
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

/// Only a process of the instance's own tree may connect: the client
/// socket's inode (from the kernel's socket diagnostics) must be open in
/// one of the tree's processes. Any other local process is refused before
/// it can read an event or post a reply.
async fn check_peer(state: &State, stream: &TcpStream, peer: SocketAddr) -> Result<(), String> {
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    // The instance connects only after it was spawned, and the tree is
    // known right after that; wait for the rare connection that wins.
    let tree = match state.tree.get() {
        Some(tree) => Arc::clone(tree),
        None => {
            let known = state.tree_known.notified();
            tokio::pin!(known);
            known.as_mut().enable();
            if state.tree.get().is_none() {
                let _ = tokio::time::timeout(Duration::from_secs(1), known).await;
            }
            Arc::clone(state.tree.get().ok_or("the instance has not started")?)
        }
    };
    tokio::task::spawn_blocking(move || {
        let inode = peer::client_socket_inode(peer, local)
            .map_err(|e| format!("cannot tell who connected: {e}"))?;
        match peer::holder(inode, &tree.pids()) {
            Some(_) => Ok(()),
            None => Err("the connection does not come from the instance's processes".to_string()),
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn refuse(mut stream: TcpStream) {
    let body = r#"{"errorMessage":"only the function instance may use its Runtime API","errorType":"Forbidden"}"#;
    let response = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn handle<B>(state: &State, request: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (head, body) = request.into_parts();
    let Some(rest) = head.uri.path().strip_prefix(PREFIX) else {
        return reply(
            StatusCode::NOT_FOUND,
            json!({ "errorMessage": "unknown path", "errorType": "NotFound" }),
        );
    };
    match (head.method, rest) {
        (Method::GET, "/invocation/next") => next(state).await,
        (Method::POST, "/init/error") => {
            let body = read(body).await.unwrap_or_default();
            let (error_type, message) = parse_error(&body);
            tracing::error!(function = %state.function_arn, error_type, message, "handler failed to initialize");
            *state.init_error.lock().expect("lock poisoned") =
                Some(format!("{error_type}: {message}"));
            accepted()
        }
        (Method::POST, rest) => {
            let Some((request_id, kind)) = rest
                .strip_prefix("/invocation/")
                .and_then(|r| r.rsplit_once('/'))
            else {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({ "errorMessage": "unknown path", "errorType": "NotFound" }),
                );
            };
            let Some((waiter, handed)) = state
                .in_flight
                .lock()
                .expect("lock poisoned")
                .remove(request_id)
            else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({ "errorMessage": format!("unknown request id {request_id}"), "errorType": "InvalidRequestID" }),
                );
            };
            let outcome = match (kind, read(body).await) {
                ("response", Ok(body)) => Outcome::Response(body),
                ("response", Err(message)) => Outcome::Error {
                    error_type: "Runtime.ResponseTooLarge".into(),
                    message,
                },
                ("error", body) => {
                    let (error_type, message) = parse_error(&body.unwrap_or_default());
                    Outcome::Error {
                        error_type,
                        message,
                    }
                }
                _ => {
                    return reply(
                        StatusCode::NOT_FOUND,
                        json!({ "errorMessage": "unknown path", "errorType": "NotFound" }),
                    );
                }
            };
            let _ = waiter.send(Answer {
                outcome,
                asked: handed.asked,
                handed_out: handed.at,
                answered: Instant::now(),
            });
            // The caller, just woken on this thread, runs before this task
            // writes the 202: the client's reply goes out first.
            tokio::task::yield_now().await;
            accepted()
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({ "errorMessage": "unknown path", "errorType": "NotFound" }),
        ),
    }
}

/// Long-polls for the next invocation.
async fn next(state: &State) -> Response<Full<Bytes>> {
    let asked = Instant::now();
    // Watchers are woken once, at the first poll, not at every one.
    state
        .polled
        .send_if_modified(|polled| !std::mem::replace(polled, true));
    let invocation = {
        let mut queue = state.queue.lock().await;
        match queue.recv().await {
            Some(invocation) => invocation,
            None => {
                return reply(
                    StatusCode::GONE,
                    json!({ "errorMessage": "instance stopping", "errorType": "Gone" }),
                );
            }
        }
    };
    state.in_flight.lock().expect("lock poisoned").insert(
        invocation.request_id.clone(),
        (
            invocation.reply,
            Handed {
                asked,
                at: Instant::now(),
            },
        ),
    );
    // Names as constants (no parsing per invocation).
    let trace = format!(
        "Root=1-{:08x}-{}",
        chrono::Utc::now().timestamp(),
        &invocation.request_id
    );
    let mut response = Response::new(Full::new(invocation.payload));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REQUEST_ID, header_value(&invocation.request_id));
    headers.insert(DEADLINE_MS, HeaderValue::from(invocation.deadline_ms));
    headers.insert(FUNCTION_ARN, state.function_arn_header.clone());
    headers.insert(TRACE_ID, header_value(&trace));
    response
}

const REQUEST_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-request-id");
const DEADLINE_MS: HeaderName = HeaderName::from_static("lambda-runtime-deadline-ms");
const FUNCTION_ARN: HeaderName = HeaderName::from_static("lambda-runtime-invoked-function-arn");
const TRACE_ID: HeaderName = HeaderName::from_static("lambda-runtime-trace-id");

/// A header value checked by `HeaderValue`, which a request id, trace id
/// or ARN always passes.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""))
}

async fn read<B>(body: B) -> Result<Bytes, String>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("response could not be read: {e}"))
}

/// `{errorMessage, errorType}` as runtimes report errors; lenient.
fn parse_error(body: &[u8]) -> (String, String) {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    (
        field("errorType").unwrap_or_else(|| "Error".into()),
        field("errorMessage")
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(1000).collect()),
    )
}

/// What every response and error post gets back: a constant body.
fn accepted() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response parts")
}

/// One request from a hostile runtime, answered by a fresh Runtime API
/// with one invocation queued and one (`fuzz-request`) in flight: what
/// the fuzz target drives, past the peer check.
#[cfg(fuzzing)]
pub async fn fuzz_request(method: &str, path: &str, body: Bytes) -> u16 {
    let (queue, receiver) = mpsc::channel(1);
    let function_arn = "arn:aws:lambda:us-east-1:000000000000:function:fuzz";
    let state = State {
        function_arn: function_arn.into(),
        function_arn_header: header_value(function_arn),
        tree: OnceLock::new(),
        tree_known: Notify::new(),
        polled: watch::Sender::new(false),
        queue: tokio::sync::Mutex::new(receiver),
        in_flight: Mutex::new(HashMap::new()),
        init_error: Mutex::new(None),
    };
    let (reply, _outcome) = oneshot::channel();
    let _ = queue.try_send(Invocation {
        request_id: "queued".into(),
        payload: Bytes::from_static(b"{}"),
        deadline_ms: 0,
        reply,
    });
    let (reply, _outcome) = oneshot::channel();
    state
        .in_flight
        .lock()
        .expect("lock poisoned")
        .insert("fuzz-request".into(), (reply, Handed::now()));
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return 400;
    };
    let Ok(request) = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(body))
    else {
        return 400;
    };
    handle(&state, request).await.status().as_u16()
}
