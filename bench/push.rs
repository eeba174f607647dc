//! Push through the management API: PostToConnection rate (keep-alive, 64
//! concurrent callers) against a bare hyper server answering the same POSTs
//! in this process, and one message broadcast to N connections.
//!
//! `cargo build --release --bin wsgate --examples && target/release/examples/push [--seconds S] [--broadcast N]`

#[path = "util.rs"]
mod util;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use util::arg;

const CALLERS: usize = 64;

/// The comparison: the cheapest possible answer to the same POSTs.
async fn bare_hyper() -> String {
    format!("http://{}", util::serve_http(|_| Bytes::new()).await)
}

/// POSTs for `seconds` from 64 callers; each caller has its own URL.
async fn post_rate(urls: Vec<String>, seconds: f64) -> f64 {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|url| {
            let client = client.clone();
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                // Bounded: at most 100,000 posts per caller.
                for _ in 0..100_000 {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let status = client
                        .post(&url)
                        .body("0123456789abcdef")
                        .send()
                        .await
                        .unwrap()
                        .status();
                    assert_eq!(status, 200, "{url}");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

struct Gateway {
    child: std::process::Child,
    url: String,
    management: String,
    addr: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SIGTERM: a graceful shutdown that also stops its function instances.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `wsgate serve` (release build) with a `whoami` route, in its own process.
fn start_gateway(dir: &std::path::Path) -> Gateway {
    std::fs::write(
        dir.join("whoami.mjs"),
        "export async function handler(e) { return { statusCode: 200, body: e.requestContext.connectionId }; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("wsgate.toml"),
        "name = \"Push\"\n[routes]\nwhoami = { handler = \"whoami.handler\", return_response = true, concurrency = 32 }\n",
    )
    .unwrap();
    let wsgate = util::wsgate_binary();
    let mut child = Command::new(wsgate)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.join("wsgate.toml"))
        .env("WSGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wsgate starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut management) = (String::new(), String::new());
    while management.is_empty() {
        let line = lines.next().expect("wsgate printed its outputs").unwrap();
        if let Some(v) = line.trim().strip_prefix("url:") {
            url = v.trim().to_string();
        }
        if let Some(v) = line.trim().strip_prefix("managementEndpoint:") {
            management = v.trim().to_string();
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    Gateway {
        child,
        url,
        management,
        addr,
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens `n` connections (256 at a time) and learns each one's id.
async fn open(gateway: &Gateway, n: usize) -> Vec<(Socket, String)> {
    futures_util::stream::iter(0..n)
        .map(|i| {
            let (url, addr) = (gateway.url.clone(), gateway.addr);
            async move {
                let socket = TcpSocket::new_v4().unwrap();
                socket
                    .bind(format!("127.0.0.{}:0", 1 + i % 16).parse().unwrap())
                    .unwrap();
                let stream = socket.connect(addr).await.unwrap();
                let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
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
        .buffer_unordered(256)
        .collect()
        .await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 3.0);
    let broadcast = arg(&args, "--broadcast", 10_000.0) as usize;
    let dir = std::env::temp_dir().join(format!("wsgate-bench-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gateway = start_gateway(&dir);

    // Rate: 64 callers, each pushing to its own connection, drained by its client.
    let sockets = open(&gateway, CALLERS).await;
    let mut urls = Vec::new();
    let mut drains = Vec::new();
    for (mut ws, id) in sockets {
        urls.push(format!("{}/@connections/{id}", gateway.management));
        drains.push(tokio::spawn(async move {
            while let Some(Ok(_)) = ws.next().await {}
        }));
    }
    let bare = bare_hyper().await;
    let bare_rate = post_rate(
        (0..CALLERS).map(|i| format!("{bare}/{i}")).collect(),
        seconds,
    )
    .await;
    let push_rate = post_rate(urls, seconds).await;
    for drain in drains {
        drain.abort();
    }
    println!("PostToConnection, {CALLERS} keep-alive callers, {seconds}s, loopback");
    println!("  bare hyper POST:     {bare_rate:>9.0} req/s");
    println!(
        "  wsgate push:         {push_rate:>9.0} req/s   ({:.2}x bare hyper)",
        push_rate / bare_rate
    );

    // Broadcast: one message to every connection; time until the last has it.
    let sockets = open(&gateway, broadcast).await;
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
    let management = gateway.management.clone();
    futures_util::stream::iter(ids)
        .map(|id| {
            let (client, management) = (client.clone(), management.clone());
            async move {
                let status = client
                    .post(format!("{management}/@connections/{id}"))
                    .body("broadcast")
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, 200);
            }
        })
        .buffer_unordered(CALLERS)
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
    println!(
        "broadcast to {broadcast} connections: all posted in {:.0} ms, last received after {:.0} ms ({} received)",
        posted.as_secs_f64() * 1000.0,
        (last - started).as_secs_f64() * 1000.0,
        received.load(Ordering::Relaxed)
    );
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}
