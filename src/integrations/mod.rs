//! Integrations run a route's handler for an event. Every kind (HTTP,
//! in-process Rust, and later Lambda runtime processes) implements one
//! trait, so the data plane never knows which kind it is calling.

pub mod function;
pub mod http;
pub mod native;

use crate::events::Event;
use crate::gateway::registry::Connections;
use async_trait::async_trait;
use serde_json::Value;

/// A handler's reply, as a Lambda proxy response
/// (`{statusCode, headers, body, isBase64Encoded}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status_code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub is_base64_encoded: bool,
}

impl Response {
    /// `{statusCode: 200}` with no body.
    pub fn ok() -> Response {
        Response::status(200)
    }

    pub fn status(status_code: u16) -> Response {
        Response {
            status_code,
            headers: Vec::new(),
            body: None,
            is_base64_encoded: false,
        }
    }

    pub fn with_body(mut self, body: impl Into<String>) -> Response {
        self.body = Some(body.into());
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// The handler failed: it errored, crashed, could not be reached or
    /// replied with something that is not a Lambda proxy response.
    #[error("{0}")]
    Failed(String),
    /// A function reported an error (`{errorType, errorMessage}`), as
    /// Lambda's `Unhandled` function error.
    #[error("{error_type}: {message}")]
    Handler { error_type: String, message: String },
}

/// A function's instances by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InstanceCounts {
    pub starting: usize,
    pub idle: usize,
    pub busy: usize,
}

/// What a handler may use while it runs.
#[derive(Clone)]
pub struct Context {
    /// The `@connections` API, in process.
    pub connections: Connections,
}

#[async_trait]
pub trait Integration: Send + Sync + 'static {
    /// Runs the handler for one event. Timeouts are the caller's concern.
    async fn invoke(&self, event: &Event, context: &Context) -> Result<Response, IntegrationError>;

    /// Sends any JSON payload and returns the handler's raw reply: how a
    /// Lambda authorizer, whose event and reply are not proxy-shaped, runs.
    async fn invoke_json(
        &self,
        _payload: bytes::Bytes,
        _request_id: &str,
    ) -> Result<bytes::Bytes, IntegrationError> {
        Err(IntegrationError::Failed(
            "this kind of handler cannot run as an authorizer".into(),
        ))
    }

    /// A short description for logs and start-up output, e.g. `http POST http://...`.
    fn describe(&self) -> String;

    /// The kind of handler, as the console names it: `http`, `function`
    /// or `rust`.
    fn kind(&self) -> &'static str;

    /// The handler's instances by state, for handlers that run instances.
    fn instances(&self) -> Option<InstanceCounts> {
        None
    }

    /// Start-up check, run once the API's outputs are known and before any
    /// connection is accepted (e.g. that a function's handler loads).
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// How many invocations may run at once (`None`: no bound of its own).
    /// Shutdown runs `$disconnect` no more at once than this, so none is
    /// refused for want of an instance.
    fn concurrency(&self) -> Option<usize> {
        None
    }
}

