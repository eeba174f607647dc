//! Function handlers: SST handler strings run as Node.js and Python
//! processes speaking the Lambda Runtime API, with their faults.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use wsgate::WebSocketApi;

const CONFIG: &str = r#"
name = "Fns"

[transform.route.handler]
environment = { FROM_TRANSFORM = "yes" }

[routes]
echo = { handler = "handlers.echo", return_response = true }
env = { handler = "handlers.env", return_response = true, link = ["Fns"] }
toplevel = { handler = "toplevel.handler", return_response = true, link = ["Fns"] }
fail = { handler = "handlers.fail", return_response = true }
hang = { handler = "handlers.hang", timeout = "1 second" }
exit = "handlers.exit"
garbage = { handler = "handlers.garbage", return_response = true }
hog = { handler = "handlers.hog", memory = "128 MB" }
slow = { handler = "handlers.slow", return_response = true, concurrency = 2 }
pyecho = { handler = "py/handlers.echo", return_response = true }
pyfail = { handler = "py/handlers.fail", return_response = true }
"#;

/// An app folder with the fixture handlers and `config`.
fn app(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/functions");
    for file in ["handlers.mjs", "toplevel.mjs", "cjs.cjs"] {
        std::fs::copy(fixtures.join(file), dir.path().join(file)).unwrap();
    }
    std::fs::create_dir(dir.path().join("py")).unwrap();
    std::fs::copy(
        fixtures.join("py/handlers.py"),
        dir.path().join("py/handlers.py"),
    )
    .unwrap();
    std::fs::write(dir.path().join("wsgate.toml"), config).unwrap();
    dir
}

/// Builds and checks the app as `wsgate serve` does before it accepts.
async fn build(dir: &Path) -> Result<WebSocketApi, String> {
    let config = wsgate::config::load(&dir.join("wsgate.toml")).map_err(|e| e.to_string())?;
    let api = WebSocketApi::from_config(&config).map_err(|e| e.to_string())?;
    api.check(any_port()).await.map_err(|e| e.to_string())?;
    Ok(api)
}

