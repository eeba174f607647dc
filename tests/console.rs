//! The web console on the admin listener (`wsgate serve --admin`): driven
//! in headless Chromium against a real gateway, a real HTTP backend, a
//! Python function and a Python `websockets` client; and its guards
//! (token, loopback host, the header that changes need) over plain HTTP.

mod common;

use common::serve::{Serve, write_config};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `http://ADDR` of the console, as `serve` printed it.
fn console_url(serve: &Serve) -> String {
    serve
        .printed_http("console")
        .expect("serve prints the console's address")
}

/// An HTTP backend for every route (`echo` answers with the message) and
/// a Python function that writes to stdout and stderr.
async fn console_app(dir: &Path) -> (Backend, PathBuf) {
    let backend = Backend::start(|path, event| match path {
        "/echo" => Reply::json(serde_json::json!({
            "statusCode": 200,
            "body": event["body"],
        })),
        _ => Reply::ok(),
    })
    .await;
    std::fs::write(
        dir.join("chatty.py"),
        "import sys\n\ndef handler(event, context):\n    print('chatty got', event['body'])\n    print('chatty warns', file=sys.stderr)\n    return {'statusCode': 200}\n",
    )
    .unwrap();
    let config = write_config(
        dir,
        &format!(
            r#"name = "Console"
[routes]
"$connect" = {{ url = "{}" }}
"$disconnect" = {{ url = "{}" }}
"$default" = {{ url = "{}" }}
echo = {{ url = "{}", return_response = true }}
chatty = {{ handler = "chatty.handler" }}
"#,
            backend.url("/connect"),
            backend.url("/disconnect"),
            backend.url("/default"),
            backend.url("/echo"),
        ),
    );
    (backend, config)
}

#[tokio::test]
async fn the_console_in_chromium_shows_connections_events_logs_and_runs_a_test_client() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "run scripts/setup: it installs Debian's chromium"
    );
    let dir = tempfile::tempdir().unwrap();
    let (backend, config) = console_app(dir.path()).await;
    let serve = Serve::start(&config, &["--admin", "127.0.0.1:0"]);
    let console = console_url(&serve);
    let mut args = vec![
        root()
            .join("tests/conformance/node/console.mjs")
            .display()
            .to_string(),
        console.clone(),
        serve.url.clone(),
        root().join(".venv/bin/python").display().to_string(),
        root()
            .join("tests/conformance/python/console_client.py")
            .display()
            .to_string(),
    ];
    // WSGATE_CONSOLE_SCREENSHOTS=DIR keeps a screenshot of each view.
    if let Ok(shots) = std::env::var("WSGATE_CONSOLE_SCREENSHOTS") {
        args.extend(["--screenshots".to_string(), shots]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = run_peer(Path::new("node"), &args, "us-east-1", &[]).await;
    assert!(stdout.contains("console: all checks passed"), "{stdout}");

    // The event JSON the console showed is the one the backend received.
    let shown: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("console: event-json "))
        .map(|json| serde_json::from_str(json).unwrap())
        .expect("the script printed the event's JSON");
    let connection_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("console: connection appeared "))
        .expect("the script printed the connection's id")
        .to_string();
    let seen = backend.seen.lock().unwrap().clone();
    let received = seen
        .iter()
        .find(|(path, event)| {
            path == "/default" && event["requestContext"]["connectionId"] == connection_id.as_str()
        })
        .map(|(_, event)| event.clone())
        .expect("the backend got the Python client's message");
    assert_eq!(shown, received);
    // As Python's json.dumps spaced it.
    assert_eq!(received["body"], r#"{"note": "from python", "n": 42}"#);

    // Disconnecting from the console ran $disconnect, as DeleteConnection.
    let disconnect = seen
        .iter()
        .find(|(path, event)| {
            path == "/disconnect"
                && event["requestContext"]["connectionId"] == connection_id.as_str()
        })
        .map(|(_, event)| event.clone())
        .expect("$disconnect ran for the connection the console closed");
    assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1000);
}

/// A request to the console's API, with optional extra headers: its
/// status and (the start of) its body.
async fn request(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (status, _, mut text) = send(built(method, url, headers), body.to_string().into()).await;
    text.truncate(2000);
    (status, text)
}

