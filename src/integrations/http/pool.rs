//! Keep-alive HTTP/1.1 connections to integration backends, driven by
//! the task that makes the call.
//!
//! A client such as reqwest runs each connection on a task of its own, so
//! a call crosses tasks (and, with two workers, threads) on the way out
//! and again on the way back: two wake-ups per call, more than the rest of
//! the gateway's work on an HTTP route. Here the calling task polls the
//! connection itself (hyper's `client::conn`), and a connection waits in
//! the pool between calls without a task of its own.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long an unused pooled connection stays open; the pool sweeps every
/// this long, so one is closed within twice this.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The connections one API's HTTP integrations share: kept alive for
/// reuse, and at most `max_connections` calls at once (each on its own
/// connection).
#[derive(Clone)]
pub struct HttpPool {
    shared: Arc<Shared>,
}

struct Shared {
    /// Idle connections per origin (`host:port`), the most recent last.
    idle: Mutex<HashMap<String, Vec<Idle>>>,
    /// Calls at once, shared fairly among client connections.
    calls: super::fair::FairSlots,
    max_idle_per_origin: usize,
    sweeping: std::sync::Once,
}

struct Idle {
    connection: Connection,
    since: Instant,
}

/// One HTTP/1.1 connection: the handle requests go through, and the
/// state machine that does its I/O when polled.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: http1::Connection<TokioIo<TcpStream>, Full<Bytes>>,
    /// The driver finished: the connection is closed.
    closed: bool,
}

/// Where a route's calls go, parsed once when the route is built: the
/// origin connected to (`host:port`, the pool's key), its `Host` header,
/// and the request target (path and query).
#[derive(Clone)]
pub struct Endpoint {
    origin: String,
    host: http::HeaderValue,
    target: http::Uri,
}

impl Endpoint {
    /// From an `http` URL (the config check allows no other).
    pub fn new(url: &url::Url) -> Result<Endpoint, String> {
        let host = url.host_str().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let origin = format!("{host}:{port}");
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        Ok(Endpoint {
            host: http::HeaderValue::from_str(&origin).map_err(|e| e.to_string())?,
            target: target
                .parse()
                .map_err(|e: http::uri::InvalidUri| e.to_string())?,
            origin,
        })
    }
}

/// What a backend answered.
pub struct Reply {
    pub status: http::StatusCode,
    pub body: Bytes,
}

/// Why a call failed, worded for the integration's error.
#[derive(Debug)]
pub enum CallError {
    /// No connection could be made, or the request was not sent.
    Unreachable(String),
    /// The connection failed after the request went out.
    Broken(String),
    /// The reply's body is larger than the caller allows.
    TooLarge,
    ShutDown,
}

impl HttpPool {
    pub fn new(max_connections: usize) -> HttpPool {
        HttpPool {
            shared: Arc::new(Shared {
                idle: Mutex::new(HashMap::new()),
                calls: super::fair::FairSlots::new(max_connections),
                max_idle_per_origin: max_connections,
                sweeping: std::sync::Once::new(),
            }),
        }
    }

    /// POSTs `body` to `endpoint` for `caller` (the client connection it
    /// is for) and reads the whole reply, up to `max_reply` bytes. A call
    /// waits for a free slot, callers taking turns (the gateway's timeout
    /// still applies), rather than opening one more connection.
    pub async fn post(
        &self,
        endpoint: &Endpoint,
        caller: &str,
        body: Bytes,
        max_reply: usize,
    ) -> Result<Reply, CallError> {
        let origin = endpoint.origin.as_str();
        let _call = self.shared.calls.acquire(caller).await;
        self.start_sweeping();
        let request = |body: Bytes| {
            let mut request = http::Request::new(Full::new(body));
            *request.method_mut() = http::Method::POST;
            *request.uri_mut() = endpoint.target.clone();
            let headers = request.headers_mut();
            headers.insert(http::header::HOST, endpoint.host.clone());
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            request
        };
        loop {
            let (mut connection, reused) = match self.checkout(origin) {
                Some(connection) => (connection, true),
                None => (Connection::open(origin).await?, false),
            };
            match connection
                .round_trip(request(body.clone()), max_reply)
                .await
            {
                Ok(reply) => {
                    if connection.ready_again() {
                        self.checkin(origin, connection);
                    }
                    return Ok(reply);
                }
                // The backend closed a kept-alive connection before the
                // request went out on it (its idle timeout raced ours):
                // nothing was sent, so try a fresh connection.
                Err(NotSent(_)) if reused => continue,
                Err(NotSent(message)) => return Err(CallError::Unreachable(message)),
                Err(Failed(error)) => return Err(error),
            }
        }
    }

