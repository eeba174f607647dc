//! Serverless Framework services (a folder with `serverless.yml`): the
//! framework's own packaging (`serverless package`, v3, with the service's
//! plugins) writes the CloudFormation template wsgate reads, so variables
//! (`${self:}`, `${opt:stage}`, `${sls:stage}`, `${env:}`, `${file()}`),
//! `provider.websocketsApi*`, `functions.*.events[].websocket` and
//! `resources` mean what the framework makes of them. The functions' code
//! is the service's folder, as the package zips it.

use super::sam::LOCAL_CODE_BUCKET;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The files that make a folder a Serverless service.
pub const SERVERLESS_FILES: &[&str] = &["serverless.yml", "serverless.yaml"];
/// The framework version used when the service has none installed (v4
/// needs a login; v3 packages offline).
pub const FRAMEWORK_VERSION: &str = "3.40.0";
/// serverless-offline's WebSocket port (its `websocketPort` default).
pub const OFFLINE_WEBSOCKET_PORT: u16 = 3001;
const PACKAGE_TIMEOUT: Duration = Duration::from_secs(300);

/// Where wsgate has the service packaged (not `.serverless`, which
/// `serverless deploy` uses).
fn package_dir(service_dir: &Path) -> PathBuf {
    service_dir.join(".wsgate").join("serverless")
}

/// A packaged service.
#[derive(Debug, Clone)]
pub struct Packaged {
    /// `provider.stackName`, else `<service>-<stage>`.
    pub stack_name: String,
    /// The template, its functions' code pointed at the service's folder.
    pub template: PathBuf,
    /// `custom.serverless-offline.websocketPort` (or its default).
    pub websocket_port: u16,
    /// `provider.region` (the framework's default is us-east-1).
    pub region: Option<String>,
}

/// Runs `serverless package` for `stage` (the service's own default when
/// `None`).
pub async fn package(service_dir: &Path, stage: Option<&str>) -> Result<Packaged, String> {
    let (program, mut args) = cli(service_dir)?;
    let out = package_dir(service_dir);
    args.extend([
        "package".into(),
        "--package".into(),
        out.display().to_string(),
    ]);
    if let Some(stage) = stage {
        args.extend(["--stage".into(), stage.to_string()]);
    }
    let started = std::time::Instant::now();
    let mut command = tokio::process::Command::new(program);
    // No telemetry, notifications or prompts: they need the network or a
    // terminal, and packaging needs neither.
    command
        .args(&args)
        .current_dir(service_dir)
        .env("SLS_TELEMETRY_DISABLED", "1")
        .env("SLS_NOTIFICATIONS_MODE", "off")
        .env("SLS_INTERACTIVE_SETUP_DISABLE", "1");
    let output = super::run_tool(command, "`serverless package`", PACKAGE_TIMEOUT).await?;
    if !output.status.success() {
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // `${aws:accountId}` is resolved through STS while packaging.
        let hint = if said.contains("credentials not found") || said.contains("sts.amazonaws.com") {
            "\n(variables the framework resolves through AWS, such as ${aws:accountId}, ${ssm:} or ${cf:}, need AWS while packaging; wsgate packages offline: give them another source, e.g. ${env:ACCOUNT_ID, '000000000000'})"
        } else {
            ""
        };
        return Err(format!(
            "`serverless package` failed ({}):\n{said}{hint}",
            output.status
        ));
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "serverless package"
    );
    read_package(service_dir, &out)
}

/// The service's own framework (`node_modules/.bin/serverless`), else
/// v3 from wsgate's cache.
fn cli(service_dir: &Path) -> Result<(PathBuf, Vec<String>), String> {
    for name in ["serverless", "sls"] {
        let local = service_dir.join("node_modules").join(".bin").join(name);
        if local.is_file() {
            return Ok((local, Vec::new()));
        }
    }
    if let Some(version) = framework_version(service_dir)
        && version
            .trim_start_matches(['^', '~', '>', '=', ' '])
            .starts_with('4')
    {
        return Err(format!(
            "not supported by wsgate: the service asks for Serverless Framework {version} (frameworkVersion), which packages only after a login to Serverless Inc.; wsgate packages with v3 offline: `npm install --save-dev serverless@3` in the service, with frameworkVersion \"3\""
        ));
    }
    let package = crate::toolchain::npm_package(
        "serverless",
        FRAMEWORK_VERSION,
        "Serverless services are packaged by the framework",
    )?;
    Ok((
        "node".into(),
        vec![
            package
                .join("bin")
                .join("serverless.js")
                .display()
                .to_string(),
        ],
    ))
}

/// `frameworkVersion` in serverless.yml, as written.
fn framework_version(service_dir: &Path) -> Option<String> {
    let text = SERVERLESS_FILES
        .iter()
        .find_map(|name| std::fs::read_to_string(service_dir.join(name)).ok())?;
    text.lines().find_map(|line| {
        let value = line.strip_prefix("frameworkVersion:")?;
        let value = value.split(" #").next().unwrap_or(value).trim();
        Some(value.trim_matches(['\'', '"']).to_string())
    })
}

/// The packaged template, with each function's code (the package's zip in
/// the deployment bucket) pointed at the service's folder, which the zip
/// holds.
fn read_package(service_dir: &Path, out: &Path) -> Result<Packaged, String> {
    let state_file = out.join("serverless-state.json");
    let state: Value = std::fs::read_to_string(&state_file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            format!(
                "`serverless package` wrote no readable {}",
                state_file.display()
            )
        })?;
    let service = &state["service"];
    let name = service["service"].as_str().unwrap_or("service");
    let stage = service["provider"]["stage"].as_str().unwrap_or("dev");
    let stack_name = service["provider"]["stackName"]
        .as_str()
        .map_or_else(|| format!("{name}-{stage}"), String::from);
    let websocket_port = service["custom"]["serverless-offline"]["websocketPort"]
        .as_u64()
        .or_else(|| {
            service["custom"]["serverless-offline"]["websocketPort"]
                .as_str()?
                .parse()
                .ok()
        })
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(OFFLINE_WEBSOCKET_PORT);
    let packaged = out.join("cloudformation-template-update-stack.json");
    let mut template: Value = std::fs::read_to_string(&packaged)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            format!(
                "`serverless package` wrote no readable {}",
                packaged.display()
            )
        })?;
    let code_dir = pathdiff(service_dir, out);
    for resource in template
        .get_mut("Resources")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|r| r.values_mut())
    {
        if resource["Type"] != "AWS::Lambda::Function" {
            continue;
        }
        let code = &mut resource["Properties"]["Code"];
        if code["S3Bucket"] == serde_json::json!({ "Ref": "ServerlessDeploymentBucket" }) {
            *code = serde_json::json!({ "S3Bucket": LOCAL_CODE_BUCKET, "S3Key": code_dir });
        }
    }
    let local = out.join("wsgate-template.json");
    std::fs::write(
        &local,
        serde_json::to_string_pretty(&template).unwrap_or_default(),
    )
    .map_err(|e| format!("cannot write {}: {e}", local.display()))?;
    Ok(Packaged {
        stack_name,
        template: local,
        websocket_port,
        region: service["provider"]["region"].as_str().map(String::from),
    })
}

/// `to` relative to `from`, both in the service folder (`..` steps up).
fn pathdiff(to: &Path, from: &Path) -> String {
    let from = from.strip_prefix(to).unwrap_or(from);
    let ups = from.components().count();
    if ups == 0 {
        ".".into()
    } else {
        vec![".."; ups].join("/")
    }
}
