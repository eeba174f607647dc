//! The HTTP side of a connection: reading the first request head (keeping
//! the client's header spelling, which API Gateway passes on to handlers),
//! and the WebSocket upgrade with `$connect` run before the 101.

use super::connection;
use super::registry::{ConnectionEntry, OutboundReceiver};
use super::{ConnectAuth, Gateway, InvokeError};
use crate::access_log::Record;
use crate::admin::metrics;
use crate::auth::authorizer::Verdict;
use crate::auth::keyring::Caller;
use crate::auth::policy::INVOKE;
use crate::auth::{AuthError, sigv4};
use crate::events::{ConnectionMeta, Event, HandshakeRequest};
use crate::ids::new_shared_id;
use base64::Engine;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Largest request head accepted (API Gateway's limit for headers is 10 KB).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a client may take to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The read buffer per connection: small, so idle connections stay cheap;
/// it grows for large messages.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// A request line and headers as the client sent them.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The headers as name/value pairs, for signature verification.
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    /// The head as SigV4 verification sees it (an upgrade has no body).
    pub fn signed_request<'a>(&'a self, headers: &'a [(&'a str, &'a str)]) -> sigv4::Request<'a> {
        sigv4::Request {
            method: &self.method,
            path: self.path(),
            query: self.query(),
            headers,
            body: b"",
        }
    }

    pub fn wants_websocket(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("connection closed before a complete request head")]
    Closed,
    #[error("request head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads until a whole request head is in `buf`; returns the head and its
/// length. Bytes after the head stay in `buf`.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> Result<(RequestHead, usize), HeadError> {
    loop {
        if let Some(parsed) = parse_head(buf)? {
            return Ok(parsed);
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
        buf.reserve(1024);
        if stream.read_buf(buf).await? == 0 {
            return Err(HeadError::Closed);
        }
    }
}

/// Parses a request head if `buf` holds a complete one.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let headers = request
        .headers
        .iter()
        .map(|h| {
            std::str::from_utf8(h.value)
                .map(|v| (h.name.to_string(), v.to_string()))
                .map_err(|_| HeadError::Malformed(format!("header {} is not UTF-8", h.name)))
        })
        .collect::<Result<_, _>>()?;
    let mut head = RequestHead {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        version: request.version.unwrap_or(1),
        headers,
    };
    head.make_origin_form();
    Ok(Some((head, len)))
}

impl RequestHead {
    /// An absolute-form target (`http://host/path`) becomes origin-form,
    /// and its authority the Host, as RFC 9112 section 3.2.2 has servers
    /// do (the received Host is ignored).
    fn make_origin_form(&mut self) {
        let lower = self
            .target
            .get(..8)
            .unwrap_or(&self.target)
            .to_ascii_lowercase();
        let scheme_len = if lower.starts_with("http://") {
            7
        } else if lower.starts_with("https://") {
            8
        } else {
            return;
        };
        let rest = &self.target[scheme_len..];
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        let authority = authority.to_string();
        self.target = path;
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            Some((_, value)) => *value = authority,
            None => self.headers.push(("Host".into(), authority)),
        }
    }
}

/// Writes a complete, non-101 HTTP response and closes the exchange.
pub async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    extra_headers: &[(&str, &str)],
    body: &str,
) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(body);
    // The client may be gone already; there is nobody left to tell.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Why an upgrade request is refused before `$connect` runs.
