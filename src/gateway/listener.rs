//! Accepts sockets and sends each to the WebSocket upgrade or to the
//! HTTP side (management API and plain requests).

use super::Gateway;
use super::handshake::{self, HEAD_TIMEOUT, HeadError, MAX_HEAD_BYTES, read_head, write_response};
use super::paths::Target;
use crate::management;
use bytes::{Buf, Bytes, BytesMut};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The longest pause between accept attempts while accepting fails.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts connections until the gateway shuts down.
pub async fn accept_loop(gateway: Arc<Gateway>, listener: TcpListener) {
    // One descriptor in reserve: when the process has none left, it is
    // given up to accept the waiting client and tell it 503, rather than
    // leaving it in the backlog.
    let mut spare = reserve_descriptor();
    let mut backoff = Duration::ZERO;
    let mut failures = 0u64;
    let mut last_report: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = gateway.shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::ZERO;
                    let _ = stream.set_nodelay(true);
                    let connection_gateway = Arc::clone(&gateway);
                    gateway.tasks.spawn(handle_socket(connection_gateway, stream, peer));
                }
                Err(error) => {
                    failures += 1;
                    if is_out_of_descriptors(&error) && spare.take().is_some() {
                        refuse_one(&listener);
                        spare = reserve_descriptor();
                    }
                    // One warning a second at most, however fast it fails.
                    if last_report.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(%error, failures, "accept failing; backing off");
                        failures = 0;
                        last_report = Some(std::time::Instant::now());
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_ACCEPT_BACKOFF);
                    tokio::select! {
                        _ = gateway.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }
    }
}

fn reserve_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Accepts one waiting client with the descriptor just freed and answers
/// 503 (best effort, without waiting) before closing it.
fn refuse_one(listener: &TcpListener) {
    use std::os::fd::{AsRawFd, FromRawFd};
    const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 33\r\nconnection: close\r\n\r\n{\"message\":\"Service Unavailable\"}";
    // SAFETY: accept4 on our own listening socket; the descriptor it
    // returns is owned by the TcpStream, which closes it when dropped.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    };
    if fd < 0 {
        return;
    }
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let _ = std::io::Write::write(&mut &stream, REFUSAL);
}

async fn handle_socket(gateway: Arc<Gateway>, stream: TcpStream, peer: SocketAddr) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    // TLS and plain HTTP share the port: a TLS ClientHello starts with
    // 0x16, an HTTP request with a letter.
    if let Some(tls) = gateway.tls.clone() {
        let mut first = [0u8; 1];
        let peeked = tokio::time::timeout(HEAD_TIMEOUT, stream.peek(&mut first)).await;
        if matches!(peeked, Ok(Ok(1))) && first[0] == 0x16 {
            // Boxed, as the paths below are: a task's future is sized for
            // its largest state, and every idle connection keeps it.
            let accept = Box::pin(tls.acceptor.accept(stream));
            let accepted = tokio::select! {
                _ = gateway.shutdown.cancelled() => return,
                accepted = tokio::time::timeout(HEAD_TIMEOUT, accept) => accepted,
            };
            match accepted {
                // Boxed: a TLS connection's future is several KiB larger,
                // and every plain connection's task would otherwise be
                // sized for it.
                Ok(Ok(tls)) => Box::pin(serve_stream(gateway, tls, peer, local, true)).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
            return;
        }
    }
    serve_stream(gateway, stream, peer, local, false).await;
}

/// Reads the first request head and upgrades or serves HTTP. `secure`:
/// the request came over TLS (the custom domain's, or the API host's own).
async fn serve_stream<S>(
    gateway: Arc<Gateway>,
    mut stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    secure: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(1024);
    let head = tokio::select! {
        _ = gateway.shutdown.cancelled() => return,
        head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut buf)) => head,
    };
    let (mut head, head_len) = match head {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(error @ HeadError::TooLarge)) => {
            tracing::debug!(%peer, %error, "bad request");
            write_response(
                &mut stream,
                431,
                &[],
                r#"{"message":"Request Header Fields Too Large"}"#,
            )
            .await;
            return;
        }
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "bad request");
            write_response(&mut stream, 400, &[], r#"{"message":"Bad Request"}"#).await;
            return;
        }
        Err(_) => {
            write_response(&mut stream, 408, &[], r#"{"message":"Request Timeout"}"#).await;
            return;
        }
    };
    // Over TLS, a request for the custom domain is mapped as the domain
    // maps it; any other (when the API's own host is served over TLS too)
    // is the API's own, as over plain HTTP.
    let domain = gateway.domain.as_ref().filter(|domain| {
        secure
            && (head.header("host").is_some_and(|h| domain.is_host(h))
                || !gateway.tls.as_ref().is_some_and(|t| t.own_host))
    });
    if secure && head.header("x-forwarded-proto").is_none() {
        head.headers
            .push(("X-Forwarded-Proto".into(), "https".into()));
    }
    let upgrade = match domain {
        None => head.wants_websocket() && gateway.classify_path(head.path()) == Target::Endpoint,
        Some(domain) => {
            let target = domain.classify(head.path());
            // A Host the domain does not map is Forbidden, as an unmapped
            // path is: API Gateway answers 403 for whatever no mapping
            // takes (with `tls = "local"` a foreign Host reaches the API's
            // own host, whose paths then refuse it with 403 too).
            let mapped = head.header("host").is_some_and(|h| domain.is_host(h));
            let refusal = if !mapped || target == Target::Forbidden {
                Some((403, r#"{"message":"Forbidden"}"#))
            } else if target == Target::Endpoint && !head.wants_websocket() {
                Some((426, r#"{"message":"Upgrade Required"}"#))
            } else {
                None
            };
            if let Some((status, body)) = refusal {
                write_response(&mut stream, status, &[], body).await;
                return;
            }
            // `<base>/@connections/<id>` on the domain is the management API.
            target == Target::Endpoint
        }
    };
    if upgrade {
        let leftover = buf[head_len..].to_vec();
        drop(buf);
        handshake::upgrade(gateway, stream, head, leftover, peer, local).await;
    } else {
        // Boxed: plain HTTP's future is about twice a connection's, and
        // the task of every WebSocket connection would be sized for it.
        Box::pin(serve_http(gateway, Prefixed::new(buf.freeze(), stream))).await;
    }
}

/// Serves plain HTTP/1.1 (keep-alive) on a socket whose first bytes were
/// already read.
async fn serve_http<S>(gateway: Arc<Gateway>, io: Prefixed<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_gateway = Arc::clone(&gateway);
    let service = service_fn(move |request| {
        let gateway = Arc::clone(&service_gateway);
        async move { Ok::<_, Infallible>(management::handle(&gateway, request).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        // Heads are at most 16 KiB and bodies are read as they come: no
        // connection needs hyper's default 400 KiB of buffer.
        .max_buf_size(MAX_HEAD_BYTES * 4)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "http connection ended with an error");
            }
        }
        _ = gateway.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A stream whose first bytes come from a buffer already read off it.
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Bytes, inner: S) -> Prefixed<S> {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
