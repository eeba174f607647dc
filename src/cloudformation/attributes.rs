//! What `Ref` and `Fn::GetAtt` give for each resource type, as each type's
//! page of the CloudFormation resource reference ("Return values") says.
//! Resources wsgate runs give their local values (an API's id and local
//! endpoint, a table's name); every other resource gives a placeholder of
//! the right shape (a name, or an ARN of its service).

use super::intrinsics::{Resolver, text};
use serde_json::Value;

/// `Ref <logical_id>` for a resource.
pub fn reference(r: &Resolver, id: &str) -> Result<Value, String> {
    let kind = r.resource_type(id).unwrap_or_default();
    let value = match kind {
        "AWS::ApiGatewayV2::Api" => api_id(r, id),
        "AWS::ApiGatewayV2::Stage" => r
            .string_property(id, "StageName")?
            .ok_or("StageName is missing")?,
        "AWS::ApiGatewayV2::DomainName" => r
            .string_property(id, "DomainName")?
            .ok_or("DomainName is missing")?,
        kind if kind.starts_with("AWS::ApiGatewayV2::") => short_id(r, id),
        "AWS::Lambda::Function" => function_name(r, id)?,
        "AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable" => table_name(r, id)?,
        "AWS::IAM::Role" => named(r, id, "RoleName")?,
        // A version's ARN: its function's, qualified.
        "AWS::Lambda::Version" => match r.string_property(id, "FunctionName")? {
            Some(function) if function.starts_with("arn:") => format!("{function}:1"),
            Some(function) => arn(r, "lambda", &format!("function:{function}:1")),
            None => arn(
                r,
                "lambda",
                &format!("function:{}:1", generated_name(r, id)),
            ),
        },
        "AWS::Lambda::LayerVersion" => arn(
            r,
            "lambda",
            &format!("layer:{}:1", named(r, id, "LayerName")?),
        ),
        "AWS::SQS::Queue" => format!(
            "https://sqs.{}.{}/{}/{}",
            r.pseudo.region,
            r.pseudo.url_suffix(),
            r.pseudo.account_id,
            named(r, id, "QueueName")?
        ),
        "AWS::SNS::Topic" => arn(r, "sns", &named(r, id, "TopicName")?),
        _ => generated_name(r, id),
    };
    Ok(Value::String(value))
}

/// `Fn::GetAtt <logical_id>.<attribute>`.
pub fn attribute(r: &Resolver, id: &str, attribute: &str) -> Result<Value, String> {
    let kind = r.resource_type(id).unwrap_or_default();
    let value = match (kind, attribute) {
        ("AWS::ApiGatewayV2::Api", "ApiEndpoint") => match r.endpoints.get(id) {
            Some(endpoint) => endpoint.clone(),
            // An HTTP API wsgate does not serve.
            None => format!(
                "https://{}",
                crate::ids::execute_api_host(&api_id(r, id), &r.pseudo.region)
            ),
        },
        ("AWS::ApiGatewayV2::Api", "ApiId") => api_id(r, id),
        ("AWS::ApiGatewayV2::DomainName", "RegionalDomainName") => format!(
            "d-{}.execute-api.{}.{}",
            short_id(r, id),
            r.pseudo.region,
            r.pseudo.url_suffix()
        ),
        ("AWS::ApiGatewayV2::DomainName", "RegionalHostedZoneId") => "Z1UJRXOUMOOFQ8".into(),
        (kind, attribute)
            if kind.starts_with("AWS::ApiGatewayV2::") && attribute.ends_with("Id") =>
        {
            short_id(r, id)
        }
        ("AWS::Lambda::Function", "Arn") => {
            arn(r, "lambda", &format!("function:{}", function_name(r, id)?))
        }
        ("AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable", "Arn") => {
            arn(r, "dynamodb", &format!("table/{}", table_name(r, id)?))
        }
        ("AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable", "StreamArn") => arn(
            r,
            "dynamodb",
            &format!(
                "table/{}/stream/1970-01-01T00:00:00.000",
                table_name(r, id)?
            ),
        ),
        ("AWS::IAM::Role", "Arn") => format!(
            "arn:{}:iam::{}:role/{}",
            r.pseudo.partition(),
            r.pseudo.account_id,
            named(r, id, "RoleName")?
        ),
        (_, attribute) if attribute == "Arn" || attribute.ends_with("Arn") => {
            arn(r, &service_of(kind), &generated_name(r, id))
        }
        (_, attribute) => format!("{}-{attribute}", generated_name(r, id)),
    };
    Ok(Value::String(value))
}

/// The id a WebSocket API is served with: stable for the stack and the
/// logical id, shaped like API Gateway's (10 lowercase alphanumerics).
pub fn api_id(r: &Resolver, id: &str) -> String {
    crate::ids::api_id_for(&format!("{}/{id}", r.pseudo.stack_name))
}

/// A route's, integration's or stage's id: 7 lowercase alphanumerics.
fn short_id(r: &Resolver, id: &str) -> String {
    api_id(r, id)[..7].to_string()
}

/// The name CloudFormation gives a resource whose name property is unset:
/// `<stack>-<logicalId>-<suffix>`.
fn generated_name(r: &Resolver, id: &str) -> String {
    let suffix = api_id(r, &format!("{id}#name")).to_uppercase();
    let mut name = format!("{}-{id}-{suffix}", r.pseudo.stack_name);
    name.truncate(64);
    name
}

/// A resource's name property, or the generated name.
fn named(r: &Resolver, id: &str, property: &str) -> Result<String, String> {
    Ok(r.string_property(id, property)?
        .unwrap_or_else(|| generated_name(r, id)))
}

pub fn function_name(r: &Resolver, id: &str) -> Result<String, String> {
    named(r, id, "FunctionName")
}

pub fn table_name(r: &Resolver, id: &str) -> Result<String, String> {
    named(r, id, "TableName")
}

fn arn(r: &Resolver, service: &str, resource: &str) -> String {
    format!(
        "arn:{}:{service}:{}:{}:{resource}",
        r.pseudo.partition(),
        r.pseudo.region,
        r.pseudo.account_id
    )
}

/// `AWS::SQS::Queue` is `sqs`.
fn service_of(kind: &str) -> String {
    kind.split("::")
        .nth(1)
        .unwrap_or("unknown")
        .to_ascii_lowercase()
}

/// A Lambda function's ARN back to its logical id, for integration URIs
/// (`arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations`).
pub fn function_by_arn(r: &Resolver, wanted: &str) -> Result<Option<String>, String> {
    let wanted = wanted.strip_suffix(":$LATEST").unwrap_or(wanted);
    for (id, resource) in r.resources().into_iter().flatten() {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Lambda::Function") {
            continue;
        }
        let arn = text(&r.get_att(id, "Arn")?)?;
        if arn == wanted || function_name(r, id)? == wanted {
            return Ok(Some(id.clone()));
        }
    }
    Ok(None)
}