/// Reads a Lambda proxy response the way API Gateway does: an empty reply or
/// `null` is a bare 200; an object gives `statusCode` (default 200),
/// `headers` and `body`; anything else is a malformed reply.
pub fn parse_proxy_response(reply: &[u8]) -> Result<Response, IntegrationError> {
    if reply.iter().all(u8::is_ascii_whitespace) {
        return Ok(Response::ok());
    }
    let reply: ProxyReply = serde_json::from_slice(reply)
        .map_err(|e| IntegrationError::Failed(format!("handler reply is not JSON: {e}")))?;
    let fields = match reply {
        ProxyReply::Null => return Ok(Response::ok()),
        ProxyReply::Object(fields) => fields,
        ProxyReply::Other(kind) => {
            return Err(IntegrationError::Failed(format!(
                "handler reply must be an object such as {{\"statusCode\": 200}}, got {kind}"
            )));
        }
    };
    let status_code = match fields.status_code {
        None | Some(Value::Null) => 200,
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| (200..=599).contains(n))
            .ok_or_else(|| malformed("statusCode must be an integer from 200 to 599"))?
            as u16,
        Some(Value::String(s)) => s
            .parse::<u16>()
            .ok()
            .filter(|n| (200..=599).contains(n))
            .ok_or_else(|| malformed("statusCode must be an integer from 200 to 599"))?,
        Some(_) => return Err(malformed("statusCode must be a number")),
    };
    let mut headers = Vec::new();
    match fields.headers {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(malformed("header values must be strings")),
                };
                headers.push((name, value));
            }
        }
        Some(_) => return Err(malformed("headers must be an object")),
    }
    let body = match fields.body {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        // Lambda proxy bodies are strings; API Gateway stringifies others.
        Some(other) => Some(other.to_string()),
    };
    let is_base64_encoded = matches!(fields.is_base64_encoded, Some(Value::Bool(true)));
    Ok(Response {
        status_code,
        headers,
        body,
        is_base64_encoded,
    })
}

/// A handler's reply as far as API Gateway reads it: the four fields
/// are taken as values straight from the JSON and every other key is
/// skipped unbuilt (a whole `Value` cost an ordered map and a copy of the
/// body). A repeated key's last value wins, as in a parsed object.
/// (On the stack for one parse: boxing the large variant would allocate
/// per reply.)
#[allow(clippy::large_enum_variant)]
enum ProxyReply {
    Null,
    Object(ProxyFields),
    /// Not an object: what it is, for the error.
    Other(&'static str),
}

#[derive(Default)]
struct ProxyFields {
    status_code: Option<Value>,
    headers: Option<Value>,
    body: Option<Value>,
    is_base64_encoded: Option<Value>,
}

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ProxyField {
    StatusCode,
    Headers,
    Body,
    IsBase64Encoded,
    #[serde(other)]
    Other,
}

impl<'de> serde::Deserialize<'de> for ProxyReply {
    fn deserialize<D: serde::Deserializer<'de>>(json: D) -> Result<Self, D::Error> {
        json.deserialize_any(ProxyReplyVisitor)
    }
}

struct ProxyReplyVisitor;

