//! wsgate as a cluster on NATS: `wsgate serve --cluster` nodes (release
//! build, each its own process) and Debian's nats-server, on loopback.
//!
//! - PostToConnection rate and p50/p99 from 64 keep-alive callers: to a
//!   connection on another node, against the same calls to a connection on
//!   the node called (the comparison, same run).
//! - Broadcast: one message posted to each of N connections spread over 3
//!   nodes, against the same N on the node called.
//! - Recovery: kill -9 of a node until another node answers 410 for its
//!   connection; a NATS restart until cross-node calls work again.
//! - Idle: M connections spread over K nodes (client processes of at most
//!   19,000 connections each: the per-process file limit is 20,000):
//!   KiB per connection (node RSS) and connects/s.
//!
//! `cargo build --release --bin wsgate --examples && target/release/examples/cluster
//!  [--seconds S] [--broadcast N] [--idle M] [--nodes K]`

#[path = "util.rs"]
mod util;

use bytes::Bytes;
use futures_util::StreamExt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use util::{Key, arg};

const CALLERS: usize = 64;
/// Connections one client process holds at most (the file limit is 20,000).
const PER_CLIENT_PROCESS: usize = 19_000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nats-server with JetStream in a folder of its own.
struct Nats {
    child: Option<Child>,
    port: u16,
    monitor: u16,
    dir: std::path::PathBuf,
}

impl Nats {
    fn start(dir: &std::path::Path) -> Nats {
        let mut nats = Nats {
            child: None,
            port: free_port(),
            monitor: free_port(),
            dir: dir.join("nats"),
        };
        nats.launch();
        nats
    }

