//! Message routing, replies and error messages, against a real server.

mod common;

use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wsgate::{Response, RouteOptions, WebSocketApi, handler_fn};

/// An API with one HTTP route, built from config text as a user would.
fn http_api(backend: &Backend, key: &str, return_response: bool) -> WebSocketApi {
    let config = format!(
        "name = \"T\"\n[routes]\n\"{key}\" = {{ url = \"{}\", return_response = {return_response} }}\n",
        backend.url(&format!("/{key}"))
    );
    api_from_toml(&config)
}

/// Echo route that returns its body (two-way) and a `$default` that does not.
async fn echo_server() -> wsgate::Server {
    WebSocketApi::new("Echo")
        .route_with(
            "echo",
            handler_fn(|event, _| async move {
                Ok(Response::ok().with_body(format!("echo:{}", event.body.unwrap_or_default())))
            }),
            two_way(),
        )
        .route(
            "$default",
            handler_fn(|event, ctx| async move {
                let id = event.request_context.connection_id.unwrap_or_default();
                ctx.connections
                    .post(&id, format!("default:{}", event.body.unwrap_or_default()))
                    .await?;
                Ok(Response::ok().with_body("not sent: one-way route"))
            }),
        )
        .bind(any_port())
        .await
        .unwrap()
}

#[tokio::test]
async fn messages_go_to_the_selected_route_else_default() {
    let server = echo_server().await;
    let mut client = connect(&server.url()).await;

    send_text(&mut client, r#"{"action":"echo","x":1}"#).await;
    assert_eq!(
        next_text(&mut client).await,
        r#"echo:{"action":"echo","x":1}"#
    );

    for body in [
        r#"{"action":"nope"}"#,
        "not json",
        r#"{"other":1}"#,
        "[1,2]",
    ] {
        send_text(&mut client, body).await;
        assert_eq!(next_text(&mut client).await, format!("default:{body}"));
    }
    // The one-way $default route's reply body was not sent.
    assert_silent(&mut client, Duration::from_millis(200)).await;
    server.shutdown().await;
}

/// A selected array is stringified as AWS documents (`[item1, item2]`):
/// a route with that key takes it; objects and null go to `$default`.
#[tokio::test]
async fn an_array_selects_its_stringified_key() {
    let server = WebSocketApi::new("Arrays")
        .route_with(
            "[item1, item2]",
            handler_fn(|event, _| async move {
                Ok(Response::ok().with_body(format!(
                    "array:{}",
                    event.request_context.route_key.unwrap_or_default()
                )))
            }),
            two_way(),
        )
        .route_with(
            "$default",
            handler_fn(|_, _| async move { Ok(Response::ok().with_body("default")) }),
            two_way(),
        )
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    send_text(&mut client, r#"{"action":["item1","item2"]}"#).await;
    assert_eq!(next_text(&mut client).await, "array:[item1, item2]");
    for body in [
        r#"{"action":["item2","item1"]}"#,
        r#"{"action":{"a":1}}"#,
        r#"{"action":null}"#,
    ] {
        send_text(&mut client, body).await;
        assert_eq!(next_text(&mut client).await, "default", "{body}");
    }
}

#[tokio::test]
async fn no_route_and_no_default_is_forbidden_and_the_connection_stays() {
    let server = WebSocketApi::new("T")
        .route_with(
            "ping",
            handler_fn(|_, _| async { Ok(Response::ok().with_body("pong")) }),
            two_way(),
        )
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    send_text(&mut client, r#"{"action":"missing"}"#).await;
    let reply = next_text(&mut client).await;
    let parsed: Value = serde_json::from_str(&reply).unwrap();
    let connection_id = parsed["connectionId"].as_str().unwrap();
    let request_id = parsed["requestId"].as_str().unwrap();
    assert_eq!(
        reply,
        format!(
            r#"{{"message": "Forbidden", "connectionId":"{connection_id}", "requestId":"{request_id}"}}"#
        )
    );
    assert_eq!(connection_id.len(), 16);
    assert_eq!(request_id.len(), 16);
    send_text(&mut client, r#"{"action":"ping"}"#).await;
    assert_eq!(next_text(&mut client).await, "pong");
    server.shutdown().await;
}

#[tokio::test]
async fn template_selection_expression() {
    let server = WebSocketApi::new("T")
        .route_selection_expression("${request.body.service}/${request.body.action}")
        .route_with(
            "chat/send",
            handler_fn(|_, _| async { Ok(Response::ok().with_body("chat-send")) }),
            two_way(),
        )
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    send_text(&mut client, r#"{"service":"chat","action":"send"}"#).await;
    assert_eq!(next_text(&mut client).await, "chat-send");
    server.shutdown().await;
}

#[tokio::test]
async fn handler_failures_send_api_gateway_messages_and_the_connection_survives() {
    let backend = Backend::start(|path, event| match path {
        "/fail" => Reply {
            status: 500,
            body: "boom".into(),
            delay: Duration::ZERO,
        },
        "/garbage" => Reply {
            status: 200,
            body: "<html>".into(),
            delay: Duration::ZERO,
        },
        "/slow" => Reply {
            status: 200,
            body: "{}".into(),
            delay: Duration::from_secs(3),
        },
        _ => Reply::json(json!({ "statusCode": 200, "body": event["body"] })),
    })
    .await;
    let config = format!(
        r#"
name = "Faults"
[routes]
fail = {{ url = "{fail}" }}
garbage = {{ url = "{garbage}" }}
slow = {{ url = "{slow}", timeout = "300 ms" }}
unreachable = {{ url = "http://127.0.0.1:9/nothing-listens" }}
echo = {{ url = "{echo}", return_response = true }}
"#,
        fail = backend.url("/fail"),
        garbage = backend.url("/garbage"),
        slow = backend.url("/slow"),
        echo = backend.url("/echo"),
    );
    let server = api_from_toml(&config).bind(any_port()).await.unwrap();
    let mut client = connect(&server.url()).await;

    for (action, expected) in [
        ("fail", "Internal server error"),
        ("garbage", "Internal server error"),
        ("unreachable", "Internal server error"),
        ("slow", "Endpoint request timed out"),
    ] {
        send_text(&mut client, &format!(r#"{{"action":"{action}"}}"#)).await;
        let reply: Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
        assert_eq!(reply["message"], expected, "for {action}");
        assert!(reply["connectionId"].is_string() && reply["requestId"].is_string());
        // The next message still works.
        send_text(&mut client, r#"{"action":"echo","n":1}"#).await;
        assert_eq!(next_text(&mut client).await, r#"{"action":"echo","n":1}"#);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn two_way_route_sends_body_whatever_the_status_and_skips_empty_bodies() {
    let backend = Backend::start(|_, event| {
        let body = event["body"].as_str().unwrap_or_default().to_string();
        match body.as_str() {
            r#"{"action":"echo","kind":"error"}"# => {
                Reply::json(json!({ "statusCode": 500, "body": "still sent" }))
            }
            r#"{"action":"echo","kind":"empty"}"# => {
                Reply::json(json!({ "statusCode": 200, "body": "" }))
            }
            _ => Reply::json(json!({ "statusCode": 200, "body": "ok" })),
        }
    })
    .await;
    let server = http_api(&backend, "echo", true)
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    send_text(&mut client, r#"{"action":"echo","kind":"error"}"#).await;
    assert_eq!(next_text(&mut client).await, "still sent");
    send_text(&mut client, r#"{"action":"echo","kind":"empty"}"#).await;
    assert_silent(&mut client, Duration::from_millis(300)).await;
    send_text(&mut client, r#"{"action":"echo"}"#).await;
    assert_eq!(next_text(&mut client).await, "ok");
    server.shutdown().await;
}

#[tokio::test]
async fn messages_of_one_connection_are_handled_concurrently() {
    let gate = Arc::new(tokio::sync::Barrier::new(2));
    let server = WebSocketApi::new("T")
        .route_with(
            "$default",
            handler_fn(move |event, _| {
                let gate = Arc::clone(&gate);
                async move {
                    // Each of two messages waits for the other: only
                    // concurrent handling lets both finish.
                    gate.wait().await;
                    Ok(Response::ok().with_body(event.body.unwrap_or_default()))
                }
            }),
            RouteOptions {
                return_response: true,
                timeout: Some(Duration::from_secs(5)),
            },
        )
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    send_text(&mut client, "a").await;
    send_text(&mut client, "b").await;
    let mut got = vec![next_text(&mut client).await, next_text(&mut client).await];
    got.sort();
    assert_eq!(got, ["a", "b"]);
    server.shutdown().await;
}

#[tokio::test]
async fn panicking_or_failing_native_handlers_are_internal_errors() {
    let server = WebSocketApi::new("T")
        .route("panic", handler_fn(|_, _| async { panic!("handler bug") }))
        .route("err", handler_fn(|_, _| async { Err("nope".into()) }))
        .route_with(
            "ok",
            handler_fn(|_, _| async { Ok(Response::ok().with_body("fine")) }),
            two_way(),
        )
        .bind(any_port())
        .await
        .unwrap();
    let mut client = connect(&server.url()).await;
    for action in ["panic", "err"] {
        send_text(&mut client, &format!(r#"{{"action":"{action}"}}"#)).await;
        let reply: Value = serde_json::from_str(&next_text(&mut client).await).unwrap();
        assert_eq!(reply["message"], "Internal server error");
    }
    send_text(&mut client, r#"{"action":"ok"}"#).await;
    assert_eq!(next_text(&mut client).await, "fine");
    server.shutdown().await;
}