    /// The most recently used idle connection to `origin` that is still
    /// open.
    fn checkout(&self, origin: &str) -> Option<Connection> {
        loop {
            // Taken out under the lock, looked at (a read) outside it.
            let Idle { mut connection, .. } = {
                let mut idle = self.shared.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.get_mut(origin)?.pop()?
            };
            if connection.still_open() {
                return Some(connection);
            }
        }
    }

    fn checkin(&self, origin: &str, connection: Connection) {
        let mut idle = self.shared.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(origin.to_string()).or_default();
        if list.len() < self.shared.max_idle_per_origin {
            list.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// Closes connections idle for longer than `POOL_IDLE_TIMEOUT`, every
    /// that long, until the pool is dropped. Started by the first call
    /// (a pool may be built outside a runtime).
    fn start_sweeping(&self) {
        self.shared.sweeping.call_once(|| {
            let shared = Arc::downgrade(&self.shared);
            tokio::spawn(sweep(shared));
        });
    }
}

async fn sweep(shared: Weak<Shared>) {
    let mut every = tokio::time::interval(POOL_IDLE_TIMEOUT);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut idle = shared.idle.lock().unwrap_or_else(|e| e.into_inner());
        for list in idle.values_mut() {
            list.retain(|entry| entry.since.elapsed() < POOL_IDLE_TIMEOUT);
        }
        idle.retain(|_, list| !list.is_empty());
    }
}

/// How a round trip failed: before the request was sent (safe to send
/// again) or after.
enum RoundTripError {
    NotSent(String),
    Failed(CallError),
}
use RoundTripError::{Failed, NotSent};

impl Connection {
    async fn open(origin: &str) -> Result<Connection, CallError> {
        let stream = TcpStream::connect(origin)
            .await
            .map_err(|e| CallError::Unreachable(format!("cannot connect: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        Ok(Connection {
            sender,
            driver,
            closed: false,
        })
    }

    /// Sends the request and reads the reply, polling the connection's
    /// I/O in this task.
    async fn round_trip(
        &mut self,
        request: http::Request<Full<Bytes>>,
        max_reply: usize,
    ) -> Result<Reply, RoundTripError> {
        let mut response = std::pin::pin!(self.sender.try_send_request(request));
        let response = poll_fn(|cx| {
            if let Poll::Ready(result) = response.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            self.drive(cx);
            // A closed driver has answered the request with its error.
            match self.closed {
                true => response.as_mut().poll(cx),
                false => Poll::Pending,
            }
        })
        .await;
        let response = match response {
            Ok(response) => response,
            Err(error) if error.message().is_some() => {
                return Err(NotSent(error.into_error().to_string()));
            }
            Err(error) => return Err(Failed(CallError::Broken(error.into_error().to_string()))),
        };
        let status = response.status();
        let mut incoming: Incoming = response.into_body();
        let mut body = Vec::new();
        loop {
            let frame = poll_fn(|cx| {
                if let Poll::Ready(frame) = Pin::new(&mut incoming).poll_frame(cx) {
                    return Poll::Ready(frame);
                }
                self.drive(cx);
                match self.closed {
                    true => Pin::new(&mut incoming).poll_frame(cx),
                    false => Poll::Pending,
                }
            })
            .await;
            match frame {
                None => break,
                Some(Err(error)) => return Err(Failed(CallError::Broken(error.to_string()))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if body.len() + data.len() > max_reply {
                            return Err(Failed(CallError::TooLarge));
                        }
                        body.extend_from_slice(&data);
                    }
                }
            }
        }
        Ok(Reply {
            status,
            body: Bytes::from(body),
        })
    }

