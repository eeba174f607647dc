//! Every property of the resource types wsgate runs, and what wsgate does
//! with it (the CloudFormation resource reference lists them). A property
//! not listed here, or refused, stops the template with its line and
//! logical id: nothing is skipped silently. docs/cloudformation.md shows
//! these tables (a test keeps the two alike).

/// What wsgate does with one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Runs as on AWS.
    Run,
    /// Read and kept; it changes nothing locally (a description, tags,
    /// settings of AWS's own infrastructure).
    Accepted,
    /// Refused when set, saying why.
    Refused(&'static str),
}

use Support::{Accepted, Refused, Run};

const INTEGRATION_MODEL: &str =
    "non-proxy integrations (mapping templates) are not supported by wsgate yet";

pub const API: &[(&str, Support)] = &[
    ("ApiKeySelectionExpression", Accepted),
    ("BasePath", Accepted),
    (
        "Body",
        Refused("OpenAPI import defines HTTP APIs, which wsgate does not serve"),
    ),
    (
        "BodyS3Location",
        Refused("OpenAPI import defines HTTP APIs, which wsgate does not serve"),
    ),
    ("CorsConfiguration", Accepted),
    ("CredentialsArn", Accepted),
    ("Description", Accepted),
    ("DisableExecuteApiEndpoint", Accepted),
    ("DisableSchemaValidation", Accepted),
    ("FailOnWarnings", Accepted),
    ("IpAddressType", Accepted),
    ("Name", Run),
    ("ProtocolType", Run),
    ("RouteKey", Refused("quick create is for HTTP APIs")),
    ("RouteSelectionExpression", Run),
    ("Tags", Accepted),
    ("Target", Refused("quick create is for HTTP APIs")),
    ("Version", Accepted),
];

pub const ROUTE: &[(&str, Support)] = &[
    ("ApiId", Run),
    ("ApiKeyRequired", Run),
    ("AuthorizationScopes", Accepted),
    ("AuthorizationType", Run),
    ("AuthorizerId", Run),
    (
        "ModelSelectionExpression",
        Refused("request validation is not supported by wsgate yet"),
    ),
    ("OperationName", Accepted),
    (
        "RequestModels",
        Refused("request validation is not supported by wsgate yet"),
    ),
    (
        "RequestParameters",
        Refused("required $connect parameters are not supported by wsgate yet"),
    ),
    ("RouteKey", Run),
    ("RouteResponseSelectionExpression", Run),
    ("Target", Run),
];

pub const INTEGRATION: &[(&str, Support)] = &[
    ("ApiId", Run),
    ("ConnectionId", Accepted),
    ("ConnectionType", Run),
    ("ContentHandlingStrategy", Refused(INTEGRATION_MODEL)),
    ("CredentialsArn", Accepted),
    ("Description", Accepted),
    ("IntegrationMethod", Run),
    (
        "IntegrationSubtype",
        Refused("AWS service integrations are not supported by wsgate yet"),
    ),
    ("IntegrationType", Run),
    ("IntegrationUri", Run),
    ("PassthroughBehavior", Accepted),
    ("PayloadFormatVersion", Accepted),
    ("RequestParameters", Refused(INTEGRATION_MODEL)),
    ("RequestTemplates", Refused(INTEGRATION_MODEL)),
    ("ResponseParameters", Refused(INTEGRATION_MODEL)),
    ("TemplateSelectionExpression", Refused(INTEGRATION_MODEL)),
    ("TimeoutInMillis", Accepted),
    ("TlsConfig", Accepted),
];

pub const AUTHORIZER: &[(&str, Support)] = &[
    ("ApiId", Run),
    ("AuthorizerCredentialsArn", Accepted),
    ("AuthorizerPayloadFormatVersion", Accepted),
    ("AuthorizerResultTtlInSeconds", Accepted),
    ("AuthorizerType", Run),
    ("AuthorizerUri", Run),
    ("EnableSimpleResponses", Accepted),
    ("IdentitySource", Run),
    ("IdentityValidationExpression", Accepted),
    (
        "JwtConfiguration",
        Refused("JWT authorizers are for HTTP APIs"),
    ),
    ("Name", Run),
];

pub const STAGE: &[(&str, Support)] = &[
    ("AccessLogSettings", Run),
    ("AccessPolicyId", Accepted),
    ("ApiId", Run),
    ("AutoDeploy", Accepted),
    ("ClientCertificateId", Accepted),
    ("DefaultRouteSettings", Run),
    ("DeploymentId", Accepted),
    ("Description", Accepted),
    ("RouteSettings", Run),
    ("StageName", Run),
    (
        "StageVariables",
        Refused("stage variables are not supported by wsgate yet"),
    ),
    ("Tags", Accepted),
];

