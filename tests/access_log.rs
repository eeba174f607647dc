//! Access logs: SST's fields written for every connect, message and
//! disconnect, and `wsgate logs` reading them back.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const SST_FIELDS: [&str; 13] = [
    "requestTime",
    "requestId",
    "eventType",
    "routeKey",
    "status",
    "integrationRequestId",
    "integrationStatus",
    "integrationLatency",
    "integrationServiceStatus",
    "ip",
    "userAgent",
    "connectedAt",
    "connectionId",
];

fn log_file(dir: &Path) -> PathBuf {
    dir.join(".wsgate/logs/Logged/dev")
        .join(format!("{}.jsonl", chrono::Utc::now().format("%Y-%m-%d")))
}

/// Waits until the writer has written `n` lines.
async fn lines(dir: &Path, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(log_file(dir)) {
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("each line is JSON"))
                .collect();
            if lines.len() >= n {
                return lines;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the access log did not reach {n} lines");
}

/// An app in a temporary folder logging to `.wsgate/logs/Logged/dev/`.
/// Writes `config` as `dir`/wsgate.toml and serves it.
async fn serve_config(dir: &Path, config: &str) -> wsgate::Server {
    std::fs::write(dir.join("wsgate.toml"), config).unwrap();
    serve_folder(dir).await
}

async fn logged_app(backend: &Backend) -> (tempfile::TempDir, wsgate::Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
name = "Logged"
stage = "dev"
[access_log]
retention = "1 week"
[routes]
"$connect" = {{ url = "{connect}" }}
"$disconnect" = {{ url = "{disconnect}" }}
echo = {{ url = "{echo}", return_response = true }}
fail = {{ url = "http://127.0.0.1:1/unreachable" }}
"#,
        connect = backend.url("/connect"),
        disconnect = backend.url("/disconnect"),
        echo = backend.url("/echo"),
    );
    let server = serve_config(dir.path(), &config).await;
    (dir, server)
}