fn built(method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap()
}

#[tokio::test]
async fn beyond_loopback_the_console_refuses_requests_without_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, config) = console_app(dir.path()).await;
    let serve = Serve::start(
        &config,
        &["--admin", "0.0.0.0:0", "--admin-token", "console-secret"],
    );
    let console = console_url(&serve).replace("0.0.0.0", "127.0.0.1");
    let get = reqwest::Method::GET;
    for path in [
        "/",
        "/console.js",
        "/api/overview",
        "/api/stream",
        "/api/events",
    ] {
        let (status, _) = request(get.clone(), &format!("{console}{path}"), &[], "").await;
        assert_eq!(status, 401, "{path} without the token");
        let (status, _) = request(
            get.clone(),
            &format!("{console}{path}"),
            &[("cookie", "wsgate_admin_token=wrong")],
            "",
        )
        .await;
        assert_eq!(status, 401, "{path} with a wrong token");
    }
    let (status, _) = request(get.clone(), &format!("{console}/?token=wrong"), &[], "").await;
    assert_eq!(status, 401);

    // The token in the address once: a cookie carries it from then on.
    let (status, headers, _) = send(
        built(
            get.clone(),
            &format!("{console}/?token=console-secret"),
            &[],
        ),
        Default::default(),
    )
    .await;
    assert_eq!(status, 303);
    let cookie = headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let (status, page) = request(
        get.clone(),
        &format!("{console}/"),
        &[("cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("wsgate console"), "{page}");
    let (status, overview) = request(
        get.clone(),
        &format!("{console}/api/overview"),
        &[("authorization", "Bearer console-secret")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let overview: Value = serde_json::from_str(&overview).unwrap();
    assert_eq!(overview["apis"][0]["name"], "Console");
    assert_eq!(overview["apis"][0]["url"], serve.url.as_str());
}

#[tokio::test]
async fn the_console_guards_against_other_sites_and_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (mut backend, config) = console_app(dir.path()).await;
    let serve = Serve::start(&config, &["--admin", "127.0.0.1:0"]);
    let console = console_url(&serve);
    let mut client = connect(&serve.url).await;
    let id = backend.event_for("$connect").await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    // As the page does: ids have `/`, `+` and `=`.
    let encoded = percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC);
    let send_url = format!("{console}/api/connections/{encoded}");

    // A name rebound to 127.0.0.1 by another site's DNS gets nothing.
    let (status, _) = request(
        reqwest::Method::GET,
        &format!("{console}/api/connections"),
        &[("host", "attacker.example")],
        "",
    )
    .await;
    assert_eq!(status, 403);
    // A change without the console's header (a cross-site form) is refused
    // and sends nothing.
    let (status, why) = request(reqwest::Method::POST, &send_url, &[], "forged").await;
    assert_eq!(status, 403, "{why}");
    assert_silent(&mut client, std::time::Duration::from_millis(300)).await;

    // Never through the API's port.
    let api_origin = serve.url.replace("ws://", "http://");
    let api_origin = api_origin.split('/').take(3).collect::<Vec<_>>().join("/");
    for path in ["/", "/api/overview", "/console.js"] {
        let (status, body) = request(
            reqwest::Method::GET,
            &format!("{api_origin}{path}"),
            &[],
            "",
        )
        .await;
        assert!(
            status != 200 && !body.contains("wsgate console") && !body.contains("\"apis\""),
            "{path} on the API's port: {status} {body}"
        );
    }

    let change = [("x-wsgate-console", "1")];
    let (status, _) = request(reqwest::Method::POST, &send_url, &change, "from the API").await;
    assert_eq!(status, 200);
    assert_eq!(next_text(&mut client).await, "from the API");
    // The management API's limits and answers.
    let (status, _) = request(
        reqwest::Method::POST,
        &send_url,
        &change,
        &"x".repeat(128 * 1024 + 1),
    )
    .await;
    assert_eq!(status, 413);
    let (status, _) = request(
        reqwest::Method::POST,
        &format!("{console}/api/connections/AAAAAAAAAAAAAAA="),
        &change,
        "to nobody",
    )
    .await;
    assert_eq!(status, 410);
    for path in [
        "/api/events/not-a-number",
        "/api/nothing",
        "/api/events/999999",
    ] {
        let (status, _) = request(reqwest::Method::GET, &format!("{console}{path}"), &[], "").await;
        assert!(status == 400 || status == 404, "{path}: {status}");
    }
    let (status, _) = request(reqwest::Method::DELETE, &send_url, &change, "").await;
    assert_eq!(status, 200);
    assert_eq!(next_close(&mut client).await.0, 1000);
    let (status, _) = request(reqwest::Method::DELETE, &send_url, &change, "").await;
    assert_eq!(
        status, 410,
        "a second DeleteConnection is Gone, as on API Gateway"
    );
}

/// The console's files stay small: under 300 KB gzipped all together.
#[test]
fn the_console_is_small() {
    let mut total = 0;
    for entry in std::fs::read_dir(root().join("console")).unwrap() {
        let path = entry.unwrap().path();
        let out = std::process::Command::new("gzip")
            .args(["-9", "-c"])
            .arg(&path)
            .output()
            .expect("gzip");
        total += out.stdout.len();
    }
    assert!(total > 1000 && total < 300 * 1024, "{total} bytes gzipped");
}

/// `--no-console`: the admin listener serves metrics and health only, and
/// nothing is recorded for a console.
#[tokio::test]
async fn no_console_leaves_metrics_and_health_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, config) = console_app(dir.path()).await;
    let serve = Serve::start(&config, &["--admin", "127.0.0.1:0", "--no-console"]);
    assert!(
        !serve
            .printed
            .iter()
            .any(|l| l.trim().starts_with("console:")),
        "{:?}",
        serve.printed
    );
    let admin = serve
        .printed_http("admin")
        .expect("serve prints its admin address");
    for (path, expected) in [
        ("/", 404),
        ("/api/overview", 404),
        ("/metrics", 200),
        ("/health", 200),
    ] {
        let (status, _) = request(reqwest::Method::GET, &format!("{admin}{path}"), &[], "").await;
        assert_eq!(status, expected, "{path}");
        // A name another site's DNS rebound to 127.0.0.1 reads nothing.
        let (status, _) = request(
            reqwest::Method::GET,
            &format!("{admin}{path}"),
            &[("host", "attacker.example")],
            "",
        )
        .await;
        assert_eq!(status, 403, "{path} for a rebound name");
    }
}

