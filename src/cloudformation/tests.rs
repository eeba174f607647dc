//! The intrinsics and parameters against the CloudFormation User Guide's
//! own examples, and what a template gives handlers.

use super::intrinsics::{Pseudo, Resolver};
use super::yaml;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn pseudo() -> Pseudo {
    Pseudo {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        stack_name: "chat".into(),
    }
}

/// Evaluates `Outputs.Out.Value` of a template (given as the lines under
/// `Resources:` and around it).
fn evaluate(template: &str, overrides: &[(&str, &str)]) -> Result<Value, String> {
    let document = yaml::parse(template).map_err(|e| e.message)?;
    let overrides: BTreeMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut endpoints = BTreeMap::new();
    endpoints.insert("Api".to_string(), "wss://127.0.0.1:4000".to_string());
    let resolver =
        Resolver::new(&document.root, pseudo(), &overrides, endpoints).map_err(|(_, e)| e)?;
    resolver
        .resolve(&document.root["Outputs"]["Out"]["Value"])
        .map(|v| v.unwrap_or(Value::Null))
}

const RESOURCES: &str = "Resources:\n  Api:\n    Type: AWS::ApiGatewayV2::Api\n    Properties:\n      Name: chat\n      ProtocolType: WEBSOCKET\n      RouteSelectionExpression: $request.body.action\n  Stage:\n    Type: AWS::ApiGatewayV2::Stage\n    Properties:\n      ApiId: !Ref Api\n      StageName: prod\n  Table:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: !Sub '${AWS::StackName}-connections'\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      FunctionName: send\n  Queue:\n    Type: AWS::SQS::Queue\n";

fn output(value: &str) -> Result<Value, String> {
    evaluate(
        &format!("{RESOURCES}Outputs:\n  Out:\n    Value: {value}\n"),
        &[],
    )
}

#[test]
fn sub_in_both_forms() {
    assert_eq!(
        output(
            "!Sub 'arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/*'"
        )
        .unwrap(),
        json!(format!(
            "arn:aws:execute-api:us-east-1:000000000000:{}/*",
            api_id()
        ))
    );
    assert_eq!(
        output("!Sub ['www.${Domain}', {Domain: example.com}]").unwrap(),
        json!("www.example.com")
    );
    // `${!Literal}` is written without the `!`.
    assert_eq!(
        output("!Sub '${!Literal}-${AWS::StackName}'").unwrap(),
        json!("${Literal}-chat")
    );
    assert_eq!(
        output("!Sub '${Fn.Arn}'").unwrap(),
        json!("arn:aws:lambda:us-east-1:000000000000:function:send")
    );
}

fn api_id() -> String {
    crate::ids::api_id_for("chat/Api")
}

#[test]
fn endpoints_are_the_local_ones() {
    assert_eq!(
        output("!GetAtt Api.ApiEndpoint").unwrap(),
        json!("wss://127.0.0.1:4000")
    );
    // Built from the API's id, as templates hand it to handlers.
    assert_eq!(
        output("!Sub 'https://${Api}.execute-api.${AWS::Region}.amazonaws.com/${Stage}'").unwrap(),
        json!("https://127.0.0.1:4000/prod")
    );
    assert_eq!(
        output("!Join ['', ['wss://', !Ref Api, '.execute-api.', !Ref 'AWS::Region', '.amazonaws.com/', !Ref Stage]]").unwrap(),
        json!("wss://127.0.0.1:4000/prod")
    );
    // The host name alone stays: handlers reach it as it is.
    assert_eq!(
        output("!Sub '${Api}.execute-api.${AWS::Region}.amazonaws.com'").unwrap(),
        json!(format!("{}.execute-api.us-east-1.amazonaws.com", api_id()))
    );
}

#[test]
fn refs_give_each_type_s_value() {
    assert_eq!(output("!Ref Table").unwrap(), json!("chat-connections"));
    assert_eq!(
        output("!GetAtt Table.Arn").unwrap(),
        json!("arn:aws:dynamodb:us-east-1:000000000000:table/chat-connections")
    );
    assert_eq!(output("!Ref Stage").unwrap(), json!("prod"));
    assert_eq!(output("!Ref Api").unwrap(), json!(api_id()));
    let queue = output("!Ref Queue").unwrap();
    assert!(
        queue
            .as_str()
            .unwrap()
            .starts_with("https://sqs.us-east-1.amazonaws.com/000000000000/chat-Queue-"),
        "{queue}"
    );
    let arn = output("!GetAtt Queue.Arn").unwrap();
    assert!(
        arn.as_str()
            .unwrap()
            .starts_with("arn:aws:sqs:us-east-1:000000000000:"),
        "{arn}"
    );
    assert_eq!(
        output("!Ref AWS::URLSuffix").unwrap(),
        json!("amazonaws.com")
    );
}

