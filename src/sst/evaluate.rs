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
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    // What the config prints is shown, within bounds; the last lines are
    // kept for an error that comes without a message of the evaluator's.
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Printed::default()));
    let stderr_reader = child.stderr.take().map(|stderr| {
        let printed = std::sync::Arc::clone(&printed);
        tokio::spawn(async move {
            let mut stderr = BufReader::new(stderr);
            while let Ok(Some(line)) = next_line_bounded(&mut stderr, PRINTED_LINE_KEPT).await {
                printed.lock().expect("lock poisoned").show(line);
            }
        })
    });
    let exchange = async {
        while let Some(bounded) = next_line_bounded(&mut stdout, PROTOCOL_LINE_MAX)
            .await
            .map_err(|e| EvaluateError::Run(format!("reading the evaluator: {e}")))?
        {
            let Some(message) = bounded.text.strip_prefix(PROTOCOL) else {
                printed.lock().expect("lock poisoned").show(bounded);
                continue;
            };
            if bounded.cut > 0 {
                return Err(EvaluateError::Run(format!(
                    "the evaluator's answer is over {} MiB: more than any app defines",
                    PROTOCOL_LINE_MAX >> 20
                )));
            }
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
        let last: Vec<String> = printed
            .lock()
            .expect("lock poisoned")
            .last
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
    if let Some(reader) = stderr_reader {
        reader.abort();
    }
    let _ = child.wait().await;
    outcome.unwrap_or_else(|_| {
        Err(EvaluateError::Run(format!(
            "evaluating {} took longer than {} s (does run() wait on something that never ends?)",
            evaluation.config_file.display(),
            evaluation.timeout.as_secs()
        )))
    })
}

/// Bytes of one line the config prints that are shown; the rest of a
/// longer line is read and dropped.
const PRINTED_LINE_KEPT: usize = 8 * 1024;
/// Bytes of what the config prints that are shown in all; past that,
/// lines are counted, not shown.
const PRINTED_KEPT: usize = 1024 * 1024;
/// The largest protocol line (the definition) the evaluator may send.
const PROTOCOL_LINE_MAX: usize = 64 * 1024 * 1024;

/// A line read with a bound: its kept text and how many bytes were cut.
struct BoundedLine {
    text: String,
    cut: usize,
}

/// Reads one line (without its newline), keeping at most `max` bytes of
/// it: a longer line is read to its end and the rest dropped, so a config
/// that prints one huge line costs `max`, not the line. `None` at the end.
async fn next_line_bounded<R>(reader: &mut R, max: usize) -> std::io::Result<Option<BoundedLine>>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    let mut line = Vec::new();
    let mut cut = 0;
    let mut read_any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(read_any.then(|| BoundedLine {
                text: String::from_utf8_lossy(&line).into_owned(),
                cut,
            }));
        }
        read_any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        let take = chunk.len().min(max.saturating_sub(line.len()));
        line.extend_from_slice(&chunk[..take]);
        cut += chunk.len() - take;
        let consumed = newline.map_or(chunk.len(), |at| at + 1);
        reader.consume(consumed);
        if newline.is_some() {
            return Ok(Some(BoundedLine {
                text: String::from_utf8_lossy(&line).into_owned(),
                cut,
            }));
        }
    }
}

/// What the config printed: shown in the log up to `PRINTED_KEPT` bytes,
/// the last lines kept for errors.
#[derive(Default)]
struct Printed {
    shown: usize,
    not_shown: usize,
    last: std::collections::VecDeque<String>,
}

impl Printed {
    fn show(&mut self, line: BoundedLine) {
        let mut text = line.text;
        if line.cut > 0 {
            text.push_str(&format!("… ({} more bytes not shown)", line.cut));
        }
        if self.shown < PRINTED_KEPT {
            self.shown += text.len();
            tracing::info!(target: "wsgate::sst", "{text}");
        } else {
            self.not_shown += 1;
            if self.not_shown == 1 {
                tracing::warn!(
                    target: "wsgate::sst",
                    "the config printed more than {} KiB; the rest is not shown",
                    PRINTED_KEPT >> 10
                );
            }
        }
        if self.last.len() == 12 {
            self.last.pop_front();
        }
        self.last.push_back(text);
    }
}

/// The value of a JSON field as text, for messages.
pub fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
