//! Route selection: evaluates the API's route selection expression against
//! a message body, as API Gateway does for WebSocket APIs.

use serde_json::Value;

pub const DEFAULT_EXPRESSION: &str = "$request.body.action";

/// A parsed route selection expression: `$request.body.<path>`, or a
/// template such as `${request.body.a}/${request.body.b}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSelector {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// A path of object keys into the JSON body.
    Body(Vec<String>),
}

impl RouteSelector {
    pub fn parse(expression: &str) -> Result<Self, String> {
        if let Some(path) = expression
            .strip_prefix('$')
            .filter(|_| !expression.starts_with("${"))
        {
            return Ok(RouteSelector {
                parts: vec![Part::Body(parse_body_path(path, expression)?)],
            });
        }
        let mut parts = Vec::new();
        let mut rest = expression;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in \"{expression}\""))?;
            parts.push(Part::Body(parse_body_path(&after[..end], expression)?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        if !parts.iter().any(|p| matches!(p, Part::Body(_))) {
            return Err(format!(
                "\"{expression}\" selects nothing from the message; use \"$request.body.<field>\" (e.g. \"$request.body.action\")"
            ));
        }
        Ok(RouteSelector { parts })
    }

    /// The route key a message selects, or `None` when the body is not JSON
    /// or a field is missing (the message then goes to `$default`).
    pub fn evaluate(&self, body: &str) -> Option<String> {
        let json: Value = serde_json::from_str(body).ok()?;
        let mut key = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => key.push_str(text),
                Part::Body(path) => {
                    let mut value = &json;
                    for field in path {
                        value = value.as_object()?.get(field)?;
                    }
                    match value {
                        Value::Null | Value::Object(_) => return None,
                        scalar_or_array => stringify(scalar_or_array, &mut key),
                    }
                }
            }
        }
        Some(key)
    }
}

/// A selected value as API Gateway stringifies it: strings as they are,
/// numbers and booleans as their JSON text, and arrays as
/// `[item1, item2]` (AWS's route selection documentation).
fn stringify(value: &Value, key: &mut String) {
    match value {
        Value::String(s) => key.push_str(s),
        Value::Array(items) => {
            key.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    key.push_str(", ");
                }
                stringify(item, key);
            }
            key.push(']');
        }
        Value::Null => key.push_str("null"),
        other => key.push_str(&other.to_string()),
    }
}

fn parse_body_path(path: &str, expression: &str) -> Result<Vec<String>, String> {
    let fields = path.strip_prefix("request.body.").ok_or_else(|| {
        format!(
            "\"{expression}\": WebSocket route selection reads the message body; use \"$request.body.<field>\" (e.g. \"$request.body.action\")"
        )
    })?;
    let fields: Vec<String> = fields.split('.').map(str::to_string).collect();
    if fields.iter().any(|f| f.is_empty()) {
        return Err(format!("\"{expression}\" has an empty field name"));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(expression: &str, body: &str) -> Option<String> {
        RouteSelector::parse(expression).unwrap().evaluate(body)
    }

    #[test]
    fn selects_the_action_field() {
        assert_eq!(
            select(DEFAULT_EXPRESSION, r#"{"action":"echo"}"#),
            Some("echo".into())
        );
        assert_eq!(
            select("$request.body.a.b", r#"{"a":{"b":"deep"}}"#),
            Some("deep".into())
        );
        assert_eq!(
            select(DEFAULT_EXPRESSION, r#"{"action":7}"#),
            Some("7".into())
        );
    }

    #[test]
    fn non_json_or_missing_fields_select_nothing() {
        assert_eq!(select(DEFAULT_EXPRESSION, "hello"), None);
        assert_eq!(select(DEFAULT_EXPRESSION, r#"{"other":"x"}"#), None);
        assert_eq!(select(DEFAULT_EXPRESSION, r#"["action"]"#), None);
        assert_eq!(select(DEFAULT_EXPRESSION, r#"{"action":{"x":1}}"#), None);
        assert_eq!(select(DEFAULT_EXPRESSION, r#"{"action":null}"#), None);
    }

    #[test]
    fn arrays_select_their_stringified_form() {
        assert_eq!(
            select(DEFAULT_EXPRESSION, r#"{"action":["item1","item2"]}"#).as_deref(),
            Some("[item1, item2]")
        );
        assert_eq!(
            select(DEFAULT_EXPRESSION, r#"{"action":[1,true,["a"]]}"#).as_deref(),
            Some("[1, true, [a]]")
        );
        assert_eq!(
            select(DEFAULT_EXPRESSION, r#"{"action":[]}"#).as_deref(),
            Some("[]")
        );
    }

    #[test]
    fn template_form_joins_fields() {
        let e = "${request.body.service}/${request.body.action}";
        assert_eq!(
            select(e, r#"{"service":"chat","action":"send"}"#),
            Some("chat/send".into())
        );
        assert_eq!(select(e, r#"{"service":"chat"}"#), None);
    }

    #[test]
    fn bad_expressions_are_rejected() {
        assert!(RouteSelector::parse("$request.header.x").is_err());
        assert!(RouteSelector::parse("action").is_err());
        assert!(RouteSelector::parse("${request.body.a").is_err());
        assert!(RouteSelector::parse("$request.body.").is_err());
    }
}
