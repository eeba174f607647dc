//! Idle-connection footprint: opens N WebSocket connections to wsgate and,
//! in the same run, to a bare tokio-tungstenite echo server (the ceiling),
//! and reports server RSS per connection and connect rate for both.
//!
//! With `--rounds R`, it then connects and disconnects them R more
//! times and reports RSS once each round's connections are gone (churn).
//!
//! `cargo run --release --example idle_rss -- [--connections N] [--rounds R]`
//! (expects the release `wsgate` binary beside this example's).

#[path = "raw_echo.rs"]
mod raw_echo;
#[path = "util.rs"]
mod util;

use futures_util::StreamExt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;

struct Server {
    child: Child,
    addr: SocketAddr,
    path: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reads stdout until a line yields an address.
fn spawn(
    mut command: Command,
    find: impl Fn(&str) -> Option<SocketAddr>,
    path: &'static str,
) -> Server {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        if let Some(addr) = find(&line) {
            break addr;
        }
    };
    // Keep draining stdout so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr, path }
}

fn start_wsgate(dir: &std::path::Path, stem: &str, config_text: &str) -> Server {
    let config = dir.join(format!("{stem}.toml"));
    std::fs::write(&config, config_text).unwrap();
    let mut command = Command::new(util::wsgate_binary());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("WSGATE_LOG", "warn");
    spawn(
        command,
        |line| {
            line.trim().strip_prefix("url:").map(|u| {
                u.trim()
                    .trim_start_matches("ws://")
                    .trim_end_matches("/$default")
                    .parse()
                    .unwrap()
            })
        },
        "/$default",
    )
}

fn start_raw() -> Server {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.arg("--serve-raw");
    spawn(
        command,
        |line| {
            line.strip_prefix("listening on ")
                .map(|a| a.parse().unwrap())
        },
        "/",
    )
}

/// The comparison, in a process of its own so its RSS is its own.
async fn serve_raw() {
    println!("listening on {}", raw_echo::spawn().await);
    std::future::pending::<()>().await;
}

struct Measurement {
    rss_before_kib: u64,
    rss_after_kib: u64,
    connect_seconds: f64,
}

async fn measure(server: &Server, connections: usize) -> Measurement {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.child.id();
    let rss_before_kib = rss_kib(pid);
    let url = format!("ws://{}{}", server.addr, server.path);
    let started = Instant::now();
    // 256 handshakes in flight at a time; a slow one (a SYN retried after
    // 1 s) does not hold up the others.
    let clients: Vec<_> = futures_util::stream::iter(0..connections)
        .map(|i| {
            let url = url.clone();
            let addr = server.addr;
            // Spread source addresses over 127.0.0.1-16 so ephemeral ports suffice.
            let source: SocketAddr = format!("127.0.0.{}:0", 1 + i % 16).parse().unwrap();
            async move {
                let socket = TcpSocket::new_v4().unwrap();
                socket.bind(source).unwrap();
                let stream = socket.connect(addr).await.expect("tcp connect");
                let (ws, _) = tokio_tungstenite::client_async(url, stream)
                    .await
                    .expect("handshake");
                ws
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let connect_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after_kib = rss_kib(pid);
    drop(clients);
    Measurement {
        rss_before_kib,
        rss_after_kib,
        connect_seconds,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve-raw") {
        serve_raw().await;
        return;
    }
    let connections: usize = args
        .iter()
        .position(|a| a == "--connections")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--connections takes a number"))
        .unwrap_or(10_000);
    let rounds = util::arg(&args, "--rounds", 0.0) as usize;
    let dir = std::env::temp_dir().join(format!("wsgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    println!("idle connections: {connections} per server, loopback only");
    println!(
        "{:<22} {:>12} {:>12} {:>14} {:>14}",
        "server", "RSS before", "RSS after", "KiB per conn", "connects/s"
    );
    let mut per_connection = Vec::new();
    let mut churn = Vec::new();
    // `$connect` on an HTTP route: each connect waits for a backend.
    let backend = util::serve_http(|_| bytes::Bytes::from_static(br#"{"statusCode":200}"#)).await;
    let with_connect = format!(
        "name = \"Bench\"\n[routes]\n\"$connect\" = {{ url = \"http://{backend}/connect\" }}\n"
    );
    for (name, server) in [
        ("tokio-tungstenite raw", start_raw()),
        ("wsgate", start_wsgate(&dir, "plain", "name = \"Bench\"\n")),
        (
            "wsgate, $connect http",
            start_wsgate(&dir, "connect", &with_connect),
        ),
    ] {
        let m = measure(&server, connections).await;
        let mut after_rounds = Vec::new();
        for _ in 0..rounds {
            tokio::time::sleep(Duration::from_secs(2)).await;
            after_rounds.push(rss_kib(server.child.id()) / 1024);
            measure(&server, connections).await;
        }
        if rounds > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            after_rounds.push(rss_kib(server.child.id()) / 1024);
            churn.push((name, m.rss_before_kib / 1024, after_rounds));
        }
        let per_conn =
            (m.rss_after_kib.saturating_sub(m.rss_before_kib)) as f64 / connections as f64;
        let rate = connections as f64 / m.connect_seconds;
        println!(
            "{name:<22} {:>9} MiB {:>9} MiB {per_conn:>14.2} {rate:>14.0}",
            m.rss_before_kib / 1024,
            m.rss_after_kib / 1024,
        );
        per_connection.push((per_conn, rate));
    }
    let (raw, gate, connect) = (per_connection[0], per_connection[1], per_connection[2]);
    println!(
        "wsgate / raw: {:.2}x memory per connection, {:.2}x connect rate",
        gate.0 / raw.0,
        gate.1 / raw.1
    );
    println!(
        "connects with $connect on an HTTP route: {:.0}/s, {:.1}x API Gateway's default quota of 500 new connections per second",
        connect.1,
        connect.1 / 500.0
    );
    for (name, before, after_rounds) in churn {
        let rounds: Vec<String> = after_rounds.iter().map(|mib| format!("{mib}")).collect();
        println!(
            "churn {name:<22} RSS {before} MiB at start; after each round of {connections} connects and disconnects: {} MiB",
            rounds.join(" / ")
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
