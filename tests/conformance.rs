//! Conformance with software nobody here wrote: the Node `ws` client and
//! AWS SDK v3, Python `websockets` and boto3, and headless Chromium, each
//! run as a real process against a real gateway (installed by scripts/setup).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wsgate::{Response, RouteOptions, WebSocketApi, handler_fn};

fn two_way() -> RouteOptions {
    RouteOptions {
        return_response: true,
        ..Default::default()
    }
}

async fn gateway() -> wsgate::Server {
    WebSocketApi::new("Conformance")
        .route(
            "$connect",
            handler_fn(|event, _| async move {
                // Browsers fail a connection whose requested subprotocol is
                // not answered: $connect picks one, as on API Gateway.
                let mut response = Response::ok();
                if let Some(offered) = event
                    .headers
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                {
                    let first = offered
                        .split(',')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    response = response.with_header("Sec-WebSocket-Protocol", first);
                }
                Ok(response)
            }),
        )
        .route_with(
            "whoami",
            handler_fn(|event, _| async move {
                Ok(Response::ok()
                    .with_body(event.request_context.connection_id.unwrap_or_default()))
            }),
            two_way(),
        )
        .route_with(
            "echo",
            handler_fn(|event, _| async move {
                Ok(Response::ok().with_body(event.body.unwrap_or_default()))
            }),
            two_way(),
        )
        .bind(any_port())
        .await
        .unwrap()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a peer program with the server's key in its environment (as the
/// AWS SDKs read it); fails the test with its output unless it passes.
async fn run_peer(program: &Path, args: &[&str], server: &wsgate::Server) -> String {
    let key = server.generated_credentials().expect("a generated key");
    assert!(
        program.exists() || !program.is_absolute(),
        "{} is missing: run scripts/setup",
        program.display()
    );
    let output = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(program)
            .args(args)
            .arg(server.url())
            .arg(server.management_endpoint())
            .env("AWS_ACCESS_KEY_ID", &key.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &key.secret_access_key)
            .env("AWS_REGION", server.region())
            .env("AWS_DEFAULT_REGION", server.region())
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("peer did not finish in 90 s")
    .expect("peer could not start");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{stdout}\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn node_ws_client_and_aws_sdk_v3() {
    let node_modules = root().join("tests/conformance/node/node_modules");
    assert!(
        node_modules.join("ws").is_dir(),
        "run scripts/setup: tests/conformance/node needs `npm ci`"
    );
    let server = gateway().await;
    let script = root().join("tests/conformance/node/clients.mjs");
    let stdout = run_peer(Path::new("node"), &[script.to_str().unwrap()], &server).await;
    assert!(
        stdout.contains("sdk: GoneException typed") && stdout.contains("node: all checks passed"),
        "{stdout}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn python_websockets_and_boto3() {
    let python = root().join(".venv/bin/python");
    let server = gateway().await;
    let script = root().join("tests/conformance/python/clients.py");
    let stdout = run_peer(&python, &[script.to_str().unwrap()], &server).await;
    assert!(
        stdout.contains("boto3: GoneException typed")
            && stdout.contains("python: all checks passed"),
        "{stdout}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn headless_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "run scripts/setup: it installs Debian's chromium"
    );
    let server = gateway().await;
    let script = root().join("tests/conformance/node/browser.mjs");
    let stdout = run_peer(Path::new("node"), &[script.to_str().unwrap()], &server).await;
    assert!(
        stdout.contains("browser: closed (4000)") && stdout.contains("browser: all checks passed"),
        "{stdout}"
    );
    server.shutdown().await;
}