pub const DEPLOYMENT: &[(&str, Support)] = &[
    ("ApiId", Accepted),
    ("Description", Accepted),
    ("StageName", Accepted),
];

pub const DOMAIN_NAME: &[(&str, Support)] = &[
    ("DomainName", Run),
    ("DomainNameConfigurations", Accepted),
    (
        "MutualTlsAuthentication",
        Refused("mutual TLS on a custom domain is not supported by wsgate"),
    ),
    ("RoutingMode", Accepted),
    ("Tags", Accepted),
];

pub const API_MAPPING: &[(&str, Support)] = &[
    ("ApiId", Run),
    ("ApiMappingKey", Run),
    ("DomainName", Run),
    ("Stage", Run),
];

pub const ROUTE_RESPONSE: &[(&str, Support)] = &[
    ("ApiId", Run),
    (
        "ModelSelectionExpression",
        Refused("response models are not supported by wsgate yet"),
    ),
    (
        "ResponseModels",
        Refused("response models are not supported by wsgate yet"),
    ),
    (
        "ResponseParameters",
        Refused("response parameters are not supported by wsgate yet"),
    ),
    ("RouteId", Run),
    ("RouteResponseKey", Run),
];

pub const FUNCTION: &[(&str, Support)] = &[
    ("Architectures", Accepted),
    ("Code", Run),
    ("CodeSigningConfigArn", Accepted),
    ("DeadLetterConfig", Accepted),
    ("Description", Accepted),
    ("Environment", Run),
    ("EphemeralStorage", Accepted),
    (
        "FileSystemConfigs",
        Refused("EFS file systems are not here"),
    ),
    ("FunctionName", Run),
    ("Handler", Run),
    (
        "ImageConfig",
        Refused("container image functions are not supported by wsgate"),
    ),
    ("KmsKeyArn", Accepted),
    ("Layers", Run),
    ("LoggingConfig", Accepted),
    ("MemorySize", Run),
    ("PackageType", Run),
    ("RecursiveLoop", Accepted),
    ("ReservedConcurrentExecutions", Run),
    ("Role", Run),
    ("Runtime", Run),
    ("RuntimeManagementConfig", Accepted),
    ("SnapStart", Accepted),
    ("Tags", Accepted),
    ("Timeout", Run),
    ("TracingConfig", Accepted),
    ("VpcConfig", Accepted),
];

pub const LAYER_VERSION: &[(&str, Support)] = &[
    ("CompatibleArchitectures", Accepted),
    ("CompatibleRuntimes", Accepted),
    ("Content", Run),
    ("Description", Accepted),
    ("LayerName", Run),
    ("LicenseInfo", Accepted),
];

pub const TABLE: &[(&str, Support)] = &[
    ("AttributeDefinitions", Run),
    ("BillingMode", Accepted),
    ("ContributorInsightsSpecification", Accepted),
    ("DeletionProtectionEnabled", Accepted),
    ("GlobalSecondaryIndexes", Run),
    (
        "ImportSourceSpecification",
        Refused("importing a table from S3 is not supported by wsgate"),
    ),
    ("KeySchema", Run),
    ("KinesisStreamSpecification", Accepted),
    ("LocalSecondaryIndexes", Run),
    ("OnDemandThroughput", Accepted),
    ("PointInTimeRecoverySpecification", Accepted),
    ("ProvisionedThroughput", Accepted),
    ("ResourcePolicy", Accepted),
    ("SSESpecification", Accepted),
    ("StreamSpecification", Accepted),
    ("TableClass", Accepted),
    ("TableName", Run),
    ("Tags", Accepted),
    ("TimeToLiveSpecification", Run),
    ("WarmThroughput", Accepted),
];

/// The CDK's `TableV2`: served as one local table (no replicas here).
pub const GLOBAL_TABLE: &[(&str, Support)] = &[
    ("AttributeDefinitions", Run),
    ("BillingMode", Accepted),
    ("GlobalSecondaryIndexes", Run),
    ("GlobalTableWitnesses", Accepted),
    ("KeySchema", Run),
    ("LocalSecondaryIndexes", Run),
    ("MultiRegionConsistency", Accepted),
    ("Replicas", Accepted),
    ("SSESpecification", Accepted),
    ("StreamSpecification", Accepted),
    ("TableName", Run),
    ("TimeToLiveSpecification", Run),
    ("WarmThroughput", Accepted),
    ("WriteOnDemandThroughputSettings", Accepted),
    ("WriteProvisionedThroughputSettings", Accepted),
];

pub const ROLE: &[(&str, Support)] = &[
    ("AssumeRolePolicyDocument", Accepted),
    ("Description", Accepted),
    ("ManagedPolicyArns", Accepted),
    ("MaxSessionDuration", Accepted),
    ("Path", Accepted),
    ("PermissionsBoundary", Accepted),
    ("Policies", Run),
    ("RoleName", Run),
    ("Tags", Accepted),
];

