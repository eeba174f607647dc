//! Real SST apps, run as their users run them (`wsgate serve` in the app's
//! folder, its own sst.config.ts): the chat-rooms example end to end, with
//! Python `websockets` and boto3 from outside and the AWS SDK v3 and the
//! `sst` package inside its handlers.

mod common;

use common::serve::Serve;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    repo().join(".venv/bin/python")
}

/// A copy of an example app in a folder of its own (its installed
/// packages linked in), so the test's state stays out of the repository.
fn copy_app(example: &str) -> tempfile::TempDir {
    let source = repo().join("examples").join(example);
    assert!(
        source.join("node_modules/sst").is_dir(),
        "run scripts/setup: examples/{example} needs `npm ci`"
    );
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&source, dir.path());
    std::os::unix::fs::symlink(source.join("node_modules"), dir.path().join("node_modules"))
        .unwrap();
    dir
}

fn wsgate(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A value `serve` printed, e.g. `dynamodb:`.
fn printed(serve: &Serve, label: &str) -> String {
    serve
        .printed
        .iter()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("serve printed no {label}: {:?}", serve.printed))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn chat_rooms_runs_end_to_end() {
    let dir = copy_app("sst-chat-rooms");
    // The linked secret has no value yet: start fails naming it and the
    // command that sets it.
    let failed = wsgate(dir.path(), &["validate", "--stage", "test"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("AdminToken") && stderr.contains("wsgate secret set AdminToken"),
        "{stderr}"
    );
    let set = wsgate(
        dir.path(),
        &["secret", "set", "AdminToken", "s3cret", "--stage", "test"],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );

    let config = dir.path().join("sst.config.ts");
    let serve = Serve::start(&config, &["--stage", "test"]);
    assert!(serve.url.starts_with("wss://127.0.0.1:"), "{}", serve.url);
    let printed_lines = serve.printed.join("\n");
    assert!(
        printed_lines.contains("not run locally:    sst.aws.StaticSite Web"),
        "{printed_lines}"
    );
    assert!(
        printed_lines.contains("output table: \"chat-rooms-test-RoomsTable\""),
        "{printed_lines}"
    );
    let ca = dir.path().join(".wsgate/ca/ca.pem");
    let key = serve.key.clone().unwrap();
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(python())
            .arg(repo().join("tests/sst/chat_rooms.py"))
            .args([&serve.url, &serve.management_endpoint])
            .arg(&ca)
            .args([&printed(&serve, "dynamodb:"), "chat-rooms-test-RoomsTable"])
            .env("AWS_ACCESS_KEY_ID", &key.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &key.secret_access_key)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_SESSION_TOKEN")
            .output(),
    )
    .await
    .expect("the chat-rooms peer finished")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("chat-rooms: all passed"), "{stdout}");

    // A web page cannot use the local DynamoDB: a cross-site Scan, or one
    // with a made-up signature, is refused, and nothing allows its origin.
    let scan = |origin: Option<&str>| {
        let mut call = reqwest::Client::new()
            .post(printed(&serve, "dynamodb:"))
            .header("x-amz-target", "DynamoDB_20120810.Scan")
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAFAKEFAKEFAKE0000/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            )
            .header("x-amz-date", "20260101T000000Z")
            .body(r#"{"TableName":"chat-rooms-test-RoomsTable"}"#);
        if let Some(origin) = origin {
            call = call.header("origin", origin);
        }
        call.send()
    };
    for origin in [Some("https://evil.example"), None] {
        let reply = scan(origin).await.unwrap();
        assert_eq!(reply.status(), 403, "{origin:?}");
        assert!(reply.headers().get("access-control-allow-origin").is_none());
        assert!(!reply.text().await.unwrap().contains("Items"));
    }
    drop(serve);

    // The table persists across restarts; --reset clears it.
    // With the run's key, as the local DynamoDB admits signed calls only.
    let count = |serve: &Serve| {
        let endpoint = printed(serve, "dynamodb:");
        let key = serve.key.clone().unwrap();
        let out = Command::new(python())
            .args(["-c", &format!(
                "import boto3; t = boto3.client('dynamodb', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='{}', aws_secret_access_key='{}'); print(len(t.scan(TableName='chat-rooms-test-RoomsTable')['Items']))",
                key.access_key_id, key.secret_access_key
            )])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    };
    let again = Serve::start(&config, &["--stage", "test"]);
    assert!(count(&again) >= 2, "the items were lost across the restart");
    drop(again);
    let reset = Serve::start(&config, &["--stage", "test", "--reset"]);
    assert_eq!(count(&reset), 0);
}

