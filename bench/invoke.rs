//! Warm invocation round trip and throughput per handler kind, against a
//! bare tokio-tungstenite echo server measured in the same run. The API is
//! built from a config, as `wsgate serve` builds it, so it keeps an access
//! log; the in-process handler is also measured on an API without one.
//!
//! `cargo build --release --examples && target/release/examples/invoke [--seconds S] [--connections C]`

#[path = "measure.rs"]
mod measure;
#[path = "raw_echo.rs"]
mod raw_echo;
#[path = "util.rs"]
mod util;

use measure::measure;
use util::arg;

use bytes::Bytes;
use std::path::Path;
use wsgate::{Response, RouteOptions, WebSocketApi, handler_fn};

async fn raw_echo() -> String {
    format!("ws://{}/", raw_echo::spawn().await)
}

/// An HTTP integration backend that echoes the event's body.
async fn http_backend() -> String {
    let addr = util::serve_http(|body| {
        let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
        Bytes::from(serde_json::json!({ "statusCode": 200, "body": event["body"] }).to_string())
    })
    .await;
    format!("http://{addr}/echo")
}

/// Round trips of a bare hyper client straight to the HTTP backend, one
/// keep-alive connection per client, each POSTing an event as the gateway
/// sends it: the http route's cost without the gateway.
async fn direct_http(url: &str, connections: usize, seconds: f64) -> measure::Stats {
    use http_body_util::{BodyExt, Full};
    use hyper::client::conn::http1;
    use std::time::{Duration, Instant};
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/echo")
        .to_string();
    // An event of the size the gateway sends for the benchmark's message.
    let event = serde_json::json!({
        "requestContext": {
            "routeKey": "http", "eventType": "MESSAGE", "messageDirection": "IN",
            "extendedRequestId": "Bxq1ZGT7oAMFaSw=", "requestTime": "26/Nov/2026:18:00:00 +0000",
            "stage": "$default", "connectedAt": 1_764_180_000_000_i64,
            "requestTimeEpoch": 1_764_180_000_000_i64,
            "identity": { "sourceIp": "127.0.0.1" }, "requestId": "Bxq1ZGT7oAMFaSw=",
            "domainName": "127.0.0.1:8080", "connectionId": "Bxq1ZFjToAMCJyQ=",
            "apiId": "bench", "messageId": "Bxq1ZGT7oAMFaSw="
        },
        "body": r#"{"action":"http","data":"0123456789abcdef"}"#,
        "isBase64Encoded": false
    })
    .to_string();
    let per_connection =
        measure::MAX_ROUND_TRIPS.load(std::sync::atomic::Ordering::Relaxed) / connections;
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(connections + 1));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, event, ready) = (addr.clone(), event.clone(), ready.clone());
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, connection) =
                    http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(connection);
                let mut round_trip = async || {
                    let request = http::Request::post("/echo")
                        .header("host", &addr)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(event.clone())))
                        .unwrap();
                    let response = sender.send_request(request).await.unwrap();
                    let reply = response.into_body().collect().await.unwrap().to_bytes();
                    assert!(reply.starts_with(b"{"), "backend reply");
                };
                round_trip().await;
                ready.wait().await;
                let deadline = Instant::now() + Duration::from_secs_f64(seconds);
                let mut latencies = Vec::new();
                while Instant::now() < deadline && latencies.len() < per_connection {
                    let started = Instant::now();
                    round_trip().await;
                    latencies.push(started.elapsed().as_micros());
                }
                latencies
            })
        })
        .collect();
    ready.wait().await;
    let started = std::time::Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    measure::Stats::of(all, started.elapsed().as_secs_f64())
}

/// Mean seconds per stage of the function stage histogram, from the
/// metrics exposition: `stage -> (sum, count)`.
fn stage_means() -> std::collections::HashMap<String, (f64, f64)> {
    let text = wsgate::admin::metrics::get().expect("metrics on").encode();
    let mut stages = std::collections::HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("wsgate_function_stage_seconds_") else {
            continue;
        };
        let (kind, rest) = rest.split_once('{').unwrap_or(("", rest));
        let Some(stage) = rest
            .split("stage=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        else {
            continue;
        };
        let value: f64 = rest.rsplit(' ').next().unwrap().parse().unwrap_or(0.0);
        let entry = stages.entry(stage.to_string()).or_insert((0.0, 0.0));
        match kind {
            "sum" => entry.0 += value,
            "count" => entry.1 += value,
            _ => {}
        }
    }
    stages
}

