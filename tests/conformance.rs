//! Conformance with software nobody here wrote: the Node `ws` client and
//! AWS SDK v3, Python `websockets` and boto3, and headless Chromium, each
//! run as a real process against a real gateway (installed by scripts/setup).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use wsgate::{Response, WebSocketApi, handler_fn};

async fn gateway() -> wsgate::Server {
    conformance_api().bind(any_port()).await.unwrap()
}

fn conformance_api() -> WebSocketApi {
    with_whoami(WebSocketApi::new("Conformance"))
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
            "echo",
            handler_fn(|event, _| async move {
                Ok(Response::ok().with_body(event.body.unwrap_or_default()))
            }),
            two_way(),
        )
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `program script <url> <managementEndpoint> [flags]` with the
/// server's generated key in its environment, as the AWS SDKs read it.
async fn run_peer(
    program: &Path,
    script: &Path,
    flags: &[&str],
    server: &wsgate::Server,
) -> String {
    let key = server.generated_credentials().expect("a generated key");
    let env = [
        ("AWS_ACCESS_KEY_ID", key.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key.as_str()),
    ];
    let (url, endpoint) = (server.url(), server.management_endpoint());
    let mut args = vec![script.to_str().unwrap(), &url, &endpoint];
    args.extend(flags);
    common::run_peer(program, &args, server.region(), &env).await
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
    let stdout = run_peer(Path::new("node"), &script, &[], &server).await;
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
    let stdout = run_peer(&python, &script, &[], &server).await;
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
    let stdout = run_peer(Path::new("node"), &script, &[], &server).await;
    assert!(
        stdout.contains("browser: closed (4000)") && stdout.contains("browser: all checks passed"),
        "{stdout}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn headless_chromium_with_a_presigned_url() {
    let server = conformance_api()
        .connect_auth(wsgate::ConnectAuth::Iam)
        .bind(any_port())
        .await
        .unwrap();
    let script = root().join("tests/conformance/node/browser.mjs");
    let stdout = run_peer(Path::new("node"), &script, &["--presign"], &server).await;
    assert!(stdout.contains("browser: all checks passed"), "{stdout}");
    server.shutdown().await;
}
