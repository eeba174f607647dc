//! The `@connections` management API, served on the gateway's own
//! listener at `managementEndpoint`. Errors carry `x-amzn-ErrorType` so the
//! AWS SDKs type them (GoneException, PayloadTooLargeException, ...).

use crate::admin::metrics;
use crate::auth::policy::MANAGE_CONNECTIONS;
use crate::auth::{AuthError, sigv4};
use crate::gateway::Gateway;
use crate::gateway::paths::Target;
use crate::gateway::registry::PushError;
use crate::ids::new_id;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::json;
use std::time::Duration;
use tokio::sync::SemaphorePermit;

/// How long a management call's body may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The bytes of request bodies all management calls together may hold
/// before their signature is checked (at least this, or four of the
/// largest payloads).
pub const UNVERIFIED_BODY_BYTES: usize = 16 * 1024 * 1024;

type Reply = Response<Full<Bytes>>;

/// Health for load balancers, under a prefix no stage or base path can
/// have (stages are letters, digits, `-` and `_`).
pub const HEALTH_PATH: &str = "/.wsgate/health";
/// Readiness: fails while the node takes no new connections.
pub const READY_PATH: &str = "/.wsgate/ready";

/// Answers one plain HTTP request.
pub async fn handle(gateway: &Gateway, request: Request<Incoming>) -> Reply {
    if matches!(request.method(), &Method::GET | &Method::HEAD) {
        match request.uri().path() {
            HEALTH_PATH => return health(gateway, false),
            READY_PATH => return health(gateway, true),
            // The short forms, unless the stage or base path has that name.
            "/health" if !names_a_stage(gateway, "health") => return health(gateway, false),
            "/ready" if !names_a_stage(gateway, "ready") => return health(gateway, true),
            _ => {}
        }
    }
    // On the custom domain, paths are its API mapping's.
    let on_domain = gateway.domain.as_ref().filter(|domain| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| domain.is_host(h))
    });
    let target = match on_domain {
        Some(domain) => domain.classify(request.uri().path()),
        None => gateway.classify_path(request.uri().path()),
    };
    match target {
        Target::Endpoint => respond(
            StatusCode::UPGRADE_REQUIRED,
            None,
            json!({ "message": "Upgrade Required" }),
        ),
        Target::Forbidden => forbidden(),
        Target::Connection(id) => connection(gateway, request, &id).await,
    }
}

/// Whether `/<name>` is the API's: its stage, or its custom domain's path.
fn names_a_stage(gateway: &Gateway, name: &str) -> bool {
    *gateway.api.stage == *name
        || gateway
            .domain
            .as_ref()
            .is_some_and(|d| d.settings.path.as_deref() == Some(name))
}

/// One `@connections` call, counted by operation and status.
async fn connection(gateway: &Gateway, request: Request<Incoming>, id: &str) -> Reply {
    let operation = match *request.method() {
        Method::POST => "PostToConnection",
        Method::GET => "GetConnection",
        Method::DELETE => "DeleteConnection",
        _ => "other",
    };
    let reply = connection_call(gateway, request, id).await;
    if let Some(m) = metrics::get() {
        m.management_calls
            .get_or_create(&metrics::ManagementLabels {
                api: std::sync::Arc::clone(&gateway.metric_api),
                operation,
                status: reply.status().as_u16(),
            })
            .inc();
    }
    reply
}

async fn connection_call(gateway: &Gateway, request: Request<Incoming>, id: &str) -> Reply {
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
    let headers = header_pairs(&parts.headers);
    let signed = |body| sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &headers,
        body,
    };
    // Everything the signature says that does not depend on the body is
    // checked before a byte of it is read: nobody unsigned pins memory.
    let checked = match gateway.auth.check_management_head(&signed(b"")) {
        Ok(checked) => checked,
        Err(error) => return refused(&parts, &error),
    };
    let (body, _reserved) = if method == Method::POST {
        match read_body(gateway, &parts.headers, body).await {
            Ok(read) => read,
            Err(reply) => return reply,
        }
    } else {
        (Bytes::new(), None)
    };
    if let Some(checked) = checked {
        // The ARN names the method and, as API Gateway's,
        // `{connectionId}` literally.
        let resource = gateway.arn(&format!("{}/@connections/{{connectionId}}", parts.method));
        if let Err(error) = checked.finish(&signed(&body), MANAGE_CONNECTIONS, &resource) {
            return refused(&parts, &error);
        }
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

fn header_pairs(headers: &http::HeaderMap) -> Vec<(&str, &str)> {
    headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect()
}

fn refused(parts: &http::request::Parts, error: &AuthError) -> Reply {
    // Debug, not info: refusals are what a flood of unsigned calls makes.
    tracing::debug!(method = %parts.method, path = %parts.uri.path(), %error, "management call refused");
    auth_error(error)
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

/// Reads a POST body: within `BODY_TIMEOUT`, at most the payload limit,
/// and only with room in the budget all unverified bodies share, which
/// is held (the second value) until the signature over it is checked.
async fn read_body<'g>(
    gateway: &'g Gateway,
    headers: &http::HeaderMap,
    body: Incoming,
) -> Result<(Bytes, Option<SemaphorePermit<'g>>), Reply> {
    let limit = gateway.limits.max_message_size;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(size) = declared.filter(|&n| n > limit as u64) {
        return Err(push_error(PushError::PayloadTooLarge {
            size: Some(usize::try_from(size).unwrap_or(usize::MAX)),
            limit,
        }));
    }
    // A chunked body may grow to the limit: reserve all of it.
    let reserve = declared.map_or(limit, |n| n as usize);
    let reserved = match u32::try_from(reserve) {
        Ok(0) => None,
        Ok(n) => match gateway.unverified_bodies.try_acquire_many(n) {
            Ok(permit) => Some(permit),
            Err(_) => return Err(busy()),
        },
        Err(_) => return Err(busy()),
    };
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok((collected.to_bytes(), reserved)),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(push_error(PushError::PayloadTooLarge { size: None, limit }))
        }
        Ok(Err(e)) => Err(respond(
            StatusCode::BAD_REQUEST,
            Some("BadRequestException"),
            json!({ "message": format!("could not read the request body: {e}") }),
        )),
        Err(_) => Err(respond(
            StatusCode::REQUEST_TIMEOUT,
            None,
            json!({ "message": format!("the request body did not arrive within {} s", BODY_TIMEOUT.as_secs()) }),
        )),
    }
}

/// `/health` (alive: always 200) or `/ready` (503 while
/// draining, or on a cluster node without its slot).
fn health(gateway: &Gateway, readiness: bool) -> Reply {
    let accepting = gateway.accepting();
    let status = if readiness && !accepting {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    respond(
        status,
        None,
        json!({
            "status": if accepting { "ready" } else { "not accepting connections" },
            "connections": gateway.connections.count(),
        }),
    )
}

/// Too many bodies are being read at once: the SDKs retry a 429.
fn busy() -> Reply {
    respond(
        StatusCode::TOO_MANY_REQUESTS,
        Some("LimitExceededException"),
        json!({ "message": "Too Many Requests" }),
    )
}

fn push_error(error: PushError) -> Reply {
    let (status, error_type) = match error {
        PushError::Gone => (StatusCode::GONE, "GoneException"),
        PushError::PayloadTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException")
        }
        PushError::QueueFull => (StatusCode::TOO_MANY_REQUESTS, "LimitExceededException"),
        // A 5xx: the SDKs retry it, then surface it.
        PushError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
        ),
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
