//! Function instances are isolated: only the instance wsgate started can
//! use its Runtime API, a handler sees only its own environment (never
//! wsgate's secrets), and nothing a handler starts outlives its instance
//! or wsgate.

mod common;

use common::serve::{Serve, write_config};
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONFIG: &str = r#"
name = "Iso"

[routes]
where = { handler = "isolation.where", return_response = true }
environments = { handler = "isolation.environments", return_response = true }
spawner = { handler = "isolation.spawner", return_response = true, timeout = "2 seconds", memory = "256 MB" }
"#;

/// An app folder with the isolation handlers and `config`.
fn app(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/functions");
    std::fs::copy(
        fixtures.join("isolation.mjs"),
        dir.path().join("isolation.mjs"),
    )
    .unwrap();
    write_config(dir.path(), config);
    dir
}

async fn ask(client: &mut Client, body: Value) -> String {
    send_text(client, &body.to_string()).await;
    next_text(client).await
}

/// A raw HTTP request to `addr`; the response's status, or `None` if the
/// connection closed or nothing came within `within`.
async fn raw_status(addr: &str, request: &str, within: Duration) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    tokio::time::timeout(within, stream.read_exact(&mut head))
        .await
        .ok()?
        .ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[tokio::test]
async fn only_the_instance_can_use_its_runtime_api() {
    let dir = app(CONFIG);
    let server = serve_folder(dir.path()).await;
    let mut client = connect(&server.url()).await;
    let runtime_api = ask(&mut client, serde_json::json!({ "action": "where" })).await;
    assert!(runtime_api.starts_with("127.0.0.1:"), "{runtime_api}");

    // Another local process (this test) asks for the next invocation.
    let next =
        format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {runtime_api}\r\n\r\n");
    let thief = tokio::spawn({
        let runtime_api = runtime_api.clone();
        async move { raw_status(&runtime_api, &next, Duration::from_secs(5)).await }
    });
    // Meanwhile the instance keeps getting its invocations.
    for _ in 0..3 {
        let reply = ask(&mut client, serde_json::json!({ "action": "where" })).await;
        assert_eq!(reply, runtime_api);
    }
    assert_eq!(thief.await.unwrap(), Some(403), "a stranger was served");

    // Nor can it post a forged reply.
    let forged = "{\"statusCode\":200,\"body\":\"forged\"}";
    let post = format!(
        "POST /2018-06-01/runtime/invocation/anything/response HTTP/1.1\r\nHost: {runtime_api}\r\ncontent-length: {}\r\n\r\n{forged}",
        forged.len()
    );
    assert_eq!(
        raw_status(&runtime_api, &post, Duration::from_secs(5)).await,
        Some(403)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn handlers_never_see_wsgate_secrets_and_import_sees_what_invoke_sees() {
    const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
    let dir = app(&format!(
        "{CONFIG}\n[[credentials]]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\nsecret_access_key_env = \"ISO_BACKEND_SECRET\"\nallow = [{{ action = \"execute-api:ManageConnections\" }}]\n"
    ));
    let serve = Serve::start_with(
        &dir.path().join("wsgate.toml"),
        &[],
        &[
            ("ISO_BACKEND_SECRET", SECRET),
            ("ISO_UNRELATED", "wsgate's own"),
        ],
    );
    let mut client = connect(&serve.url).await;
    let reply = ask(&mut client, serde_json::json!({ "action": "environments" })).await;
    assert!(!reply.contains(SECRET), "a handler saw the secret: {reply}");
    assert!(
        !reply.contains("ISO_"),
        "a handler saw wsgate's environment: {reply}"
    );
    let reply: Value = serde_json::from_str(&reply).unwrap();
    let keys = |env: &Value| {
        let mut keys: Vec<String> = env.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&reply["atImport"]), keys(&reply["atInvoke"]));
    assert!(reply["atImport"]["AWS_LAMBDA_FUNCTION_NAME"].is_string());
}

fn alive(pid: u32) -> bool {
    // A zombie is dead: only its parent's bookkeeping is left.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// The pids a `spawner` invocation wrote to `file`, once it has.
async fn spawned(file: &Path) -> Vec<u32> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            let pids: Vec<u32> = text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if pids.len() == 2 {
                return pids;
            }
        }
        assert!(Instant::now() < deadline, "the handler spawned nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_all_gone(pids: &[u32], why: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        assert!(
            Instant::now() < deadline,
            "{why}: {left:?} outlived the instance"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn nothing_a_handler_starts_outlives_a_timeout_crash_or_memory_kill() {
    let dir = app(CONFIG);
    let server = serve_folder(dir.path()).await;
    let mut client = connect(&server.url()).await;
    for mode in ["hang", "crash", "hog"] {
        let file = dir.path().join(format!("{mode}.pids"));
        send_text(
            &mut client,
            &serde_json::json!({ "action": "spawner", "mode": mode, "file": file }).to_string(),
        )
        .await;
        let pids = spawned(&file).await;
        if mode == "hang" {
            assert!(pids.iter().all(|&p| alive(p)));
        }
        let reply = next_text(&mut client).await;
        assert!(reply.contains("Internal server error"), "{mode}: {reply}");
        assert_all_gone(&pids, mode).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn nothing_a_handler_starts_outlives_shutdown() {
    let dir = app(CONFIG);
    let server = serve_folder(dir.path()).await;
    let mut client = connect(&server.url()).await;
    let file = dir.path().join("ok.pids");
    let reply = ask(
        &mut client,
        serde_json::json!({ "action": "spawner", "mode": "ok", "file": file }),
    )
    .await;
    assert_eq!(reply, "spawned");
    let pids = spawned(&file).await;
    server.shutdown().await;
    assert_all_gone(&pids, "shutdown").await;
}

#[tokio::test]
async fn nothing_a_handler_starts_outlives_kill_9_of_wsgate() {
    let dir = app(CONFIG);
    let serve = Serve::start(&dir.path().join("wsgate.toml"), &[]);
    let mut client = connect(&serve.url).await;
    let file = dir.path().join("killed.pids");
    let reply = ask(
        &mut client,
        serde_json::json!({ "action": "spawner", "mode": "ok", "file": file }),
    )
    .await;
    assert_eq!(reply, "spawned");
    let pids = spawned(&file).await;
    serve.signal("KILL");
    assert_all_gone(&pids, "kill -9 of wsgate").await;
}

#[tokio::test]
async fn without_cgroups_the_process_group_and_subreaper_still_end_everything() {
    // Where no cgroup is writable, the instance's process group and its
    // subreaper role (daemons stay its descendants) are what bound it.
    let dir = app(CONFIG);
    let serve = Serve::start_with(
        &dir.path().join("wsgate.toml"),
        &[],
        &[("WSGATE_CGROUPS", "off")],
    );
    let mut client = connect(&serve.url).await;
    let file = dir.path().join("hang.pids");
    send_text(
        &mut client,
        &serde_json::json!({ "action": "spawner", "mode": "hang", "file": file }).to_string(),
    )
    .await;
    let pids = spawned(&file).await;
    let reply = next_text(&mut client).await;
    assert!(reply.contains("Internal server error"), "{reply}");
    assert_all_gone(&pids, "timeout without cgroups").await;
}
