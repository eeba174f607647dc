//! The Lambda proxy events API Gateway sends for WebSocket routes, built to
//! be byte-compatible with AWS's: same keys, same order, same optional keys
//! left out. Rust handlers receive them as `aws_lambda_events`'
//! `ApiGatewayWebsocketProxyRequest`.

use aws_lambda_events::apigw::{
    ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// What every event of one API carries.
#[derive(Debug, Clone)]
pub struct ApiInfo {
    pub api_id: Arc<str>,
    pub stage: Arc<str>,
}

/// What every event of one connection carries; fixed at connect time.
/// Its strings are shared with each event (a count, not a copy).
#[derive(Debug, Clone)]
pub struct ConnectionMeta {
    pub connection_id: Arc<str>,
    /// Epoch milliseconds.
    pub connected_at: i64,
    pub source_ip: Arc<str>,
    pub user_agent: Option<Arc<str>>,
    /// The Host the client connected to (with its port: handlers build
    /// management endpoints from it).
    pub domain_name: Arc<str>,
    /// The signer of an IAM-authorized `$connect`.
    pub caller: Option<Arc<crate::auth::keyring::Caller>>,
    /// What a Lambda authorizer returned (`context` keys, `principalId`);
    /// every event of the connection carries it.
    pub authorizer: Option<Arc<AuthorizerContext>>,
}

/// `requestContext.authorizer`: the authorizer's `context` keys, flattened,
/// then `principalId`.
pub type AuthorizerContext = IndexMap<String, serde_json::Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Connect,
    Message,
    Disconnect,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    // Boxed: only CONNECT and DISCONNECT events have them, and a message's
    // event (held in its handling future) stays small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Box<IndexMap<String, String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_value_headers: Option<Box<IndexMap<String, Vec<String>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_string_parameters: Option<Box<IndexMap<String, String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_value_query_string_parameters: Option<Box<IndexMap<String, Vec<String>>>>,
    pub request_context: RequestContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub is_base64_encoded: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub route_key: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<Arc<AuthorizerContext>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect_status_code: Option<u16>,
    pub event_type: EventType,
    pub extended_request_id: Arc<str>,
    pub request_time: Arc<str>,
    pub message_direction: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect_reason: Option<String>,
    pub stage: Arc<str>,
    pub connected_at: i64,
    pub request_time_epoch: i64,
    pub identity: Identity,
    pub request_id: Arc<str>,
    pub domain_name: Arc<str>,
    pub connection_id: Arc<str>,
    pub api_id: Arc<str>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub source_ip: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_arn: Option<String>,
}

/// The client's handshake request as the CONNECT event shows it.
#[derive(Debug, Clone, Default)]
pub struct HandshakeRequest {
    /// Header names in the client's spelling, in the client's order.
    pub headers: Vec<(String, String)>,
    /// The raw query string, without `?`; `None` when the URL had none.
    pub query: Option<String>,
}

impl Event {
    fn new(
        api: &ApiInfo,
        conn: &ConnectionMeta,
        route_key: Arc<str>,
        event_type: EventType,
        request_id: Arc<str>,
    ) -> Event {
        let now = Utc::now();
        Event {
            headers: None,
            multi_value_headers: None,
            query_string_parameters: None,
            multi_value_query_string_parameters: None,
            request_context: RequestContext {
                route_key,
                authorizer: conn.authorizer.clone(),
                message_id: None,
                disconnect_status_code: None,
                event_type,
                extended_request_id: request_id.clone(),
                request_time: clf_time(now),
                message_direction: "IN",
                disconnect_reason: None,
                stage: api.stage.clone(),
                connected_at: conn.connected_at,
                request_time_epoch: now.timestamp_millis(),
                identity: Identity {
                    source_ip: conn.source_ip.clone(),
                    user_agent: conn.user_agent.clone(),
                    account_id: conn.caller.as_ref().map(|c| c.account_id.clone()),
                    access_key: conn.caller.as_ref().map(|c| c.access_key.clone()),
                    caller: conn.caller.as_ref().map(|c| c.caller.clone()),
                    user: conn.caller.as_ref().map(|c| c.user.clone()),
                    user_arn: conn.caller.as_ref().map(|c| c.user_arn.clone()),
                },
                request_id,
                domain_name: conn.domain_name.clone(),
                connection_id: conn.connection_id.clone(),
                api_id: api.api_id.clone(),
            },
            body: None,
            is_base64_encoded: false,
        }
    }

