//! A client that stops reading: its outbound bytes stay bounded, and
//! every way a connection can end (DeleteConnection, the idle timeout, the
//! maximum duration, shutdown, the write deadline) still ends it in
//! bounded time, with `$disconnect` run exactly once.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use wsgate::{Limits, PushError, Response, WebSocketApi, handler_fn};

/// Long enough that, where a test expects another cause, the write
/// deadline cannot be what ended the connection.
const LONG_WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// What "bounded" means in these tests: well under the write deadline.
const BOUND: Duration = Duration::from_secs(8);

async fn server(limits: Limits) -> (wsgate::Server, UnboundedReceiver<(String, i64)>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let server = WebSocketApi::new("Stalled")
        .limits(limits)
        .route(
            "$disconnect",
            handler_fn(move |event, _| {
                let tx = tx.clone();
                async move {
                    let ctx = event.request_context;
                    let _ = tx.send((
                        ctx.connection_id.unwrap_or_default(),
                        ctx.disconnect_status_code.unwrap_or_default(),
                    ));
                    Ok(Response::ok())
                }
            }),
        )
        .bind(any_port())
        .await
        .unwrap();
    (server, rx)
}

/// Upgrades with a tiny receive buffer and never reads again; returns
/// the socket (kept open) and the connection id the server gave it.
async fn stalled_client(server: &wsgate::Server) -> (TcpStream, String) {
    let before = server.connections().ids();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    let id = server
        .connections()
        .ids()
        .into_iter()
        .find(|id| !before.contains(id))
        .expect("the connection is registered");
    (stream, id)
}

/// Pushes 64 KiB messages until the connection's queue is full; returns
/// how many bytes were accepted.
async fn fill(server: &wsgate::Server, id: &str) -> usize {
    let chunk = vec![b'x'; 64 * 1024];
    let mut accepted = 0;
    for _ in 0..2_000 {
        match server.connections().post(id, chunk.clone()).await {
            Ok(()) => accepted += chunk.len(),
            Err(PushError::QueueFull) => return accepted,
            Err(other) => panic!("unexpected push error: {other}"),
        }
        // Let the connection task move what it can into the socket.
        tokio::task::yield_now().await;
    }
    panic!("the queue never filled: {accepted} bytes accepted");
}

async fn disconnect_of(
    rx: &mut UnboundedReceiver<(String, i64)>,
    within: Duration,
) -> (String, i64) {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("no $disconnect in time")
        .unwrap()
}

async fn assert_no_more_disconnects(rx: &mut UnboundedReceiver<(String, i64)>) {
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        panic!("$disconnect ran again: {extra:?}");
    }
}

fn limits() -> Limits {
    Limits {
        write_timeout: LONG_WRITE_TIMEOUT,
        ..Limits::default()
    }
}

#[tokio::test]
async fn outbound_bytes_are_bounded_and_a_full_queue_is_refused() {
    let (server, _rx) = server(limits()).await;
    let (_client, id) = stalled_client(&server).await;
    let accepted = fill(&server, &id).await;
    // What the kernel's socket buffers took plus the connection's budget:
    // a few MiB at most, never the 2,000 messages offered.
    assert!(accepted < 32 * 1024 * 1024, "{accepted} bytes accepted");
    // The management API answers the SDKs' retryable throttling error.
    let (status, headers, body) = management(
        &server,
        "POST",
        &format!("{}/@connections/{id}", server.management_endpoint()),
        vec![b'y'; 64 * 1024],
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["x-amzn-ErrorType"], "LimitExceededException");
    server.shutdown().await;
}

