//! SAM templates (`Transform: AWS::Serverless-2016-10-31`) expanded with
//! AWS's own transform, the `aws-sam-translator` package (the code the
//! CloudFormation service and `sam validate` run), so `Globals`, `Events`,
//! policy templates and `AWS::Serverless::WebSocketApi` mean exactly what
//! SAM says. It runs in the machine's `python3`, from a pinned copy in
//! wsgate's cache.
//!
//! Local code: the translator takes only S3 locations, so a local
//! `CodeUri` is given to it as `s3://wsgate-local-code/<folder>`, as
//! `sam package` would upload it, and read back from the translated
//! template's `Code` (see `LOCAL_CODE_BUCKET`).

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The transform SAM templates name.
pub const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";
/// CloudFormation's own language extensions (`Fn::Length`,
/// `Fn::ToJsonString`, `Fn::FindInMap`'s default, `Fn::ForEach`).
pub const LANGUAGE_EXTENSIONS: &str = "AWS::LanguageExtensions";
/// The pinned translator.
pub const TRANSLATOR_VERSION: &str = "1.115.0";
/// The bucket name a local folder is given to the translator under.
pub const LOCAL_CODE_BUCKET: &str = "wsgate-local-code";
const SCRIPT: &str = include_str!("../../runtimes/cloudformation/sam_translate.py");
const TIMEOUT: Duration = Duration::from_secs(120);

