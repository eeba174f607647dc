//! Warm invocation round trip and throughput per handler kind, against a
//! bare tokio-tungstenite echo server measured in the same run.
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

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 3.0);
    let connections = arg(&args, "--connections", 16.0) as usize;

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
node = {{ handler = "echo.handler", return_response = true, concurrency = {connections} }}
python = {{ handler = "echo_py.handler", return_response = true, concurrency = {connections} }}
rust = {{ command = ["{rust}"], return_response = true, concurrency = {connections} }}
"#,
        http = http_backend().await,
        rust = rust_handler.display(),
    );
    std::fs::write(dir.join("wsgate.toml"), config).unwrap();
    let config = wsgate::config::load(&dir.join("wsgate.toml")).unwrap();
    let server = WebSocketApi::from_config(&config)
        .unwrap()
        .route_with(
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
        .unwrap();
    let raw = raw_echo().await;

    println!(
        "warm echo round trips, {seconds}s per cell, loopback; ratio = throughput / raw tokio-tungstenite"
    );
    println!(
        "{:<22} {:>12} {:>9} {:>9} {:>7}   {:>12} {:>9} {:>7}",
        "kind",
        "1 conn rt/s",
        "p50 us",
        "p99 us",
        "ratio",
        format!("{connections} conn rt/s"),
        "p99 us",
        "ratio"
    );
    let mut baseline = None;
    for (kind, url) in [
        ("raw tokio-tungstenite", raw.as_str()),
        ("in-process Rust", &server.url()),
        ("http", &server.url()),
        ("lambda: rust runtime", &server.url()),
        ("lambda: node", &server.url()),
        ("lambda: python", &server.url()),
    ] {
        let action = match kind {
            "in-process Rust" => "native",
            "lambda: rust runtime" => "rust",
            "lambda: node" => "node",
            "lambda: python" => "python",
            other => other,
        };
        let one = measure(url, action, 1, seconds).await;
        let many = measure(url, action, connections, seconds).await;
        let (base_one, base_many) = *baseline.get_or_insert((one.rate, many.rate));
        println!(
            "{kind:<22} {:>12.0} {:>9} {:>9} {:>7.2}   {:>12.0} {:>9} {:>7.2}",
            one.rate,
            one.p50_us,
            one.p99_us,
            one.rate / base_one,
            many.rate,
            many.p99_us,
            many.rate / base_many
        );
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
