//! The resources of a template as the app definition: each WebSocket API
//! (`AWS::ApiGatewayV2::Api` with `ProtocolType: WEBSOCKET`) with its
//! routes, integrations, authorizers, stage and domain becomes a `Config`;
//! its Lambda functions become function handlers; its DynamoDB tables run
//! on the local emulator. Every other resource is a stand-in.

use super::attributes::{self, api_id, function_by_arn};
use super::intrinsics::{Resolver, text};
use super::properties;
use super::sam::LOCAL_CODE_BUCKET;
use crate::access_log::format::Format;
use crate::config::{
    self, AuthorizerConfig, Effect, HandlerSpec, PermissionStatement, RouteAuth, RouteConfig,
};
use crate::gateway::throttle::ThrottleSettings;
use crate::sst::definition::{IndexDefinition, TableDefinition};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// A problem with one resource (or with the template, for `None`).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub logical_id: Option<String>,
    /// The property it is about, when one.
    pub property: Option<String>,
    pub message: String,
}

impl Refusal {
    fn of(logical_id: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            logical_id: Some(logical_id.to_string()),
            property: None,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, Refusal>;

/// Resource types that have no local part to run and nothing to list: an
/// invoke permission (wsgate always invokes its functions), a deployment.
const NOTHING_TO_RUN: &[&str] = &[
    "AWS::Lambda::Permission",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::IAM::Policy",
    "AWS::IAM::Role",
    "AWS::CDK::Metadata",
];

/// One WebSocket API, before its listener and outputs are attached.
pub struct ApiPlan {
    pub logical_id: String,
    pub name: String,
    pub api_id: String,
    pub route_selection_expression: String,
    pub stage: String,
    pub access_log_format: Option<Format>,
    pub throttle: Option<ThrottleSettings>,
    pub routes: Vec<RouteConfig>,
    pub authorizers: Vec<AuthorizerConfig>,
    /// A custom domain (name, base path).
    pub domain: Option<(String, Option<String>)>,
}

/// Everything the template runs.
pub struct Plan {
    pub apis: Vec<ApiPlan>,
    pub tables: Vec<TableDefinition>,
    /// Functions no route runs, invoked through the local Lambda API.
    pub invokable: Vec<RouteConfig>,
    /// `<type> <logical id>` of every resource not run locally.
    pub stand_ins: Vec<String>,
}

/// The logical ids of the template's WebSocket APIs, and whether it has
/// REST or HTTP APIs.
pub fn websocket_apis(r: &Resolver) -> Result<(Vec<String>, Vec<String>)> {
    let mut websocket = Vec::new();
    let mut others = Vec::new();
    for (id, resource) in r.resources().into_iter().flatten() {
        if !created(r, id)? {
            continue;
        }
        match resource.get("Type").and_then(Value::as_str) {
            Some("AWS::ApiGatewayV2::Api") => {
                let protocol = r
                    .string_property(id, "ProtocolType")
                    .map_err(|e| Refusal::of(id, e))?
                    .unwrap_or_default();
                if protocol == "WEBSOCKET" {
                    websocket.push(id.clone());
                } else {
                    others.push(format!("{id} ({protocol} API)"));
                }
            }
            Some("AWS::ApiGateway::RestApi") | Some("AWS::Serverless::Api") => {
                others.push(format!("{id} (REST API)"))
            }
            Some("AWS::Serverless::HttpApi") => others.push(format!("{id} (HTTP API)")),
            _ => {}
        }
    }
    Ok((websocket, others))
}

fn created(r: &Resolver, id: &str) -> Result<bool> {
    r.is_created(id).map_err(|e| Refusal::of(id, e))
}

/// Where a template's files are: its own folder (code paths are relative
/// to it) and the app's (handler paths, `.wsgate`).
#[derive(Debug, Clone, Copy)]
pub struct Folders<'a> {
    pub template: &'a Path,
    pub app: &'a Path,
    pub state: &'a Path,
    /// The template is SAM's: dependencies are installed as `sam build`
    /// installs them.
    pub sam: bool,
}

pub fn plan(r: &Resolver, dir: Folders, stage: Option<&str>, apis: &[String]) -> Result<Plan> {
    let mut stand_ins = Vec::new();
    let served_ids: Vec<String> = apis.iter().map(|api| api_id(r, api)).collect();
    // Resource types wsgate runs have their properties checked up front.
    for (id, resource) in r.resources().into_iter().flatten() {
        if !created(r, id)? {
            continue;
        }
        let kind = resource
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.starts_with("AWS::Serverless::") {
            return Err(Refusal::of(
                id,
                format!(
                    "{kind} is SAM's: the template needs `Transform: {}`",
                    super::sam::SAM_TRANSFORM
                ),
            ));
        }
        if matches!(
            kind,
            "AWS::ApiGatewayV2::IntegrationResponse" | "AWS::ApiGatewayV2::Model"
        ) {
            return Err(Refusal::of(
                id,
                format!(
                    "not supported by wsgate: {kind}: non-proxy integrations and models are not supported by wsgate yet"
                ),
            ));
        }
        // An HTTP API's routes and integrations are its stand-ins too.
        if kind.starts_with("AWS::ApiGatewayV2::")
            && resource.pointer("/Properties/ApiId").is_some()
        {
            let of = r
                .string_property(id, "ApiId")
                .map_err(|e| Refusal::of(id, e))?;
            if !served_ids.iter().any(|served| Some(served) == of.as_ref()) {
                stand_ins.push(format!("{kind} {id}"));
                continue;
            }
        }
        // A function is checked when a route or the Lambda API needs it
        // (`function`): one that cannot run is a stand-in unless routed.
        if kind != "AWS::Lambda::Function" {
            check_properties(resource, id)?;
        }
        let runs = (properties::table(kind).is_some() && kind != "AWS::ApiGatewayV2::Api")
            || apis.contains(id);
        if !runs && !NOTHING_TO_RUN.contains(&kind) {
            stand_ins.push(format!("{kind} {id}"));
        }
    }
    let mut used_functions = BTreeSet::new();
    let mut plans = Vec::new();
    for api in apis {
        plans.push(api_plan(r, dir, api, stage, &mut used_functions)?);
    }
    let mut tables = Vec::new();
    let mut invokable = Vec::new();
    for (id, resource) in r.resources().into_iter().flatten() {
        if !created(r, id)? {
            continue;
        }
        match resource.get("Type").and_then(Value::as_str) {
            Some("AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable") => {
                tables.push(table(r, id)?)
            }
            Some("AWS::Lambda::Function") if !used_functions.contains(id) => {
                let name = attributes::function_name(r, id).map_err(|e| Refusal::of(id, e))?;
                match function(r, dir, id, &name) {
                    Ok(config) => invokable.push(config),
                    // A function no route runs that cannot run here (its
                    // runtime, code in S3: a custom resource's handler) is
                    // a stand-in, said once, rather than an error.
                    Err(refusal) => {
                        tracing::info!(
                            "{id} is not run locally: {}",
                            refusal
                                .message
                                .trim_start_matches("not supported by wsgate: ")
                        );
                        stand_ins.push(format!("AWS::Lambda::Function {id}"));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Plan {
        apis: plans,
        tables,
        invokable,
        stand_ins: grouped(stand_ins),
    })
}

/// A resource's properties against what wsgate runs of its type.
fn check_properties(resource: &Value, id: &str) -> Result<()> {
    let kind = resource
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match resource.get("Properties") {
        Some(Value::Object(props)) => {
            properties::check(kind, props).map_err(|(property, message)| Refusal {
                logical_id: Some(id.to_string()),
                property: Some(property),
                message,
            })
        }
        _ => Ok(()),
    }
}

/// `<type> <id>` items as one `<type> <id>, <id>` item per type, in the
/// template's order.
fn grouped(items: Vec<String>) -> Vec<String> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for item in items {
        let (kind, id) = item.split_once(' ').unwrap_or((&item, ""));
        match groups.iter_mut().find(|(k, _)| k == kind) {
            Some((_, ids)) => ids.push(id.to_string()),
            None => groups.push((kind.to_string(), vec![id.to_string()])),
        }
    }
    groups
        .into_iter()
        .map(|(kind, ids)| format!("{kind} {}", ids.join(", ")))
        .collect()
}

/// The resources of one type that belong to an API (`ApiId: !Ref Api`).
fn children<'r>(r: &'r Resolver, api: &str, kind: &str) -> Result<Vec<&'r String>> {
    let wanted = api_id(r, api);
    let mut found = Vec::new();
    for (id, resource) in r.resources().into_iter().flatten() {
        if resource.get("Type").and_then(Value::as_str) != Some(kind) || !created(r, id)? {
            continue;
        }
        let of = r
            .string_property(id, "ApiId")
            .map_err(|e| Refusal::of(id, e))?;
        if of.as_deref() == Some(wanted.as_str()) {
            found.push(id);
        }
    }
    Ok(found)
}

/// What `Ref <id>` gives, as text.
fn ref_text(r: &Resolver, id: &str) -> Result<String> {
    r.resolve(&serde_json::json!({ "Ref": id }))
        .and_then(|v| text(&v.unwrap_or_default()))
        .map_err(|e| Refusal::of(id, e))
}

/// The logical id among `ids` whose `Ref` is `value`.
fn by_ref(r: &Resolver, ids: &[&String], value: &str) -> Result<Option<String>> {
    for id in ids {
        if ref_text(r, id)? == value {
            return Ok(Some((*id).clone()));
        }
    }
    Ok(None)
}

fn api_plan(
    r: &Resolver,
    dir: Folders,
    api: &str,
    wanted_stage: Option<&str>,
    used_functions: &mut BTreeSet<String>,
) -> Result<ApiPlan> {
    let string = |id: &str, name: &str| {
        r.string_property(id, name).map_err(|e| Refusal {
            logical_id: Some(id.to_string()),
            property: Some(name.to_string()),
            message: e,
        })
    };
    let name = string(api, "Name")?.unwrap_or_else(|| api.to_string());
    config::validate::check_component_name(&name).map_err(|e| Refusal::of(api, e))?;
    let route_selection_expression = string(api, "RouteSelectionExpression")?
        .ok_or_else(|| Refusal::of(api, "a WebSocket API needs a RouteSelectionExpression"))?;

    // The stage: the one --stage names, else the API's only one.
    let stages = children(r, api, "AWS::ApiGatewayV2::Stage")?;
    let mut named = Vec::new();
    for id in &stages {
        named.push(((*id).clone(), string(id, "StageName")?.unwrap_or_default()));
    }
    let (stage_id, stage) = match wanted_stage {
        Some(wanted) => named
            .iter()
            .find(|(_, n)| n == wanted)
            .cloned()
            .ok_or_else(|| {
                Refusal::of(
                    api,
                    format!(
                        "--stage {wanted}: the API's stages are {}",
                        named
                            .iter()
                            .map(|(_, n)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?,
        None => match named.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Refusal::of(
                    api,
                    "the API has no AWS::ApiGatewayV2::Stage: on AWS it cannot be reached until it has one",
                ));
            }
            several => {
                return Err(Refusal::of(
                    api,
                    format!(
                        "the API has several stages ({}): choose one with --stage",
                        several
                            .iter()
                            .map(|(_, n)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        },
    };
    if !config::validate::is_valid_stage(&stage) {
        return Err(Refusal::of(
            &stage_id,
            format!("\"{stage}\" is not a stage name"),
        ));
    }
    let settings = r
        .property(&stage_id, "DefaultRouteSettings")
        .map_err(|e| Refusal::of(&stage_id, e))?;
    let throttle = settings.as_ref().and_then(throttle);
    if let Some(Value::Object(per_route)) = r
        .property(&stage_id, "RouteSettings")
        .map_err(|e| Refusal::of(&stage_id, e))?
    {
        for (route, settings) in &per_route {
            if throttle_of(settings).is_some() {
                return Err(Refusal {
                    logical_id: Some(stage_id.clone()),
                    property: Some("RouteSettings".into()),
                    message: format!(
                        "not supported by wsgate: throttling one route ({route}); wsgate throttles the stage (DefaultRouteSettings)"
                    ),
                });
            }
        }
    }
    let access_log_format = match r
        .property(&stage_id, "AccessLogSettings")
        .map_err(|e| Refusal::of(&stage_id, e))?
    {
        Some(settings) => match settings.get("Format") {
            Some(format) => Some(
                Format::for_stage(&text(format).map_err(|e| Refusal::of(&stage_id, e))?).map_err(
                    |e| Refusal::of(&stage_id, format!("AccessLogSettings.Format: {e}")),
                )?,
            ),
            None => None,
        },
        None => None,
    };

    let integrations = children(r, api, "AWS::ApiGatewayV2::Integration")?;
    let authorizer_ids = children(r, api, "AWS::ApiGatewayV2::Authorizer")?;
    let route_responses = children(r, api, "AWS::ApiGatewayV2::RouteResponse")?;
    let handler_of = |id: &str,
                      uri_property: &str,
                      used: &mut BTreeSet<String>|
     -> Result<RouteConfig> {
        let uri = string(id, uri_property)?
            .ok_or_else(|| Refusal::of(id, format!("{uri_property} is missing")))?;
        let arn = lambda_arn(&uri).ok_or_else(|| {
            Refusal::of(id, format!("not supported by wsgate: {uri_property} {uri}: wsgate invokes Lambda functions of this template"))
        })?;
        let function_id = function_by_arn(r, &arn)
            .map_err(|e| Refusal::of(id, e))?
            .ok_or_else(|| {
                Refusal::of(
                    id,
                    format!(
                        "{uri_property} invokes {arn}, which is not a function of this template"
                    ),
                )
            })?;
        used.insert(function_id.clone());
        let name =
            attributes::function_name(r, &function_id).map_err(|e| Refusal::of(&function_id, e))?;
        function(r, dir, &function_id, &name)
    };

    let mut authorizers = Vec::new();
    let mut authorizer_names = BTreeMap::new();
    for id in &authorizer_ids {
        let kind = string(id, "AuthorizerType")?.unwrap_or_default();
        if kind != "REQUEST" {
            return Err(Refusal::of(
                id,
                format!(
                    "not supported by wsgate: AuthorizerType {kind}; WebSocket APIs take REQUEST authorizers"
                ),
            ));
        }
        let name = string(id, "Name")?.unwrap_or_else(|| (*id).clone());
        let handler = handler_of(id, "AuthorizerUri", used_functions)?;
        let sources = match r
            .property(id, "IdentitySource")
            .map_err(|e| Refusal::of(id, e))?
        {
            Some(Value::Array(items)) => items,
            Some(Value::String(one)) => vec![Value::String(one)],
            _ => Vec::new(),
        };
        let identity_sources = sources
            .iter()
            .map(|source| {
                let source = text(source).unwrap_or_default();
                config::parse_identity_source(&source).ok_or_else(|| {
                    Refusal::of(id, format!("IdentitySource \"{source}\" is not route.request.header.<name> or route.request.querystring.<name>"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        authorizer_names.insert(ref_text(r, id)?, name.clone());
        authorizers.push(AuthorizerConfig {
            name,
            handler: RouteConfig {
                key: (*id).clone(),
                ..handler
            },
            identity_sources,
        });
    }

    let mut routes = Vec::new();
    for id in children(r, api, "AWS::ApiGatewayV2::Route")? {
        let key = string(id, "RouteKey")?.ok_or_else(|| Refusal::of(id, "RouteKey is missing"))?;
        config::validate::check_route_key(&key).map_err(|e| Refusal::of(id, e))?;
        if r.property(id, "ApiKeyRequired")
            .map_err(|e| Refusal::of(id, e))?
            .is_some_and(|v| v == Value::Bool(true) || v == "true")
        {
            return Err(Refusal::of(
                id,
                "not supported by wsgate: ApiKeyRequired: API keys are not supported by wsgate yet",
            ));
        }
        let target = string(id, "Target")?.ok_or_else(|| {
            Refusal::of(id, "the route has no Target: on AWS its messages fail; give it integrations/<IntegrationId>")
        })?;
        let integration_ref = target.strip_prefix("integrations/").ok_or_else(|| {
            Refusal::of(
                id,
                format!("Target \"{target}\" is not integrations/<IntegrationId>"),
            )
        })?;
        let integration = by_ref(r, &integrations, integration_ref)?.ok_or_else(|| {
            Refusal::of(
                id,
                format!(
                    "Target names integration {integration_ref}, which is not one of this API's"
                ),
            )
        })?;
        let kind = string(&integration, "IntegrationType")?.unwrap_or_default();
        let mut route = match kind.as_str() {
            "AWS_PROXY" => handler_of(&integration, "IntegrationUri", used_functions)?,
            "HTTP_PROXY" => {
                let method =
                    string(&integration, "IntegrationMethod")?.unwrap_or_else(|| "POST".into());
                if method != "POST" && method != "ANY" {
                    return Err(Refusal::of(
                        &integration,
                        format!(
                            "not supported by wsgate: IntegrationMethod {method}; wsgate's HTTP proxy integration POSTs"
                        ),
                    ));
                }
                if string(&integration, "ConnectionType")?.as_deref() == Some("VPC_LINK") {
                    return Err(Refusal::of(
                        &integration,
                        "not supported by wsgate: ConnectionType VPC_LINK",
                    ));
                }
                let uri = string(&integration, "IntegrationUri")?
                    .ok_or_else(|| Refusal::of(&integration, "IntegrationUri is missing"))?;
                url_route(uri)
            }
            "MOCK" | "HTTP" | "AWS" => {
                return Err(Refusal::of(
                    &integration,
                    format!(
                        "not supported by wsgate: IntegrationType {kind}: non-proxy integrations are not supported by wsgate yet"
                    ),
                ));
            }
            other => {
                return Err(Refusal::of(
                    &integration,
                    format!(
                        "IntegrationType \"{other}\" is not one of AWS_PROXY, HTTP_PROXY, MOCK, HTTP, AWS"
                    ),
                ));
            }
        };
        route.key = key.clone();
        route.auth = match string(id, "AuthorizationType")?
            .as_deref()
            .unwrap_or("NONE")
        {
            "NONE" => None,
            "AWS_IAM" => Some(RouteAuth::Iam),
            "CUSTOM" => {
                let authorizer = string(id, "AuthorizerId")?.ok_or_else(|| {
                    Refusal::of(id, "AuthorizationType CUSTOM needs an AuthorizerId")
                })?;
                let name = authorizer_names.get(&authorizer).cloned().ok_or_else(|| {
                    Refusal::of(
                        id,
                        format!("AuthorizerId {authorizer} is not an authorizer of this API"),
                    )
                })?;
                Some(RouteAuth::Lambda(name))
            }
            other => {
                return Err(Refusal::of(
                    id,
                    format!("not supported by wsgate: AuthorizationType {other}"),
                ));
            }
        };
        if route.auth.is_some() && key != "$connect" {
            return Err(Refusal::of(
                id,
                "API Gateway authorizes only at $connect; AuthorizationType belongs on the $connect route",
            ));
        }
        // A two-way route: a response selection expression and a route
        // response (AWS's guide, "Set up a WebSocket API integration
        // response", two-way communication).
        if string(id, "RouteResponseSelectionExpression")?.is_some() {
            let route_ref = ref_text(r, id)?;
            for response in &route_responses {
                if string(response, "RouteId")?.as_deref() == Some(route_ref.as_str()) {
                    route.return_response = true;
                }
            }
        }
        routes.push(route);
    }

    let mut domain = None;
    for id in children(r, api, "AWS::ApiGatewayV2::ApiMapping")? {
        let name =
            string(id, "DomainName")?.ok_or_else(|| Refusal::of(id, "DomainName is missing"))?;
        let path = string(id, "ApiMappingKey")?.filter(|p| !p.is_empty());
        if domain.replace((name, path)).is_some() {
            return Err(Refusal::of(
                id,
                "not supported by wsgate: a second API mapping for one API",
            ));
        }
    }
    Ok(ApiPlan {
        logical_id: api.to_string(),
        name,
        api_id: api_id(r, api),
        route_selection_expression,
        stage,
        access_log_format,
        throttle,
        routes,
        authorizers,
        domain,
    })
}

fn url_route(url: String) -> RouteConfig {
    RouteConfig {
        key: String::new(),
        line: 0,
        handler: HandlerSpec::Url(url),
        timeout: None,
        memory: None,
        environment: BTreeMap::new(),
        link: Vec::new(),
        auth: None,
        return_response: false,
        concurrency: None,
        resources: Vec::new(),
        nodejs: None,
        runtime: None,
        permissions: Vec::new(),
        layers: Vec::new(),
    }
}

/// The function ARN in a Lambda integration URI
/// (`arn:<partition>:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations`),
/// or a bare function ARN.
fn lambda_arn(uri: &str) -> Option<String> {
    if let Some((_, rest)) = uri.split_once(":lambda:path/2015-03-31/functions/") {
        return rest.strip_suffix("/invocations").map(String::from);
    }
    (uri.starts_with("arn:") && uri.contains(":lambda:")).then(|| uri.to_string())
}

fn throttle_of(settings: &Value) -> Option<(Option<f64>, Option<f64>)> {
    let number = |key: &str| {
        settings.get(key).and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
    };
    let burst = number("ThrottlingBurstLimit");
    let rate = number("ThrottlingRateLimit");
    (burst.is_some() || rate.is_some()).then_some((burst, rate))
}

fn throttle(settings: &Value) -> Option<ThrottleSettings> {
    let (burst, rate) = throttle_of(settings)?;
    let rate = rate.or(burst).unwrap_or(0.0);
    let burst = burst.unwrap_or(rate.ceil());
    Some(ThrottleSettings {
        burst_limit: burst.clamp(0.0, f64::from(u32::MAX)) as u32,
        rate_limit: rate.max(0.0),
    })
}

/// A Lambda function of the template as a handler: its code folder, its
/// handler, runtime, environment, limits and role.
fn function(r: &Resolver, dir: Folders, id: &str, name: &str) -> Result<RouteConfig> {
    if let Some(resource) = r.resource(id) {
        check_properties(resource, id)?;
    }
    let property = |key: &str| r.property(id, key).map_err(|e| Refusal::of(id, e));
    let string = |key: &str| r.string_property(id, key).map_err(|e| Refusal::of(id, e));
    if string("PackageType")?.as_deref() == Some("Image") {
        return Err(Refusal::of(
            id,
            "not supported by wsgate: PackageType Image (container image functions)",
        ));
    }
    let runtime = string("Runtime")?.ok_or_else(|| Refusal::of(id, "Runtime is missing"))?;
    let python = runtime.starts_with("python");
    if !(python || runtime.starts_with("nodejs")) {
        return Err(Refusal::of(
            id,
            format!(
                "not supported by wsgate: the {runtime} runtime; Node.js and Python functions run"
            ),
        ));
    }
    let handler = string("Handler")?.ok_or_else(|| Refusal::of(id, "Handler is missing"))?;
    let (module, export) = handler.rsplit_once('.').ok_or_else(|| {
        Refusal::of(
            id,
            format!("Handler \"{handler}\" is not <file>.<function>"),
        )
    })?;
    // Python's handler is a module path (`pkg.app.handler`).
    let module = if python {
        module.replace('.', "/")
    } else {
        module.to_string()
    };
    let code = code_folder(r, dir, id, &runtime, &property("Code")?)?;
    let handler_string = if code.as_os_str().is_empty() {
        format!("{module}.{export}")
    } else {
        format!("{}/{module}.{export}", code.display())
    };
    config::check_handler_path(&handler_string).map_err(|e| Refusal::of(id, e))?;
    let mut environment = BTreeMap::new();
    if let Some(Value::Object(variables)) =
        property("Environment")?.and_then(|e| e.get("Variables").cloned())
    {
        for (key, value) in variables {
            environment.insert(
                key.clone(),
                text(&value)
                    .map_err(|e| Refusal::of(id, format!("Environment.Variables.{key}: {e}")))?,
            );
        }
    }
    let number = |key: &str| -> Result<Option<f64>> {
        Ok(match property(key)? {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => Some(
                s.parse()
                    .map_err(|_| Refusal::of(id, format!("{key} \"{s}\" is not a number")))?,
            ),
            Some(other) => return Err(Refusal::of(id, format!("{key} {other} is not a number"))),
            None => None,
        })
    };
    // Lambda's defaults: 3 seconds, 128 MB.
    let timeout = number("Timeout")?.unwrap_or(3.0).clamp(1.0, 900.0);
    let memory = number("MemorySize")?.unwrap_or(128.0).clamp(128.0, 10240.0);
    let concurrency = number("ReservedConcurrentExecutions")?.map(|c| c.max(0.0) as usize);
    let mut layers = match property("Layers")? {
        Some(Value::Array(arns)) => arns
            .iter()
            .map(|arn| layer_folder(r, dir, id, &text(arn).unwrap_or_default()))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect(),
        _ => Vec::new(),
    };
    // `sam build`'s install of the function's own dependencies, found as
    // a layer's are.
    if dir.sam {
        layers.extend(
            super::sam::dependencies(&dir.app.join(&code), dir.state, id, &runtime)
                .map_err(|e| Refusal::of(id, e))?,
        );
    }
    let permissions = match property("Role")? {
        Some(role) => {
            role_statements(r, &text(&role).unwrap_or_default()).map_err(|e| Refusal::of(id, e))?
        }
        None => Vec::new(),
    };
    Ok(RouteConfig {
        key: name.to_string(),
        line: 0,
        handler: HandlerSpec::Handler(handler_string),
        timeout: Some(Duration::from_secs_f64(timeout)),
        memory: Some((memory * 1024.0 * 1024.0) as u64),
        environment,
        link: Vec::new(),
        auth: None,
        return_response: false,
        concurrency,
        resources: Vec::new(),
        nodejs: None,
        runtime: Some(runtime),
        permissions,
        layers,
    })
}

/// The content folders of a layer a function names by ARN: an
/// `AWS::Lambda::LayerVersion` of the template whose content is local
/// (SAM's `ContentUri`, a CDK asset), and for a layer SAM builds
/// (`Metadata: BuildMethod: nodejs20.x`, `python3.12`), its installed
/// dependencies.
fn layer_folder(
    r: &Resolver,
    dir: Folders,
    function: &str,
    arn: &str,
) -> Result<Vec<std::path::PathBuf>> {
    for (id, resource) in r.resources().into_iter().flatten() {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Lambda::LayerVersion") {
            continue;
        }
        if ref_text(r, id)? != arn {
            continue;
        }
        let content = r.property(id, "Content").map_err(|e| Refusal::of(id, e))?;
        let folder = dir.app.join(local_code(r, dir, id, "Content", &content)?);
        let mut folders = vec![folder.clone()];
        if dir.sam
            && let Some(method) = resource
                .pointer("/Metadata/BuildMethod")
                .and_then(Value::as_str)
            && (method.starts_with("nodejs") || method.starts_with("python"))
        {
            folders.extend(
                super::sam::dependencies(&folder, dir.state, id, method)
                    .map_err(|e| Refusal::of(id, e))?,
            );
        }
        return Ok(folders);
    }
    Err(Refusal::of(
        function,
        format!(
            "not supported by wsgate: the layer {arn} is not in this template; wsgate runs layers whose content is a local folder"
        ),
    ))
}

/// Where a function's code is, relative to the app's folder (handler
/// strings are).
fn code_folder(
    r: &Resolver,
    dir: Folders,
    id: &str,
    runtime: &str,
    code: &Option<Value>,
) -> Result<std::path::PathBuf> {
    if let Some(Value::Object(code)) = code
        && let Some(inline) = code.get("ZipFile")
    {
        // Lambda names inline code index.js / index.py.
        let source = text(inline).map_err(|e| Refusal::of(id, format!("Code.ZipFile: {e}")))?;
        let folder = dir.state.join("cloudformation").join(id);
        let file = folder.join(if runtime.starts_with("python") {
            "index.py"
        } else {
            "index.js"
        });
        std::fs::create_dir_all(&folder)
            .and_then(|()| std::fs::write(&file, source))
            .map_err(|e| Refusal::of(id, format!("cannot write {}: {e}", file.display())))?;
        return in_app(dir, id, &folder);
    }
    local_code(r, dir, id, "Code", code)
}

/// A function's `Code` or a layer's `Content` that is a local folder: a
/// CDK asset (`aws:asset:path` in the resource's metadata), or a folder
/// given to SAM's transform (`LOCAL_CODE_BUCKET`); relative to the app's
/// folder.
fn local_code(
    r: &Resolver,
    dir: Folders,
    id: &str,
    property: &str,
    code: &Option<Value>,
) -> Result<std::path::PathBuf> {
    let metadata = r.resource(id).and_then(|res| res.get("Metadata"));
    if let Some(path) = metadata
        .and_then(|m| m.get("aws:asset:path"))
        .and_then(Value::as_str)
        && metadata
            .and_then(|m| m.get("aws:asset:property"))
            .and_then(Value::as_str)
            == Some(property)
    {
        let asset = dir.template.join(path);
        // A synthesis stopped halfway leaves an asset's folder empty.
        let empty = std::fs::read_dir(&asset).map_or(true, |mut entries| entries.next().is_none());
        if empty {
            return Err(Refusal::of(
                id,
                format!(
                    "its asset {} is missing or empty (a synthesis stopped halfway?): remove the assembly folder (cdk.out) and start again",
                    asset.display()
                ),
            ));
        }
        return in_app(dir, id, &asset);
    }
    let Some(Value::Object(code)) = code else {
        return Err(Refusal::of(id, format!("{property} is missing")));
    };
    match (
        code.get("S3Bucket").and_then(Value::as_str),
        code.get("S3Key").and_then(Value::as_str),
    ) {
        (Some(LOCAL_CODE_BUCKET), Some(key)) => in_app(dir, id, &dir.template.join(key)),
        (Some(bucket), key) => Err(Refusal::of(
            id,
            format!(
                "not supported by wsgate: {property} in S3 (s3://{bucket}/{}); wsgate runs local code: give a local folder (SAM's CodeUri or ContentUri)",
                key.unwrap_or_default()
            ),
        )),
        _ => Err(Refusal::of(
            id,
            format!(
                "not supported by wsgate: {property} without S3Bucket or ZipFile (a container image?)"
            ),
        )),
    }
}

/// `path` relative to the app's folder, which it must be in.
fn in_app(dir: Folders, id: &str, path: &Path) -> Result<std::path::PathBuf> {
    let path = normalize(path);
    path.strip_prefix(dir.app)
        .map(Path::to_path_buf)
        .map_err(|_| {
            Refusal::of(
                id,
                format!(
                    "the code folder {} is outside the app's folder {}",
                    path.display(),
                    dir.app.display()
                ),
            )
        })
}

/// `a/./b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The statements of a role's inline policies and of the `AWS::IAM::Policy`
/// resources attached to it, as the function's permissions.
fn role_statements(
    r: &Resolver,
    role_arn: &str,
) -> std::result::Result<Vec<PermissionStatement>, String> {
    let mut documents = Vec::new();
    for (id, resource) in r.resources().into_iter().flatten() {
        match resource.get("Type").and_then(Value::as_str) {
            Some("AWS::IAM::Role") => {
                if text(&r.get_att(id, "Arn")?)? != role_arn {
                    continue;
                }
                if let Some(Value::Array(policies)) = r.property(id, "Policies")? {
                    documents.extend(
                        policies
                            .into_iter()
                            .filter_map(|p| p.get("PolicyDocument").cloned()),
                    );
                }
            }
            Some("AWS::IAM::Policy") => {
                let role_name = role_arn.rsplit('/').next().unwrap_or_default();
                let attached = match r.property(id, "Roles")? {
                    Some(Value::Array(roles)) => roles
                        .iter()
                        .any(|v| text(v).ok().as_deref() == Some(role_name)),
                    _ => false,
                };
                if attached && let Some(document) = r.property(id, "PolicyDocument")? {
                    documents.push(document);
                }
            }
            _ => {}
        }
    }
    let mut statements = Vec::new();
    for document in documents {
        let listed = match document.get("Statement") {
            Some(Value::Array(items)) => items.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        };
        for statement in listed {
            let strings = |key: &str| -> Vec<String> {
                match statement.get(key) {
                    Some(Value::Array(items)) => {
                        items.iter().filter_map(|v| text(v).ok()).collect()
                    }
                    Some(one) => text(one).ok().into_iter().collect(),
                    None => Vec::new(),
                }
            };
            let effect = match statement.get("Effect").and_then(Value::as_str) {
                Some("Deny") => Effect::Deny,
                _ => Effect::Allow,
            };
            statements.push(PermissionStatement {
                effect,
                actions: strings("Action"),
                resources: strings("Resource"),
            });
        }
    }
    Ok(statements)
}

/// A DynamoDB table as the local emulator creates it.
fn table(r: &Resolver, id: &str) -> Result<TableDefinition> {
    let property = |key: &str| r.property(id, key).map_err(|e| Refusal::of(id, e));
    let table_name = attributes::table_name(r, id).map_err(|e| Refusal::of(id, e))?;
    let mut fields = BTreeMap::new();
    if let Some(Value::Array(definitions)) = property("AttributeDefinitions")? {
        for definition in definitions {
            let name = definition
                .get("AttributeName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let kind = match definition.get("AttributeType").and_then(Value::as_str) {
                Some("S") => "string",
                Some("N") => "number",
                Some("B") => "binary",
                other => {
                    return Err(Refusal::of(
                        id,
                        format!("AttributeType {other:?} of {name} is not S, N or B"),
                    ));
                }
            };
            fields.insert(name.to_string(), kind.to_string());
        }
    }
    let index = |schema: Option<&Value>, projection: Option<&Value>| -> IndexDefinition {
        let key = |kind: &str| {
            schema
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|k| k.get("KeyType").and_then(Value::as_str) == Some(kind))
                .and_then(|k| k.get("AttributeName"))
                .and_then(Value::as_str)
                .map(String::from)
        };
        let projection =
            projection.and_then(|p| match p.get("ProjectionType").and_then(Value::as_str) {
                Some("KEYS_ONLY") => Some(Value::String("keys-only".into())),
                Some("INCLUDE") => p.get("NonKeyAttributes").cloned(),
                _ => None,
            });
        IndexDefinition {
            hash_key: key("HASH"),
            range_key: key("RANGE"),
            projection,
        }
    };
    let primary_index = index(property("KeySchema")?.as_ref(), None);
    if primary_index.hash_key.is_none() {
        return Err(Refusal::of(id, "KeySchema has no HASH key"));
    }
    let indexes = |key: &str| -> Result<BTreeMap<String, IndexDefinition>> {
        let mut found = BTreeMap::new();
        if let Some(Value::Array(items)) = property(key)? {
            for item in items {
                let name = item
                    .get("IndexName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                found.insert(name, index(item.get("KeySchema"), item.get("Projection")));
            }
        }
        Ok(found)
    };
    let ttl = property("TimeToLiveSpecification")?.and_then(|spec| {
        let enabled = matches!(spec.get("Enabled"), Some(Value::Bool(true)))
            || spec.get("Enabled").and_then(Value::as_str) == Some("true");
        enabled
            .then(|| {
                spec.get("AttributeName")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .flatten()
    });
    Ok(TableDefinition {
        name: id.to_string(),
        table_name,
        fields,
        primary_index,
        global_indexes: indexes("GlobalSecondaryIndexes")?,
        local_indexes: indexes("LocalSecondaryIndexes")?,
        ttl,
    })
}

/// The template's `Outputs`, evaluated; one that cannot be is shown as why.
pub fn outputs(r: &Resolver, root: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, output) in root
        .get("Outputs")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(Value::String(condition)) = output.get("Condition")
            && !r.condition(condition).unwrap_or(false)
        {
            continue;
        }
        let value = match output.get("Value").map(|v| r.resolve(v)) {
            Some(Ok(Some(value))) => value,
            Some(Ok(None)) | None => continue,
            Some(Err(why)) => Value::String(format!("(not known locally: {why})")),
        };
        out.insert(name.clone(), value);
    }
    out
}
