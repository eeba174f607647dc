//! wsgate as a cluster on a real `nats-server`: `@connections` calls on any
//! node reach the connection's owner, a dead owner answers 410 at once,
//! slots never collide, and NATS going away (or one server of a NATS
//! cluster) is survived. Nodes run in this process (each its own API,
//! registry and NATS client) or as `wsgate serve --cluster` processes.

mod common;

use aws_credential_types::Credentials;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Region};
use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use common::nats::{self, Nats};
use common::serve::{Serve, write_config};
use common::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use wsgate::WebSocketApi;
use wsgate::config::ClusterSettings;

fn settings(nats: &str, node: &str) -> ClusterSettings {
    ClusterSettings {
        nats: nats.to_string(),
        replicas: 1,
        node: Some(node.to_string()),
        ..Default::default()
    }
}

/// A node in this process; `whoami` tells a client its connection id.
async fn node(settings: ClusterSettings) -> wsgate::Server {
    with_whoami(WebSocketApi::new("Clustered").stage("test"))
        .cluster(settings)
        .bind(any_port())
        .await
        .unwrap()
}

async fn connect_with_id(url: &str) -> (Client, String) {
    let (mut client, _) = try_connect(url, &[("User-Agent", "cluster-test")])
        .await
        .unwrap();
    send_text(&mut client, r#"{"action":"whoami"}"#).await;
    let id = next_text(&mut client).await;
    (client, id)
}

/// A signed management call with the cluster's key.
async fn call(
    key: &wsgate::Credentials,
    method: &str,
    endpoint: &str,
    id: &str,
    body: &str,
) -> (u16, String) {
    let url = format!("{endpoint}/@connections/{id}");
    let (status, _, body) =
        management_as(Some((key, "us-east-1")), method, &url, body.to_string()).await;
    (status, body)
}

fn sdk(endpoint: &str, key: &wsgate::Credentials) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            &key.access_key_id,
            &key.secret_access_key,
            None,
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_on_any_node_reaches_the_connections_owner() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let a = node(settings(&nats.url(), "a")).await;
    let b = node(settings(&nats.url(), "b")).await;
    // No key configured: the first node's generated key is every node's.
    let key = a.generated_credentials().unwrap().clone();
    assert_eq!(
        b.generated_credentials().unwrap().access_key_id,
        key.access_key_id
    );

    let (mut client, id) = connect_with_id(&a.url()).await;
    // API Gateway's shape: 16 characters of base64 ending in `=`.
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.ends_with('='), "{id}");

    // The SDK against node B, for a connection on node A.
    let on_b = sdk(&b.management_endpoint(), &key);
    on_b.post_to_connection()
        .connection_id(&id)
        .data(Blob::new("across nodes"))
        .send()
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, "across nodes");
    let info = on_b
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.identity().and_then(|i| i.user_agent()),
        Some("cluster-test")
    );
    assert!(info.connected_at().is_some());

    // Binary data stays binary across nodes.
    on_b.post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![0xff, 0x00, 0xfe]))
        .send()
        .await
        .unwrap();
    use futures_util::StreamExt;
    let frame = tokio::time::timeout(WAIT, client.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frame.into_data().as_ref(), &[0xff, 0x00, 0xfe]);

    // In-process Connections on B, as a native handler would use them.
    b.connections()
        .post(&id, "from a handler on b")
        .await
        .unwrap();
    assert_eq!(next_text(&mut client).await, "from a handler on b");

    // DeleteConnection on B closes the client on A with 1000.
    on_b.delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(next_close(&mut client).await.0, 1000);
    for endpoint in [a.management_endpoint(), b.management_endpoint()] {
        let (status, body) = call(&key, "POST", &endpoint, &id, "late").await;
        assert_eq!(status, 410, "{body}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// Nodes whose configs disagree on the largest message: a push the owner
/// cannot take is 413 (permanent), never 503 (which SDKs retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_larger_than_the_owner_takes_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let small = wsgate::gateway::limits::Limits {
        max_message_size: 64 * 1024,
        ..Default::default()
    };
    let owner = with_whoami(WebSocketApi::new("Clustered").stage("test"))
        .limits(small)
        .cluster(settings(&nats.url(), "owner"))
        .bind(any_port())
        .await
        .unwrap();
    let other = node(settings(&nats.url(), "other")).await;
    let key = owner.generated_credentials().unwrap().clone();
    let (_client, id) = connect_with_id(&owner.url()).await;
    let body = "x".repeat(100 * 1024);
    let (status, answer) = call(&key, "POST", &other.management_endpoint(), &id, &body).await;
    assert_eq!(status, 413, "{answer}");
    owner.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_truncated_ids_are_gone_without_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let a = node(settings(&nats.url(), "a")).await;
    let b = node(settings(&nats.url(), "b")).await;
    let key = a.generated_credentials().unwrap().clone();
    let (_client, id) = connect_with_id(&a.url()).await;
    let endpoint = b.management_endpoint();

    // The owner's slot with other random bits: the owner answers 410.
    let mut forged: Vec<char> = id.chars().collect();
    forged[10] = if forged[10] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let truncated = &id[..12];
    for bad in [
        forged.as_str(),
        truncated,
        "AAAAAAAAAAAAAAA=", // no cluster mark: a single node's id
        "oAAAAAAAAAAAAAA=", // the mark, slot 0
        "not-an-id",
    ] {
        for method in ["POST", "GET", "DELETE"] {
            let data = if method == "POST" { "x" } else { "" };
            let (status, body) = call(&key, method, &endpoint, bad, data).await;
            assert_eq!(status, 410, "{method} {bad}: {body}");
        }
    }
    // A slot no node holds: nobody answers, and that is 410 too.
    let unheld = unheld_slot_id(&[&a, &b]);
    let started = Instant::now();
    let (status, body) = call(&key, "POST", &endpoint, &unheld, "x").await;
    assert_eq!(status, 410, "{body}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The real connection is untouched by all this.
    let (status, body) = call(&key, "GET", &endpoint, &id, "").await;
    assert_eq!(status, 200, "{body}");
    a.shutdown().await;
    b.shutdown().await;
}

/// A call its owner never answers is 503 while the owner holds its slot,
/// and 410 once the slot is given back: a node leaving can drop the calls
/// that reach it as it unsubscribes, but it closed every connection
/// before giving its slot back. The silent owner here is a bare NATS
/// subscriber on a slot's subject, its lease written and deleted by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_nobody_answers_is_gone_once_the_owners_slot_is_free() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let a = node(settings(&nats.url(), "a")).await;
    let key = a.generated_credentials().unwrap().clone();
    let endpoint = a.management_endpoint();
    let silent_id = unheld_slot_id(&[&a]);
    let slot = wsgate::ids::slot_of(&silent_id).unwrap();

    let client = async_nats::connect(nats.url()).await.unwrap();
    let _silent = client
        .subscribe(format!("wsgate.*.*.{slot}"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    // The lease bucket's keys are `<api>_<stage>.<slot>`: node a's names the prefix.
    let store = async_nats::jetstream::new(client.clone())
        .get_key_value("wsgate_slots")
        .await
        .unwrap();
    let own = format!(".{}", a.cluster().unwrap().lease().slot());
    let keys: Vec<String> = store
        .keys()
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let prefix = keys
        .iter()
        .find_map(|k| k.strip_suffix(&own))
        .expect("node a's lease")
        .to_string();
    let silent_key = format!("{prefix}.{slot}");

    store.put(&silent_key, "silent node".into()).await.unwrap();
    let (status, body) = call(&key, "POST", &endpoint, &silent_id, "x").await;
    assert_eq!(status, 503, "a held slot's silent owner: {body}");

    store.delete(&silent_key).await.unwrap();
    let (status, body) = call(&key, "POST", &endpoint, &silent_id, "x").await;
    assert_eq!(status, 410, "a given-back slot: {body}");
    a.shutdown().await;
}

/// An id whose slot none of `nodes` holds.
fn unheld_slot_id(nodes: &[&wsgate::Server]) -> String {
    let held: HashSet<u16> = nodes
        .iter()
        .map(|n| n.cluster().unwrap().lease().slot())
        .collect();
    let slot = (1..4096u16).find(|s| !held.contains(s)).unwrap();
    wsgate::ids::new_id_in_slot(slot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_the_same_instant_never_share_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let joins = (0..24).map(|i| {
        let settings = settings(&nats.url(), &format!("n{i}"));
        async move {
            wsgate::cluster::ClusterRegistry::join(&settings, "raceapi123", "test", 1024)
                .await
                .unwrap()
        }
    });
    let nodes = futures_util::future::join_all(joins).await;
    let slots: HashSet<u16> = nodes.iter().map(|n| n.lease().slot()).collect();
    assert_eq!(slots.len(), nodes.len(), "every node its own slot");
    assert!(nodes.iter().all(|n| n.lease().held()));
    for node in &nodes {
        node.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_slot_was_taken_gives_its_connections_up_and_takes_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path());
    let a = node(settings(&nats.url(), "a")).await;
    let b = node(settings(&nats.url(), "b")).await;
    let key = a.generated_credentials().unwrap().clone();
    let (mut client, id) = connect_with_id(&a.url()).await;
    let old_slot = a.cluster().unwrap().lease().slot();

    // What a node cut off longer than its lease finds when it is back:
    // another node wrote the slot's key.
    let nats_client = async_nats::connect(nats.url()).await.unwrap();
    let store = async_nats::jetstream::new(nats_client)
        .get_key_value("wsgate_slots")
        .await
        .unwrap();
    let key_name = format!("{}_test.{old_slot}", a.api_id());
    store.put(&key_name, "someone else".into()).await.unwrap();

    // Its connections go (1012: clients reconnect), with $disconnect...
    assert_eq!(next_close(&mut client).await.0, 1012);
    // ...and it serves again under a new slot.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut again, new_id) = loop {
        if let Ok((client, _)) = try_connect(&a.url(), &[]).await {
            drop(client);
            break connect_with_id(&a.url()).await;
        }
        assert!(Instant::now() < deadline, "node A never accepted again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let new_slot = a.cluster().unwrap().lease().slot();
    assert_ne!(new_slot, old_slot);
    assert_eq!(wsgate::ids::slot_of(&new_id), Some(new_slot));
    let (status, body) = call(&key, "POST", &b.management_endpoint(), &new_id, "hi").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_text(&mut again).await, "hi");
    // The old id is nobody's now.
    let (status, _) = call(&key, "POST", &b.management_endpoint(), &id, "x").await;
    assert_eq!(status, 410);
    a.shutdown().await;
    b.shutdown().await;
}

/// A backend answering `whoami` with the caller's connection id, for
/// nodes run as processes.
async fn whoami_backend() -> Backend {
    Backend::start(|_, event| {
        Reply::json(serde_json::json!({
            "statusCode": 200,
            "body": event["requestContext"]["connectionId"],
        }))
    })
    .await
}

/// A wsgate.toml for process nodes, its routes on `backend`.
fn process_config(dir: &std::path::Path, backend: &Backend) -> std::path::PathBuf {
    process_config_with(dir, backend, "")
}

/// As `process_config`, with `extra` (e.g. a `[cluster]` table) before
/// the routes.
fn process_config_with(
    dir: &std::path::Path,
    backend: &Backend,
    extra: &str,
) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    write_config(
        dir,
        &format!(
            r#"
name = "Clustered"
stage = "test"
tls = "off"
{extra}
[routes]
whoami = {{ url = "{}", return_response = true }}
"#,
            backend.url("/whoami")
        ),
    )
}

/// kill -9 of a node (three node processes): every call for its ids on
/// every other node answers 410 within 1 s (a node's first call for the
/// dead slot retries "no responders" for 0.75 s, in case the owner is
/// only reconnecting; later ones answer at once), and nothing of it is
/// left in NATS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_connections_answer_410_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("nats"));
    let backend = whoami_backend().await;
    let config = process_config(&dir.path().join("app"), &backend);
    let start = |name: &str| Serve::start(&config, &["--cluster", &nats.url(), "--node", name]);
    let (mut a, b, c) = (start("a"), start("b"), start("c"));
    let key = a.key.clone().expect("the cluster's generated key");
    for other in [&b, &c] {
        assert_eq!(
            other.key.as_ref().unwrap().access_key_id,
            key.access_key_id,
            "every node takes the cluster's key"
        );
    }
    let (mut client, id) = connect_with_id(&a.url).await;
    for other in [&b, &c] {
        let (status, body) = call(&key, "POST", &other.management_endpoint, &id, "before").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(next_text(&mut client).await, "before");
    }

    a.signal("KILL");
    a.wait();
    for other in [&b, &c] {
        for (method, data) in [("POST", "after"), ("GET", ""), ("DELETE", "")] {
            let started = Instant::now();
            let (status, body) = call(&key, method, &other.management_endpoint, &id, data).await;
            let took = started.elapsed();
            assert_eq!(status, 410, "{method} on another node: {body}");
            assert!(took < Duration::from_secs(1), "{method}: 410 took {took:?}");
            if method != "POST" {
                // The slot was found gone by this node's first call.
                assert!(
                    took < Duration::from_millis(300),
                    "{method}: 410 took {took:?}"
                );
            }
        }
    }
    // Nothing left behind: NATS has dropped the node's connection and
    // subscriptions (its slot lease expires on its own).
    let clients = nats.connections();
    assert!(
        clients.contains("wsgate b") && clients.contains("wsgate c"),
        "{clients}"
    );
    assert!(!clients.contains("wsgate a"), "{clients}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_going_away_and_coming_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(&dir.path().join("nats"));
    let backend = whoami_backend().await;
    let config = process_config(&dir.path().join("app"), &backend);
    let start = |name: &str| Serve::start(&config, &["--cluster", &nats.url(), "--node", name]);
    let (a, b) = (start("a"), start("b"));
    let key = a.key.clone().expect("the cluster's generated key");
    let (mut on_a, id_a) = connect_with_id(&a.url).await;
    let (mut on_b, id_b) = connect_with_id(&b.url).await;

    nats.kill();
    // Local traffic and local management calls keep working.
    send_text(&mut on_a, r#"{"action":"whoami"}"#).await;
    assert_eq!(next_text(&mut on_a).await, id_a);
    let (status, body) = call(&key, "POST", &a.management_endpoint, &id_a, "local").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_text(&mut on_a).await, "local");
    // New connections too, while the lease lasts.
    let (_newcomer, _) = connect_with_id(&a.url).await;
    // A cross-node call fails with a 5xx the SDK surfaces, and never hangs.
    let started = Instant::now();
    let error = sdk(&a.management_endpoint, &key)
        .post_to_connection()
        .connection_id(&id_b)
        .data(Blob::new("across"))
        .send()
        .await
        .expect_err("NATS is down");
    let took = started.elapsed();
    let status = error
        .raw_response()
        .map(|r| r.status().as_u16())
        .unwrap_or_default();
    assert_eq!(status, 503, "{error:?} {:?}", error.code());
    assert!(took < Duration::from_secs(5), "the SDK call took {took:?}");

    nats.restart();
    // Cross-node calls work again, no node restarted.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = call(&key, "POST", &a.management_endpoint, &id_b, "back").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "only 'unavailable' while NATS comes back");
        assert!(
            Instant::now() < deadline,
            "cross-node calls never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(next_text(&mut on_b).await, "back");
    let (status, body) = call(&key, "POST", &b.management_endpoint, &id_a, "and back").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_text(&mut on_a).await, "and back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_of_a_nats_cluster_dying_fails_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Nats::cluster(dir.path());
    let urls = nats::urls(&servers);
    // Every node knows every server; the slots are kept on all three.
    let backend = whoami_backend().await;
    let config = process_config_with(
        &dir.path().join("app"),
        &backend,
        &format!("[cluster]\nnats = \"{urls}\"\nreplicas = 3\n"),
    );
    let (a, b) = (
        Serve::start(&config, &["--node", "a"]),
        Serve::start(&config, &["--node", "b"]),
    );
    let key = a.key.clone().expect("the cluster's generated key");
    let (mut on_a, id_a) = connect_with_id(&a.url).await;
    let (mut on_b, id_b) = connect_with_id(&b.url).await;

    let calls = async {
        let mut sent = 0;
        for round in 0..150 {
            if round == 30 {
                servers[0].kill();
            }
            if round == 90 {
                servers[1].kill();
                servers[0].restart();
            }
            for (endpoint, id) in [
                (&a.management_endpoint, &id_b),
                (&b.management_endpoint, &id_a),
            ] {
                let (status, body) = call(&key, "POST", endpoint, id, &format!("m{round}")).await;
                assert_eq!(status, 200, "round {round}: {body}");
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    };
    let sent = calls.await;
    assert_eq!(sent, 300);
    for client in [&mut on_a, &mut on_b] {
        for round in 0..150 {
            assert_eq!(next_text(client).await, format!("m{round}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_pushes_through_its_own_nodes_endpoint_to_any_node() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("nats"));
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("py")).unwrap();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/functions");
    std::fs::copy(fixtures.join("py/handlers.py"), app.join("py/handlers.py")).unwrap();
    std::fs::write(app.join("py/__init__.py"), "").unwrap();
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.is_file(),
        "run scripts/setup: it installs awslambdaric into .venv"
    );
    let ric = |handler: &str| {
        format!(
            r#"["{}", "-m", "awslambdaric", "py.handlers.{handler}"]"#,
            python.display()
        )
    };
    let path = write_config(
        &app,
        &format!(
            "name = \"Clustered\"\nstage = \"test\"\ntls = \"off\"\n\n[cluster]\nnats = \"{}\"\n\n[routes]\nwhoami = {{ command = {}, return_response = true }}\npushto = {{ command = {}, return_response = true, link = [\"Clustered\"] }}\n",
            nats.url(),
            ric("whoami"),
            ric("push_to"),
        ),
    );
    let nodes = nodes_from_config(&path, &["a", "b"]).await;
    let (mut on_a, _) = connect_with_id(&nodes[0].url()).await;
    let (mut on_b, id_b) = connect_with_id(&nodes[1].url()).await;
    // The function runs on node A and calls node A's managementEndpoint;
    // the connection is on node B.
    send_text(
        &mut on_a,
        &serde_json::json!({ "action": "pushto", "to": id_b }).to_string(),
    )
    .await;
    assert_eq!(next_text(&mut on_a).await, "delivered");
    assert_eq!(next_text(&mut on_b).await, "pushed across nodes");
    for node in nodes {
        node.shutdown().await;
    }
}

/// Nodes in this process, as `wsgate serve` builds them from the config
/// at `path` (its `[cluster]`), each with its own name.
async fn nodes_from_config(path: &std::path::Path, names: &[&str]) -> Vec<wsgate::Server> {
    let config = wsgate::config::load(path).unwrap();
    let mut nodes = Vec::new();
    for name in names {
        let mut config = config.clone();
        config.cluster.as_mut().unwrap().node = Some(name.to_string());
        nodes.push(
            WebSocketApi::from_config(&config)
                .unwrap()
                .bind(any_port())
                .await
                .unwrap(),
        );
    }
    nodes
}

/// `wsgate serve` with `args`, expected to fail at start: its stderr.
fn serve_fails(config: &std::path::Path, args: &[&str]) -> String {
    serve_fails_with(config, args, &[])
}

fn serve_fails_with(config: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cluster_settings_fail_at_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let backend = whoami_backend().await;
    let config = process_config(dir.path(), &backend);

    // Nobody listens there.
    let port = nats::free_port();
    let unreachable = format!("nats://127.0.0.1:{port}");
    let started = Instant::now();
    let error = serve_fails(&config, &["--cluster", &unreachable]);
    assert!(error.contains("cannot connect to NATS at"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(15));
    // Not a NATS URL.
    let error = serve_fails(&config, &["--cluster", "http://127.0.0.1:4222"]);
    assert!(error.contains("is not a NATS URL"), "{error}");
    let error = serve_fails(&config, &["--cluster", ""]);
    assert!(error.contains("name at least one NATS server"), "{error}");
    // A node name that cannot be one.
    let error = serve_fails(&config, &["--cluster", &unreachable, "--node", "a b/c"]);
    assert!(error.contains("a node name is"), "{error}");
    // A NATS without JetStream: the slots need it.
    let mut plain = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let error = serve_fails(&config, &["--cluster", &unreachable]);
    assert!(error.contains("JetStream"), "{error}");
    let _ = plain.kill();
    let _ = plain.wait();

    // A message size NATS cannot carry between nodes (nats-server's
    // max_payload is 1 MiB by default) is refused at start, not answered
    // 503 at the first large push to another node.
    let nats_dir = tempfile::tempdir().unwrap();
    let jetstream = Nats::start(nats_dir.path());
    let big = process_config_with(
        &dir.path().join("big"),
        &backend,
        "[transform.stage]\nmax_message_size = \"4 MB\"\n",
    );
    let error = serve_fails(&big, &["--cluster", &jetstream.url()]);
    assert!(error.contains("max_payload"), "{error}");
    drop(jetstream);

    // In wsgate.toml, with the file, line and key.
    let toml = write_config(
        dir.path(),
        "name = \"Clustered\"\n\n[cluster]\nnats = \"redis://127.0.0.1:6379\"\nreplicas = 9\n",
    );
    let error = serve_fails(&toml, &[]);
    assert!(error.contains("wsgate.toml:4: `cluster.nats`"), "{error}");
    assert!(
        error.contains("wsgate.toml:5: `cluster.replicas`"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_every_nodes_access_log_through_nats() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("nats"));
    let backend = whoami_backend().await;
    let app = dir.path().join("app");
    let path = process_config(&app, &backend);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{text}\n[cluster]\nnats = \"{}\"\n", nats.url()),
    )
    .unwrap();
    let nodes = nodes_from_config(&path, &["a", "b"]).await;
    let mut follow = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["logs", "--follow", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    // Subscribed once a line comes through: connect until one does.
    let mut seen: HashSet<String> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut clients = Vec::new();
    while !(seen.contains("a") && seen.contains("b")) {
        assert!(Instant::now() < deadline, "saw lines from {seen:?} only");
        for node in &nodes {
            clients.push(connect_with_id(&node.url()).await);
        }
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_millis(300), lines.recv()).await
        {
            if line.contains("MESSAGE") && line.contains("whoami") {
                seen.insert(
                    line.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    // Without --follow: each node's folder on this machine.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["logs", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("== node a") && printed.contains("== node b"),
        "{printed}"
    );
    for node in nodes {
        node.shutdown().await;
    }
}

/// A NATS that wants a token: nodes given it through `[cluster]
/// token_env` join and reach each other's connections; without it, or
/// with a wrong one, a node fails at start with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_token_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start_with(&dir.path().join("nats"), &["--auth", "s3cret-token"]);
    let backend = whoami_backend().await;
    let config = process_config_with(
        &dir.path().join("app"),
        &backend,
        &format!(
            "[cluster]\nnats = \"{}\"\ntoken_env = \"WSGATE_TEST_NATS_TOKEN\"\n",
            nats.url()
        ),
    );

    let error = serve_fails(&config, &[]);
    assert!(error.contains("WSGATE_TEST_NATS_TOKEN"), "{error}");
    let error = serve_fails_with(&config, &[], &[("WSGATE_TEST_NATS_TOKEN", "wrong")]);
    assert!(error.contains("cannot connect to NATS at"), "{error}");

    let token = [("WSGATE_TEST_NATS_TOKEN", "s3cret-token")];
    let a = Serve::start_with(&config, &["--node", "a"], &token);
    let b = Serve::start_with(&config, &["--node", "b"], &token);
    let key = a.key.clone().expect("the cluster's generated key");
    let (mut on_b, id_b) = connect_with_id(&b.url).await;
    let (status, body) = call(&key, "POST", &a.management_endpoint, &id_b, "with a token").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_text(&mut on_b).await, "with a token");
}

/// Stage throttling covers the whole cluster: each of two nodes takes an
/// equal share of the stage's burst, so together they admit what one
/// node would (tokens: an upgrade takes one, each message one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_throttling_is_shared_by_the_live_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(&dir.path().join("nats"));
    let backend = whoami_backend().await;
    // A burst of 8 and next to no refill: 4 per node with two live.
    let config = process_config_with(
        &dir.path().join("app"),
        &backend,
        "[transform.stage]\nthrottling_burst_limit = 8\nthrottling_rate_limit = 0.01\n",
    );
    let start = |name: &str| Serve::start(&config, &["--cluster", &nats.url(), "--node", name]);
    let (a, b) = (start("a"), start("b"));
    // A node counts the live nodes at start and every third renewal of
    // its slot (9 s): node A, up first, sees B at its second count.
    tokio::time::sleep(Duration::from_millis(9600)).await;
    let mut admitted = 0;
    for node in [&a, &b] {
        let mut client = connect(&node.url).await;
        for _ in 0..6 {
            send_text(&mut client, r#"{"action":"whoami"}"#).await;
        }
        for _ in 0..6 {
            if !next_text(&mut client).await.contains("Too many requests") {
                admitted += 1;
            }
        }
    }
    assert_eq!(admitted, 6, "each node admits 3 messages after its upgrade");
}

/// A NATS that speaks TLS only: nodes that trust its CA (`[cluster]
/// tls_ca`) join and reach each other's connections; a node that does not
/// fails at start with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_over_tls_with_the_clusters_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let pem = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (ca_pem, cert_pem, key_pem) = (
        pem("ca.pem", ca.pem()),
        pem("cert.pem", cert.pem()),
        pem("key.pem", key.serialize_pem()),
    );
    let nats = Nats::start_with(
        &dir.path().join("nats"),
        &["--tls", "--tlscert", &cert_pem, "--tlskey", &key_pem],
    );
    let backend = whoami_backend().await;
    let app = dir.path().join("app");
    let cluster = |extra: &str| format!("[cluster]\nnats = \"{}\"\n{extra}", nats.url());

    let config = process_config_with(&app, &backend, &cluster(""));
    let error = serve_fails(&config, &[]);
    assert!(error.contains("cannot connect to NATS at"), "{error}");

    let config = process_config_with(
        &app,
        &backend,
        &cluster(&format!("tls_ca = \"{ca_pem}\"\n")),
    );
    let a = Serve::start(&config, &["--node", "a"]);
    let b = Serve::start(&config, &["--node", "b"]);
    let key = a.key.clone().expect("the cluster's generated key");
    let (mut on_b, id_b) = connect_with_id(&b.url).await;
    let (status, body) = call(&key, "POST", &a.management_endpoint, &id_b, "over TLS").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_text(&mut on_b).await, "over TLS");
}
