//! The web console on the admin listener: the page (embedded from
//! `console/`), its JSON API under `/api/`, and live updates as
//! Server-Sent Events. It reads what the gateway already knows (the
//! registry, the routes) and what `recorder` keeps; sending to and
//! disconnecting a connection go through the same `Connections` as the
//! `@connections` API, with the same `$disconnect` semantics.

mod assets;
pub mod recorder;

pub use recorder::{enable, get};

use crate::gateway::Gateway;
use crate::gateway::registry::PushError;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use recorder::EventFilter;
use serde::Serialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub type Body = BoxBody<Bytes, Infallible>;

/// Rows the connections view gets at most per request (it searches for
/// the rest).
const CONNECTIONS_LISTED: usize = 500;
/// How often an idle event stream says it is still there.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The header every request that changes something must carry: a page on
/// another site cannot add it without a CORS preflight, which is never
/// granted, so it cannot make a console's browser send or disconnect.
pub const CHANGE_HEADER: &str = "x-wsgate-console";

/// One served API, as the console shows it.
pub struct ServedApi {
    pub gateway: Arc<Gateway>,
    pub url: String,
    pub management_endpoint: String,
}

/// Whether `path` is the console's (its page, assets and API).
pub fn serves(path: &str) -> bool {
    path.starts_with("/api/") || assets::find(path).is_some()
}

