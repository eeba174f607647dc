//! Push through the management API: PostToConnection rate (keep-alive, 64
//! concurrent callers) against a bare hyper server answering the same POSTs
//! in this process, SigV4-signed (as the SDKs call) and unsigned (the
//! gateway runs with --insecure-dev, which accepts both), and one signed
//! message broadcast to N connections.
//!
//! `cargo build --release --bin wsgate --examples && target/release/examples/push [--seconds S] [--broadcast N]`

#[path = "util.rs"]
mod util;

use bytes::Bytes;
use futures_util::StreamExt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use util::{Key, arg};

const CALLERS: usize = 64;

/// The comparison: the cheapest possible answer to the same POSTs.
async fn bare_hyper() -> String {
    format!("http://{}", util::serve_http(|_| Bytes::new()).await)
}

/// How the benchmark's callers sign.
#[derive(Clone, Copy, PartialEq)]
enum Signing {
    None,
    /// Every request, as an AWS SDK does: the client's signing cost counts.
    EachRequest,
    /// Once per caller, the same signature replayed (valid for 5 minutes):
    /// only the gateway's verification cost counts.
    Replayed,
}

/// POSTs for `seconds` from 64 callers; each caller has its own URL.
async fn post_rate(urls: Vec<String>, seconds: f64, key: &Key, signing: Signing) -> f64 {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|url| {
            let client = client.clone();
            let done = Arc::clone(&done);
            let key = key.clone();
            tokio::spawn(async move {
                const BODY: &str = "0123456789abcdef";
                let replayed = key.sign_post(&url, BODY.as_bytes());
                // Bounded: at most 100,000 posts per caller.
                for _ in 0..100_000 {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let request = match signing {
                        Signing::None => client.post(&url).body(BODY),
                        Signing::EachRequest => signed_post(&client, &url, BODY, Some(&key)),
                        Signing::Replayed => replayed
                            .iter()
                            .fold(client.post(&url).body(BODY), |r, (n, v)| r.header(n, v)),
                    };
                    let status = request.send().await.unwrap().status();
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

fn signed_post(
    client: &reqwest::Client,
    url: &str,
    body: &'static str,
    key: Option<&Key>,
) -> reqwest::RequestBuilder {
    let mut request = client.post(url).body(body);
    for (name, value) in key
        .map(|k| k.sign_post(url, body.as_bytes()))
        .unwrap_or_default()
    {
        request = request.header(name, value);
    }
    request
}

struct Gateway {
    child: std::process::Child,
    url: String,
    management: String,
    addr: SocketAddr,
    key: Key,
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
        .args([
            "serve",
            "--insecure-dev",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(dir.join("wsgate.toml"))
        .env("WSGATE_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wsgate starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut management, mut key) = (String::new(), String::new(), None);
    while key.is_none() {
        let line = lines.next().expect("wsgate printed its outputs").unwrap();
        if let Some(v) = line.trim().strip_prefix("url:") {
            url = v.trim().to_string();
        }
        if let Some(v) = line.trim().strip_prefix("managementEndpoint:") {
            management = v.trim().to_string();
        }
        key = Key::from_exports(&line);
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
        key: key.unwrap(),
    }
}

use util::Socket;

/// Opens `n` connections to `gateway`, each learning its id.
async fn open(gateway: &Gateway, n: usize) -> Vec<(Socket, String)> {
    // As many at once as the route has instances: its reserved
    // concurrency throttles past them, as Lambda does.
    util::open_whoami(&gateway.url, gateway.addr, n, 32).await
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
        &gateway.key,
        Signing::None,
    )
    .await;
    let unsigned_rate = post_rate(urls.clone(), seconds, &gateway.key, Signing::None).await;
    let replayed_rate = post_rate(urls.clone(), seconds, &gateway.key, Signing::Replayed).await;
    let signed_rate = post_rate(urls, seconds, &gateway.key, Signing::EachRequest).await;
    for drain in drains {
        drain.abort();
    }
    println!("PostToConnection, {CALLERS} keep-alive callers, {seconds}s, loopback");
    println!("  bare hyper POST:     {bare_rate:>9.0} req/s");
    println!(
        "  wsgate unsigned:     {unsigned_rate:>9.0} req/s   ({:.2}x bare hyper)",
        unsigned_rate / bare_rate
    );
    println!(
        "  wsgate SigV4 verify: {replayed_rate:>9.0} req/s   ({:.2}x bare hyper, {:.2}x unsigned; one signature per caller, replayed)",
        replayed_rate / bare_rate,
        replayed_rate / unsigned_rate
    );
    println!(
        "  wsgate SigV4 signed: {signed_rate:>9.0} req/s   ({:.2}x bare hyper, {:.2}x unsigned; the client signs each request, as the SDKs)",
        signed_rate / bare_rate,
        signed_rate / unsigned_rate
    );

    // Broadcast: one message to every connection; time until the last has it.
    let sockets = open(&gateway, broadcast).await;
    let done = util::broadcast(&gateway.management, &gateway.key, sockets, CALLERS).await;
    println!(
        "broadcast to {broadcast} connections: all posted in {:.0} ms, last received after {:.0} ms ({} received)",
        done.posted_ms, done.last_ms, done.received
    );
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}
