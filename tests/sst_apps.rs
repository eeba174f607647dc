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

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if [".wsgate", ".sst", "node_modules"]
            .iter()
            .any(|skip| name == *skip)
        {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
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
    drop(serve);

    // The table persists across restarts; --reset clears it.
    let count = |serve: &Serve| {
        let endpoint = printed(serve, "dynamodb:");
        let out = Command::new(python())
            .args(["-c", &format!(
                "import boto3; t = boto3.client('dynamodb', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='x'); print(len(t.scan(TableName='chat-rooms-test-RoomsTable')['Items']))"
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