/// Answers one console request.
pub async fn handle(apis: &[ServedApi], request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query = query_pairs(request.uri().query());
    let method = request.method().clone();
    if method != Method::GET
        && method != Method::HEAD
        && !request.headers().contains_key(CHANGE_HEADER)
    {
        return text(
            StatusCode::FORBIDDEN,
            format!("a request that changes something needs the {CHANGE_HEADER} header\n"),
        );
    }
    if let Some(asset) = assets::find(&path) {
        return asset_response(asset);
    }
    let api = || find_api(apis, query.get("api").map(String::as_str));
    // Connection ids have `=`, `+` and `/`: the page percent-encodes them.
    let segments: Vec<String> = path
        .trim_start_matches("/api/")
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["overview"]) => json(StatusCode::OK, &overview(apis).await),
        (&Method::GET, ["connections"]) => json(
            StatusCode::OK,
            &connections(apis, query.get("q").map(String::as_str)),
        ),
        (&Method::POST, ["connections", id]) => match api() {
            Some(api) => send(api, id, request).await,
            None => no_such_api(),
        },
        (&Method::DELETE, ["connections", id]) => match api() {
            Some(api) => outcome(api.gateway.connections.delete(id).await),
            None => no_such_api(),
        },
        (&Method::GET, ["events"]) => match recorder::get() {
            Some(recorder) => {
                let filter = EventFilter {
                    api: query.get("api").cloned(),
                    route: query.get("route").cloned(),
                    connection: query.get("connection").cloned(),
                    status_class: query.get("status").and_then(|s| s.parse().ok()),
                };
                let limit = query
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(recorder::EVENTS_KEPT);
                json(StatusCode::OK, &recorder.events(&filter, limit))
            }
            None => not_recording(),
        },
        (&Method::GET, ["events", seq]) => match (recorder::get(), seq.parse::<u64>()) {
            (Some(recorder), Ok(seq)) => match recorder.event_detail(seq) {
                Some(detail) => json(StatusCode::OK, &detail),
                None => text(
                    StatusCode::NOT_FOUND,
                    format!(
                        "event {seq} is no longer kept (the newest {} are)\n",
                        recorder::EVENTS_KEPT
                    ),
                ),
            },
            (None, _) => not_recording(),
            (_, Err(_)) => text(StatusCode::BAD_REQUEST, "an event is named by its number\n"),
        },
        (&Method::GET, ["logs"]) => match recorder::get() {
            Some(recorder) => json(
                StatusCode::OK,
                &recorder.logs(query.get("route").map(String::as_str)),
            ),
            None => not_recording(),
        },
        (&Method::GET, ["seconds"]) => match recorder::get() {
            Some(recorder) => json(StatusCode::OK, &recorder.seconds()),
            None => not_recording(),
        },
        (&Method::GET, ["stream"]) => match recorder::get() {
            Some(recorder) => event_stream(recorder.subscribe()),
            None => not_recording(),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            format!("not found: {method} {path} is not part of the console's API\n"),
        ),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Overview {
    apis: Vec<ApiOverview>,
    /// What the console keeps in memory, so the page can say so.
    kept: Kept,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Kept {
    events: usize,
    log_lines: usize,
    seconds: usize,
    body_bytes: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiOverview {
    name: String,
    api_id: String,
    stage: String,
    url: String,
    management_endpoint: String,
    connections: usize,
    /// This node and how many are live, in a cluster.
    node: Option<NodeOverview>,
    routes: Vec<RouteOverview>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeOverview {
    /// This node.
    name: String,
    slot: u16,
    /// Every live node, by slot (this one included).
    nodes: Vec<ClusterNode>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterNode {
    slot: u16,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteOverview {
    key: String,
    kind: &'static str,
    target: String,
    return_response: bool,
    instances: Option<crate::integrations::InstanceCounts>,
}

async fn overview(apis: &[ServedApi]) -> Overview {
    let mut overviews = Vec::new();
    for served in apis {
        let gateway = &served.gateway;
        let mut routes: Vec<RouteOverview> = gateway
            .routing()
            .routes
            .values()
            .map(|route| RouteOverview {
                key: route.key.to_string(),
                kind: route.integration.kind(),
                target: route.integration.describe(),
                return_response: route.return_response,
                instances: route.integration.instances(),
            })
            .collect();
        routes.sort_by(|a, b| a.key.cmp(&b.key));
        let node = match gateway.registry.node() {
            Some((name, slot)) => Some(NodeOverview {
                name: name.to_string(),
                slot,
                nodes: gateway
                    .registry
                    .nodes()
                    .await
                    .into_iter()
                    .map(|(slot, name)| ClusterNode { slot, name })
                    .collect(),
            }),
            None => None,
        };
        overviews.push(ApiOverview {
            name: gateway.name.clone(),
            api_id: gateway.api.api_id.to_string(),
            stage: gateway.api.stage.to_string(),
            url: served.url.clone(),
            management_endpoint: served.management_endpoint.clone(),
            connections: gateway.registry.count(),
            node,
            routes,
        });
    }
    Overview {
        apis: overviews,
        kept: Kept {
            events: recorder::EVENTS_KEPT,
            log_lines: recorder::LOG_LINES_KEPT,
            seconds: recorder::SECONDS_KEPT,
            body_bytes: recorder::BODY_KEPT,
        },
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionRow {
    api: String,
    connection_id: String,
    source_ip: String,
    user_agent: Option<String>,
    connected_at: i64,
    last_active_at: i64,
    /// The Lambda authorizer's `principalId`, or the IAM caller's ARN.
    principal: Option<String>,
    messages_in: u32,
    messages_out: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionList {
    /// Connections that match, of which the newest `CONNECTIONS_LISTED`
    /// are listed.
    matching: usize,
    connections: Vec<ConnectionRow>,
}

/// The connections open on this node whose id, source ip, user agent or
/// principal contains `search`, newest first.
fn connections(apis: &[ServedApi], search: Option<&str>) -> ConnectionList {
    let search = search.map(str::to_lowercase).filter(|s| !s.is_empty());
    let mut rows: Vec<ConnectionRow> = apis
        .iter()
        .flat_map(|served| {
            let api = &served.gateway.name;
            served
                .gateway
                .registry
                .local_connections()
                .into_iter()
                .map(move |entry| {
                    let meta = &entry.meta;
                    let principal = meta
                        .authorizer
                        .as_ref()
                        .and_then(|a| a.get("principalId"))
                        .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                        .or_else(|| meta.caller.as_ref().map(|c| c.user_arn.clone()));
                    let (messages_in, messages_out) = entry.message_counts();
                    ConnectionRow {
                        api: api.clone(),
                        connection_id: meta.connection_id.to_string(),
                        source_ip: meta.source_ip.to_string(),
                        user_agent: meta.user_agent.as_deref().map(str::to_string),
                        connected_at: meta.connected_at,
                        last_active_at: entry.last_active_at(),
                        principal,
                        messages_in,
                        messages_out,
                    }
                })
        })
        .filter(|row| {
            search.as_deref().is_none_or(|s| {
                [
                    Some(row.connection_id.as_str()),
                    Some(row.source_ip.as_str()),
                    row.user_agent.as_deref(),
                    row.principal.as_deref(),
                ]
                .into_iter()
                .flatten()
                .any(|field| field.to_lowercase().contains(s))
            })
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.connected_at));
    let matching = rows.len();
    rows.truncate(CONNECTIONS_LISTED);
    ConnectionList {
        matching,
        connections: rows,
    }
}

/// PostToConnection from the console: the body goes to the client as
/// the management API would send it.
async fn send(api: &ServedApi, connection_id: &str, request: Request<Incoming>) -> Response<Body> {
    // One byte over the limit is enough to know the payload is too large.
    let max_payload = api.gateway.connections.max_payload();
    let limit = max_payload + 1;
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return outcome(Err(PushError::PayloadTooLarge {
                size: None,
                limit: max_payload,
            }));
        }
    };
    outcome(api.gateway.connections.post(connection_id, body).await)
}

/// A management call's outcome, with the status `@connections` gives it.
fn outcome(result: Result<(), PushError>) -> Response<Body> {
    let status = match &result {
        Ok(()) => return json(StatusCode::OK, &serde_json::json!({})),
        Err(PushError::Gone) => StatusCode::GONE,
        Err(PushError::PayloadTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        Err(PushError::QueueFull) => StatusCode::TOO_MANY_REQUESTS,
        Err(PushError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    json(status, &serde_json::json!({ "message": message }))
}

fn find_api<'a>(apis: &'a [ServedApi], name: Option<&str>) -> Option<&'a ServedApi> {
    match name {
        Some(name) => apis.iter().find(|a| a.gateway.name == name),
        None if apis.len() == 1 => apis.first(),
        None => None,
    }
}

fn no_such_api() -> Response<Body> {
    text(
        StatusCode::NOT_FOUND,
        "no such API here: name it with ?api=NAME\n",
    )
}

fn not_recording() -> Response<Body> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the console is not recording\n",
    )
}

/// Live updates as Server-Sent Events, with a comment line when idle so
/// proxies and browsers keep the stream open.
fn event_stream(receiver: tokio::sync::broadcast::Receiver<Bytes>) -> Response<Body> {
    let hello = futures_util::stream::once(async {
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"retry: 2000\n\n")))
    });
    let updates = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let frame = match tokio::time::timeout(KEEP_ALIVE, receiver.recv()).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(RecvError::Lagged(skipped))) => {
                Bytes::from(format!("event: lagged\ndata: {skipped}\n\n"))
            }
            Ok(Err(RecvError::Closed)) => return None,
            Err(_) => Bytes::from_static(b": still here\n\n"),
        };
        Some((Ok(Frame::data(frame)), receiver))
    });
    let body = BodyExt::boxed(StreamBody::new(futures_util::StreamExt::chain(
        hello, updates,
    )));
    reply(
        StatusCode::OK,
        body,
        &[
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
}

fn asset_response(asset: &assets::Asset) -> Response<Body> {
    reply(
        StatusCode::OK,
        full(asset.body),
        &[
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "no-cache"),
            // Only its own files, and WebSockets for the test client.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("console replies serialize");
    reply(
        status,
        full(body),
        &[
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    reply(
        status,
        full(body),
        &[(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
    )
}

/// A response with `status`, `body` and these headers.
fn reply(
    status: StatusCode,
    body: Body,
    headers: &[(header::HeaderName, &'static str)],
) -> Response<Body> {
    let mut reply = Response::new(body);
    *reply.status_mut() = status;
    for (name, value) in headers {
        reply
            .headers_mut()
            .insert(name, header::HeaderValue::from_static(value));
    }
    reply
}

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

fn query_pairs(query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}