#[test]
fn lists_and_selection() {
    // The User Guide's examples of Fn::Join, Fn::Select and Fn::Split.
    assert_eq!(output("!Join [':', [a, b, c]]").unwrap(), json!("a:b:c"));
    assert_eq!(
        output("!Select ['1', [apples, grapes, oranges, mangoes]]").unwrap(),
        json!("grapes")
    );
    assert_eq!(
        output("!Select [2, !Split ['|', 'a|b|c']]").unwrap(),
        json!("c")
    );
    assert_eq!(
        output("!Split ['|', 'a||c']").unwrap(),
        json!(["a", "", "c"])
    );
    assert_eq!(
        output("!GetAZs ''").unwrap(),
        json!(["us-east-1a", "us-east-1b", "us-east-1c"])
    );
    assert_eq!(output("!Base64 hi").unwrap(), json!("aGk="));
    assert!(
        output("!Select [5, [a]]")
            .unwrap_err()
            .contains("past the list")
    );
}

#[test]
fn parameters_conditions_and_mappings() {
    let template = format!(
        "Parameters:\n  Env:\n    Type: String\n    Default: dev\n    AllowedValues: [dev, prod]\n  Size:\n    Type: Number\n    Default: 5\n    MaxValue: 10\n  Names:\n    Type: CommaDelimitedList\n    Default: 'a, b'\nConditions:\n  IsProd: !Equals [!Ref Env, prod]\n  NotProd: !Not [!Condition IsProd]\n  Both: !And [!Condition NotProd, !Equals [!Ref Size, 5]]\nMappings:\n  Sizes:\n    dev: {{Memory: 128}}\n    prod: {{Memory: 1024}}\n{RESOURCES}Outputs:\n  Out:\n    Value: [!If [IsProd, big, small], !FindInMap [Sizes, !Ref Env, Memory], !If [Both, yes, no], !Select [1, !Ref Names], !If [IsProd, x, !Ref 'AWS::NoValue']]\n"
    );
    assert_eq!(
        evaluate(&template, &[]).unwrap(),
        json!(["small", 128, true, "b"])
    );
    assert_eq!(
        evaluate(&template, &[("Env", "prod")]).unwrap(),
        json!(["big", 1024, false, "b", "x"])
    );
    assert!(
        evaluate(&template, &[("Env", "test")])
            .unwrap_err()
            .contains("AllowedValues")
    );
    assert!(
        evaluate(&template, &[("Size", "11")])
            .unwrap_err()
            .contains("MaxValue")
    );
    assert!(
        evaluate(&template, &[("Size", "x")])
            .unwrap_err()
            .contains("Number")
    );
    assert!(
        evaluate(&template, &[("Nope", "1")])
            .unwrap_err()
            .contains("does not declare")
    );
    let no_default = format!("Parameters:\n  Key:\n    Type: String\n{RESOURCES}");
    assert!(
        evaluate(&no_default, &[])
            .unwrap_err()
            .contains("--parameter-overrides Key=")
    );
}

#[test]
fn cycles_are_reported_not_looped_on() {
    let template = "Resources:\n  A:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: !Ref B\n  B:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: !Ref A\nConditions:\n  C1: !Condition C2\n  C2: !Condition C1\nOutputs:\n  Out:\n    Value: !Ref A\n";
    let error = evaluate(template, &[]).unwrap_err();
    assert!(
        error.contains("a cycle of references: Ref A -> Ref B -> Ref A"),
        "{error}"
    );
    let error = evaluate(
        &template.replace("Value: !Ref A", "Value: !If [C1, a, b]"),
        &[],
    )
    .unwrap_err();
    assert!(error.contains("cycle"), "{error}");
}

#[test]
fn what_cannot_be_known_locally_is_refused() {
    let error = output("!ImportValue shared-vpc").unwrap_err();
    assert!(
        error.contains("not supported by wsgate: Fn::ImportValue"),
        "{error}"
    );
    let error = output("{'Fn::Cidr': ['10.0.0.0/16', 2, 8]}").unwrap_err();
    assert!(
        error.contains("not supported by wsgate: Fn::Cidr"),
        "{error}"
    );
    let error = output("!Ref Missing").unwrap_err();
    assert!(
        error.contains("no parameter or resource Missing"),
        "{error}"
    );
}