/// In a cluster each node's console lists the live nodes and its own
/// connections, and sends to or disconnects a connection on any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_nodes_console_lists_the_nodes_and_reaches_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let nats = common::nats::Nats::start(&dir.path().join("nats"));
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let (mut backend, config) = console_app(&app).await;
    let node = |name: &str| {
        Serve::start(
            &config,
            &[
                "--cluster",
                &nats.url(),
                "--node",
                name,
                "--admin",
                "127.0.0.1:0",
            ],
        )
    };
    let (a, b) = (node("a"), node("b"));
    let console_a = console_url(&a);
    let get = |url: String| async move {
        let (status, body) = request(reqwest::Method::GET, &url, &[], "").await;
        assert_eq!(status, 200, "{url}: {body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };

    // Both nodes, by slot, once both leases are listed.
    let mut names = Vec::new();
    for _ in 0..50 {
        let overview = get(format!("{console_a}/api/overview")).await;
        assert_eq!(overview["apis"][0]["node"]["name"], "a");
        names = overview["apis"][0]["node"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        if names.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    names.sort();
    assert_eq!(names, ["a", "b"]);

    // A connection on b: listed by b's console, not a's; reached from a's.
    let mut client = connect(&b.url).await;
    let id = backend.event_for("$connect").await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = |list: &Value| {
        list["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["connectionId"] == id.as_str())
    };
    assert!(listed(
        &get(format!("{}/api/connections", console_url(&b))).await
    ));
    assert!(!listed(&get(format!("{console_a}/api/connections")).await));
    let encoded = percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC);
    let url = format!("{console_a}/api/connections/{encoded}");
    let change = [("x-wsgate-console", "1")];
    let (status, body) = request(reqwest::Method::POST, &url, &change, "from node a").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_text(&mut client).await, "from node a");
    let (status, body) = request(reqwest::Method::DELETE, &url, &change, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_close(&mut client).await.0, 1000);
}