struct Refusal {
    status: u16,
    message: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

fn refuse(status: u16, message: &'static str) -> Refusal {
    Refusal {
        status,
        message,
        headers: &[],
    }
}

/// RFC 6455 section 4.2.1 checks; returns the Sec-WebSocket-Key.
fn check_upgrade(head: &RequestHead) -> Result<&str, Refusal> {
    if head.method != "GET" {
        return Err(refuse(400, "WebSocket upgrade must be a GET request"));
    }
    if head.version != 1 {
        return Err(refuse(400, "WebSocket upgrade needs HTTP/1.1"));
    }
    if head.header("host").is_none_or(|h| h.trim().is_empty()) {
        return Err(refuse(400, "Host header is required"));
    }
    let connection_upgrade = head.header("connection").is_some_and(|v| {
        v.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !connection_upgrade {
        return Err(refuse(400, "Connection header must include Upgrade"));
    }
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Refusal {
            status: 426,
            message: "Unsupported WebSocket version; use 13",
            headers: &[("sec-websocket-version", "13")],
        });
    }
    let key = head
        .header("sec-websocket-key")
        .map(str::trim)
        .filter(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k)
                .is_ok_and(|bytes| bytes.len() == 16)
        })
        .ok_or_else(|| refuse(400, "Sec-WebSocket-Key must be 16 bytes in base64"))?;
    Ok(key)
}

/// Headers a `$connect` handler may not set on the 101: the handshake's own.
fn is_reserved_header(name: &str) -> bool {
    [
        "connection",
        "upgrade",
        "sec-websocket-accept",
        "content-length",
        "transfer-encoding",
    ]
    .iter()
    .any(|r| name.eq_ignore_ascii_case(r))
}

fn message_body(message: &str) -> String {
    serde_json::json!({ "message": message }).to_string()
}

/// Completes (or refuses) a WebSocket upgrade whose head has been read,
/// then serves the connection; `leftover` holds any bytes the client sent
/// after the head.
pub async fn upgrade<S>(
    gateway: Arc<Gateway>,
    mut stream: S,
    head: RequestHead,
    leftover: Vec<u8>,
    peer: SocketAddr,
    local: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The handshake's buffers and headers are dropped before the
    // connection runs, and its future is boxed so the connection's task is
    // not sized for it: an idle connection keeps only what it needs.
    let handshake = Box::pin(handshake(&gateway, &mut stream, head, peer, local));
    let Some((entry, outbound_rx)) = handshake.await else {
        return;
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(gateway.limits.max_message_size))
        .max_frame_size(Some(gateway.limits.max_frame_size));
    let socket =
        WebSocketStream::from_partially_read(stream, leftover, Role::Server, Some(config)).await;
    tracing::debug!(connection_id = %entry.meta.connection_id, %peer, "connected");
    connection::run(gateway, entry, socket, outbound_rx).await;
}

