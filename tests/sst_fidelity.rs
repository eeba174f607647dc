//! SST's rules as SST's own source defines them, not as one app uses them:
//! names, `permissions`, the config's `require`, stand-ins' statics, the
//! handler build, the SDK Lambda provides, pending work after `run()`,
//! labels and defaults. One fixture app (`tests/fixtures/sst/fidelity`)
//! holds each rule; see docs/sst.md for the source of each.

mod common;

use common::serve::Serve;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fidelity app in a folder of its own; its packages are the kitchen
/// fixture's (`sst`, the management API client; not the DynamoDB client,
/// which Lambda's runtime provides).
fn fidelity_app() -> tempfile::TempDir {
    let packages = repo().join("tests/fixtures/sst/kitchen/node_modules");
    assert!(
        packages.join("sst").is_dir(),
        "run scripts/setup: tests/fixtures/sst/kitchen needs `npm ci`"
    );
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("tests/fixtures/sst/fidelity"), dir.path());
    std::os::unix::fs::symlink(packages, dir.path().join("node_modules")).unwrap();
    dir
}

fn wsgate(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A `python3` with no boto3 (a new virtual environment), first on PATH.
fn path_without_boto3(dir: &Path) -> String {
    let venv = dir.join("bare-python");
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(status.success());
    let bare = Command::new(venv.join("bin/python3"))
        .args(["-c", "import boto3"])
        .output()
        .unwrap();
    assert!(!bare.status.success(), "the bare python has no boto3");
    format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap()
    )
}

async fn json(client: &mut Client) -> Value {
    let text = next_text(client).await;
    serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text))
}