    fn launch(&mut self) {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string(), "-js", "-sd"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (scripts/setup installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.healthy() {
            assert!(
                Instant::now() < deadline,
                "nats-server never became healthy"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn healthy(&self) -> bool {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.monitor)) else {
            return false;
        };
        let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `wsgate serve --cluster` node.
struct Node {
    child: Child,
    url: String,
    management: String,
    addr: SocketAddr,
    key: Key,
}

impl Node {
    /// A node of the cluster at `nats`; with `None`, a single wsgate.
    fn start(config: &std::path::Path, nats: Option<&str>, name: &str) -> Node {
        let mut command = Command::new(util::wsgate_binary());
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(nats) = nats {
            command.args(["--cluster", nats, "--node", name]);
        }
        let mut child = command
            .arg("--config")
            .arg(config)
            .env("WSGATE_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("wsgate starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut url, mut management, mut key) = (String::new(), String::new(), None);
        loop {
            let line = lines.next().expect("wsgate printed its outputs").unwrap();
            let line = line.trim();
            if let Some(v) = line.strip_prefix("url:") {
                url = v.trim().to_string();
            }
            if let Some(v) = line.strip_prefix("managementEndpoint:") {
                management = v.trim().to_string();
            }
            key = key.or_else(|| Key::from_exports(line));
            if line.starts_with("ready") {
                break;
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
        Node {
            child,
            url,
            management,
            addr,
            key: key.expect("a generated key"),
        }
    }

    fn rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kib| kib * 1024)
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The handler backend: `whoami` answers the caller's connection id.
fn whoami(event: Bytes) -> Bytes {
    let event: serde_json::Value = serde_json::from_slice(&event).unwrap_or_default();
    let id = event["requestContext"]["connectionId"].clone();
    Bytes::from(serde_json::json!({ "statusCode": 200, "body": id }).to_string())
}

fn write_config(dir: &std::path::Path, backend: SocketAddr) -> std::path::PathBuf {
    let path = dir.join("wsgate.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"Cluster\"\ntls = \"off\"\n[routes]\nwhoami = {{ url = \"http://{backend}/whoami\", return_response = true }}\n"
        ),
    )
    .unwrap();
    path
}

use util::Socket;

/// Opens `n` connections to `node`, each learning its id.
async fn open(node: &Node, n: usize) -> Vec<(Socket, String)> {
    util::open_whoami(&node.url, node.addr, n, 256).await
}

/// Rate and p50/p99 of POSTs by 64 callers, each to its own URL, with a
/// signature made once per caller and replayed.
async fn post_rate(urls: &[String], seconds: f64, key: &Key) -> (f64, Duration, Duration) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| {
            let client = client.clone();
            let headers = key.sign_post(&url, b"0123456789abcdef");
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for _ in 0..100_000 {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let request = headers
                        .iter()
                        .fold(client.post(&url).body("0123456789abcdef"), |r, (n, v)| {
                            r.header(n, v)
                        });
                    let sent = Instant::now();
                    let status = request.send().await.unwrap().status();
                    assert_eq!(status, 200, "{url}");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    (rate, at(0.5), at(0.99))
}

/// Posts "broadcast" to every id through `management` (64 at a time);
/// milliseconds until the last client had it.
async fn broadcast(management: &str, key: &Key, sockets: Vec<(Socket, String)>) -> f64 {
    let expected = sockets.len();
    let done = util::broadcast(management, key, sockets, CALLERS).await;
    assert_eq!(done.received, expected, "every client got it");
    done.last_ms
}

/// A signed POST's status.
async fn post_status(client: &reqwest::Client, key: &Key, url: &str) -> u16 {
    let request = key
        .sign_post(url, b"x")
        .into_iter()
        .fold(client.post(url).body("x"), |r, (n, v)| r.header(n, v));
    match request.send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// A source address of its own per client process and connection group,
/// so no (source, destination) pair runs out of ephemeral ports.
fn process_source(offset: usize, i: usize) -> String {
    format!(
        "127.0.{}.{}:0",
        1 + (offset / PER_CLIENT_PROCESS) % 250,
        1 + i % 200
    )
}

/// Client mode: holds `count` connections to the given URLs (round robin)
/// and reports when they are open; exits when stdin closes.
async fn client_process(urls: Vec<String>, count: usize, offset: usize) {
    let started = Instant::now();
    let sockets: Vec<Socket> = futures_util::stream::iter(0..count)
        .map(|i| {
            let url = urls[(offset + i) % urls.len()].clone();
            async move {
                let addr: SocketAddr = url
                    .trim_start_matches("ws://")
                    .split('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let socket = TcpSocket::new_v4().unwrap();
                socket
                    .bind(process_source(offset, i).parse().unwrap())
                    .unwrap();
                let stream = socket.connect(addr).await.unwrap();
                tokio_tungstenite::client_async(url, stream)
                    .await
                    .unwrap()
                    .0
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    println!(
        "connected {} {:.3}",
        sockets.len(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(sockets);
}

/// Holds `total` connections over the nodes; KiB per connection (node
/// RSS growth) and connects/s.
async fn hold(nodes: &[Node], total: usize) -> (f64, f64) {
    let before: u64 = nodes.iter().map(Node::rss).sum();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let processes = total.div_ceil(PER_CLIENT_PROCESS);
    let started = Instant::now();
    let mut clients: Vec<Child> = (0..processes)
        .map(|p| {
            let count = (total - p * PER_CLIENT_PROCESS).min(PER_CLIENT_PROCESS);
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--client",
                    &urls.join(","),
                    &count.to_string(),
                    &(p * PER_CLIENT_PROCESS).to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for client in &mut clients {
        let mut line = String::new();
        BufReader::new(client.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("connected"),
            "a client process failed: {line}"
        );
    }
    let took = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: u64 = nodes.iter().map(Node::rss).sum();
    for mut client in clients {
        drop(client.stdin.take());
        let _ = client.wait();
    }
    (
        after.saturating_sub(before) as f64 / 1024.0 / total as f64,
        total as f64 / took,
    )
}

async fn idle(dir: &std::path::Path, backend: SocketAddr, total: usize, node_count: usize) {
    let config = write_config(dir, backend);
    let share = total / node_count;
    // The comparison: one wsgate without a cluster holding one node's share.
    let (single_kib, single_rate) = {
        let single = Node::start(&config, None, "single");
        tokio::time::sleep(Duration::from_millis(500)).await;
        hold(std::slice::from_ref(&single), share).await
    };
    let nats = Nats::start(&dir.join("idle"));
    let nodes: Vec<Node> = (0..node_count)
        .map(|i| Node::start(&config, Some(&nats.url()), &format!("idle{i}")))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (kib, rate) = hold(&nodes, total).await;
    println!("idle connections, client processes of at most {PER_CLIENT_PROCESS} connections");
    println!(
        "  one wsgate, {share} connections (comparison): {single_kib:.2} KiB per connection, {single_rate:.0} connects/s"
    );
    println!(
        "  {node_count} cluster nodes, {total} connections:   {kib:.2} KiB per connection ({:.2}x), {rate:.0} connects/s ({:.2}x)",
        kib / single_kib,
        rate / single_rate
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--client") {
        let urls = args[i + 1].split(',').map(str::to_string).collect();
        client_process(
            urls,
            args[i + 2].parse().unwrap(),
            args[i + 3].parse().unwrap(),
        )
        .await;
        return;
    }
    let seconds = arg(&args, "--seconds", 3.0);
    let broadcast_count = arg(&args, "--broadcast", 10_000.0) as usize;
    let idle_count = arg(&args, "--idle", 0.0) as usize;
    let node_count = arg(&args, "--nodes", 5.0) as usize;
    let dir = std::env::temp_dir().join(format!("wsgate-bench-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let backend = util::serve_http(whoami).await;

    if idle_count > 0 {
        idle(&dir, backend, idle_count, node_count).await;
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    let mut nats = Nats::start(&dir);
    let config = write_config(&dir, backend);
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| Node::start(&config, Some(&nats.url()), &format!("n{i}")))
        .collect();
    let key = nodes[0].key.clone();

    // Rate: callers on node 0; connections on node 0 (same node) or
    // node 1 (cross-node), each drained by its client.
    let mut drains = Vec::new();
    let mut urls_for = |sockets: Vec<(Socket, String)>, via: &str| {
        let mut urls = Vec::new();
        for (mut ws, id) in sockets {
            urls.push(format!("{via}/@connections/{id}"));
            drains.push(tokio::spawn(async move {
                while let Some(Ok(_)) = ws.next().await {}
            }));
        }
        urls
    };
    let same = urls_for(open(&nodes[0], CALLERS).await, &nodes[0].management);
    let cross = urls_for(open(&nodes[1], CALLERS).await, &nodes[0].management);
    // Warm both paths, then measure them in turn.
    post_rate(&same, 0.5, &key).await;
    post_rate(&cross, 0.5, &key).await;
    let (same_rate, same_p50, same_p99) = post_rate(&same, seconds, &key).await;
    let (cross_rate, cross_p50, cross_p99) = post_rate(&cross, seconds, &key).await;
    for drain in drains {
        drain.abort();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "PostToConnection, {CALLERS} keep-alive callers, {seconds}s, signed, 3 nodes on 2 cores"
    );
    println!(
        "  same node (comparison): {same_rate:>8.0} req/s   p50 {:.2} ms   p99 {:.2} ms",
        ms(same_p50),
        ms(same_p99)
    );
    println!(
        "  cross node via NATS:    {cross_rate:>8.0} req/s   p50 {:.2} ms   p99 {:.2} ms   ({:.2}x same node)",
        ms(cross_p50),
        ms(cross_p99),
        cross_rate / same_rate
    );

    // Broadcast: N connections all on node 0, then spread over 3 nodes;
    // posted through node 0 both times.
    if broadcast_count > 0 {
        let local = open(&nodes[0], broadcast_count).await;
        let local_ms = broadcast(&nodes[0].management, &key, local).await;
        let mut spread = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let share = broadcast_count / 3 + usize::from(i < broadcast_count % 3);
            spread.extend(open(node, share).await);
        }
        let spread_ms = broadcast(&nodes[0].management, &key, spread).await;
        println!(
            "broadcast to {broadcast_count} connections, posted through one node: all on it {local_ms:.0} ms (comparison); spread over 3 nodes {spread_ms:.0} ms ({:.2}x)",
            local_ms / spread_ms
        );
    }

    // Recovery after kill -9: a connection on node 2, asked through node 0.
    let client = reqwest::Client::new();
    let (socket, id) = open(&nodes[2], 1).await.pop().unwrap();
    let url = format!("{}/@connections/{id}", nodes[0].management);
    assert_eq!(post_status(&client, &key, &url).await, 200);
    nodes[2].kill9();
    let killed = Instant::now();
    let mut answers = 0;
    while post_status(&client, &key, &url).await != 410 {
        answers += 1;
        assert!(answers < 10_000, "never 410");
    }
    let after_kill = killed.elapsed();
    drop(socket);

    // Recovery after a NATS restart: node 1's connection through node 0.
    let (_socket, id) = open(&nodes[1], 1).await.pop().unwrap();
    let url = format!("{}/@connections/{id}", nodes[0].management);
    assert_eq!(post_status(&client, &key, &url).await, 200);
    nats.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarting = Instant::now();
    nats.launch();
    let nats_up = restarting.elapsed();
    let mut attempts = 0;
    while post_status(&client, &key, &url).await != 200 {
        attempts += 1;
        assert!(attempts < 100_000, "cross-node calls never came back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after_restart = restarting.elapsed();
    println!(
        "recovery: kill -9 of a node to 410 from another: {:.0} ms; NATS restart (healthy after {:.0} ms) to a cross-node 200: {:.0} ms",
        ms(after_kill),
        ms(nats_up),
        ms(after_restart)
    );
    drop(nodes);
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
}
