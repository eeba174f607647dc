//! CloudFormation's intrinsic functions, conditions, parameters and pseudo
//! parameters, evaluated as CloudFormation evaluates them (AWS
//! CloudFormation User Guide, "Intrinsic function reference" and
//! "Pseudo parameters reference"). What a resource's `Ref` and `Fn::GetAtt`
//! give is `attributes`' concern.

use super::attributes;
use base64::Engine;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The stack's pseudo parameters.
#[derive(Debug, Clone)]
pub struct Pseudo {
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
}

impl Pseudo {
    pub fn partition(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    pub fn url_suffix(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }

    fn stack_id(&self) -> String {
        format!(
            "arn:{}:cloudformation:{}:{}:stack/{}/{}",
            self.partition(),
            self.region,
            self.account_id,
            self.stack_name,
            "00000000-0000-0000-0000-000000000000"
        )
    }
}

/// Evaluates a template's values.
pub struct Resolver<'t> {
    root: &'t Value,
    pub pseudo: Pseudo,
    /// Each parameter's value, or why it has none here (a Systems Manager
    /// parameter, refused only where it is used).
    parameters: BTreeMap<String, Result<Value, String>>,
    /// The local endpoint of each WebSocket API (`ApiEndpoint`), by
    /// logical id.
    pub endpoints: BTreeMap<String, String>,
    conditions: RefCell<BTreeMap<String, bool>>,
    /// What is being evaluated now (`Ref X`, `Condition Y`): a name met
    /// twice is a cycle.
    active: RefCell<Vec<String>>,
}

/// Values of `AWS::NoValue` are dropped: `None`.
pub type Resolved = Option<Value>;

