//! Round trips over WebSocket connections: each client sends a message,
//! waits for its echo, and records the latency.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::connect_async_with_config;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Upper bound on round trips per measurement, whatever the time budget
/// (`--round-trips` sets it: an exact count, for instruction counting).
pub static MAX_ROUND_TRIPS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(200_000);

pub struct Stats {
    pub rate: f64,
    pub mean_us: f64,
    pub p50_us: u128,
    pub p99_us: u128,
}

/// Round trips on `connections` connections for `seconds`.
pub async fn measure(url: &str, action: &str, connections: usize, seconds: f64) -> Stats {
    let per_connection = MAX_ROUND_TRIPS.load(std::sync::atomic::Ordering::Relaxed) / connections;
    // Everyone warms up (cold starts excluded), then all measure together.
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(connections + 1));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let ready = std::sync::Arc::clone(&ready);
            let url = url.to_string();
            let message = format!(r#"{{"action":"{action}","data":"0123456789abcdef"}}"#);
            tokio::spawn(async move {
                // tungstenite zeroes its whole read buffer before every
                // read: at the default 128 KiB that made the client cost
                // ~20x the server's work per round trip, drowning what is
                // measured. 4 KiB, as the servers use.
                let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
                let (mut ws, _) = connect_async_with_config(&url, Some(config), true)
                    .await
                    .expect("connect");
                // Warm-up: the first invocation may start an instance.
                ws.send(Message::text(message.clone())).await.unwrap();
                ws.next().await.unwrap().unwrap();
                ready.wait().await;
                let deadline = Instant::now() + Duration::from_secs_f64(seconds);
                let mut latencies = Vec::new();
                while Instant::now() < deadline && latencies.len() < per_connection {
                    let started = Instant::now();
                    ws.send(Message::text(message.clone())).await.unwrap();
                    match ws.next().await {
                        Some(Ok(Message::Text(reply))) => assert!(
                            reply.as_str().ends_with(&message),
                            "echo must match: {reply}"
                        ),
                        other => panic!("unexpected {other:?}"),
                    }
                    latencies.push(started.elapsed().as_micros());
                }
                latencies
            })
        })
        .collect();
    ready.wait().await;
    let started = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    Stats::of(all, started.elapsed().as_secs_f64())
}

impl Stats {
    /// The rate and percentiles of `latencies` (µs) taken in `elapsed` seconds.
    pub fn of(mut latencies: Vec<u128>, elapsed: f64) -> Stats {
        latencies.sort_unstable();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        let mean_us = latencies.iter().sum::<u128>() as f64 / latencies.len().max(1) as f64;
        Stats {
            rate: latencies.len() as f64 / elapsed,
            mean_us,
            p50_us: at(0.5),
            p99_us: at(0.99),
        }
    }
}
