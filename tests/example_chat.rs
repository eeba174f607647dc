//! Runs the README's example (examples/chat) for real: its Python handlers,
//! its wsgate.toml, and its Node client.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use wsgate::WebSocketApi;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example(path: &str) -> String {
    format!("{}/examples/chat/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// The secret `run` would generate.
const CHAT_SECRET: &str = "chat-example-test-secret";

/// Starts backend.py on a free port; returns it and its address.
fn start_backend() -> (KillOnDrop, String) {
    let mut child = Command::new("python3")
        .arg(example("backend.py"))
        .env("CHAT_BACKEND_PORT", "0")
        .env("CHAT_BACKEND_SECRET", CHAT_SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the example backend");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    (KillOnDrop(child), addr)
}

/// The example's config, read as if it were in `state` (a temp folder), so
/// the test's access log and CA stay out of the user's examples/chat.
async fn start_gateway(backend_addr: &str, state: &std::path::Path) -> wsgate::Server {
    let text = std::fs::read_to_string(example("wsgate.toml"))
        .unwrap()
        .replace("127.0.0.1:9000", backend_addr)
        .replace(
            "secret_access_key_env = \"CHAT_BACKEND_SECRET\"",
            &format!("secret_access_key = \"{CHAT_SECRET}\""),
        );
    assert!(
        text.contains(CHAT_SECRET),
        "the example's key is configured"
    );
    let config = wsgate::config::parse(&state.join("wsgate.toml"), &text).unwrap();
    WebSocketApi::from_config(&config)
        .unwrap()
        .bind(any_port())
        .await
        .unwrap()
}

#[tokio::test]
async fn chat_example_broadcasts_between_clients() {
    let (_backend, backend_addr) = start_backend();
    let state = tempfile::tempdir().unwrap();
    let server = start_gateway(&backend_addr, state.path()).await;
    let mut alice = connect(&format!("{}?name=alice", server.url())).await;
    let mut bob = connect(&format!("{}?name=bob", server.url())).await;

    send_text(&mut alice, r#"{"action":"sendMessage","message":"hi bob"}"#).await;
    for client in [&mut alice, &mut bob] {
        let received: Value = serde_json::from_str(&next_text(client).await).unwrap();
        assert_eq!(
            received,
            serde_json::json!({ "from": "alice", "message": "hi bob" })
        );
    }

    send_text(&mut bob, "what do I do?").await;
    assert!(next_text(&mut bob).await.contains("sendMessage"));

    bob.close(None).await.unwrap();
    send_text(
        &mut alice,
        r#"{"action":"sendMessage","message":"still here"}"#,
    )
    .await;
    let received: Value = serde_json::from_str(&next_text(&mut alice).await).unwrap();
    assert_eq!(received["message"], "still here");
    server.shutdown().await;
}

#[tokio::test]
async fn node_client_of_the_example_chats() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (_backend, backend_addr) = start_backend();
    let state = tempfile::tempdir().unwrap();
    let server = start_gateway(&backend_addr, state.path()).await;
    let mut watcher = connect(&format!("{}?name=watcher", server.url())).await;

    let mut node = tokio::process::Command::new("node")
        .args([
            "--experimental-websocket",
            "--no-warnings",
            &example("client.mjs"),
            "carol",
            &server.url(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs the example client");
    let mut stdout = tokio::io::BufReader::new(node.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(WAIT, stdout.next_line())
            .await
            .expect("node printed nothing")
            .unwrap()
            .unwrap_or_default()
    };
    let line = next_line().await;
    assert!(line.contains("connected"), "{line}");
    let mut stdin = node.stdin.take().unwrap();
    stdin.write_all(b"hello from node\n").await.unwrap();

    let received: Value = serde_json::from_str(&next_text(&mut watcher).await).unwrap();
    assert_eq!(
        received,
        serde_json::json!({ "from": "carol", "message": "hello from node" })
    );
    assert_eq!(next_line().await, "carol: hello from node");

    // End of input closes the socket with 1000 and the client exits.
    drop(stdin);
    assert_eq!(next_line().await, "closed (1000)");
    let status = tokio::time::timeout(WAIT, node.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    server.shutdown().await;
}