/// A fixture app in a folder of its own, its installed packages linked in.
fn fixture(name: &str) -> tempfile::TempDir {
    let source = repo().join("tests/fixtures/sst").join(name);
    assert!(
        source.join("node_modules/sst").is_dir(),
        "run scripts/setup: tests/fixtures/sst/{name} needs `npm ci`"
    );
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&source, dir.path());
    std::os::unix::fs::symlink(source.join("node_modules"), dir.path().join("node_modules"))
        .unwrap();
    dir
}

#[tokio::test]
async fn sst_globals_components_and_https_management_endpoints() {
    let dir = fixture("kitchen");
    let serve = Serve::start(&dir.path().join("sst.config.ts"), &["--stage", "kit"]);
    let printed_lines = serve.printed.join("\n");
    // Stand-ins are listed once; nothing about them fails.
    for stand_in in [
        "sst.aws.Bucket Uploads",
        "sst.aws.Queue Jobs",
        "sst.x.DevCommand Studio",
        "aws.iam.Role Role",
    ] {
        assert!(
            printed_lines.contains(stand_in),
            "{stand_in}: {printed_lines}"
        );
    }
    assert!(
        printed_lines.contains("permissions for s3:GetObject are accepted, not enforced locally"),
        "{printed_lines}"
    );

    // run()'s outputs, every Output resolved.
    let outputs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".wsgate/outputs.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(outputs["region"], "us-east-1");
    assert_eq!(outputs["account"], "000000000000");
    assert_eq!(outputs["mode"], "fast");
    assert_eq!(outputs["level"], 6);
    assert_eq!(outputs["joined"], format!("url={}", serve.url));
    assert_eq!(outputs["interpolated"], "placeholder-Uploads-name@kit");
    assert_eq!(outputs["dev"], true);
    assert_eq!(outputs["stage"], "kit");
    assert_eq!(outputs["secret"], 6);
    assert_eq!(outputs["Kitchen"]["url"], serve.url);

    // The authorizer guards $connect: no token 401, a bad one 403.
    let plain = serve.url.replacen("wss://", "ws://", 1);
    assert_eq!(try_connect(&plain, &[]).await.err(), Some(401));
    assert_eq!(
        try_connect(&format!("{plain}?token=bad"), &[]).await.err(),
        Some(403)
    );
    let mut client = connect(&format!("{plain}?token=good")).await;
    // A route whose handler was given as a Function's ARN.
    send_text(&mut client, r#"{"type":"byarn","n":1}"#).await;
    assert_eq!(
        next_text(&mut client).await,
        r#"echo:{"type":"byarn","n":1}"#
    );
    // Route selection from transform.api; links, transforms, environment.
    send_text(&mut client, r#"{"type":"env"}"#).await;
    let env: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(env["limits"]["max"], 3);
    assert_eq!(env["limits"]["nested"]["ok"], true);
    assert_eq!(env["limits"]["type"], "sst.sst.Linkable");
    assert_eq!(
        env["app"],
        serde_json::json!({ "name": "kitchen", "stage": "kit" })
    );
    assert_eq!(env["fromGlobalTransform"], "yes");
    assert_eq!(env["routeEnv"], "route");
    assert_eq!(env["memory"], "256");
    assert_eq!(
        env["resources"]["SST_RESOURCE_Existing"],
        r#"{"name":"placeholder-Existing-name","type":"sst.aws.Bucket"}"#
    );
    assert!(env["ca"].as_str().unwrap().ends_with(".wsgate/ca/ca.pem"));

    // Every way real handlers build the management endpoint works, over
    // https with the local CA.
    send_text(&mut client, r#"{"type":"patterns"}"#).await;
    let host = serve
        .url
        .trim_start_matches("wss://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for expected in [
        format!("https://{host}/$default"),
        format!("https://{host}"),
        format!("https://{host}/$default"),
        format!("https://{host}/$default"),
    ] {
        assert_eq!(next_text(&mut client).await, expected);
    }
    // The route a non-awaited import added.
    send_text(&mut client, r#"{"type":"late"}"#).await;
    assert_eq!(next_text(&mut client).await, "late route");

    // A linked sst.aws.Function, invoked with @aws-sdk/client-lambda
    // through the local Lambda API: a result, then a function error.
    send_text(&mut client, r#"{"type":"invoke"}"#).await;
    let results: serde_json::Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
    assert_eq!(results[0]["error"], serde_json::Value::Null);
    assert_eq!(
        results[0]["payload"],
        serde_json::json!({ "doubled": 42, "max": 3 })
    );
    assert_eq!(results[1]["error"], "Unhandled");
    assert_eq!(results[1]["payload"]["errorType"], "RangeError");
    assert_eq!(
        results[1]["payload"]["errorMessage"],
        "n must not be negative"
    );

    // The local Lambda API runs functions for signed calls only: a web
    // page's cross-site POST, or any unsigned call, runs nothing.
    let lambda = printed(&serve, "lambda:");
    let invocations = format!("{lambda}/2015-03-31/functions/kitchen-kit-Worker/invocations");
    let client = reqwest::Client::new();
    for origin in [Some("https://evil.example"), None] {
        let mut call = client
            .post(&invocations)
            .header("content-type", "text/plain")
            .body(r#"{"n":1}"#);
        if let Some(origin) = origin {
            call = call.header("origin", origin);
        }
        let reply = call.send().await.unwrap();
        assert_eq!(reply.status(), 403, "{origin:?}");
        let kind = reply.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            kind,
            if origin.is_some() {
                "AccessDeniedException"
            } else {
                "MissingAuthenticationTokenException"
            }
        );
    }
}

const APP: &str = SST_APP;

#[test]
fn a_config_that_throws_names_the_app_s_own_file_and_line() {
    let stderr = validate_failure(
        &[
            ("sst.config.ts", APP),
            (
                "infra/api.ts",
                "const domain: string | undefined = process.env.REQUIRED_DOMAIN;\nif (!domain) {\n  throw new Error(\"REQUIRED_DOMAIN is not set\");\n}\n",
            ),
        ],
        &[],
    );
    assert!(stderr.contains("REQUIRED_DOMAIN is not set"), "{stderr}");
    assert!(stderr.contains("infra/api.ts:3:9"), "{stderr}");
}

#[test]
fn what_wsgate_does_not_know_is_refused_with_its_line() {
    let stderr = validate_failure(
        &[
            ("sst.config.ts", APP),
            ("infra/api.ts", "\n\nnew sst.aws.Dynamoo(\"Typo\", {});\n"),
        ],
        &[],
    );
    assert!(
        stderr.contains("not supported by wsgate: sst.aws.Dynamoo"),
        "{stderr}"
    );
    assert!(stderr.contains("infra/api.ts:3"), "{stderr}");

    let stderr = validate_failure(
        &[
            ("sst.config.ts", APP),
            (
                "infra/api.ts",
                "const api = new sst.aws.ApiGatewayWebSocket(\"Api\");\napi.addAuthorizer(\"Jwt\", { jwt: { issuer: \"x\", audiences: [] } });\n",
            ),
        ],
        &[],
    );
    assert!(
        stderr.contains("not supported by wsgate: JWT authorizers"),
        "{stderr}"
    );
    assert!(stderr.contains("infra/api.ts:2"), "{stderr}");
}

#[test]
fn a_syntax_error_names_its_line_and_evaluation_is_bounded() {
    let stderr = validate_failure(
        &[("sst.config.ts", APP), ("infra/api.ts", "const x = ;\n")],
        &[],
    );
    assert!(stderr.contains("infra/api.ts:1"), "{stderr}");

    let started = std::time::Instant::now();
    let stderr = validate_failure(
        &[
            ("sst.config.ts", APP),
            (
                "infra/api.ts",
                "await new Promise(() => setInterval(() => {}, 1000));\n",
            ),
        ],
        &[("WSGATE_SST_TIMEOUT", "2")],
    );
    assert!(stderr.contains("took longer than 2 s"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn hybrid_mode_uses_the_deployed_table_with_the_user_s_credentials() {
    use std::collections::BTreeMap;
    use wsgate::services::dynamodb::{Client, DynamoDb, create_table_request};
    use wsgate::sst::definition::{IndexDefinition, TableDefinition};
    // "AWS": an emulator of its own, holding the table `sst deploy` made.
    let aws_data = tempfile::tempdir().unwrap();
    let aws = DynamoDb::start(aws_data.path(), false).await.unwrap();
    let deployed = "chat-rooms-test-RoomsTable-kdsjf8e";
    let index = |hash: &str, range: Option<&str>| IndexDefinition {
        hash_key: Some(hash.into()),
        range_key: range.map(str::to_string),
        projection: None,
    };
    let table = TableDefinition {
        name: "Rooms".into(),
        table_name: deployed.into(),
        fields: BTreeMap::from([
            ("pk".into(), "string".into()),
            ("sk".into(), "string".into()),
            ("connectionId".into(), "string".into()),
        ]),
        primary_index: index("pk", Some("sk")),
        global_indexes: BTreeMap::from([(
            "ByConnection".into(),
            index("connectionId", Some("pk")),
        )]),
        local_indexes: BTreeMap::new(),
        ttl: None,
    };
    let client = Client::new(&aws.emulator_endpoint).unwrap();
    client
        .call("CreateTable", create_table_request(&table).unwrap())
        .await
        .unwrap();

    let dir = copy_app("sst-chat-rooms");
    let config = dir.path().join("sst.config.ts");
    let serve = Serve::start_with(
        &config,
        &["--stage", "test", "--aws"],
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", aws.emulator_endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "AKIAUSEROWNKEY000001"),
            ("AWS_SECRET_ACCESS_KEY", "the-user-s-own-secret"),
            ("AWS_REGION", "eu-west-1"),
            ("SST_SECRET_AdminToken", "from-the-environment"),
        ],
    );
    assert!(
        !serve.printed.iter().any(|l| l.contains("dynamodb:")),
        "no local table in hybrid mode"
    );
    let mut alice = connect(&format!(
        "{}?name=alice",
        serve.url.replacen("wss://", "ws://", 1)
    ))
    .await;
    send_text(
        &mut alice,
        r#"{"action":"join","room":"hybrid","name":"alice"}"#,
    )
    .await;
    let joined: serde_json::Value = serde_json::from_str(&next_text(&mut alice).await).unwrap();
    assert_eq!(joined["members"], serde_json::json!(["alice"]));
    // The member is in the deployed table.
    let items = client
        .call("Scan", serde_json::json!({ "TableName": deployed }))
        .await
        .unwrap();
    assert!(
        items["Items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"]["S"] == "alice"),
        "{items}"
    );
    drop(serve);
    aws.stop().await;
}

#[test]
fn an_sst_domain_is_served_with_a_certificate_from_the_local_ca() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sst.config.ts"),
        "export default $config({ app() { return { name: \"dom\", home: \"aws\" }; }, async run() { new sst.aws.ApiGatewayWebSocket(\"Api\", { domain: { name: \"ws.local.test\", path: \"v1\" } }); } });\n",
    )
    .unwrap();
    let output = wsgate(dir.path(), &["validate", "--stage", "dom"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cert = dir.path().join(".wsgate/ca/domain-ws.local.test.pem");
    assert!(
        std::fs::read_to_string(cert)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
}

/// A config that prints huge lines and never ends: what wsgate keeps of
/// its output is bounded, and the time limit holds while it prints.
#[test]
fn a_config_flooding_its_output_is_bounded_in_memory_and_time() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sst.config.ts"), APP).unwrap();
    std::fs::create_dir_all(dir.path().join("infra")).unwrap();
    std::fs::write(
        dir.path().join("infra/api.ts"),
        "const line = \"x\".repeat(8 * 1024 * 1024);\nfor (let i = 0; i < 60; i++) console.log(line);\nawait new Promise(() => setInterval(() => console.log(line), 10));\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["validate", "--stage", "bad"])
        .current_dir(dir.path())
        .env("WSGATE_SST_TIMEOUT", "4")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Its stderr is read as it comes, as a terminal would.
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut text = String::new();
        std::io::BufReader::new(stderr)
            .read_to_string(&mut text)
            .unwrap();
        text
    });
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(hwm) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(hwm);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stderr = reader.join().unwrap();
    assert!(
        stderr.contains("took longer than 4 s"),
        "{}",
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    assert!(stderr.contains("more bytes not shown"));
    assert!(
        stderr.len() < 4 * 1024 * 1024,
        "{} bytes shown",
        stderr.len()
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(peak_kib < 200 * 1024, "wsgate peaked at {peak_kib} KiB");
}

#[test]
fn a_config_that_exits_says_so_with_its_line() {
    let stderr = validate_failure(
        &[
            ("sst.config.ts", APP),
            (
                "infra/api.ts",
                "\nif (!process.env.NOPE) process.exit(0);\n",
            ),
        ],
        &[],
    );
    assert!(
        stderr.contains("the config called process.exit(0) before run() finished"),
        "{stderr}"
    );
    assert!(stderr.contains("infra/api.ts:2"), "{stderr}");
}

#[test]
fn a_runtime_wsgate_cannot_run_names_its_line() {
    let stderr = validate_failure(
        &[
            ("sst.config.ts", APP),
            (
                "infra/api.ts",
                "const api = new sst.aws.ApiGatewayWebSocket(\"Api\");\n\napi.route(\"$default\", { handler: \"main.go\", runtime: \"go\" });\n",
            ),
        ],
        &[],
    );
    assert!(stderr.contains("the go runtime"), "{stderr}");
    assert!(stderr.contains("infra/api.ts:3"), "{stderr}");
}

#[test]
fn every_secret_without_a_value_is_named_at_once() {
    let stderr = validate_failure(
        &[
            ("sst.config.ts", APP),
            (
                "infra/api.ts",
                "const a = new sst.Secret(\"First\");\nconst b = new sst.Secret(\"Second\");\nnew sst.Secret(\"Third\", \"has a placeholder\");\nconst api = new sst.aws.ApiGatewayWebSocket(\"Api\");\napi.route(\"$default\", { handler: \"h.handler\", link: [a, b] });\n",
            ),
        ],
        &[],
    );
    assert!(stderr.contains("wsgate secret set First"), "{stderr}");
    assert!(stderr.contains("no value either: Second"), "{stderr}");
    assert!(!stderr.contains("Third"), "{stderr}");
}
