//! One function instance: a process started with `AWS_LAMBDA_RUNTIME_API`
//! pointing at its own Runtime API server, watched for exit and memory.

use super::runtime_api::{Invocation, RuntimeApi};
use crate::auth::keyring::SessionLease;
use crate::process::tree::{self, ProcessTree};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

/// How an exit over the memory limit is told (metrics count these apart).
pub const MEMORY_EXCEEDED: &str = "memory limit";

/// How often an instance's memory use is checked.
const MEMORY_CHECK_EVERY: Duration = Duration::from_millis(100);
/// Longest output line logged as-is; longer lines are cut.
const MAX_LOG_LINE: usize = 8 * 1024;

/// How to start an instance.
/// What an instance gets when it starts: variables computed then, and the
/// session credentials it holds until it ends.
pub struct InstanceEnv {
    pub vars: Vec<(String, String)>,
    pub lease: Option<SessionLease>,
}

#[derive(Debug, Clone)]
pub struct Launch {
    /// Label for logs, e.g. the route key.
    pub label: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub memory_limit_bytes: u64,
    /// What the function's instances printed while starting, shared by
    /// all of them.
    pub startup_output: Arc<StartupOutput>,
}

/// The lines a function's instances print while they start (before their
/// first invocation): a library's warning at load is the same for every
/// instance, so an instance's start-up line that an earlier instance
/// already printed is not shown again (a note says so, once per instance).
#[derive(Debug, Default)]
pub struct StartupOutput {
    seen: std::sync::Mutex<std::collections::HashSet<u64>>,
}

/// Start-up lines remembered per function, at most.
const STARTUP_LINES_KEPT: usize = 4096;

impl StartupOutput {
    /// Whether this start-up line is new (to be shown).
    fn first_time(&self, stream: &str, line: &[u8]) -> bool {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (stream, line).hash(&mut hasher);
        let mut seen = self.seen.lock().expect("lock poisoned");
        if seen.len() >= STARTUP_LINES_KEPT {
            return true;
        }
        seen.insert(hasher.finish())
    }
}

pub struct Instance {
    pub invocations: mpsc::Sender<Invocation>,
    /// The code generation it was started with (live code).
    pub generation: u64,
    /// `Some(reason)` once the process is gone.
    pub exited: watch::Receiver<Option<String>>,
    api: RuntimeApi,
    /// Everything the instance runs; killed when the last holder drops it.
    _tree: Arc<ProcessTree>,
    /// Stops the instance when it is dropped.
    _kill: DropGuard,
    /// The instance's credentials, revoked when it is dropped.
    _lease: Option<SessionLease>,
}

impl Instance {
    pub async fn start(
        id: u64,
        launch: &Launch,
        dynamic_env: InstanceEnv,
        function_arn: &str,
    ) -> Result<Instance, String> {
        let InstanceEnv {
            vars: dynamic_env,
            lease,
        } = dynamic_env;
        let (api, invocations) = RuntimeApi::start(function_arn.to_string())
            .await
            .map_err(|e| format!("cannot start the Runtime API: {e}"))?;
        let mut command = command(launch, &dynamic_env, Some(api.addr));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group and cgroup: whatever the handler starts
        // ends with the instance, and with wsgate.
        let prepared = tree::prepare(&mut command);
        let mut command = Command::from(command);
        command.kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                prepared.abandon();
                return Err(format!("cannot start {}: {e}", launch.program.display()));
            }
        };
        let Some(pid) = child.id() else {
            prepared.abandon();
            return Err(format!("{} exited at once", launch.program.display()));
        };
        let tree = Arc::new(prepared.started(pid));
        // Only this tree may take the instance's invocations.
        api.admit_only(Arc::clone(&tree));
        let label: Arc<str> = Arc::from(launch.label.as_str());
        for (output, stream) in [
            (
                child
                    .stdout
                    .take()
                    .map(|o| Box::new(o) as Box<dyn AsyncRead + Unpin + Send>),
                "stdout",
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|o| Box::new(o) as Box<dyn AsyncRead + Unpin + Send>),
                "stderr",
            ),
        ] {
            if let Some(output) = output {
                tokio::spawn(log_lines(
                    output,
                    Output {
                        label: Arc::clone(&label),
                        instance: id,
                        stream,
                        startup: Arc::clone(&launch.startup_output),
                        started: api.polled_watch(),
                    },
                ));
            }
        }
        let (exited_tx, exited) = watch::channel(None);
        let kill = CancellationToken::new();
        let memory_limit = launch.memory_limit_bytes;
        let watch_kill = kill.clone();
        let watched = Arc::clone(&tree);
        tokio::spawn(async move {
            let mut memory_check = tokio::time::interval(MEMORY_CHECK_EVERY);
            let reason = loop {
                tokio::select! {
                    status = child.wait() => {
                        break match status {
                            Ok(status) => format!("process exited ({status})"),
                            Err(e) => format!("process lost: {e}"),
                        };
                    }
                    _ = watch_kill.cancelled() => {
                        break "instance stopped".to_string();
                    }
                    _ = memory_check.tick() => {
                        // Like Lambda's, the limit covers everything the
                        // handler started.
                        let used = tree::resident_bytes(&watched.pids());
                        if used > memory_limit {
                            tracing::error!(
                                route = %label, instance = id,
                                used_mb = used / (1024 * 1024), limit_mb = memory_limit / (1024 * 1024),
                                "function exceeded its memory limit; instance killed"
                            );
                            break format!("{MEMORY_EXCEEDED} of {} MB exceeded", memory_limit / (1024 * 1024));
                        }
                    }
                }
            };
            // Whatever ended it, nothing it started outlives it.
            watched.kill();
            let _ = child.wait().await;
            tracing::debug!(route = %label, instance = id, %reason, "instance ended");
            let _ = exited_tx.send(Some(reason));
        });
        Ok(Instance {
            invocations,
            generation: 0,
            exited,
            api,
            _tree: tree,
            _kill: kill.drop_guard(),
            _lease: lease,
        })
    }

    /// Waits until the runtime asks for its first invocation (its handler
    /// loaded), or fails with why it did not: an init error, an exit, or
    /// `within` passing.
    pub async fn ready(&self, within: Duration) -> Result<(), String> {
        let mut exited = self.exited.clone();
        tokio::select! {
            _ = self.api.polled() => Ok(()),
            _ = exited.wait_for(Option::is_some) => Err(self.exit_reason()),
            _ = tokio::time::sleep(within) => Err(format!(
                "the handler did not finish loading within {} s",
                within.as_secs()
            )),
        }
    }

    pub fn is_alive(&self) -> bool {
        self.exited.borrow().is_none()
    }

    /// Why the instance ended, with the runtime's init error if it gave one.
    pub fn exit_reason(&self) -> String {
        let reason = self
            .exited
            .borrow()
            .clone()
            .unwrap_or_else(|| "instance failed".into());
        match self.api.init_error() {
            Some(init) => format!("{reason}; init error: {init}"),
            None => reason,
        }
    }
}

