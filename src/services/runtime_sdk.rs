//! The AWS SDK that Lambda's runtimes provide: the Node.js 18+ runtimes
//! ship AWS SDK v3 (`@aws-sdk/*`), the Python runtimes ship boto3, and
//! handlers import them without installing them. wsgate provides the same,
//! pinned and cached (`<cache>/...`, as esbuild is), found after the app's
//! own packages as on Lambda: Node.js packages as esbuild `nodePaths` for
//! the handler's bundle, installed when a bundle first needs one; boto3 at
//! the end of a Python handler's `sys.path`, installed when the machine's
//! `python3` has none.

use crate::toolchain::{cache_dir, npm_package};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The AWS SDK for JavaScript v3 version the `@aws-sdk/*` packages are
/// pinned to.
pub const NODE_SDK_VERSION: &str = "3.1178.0";
/// The boto3 version provided to Python handlers.
pub const BOTO3_VERSION: &str = "1.44.18";

/// The `node_modules` folders of the SDK packages installed so far, for
/// esbuild's `nodePaths`.
pub fn node_paths() -> Vec<PathBuf> {
    let scope = cache_dir().join("@aws-sdk");
    let Ok(entries) = std::fs::read_dir(&scope) else {
        return Vec::new();
    };
    let suffix = format!("-{NODE_SDK_VERSION}");
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(&suffix))
        .map(|e| e.path().join("node_modules"))
        .filter(|p| p.is_dir())
        .collect();
    paths.sort();
    paths
}

/// The `@aws-sdk/*` packages a failed build could not resolve, from
/// esbuild's `Could not resolve "@aws-sdk/client-x"` errors.
pub fn unresolved_sdk_packages(build_errors: &str) -> Vec<String> {
    let mut packages: Vec<String> = build_errors
        .split("Could not resolve \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter_map(|specifier| {
            let mut parts = specifier.split('/');
            match (parts.next(), parts.next()) {
                (Some("@aws-sdk"), Some(name)) if is_package_name(name) => {
                    Some(format!("@aws-sdk/{name}"))
                }
                _ => None,
            }
        })
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

/// A scoped package's name as npm allows it (no leading `.` or `_`).
fn is_package_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Installs the provided SDK's `packages` (pinned) into the cache.
pub fn install_node(packages: &[String]) -> Result<(), String> {
    for package in packages {
        npm_package(
            package,
            NODE_SDK_VERSION,
            "a handler imports the AWS SDK that Lambda's Node.js runtime provides",
        )?;
    }
    Ok(())
}

/// A folder to append to a Python handler's `sys.path` for boto3, or
/// `None` when the machine's `python3` imports boto3 itself.
pub fn python_path() -> Result<Option<PathBuf>, String> {
    static FOUND: OnceLock<Result<Option<PathBuf>, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let has_boto3 = Command::new("python3")
                .args(["-c", "import boto3"])
                .output()
                .is_ok_and(|o| o.status.success());
            if has_boto3 {
                Ok(None)
            } else {
                install_boto3().map(Some)
            }
        })
        .clone()
}

/// boto3, pinned, installed once into `<cache>/boto3-<version>`.
fn install_boto3() -> Result<PathBuf, String> {
    crate::toolchain::pip_package(
        "boto3",
        BOTO3_VERSION,
        "Python handlers get boto3 as Lambda provides it",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unresolved_sdk_packages_are_read_from_esbuild_errors() {
        let errors = "src/connect.ts:1:31: Could not resolve \"@aws-sdk/client-dynamodb\"\n\
                      src/connect.ts:2:27: Could not resolve \"@aws-sdk/lib-dynamodb/dist-cjs\"\n\
                      src/connect.ts:3:20: Could not resolve \"left-pad\"\n\
                      src/x.ts:1:1: Could not resolve \"@aws-sdk/client-dynamodb\"\n\
                      src/y.ts:1:1: Could not resolve \"@aws-sdk/../../etc\"";
        assert_eq!(
            unresolved_sdk_packages(errors),
            ["@aws-sdk/client-dynamodb", "@aws-sdk/lib-dynamodb"]
        );
    }
}
