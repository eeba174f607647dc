//! Runs the evaluator (`runtimes/sst/`) on an app's `sst.config.ts` in
//! Node.js: answers its requests (the address each API is served on),
//! forwards what the config prints to the log, bounds it in time, and
//! returns the definition or the config's own error with its file:line.

use super::definition::Definition;
use crate::process::tree;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const EVALUATE: &str = include_str!("../../runtimes/sst/evaluate.mjs");
pub const HOOKS: &str = include_str!("../../runtimes/sst/hooks.mjs");
pub const PULUMI: &str = include_str!("../../runtimes/sst/pulumi.mjs");
pub const COMPONENTS: &str = include_str!("../../runtimes/sst/components.mjs");
pub const CATALOG: &str = include_str!("../../runtimes/sst/catalog.mjs");
/// SST's namespaces, classes and statics (`scripts/sst-catalog`).
pub const CATALOG_JSON: &str = include_str!("../../runtimes/sst/catalog.json");

/// Marks the evaluator's protocol lines among whatever else is printed.
const PROTOCOL: &str = "@@wsgate@@";

/// How the config is evaluated.
pub struct Evaluation<'a> {
    pub config_file: &'a Path,
    pub stage: &'a str,
    /// `$dev`: true under `serve`.
    pub dev: bool,
    pub region: &'a str,
    /// The esbuild JavaScript API the hooks compile TypeScript with.
    pub esbuild_js: &'a Path,
    /// `SST_SECRET_<name>` values given to the config.
    pub secrets: &'a BTreeMap<String, String>,
    pub timeout: Duration,
}

/// What an API is served on, as the evaluator is told.
#[derive(Debug, Clone)]
pub struct ListenAnswer {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

/// Why the config could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("{message}")]
    Config {
        message: String,
        /// `infra/api.ts:12:5`, in the app's own files.
        location: Option<String>,
        /// Set when the error is a linked or used secret with no value.
        secret: Option<String>,
    },
    #[error("{0}")]
    Run(String),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Message {
    Listen {
        id: u64,
        api: String,
    },
    Result {
        definition: Box<Definition>,
    },
    Error {
        kind: String,
        message: String,
        location: Option<String>,
        secret: Option<String>,
        stack: String,
    },
}

/// Writes the evaluator's files into `state_dir/runtimes/sst/`.
pub fn write_runtime(state_dir: &Path) -> Result<PathBuf, String> {
    let folder = state_dir.join("runtimes").join("sst");
    std::fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    for (name, text) in [
        ("evaluate.mjs", EVALUATE),
        ("hooks.mjs", HOOKS),
        ("pulumi.mjs", PULUMI),
        ("components.mjs", COMPONENTS),
        ("catalog.mjs", CATALOG),
        ("catalog.json", CATALOG_JSON),
    ] {
        let path = folder.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(folder)
}

/// Evaluates the config; `listen` answers, for each API the config
/// creates, the address it is served on.
pub async fn evaluate(
    evaluation: &Evaluation<'_>,
    mut listen: impl FnMut(&str) -> Result<ListenAnswer, String>,
) -> Result<Definition, EvaluateError> {
    let app_dir = evaluation
        .config_file
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let runtime = write_runtime(&app_dir.join(".wsgate")).map_err(EvaluateError::Run)?;
    let mut command = std::process::Command::new("node");
    command
        .args([
            "--enable-source-maps",
            "--experimental-detect-module",
            "--no-warnings",
        ])
        .arg(runtime.join("evaluate.mjs"))
        .current_dir(&app_dir)
        // The config sees the user's environment, as under SST.
        .env("WSGATE_SST_CONFIG", evaluation.config_file)
        .env("WSGATE_STAGE", evaluation.stage)
        .env("WSGATE_DEV", if evaluation.dev { "1" } else { "0" })
        .env("WSGATE_REGION", evaluation.region)
        .env("WSGATE_ESBUILD_JS", evaluation.esbuild_js)
        .envs(
            evaluation
                .secrets
                .iter()
                .map(|(name, value)| (format!("SST_SECRET_{name}"), value)),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let prepared = tree::prepare(&mut command);
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            prepared.abandon();
            return Err(EvaluateError::Run(format!(
                "cannot run node (Node.js 20 or newer evaluates sst.config.ts): {e}"
            )));
        }
    };
    // Everything the config starts ends with its evaluation.
    let _tree = prepared.started(child.id().unwrap_or_default());
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    // The last lines the config (or Node) printed, for an error that
    // comes without a message of the evaluator's own.
    let last_lines = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
    if let Some(stderr) = child.stderr.take() {
        let last_lines = std::sync::Arc::clone(&last_lines);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "wsgate::sst", "{line}");
                let mut last = last_lines.lock().expect("lock poisoned");
                if last.len() == 12 {
                    last.pop_front();
                }
                last.push_back(line);
            }
        });
    }
    let exchange = async {
        while let Some(line) = stdout
            .next_line()
            .await
            .map_err(|e| EvaluateError::Run(format!("reading the evaluator: {e}")))?
        {
            let Some(message) = line.strip_prefix(PROTOCOL) else {
                tracing::info!(target: "wsgate::sst", "{line}");
                continue;
            };
            let message: Message = serde_json::from_str(message).map_err(|e| {
                EvaluateError::Run(format!(
                    "the evaluator sent something unreadable ({e}): {message}"
                ))
            })?;
            match message {
                Message::Listen { id, api } => {
                    let answer = match listen(&api) {
                        Ok(a) => json!({ "id": id, "host": a.host, "port": a.port, "tls": a.tls }),
                        Err(error) => json!({ "id": id, "error": error }),
                    };
                    let mut line = answer.to_string();
                    line.push('\n');
                    stdin
                        .write_all(line.as_bytes())
                        .await
                        .map_err(|e| EvaluateError::Run(format!("answering the evaluator: {e}")))?;
                }
                Message::Result { definition } => return Ok(*definition),
                Message::Error {
                    kind,
                    message,
                    location,
                    secret,
                    stack,
                } => {
                    tracing::debug!(%stack, "sst.config.ts failed");
                    let message =
                        if kind == "Error" || kind == "NotSupported" || kind == "SecretMissing" {
                            message
                        } else {
                            format!("{kind}: {message}")
                        };
                    return Err(EvaluateError::Config {
                        message,
                        location,
                        secret,
                    });
                }
            }
        }
        // Give the stderr reader a moment to take the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let last: Vec<String> = last_lines
            .lock()
            .expect("lock poisoned")
            .iter()
            .cloned()
            .collect();
        Err(EvaluateError::Run(format!(
            "evaluating the config failed before it could say why; it printed:\n{}",
            last.join("\n")
        )))
    };
    let outcome = tokio::time::timeout(evaluation.timeout, exchange).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    outcome.unwrap_or_else(|_| {
        Err(EvaluateError::Run(format!(
            "evaluating {} took longer than {} s (does run() wait on something that never ends?)",
            evaluation.config_file.display(),
            evaluation.timeout.as_secs()
        )))
    })
}

/// The value of a JSON field as text, for messages.
pub fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