/// The template's transforms (`Transform` is one name or a list).
pub fn transforms(root: &Value) -> Vec<String> {
    match root.get("Transform") {
        Some(Value::String(name)) => vec![name.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// One problem the translator found, with the resource it is about.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranslatorError {
    pub logical_id: Option<String>,
    pub message: String,
}

#[derive(serde::Deserialize)]
struct Answer {
    template: Option<Value>,
    #[serde(default)]
    errors: Vec<TranslatorError>,
}

/// Expands a SAM template. `parameters` holds the parameter values and
/// pseudo parameters the translator may resolve.
pub async fn expand(
    mut root: Value,
    state_dir: &Path,
    parameters: &BTreeMap<String, String>,
    region: &str,
) -> Result<Value, Vec<TranslatorError>> {
    let single = |message: String| {
        vec![TranslatorError {
            logical_id: None,
            message,
        }]
    };
    give_local_code_as_s3(&mut root);
    // The translator expands only its own transform. The language
    // extensions (CloudFormation runs them first) are evaluated with the
    // other intrinsics, after it (`Fn::ForEach` is refused before).
    if let Some(object) = root.as_object_mut() {
        let others: Vec<Value> = transforms(&Value::Object(object.clone()))
            .into_iter()
            .filter(|t| t != SAM_TRANSFORM && t != LANGUAGE_EXTENSIONS)
            .map(Value::String)
            .collect();
        object.insert("Transform".into(), Value::String(SAM_TRANSFORM.into()));
        if !others.is_empty() {
            return Err(single(format!(
                "not supported by wsgate: the Transform {} beside SAM's",
                others
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let translator = tokio::task::spawn_blocking(|| {
        crate::toolchain::pip_package(
            "aws-sam-translator",
            TRANSLATOR_VERSION,
            "SAM templates are expanded with AWS's own transform",
        )
    })
    .await
    .map_err(|e| single(e.to_string()))?
    .map_err(single)?;
    let script = state_dir.join("runtimes").join("sam_translate.py");
    std::fs::create_dir_all(state_dir.join("runtimes"))
        .and_then(|()| std::fs::write(&script, SCRIPT))
        .map_err(|e| single(format!("cannot write {}: {e}", script.display())))?;
    let request = json!({ "template": root, "parameters": parameters, "region": region });
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .env("PYTHONPATH", &translator)
        // The translator reads no credentials; keep boto3 off the network.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| single(format!("cannot run python3 for SAM's transform: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let body = request.to_string();
    let write = async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(body.as_bytes()).await;
    };
    let (_, output) = tokio::time::timeout(TIMEOUT, async {
        tokio::join!(write, child.wait_with_output())
    })
    .await
    .map_err(|_| {
        single(format!(
            "SAM's transform took longer than {}s",
            TIMEOUT.as_secs()
        ))
    })?;
    let output = output.map_err(|e| single(format!("SAM's transform: {e}")))?;
    if !output.status.success() {
        return Err(single(format!(
            "SAM's transform failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .map_err(|e| single(format!("SAM's transform said something unreadable: {e}")))?;
    match answer.template {
        Some(template) if answer.errors.is_empty() => Ok(template),
        _ => Err(answer.errors),
    }
}

/// Local `CodeUri`/`ContentUri` folders as the S3 locations the
/// translator takes; a Zip function with neither gets the template's own
/// folder, as `sam build` gives it.
fn give_local_code_as_s3(root: &mut Value) {
    let local = |value: &mut Value| {
        if let Value::String(path) = value
            && !path.starts_with("s3://")
        {
            *value = Value::String(format!(
                "s3://{LOCAL_CODE_BUCKET}/{}",
                path.trim_end_matches('/')
            ));
        }
    };
    let global_code = root.pointer("/Globals/Function/CodeUri").is_some();
    if let Some(code) = root.pointer_mut("/Globals/Function/CodeUri") {
        local(code);
    }
    let Some(resources) = root.get_mut("Resources").and_then(Value::as_object_mut) else {
        return;
    };
    for resource in resources.values_mut() {
        let kind = resource
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(properties) = resource
            .get_mut("Properties")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        match kind.as_str() {
            "AWS::Serverless::Function" => {
                let image = properties.get("PackageType").and_then(Value::as_str) == Some("Image");
                let inline = properties.contains_key("InlineCode");
                match properties.get_mut("CodeUri") {
                    Some(code) => local(code),
                    None if !image && !global_code && !inline => {
                        properties.insert(
                            "CodeUri".into(),
                            Value::String(format!("s3://{LOCAL_CODE_BUCKET}/.")),
                        );
                    }
                    None => {}
                }
            }
            "AWS::Serverless::LayerVersion" => {
                if let Some(content) = properties.get_mut("ContentUri") {
                    local(content);
                }
            }
            "AWS::Serverless::StateMachine"
            | "AWS::Serverless::Api"
            | "AWS::Serverless::HttpApi" => {
                if let Some(definition) = properties.get_mut("DefinitionUri") {
                    local(definition);
                }
            }
            _ => {}
        }
    }
}

/// What `sam build` adds to a function's or layer's local folder: its
/// dependencies. For a Node.js function (or a layer built with a `nodejs*`
/// BuildMethod) with a `package.json` and no `node_modules`, `npm install
/// --omit=dev`, as SAM's npm builder runs it; for a Python one with a
/// `requirements.txt`, `pip install -r`. They are installed into
/// `.wsgate/sam-build/<id>` (not the app's folder, as `sam build` builds in
/// `.aws-sam`), laid out as a layer (`nodejs/node_modules`, `python/`),
/// once per change of the manifest. `None`: nothing to install.
pub fn dependencies(
    code: &Path,
    state_dir: &Path,
    id: &str,
    runtime: &str,
) -> Result<Option<std::path::PathBuf>, String> {
    let node = runtime.starts_with("nodejs");
    let manifest = if node {
        "package.json"
    } else {
        "requirements.txt"
    };
    let Ok(text) = std::fs::read_to_string(code.join(manifest)) else {
        return Ok(None);
    };
    if node && code.join("node_modules").is_dir() {
        // Installed by the user: resolved from the folder itself.
        return Ok(None);
    }
    let needs_install = if node {
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|json| json.get("dependencies")?.as_object().map(|d| !d.is_empty()))
            .unwrap_or(false)
    } else {
        text.lines()
            .any(|line| !line.trim().is_empty() && !line.trim().starts_with('#'))
    };
    if !needs_install {
        return Ok(None);
    }
    let lock = std::fs::read_to_string(code.join("package-lock.json")).unwrap_or_default();
    let wanted = format!("{:016x}", fnv(&format!("{runtime}\n{text}\n{lock}")));
    let target = state_dir.join("sam-build").join(id);
    let marker = target.join(".installed");
    if std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted) {
        return Ok(Some(target));
    }
    let _ = std::fs::remove_dir_all(&target);
    let (folder, mut command) = if node {
        let folder = target.join("nodejs");
        let mut command = std::process::Command::new("npm");
        command.args([
            "install",
            "--omit=dev",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]);
        (folder, command)
    } else {
        let folder = target.join("python");
        let mut command = crate::toolchain::pip_install(&folder);
        command.arg("-r").arg(code.join(manifest));
        (folder, command)
    };
    std::fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    if node {
        for file in ["package.json", "package-lock.json"] {
            if code.join(file).is_file() {
                std::fs::copy(code.join(file), folder.join(file))
                    .map_err(|e| format!("cannot copy {file}: {e}"))?;
            }
        }
        command.current_dir(&folder);
    }
    tracing::info!(
        "{id}: installing its {manifest} as `sam build` would, into {}",
        target.display()
    );
    let output = command
        .output()
        .map_err(|e| format!("{id}: cannot install its {manifest}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{id}: installing its {manifest} (as `sam build` does) failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    std::fs::write(&marker, wanted)
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(Some(target))
}

/// FNV-1a: a stable fingerprint of a manifest.
fn fnv(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_code_is_given_as_s3() {
        let mut root = json!({"Resources": {
            "A": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "onconnect/"}},
            "B": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.handler"}},
            "C": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "s3://bucket/key"}},
        }});
        give_local_code_as_s3(&mut root);
        assert_eq!(
            root["Resources"]["A"]["Properties"]["CodeUri"],
            "s3://wsgate-local-code/onconnect"
        );
        assert_eq!(
            root["Resources"]["B"]["Properties"]["CodeUri"],
            "s3://wsgate-local-code/."
        );
        assert_eq!(
            root["Resources"]["C"]["Properties"]["CodeUri"],
            "s3://bucket/key"
        );
    }
}