impl<'de> serde::de::Visitor<'de> for ProxyReplyVisitor {
    type Value = ProxyReply;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Lambda proxy response")
    }

    fn visit_unit<E>(self) -> Result<ProxyReply, E> {
        Ok(ProxyReply::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<ProxyReply, E> {
        Ok(ProxyReply::Other("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<ProxyReply, E> {
        Ok(ProxyReply::Other("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<ProxyReply, E> {
        Ok(ProxyReply::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<ProxyReply, E> {
        Ok(ProxyReply::Other("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<ProxyReply, E> {
        Ok(ProxyReply::Other("a string"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ProxyReply, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(ProxyReply::Other("an array"))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ProxyReply, A::Error> {
        let mut fields = ProxyFields::default();
        while let Some(field) = map.next_key::<ProxyField>()? {
            let slot = match field {
                ProxyField::StatusCode => &mut fields.status_code,
                ProxyField::Headers => &mut fields.headers,
                ProxyField::Body => &mut fields.body,
                ProxyField::IsBase64Encoded => &mut fields.is_base64_encoded,
                ProxyField::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(ProxyReply::Object(fields))
    }
}

fn malformed(what: &str) -> IntegrationError {
    IntegrationError::Failed(format!("malformed handler reply: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_responses() {
        assert_eq!(parse_proxy_response(b"").unwrap(), Response::ok());
        assert_eq!(parse_proxy_response(b"null").unwrap(), Response::ok());
        assert_eq!(parse_proxy_response(b"{}").unwrap(), Response::ok());
        let r = parse_proxy_response(
            br#"{"statusCode":403,"headers":{"Sec-WebSocket-Protocol":"chat"},"body":"no"}"#,
        )
        .unwrap();
        assert_eq!(r.status_code, 403);
        assert_eq!(
            r.headers,
            vec![("Sec-WebSocket-Protocol".into(), "chat".into())]
        );
        assert_eq!(r.body.as_deref(), Some("no"));
        assert_eq!(
            parse_proxy_response(br#"{"statusCode":"201"}"#)
                .unwrap()
                .status_code,
            201
        );
        assert_eq!(
            parse_proxy_response(br#"{"body":{"a":1}}"#)
                .unwrap()
                .body
                .as_deref(),
            Some(r#"{"a":1}"#)
        );
    }

    /// What the reply gives when read as one whole `Value`, as it was:
    /// the direct reading must agree with it on every input.
    fn read_as_value(reply: &[u8]) -> Option<(u16, Option<Value>, Option<Value>, bool)> {
        let object = match serde_json::from_slice::<Value>(reply).ok()? {
            Value::Object(object) => object,
            _ => return None,
        };
        let status = match object.get("statusCode") {
            None | Some(Value::Null) => 200,
            Some(other) => other
                .as_u64()
                .or_else(|| other.as_str()?.parse().ok())
                .filter(|n| (200..=599).contains(n))? as u16,
        };
        Some((
            status,
            object.get("headers").cloned(),
            object.get("body").cloned(),
            object.get("isBase64Encoded") == Some(&Value::Bool(true)),
        ))
    }

    #[test]
    fn the_direct_reading_agrees_with_a_whole_value() {
        for reply in [
            &br#"{"statusCode":200,"body":"a","body":"b"}"#[..],
            br#"{"x":{"deep":[1,2,{"statusCode":500}]},"statusCode":201}"#,
            br#"{"statusCode":"404","headers":{"a":"1","b":2,"c":true},"isBase64Encoded":true,"body":"aGk="}"#,
            br#"{"body":[1,"two",null],"isBase64Encoded":"true"}"#,
            br#"{"\u0062ody":"escaped key","headers":null}"#,
            br#"{"statusCode":null,"body":null}"#,
            br#"{"statusCode":250.0}"#,
        ] {
            let expected = read_as_value(reply);
            let got = parse_proxy_response(reply).ok().map(|r| {
                (
                    r.status_code,
                    r.body,
                    r.headers,
                    r.is_base64_encoded,
                )
            });
            match (expected, got) {
                (Some((status, headers, body, base64)), Some((s, b, h, b64))) => {
                    assert_eq!(status, s, "{}", String::from_utf8_lossy(reply));
                    let body = body.filter(|b| !b.is_null()).map(|b| match b {
                        Value::String(s) => s,
                        other => other.to_string(),
                    });
                    assert_eq!(body, b, "{}", String::from_utf8_lossy(reply));
                    let headers: Vec<(String, String)> = match headers {
                        Some(Value::Object(map)) => map
                            .into_iter()
                            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                            .collect(),
                        _ => Vec::new(),
                    };
                    assert_eq!(headers, h, "{}", String::from_utf8_lossy(reply));
                    assert_eq!(base64, b64);
                }
                // Both refuse it.
                (None, None) => {}
                (expected, got) => panic!(
                    "{}: as a Value {expected:?}, read directly {got:?}",
                    String::from_utf8_lossy(reply)
                ),
            }
        }
    }

    #[test]
    fn malformed_replies_fail() {
        for reply in [
            &b"not json"[..],
            b"42",
            b"\"text\"",
            b"[1]",
            br#"{"statusCode":99}"#,
            br#"{"statusCode":1000}"#,
            br#"{"statusCode":true}"#,
            br#"{"headers":[1]}"#,
            br#"{"headers":{"a":{"b":1}}}"#,
            br#"{"statusCode":200"#,
            br#"[1,{"statusCode":200}"#,
            br#"{"statusCode":200} trailing"#,
        ] {
            assert!(
                parse_proxy_response(reply).is_err(),
                "{:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }
}
