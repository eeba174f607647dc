//! A cluster node cut off from NATS by a network namespace whose veth is
//! set down, then healed: meanwhile its connections are answered 503
//! (unknown, never a wrong 410), and afterwards cross-node service
//! resumes with no restart and no slot conflict. Addresses stay in
//! 127.0.0.0/8 (`route_localnet` on the veth pair). Needs root, as the
//! test command runs here.

mod common;

use common::nats::{Nats, free_port};
use common::serve::{Serve, write_config};
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// A network namespace joined to this one by a veth pair:
/// `<host>` here, `<inside>` there. Removed when dropped.
struct Netns {
    name: String,
    host_link: String,
    host: String,
    inside: String,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip runs");
    assert!(status.success(), "ip {}", args.join(" "));
}

fn sysctl(netns: Option<&str>, setting: &str) {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "sysctl", "-qw", setting]);
            c
        }
        None => {
            let mut c = Command::new("sysctl");
            c.args(["-qw", setting]);
            c
        }
    };
    assert!(command.status().unwrap().success(), "sysctl {setting}");
}

impl Netns {
    fn create() -> Netns {
        let id = std::process::id();
        let name = format!("wsg{id}");
        let host_link = format!("wsg{id}h");
        let inside_link = format!("wsg{id}n");
        let host = format!("127.77.{}.1", id % 250);
        let inside = format!("127.77.{}.2", id % 250);
        ip(&["netns", "add", &name]);
        let netns = Netns {
            name: name.clone(),
            host_link: host_link.clone(),
            host: host.clone(),
            inside: inside.clone(),
        };
        ip(&[
            "link",
            "add",
            &host_link,
            "type",
            "veth",
            "peer",
            "name",
            &inside_link,
        ]);
        ip(&["link", "set", &inside_link, "netns", &name]);
        // Loopback-range addresses may cross these links.
        sysctl(None, &format!("net.ipv4.conf.{host_link}.route_localnet=1"));
        sysctl(
            Some(&name),
            &format!("net.ipv4.conf.{inside_link}.route_localnet=1"),
        );
        ip(&["addr", "add", &format!("{host}/30"), "dev", &host_link]);
        ip(&["link", "set", &host_link, "up"]);
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{inside}/30"),
            "dev",
            &inside_link,
        ]);
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "link",
            "set",
            &inside_link,
            "up",
        ]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        netns
    }

    fn cut(&self) {
        ip(&["link", "set", &self.host_link, "down"]);
    }

    fn heal(&self) {
        ip(&["link", "set", &self.host_link, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_nats_and_healed_resumes_cross_node_service() {
    let netns = Netns::create();
    let dir = tempfile::tempdir().unwrap();
    // NATS and the handler backend on this side of the veth.
    let nats = Nats::start_on(&dir.path().join("nats"), &netns.host);
    let backend = Backend::start_on(format!("{}:0", netns.host).parse().unwrap(), |_, event| {
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
            "name = \"Parted\"\nstage = \"test\"\ntls = \"off\"\n\n[routes]\nwhoami = {{ url = \"{}\", return_response = true }}\n",
            backend.url("/whoami")
        ),
    );
    // Node B on this side, node A in the namespace: both processes.
    let b = Serve::start(&config, &["--cluster", &nats.url(), "--node", "b"]);
    let key = b.key.clone().expect("the cluster's generated key");
    let listen = format!("{}:{}", netns.inside, free_port());
    let a = Serve::start_in_netns(
        &netns.name,
        &config,
        &["--listen", &listen, "--cluster", &nats.url(), "--node", "a"],
    );
    let (mut on_a, id_a) = {
        let (mut client, _) = try_connect(&a.url, &[]).await.unwrap();
        send_text(&mut client, r#"{"action":"whoami"}"#).await;
        let id = next_text(&mut client).await;
        (client, id)
    };
    let (mut on_b, id_b) = {
        let (mut client, _) = try_connect(&b.url, &[]).await.unwrap();
        send_text(&mut client, r#"{"action":"whoami"}"#).await;
        let id = next_text(&mut client).await;
        (client, id)
    };
    let push = |id: String, text: &'static str| {
        let key = key.clone();
        let url = format!("{}/@connections/{id}", b.management_endpoint);
        async move {
            management_as(Some((&key, "us-east-1")), "POST", &url, text)
                .await
                .0
        }
    };
    assert_eq!(push(id_a.clone(), "before").await, 200);
    assert_eq!(next_text(&mut on_a).await, "before");

    netns.cut();
    // NATS drops node A: to node B its connections look like a dead
    // node's (410, at once), or cannot be asked (503); never a hang.
    let mut answered = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        answered.push(push(id_a.clone(), "while cut").await);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(
        answered.iter().all(|s| [410, 503].contains(s)),
        "{answered:?}"
    );
    // Node B's own connections are unaffected.
    assert_eq!(push(id_b.clone(), "local").await, 200);
    assert_eq!(next_text(&mut on_b).await, "local");
    tokio::time::sleep(Duration::from_secs(4)).await;

    netns.heal();
    // Back on NATS, node A learns that its connections were answered 410
    // and closes them (1012), so clients reconnect and backends register
    // them again: nobody keeps a connection that silently gets nothing.
    if answered.contains(&410) {
        let (code, _) = tokio::time::timeout(Duration::from_secs(30), next_close(&mut on_a))
            .await
            .expect("node A closes the connections declared gone");
        assert_eq!(code, 1012);
    }
    // Cross-node service resumes, with no restart: a client connecting
    // to node A again is reached from node B.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut again, id_again) = loop {
        if let Ok((mut client, _)) = try_connect(&a.url, &[]).await {
            send_text(&mut client, r#"{"action":"whoami"}"#).await;
            let id = next_text(&mut client).await;
            if push(id.clone(), "healed").await == 200 {
                break (client, id);
            }
        }
        assert!(
            Instant::now() < deadline,
            "cross-node service never resumed"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(next_text(&mut again).await, "healed");
    let id_a = id_again;
    // Node A still holds its slot, the only holder of it.
    let slot = wsgate::ids::slot_of(&id_a).unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let store = async_nats::jetstream::new(client)
        .get_key_value("wsgate_slots")
        .await
        .unwrap();
    let slot_key = {
        use futures_util::StreamExt;
        let keys: Vec<String> = store
            .keys()
            .await
            .unwrap()
            .filter_map(|k| async move { k.ok() })
            .collect()
            .await;
        // `<api id>_test.<slot>` (a declaration is `<api id>_test_gone.<slot>`).
        let wanted = format!("_test.{slot}");
        keys.into_iter()
            .find(|k| k.ends_with(&wanted))
            .expect("node A's slot is held")
    };
    let holder = store
        .get(slot_key)
        .await
        .unwrap()
        .expect("node A's slot is held");
    assert!(String::from_utf8_lossy(&holder).starts_with("a "));
    drop(a);
    drop(b);
}