    /// The `$connect` event: the client's headers (less the hop-by-hop
    /// `Connection` and `Upgrade`) and, when the URL had a query, its
    /// parameters.
    pub fn connect(
        api: &ApiInfo,
        conn: &ConnectionMeta,
        request_id: Arc<str>,
        request: &HandshakeRequest,
    ) -> Event {
        let mut event = Event::new(api, conn, "$connect".into(), EventType::Connect, request_id);
        let mut headers = IndexMap::new();
        let mut multi: IndexMap<String, Vec<String>> = IndexMap::new();
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("upgrade") {
                continue;
            }
            headers.insert(name.clone(), value.clone());
            multi.entry(name.clone()).or_default().push(value.clone());
        }
        event.headers = Some(Box::new(headers));
        event.multi_value_headers = Some(Box::new(multi));
        if let Some(query) = &request.query {
            let mut single = IndexMap::new();
            let mut multi: IndexMap<String, Vec<String>> = IndexMap::new();
            for (key, value) in form_urlencoded::parse(query.as_bytes()) {
                single.insert(key.to_string(), value.to_string());
                multi
                    .entry(key.to_string())
                    .or_default()
                    .push(value.to_string());
            }
            event.query_string_parameters = Some(Box::new(single));
            event.multi_value_query_string_parameters = Some(Box::new(multi));
        }
        event
    }

    /// A message event; binary payloads arrive base64-encoded.
    pub fn message(
        api: &ApiInfo,
        conn: &ConnectionMeta,
        route_key: Arc<str>,
        request_id: Arc<str>,
        message_id: String,
        body: String,
        is_base64_encoded: bool,
    ) -> Event {
        let mut event = Event::new(api, conn, route_key, EventType::Message, request_id);
        event.request_context.message_id = Some(message_id);
        event.body = Some(body);
        event.is_base64_encoded = is_base64_encoded;
        event
    }

    /// The `$disconnect` event. API Gateway sends the same four headers on
    /// every disconnect, whatever the client sent.
    pub fn disconnect(
        api: &ApiInfo,
        conn: &ConnectionMeta,
        request_id: Arc<str>,
        status_code: u16,
        reason: &str,
    ) -> Event {
        let mut event = Event::new(
            api,
            conn,
            "$disconnect".into(),
            EventType::Disconnect,
            request_id,
        );
        let headers: IndexMap<String, String> = [
            ("Host", &*conn.domain_name),
            ("x-api-key", ""),
            ("X-Forwarded-For", ""),
            ("x-restapi", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        event.multi_value_headers = Some(Box::new(
            headers
                .iter()
                .map(|(k, v)| (k.clone(), vec![v.clone()]))
                .collect(),
        ));
        event.headers = Some(Box::new(headers));
        event.request_context.disconnect_status_code = Some(status_code);
        event.request_context.disconnect_reason = Some(reason.to_string());
        event
    }

    pub fn request_id(&self) -> &str {
        &self.request_context.request_id
    }

    pub fn route_key(&self) -> &str {
        &self.request_context.route_key
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A message's event is ~600 bytes besides its body: sized once
        // rather than grown from 128 bytes three times.
        let body = self.body.as_ref().map_or(0, String::len);
        let mut json = Vec::with_capacity(1024 + body + body / 8);
        serde_json::to_writer(&mut json, self)
            .expect("events serialize: every field is a plain value");
        json
    }

    /// The event as `aws_lambda_events` types it, for in-process Rust
    /// handlers: built directly (no JSON on the hot path), and tested to
    /// equal what deserializing the JSON a Lambda receives gives.
    pub fn to_lambda_request(&self) -> ApiGatewayWebsocketProxyRequest {
        let ctx = &self.request_context;
        let mut context = ApiGatewayWebsocketProxyRequestContext::default();
        context.route_key = Some(ctx.route_key.to_string());
        context.message_id = ctx.message_id.clone();
        context.disconnect_status_code = ctx.disconnect_status_code.map(i64::from);
        context.event_type = Some(
            match ctx.event_type {
                EventType::Connect => "CONNECT",
                EventType::Message => "MESSAGE",
                EventType::Disconnect => "DISCONNECT",
            }
            .to_string(),
        );
        context.extended_request_id = Some(ctx.extended_request_id.to_string());
        context.request_time = Some(ctx.request_time.to_string());
        context.message_direction = Some(ctx.message_direction.to_string());
        context.disconnect_reason = ctx.disconnect_reason.clone();
        context.stage = Some(ctx.stage.to_string());
        context.connected_at = ctx.connected_at;
        context.request_time_epoch = ctx.request_time_epoch;
        context.identity.source_ip = Some(ctx.identity.source_ip.to_string());
        context.identity.user_agent = ctx.identity.user_agent.as_deref().map(str::to_string);
        context.identity.account_id = ctx.identity.account_id.clone();
        context.identity.access_key = ctx.identity.access_key.clone();
        context.identity.caller = ctx.identity.caller.clone();
        context.identity.user = ctx.identity.user.clone();
        context.identity.user_arn = ctx.identity.user_arn.clone();
        if let Some(authorizer) = &ctx.authorizer {
            context.authorizer.fields = authorizer
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
        context.request_id = Some(ctx.request_id.to_string());
        context.domain_name = Some(ctx.domain_name.to_string());
        context.connection_id = Some(ctx.connection_id.to_string());
        context.apiid = Some(ctx.api_id.to_string());

        let mut request = ApiGatewayWebsocketProxyRequest::default();
        request.request_context = context;
        if let Some(headers) = &self.headers {
            request.headers = header_map(headers.iter());
        }
        if let Some(headers) = &self.multi_value_headers {
            request.multi_value_headers = header_map(
                headers
                    .iter()
                    .flat_map(|(k, vs)| vs.iter().map(move |v| (k, v))),
            );
        }
        if let Some(query) = &self.query_string_parameters {
            request.query_string_parameters = query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
                .into();
        }
        if let Some(query) = &self.multi_value_query_string_parameters {
            request.multi_value_query_string_parameters = query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
                .into();
        }
        request.body = self.body.clone();
        request.is_base64_encoded = self.is_base64_encoded;
        request
    }
}

/// Headers as `http` types them; a name or value HTTP cannot carry is left
/// out, as deserializing the JSON would.
fn header_map<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// API Gateway's `requestTime`: Common Log Format, always UTC.
pub fn clf_time(time: DateTime<Utc>) -> Arc<str> {
    // Every event and access log line asks for it: format once a second
    // per thread, and share that text, rather than each time.
    thread_local! {
        static LAST: std::cell::RefCell<(i64, Arc<str>)> = std::cell::RefCell::new((i64::MIN, Arc::from("")));
    }
    let second = time.timestamp();
    LAST.with_borrow_mut(|(at, text)| {
        if *at != second {
            *at = second;
            *text = time.format("%d/%b/%Y:%H:%M:%S +0000").to_string().into();
        }
        Arc::clone(text)
    })
}

/// The reason API Gateway gives for each close code in `$disconnect`. For
/// 1000 it is "Connection Closed Normally", as API Gateway's own logs of a
/// DeleteConnection show it (quoted in boto3 issue 3789 and chalice issue
/// 2060); AWS's guide gives none of these texts.
pub fn disconnect_reason(code: u16) -> &'static str {
    match code {
        1000 => "Connection Closed Normally",
        1001 => "Going away",
        1002 => "Protocol error",
        1003 => "Unsupported data",
        1005 => "Client-side close frame status not set",
        1006 => "Connection closed abnormally",
        1007 => "Invalid frame payload data",
        1008 => "Policy violation",
        1009 => "Message too big",
        1011 => "Internal server error",
        _ => "",
    }
}

#[cfg(test)]
mod tests;
