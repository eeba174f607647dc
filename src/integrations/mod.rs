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
    let value: Value = serde_json::from_slice(reply)
        .map_err(|e| IntegrationError::Failed(format!("handler reply is not JSON: {e}")))?;
    let object = match value {
        Value::Null => return Ok(Response::ok()),
        Value::Object(object) => object,
        other => {
            return Err(IntegrationError::Failed(format!(
                "handler reply must be an object such as {{\"statusCode\": 200}}, got {}",
                json_type(&other)
            )));
        }
    };
    let status_code = match object.get("statusCode") {
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
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(malformed("header values must be strings")),
                };
                headers.push((name.clone(), value));
            }
        }
        Some(_) => return Err(malformed("headers must be an object")),
    }
    let body = match object.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        // Lambda proxy bodies are strings; API Gateway stringifies others.
        Some(other) => Some(other.to_string()),
    };
    let is_base64_encoded = matches!(object.get("isBase64Encoded"), Some(Value::Bool(true)));
    Ok(Response {
        status_code,
        headers,
        body,
        is_base64_encoded,
    })
}

fn malformed(what: &str) -> IntegrationError {
    IntegrationError::Failed(format!("malformed handler reply: {what}"))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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
        ] {
            assert!(
                parse_proxy_response(reply).is_err(),
                "{:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }
}
