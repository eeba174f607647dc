//! Start-up time (spawn to "ready") through each front door, beside a
//! wsgate.toml app of seven Node.js handlers measured the same way in the
//! same run: the SST chat-rooms example (its sst.config.ts evaluated, a
//! local DynamoDB table, a secret, seven functions started once), and the
//! SAM, CDK and Serverless chat examples (their template from AWS's
//! transform, `cdk synth`, `serverless package`; a table; their
//! functions). Then live code: the time from saving an SST handler to the
//! next invocation running it.
//!
//! `cargo run --release --example sst -- [--runs N] [--edits N]`
//! (expects the release `wsgate` binary beside this example's, and
//! examples/sst-chat-rooms/node_modules from scripts/setup).

#[path = "util.rs"]
mod util;

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

struct Serving {
    child: Child,
    url: String,
    started_in: Duration,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path, args: &[&str]) -> Serving {
    let started = Instant::now();
    let mut child = Command::new(util::wsgate_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .args(args)
        .env("WSGATE_LOG", "warn")
        .env("SST_SECRET_AdminToken", "bench")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wsgate starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = String::new();
    loop {
        let line = lines.next().expect("wsgate printed ready").unwrap();
        if let Some(u) = line.trim().strip_prefix("url:") {
            url = u.trim().replacen("wss://", "ws://", 1);
        }
        if line.starts_with("ready") {
            break;
        }
    }
    let started_in = started.elapsed();
    std::thread::spawn(move || for _ in lines {});
    Serving {
        child,
        url,
        started_in,
    }
}

/// An app's folder without what a run makes or installs at its top
/// (`.wsgate`, `.sst`, `node_modules`); nested folders whole (a layer's
/// `node_modules` is its content).
fn copy_tree(from: &Path, to: &Path) {
    copy_folder(from, to, true);
}

fn copy_folder(from: &Path, to: &Path, top: bool) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if top
            && [".wsgate", ".sst", "node_modules"]
                .iter()
                .any(|s| name == *s)
        {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_folder(&entry.path(), &target, false);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// A wsgate.toml app with seven Node.js handlers, as many as chat-rooms.
fn toml_app(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("handlers.mjs"),
        "export const handler = async (event) => ({ statusCode: 200, body: event.body });\n",
    )
    .unwrap();
    let mut config = String::from("name = \"Bench\"\n[routes]\n");
    for route in [
        "$connect",
        "$disconnect",
        "$default",
        "join",
        "say",
        "leave",
        "announce",
    ] {
        config.push_str(&format!("\"{route}\" = \"handlers.handler\"\n"));
    }
    let path = dir.join("wsgate.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = util::arg(&args, "--runs", 3.0) as usize;
    let edits = util::arg(&args, "--edits", 5.0) as usize;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let example = repo.join("examples/sst-chat-rooms");
    assert!(
        example.join("node_modules/sst").is_dir(),
        "run scripts/setup first"
    );
    let app = tempfile::tempdir().unwrap();
    copy_tree(&example, app.path());
    std::os::unix::fs::symlink(
        example.join("node_modules"),
        app.path().join("node_modules"),
    )
    .unwrap();
    let sst_config = app.path().join("sst.config.ts");
    let toml_dir = tempfile::tempdir().unwrap();
    let toml_config = toml_app(toml_dir.path());

    // One start each first: caches (esbuild, dynalite) are warm after it.
    drop(serve(&sst_config, &["--stage", "bench"]));
    drop(serve(&toml_config, &[]));
    let (mut sst, mut toml) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        sst.push(serve(&sst_config, &["--stage", "bench"]).started_in);
        toml.push(serve(&toml_config, &[]).started_in);
    }
    let (sst, toml) = (median(sst), median(toml));
    println!("start-up, warm (spawn to ready), median of {runs}:");
    println!(
        "  wsgate.toml, 7 Node.js functions:                      {:>6} ms",
        toml.as_millis()
    );
    println!(
        "  sst-chat-rooms (config, table, secret, 7 functions):   {:>6} ms ({:.2}x)",
        sst.as_millis(),
        sst.as_secs_f64() / toml.as_secs_f64()
    );
    for (label, folder, config) in [
        (
            "sam-chat (AWS's SAM transform, table, 5 functions)",
            "sam-chat",
            "template.yaml",
        ),
        (
            "cdk-chat (cdk synth, table, 4 functions)",
            "cdk-chat",
            "cdk.json",
        ),
        (
            "serverless-chat (serverless package, table, 5 functions)",
            "serverless-chat",
            "serverless.yml",
        ),
    ] {
        let example = repo.join("examples").join(folder);
        let app = tempfile::tempdir().unwrap();
        copy_tree(&example, app.path());
        if example.join("node_modules").is_dir() {
            std::os::unix::fs::symlink(
                example.join("node_modules"),
                app.path().join("node_modules"),
            )
            .unwrap();
        }
        let config = app.path().join(config);
        drop(serve(&config, &[]));
        let started = median((0..runs).map(|_| serve(&config, &[]).started_in).collect());
        println!(
            "  {label:<55}{:>6} ms ({:.2}x)",
            started.as_millis(),
            started.as_secs_f64() / toml.as_secs_f64()
        );
    }

    // Live code: save a handler, then ask until the reply changes.
    let serving = serve(&sst_config, &["--stage", "bench"]);
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{}?name=bench", serving.url))
        .await
        .unwrap();
    let handler = app.path().join("packages/functions/src/connection.ts");
    let original = std::fs::read_to_string(&handler).unwrap();
    let mut took = Vec::new();
    for edit in 0..edits {
        let marker = format!("edit-{edit}");
        let changed = original.replace("\"unknown action\"", &format!("\"{marker}\""));
        let saved = Instant::now();
        std::fs::write(&handler, changed).unwrap();
        loop {
            socket.send(Message::text("?")).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(15), socket.next())
                .await
                .expect("a reply")
                .unwrap()
                .unwrap();
            if reply.to_text().unwrap_or_default().contains(&marker) {
                break;
            }
            assert!(
                saved.elapsed() < Duration::from_secs(30),
                "the edit never took effect"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took.push(saved.elapsed());
    }
    let all: Vec<String> = took.iter().map(|d| d.as_millis().to_string()).collect();
    println!(
        "live code, save to the next invocation running it: median {} ms of {edits} ({} ms)",
        median(took.clone()).as_millis(),
        all.join(", ")
    );
}
