//! The `wsgate` binary serving a config in a folder of its own, as a
//! user runs it: started for a test, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Serve {
    pub child: Child,
    pub url: String,
    pub management_endpoint: String,
    /// The key generated for the run, when the config names none.
    pub key: Option<wsgate::Credentials>,
    /// Everything `serve` printed on stdout before it was ready.
    pub printed: Vec<String>,
}

impl Serve {
    /// Runs `wsgate serve --listen 127.0.0.1:0 --config <config> <args>`
    /// and waits for its outputs.
    pub fn start(config: &Path, args: &[&str]) -> Serve {
        Serve::start_with(config, args, &[])
    }

    /// As `start`, without `--listen`: where the app says it listens.
    pub fn start_where_the_app_says(config: &Path, args: &[&str]) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsgate"));
        command.arg("serve").arg("--config").arg(config).args(args);
        Serve::spawn_command(command, &[])
    }

    pub fn start_with(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
        Serve::spawn(
            Command::new(env!("CARGO_BIN_EXE_wsgate")),
            config,
            args,
            env,
        )
    }

    /// As `start`, inside the network namespace `netns`.
    pub fn start_in_netns(netns: &str, config: &Path, args: &[&str]) -> Serve {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_wsgate")]);
        Serve::spawn(command, config, args, &[])
    }

    /// As `start`, with `RLIMIT_NOFILE` set to `soft` and `hard` for it.
    pub fn start_with_open_files(config: &Path, soft: u64, hard: u64) -> Serve {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsgate"));
        // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        Serve::spawn(command, config, &[], &[])
    }

    /// As `start`, with the server's log (stderr) written to `log`.
    pub fn start_logging_to(config: &Path, args: &[&str], log: &Path) -> Serve {
        Serve::start_with_log(config, args, &[], log)
    }

    /// As `start_with`, with the server's log (stderr) written to `log`.
    pub fn start_with_log(config: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsgate"));
        command.stderr(std::fs::File::create(log).unwrap());
        Serve::spawn(command, config, args, env)
    }

    /// Runs `command serve ...`; its stderr is the test's unless the
    /// command already sends it elsewhere.
    fn spawn(mut command: Command, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
        command.arg("serve");
        // A test that needs a fixed address gives its own `--listen`.
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command.arg("--config").arg(config).args(args);
        Serve::spawn_command(command, env)
    }

    /// Runs a `serve` command line and waits for its outputs.
    fn spawn_command(mut command: Command, env: &[(&str, &str)]) -> Serve {
        command.envs(env.iter().copied()).stdout(Stdio::piped());
        let mut child = command.spawn().expect("wsgate starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut url, mut management_endpoint, mut key) = (None, None, None);
        let mut printed = Vec::new();
        loop {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait().unwrap();
                panic!(
                    "wsgate serve exited ({status}) before it was ready:\n{}",
                    printed.join("\n")
                );
            };
            printed.push(line.clone());
            let trimmed = line.trim();
            if let Some(value) = trimmed.strip_prefix("url:") {
                url = Some(value.trim().to_string());
            }
            if let Some(value) = trimmed.strip_prefix("managementEndpoint:") {
                management_endpoint = Some(value.trim().to_string());
            }
            if let Some(exports) = trimmed.strip_prefix("export ") {
                key = Some(parse_exports(exports));
            }
            if trimmed.starts_with("ready") {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Serve {
            child,
            url: url.expect("serve printed its url"),
            management_endpoint: management_endpoint.expect("serve printed its managementEndpoint"),
            key,
            printed,
        }
    }

    /// `http://ADDR` of a listener `serve` printed as `label: http://ADDR/...`
    /// (`admin`, `console`), if it printed one.
    pub fn printed_http(&self, label: &str) -> Option<String> {
        let prefix = format!("{label}:");
        self.printed.iter().find_map(|line| {
            let url = line.trim().strip_prefix(&prefix)?.trim();
            let addr = url.split('/').nth(2)?;
            Some(format!("http://{addr}"))
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the server now, in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }

    /// Sends `signal` (e.g. "TERM", "KILL") to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the server to exit; its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...` as `serve` prints it.
fn parse_exports(exports: &str) -> wsgate::Credentials {
    let var = |name: &str| {
        exports
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    wsgate::Credentials {
        access_key_id: var("AWS_ACCESS_KEY_ID"),
        secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
        session_token: None,
    }
}

/// Resident memory of a process, in bytes (0 once it is gone).
pub fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Writes `wsgate.toml` with `text` into `dir`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("wsgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}
