//! The `wsgate` binary: `validate`, and `serve` with outputs and graceful
//! shutdown on SIGTERM.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn wsgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsgate"))
}

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("wsgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn validate_accepts_good_configs_and_names_file_line_key_for_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(
        dir.path(),
        "name = \"MyApi\"\n[routes]\necho = { url = \"http://127.0.0.1:9/echo\" }\n",
    );
    let out = wsgate()
        .args(["validate", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));

    let bad = write_config(
        dir.path(),
        "name = \"MyApi\"\n\n[routes]\necho = { url = \"http://127.0.0.1:9/\", timeout = \"forever\" }\n",
    );
    let out = wsgate()
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("wsgate.toml:4: `routes.echo.timeout`"),
        "{stderr}"
    );

    // The certificate files are checked too, naming the missing one.
    let no_cert = write_config(
        dir.path(),
        "name = \"MyApi\"\n[domain]\nname = \"ws.example.com\"\ncert = \"missing.pem\"\nkey = \"key.pem\"\n",
    );
    let out = wsgate()
        .args(["validate", "--config"])
        .arg(&no_cert)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pem"));

    let missing = wsgate()
        .args(["validate", "--config", "/nonexistent/wsgate.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read config"));

    // A handler file that is not there: the route's own line, and no
    // colour codes in output that is not a terminal.
    let no_handler = write_config(
        dir.path(),
        "name = \"MyApi\"\n\n[routes]\n\"$default\" = \"src/missing.handler\"\n",
    );
    let out = wsgate()
        .args(["validate", "--config"])
        .arg(&no_handler)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "wsgate.toml:4: route `$default`: no handler file for \"src/missing.handler\""
        ),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "{stderr:?}");

    // No config in the folder: the hint names every front door.
    let empty = tempfile::tempdir().unwrap();
    let none = wsgate()
        .arg("validate")
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr.contains("no wsgate.toml, sst.config.ts, cdk.json, serverless.yml or template.yaml")
            && stderr.contains("--config"),
        "{stderr}"
    );
}

/// A port in use: the cause once, and what to do about it.
#[test]
fn a_port_in_use_is_named_once_with_a_hint() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "name = \"MyApi\"\n[routes]\necho = { url = \"http://127.0.0.1:9/echo\" }\n",
    );
    let out = wsgate()
        .args(["serve", "--listen", &addr, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("--listen ADDR"), "{stderr}");
}