impl<'t> Resolver<'t> {
    /// Reads the template's `Parameters` with `overrides` (`K=V` as `sam
    /// deploy --parameter-overrides` takes them) over their defaults.
    pub fn new(
        root: &'t Value,
        pseudo: Pseudo,
        overrides: &BTreeMap<String, String>,
        endpoints: BTreeMap<String, String>,
    ) -> Result<Resolver<'t>, (String, String)> {
        let declared = root
            .get("Parameters")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for name in overrides.keys() {
            if !declared.contains_key(name) {
                return Err((
                    name.clone(),
                    format!(
                        "--parameter-overrides gives {name}, which the template does not declare"
                    ),
                ));
            }
        }
        let mut parameters = BTreeMap::new();
        for (name, declaration) in &declared {
            let kind = declaration
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or("String");
            let value = if kind.starts_with("AWS::SSM::Parameter::Value")
                && !overrides.contains_key(name)
            {
                Err(format!(
                    "not supported by wsgate: parameter {name} reads Systems Manager parameter {}; give its value with --parameter-overrides {name}=<value>",
                    declaration
                        .get("Default")
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                ))
            } else {
                Ok(parameter_value(name, declaration, overrides.get(name))
                    .map_err(|message| (name.clone(), message))?)
            };
            parameters.insert(name.clone(), value);
        }
        Ok(Resolver {
            root,
            pseudo,
            parameters,
            endpoints,
            conditions: RefCell::new(BTreeMap::new()),
            active: RefCell::new(Vec::new()),
        })
    }

    pub fn resources(&self) -> Option<&'t Map<String, Value>> {
        self.root.get("Resources").and_then(Value::as_object)
    }

    pub fn resource(&self, logical_id: &str) -> Option<&'t Value> {
        self.resources()?.get(logical_id)
    }

    /// A resource's type (`AWS::Lambda::Function`).
    pub fn resource_type(&self, logical_id: &str) -> Option<&'t str> {
        self.resource(logical_id)?.get("Type")?.as_str()
    }

    /// Whether a resource is in the stack: its `Condition` holds.
    pub fn is_created(&self, logical_id: &str) -> Result<bool, String> {
        match self.resource(logical_id).and_then(|r| r.get("Condition")) {
            None => Ok(true),
            Some(Value::String(name)) => self.condition(name),
            Some(other) => Err(format!("Condition must name a condition, not {other}")),
        }
    }

    /// One of a resource's properties, evaluated.
    pub fn property(&self, logical_id: &str, name: &str) -> Result<Resolved, String> {
        match self
            .resource(logical_id)
            .and_then(|r| r.get("Properties"))
            .and_then(|p| p.get(name))
        {
            None => Ok(None),
            Some(value) => self.resolve(value).map_err(|e| format!("{name}: {e}")),
        }
    }

    /// A property that must be text.
    pub fn string_property(&self, logical_id: &str, name: &str) -> Result<Option<String>, String> {
        self.property(logical_id, name)?
            .map(|v| text(&v).map_err(|e| format!("{name}: {e}")))
            .transpose()
    }

    /// Evaluates every intrinsic in `value`.
    pub fn resolve(&self, value: &Value) -> Result<Resolved, String> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, argument) = map.iter().next().expect("one entry");
                if key == "Ref" || key.starts_with("Fn::") {
                    return self.function(key, argument);
                }
                self.resolve_map(map)
            }
            Value::Object(map) => self.resolve_map(map),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.extend(self.resolve(item)?);
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn resolve_map(&self, map: &Map<String, Value>) -> Result<Resolved, String> {
        let mut out = Map::new();
        for (key, value) in map {
            if let Some(value) = self.resolve(value)? {
                out.insert(key.clone(), value);
            }
        }
        Ok(Some(Value::Object(out)))
    }

    /// A value that must be there (not `AWS::NoValue`).
    fn required(&self, value: &Value, what: &str) -> Result<Value, String> {
        self.resolve(value)?
            .ok_or_else(|| format!("{what} is AWS::NoValue"))
    }

    fn function(&self, name: &str, argument: &Value) -> Result<Resolved, String> {
        let args = |n: usize| -> Result<&Vec<Value>, String> {
            match argument {
                Value::Array(items) if items.len() == n => Ok(items),
                _ => Err(format!("{name} takes a list of {n}")),
            }
        };
        match name {
            "Ref" => {
                let target = argument
                    .as_str()
                    .ok_or_else(|| format!("Ref takes a name, not {argument}"))?;
                self.reference(target)
            }
            "Fn::GetAtt" => {
                let (resource, attribute) = match argument {
                    Value::Array(items) if items.len() == 2 => (
                        text(&self.required(&items[0], "Fn::GetAtt's resource")?)?,
                        text(&self.required(&items[1], "Fn::GetAtt's attribute")?)?,
                    ),
                    Value::String(dotted) => match dotted.split_once('.') {
                        Some((r, a)) => (r.to_string(), a.to_string()),
                        None => return Err(format!("Fn::GetAtt {dotted}: expected Resource.Attribute")),
                    },
                    _ => return Err("Fn::GetAtt takes [Resource, Attribute]".into()),
                };
                self.get_att(&resource, &attribute).map(Some)
            }
            "Fn::Sub" => self.sub(argument).map(|s| Some(Value::String(self.localize(s)))),
            "Fn::Join" => {
                let items = args(2)?;
                let delimiter = text(&self.required(&items[0], "Fn::Join's delimiter")?)?;
                let list = self.list(&items[1], "Fn::Join")?;
                let parts: Vec<String> = list.iter().map(text).collect::<Result<_, _>>()?;
                Ok(Some(Value::String(self.localize(parts.join(&delimiter)))))
            }
            "Fn::Select" => {
                let items = args(2)?;
                let index = self.required(&items[0], "Fn::Select's index")?;
                let index = match &index {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| format!("Fn::Select's index {index} is not a number"))?;
                let list = self.list(&items[1], "Fn::Select")?;
                list.get(index as usize).cloned().map(Some).ok_or_else(|| {
                    format!("Fn::Select: index {index} is past the list's {} items", list.len())
                })
            }
            "Fn::Split" => {
                let items = args(2)?;
                let delimiter = text(&self.required(&items[0], "Fn::Split's delimiter")?)?;
                let source = text(&self.required(&items[1], "Fn::Split's text")?)?;
                if delimiter.is_empty() {
                    return Err("Fn::Split's delimiter is empty".into());
                }
                Ok(Some(Value::Array(
                    source.split(delimiter.as_str()).map(|s| Value::String(s.into())).collect(),
                )))
            }
            "Fn::If" => {
                let items = args(3)?;
                let condition = items[0]
                    .as_str()
                    .ok_or("Fn::If's first item names a condition")?;
                if self.condition(condition)? {
                    self.resolve(&items[1])
                } else {
                    self.resolve(&items[2])
                }
            }
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" => {
                self.truth(&single(name, argument)).map(|b| Some(Value::Bool(b)))
            }
            "Fn::FindInMap" => {
                let items = match argument {
                    Value::Array(items) if items.len() == 3 || items.len() == 4 => items,
                    _ => return Err("Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]".into()),
                };
                let map = text(&self.required(&items[0], "the map's name")?)?;
                let top = text(&self.required(&items[1], "the top-level key")?)?;
                let second = text(&self.required(&items[2], "the second-level key")?)?;
                let found = self
                    .root
                    .get("Mappings")
                    .and_then(|m| m.get(&map))
                    .and_then(|m| m.get(&top))
                    .and_then(|m| m.get(&second));
                match (found, items.get(3)) {
                    (Some(value), _) => self.resolve(value),
                    // AWS::LanguageExtensions' DefaultValue.
                    (None, Some(Value::Object(default))) if default.contains_key("DefaultValue") => {
                        self.resolve(&default["DefaultValue"])
                    }
                    (None, _) => Err(format!("Fn::FindInMap: Mappings has no {map}/{top}/{second}")),
                }
            }
            "Fn::Base64" => {
                let value = text(&self.required(argument, "Fn::Base64's text")?)?;
                Ok(Some(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(value),
                )))
            }
            "Fn::GetAZs" => {
                let region = text(&self.required(argument, "Fn::GetAZs' region")?)?;
                let region = if region.is_empty() { self.pseudo.region.clone() } else { region };
                Ok(Some(Value::Array(
                    ["a", "b", "c"].iter().map(|z| Value::String(format!("{region}{z}"))).collect(),
                )))
            }
            "Fn::Length" => {
                let list = self.list(argument, "Fn::Length")?;
                Ok(Some(Value::from(list.len())))
            }
            "Fn::ToJsonString" => {
                let value = self.required(argument, "Fn::ToJsonString's value")?;
                Ok(Some(Value::String(value.to_string())))
            }
            "Fn::ImportValue" => Err(
                "not supported by wsgate: Fn::ImportValue reads another stack's export, which is not here; give the value as a parameter instead".into(),
            ),
            other => Err(format!("not supported by wsgate: {other}")),
        }
    }

    /// A URL a template builds for a served API (`https://${Api}.execute-api.
    /// ${AWS::Region}.amazonaws.com/${Stage}`) is its local endpoint, as
    /// `Fn::GetAtt Api.ApiEndpoint` is; the same host name without a
    /// scheme is kept (handlers reach it too, see `function::served_hosts`).
    fn localize(&self, mut built: String) -> String {
        for (id, endpoint) in &self.endpoints {
            let host =
                crate::ids::execute_api_host(&attributes::api_id(self, id), &self.pseudo.region);
            if !built.contains(&host) {
                continue;
            }
            let local = endpoint.trim_start_matches("wss://");
            for scheme in ["wss", "https", "ws", "http"] {
                built = built.replace(
                    &format!("{scheme}://{host}"),
                    &format!("{scheme}://{local}"),
                );
            }
        }
        built
    }

    fn list(&self, value: &Value, what: &str) -> Result<Vec<Value>, String> {
        match self.required(value, what)? {
            Value::Array(items) => Ok(items),
            other => Err(format!("{what} takes a list, not {other}")),
        }
    }

    /// `Ref`: a parameter, a pseudo parameter or a resource.
    fn reference(&self, name: &str) -> Result<Resolved, String> {
        let pseudo = &self.pseudo;
        let value = match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => Value::String(pseudo.region.clone()),
            "AWS::AccountId" => Value::String(pseudo.account_id.clone()),
            "AWS::StackName" => Value::String(pseudo.stack_name.clone()),
            "AWS::StackId" => Value::String(pseudo.stack_id()),
            "AWS::Partition" => Value::String(pseudo.partition().into()),
            "AWS::URLSuffix" => Value::String(pseudo.url_suffix().into()),
            "AWS::NotificationARNs" => Value::Array(Vec::new()),
            _ => {
                if let Some(value) = self.parameters.get(name) {
                    return value.clone().map(Some);
                }
                if self.resource(name).is_none() {
                    return Err(format!(
                        "Ref {name}: the template has no parameter or resource {name}"
                    ));
                }
                let value =
                    self.guarded(&format!("Ref {name}"), || attributes::reference(self, name))?;
                return Ok(Some(value));
            }
        };
        Ok(Some(value))
    }

    /// `Fn::GetAtt`.
    pub fn get_att(&self, resource: &str, attribute: &str) -> Result<Value, String> {
        if self.resource(resource).is_none() {
            return Err(format!(
                "Fn::GetAtt {resource}.{attribute}: the template has no resource {resource}"
            ));
        }
        self.guarded(&format!("Fn::GetAtt {resource}.{attribute}"), || {
            attributes::attribute(self, resource, attribute)
        })
    }

    /// Runs `evaluate` for `what`, reporting a cycle instead of looping.
    fn guarded<T>(
        &self,
        what: &str,
        evaluate: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        {
            let mut active = self.active.borrow_mut();
            if let Some(start) = active.iter().position(|a| a == what) {
                let mut cycle: Vec<String> = active[start..].to_vec();
                cycle.push(what.to_string());
                return Err(format!("a cycle of references: {}", cycle.join(" -> ")));
            }
            active.push(what.to_string());
        }
        let result = evaluate();
        self.active.borrow_mut().pop();
        result
    }

    /// `Fn::Sub`, in both forms.
    fn sub(&self, argument: &Value) -> Result<String, String> {
        let (template, variables) = match argument {
            Value::String(template) => (template.clone(), Map::new()),
            Value::Array(items) if items.len() == 2 => {
                let template = text(&self.required(&items[0], "Fn::Sub's text")?)?;
                let variables = match &items[1] {
                    Value::Object(map) => map.clone(),
                    _ => return Err("Fn::Sub's second item is a map of variables".into()),
                };
                (template, variables)
            }
            _ => return Err("Fn::Sub takes a text, or [text, {variables}]".into()),
        };
        let mut out = String::with_capacity(template.len());
        let mut rest = template.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("Fn::Sub: \"${{{after}\" is not closed with }}"))?;
            let name = &after[..end];
            rest = &after[end + 1..];
            // `${!Literal}` is written as `${Literal}`.
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
                continue;
            }
            let name = name.trim();
            let value = if let Some(value) = variables.get(name) {
                self.required(value, &format!("Fn::Sub's variable {name}"))?
            } else if let Some((resource, attribute)) =
                name.split_once('.').filter(|_| !name.starts_with("AWS::"))
            {
                self.get_att(resource, attribute)?
            } else {
                self.reference(name)?
                    .ok_or_else(|| format!("Fn::Sub: ${{{name}}} is AWS::NoValue"))?
            };
            out.push_str(&text(&value).map_err(|e| format!("Fn::Sub ${{{name}}}: {e}"))?);
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A named condition, evaluated once.
    pub fn condition(&self, name: &str) -> Result<bool, String> {
        if let Some(known) = self.conditions.borrow().get(name) {
            return Ok(*known);
        }
        let body = self
            .root
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| format!("the template has no condition {name}"))?;
        let value = self.guarded(&format!("Condition {name}"), || self.truth(body))?;
        self.conditions.borrow_mut().insert(name.to_string(), value);
        Ok(value)
    }

    /// A condition's body.
    fn truth(&self, body: &Value) -> Result<bool, String> {
        let Value::Object(map) = body else {
            return match body {
                Value::Bool(b) => Ok(*b),
                other => Err(format!("a condition is a function, not {other}")),
            };
        };
        let Some((name, argument)) = map.iter().next().filter(|_| map.len() == 1) else {
            return Err("a condition is one function".into());
        };
        let items = || -> Result<&Vec<Value>, String> {
            argument
                .as_array()
                .ok_or_else(|| format!("{name} takes a list"))
        };
        match name.as_str() {
            "Condition" => self.condition(argument.as_str().ok_or("Condition names a condition")?),
            "Fn::Equals" => {
                let items = items()?;
                if items.len() != 2 {
                    return Err("Fn::Equals takes two values".into());
                }
                let a = self.resolve(&items[0])?.unwrap_or(Value::Null);
                let b = self.resolve(&items[1])?.unwrap_or(Value::Null);
                Ok(comparable(&a) == comparable(&b))
            }
            "Fn::Not" => {
                let items = items()?;
                if items.len() != 1 {
                    return Err("Fn::Not takes one condition".into());
                }
                Ok(!self.truth(&items[0])?)
            }
            "Fn::And" | "Fn::Or" => {
                let items = items()?;
                if !(2..=10).contains(&items.len()) {
                    return Err(format!("{name} takes 2 to 10 conditions"));
                }
                let mut all = true;
                let mut any = false;
                for item in items {
                    let value = self.truth(item)?;
                    all &= value;
                    any |= value;
                }
                Ok(if name == "Fn::And" { all } else { any })
            }
            "Fn::If" | "Ref" | "Fn::FindInMap" | "Fn::Select" => match self.resolve(body)? {
                Some(Value::Bool(b)) => Ok(b),
                Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
                other => Err(format!(
                    "{name} in a condition gives {other:?}, not true or false"
                )),
            },
            other => Err(format!("not supported by wsgate: {other} in a condition")),
        }
    }
}