/// The command that runs an instance: exactly the environment the
/// function gets (Lambda's, SST's and its own, plus what interpreters need
/// to start: PATH, HOME, LANG, TZ), never wsgate's own.
pub fn command(
    launch: &Launch,
    dynamic_env: &[(String, String)],
    runtime_api: Option<std::net::SocketAddr>,
) -> std::process::Command {
    let mut command = std::process::Command::new(&launch.program);
    command
        .args(&launch.args)
        .current_dir(&launch.cwd)
        .env_clear()
        .envs(dynamic_env.iter().map(|(k, v)| (k, v)))
        .envs(launch.env.iter().map(|(k, v)| (k, v)));
    if let Some(addr) = runtime_api {
        command.env("AWS_LAMBDA_RUNTIME_API", addr.to_string());
    }
    for key in ["PATH", "HOME", "LANG", "TZ"] {
        if let Ok(value) = std::env::var(key)
            && !launch.env.iter().any(|(k, _)| k == key)
            && !dynamic_env.iter().any(|(k, _)| k == key)
        {
            command.env(key, value);
        }
    }
    command
}

/// One output stream of an instance, as it is logged.
struct Output {
    label: Arc<str>,
    instance: u64,
    stream: &'static str,
    startup: Arc<StartupOutput>,
    /// Turns true once the instance asked for its first invocation.
    started: watch::Receiver<bool>,
}

impl Output {
    /// Logs a line, unless it is start-up output an earlier instance of
    /// the function printed already; `noted` keeps the note to once.
    fn line(&self, line: &[u8], noted: &mut bool) {
        if !*self.started.borrow() && !self.startup.first_time(self.stream, line) {
            if !*noted {
                *noted = true;
                tracing::info!(
                    target: "wsgate::function",
                    route = %self.label,
                    instance = self.instance,
                    "(start-up output an earlier instance printed is not shown again)"
                );
            }
            return;
        }
        emit(&self.label, self.instance, self.stream, line);
    }
}

/// Forwards a process's output to the log, a line at a time, prefixed with
/// the route; any bytes are accepted (shown lossily), long lines are cut.
async fn log_lines(mut output: impl AsyncRead + Unpin, to: Output) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut noted = false;
    loop {
        let n = match output.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            to.line(&line[..line.len() - 1], &mut noted);
        }
        if pending.len() > MAX_LOG_LINE {
            to.line(&pending, &mut noted);
            pending.clear();
        }
    }
    if !pending.is_empty() {
        to.line(&pending, &mut noted);
    }
}

fn emit(label: &str, instance: u64, stream: &'static str, line: &[u8]) {
    let cut = &line[..line.len().min(MAX_LOG_LINE)];
    let text = String::from_utf8_lossy(cut);
    let text = text.trim_end_matches('\r');
    tracing::info!(target: "wsgate::function", route = %label, instance, "{}", text);
    if let Some(observer) = crate::gateway::observe::get() {
        observer.log_line(label, instance, stream, text);
    }
}