/// Checks the upgrade, runs `$connect` and writes the 101; on success the
/// connection is registered and its outbound queue returned.
async fn handshake<S>(
    gateway: &Gateway,
    stream: &mut S,
    head: RequestHead,
    peer: SocketAddr,
    local: SocketAddr,
) -> Option<(Arc<ConnectionEntry>, OutboundReceiver)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let key = match check_upgrade(&head) {
        Ok(key) => key.to_string(),
        Err(refusal) => {
            tracing::debug!(%peer, reason = refusal.message, "upgrade refused");
            write_response(
                stream,
                refusal.status,
                refusal.headers,
                &message_body(refusal.message),
            )
            .await;
            return None;
        }
    };

    // A cluster node that cannot show its slot is its own (or a node
    // draining) takes no new connections; the load balancer sends the
    // client to another.
    if !gateway.accepting() {
        tracing::debug!(%peer, "upgrade refused: not accepting new connections");
        write_response(stream, 503, &[], &message_body("Service Unavailable")).await;
        return None;
    }
    let mut meta = ConnectionMeta {
        connection_id: gateway.registry.new_connection_id().into(),
        connected_at: chrono::Utc::now().timestamp_millis(),
        source_ip: peer.ip().to_string().into(),
        user_agent: head.header("user-agent").map(Arc::from),
        domain_name: head.header("host").unwrap_or_default().trim().into(),
        caller: None,
        authorizer: None,
    };
    let request = HandshakeRequest {
        headers: with_forwarding_headers(&head.headers, peer, local),
        query: head.query().map(str::to_string),
    };
    let request_id = new_shared_id();
    if !gateway.admit() {
        gateway.log(|| Record::refused_upgrade(&meta, &gateway.api, 429, "Too Many Requests"));
        write_response(stream, 429, &[], &message_body("Too Many Requests")).await;
        return None;
    }

    // The CONNECT event's authorizer block also carries the latency.
    let mut connect_authorizer = None;
    let routing = gateway.routing();
    if let Some(auth) = &routing.connect_auth {
        let refusal = match auth {
            ConnectAuth::Iam => match authorize_iam(gateway, &head) {
                Ok(caller) => {
                    meta.caller = Some(Arc::new(caller));
                    None
                }
                Err(e) => Some((403, Some(e.error_type()), e.to_string())),
            },
            ConnectAuth::Lambda(authorizer) => {
                let event = Event::connect(&gateway.api, &meta, request_id.clone(), &request);
                let verdict = authorizer.authorize(&gateway.arn("$connect"), &event).await;
                if let Some(m) = metrics::get() {
                    m.authorizer_results
                        .get_or_create(&metrics::AuthorizerLabels {
                            api: Arc::clone(&gateway.metric_api),
                            result: match &verdict {
                                Verdict::Allow(_) => "allow",
                                Verdict::Unauthorized => "unauthorized",
                                Verdict::Forbidden(_) => "deny",
                                Verdict::Failed(_) => "error",
                            },
                        })
                        .inc();
                }
                match verdict {
                    Verdict::Allow(context) => {
                        let mut later = context.clone();
                        later.shift_remove("integrationLatency");
                        meta.authorizer = Some(Arc::new(later));
                        connect_authorizer = Some(context);
                        None
                    }
                    Verdict::Unauthorized => Some((401, None, "Unauthorized".to_string())),
                    Verdict::Forbidden(why) => {
                        tracing::info!(authorizer = %authorizer.name, reason = %why, "connection refused");
                        Some((403, None, "Forbidden".to_string()))
                    }
                    Verdict::Failed(why) => {
                        tracing::warn!(authorizer = %authorizer.name, reason = %why, "authorizer failed; connection refused");
                        Some((500, None, "Internal Server Error".to_string()))
                    }
                }
            }
        };
        if let Some((status, error_type, message)) = refusal {
            tracing::debug!(%peer, status, %message, "upgrade not authorized");
            gateway.log(|| Record::refused_upgrade(&meta, &gateway.api, status, &message));
            let headers: Vec<(&str, &str)> = error_type
                .map(|t| vec![("x-amzn-ErrorType", t)])
                .unwrap_or_default();
            write_response(stream, status, &headers, &message_body(&message)).await;
            return None;
        }
    }
    let meta = Arc::new(meta);

    let mut accept_headers = Vec::new();
    let route = routing.route("$connect");
    // The event is built for the handler, or for the access log or the
    // console alone.
    if route.is_some() || gateway.access_log.is_some() || super::observe::get().is_some() {
        let mut event = Event::connect(&gateway.api, &meta, request_id, &request);
        if connect_authorizer.is_some() {
            event.request_context.authorizer = connect_authorizer.map(Arc::new);
        }
        let (status, body, integration) = match route {
            None => (101, None, None),
            Some(route) => match gateway.invoke(route, &event).await {
                (Ok(response), integration) if response.is_success() => {
                    accept_headers = response.headers;
                    (101, None, Some(integration))
                }
                (Ok(response), integration) => {
                    (response.status_code, response.body, Some(integration))
                }
                (Err(InvokeError::Failed(_)), integration) => (
                    502,
                    Some(message_body("Internal server error")),
                    Some(integration),
                ),
                (Err(InvokeError::TimedOut(_)), integration) => (
                    504,
                    Some(message_body("Endpoint request timed out")),
                    Some(integration),
                ),
            },
        };
        // API Gateway logs an accepted CONNECT as 200.
        gateway.log(|| Record {
            integration,
            ..Record::for_event(&event, if status == 101 { 200 } else { status })
        });
        if status != 101 {
            tracing::info!(connection_id = %meta.connection_id, status, "$connect rejected the connection");
            write_response(stream, status, &[], body.as_deref().unwrap_or("")).await;
            return None;
        }
    }

    let (entry, outbound_rx) =
        ConnectionEntry::new(Arc::clone(&meta), gateway.limits.max_message_size);
    let entry = Arc::new(entry);
    // Registered before the 101 is written: a push from now on is queued
    // and reaches the client right after the handshake.
    gateway.registry.register(Arc::clone(&entry));

    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    for (name, value) in &accept_headers {
        let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
            && http::HeaderValue::from_str(value).is_ok();
        if !valid || is_reserved_header(name) {
            tracing::warn!(header = %name, "ignoring a header the $connect handler may not set");
            continue;
        }
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    if let Err(e) = stream.write_all(response.as_bytes()).await {
        tracing::debug!(connection_id = %meta.connection_id, error = %e, "client left during the handshake");
        gateway.registry.unregister(&meta.connection_id);
        connection::finish(gateway, &meta, 1006, "").await;
        return None;
    }
    Some((entry, outbound_rx))
}

