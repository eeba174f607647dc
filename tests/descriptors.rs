//! File descriptors: the limit is raised at start, one API's
//! integrations hold a bounded share of it, and new clients can connect
//! while a slow backend is flooded with messages.

mod common;

use common::serve::{Serve, write_config};
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn soft_open_files(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_soft_limit_is_raised_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "name = \"Fds\"\n");
    let serve = Serve::start_with_open_files(&config, 256, 4096);
    assert_eq!(soft_open_files(serve.pid()), 4096);
}

/// An HTTP backend that answers each request after `delay`, counting the
/// connections open at once (the most seen).
async fn slow_backend(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let most_seen = Arc::clone(&most);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            most_seen.fetch_max(now, Ordering::SeqCst);
            let open = Arc::clone(&open);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    // One request per read is enough for these small events.
                    let read = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    // `/fast` answers at once; everything else after `delay`.
                    let fast = buf[..read].starts_with(b"POST /fast ");
                    if !fast {
                        tokio::time::sleep(delay).await;
                    }
                    let body = if fast {
                        r#"{"statusCode":200,"body":"fast"}"#
                    } else {
                        r#"{"statusCode":200}"#
                    };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        break;
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, most)
}

#[tokio::test]
async fn a_slow_backend_cannot_take_the_descriptors_clients_need() {
    let (url, most) = slow_backend(Duration::from_secs(3)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "name = \"Fds\"\n[routes]\n\"$default\" = {{ url = \"{url}\" }}\nfast = {{ url = \"{url}fast\", return_response = true }}\n"
        ),
    );
    // 256 descriptors in all; the integrations may hold a quarter.
    let serve = Serve::start_with_open_files(&config, 256, 256);
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut client = connect(&serve.url).await;
        for n in 0..64 {
            send_text(&mut client, &format!("{{\"n\":{n}}}")).await;
        }
        clients.push(client);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 1,280 messages wait on the backend, yet a new client connects at once.
    for _ in 0..20 {
        let client = tokio::time::timeout(Duration::from_secs(5), connect(&serve.url))
            .await
            .expect("a new client connects while the backend is flooded");
        clients.push(client);
    }
    // Client connections take turns for the backend: a fresh client's one
    // message to a fast route waits for the next call to end, not for the
    // 1,280 queued before it (~60 s at 64 at a time).
    let asked = std::time::Instant::now();
    let fresh = clients.last_mut().unwrap();
    send_text(fresh, r#"{"action":"fast"}"#).await;
    assert_eq!(next_text(fresh).await, "fast");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "a fresh client waited {:?} behind other connections' backlog",
        asked.elapsed()
    );
    let most = most.load(Ordering::SeqCst);
    assert!(
        most <= 64,
        "{most} integration connections were open at once"
    );
    assert!(most >= 8, "the backend saw only {most} connections");
}

#[tokio::test]
async fn idle_integration_connections_close_within_30_seconds() {
    // A backend that answers at once and reports when the gateway closes
    // its kept-alive connection.
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut answered = None;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let body = r#"{"statusCode":200}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    stream.write_all(reply.as_bytes()).await.unwrap();
                    answered = Some(std::time::Instant::now());
                }
            }
        }
        let _ = closed_tx.send(answered.map(|at| at.elapsed()));
    });
    let server = api_from_toml(&format!(
        "name = \"Pool\"\n[routes]\n\"$default\" = {{ url = \"{url}\" }}\n"
    ))
    .bind(any_port())
    .await
    .unwrap();
    let _client = connect(&server.url()).await;
    let mut client = connect(&server.url()).await;
    send_text(&mut client, "{}").await;
    let idle_for = tokio::time::timeout(Duration::from_secs(40), closed.recv())
        .await
        .expect("the idle connection was closed")
        .unwrap()
        .expect("the backend answered");
    assert!(
        idle_for <= Duration::from_secs(30),
        "closed after {idle_for:?}"
    );
    server.shutdown().await;
}