#[tokio::test]
async fn delete_connection_ends_a_stalled_client() {
    let (server, mut rx) = server(limits()).await;
    let (_client, id) = stalled_client(&server).await;
    fill(&server, &id).await;
    let started = Instant::now();
    server.connections().delete(&id).await.unwrap();
    // Gone at once for every operation, as after any DeleteConnection.
    assert_eq!(
        server.connections().get(&id).await.unwrap_err(),
        PushError::Gone
    );
    assert_eq!(
        server.connections().post(&id, "late").await.unwrap_err(),
        PushError::Gone
    );
    assert_eq!(
        server.connections().delete(&id).await.unwrap_err(),
        PushError::Gone
    );
    let (disconnected, code) = disconnect_of(&mut rx, BOUND).await;
    assert_eq!(disconnected, id);
    assert_eq!(code, 1000);
    assert!(started.elapsed() < BOUND);
    assert_no_more_disconnects(&mut rx).await;
    assert_eq!(server.connections().count(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn the_idle_timeout_ends_a_stalled_client() {
    let (server, mut rx) = server(Limits {
        idle_timeout: Duration::from_secs(1),
        ..limits()
    })
    .await;
    let (_client, id) = stalled_client(&server).await;
    fill(&server, &id).await;
    let (disconnected, code) = disconnect_of(&mut rx, BOUND).await;
    assert_eq!((disconnected.as_str(), code), (id.as_str(), 1001));
    assert_eq!(
        server.connections().get(&id).await.unwrap_err(),
        PushError::Gone
    );
    assert_no_more_disconnects(&mut rx).await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_maximum_duration_ends_a_stalled_client() {
    let (server, mut rx) = server(Limits {
        max_duration: Duration::from_secs(2),
        ..limits()
    })
    .await;
    let (_client, id) = stalled_client(&server).await;
    fill(&server, &id).await;
    let (disconnected, code) = disconnect_of(&mut rx, BOUND).await;
    assert_eq!((disconnected.as_str(), code), (id.as_str(), 1001));
    assert_no_more_disconnects(&mut rx).await;
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_a_stalled_client_and_runs_its_disconnect() {
    let (server, mut rx) = server(limits()).await;
    let (_client, id) = stalled_client(&server).await;
    fill(&server, &id).await;
    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < BOUND,
        "shutdown took {:?}",
        started.elapsed()
    );
    let (disconnected, code) = disconnect_of(&mut rx, Duration::from_secs(1)).await;
    assert_eq!((disconnected.as_str(), code), (id.as_str(), 1001));
    assert_no_more_disconnects(&mut rx).await;
}

#[tokio::test]
async fn the_write_deadline_ends_a_client_that_stopped_reading() {
    let (server, mut rx) = server(Limits {
        write_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let (_client, id) = stalled_client(&server).await;
    let started = Instant::now();
    // Pushing stops being possible once the connection is dropped.
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..2_000 {
        if server.connections().post(&id, chunk.clone()).await == Err(PushError::Gone) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (disconnected, code) = disconnect_of(&mut rx, BOUND).await;
    assert_eq!((disconnected.as_str(), code), (id.as_str(), 1006));
    assert!(started.elapsed() < BOUND);
    assert_no_more_disconnects(&mut rx).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_reader_gets_every_message_in_order() {
    // Backpressure is not loss: a client that reads, however slowly,
    // receives everything that was accepted for it.
    let (server, _rx) = server(limits()).await;
    let mut client = connect(&server.url()).await;
    let id = server.connections().ids().pop().unwrap();
    let mut accepted = Vec::new();
    for n in 0..400 {
        let message = format!("{n}:{}", "z".repeat(16 * 1024));
        match server.connections().post(&id, message).await {
            Ok(()) => accepted.push(n),
            Err(PushError::QueueFull) => {
                // Read one (the oldest accepted), then go on.
                let text = next_text(&mut client).await;
                let oldest = accepted.remove(0);
                assert!(
                    text.starts_with(&format!("{oldest}:")),
                    "expected message {oldest}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
    for n in accepted {
        let text = next_text(&mut client).await;
        assert!(text.starts_with(&format!("{n}:")), "expected message {n}");
    }
}