/// The Rust runtime route at one connection, split into the gateway's
/// steps (timed by the gateway) and the instance's.
async fn stage_breakdown(url: &str, raw: &str, seconds: f64) {
    let before = stage_means();
    let function = median_of(1, url, "rust", 1, seconds).await;
    let after = stage_means();
    let raw = median_of(1, raw, "raw", 1, seconds).await;
    let mean_us = |stage: &str| {
        let (sum, count) = after.get(stage).copied().unwrap_or_default();
        let (sum0, count0) = before.get(stage).copied().unwrap_or_default();
        (sum - sum0) / (count - count0).max(1.0) * 1e6
    };
    let (waiting, dispatch) = (mean_us("awaiting_runtime"), mean_us("dispatch"));
    let (instance, back) = (mean_us("instance"), mean_us("return"));
    // Waiting for the runtime to ask for the next event is the runtime's
    // time (between its answer and its next /next), not the gateway's.
    let share = function.mean_us - instance - waiting - raw.mean_us;
    println!(
        "function invocation, Rust lambda_runtime echo, 1 connection: means in µs (stages timed by the gateway)"
    );
    println!(
        "  round trip, client-measured          {:>8.1}",
        function.mean_us
    );
    println!(
        "  raw WebSocket echo, same run         {:>8.1}   the socket's own share",
        raw.mean_us
    );
    println!(
        "  awaiting the runtime's /next         {waiting:>8.1}   queued before the runtime asked again"
    );
    println!("  dispatch: ready -> handed out        {dispatch:>8.1}   Runtime API /next answers");
    println!(
        "  instance: handed out -> response in  {instance:>8.1}   runtime client, handler, loopback HTTP"
    );
    println!("  return: response in -> caller has it {back:>8.1}");
    println!(
        "  frame in -> queued, result -> out    {:>8.1}   event, route, JSON, reply, access log",
        share - dispatch - back
    );
    println!(
        "  gateway's share                      {share:>8.1}   round trip - instance - awaiting - raw echo (target < 30)"
    );
}

fn write_handlers(dir: &Path) {
    std::fs::write(
        dir.join("echo.mjs"),
        "export async function handler(event) { return { statusCode: 200, body: event.body }; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("echo_py.py"),
        "def handler(event, context):\n    return {'statusCode': 200, 'body': event['body']}\n",
    )
    .unwrap();
}

/// Serves `api` with an in-process echo on the `native` route.
async fn serve_with_native(api: WebSocketApi) -> wsgate::Server {
    api.route_with(
        "native",
        handler_fn(|event, _| async move {
            Ok(Response::ok().with_body(event.body.unwrap_or_default()))
        }),
        RouteOptions {
            return_response: true,
            ..Default::default()
        },
    )
    .bind("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap()
}

/// How the in-process route is measured again once something is on.
struct Rates<'a> {
    runs: usize,
    seconds: f64,
    raw: &'a str,
    url: &'a str,
}

impl Rates<'_> {
    /// A table of the in-process route's rate now against the same with
    /// everything off earlier in this run, each against raw measured
    /// beside it (`native_off`: connections, rate, raw's rate).
    async fn switched_on(
        &self,
        kind: &str,
        native_off: &[(usize, f64, f64)],
        rows: &mut Vec<String>,
    ) {
        println!();
        println!(
            "{kind} (serve --admin): in-process Rust, ratio to the same with it off earlier in this run (each against raw measured beside it)"
        );
        println!(
            "{:<22} {:>6} {:>10} {:>9} {:>9} {:>7}",
            "kind", "conns", "rt/s", "p50 us", "p99 us", "on/off"
        );
        for &(connections, off_rate, off_raw) in native_off {
            let raw_now = median_of(self.runs, self.raw, "raw", connections, self.seconds).await;
            let on = median_of(self.runs, self.url, "native", connections, self.seconds).await;
            let ratio = (on.rate / raw_now.rate) / (off_rate / off_raw);
            println!(
                "{kind:<22} {connections:>6} {:>10.0} {:>9} {:>9} {ratio:>7.2}",
                on.rate, on.p50_us, on.p99_us
            );
            rows.push(format!(
                "{kind},{connections},{:.0},{},{},{:.3}",
                on.rate,
                on.p50_us,
                on.p99_us,
                on.rate / raw_now.rate
            ));
        }
    }
}

/// The median run (by throughput) of `runs` measurements.
async fn median_of(
    runs: usize,
    url: &str,
    action: &str,
    connections: usize,
    seconds: f64,
) -> measure::Stats {
    let mut results = Vec::new();
    for _ in 0..runs.max(1) {
        results.push(measure(url, action, connections, seconds).await);
    }
    results.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    results.swap_remove(results.len() / 2)
}

