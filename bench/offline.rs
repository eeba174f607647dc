//! wsgate against serverless-offline, in one run: the same Node.js handler
//! (it posts each message back through the management API) behind each
//! gateway, both as their own processes.
//!
//! `(cd bench/serverless_offline && npm ci) && cargo build --release --bin wsgate --examples && target/release/examples/offline`

#[path = "measure.rs"]
mod measure;
#[path = "util.rs"]
mod util;

use measure::measure;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use util::arg;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        // serverless runs its server in a child of npx: end the whole group.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a program in its own process group; returns once a stdout line
/// satisfies `ready` (giving its value), or panics after 60 s.
fn start(
    mut command: Command,
    ready: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> (Process, String) {
    use std::os::unix::process::CommandExt;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("starts");
    let (tx, rx) = mpsc::channel();
    let ready = std::sync::Arc::new(ready);
    // Read both streams to the end (serverless reports on stderr).
    let outputs: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for output in outputs {
        let (tx, ready) = (tx.clone(), std::sync::Arc::clone(&ready));
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                if let Some(value) = ready(&line) {
                    let _ = tx.send(value);
                }
            }
        });
    }
    let process = Process(child);
    let value = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server became ready");
    (process, value)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 3.0);
    let connections = arg(&args, "--connections", 16.0) as usize;
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/serverless_offline");
    assert!(
        app.join("node_modules/serverless-offline").is_dir(),
        "run `npm ci` in {}",
        app.display()
    );

    let mut offline = Command::new("npx");
    offline
        .args(["serverless", "offline", "start"])
        .current_dir(&app)
        .env("SLS_TELEMETRY_DISABLED", "1")
        .env("SLS_NOTIFICATIONS_MODE", "off")
        .env("AWS_ACCESS_KEY_ID", "offline")
        .env("AWS_SECRET_ACCESS_KEY", "offline");
    let (_offline, offline_url) = start(offline, |line| {
        line.contains("[websocket] listening on")
            .then(|| line.rsplit(' ').next().unwrap().to_string())
    });

    let wsgate_exe = util::wsgate_binary();
    let mut gateway = Command::new(wsgate_exe);
    gateway
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(app.join("wsgate.toml"))
        .env("WSGATE_LOG", "warn");
    let (_gateway, wsgate_url) = start(gateway, |line| {
        line.trim()
            .strip_prefix("url:")
            .map(|u| u.trim().to_string())
    });

    println!("echo via PostToConnection, same Node.js handler, {seconds}s per cell, loopback");
    println!(
        "{:<20} {:>12} {:>9} {:>9}   {:>14} {:>9}",
        "gateway",
        "1 conn rt/s",
        "p50 us",
        "p99 us",
        format!("{connections} conn rt/s"),
        "p99 us"
    );
    let mut rows = Vec::new();
    for (name, url) in [
        ("serverless-offline", offline_url.as_str()),
        ("wsgate", wsgate_url.as_str()),
    ] {
        let one = measure(url, "echo", 1, seconds).await;
        let many = measure(url, "echo", connections, seconds).await;
        println!(
            "{name:<20} {:>12.0} {:>9} {:>9}   {:>14.0} {:>9}",
            one.rate, one.p50_us, one.p99_us, many.rate, many.p99_us
        );
        rows.push((one, many));
    }
    let (offline, gate) = (&rows[0], &rows[1]);
    // The peers' lines bench/run's summary greps for.
    for (count, gate, offline) in [(1, &gate.0, &offline.0), (connections, &gate.1, &offline.1)] {
        println!(
            "peer serverless-offline: round trips {count} connections: wsgate {:.0}/s serverless-offline {:.0}/s ({:.1}x); p99 wsgate {} us serverless-offline {} us",
            gate.rate,
            offline.rate,
            gate.rate / offline.rate,
            gate.p99_us,
            offline.p99_us,
        );
    }
}
