//! Resolves SST handler strings (`src/connect.handler`) to a file and an
//! export, as SST does, builds TypeScript with esbuild, and checks at start
//! that the export exists.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Extensions tried for a handler path, in SST's order: Node.js, then Python.
const NODE_EXTENSIONS: &[&str] = &[".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"];
const TYPESCRIPT: &[&str] = &[".ts", ".tsx", ".mts", ".cts", ".jsx"];

pub const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/node/bootstrap.mjs");
pub const PYTHON_BOOTSTRAP: &str = include_str!("../../../runtimes/python/bootstrap.py");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Node,
    Python,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub runtime: Runtime,
    /// The source file the handler string names.
    pub source: PathBuf,
    /// The file the bootstrap loads (the esbuild output for TypeScript).
    pub entry: PathBuf,
    pub export: String,
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

/// Resolves and builds (TypeScript) a handler string; `check_export`
/// proves the export once the function's environment is known.
pub fn resolve(
    dir: &Path,
    state_dir: &Path,
    function_name: &str,
    handler: &str,
) -> Result<Resolved, String> {
    let (runtime, source, export) = find(dir, handler)?;
    let entry = if runtime == Runtime::Node && is_typescript(&source) {
        build_typescript(dir, state_dir, function_name, &source)?
    } else {
        source.clone()
    };
    Ok(Resolved {
        runtime,
        source,
        entry,
        export,
    })
}

fn is_typescript(path: &Path) -> bool {
    let name = path.to_string_lossy();
    TYPESCRIPT.iter().any(|ext| name.ends_with(ext))
}

/// esbuild from the app's `node_modules` (or `WSGATE_ESBUILD`).
fn find_esbuild(dir: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WSGATE_ESBUILD") {
        return Some(PathBuf::from(path));
    }
    let absolute = std::fs::canonicalize(dir).ok()?;
    absolute
        .ancestors()
        .map(|a| a.join("node_modules/.bin/esbuild"))
        .find(|p| p.is_file())
}

/// Bundles the handler's own modules into one ESM file under
/// `.wsgate/build/`, leaving packages external so they resolve from the
/// app's `node_modules` as in SST.
fn build_typescript(
    dir: &Path,
    state_dir: &Path,
    function_name: &str,
    source: &Path,
) -> Result<PathBuf, String> {
    let esbuild = find_esbuild(dir).ok_or_else(|| {
        format!(
            "{} is TypeScript and needs esbuild: run `npm install --save-dev esbuild` in {}",
            source.display(),
            dir.display()
        )
    })?;
    let out = state_dir
        .join("build")
        .join(function_name)
        .join("index.mjs");
    let output = Command::new(&esbuild)
        .arg(source)
        .args([
            "--bundle",
            "--platform=node",
            "--format=esm",
            "--packages=external",
            "--sourcemap=inline",
            "--log-level=error",
        ])
        .arg(format!("--outfile={}", out.display()))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", esbuild.display()))?;
    if !output.status.success() {
        return Err(format!(
            "esbuild could not build {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(out)
}

/// Writes the bootstraps wsgate ships into the state folder.
pub fn write_bootstraps(state_dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let folder = state_dir.join("runtimes");
    std::fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let node = folder.join("bootstrap.mjs");
    let python = folder.join("bootstrap.py");
    for (path, text) in [(&node, NODE_BOOTSTRAP), (&python, PYTHON_BOOTSTRAP)] {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok((node, python))
}

/// The interpreter and bootstrap that run a resolved handler.
pub fn program(state_dir: &Path, runtime: Runtime) -> (PathBuf, Vec<String>) {
    let folder = state_dir.join("runtimes");
    match runtime {
        Runtime::Node => (
            "node".into(),
            vec![folder.join("bootstrap.mjs").display().to_string()],
        ),
        Runtime::Python => (
            "python3".into(),
            vec![folder.join("bootstrap.py").display().to_string()],
        ),
    }
}
