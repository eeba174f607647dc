//! A template's text (YAML or JSON: JSON is YAML) as JSON values, with
//! CloudFormation's short tags turned into the long form (`!Ref X` is
//! `{"Ref": "X"}`, `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`), as
//! AWS's own tools read them (cfn-flip, `samcli.yamlhelper`), and the line
//! of every mapping key, for errors.

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// A template read from its text.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub root: Value,
    /// The line of each mapping key, by its path (`Resources/Api/Properties`).
    lines: HashMap<String, usize>,
}

impl Document {
    /// The line of the key at `path` (keys joined by `/`).
    pub fn line(&self, path: &str) -> Option<usize> {
        self.lines.get(path).copied()
    }

    /// The line of a resource's logical id.
    pub fn resource_line(&self, logical_id: &str) -> Option<usize> {
        self.line(&format!("Resources/{logical_id}"))
    }
}

/// A template that cannot be read, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Deeper than any template nests; bounds the parser's recursion.
const MAX_DEPTH: usize = 256;
/// More values than a 1 MB template holds; bounds what aliases can copy
/// (a "billion laughs" of nested aliases).
const MAX_VALUES: usize = 2_000_000;

/// Reads a template's text.
pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let mut reader = Reader {
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        lines: HashMap::new(),
        last_line: 1,
        values: 0,
    };
    let mut root = Value::Null;
    loop {
        match reader.next()? {
            None | Some((Event::StreamEnd, _)) => break,
            Some((Event::StreamStart | Event::DocumentStart(_) | Event::DocumentEnd, _)) => {}
            Some((event, span)) => {
                if !root.is_null() {
                    return Err(SyntaxError {
                        line: span.start.line(),
                        message: "a template is one YAML document; this is a second".into(),
                    });
                }
                root = reader.value(event, span, "", 0)?;
            }
        }
    }
    Ok(Document {
        root,
        lines: reader.lines,
    })
}

struct Reader<'a> {
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    /// Each anchor's value, and how many values it holds.
    anchors: HashMap<usize, (Value, usize)>,
    lines: HashMap<String, usize>,
    last_line: usize,
    /// Values made so far, aliases' copies included.
    values: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<Option<(Event<'a>, Span)>, SyntaxError> {
        match self.events.next() {
            None => Ok(None),
            Some(Ok((event, span))) => {
                self.last_line = span.start.line();
                Ok(Some((event, span)))
            }
            Some(Err(error)) => Err(SyntaxError {
                line: error.marker().line(),
                message: error.info().to_string(),
            }),
        }
    }

    fn next_required(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        let line = self.last_line;
        self.next()?.ok_or(SyntaxError {
            line,
            message: "the template ends in the middle of a value".into(),
        })
    }

    /// The value an event starts; `path` names it for the line index.
    fn value(
        &mut self,
        event: Event<'a>,
        span: Span,
        path: &str,
        depth: usize,
    ) -> Result<Value, SyntaxError> {
        let line = span.start.line();
        let values_before = self.values;
        self.count(1, line)?;
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                line,
                message: format!("nested deeper than {MAX_DEPTH} levels"),
            });
        }
        let (value, anchor, tag) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = match tag.as_deref() {
                    Some(tag) if tag.is_yaml_core_schema() => core_tagged(&text, &tag.suffix),
                    Some(_) => Value::String(text.into_owned()),
                    None => scalar(&text, style),
                };
                (value, anchor, tag)
            }
            Event::SequenceStart(anchor, tag) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next_required()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let item_path = format!("{path}/{}", items.len());
                    items.push(self.value(event, span, &item_path, depth + 1)?);
                }
                (Value::Array(items), anchor, tag)
            }
            Event::MappingStart(anchor, tag) => {
                let mut map = Map::new();
                loop {
                    let (event, key_span) = self.next_required()?;
                    if matches!(event, Event::MappingEnd) {
                        break;
                    }
                    let key = match self.value(event, key_span, path, depth + 1)? {
                        Value::String(key) => key,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    let key_line = key_span.start.line();
                    if map.contains_key(&key) {
                        return Err(SyntaxError {
                            line: key_line,
                            message: format!("`{key}` is given twice in one mapping"),
                        });
                    }
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}/{key}")
                    };
                    self.lines.insert(child.clone(), key_line);
                    let (event, span) = self.next_required()?;
                    let value = self.value(event, span, &child, depth + 1)?;
                    map.insert(key, value);
                }
                (Value::Object(map), anchor, tag)
            }
            Event::Alias(id) => {
                let (value, size) = self.anchors.get(&id).cloned().ok_or(SyntaxError {
                    line,
                    message: "an alias (*name) names no anchor before it".into(),
                })?;
                self.count(size, line)?;
                return Ok(value);
            }
            other => {
                return Err(SyntaxError {
                    line,
                    message: format!("unexpected {other:?}"),
                });
            }
        };
        let value = match tag {
            Some(tag) if tag.handle == "!" => {
                long_form(&tag, value).map_err(|message| SyntaxError { line, message })?
            }
            _ => value,
        };
        if anchor != 0 {
            self.anchors
                .insert(anchor, (value.clone(), self.values - values_before));
        }
        Ok(value)
    }

    fn count(&mut self, values: usize, line: usize) -> Result<(), SyntaxError> {
        self.values = self.values.saturating_add(values);
        if self.values > MAX_VALUES {
            return Err(SyntaxError {
                line,
                message: format!(
                    "the template makes more than {MAX_VALUES} values (aliases copying aliases?)"
                ),
            });
        }
        Ok(())
    }
}

