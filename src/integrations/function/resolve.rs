//! Resolves SST handler strings (`src/connect.handler`) to a file and an
//! export, as SST does, and bundles Node.js handlers with esbuild as SST
//! does (`runtimes/node/build.mjs`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Extensions tried for a handler path, in SST's order: Node.js, then Python.
const NODE_EXTENSIONS: &[&str] = &[".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"];

pub const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/node/bootstrap.mjs");
pub const PYTHON_BOOTSTRAP: &str = include_str!("../../../runtimes/python/bootstrap.py");
pub const NODE_BUILD: &str = include_str!("../../../runtimes/node/build.mjs");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Node,
    Python,
}

/// A Python handler's files: its own and the modules beside it.
pub fn python_inputs(source: &Path) -> Vec<PathBuf> {
    let mut inputs = vec![source.to_path_buf()];
    if let Some(dir) = source.parent()
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        inputs.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "py") && p != source),
        );
    }
    inputs
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub runtime: Runtime,
    /// The source file the handler string names.
    pub source: PathBuf,
    /// The file the bootstrap loads (the bundle, for Node.js).
    pub entry: PathBuf,
    pub export: String,
    /// The files the handler is made of.
    pub inputs: Vec<PathBuf>,
}

/// Finds the file a handler string names, relative to `dir`.
pub fn find(dir: &Path, handler: &str) -> Result<(Runtime, PathBuf, String), String> {
    let (path, export) = handler
        .rsplit_once('.')
        .ok_or_else(|| format!("\"{handler}\" is not \"<file path>.<export>\""))?;
    let mut tried = Vec::new();
    for (runtime, extensions) in [
        (Runtime::Node, NODE_EXTENSIONS),
        (Runtime::Python, &[".py"][..]),
    ] {
        for extension in extensions {
            let candidate = dir.join(format!("{path}{extension}"));
            if candidate.is_file() {
                let absolute = std::fs::canonicalize(&candidate).unwrap_or(candidate);
                return Ok((runtime, absolute, export.to_string()));
            }
            tried.push(candidate.display().to_string());
        }
    }
    Err(format!(
        "no handler file for \"{handler}\"; tried {}",
        tried.join(", ")
    ))
}

/// Bundles `source` into `out` with the build script; returns the files
/// the bundle was made of (a change to any of them calls for a rebuild).
/// An `@aws-sdk/*` package neither the app nor the cache has is installed
/// (as Lambda's runtime provides it) and the build tried once more.
pub fn build(
    dir: &Path,
    state_dir: &Path,
    source: &Path,
    out: &Path,
    options: &BuildOptions,
) -> Result<Vec<PathBuf>, String> {
    match run_build(dir, state_dir, source, out, options) {
        Err(errors) => {
            let missing = crate::services::runtime_sdk::unresolved_sdk_packages(&errors);
            if missing.is_empty() {
                return Err(format!("{} does not build:\n{errors}", source.display()));
            }
            crate::services::runtime_sdk::install_node(&missing)?;
            run_build(dir, state_dir, source, out, options)
                .map_err(|errors| format!("{} does not build:\n{errors}", source.display()))
        }
        built => built,
    }
}

/// What a Node.js handler is built with, besides its source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOptions {
    /// SST's `nodejs` function options.
    pub nodejs: Option<serde_json::Value>,
    /// The Lambda runtime (`nodejs22.x`): the bundle's target.
    pub runtime: Option<String>,
    /// Where else packages resolve: the function's layers' `node_modules`.
    pub node_paths: Vec<PathBuf>,
}

impl BuildOptions {
    /// The bundle's file name: `.cjs` for `nodejs.format: "cjs"`, as SST
    /// names it, else `.mjs`.
    pub fn bundle_file(&self) -> &'static str {
        let cjs = self
            .nodejs
            .as_ref()
            .and_then(|n| n.get("format"))
            .and_then(serde_json::Value::as_str)
            == Some("cjs");
        if cjs { "index.cjs" } else { "index.mjs" }
    }

    /// A stable text of the options, for telling builds apart.
    pub fn key(&self) -> String {
        serde_json::json!({ "nodejs": self.nodejs, "runtime": self.runtime, "nodePaths": self.node_paths }).to_string()
    }
}

