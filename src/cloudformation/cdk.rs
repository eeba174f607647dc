//! CDK apps (a folder with `cdk.json`): the app's own `cdk synth` (its
//! `aws-cdk` from `node_modules`) writes the cloud assembly, `cdk.out`,
//! whose `manifest.json` names each stack's template; wsgate serves the
//! WebSocket APIs of one stack. Lambda code is the assembly's assets
//! (`aws:asset:path`). Without a local `aws-cdk`, an existing `cdk.out` is
//! read as it is.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file that makes a folder a CDK app.
pub const CDK_JSON: &str = "cdk.json";
/// How long `cdk synth` may take (it compiles the app and bundles its
/// functions).
const SYNTH_TIMEOUT: Duration = Duration::from_secs(300);

/// A synthesized stack.
#[derive(Debug, Clone)]
pub struct SynthesizedStack {
    /// Its name on CloudFormation (`AWS::StackName`).
    pub name: String,
    pub template: PathBuf,
    /// The region of the stack's environment (`aws://<account>/<region>`),
    /// when it names one.
    pub region: Option<String>,
}

/// The assembly folder `cdk.json` names (`output`), `cdk.out` by default.
fn assembly_dir(app_dir: &Path) -> PathBuf {
    let output = std::fs::read_to_string(app_dir.join(CDK_JSON))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|json| json.get("output").and_then(Value::as_str).map(String::from));
    app_dir.join(output.unwrap_or_else(|| "cdk.out".into()))
}