/// Verifies a SigV4-signed upgrade (headers or presigned URL) for
/// `execute-api:Invoke` on `$connect`.
fn authorize_iam(gateway: &Gateway, head: &RequestHead) -> Result<Caller, AuthError> {
    let headers = head.header_pairs();
    gateway.auth.authorize(
        &head.signed_request(&headers),
        INVOKE,
        &gateway.arn("$connect"),
        std::time::SystemTime::now(),
    )
}

/// API Gateway adds X-Forwarded-For/-Port/-Proto to what the handler sees.
fn with_forwarding_headers(
    headers: &[(String, String)],
    peer: SocketAddr,
    local: SocketAddr,
) -> Vec<(String, String)> {
    let mut headers = headers.to_vec();
    let has = |headers: &[(String, String)], name: &str| {
        headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    for (name, value) in [
        ("X-Forwarded-For", peer.ip().to_string()),
        ("X-Forwarded-Port", local.port().to_string()),
        ("X-Forwarded-Proto", "http".to_string()),
    ] {
        if !has(&headers, name) {
            headers.push((name.to_string(), value));
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> RequestHead {
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    const GOOD: &str = "GET /$default HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn keeps_header_spelling_and_order() {
        let h = head(GOOD);
        assert_eq!(h.headers[0], ("Host".to_string(), "h".to_string()));
        assert_eq!(h.headers[4].0, "Sec-WebSocket-Key");
        assert!(h.wants_websocket());
        assert_eq!(check_upgrade(&h).ok(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
    }

    #[test]
    fn absolute_form_targets_become_origin_form() {
        let h = head(&GOOD.replace("GET /$default", "GET http://api.example:8080/$default?a=1"));
        assert_eq!(h.target, "/$default?a=1");
        assert_eq!(h.header("host"), Some("api.example:8080"));
        assert!(check_upgrade(&h).is_ok());
        let h = head(&GOOD.replace("GET /$default", "GET HTTPS://x"));
        assert_eq!((h.target.as_str(), h.header("host")), ("/", Some("x")));
        let h = head(&GOOD.replace("GET /$default", "GET http://x?q"));
        assert_eq!(h.target, "/?q");
    }

    #[test]
    fn partial_and_malformed_heads() {
        assert!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .unwrap()
                .is_none()
        );
        assert!(parse_head(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").is_err());
        assert!(parse_head(b"\x00\x01\x02\r\n\r\n").is_err());
    }

    #[test]
    fn upgrade_checks() {
        let refused = |raw: &str| check_upgrade(&head(raw)).err().map(|r| r.status);
        assert_eq!(refused(&GOOD.replace("GET", "POST")), Some(400));
        assert_eq!(
            refused(&GOOD.replace("Version: 13", "Version: 8")),
            Some(426)
        );
        assert_eq!(
            refused(&GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "short")),
            Some(400)
        );
        assert_eq!(
            refused(&GOOD.replace("keep-alive, Upgrade", "keep-alive")),
            Some(400)
        );
        assert_eq!(refused(&GOOD.replace("Host: h\r\n", "")), Some(400));
        assert_eq!(refused(&GOOD.replace("HTTP/1.1", "HTTP/1.0")), Some(400));
    }
}