/// GET on a plain HTTP URL: status and body.
async fn get(url: &str) -> (u16, String) {
    let reply = reqwest::get(url).await.unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

fn signal(child: &std::process::Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// SIGTERM drains: readiness fails at once on the admin listener and the
/// API's port, new upgrades get 503, the open connection keeps working;
/// a second signal closes it with 1001 (its $disconnect runs) long before
/// the drain timeout, and the process exits 0.
#[tokio::test]
async fn serve_writes_outputs_and_drains_on_sigterm() {
    let mut backend = Backend::start(|_, _| Reply::ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "name = \"CliApi\"\nstage = \"dev\"\n[routes]\n\"$connect\" = {{ url = \"{}\" }}\n\"$disconnect\" = {{ url = \"{}\" }}\n",
            backend.url("/connect"),
            backend.url("/disconnect")
        ),
    );
    let mut child = wsgate()
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--drain-timeout", "60 seconds", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    let mut management_endpoint = None;
    let mut exports = None;
    let mut admin = None;
    while admin.is_none() {
        let line = lines.next().expect("serve printed its outputs").unwrap();
        if let Some(value) = line.trim().strip_prefix("admin:") {
            let addr = value.trim().split('/').nth(2).unwrap().to_string();
            admin = Some(format!("http://{addr}"));
        }
        if let Some(value) = line.trim().strip_prefix("url:") {
            url = Some(value.trim().to_string());
        }
        if let Some(value) = line.trim().strip_prefix("managementEndpoint:") {
            management_endpoint = Some(value.trim().to_string());
        }
        if line.starts_with("export AWS_ACCESS_KEY_ID=") {
            exports = Some(line);
        }
    }
    let (url, management_endpoint) = (url.unwrap(), management_endpoint.unwrap());
    let exports = exports.unwrap();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/dev"),
        "{url}"
    );
    assert_eq!(management_endpoint, url.replace("ws://", "http://"));

    let outputs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".wsgate/outputs.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(outputs["url"], url.as_str());
    assert_eq!(outputs["managementEndpoint"], management_endpoint.as_str());

    // No [[credentials]]: a key for this run, printed and kept 0600.
    let file = dir.path().join(".wsgate/credentials");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), exports);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let var = |name: &str| {
        exports
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_string()
    };
    let key = wsgate::Credentials {
        access_key_id: var("AWS_ACCESS_KEY_ID"),
        secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
        session_token: None,
    };
    assert_eq!(var("AWS_REGION"), "us-east-1");

    let mut client = connect(&url).await;
    let id = backend.event_for("$connect").await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let push = format!("{management_endpoint}/@connections/{id}");
    assert_eq!(management_as(None, "POST", &push, "unsigned").await.0, 403);
    let signed = management_as(Some((&key, "us-east-1")), "POST", &push, "signed").await;
    assert_eq!(signed.0, 200);
    assert_eq!(next_text(&mut client).await, "signed");

    let admin = admin.unwrap();
    let api = url.replace("ws://", "http://").replace("/dev", "");
    assert_eq!(
        get(&format!("{admin}/ready")).await,
        (200, "ready\n".into())
    );
    assert_eq!(get(&format!("{api}/ready")).await.0, 200);
    assert_eq!(get(&format!("{api}/health")).await.0, 200);

    signal(&child, "TERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while get(&format!("{admin}/ready")).await.0 != 503 {
        assert!(std::time::Instant::now() < deadline, "/ready still 200");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&format!("{admin}/ready")).await.1, "draining\n");
    assert_eq!(get(&format!("{api}/ready")).await.0, 503);
    assert_eq!(get(&format!("{admin}/health")).await.0, 200);
    assert_eq!(try_connect(&url, &[]).await.err(), Some(503));
    // The open connection keeps working while the drain lasts.
    let during = management_as(Some((&key, "us-east-1")), "POST", &push, "draining").await;
    assert_eq!(during.0, 200);
    assert_eq!(next_text(&mut client).await, "draining");

    signal(&child, "TERM");
    assert_eq!(next_close(&mut client).await, (1001, "Going away".into()));
    let event = backend.event_for("$disconnect").await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1001);

    let status = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("wsgate did not exit after a second SIGTERM");
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn insecure_dev_warns_and_accepts_unsigned_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "name = \"Dev\"\n[routes]\necho = { url = \"http://127.0.0.1:1/\" }\n",
    );
    let mut child = wsgate()
        .args([
            "serve",
            "--insecure-dev",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("serve printed its outputs").unwrap();
        if let Some(value) = line.trim().strip_prefix("url:") {
            break value.trim().to_string();
        }
    };
    let mut warning = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut warning)
        .unwrap();
    assert!(
        warning.contains("--insecure-dev") && warning.contains("UNSIGNED"),
        "{warning}"
    );
    let mut client = connect(&url).await;
    let endpoint = url.replace("ws://", "http://");
    // The connection id is unknown to the test; GetConnection on a made-up
    // one shows auth passed (410, not 403).
    let (status, _, _) =
        management_as(None, "GET", &format!("{endpoint}/@connections/nope"), "").await;
    assert_eq!(status, 410);
    client.close(None).await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
}

/// Shutdown runs every `$disconnect`, paced to the function's own
/// `concurrency` (here 1, with 20 connections open): none is refused for
/// want of an instance.
#[tokio::test]
async fn shutdown_runs_every_disconnect_of_a_function_with_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("disconnected.txt");
    std::fs::write(
        dir.path().join("bye.py"),
        format!(
            "def handler(event, context):\n    with open({:?}, 'a') as f:\n        f.write(event['requestContext']['connectionId'] + '\\n')\n    return {{'statusCode': 200}}\n",
            seen.display().to_string()
        ),
    )
    .unwrap();
    let config = write_config(
        dir.path(),
        "name = \"Bye\"\n[routes]\n\"$disconnect\" = { handler = \"bye.handler\", concurrency = 1 }\n",
    );
    let serve = common::serve::Serve::start(&config, &["--drain-timeout", "0 seconds"]);
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(connect(&serve.url).await);
    }
    serve.signal("TERM");
    for client in &mut clients {
        assert_eq!(next_close(client).await.0, 1001);
    }
    let code = tokio::task::spawn_blocking(move || {
        let mut serve = serve;
        serve.wait()
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0));
    let lines = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(lines.lines().count(), 20, "{lines}");
}