/// Values CloudFormation compares as equal: `5` and `"5"`, `true` and
/// `"true"` (a parameter's value is text).
fn comparable(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other.clone(),
    }
}

/// A value used as text: CloudFormation turns numbers and booleans into
/// their text.
pub fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected text, not {other}")),
    }
}

fn single(key: &str, value: &Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_string(), value.clone());
    Value::Object(map)
}

/// A parameter's value: the override, else its `Default`, checked against
/// its constraints as CloudFormation checks them.
fn parameter_value(
    name: &str,
    declaration: &Value,
    given: Option<&String>,
) -> Result<Value, String> {
    let kind = declaration
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or("String");
    let raw = match (given, declaration.get("Default")) {
        (Some(given), _) => given.clone(),
        (None, Some(default)) => text(default).map_err(|e| format!("Default: {e}"))?,
        (None, None) => {
            return Err(format!(
                "parameter {name} has no Default: give it with --parameter-overrides {name}=<value>"
            ));
        }
    };
    if let Some(Value::Array(allowed)) = declaration.get("AllowedValues") {
        let allowed: Vec<String> = allowed.iter().filter_map(|v| text(v).ok()).collect();
        if !allowed.contains(&raw) {
            return Err(format!(
                "parameter {name} is \"{raw}\", not one of its AllowedValues {allowed:?}"
            ));
        }
    }
    let length = raw.chars().count();
    if let Some(min) = declaration.get("MinLength").and_then(number)
        && (length as f64) < min
    {
        return Err(format!(
            "parameter {name} is shorter than its MinLength {min}"
        ));
    }
    if let Some(max) = declaration.get("MaxLength").and_then(number)
        && (length as f64) > max
    {
        return Err(format!(
            "parameter {name} is longer than its MaxLength {max}"
        ));
    }
    if kind == "Number" {
        let n: f64 = raw
            .trim()
            .parse()
            .map_err(|_| format!("parameter {name} is a Number; \"{raw}\" is not"))?;
        if declaration
            .get("MinValue")
            .and_then(number)
            .is_some_and(|min| n < min)
            || declaration
                .get("MaxValue")
                .and_then(number)
                .is_some_and(|max| n > max)
        {
            return Err(format!(
                "parameter {name} ({raw}) is outside its MinValue/MaxValue"
            ));
        }
    }
    if kind == "CommaDelimitedList" || kind.starts_with("List<") {
        return Ok(Value::Array(
            raw.split(',')
                .map(|s| Value::String(s.trim().to_string()))
                .collect(),
        ));
    }
    Ok(Value::String(raw))
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