/// `invoke --serve-echo`: the raw echo and the in-process route (built
/// from a config, so with its access log, as `wsgate serve` runs) in this
/// process, for a parent measuring more connections than one process may
/// hold both ends of. Prints both URLs, serves until stdin closes.
async fn serve_echo() {
    wsgate::resources::raise_open_files_limit();
    let dir = std::env::temp_dir().join(format!("wsgate-bench-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("wsgate.toml"), "name = \"BenchFar\"\n").unwrap();
    let config = wsgate::config::load(&dir.join("wsgate.toml")).unwrap();
    let server = serve_with_native(WebSocketApi::from_config(&config).unwrap()).await;
    println!("{}", raw_echo().await);
    println!("{}", server.url());
    let mut stdin = tokio::io::stdin();
    let _ = tokio::io::AsyncReadExt::read(&mut stdin, &mut [0u8; 1]).await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Raw echo and the in-process route at each of `levels` connections,
/// the servers in a child process (`--serve-echo`), each ratio against
/// raw in the same run.
async fn far_levels(levels: &[usize], runs: usize, seconds: f64, rows: &mut Vec<String>) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg("--serve-echo")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the echo servers' process starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let raw = lines.next_line().await.unwrap().expect("raw echo url");
    let native = lines.next_line().await.unwrap().expect("in-process url");
    println!();
    println!(
        "servers in a child process (one process cannot hold both ends of this many connections)"
    );
    println!(
        "{:<22} {:>6} {:>10} {:>9} {:>9} {:>7}",
        "kind", "conns", "rt/s", "p50 us", "p99 us", "ratio"
    );
    for &connections in levels {
        let base = median_of(runs, &raw, "raw", connections, seconds).await;
        let on = median_of(runs, &native, "native", connections, seconds).await;
        for (kind, stats) in [("raw tokio-tungstenite", &base), ("in-process Rust", &on)] {
            println!(
                "{kind:<22} {connections:>6} {:>10.0} {:>9} {:>9} {:>7.2}",
                stats.rate,
                stats.p50_us,
                stats.p99_us,
                stats.rate / base.rate
            );
            rows.push(format!(
                "{kind},{connections},{:.0},{},{},{:.3}",
                stats.rate,
                stats.p50_us,
                stats.p99_us,
                stats.rate / base.rate
            ));
        }
    }
    drop(child.stdin.take());
    let _ = child.wait().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--serve-echo") {
        return serve_echo().await;
    }
    wsgate::resources::raise_open_files_limit();
    let seconds = arg(&args, "--seconds", 3.0);
    let runs = arg(&args, "--runs", 1.0) as usize;
    let levels: Vec<usize> = args
        .iter()
        .position(|a| a == "--levels")
        .and_then(|i| args.get(i + 1))
        .map_or("1,16", String::as_str)
        .split(',')
        .map(|n| n.parse().expect("--levels takes numbers like 1,100,1000"))
        .collect();
    // `--far-levels 10000`: more connections than fit one process, with
    // the servers in a child.
    let far: Vec<usize> = args
        .iter()
        .position(|a| a == "--far-levels")
        .and_then(|i| args.get(i + 1))
        .map(|list| {
            list.split(',')
                .map(|n| n.parse().expect("--far-levels takes numbers like 10000"))
                .collect()
        })
        .unwrap_or_default();
    let csv = args
        .iter()
        .position(|a| a == "--csv")
        .and_then(|i| args.get(i + 1))
        .cloned();
    if let Some(n) = args.iter().position(|a| a == "--round-trips") {
        let n = args.get(n + 1).and_then(|n| n.parse().ok());
        let n = n.expect("--round-trips takes a number");
        measure::MAX_ROUND_TRIPS.store(n, std::sync::atomic::Ordering::Relaxed);
    }
    // `--kinds native,http` measures only those (raw is always measured).
    let kinds: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--kinds")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_string).collect());
    let wanted = |action: &str| {
        action == "raw" || kinds.as_ref().is_none_or(|k| k.iter().any(|a| a == action))
    };
    // Reserved concurrency for the most connections measured, capped so
    // the machine is not swamped: past it Lambda (and wsgate) throttle at
    // once, so levels above it skip the function kinds.
    let concurrency = levels.iter().copied().max().unwrap_or(1).clamp(1, 100);

    let dir = std::env::temp_dir().join(format!("wsgate-bench-invoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_handlers(&dir);
    let rust_handler = std::env::current_exe()
        .unwrap()
        .with_file_name("rust_handler");
    let backend = http_backend().await;
    let config = format!(
        r#"
name = "Bench"
[routes]
http = {{ url = "{http}", return_response = true }}
node = {{ handler = "echo.handler", return_response = true, concurrency = {concurrency} }}
python = {{ handler = "echo_py.handler", return_response = true, concurrency = {concurrency} }}
rust = {{ command = ["{rust}"], return_response = true, concurrency = {concurrency} }}
"#,
        http = backend,
        rust = rust_handler.display(),
    );
    std::fs::write(dir.join("wsgate.toml"), config).unwrap();
    let config = wsgate::config::load(&dir.join("wsgate.toml")).unwrap();
    let server = serve_with_native(WebSocketApi::from_config(&config).unwrap()).await;
    let raw = raw_echo().await;
    let unlogged = serve_with_native(WebSocketApi::new("BenchNoLog")).await;

    println!(
        "warm echo round trips, {seconds}s per cell, median of {runs} run(s), loopback; ratio = throughput / raw tokio-tungstenite at the same connections"
    );
    println!(
        "{:<22} {:>6} {:>10} {:>9} {:>9} {:>7}",
        "kind", "conns", "rt/s", "p50 us", "p99 us", "ratio"
    );
    let mut rows =
        vec!["kind,connections,round_trips_per_s,p50_us,p99_us,ratio_to_raw".to_string()];
    // The in-process rate per level with metrics off, for the last table.
    let mut native_off = Vec::new();
    // The http route's rate per level, against a direct client after.
    let mut http_rows = Vec::new();
    for &connections in &levels {
        let mut baseline = None;
        for (kind, action, url) in [
            ("raw tokio-tungstenite", "raw", raw.as_str()),
            ("in-process Rust", "native", &server.url()),
            ("in-process (no log)", "native", &unlogged.url()),
            ("http", "http", &server.url()),
            ("lambda: rust runtime", "rust", &server.url()),
            ("lambda: node", "node", &server.url()),
            ("lambda: python", "python", &server.url()),
        ] {
            if !wanted(action) {
                continue;
            }
            if ["rust", "node", "python"].contains(&action) && connections > concurrency {
                println!(
                    "{kind:<22} {connections:>6}   (past its reserved concurrency of {concurrency}: throttled, as on Lambda)"
                );
                continue;
            }
            let stats = median_of(runs, url, action, connections, seconds).await;
            let base = *baseline.get_or_insert(stats.rate);
            if kind == "in-process Rust" {
                native_off.push((connections, stats.rate, base));
            }
            if kind == "http" {
                http_rows.push((connections, stats.rate));
            }
            println!(
                "{kind:<22} {connections:>6} {:>10.0} {:>9} {:>9} {:>7.2}",
                stats.rate,
                stats.p50_us,
                stats.p99_us,
                stats.rate / base
            );
            rows.push(format!(
                "{kind},{connections},{:.0},{},{},{:.3}",
                stats.rate,
                stats.p50_us,
                stats.p99_us,
                stats.rate / base
            ));
        }
    }
    if !http_rows.is_empty() {
        println!();
        println!(
            "http route against a bare hyper client POSTing the same event straight to the backend (keep-alive, one connection per client)"
        );
        println!(
            "{:<22} {:>6} {:>10} {:>9} {:>9} {:>7}",
            "kind", "conns", "rt/s", "p50 us", "p99 us", "http/it"
        );
        for (connections, http_rate) in http_rows {
            let direct = direct_http(&backend, connections, seconds).await;
            println!(
                "{:<22} {connections:>6} {:>10.0} {:>9} {:>9} {:>7.2}",
                "direct hyper client",
                direct.rate,
                direct.p50_us,
                direct.p99_us,
                http_rate / direct.rate
            );
            rows.push(format!(
                "direct hyper client,{connections},{:.0},{},{},{:.3}",
                direct.rate,
                direct.p50_us,
                direct.p99_us,
                http_rate / direct.rate
            ));
        }
    }
    if !far.is_empty() {
        far_levels(&far, runs, seconds, &mut rows).await;
    }
    // `serve --admin` turns on metrics, and the console's recording of
    // every event: each costs on every message. Once on they stay on, so
    // these tables come last, metrics first.
    wsgate::admin::metrics::enable();
    let url = server.url();
    let rates = Rates {
        runs,
        seconds,
        raw: &raw,
        url: &url,
    };
    rates
        .switched_on("in-process + metrics", &native_off, &mut rows)
        .await;
    wsgate::admin::console::enable();
    rates
        .switched_on("+ console recording", &native_off, &mut rows)
        .await;
    // Where a function invocation's time goes, at one connection: the
    // gateway times its own steps (metrics are on from here).
    if wanted("rust") {
        println!();
        stage_breakdown(&server.url(), &raw, seconds).await;
    }
    if let Some(path) = csv {
        std::fs::write(&path, rows.join("\n") + "\n").unwrap();
        println!("wrote {path}");
    }
    server.shutdown().await;
    unlogged.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
