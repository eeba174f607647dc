//! The `@connections` management API, served on the gateway's own
//! listener at `managementEndpoint`. Errors carry `x-amzn-ErrorType` so the
//! AWS SDKs type them (GoneException, PayloadTooLargeException, ...).

use crate::auth::{AuthError, sigv4};
use crate::gateway::Gateway;
use crate::gateway::paths::{self, Target};
use crate::gateway::registry::PushError;
use crate::ids::new_id;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::json;

type Reply = Response<Full<Bytes>>;

/// Answers one plain HTTP request.
pub async fn handle(gateway: &Gateway, request: Request<Incoming>) -> Reply {
    match paths::classify(request.uri().path(), &gateway.api.stage) {
        Target::Endpoint => respond(
            StatusCode::UPGRADE_REQUIRED,
            None,
            json!({ "message": "Upgrade Required" }),
        ),
        Target::Forbidden => forbidden(),
        Target::Connection(id) => connection(gateway, request, &id).await,
    }
}

async fn connection(gateway: &Gateway, request: Request<Incoming>, id: &str) -> Reply {
    let method = request.method().clone();
    if ![Method::POST, Method::GET, Method::DELETE].contains(&method) {
        return forbidden();
    }
    if !gateway.admit() {
        return respond(
            StatusCode::TOO_MANY_REQUESTS,
            Some("LimitExceededException"),
            json!({ "message": "Too Many Requests" }),
        );
    }
    let (parts, body) = request.into_parts();
    // The body is read first: the signature covers its hash.
    let body = if method == Method::POST {
        match read_body(&parts.headers, body, gateway.limits.max_message_size).await {
            Ok(body) => body,
            Err(reply) => return reply,
        }
    } else {
        Bytes::new()
    };
    if let Err(error) = authorize(gateway, &parts, &body) {
        tracing::info!(method = %method, path = %parts.uri.path(), %error, "management call refused");
        return auth_error(&error);
    }
    let connections = &gateway.connections;
    let result = match method {
        Method::POST => connections
            .post(id, body)
            .await
            .map(|()| empty(StatusCode::OK)),
        Method::GET => connections.get(id).await.map(|info| {
            respond(
                StatusCode::OK,
                None,
                json!({
                    "connectedAt": iso8601(info.connected_at),
                    "identity": { "sourceIp": info.source_ip, "userAgent": info.user_agent },
                    "lastActiveAt": iso8601(info.last_active_at),
                }),
            )
        }),
        _ => connections
            .delete(id)
            .await
            .map(|()| empty(StatusCode::NO_CONTENT)),
    };
    result.unwrap_or_else(push_error)
}

/// SigV4 and `execute-api:ManageConnections` on the call's ARN, which
/// names the method and, as API Gateway's, `{connectionId}` literally.
fn authorize(
    gateway: &Gateway,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<(), AuthError> {
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    let request = sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &headers,
        body,
    };
    let resource = gateway.arn(&format!("{}/@connections/{{connectionId}}", parts.method));
    gateway
        .auth
        .authorize_management(&request, &resource)
        .map(|_| ())
}

fn auth_error(error: &AuthError) -> Reply {
    // API Gateway spells the key `Message` in its IAM denials only.
    let key = match error {
        AuthError::Denied { .. } => "Message",
        _ => "message",
    };
    respond(
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::FORBIDDEN),
        Some(error.error_type()),
        json!({ key: error.to_string() }),
    )
}

async fn read_body(
    headers: &http::HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, Reply> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(push_error(PushError::PayloadTooLarge {
            size: declared.unwrap_or_default() as usize,
            limit,
        }));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(push_error(PushError::PayloadTooLarge {
                size: limit + 1,
                limit,
            }))
        }
        Err(e) => Err(respond(
            StatusCode::BAD_REQUEST,
            Some("BadRequestException"),
            json!({ "message": format!("could not read the request body: {e}") }),
        )),
    }
}

fn push_error(error: PushError) -> Reply {
    let (status, error_type) = match error {
        PushError::Gone => (StatusCode::GONE, "GoneException"),
        PushError::PayloadTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException")
        }
        PushError::QueueFull => (StatusCode::TOO_MANY_REQUESTS, "LimitExceededException"),
    };
    respond(
        status,
        Some(error_type),
        json!({ "message": error.to_string() }),
    )
}

fn forbidden() -> Reply {
    respond(
        StatusCode::FORBIDDEN,
        Some("ForbiddenException"),
        json!({ "message": "Forbidden" }),
    )
}

fn empty(status: StatusCode) -> Reply {
    base(status)
        .body(Full::new(Bytes::new()))
        .expect("static response parts are valid")
}

fn respond(status: StatusCode, error_type: Option<&str>, body: serde_json::Value) -> Reply {
    let mut builder = base(status).header(header::CONTENT_TYPE, "application/json");
    if let Some(error_type) = error_type {
        builder = builder.header("x-amzn-ErrorType", error_type);
    }
    builder
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

fn base(status: StatusCode) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("x-amzn-RequestId", new_id())
}

fn iso8601(epoch_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(epoch_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}