/// A short tag's long form, as CloudFormation defines each
/// (AWS CloudFormation User Guide, "Intrinsic function reference").
fn long_form(tag: &Tag, value: Value) -> Result<Value, String> {
    let name = tag.suffix.as_str();
    let key = match name {
        "Ref" | "Condition" => name.to_string(),
        "GetAtt" => {
            // `!GetAtt Resource.Attribute`: split at the first dot (an
            // attribute name may have dots, as `Endpoint.Address`).
            let value = match value {
                Value::String(text) => match text.split_once('.') {
                    Some((resource, attribute)) => {
                        Value::Array(vec![resource.into(), attribute.into()])
                    }
                    None => {
                        return Err(format!("!GetAtt {text}: expected Resource.Attribute"));
                    }
                },
                other => other,
            };
            return Ok(single("Fn::GetAtt", value));
        }
        "Base64" | "Cidr" | "FindInMap" | "GetAZs" | "ImportValue" | "Join" | "Select"
        | "Split" | "Sub" | "Transform" | "And" | "Equals" | "If" | "Not" | "Or" | "Length"
        | "ToJsonString" | "ForEach" => format!("Fn::{name}"),
        _ => return Err(format!("!{name} is not a CloudFormation function")),
    };
    Ok(single(&key, value))
}

fn single(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_string(), value);
    Value::Object(map)
}

/// A plain scalar as YAML's core schema resolves it (quoted ones are
/// strings), with YAML 1.1's booleans (`True`, `yes`) as PyYAML, which
/// AWS's tools use, reads them.
fn scalar(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Value::Bool(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            Value::Bool(false)
        }
        other => number(other).unwrap_or_else(|| Value::String(other.to_string())),
    }
}

/// A plain scalar that is a decimal number.
fn number(text: &str) -> Option<Value> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().next()?.is_ascii_digit() {
        return None;
    }
    // A leading zero (`0123`, an account id) stays text, as YAML 1.1's
    // octal would change it.
    if digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.") {
        return None;
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(Value::Number(n.into()));
    }
    if digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    None
}

/// A scalar with a core-schema tag (`!!str 5`).
fn core_tagged(text: &str, suffix: &str) -> Value {
    match suffix {
        "str" => Value::String(text.to_string()),
        _ => scalar(text, ScalarStyle::Plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_tags_become_the_long_form() {
        let doc = parse(
            "Resources:\n  Route:\n    Properties:\n      ApiId: !Ref Api\n      Target: !Join\n        - /\n        - - integrations\n          - !Ref Integ\n      Uri: !Sub arn:${AWS::Region}:${Fn.Arn}\n      Url: !GetAtt Api.ApiEndpoint\n      Other: !GetAtt [Api, ApiId]\n      Pick: !If [IsProd, !Select [0, !Split [',', 'a,b']], !Ref AWS::NoValue]\n",
        )
        .unwrap();
        let props = &doc.root["Resources"]["Route"]["Properties"];
        assert_eq!(props["ApiId"], json!({"Ref": "Api"}));
        assert_eq!(
            props["Target"],
            json!({"Fn::Join": ["/", ["integrations", {"Ref": "Integ"}]]})
        );
        assert_eq!(
            props["Uri"],
            json!({"Fn::Sub": "arn:${AWS::Region}:${Fn.Arn}"})
        );
        assert_eq!(props["Url"], json!({"Fn::GetAtt": ["Api", "ApiEndpoint"]}));
        assert_eq!(props["Other"], json!({"Fn::GetAtt": ["Api", "ApiId"]}));
        assert_eq!(
            props["Pick"],
            json!({"Fn::If": ["IsProd", {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}, {"Ref": "AWS::NoValue"}]})
        );
        assert_eq!(doc.resource_line("Route"), Some(2));
        assert_eq!(doc.line("Resources/Route/Properties/Target"), Some(5));
    }

    #[test]
    fn scalars_resolve_as_aws_tools_read_them() {
        let doc =
            parse("a: True\nb: 5\nc: '5'\nd: 0123\ne: 1.5\nf: ~\ng: text\nh: !!str 7\n").unwrap();
        assert_eq!(
            doc.root,
            json!({"a": true, "b": 5, "c": "5", "d": "0123", "e": 1.5, "f": null, "g": "text", "h": "7"})
        );
    }

    #[test]
    fn json_templates_read_the_same() {
        let doc = parse("{\n  \"Resources\": {\n    \"T\": {\"Type\": \"AWS::DynamoDB::Table\", \"Properties\": {\"X\": [1, \"2\"]}}\n  }\n}").unwrap();
        assert_eq!(
            doc.root["Resources"]["T"]["Properties"]["X"],
            json!([1, "2"])
        );
        assert_eq!(doc.resource_line("T"), Some(3));
    }

    #[test]
    fn bad_templates_say_where() {
        let error = parse("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(error.line >= 2, "{error:?}");
        let error = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("twice"), "{error:?}");
        let error = parse("a: !Bogus x\n").unwrap_err();
        assert!(error.message.contains("!Bogus"), "{error:?}");
        let deep = "[".repeat(5000);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn aliases_cannot_multiply_without_bound() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let error = parse(&text).unwrap_err();
        assert!(error.message.contains("more than"), "{error:?}");
    }

    #[test]
    fn anchors_and_aliases_are_copied() {
        let doc = parse("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(doc.root["b"], json!({"k": "v"}));
    }
}
