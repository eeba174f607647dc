//! CloudFormation and the tools that write it as the app definition:
//! AWS's own `simple-websockets-chat-app` unmodified, the SAM, CDK and
//! Serverless Framework examples end to end, plain CloudFormation with
//! inline code calling services by their AWS host names, and templates
//! wsgate refuses, each named by file, line and logical id.

mod common;

use common::serve::Serve;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of an app folder, as a user would have it (its installed
/// packages linked in).
fn copy_of(folder: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(folder, dir.path());
    // Layers hold node_modules of their own, which copy_tree leaves out.
    if folder.join("layers").is_dir() {
        let copied = std::process::Command::new("cp")
            .arg("-r")
            .arg(folder.join("layers"))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(copied.success());
    }
    if folder.join("package.json").is_file() {
        assert!(
            folder.join("node_modules").is_dir(),
            "run scripts/setup: {} needs `npm ci`",
            folder.display()
        );
        std::os::unix::fs::symlink(folder.join("node_modules"), dir.path().join("node_modules"))
            .unwrap();
    }
    dir
}

/// The served URL as plain ws:// (API Gateway's, printed, is wss://; the
/// same port serves both).
fn plain(url: &str) -> String {
    url.replacen("wss://", "ws://", 1)
}

async fn json(client: &mut Client) -> Value {
    let text = next_text(client).await;
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

#[tokio::test]
async fn aws_simple_websockets_chat_app_chats_unmodified() {
    let dir = copy_of(&repo().join("tests/fixtures/cloudformation/simple-websockets-chat-app"));
    let serve = Serve::start(&dir.path().join("template.yaml"), &[]);
    let printed = serve.printed.join("\n");
    assert!(printed.contains("CloudFormation stack"), "{printed}");
    // Its output, built with !Join from the API's id, is the local endpoint.
    assert!(
        printed.contains(&format!("output WebSocketURI: \"{}\"", serve.url)),
        "{printed}"
    );
    assert!(
        serve.url.starts_with("wss://") && serve.url.ends_with("/Prod"),
        "{}",
        serve.url
    );

    let url = plain(&serve.url);
    let mut alice = connect(&url).await;
    let mut bob = connect(&url).await;
    // sendmessage scans the table $connect wrote, and posts to each through
    // https://<apiId>.execute-api.<region>.amazonaws.com/Prod, as on AWS.
    send_text(
        &mut alice,
        r#"{"action":"sendmessage","data":"hello from alice"}"#,
    )
    .await;
    assert_eq!(next_text(&mut alice).await, "hello from alice");
    assert_eq!(next_text(&mut bob).await, "hello from alice");
    // $disconnect deletes bob's row: the next message reaches alice alone.
    bob.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    send_text(&mut alice, r#"{"action":"sendmessage","data":"anyone?"}"#).await;
    assert_eq!(next_text(&mut alice).await, "anyone?");
    assert_silent(&mut alice, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn sam_chat_example_end_to_end() {
    let dir = copy_of(&repo().join("examples/sam-chat"));
    let serve = Serve::start(&dir.path().join("template.yaml"), &[]);
    let url = plain(&serve.url);
    assert!(url.ends_with("/prod"), "{url}");
    // The authorizer is Python; $connect, sendmessage and $disconnect Node.
    let mut alice = chat(&url).await;
    // $default (Python, boto3 as Lambda provides it) answers through the
    // management API at the API's AWS host name.
    send_text(&mut alice, r#"{"action":"dance"}"#).await;
    assert_eq!(json(&mut alice).await["error"], "unknown action");
}

#[tokio::test]
async fn handlers_reach_services_by_their_aws_host_names() {
    let dir = copy_of(&repo().join("tests/fixtures/cloudformation/service-hosts"));
    let serve = Serve::start(&dir.path().join("template.yaml"), &[]);
    let mut client = connect(&plain(&serve.url)).await;
    // Inline Node.js code, its SDK calling dynamodb.us-east-1.amazonaws.com.
    send_text(&mut client, r#"{"action":"node"}"#).await;
    assert_eq!(
        json(&mut client).await,
        serde_json::json!({"stored": true, "unused": null})
    );
    // Inline Python code, boto3 calling the same name.
    send_text(&mut client, r#"{"action":"python"}"#).await;
    let reply = json(&mut client).await;
    assert_eq!(reply["stored"], true, "{reply}");
    assert_eq!(reply["host"], "https://dynamodb.us-east-1.amazonaws.com");
    // The Lambda API by its name: a function no route runs, invoked by
    // another whose role allows it.
    send_text(&mut client, r#"{"action":"invoke"}"#).await;
    assert_eq!(
        json(&mut client).await,
        serde_json::json!({"greeting": "hello ada"})
    );
}

/// Alice and bob join the chat at `url` with the token; alice's message
/// reaches both with her name; a message without a known action gets the
/// `$default` hint (or API Gateway's Forbidden where there is no
/// `$default`). Returns alice's client.
async fn chat(url: &str) -> Client {
    assert_eq!(try_connect(url, &[]).await.err(), Some(401));
    assert_eq!(
        try_connect(&format!("{url}?token=nope&name=eve"), &[])
            .await
            .err(),
        Some(403)
    );
    let mut alice = connect(&format!("{url}?token=let-me-in&name=alice")).await;
    let mut bob = connect(&format!("{url}?token=let-me-in&name=bob")).await;
    send_text(&mut alice, r#"{"action":"sendmessage","text":"hi all"}"#).await;
    let expected = serde_json::json!({"from": "alice", "text": "hi all"});
    assert_eq!(json(&mut alice).await, expected);
    assert_eq!(json(&mut bob).await, expected);
    alice
}

#[tokio::test]
async fn cdk_chat_example_end_to_end_with_live_code() {
    let dir = copy_of(&repo().join("examples/cdk-chat"));
    // The app's own `cdk synth`; NodejsFunction's bundles are its assets.
    let serve = Serve::start(&dir.path().join("cdk.json"), &[]);
    let printed = serve.printed.join("\n");
    assert!(printed.contains("CDK stack CdkChatStack"), "{printed}");
    // The stage's callbackUrl and url (Fn::Join of the API's id) are local.
    assert!(
        printed.contains(&format!("output WebSocketURL: \"{}\"", serve.url)),
        "{printed}"
    );
    let url = plain(&serve.url);
    let mut alice = chat(&url).await;

    // An edit to a NodejsFunction's entry is synthesized and served.
    let entry = dir.path().join("lambda/sendmessage.ts");
    let source = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(&entry, source.replace("text });", "text, edited: true });")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        send_text(&mut alice, r#"{"action":"sendmessage","text":"again"}"#).await;
        if json(&mut alice).await["edited"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the edit was not served in 120 s"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn serverless_chat_example_is_a_drop_in_for_serverless_offline() {
    let dir = copy_of(&repo().join("examples/serverless-chat"));
    // custom.serverless-offline.websocketPort is where it listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("serverless.yml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("websocketPort: 3001", &format!("websocketPort: {port}")),
    )
    .unwrap();
    let serve = Serve::start_where_the_app_says(&config, &[]);
    assert_eq!(serve.url, format!("wss://127.0.0.1:{port}/dev"));
    let printed = serve.printed.join("\n");
    assert!(
        printed.contains("Serverless service serverless-chat-dev"),
        "{printed}"
    );
    // Served in provider.region, which the handlers sign for.
    assert!(printed.contains("AWS_REGION=eu-west-1"), "{printed}");

    // As API Gateway serves it (with the stage), and as serverless-offline
    // does (at the root), where a client configured for it connects.
    let mut alice = chat(&plain(&serve.url)).await;
    let mut carol = connect(&format!(
        "ws://127.0.0.1:{port}/?token=let-me-in&name=carol"
    ))
    .await;
    send_text(
        &mut carol,
        r#"{"action":"sendmessage","text":"from the root"}"#,
    )
    .await;
    let expected = serde_json::json!({"from": "carol", "text": "from the root"});
    assert_eq!(json(&mut carol).await, expected);
    assert_eq!(json(&mut alice).await, expected);
    // $default answers through https://<domainName>/<stage>.
    send_text(&mut carol, r#"{"action":"dance"}"#).await;
    assert_eq!(json(&mut carol).await["error"], "unknown action");
}

/// Dependencies as `sam build` installs them (a function's package.json,
/// a Python function's requirements.txt, a layer's `BuildMethod`), from
/// the npm registry and PyPI, into `.wsgate/sam-build`.
#[tokio::test]
async fn sam_functions_get_their_dependencies_as_sam_build_gives_them() {
    let dir = copy_of(&repo().join("tests/fixtures/cloudformation/sam-build"));
    let serve = Serve::start(&dir.path().join("template.yaml"), &[]);
    let mut client = connect(&plain(&serve.url)).await;
    send_text(&mut client, r#"{"action":"node"}"#).await;
    assert_eq!(
        json(&mut client).await,
        serde_json::json!({"ms": 172_800_000, "html": "&lt;b&gt;"})
    );
    send_text(&mut client, r#"{"action":"python"}"#).await;
    assert_eq!(
        json(&mut client).await,
        serde_json::json!({"idna": "xn--bcher-kva.example"})
    );
    // The app's folders stay as they were.
    assert!(!dir.path().join("send/node_modules").exists());
    assert!(
        dir.path()
            .join(".wsgate/sam-build/NodeFunction/nodejs/node_modules/ms")
            .is_dir()
    );
}

/// A function no route runs and that cannot run here is a stand-in; a
/// routed one is refused, at its line.
#[tokio::test]
async fn functions_that_cannot_run_are_stand_ins_unless_routed() {
    let template = format!(
        "{API}  Route:\n    Type: AWS::ApiGatewayV2::Route\n    Properties:\n      ApiId: !Ref Api\n      RouteKey: $default\n      RouteResponseSelectionExpression: $default\n      Target: !Sub integrations/${{Integ}}\n  Response:\n    Type: AWS::ApiGatewayV2::RouteResponse\n    Properties:\n      ApiId: !Ref Api\n      RouteId: !Ref Route\n      RouteResponseKey: $default\n  Integ:\n    Type: AWS::ApiGatewayV2::Integration\n    Properties:\n      ApiId: !Ref Api\n      IntegrationType: AWS_PROXY\n      IntegrationUri: !Sub arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{Echo.Arn}}/invocations\n  Echo:\n    Type: AWS::Lambda::Function\n    Properties:\n      Runtime: nodejs20.x\n      Handler: index.handler\n      Code:\n        ZipFile: 'exports.handler = async (e) => ({{ statusCode: 200, body: \"echo \" + e.body }});'\n  Resizer:\n    Type: AWS::Lambda::Function\n    Properties:\n      Runtime: java21\n      Handler: example.Handler\n      Code: {{S3Bucket: artifacts, S3Key: resizer.zip}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("template.yaml"), &template).unwrap();
    let serve = Serve::start(&dir.path().join("template.yaml"), &[]);
    let printed = serve.printed.join("\n");
    assert!(
        printed.contains("not run locally:    AWS::Lambda::Function Resizer"),
        "{printed}"
    );
    let mut client = connect(&plain(&serve.url)).await;
    send_text(&mut client, "hi").await;
    assert_eq!(next_text(&mut client).await, "echo hi");
    drop(serve);

    // Routed, the same function is refused where its code is named.
    let routed = template.replace("${Echo.Arn}", "${Resizer.Arn}");
    let error = refused(&[("template.yaml", &routed)], &[]);
    let line = line_of(&routed, "  Resizer:");
    assert!(
        error.contains(&format!(
            "template.yaml:{line}: `Resizer`: not supported by wsgate: the java21 runtime"
        )),
        "{error}"
    );
}

/// `AWS::LanguageExtensions` beside SAM's transform, as CloudFormation
/// runs them: its functions work (in outputs, and in the function's
/// environment, which must evaluate for it to start); `Fn::ForEach` is
/// refused at its line.
#[tokio::test]
async fn language_extensions_beside_sam() {
    let template = "Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]\nResources:\n  Chat:\n    Type: AWS::Serverless::WebSocketApi\n    Properties:\n      RouteSelectionExpression: $request.body.action\n      Routes:\n        $default:\n          FunctionArn: !GetAtt Count.Arn\n  Count:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: nodejs20.x\n      Handler: index.handler\n      InlineCode: |\n        exports.handler = async () => ({ statusCode: 200, body: process.env.ROOMS + \" \" + process.env.SETTINGS });\n      Environment:\n        Variables:\n          ROOMS: !Length [lobby, games, news]\n          SETTINGS: !ToJsonString {size: 3}\nOutputs:\n  Rooms:\n    Value: !Length [lobby, games, news]\n  Settings:\n    Value: !ToJsonString {size: 3}\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("template.yaml"), template).unwrap();
    let serve = Serve::start(&dir.path().join("template.yaml"), &[]);
    let printed = serve.printed.join("\n");
    assert!(printed.contains("output Rooms: 3"), "{printed}");
    assert!(
        printed.contains(r#"output Settings: "{\"size\":3}""#),
        "{printed}"
    );
    drop(serve);

    let looped = format!(
        "{API}  Fn::ForEach::Tables:\n    - Name\n    - [a, b]\n    - ${{Name}}Table:\n        Type: AWS::DynamoDB::Table\n"
    )
    .replace("Resources:\n", "Transform: AWS::LanguageExtensions\nResources:\n");
    let error = refused(&[("template.yaml", &looped)], &[]);
    let line = line_of(&looped, "Fn::ForEach::Tables");
    assert!(
        error.contains(&format!(
            "template.yaml:{line}: `Fn::ForEach::Tables`: not supported by wsgate: Fn::ForEach"
        )),
        "{error}"
    );
}

/// `wsgate validate` in a folder holding these files (which must fail);
/// its stderr.
fn refused(files: &[(&str, &str)], args: &[&str]) -> String {
    validate_failure_with(files, &[], args)
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

const API: &str = "Resources:\n  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties:\n      Name: chat\n      ProtocolType: WEBSOCKET\n      RouteSelectionExpression: $request.body.action\n  Stage:\n    Type: AWS::ApiGatewayV2::Stage\n    Properties:\n      ApiId: !Ref Api\n      StageName: dev\n";

#[test]
fn refused_templates_name_file_line_and_logical_id() {
    // A MOCK integration: the integration model is not there yet.
    let template = format!(
        "{API}  Route:\n    Type: AWS::ApiGatewayV2::Route\n    Properties:\n      ApiId: !Ref Api\n      RouteKey: $connect\n      Target: !Sub integrations/${{Mock}}\n  Mock:\n    Type: AWS::ApiGatewayV2::Integration\n    Properties:\n      ApiId: !Ref Api\n      IntegrationType: MOCK\n"
    );
    let error = refused(&[("template.yaml", &template)], &[]);
    let line = line_of(&template, "  Mock:");
    assert!(
        error.contains(&format!(
            "template.yaml:{line}: `Mock`: not supported by wsgate: IntegrationType MOCK"
        )),
        "{error}"
    );

    // A property wsgate does not run names its own line.
    let template = format!(
        "{API}  Integ:\n    Type: AWS::ApiGatewayV2::Integration\n    Properties:\n      ApiId: !Ref Api\n      IntegrationType: AWS\n      RequestTemplates:\n        $default: '{{}}'\n"
    );
    let error = refused(&[("template.yaml", &template)], &[]);
    let line = line_of(&template, "RequestTemplates");
    assert!(
        error.contains(&format!("template.yaml:{line}: `Integ`: not supported by wsgate: AWS::ApiGatewayV2::Integration RequestTemplates")),
        "{error}"
    );
    let template = format!("{API}      Bogus: 1\n");
    let error = refused(&[("template.yaml", &template)], &[]);
    assert!(
        error.contains(
            "`Stage`: not supported by wsgate: AWS::ApiGatewayV2::Stage has no property Bogus"
        ),
        "{error}"
    );

    // Only an HTTP API: said so.
    let error = refused(&[("template.yaml", &API.replace("WEBSOCKET", "HTTP"))], &[]);
    assert!(
        error.contains("the template defines only REST or HTTP APIs (Api (HTTP API))"),
        "{error}"
    );

    // A cycle of Refs is reported, not looped on.
    let template = format!(
        "{API}  A:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: !Ref B\n      KeySchema: [{{AttributeName: id, KeyType: HASH}}]\n      AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]\n  B:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: !Ref A\n"
    );
    let error = refused(&[("template.yaml", &template)], &[]);
    assert!(error.contains("a cycle of references"), "{error}");

    // A parameter with no default, and an override it does not declare.
    let template = format!("Parameters:\n  Token:\n    Type: String\n{API}");
    let error = refused(&[("template.yaml", &template)], &[]);
    assert!(
        error.contains("template.yaml:2: `Token`: parameter Token has no Default: give it with --parameter-overrides Token=<value>"),
        "{error}"
    );
    let error = refused(
        &[("template.yaml", API)],
        &["--parameter-overrides", "Nope=1"],
    );
    assert!(error.contains("does not declare"), "{error}");

    // A YAML error names its line; an unknown short tag is refused.
    let error = refused(&[("template.yaml", &format!("{API}  X: [\n"))], &[]);
    assert!(error.contains("template.yaml:"), "{error}");
    let error = refused(
        &[(
            "template.yaml",
            &format!("{API}      Description: !Bogus x\n"),
        )],
        &[],
    );
    assert!(
        error.contains("!Bogus is not a CloudFormation function"),
        "{error}"
    );

    // A CDK asset a stopped synthesis left empty.
    let template = format!(
        "{API}  Route:\n    Type: AWS::ApiGatewayV2::Route\n    Properties:\n      ApiId: !Ref Api\n      RouteKey: $default\n      Target: !Sub integrations/${{Integ}}\n  Integ:\n    Type: AWS::ApiGatewayV2::Integration\n    Properties:\n      ApiId: !Ref Api\n      IntegrationType: AWS_PROXY\n      IntegrationUri: !Sub arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{Fn.Arn}}/invocations\n  Fn:\n    Type: AWS::Lambda::Function\n    Metadata:\n      aws:asset:path: asset.0123abcd\n      aws:asset:property: Code\n    Properties:\n      Runtime: nodejs22.x\n      Handler: index.handler\n      Code: {{S3Bucket: cdk-assets, S3Key: 0123abcd.zip}}\n"
    );
    let error = refused(
        &[("template.yaml", &template), ("asset.0123abcd/.keep", "")],
        &[],
    );
    // (A folder with files is used as it is: here it has no handler.)
    assert!(
        error.contains("no handler file") && !error.contains("missing or empty"),
        "{error}"
    );
    let error = refused(&[("template.yaml", &template)], &[]);
    assert!(
        error.contains("asset.0123abcd is missing or empty (a synthesis stopped halfway?)"),
        "{error}"
    );

    // SAM's own checks, at the SAM resource's line.
    let template = "Transform: AWS::Serverless-2016-10-31\nResources:\n  Chat:\n    Type: AWS::Serverless::WebSocketApi\n    Properties:\n      Routes: {}\n";
    let error = refused(&[("template.yaml", template)], &[]);
    assert!(
        error.contains("template.yaml:3: `Chat`:") && error.contains("RouteSelectionExpression"),
        "{error}"
    );
}

/// A tool that fails: its own output is shown, and wsgate stops.
#[test]
fn a_failing_cdk_synth_or_serverless_package_shows_its_own_output() {
    let tool = "#!/bin/sh\necho \"the tool's own complaint: $*\" >&2\nexit 3\n";
    for (config, bin) in [("cdk.json", "cdk"), ("serverless.yml", "serverless")] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(config), "{\"app\": \"node app.js\"}\n").unwrap();
        let bin_dir = dir.path().join("node_modules/.bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let program = bin_dir.join(bin);
        std::fs::write(&program, tool).unwrap();
        let mut permissions = std::fs::metadata(&program).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&program, permissions).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
            .arg("validate")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("the tool's own complaint"),
            "{config}: {stderr}"
        );
        assert!(
            stderr.contains("failed (exit status: 3)"),
            "{config}: {stderr}"
        );
    }
}

#[test]
fn serverless_framework_v4_is_refused_with_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("serverless.yml"),
        "service: chat\nframeworkVersion: '4'\nprovider:\n  name: aws\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .arg("validate")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not supported by wsgate: the service asks for Serverless Framework 4"),
        "{stderr}"
    );
}

/// samconfig.toml's `[default.deploy.parameters]`, as `sam deploy` reads
/// them: the stack name, parameter overrides and region; the command
/// line's overrides win.
#[test]
fn samconfig_gives_the_stack_name_parameters_and_region() {
    let dir = tempfile::tempdir().unwrap();
    let template = format!(
        "Parameters:\n  Env:\n    Type: String\n  Size:\n    Type: Number\n    Default: 1\n{API}Outputs:\n  Stack:\n    Value: !Sub '${{AWS::StackName}} ${{AWS::Region}} ${{Env}} ${{Size}}'\n"
    );
    std::fs::write(dir.path().join("template.yaml"), template).unwrap();
    std::fs::write(
        dir.path().join("samconfig.toml"),
        "version = 0.1\n[default.deploy.parameters]\nstack_name = \"chat-prod\"\nregion = \"eu-central-1\"\nparameter_overrides = \"Env=prod Size=2\"\n",
    )
    .unwrap();
    let serve = Serve::start(
        &dir.path().join("template.yaml"),
        &["--parameter-overrides", "Size=3"],
    );
    let printed = serve.printed.join("\n");
    assert!(
        printed.contains("CloudFormation stack chat-prod"),
        "{printed}"
    );
    assert!(
        printed.contains("output Stack: \"chat-prod eu-central-1 prod 3\""),
        "{printed}"
    );
    assert!(printed.contains("AWS_REGION=eu-central-1"), "{printed}");
}

/// A CDK app without `aws-cdk` installed is served from the `cdk.out` it
/// has, its code from the assets there.
#[tokio::test]
async fn a_cdk_app_without_its_cli_is_served_from_its_cdk_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cdk.json"),
        r#"{"app": "npx tsx bin/app.ts"}"#,
    )
    .unwrap();
    let out = dir.path().join("cdk.out");
    std::fs::create_dir_all(out.join("asset.5eed")).unwrap();
    std::fs::write(
        out.join("asset.5eed/index.js"),
        "exports.handler = async (event) => ({ statusCode: 200, body: 'from cdk.out: ' + event.body });\n",
    )
    .unwrap();
    std::fs::write(
        out.join("manifest.json"),
        r#"{"artifacts": {"Echo": {"type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region", "properties": {"templateFile": "Echo.template.json"}}}}"#,
    )
    .unwrap();
    let template = serde_json::json!({"Resources": {
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": "echo", "ProtocolType": "WEBSOCKET", "RouteSelectionExpression": "$request.body.action"}},
        "Stage": {"Type": "AWS::ApiGatewayV2::Stage", "Properties": {"ApiId": {"Ref": "Api"}, "StageName": "dev", "AutoDeploy": true}},
        "Route": {"Type": "AWS::ApiGatewayV2::Route", "Properties": {"ApiId": {"Ref": "Api"}, "RouteKey": "$default", "RouteResponseSelectionExpression": "$default", "Target": {"Fn::Join": ["", ["integrations/", {"Ref": "Integ"}]]}}},
        "Response": {"Type": "AWS::ApiGatewayV2::RouteResponse", "Properties": {"ApiId": {"Ref": "Api"}, "RouteId": {"Ref": "Route"}, "RouteResponseKey": "$default"}},
        "Integ": {"Type": "AWS::ApiGatewayV2::Integration", "Properties": {"ApiId": {"Ref": "Api"}, "IntegrationType": "AWS_PROXY", "IntegrationUri": {"Fn::Join": ["", ["arn:aws:apigateway:", {"Ref": "AWS::Region"}, ":lambda:path/2015-03-31/functions/", {"Fn::GetAtt": ["Fn", "Arn"]}, "/invocations"]]}}},
        "Fn": {"Type": "AWS::Lambda::Function", "Metadata": {"aws:asset:path": "asset.5eed", "aws:asset:property": "Code"}, "Properties": {"Runtime": "nodejs22.x", "Handler": "index.handler", "Code": {"S3Bucket": "cdk-hnb659fds-assets", "S3Key": "5eed.zip"}}}
    }});
    std::fs::write(out.join("Echo.template.json"), template.to_string()).unwrap();
    let serve = Serve::start(&dir.path().join("cdk.json"), &[]);
    assert!(serve.printed.join("\n").contains("CDK stack Echo"));
    let mut client = connect(&plain(&serve.url)).await;
    send_text(&mut client, "hi").await;
    assert_eq!(next_text(&mut client).await, "from cdk.out: hi");
}
