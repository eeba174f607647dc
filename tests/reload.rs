//! Live reload: saving wsgate.toml (or SIGHUP) applies new routes,
//! handlers, keys, throttling and the access log format to a running
//! `wsgate serve`, with its connections open; a bad config is reported
//! with its file:line and the running one stays.

mod common;

use common::serve::Serve;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const KEY_A: &str = "AKIARELOADKEYAAAAAAA";
const KEY_B: &str = "AKIARELOADKEYBBBBBBB";

fn config(backend: &Backend, routes: &str, key: &str, extra: &str) -> String {
    format!(
        "name = \"Reload\"\nstage = \"dev\"\n\
         [[credentials]]\naccess_key_id = \"{key}\"\nsecret_access_key = \"secret-{key}\"\n\
         allow = [{{ action = \"execute-api:ManageConnections\" }}]\n\
         {extra}\n\
         [routes]\n\"$connect\" = {{ url = \"{connect}\" }}\n{routes}",
        connect = backend.url("/connect"),
    )
}

/// Asks on `client` until the reply is `expected` (the reload has landed)
/// or a few seconds pass.
async fn until_reply(client: &mut Client, ask: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        send_text(client, ask).await;
        let reply = next_text(client).await;
        if reply == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {reply:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn key(id: &str) -> wsgate::Credentials {
    wsgate::Credentials {
        access_key_id: id.into(),
        secret_access_key: format!("secret-{id}"),
        session_token: None,
    }
}

fn write(path: &Path, text: &str) {
    // As editors do: a new file renamed over the old one.
    let temporary = path.with_extension("toml.new");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

#[tokio::test]
async fn saving_the_config_applies_it_with_connections_open() {
    let mut backend = Backend::start(|path, event| match path {
        "/connect" => Reply::ok(),
        "/slow" => Reply {
            delay: Duration::from_millis(1500),
            ..Reply::json(serde_json::json!({ "statusCode": 200, "body": "slow-old" }))
        },
        _ => Reply::json(serde_json::json!({
            "statusCode": 200,
            "body": format!("{}:{}", path.trim_start_matches('/'), event["requestContext"]["routeKey"].as_str().unwrap()),
        })),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/functions");
    std::fs::create_dir_all(dir.path().join("py")).unwrap();
    std::fs::copy(
        fixtures.join("py/handlers.py"),
        dir.path().join("py/handlers.py"),
    )
    .unwrap();
    let base = backend.url("");
    let url = |path: &str| format!("{base}{path}");
    let routes_v1 = format!(
        "echo = {{ url = \"{}\", return_response = true }}\n\
         slow = {{ url = \"{}\", return_response = true }}\n\
         py = {{ handler = \"py/handlers.echo\", return_response = true }}\n",
        url("/echo"),
        url("/slow"),
    );
    let file = dir.path().join("wsgate.toml");
    std::fs::write(&file, config(&backend, &routes_v1, KEY_A, "")).unwrap();
    let log = dir.path().join("serve.log");
    let serve = Serve::start_logging_to(&file, &[], &log);
    let mut client = connect(&serve.url).await;
    let id = backend.event_for("$connect").await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let push = format!("{}/@connections/{id}", serve.management_endpoint);

    send_text(&mut client, r#"{"action":"echo"}"#).await;
    assert_eq!(next_text(&mut client).await, "echo:echo");
    send_text(&mut client, r#"{"action":"py","body":"x"}"#).await;
    let first_py = next_text(&mut client).await;
    let pid = |reply: &str| reply.split(':').nth(1).unwrap().to_string();
    assert!(first_py.starts_with("py:"), "{first_py}");
    // In flight across the reload: answered by the route it started on.
    send_text(&mut client, r#"{"action":"slow"}"#).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // v2: echo gone, shout added, slow moved, py's settings changed, key
    // A replaced by key B, a custom access log format.
    let routes_v2 = format!(
        "shout = {{ url = \"{}\", return_response = true }}\n\
         slow = {{ url = \"{}\", return_response = true }}\n\
         py = {{ handler = \"py/handlers.echo\", return_response = true, environment = {{ V = \"2\" }} }}\n",
        url("/shout"),
        url("/slow2"),
    );
    write(
        &file,
        &config(
            &backend,
            &routes_v2,
            KEY_B,
            "[transform.access_log]\nformat = \"$context.routeKey $context.status $context.requestId\"",
        ),
    );
    assert_eq!(next_text(&mut client).await, "slow-old");
    until_reply(&mut client, r#"{"action":"shout"}"#, "shout:shout").await;
    send_text(&mut client, r#"{"action":"slow"}"#).await;
    assert_eq!(next_text(&mut client).await, "slow2:slow");
    // No echo route and no $default now.
    send_text(&mut client, r#"{"action":"echo"}"#).await;
    assert!(next_text(&mut client).await.contains("Forbidden"));
    // The changed function runs in a new instance.
    send_text(&mut client, r#"{"action":"py","body":"x"}"#).await;
    let second_py = next_text(&mut client).await;
    assert_ne!(pid(&first_py), pid(&second_py), "{first_py} / {second_py}");
    // Keys: A no longer signs, B does.
    let region = "us-east-1";
    assert_eq!(
        management_as(Some((&key(KEY_A), region)), "POST", &push, "a")
            .await
            .0,
        403
    );
    assert_eq!(
        management_as(Some((&key(KEY_B), region)), "POST", &push, "b")
            .await
            .0,
        200
    );
    assert_eq!(next_text(&mut client).await, "b");

    // A bad config: reported at its line, and the running one stays.
    write(
        &file,
        &config(&backend, &routes_v2, KEY_B, "").replacen("[routes]", "bogus = 1\n[routes]", 1),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let reported = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if let Some(line) = text
            .lines()
            .find(|l| l.contains("reload:") && l.contains("bogus"))
        {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "no reload error in:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reported.contains("wsgate.toml:"), "{reported}");
    assert!(reported.contains("the running config stays"), "{reported}");
    send_text(&mut client, r#"{"action":"shout"}"#).await;
    assert_eq!(next_text(&mut client).await, "shout:shout");

    // SIGHUP reloads too: back to v1's routes.
    std::fs::write(&file, config(&backend, &routes_v1, KEY_B, "")).unwrap();
    serve.signal("HUP");
    until_reply(&mut client, r#"{"action":"echo"}"#, "echo:echo").await;
    // The same connection throughout.
    assert_eq!(
        management_as(Some((&key(KEY_B), region)), "GET", &push, "")
            .await
            .0,
        200
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("reload: applied"), "{text}");

    // The access log switched format at the reload.
    let day = chrono::Utc::now().format("%Y-%m-%d");
    let stored = std::fs::read_to_string(
        dir.path()
            .join(format!(".wsgate/logs/Reload/dev/{day}.jsonl")),
    )
    .unwrap();
    assert!(
        stored.lines().any(|l| l.starts_with("shout 200 ")),
        "{stored}"
    );
    assert!(stored.lines().next().unwrap().starts_with('{'), "{stored}");
}

/// The key `serve` generates for a config without `[[credentials]]` stops
/// working once a reload configures one; taking every key away again is
/// left for a restart (which would generate a new one), and the configured
/// key keeps working.
#[tokio::test]
async fn configured_keys_replace_the_generated_one() {
    let backend = Backend::start(|_, _| Reply::ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsgate.toml");
    let routes = format!("echo = {{ url = \"{}\" }}\n", backend.url("/echo"));
    let without_keys = |routes: &str| {
        format!(
            "name = \"Reload\"\nstage = \"dev\"\n[routes]\n\"$connect\" = {{ url = \"{}\" }}\n{routes}",
            backend.url("/connect")
        )
    };
    std::fs::write(&file, without_keys(&routes)).unwrap();
    let log = dir.path().join("serve.log");
    let serve = Serve::start_logging_to(&file, &[], &log);
    let generated = serve.key.clone().expect("a generated key");
    let _client = connect(&serve.url).await;
    let gone = format!(
        "{}/@connections/AAAAAAAAAAAAAAA=",
        serve.management_endpoint
    );
    let region = "us-east-1";
    // Signed and allowed: the id is simply gone.
    assert_eq!(
        management_as(Some((&generated, region)), "GET", &gone, "")
            .await
            .0,
        410
    );

    write(&file, &config(&backend, &routes, KEY_A, ""));
    let deadline = Instant::now() + Duration::from_secs(10);
    while management_as(Some((&key(KEY_A), region)), "GET", &gone, "")
        .await
        .0
        != 410
    {
        assert!(Instant::now() < deadline, "key A never accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        management_as(Some((&generated, region)), "GET", &gone, "")
            .await
            .0,
        403
    );

    // Every key removed: named as needing a restart; key A stays.
    write(&file, &without_keys(&routes));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("removing every [[credentials]] key") {
            break;
        }
        assert!(Instant::now() < deadline, "no restart notice in:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        management_as(Some((&key(KEY_A), region)), "GET", &gone, "")
            .await
            .0,
        410
    );
}

/// A config written slowly, in two steps, whose first step is valid TOML
/// without `$connect`'s auth: the auth never lapses, because a reload
/// that lets more in waits for the file to settle.
#[tokio::test]
async fn auth_never_lapses_while_the_config_is_being_written() {
    let backend = Backend::start(|_, _| Reply::ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "name = \"Slow\"\nstage = \"dev\"\n[routes]\n\"$connect\" = {{ url = \"{}\" }}\n",
        backend.url("/connect")
    );
    let whole = format!("{head}[transform.route.args]\nauth = {{ iam = true }}\n");
    let file = dir.path().join("wsgate.toml");
    std::fs::write(&file, &whole).unwrap();
    let serve = Serve::start(&file, &[]);
    let url = serve.url.clone();
    assert_eq!(try_connect(&url, &[]).await.err(), Some(403));

    // The first step (the head alone), then a pause longer than an
    // editor's, then the rest.
    std::fs::write(&file, &head).unwrap();
    let written = Instant::now();
    while written.elapsed() < Duration::from_millis(900) {
        assert_eq!(
            try_connect(&url, &[]).await.err(),
            Some(403),
            "an unsigned upgrade got in {:?} into the write",
            written.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(&file, &whole).unwrap();
    let settled = Instant::now();
    while settled.elapsed() < Duration::from_secs(3) {
        assert_eq!(try_connect(&url, &[]).await.err(), Some(403));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A removal of auth that stays is applied, after it settled.
    std::fs::write(&file, &head).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while try_connect(&url, &[]).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the settled change never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