#[tokio::test]
async fn every_event_writes_sst_fields_typed() {
    let backend = Backend::start(|path, _| {
        if path == "/echo" {
            Reply::json(serde_json::json!({ "statusCode": 201, "body": "hi" }))
        } else {
            Reply::ok()
        }
    })
    .await;
    let (dir, server) = logged_app(&backend).await;
    let (mut client, _) = try_connect(&server.url(), &[("User-Agent", "log-test")])
        .await
        .unwrap();
    send_text(&mut client, r#"{"action":"echo"}"#).await;
    assert_eq!(next_text(&mut client).await, "hi");
    send_text(&mut client, r#"{"action":"fail"}"#).await;
    next_text(&mut client).await;
    send_text(&mut client, r#"{"action":"nowhere"}"#).await;
    next_text(&mut client).await;
    client.close(None).await.unwrap();

    let lines = lines(dir.path(), 5).await;
    for line in &lines {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, SST_FIELDS, "{line}");
        assert!(line["status"].is_u64(), "status is an integer: {line}");
        for field in SST_FIELDS.iter().filter(|f| **f != "status") {
            assert!(line[field].is_string(), "{field} is a string: {line}");
        }
        assert_eq!(line["ip"], "127.0.0.1");
        assert_eq!(line["userAgent"], "log-test");
    }
    let find = |event: &str, route: &str| {
        lines
            .iter()
            .find(|l| l["eventType"] == event && l["routeKey"] == route)
            .unwrap_or_else(|| panic!("no {event} {route} line in {lines:?}"))
    };
    let connect = find("CONNECT", "$connect");
    assert_eq!(connect["status"], 200);
    assert_eq!(connect["integrationStatus"], "200");
    assert!(
        connect["integrationLatency"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    let echo = find("MESSAGE", "echo");
    assert_eq!(
        (
            echo["status"].as_u64(),
            echo["integrationServiceStatus"].as_str()
        ),
        (Some(200), Some("201"))
    );
    assert_eq!(echo["integrationRequestId"], echo["requestId"]);
    let fail = find("MESSAGE", "fail");
    assert_eq!(
        (fail["status"].as_u64(), fail["integrationStatus"].as_str()),
        (Some(500), Some("500"))
    );
    let nowhere = find("MESSAGE", "$default");
    assert_eq!(nowhere["status"], 403);
    assert_eq!(nowhere["integrationLatency"], "-");
    let disconnect = find("DISCONNECT", "$disconnect");
    assert_eq!(disconnect["status"], 200);
    let ids: Vec<&Value> = lines.iter().map(|l| &l["connectionId"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one connection");
    server.shutdown().await;
}

fn wsgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsgate"))
}

fn logs(dir: &Path, args: &[&str]) -> String {
    let output = wsgate()
        .arg("logs")
        .arg("--config")
        .arg(dir.join("wsgate.toml"))
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn logs_command_filters_and_follows() {
    let backend = Backend::start(|_, _| Reply::ok()).await;
    let (dir, server) = logged_app(&backend).await;
    let mut first = connect(&server.url()).await;
    send_text(&mut first, r#"{"action":"fail"}"#).await;
    next_text(&mut first).await;
    first.close(None).await.unwrap();
    lines(dir.path(), 3).await;

    let all = logs(dir.path(), &["--json"]);
    assert_eq!(all.lines().count(), 3, "{all}");
    let errors = logs(dir.path(), &["--json", "--status", "5xx"]);
    let errors: Vec<Value> = errors
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["routeKey"], "fail");
    let human = logs(dir.path(), &["--route", "fail"]);
    assert!(
        human.contains("MESSAGE") && human.contains("fail") && human.contains(" 500 "),
        "{human}"
    );
    assert!(!human.contains('\x1b'), "no colour when not a terminal");
    assert_eq!(logs(dir.path(), &["--connection", "nope="]), "");
    assert_eq!(
        logs(dir.path(), &["--since", "1h", "--json"])
            .lines()
            .count(),
        3
    );

    // --follow prints what comes next.
    let mut follower = wsgate()
        .args([
            "logs", "--follow", "--json", "--route", "$connect", "--config",
        ])
        .arg(dir.path().join("wsgate.toml"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(follower.stdout.take().unwrap()).lines();
    let earlier: Value = serde_json::from_str(&out.next().unwrap().unwrap()).unwrap();
    assert_eq!(earlier["routeKey"], "$connect");
    let second = connect(&server.url()).await;
    let next = tokio::task::spawn_blocking(move || out.next().unwrap().unwrap())
        .await
        .unwrap();
    let next: Value = serde_json::from_str(&next).unwrap();
    assert_eq!(next["routeKey"], "$connect");
    assert_ne!(next["connectionId"], earlier["connectionId"]);
    let _ = follower.kill();
    let _ = follower.wait();
    drop(second);
    server.shutdown().await;

    // Reading logs needs no secrets: a key whose secret's variable is not
    // set does not stop it. (Every line first: the second connection's
    // DISCONNECT is written after the shutdown.)
    lines(dir.path(), 5).await;
    let before = logs(dir.path(), &["--json"]);
    let config = dir.path().join("wsgate.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[[credentials]]\naccess_key_id = \"AKIALOGSNOSECRET0001\"\nsecret_access_key_env = \"WSGATE_TEST_SECRET_NEVER_SET\"\nallow = [{ action = \"execute-api:ManageConnections\", resource = \"*\" }]\n");
    std::fs::write(&config, text).unwrap();
    assert_eq!(logs(dir.path(), &["--json"]), before);
}

/// A custom `[transform.access_log] format` (plain text, not JSON): the
/// lines are read back with it, so `wsgate logs` shows and filters them.
#[tokio::test]
async fn logs_command_reads_a_custom_format() {
    let backend = Backend::start(|_, _| Reply::ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
name = "Custom"
stage = "dev"
[access_log]
retention = "1 week"
[transform.access_log]
format = "$context.requestTime | $context.eventType $context.routeKey -> $context.status ($context.integrationLatency ms) $context.connectionId $context.requestId"
[routes]
"$connect" = {{ url = "{connect}" }}
fail = {{ url = "http://127.0.0.1:1/unreachable" }}
"#,
        connect = backend.url("/connect"),
    );
    let server = serve_config(dir.path(), &config).await;
    let mut client = connect(&server.url()).await;
    send_text(&mut client, r#"{"action":"fail"}"#).await;
    next_text(&mut client).await;
    client.close(None).await.unwrap();
    // Three lines: CONNECT, the failed MESSAGE, DISCONNECT.
    let file = dir
        .path()
        .join(".wsgate/logs/Custom/dev")
        .join(format!("{}.jsonl", chrono::Utc::now().format("%Y-%m-%d")));
    for _ in 0..100 {
        if std::fs::read_to_string(&file).is_ok_and(|t| t.lines().count() >= 3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(stored.contains("MESSAGE fail -> 500"), "{stored}");

    let human = logs(dir.path(), &["--route", "fail"]);
    assert_eq!(human.lines().count(), 1, "{human}");
    assert!(
        human.contains("MESSAGE") && human.contains("fail") && human.contains(" 500 "),
        "{human}"
    );
    assert!(!human.contains(" -  -  - "), "{human}");
    assert_eq!(logs(dir.path(), &["--status", "5xx"]).lines().count(), 1);
    assert_eq!(logs(dir.path(), &["--since", "1h"]).lines().count(), 3);
    // --json prints the stored lines as they are.
    let raw = logs(dir.path(), &["--json", "--route", "$connect"]);
    assert!(raw.contains("CONNECT $connect -> 200"), "{raw}");
    server.shutdown().await;
}

#[test]
fn a_filter_on_a_field_the_format_lacks_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wsgate.toml"),
        "name = \"Narrow\"\n[transform.access_log]\nformat = \"$context.requestId $context.routeKey\"\n",
    )
    .unwrap();
    let output = wsgate()
        .args(["logs", "--connection", "abc=", "--config"])
        .arg(dir.path().join("wsgate.toml"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--connection filters on $context.connectionId"),
        "{stderr}"
    );
    // A filter the format can answer is fine (no log yet).
    assert_eq!(logs(dir.path(), &["--route", "x"]), "");
}
