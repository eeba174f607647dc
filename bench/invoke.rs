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

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
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
    let csv = args
        .iter()
        .position(|a| a == "--csv")
        .and_then(|i| args.get(i + 1))
        .cloned();
    // Enough instances (and waiting room: 10 per instance) for the most
    // connections measured, capped so the machine is not swamped.
    let concurrency = levels.iter().copied().max().unwrap_or(1).clamp(1, 100);

    let dir = std::env::temp_dir().join(format!("wsgate-bench-invoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_handlers(&dir);
    let rust_handler = std::env::current_exe()
        .unwrap()
        .with_file_name("rust_handler");
    let config = format!(
        r#"
name = "Bench"
[routes]
http = {{ url = "{http}", return_response = true }}
node = {{ handler = "echo.handler", return_response = true, concurrency = {concurrency} }}
python = {{ handler = "echo_py.handler", return_response = true, concurrency = {concurrency} }}
rust = {{ command = ["{rust}"], return_response = true, concurrency = {concurrency} }}
"#,
        http = http_backend().await,
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
            let stats = median_of(runs, url, action, connections, seconds).await;
            let base = *baseline.get_or_insert(stats.rate);
            if kind == "in-process Rust" {
                native_off.push((connections, stats.rate, base));
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
    // Metrics on (as `serve --admin` runs): counting costs on every event.
    // Once on they stay on, so this table comes last.
    wsgate::admin::metrics::enable();
    println!();
    println!(
        "metrics on (--admin): in-process Rust, ratio to the same with metrics off earlier in this run (each against raw measured beside it)"
    );
    println!(
        "{:<22} {:>6} {:>10} {:>9} {:>9} {:>7}",
        "kind", "conns", "rt/s", "p50 us", "p99 us", "on/off"
    );
    for (connections, off_rate, off_raw) in native_off {
        let raw_now = median_of(runs, &raw, "raw", connections, seconds).await;
        let on = median_of(runs, &server.url(), "native", connections, seconds).await;
        let ratio = (on.rate / raw_now.rate) / (off_rate / off_raw);
        println!(
            "{:<22} {connections:>6} {:>10.0} {:>9} {:>9} {ratio:>7.2}",
            "in-process + metrics", on.rate, on.p50_us, on.p99_us
        );
        rows.push(format!(
            "in-process + metrics,{connections},{:.0},{},{},{:.3}",
            on.rate,
            on.p50_us,
            on.p99_us,
            on.rate / raw_now.rate
        ));
    }
    if let Some(path) = csv {
        std::fs::write(&path, rows.join("\n") + "\n").unwrap();
        println!("wrote {path}");
    }
    server.shutdown().await;
    unlogged.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