/// The property table of a resource type wsgate runs or reads.
pub fn table(kind: &str) -> Option<&'static [(&'static str, Support)]> {
    Some(match kind {
        "AWS::ApiGatewayV2::Api" => API,
        "AWS::ApiGatewayV2::Route" => ROUTE,
        "AWS::ApiGatewayV2::Integration" => INTEGRATION,
        "AWS::ApiGatewayV2::Authorizer" => AUTHORIZER,
        "AWS::ApiGatewayV2::Stage" => STAGE,
        "AWS::ApiGatewayV2::Deployment" => DEPLOYMENT,
        "AWS::ApiGatewayV2::DomainName" => DOMAIN_NAME,
        "AWS::ApiGatewayV2::ApiMapping" => API_MAPPING,
        "AWS::ApiGatewayV2::RouteResponse" => ROUTE_RESPONSE,
        "AWS::Lambda::Function" => FUNCTION,
        "AWS::Lambda::LayerVersion" => LAYER_VERSION,
        "AWS::DynamoDB::Table" => TABLE,
        "AWS::DynamoDB::GlobalTable" => GLOBAL_TABLE,
        "AWS::IAM::Role" => ROLE,
        _ => return None,
    })
}

/// Checks a resource's properties against its type's table: the first
/// one wsgate refuses, with why.
pub fn check(
    kind: &str,
    properties: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), (String, String)> {
    let Some(table) = table(kind) else {
        return Ok(());
    };
    for (name, value) in properties {
        match table.iter().find(|(known, _)| known == name) {
            Some((_, Run | Accepted)) => {}
            Some((_, Refused(why))) => {
                if is_unset(value) {
                    continue;
                }
                return Err((
                    name.clone(),
                    format!("not supported by wsgate: {kind} {name}: {why}"),
                ));
            }
            None => {
                return Err((
                    name.clone(),
                    format!(
                        "not supported by wsgate: {kind} has no property {name} that wsgate knows"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A property given as empty is the same as not given.
fn is_unset(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Object(map) => map.is_empty(),
        serde_json::Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPES: &[&str] = &[
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Authorizer",
        "AWS::ApiGatewayV2::Stage",
        "AWS::ApiGatewayV2::Deployment",
        "AWS::ApiGatewayV2::DomainName",
        "AWS::ApiGatewayV2::ApiMapping",
        "AWS::ApiGatewayV2::RouteResponse",
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::IAM::Role",
    ];

    /// docs/cloudformation.md lists every property as these tables say.
    #[test]
    fn the_docs_list_every_property_as_it_is() {
        let docs = include_str!("../../docs/cloudformation.md");
        for kind in TYPES {
            let section = docs
                .split(&format!("### {kind}\n"))
                .nth(1)
                .unwrap_or_else(|| panic!("docs/cloudformation.md has no section for {kind}"));
            let section = section.split("\n### ").next().unwrap_or_default();
            let rows = section.lines().filter(|l| l.starts_with("| `")).count();
            let properties = table(kind).unwrap();
            assert_eq!(
                rows,
                properties.len(),
                "{kind}: the docs list {rows} properties"
            );
            for (name, support) in properties {
                let word = match support {
                    Run => "run",
                    Accepted => "accepted",
                    Refused(_) => "refused",
                };
                assert!(
                    section.contains(&format!("| `{name}` | {word} |")),
                    "{kind}: the docs do not say `{name}` is {word}"
                );
            }
        }
    }

    #[test]
    fn refused_and_unknown_properties_say_why() {
        let props = |json: serde_json::Value| json.as_object().unwrap().clone();
        assert!(
            check(
                "AWS::ApiGatewayV2::Route",
                &props(serde_json::json!({"RouteKey": "x", "Target": "y"}))
            )
            .is_ok()
        );
        // Empty is the same as not given.
        assert!(
            check(
                "AWS::ApiGatewayV2::Route",
                &props(serde_json::json!({"RequestModels": {}}))
            )
            .is_ok()
        );
        let (property, why) = check(
            "AWS::ApiGatewayV2::Integration",
            &props(serde_json::json!({"RequestTemplates": {"$default": "{}"}})),
        )
        .unwrap_err();
        assert_eq!(property, "RequestTemplates");
        assert!(why.starts_with("not supported by wsgate"), "{why}");
        let (property, why) = check(
            "AWS::Lambda::Function",
            &props(serde_json::json!({"Handlr": "x"})),
        )
        .unwrap_err();
        assert_eq!(property, "Handlr");
        assert!(why.contains("no property Handlr"), "{why}");
    }
}
