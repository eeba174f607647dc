//! Route selection: evaluates the API's route selection expression against
//! a message body, as API Gateway does for WebSocket APIs.

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;

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
        let mut key = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => key.push_str(text),
                Part::Body(path) => match lookup(body, path)? {
                    Value::Null | Value::Object(_) => return None,
                    // A string starting the key is the key so far, as it
                    // was parsed (the usual `$request.body.action`): no copy.
                    Value::String(text) if key.is_empty() => key = text,
                    scalar_or_array => stringify(&scalar_or_array, &mut key),
                },
            }
        }
        Some(key)
    }
}

/// The value at `path` in the JSON document `body`; `None` when `body` is
/// not JSON or has nothing there. Only that value is built: the rest of
/// the document is checked and skipped, which spares an allocation per
/// key and string of every message.
fn lookup(body: &str, path: &[String]) -> Option<Value> {
    let mut json = serde_json::Deserializer::from_str(body);
    let found = Lookup(path).deserialize(&mut json).ok()?;
    json.end().ok()?;
    found
}

/// Finds the value at a path of object keys; a later duplicate key wins,
/// as it does in a parsed `Value`.
struct Lookup<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for Lookup<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, json: D) -> Result<Self::Value, D::Error> {
        match self.0.split_first() {
            None => Value::deserialize(json).map(Some),
            Some((field, rest)) => json.deserialize_any(InObject { field, rest }),
        }
    }
}

/// One step of a lookup: the value under `field` when this is an object.
struct InObject<'p> {
    field: &'p str,
    rest: &'p [String],
}

impl<'de> Visitor<'de> for InObject<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == self.field {
                found = map.next_value_seed(Lookup(self.rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    // Anything else has no fields: nothing there (a later duplicate key
    // may still hold an object).
    fn visit_seq<S: SeqAccess<'de>>(self, mut items: S) -> Result<Self::Value, S::Error> {
        while items.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An object key, borrowed from the body unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(json: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        json.deserialize_str(KeyVisitor)
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

    /// What selection gave when it parsed the whole body into a `Value`.
    fn select_by_parsing_all(expression: &str, body: &str) -> Option<String> {
        let selector = RouteSelector::parse(expression).unwrap();
        let json: Value = serde_json::from_str(body).ok()?;
        let mut key = String::new();
        for part in &selector.parts {
            match part {
                Part::Literal(text) => key.push_str(text),
                Part::Body(path) => {
                    let mut value = &json;
                    for field in path {
                        value = value.as_object()?.get(field)?;
                    }
                    match value {
                        Value::Null | Value::Object(_) => return None,
                        other => stringify(other, &mut key),
                    }
                }
            }
        }
        Some(key)
    }

    #[test]
    fn skipping_the_rest_selects_what_parsing_everything_did() {
        let bodies = [
            r#"{"action":"a","action":"b"}"#,
            r#"{"action":{"x":1},"action":"later"}"#,
            r#"{"action":"early","action":{"x":1}}"#,
            r#"{"a\u0063tion":"escaped key"}"#,
            r#"{"action":"x"} trailing"#,
            r#"{"action":"x"}   "#,
            r#"{"action":"x","other":[1,2,{"deep":[]}]}"#,
            r#"{"other":[1,2,"#,
            r#"{"action":"x","bad":tru}"#,
            r#"{"a":{"b":"deep","b":{"c":3}}}"#,
            r#"{"a":{"b":{"c":3}},"service":"s"}"#,
            r#"{"a":[{"b":1}]}"#,
            r#"{"a":{"b":[1],"b":{"c":null}}}"#,
            r#"{"a":{"b":true,"b":{"c":"t"}},"a":{"b":null}}"#,
            r#""just a string""#,
            r#"[{"action":"x"}]"#,
            r#"{"action":1.50,"service":false}"#,
            r#"{"action":"\ud83d\ude00"}"#,
            "",
            "{}",
        ];
        for expression in [
            DEFAULT_EXPRESSION,
            "$request.body.a.b",
            "$request.body.a.b.c",
            "${request.body.service}/${request.body.action}",
        ] {
            for body in bodies {
                assert_eq!(
                    select(expression, body),
                    select_by_parsing_all(expression, body),
                    "{expression} on {body}"
                );
            }
        }
    }

    #[test]
    fn bad_expressions_are_rejected() {
        assert!(RouteSelector::parse("$request.header.x").is_err());
        assert!(RouteSelector::parse("action").is_err());
        assert!(RouteSelector::parse("${request.body.a").is_err());
        assert!(RouteSelector::parse("$request.body.").is_err());
    }
}
