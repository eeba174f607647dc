//! Small pieces every benchmark uses.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The `wsgate` binary of the same build (examples live in `<profile>/examples/`).
pub fn wsgate_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(|examples| examples.parent())
        .expect("examples folder inside a profile folder")
        .join("wsgate")
}

/// `--name value` as a number, or `default`.
pub fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

/// A keep-alive HTTP/1.1 server on a free loopback port that answers every
/// request body with `reply(body)`.
pub async fn serve_http(reply: fn(Bytes) -> Bytes) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(
                    move |request: http::Request<hyper::body::Incoming>| async move {
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        Ok::<_, Infallible>(http::Response::new(Full::new(reply(body))))
                    },
                );
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens `n` WebSocket connections to `url` at `addr` (`at_once`
/// handshakes at a time, source addresses spread over 127.0.0.1-16), each
/// asking its `whoami` route for its connection id.
pub async fn open_whoami(
    url: &str,
    addr: SocketAddr,
    n: usize,
    at_once: usize,
) -> Vec<(Socket, String)> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    futures_util::stream::iter(0..n)
        .map(|i| {
            let url = url.to_string();
            async move {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket
                    .bind(format!("127.0.0.{}:0", 1 + i % 16).parse().unwrap())
                    .unwrap();
                let stream = socket.connect(addr).await.unwrap();
                // A 4 KiB read buffer, as the echo bench's clients: with
                // tungstenite's default (128 KiB) every read zeroes 128 KiB,
                // client work that would count against the gateway here.
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .read_buffer_size(4 * 1024);
                let (mut ws, _) =
                    tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                        .await
                        .unwrap();
                ws.send(Message::text(r#"{"action":"whoami"}"#))
                    .await
                    .unwrap();
                let id = match ws.next().await {
                    Some(Ok(Message::Text(id))) => id.to_string(),
                    other => panic!("whoami gave {other:?}"),
                };
                (ws, id)
            }
        })
        .buffer_unordered(at_once)
        .collect()
        .await
}

/// How a broadcast went: milliseconds until every PostToConnection was
/// answered and until the last client had the message; clients that got it.
pub struct Broadcast {
    pub posted_ms: f64,
    pub last_ms: f64,
    pub received: usize,
}

/// Posts "broadcast" to every socket's id through `management`, signed
/// with `key`, `callers` at a time, and waits for every client to read it.
pub async fn broadcast(
    management: &str,
    key: &Key,
    sockets: Vec<(Socket, String)>,
    callers: usize,
) -> Broadcast {
    use futures_util::StreamExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    use tokio_tungstenite::tungstenite::Message;
    let received = Arc::new(AtomicUsize::new(0));
    let mut ids = Vec::new();
    let mut waiters = Vec::new();
    for (mut ws, id) in sockets {
        ids.push(id);
        let received = Arc::clone(&received);
        waiters.push(tokio::spawn(async move {
            if let Some(Ok(Message::Text(text))) = ws.next().await {
                assert_eq!(text.as_str(), "broadcast");
                received.fetch_add(1, Ordering::Relaxed);
            }
            Instant::now()
        }));
    }
    let client = reqwest::Client::new();
    let started = Instant::now();
    futures_util::stream::iter(ids)
        .map(|id| {
            let (client, key) = (client.clone(), key.clone());
            let url = format!("{management}/@connections/{id}");
            async move {
                let request = key
                    .sign_post(&url, b"broadcast")
                    .into_iter()
                    .fold(client.post(&url).body("broadcast"), |r, (n, v)| {
                        r.header(n, v)
                    });
                assert_eq!(request.send().await.unwrap().status(), 200);
            }
        })
        .buffer_unordered(callers)
        .collect::<Vec<_>>()
        .await;
    let posted = started.elapsed();
    let mut last = started;
    for waiter in waiters {
        last = last.max(
            tokio::time::timeout(Duration::from_secs(60), waiter)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    Broadcast {
        posted_ms: posted.as_secs_f64() * 1000.0,
        last_ms: (last - started).as_secs_f64() * 1000.0,
        received: received.load(Ordering::Relaxed),
    }
}

/// An access key, as `wsgate serve` prints it.
#[derive(Clone)]
pub struct Key {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

impl Key {
    /// Reads `export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION=...`.
    pub fn from_exports(line: &str) -> Option<Key> {
        let var = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
        };
        Some(Key {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            region: var("AWS_REGION")?,
        })
    }

    /// SigV4 headers for a POST of `body` to `url`, as an AWS SDK signs.
    pub fn sign_post(&self, url: &str, body: &[u8]) -> Vec<(String, String)> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let identity = aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "bench",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("execute-api")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable =
            SignableRequest::new("POST", url, std::iter::empty(), SignableBody::Bytes(body))
                .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
}