/// Runs the app's `cdk synth`, or keeps the `cdk.out` there is when the
/// app has no `aws-cdk` installed.
pub async fn synth(app_dir: &Path) -> Result<(), String> {
    let cli = app_dir.join("node_modules").join(".bin").join("cdk");
    if !cli.is_file() {
        if assembly_dir(app_dir).join("manifest.json").is_file() {
            tracing::warn!(
                "the CDK app has no aws-cdk in node_modules: serving its existing {} as it is (`npm install` to synthesize it anew)",
                assembly_dir(app_dir).display()
            );
            return Ok(());
        }
        return Err(format!(
            "{} is a CDK app, but it has no aws-cdk in node_modules to synthesize it and no cdk.out: run `npm install` (or `cdk synth`) first",
            app_dir.display()
        ));
    }
    let started = std::time::Instant::now();
    let mut command = tokio::process::Command::new(&cli);
    // Notices and telemetry reach the network; the app's synthesis does
    // not need them.
    command
        .args(["synth", "--quiet", "--no-notices"])
        .env("CDK_DISABLE_CLI_TELEMETRY", "true")
        .current_dir(app_dir);
    let output = super::run_tool(command, "`cdk synth`", SYNTH_TIMEOUT).await?;
    if !output.status.success() {
        return Err(format!(
            "`cdk synth` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    tracing::info!(ms = started.elapsed().as_millis() as u64, "cdk synth");
    Ok(())
}

/// The stack to serve: the one `wanted` names (its stack name or
/// construct id), else the only stack with a WebSocket API.
pub fn stack(app_dir: &Path, wanted: Option<&str>) -> Result<SynthesizedStack, String> {
    let assembly = assembly_dir(app_dir);
    let manifest = assembly.join("manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a cloud assembly manifest: {e}",
            manifest.display()
        )
    })?;
    let mut stacks = Vec::new();
    for (id, artifact) in json
        .get("artifacts")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if artifact.get("type").and_then(Value::as_str) != Some("aws:cloudformation:stack") {
            continue;
        }
        let properties = artifact.get("properties");
        let Some(template) = properties
            .and_then(|p| p.get("templateFile"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let name = properties
            .and_then(|p| p.get("stackName"))
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string();
        let display = artifact
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string();
        let region = artifact
            .get("environment")
            .and_then(Value::as_str)
            .and_then(|env| env.rsplit('/').next())
            .filter(|region| !region.is_empty() && *region != "unknown-region")
            .map(String::from);
        stacks.push((
            id.clone(),
            display,
            SynthesizedStack {
                name,
                template: assembly.join(template),
                region,
            },
        ));
    }
    let listed = || {
        stacks
            .iter()
            .map(|(_, display, s)| format!("{display} ({})", s.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(wanted) = wanted {
        return stacks
            .iter()
            .find(|(id, display, s)| s.name == wanted || id == wanted || display == wanted)
            .map(|(_, _, s)| s.clone())
            .ok_or_else(|| format!("--stack {wanted}: the app's stacks are {}", listed()));
    }
    let with_websocket: Vec<&SynthesizedStack> = stacks
        .iter()
        .map(|(_, _, s)| s)
        .filter(|s| std::fs::read_to_string(&s.template).is_ok_and(|t| t.contains("\"WEBSOCKET\"")))
        .collect();
    match with_websocket.as_slice() {
        [one] => Ok((*one).clone()),
        [] if stacks.is_empty() => Err(format!("{} holds no stack", assembly.display())),
        [] => Err(format!(
            "no stack of the app defines a WebSocket API (its stacks: {})",
            listed()
        )),
        _ => Err(format!(
            "several stacks define WebSocket APIs: choose one with --stack ({})",
            listed()
        )),
    }
}

/// Which files' changes call for a new synthesis: `cdk watch`'s rules
/// (aws-cdk's `_watch` in lib/cli/cdk-toolkit): `cdk.json`'s `watch.include`
/// (`**` if none) and `watch.exclude`, plus the assembly folder, hidden
/// files and folders, and `node_modules`, always excluded.
pub struct WatchRules {
    root: PathBuf,
    include: globset::GlobSet,
    exclude: globset::GlobSet,
}

impl WatchRules {
    pub fn read(app_dir: &Path) -> Result<WatchRules, String> {
        let json: Value = std::fs::read_to_string(app_dir.join(CDK_JSON))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        let patterns = |key: &str| -> Vec<String> {
            json.pointer(&format!("/watch/{key}"))
                .map(|v| match v {
                    Value::String(one) => vec![one.clone()],
                    Value::Array(items) => items
                        .iter()
                        .filter_map(|i| i.as_str().map(String::from))
                        .collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default()
        };
        let mut include = patterns("include");
        if include.is_empty() {
            include.push("**".into());
        }
        let mut exclude = patterns("exclude");
        if let Ok(output) = assembly_dir(app_dir).strip_prefix(app_dir) {
            exclude.push(format!("{}/**", output.display()));
        }
        exclude.extend([".*", "**/.*", "**/.*/**", "**/node_modules/**"].map(String::from));
        let set = |patterns: &[String]| -> Result<globset::GlobSet, String> {
            let mut builder = globset::GlobSetBuilder::new();
            for pattern in patterns {
                builder.add(
                    globset::GlobBuilder::new(pattern)
                        .literal_separator(true)
                        .build()
                        .map_err(|e| format!("cdk.json watch pattern {pattern:?}: {e}"))?,
                );
            }
            builder.build().map_err(|e| e.to_string())
        };
        Ok(WatchRules {
            root: app_dir.to_path_buf(),
            include: set(&include)?,
            exclude: set(&exclude)?,
        })
    }

    /// Whether a folder of the app may hold watched files: it is not
    /// excluded itself (`node_modules`, the assembly, hidden folders).
    pub fn may_hold_watched(&self, folder: &Path) -> bool {
        folder.strip_prefix(&self.root).is_ok_and(|relative| {
            !relative.ancestors().any(|p| {
                !p.as_os_str().is_empty()
                    && (self.exclude.is_match(p) || self.exclude.is_match(p.join("x")))
            })
        })
    }

    /// Whether a change to `path` calls for a new synthesis. A folder an
    /// exclude pattern names is excluded with everything in it, as the
    /// watcher CDK uses (chokidar) skips it.
    pub fn watches(&self, path: &Path) -> bool {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return false;
        };
        if relative.as_os_str().is_empty() || !self.include.is_match(relative) {
            return false;
        }
        !relative
            .ancestors()
            .any(|p| !p.as_os_str().is_empty() && self.exclude.is_match(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cloud assembly with three stacks, two of them with WebSocket APIs.
    fn assembly() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("cdk.out");
        std::fs::create_dir_all(&out).unwrap();
        let stack = |template: &str, env: &str| serde_json::json!({"type": "aws:cloudformation:stack", "environment": env, "properties": {"templateFile": template}});
        let manifest = serde_json::json!({"artifacts": {
            "Web": stack("Web.template.json", "aws://unknown-account/unknown-region"),
            "Chat": {"type": "aws:cloudformation:stack", "environment": "aws://123456789012/eu-west-2", "displayName": "Chat", "properties": {"templateFile": "Chat.template.json", "stackName": "chat-prod"}},
            "Games": stack("Games.template.json", "aws://unknown-account/unknown-region"),
            "Tree": {"type": "cdk:tree"},
        }});
        std::fs::write(out.join("manifest.json"), manifest.to_string()).unwrap();
        std::fs::write(out.join("Web.template.json"), r#"{"Resources": {}}"#).unwrap();
        for name in ["Chat", "Games"] {
            std::fs::write(
                out.join(format!("{name}.template.json")),
                r#"{"Resources": {"Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "WEBSOCKET"}}}}"#,
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn the_stack_is_the_one_named_or_the_only_websocket_one() {
        let dir = assembly();
        // Several stacks with WebSocket APIs: one must be chosen.
        let error = stack(dir.path(), None).unwrap_err();
        assert!(error.contains("choose one with --stack"), "{error}");
        // By stack name or construct id; the environment's region comes along.
        let chat = stack(dir.path(), Some("chat-prod")).unwrap();
        assert_eq!(chat.name, "chat-prod");
        assert_eq!(chat.region.as_deref(), Some("eu-west-2"));
        assert!(chat.template.ends_with("cdk.out/Chat.template.json"));
        let games = stack(dir.path(), Some("Games")).unwrap();
        assert_eq!((games.name.as_str(), games.region), ("Games", None));
        let error = stack(dir.path(), Some("Nope")).unwrap_err();
        assert!(error.contains("the app's stacks are"), "{error}");
        // With one WebSocket stack left, it is the one.
        std::fs::remove_file(dir.path().join("cdk.out/Games.template.json")).unwrap();
        assert_eq!(stack(dir.path(), None).unwrap().name, "chat-prod");
    }

    #[test]
    fn watch_rules_are_cdk_watch_s() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CDK_JSON),
            r#"{"app": "x", "watch": {"include": ["**"], "exclude": ["README.md", "cdk*.json", "**/*.d.ts", "**/*.js", "node_modules", "test"]}}"#,
        )
        .unwrap();
        let rules = WatchRules::read(dir.path()).unwrap();
        let watches = |p: &str| rules.watches(&dir.path().join(p));
        assert!(watches("lambda/connect.ts"));
        assert!(watches("lib/cdk-chat-stack.ts"));
        assert!(rules.may_hold_watched(&dir.path().join("lambda")));
        for skipped in ["node_modules", "cdk.out", ".wsgate", "test"] {
            assert!(
                !rules.may_hold_watched(&dir.path().join(skipped)),
                "{skipped}"
            );
        }
        for skipped in [
            "README.md",
            "cdk.json",
            "lib/x.d.ts",
            "bin/app.js",
            "node_modules/a/b.ts",
            "test/x.ts",
            "cdk.out/asset.1/index.ts",
            ".wsgate/x",
            "lib/.hidden.ts",
        ] {
            assert!(!watches(skipped), "{skipped}");
        }
    }
}
