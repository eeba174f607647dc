//! Three `wsgate serve --cluster` nodes behind a real HAProxy, configured
//! by the cluster example's own haproxy.cfg, restarted one by one while
//! clients stay connected and a backend keeps pushing through the load
//! balancer: no push for a live connection is lost or answered wrongly.

mod common;

use common::nats::{Nats, free_port};
use common::serve::{Serve, write_config};
use common::*;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// HAProxy with examples/cluster/haproxy.cfg, its addresses from the
/// environment as the example's `run` gives them.
struct Haproxy(Child);

impl Haproxy {
    fn start(listen: &str, nodes: &[String]) -> Haproxy {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cluster/haproxy.cfg");
        let binary = if std::path::Path::new("/usr/sbin/haproxy").exists() {
            "/usr/sbin/haproxy"
        } else {
            "haproxy"
        };
        let child = Command::new(binary)
            .args(["-db", "-f", config])
            .env("WSGATE_LB", listen)
            .env("WSGATE_NODE_1", &nodes[0])
            .env("WSGATE_NODE_2", &nodes[1])
            .env("WSGATE_NODE_3", &nodes[2])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy runs (scripts/setup installs it)");
        Haproxy(child)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the clients saw and the pusher got, for the final reckoning.
#[derive(Default)]
struct Ledger {
    /// Seat → its connection id now (absent while reconnecting).
    live: HashMap<usize, String>,
    /// (connection id, message) each client received.
    received: HashSet<(String, String)>,
    /// Ids whose client saw a close (or lost its socket).
    closed: HashSet<String>,
    /// (connection id, message, status) of every push.
    pushes: Vec<(String, String, u16)>,
    connects: usize,
}

/// Connects, or says why not (refused, 503 while a node drains, ...).
async fn attempt(url: &str) -> Option<Client> {
    let connecting = tokio_tungstenite::connect_async(url);
    match tokio::time::timeout(WAIT, connecting).await {
        Ok(Ok((client, _))) => Some(client),
        _ => None,
    }
}

async fn seat(seat: usize, url: String, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Some(mut client) = attempt(&url).await else {
            // A draining node refuses (503); HAProxy soon stops choosing it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        send_text(&mut client, r#"{"action":"whoami"}"#).await;
        let id = next_text(&mut client).await;
        {
            let mut ledger = ledger.lock().unwrap();
            ledger.live.insert(seat, id.clone());
            ledger.connects += 1;
        }
        loop {
            let frame = tokio::time::timeout(Duration::from_millis(200), client.next()).await;
            match frame {
                Err(_) if stop.load(Ordering::Relaxed) => return,
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(text)))) => {
                    ledger
                        .lock()
                        .unwrap()
                        .received
                        .insert((id.clone(), text.to_string()));
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(_) => break,
            }
        }
        let mut ledger = ledger.lock().unwrap();
        ledger.live.remove(&seat);
        ledger.closed.insert(id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_behind_haproxy_loses_and_misanswers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("nats"));
    let backend = Backend::start(|_, event| {
        Reply::json(serde_json::json!({
            "statusCode": 200,
            "body": event["requestContext"]["connectionId"],
        }))
    })
    .await;
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let config = write_config(
        &app,
        &format!(
            "name = \"Rolling\"\nstage = \"test\"\ntls = \"off\"\n\n[routes]\nwhoami = {{ url = \"{}\", return_response = true }}\n",
            backend.url("/whoami")
        ),
    );
    let addresses: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let start_node = |n: usize| {
        let config = config.clone();
        let listen = addresses[n].clone();
        let nats = nats.url();
        tokio::task::spawn_blocking(move || {
            Serve::start(
                &config,
                &[
                    "--listen",
                    &listen,
                    "--cluster",
                    &nats,
                    "--node",
                    &format!("node{n}"),
                    "--drain-timeout",
                    "2 seconds",
                ],
            )
        })
    };
    let mut nodes = Vec::new();
    for n in 0..3 {
        nodes.push(Some(start_node(n).await.unwrap()));
    }
    let key = nodes[0].as_ref().unwrap().key.clone().unwrap();
    let lb = format!("127.0.0.1:{}", free_port());
    let _haproxy = Haproxy::start(&lb, &addresses);
    let url = format!("ws://{lb}/test");
    let endpoint = format!("http://{lb}/test");
    // HAProxy counts a node up after two good checks.
    let deadline = Instant::now() + Duration::from_secs(15);
    while attempt(&url).await.is_none() {
        assert!(Instant::now() < deadline, "HAProxy never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let seats: Vec<_> = (0..24)
        .map(|s| tokio::spawn(seat(s, url.clone(), Arc::clone(&ledger), Arc::clone(&stop))))
        .collect();
    let began = Instant::now();
    let mut restarts = Vec::new();
    let stop_pushing = Arc::new(AtomicBool::new(false));
    let pusher = {
        let ledger = Arc::clone(&ledger);
        let stop = Arc::clone(&stop_pushing);
        let key = key.clone();
        tokio::spawn(async move {
            let mut sequence = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let targets: Vec<String> = ledger.lock().unwrap().live.values().cloned().collect();
                for id in targets {
                    sequence += 1;
                    let message = format!("p{sequence}");
                    let url = format!("{endpoint}/@connections/{id}");
                    let (status, _, body) =
                        management_as(Some((&key, "us-east-1")), "POST", &url, message.clone())
                            .await;
                    // A push answered otherwise says when, against the
                    // restarts' times printed with the failure.
                    let message = if [200, 410].contains(&status) {
                        message
                    } else {
                        format!("{message} at {} ms ({body})", began.elapsed().as_millis())
                    };
                    ledger.lock().unwrap().pushes.push((id, message, status));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Restart every node in turn, as a deploy does.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (n, node) in nodes.iter_mut().enumerate() {
        let mut old = node.take().unwrap();
        let signalled = began.elapsed().as_millis();
        old.signal("TERM");
        let code = tokio::task::spawn_blocking(move || old.wait())
            .await
            .unwrap();
        assert_eq!(code, Some(0), "node{n} stops cleanly");
        let stopped = began.elapsed().as_millis();
        *node = Some(start_node(n).await.unwrap());
        restarts.push(format!(
            "node{n}: TERM at {signalled} ms, exited at {stopped} ms, up again at {} ms",
            began.elapsed().as_millis()
        ));
        // Up again in HAProxy's eyes (two checks), then the next one.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    stop_pushing.store(true, Ordering::Relaxed);
    pusher.await.unwrap();
    // Messages answered 200 at the end reach their clients.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for seat in seats {
        seat.await.unwrap();
    }

    let ledger = ledger.lock().unwrap();
    let mut problems = Vec::new();
    let mut delivered = 0;
    for (id, message, status) in &ledger.pushes {
        match status {
            200 if ledger.received.contains(&(id.clone(), message.clone())) => delivered += 1,
            200 => problems.push(format!("{message} to {id}: 200 but never delivered")),
            410 if ledger.closed.contains(id) => {}
            410 => problems.push(format!(
                "{message} to {id}: 410 for a connection never closed"
            )),
            other => problems.push(format!("{message} to {id}: {other}")),
        }
    }
    assert!(
        problems.is_empty(),
        "{} wrong of {}:\n{}\n{}",
        problems.len(),
        ledger.pushes.len(),
        problems.join("\n"),
        restarts.join("\n")
    );
    // The run did what it claims: every node went, clients moved, pushes flowed.
    assert!(
        ledger.connects >= 24 + 8,
        "clients reconnected: {}",
        ledger.connects
    );
    eprintln!(
        "rolling restart: {} pushes, {delivered} delivered, {} connects",
        ledger.pushes.len(),
        ledger.connects
    );
    assert!(delivered > 200, "only {delivered} pushes delivered");
}
