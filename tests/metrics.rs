//! `wsgate serve --admin`: the Prometheus exposition passes `promtool
//! check metrics`, and its counters match the traffic the test sent.

mod common;

use common::serve::Serve;
use common::*;
use std::time::Duration;

/// A GET on the admin listener (with a bearer token when given).
async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

/// The value of the one sample whose name and labels are `series`
/// (`name{a="x",b="y"}`, labels in the exposition's order).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus; scripts/setup installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn admin_url(serve: &Serve) -> String {
    serve
        .printed_http("admin")
        .expect("serve prints its admin address")
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_the_traffic_sent() {
    let mut backend = Backend::start(|path, _| match path {
        "/connect" => Reply::ok(),
        _ => Reply::json(serde_json::json!({ "statusCode": 200, "body": "ok" })),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/functions");
    std::fs::create_dir_all(dir.path().join("py")).unwrap();
    std::fs::copy(
        fixtures.join("py/handlers.py"),
        dir.path().join("py/handlers.py"),
    )
    .unwrap();
    let config = dir.path().join("wsgate.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"MetricsApi\"\nstage = \"dev\"\n[routes]\n\
             \"$connect\" = {{ url = \"{connect}\" }}\n\
             \"$disconnect\" = {{ url = \"{disconnect}\" }}\n\
             sendMessage = {{ url = \"{send}\" }}\n\
             py = {{ handler = \"py/handlers.echo\", return_response = true }}\n\
             broken = \"py/handlers.fail\"\n",
            connect = backend.url("/connect"),
            disconnect = backend.url("/disconnect"),
            send = backend.url("/send"),
        ),
    )
    .unwrap();
    let serve = Serve::start(&config, &["--admin", "127.0.0.1:0"]);
    let admin = admin_url(&serve);
    let key = serve.key.clone().unwrap();

    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect(&serve.url).await);
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        let event = backend.event_for("$connect").await;
        ids.push(
            event["requestContext"]["connectionId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for i in 0..5 {
        send_text(
            &mut clients[0],
            &format!(r#"{{"action":"sendMessage","n":{i}}}"#),
        )
        .await;
        backend.event_for("sendMessage").await;
    }
    // No route and no $default: API Gateway's error frame, counted under
    // `$none` (client text never becomes a label).
    send_text(&mut clients[1], r#"{"action":"nothing-here"}"#).await;
    assert!(next_text(&mut clients[1]).await.contains("Forbidden"));
    send_text(&mut clients[2], r#"{"action":"py","body":"x"}"#).await;
    assert!(next_text(&mut clients[2]).await.starts_with("py:"));
    send_text(&mut clients[2], r#"{"action":"broken"}"#).await;
    assert!(
        next_text(&mut clients[2])
            .await
            .contains("Internal server error")
    );

    let region = "us-east-1";
    let push = |id: &str| format!("{}/@connections/{id}", serve.management_endpoint);
    for id in &ids[..2] {
        let (status, ..) = management_as(Some((&key, region)), "POST", &push(id), "hi").await;
        assert_eq!(status, 200);
    }
    let gone = push("AAAAAAAAAAAAAAA=");
    assert_eq!(
        management_as(Some((&key, region)), "POST", &gone, "x")
            .await
            .0,
        410
    );
    assert_eq!(
        management_as(Some((&key, region)), "GET", &push(&ids[2]), "")
            .await
            .0,
        200
    );
    assert_eq!(
        management_as(None, "POST", &push(&ids[0]), "unsigned")
            .await
            .0,
        403
    );

    // One client leaves: its $disconnect runs and it is no longer open.
    drop(clients.remove(0));
    backend.event_for("$disconnect").await;
    // The access log line (and so the count) follows the handler's reply.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (status, text) = get(&format!("{admin}/metrics"), None).await;
    assert_eq!(status, 200);
    promtool_check(&text);
    // Prometheus asks for OpenMetrics, and gets it.
    let openmetrics = reqwest::Client::new()
        .get(format!("{admin}/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(
        openmetrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let openmetrics = openmetrics.text().await.unwrap();
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert!(
        openmetrics.contains("# TYPE wsgate_events counter"),
        "{openmetrics}"
    );
    let api = r#"api="MetricsApi""#;
    let expect = |series: String, value: f64| {
        assert_eq!(sample(&text, &series), Some(value), "{series}\n{text}");
    };
    expect(format!("wsgate_connections_open{{{api}}}"), 2.0);
    expect(
        format!(
            r#"wsgate_events_total{{{api},route="$connect",event_type="CONNECT",status="200"}}"#
        ),
        3.0,
    );
    expect(
        format!(
            r#"wsgate_events_total{{{api},route="sendMessage",event_type="MESSAGE",status="200"}}"#
        ),
        5.0,
    );
    expect(
        format!(r#"wsgate_events_total{{{api},route="$none",event_type="MESSAGE",status="403"}}"#),
        1.0,
    );
    expect(
        format!(
            r#"wsgate_events_total{{{api},route="$disconnect",event_type="DISCONNECT",status="200"}}"#
        ),
        1.0,
    );
    expect(
        format!(r#"wsgate_integration_latency_seconds_count{{{api},route="sendMessage"}}"#),
        5.0,
    );
    expect(
        format!(
            r#"wsgate_management_calls_total{{{api},operation="PostToConnection",status="200"}}"#
        ),
        2.0,
    );
    expect(
        format!(
            r#"wsgate_management_calls_total{{{api},operation="PostToConnection",status="410"}}"#
        ),
        1.0,
    );
    expect(
        format!(
            r#"wsgate_management_calls_total{{{api},operation="PostToConnection",status="403"}}"#
        ),
        1.0,
    );
    expect(
        format!(r#"wsgate_management_calls_total{{{api},operation="GetConnection",status="200"}}"#),
        1.0,
    );
    // Each function started once (its start-up check) and stays warm.
    expect(
        r#"wsgate_function_cold_starts_total{function="MetricsApi-py"}"#.into(),
        1.0,
    );
    expect(
        r#"wsgate_function_instances{function="MetricsApi-py",state="idle"}"#.into(),
        1.0,
    );
    expect(
        r#"wsgate_function_failures_total{function="MetricsApi-broken",reason="handler_error"}"#
            .into(),
        1.0,
    );
    // The one py invocation, timed at each of the gateway's steps. Its
    // warm instance had asked for an event before it was queued: no time
    // awaiting the runtime.
    let waited = r#"{function="MetricsApi-py",stage="awaiting_runtime"}"#;
    expect(format!("wsgate_function_stage_seconds_count{waited}"), 1.0);
    let sum = sample(&text, &format!("wsgate_function_stage_seconds_sum{waited}"));
    assert_eq!(sum, Some(0.0), "awaiting_runtime");
    for stage in ["dispatch", "instance", "return"] {
        let series = format!(r#"{{function="MetricsApi-py",stage="{stage}"}}"#);
        expect(format!("wsgate_function_stage_seconds_count{series}"), 1.0);
        let sum = sample(&text, &format!("wsgate_function_stage_seconds_sum{series}"));
        assert!(sum.is_some_and(|s| s > 0.0 && s < 30.0), "{stage}: {sum:?}");
    }
    expect(format!("wsgate_access_log_dropped_total{{{api}}}"), 0.0);
    assert!(!text.contains(&ids[1]), "no connection id is a label");
    assert!(!text.contains("nothing-here"), "no client text is a label");

    assert_eq!(get(&format!("{admin}/health"), None).await.0, 200);
    assert_eq!(get(&format!("{admin}/ready"), None).await.0, 200);
    assert_eq!(get(&format!("{admin}/nope"), None).await.0, 404);
    // The API's own port serves none of it.
    let api_port = serve.management_endpoint.trim_end_matches("/dev");
    assert_ne!(get(&format!("{api_port}/metrics"), None).await.0, 200);
}

/// Bound beyond loopback, the admin listener will not start without a
/// token, and refuses requests that do not carry it.
#[tokio::test]
async fn the_admin_listener_beyond_loopback_needs_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wsgate.toml");
    std::fs::write(
        &config,
        "name = \"AdminApi\"\n[routes]\necho = { url = \"http://127.0.0.1:9/\" }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"])
        .arg("--config")
        .arg(&config)
        .env_remove("WSGATE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--admin-token"), "{stderr}");

    // 0.0.0.0 also answers on loopback, which is where the test knocks.
    let serve = Serve::start_with(
        &config,
        &["--admin", "0.0.0.0:0"],
        &[("WSGATE_ADMIN_TOKEN", "s3cret-token")],
    );
    let admin = admin_url(&serve).replace("0.0.0.0", "127.0.0.1");
    let (status, _) = get(&format!("{admin}/metrics"), None).await;
    assert_eq!(status, 401);
    assert_eq!(get(&format!("{admin}/health"), Some("wrong")).await.0, 401);
    let (status, text) = get(&format!("{admin}/metrics"), Some("s3cret-token")).await;
    assert_eq!(status, 200);
    assert!(text.contains("wsgate_connections_open"), "{text}");
}

/// `/ready` on the admin listener fails while the handlers pass their
/// start-up check (here a Python module that takes a second to import),
/// `/health` answers throughout; on the API's port, `/ready` never shadows
/// a stage of that name.
#[tokio::test]
async fn ready_waits_for_the_start_up_check_and_never_shadows_a_stage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slow.py"),
        "import time\ntime.sleep(1.5)\n\ndef handler(event, context):\n    return {\"statusCode\": 200}\n",
    )
    .unwrap();
    let config = dir.path().join("wsgate.toml");
    std::fs::write(
        &config,
        "name = \"Slow\"\nstage = \"ready\"\n[routes]\n\"$default\" = \"slow.handler\"\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = format!("http://127.0.0.1:{port}");
    let admin_addr = format!("127.0.0.1:{port}");
    let starting = std::thread::spawn({
        let config = config.clone();
        move || Serve::start(&config, &["--admin", &admin_addr])
    });
    // While it starts: alive, not ready.
    let mut seen_starting = false;
    for _ in 0..200 {
        if let Ok(reply) = reqwest::get(format!("{admin}/ready")).await {
            let status = reply.status().as_u16();
            if status == 503 {
                assert_eq!(reply.text().await.unwrap(), "starting\n");
                assert_eq!(get(&format!("{admin}/health"), None).await.0, 200);
                seen_starting = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen_starting, "/ready was never 503 while starting");
    let serve = starting.join().unwrap();
    assert_eq!(
        get(&format!("{admin}/ready"), None).await,
        (200, "ready\n".into())
    );
    // The stage is named `ready`: GET /ready is the stage's endpoint (426,
    // as API Gateway answers a plain GET there); /.wsgate/ready is health.
    let api = serve
        .management_endpoint
        .trim_end_matches("/ready")
        .to_string();
    assert_eq!(get(&format!("{api}/ready"), None).await.0, 426);
    assert_eq!(get(&format!("{api}/.wsgate/ready"), None).await.0, 200);
    assert_eq!(get(&format!("{api}/health"), None).await.0, 200);
}