#[tokio::test]
async fn sst_rules_from_sst_s_source() {
    let dir = fidelity_app();
    let config = dir.path().join("sst.config.ts");

    // A secret name with underscores is set as `sst secret set` takes it.
    let set = wsgate(
        dir.path(),
        &[
            "secret",
            "set",
            "JWT_ACCESS_SECRET",
            "s3cr3t",
            "--stage",
            "fid",
        ],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let refused = wsgate(dir.path(), &["secret", "set", "jwt-secret", "x"]);
    assert!(!refused.status.success());
    // The plaintext secrets are in a folder git ignores.
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".wsgate/.gitignore")).unwrap(),
        "*\n"
    );

    let path = path_without_boto3(dir.path());
    let log = dir.path().join("serve.log");
    let serve = Serve::start_with_log(&config, &["--stage", "fid"], &[("PATH", &path)], &log);
    let printed = serve.printed.join("\n");

    // Labels: the declared runtime, stand-ins by the name the app uses.
    assert!(printed.contains("(nodejs22.x,"), "{printed}");
    assert!(printed.contains("(python3.12,"), "{printed}");
    assert!(printed.contains("sst.x.DevCommand Studio"), "{printed}");
    assert!(printed.contains("sst.aws.StepFunctions Flow"), "{printed}");
    // The `sst` the app has (3.19.3) defaults retention to 1 month.
    assert!(
        printed.contains("pointing-poker-ws-api/$default (kept 30 days)"),
        "{printed}"
    );
    let outputs: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".wsgate/outputs.json")).unwrap(),
    )
    .unwrap();
    // `require`, `__dirname`, `__filename`: as SST's bundle of the config
    // defines them, in `.sst/platform`.
    assert_eq!(outputs["here"]["dirname"], ".sst/platform");
    assert_eq!(outputs["here"]["filename"], "sst.config.N.mjs");
    assert_eq!(
        outputs["client"],
        "[stand-in sst.aws.CognitoUserPool Users.addClient().id]"
    );

    // The API named with dashes; permissions from a transform grant
    // ManageConnections; the secret; class names kept; the DynamoDB
    // client the runtime provides; the declared runtime.
    let url = |api: &str| {
        outputs[api]["url"]
            .as_str()
            .unwrap()
            .replacen("wss://", "ws://", 1)
    };
    let mut client = connect(&url("pointing-poker-ws-api")).await;
    send_text(&mut client, r#"{"action":"hi"}"#).await;
    let hello = json(&mut client).await;
    assert_eq!(hello["secret"], "s3cr3t", "{hello}");
    assert_eq!(hello["names"], serde_json::json!(["Model", "Model"]));
    assert_eq!(hello["dynamodb"], "function");
    assert_eq!(hello["execution"], "AWS_Lambda_nodejs22.x");
    // `Resource["pointing-poker-ws-api"]`: the link key is the name.
    send_text(&mut client, r#"{"action":"resource"}"#).await;
    assert_eq!(json(&mut client).await["via"], "Resource");
    // boto3, provided to a Python handler whose python3 has none.
    send_text(&mut client, r#"{"action":"python"}"#).await;
    let python = json(&mut client).await;
    assert_eq!(
        python["boto3"],
        wsgate::services::runtime_sdk::BOTO3_VERSION
    );
    assert_eq!(python["execution"], "AWS_Lambda_python3.12");

    // The route's own grant with the API's execution ARN works; no grant,
    // or an explicit deny, is refused with 403.
    let mut plain = connect(&url("Plain")).await;
    send_text(&mut plain, r#"{"action":"granted"}"#).await;
    assert_eq!(json(&mut plain).await, "granted");
    for route in ["ungranted", "denied"] {
        send_text(&mut plain, &format!(r#"{{"action":"{route}"}}"#)).await;
        let failed = json(&mut plain).await;
        assert_eq!(failed["message"], "Internal server error", "{route}");
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    // One local CA for all four APIs (it permits their names from the
    // start), never made anew while they start.
    assert_eq!(
        logged
            .matches("created a local certificate authority")
            .count(),
        1,
        "{logged}"
    );
    assert!(!logged.contains("is made anew"), "{logged}");
    for route in ["ungranted", "denied"] {
        assert!(
            logged.lines().any(
                |l| l.contains(&format!("integration failed route={route} "))
                    && l.contains("refused: ForbiddenException 403")
            ),
            "{route}: {logged}"
        );
    }

    // The names the API has on AWS reach wsgate from inside handlers:
    // the custom domain (literal, or from `Resource`, with its port) and
    // the execute-api name built from the event, from Node.js and Python.
    let dom = &outputs["Dom"];
    let management = dom["managementEndpoint"].as_str().unwrap();
    let mut client = connect(&management.replacen("https://", "ws://", 1)).await;
    send_text(&mut client, r#"{"action":"x"}"#).await;
    let mut posted = Vec::new();
    for _ in 0..3 {
        posted.push(next_text(&mut client).await);
    }
    let execute_api = posted[2].clone();
    assert_eq!(
        posted[..2],
        [
            "\"https://ws-dev.example.com/live\"",
            "\"https://ws-dev.example.com/live/\""
        ]
    );
    assert!(
        execute_api.starts_with("\"https://")
            && execute_api.ends_with(".execute-api.us-east-1.amazonaws.com/$default\""),
        "{execute_api}"
    );
    send_text(&mut client, r#"{"action":"python"}"#).await;
    assert_eq!(format!("\"{}\"", next_text(&mut client).await), execute_api);

    // The API a module added after an await of its own, imported without
    // `await` by run().
    let mut late = connect(&url("Late")).await;
    send_text(&mut late, r#"{"action":"x"}"#).await;
    assert_eq!(json(&mut late).await, "late");
}

const APP: &str = SST_APP;

#[test]
fn an_error_inside_a_component_names_the_app_s_line() {
    // The domain is checked after an await, inside wsgate's own code: the
    // error still names the line that made the component.
    let stderr = validate_failure(
        &[
            ("sst.config.ts", APP),
            (
                "infra/api.ts",
                "\n\nnew sst.aws.ApiGatewayWebSocket(\"Api\", { domain: { path: \"v1\" } });\n",
            ),
        ],
        &[],
    );
    assert!(
        stderr.contains("Either domain \"name\" or \"nameId\" is required"),
        "{stderr}"
    );
    assert!(stderr.contains("infra/api.ts:3"), "{stderr}");
}

#[test]
fn a_name_sst_does_not_export_is_still_refused() {
    let stderr = validate_failure(
        &[
            ("sst.config.ts", APP),
            (
                "infra/api.ts",
                "new sst.aws.ApiGatewayWebSocket(\"Api\");\nsst.aws.StepFunctions.lambdaInvokee({});\n",
            ),
        ],
        &[],
    );
    assert!(stderr.contains("infra/api.ts:2"), "{stderr}");
}

#[test]
fn retention_defaults_to_forever_before_sst_3_2_49() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sst.config.ts"),
        "export default $config({ app() { return { name: \"old\", home: \"aws\" }; }, async run() { new sst.aws.ApiGatewayWebSocket(\"Api\"); } });\n",
    )
    .unwrap();
    let sst = dir.path().join("node_modules/sst");
    std::fs::create_dir_all(&sst).unwrap();
    std::fs::write(
        sst.join("package.json"),
        r#"{"name":"sst","version":"3.2.48"}"#,
    )
    .unwrap();
    let serve = Serve::start(&dir.path().join("sst.config.ts"), &["--stage", "old"]);
    assert!(
        serve
            .printed
            .iter()
            .any(|l| l.contains("Api/$default (kept forever)")),
        "{:?}",
        serve.printed
    );
}

#[test]
fn secret_set_reads_the_value_from_standard_input() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sst.config.ts"), APP).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["secret", "set", "API_TOKEN", "--stage", "s"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // As `sst secret set` reads a pipe: all of it, as it is.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let listed = wsgate(dir.path(), &["secret", "list", "--values", "--stage", "s"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "API_TOKEN=from stdin\n\n"
    );
}
