//! A real `nats-server` (the Debian package) started for a test: one
//! server with JetStream, or a cluster of three; killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    host: String,
    monitor_port: u16,
    args: Vec<String>,
}

/// A port free now on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nats {
    /// One server with JetStream, its store in `dir`.
    pub fn start(dir: &Path) -> Nats {
        Nats::start_on(dir, "127.0.0.1")
    }

    /// As `start`, listening for clients on `host` (a loopback address).
    pub fn start_on(dir: &Path, host: &str) -> Nats {
        let mut nats = Nats::configure(dir, "solo", &[]);
        nats.host = host.to_string();
        nats.args[1] = host.to_string();
        nats.launch();
        nats.wait_ready();
        nats
    }

    /// Three servers routed to one another, JetStream clustered.
    /// As `start`, with more `nats-server` arguments (e.g. `--auth TOKEN`).
    pub fn start_with(dir: &Path, extra: &[&str]) -> Nats {
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let mut nats = Nats::configure(dir, "solo", &extra);
        nats.launch();
        nats.wait_ready();
        nats
    }

    pub fn cluster(dir: &Path) -> Vec<Nats> {
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        let mut servers: Vec<Nats> = (0..3)
            .map(|i| {
                let extra = vec![
                    "--cluster_name".to_string(),
                    "wsgate-test".into(),
                    "--server_name".into(),
                    format!("s{i}"),
                    "--cluster".into(),
                    routes[i].clone(),
                    "--routes".into(),
                    routes.join(","),
                ];
                Nats::configure(&dir.join(format!("s{i}")), &format!("s{i}"), &extra)
            })
            .collect();
        for server in &mut servers {
            server.launch();
        }
        for server in &servers {
            server.wait_ready();
        }
        servers
    }

    fn configure(dir: &Path, name: &str, extra: &[String]) -> Nats {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let monitor_port = free_port();
        let mut args: Vec<String> = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-m".into(),
            monitor_port.to_string(),
            "-js".into(),
            "-sd".into(),
            store(dir).display().to_string(),
            "-l".into(),
            dir.join(format!("{name}.log")).display().to_string(),
        ];
        args.extend(extra.iter().cloned());
        Nats {
            child: None,
            host: "127.0.0.1".into(),
            port,
            monitor_port,
            args,
        }
    }

    fn launch(&mut self) {
        let child = Command::new("nats-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nats-server runs (scripts/setup installs it)");
        self.child = Some(child);
    }

    /// Waits until the server answers its health check with JetStream up.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if healthy(&self.host, self.monitor_port) {
                return;
            }
            if Instant::now() >= deadline {
                let log = self
                    .args
                    .iter()
                    .position(|a| a == "-l")
                    .and_then(|i| std::fs::read_to_string(&self.args[i + 1]).ok())
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                panic!(
                    "nats-server did not become healthy; its log ends:\n{}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                    monitor(&self.host, self.monitor_port, "/healthz").unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's view of its clients and their subscriptions.
    pub fn connections(&self) -> String {
        monitor(&self.host, self.monitor_port, "/connz?subs=1").unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
        self.wait_ready();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET /healthz` on the monitoring port answers 200.
fn healthy(host: &str, port: u16) -> bool {
    monitor(host, port, "/healthz")
        .is_some_and(|r| r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"))
}

/// A monitoring endpoint's whole response.
fn monitor(host: &str, port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect((host, port)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    Some(response)
}

fn store(dir: &Path) -> PathBuf {
    dir.join("jetstream")
}

/// The NATS URLs of a cluster, comma-separated, as `--cluster` takes them.
pub fn urls(servers: &[Nats]) -> String {
    servers.iter().map(Nats::url).collect::<Vec<_>>().join(",")
}