    /// Polls the connection's I/O; notes when it has ended.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if !self.closed && Pin::new(&mut self.driver).poll(cx).is_ready() {
            self.closed = true;
        }
    }

    /// After a reply: whether the connection takes another request (the
    /// backend may have asked to close it). One poll finishes the
    /// exchange; a connection not ready after it is not kept.
    fn ready_again(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.drive(&mut cx);
        !self.closed && matches!(self.sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }

    /// Whether an idle connection is still open: the backend may have
    /// closed it since (polled without waiting).
    fn still_open(&mut self) -> bool {
        self.drive(&mut Context::from_waker(Waker::noop()));
        !self.closed && self.sender.is_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback backend that answers every request on a connection with
    /// `reply`, and closes the connection after `per_connection` replies.
    /// Counts the connections it accepted.
    async fn backend(reply: &'static str, per_connection: usize) -> (Endpoint, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = endpoint(listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    for _ in 0..per_connection {
                        if !next_request(&mut socket, &mut buffer, None).await {
                            return;
                        }
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (origin, accepted)
    }

    /// Reads one request off `socket` (headers, then the body its
    /// Content-Length gives), each read waiting at most `idle`; false when
    /// the connection ends (or stays idle) first.
    async fn next_request(
        socket: &mut tokio::net::TcpStream,
        buffer: &mut Vec<u8>,
        idle: Option<Duration>,
    ) -> bool {
        loop {
            if let Some(end) = find_request(buffer) {
                buffer.drain(..end);
                return true;
            }
            let mut chunk = [0u8; 4096];
            let read = socket.read(&mut chunk);
            let read = match idle {
                Some(idle) => match tokio::time::timeout(idle, read).await {
                    Ok(read) => read,
                    Err(_) => return false,
                },
                None => read.await,
            };
            match read {
                Ok(0) | Err(_) => return false,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn endpoint(address: std::net::SocketAddr) -> Endpoint {
        Endpoint::new(&format!("http://{address}/").parse().unwrap()).unwrap()
    }

    /// Where the first complete request in `buffer` ends.
    fn find_request(buffer: &[u8]) -> Option<usize> {
        let head = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let text = String::from_utf8_lossy(&buffer[..head]).to_ascii_lowercase();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        (buffer.len() >= head + length).then_some(head + length)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";

    #[tokio::test]
    async fn calls_reuse_one_kept_alive_connection() {
        let (origin, accepted) = backend(OK, usize::MAX).await;
        let pool = HttpPool::new(4);
        for _ in 0..50 {
            let reply = pool
                .post(&origin, "test", Bytes::from_static(b"{}"), 1024)
                .await
                .unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(&reply.body[..], b"{}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_open_no_more_connections_than_calls_at_once() {
        let (origin, accepted) = backend(OK, usize::MAX).await;
        let pool = HttpPool::new(16);
        for _ in 0..20 {
            let calls = (0..16).map(|_| {
                let (pool, origin) = (pool.clone(), origin.clone());
                tokio::spawn(async move { pool.post(&origin, "test", Bytes::new(), 1024).await })
            });
            for call in calls.collect::<Vec<_>>() {
                assert!(call.await.unwrap().is_ok());
            }
        }
        let opened = accepted.load(Ordering::SeqCst);
        assert!(opened <= 16, "{opened} connections for 16 calls at a time");
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_is_not_reused() {
        // Closes after each reply without saying so, as a backend whose
        // keep-alive timeout has passed does.
        let (origin, accepted) = backend(OK, 1).await;
        let pool = HttpPool::new(4);
        for _ in 0..5 {
            let reply = pool
                .post(&origin, "test", Bytes::from_static(b"{}"), 1024)
                .await
                .unwrap();
            assert_eq!(reply.status, 200);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    /// A backend that serves requests on a kept-alive connection as long
    /// as the next comes within `idle` (Node's keepAliveTimeout is 5 s),
    /// and answers the `stall_at`-th request of the first connection never.
    async fn keep_alive_backend(
        idle: Duration,
        stall_at: Option<usize>,
    ) -> (Endpoint, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = endpoint(listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut served = 0;
                    loop {
                        // Idle too long: closed, as the server's timeout does.
                        if !next_request(&mut socket, &mut buffer, Some(idle)).await {
                            return;
                        }
                        served += 1;
                        if first && Some(served) == stall_at {
                            // Stalls: never answers, never closes.
                            std::future::pending::<()>().await;
                        }
                        if socket.write_all(OK.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (origin, accepted)
    }

    /// Calls spaced within and past the backend's keep-alive timeout all
    /// succeed: a connection it closed while idle is never handed out.
    #[tokio::test]
    async fn a_backend_closing_idle_connections_fails_no_call() {
        let (origin, accepted) = keep_alive_backend(Duration::from_millis(100), None).await;
        let pool = HttpPool::new(4);
        for pause in [0, 20, 250, 20, 250, 250, 20, 20, 250] {
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let reply = pool
                .post(&origin, "test", Bytes::from_static(b"{}"), 1024)
                .await
                .unwrap();
            assert_eq!(reply.status, 200, "after a {pause} ms pause");
        }
        // A new connection after each pause past the timeout only.
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    /// A call whose backend stalls is given up (the gateway's timeout
    /// drops it) with its connection: the next call gets another.
    #[tokio::test]
    async fn a_stalled_connection_is_not_handed_out_again() {
        let (origin, accepted) = keep_alive_backend(Duration::from_secs(30), Some(2)).await;
        let pool = HttpPool::new(4);
        let call = || pool.post(&origin, "test", Bytes::from_static(b"{}"), 1024);
        assert_eq!(call().await.unwrap().status, 200);
        let stalled = tokio::time::timeout(Duration::from_millis(300), call()).await;
        assert!(stalled.is_err(), "the stalled call should time out");
        let started = tokio::time::Instant::now();
        for _ in 0..3 {
            assert_eq!(call().await.unwrap().status, 200);
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connection_close_is_honoured() {
        let close = "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}";
        let (origin, accepted) = backend(close, usize::MAX).await;
        let pool = HttpPool::new(4);
        for _ in 0..3 {
            let reply = pool
                .post(&origin, "test", Bytes::from_static(b"{}"), 1024)
                .await
                .unwrap();
            assert_eq!(&reply.body[..], b"{}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_reply_over_the_limit_is_refused() {
        let big = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789";
        let (origin, _) = backend(big, usize::MAX).await;
        let pool = HttpPool::new(4);
        let error = pool
            .post(&origin, "test", Bytes::new(), 9)
            .await
            .err()
            .unwrap();
        assert!(matches!(error, CallError::TooLarge), "{error:?}");
        assert!(pool.post(&origin, "test", Bytes::new(), 10).await.is_ok());
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = endpoint(listener.local_addr().unwrap());
        drop(listener);
        let error = HttpPool::new(4)
            .post(&origin, "test", Bytes::new(), 1024)
            .await
            .err()
            .unwrap();
        assert!(matches!(error, CallError::Unreachable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_reply_cut_short_is_broken() {
        let cut = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial";
        let (origin, _) = backend(cut, 1).await;
        let error = HttpPool::new(4)
            .post(&origin, "test", Bytes::new(), 1024)
            .await
            .err()
            .unwrap();
        assert!(matches!(error, CallError::Broken(_)), "{error:?}");
    }
}
