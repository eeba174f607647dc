//! The Node.js tool wsgate drives for TypeScript: esbuild, the bundler SST
//! itself builds with. As SST does (it builds with the esbuild its CLI
//! embeds, github.com/evanw/esbuild in its go.mod, never the app's), wsgate
//! uses its own pinned copy, installed once with npm into its cache
//! (`$WSGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/wsgate`, else
//! `~/.cache/wsgate`): an app whose `node_modules` holds an old esbuild
//! (a dependency's) or one for another platform builds as under SST.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The esbuild wsgate builds with: the version SST's CLI embeds
/// (anomalyco/sst go.mod: github.com/evanw/esbuild v0.27.2).
pub const ESBUILD_VERSION: &str = "0.27.2";

/// One installed esbuild package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esbuild {
    /// The package folder (`.../node_modules/esbuild`).
    pub package: PathBuf,
}

impl Esbuild {
    /// The JavaScript API, for `import()`.
    pub fn js_api(&self) -> PathBuf {
        self.package.join("lib").join("main.js")
    }

    fn at(package: PathBuf) -> Option<Esbuild> {
        package
            .join("lib/main.js")
            .is_file()
            .then_some(Esbuild { package })
    }
}

/// The esbuild to use: `WSGATE_ESBUILD` (the package folder, or its
/// `bin/esbuild`), else wsgate's pinned one, installed now if it is
/// missing. The app's own (`app_dir`'s `node_modules`) is not used, as SST
/// does not use it.
pub fn esbuild(_app_dir: &Path) -> Result<Esbuild, String> {
    if let Some(path) = std::env::var_os("WSGATE_ESBUILD") {
        let path = std::fs::canonicalize(&path).unwrap_or_else(|_| PathBuf::from(&path));
        let package = if path.is_file() {
            // .../esbuild/bin/esbuild
            path.parent().and_then(Path::parent).map(Path::to_path_buf)
        } else {
            Some(path.clone())
        };
        return package.and_then(Esbuild::at).ok_or_else(|| {
            format!(
                "WSGATE_ESBUILD={} is not an esbuild package folder",
                path.display()
            )
        });
    }
    cached_esbuild()
}

/// wsgate's cache folder.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WSGATE_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("wsgate");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("wsgate")
}

/// The cached esbuild, installed once if it is not there yet.
fn cached_esbuild() -> Result<Esbuild, String> {
    let package = npm_package("esbuild", ESBUILD_VERSION, "TypeScript needs it")
        .map_err(|e| format!("{e}\nOr install it in the app: `npm install --save-dev esbuild`."))?;
    Esbuild::at(package.clone()).ok_or_else(|| {
        format!(
            "esbuild was installed but {} is incomplete",
            package.display()
        )
    })
}

/// An npm package, pinned, in wsgate's cache (`<cache>/<name>-<version>/
/// node_modules/<name>`), installed once (one caller at a time) when it is
/// not there yet; `why` says what needs it, for the log and errors.
pub fn npm_package(name: &str, version: &str, why: &str) -> Result<PathBuf, String> {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let root = cache_dir().join(format!("{name}-{version}"));
    let package = root.join("node_modules").join(name);
    let installed = |package: &Path| package.join("package.json").is_file();
    if installed(&package) {
        return Ok(package);
    }
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if installed(&package) {
        return Ok(package);
    }
    tracing::info!(
        "{why}: installing {name}@{version} once into {}",
        root.display()
    );
    // Installed beside, then moved in place: a failed or concurrent
    // install never leaves a half-written package where it is looked for.
    let staging = cache_dir().join(format!(
        "{name}-{version}.installing-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let output = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&staging)
        .arg(format!("{name}@{version}"))
        .output()
        .map_err(|e| format!("{why}: {name}, and npm could not be run to install it: {e}"))?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "{why}: {name}, and `npm install {name}@{version}` failed (offline?): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    if let Err(e) = std::fs::rename(&staging, &root)
        && !installed(&package)
    {
        return Err(format!("cannot move {name} into {}: {e}", root.display()));
    }
    let _ = std::fs::remove_dir_all(&staging);
    if installed(&package) {
        Ok(package)
    } else {
        Err(format!(
            "{name} was installed but {} is missing",
            package.display()
        ))
    }
}

/// `python3 -m pip install` into `target` (a folder for `sys.path`),
/// quietly and without prompts; the caller adds what to install.
pub fn pip_install(target: &Path) -> Command {
    let mut command = Command::new("python3");
    command
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
        ])
        .arg(target);
    command
}

/// A PyPI package, pinned, with its dependencies, in wsgate's cache
/// (`<cache>/<name>-<version>`, a folder for `sys.path`), installed once
/// (one caller at a time) with the machine's `python3 -m pip`; `why` says
/// what needs it.
pub fn pip_package(name: &str, version: &str, why: &str) -> Result<PathBuf, String> {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let target = cache_dir().join(format!("{name}-{version}"));
    // Written last, so a folder without it is an install that stopped.
    let marker = |target: &Path| target.join(".wsgate-installed");
    if marker(&target).is_file() {
        return Ok(target);
    }
    // One install at a time, in this process and across processes (tests,
    // a cluster's nodes on one machine).
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let _one_process =
        crate::state_dir::Lock::take(&cache_dir().join(format!("{name}-{version}.lock")))?;
    if marker(&target).is_file() {
        return Ok(target);
    }
    tracing::info!(
        "{why}: installing {name}=={version} once into {}",
        target.display()
    );
    // Installed beside, then moved in place, as the npm packages are.
    let staging = cache_dir().join(format!(
        "{name}-{version}.installing-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    let output = pip_install(&staging)
        .arg(format!("{name}=={version}"))
        .output()
        .map_err(|e| format!("{why}: cannot run python3 -m pip: {e}"))?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "{why}: `pip install {name}=={version}` failed (offline?): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    std::fs::write(marker(&staging), version)
        .map_err(|e| format!("cannot write into {}: {e}", staging.display()))?;
    let _ = std::fs::remove_dir_all(&target);
    if let Err(e) = std::fs::rename(&staging, &target)
        && !marker(&target).is_file()
    {
        return Err(format!("cannot move {name} into {}: {e}", target.display()));
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As SST, the app's own esbuild (here a broken one, as a dependency's
    /// old or other-platform copy is) is not what builds.
    #[test]
    fn the_app_s_own_esbuild_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let package = dir.path().join("node_modules/esbuild");
        std::fs::create_dir_all(package.join("lib")).unwrap();
        std::fs::write(package.join("lib/main.js"), "throw new Error('broken');").unwrap();
        let nested = dir.path().join("packages/app");
        std::fs::create_dir_all(&nested).unwrap();
        if std::env::var_os("WSGATE_ESBUILD").is_none() {
            let found = esbuild(&nested).unwrap();
            assert!(
                !found.package.starts_with(dir.path()),
                "{:?}",
                found.package
            );
            assert!(
                found
                    .package
                    .ends_with(format!("esbuild-{ESBUILD_VERSION}/node_modules/esbuild"))
            );
        }
    }
}