/// One run of the build script: the inputs, or esbuild's errors.
fn run_build(
    dir: &Path,
    state_dir: &Path,
    source: &Path,
    out: &Path,
    options: &BuildOptions,
) -> Result<Vec<PathBuf>, String> {
    let esbuild = crate::toolchain::esbuild(dir)
        .map_err(|e| format!("{} needs esbuild to be built: {e}", source.display()))?;
    let request = serde_json::json!({
        "esbuild": esbuild.js_api(),
        "entry": source,
        "outfile": out,
        "cwd": dir,
        "nodejs": options.nodejs,
        "runtime": options.runtime,
        // The layers' packages before the SDK Lambda's runtime provides,
        // as Lambda's NODE_PATH lists /opt before the runtime's own.
        "nodePaths": options
            .node_paths
            .iter()
            .cloned()
            .chain(crate::services::runtime_sdk::node_paths())
            .collect::<Vec<_>>(),
    });
    let output = Command::new("node")
        .arg(state_dir.join("runtimes").join("build.mjs"))
        .arg(request.to_string())
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run node to build {}: {e}", source.display()))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    #[derive(serde::Deserialize)]
    struct Built {
        inputs: Vec<PathBuf>,
    }
    let built: Built = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "the build of {} said something unreadable: {e}",
            source.display()
        )
    })?;
    Ok(built.inputs)
}

/// The folders Lambda's Node.js runtimes resolve a layer's packages from
/// (its NODE_PATH: `/opt/nodejs/node_modules`, `/opt/nodejs/node<major>/
/// node_modules`), for each layer that has them.
pub fn layer_node_paths(layers: &[PathBuf]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for layer in layers {
        let nodejs = layer.join("nodejs");
        paths.push(nodejs.join("node_modules"));
        if let Ok(entries) = std::fs::read_dir(&nodejs) {
            let mut versioned: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("node"))
                        && p.join("node_modules").is_dir()
                })
                .map(|p| p.join("node_modules"))
                .collect();
            versioned.sort();
            paths.extend(versioned);
        }
    }
    paths.retain(|p| p.is_dir());
    paths
}

/// The folders Lambda's Python runtimes import a layer's modules from
/// (`/opt/python`, `/opt/python/lib/python3.X/site-packages`).
pub fn layer_python_paths(layers: &[PathBuf]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for layer in layers {
        let python = layer.join("python");
        paths.push(python.clone());
        if let Ok(entries) = std::fs::read_dir(python.join("lib")) {
            let mut versioned: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path().join("site-packages"))
                .filter(|p| p.is_dir())
                .collect();
            versioned.sort();
            paths.extend(versioned);
        }
    }
    paths.retain(|p| p.is_dir());
    paths
}

/// What runs an app's Python handlers.
enum PythonProject {
    /// A `pyproject.toml`, and `uv` on the PATH.
    Uv,
    /// The app's virtual environment's interpreter (`.venv`, `venv`).
    Venv(PathBuf),
    /// The machine's `python3`.
    None,
}

fn python_project(app_dir: &Path) -> PythonProject {
    let uv_on_path = || {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("uv").is_file()))
    };
    if app_dir.join("pyproject.toml").is_file() && uv_on_path() {
        return PythonProject::Uv;
    }
    for venv in [".venv", "venv"] {
        let python = app_dir.join(venv).join("bin").join("python3");
        if python.is_file() {
            return PythonProject::Venv(python);
        }
    }
    PythonProject::None
}

/// Writes the bootstraps wsgate ships into the state folder.
pub fn write_bootstraps(state_dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let folder = state_dir.join("runtimes");
    std::fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let node = folder.join("bootstrap.mjs");
    let python = folder.join("bootstrap.py");
    let build = folder.join("build.mjs");
    for (path, text) in [
        (&node, NODE_BOOTSTRAP),
        (&python, PYTHON_BOOTSTRAP),
        (&build, NODE_BUILD),
    ] {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok((node, python))
}

/// The interpreter and bootstrap that run a resolved handler of the app
/// in `app_dir`.
pub fn program(app_dir: &Path, state_dir: &Path, runtime: Runtime) -> (PathBuf, Vec<String>) {
    let folder = state_dir.join("runtimes");
    match runtime {
        // Source maps: a handler's stack traces name its own files.
        Runtime::Node => (
            "node".into(),
            vec![
                "--enable-source-maps".into(),
                folder.join("bootstrap.mjs").display().to_string(),
            ],
        ),
        Runtime::Python => {
            let bootstrap = folder.join("bootstrap.py").display().to_string();
            match python_project(app_dir) {
                // As SST runs Python handlers: `uv run` in the app's uv
                // project (pkg/runtime/python/python.go), so its locked
                // dependencies are there.
                PythonProject::Uv => (
                    "uv".into(),
                    vec![
                        "run".into(),
                        "--project".into(),
                        app_dir.display().to_string(),
                        "python".into(),
                        bootstrap,
                    ],
                ),
                // Without uv, the environment `uv sync` (or venv) made.
                PythonProject::Venv(python) => (python, vec![bootstrap]),
                PythonProject::None => ("python3".into(), vec![bootstrap]),
            }
        }
    }
}