async fn ask(client: &mut Client, action: &str) -> String {
    send_text(client, &format!(r#"{{"action":"{action}"}}"#)).await;
    next_text(client).await
}

fn error_message(reply: &str) -> String {
    let json: Value =
        serde_json::from_str(reply).unwrap_or_else(|_| panic!("not an error message: {reply}"));
    json["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn node_and_python_handlers_run_warm_with_lambda_and_sst_environment() {
    let dir = app(CONFIG);
    let server = build(dir.path())
        .await
        .unwrap()
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;

    let first = ask(&mut client, "echo").await;
    let second = ask(&mut client, "echo").await;
    assert!(
        first.starts_with("node:") && first.ends_with(r#":{"action":"echo"}"#),
        "{first}"
    );
    let pid = |reply: &str| reply.split(':').nth(1).unwrap().to_string();
    assert_eq!(pid(&first), pid(&second), "the warm instance is reused");

    let py = ask(&mut client, "pyecho").await;
    assert!(py.starts_with("py:") && py.ends_with(":Fns-pyecho"), "{py}");

    let env: Value = serde_json::from_str(&ask(&mut client, "env").await).unwrap();
    assert_eq!(env["name"], "Fns-env");
    assert_eq!(env["region"], "us-east-1");
    assert_eq!(env["memory"], "1024");
    assert!(env["accessKey"].as_str().unwrap().starts_with("ASIA"));
    assert_eq!(env["sessionToken"], true);
    assert_eq!(env["app"]["name"], "Fns");
    assert_eq!(env["link"]["type"], "sst.aws.ApiGatewayWebSocket");
    assert_eq!(env["link"]["url"], server.url().as_str());
    assert_eq!(
        env["link"]["managementEndpoint"],
        server.management_endpoint().as_str()
    );
    assert_eq!(env["fromTransform"], "yes");
    // A module that reads its linked resource at import passes the start-up
    // check and sees the real endpoint.
    assert_eq!(
        ask(&mut client, "toplevel").await,
        server.management_endpoint()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn faults_give_api_gateway_errors_and_the_next_message_works() {
    let dir = app(CONFIG);
    let server = build(dir.path())
        .await
        .unwrap()
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    for action in ["fail", "hang", "exit", "hog", "pyfail"] {
        let reply = ask(&mut client, action).await;
        assert_eq!(
            error_message(&reply),
            "Internal server error",
            "{action}: {reply}"
        );
        let echo = ask(&mut client, "echo").await;
        assert!(echo.starts_with("node:"), "after {action}: {echo}");
    }
    // Garbage on stdout/stderr is logged, not fatal.
    assert_eq!(ask(&mut client, "garbage").await, "survived");
    // The crashed and killed functions start again.
    let reply = ask(&mut client, "exit").await;
    assert_eq!(error_message(&reply), "Internal server error");
    server.shutdown().await;
}

#[tokio::test]
async fn reserved_concurrency_runs_that_many_and_throttles_the_rest() {
    let dir = app(CONFIG);
    let server = build(dir.path())
        .await
        .unwrap()
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    for _ in 0..6 {
        send_text(&mut client, r#"{"action":"slow"}"#).await;
    }
    // Reserved concurrency, as Lambda's: two instances run, and what
    // comes past them is throttled at once rather than queued.
    let mut pids = HashSet::new();
    let mut throttled = 0;
    for _ in 0..6 {
        let reply = next_text(&mut client).await;
        if reply.contains("Internal server error") {
            throttled += 1;
        } else {
            pids.insert(reply);
        }
    }
    assert_eq!(
        pids.len(),
        2,
        "concurrency = 2 gives exactly two instances: {pids:?}"
    );
    assert_eq!(throttled, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn missing_files_and_exports_fail_at_start_naming_the_route() {
    let dir = app("name = \"Fns\"\n[routes]\nnope = \"src/missing.handler\"\n");
    let error = build(dir.path()).await.err().unwrap();
    assert!(error.contains("route `nope`"), "{error}");
    assert!(
        error.contains("src/missing.ts") && error.contains("src/missing.py"),
        "{error}"
    );

    let dir = app("name = \"Fns\"\n[routes]\nnope = \"handlers.notThere\"\n");
    let error = build(dir.path()).await.err().unwrap();
    assert!(
        error.contains("cannot load export `notThere`") && error.contains("does not"),
        "{error}"
    );

    let dir = app("name = \"Fns\"\n[routes]\nnope = \"py/handlers.notThere\"\n");
    let error = build(dir.path()).await.err().unwrap();
    assert!(
        error.contains("cannot load export `notThere`") && error.contains("does not"),
        "{error}"
    );
    // Said in one line, without the bootstrap's own traceback before it.
    let validated = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .arg("validate")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&validated.stderr);
    assert!(stderr.contains("cannot load export `notThere`"), "{stderr}");
    assert!(!stderr.contains("Traceback"), "{stderr}");

    // What every object or module has is not an export.
    for handler in [
        "cjs.toString",
        "cjs.hasOwnProperty",
        "handlers.toString",
        "py/handlers.__class__",
        "py/handlers.__init__",
    ] {
        let dir = app(&format!("name = \"Fns\"\n[routes]\nnope = \"{handler}\"\n"));
        let error = build(dir.path()).await.err().unwrap();
        assert!(error.contains("cannot load export"), "{handler}: {error}");
    }
    let dir = app("name = \"Fns\"\n[routes]\nok = \"cjs.handler\"\n");
    build(dir.path()).await.unwrap();

    let dir = app(
        "name = \"Fns\"\n[routes]\necho = { handler = \"handlers.echo\", link = [\"Other\"] }\n",
    );
    let error = build(dir.path()).await.err().unwrap();
    assert!(error.contains("`routes.echo.link`"), "{error}");
}

/// A binary `cargo test` built next to this test's own executable.
fn example_binary(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is built by `cargo test`",
        path.display()
    );
    path.display().to_string()
}

/// Python with awslambdaric, from the venv scripts/setup makes.
fn venv_python() -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.is_file(),
        "run scripts/setup: it installs awslambdaric into .venv"
    );
    python.display().to_string()
}

#[tokio::test]
async fn official_runtime_clients_work_unmodified() {
    let config = format!(
        r#"
name = "Fns"
[routes]
rust = {{ command = ["{rust}"], return_response = true }}
ric = {{ command = ["{python}", "-m", "awslambdaric", "py.handlers.echo"], return_response = true }}
ricfail = {{ command = ["{python}", "-m", "awslambdaric", "py.handlers.fail"], return_response = true }}
"#,
        rust = example_binary("rust_handler"),
        python = venv_python(),
    );
    let dir = app(&config);
    std::fs::write(dir.path().join("py/__init__.py"), "").unwrap();
    let server = build(dir.path())
        .await
        .unwrap()
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;

    // Rust `lambda_runtime`: its context carries the request id we sent.
    let reply = ask(&mut client, "rust").await;
    let parts: Vec<&str> = reply.splitn(4, ':').collect();
    assert_eq!(&parts[..2], ["rust", "rust"], "{reply}");
    assert_eq!(
        parts[2].len(),
        16,
        "request id in the Lambda context: {reply}"
    );
    assert_eq!(parts[3], r#"{"action":"rust"}"#);
    send_text(&mut client, r#"{"action":"rust","fail":true}"#).await;
    // The handler's error string contains "fail" only through the body key.
    let reply = next_text(&mut client).await;
    assert_eq!(error_message(&reply), "Internal server error", "{reply}");
    assert!(ask(&mut client, "rust").await.starts_with("rust:rust:"));

    // Python `awslambdaric`.
    let reply = ask(&mut client, "ric").await;
    assert!(
        reply.starts_with("py:") && reply.ends_with(":Fns-ric"),
        "{reply}"
    );
    let reply = ask(&mut client, "ricfail").await;
    assert_eq!(error_message(&reply), "Internal server error", "{reply}");
    assert!(ask(&mut client, "ric").await.starts_with("py:"));
    server.shutdown().await;
}

#[tokio::test]
async fn events_past_reserved_concurrency_are_throttled_at_once() {
    // Reserved concurrency 1: one running, the rest throttled at once, as
    // Lambda throttles a synchronous invocation (no queue).
    let dir = app(
        "name = \"Fns\"\n[routes]\nbusy = { handler = \"handlers.busy\", return_response = true, concurrency = 1 }\n",
    );
    let server = build(dir.path())
        .await
        .unwrap()
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    ask(&mut client, "busy").await; // warm
    for _ in 0..15 {
        send_text(&mut client, r#"{"action":"busy"}"#).await;
    }
    let mut done = 0;
    let mut refused = 0;
    for _ in 0..15 {
        match next_text(&mut client).await.as_str() {
            "done" => done += 1,
            other => {
                assert_eq!(error_message(other), "Internal server error");
                refused += 1;
            }
        }
    }
    assert_eq!((done, refused), (1, 14));
    server.shutdown().await;
}

/// A Python handler runs in the app's own virtual environment (what `uv
/// sync` makes; SST runs handlers with `uv run`), so its dependencies,
/// installed there and not on the machine, import.
#[tokio::test]
async fn python_handlers_run_in_the_app_s_virtual_environment() {
    let dir = app(
        "name = \"Fns\"\n[routes]\nvenv = { handler = \"uses_dep.handler\", return_response = true }\n",
    );
    let status = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(dir.path().join(".venv"))
        .status()
        .unwrap();
    assert!(status.success());
    let version = std::process::Command::new(dir.path().join(".venv/bin/python3"))
        .args([
            "-c",
            "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')",
        ])
        .output()
        .unwrap();
    let site = dir
        .path()
        .join(".venv/lib")
        .join(String::from_utf8_lossy(&version.stdout).trim())
        .join("site-packages");
    std::fs::write(site.join("only_in_the_venv.py"), "WHERE = 'venv'\n").unwrap();
    std::fs::write(
        dir.path().join("uses_dep.py"),
        "import only_in_the_venv\n\ndef handler(event, context):\n    return {'statusCode': 200, 'body': only_in_the_venv.WHERE}\n",
    )
    .unwrap();
    let server = build(dir.path())
        .await
        .unwrap()
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    assert_eq!(ask(&mut client, "venv").await, "venv");
    server.shutdown().await;
}

/// A library's warning at load is the same for every instance: it is
/// shown for the first, noted for the others; what instances print while
/// handling is shown for each.
#[tokio::test]
async fn start_up_output_repeated_by_instances_is_shown_once() {
    let dir = app(
        "name = \"Fns\"\n[routes]\nwarns = { handler = \"warns.handler\", return_response = true, concurrency = 3 }\n",
    );
    std::fs::write(
        dir.path().join("warns.mjs"),
        "console.warn(\"Warning: a start-up block\\nits second line\");\nexport async function handler() {\n  console.log(\"handling one\");\n  await new Promise((r) => setTimeout(r, 800));\n  return { statusCode: 200, body: \"ok\" };\n}\n",
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let serve = common::serve::Serve::start_logging_to(&dir.path().join("wsgate.toml"), &[], &log);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = connect(&serve.url).await;
        send_text(&mut client, r#"{"action":"warns"}"#).await;
        clients.push(client);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for client in &mut clients {
        assert_eq!(next_text(client).await, "ok");
    }
    drop(serve);
    let logged = std::fs::read_to_string(&log).unwrap();
    // One at start-up check, then three instances for the three messages.
    assert_eq!(logged.matches("its second line").count(), 1, "{logged}");
    assert!(logged.matches("not shown again").count() >= 2, "{logged}");
    assert_eq!(logged.matches("handling one").count(), 3, "{logged}");
}
